"""Set commands (Redis's t_set.c): SADD, SREM, SPOP, SRANDMEMBER, SMOVE, the
membership and cardinality queries, the set algebra (SINTER, SUNION, SDIFF, their
*STORE forms, SINTERCARD) and SSCAN.

A set is a `RedisSet`: a Python `set` of the members (bytes), so membership, adding,
removing and the algebra run at C speed. It records the encoding Redis 7.0 would use:
`intset` while every member is an integer string2ll accepts and the cardinality is at
most set-max-intset-entries, `hashtable` from the first member or size that breaks
that, for good (7.0 has no listpack sets; the only way back is SPOP with a count close
to the cardinality, which rebuilds the set as Redis does). Replies list an intset's
members in ascending numeric order, as Redis does; a hashtable's order is arbitrary.

Random picks (SPOP, SRANDMEMBER) need O(1) access to a random member, which a
Python set does not give: the first pick builds `picks`, a list of the members that
SADD and SMOVE keep appending to and that may hold stale entries (members removed
by other commands since), dropped when a pick meets them; it is rebuilt once stale
entries could be half of it, so the cost stays O(1) amortised.

What is logged: SADD, SREM, SMOVE and the *STORE commands as sent (and only when
they changed something); SPOP as the SREM of the members it removed, or DEL when it
took the whole set (as Redis 7.0 propagates it); SRANDMEMBER nothing.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator

from ..keyspace import WrongType
from ..notify import NOTIFY_GENERIC, NOTIFY_SET
from ..resp import parse_strict_int
from ..valuetypes import REWRITE_ITEMS_PER_CMD, ValueType, register_type
from .base import ERR_NOT_INT, ERR_SYNTAX, Context, ReplyTooLarge, command, int_arg
from .keys import parse_cursor
from .scanning import parse_scan_options, scan_members

__all__ = ["RedisSet", "SET_TYPES"]

ZERO = b":0\r\n"
ONE = b":1\r\n"
EMPTY_SCAN = b"*2\r\n$1\r\n0\r\n*0\r\n"
ERR_POSITIVE = b"-ERR value is out of range, must be positive\r\n"
ERR_SRANDMEMBER_RANGE = (
    b"-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n"
)
ERR_NUMKEYS = b"-ERR numkeys should be greater than 0\r\n"
ERR_NUMKEYS_ARGS = b"-ERR Number of keys can't be greater than number of args\r\n"
ERR_LIMIT = b"-ERR LIMIT can't be negative\r\n"
SPOP_MOVE_STRATEGY_MUL = 5  # Redis's: SPOP with a count close to the size keeps the rest instead
SRANDMEMBER_SUB_STRATEGY_MUL = 3
SREM_BATCH = 1024  # members per logged SREM of a SPOP with a count
_LONG_MIN = -(2**63)


class RedisSet(set):  # type: ignore[type-arg]
    """A set value: its members, the encoding Redis would use, the scan in progress and
    the random-pick list (see the module's docstring)."""

    __slots__ = ("intset", "scan_snapshot", "picks")

    intset: bool
    scan_snapshot: tuple[int, list[bytes]] | None
    picks: list[bytes] | None


SET_TYPES = (RedisSet,)


def _is_int(member: bytes) -> bool:
    return parse_strict_int(member) is not None


def new_set(members: Iterable[bytes], max_intset: int) -> RedisSet:
    """A set holding `members`, encoded as Redis would encode a set built by adding them."""
    value = RedisSet(members)
    value.intset = len(value) <= max_intset and all(map(_is_int, value))
    value.scan_snapshot = None
    value.picks = None
    return value


def ordered(value: RedisSet) -> Iterable[bytes]:
    """The members in the order Redis lists them: ascending integers for an intset."""
    if value.intset:
        return sorted(value, key=int)
    return value


def _add(value: RedisSet, members: list[bytes], max_intset: int) -> int:
    """Add `members`; the number that were new. Keeps the encoding and the picks."""
    before = len(value)
    picks = value.picks
    if picks is None:
        value.update(members)
    else:
        for member in members:
            if member not in value:
                value.add(member)
                picks.append(member)
    added = len(value) - before
    if added and value.intset and (len(value) > max_intset or not all(map(_is_int, members))):
        value.intset = False
    return added


def _pick(value: RedisSet) -> bytes:
    """A random member of a non-empty set, O(1) amortised."""
    picks = value.picks
    if picks is None or len(picks) > 2 * len(value) + 32:
        picks = value.picks = list(value)
    randrange = random.randrange
    while True:
        i = randrange(len(picks))
        member = picks[i]
        if member in value:
            return member
        last = picks.pop()  # stale: drop it (the last entry takes its place)
        if i < len(picks):
            picks[i] = last


def _set_header(ctx: Context, n: int) -> bytes:
    return b"~%d\r\n" % n if ctx.resp3 else b"*%d\r\n" % n


def _members_reply(header: bytes, members: Iterable[bytes], limit: int) -> bytes:
    """An aggregate of bulk strings, ReplyTooLarge once it passes `limit` bytes."""
    parts = [header]
    size = 0
    for member in members:
        part = b"$%d\r\n%b\r\n" % (len(member), member)
        parts.append(part)
        size += len(part)
        if size > limit:
            raise ReplyTooLarge
    return b"".join(parts)


def _lookup(ctx: Context, key: bytes, write: bool = False) -> RedisSet | None:
    value: RedisSet | None = ctx.keyspace.lookup_typed(key, SET_TYPES, write)
    return value


# ------------------------------------------------------------------ one set


@command("sadd", -3, "write denyoom fast", (1, 1, 1))
def sadd(ctx: Context, argv: list[bytes]) -> bytes:
    keyspace = ctx.keyspace
    key = argv[1]
    value = keyspace.lookup_typed(key, SET_TYPES, True)
    max_intset = ctx.config.set_max_intset_entries
    if value is None:
        value = new_set(argv[2:], max_intset)
        keyspace.set_key(key, value)
        ctx.aof_feed(argv)
        if keyspace.notify_flags:
            keyspace.notify(NOTIFY_SET, b"sadd", key)
        return b":%d\r\n" % len(value)
    if len(argv) == 3 and value.picks is None:  # the common case, one member
        member = argv[2]
        if member in value:
            return ZERO
        value.add(member)
        if value.intset and (len(value) > max_intset or parse_strict_int(member) is None):
            value.intset = False
        added = 1
    else:
        added = _add(value, argv[2:], max_intset)
        if not added:
            return ZERO
    keyspace.modified(key)
    ctx.aof_feed(argv)
    if keyspace.notify_flags:
        keyspace.notify(NOTIFY_SET, b"sadd", key)
    return b":%d\r\n" % added


@command("srem", -3, "write fast", (1, 1, 1))
def srem(ctx: Context, argv: list[bytes]) -> bytes:
    key = argv[1]
    value = _lookup(ctx, key, True)
    if value is None:
        return ZERO
    before = len(value)
    if len(argv) == 3:
        value.discard(argv[2])
    else:
        value.difference_update(argv[2:])
    removed = before - len(value)
    if not removed:
        return ZERO
    ctx.keyspace.notify(NOTIFY_SET, b"srem", key)
    ctx.keyspace.modified_or_emptied(key, value)
    ctx.aof_feed(argv)
    return b":%d\r\n" % removed


@command("sismember", 3, "readonly fast", (1, 1, 1))
def sismember(ctx: Context, argv: list[bytes]) -> bytes:
    value = _lookup(ctx, argv[1])
    return ONE if value is not None and argv[2] in value else ZERO


@command("smismember", -3, "readonly fast", (1, 1, 1))
def smismember(ctx: Context, argv: list[bytes]) -> bytes:
    value = _lookup(ctx, argv[1])
    if value is None:
        return b"*%d\r\n" % (len(argv) - 2) + ZERO * (len(argv) - 2)
    return b"*%d\r\n" % (len(argv) - 2) + b"".join(ONE if m in value else ZERO for m in argv[2:])


@command("scard", 2, "readonly fast", (1, 1, 1))
def scard(ctx: Context, argv: list[bytes]) -> bytes:
    value = _lookup(ctx, argv[1])
    return ZERO if value is None else b":%d\r\n" % len(value)


@command("smembers", 2, "readonly", (1, 1, 1))
def smembers(ctx: Context, argv: list[bytes]) -> bytes:
    value = _lookup(ctx, argv[1])
    if value is None:
        return _set_header(ctx, 0)
    return _members_reply(_set_header(ctx, len(value)), ordered(value), ctx.output_limit)


@command("spop", -2, "write fast", (1, 1, 1))
def spop(ctx: Context, argv: list[bytes]) -> bytes:
    if len(argv) == 3:
        return _spop_count(ctx, argv)
    if len(argv) > 3:
        return ERR_SYNTAX
    key = argv[1]
    value = _lookup(ctx, key, True)
    if value is None:
        return ctx.null
    member = _pick(value)
    value.remove(member)
    keyspace = ctx.keyspace
    if keyspace.notify_flags:
        keyspace.notify(NOTIFY_SET, b"spop", key)
    keyspace.modified_or_emptied(key, value)
    ctx.aof_feed([b"SREM", key, member])
    return b"$%d\r\n%b\r\n" % (len(member), member)


def _spop_count(ctx: Context, argv: list[bytes]) -> bytes:
    count = int_arg(argv[2])
    if count is None or count < 0:
        return ERR_POSITIVE
    key = argv[1]
    value = _lookup(ctx, key, True)
    if value is None or count == 0:
        return _set_header(ctx, 0)
    size = len(value)
    ctx.keyspace.notify(NOTIFY_SET, b"spop", key)
    popped: Iterable[bytes]
    if count >= size:
        # the whole set, listed as Redis lists a union of it (a new set, intset if its
        # members allow: ascending); Redis propagates a DEL
        popped = list(ordered(new_set(value, ctx.config.set_max_intset_entries)))
        ctx.keyspace.delete_emptied(key)
        ctx.aof_feed([b"DEL", key])
    elif (size - count) * SPOP_MOVE_STRATEGY_MUL > count:  # few: random pops
        popped = []
        for _ in range(count):
            member = _pick(value)
            value.remove(member)
            popped.append(member)
        ctx.keyspace.modified(key)
        _log_srem(ctx, key, popped)
    else:
        # Most of it: Redis picks the members to keep and builds a new set of them (which
        # takes the encoding they call for: intset again, possibly), and returns the rest
        # in the old set's order.
        keep = random.sample(list(value), size - count)
        kept = new_set(keep, ctx.config.set_max_intset_entries)
        popped = [m for m in ordered(value) if m not in kept]
        value.clear()
        value.update(kept)
        value.intset = kept.intset
        value.picks = None
        ctx.keyspace.modified(key)
        _log_srem(ctx, key, popped)
    return _members_reply(_set_header(ctx, count if count < size else size), popped, ctx.output_limit)


def _log_srem(ctx: Context, key: bytes, members: list[bytes]) -> None:
    for i in range(0, len(members), SREM_BATCH):
        ctx.aof_feed([b"SREM", key, *members[i : i + SREM_BATCH]])


@command("srandmember", -2, "readonly", (1, 1, 1))
def srandmember(ctx: Context, argv: list[bytes]) -> bytes:
    if len(argv) == 3:
        return _srandmember_count(ctx, argv)
    if len(argv) > 3:
        return ERR_SYNTAX
    value = _lookup(ctx, argv[1])
    if value is None:
        return ctx.null
    member = _pick(value)
    return b"$%d\r\n%b\r\n" % (len(member), member)


def _srandmember_count(ctx: Context, argv: list[bytes]) -> bytes:
    count = int_arg(argv[2])
    if count is None:
        return ERR_NOT_INT
    if count == _LONG_MIN:
        return ERR_SRANDMEMBER_RANGE
    value = _lookup(ctx, argv[1])
    if value is None or count == 0:
        return b"*0\r\n"
    limit = ctx.output_limit
    size = len(value)
    if count < 0:  # repeats allowed
        return _random_picks_reply(value, -count, limit)
    if count >= size:
        return _members_reply(b"*%d\r\n" % size, ordered(value), limit)
    if count * SRANDMEMBER_SUB_STRATEGY_MUL > size:
        chosen: Iterable[bytes] = random.sample(list(value), count)
    else:
        found: set[bytes] = set()
        while len(found) < count:
            found.add(_pick(value))
        chosen = found
    return _members_reply(b"*%d\r\n" % count, chosen, limit)


def _random_picks_reply(value: RedisSet, n: int, limit: int) -> bytes:
    """`n` random members, repeats allowed, built in batches so that a huge count stops
    at the output limit."""
    parts = [b"*%d\r\n" % n]
    size = 0
    if len(value) <= 4096:
        pool = [b"$%d\r\n%b\r\n" % (len(m), m) for m in value]
        choices = random.choices
        while n > 0:
            batch = choices(pool, k=min(n, 4096))
            n -= len(batch)
            chunk = b"".join(batch)
            size += len(chunk)
            if size > limit:
                raise ReplyTooLarge
            parts.append(chunk)
        return b"".join(parts)
    for _ in range(n):
        member = _pick(value)
        part = b"$%d\r\n%b\r\n" % (len(member), member)
        size += len(part)
        if size > limit:
            raise ReplyTooLarge
        parts.append(part)
    return b"".join(parts)


@command("smove", 4, "write fast", (1, 2, 1))
def smove(ctx: Context, argv: list[bytes]) -> bytes:
    keyspace = ctx.keyspace
    src_key, dst_key, member = argv[1], argv[2], argv[3]
    # both looked up first (an expired one is deleted either way), as Redis
    src = keyspace.lookup_write(src_key)
    dst = keyspace.lookup_write(dst_key)
    if src is None:
        return ZERO
    if type(src) is not RedisSet or (dst is not None and type(dst) is not RedisSet):
        raise WrongType
    if src is dst:
        return ONE if member in src else ZERO
    if member not in src:
        return ZERO
    src.remove(member)
    keyspace.notify(NOTIFY_SET, b"srem", src_key)
    keyspace.modified_or_emptied(src_key, src)
    max_intset = ctx.config.set_max_intset_entries
    if dst is None:
        keyspace.set_key(dst_key, new_set((member,), max_intset))
        keyspace.notify(NOTIFY_SET, b"sadd", dst_key)
    elif _add(dst, [member], max_intset):
        keyspace.modified(dst_key)
        keyspace.notify(NOTIFY_SET, b"sadd", dst_key)
    ctx.aof_feed(argv)
    return ONE


# ------------------------------------------------------------------ set algebra


def _sets(ctx: Context, keys: list[bytes], write: bool) -> list[RedisSet | None]:
    """The sets at `keys` (None: no key, an empty set); WrongType for another type."""
    lookup = ctx.keyspace.lookup_typed
    return [lookup(key, SET_TYPES, write) for key in keys]


def _inter(sets: list[RedisSet | None]) -> tuple[RedisSet, list[RedisSet]] | None:
    """The smallest set and the others (stable order, as Redis's sort), or None if one is
    missing (the intersection is empty)."""
    present = [s for s in sets if s is not None]
    if len(present) < len(sets):
        return None
    present.sort(key=len)
    first = present[0]
    return first, [s for s in present[1:] if s is not first]


def _intersection(sets: list[RedisSet | None]) -> tuple[list[bytes] | set[bytes], bool]:
    """The members of the intersection in Redis's order, and whether that order is the
    ascending one of an intset (the smallest set's)."""
    found = _inter(sets)
    if found is None:
        return [], True
    first, others = found
    if first.intset:
        return [m for m in sorted(first, key=int) if all(m in s for s in others)], True
    return first.intersection(*others), False


@command("sinter", -2, "readonly", (1, -1, 1))
def sinter(ctx: Context, argv: list[bytes]) -> bytes:
    members, _ascending = _intersection(_sets(ctx, argv[1:], False))
    return _members_reply(_set_header(ctx, len(members)), members, ctx.output_limit)


@command("sintercard", -3, "readonly movablekeys", (0, 0, 0))
def sintercard(ctx: Context, argv: list[bytes]) -> bytes:
    numkeys = int_arg(argv[1])
    if numkeys is None or numkeys <= 0:
        return ERR_NUMKEYS
    if numkeys > len(argv) - 2:
        return ERR_NUMKEYS_ARGS
    limit = 0
    i = 2 + numkeys
    while i < len(argv):
        if argv[i].lower() == b"limit" and i + 1 < len(argv):
            value = int_arg(argv[i + 1])
            if value is None or value < 0:
                return ERR_LIMIT
            limit = value
            i += 2
        else:
            return ERR_SYNTAX
    found = _inter(_sets(ctx, argv[2 : 2 + numkeys], False))
    if found is None:
        return ZERO
    first, others = found
    if not limit:
        return b":%d\r\n" % len(first.intersection(*others))
    n = 0
    for member in first:
        if all(member in s for s in others):
            n += 1
            if n >= limit:
                break
    return b":%d\r\n" % n


def _store(ctx: Context, argv: list[bytes], result: RedisSet) -> bytes:
    """*STORE: `result` replaces the destination (any type, TTL dropped); an empty result
    deletes it. Logged as sent when something changed."""
    keyspace, dst = ctx.keyspace, argv[1]
    if result:
        keyspace.set_key(dst, result)
        ctx.aof_feed(argv)
        keyspace.notify(NOTIFY_SET, argv[0].lower(), dst)  # sinterstore, sunionstore, sdiffstore
        return b":%d\r\n" % len(result)
    if keyspace.delete(dst):
        ctx.aof_feed(argv)
        keyspace.notify(NOTIFY_GENERIC, b"del", dst)
    return ZERO


@command("sinterstore", -3, "write denyoom", (1, -1, 1))
def sinterstore(ctx: Context, argv: list[bytes]) -> bytes:
    members, _ascending = _intersection(_sets(ctx, argv[2:], True))
    return _store(ctx, argv, new_set(members, ctx.config.set_max_intset_entries))


def _union(sets: list[RedisSet | None], max_intset: int) -> RedisSet:
    return new_set(set().union(*[s for s in sets if s is not None]), max_intset)


def _diff(sets: list[RedisSet | None], max_intset: int) -> RedisSet:
    """SDIFF's result, encoded as Redis's: its algorithm 2 (chosen when the first set is
    large compared with the others) adds the whole first set before removing, so the
    result is a hashtable whenever the first set would be one."""
    first = sets[0]
    if first is None:
        return new_set((), max_intset)
    others = [s for s in sets[1:] if s is not None]
    present = 1 + len(others)
    algo_one_work = len(first) * present // 2
    algo_two_work = len(first) + sum(map(len, others))
    result = new_set(first.difference(*others), max_intset)
    if algo_one_work > algo_two_work and result.intset:
        result.intset = len(first) <= max_intset and (first.intset or all(map(_is_int, first)))
    return result


@command("sunion", -2, "readonly", (1, -1, 1))
def sunion(ctx: Context, argv: list[bytes]) -> bytes:
    result = _union(_sets(ctx, argv[1:], False), ctx.config.set_max_intset_entries)
    return _members_reply(_set_header(ctx, len(result)), ordered(result), ctx.output_limit)


@command("sunionstore", -3, "write denyoom", (1, -1, 1))
def sunionstore(ctx: Context, argv: list[bytes]) -> bytes:
    return _store(ctx, argv, _union(_sets(ctx, argv[2:], True), ctx.config.set_max_intset_entries))


@command("sdiff", -2, "readonly", (1, -1, 1))
def sdiff(ctx: Context, argv: list[bytes]) -> bytes:
    result = _diff(_sets(ctx, argv[1:], False), ctx.config.set_max_intset_entries)
    return _members_reply(_set_header(ctx, len(result)), ordered(result), ctx.output_limit)


@command("sdiffstore", -3, "write denyoom", (1, -1, 1))
def sdiffstore(ctx: Context, argv: list[bytes]) -> bytes:
    return _store(ctx, argv, _diff(_sets(ctx, argv[2:], True), ctx.config.set_max_intset_entries))


# ------------------------------------------------------------------ SSCAN


@command("sscan", -3, "readonly", (1, 1, 1))
def sscan(ctx: Context, argv: list[bytes]) -> bytes:
    cursor = parse_cursor(argv[2])
    if cursor is None:
        return b"-ERR invalid cursor\r\n"
    value = _lookup(ctx, argv[1])
    if value is None:
        return EMPTY_SCAN
    options = parse_scan_options(argv, 3)
    if isinstance(options, bytes):
        return options
    if value.intset:
        next_cursor, page = scan_members(value, sorted(value, key=int), cursor, options.count, True)
    else:
        next_cursor, page = scan_members(value, value, cursor, options.count, False)
    if options.match is not None:
        page = [m for m in page if options.match(m)]
    cursor_text = b"%d" % next_cursor
    head = b"*2\r\n$%d\r\n%b\r\n*%d\r\n" % (len(cursor_text), cursor_text, len(page))
    return _members_reply(head, page, ctx.output_limit)


# ------------------------------------------------------------------ the value type


def _encoding(value: RedisSet) -> bytes:
    return b"intset" if value.intset else b"hashtable"


def _copy(value: RedisSet) -> RedisSet:
    duplicate = RedisSet(value)
    duplicate.intset = value.intset
    duplicate.scan_snapshot = None
    duplicate.picks = None
    return duplicate


def _rewrite(key: bytes, value: RedisSet) -> Iterator[list[bytes]]:
    members = list(ordered(value))
    for i in range(0, len(members), REWRITE_ITEMS_PER_CMD):
        yield [b"SADD", key, *members[i : i + REWRITE_ITEMS_PER_CMD]]


SET = register_type(ValueType(b"set", SET_TYPES, _encoding, _copy, _rewrite))
