"""String commands: GET, SET and friends, counters, ranges, MGET/MSET.

A string value is `bytes` as SET stored it, or a `bytearray` once APPEND or
SETRANGE changed it: those modify it in place with amortised growth, as
Redis's sds strings do (a 64 MB string took 15 s for 200 SETRANGEs when each
copied it, and 1024 APPENDs were quadratic). Every reader accepts both
(`_STRING_TYPES`). A value of any other type makes these commands answer
WRONGTYPE, as in Redis.
"""

from __future__ import annotations

import time
from typing import Any

from .. import resp
from .base import (
    ERR_NOT_FLOAT,
    ERR_NOT_INT,
    ERR_OVERFLOW,
    ERR_SYNTAX,
    ERR_WRONGTYPE,
    ReplyTooLarge,
    command,
    int_arg,
    wrong_arity,
)
from .longdouble import add_long_double, format_long_double, parse_long_double

__all__: list[str] = []

OK = resp.OK
ZERO = b":0\r\n"
ONE = b":1\r\n"
EMPTY_BULK = b"$0\r\n\r\n"
ERR_STRING_TOO_LONG = b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"
ERR_FLOAT_RESULT = b"-ERR increment would produce NaN or Infinity\r\n"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_STRING_TYPES = (bytes, bytearray)


def _too_long(ctx: Any, size: int) -> bool:
    """Redis's checkStringLength: a string may not outgrow proto-max-bulk-len (the AOF
    being loaded is obeyed whatever the setting is now)."""
    return size > ctx.config.proto_max_bulk_len and not ctx.loading


@command("get", 2, "readonly fast", (1, 1, 1))
def get(ctx: Any, argv: list[bytes]) -> bytes:
    value = ctx.db.get(argv[1])
    if value is None:
        return ctx.null
    if type(value) is not bytes and type(value) is not bytearray:
        return ERR_WRONGTYPE
    return b"$%d\r\n%b\r\n" % (len(value), value)  # type: ignore[str-format]  # %b takes a bytearray too


# SET's and GETEX's options, as Redis's OBJ_* flags.
SET_NX, SET_XX, SET_GET, SET_KEEPTTL, SET_PERSIST, SET_EX, SET_PX, SET_EXAT, SET_PXAT = (1 << i for i in range(9))
SET_EXPIRE = SET_EX | SET_PX | SET_EXAT | SET_PXAT
# option -> (its flag, the flags it may not be combined with, takes a value, SET's / GETEX's)
_STRING_OPTIONS: dict[bytes, tuple[int, int, bool, bool]] = {
    b"nx": (SET_NX, SET_XX, False, True),
    b"xx": (SET_XX, SET_NX, False, True),
    b"get": (SET_GET, 0, False, True),
    b"keepttl": (SET_KEEPTTL, SET_PERSIST | SET_EXPIRE, False, True),
    b"persist": (SET_PERSIST, SET_KEEPTTL | SET_EXPIRE, False, False),
    b"ex": (SET_EX, SET_KEEPTTL | SET_PERSIST | SET_EXPIRE & ~SET_EX, True, True),
    b"px": (SET_PX, SET_KEEPTTL | SET_PERSIST | SET_EXPIRE & ~SET_PX, True, True),
    b"exat": (SET_EXAT, SET_KEEPTTL | SET_PERSIST | SET_EXPIRE & ~SET_EXAT, True, True),
    b"pxat": (SET_PXAT, SET_KEEPTTL | SET_PERSIST | SET_EXPIRE & ~SET_PXAT, True, True),
}
_SET_ONLY = SET_NX | SET_XX | SET_GET | SET_KEEPTTL


def parse_string_options(argv: list[bytes], first: int, for_set: bool) -> tuple[int, bytes | None] | bytes:
    """SET's (`for_set`) or GETEX's options from argv[first:], as Redis's
    parseExtendedStringArgumentsOrReply: (flags, the expire argument or None), or the
    syntax error. Every option is checked before any value is read, so `EX junk extra`
    is a syntax error, not a bad integer. A repeated option is allowed (the last value
    wins), a conflicting one is not. Options are compared as C strings: up to a NUL."""
    flags = 0
    expire = None
    i = first
    while i < len(argv):
        spec = _STRING_OPTIONS.get(argv[i].split(b"\0", 1)[0].lower())
        if spec is None:
            return ERR_SYNTAX
        flag, conflicts, takes_value, on_set = spec
        if flags & conflicts or (flag & _SET_ONLY and not for_set) or (not on_set and for_set):
            return ERR_SYNTAX
        if takes_value:
            if i + 1 >= len(argv):
                return ERR_SYNTAX
            i += 1
            expire = argv[i]
        flags |= flag
        i += 1
    return flags, expire


