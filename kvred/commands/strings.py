"""String commands: GET, SET and friends, counters, ranges, MGET/MSET.

Values of the string type are stored as `bytes`; any other type stored under a
key (none yet) makes these commands answer WRONGTYPE, as in Redis.
"""

from __future__ import annotations

from typing import Any

from .. import resp
from .base import ERR_NOT_FLOAT, ERR_NOT_INT, ERR_OVERFLOW, ERR_SYNTAX, ERR_WRONGTYPE, command, int_arg, wrong_arity
from .longdouble import add_long_double, format_long_double, parse_long_double

__all__: list[str] = []

OK = resp.OK
ZERO = b":0\r\n"
ONE = b":1\r\n"
EMPTY_BULK = b"$0\r\n\r\n"
ERR_STRING_TOO_LONG = b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"
ERR_FLOAT_RESULT = b"-ERR increment would produce NaN or Infinity\r\n"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
MAX_STRING_LEN = resp.PROTO_MAX_BULK_LEN  # bytes; Redis bounds a string by proto-max-bulk-len


@command("get", 2, "readonly fast", (1, 1, 1))
def get(ctx: Any, argv: list[bytes]) -> bytes:
    value = ctx.db.get(argv[1])
    if value is None:
        return ctx.null
    if type(value) is not bytes:
        return ERR_WRONGTYPE
    return b"$%d\r\n%b\r\n" % (len(value), value)


# SET's option words, lowercased, mapped to the flag they set.
_SET_NX, _SET_XX, _SET_GET = 1, 2, 4


@command("set", -3, "write", (1, 1, 1))
def set_(ctx: Any, argv: list[bytes]) -> bytes:
    db = ctx.db
    key = argv[1]
    if len(argv) == 3:  # the hot path: plain SET key value
        db[key] = argv[2]
        ctx.aof_feed(argv)
        return OK
    flags = 0
    i = 3
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"nx" and not flags & _SET_XX:
            flags |= _SET_NX
        elif opt == b"xx" and not flags & _SET_NX:
            flags |= _SET_XX
        elif opt == b"get":
            flags |= _SET_GET
        elif opt in (b"ex", b"px", b"exat", b"pxat") and i + 1 < len(argv):
            # Expiry is parsed with Redis's checks but not supported yet.
            when = int_arg(argv[i + 1])
            if when is None:
                return ERR_NOT_INT
            if when <= 0:
                return b"-ERR invalid expire time in '" + argv[0].lower() + b"' command\r\n"
            return b"-ERR kvred does not support key expiry yet\r\n"
        elif opt == b"keepttl":
            pass  # no key has a TTL, so keeping it changes nothing
        else:
            return ERR_SYNTAX
        i += 1
    old = db.get(key)
    if flags & _SET_GET:
        if old is not None and type(old) is not bytes:
            return ERR_WRONGTYPE
        reply = ctx.null if old is None else b"$%d\r\n%b\r\n" % (len(old), old)
    else:
        reply = OK
    if (flags & _SET_NX and old is not None) or (flags & _SET_XX and old is None):
        return reply if flags & _SET_GET else ctx.null
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


def _string_or_error(ctx: Any, key: bytes) -> tuple[bytes | None, bytes | None]:
    """(value, None) for a string or a missing key, (None, WRONGTYPE) otherwise."""
    value = ctx.db.get(key)
    if value is not None and type(value) is not bytes:
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
    new = argv[2] if old is None else old + argv[2]
    if len(new) > MAX_STRING_LEN:
        return ERR_STRING_TOO_LONG
    ctx.db[argv[1]] = new
    ctx.aof_feed(argv)
    return resp.integer(len(new))


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
    if offset + len(patch) > MAX_STRING_LEN:
        return ERR_STRING_TOO_LONG
    current = old or b""
    if len(current) < offset:
        current += b"\x00" * (offset - len(current))
    new = current[:offset] + patch + current[offset + len(patch) :]
    ctx.db[argv[1]] = new
    ctx.aof_feed(argv)
    return resp.integer(len(new))


@command("mget", -2, "readonly fast", (1, -1, 1))
def mget(ctx: Any, argv: list[bytes]) -> bytes:
    get_value = ctx.db.get
    null = ctx.null
    parts = [b"*%d\r\n" % (len(argv) - 1)]
    for key in argv[1:]:
        value = get_value(key)
        # MGET answers nil for a key of another type, not WRONGTYPE.
        parts.append(b"$%d\r\n%b\r\n" % (len(value), value) if type(value) is bytes else null)
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
