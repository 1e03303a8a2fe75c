"""Command-line flags, config file, environment and the resulting `Config`.

Precedence: built-in default < environment < config file (`kvred FILE`) <
command-line flag. Every flag `--some-name` can come from the environment as
`KVRED_SOME_NAME` (KVRED_FSYNC, KVRED_WORKERS, ...; KVRED_PASSWORD for
--requirepass).
Bad values produce one line on stderr and exit code 2 (argparse's convention),
never a traceback: deploy/kvred.service has RestartPreventExitStatus=2, because
restarting would only fail again. A config-file error names the file, the line
number and the line, as redis-server's "FATAL CONFIG FILE ERROR" does.
check_startup() holds the checks that need the filesystem; the supervisor runs
it before it forks anything.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import re
import signal
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

from .notify import parse_flags
from .resp import split_inline_args

__all__ = [
    "Config",
    "parse_args",
    "build_parser",
    "read_config_file",
    "check_startup",
    "setup_logging",
    "default_workers",
    "VERBOSE",
    "describe_exit",
    "plural",
    "FSYNC_POLICIES",
    "flag_actions",
    "BadValue",
    "apply_output_limits",
    "set_log_level",
    "MULTI_ARG_SETTINGS",
]

DEFAULT_PORT = 6380
DEFAULT_BIND = "127.0.0.1"
FSYNC_POLICIES = ("always", "everysec", "no")
GRACEFUL_TIMEOUT_S = 8.0  # SIGTERM to exit, at most; below the 10 s users and systemd expect
DEFAULT_MAXCLIENTS = 10000
# Redis leaves normal clients unlimited (0); kvred disconnects a client whose unread
# replies pass this, so a client that never reads cannot exhaust memory.
DEFAULT_OUTPUT_BUFFER_LIMIT = 256 * 1024 * 1024
DEFAULT_PUBSUB_OUTPUT_LIMIT = (32 * 1024 * 1024, 8 * 1024 * 1024, 60)  # Redis's pubsub class
LOG_LEVELS = ("debug", "verbose", "notice", "warning")
# Redis's bounds for its integer settings (config.c)
INT_MAX = 2**31 - 1
UINT_MAX = 2**32 - 1
LLONG_MAX = 2**63 - 1
ULLONG_MAX = 2**64 - 1
PROTO_MAX_BULK_LEN_MIN = 1024 * 1024  # Redis refuses a smaller proto-max-bulk-len...
CLIENT_QUERY_BUFFER_LIMIT_MIN = 1024 * 1024  # ...and client-query-buffer-limit
# Redis's four levels on Python's scale: notice is INFO, and verbose, which Redis puts
# between debug and notice (client connects and disconnects), gets a level of its own.
VERBOSE = 15
logging.addLevelName(VERBOSE, "VERBOSE")
_LOG_LEVEL_MAP = {"debug": logging.DEBUG, "verbose": VERBOSE, "notice": logging.INFO, "warning": logging.WARNING}


def default_workers() -> int:
    """Half the cores, at least 1, at most 8.

    The writer and the load itself need CPU too. On 2 cores a second worker
    gained 5-12% at redis-benchmark -c 50 -P 1 and lost 10-20% at -P 16
    (bench/README.md), so one worker per two CPUs.
    """
    # the CPUs this process may use (a container's cpuset), not all of the host's
    return max(1, min(8, len(os.sched_getaffinity(0)) // 2))


@dataclass
class Config:
    port: int = DEFAULT_PORT
    bind: list[str] = field(default_factory=lambda: [DEFAULT_BIND])
    workers: int = field(default_factory=default_workers)
    dir: str = "."
    fsync: str = "everysec"
    loglevel: str = "notice"
    appendonly: bool = True
    appendfilename: str = "kvred.aof"
    auto_aof_rewrite_percentage: int = 100
    auto_aof_rewrite_min_size: int = 64 * 1024 * 1024
    graceful_timeout: float = GRACEFUL_TIMEOUT_S
    # security and limits (Redis's names and defaults unless noted)
    requirepass: str | None = None
    aclfile: str = ""  # ACL SAVE/LOAD's file, read at start when set (kvred/acl.py)
    acllog_max_len: int = 128  # ACL LOG entries kept
    protected_mode: bool = True
    maxclients: int = DEFAULT_MAXCLIENTS
    timeout: int = 0  # seconds a client may stay idle; 0 = forever
    proto_max_bulk_len: int = 512 * 1024 * 1024
    client_query_buffer_limit: int = 1024 * 1024 * 1024
    client_output_buffer_limit: int = DEFAULT_OUTPUT_BUFFER_LIMIT
    # client-output-buffer-limit pubsub: (hard, soft, seconds), Redis's default
    pubsub_output_buffer_limit: tuple[int, int, int] = DEFAULT_PUBSUB_OUTPUT_LIMIT
    notify_keyspace_events: int = 0  # flag bits (kvred/notify.py)
    databases: int = 16
    enable_debug_command: str = "no"  # Redis 7's default: DEBUG is refused
    track_key_access: bool = False  # OBJECT IDLETIME: costs throughput (kvred/keyspace.py)
    # ms a script may run before it is "busy": other clients get -BUSY, SCRIPT KILL works
    busy_reply_threshold: int = 5000
    # SLOWLOG and LATENCY (kvred/slowlog.py), read when a command ends
    slowlog_log_slower_than: int = 10000  # µs; negative: off, 0: every command
    slowlog_max_len: int = 128  # entries
    latency_monitor_threshold: int = 0  # ms; 0: the latency monitor is off
    latency_tracking: bool = True  # INFO latencystats
    latency_tracking_info_percentiles: tuple[float, ...] = (50.0, 99.0, 99.9)
    # the sizes up to which Redis keeps an aggregate compact: OBJECT ENCODING follows them
    hash_max_listpack_entries: int = 512
    hash_max_listpack_value: int = 64
    set_max_intset_entries: int = 512
    zset_max_listpack_entries: int = 128
    zset_max_listpack_value: int = 64
    list_max_listpack_size: int = -2
    list_compress_depth: int = 0
    hll_sparse_max_bytes: int = 3000
    # the config file read at start ("" if none): logged, INFO's config_file, and where
    # CONFIG REWRITE writes the running settings back, as in Redis
    config_file: str = ""
    # maxmemory and eviction (kvred/eviction.py): Redis's names, defaults and bounds
    maxmemory: int = 0  # bytes; 0: no limit
    maxmemory_policy: str = "noeviction"
    maxmemory_samples: int = 5
    maxmemory_eviction_tenacity: int = 10
    lfu_log_factor: int = 10
    lfu_decay_time: int = 1

    @property
    def aof_path(self) -> str:
        return os.path.join(self.dir, self.appendfilename)


def fail(message: str) -> NoReturn:
    """A bad setting: one line on stderr, exit code 2 (the unit's RestartPreventExitStatus)."""
    sys.stderr.write(f"kvred: error: {message}\n")
    sys.exit(2)


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see --help)")


