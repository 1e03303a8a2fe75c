"""Command-line flags, config file, environment and the resulting `Config`.

Precedence: built-in default < environment < config file (`kvred FILE`) <
command-line flag. Every flag `--some-name` can come from the environment as
`KVRED_SOME_NAME` (KVRED_FSYNC, KVRED_WORKERS, ...; KVRED_PASSWORD for
--requirepass).
Bad values produce one line on stderr and exit code 2 (argparse's convention),
never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Config", "parse_args", "setup_logging", "default_workers", "FSYNC_POLICIES"]

DEFAULT_PORT = 6380
DEFAULT_BIND = "127.0.0.1"
FSYNC_POLICIES = ("always", "everysec", "no")
GRACEFUL_TIMEOUT_S = 8.0  # SIGTERM to exit, at most; below the 10 s users and systemd expect
DEFAULT_MAXCLIENTS = 10000
# Redis leaves normal clients unlimited (0); kvred disconnects a client whose unread
# replies pass this, so a client that never reads cannot exhaust memory.
DEFAULT_OUTPUT_BUFFER_LIMIT = 256 * 1024 * 1024
LOG_LEVELS = ("debug", "verbose", "notice", "warning")
_LOG_LEVEL_MAP = {"debug": logging.DEBUG, "verbose": logging.INFO, "notice": logging.INFO, "warning": logging.WARNING}


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
    protected_mode: bool = True
    maxclients: int = DEFAULT_MAXCLIENTS
    timeout: int = 0  # seconds a client may stay idle; 0 = forever
    proto_max_bulk_len: int = 512 * 1024 * 1024
    client_query_buffer_limit: int = 1024 * 1024 * 1024
    client_output_buffer_limit: int = DEFAULT_OUTPUT_BUFFER_LIMIT

    @property
    def aof_path(self) -> str:
        return os.path.join(self.dir, self.appendfilename)


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(2)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"port {value} out of range 1-65535")
    return value


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be at least {minimum}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _fsync(text: str) -> str:
    value = text.strip().lower()
    if value == "none":
        value = "no"
    if value not in FSYNC_POLICIES:
        raise argparse.ArgumentTypeError(f"invalid fsync policy {text!r}: choose always, everysec or no")
    return value


def _yes_no(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("yes", "no"):
        raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")
    return value == "yes"


_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}


def _size(text: str) -> int:
    """Redis's memory units: 64mb, 1gb, 100k, plain bytes."""
    value = text.strip().lower()
    digits = value.rstrip("kmgb")
    unit = value[len(digits) :]
    if not digits.isdigit() or unit not in _SIZE_UNITS:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (e.g. 64mb)")
    return int(digits) * _SIZE_UNITS[unit]


def _directory(text: str) -> str:
    path = os.path.abspath(text)
    if not os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"data directory {text!r} does not exist")
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="kvred",
        usage="kvred [CONFIG_FILE] [--flag value ...]",
        description="kvred: a Redis-compatible key-value server (RESP2/RESP3) with an append-only file.",
        epilog="Every --some-flag can also be set as the environment variable KVRED_SOME_FLAG "
        "(KVRED_PASSWORD for --requirepass); a config file overrides the environment and flags "
        "override both. Subcommand: 'kvred check-aof [--fix] FILE' checks (and repairs) an append-only file.",
    )
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help="TCP port (default %(default)s)")
    parser.add_argument(
        "--bind",
        default=DEFAULT_BIND,
        help="addresses to listen on, space-separated (default %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=default_workers(),
        help="acceptor processes (default: half the CPU cores, 1 to 8; here %(default)s)",
    )
    parser.add_argument("--dir", type=_directory, default=".", help="data directory (default: current)")
    parser.add_argument(
        "--fsync",
        type=_fsync,
        default="everysec",
        help="AOF fsync policy: always, everysec or no/none (default everysec)",
    )
    parser.add_argument(
        "--appendonly", type=_yes_no, default=True, help="keep an append-only file: yes or no (default yes)"
    )
    parser.add_argument(
        "--appendfilename", default="kvred.aof", help="AOF file name inside --dir (default %(default)s)"
    )
    parser.add_argument(
        "--auto-aof-rewrite-percentage",
        type=int,
        default=100,
        help="rewrite the AOF when it grew by this %% since the last rewrite; 0 disables (default %(default)s)",
    )
    parser.add_argument(
        "--auto-aof-rewrite-min-size",
        type=_size,
        default=64 * 1024 * 1024,
        help="...and is at least this big (default 64mb)",
    )
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
        "--maxclients",
        type=_positive_int,
        default=DEFAULT_MAXCLIENTS,
        help="most clients at once (default %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=_non_negative_int,
        default=0,
        help="close clients idle this many seconds; 0 = never (default 0)",
    )
    parser.add_argument(
        "--proto-max-bulk-len", type=_size, default=512 * 1024 * 1024, help="largest argument accepted (default 512mb)"
    )
    parser.add_argument(
        "--client-query-buffer-limit",
        type=_size,
        default=1024 * 1024 * 1024,
        help="a client whose unparsed input passes this is closed (default 1gb)",
    )
    parser.add_argument(
        "--client-output-buffer-limit",
        type=_size,
        default=DEFAULT_OUTPUT_BUFFER_LIMIT,
        help="a client whose unread replies pass this is closed; 0 = no limit (default 256mb)",
    )
    parser.add_argument("--loglevel", choices=LOG_LEVELS, default="notice", help="log verbosity (default %(default)s)")
    return parser


