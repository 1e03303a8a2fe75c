"""Hash commands (Redis's t_hash.c): HSET, HGET, HMSET, HSETNX, HGETALL, HDEL, HLEN,
HEXISTS, HMGET, HKEYS, HVALS, HSTRLEN, HINCRBY, HINCRBYFLOAT, HRANDFIELD, HSCAN.

A hash is a `Hash`: a dict (field -> value, both bytes) that also records the encoding
Redis would use for it. A Python dict keeps insertion order, and an update keeps a
field's place, which is exactly a listpack's order (HDEL then HSET appends at the end in
both), so replies of a listpack-encoded hash (HGETALL, HKEYS, HSCAN...) come in Redis's
order. `listpack` is True while Redis would keep the listpack encoding: at most
hash-max-listpack-entries fields, and no field or value longer than
hash-max-listpack-value bytes, checked where Redis checks it (HSET/HMSET look at every
argument before setting, HSETNX only when it adds the field, HINCRBY/HINCRBYFLOAT at
the field and the new value). Once False it stays False: Redis never converts back.

What is logged: the command as sent (every one is deterministic), except HINCRBYFLOAT,
logged as the HSET of its result as Redis propagates it, and nothing when nothing
changed (HDEL of missing fields, HSETNX of an existing one). HSET/HMSET always count as
a change, even with the value already there, as in Redis (a WATCH is broken by them).

HRANDFIELD needs a random field of a dict, which Python cannot pick in O(1): a pick
costs O(N) (a list of the fields; about 5 ms per million fields), where Redis's costs
O(1) (plus O(count) in both).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator

from .. import resp
from ..keyspace import WrongType
from ..notify import NOTIFY_HASH
from ..valuetypes import REWRITE_ITEMS_PER_CMD, ValueType, register_type
from .base import (
    ERR_NOT_FLOAT,
    ERR_NOT_INT,
    ERR_OVERFLOW,
    ERR_SYNTAX,
    Context,
    ReplyTooLarge,
    command,
    int_arg,
    wrong_arity,
)
from .keys import parse_cursor
from .longdouble import add_long_double, format_long_double, parse_long_double
from .scanning import parse_scan_options, scan_members

__all__ = ["Hash", "HASH_TYPES", "new_hash"]

OK = resp.OK
ZERO = b":0\r\n"
ONE = b":1\r\n"
EMPTY_ARRAY = b"*0\r\n"
EMPTY_SCAN = b"*2\r\n$1\r\n0\r\n*0\r\n"
ERR_HASH_NOT_INT = b"-ERR hash value is not an integer\r\n"
ERR_HASH_NOT_FLOAT = b"-ERR hash value is not a float\r\n"
ERR_NAN_INCR = b"-ERR value is NaN or Infinity\r\n"
ERR_FLOAT_RESULT = b"-ERR increment would produce NaN or Infinity\r\n"
ERR_INVALID_CURSOR = b"-ERR invalid cursor\r\n"
ERR_OUT_OF_RANGE = b"-ERR value is out of range\r\n"
_LONG_MAX = 2**63 - 1
_INT64_MIN = -(2**63)
ERR_COUNT_RANGE = b"-ERR value is out of range, value must between -%d and %d\r\n" % (_LONG_MAX, _LONG_MAX)


class Hash(dict[bytes, bytes]):
    """A hash value: its fields in listpack order, and whether Redis would still keep it
    as a listpack."""

    __slots__ = ("listpack", "scan_snapshot")

    listpack: bool
    scan_snapshot: tuple[int, list[bytes]] | None


HASH_TYPES = (Hash,)


def new_hash() -> Hash:
    h = Hash()
    h.listpack = True
    h.scan_snapshot = None
    return h


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


def _lookup(ctx: Context, key: bytes, write: bool = False) -> Hash | None:
    h: Hash | None = ctx.keyspace.lookup_typed(key, HASH_TYPES, write)
    return h


def _lookup_or_create(ctx: Context, key: bytes) -> tuple[Hash, bool]:
    """The hash at `key` for a write (WrongType for another type), a new empty one if
    there is none (not stored yet: the caller stores it once it holds a field);
    (hash, created)."""
    h: Hash | None = ctx.keyspace.lookup_typed(key, HASH_TYPES, True)
    if h is None:
        return new_hash(), True
    return h, False


def _store(ctx: Context, key: bytes, h: Hash, created: bool) -> None:
    """After a change: a new hash is added to the keyspace, an existing one signalled."""
    if created:
        ctx.keyspace.set_key(key, h)
    else:
        ctx.keyspace.modified(key)


def _set_field(ctx: Context, h: Hash, field: bytes, value: bytes) -> None:
    """hashTypeSet for HINCRBY/HINCRBYFLOAT: the field and the value are checked against
    the listpack value size, the length after the set against the entries limit."""
    h[field] = value
    if h.listpack:
        config = ctx.config
        limit = config.hash_max_listpack_value
        if len(field) > limit or len(value) > limit or len(h) > config.hash_max_listpack_entries:
            h.listpack = False


# --- HSET, HMSET, HSETNX --------------------------------------------------------------


def _hset(ctx: Context, argv: list[bytes]) -> int:
    """Set every field of argv[2:]; the number of fields added."""
    keyspace = ctx.keyspace
    key = argv[1]
    # Keyspace.lookup_typed inlined for its common case (no TTL): HSET is redis-benchmark's
    h = keyspace.data.get(key)
    if h is None or (keyspace.expires and key in keyspace.expires):
        h = keyspace.lookup_write(key)
    elif keyspace.track:
        keyspace.touch(key)
    created = h is None
    if created:
        h = new_hash()
    elif type(h) is not Hash:
        raise WrongType
    if len(argv) == 4 and not h.listpack:  # one field of a large hash: the benchmark's case
        field = argv[2]
        added = field not in h
        h[field] = argv[3]
        if created:
            keyspace.set_key(key, h)
        elif keyspace.watched:
            keyspace.signal_modified(key)
        ctx.aof_feed(argv)
        if keyspace.notify_flags:
            keyspace.notify(NOTIFY_HASH, b"hset", key)
        return added
    if h.listpack:
        config = ctx.config
        limit = config.hash_max_listpack_value
        for arg in argv[2:]:
            if len(arg) > limit:
                h.listpack = False
                break
        before = len(h)
        h.update(zip(argv[2::2], argv[3::2], strict=False))
        if len(h) > config.hash_max_listpack_entries:
            h.listpack = False
    else:
        before = len(h)
        h.update(zip(argv[2::2], argv[3::2], strict=False))
    if created:
        keyspace.set_key(key, h)
    elif keyspace.watched:
        keyspace.signal_modified(key)
    ctx.aof_feed(argv)
    if keyspace.notify_flags:
        keyspace.notify(NOTIFY_HASH, b"hset", key)
    return len(h) - before


@command("hset", -4, "write denyoom fast", (1, 1, 1))
def hset(ctx: Context, argv: list[bytes]) -> bytes:
    if not len(argv) & 1:
        return b":%d\r\n" % _hset(ctx, argv)
    return wrong_arity("hset")


@command("hmset", -4, "write denyoom fast", (1, 1, 1))
def hmset(ctx: Context, argv: list[bytes]) -> bytes:
    if not len(argv) & 1:
        _hset(ctx, argv)
        return OK
    return wrong_arity("hmset")


@command("hsetnx", 4, "write denyoom fast", (1, 1, 1))
def hsetnx(ctx: Context, argv: list[bytes]) -> bytes:
    key, field, value = argv[1], argv[2], argv[3]
    h, created = _lookup_or_create(ctx, key)
    if field in h:
        return ZERO
    h[field] = value
    if h.listpack:
        config = ctx.config
        limit = config.hash_max_listpack_value
        if len(field) > limit or len(value) > limit or len(h) > config.hash_max_listpack_entries:
            h.listpack = False
    _store(ctx, key, h, created)
    ctx.aof_feed(argv)
    ctx.keyspace.notify(NOTIFY_HASH, b"hset", key)
    return ONE


# --- reads ---------------------------------------------------------------------------


@command("hget", 3, "readonly fast", (1, 1, 1))
def hget(ctx: Context, argv: list[bytes]) -> bytes:
    h = _lookup(ctx, argv[1])
    if h is None:
        return ctx.null
    value = h.get(argv[2])
    return ctx.null if value is None else _bulk(value)


@command("hmget", -3, "readonly fast", (1, 1, 1))
def hmget(ctx: Context, argv: list[bytes]) -> bytes:
    h = _lookup(ctx, argv[1])
    null = ctx.null
    limit = ctx.output_limit
    parts = [b"*%d\r\n" % (len(argv) - 2)]
    size = 0
    fields: dict[bytes, bytes] = h if h is not None else {}
    for field in argv[2:]:
        value = fields.get(field)
        part = null if value is None else _bulk(value)
        parts.append(part)
        size += len(part)
        if size > limit:
            raise ReplyTooLarge
    return b"".join(parts)


@command("hlen", 2, "readonly fast", (1, 1, 1))
def hlen(ctx: Context, argv: list[bytes]) -> bytes:
    h = _lookup(ctx, argv[1])
    return ZERO if h is None else b":%d\r\n" % len(h)


@command("hexists", 3, "readonly fast", (1, 1, 1))
def hexists(ctx: Context, argv: list[bytes]) -> bytes:
    h = _lookup(ctx, argv[1])
    return ONE if h is not None and argv[2] in h else ZERO


@command("hstrlen", 3, "readonly fast", (1, 1, 1))
def hstrlen(ctx: Context, argv: list[bytes]) -> bytes:
    h = _lookup(ctx, argv[1])
    value = None if h is None else h.get(argv[2])
    return ZERO if value is None else b":%d\r\n" % len(value)


def _pairs_reply(ctx: Context, h: Hash, fields: bool, values: bool) -> bytes:
    """HGETALL / HKEYS / HVALS: a map (RESP3, both) or a flat array, in the hash's order."""
    limit = ctx.output_limit
    size = 0
    parts: list[bytes] = []
    append = parts.append
    if fields and values:
        head = b"%%%d\r\n" % len(h) if ctx.resp3 else b"*%d\r\n" % (2 * len(h))
        for field, value in h.items():
            part = b"$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(field), field, len(value), value)
            append(part)
            size += len(part)
            if size > limit:
                raise ReplyTooLarge
    else:
        head = b"*%d\r\n" % len(h)
        for item in (h.keys() if fields else h.values()):
            part = b"$%d\r\n%b\r\n" % (len(item), item)
            append(part)
            size += len(part)
            if size > limit:
                raise ReplyTooLarge
    return head + b"".join(parts)