class BadValue(argparse.ArgumentTypeError):
    """A value a setting refuses; `reason` is Redis's wording where Redis has the rule."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"{value!r}: {reason}")
        self.value = value
        self.reason = reason


# string2ll's grammar (no '+', no '_', no spaces inside); Python's int() is laxer
_INT_TEXT = re.compile(r"-?[0-9]+", re.ASCII)


def _int_between(minimum: int, maximum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if _INT_TEXT.fullmatch(text.strip()) is None:
            raise BadValue(text, "argument couldn't be parsed into an integer")
        value = int(text)
        if not minimum <= value <= maximum:
            raise BadValue(text, f"argument must be between {minimum} and {maximum} inclusive")
        return value

    return parse


_port = _int_between(1, 65535)  # Redis's port 0 means "no TCP listener"; kvred has nothing else
# One worker per slot of shared memory and per process: a typo like 99999999999 must not
# be a MemoryError or a fork storm. Client ids interleave the worker's slot (worker.py:
# id = seq * WORKERS_MAX + slot + 1), so this is also what keeps ids unique.
WORKERS_MAX = 64
_workers = _int_between(1, WORKERS_MAX)
# Redis allows INT_MAX; each kvred database is a few objects made at start-up, so a
# typo must not allocate millions of them.
DATABASES_MAX = 65536


def _fsync(text: str) -> str:
    value = text.strip().lower()
    if value == "none":
        value = "no"
    if value not in FSYNC_POLICIES:
        raise BadValue(text, "argument(s) must be one of the following: everysec, always, no")
    return value


def _percentiles(text: str) -> tuple[float, ...]:
    """latency-tracking-info-percentiles: numbers from 0 to 100 separated by spaces (may be none)."""
    try:
        values = tuple(float(word) for word in text.split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"Invalid latency-tracking-info-percentiles parameters: {text}") from None
    if any(not 0.0 <= v <= 100.0 for v in values):
        raise argparse.ArgumentTypeError(f"Invalid latency-tracking-info-percentiles parameters: {text}")
    return values


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise BadValue(text, "argument(s) must be one of the following: " + ", ".join(choices))
        return value

    return parse


_loglevel = _one_of(*LOG_LEVELS)
# Redis's enum order, which its CONFIG SET error lists
MAXMEMORY_POLICIES = ("volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
                      "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction")


def _yes_no(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("yes", "no"):
        raise BadValue(text, "argument must be 'yes' or 'no'")
    return value == "yes"


_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}
_SIZE_TEXT = re.compile(r"([0-9]+)([a-z]*)", re.ASCII)


def _parse_size(text: str) -> int | None:
    """Redis's memtoull: 64mb, 1gb, 100k, plain bytes (units are case-insensitive)."""
    m = _SIZE_TEXT.fullmatch(text.strip().lower())
    if m is None or m.group(2) not in _SIZE_UNITS:
        return None
    return int(m.group(1)) * _SIZE_UNITS[m.group(2)]


