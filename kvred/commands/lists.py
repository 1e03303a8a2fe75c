"""List commands (Redis's t_list.c): pushes and pops at both ends, ranges, indexes,
LINSERT/LREM/LTRIM, LPOS, the moves between lists (LMOVE, RPOPLPUSH, LMPOP), and
their blocking forms (BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP; kvred/blocking.py).

A list is a plain `collections.deque` of bytes: O(1) at both ends as Redis's
quicklist, O(N) in the middle (LINDEX, LSET, LINSERT: CPython walks 64-item blocks
from the nearer end). A plain deque rather than a subclass: a subclass's method
calls cost ~25 ns more each (LPUSH, LPOP are redis-benchmark's). A list that becomes
empty is deleted, as in Redis.

OBJECT ENCODING: Redis 7.0 keeps every list as a quicklist (the listpack encoding for
small lists came with 7.2), so kvred answers `quicklist` for every list.

What is logged: pushes, LPOP/RPOP (with or without a count), LSET, LINSERT, LREM,
LTRIM, LMOVE and RPOPLPUSH as sent (each replays to the same result); LMPOP as the
LPOP/RPOP of the key it popped, with the number it popped, as Redis propagates it;
BLPOP/BRPOP as LPOP/RPOP key, BLMOVE/BRPOPLPUSH as LMOVE, BLMPOP as LMPOP.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from itertools import islice

from ..blocking import parse_timeout
from ..keyspace import Keyspace, WrongType
from ..notify import NOTIFY_GENERIC, NOTIFY_LIST
from ..resp import BULK_HEADS
from ..valuetypes import REWRITE_ITEMS_PER_CMD, ValueType, register_type
from .base import (
    ERR_NOT_INT,
    ERR_SYNTAX,
    Context,
    ReplyTooLarge,
    command,
    int_arg,
    parse_bmpop,
    parse_mpop,
    wait_for_keys,
)

__all__ = ["LIST"]

OK = b"+OK\r\n"
ZERO = b":0\r\n"
EMPTY_ARRAY = b"*0\r\n"
NULL_ARRAY = {False: b"*-1\r\n", True: b"_\r\n"}
ERR_POSITIVE = b"-ERR value is out of range, must be positive\r\n"
ERR_NO_SUCH_KEY = b"-ERR no such key\r\n"
ERR_INDEX = b"-ERR index out of range\r\n"
ERR_RANK_ZERO = (
    b"-ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
    b"or use negative to start from the end of the list\r\n"
)
ERR_COUNT_NEGATIVE = b"-ERR COUNT can't be negative\r\n"
ERR_MAXLEN_NEGATIVE = b"-ERR MAXLEN can't be negative\r\n"
_LONG_MIN = -(2**63)
# the fewest bytes an element takes in a reply ($0\r\n\r\n): a bound to refuse a reply
# that cannot fit before it is built (the executor checks the exact size after)
_MIN_ITEM_BYTES = 6


# --- the value type ------------------------------------------------------------------


def _encoding(value: deque[bytes]) -> bytes:
    return b"quicklist"


def _copy(value: deque[bytes]) -> deque[bytes]:
    return deque(value)  # the elements are immutable bytes: a shallow copy is a deep one


def _rewrite(key: bytes, value: deque[bytes]) -> Iterator[list[bytes]]:
    items = list(value)
    for i in range(0, len(items), REWRITE_ITEMS_PER_CMD):
        yield [b"RPUSH", key, *items[i : i + REWRITE_ITEMS_PER_CMD]]


LIST = register_type(ValueType(b"list", (deque,), _encoding, _copy, _rewrite))


# --- helpers ---------------------------------------------------------------------------


def _list(ctx: Context, key: bytes, write: bool = False) -> deque[bytes] | None:
    value: deque[bytes] | None = ctx.keyspace.lookup_typed(key, (deque,), write)
    return value


# `$<n>\r\n` for the element sizes most lists hold: a lookup, not a format
_BULK_HEADS = BULK_HEADS


def _bulks(ctx: Context, items: list[bytes]) -> bytes:
    """An array of bulk strings, refused (ReplyTooLarge) when it cannot fit the limit.
    Built as one join of looked-up heads (LRANGE 0 99 of small elements: 10 us, against
    25 us for a %-format per element)."""
    if not items:
        return EMPTY_ARRAY
    if sum(map(len, items)) + _MIN_ITEM_BYTES * len(items) > ctx.output_limit:
        raise ReplyTooLarge
    heads = _BULK_HEADS
    try:
        body = b"\r\n".join([heads[len(e)] + e for e in items])
    except IndexError:  # an element of 1 KB or more
        body = b"\r\n".join([b"$%d\r\n%b" % (len(e), e) for e in items])
    return b"*%d\r\n%b\r\n" % (len(items), body)


# --- pushes --------------------------------------------------------------------------


def _push(ctx: Context, argv: list[bytes], left: bool, only_existing: bool) -> bytes:
    keyspace = ctx.keyspace
    key = argv[1]
    # Keyspace.lookup_write inlined for a key without a TTL (LPUSH/RPUSH are hot)
    value = keyspace.data.get(key)
    if value is not None and not (keyspace.expires and key in keyspace.expires):
        if keyspace.track:
            keyspace.touch(key)
    else:
        value = keyspace.lookup_write(key)
    if value is None:
        if only_existing:
            return ZERO
        value = deque()
        keyspace.set_key(key, value)  # signals watchers
    elif type(value) is not deque:
        raise WrongType
    elif keyspace.watched:
        keyspace.signal_modified(key)
    if len(argv) == 3:
        if left:
            value.appendleft(argv[2])
        else:
            value.append(argv[2])
    elif left:
        value.extendleft(argv[2:])
    else:
        value.extend(argv[2:])
    ctx.aof_feed(argv)
    if keyspace.notify_flags:
        keyspace.notify(NOTIFY_LIST, b"lpush" if left else b"rpush", key)
    return b":%d\r\n" % len(value)


@command("lpush", -3, "write denyoom fast", (1, 1, 1))
def lpush(ctx: Context, argv: list[bytes]) -> bytes:
    return _push(ctx, argv, True, False)


@command("rpush", -3, "write denyoom fast", (1, 1, 1))
def rpush(ctx: Context, argv: list[bytes]) -> bytes:
    return _push(ctx, argv, False, False)


@command("lpushx", -3, "write denyoom fast", (1, 1, 1))
def lpushx(ctx: Context, argv: list[bytes]) -> bytes:
    return _push(ctx, argv, True, True)


@command("rpushx", -3, "write denyoom fast", (1, 1, 1))
def rpushx(ctx: Context, argv: list[bytes]) -> bytes:
    return _push(ctx, argv, False, True)


# --- pops ----------------------------------------------------------------------------


def _pop(ctx: Context, argv: list[bytes], left: bool) -> bytes:
    """LPOP/RPOP key [count] (Redis 7.0's popGenericCommand)."""
    argc = len(argv)
    if argc > 3:
        return b"-ERR wrong number of arguments for '" + (b"lpop" if left else b"rpop") + b"' command\r\n"
    count = -1
    if argc == 3:
        number = int_arg(argv[2])
        if number is None or number < 0:
            return ERR_POSITIVE
        count = number
    keyspace = ctx.keyspace
    key = argv[1]
    value = keyspace.data.get(key)
    if value is not None and not (keyspace.expires and key in keyspace.expires):
        if keyspace.track:
            keyspace.touch(key)
    else:
        value = keyspace.lookup_write(key)
        if value is None:
            return ctx.null if count < 0 else NULL_ARRAY[ctx.resp3]
    if type(value) is not deque:
        raise WrongType
    if count < 0:
        item = value.popleft() if left else value.pop()
        if value:
            if keyspace.watched:
                keyspace.signal_modified(key)
        else:
            keyspace.delete(key)
        ctx.aof_feed(argv)
        if keyspace.notify_flags:
            _notify_popped(keyspace, key, left, value)
        return b"$%d\r\n%b\r\n" % (len(item), item)
    if count == 0:
        return EMPTY_ARRAY
    size = len(value)
    if count >= size:
        items = list(value) if left else list(reversed(value))
        value = deque()  # what is left (the key is gone)
        keyspace.delete(key)
    else:
        take = value.popleft if left else value.pop
        items = [take() for _ in range(count)]
        keyspace.modified(key)
    ctx.aof_feed(argv)
    if keyspace.notify_flags:
        _notify_popped(keyspace, key, left, value)
    return _bulks(ctx, items)


def _notify_popped(keyspace: Keyspace, key: bytes, left: bool, rest: deque[bytes]) -> None:
    """The events of a pop: lpop/rpop, then del if the list is now empty (and gone)."""
    keyspace.notify(NOTIFY_LIST, b"lpop" if left else b"rpop", key)
    if not rest:
        keyspace.notify(NOTIFY_GENERIC, b"del", key)


@command("lpop", -2, "write fast", (1, 1, 1))
def lpop(ctx: Context, argv: list[bytes]) -> bytes:
    return _pop(ctx, argv, True)


@command("rpop", -2, "write fast", (1, 1, 1))
def rpop(ctx: Context, argv: list[bytes]) -> bytes:
    return _pop(ctx, argv, False)


# --- reads ---------------------------------------------------------------------------


@command("llen", 2, "readonly fast", (1, 1, 1))
def llen(ctx: Context, argv: list[bytes]) -> bytes:
    value = _list(ctx, argv[1])
    return ZERO if value is None else b":%d\r\n" % len(value)


def _range_items(value: deque[bytes], start: int, end: int) -> list[bytes]:
    """The elements from `start` to `end` inclusive, 0 <= start <= end < len(value),
    walked from the nearer end."""
    size = len(value)
    if start > size - 1 - end:
        items = list(islice(reversed(value), size - 1 - end, size - start))
        items.reverse()
        return items
    return list(islice(value, start, end + 1))


def _normalise_range(start: int, end: int, size: int) -> tuple[int, int] | None:
    """Redis's range rules (LRANGE, LTRIM): negative counts from the end; None if empty."""
    if start < 0:
        start += size
    if end < 0:
        end += size
    if start < 0:
        start = 0
    if start > end or start >= size:
        return None
    return start, min(end, size - 1)


@command("lrange", 4, "readonly", (1, 1, 1))
def lrange(ctx: Context, argv: list[bytes]) -> bytes:
    start, end = int_arg(argv[2]), int_arg(argv[3])
    if start is None or end is None:
        return ERR_NOT_INT
    keyspace = ctx.keyspace
    key = argv[1]
    value = keyspace.data.get(key)
    if value is not None and not (keyspace.expires and key in keyspace.expires):
        keyspace.hits += 1
        if keyspace.track:
            keyspace.touch(key)
    else:
        value = keyspace.lookup_read(key)
        if value is None:
            return EMPTY_ARRAY
    if type(value) is not deque:
        raise WrongType
    bounds = _normalise_range(start, end, len(value))
    if bounds is None:
        return EMPTY_ARRAY
    return _bulks(ctx, _range_items(value, *bounds))


@command("lindex", 3, "readonly", (1, 1, 1))
def lindex(ctx: Context, argv: list[bytes]) -> bytes:
    value = _list(ctx, argv[1])
    if value is None:
        return ctx.null
    index = int_arg(argv[2])
    if index is None:
        return ERR_NOT_INT
    if index < 0:
        index += len(value)
    if not 0 <= index < len(value):
        return ctx.null
    item = value[index]
    return b"$%d\r\n%b\r\n" % (len(item), item)


@command("lpos", -3, "readonly", (1, 1, 1))
def lpos(ctx: Context, argv: list[bytes]) -> bytes:
    """LPOS key element [RANK rank] [COUNT num] [MAXLEN len]."""
    rank, count, maxlen = 1, -1, 0  # count -1: no COUNT option
    i = 3
    argc = len(argv)
    while i < argc:
        opt = argv[i].lower()
        if i + 1 >= argc or opt not in (b"rank", b"count", b"maxlen"):
            return ERR_SYNTAX
        number = int_arg(argv[i + 1])
        if opt == b"rank":
            if number is None:
                return ERR_NOT_INT
            if number == 0:
                return ERR_RANK_ZERO
            rank = number
        elif number is None or number < 0:
            return ERR_COUNT_NEGATIVE if opt == b"count" else ERR_MAXLEN_NEGATIVE
        elif opt == b"count":
            count = number
        else:
            maxlen = number
        i += 2
    value = _list(ctx, argv[1])
    if value is None:
        return ctx.null if count == -1 else EMPTY_ARRAY
    size = len(value)
    element = argv[2]
    from_tail = rank < 0
    if rank == _LONG_MIN:
        # Redis 7.0 negates RANK in a C long: LONG_MIN stays LONG_MIN, so every match
        # counts from the first one (from the tail) and COUNT never stops the search.
        rank, count = 1, (0 if count != -1 else -1)
    elif from_tail:
        rank = -rank
    walk = reversed(value) if from_tail else iter(value)
    if maxlen:
        walk = islice(walk, maxlen)
    matches = 0
    found: list[bytes] = []
    for index, item in enumerate(walk):
        if item == element:
            matches += 1
            if matches >= rank:
                found.append(b":%d\r\n" % (size - 1 - index if from_tail else index))
                if count == -1 or (count and matches - rank + 1 >= count):
                    break
                if len(found) * 4 > ctx.output_limit:
                    raise ReplyTooLarge
    if count == -1:
        return found[0] if found else ctx.null
    return b"*%d\r\n" % len(found) + b"".join(found)


# --- changes in the middle -----------------------------------------------------------------


@command("lset", 4, "write denyoom", (1, 1, 1))
def lset(ctx: Context, argv: list[bytes]) -> bytes:
    key = argv[1]
    value = _list(ctx, key, write=True)
    if value is None:
        return ERR_NO_SUCH_KEY
    index = int_arg(argv[2])
    if index is None:
        return ERR_NOT_INT
    if index < 0:
        index += len(value)
    if not 0 <= index < len(value):
        return ERR_INDEX
    value[index] = argv[3]
    ctx.keyspace.modified(key)
    ctx.aof_feed(argv)
    ctx.keyspace.notify(NOTIFY_LIST, b"lset", key)
    return OK


@command("linsert", 5, "write denyoom", (1, 1, 1))
def linsert(ctx: Context, argv: list[bytes]) -> bytes:
    """LINSERT key BEFORE|AFTER pivot element: the new length, -1 without the pivot."""
    where = argv[2].lower()
    if where != b"before" and where != b"after":
        return ERR_SYNTAX
    key = argv[1]
    value = _list(ctx, key, write=True)
    if value is None:
        return ZERO
    try:
        index = value.index(argv[3])
    except ValueError:
        return b":-1\r\n"
    value.insert(index if where == b"before" else index + 1, argv[4])
    ctx.keyspace.modified(key)
    ctx.aof_feed(argv)
    ctx.keyspace.notify(NOTIFY_LIST, b"linsert", key)
    return b":%d\r\n" % len(value)


@command("lrem", 4, "write", (1, 1, 1))
def lrem(ctx: Context, argv: list[bytes]) -> bytes:
    """LREM key count element: count > 0 from the head, < 0 from the tail, 0 all."""
    count = int_arg(argv[2])
    if count is None:
        return ERR_NOT_INT
    key = argv[1]
    value = _list(ctx, key, write=True)
    if value is None:
        return ZERO
    element = argv[3]
    if element not in value:
        return ZERO
    limit = abs(count) or len(value)
    kept: list[bytes] = []
    removed = 0
    for item in reversed(value) if count < 0 else value:
        if removed < limit and item == element:
            removed += 1
        else:
            kept.append(item)
    if count < 0:
        kept.reverse()
    value.clear()
    value.extend(kept)
    ctx.keyspace.notify(NOTIFY_LIST, b"lrem", key)
    ctx.keyspace.modified_or_emptied(key, value)
    ctx.aof_feed(argv)
    return b":%d\r\n" % removed


@command("ltrim", 4, "write", (1, 1, 1))
def ltrim(ctx: Context, argv: list[bytes]) -> bytes:
    start, end = int_arg(argv[2]), int_arg(argv[3])
    if start is None or end is None:
        return ERR_NOT_INT
    key = argv[1]
    value = _list(ctx, key, write=True)
    if value is None:
        return OK
    keyspace = ctx.keyspace
    size = len(value)
    bounds = _normalise_range(start, end, size)
    if bounds is None:
        keyspace.notify(NOTIFY_LIST, b"ltrim", key)
        keyspace.delete_emptied(key)
        ctx.aof_feed(argv)
        return OK
    start, end = bounds
    kept = end - start + 1
    if kept < size:
        if kept < size - kept:
            items = _range_items(value, start, end)
            value.clear()
            value.extend(items)
        else:
            for _ in range(start):
                value.popleft()
            for _ in range(size - 1 - end):
                value.pop()
        ctx.aof_feed(argv)
    # Redis signals the key (a WATCH fails) and notifies even when nothing was trimmed,
    # but propagates only a change
    keyspace.modified(key)
    keyspace.notify(NOTIFY_LIST, b"ltrim", key)
    return OK


# --- moves between lists -------------------------------------------------------------------


def _side(arg: bytes) -> bool | None:
    """LEFT -> True, RIGHT -> False, anything else None."""
    side = arg.lower()
    if side == b"left":
        return True
    if side == b"right":
        return False
    return None


def _move(ctx: Context, argv: list[bytes], from_left: bool, to_left: bool) -> bytes:
    source, destination = argv[1], argv[2]
    src = _list(ctx, source, write=True)
    if src is None:
        return ctx.null
    keyspace = ctx.keyspace
    dst = keyspace.lookup_write(destination)
    if dst is not None and type(dst) is not deque:
        raise WrongType
    item = src.popleft() if from_left else src.pop()
    if dst is None:
        dst = deque()
        keyspace.set_key(destination, dst)
    else:
        keyspace.modified(destination)
    if to_left:
        dst.appendleft(item)
    else:
        dst.append(item)
    if keyspace.notify_flags:  # the push, then the pop (and del), as Redis's lmoveGenericCommand
        keyspace.notify(NOTIFY_LIST, b"lpush" if to_left else b"rpush", destination)
        keyspace.notify(NOTIFY_LIST, b"lpop" if from_left else b"rpop", source)
    keyspace.modified_or_emptied(source, src)
    ctx.aof_feed(argv)
    return b"$%d\r\n%b\r\n" % (len(item), item)


@command("lmove", 5, "write denyoom", (1, 2, 1))
def lmove(ctx: Context, argv: list[bytes]) -> bytes:
    from_left, to_left = _side(argv[3]), _side(argv[4])
    if from_left is None or to_left is None:
        return ERR_SYNTAX
    return _move(ctx, argv, from_left, to_left)


@command("rpoplpush", 3, "write denyoom", (1, 2, 1))
def rpoplpush(ctx: Context, argv: list[bytes]) -> bytes:
    return _move(ctx, argv, False, True)


def _mpop(ctx: Context, keys: list[bytes], left: bool, count: int) -> bytes | None:
    """The first non-empty list's elements as [key, [elements]], logged as LPOP/RPOP key
    <number popped>; None if every list is empty (WRONGTYPE first if one is not a list)."""
    keyspace = ctx.keyspace
    for key in keys:
        value = _list(ctx, key, write=True)
        if not value:
            continue
        if count >= len(value):
            items = list(value) if left else list(reversed(value))
            value = deque()  # what is left (the key is gone)
            keyspace.delete(key)
        else:
            take = value.popleft if left else value.pop
            items = [take() for _ in range(count)]
            keyspace.modified(key)
        ctx.aof_feed([b"LPOP" if left else b"RPOP", key, b"%d" % len(items)])
        if keyspace.notify_flags:
            _notify_popped(keyspace, key, left, value)
        return b"*2\r\n$%d\r\n%b\r\n" % (len(key), key) + _bulks(ctx, items)
    return None


@command("lmpop", -4, "write movablekeys", (0, 0, 0))
def lmpop(ctx: Context, argv: list[bytes]) -> bytes:
    """LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]."""
    parsed = parse_mpop(argv, 1, _SIDES)
    if isinstance(parsed, bytes):
        return parsed
    keys, right, count = parsed
    return _mpop(ctx, keys, not right, count) or NULL_ARRAY[ctx.resp3]


# --- blocking forms (kvred/blocking.py): served now if they can be, else they wait ----

_SIDES = (b"left", b"right")
_LIST_TYPES = (deque,)


def _bpop(ctx: Context, argv: list[bytes], left: bool) -> bytes:
    """BLPOP/BRPOP key [key ...] timeout: [key, element] of the first non-empty list,
    logged as LPOP/RPOP key."""
    timeout = parse_timeout(argv[-1])
    if isinstance(timeout, bytes):
        return timeout
    keys = argv[1:-1]
    keyspace = ctx.keyspace
    for key in keys:
        value = _list(ctx, key, write=True)
        if not value:
            continue
        item = value.popleft() if left else value.pop()
        keyspace.notify(NOTIFY_LIST, b"lpop" if left else b"rpop", key)
        keyspace.modified_or_emptied(key, value)
        ctx.aof_feed([b"LPOP" if left else b"RPOP", key])
        return b"*2\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(key), key, len(item), item)
    return wait_for_keys(ctx, argv, keys, timeout, NULL_ARRAY[ctx.resp3], _LIST_TYPES)


@command("blpop", -3, "write noscript blocking", (1, -2, 1))
def blpop(ctx: Context, argv: list[bytes]) -> bytes:
    return _bpop(ctx, argv, True)


@command("brpop", -3, "write noscript blocking", (1, -2, 1))
def brpop(ctx: Context, argv: list[bytes]) -> bytes:
    return _bpop(ctx, argv, False)


def _bmove(ctx: Context, argv: list[bytes], from_left: bool, to_left: bool, timeout_arg: bytes) -> bytes:
    timeout = parse_timeout(timeout_arg)
    if isinstance(timeout, bytes):
        return timeout
    source, destination = argv[1], argv[2]
    if _list(ctx, source, write=True) is None:
        # a timeout answers a null array, MULTI a null (Redis 7.0)
        return wait_for_keys(ctx, argv, [source], timeout, NULL_ARRAY[ctx.resp3], _LIST_TYPES, ctx.null)
    # logged as the LMOVE it did
    return _move(ctx, [b"LMOVE", source, destination, _SIDE_NAMES[from_left], _SIDE_NAMES[to_left]],
                 from_left, to_left)


_SIDE_NAMES = {True: b"LEFT", False: b"RIGHT"}


@command("blmove", 6, "write denyoom noscript blocking", (1, 2, 1))
def blmove(ctx: Context, argv: list[bytes]) -> bytes:
    from_left, to_left = _side(argv[3]), _side(argv[4])
    if from_left is None or to_left is None:
        return ERR_SYNTAX
    return _bmove(ctx, argv, from_left, to_left, argv[5])


@command("brpoplpush", 4, "write denyoom noscript blocking", (1, 2, 1))
def brpoplpush(ctx: Context, argv: list[bytes]) -> bytes:
    return _bmove(ctx, argv, False, True, argv[3])


@command("blmpop", -5, "write blocking movablekeys", (0, 0, 0))
def blmpop(ctx: Context, argv: list[bytes]) -> bytes:
    """BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]."""
    parsed = parse_bmpop(argv, _SIDES)
    if isinstance(parsed, bytes):
        return parsed
    keys, right, count, timeout = parsed
    return _mpop(ctx, keys, not right, count) or wait_for_keys(ctx, argv, keys, timeout, NULL_ARRAY[ctx.resp3], _LIST_TYPES)