def read_config_file(path: str) -> list[str]:
    """A redis.conf-style file as flag tokens: `name value...` per line, `#` comments.

    Names are the flags without `--` (`port 6380`, `fsync always`, `bind 127.0.0.1 ::1`);
    a value may be double-quoted. The tokens go before the command-line flags, so flags win.
    """
    tokens: list[str] = []
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            try:
                words = shlex.split(line)
            except ValueError as exc:
                raise ConfigFileError(f"{path}:{lineno}: {exc}") from None
            name, values = words[0].lower().replace("_", "-"), words[1:]
            if not values:
                raise ConfigFileError(f"{path}:{lineno}: '{name}' needs a value")
            # several values (bind) are one space-separated flag value
            tokens += [f"--{name}", " ".join(values)]
    return tokens


class ConfigFileError(Exception):
    pass


ENV_PREFIX = "KVRED_"
ENV_ALIASES = {"KVRED_PASSWORD": "--requirepass"}  # the name Docker users look for


def environment_tokens(parser: argparse.ArgumentParser) -> list[str]:
    """Every flag --some-name can also come from KVRED_SOME_NAME (empty = unset)."""
    tokens: list[str] = []
    for action in parser._actions:
        for option in action.option_strings:
            if not option.startswith("--") or option == "--help":
                continue
            value = os.environ.get(ENV_PREFIX + option[2:].upper().replace("-", "_"), "")
            if value:
                tokens += [option, value]
    for name, option in ENV_ALIASES.items():
        if os.environ.get(name):
            tokens += [option, os.environ[name]]
    return tokens


def parse_args(argv: list[str]) -> Config:
    parser = build_parser()
    if argv and not argv[0].startswith("-"):
        # `kvred /etc/kvred.conf [flags]`, as `redis-server /etc/redis.conf`
        path, argv = argv[0], argv[1:]
        try:
            argv = read_config_file(path) + argv
        except OSError as exc:
            parser.error(f"cannot read config file {path}: {exc.strerror}")
        except ConfigFileError as exc:
            parser.error(f"bad config file line {exc}")
    args = parser.parse_args(environment_tokens(parser) + argv)
    return Config(
        port=args.port,
        bind=args.bind.split(),
        workers=args.workers,
        dir=args.dir,
        fsync=args.fsync,
        loglevel=args.loglevel,
        appendonly=args.appendonly,
        appendfilename=args.appendfilename,
        auto_aof_rewrite_percentage=args.auto_aof_rewrite_percentage,
        auto_aof_rewrite_min_size=args.auto_aof_rewrite_min_size,
        requirepass=args.requirepass or None,  # an empty password means none, as in Redis
        protected_mode=args.protected_mode,
        maxclients=args.maxclients,
        timeout=args.timeout,
        proto_max_bulk_len=args.proto_max_bulk_len,
        client_query_buffer_limit=args.client_query_buffer_limit,
        client_output_buffer_limit=args.client_output_buffer_limit,
    )


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