def _size_between(minimum: int, maximum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _parse_size(text)
        if value is None:
            raise BadValue(text, "argument must be a memory value")
        if not minimum <= value <= maximum:
            raise BadValue(text, f"argument must be between {minimum} and {maximum} inclusive")
        return value

    return parse


_any_size = _size_between(0, LLONG_MAX)


_OUTPUT_BUFFER_CLASSES = ("normal", "replica", "slave", "pubsub")


def _output_buffer_limit(text: str) -> dict[str, tuple[int, int, int]]:
    """kvred's form, one size (the normal class's hard limit); or Redis's
    `<class> <hard> <soft> <seconds> [<class> ...]`, as {class: (hard, soft, seconds)}.

    kvred uses the normal class's hard limit and the pubsub class; replica classes
    are checked as Redis checks them and ignored (kvred has no replicas).
    """
    words = text.split()
    if len(words) == 1:
        value = _parse_size(words[0])
        if value is None or value > ULLONG_MAX:
            raise BadValue(text, "argument must be a memory value (e.g. 256mb) or 'normal <hard> <soft> <seconds>'")
        return {"normal": (value, 0, 0)}
    if not words or len(words) % 4:
        raise BadValue(text, "Wrong number of arguments in buffer limit configuration.")
    classes = {}
    for i in range(0, len(words), 4):
        klass, seconds = words[i].lower(), words[i + 3]
        hard, soft = _parse_size(words[i + 1]), _parse_size(words[i + 2])
        if klass not in _OUTPUT_BUFFER_CLASSES:
            raise BadValue(text, "Invalid client class specified in buffer limit configuration.")
        sizes_ok = hard is not None and soft is not None and max(hard, soft) <= ULLONG_MAX
        if not sizes_ok or _INT_TEXT.fullmatch(seconds) is None or not 0 <= int(seconds) <= INT_MAX:
            raise BadValue(text, "Error in hard, soft or soft_seconds setting in buffer limit configuration.")
        assert hard is not None and soft is not None
        classes[klass] = (hard, soft, int(seconds))
    return classes


def apply_output_limits(target: object, classes: dict[str, tuple[int, int, int]]) -> None:
    """Each client-output-buffer-limit value changes only the classes it names (Redis
    merges class by class): onto a Config or argparse's namespace."""
    if "normal" in classes:
        target.client_output_buffer_limit = classes["normal"][0]  # type: ignore[attr-defined]
    if "pubsub" in classes:
        target.pubsub_output_buffer_limit = classes["pubsub"]  # type: ignore[attr-defined]


class _MergeOutputLimits(argparse.Action):
    """A client-output-buffer-limit line, merged class by class."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        assert isinstance(values, dict) and self.dest == "client_output_buffer_limit"
        apply_output_limits(namespace, values)


def _bind(text: str) -> list[str]:
    """IPv4 and IPv6 literals, space-separated; no names (nothing to resolve them with at boot)."""
    addresses = text.split()
    if not addresses:
        raise BadValue(text, "no address to listen on")
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise BadValue(address, "not an IPv4 or IPv6 address") from None
    return addresses


def _directory(text: str) -> str:
    """An existing directory. Whether kvred can write there is check_startup()'s question."""
    if not text:
        raise BadValue(text, "data directory can't be empty")
    path = os.path.abspath(text)
    if not os.path.exists(path):
        raise BadValue(text, "data directory does not exist")
    if not os.path.isdir(path):
        raise BadValue(text, "Not a directory")
    return path


def _appendfilename(text: str) -> str:
    # Redis: a file name inside `dir`, never a path
    if not text:
        raise BadValue(text, "appendfilename can't be empty")
    if "/" in text or "\\" in text or text in (".", "..") or "\0" in text:
        raise BadValue(text, "appendfilename can't be a path, just a filename")
    return text


# (name, default, parser): Redis 7.0's compact-encoding thresholds
ENCODING_SETTINGS: list[tuple[str, int, Callable[[str], int]]] = [
    ("hash-max-listpack-entries", 512, _int_between(0, LLONG_MAX)),
    ("hash-max-listpack-value", 64, _any_size),
    ("set-max-intset-entries", 512, _int_between(0, LLONG_MAX)),
    ("zset-max-listpack-entries", 128, _int_between(0, LLONG_MAX)),
    ("zset-max-listpack-value", 64, _any_size),
    ("list-max-listpack-size", -2, _int_between(-(2**31), INT_MAX)),
    ("list-compress-depth", 0, _int_between(0, INT_MAX)),
    ("hll-sparse-max-bytes", 3000, _any_size),
]
# Redis 7.0's older names for them, which CONFIG GET also answers
ENCODING_ALIASES = {
    "hash-max-ziplist-entries": "hash-max-listpack-entries",
    "hash-max-ziplist-value": "hash-max-listpack-value",
    "zset-max-ziplist-entries": "zset-max-listpack-entries",
    "zset-max-ziplist-value": "zset-max-listpack-value",
    "list-max-ziplist-size": "list-max-listpack-size",
}


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="kvred",
        usage="kvred [CONFIG_FILE] [--flag value ...]",
        description="kvred: a Redis-compatible key-value server (RESP2/RESP3) with an append-only file.",
        epilog="Every --some-flag can also be set as the environment variable KVRED_SOME_FLAG "
        "(KVRED_PASSWORD for --requirepass); a config file overrides the environment and flags "
        "override both. Subcommand: 'kvred check-aof [--fix] FILE' checks (and repairs) an append-only file.",
        allow_abbrev=False,  # a mistyped flag is an error, not some other flag
    )
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help="TCP port (default %(default)s)")
    parser.add_argument(
        "--bind",
        type=_bind,
        default=DEFAULT_BIND,
        help="IPv4/IPv6 addresses to listen on, space-separated (default %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default=default_workers(),
        help="acceptor processes (default: half the CPU cores, 1 to 8; here %(default)s)",
    )
    parser.add_argument("--dir", type=_directory, default=".", help="data directory (default: current)")
    parser.add_argument(
        "--appendfsync",
        "--fsync",
        dest="fsync",
        type=_fsync,
        default="everysec",
        help="AOF fsync policy: always, everysec or no/none (default everysec)",
    )
    parser.add_argument(
        "--appendonly", type=_yes_no, default=True, help="keep an append-only file: yes or no (default yes)"
    )
    parser.add_argument(
        "--appendfilename",
        type=_appendfilename,
        default="kvred.aof",
        help="AOF file name inside --dir (default %(default)s)",
    )
    parser.add_argument(
        "--auto-aof-rewrite-percentage",
        type=_int_between(0, INT_MAX),
        default=100,
        help="rewrite the AOF when it grew by this %% since the last rewrite; 0 disables (default %(default)s)",
    )
    parser.add_argument(
        "--auto-aof-rewrite-min-size",
        type=_any_size,
        default=64 * 1024 * 1024,
        help="...and is at least this big (default 64mb)",
    )
    parser.add_argument("--aclfile", default="", help="file of ACL users (ACL SAVE / ACL LOAD; default: none)")
    parser.add_argument("--acllog-max-len", type=_int_between(0, LLONG_MAX), default=128,
                        help="ACL LOG entries kept (default 128)")
    parser.add_argument(
        "--requirepass",
        default=None,
        help="password clients must send with AUTH (env KVRED_PASSWORD keeps it out of ps; default: none)",
    )
    parser.add_argument(
        "--protected-mode",
        type=_yes_no,
        default=True,
        help="without a password, refuse clients that are not on loopback: yes or no (default yes)",
    )
    parser.add_argument(
        "--enable-debug-command",
        type=_one_of("yes", "local", "no"),
        default="no",
        help="allow DEBUG: yes, local (loopback clients only) or no (default no, as Redis)",
    )
    parser.add_argument(
        "--busy-reply-threshold",
        "--lua-time-limit",
        dest="busy_reply_threshold",
        type=_int_between(0, LLONG_MAX),
        default=5000,
        help="ms a Lua script or function may run before other clients get -BUSY and SCRIPT KILL "
        "or FUNCTION KILL can stop it; 0: never (default 5000, as Redis; also spelled --lua-time-limit)",
    )
    parser.add_argument(
        "--slowlog-log-slower-than",
        type=_int_between(-LLONG_MAX - 1, LLONG_MAX),
        default=10000,
        help="log commands that run at least this many microseconds in SLOWLOG; negative: none, 0: all "
        "(default 10000, as Redis)",
    )
    parser.add_argument(
        "--slowlog-max-len", type=_int_between(0, LLONG_MAX), default=128,
        help="entries SLOWLOG keeps (default 128, as Redis)",
    )
    parser.add_argument(
        "--latency-monitor-threshold", type=_int_between(0, LLONG_MAX), default=0,
        help="ms from which LATENCY records an event; 0: off (default 0, as Redis)",
    )
    parser.add_argument(
        "--latency-tracking", type=_yes_no, default=True,
        help="INFO latencystats: per-command latency percentiles, yes or no (default yes, as Redis)",
    )
    parser.add_argument(
        "--latency-tracking-info-percentiles", type=_percentiles, default=(50.0, 99.0, 99.9),
        help='the percentiles INFO latencystats shows, e.g. "50 99 99.9" (the default, as Redis)',
    )
    parser.add_argument(
        "--track-key-access",
        type=_yes_no,
        default=False,
        help="record each key's last access, for OBJECT IDLETIME: yes or no (default no; "
        "it costs 8-13%% of throughput when the writer is the limit)",
    )
    parser.add_argument(
        "--maxmemory",
        type=_any_size,
        default=0,
        help="evict keys (or refuse writes, per --maxmemory-policy) once the dataset passes this, "
        "Redis's units (100mb, 1gb); 0: no limit (default)",
    )
    parser.add_argument(
        "--maxmemory-policy",
        type=_one_of(*MAXMEMORY_POLICIES),
        default="noeviction",
        help="what to do at maxmemory: " + ", ".join(MAXMEMORY_POLICIES) + " (default noeviction)",
    )
    parser.add_argument(
        "--maxmemory-samples",
        type=_int_between(1, INT_MAX),
        default=5,
        help="keys sampled per eviction pick (default 5, as Redis)",
    )
    parser.add_argument(
        "--maxmemory-eviction-tenacity",
        type=_int_between(0, 100),
        default=10,
        help="how long one command may spend evicting, 0-100; 100: until under the limit (default 10)",
    )
    parser.add_argument(
        "--lfu-log-factor",
        type=_int_between(0, INT_MAX),
        default=10,
        help="LFU counter's logarithm factor (default 10, as Redis)",
    )
    parser.add_argument(
        "--lfu-decay-time",
        type=_int_between(0, INT_MAX),
        default=1,
        help="minutes of idleness per decrement of a key's LFU counter; 0: never (default 1, as Redis)",
    )
    older_names = {name: f"--{alias}" for alias, name in ENCODING_ALIASES.items()}
    for name, default, kind in ENCODING_SETTINGS:
        parser.add_argument(
            f"--{name}",
            *[older_names[name]] if name in older_names else [],
            type=kind,
            default=default,
            help=f"Redis's {name} (default {default}): the size up to which Redis keeps such a value compact, "
            "which OBJECT ENCODING reports",
        )
    parser.add_argument(
        "--databases",
        type=_int_between(1, DATABASES_MAX),
        default=16,
        help="number of databases, SELECT 0 to N-1 (default %(default)s)",
    )
    parser.add_argument(
        "--maxclients",
        type=_int_between(1, UINT_MAX),
        default=DEFAULT_MAXCLIENTS,
        help="most clients at once (default %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=_int_between(0, INT_MAX),
        default=0,
        help="close clients idle this many seconds; 0 = never (default 0)",
    )
    parser.add_argument(
        "--proto-max-bulk-len",
        type=_size_between(PROTO_MAX_BULK_LEN_MIN, LLONG_MAX),
        default=512 * 1024 * 1024,
        help="largest argument accepted, at least 1mb (default 512mb)",
    )
    parser.add_argument(
        "--client-query-buffer-limit",
        type=_size_between(CLIENT_QUERY_BUFFER_LIMIT_MIN, LLONG_MAX),
        default=1024 * 1024 * 1024,
        help="a client whose unparsed input passes this is closed, at least 1mb (default 1gb)",
    )
    parser.add_argument(
        "--client-output-buffer-limit",
        type=_output_buffer_limit,
        action=_MergeOutputLimits,
        default=DEFAULT_OUTPUT_BUFFER_LIMIT,
        metavar="SIZE|'normal HARD SOFT SECONDS'",
        help="a client whose unread replies pass this is closed; 0 = no limit (default 256mb)",
    )
    parser.add_argument(
        "--loglevel",
        type=_loglevel,
        default="notice",
        metavar="{" + ",".join(LOG_LEVELS) + "}",
        help="log verbosity (default %(default)s)",
    )
    parser.add_argument(
        "--notify-keyspace-events",
        type=_notify_flags,
        default=0,
        metavar="CLASSES",
        help="keyspace events to publish, Redis's letters (e.g. KEA, Ex); empty: none (default)",
    )
    parser.set_defaults(pubsub_output_buffer_limit=DEFAULT_PUBSUB_OUTPUT_LIMIT)
    return parser


