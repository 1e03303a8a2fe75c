"""String commands (Redis's t_string.c): GET, SET and friends, counters, ranges,
MGET/MSET, and the string commands that set a TTL (SETEX, PSETEX, GETEX).

A string value is `bytes` as SET stored it, or a `bytearray` once APPEND or
SETRANGE changed it: those modify it in place with amortised growth, as
Redis's sds strings do (a 64 MB string took 15 s for 200 SETRANGEs when each
copied it, and 1024 APPENDs were quadratic). Every reader accepts both
(STRING_TYPES). A value of any other type is WRONGTYPE, as in Redis.

What is logged: a relative TTL is logged as an absolute one (SET ... PXAT), so
replay is deterministic; counters are logged as sent (they keep the key's TTL on
replay as they did live); INCRBYFLOAT as the SET of its result with KEEPTTL.
"""

from __future__ import annotations

from .. import resp
from ..keyspace import Keyspace
from ..notify import NOTIFY_GENERIC, NOTIFY_STRING
from ..valuetypes import STRING_TYPES
from .base import (
    ERR_NOT_FLOAT,
    ERR_NOT_INT,
    ERR_OVERFLOW,
    ERR_SYNTAX,
    ERR_WRONGTYPE,
    Context,
    ReplyTooLarge,
    command,
    int_arg,
    wrong_arity,
)
from .longdouble import add_long_double, format_long_double, parse_long_double

__all__ = ["parse_string_options", "expire_at_ms"]

OK = resp.OK
ZERO = b":0\r\n"
ONE = b":1\r\n"
EMPTY_BULK = b"$0\r\n\r\n"
ERR_STRING_TOO_LONG = b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"
ERR_FLOAT_RESULT = b"-ERR increment would produce NaN or Infinity\r\n"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_BULK_HEADS = resp.BULK_HEADS
_BULK_HEADS_COUNT = len(_BULK_HEADS)


def _too_long(ctx: Context, size: int) -> bool:
    """Redis's checkStringLength: a string may not outgrow proto-max-bulk-len (the AOF
    being loaded is obeyed whatever the setting is now)."""
    return size > ctx.config.proto_max_bulk_len and not ctx.databases.loading


def _bulk(value: bytes | bytearray) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)  # type: ignore[str-format]  # %b takes a bytearray too


def _string(ctx: Context, key: bytes, write: bool = False) -> bytes | bytearray | None:
    """The string at `key`, None if there is none; WrongType for another type."""
    value: bytes | bytearray | None = ctx.keyspace.lookup_typed(key, STRING_TYPES, write)
    return value


@command("get", 2, "readonly fast", (1, 1, 1))
def get(ctx: Context, argv: list[bytes]) -> bytes:
    # Keyspace.lookup_read, inlined for its common case (a key without a TTL): GET is the
    # hottest command, and the method call alone was ~500 of the ~6,800 instructions a GET
    # costs the writer (callgrind). Anything else takes the method.
    keyspace = ctx.keyspace
    key = argv[1]
    value = keyspace.data.get(key)
    if value is None or (keyspace.expires and key in keyspace.expires):
        value = keyspace.lookup_read(key)
        if value is None:
            return ctx.null
    else:
        keyspace.hits += 1
        if keyspace.track:
            keyspace.touch(key)
    if type(value) is not bytes and type(value) is not bytearray:
        return ERR_WRONGTYPE
    size = len(value)
    if size < _BULK_HEADS_COUNT:  # a looked-up header joined: 104 ns against 161 for the %-format
        return b"".join((_BULK_HEADS[size], value, b"\r\n"))
    return b"$%d\r\n%b\r\n" % (size, value)  # type: ignore[str-format]  # %b takes a bytearray


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