@command("hgetall", 2, "readonly", (1, 1, 1))
def hgetall(ctx: Context, argv: list[bytes]) -> bytes:
    h = _lookup(ctx, argv[1])
    if h is None:
        return b"%0\r\n" if ctx.resp3 else EMPTY_ARRAY
    return _pairs_reply(ctx, h, True, True)


@command("hkeys", 2, "readonly", (1, 1, 1))
def hkeys(ctx: Context, argv: list[bytes]) -> bytes:
    h = _lookup(ctx, argv[1])
    return EMPTY_ARRAY if h is None else _pairs_reply(ctx, h, True, False)


@command("hvals", 2, "readonly", (1, 1, 1))
def hvals(ctx: Context, argv: list[bytes]) -> bytes:
    h = _lookup(ctx, argv[1])
    return EMPTY_ARRAY if h is None else _pairs_reply(ctx, h, False, True)


# --- HDEL ----------------------------------------------------------------------------


@command("hdel", -3, "write fast", (1, 1, 1))
def hdel(ctx: Context, argv: list[bytes]) -> bytes:
    key = argv[1]
    h = _lookup(ctx, key, write=True)
    if h is None:
        return ZERO
    deleted = 0
    for field in argv[2:]:
        if h.pop(field, None) is not None:
            deleted += 1
            if not h:
                break  # Redis stops at the last field: the key is gone
    if not deleted:
        return ZERO
    ctx.keyspace.notify(NOTIFY_HASH, b"hdel", key)
    ctx.keyspace.modified_or_emptied(key, h)
    ctx.aof_feed(argv)
    return b":%d\r\n" % deleted