def expire_at_ms(flags: int, arg: bytes, now_ms: int, command_name: bytes) -> int | bytes:
    """The absolute unix time in ms that EX/PX/EXAT/PXAT `arg` means, or Redis's error
    (getExpireMillisecondsOrReply)."""
    value = int_arg(arg)
    if value is None:
        return ERR_NOT_INT
    invalid = b"-ERR invalid expire time in '" + command_name + b"' command\r\n"
    if value <= 0:
        return invalid
    if flags & (SET_EX | SET_EXAT):
        if value > _INT64_MAX // 1000:
            return invalid
        value *= 1000
    if flags & (SET_EX | SET_PX):
        value += now_ms
        if value > _INT64_MAX:
            return invalid
    return value


@command("set", -3, "write", (1, 1, 1))
def set_(ctx: Any, argv: list[bytes]) -> bytes:
    db = ctx.db
    key = argv[1]
    if len(argv) == 3:  # the hot path: plain SET key value
        db[key] = argv[2]
        ctx.aof_feed(argv)
        return OK
    parsed = parse_string_options(argv, 3, for_set=True)
    if isinstance(parsed, bytes):
        return parsed
    flags, expire = parsed
    if expire is not None:
        when = expire_at_ms(flags, expire, time.time_ns() // 1_000_000, b"set")
        if isinstance(when, bytes):
            return when
        return b"-ERR kvred does not support key expiry yet\r\n"
    old = db.get(key)
    if flags & SET_GET:
        if old is not None and type(old) not in _STRING_TYPES:
            return ERR_WRONGTYPE
        reply = ctx.null if old is None else b"$%d\r\n%b\r\n" % (len(old), old)
    else:
        reply = OK
    if (flags & SET_NX and old is not None) or (flags & SET_XX and old is None):
        return reply if flags & SET_GET else ctx.null
    db[key] = argv[2]
    ctx.aof_feed(argv)
    return reply


@command("setnx", 3, "write fast", (1, 1, 1))
def setnx(ctx: Any, argv: list[bytes]) -> bytes:
    db = ctx.db
    if argv[1] in db:
        return ZERO
    db[argv[1]] = argv[2]
    ctx.aof_feed(argv)
    return ONE


def _string_or_error(ctx: Any, key: bytes) -> tuple[Any, bytes | None]:
    """(value, None) for a string or a missing key, (None, WRONGTYPE) otherwise."""
    value = ctx.db.get(key)
    if value is not None and type(value) not in _STRING_TYPES:
        return None, ERR_WRONGTYPE
    return value, None


@command("getset", 3, "write fast", (1, 1, 1))
def getset(ctx: Any, argv: list[bytes]) -> bytes:
    old, err = _string_or_error(ctx, argv[1])
    if err:
        return err
    ctx.db[argv[1]] = argv[2]
    ctx.aof_feed(argv)
    return ctx.null if old is None else resp.bulk(old)


@command("getdel", 2, "write fast", (1, 1, 1))
def getdel(ctx: Any, argv: list[bytes]) -> bytes:
    old, err = _string_or_error(ctx, argv[1])
    if err:
        return err
    if old is None:
        return ctx.null
    del ctx.db[argv[1]]
    ctx.aof_feed([b"DEL", argv[1]])
    return resp.bulk(old)


@command("append", 3, "write fast", (1, 1, 1))
def append(ctx: Any, argv: list[bytes]) -> bytes:
    old, err = _string_or_error(ctx, argv[1])
    if err:
        return err
    if old is None:
        ctx.db[argv[1]] = argv[2]
        size = len(argv[2])
    else:
        size = len(old) + len(argv[2])
        if _too_long(ctx, size):
            return ERR_STRING_TOO_LONG
        _mutable(ctx, argv[1], old).extend(argv[2])
    ctx.aof_feed(argv)
    return resp.integer(size)


def _mutable(ctx: Any, key: bytes, value: bytes | bytearray) -> bytearray:
    """The value of `key` as a bytearray to change in place (one copy, the first time)."""
    if type(value) is bytearray:
        return value
    mutable = ctx.db[key] = bytearray(value)
    return mutable


@command("strlen", 2, "readonly fast", (1, 1, 1))
def strlen(ctx: Any, argv: list[bytes]) -> bytes:
    value, err = _string_or_error(ctx, argv[1])
    return err or resp.integer(0 if value is None else len(value))


def _incr_by(ctx: Any, argv: list[bytes], delta: int) -> bytes:
    old, err = _string_or_error(ctx, argv[1])
    if err:
        return err
    current = 0 if old is None else int_arg(old)
    if current is None:
        return ERR_NOT_INT
    new = current + delta
    if new < _INT64_MIN or new > _INT64_MAX:
        return ERR_OVERFLOW
    text = b"%d" % new
    ctx.db[argv[1]] = text
    ctx.aof_feed([b"SET", argv[1], text])  # replay sets the result: exact whatever came before
    return b":%b\r\n" % text


@command("incr", 2, "write fast", (1, 1, 1))
def incr(ctx: Any, argv: list[bytes]) -> bytes:
    return _incr_by(ctx, argv, 1)


@command("decr", 2, "write fast", (1, 1, 1))
def decr(ctx: Any, argv: list[bytes]) -> bytes:
    return _incr_by(ctx, argv, -1)


@command("incrby", 3, "write fast", (1, 1, 1))
def incrby(ctx: Any, argv: list[bytes]) -> bytes:
    delta = int_arg(argv[2])
    if delta is None:
        return ERR_NOT_INT
    return _incr_by(ctx, argv, delta)


@command("decrby", 3, "write fast", (1, 1, 1))
def decrby(ctx: Any, argv: list[bytes]) -> bytes:
    delta = int_arg(argv[2])
    if delta is None:
        return ERR_NOT_INT
    if delta == _INT64_MIN:
        return b"-ERR decrement would overflow\r\n"
    return _incr_by(ctx, argv, -delta)


@command("incrbyfloat", 3, "write fast", (1, 1, 1))
def incrbyfloat(ctx: Any, argv: list[bytes]) -> bytes:
    old, err = _string_or_error(ctx, argv[1])
    if err:
        return err
    current = parse_long_double(b"0" if old is None else old)
    delta = parse_long_double(argv[2])
    if current is None or delta is None:
        return ERR_NOT_FLOAT
    total = add_long_double(current, delta)
    if total is None:
        return ERR_FLOAT_RESULT
    text = format_long_double(total)
    ctx.db[argv[1]] = text
    # Logged as the SET of its result, as Redis does, so replay is exact.
    ctx.aof_feed([b"SET", argv[1], text, b"KEEPTTL"])
    return resp.bulk(text)


@command("getrange", 4, "readonly", (1, 1, 1))
def getrange(ctx: Any, argv: list[bytes]) -> bytes:
    start, end = int_arg(argv[2]), int_arg(argv[3])
    if start is None or end is None:
        return ERR_NOT_INT
    value, err = _string_or_error(ctx, argv[1])
    if err:
        return err
    if value is None or (start < 0 and end < 0 and start > end):
        return EMPTY_BULK
    size = len(value)
    if start < 0:
        start = max(size + start, 0)
    if end < 0:
        end = max(size + end, 0)
    end = min(end, size - 1)
    if start > end or size == 0:
        return EMPTY_BULK
    return resp.bulk(value[start : end + 1])


@command("substr", 4, "readonly", (1, 1, 1))
def substr(ctx: Any, argv: list[bytes]) -> bytes:
    return getrange(ctx, argv)


@command("setrange", 4, "write", (1, 1, 1))
def setrange(ctx: Any, argv: list[bytes]) -> bytes:
    offset = int_arg(argv[2])
    if offset is None:
        return ERR_NOT_INT
    if offset < 0:
        return b"-ERR offset is out of range\r\n"
    old, err = _string_or_error(ctx, argv[1])
    if err:
        return err
    patch = argv[3]
    if not patch:
        return resp.integer(0 if old is None else len(old))
    end = offset + len(patch)
    if _too_long(ctx, end):
        return ERR_STRING_TOO_LONG
    if old is None:
        value = ctx.db[argv[1]] = bytearray(end)  # zero-filled by calloc: untouched pages cost nothing
    else:
        value = _mutable(ctx, argv[1], old)
        if len(value) < offset:
            value.extend(bytes(offset - len(value)))
    value[offset:end] = patch
    ctx.aof_feed(argv)
    return resp.integer(len(value))


@command("mget", -2, "readonly fast", (1, -1, 1))
def mget(ctx: Any, argv: list[bytes]) -> bytes:
    get_value = ctx.db.get
    null = ctx.null
    limit = ctx.output_limit
    size = 0
    parts = [b"*%d\r\n" % (len(argv) - 1)]
    for key in argv[1:]:
        value = get_value(key)
        # MGET answers nil for a key of another type, not WRONGTYPE.
        part = b"$%d\r\n%b\r\n" % (len(value), value) if type(value) in _STRING_TYPES else null
        parts.append(part)
        size += len(part)
        if size > limit:
            raise ReplyTooLarge
    return b"".join(parts)


@command("mset", -3, "write", (1, -1, 2))
def mset(ctx: Any, argv: list[bytes]) -> bytes:
    if len(argv) % 2 == 0:
        return wrong_arity("mset")
    db = ctx.db
    for i in range(1, len(argv), 2):
        db[argv[i]] = argv[i + 1]
    ctx.aof_feed(argv)
    return OK


@command("msetnx", -3, "write", (1, -1, 2))
def msetnx(ctx: Any, argv: list[bytes]) -> bytes:
    if len(argv) % 2 == 0:
        return wrong_arity("msetnx")
    db = ctx.db
    if any(argv[i] in db for i in range(1, len(argv), 2)):
        return ZERO
    for i in range(1, len(argv), 2):
        db[argv[i]] = argv[i + 1]
    ctx.aof_feed(argv)
    return ONE