@command("set", -3, "write denyoom", (1, 1, 1))
def set_(ctx: Context, argv: list[bytes]) -> bytes:
    keyspace = ctx.keyspace
    key = argv[1]
    if len(argv) == 3:  # the hot path: plain SET key value
        data = keyspace.data
        if (key in data and not keyspace.watched and not (keyspace.expires and key in keyspace.expires)
                and not keyspace.blocking):
            # Keyspace.set_key inlined for an overwrite with nothing else to maintain (no TTL
            # to drop, no watcher to touch, no waiter to signal): the method call was ~300 of
            # ~5,600 (callgrind)
            data[key] = argv[2]
            if keyspace.track:
                keyspace.touch(key)
        else:
            keyspace.set_key(key, argv[2])
        ctx.aof_feed(argv)
        if keyspace.notify_flags:
            keyspace.notify(NOTIFY_STRING, b"set", key)
        return OK
    parsed = parse_string_options(argv, 3, for_set=True)
    if isinstance(parsed, bytes):
        return parsed
    flags, expire = parsed
    when = _deadline(ctx, flags, expire, b"set")
    if isinstance(when, bytes):
        return when
    if flags & SET_GET:
        old = _string(ctx, key)
        reply = ctx.null if old is None else _bulk(old)
        found = old is not None
    else:
        found = keyspace.lookup_write(key) is not None
        reply = OK
    if (flags & SET_NX and found) or (flags & SET_XX and not found):
        return reply if flags & SET_GET else ctx.null
    keyspace.set_key(key, argv[2], keep_ttl=bool(flags & SET_KEEPTTL))
    if when is None:
        ctx.aof_feed(argv)
    else:
        keyspace.set_expire(key, when)
        ctx.aof_feed([b"SET", key, argv[2], b"PXAT", b"%d" % when])  # absolute: replay is exact
    if keyspace.notify_flags:
        keyspace.notify(NOTIFY_STRING, b"set", key)
        if when is not None:
            keyspace.notify(NOTIFY_GENERIC, b"expire", key)
    return reply


def _deadline(ctx: Context, flags: int, expire: bytes | None, name: bytes) -> int | bytes | None:
    """The absolute unix ms an EX/PX/EXAT/PXAT option gives (None without one), or its error."""
    if expire is None:
        return None
    return expire_at_ms(flags, expire, ctx.databases.now_ms(), name)


def _set_with_ttl(ctx: Context, argv: list[bytes], unit_flag: int) -> bytes:
    """SETEX / PSETEX key ttl value."""
    when = expire_at_ms(unit_flag, argv[2], ctx.databases.now_ms(), argv[0].lower())
    if isinstance(when, bytes):
        return when
    key, value = argv[1], argv[3]
    keyspace = ctx.keyspace
    keyspace.set_key(key, value)
    keyspace.set_expire(key, when)
    ctx.aof_feed([b"SET", key, value, b"PXAT", b"%d" % when])
    if keyspace.notify_flags:
        keyspace.notify(NOTIFY_STRING, b"set", key)
        keyspace.notify(NOTIFY_GENERIC, b"expire", key)
    return OK


@command("setex", 4, "write denyoom", (1, 1, 1))
def setex(ctx: Context, argv: list[bytes]) -> bytes:
    return _set_with_ttl(ctx, argv, SET_EX)


@command("psetex", 4, "write denyoom", (1, 1, 1))
def psetex(ctx: Context, argv: list[bytes]) -> bytes:
    return _set_with_ttl(ctx, argv, SET_PX)


@command("getex", -2, "write fast", (1, 1, 1))
def getex(ctx: Context, argv: list[bytes]) -> bytes:
    """GETEX key [EX|PX|EXAT|PXAT t | PERSIST]: logged as PEXPIREAT, DEL or PERSIST."""
    parsed = parse_string_options(argv, 2, for_set=False)
    if isinstance(parsed, bytes):
        return parsed
    flags, expire = parsed
    keyspace, key = ctx.keyspace, argv[1]
    value = _string(ctx, key)
    if value is None:
        return ctx.null
    when = _deadline(ctx, flags, expire, b"getex")  # checked after the lookup, as Redis
    if isinstance(when, bytes):
        return when
    reply = _bulk(value)
    if when is not None:
        if flags & (SET_EXAT | SET_PXAT) and when <= ctx.databases.now_ms() and not ctx.databases.loading:
            keyspace.delete(key)  # an absolute time already past: gone now
            ctx.aof_feed([b"DEL", key])
            keyspace.notify(NOTIFY_GENERIC, b"del", key)
        else:
            keyspace.set_expire(key, when)
            ctx.aof_feed([b"PEXPIREAT", key, b"%d" % when])
            keyspace.notify(NOTIFY_GENERIC, b"expire", key)
    elif flags & SET_PERSIST and keyspace.persist(key):
        ctx.aof_feed([b"PERSIST", key])
        keyspace.notify(NOTIFY_GENERIC, b"persist", key)
    return reply