# --- counters ------------------------------------------------------------------------


@command("hincrby", 4, "write denyoom fast", (1, 1, 1))
def hincrby(ctx: Context, argv: list[bytes]) -> bytes:
    incr = int_arg(argv[3])
    if incr is None:
        return ERR_NOT_INT
    key, field = argv[1], argv[2]
    h, created = _lookup_or_create(ctx, key)
    old = h.get(field)
    if old is None:
        current = 0
    else:
        parsed = int_arg(old)
        if parsed is None:
            return ERR_HASH_NOT_INT
        current = parsed
    total = current + incr
    if total > _LONG_MAX or total < _INT64_MIN:
        return ERR_OVERFLOW
    _set_field(ctx, h, field, b"%d" % total)
    _store(ctx, key, h, created)
    ctx.aof_feed(argv)
    ctx.keyspace.notify(NOTIFY_HASH, b"hincrby", key)
    return b":%d\r\n" % total


@command("hincrbyfloat", 4, "write denyoom fast", (1, 1, 1))
def hincrbyfloat(ctx: Context, argv: list[bytes]) -> bytes:
    incr = parse_long_double(argv[3])
    if incr is None:
        return ERR_NOT_FLOAT
    if isinstance(incr, float):
        return ERR_NAN_INCR  # an infinity (strtold's nan is refused as not a float)
    key, field = argv[1], argv[2]
    h, created = _lookup_or_create(ctx, key)
    old = h.get(field)
    current = parse_long_double(b"0" if old is None else old)
    if current is None:
        return ERR_HASH_NOT_FLOAT
    total = add_long_double(current, incr)
    if total is None:
        return ERR_FLOAT_RESULT
    text = format_long_double(total)
    _set_field(ctx, h, field, text)
    _store(ctx, key, h, created)
    # Propagated as the HSET of the result, as Redis does: replay is exact.
    ctx.aof_feed([b"HSET", key, field, text])
    ctx.keyspace.notify(NOTIFY_HASH, b"hincrbyfloat", key)
    return _bulk(text)


