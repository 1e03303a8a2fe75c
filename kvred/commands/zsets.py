"""Sorted set commands (Redis's t_zset.c), sans-IO.

A sorted set is a `ZSet`: a member -> score dict and a `SortedList` of (score, member)
pairs, which orders equal scores by member bytes as Redis does. ZADD, ZREM and ZRANK
are O(log N); ranges by rank, score or lex are a bisection and a slice.

OBJECT ENCODING follows Redis 7.0: `listpack` while the set has at most
zset-max-listpack-entries members of at most zset-max-listpack-value bytes (checked
when a member is added; ZADD creates a skiplist at once when the limit is 0 or its
first member is too long), `skiplist` after, never back. The store commands (ZUNIONSTORE,
ZRANGESTORE...) build a new value whose encoding follows its final size. A listpack
keeps a score as text, so a score of -0 reads back as 0 there, as in Redis.

Scores are parsed as Redis's getDoubleFromObject (strtod: hex, inf, no NaN, no
overflow) and range bounds as zslParseRange (strtod up to a NUL); they are formatted
as Redis 7.0's addReplyDouble ("%.17g", inf, -inf), which is also what ZSCAN and the
AOF rewrite write (17 significant digits read back to the same double).

What is logged: commands as sent when they changed something (ZADD INCR and ZINCRBY
are deterministic, and so are ZPOPMIN/ZPOPMAX); ZMPOP as ZPOPMIN/ZPOPMAX key count, as
Redis propagates it; ZRANDMEMBER nothing.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Iterator
from typing import Any

from sortedcontainers import SortedList

from .. import resp
from ..blocking import parse_timeout
from ..keyspace import WrongType
from ..notify import NOTIFY_GENERIC, NOTIFY_ZSET
from ..valuetypes import REWRITE_ITEMS_PER_CMD, ValueType, register_type, value_type
from .base import (
    ERR_NOT_FLOAT,
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
from .keys import parse_cursor
from .scanning import parse_scan_options, scan_members

__all__ = ["ZSet", "parse_score", "format_score"]

ZERO = b":0\r\n"
EMPTY_ARRAY = b"*0\r\n"
INF = math.inf
ERR_NAN = b"-ERR resulting score is not a number (NaN)\r\n"
ERR_XX_NX = b"-ERR XX and NX options at the same time are not compatible\r\n"
ERR_GT_LT_NX = b"-ERR GT, LT, and/or NX options at the same time are not compatible\r\n"
ERR_INCR_PAIR = b"-ERR INCR option supports a single increment-element pair\r\n"
ERR_MINMAX_FLOAT = b"-ERR min or max is not a float\r\n"
ERR_MINMAX_LEX = b"-ERR min or max not valid string range item\r\n"
ERR_LIMIT_RANK = b"-ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX\r\n"
ERR_WITHSCORES_LEX = b"-ERR syntax error, WITHSCORES not supported in combination with BYLEX\r\n"
ERR_POSITIVE = b"-ERR value is out of range, must be positive\r\n"
ERR_WEIGHT = b"-ERR weight value is not a float\r\n"
ERR_NUMKEYS = b"-ERR numkeys should be greater than 0\r\n"
NULL_ARRAY = {False: b"*-1\r\n", True: b"_\r\n"}
ERR_LIMIT_NEG = b"-ERR LIMIT can't be negative\r\n"
ERR_OUT_OF_RANGE = b"-ERR value is out of range\r\n"
ERR_RANDMEMBER_RANGE = (
    b"-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n"
)
_LONG_MAX = 2**63 - 1


class ZSet:
    """A sorted set: `scores` member -> score, `ordered` the (score, member) pairs."""

    __slots__ = ("scores", "ordered", "listpack", "scan_snapshot")

    def __init__(self, listpack: bool = True) -> None:
        self.scores: dict[bytes, float] = {}
        self.ordered: Any = SortedList()
        self.listpack = listpack  # Redis's encoding; never back once False
        self.scan_snapshot: tuple[int, list[Any]] | None = None

    def __len__(self) -> int:
        return len(self.scores)


# --- scores ------------------------------------------------------------------------

_STRTOD = re.compile(
    rb"""[ \t\n\v\f\r]*(?P<num>[+-]?(?:
        (?P<hex>0[xX](?:[0-9a-fA-F]+(?:\.[0-9a-fA-F]*)?|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?)
      | (?P<dec>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
      | (?P<inf>[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)
      | (?P<nan>[nN][aA][nN](?:\([0-9A-Za-z_]*\))?)
    ))""",
    re.X,
)


def _strtod(text: bytes) -> tuple[float, int, bool]:
    """C's strtod on `text`: (value, bytes consumed, ERANGE)."""
    m = _STRTOD.match(text)
    if m is None:
        return 0.0, 0, False
    num = m["num"]
    if m["dec"] is not None:
        value = float(num)
        if math.isinf(value):
            return value, m.end(), True
        if value == 0 and num.strip(b"+-").split(b"e")[0].split(b"E")[0].strip(b"0.") != b"":
            return value, m.end(), True  # underflow to zero
        return value, m.end(), False
    if m["hex"] is not None:
        try:
            value = float.fromhex(num.decode())
        except OverflowError:
            return (-INF if num[:1] == b"-" else INF), m.end(), True
        mantissa = m["hex"][2:].lower().split(b"p")[0]
        if value == 0 and mantissa.strip(b"0.") != b"":
            return value, m.end(), True
        return value, m.end(), False
    if m["inf"] is not None:
        return (-INF if num[:1] == b"-" else INF), m.end(), False
    return math.nan, m.end(), False


def parse_score(arg: bytes) -> float | None:
    """Redis's getDoubleFromObject: the whole argument a double (strtod), no leading
    space, no NaN, no overflow or underflow to zero; None if invalid."""
    try:
        value = float(arg)
    except ValueError:
        value = 0.0
    else:
        # float() agrees with strtod on a plain finite non-zero decimal
        if value != 0 and value - value == 0 and arg[0] > 32 and arg[-1] > 32 and b"_" not in arg:
            return value
        if arg == b"0":
            return 0.0
    if not arg or arg[0] in b" \t\n\v\f\r":
        return None
    value, used, erange = _strtod(arg)
    if used != len(arg) or erange or value != value:
        return None
    return value


def format_score(value: float) -> bytes:
    """Redis 7.0's double formatting ("%.17g"; inf, -inf)."""
    return b"%.17g" % value


def _double(ctx: Context, value: float) -> bytes:
    text = b"%.17g" % value
    if ctx.resp3:
        return b",%b\r\n" % text
    return b"$%d\r\n%b\r\n" % (len(text), text)


def _parse_bound(arg: bytes) -> tuple[float, bool] | None:
    """zslParseRange's item: (value, exclusive); '(' excludes; strtod up to a NUL."""
    exclusive = arg[:1] == b"("
    text = arg[1:] if exclusive else arg
    value, used, _erange = _strtod(text)
    if value != value or (used < len(text) and text[used] != 0):
        return None
    return value, exclusive


# Lex bounds: (kind, value, exclusive); kind -1 is '-', 1 is '+', 0 a value.
LexBound = tuple[int, bytes, bool]


def _parse_lex(arg: bytes) -> LexBound | None:
    first = arg[:1]
    if first == b"+" or first == b"-":
        if len(arg) > 1 and arg[1] != 0:
            return None
        return (1 if first == b"+" else -1), b"", True
    if first == b"(":
        return 0, arg[1:], True
    if first == b"[":
        return 0, arg[1:], False
    return None


def _gte_min(member: bytes, bound: LexBound) -> bool:
    kind, value, exclusive = bound
    if kind:
        return kind < 0
    return member > value if exclusive else member >= value


def _lte_max(member: bytes, bound: LexBound) -> bool:
    kind, value, exclusive = bound
    if kind:
        return kind > 0
    return member < value if exclusive else member <= value


# --- the value ---------------------------------------------------------------------


def _add_new(zs: ZSet, member: bytes, score: float, ctx: Context) -> None:
    """Add a member that is not in the set (zsetAdd's insertion, with its conversion)."""
    if zs.listpack:
        config = ctx.config
        if len(zs.scores) + 1 > config.zset_max_listpack_entries or len(member) > config.zset_max_listpack_value:
            zs.listpack = False
        elif score == 0:
            score = 0.0  # a listpack keeps "-0" as text, which reads back as 0
    zs.scores[member] = score
    zs.ordered.add((score, member))


def _update(zs: ZSet, member: bytes, old: float, score: float) -> None:
    if zs.listpack and score == 0:
        score = 0.0
    zs.scores[member] = score
    ordered = zs.ordered
    ordered.remove((old, member))
    ordered.add((score, member))


def _build(ctx: Context, items: dict[bytes, float]) -> ZSet:
    """A new sorted set holding `items`, encoded by its final size (store commands)."""
    config = ctx.config
    listpack = len(items) <= config.zset_max_listpack_entries and all(
        len(m) <= config.zset_max_listpack_value for m in items
    )
    zs = ZSet(listpack)
    if listpack:
        items = {m: (0.0 if s == 0 else s) for m, s in items.items()}
    zs.scores = items
    zs.ordered = SortedList((s, m) for m, s in items.items())
    return zs


def _zset(ctx: Context, key: bytes, write: bool = False) -> ZSet | None:
    value: ZSet | None = ctx.keyspace.lookup_typed(key, (ZSet,), write)
    return value


def _remove_members(ctx: Context, key: bytes, zs: ZSet, pairs: list[tuple[float, bytes]], event: bytes) -> None:
    """The pairs were removed from `ordered`: drop them from `scores`, notify `event`,
    delete an emptied key."""
    scores = zs.scores
    for _score, member in pairs:
        del scores[member]
    keyspace = ctx.keyspace
    if keyspace.notify_flags:
        keyspace.notify(NOTIFY_ZSET, event, key)
    keyspace.modified_or_emptied(key, scores)


# --- replies -----------------------------------------------------------------------


def _reply_pairs(ctx: Context, pairs: Iterable[tuple[float, bytes]], withscores: bool,
                 nested: bool | None = None) -> bytes:
    """Members (and scores) as an array, within the output limit. With scores: a flat
    array in RESP2, pairs in RESP3 (`nested` forces one shape)."""
    limit = ctx.output_limit
    size = 0
    parts: list[bytes] = []
    append = parts.append
    if not withscores:
        for _score, member in pairs:
            part = b"$%d\r\n%b\r\n" % (len(member), member)
            append(part)
            size += len(part)
            if size > limit:
                raise ReplyTooLarge
        return b"*%d\r\n" % len(parts) + b"".join(parts)
    resp3 = ctx.resp3
    if nested is None:
        nested = resp3
    for score, member in pairs:
        text = b"%.17g" % score
        if resp3:
            part = b"$%d\r\n%b\r\n,%b\r\n" % (len(member), member, text)
        else:
            part = b"$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(member), member, len(text), text)
        if nested:
            part = b"*2\r\n" + part
        append(part)
        size += len(part)
        if size > limit:
            raise ReplyTooLarge
    return b"*%d\r\n" % (len(parts) if nested else 2 * len(parts)) + b"".join(parts)


# --- ZADD / ZINCRBY ----------------------------------------------------------------

_NX, _XX, _CH, _INCR, _GT, _LT = 1, 2, 4, 8, 16, 32
_ZADD_FLAGS = {b"nx": _NX, b"xx": _XX, b"ch": _CH, b"incr": _INCR, b"gt": _GT, b"lt": _LT}


@command("zadd", -4, "write denyoom fast", (1, 1, 1))
def zadd(ctx: Context, argv: list[bytes]) -> bytes:
    if len(argv) == 4:  # the hot path (redis-benchmark's): ZADD key score member
        score = parse_score(argv[2])  # no option parses as a score
        if score is not None:
            return _zadd_one(ctx, argv, score)
    flags = 0
    idx = 2
    argc = len(argv)
    while idx < argc:
        arg = argv[idx]
        flag = _ZADD_FLAGS.get(arg.lower())
        if flag is None:
            if b"\0" not in arg:
                break
            flag = _ZADD_FLAGS.get(arg.split(b"\0", 1)[0].lower())  # strcasecmp: a C string
            if flag is None:
                break
        flags |= flag
        idx += 1
    return _zadd(ctx, argv, flags, idx)


@command("zincrby", 4, "write denyoom fast", (1, 1, 1))
def zincrby(ctx: Context, argv: list[bytes]) -> bytes:
    return _zadd(ctx, argv, _INCR, 2)


def _zadd_one(ctx: Context, argv: list[bytes], score: float) -> bytes:
    """ZADD key score member, without options."""
    key, member = argv[1], argv[3]
    keyspace = ctx.keyspace
    zs = keyspace.lookup_typed(key, (ZSet,), True)
    if zs is None:
        config = ctx.config
        zs = ZSet(config.zset_max_listpack_entries != 0 and len(member) <= config.zset_max_listpack_value)
        keyspace.set_key(key, zs)
    old = zs.scores.get(member)
    if old is None:
        _add_new(zs, member, score, ctx)
        reply = b":1\r\n"
    elif old != score:
        _update(zs, member, old, score)
        reply = ZERO
    else:
        return ZERO
    if keyspace.watched:
        keyspace.signal_modified(key)
    ctx.aof_feed(argv)
    if keyspace.notify_flags:
        keyspace.notify(NOTIFY_ZSET, b"zadd", key)
    return reply


def _zadd(ctx: Context, argv: list[bytes], flags: int, idx: int) -> bytes:
    elements = len(argv) - idx
    if elements % 2 or not elements:
        return ERR_SYNTAX
    nx, xx, gt, lt, incr = flags & _NX, flags & _XX, flags & _GT, flags & _LT, flags & _INCR
    if nx and xx:
        return ERR_XX_NX
    if (gt and nx) or (lt and nx) or (gt and lt):
        return ERR_GT_LT_NX
    if incr and elements > 2:
        return ERR_INCR_PAIR
    scores = []
    for i in range(idx, len(argv), 2):
        score = parse_score(argv[i])
        if score is None:
            return ERR_NOT_FLOAT
        scores.append(score)
    key = argv[1]
    keyspace = ctx.keyspace
    zs = keyspace.lookup_typed(key, (ZSet,), True)
    if zs is None:
        if xx:
            return ctx.null if incr else ZERO
        config = ctx.config
        zs = ZSet(config.zset_max_listpack_entries != 0 and len(argv[idx + 1]) <= config.zset_max_listpack_value)
        keyspace.set_key(key, zs)
    members = zs.scores
    added = updated = 0
    newscore = 0.0
    processed = False
    for j, score in enumerate(scores):
        member = argv[idx + 2 * j + 1]
        old = members.get(member)
        if old is not None:
            if nx:
                continue
            if incr:
                score += old
                if score != score:
                    return ERR_NAN
            if (lt and score >= old) or (gt and score <= old):
                continue
            newscore = score
            processed = True
            if score != old:
                _update(zs, member, old, score)
                updated += 1
        elif not xx:
            newscore = score
            processed = True
            _add_new(zs, member, score, ctx)
            added += 1
    if added or updated:
        keyspace.modified(key)
        ctx.aof_feed(argv)
        keyspace.notify(NOTIFY_ZSET, b"zincr" if incr else b"zadd", key)
    if incr:
        return _double(ctx, newscore) if processed else ctx.null
    return b":%d\r\n" % (added + updated if flags & _CH else added)


# --- ZREM, ZCARD, ZSCORE, ZMSCORE, ZRANK ------------------------------------------


@command("zrem", -3, "write fast", (1, 1, 1))
def zrem(ctx: Context, argv: list[bytes]) -> bytes:
    key = argv[1]
    zs = _zset(ctx, key, True)
    if zs is None:
        return ZERO
    scores, ordered = zs.scores, zs.ordered
    removed = 0
    for member in argv[2:]:
        score = scores.pop(member, None)
        if score is not None:
            ordered.remove((score, member))
            removed += 1
    if removed:
        ctx.keyspace.notify(NOTIFY_ZSET, b"zrem", key)
        ctx.keyspace.modified_or_emptied(key, scores)
        ctx.aof_feed(argv)
    return b":%d\r\n" % removed


@command("zcard", 2, "readonly fast", (1, 1, 1))
def zcard(ctx: Context, argv: list[bytes]) -> bytes:
    zs = _zset(ctx, argv[1])
    return b":%d\r\n" % (0 if zs is None else len(zs.scores))


@command("zscore", 3, "readonly fast", (1, 1, 1))
def zscore(ctx: Context, argv: list[bytes]) -> bytes:
    zs = _zset(ctx, argv[1])
    score = None if zs is None else zs.scores.get(argv[2])
    return ctx.null if score is None else _double(ctx, score)


@command("zmscore", -3, "readonly fast", (1, 1, 1))
def zmscore(ctx: Context, argv: list[bytes]) -> bytes:
    zs = _zset(ctx, argv[1])
    scores: dict[bytes, float] = {} if zs is None else zs.scores
    parts = []
    size = 0
    limit = ctx.output_limit
    for member in argv[2:]:
        score = scores.get(member)
        part = ctx.null if score is None else _double(ctx, score)
        parts.append(part)
        size += len(part)
        if size > limit:
            raise ReplyTooLarge
    return resp.array(parts)


def _rank(ctx: Context, argv: list[bytes], reverse: bool) -> bytes:
    zs = _zset(ctx, argv[1])
    if zs is None:
        return ctx.null
    score = zs.scores.get(argv[2])
    if score is None:
        return ctx.null
    rank = zs.ordered.index((score, argv[2]))
    return b":%d\r\n" % (len(zs.scores) - 1 - rank if reverse else rank)


@command("zrank", 3, "readonly fast", (1, 1, 1))
def zrank(ctx: Context, argv: list[bytes]) -> bytes:
    return _rank(ctx, argv, False)


@command("zrevrank", 3, "readonly fast", (1, 1, 1))
def zrevrank(ctx: Context, argv: list[bytes]) -> bytes:
    return _rank(ctx, argv, True)


# --- ranges ------------------------------------------------------------------------


def _rank_span(n: int, start: int, end: int) -> tuple[int, int] | None:
    """Redis's start/end normalisation: (first, last) ranks, or None if empty."""
    if start < 0:
        start += n
    if end < 0:
        end += n
    if start < 0:
        start = 0
    if start > end or start >= n:
        return None
    if end >= n:
        end = n - 1
    return start, end


def _score_span(ordered: Any, low: tuple[float, bool], high: tuple[float, bool]) -> tuple[int, int]:
    """[lo, hi) indices of the pairs whose score is within the bounds."""
    value, exclusive = low
    if exclusive:
        lo = len(ordered) if value == INF else ordered.bisect_left((math.nextafter(value, INF),))
    else:
        lo = ordered.bisect_left((value,))
    value, exclusive = high
    if exclusive:
        hi = ordered.bisect_left((value,))
    else:
        hi = len(ordered) if value == INF else ordered.bisect_left((math.nextafter(value, INF),))
    return lo, hi


def _lex_index(ordered: Any, bound: LexBound, score: float, after: bool) -> int:
    kind, value, exclusive = bound
    if kind:
        return 0 if kind < 0 else len(ordered)
    if exclusive == after:
        return ordered.bisect_left((score, value))
    return ordered.bisect_right((score, value))


def _lex_pairs(ordered: Any, low: LexBound, high: LexBound, reverse: bool) -> list[tuple[float, bytes]] | tuple[int, int]:
    """The pairs within the lex bounds: [lo, hi) indices when every score is the same
    (the case lex ranges are for), else the walk Redis's listpack code does."""
    n = len(ordered)
    if not n:
        return 0, 0
    first, last = ordered[0][0], ordered[-1][0]
    if first == last:
        lo = _lex_index(ordered, low, first, False)
        hi = _lex_index(ordered, high, first, True)
        return lo, max(lo, hi)
    found: list[tuple[float, bytes]] = []
    if not reverse:
        for pair in ordered:
            if found or _gte_min(pair[1], low):
                if not _lte_max(pair[1], high):
                    break
                found.append(pair)
    else:
        for pair in reversed(ordered):
            if found or _lte_max(pair[1], high):
                if not _gte_min(pair[1], low):
                    break
                found.append(pair)
        found.reverse()
    return found


def _slice(ordered: Any, lo: int, hi: int, reverse: bool, offset: int, limit: int) -> Iterator[tuple[float, bytes]]:
    """Pairs lo..hi-1 (reversed if `reverse`), after skipping `offset`, at most `limit`
    (negative: all); a negative offset gives nothing, as in Redis."""
    count = hi - lo
    if offset < 0 or offset >= count:
        return iter(())
    take = count - offset if limit < 0 else min(limit, count - offset)
    if reverse:
        return ordered.islice(hi - offset - take, hi - offset, reverse=True)  # type: ignore[no-any-return]
    return ordered.islice(lo + offset, lo + offset + take)  # type: ignore[no-any-return]


_RANK, _SCORE, _LEX = 0, 1, 2
_ALL_LEX: LexBound = (-1, b"", True)


def _parse_range(rangetype: int, min_arg: bytes, max_arg: bytes
                 ) -> tuple[int, int, tuple[float, bool], tuple[float, bool], LexBound, LexBound] | bytes:
    """The range of a rank, score or lex command (only its kind's fields are meaningful),
    or Redis's error for it."""
    start = end = 0
    low = high = (0.0, False)
    lex_low = lex_high = _ALL_LEX
    if rangetype == _RANK:
        first, last = int_arg(min_arg), int_arg(max_arg)
        if first is None or last is None:
            return ERR_NOT_INT
        start, end = first, last
    elif rangetype == _SCORE:
        bound_low, bound_high = _parse_bound(min_arg), _parse_bound(max_arg)
        if bound_low is None or bound_high is None:
            return ERR_MINMAX_FLOAT
        low, high = bound_low, bound_high
    else:
        lex_min, lex_max = _parse_lex(min_arg), _parse_lex(max_arg)
        if lex_min is None or lex_max is None:
            return ERR_MINMAX_LEX
        lex_low, lex_high = lex_min, lex_max
    return start, end, low, high, lex_low, lex_high


def _zrange(ctx: Context, argv: list[bytes], first: int, rangetype: int | None, reverse: bool | None,
            dst: bytes | None = None) -> bytes:
    """zrangeGenericCommand: argv[first] is the source key, then min max and options."""
    withscores = False
    offset, limit = 0, -1
    limit_given = False
    j = first + 3
    argc = len(argv)
    while j < argc:
        opt = argv[j].lower()
        left = argc - j - 1
        if opt == b"withscores" and dst is None:
            withscores = True
        elif opt == b"limit" and left >= 2:
            o, c = int_arg(argv[j + 1]), int_arg(argv[j + 2])
            if o is None or c is None:
                return ERR_NOT_INT
            offset, limit, limit_given = o, c, True
            j += 2
        elif reverse is None and opt == b"rev":
            reverse = True
        elif rangetype is None and opt == b"bylex":
            rangetype = _LEX
        elif rangetype is None and opt == b"byscore":
            rangetype = _SCORE
        else:
            return ERR_SYNTAX
        j += 1
    if reverse is None:
        reverse = False
    if rangetype is None:
        rangetype = _RANK
    if limit_given and rangetype == _RANK:
        return ERR_LIMIT_RANK
    if withscores and rangetype == _LEX:
        return ERR_WITHSCORES_LEX
    min_arg, max_arg = argv[first + 1], argv[first + 2]
    if reverse and rangetype != _RANK:
        min_arg, max_arg = max_arg, min_arg
    parsed = _parse_range(rangetype, min_arg, max_arg)
    if isinstance(parsed, bytes):
        return parsed
    start, end, low, high, lex_low, lex_high = parsed
    zs = _zset(ctx, argv[first])
    pairs: Iterable[tuple[float, bytes]]
    if zs is None:
        pairs = ()
    else:
        ordered = zs.ordered
        if rangetype == _RANK:
            n = len(ordered)
            span = _rank_span(n, start, end)
            if span is None:
                pairs = ()
            elif reverse:
                pairs = ordered.islice(n - 1 - span[1], n - span[0], reverse=True)
            else:
                pairs = ordered.islice(span[0], span[1] + 1)
        elif rangetype == _SCORE:
            lo, hi = _score_span(ordered, low, high)
            pairs = _slice(ordered, lo, hi, reverse, offset, limit)
        else:
            found = _lex_pairs(ordered, lex_low, lex_high, reverse)
            if isinstance(found, tuple):
                pairs = _slice(ordered, found[0], found[1], reverse, offset, limit)
            else:
                if reverse:
                    found.reverse()
                stop = None if limit < 0 else offset + limit
                pairs = found[offset:stop] if offset >= 0 else ()
    if dst is None:
        if zs is None:
            return EMPTY_ARRAY
        return _reply_pairs(ctx, pairs, withscores)
    return _store(ctx, dst, {member: score for score, member in pairs}, ctx.aof_feed, argv)


def _store(ctx: Context, dst: bytes, items: dict[bytes, float], feed: Any, argv: list[bytes]) -> bytes:
    """Store a command's result at `dst` (replacing it, TTL dropped), or delete `dst`
    when the result is empty; logged as sent when something changed."""
    keyspace = ctx.keyspace
    if items:
        keyspace.set_key(dst, _build(ctx, items))
        feed(argv)
        keyspace.notify(NOTIFY_ZSET, argv[0].lower(), dst)  # zrangestore, zunionstore...
    elif keyspace.delete(dst):
        feed(argv)
        keyspace.notify(NOTIFY_GENERIC, b"del", dst)
    return b":%d\r\n" % len(items)


@command("zrange", -4, "readonly", (1, 1, 1))
def zrange(ctx: Context, argv: list[bytes]) -> bytes:
    return _zrange(ctx, argv, 1, None, None)


@command("zrangestore", -5, "write denyoom", (1, 2, 1))
def zrangestore(ctx: Context, argv: list[bytes]) -> bytes:
    return _zrange(ctx, argv, 2, None, None, dst=argv[1])


@command("zrevrange", -4, "readonly", (1, 1, 1))
def zrevrange(ctx: Context, argv: list[bytes]) -> bytes:
    return _zrange(ctx, argv, 1, _RANK, True)


@command("zrangebyscore", -4, "readonly", (1, 1, 1))
def zrangebyscore(ctx: Context, argv: list[bytes]) -> bytes:
    return _zrange(ctx, argv, 1, _SCORE, False)


@command("zrevrangebyscore", -4, "readonly", (1, 1, 1))
def zrevrangebyscore(ctx: Context, argv: list[bytes]) -> bytes:
    return _zrange(ctx, argv, 1, _SCORE, True)


@command("zrangebylex", -4, "readonly", (1, 1, 1))
def zrangebylex(ctx: Context, argv: list[bytes]) -> bytes:
    return _zrange(ctx, argv, 1, _LEX, False)


@command("zrevrangebylex", -4, "readonly", (1, 1, 1))
def zrevrangebylex(ctx: Context, argv: list[bytes]) -> bytes:
    return _zrange(ctx, argv, 1, _LEX, True)


@command("zcount", 4, "readonly fast", (1, 1, 1))
def zcount(ctx: Context, argv: list[bytes]) -> bytes:
    low, high = _parse_bound(argv[2]), _parse_bound(argv[3])
    if low is None or high is None:
        return ERR_MINMAX_FLOAT
    zs = _zset(ctx, argv[1])
    if zs is None:
        return ZERO
    lo, hi = _score_span(zs.ordered, low, high)
    return b":%d\r\n" % max(hi - lo, 0)


@command("zlexcount", 4, "readonly fast", (1, 1, 1))
def zlexcount(ctx: Context, argv: list[bytes]) -> bytes:
    low, high = _parse_lex(argv[2]), _parse_lex(argv[3])
    if low is None or high is None:
        return ERR_MINMAX_LEX
    zs = _zset(ctx, argv[1])
    if zs is None:
        return ZERO
    found = _lex_pairs(zs.ordered, low, high, False)
    return b":%d\r\n" % (found[1] - found[0] if isinstance(found, tuple) else len(found))


def _zremrange(ctx: Context, argv: list[bytes], rangetype: int) -> bytes:
    parsed = _parse_range(rangetype, argv[2], argv[3])
    if isinstance(parsed, bytes):
        return parsed
    start, end, low, high, lex_low, lex_high = parsed
    key = argv[1]
    zs = _zset(ctx, key, True)
    if zs is None:
        return ZERO
    ordered = zs.ordered
    if rangetype == _RANK:
        span = _rank_span(len(ordered), start, end)
        lo, hi = (0, 0) if span is None else (span[0], span[1] + 1)
    elif rangetype == _SCORE:
        lo, hi = _score_span(ordered, low, high)
    else:
        found = _lex_pairs(ordered, lex_low, lex_high, False)
        if not isinstance(found, tuple):
            for pair in found:
                ordered.remove(pair)
            if found:
                _remove_members(ctx, key, zs, found, _ZREMRANGE_EVENTS[_LEX])
                ctx.aof_feed(argv)
            return b":%d\r\n" % len(found)
        lo, hi = found
    if hi <= lo:
        return ZERO
    pairs = ordered[lo:hi]
    del ordered[lo:hi]
    _remove_members(ctx, key, zs, pairs, _ZREMRANGE_EVENTS[rangetype])
    ctx.aof_feed(argv)
    return b":%d\r\n" % len(pairs)


_ZREMRANGE_EVENTS = {_RANK: b"zremrangebyrank", _SCORE: b"zremrangebyscore", _LEX: b"zremrangebylex"}


@command("zremrangebyrank", 4, "write", (1, 1, 1))
def zremrangebyrank(ctx: Context, argv: list[bytes]) -> bytes:
    return _zremrange(ctx, argv, _RANK)


@command("zremrangebyscore", 4, "write", (1, 1, 1))
def zremrangebyscore(ctx: Context, argv: list[bytes]) -> bytes:
    return _zremrange(ctx, argv, _SCORE)


@command("zremrangebylex", 4, "write", (1, 1, 1))
def zremrangebylex(ctx: Context, argv: list[bytes]) -> bytes:
    return _zremrange(ctx, argv, _LEX)


# --- pops --------------------------------------------------------------------------


def _pop(ctx: Context, key: bytes, zs: ZSet, count: int, pop_max: bool) -> list[tuple[float, bytes]]:
    ordered = zs.ordered
    if pop_max:
        pairs = ordered[-count:][::-1] if count < len(ordered) else ordered[::-1]
        del ordered[len(ordered) - len(pairs):]
    else:
        pairs = ordered[:count]
        del ordered[:count]
    _remove_members(ctx, key, zs, pairs, b"zpopmax" if pop_max else b"zpopmin")
    return pairs


def _zpop(ctx: Context, argv: list[bytes], pop_max: bool) -> bytes:
    if len(argv) > 3:
        return ERR_SYNTAX
    count = 1
    if len(argv) == 3:
        given = int_arg(argv[2])
        if given is None or given < 0:
            return ERR_POSITIVE
        count = given
    key = argv[1]
    zs = _zset(ctx, key, True)
    if zs is None or count == 0:
        return EMPTY_ARRAY
    if len(argv) == 2:  # the hot path (redis-benchmark's ZPOPMIN): one pair, flat
        score, member = zs.ordered.pop(-1 if pop_max else 0)
        scores = zs.scores
        del scores[member]
        keyspace = ctx.keyspace
        if keyspace.notify_flags:
            keyspace.notify(NOTIFY_ZSET, b"zpopmax" if pop_max else b"zpopmin", key)
        keyspace.modified_or_emptied(key, scores)
        ctx.aof_feed(argv)
        text = b"%.17g" % score
        if ctx.resp3:
            return b"*2\r\n$%d\r\n%b\r\n,%b\r\n" % (len(member), member, text)
        return b"*2\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(member), member, len(text), text)
    pairs = _pop(ctx, key, zs, count, pop_max)
    ctx.aof_feed(argv)
    return _reply_pairs(ctx, pairs, True, nested=ctx.resp3 and len(argv) == 3)


@command("zpopmin", -2, "write fast", (1, 1, 1))
def zpopmin(ctx: Context, argv: list[bytes]) -> bytes:
    return _zpop(ctx, argv, False)


@command("zpopmax", -2, "write fast", (1, 1, 1))
def zpopmax(ctx: Context, argv: list[bytes]) -> bytes:
    return _zpop(ctx, argv, True)


def _mpop(ctx: Context, keys: list[bytes], pop_max: bool, count: int) -> bytes | None:
    """The first non-empty sorted set's pops as [key, [[member, score]...]], logged as
    ZPOPMIN/ZPOPMAX key count; None if all are empty."""
    for key in keys:
        zs = _zset(ctx, key, True)
        if zs is None:
            continue
        pairs = _pop(ctx, key, zs, count, pop_max)
        ctx.aof_feed([b"ZPOPMAX" if pop_max else b"ZPOPMIN", key, b"%d" % count])
        return b"*2\r\n" + resp.bulk(key) + _reply_pairs(ctx, pairs, True, nested=True)
    return None


_SIDES = (b"min", b"max")


@command("zmpop", -4, "write", (0, 0, 0))
def zmpop(ctx: Context, argv: list[bytes]) -> bytes:
    """ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]."""
    parsed = parse_mpop(argv, 1, _SIDES)
    if isinstance(parsed, bytes):
        return parsed
    keys, pop_max, count = parsed
    return _mpop(ctx, keys, pop_max, count) or NULL_ARRAY[ctx.resp3]


# --- blocking forms (kvred/blocking.py) --------------------------------------------


def _bzpop(ctx: Context, argv: list[bytes], pop_max: bool) -> bytes:
    """BZPOPMIN/BZPOPMAX key [key ...] timeout: [key, member, score], logged as
    ZPOPMIN/ZPOPMAX key."""
    timeout = parse_timeout(argv[-1])
    if isinstance(timeout, bytes):
        return timeout
    keys = argv[1:-1]
    for key in keys:
        zs = _zset(ctx, key, True)
        if zs is None:
            continue
        ((score, member),) = _pop(ctx, key, zs, 1, pop_max)
        ctx.aof_feed([b"ZPOPMAX" if pop_max else b"ZPOPMIN", key])
        return b"*3\r\n" + resp.bulk(key) + resp.bulk(member) + _double(ctx, score)
    return wait_for_keys(ctx, argv, keys, timeout, NULL_ARRAY[ctx.resp3], (ZSet,))


@command("bzpopmin", -3, "write noscript blocking fast", (1, -2, 1))
def bzpopmin(ctx: Context, argv: list[bytes]) -> bytes:
    return _bzpop(ctx, argv, False)


@command("bzpopmax", -3, "write noscript blocking fast", (1, -2, 1))
def bzpopmax(ctx: Context, argv: list[bytes]) -> bytes:
    return _bzpop(ctx, argv, True)


@command("bzmpop", -5, "write blocking movablekeys", (0, 0, 0))
def bzmpop(ctx: Context, argv: list[bytes]) -> bytes:
    """BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]."""
    parsed = parse_bmpop(argv, _SIDES)
    if isinstance(parsed, bytes):
        return parsed
    keys, pop_max, count, timeout = parsed
    return _mpop(ctx, keys, pop_max, count) or wait_for_keys(ctx, argv, keys, timeout, NULL_ARRAY[ctx.resp3], (ZSet,))


# --- ZRANDMEMBER, ZSCAN ------------------------------------------------------------


@command("zrandmember", -2, "readonly", (1, 1, 1))
def zrandmember(ctx: Context, argv: list[bytes]) -> bytes:
    argc = len(argv)
    if argc == 2:
        zs = _zset(ctx, argv[1])
        if zs is None:
            return ctx.null
        member = zs.ordered[random.randrange(len(zs.ordered))][1]
        return resp.bulk(member)
    count = int_arg(argv[2])
    if count is None:
        return ERR_NOT_INT
    if count < -_LONG_MAX:
        return ERR_RANDMEMBER_RANGE
    withscores = False
    if argc > 4 or (argc == 4 and argv[3].lower() != b"withscores"):
        return ERR_SYNTAX
    if argc == 4:
        withscores = True
        if count < -(_LONG_MAX // 2) or count > _LONG_MAX // 2:  # C's division truncates
            return ERR_OUT_OF_RANGE
    zs = _zset(ctx, argv[1])
    if zs is None or count == 0:
        return EMPTY_ARRAY
    ordered = zs.ordered
    n = len(ordered)
    if count < 0:
        pairs: Iterable[tuple[float, bytes]] = (ordered[random.randrange(n)] for _ in range(-count))
    elif count >= n:
        pairs = list(ordered)
    else:
        pairs = [ordered[i] for i in random.sample(range(n), count)]
    return _reply_pairs(ctx, pairs, withscores)


@command("zscan", -3, "readonly", (1, 1, 1))
def zscan(ctx: Context, argv: list[bytes]) -> bytes:
    cursor = parse_cursor(argv[2])
    if cursor is None:
        return b"-ERR invalid cursor\r\n"
    zs = _zset(ctx, argv[1])
    if zs is None:
        return b"*2\r\n$1\r\n0\r\n*0\r\n"
    options = parse_scan_options(argv, 3)
    if isinstance(options, bytes):
        return options
    if zs.listpack:
        next_cursor, members = scan_members(zs, [m for _s, m in zs.ordered], cursor, options.count, True)
    else:
        next_cursor, members = scan_members(zs, zs.scores, cursor, options.count, False)
    if options.match is not None:
        members = [m for m in members if options.match(m)]
    scores = zs.scores
    parts = []
    size = 0
    limit = ctx.output_limit
    for member in members:
        text = b"%.17g" % scores[member]
        part = b"$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(member), member, len(text), text)
        parts.append(part)
        size += len(part)
        if size > limit:
            raise ReplyTooLarge
    return b"*2\r\n" + resp.bulk(b"%d" % next_cursor) + b"*%d\r\n" % (2 * len(parts)) + b"".join(parts)


# --- ZUNION, ZINTER, ZDIFF and their STOREs, ZINTERCARD ----------------------------

_UNION, _INTER, _DIFF = 0, 1, 2


def _source(ctx: Context, key: bytes, write: bool) -> dict[bytes, float] | None:
    """A sorted set's scores, a set's members with score 1 (an empty dict if missing);
    None for another type."""
    keyspace = ctx.keyspace
    value = keyspace.lookup_write(key) if write else keyspace.lookup_read(key)
    if value is None:
        return {}
    if type(value) is ZSet:
        return value.scores
    kind = value_type(value)
    if kind is not None and kind.name == b"set":
        return {(m if type(m) is bytes else b"%d" % m): 1.0 for m in value}
    return None


def _sources(ctx: Context, argv: list[bytes], numkeys_at: int, name: str,
             write: bool) -> tuple[list[dict[bytes, float]], int] | bytes:
    numkeys = int_arg(argv[numkeys_at])
    if numkeys is None:
        return ERR_NOT_INT
    if numkeys < 1:
        return b"-ERR at least 1 input key is needed for '" + name.encode() + b"' command\r\n"
    if numkeys > len(argv) - numkeys_at - 1:
        return ERR_SYNTAX
    sources = []
    for key in argv[numkeys_at + 1:numkeys_at + 1 + numkeys]:
        found = _source(ctx, key, write)
        if found is None:
            raise WrongType
        sources.append(found)
    return sources, numkeys_at + 1 + numkeys


def _aggregate(target: float, value: float, how: int) -> float:
    if how == 0:
        total = target + value
        return 0.0 if total != total else total
    if how == 1:
        return value if value < target else target
    return value if value > target else target


def _setop(ctx: Context, argv: list[bytes], op: int, dst: bytes | None, numkeys_at: int) -> bytes:
    name = argv[0].lower().decode(errors="replace")
    parsed = _sources(ctx, argv, numkeys_at, name, dst is not None)
    if isinstance(parsed, bytes):
        return parsed
    sources, j = parsed
    weights = [1.0] * len(sources)
    how = 0  # SUM, MIN, MAX
    withscores = False
    argc = len(argv)
    while j < argc:
        opt = argv[j].lower()
        remaining = argc - j
        if op != _DIFF and remaining >= len(sources) + 1 and opt == b"weights":
            j += 1
            for i in range(len(sources)):
                weight = parse_score(argv[j])
                if weight is None:
                    return ERR_WEIGHT
                weights[i] = weight
                j += 1
        elif op != _DIFF and remaining >= 2 and opt == b"aggregate":
            what = argv[j + 1].lower()
            if what not in (b"sum", b"min", b"max"):
                return ERR_SYNTAX
            how = (b"sum", b"min", b"max").index(what)
            j += 2
        elif dst is None and opt == b"withscores":
            withscores = True
            j += 1
        else:
            return ERR_SYNTAX
    result: dict[bytes, float] = {}
    if op == _DIFF:
        first, others = sources[0], sources[1:]
        result = {m: s for m, s in first.items() if not any(m in other for other in others)}
    else:
        order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
        if op == _UNION:
            for i in order:
                weight = weights[i]
                for member, score in sources[i].items():
                    value = weight * score
                    if value != value:
                        value = 0.0
                    old = result.get(member)
                    result[member] = value if old is None else _aggregate(old, value, how)
        else:
            smallest = order[0]
            rest = order[1:]
            for member, score in sources[smallest].items():
                total = weights[smallest] * score
                if total != total:
                    total = 0.0
                for i in rest:
                    other = sources[i].get(member)
                    if other is None:
                        break
                    total = _aggregate(total, other * weights[i], how)
                else:
                    result[member] = total
    if dst is not None:
        return _store(ctx, dst, result, ctx.aof_feed, argv)
    pairs = sorted((s, m) for m, s in result.items())
    return _reply_pairs(ctx, pairs, withscores)


@command("zunion", -3, "readonly", (0, 0, 0))
def zunion(ctx: Context, argv: list[bytes]) -> bytes:
    return _setop(ctx, argv, _UNION, None, 1)


@command("zinter", -3, "readonly", (0, 0, 0))
def zinter(ctx: Context, argv: list[bytes]) -> bytes:
    return _setop(ctx, argv, _INTER, None, 1)


@command("zdiff", -3, "readonly", (0, 0, 0))
def zdiff(ctx: Context, argv: list[bytes]) -> bytes:
    return _setop(ctx, argv, _DIFF, None, 1)


@command("zunionstore", -4, "write denyoom", (1, 1, 1))
def zunionstore(ctx: Context, argv: list[bytes]) -> bytes:
    return _setop(ctx, argv, _UNION, argv[1], 2)


@command("zinterstore", -4, "write denyoom", (1, 1, 1))
def zinterstore(ctx: Context, argv: list[bytes]) -> bytes:
    return _setop(ctx, argv, _INTER, argv[1], 2)


@command("zdiffstore", -4, "write denyoom", (1, 1, 1))
def zdiffstore(ctx: Context, argv: list[bytes]) -> bytes:
    return _setop(ctx, argv, _DIFF, argv[1], 2)


@command("zintercard", -3, "readonly", (0, 0, 0))
def zintercard(ctx: Context, argv: list[bytes]) -> bytes:
    """ZINTERCARD numkeys key [key ...] [LIMIT limit]."""
    parsed = _sources(ctx, argv, 1, "zintercard", False)
    if isinstance(parsed, bytes):
        return parsed
    sources, j = parsed
    limit = 0
    while j < len(argv):
        if argv[j].lower() == b"limit" and j + 1 < len(argv):
            given = int_arg(argv[j + 1])
            if given is None or given < 0:
                return ERR_LIMIT_NEG
            limit = given
            j += 2
        else:
            return ERR_SYNTAX
    sources.sort(key=len)
    smallest, rest = sources[0], sources[1:]
    count = 0
    for member in smallest:
        if all(member in other for other in rest):
            count += 1
            if count == limit:
                break
    return b":%d\r\n" % count


# --- the value type ----------------------------------------------------------------


def _encoding(zs: ZSet) -> bytes:
    return b"listpack" if zs.listpack else b"skiplist"


def _copy(zs: ZSet) -> ZSet:
    dup = ZSet(zs.listpack)
    dup.scores = dict(zs.scores)
    dup.ordered = zs.ordered.copy()
    return dup


def _rewrite(key: bytes, zs: ZSet) -> Iterator[list[bytes]]:
    """ZADD key score member ..., REWRITE_ITEMS_PER_CMD pairs a command, as Redis's
    rewriteSortedSetObject; "%.17g" reads back as the same double. For a skiplist, its
    longest member goes first (if it is what made the set a skiplist, the replayed set is
    one from the start) and scores of -0 last (a listpack would keep them as 0)."""
    pairs: list[tuple[float, bytes]] = list(zs.ordered)
    if not zs.listpack and pairs:
        longest = max(pairs, key=lambda pair: len(pair[1]))
        negative_zero = [p for p in pairs if p[0] == 0 and math.copysign(1.0, p[0]) < 0]
        rest = [p for p in pairs if p is not longest and not (p[0] == 0 and math.copysign(1.0, p[0]) < 0)]
        pairs = ([] if longest in negative_zero else [longest]) + rest + negative_zero
    cmd: list[bytes] = [b"ZADD", key]
    for score, member in pairs:
        cmd.append(b"%.17g" % score)
        cmd.append(member)
        if len(cmd) == 2 + 2 * REWRITE_ITEMS_PER_CMD:
            yield cmd
            cmd = [b"ZADD", key]
    if len(cmd) > 2:
        yield cmd


ZSET = register_type(ValueType(b"zset", (ZSet,), _encoding, _copy, _rewrite))