@command("setnx", 3, "write denyoom fast", (1, 1, 1))
def setnx(ctx: Context, argv: list[bytes]) -> bytes:
    keyspace = ctx.keyspace
    if keyspace.lookup_write(argv[1]) is not None:
        return ZERO
    keyspace.set_key(argv[1], argv[2])
    ctx.aof_feed(argv)
    keyspace.notify(NOTIFY_STRING, b"set", argv[1])
    return ONE


@command("getset", 3, "write denyoom fast", (1, 1, 1))
def getset(ctx: Context, argv: list[bytes]) -> bytes:
    old = _string(ctx, argv[1])
    ctx.keyspace.set_key(argv[1], argv[2])
    ctx.aof_feed(argv)
    ctx.keyspace.notify(NOTIFY_STRING, b"set", argv[1])
    return ctx.null if old is None else _bulk(old)


@command("getdel", 2, "write fast", (1, 1, 1))
def getdel(ctx: Context, argv: list[bytes]) -> bytes:
    old = _string(ctx, argv[1])
    if old is None:
        return ctx.null
    ctx.keyspace.delete(argv[1])
    ctx.aof_feed([b"DEL", argv[1]])
    ctx.keyspace.notify(NOTIFY_GENERIC, b"del", argv[1])
    return _bulk(old)


@command("append", 3, "write denyoom fast", (1, 1, 1))
def append(ctx: Context, argv: list[bytes]) -> bytes:
    keyspace, key = ctx.keyspace, argv[1]
    old = _string(ctx, key, write=True)
    if old is None:
        keyspace.set_key(key, argv[2])
        size = len(argv[2])
    else:
        size = len(old) + len(argv[2])
        if _too_long(ctx, size):
            return ERR_STRING_TOO_LONG
        _mutable(keyspace, key, old).extend(argv[2])
        keyspace.modified(key)
    ctx.aof_feed(argv)
    keyspace.notify(NOTIFY_STRING, b"append", key)
    return resp.integer(size)


def _mutable(keyspace: Keyspace, key: bytes, value: bytes | bytearray) -> bytearray:
    """The value of `key` as a bytearray to change in place (one copy, the first time)."""
    if type(value) is bytearray:
        return value
    mutable = bytearray(value)
    keyspace.replace_value(key, mutable)
    return mutable


@command("strlen", 2, "readonly fast", (1, 1, 1))
def strlen(ctx: Context, argv: list[bytes]) -> bytes:
    value = _string(ctx, argv[1])
    return resp.integer(0 if value is None else len(value))


def _incr_by(ctx: Context, argv: list[bytes], delta: int) -> bytes:
    old = _string(ctx, argv[1], write=True)
    current = 0 if old is None else int_arg(bytes(old))
    if current is None:
        return ERR_NOT_INT
    new = current + delta
    if new < _INT64_MIN or new > _INT64_MAX:
        return ERR_OVERFLOW
    text = b"%d" % new
    keyspace = ctx.keyspace
    keyspace.set_key(argv[1], text, keep_ttl=True)
    ctx.aof_feed(argv)  # as sent, like Redis: replay counts from the same value, TTL kept
    if keyspace.notify_flags:
        keyspace.notify(NOTIFY_STRING, b"incrby", argv[1])
    return b":%b\r\n" % text


@command("incr", 2, "write denyoom fast", (1, 1, 1))
def incr(ctx: Context, argv: list[bytes]) -> bytes:
    return _incr_by(ctx, argv, 1)


@command("decr", 2, "write denyoom fast", (1, 1, 1))
def decr(ctx: Context, argv: list[bytes]) -> bytes:
    return _incr_by(ctx, argv, -1)


@command("incrby", 3, "write denyoom fast", (1, 1, 1))
def incrby(ctx: Context, argv: list[bytes]) -> bytes:
    delta = int_arg(argv[2])
    if delta is None:
        return ERR_NOT_INT
    return _incr_by(ctx, argv, delta)


@command("decrby", 3, "write denyoom fast", (1, 1, 1))
def decrby(ctx: Context, argv: list[bytes]) -> bytes:
    delta = int_arg(argv[2])
    if delta is None:
        return ERR_NOT_INT
    if delta == _INT64_MIN:
        return b"-ERR decrement would overflow\r\n"
    return _incr_by(ctx, argv, -delta)


