"""DEBUG (Redis's debug.c), the subcommands tests rely on: SET-ACTIVE-EXPIRE, SLEEP, ERROR,
OBJECT, RELOAD.

As in Redis 7, DEBUG is refused unless `--enable-debug-command` is `yes`, or `local`
and the client is on a loopback address. DEBUG SLEEP stops the writer, and so every
client, for that long: that is what it is for.
"""

from __future__ import annotations

import ipaddress
import re
import time

from .. import resp
from ..resp import encode_command
from ..valuetypes import string_as_integer, value_type
from .base import Context, command, error_quoting
from .object import OBJ_SHARED_INTEGERS, OBJ_SHARED_REFCOUNT

__all__ = ["debug_allowed", "ERR_DEBUG_NOT_ALLOWED"]

ERR_DEBUG_NOT_ALLOWED = (
    b"-ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it "
    b"from a local connection, otherwise you need to set this option in the configuration file, and then "
    b"restart the server.\r\n"
)
LRU_CLOCK_MAX = (1 << 24) - 1  # Redis's LRU clock: seconds, 24 bits
MAX_SLEEP_S = 3600.0  # one client may not freeze the server longer than this
_HELP = [
    b"DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"SET-ACTIVE-EXPIRE <0|1>",
    b"    Setting it to 0 disables expiring keys in background when they are not",
    b"    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    b"    default.",
    b"ERROR <string>",
    b"    Return a Redis protocol error with <string> as message. Useful for clients",
    b"    unit tests to simulate Redis errors.",
    b"OBJECT <key>",
    b"    Show low level info about `key` and associated value.",
    b"RELOAD [option ...]",
    b"    Save the RDB on disk and reload it back to memory. kvred: the dataset is written as",
    b"    an AOF snapshot and loaded back (no RDB); the options are accepted and ignored.",
    b"SLEEP <seconds>",
    b"    Stop the server for <seconds>. Decimals allowed.",
    b"HELP",
    b"    Prints this help.",
]


def _debug_object(ctx: Context, key: bytes) -> bytes:
    """Redis's line, with what kvred knows: the value's address (the Python object),
    refcount and encoding as OBJECT shows them, serializedlength = the bytes the AOF
    rewrite writes for the key (kvred has no RDB), the LRU clock of its last access."""
    keyspace = ctx.keyspace
    value = keyspace.peek(key, miss_event=False)
    if value is None:
        return b"-ERR no such key\r\n"
    kind = value_type(value)
    encoding = b"raw" if kind is None else kind.encoding(value)
    number = string_as_integer(value)
    refcount = OBJ_SHARED_REFCOUNT if number is not None and 0 <= number < OBJ_SHARED_INTEGERS else 1
    commands = [[b"SET", key, value]] if kind is None else kind.rewrite(key, value)
    serialized = sum(len(encode_command(cmd)) for cmd in commands)
    idle = keyspace.idle_seconds(key) if keyspace.track else 0
    lru = (int(time.time()) - idle) & LRU_CLOCK_MAX
    return resp.simple(b"Value at:0x%x refcount:%d encoding:%s serializedlength:%d lru:%d lru_seconds_idle:%d" % (
        id(value), refcount, encoding, serialized, lru, idle))


def debug_allowed(setting: str, addr: str) -> bool:
    """Redis's enable-debug-command rule for a client at `addr` ("host:port", "[v6]:port");
    the writer checks it when DEBUG runs, the worker when MULTI would queue it."""
    if setting == "yes":
        return True
    if setting != "local":
        return False
    host = addr.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _strtod(text: bytes) -> float:
    """strtod's leading number, 0.0 when there is none (as Redis reads DEBUG SLEEP's)."""
    for end in range(len(text), 0, -1):
        try:
            return float(text[:end])
        except ValueError:
            continue
    return 0.0


_ATOI = re.compile(rb"[ \t\n\v\f\r]*([+-]?[0-9]+)")


def _atoi_is_nonzero(text: bytes) -> bool:
    """C's atoi(text) != 0: a leading integer after white space, 0 when there is none."""
    match = _ATOI.match(text)
    return match is not None and match[1].lstrip(b"+-").strip(b"0") != b""  # no int(): any length


@command("debug", -2, "admin noscript loading stale protected")
def debug(ctx: Context, argv: list[bytes]) -> bytes:
    if not debug_allowed(ctx.config.enable_debug_command, ctx.client.addr):
        return ERR_DEBUG_NOT_ALLOWED
    sub = argv[1].lower()
    if sub == b"help":
        return resp.array([resp.simple(line) for line in _HELP])
    if sub == b"set-active-expire" and len(argv) == 3:
        ctx.databases.active_expire_enabled = _atoi_is_nonzero(argv[2])
        return resp.OK
    if sub == b"error" and len(argv) == 3:
        # any error reply a test needs (redis-py fakes a LOADING error with it), on one line
        return b"-" + argv[2].replace(b"\r", b" ").replace(b"\n", b" ") + b"\r\n"
    if sub == b"object" and len(argv) == 3:
        return _debug_object(ctx, argv[2])
    if sub == b"reload":
        return ctx.server.debug_reload()
    if sub == b"sleep" and len(argv) == 3:
        seconds = _strtod(argv[2][:64])
        time.sleep(min(max(seconds, 0.0), MAX_SLEEP_S))
        return resp.OK
    # Redis's addReplySubcommandSyntaxError: the subcommand as a C string, at most 128 bytes
    return error_quoting("unknown subcommand or wrong number of arguments for '", argv[1].split(b"\0", 1)[0][:128],
                         "'. Try DEBUG HELP.")