def _notify_flags(text: str) -> int:
    flags = parse_flags(text)
    if flags is None:
        raise BadValue(text, "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
    return flags


def flag_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Setting name (the flag without `--`) -> its argparse action."""
    return {
        option[2:]: action
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }


def _check_value(action: argparse.Action, value: str) -> None:
    """Convert `value` as argparse will, now, so that an error can say where the value came from."""
    if callable(action.type):
        action.type(value)


# Settings that take several words on one line, as Redis's MULTI_ARG configs
MULTI_ARG_SETTINGS = ("bind", "client-output-buffer-limit")


class ConfigError(Exception):
    """A bad config file or environment variable; the message is the whole error line."""


def _printable(line: bytes) -> str:
    text = line.decode(errors="backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _config_line_token(settings: dict[str, argparse.Action], line: bytes) -> str | None:
    """One redis.conf line as one `--name=value` token (None: nothing on it); ValueError(reason)."""
    words = split_inline_args(line)
    if words is None:
        raise ValueError("Unbalanced quotes in configuration line")
    if not words:
        return None  # only white space that strip() keeps (\v, \f): Redis skips the line too
    try:
        name, *values = (word.decode() for word in words)
    except UnicodeDecodeError:
        raise ValueError("not valid UTF-8") from None
    name = name.lower().replace("_", "-")
    action = settings.get(name)
    if action is None:
        raise ValueError("Bad directive or wrong number of arguments")
    if len(values) != 1 and not (values and name in MULTI_ARG_SETTINGS):
        raise ValueError("wrong number of arguments")
    value = " ".join(values)
    try:
        _check_value(action, value)
    except BadValue as exc:
        raise ValueError(exc.reason) from None
    # `--name=value`: a value that starts with '-' is still a value
    return f"--{name}={value}"


def read_config_file(path: str, parser: argparse.ArgumentParser) -> list[str]:
    """A redis.conf-style file as flag tokens, read as redis-server reads its file.

    One `name value...` per line, the names being the flags without `--` (`port 6380`,
    `bind 127.0.0.1 ::1`, `appendfsync always`); words split as Redis splits them
    (sdssplitargs: double or single quotes, \\n and \\xHH escapes). A `#` starts a
    comment only at the start of a line: `appendfsync always # fast` has three
    arguments too many, and is an error, as in Redis. The tokens go before the
    command-line flags, so flags win. ConfigError names the file, line number and line.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    settings = flag_actions(parser)
    tokens: list[str] = []
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        line = raw.strip(b" \t\r\n")
        if not line or line.startswith(b"#"):
            continue
        try:
            token = _config_line_token(settings, line)
        except ValueError as exc:
            raise ConfigError(f"{path}:{lineno}: '{_printable(line)}': {exc}") from None
        if token is not None:
            tokens.append(token)
    return tokens


ENV_PREFIX = "KVRED_"
ENV_ALIASES = {"KVRED_PASSWORD": "requirepass"}  # the name Docker users look for


def environment_tokens(parser: argparse.ArgumentParser) -> list[str]:
    """Every flag --some-name can also come from KVRED_SOME_NAME (empty = unset).

    ConfigError names the variable whose value is bad."""
    settings = flag_actions(parser)
    variables = [(ENV_PREFIX + name.upper().replace("-", "_"), name) for name in settings]
    tokens: list[str] = []
    for variable, name in variables + list(ENV_ALIASES.items()):
        value = os.environ.get(variable, "")
        if not value:
            continue
        try:
            _check_value(settings[name], value)
        except BadValue as exc:
            raise ConfigError(f"environment variable {variable}={value!r}: {exc.reason}") from None
        tokens.append(f"--{name}={value}")
    return tokens


def parse_args(argv: list[str]) -> Config:
    parser = build_parser()
    config_file = ""
    try:
        tokens = environment_tokens(parser)
        if argv and not argv[0].startswith("-"):
            # `kvred /etc/kvred.conf [flags]`, as `redis-server /etc/redis.conf`
            path, argv = argv[0], argv[1:]
            tokens += read_config_file(path, parser)
            config_file = os.path.abspath(path)
    except ConfigError as exc:
        fail(str(exc))
    args = parser.parse_args(tokens + argv)
    return Config(
        config_file=config_file,
        port=args.port,
        bind=args.bind,
        workers=args.workers,
        dir=args.dir,
        fsync=args.fsync,
        loglevel=args.loglevel,
        appendonly=args.appendonly,
        appendfilename=args.appendfilename,
        auto_aof_rewrite_percentage=args.auto_aof_rewrite_percentage,
        auto_aof_rewrite_min_size=args.auto_aof_rewrite_min_size,
        requirepass=args.requirepass or None,  # an empty password means none, as in Redis
        aclfile=args.aclfile,
        acllog_max_len=args.acllog_max_len,
        protected_mode=args.protected_mode,
        maxclients=args.maxclients,
        timeout=args.timeout,
        proto_max_bulk_len=args.proto_max_bulk_len,
        client_query_buffer_limit=args.client_query_buffer_limit,
        client_output_buffer_limit=args.client_output_buffer_limit,
        pubsub_output_buffer_limit=args.pubsub_output_buffer_limit,
        notify_keyspace_events=args.notify_keyspace_events,
        databases=args.databases,
        enable_debug_command=args.enable_debug_command,
        track_key_access=args.track_key_access,
        busy_reply_threshold=args.busy_reply_threshold,
        maxmemory=args.maxmemory,
        maxmemory_policy=args.maxmemory_policy,
        maxmemory_samples=args.maxmemory_samples,
        maxmemory_eviction_tenacity=args.maxmemory_eviction_tenacity,
        lfu_log_factor=args.lfu_log_factor,
        lfu_decay_time=args.lfu_decay_time,
        slowlog_log_slower_than=args.slowlog_log_slower_than,
        slowlog_max_len=args.slowlog_max_len,
        latency_monitor_threshold=args.latency_monitor_threshold,
        latency_tracking=args.latency_tracking,
        latency_tracking_info_percentiles=args.latency_tracking_info_percentiles,
        **{name.replace("-", "_"): getattr(args, name.replace("-", "_")) for name, _d, _k in ENCODING_SETTINGS},
    )


def check_startup(config: Config) -> None:
    """The start-up checks that need the filesystem, run by the supervisor before it forks.

    With --appendonly yes the AOF must open for reading and appending (created if it is
    missing, as Redis creates its AOF): this is the writer's own open, so it also catches
    a directory kvred may not write to (a root-owned bind mount in a container, /proc),
    which os.access() would not for root. With --appendonly no nothing is written, so
    nothing is required. A failure is one line on stderr and exit code 2, as a bad flag.
    (A busy or missing address stays exit 1 at listen time: it can be transient.)
    """
    if not config.appendonly:
        return
    path = config.aof_path
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        fail(f"can't open the append-only file {path} for appending as uid {os.geteuid()}: {exc.strerror or exc}")
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
    if not regular:
        fail(f"the append-only file {path} is not a regular file")


def set_log_level(level: str) -> None:
    """loglevel changed at runtime (CONFIG SET)."""
    logging.getLogger().setLevel(_LOG_LEVEL_MAP[level])


def plural(count: int, word: str) -> str:
    """`1 worker`, `2 workers`: a count for a log line."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def describe_exit(code: int) -> str:
    """A child's end as an operator needs it: its exit code, or the signal that killed it."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


def setup_logging(level: str, role: str) -> None:
    """Log lines as Redis writes them: 'pid:role date level message', on stderr."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(process)d:{role} %(asctime)s.%(msecs)03d %(levelname)s %(message)s", "%d %b %Y %H:%M:%S")
    )
    root.addHandler(handler)
    root.setLevel(_LOG_LEVEL_MAP[level])