@command("incrbyfloat", 3, "write denyoom fast", (1, 1, 1))
def incrbyfloat(ctx: Context, argv: list[bytes]) -> bytes:
    old = _string(ctx, argv[1], write=True)
    current = parse_long_double(b"0" if old is None else bytes(old))
    delta = parse_long_double(argv[2])
    if current is None or delta is None:
        return ERR_NOT_FLOAT
    total = add_long_double(current, delta)
    if total is None:
        return ERR_FLOAT_RESULT
    text = format_long_double(total)
    ctx.keyspace.set_key(argv[1], text, keep_ttl=True)
    # Logged as the SET of its result, as Redis does, so replay is exact.
    ctx.aof_feed([b"SET", argv[1], text, b"KEEPTTL"])
    ctx.keyspace.notify(NOTIFY_STRING, b"incrbyfloat", argv[1])
    return resp.bulk(text)


@command("getrange", 4, "readonly", (1, 1, 1))
def getrange(ctx: Context, argv: list[bytes]) -> bytes:
    start, end = int_arg(argv[2]), int_arg(argv[3])
    if start is None or end is None:
        return ERR_NOT_INT
    value = _string(ctx, argv[1])
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
    return _bulk(value[start : end + 1])


@command("substr", 4, "readonly", (1, 1, 1))
def substr(ctx: Context, argv: list[bytes]) -> bytes:
    return getrange(ctx, argv)


@command("setrange", 4, "write denyoom", (1, 1, 1))
def setrange(ctx: Context, argv: list[bytes]) -> bytes:
    offset = int_arg(argv[2])
    if offset is None:
        return ERR_NOT_INT
    if offset < 0:
        return b"-ERR offset is out of range\r\n"
    keyspace, key = ctx.keyspace, argv[1]
    old = _string(ctx, key, write=True)
    patch = argv[3]
    if not patch:
        return resp.integer(0 if old is None else len(old))
    end = offset + len(patch)
    if _too_long(ctx, end):
        return ERR_STRING_TOO_LONG
    if old is None:
        value = bytearray(end)  # zero-filled by calloc: untouched pages cost nothing
        value[offset:end] = patch
        keyspace.set_key(key, value)
    else:
        value = _mutable(keyspace, key, old)
        if len(value) < offset:
            value.extend(bytes(offset - len(value)))
        value[offset:end] = patch
        keyspace.modified(key)
    ctx.aof_feed(argv)
    keyspace.notify(NOTIFY_STRING, b"setrange", key)
    return resp.integer(len(value))


@command("mget", -2, "readonly fast", (1, -1, 1))
def mget(ctx: Context, argv: list[bytes]) -> bytes:
    lookup = ctx.keyspace.lookup_read
    null = ctx.null
    limit = ctx.output_limit
    size = 0
    parts = [b"*%d\r\n" % (len(argv) - 1)]
    for key in argv[1:]:
        value = lookup(key)
        # MGET answers nil for a key of another type, not WRONGTYPE.
        part = b"$%d\r\n%b\r\n" % (len(value), value) if type(value) in STRING_TYPES else null
        parts.append(part)
        size += len(part)
        if size > limit:
            raise ReplyTooLarge
    return b"".join(parts)


@command("mset", -3, "write denyoom", (1, -1, 2))
def mset(ctx: Context, argv: list[bytes]) -> bytes:
    if len(argv) % 2 == 0:
        return wrong_arity("mset")
    keyspace = ctx.keyspace
    set_key = keyspace.set_key
    for i in range(1, len(argv), 2):
        set_key(argv[i], argv[i + 1])
        if keyspace.notify_flags:
            keyspace.notify(NOTIFY_STRING, b"set", argv[i])
    ctx.aof_feed(argv)
    return OK


@command("msetnx", -3, "write denyoom", (1, -1, 2))
def msetnx(ctx: Context, argv: list[bytes]) -> bytes:
    if len(argv) % 2 == 0:
        return wrong_arity("msetnx")
    keyspace = ctx.keyspace
    if any(keyspace.lookup_write(argv[i]) is not None for i in range(1, len(argv), 2)):
        return ZERO
    for i in range(1, len(argv), 2):
        keyspace.set_key(argv[i], argv[i + 1])
        keyspace.notify(NOTIFY_STRING, b"set", argv[i])
    ctx.aof_feed(argv)
    return ONE


# --- LCS -------------------------------------------------------------------------

ERR_LCS_TYPES = b"-ERR The specified keys must contain string values\r\n"
ERR_LCS_BOTH = b"-ERR If you want both the length and indexes, please just use IDX.\r\n"
ERR_LCS_TOO_LONG = b"-ERR String too long for LCS\r\n"
ERR_LCS_MEMORY = b"-ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len\r\n"
_UINT32_MAX = 2**32 - 1