# --- HRANDFIELD ----------------------------------------------------------------------


@command("hrandfield", -2, "readonly", (1, 1, 1))
def hrandfield(ctx: Context, argv: list[bytes]) -> bytes:
    if len(argv) == 2:
        h = _lookup(ctx, argv[1])
        if h is None:
            return ctx.null
        return _bulk(random.choice(list(h)))
    count = int_arg(argv[2])
    if count is None:
        return ERR_NOT_INT
    if count < -_LONG_MAX:
        return ERR_COUNT_RANGE
    withvalues = False
    if len(argv) > 4 or (len(argv) == 4 and argv[3].split(b"\0", 1)[0].lower() != b"withvalues"):
        return ERR_SYNTAX
    if len(argv) == 4:
        withvalues = True
        if count < -(_LONG_MAX // 2) or count > _LONG_MAX // 2:
            return ERR_OUT_OF_RANGE
    h = _lookup(ctx, argv[1])
    if h is None or count == 0:
        return EMPTY_ARRAY
    if count < 0 or count == 1:
        picks = -count if count < 0 else 1
        return _fields_reply(ctx, h, _random_fields(h, picks), picks, withvalues)
    if count >= len(h):
        fields = list(h)
    else:
        fields = random.sample(list(h), count)  # distinct, in random order as Redis 7.0's
    return _fields_reply(ctx, h, fields, len(fields), withvalues)


def _random_fields(h: Hash, count: int) -> Iterator[bytes]:
    """`count` random fields, repeats allowed, generated as the reply is built: a huge
    count meets the output limit before it costs more memory than the reply."""
    fields = list(h)
    size = len(fields)
    rand = random.random
    for _ in range(count):
        yield fields[int(rand() * size)]


def _fields_reply(ctx: Context, h: Hash, fields: Iterable[bytes], count: int, withvalues: bool) -> bytes:
    limit = ctx.output_limit
    size = 0
    parts: list[bytes] = []
    append = parts.append
    if withvalues:
        pair_head = b"*2\r\n" if ctx.resp3 else b""
        head = b"*%d\r\n" % (count if ctx.resp3 else 2 * count)
        for field in fields:
            value = h[field]
            part = b"%b$%d\r\n%b\r\n$%d\r\n%b\r\n" % (pair_head, len(field), field, len(value), value)
            append(part)
            size += len(part)
            if size > limit:
                raise ReplyTooLarge
    else:
        head = b"*%d\r\n" % count
        for field in fields:
            part = b"$%d\r\n%b\r\n" % (len(field), field)
            append(part)
            size += len(part)
            if size > limit:
                raise ReplyTooLarge
    return head + b"".join(parts)


# --- HSCAN ---------------------------------------------------------------------------


@command("hscan", -3, "readonly", (1, 1, 1))
def hscan(ctx: Context, argv: list[bytes]) -> bytes:
    cursor = parse_cursor(argv[2])
    if cursor is None:
        return ERR_INVALID_CURSOR
    h = _lookup(ctx, argv[1])
    if h is None:
        return EMPTY_SCAN
    options = parse_scan_options(argv, 3)
    if isinstance(options, bytes):
        return options
    next_cursor, fields = scan_members(h, h, cursor, options.count, h.listpack)
    if options.match is not None:
        match = options.match
        fields = [f for f in fields if match(f)]
    limit = ctx.output_limit
    size = 0
    parts: list[bytes] = []
    for field in fields:
        value = h[field]
        part = b"$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(field), field, len(value), value)
        parts.append(part)
        size += len(part)
        if size > limit:
            raise ReplyTooLarge
    text = b"%d" % next_cursor
    return b"*2\r\n" + _bulk(text) + b"*%d\r\n" % (2 * len(fields)) + b"".join(parts)


# --- the value type ------------------------------------------------------------------


def _encoding(h: Hash) -> bytes:
    return b"listpack" if h.listpack else b"hashtable"


def _copy(h: Hash) -> Hash:
    duplicate = Hash(h)
    duplicate.listpack = h.listpack
    duplicate.scan_snapshot = None
    return duplicate


def _rewrite(key: bytes, h: Hash) -> Iterator[list[bytes]]:
    """Redis's rewriteHashObject: HMSET with up to AOF_REWRITE_ITEMS_PER_CMD field-value
    pairs each (an item is a pair, as Redis counts them)."""
    cmd: list[bytes] = [b"HMSET", key]
    for field, value in h.items():
        cmd.append(field)
        cmd.append(value)
        if len(cmd) == 2 + 2 * REWRITE_ITEMS_PER_CMD:
            yield cmd
            cmd = [b"HMSET", key]
    if len(cmd) > 2:
        yield cmd


HASH = register_type(ValueType(b"hash", HASH_TYPES, _encoding, _copy, _rewrite))