def _lcs_rows(a: bytes, b: bytes) -> list[int]:
    """The bit-parallel LCS table (Allison-Dix, Hyyro): rows[i] has a clear bit j for
    every j where LCS(a[:i], b[:j+1]) = LCS(a[:i], b[:j]) + 1, so LCS(a[:i], b[:j]) is the
    number of clear bits below bit j. O(len(a) * len(b) / word) in CPython's big ints,
    instead of Redis's table of len(a) * len(b) integers filled one by one."""
    width = len(b)
    full = (1 << width) - 1
    masks: dict[int, int] = {}
    for j, char in enumerate(b):
        masks[char] = masks.get(char, 0) | (1 << j)
    row = full
    rows = [row]
    for char in a:
        match = row & masks.get(char, 0)
        row = ((row + match) | (row - match)) & full
        rows.append(row)
    return rows


@command("lcs", -3, "readonly", (1, 2, 1))
def lcs(ctx: Context, argv: list[bytes]) -> bytes:
    """LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: the longest common
    subsequence, its length, or its matching ranges (walked back from the ends, as
    Redis does, so ties resolve the same way and the same LCS is answered)."""
    keyspace = ctx.keyspace
    first, second = keyspace.lookup_read(argv[1]), keyspace.lookup_read(argv[2])
    if (first is not None and type(first) not in STRING_TYPES) or (
        second is not None and type(second) not in STRING_TYPES
    ):
        return ERR_LCS_TYPES
    a = b"" if first is None else bytes(first)
    b = b"" if second is None else bytes(second)
    get_len = get_idx = with_len = False
    min_len = 0
    j = 3
    while j < len(argv):
        opt = argv[j].split(b"\0", 1)[0].lower()
        if opt == b"idx":
            get_idx = True
        elif opt == b"len":
            get_len = True
        elif opt == b"withmatchlen":
            with_len = True
        elif opt == b"minmatchlen" and j + 1 < len(argv):
            parsed = int_arg(argv[j + 1])
            if parsed is None:
                return ERR_NOT_INT
            min_len = max(parsed, 0)
            j += 1
        else:
            return ERR_SYNTAX
        j += 1
    if get_idx and get_len:
        return ERR_LCS_BOTH
    alen, blen = len(a), len(b)
    if alen >= _UINT32_MAX - 1 or blen >= _UINT32_MAX - 1:
        return ERR_LCS_TOO_LONG
    if (alen + 1) * (blen + 1) * 4 > ctx.config.proto_max_bulk_len:
        return ERR_LCS_MEMORY  # Redis's limit on its table, kept though ours is smaller
    rows = _lcs_rows(a, b)

    def at(i: int, j: int) -> int:  # LCS(a[:i], b[:j])
        return j - (rows[i] & ((1 << j) - 1)).bit_count()

    total = at(alen, blen)
    if get_len:
        return resp.integer(total)
    result = bytearray(total)
    idx = total
    matches: list[bytes] = []
    size = 0
    limit = ctx.output_limit
    a_start = alen  # alen: no range being tracked
    a_end = b_start = b_end = 0
    i, j = alen, blen
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            result[idx - 1] = a[i - 1]
            if a_start == alen:
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            elif a_start == i and b_start == j:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            idx -= 1
            i -= 1
            j -= 1
        else:
            if at(i - 1, j) > at(i, j - 1):
                i -= 1
            else:
                j -= 1
            if a_start != alen:
                emit = True
        if emit:
            match_len = a_end - a_start + 1
            if get_idx and (min_len == 0 or match_len >= min_len):
                part = b"*%d\r\n*2\r\n:%d\r\n:%d\r\n*2\r\n:%d\r\n:%d\r\n" % (
                    3 if with_len else 2, a_start, a_end, b_start, b_end)
                if with_len:
                    part += b":%d\r\n" % match_len
                matches.append(part)
                size += len(part)
                if size > limit:
                    raise ReplyTooLarge
            a_start = alen
    if not get_idx:
        return _bulk(result)
    head = b"%2\r\n" if ctx.resp3 else b"*4\r\n"
    return b"%b$7\r\nmatches\r\n*%d\r\n%b$3\r\nlen\r\n:%d\r\n" % (head, len(matches), b"".join(matches), total)
