"""Stream commands (Redis's t_stream.c), the first part: XADD, XRANGE, XREVRANGE, XLEN,
XDEL, XTRIM, XSETID; XREAD is in kvred/commands/stream_read.py. Not here yet (issue 15):
consumer groups (XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM), XINFO.

A stream is a `Stream` (kvred/stream.py: the entries in ID order, Redis's node packing
that approximate trimming depends on, and where that emulation may differ from Redis).
An empty stream is a valid key: streams are not deleted when they empty (XDEL, XTRIM,
XADD MAXLEN 0).

What is logged, as Redis propagates it: XADD with the ID it generated in place of `*`
or `ms-*`; an approximate trim (XADD or XTRIM with `~`) with `=` and the exact length
(MAXLEN) or first ID (MINID) it left, so replay trims exactly as much; XDEL, XTRIM and
XSETID as sent, and nothing when nothing changed; consumer groups as
kvred/commands/stream_groups.py says. While the AOF loads, LIMIT is
ignored (Redis's mustObeyClient). The rewrite emits an XADD per entry (an empty stream
as `XADD key MAXLEN 0 0-1 x y`) and an XSETID that restores last-id, entries-added and
max-deleted-id, then per group (in name order) an XGROUP CREATE ... ENTRIESREAD, and per
consumer an XCLAIM ... JUSTID FORCE per pending entry, or XGROUP CREATECONSUMER if it has
none, as Redis's rewriteStreamObject does.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

from .. import resp
from ..notify import NOTIFY_STREAM
from ..stream import (
    MAX_ID,
    MIN_ID,
    STREAM_NODE_MAX_ENTRIES,
    TRIM_MAXLEN,
    TRIM_MINID,
    TRIM_NONE,
    U64_MAX,
    Stream,
    StreamID,
    decr_id,
    format_id,
    incr_id,
    parse_interval_id,
    parse_stream_id,
    parse_strict_id,
    parse_strict_ids,
)
from ..valuetypes import ValueType, register_type
from .base import ERR_NOT_INT, ERR_SYNTAX, Context, ReplyTooLarge, command, int_arg, wrong_arity

__all__ = ["STREAM_TYPES", "range_reply", "range_bound"]

STREAM_TYPES = (Stream,)
# `~` without LIMIT trims at most this many entries (Redis: 100 * stream-node-max-entries)
APPROX_TRIM_DEFAULT_LIMIT = 100 * STREAM_NODE_MAX_ENTRIES

ERR_INVALID_ID = b"-ERR Invalid stream ID specified as stream command argument\r\n"
ERR_XADD_SMALLER = b"-ERR The ID specified in XADD is equal or smaller than the target stream top item\r\n"
ERR_XADD_ZERO = b"-ERR The ID specified in XADD must be greater than 0-0\r\n"
ERR_TOO_LARGE = b"-ERR Elements are too large to be stored\r\n"
ERR_EXHAUSTED = b"-ERR The stream has exhausted the last possible ID, unable to add more items\r\n"
ERR_MAXLEN_NEGATIVE = b"-ERR The MAXLEN argument must be >= 0.\r\n"
ERR_LIMIT_NEGATIVE = b"-ERR The LIMIT argument must be >= 0.\r\n"
ERR_BOTH_STRATEGIES = b"-ERR syntax error, MAXLEN and MINID options at the same time are not compatible\r\n"
ERR_LIMIT_NO_STRATEGY = b"-ERR syntax error, LIMIT cannot be used without specifying a trimming strategy\r\n"
ERR_XTRIM_NO_STRATEGY = b"-ERR syntax error, XTRIM must be called with a trimming strategy\r\n"
ERR_LIMIT_NOT_APPROX = b"-ERR syntax error, LIMIT cannot be used without the special ~ option\r\n"
ERR_START_ID = b"-ERR invalid start ID for the interval\r\n"
ERR_END_ID = b"-ERR invalid end ID for the interval\r\n"
ERR_NO_SUCH_KEY = b"-ERR no such key\r\n"
ERR_ENTRIES_ADDED_NEGATIVE = b"-ERR entries_added must be positive\r\n"
ERR_SETID_BELOW_MAXDELETED_ARG = (
    b"-ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id\r\n"
)
ERR_SETID_BELOW_TOP = b"-ERR The ID specified in XSETID is smaller than the target stream top item\r\n"
ERR_SETID_ENTRIES_ADDED = (
    b"-ERR The entries_added specified in XSETID is smaller than the target stream length\r\n"
)
NULL_ARRAY = {False: b"*-1\r\n", True: b"_\r\n"}
ZERO = b":0\r\n"


# --- replies -------------------------------------------------------------------------------


def entry_reply(sid: StreamID, fields: tuple[bytes, ...] | None, resp3: bool = False) -> bytes:
    """[id, [field, value, ...]]; a null for the fields of an entry deleted since it was
    delivered (XREADGROUP of a consumer's history, XCLAIM)."""
    text = b"%d-%d" % sid
    head = b"*2\r\n$%d\r\n%b\r\n" % (len(text), text)
    if fields is None:
        return head + NULL_ARRAY[resp3]
    return head + resp.encode_command(fields)  # the fields as an array of bulk strings, encoded fast


def range_reply(ctx: Context, entries: Iterator[tuple[StreamID, tuple[bytes, ...]]]) -> bytes:
    limit = ctx.output_limit
    size = 0
    parts: list[bytes] = []
    for sid, fields in entries:
        part = entry_reply(sid, fields)
        parts.append(part)
        size += len(part)
        if size > limit:
            raise ReplyTooLarge
    return b"*%d\r\n" % len(parts) + b"".join(parts)


# --- XADD, XTRIM arguments -------------------------------------------------------------


class _TrimArgs:
    """streamAddTrimArgs: what XADD and XTRIM parsed."""

    __slots__ = ("strategy", "arg_idx", "approx", "maxlen", "minid", "limit", "no_mkstream",
                 "id", "id_given", "seq_given", "idpos")

    def __init__(self) -> None:
        self.strategy = TRIM_NONE
        self.arg_idx = 0  # argv index of the MAXLEN/MINID value
        self.approx = False
        self.maxlen = 0
        self.minid: StreamID = MIN_ID
        self.limit = 0
        self.no_mkstream = False
        self.id: StreamID = MIN_ID
        self.id_given = False
        self.seq_given = True
        self.idpos = 0


def _parse_add_trim(ctx: Context, argv: list[bytes], xadd: bool) -> _TrimArgs | bytes:
    """streamParseAddOrTrimArgsOrReply: the options from argv[2]; for XADD up to and
    including the ID (args.idpos)."""
    args = _TrimArgs()
    limit_given = False
    argc = len(argv)
    i = 2
    while i < argc:
        more = argc - 1 - i
        opt = argv[i]
        lower = opt.lower()
        if xadd and opt == b"*":
            break
        if lower in (b"maxlen", b"minid") and more:
            if args.strategy != TRIM_NONE:
                return ERR_BOTH_STRATEGIES
            args.approx = False
            following = argv[i + 1]
            if more >= 2 and following in (b"~", b"="):
                args.approx = following == b"~"
                i += 1
            if lower == b"maxlen":
                maxlen = int_arg(argv[i + 1])
                if maxlen is None:
                    return ERR_NOT_INT
                if maxlen < 0:
                    return ERR_MAXLEN_NEGATIVE
                args.maxlen = maxlen
                args.strategy = TRIM_MAXLEN
            else:
                minid = parse_strict_id(argv[i + 1])
                if minid is None:
                    return ERR_INVALID_ID
                args.minid = minid
                args.strategy = TRIM_MINID
            i += 1
            args.arg_idx = i
        elif lower == b"limit" and more:
            limit = int_arg(argv[i + 1])
            if limit is None:
                return ERR_NOT_INT
            if limit < 0:
                return ERR_LIMIT_NEGATIVE
            args.limit = limit
            limit_given = True
            i += 1
        elif xadd and lower == b"nomkstream":
            args.no_mkstream = True
        elif xadd:
            parsed = parse_stream_id(opt, 0, True, seq_star=True)
            if parsed is None:
                return ERR_INVALID_ID
            args.id, args.seq_given = parsed
            args.id_given = True
            break
        else:
            return ERR_SYNTAX
        i += 1
    args.idpos = i
    if args.limit and args.strategy == TRIM_NONE:
        return ERR_LIMIT_NO_STRATEGY
    if not xadd and args.strategy == TRIM_NONE:
        return ERR_XTRIM_NO_STRATEGY
    if ctx.keyspace.databases.loading:
        args.limit = 0  # what the AOF says is exact (Redis's mustObeyClient)
    elif limit_given:
        if not args.approx:
            return ERR_LIMIT_NOT_APPROX
    else:
        args.limit = APPROX_TRIM_DEFAULT_LIMIT if args.approx else 0
    return args


def _logged_trim(argv: list[bytes], stream: Stream, args: _TrimArgs) -> list[bytes]:
    """streamRewriteApproxSpecifier + streamRewriteTrimArgument: `~ N` becomes `= <what
    was left>`, so that replay trims exactly what this trim did."""
    logged = list(argv)
    logged[args.arg_idx - 1] = b"="
    if args.strategy == TRIM_MAXLEN:
        logged[args.arg_idx] = b"%d" % len(stream)
    else:
        # the first entry of the first node, deleted or not (streamGetEdgeID without
        # skipping tombstones): a node's first entry is the ID it was created with
        logged[args.arg_idx] = format_id(stream.nodes[0].master if stream.nodes else MAX_ID)
    return logged


# --- the commands ----------------------------------------------------------------------------


@command("xadd", -5, "write denyoom fast", (1, 1, 1))
def xadd(ctx: Context, argv: list[bytes]) -> bytes:
    args = _parse_add_trim(ctx, argv, True)
    if isinstance(args, bytes):
        return args
    argc = len(argv)
    field_pos = args.idpos + 1
    if field_pos >= argc or (argc - field_pos) % 2:
        return wrong_arity("xadd")
    if args.id_given and args.seq_given and args.id == MIN_ID:
        return ERR_XADD_ZERO
    keyspace = ctx.keyspace
    key = argv[1]
    stream: Stream | None = keyspace.lookup_typed(key, STREAM_TYPES, True)
    created = stream is None
    if stream is None:
        if args.no_mkstream:
            return ctx.null
        stream = Stream()
    last = stream.last_id
    if last == MAX_ID:
        return ERR_EXHAUSTED
    if not args.id_given:  # `*`: streamNextID
        now = keyspace.databases.now_ms()
        sid = (now, 0) if now > last[0] else incr_id(last)
    elif args.seq_given:
        sid = args.id
    elif args.id[0] == last[0]:  # `ms-*` on the last ID's millisecond
        if last[1] == U64_MAX:
            return ERR_TOO_LARGE  # Redis 7.0 sets errno ERANGE here, hence this text
        sid = (last[0], last[1] + 1)
    else:
        sid = args.id
    if sid is None or sid <= last:
        return ERR_XADD_SMALLER
    stream.append(sid, tuple(argv[field_pos:]))
    if created:
        keyspace.set_key(key, stream)  # signals the key ready if clients wait on it
    else:
        keyspace.modified(key)
        if keyspace.blocking and key in keyspace.blocking:  # XREAD BLOCK on an existing stream
            ctx.databases.ready_keys.append((keyspace, key))
    notify = keyspace.notify_flags
    if notify:
        keyspace.notify(NOTIFY_STREAM, b"xadd", key)
    logged = argv
    if args.strategy != TRIM_NONE:
        if stream.trim(args.strategy, args.maxlen, args.minid, args.approx, args.limit) and notify:
            keyspace.notify(NOTIFY_STREAM, b"xtrim", key)
        if args.approx:
            logged = _logged_trim(argv, stream, args)
    text = format_id(sid)
    if not (args.id_given and args.seq_given):
        if logged is argv:
            logged = list(argv)
        logged[args.idpos] = text
    ctx.aof_feed(logged)
    return b"$%d\r\n%b\r\n" % (len(text), text)


def range_bound(arg: bytes, start: bool) -> StreamID | bytes:
    """An XRANGE bound as an inclusive ID: an incomplete start ID is `ms-0`, an end one
    `ms-<max>`; an exclusive `(id` moves one ID inwards (an error where it cannot)."""
    parsed = parse_interval_id(arg, 0 if start else U64_MAX)
    if parsed is None:
        return ERR_INVALID_ID
    sid, exclusive = parsed
    if not exclusive:
        return sid
    moved = incr_id(sid) if start else decr_id(sid)
    if moved is None:
        return ERR_START_ID if start else ERR_END_ID
    return moved


def _xrange(ctx: Context, argv: list[bytes], rev: bool) -> bytes:
    start_arg, end_arg = (argv[3], argv[2]) if rev else (argv[2], argv[3])
    start = range_bound(start_arg, True)
    if isinstance(start, bytes):
        return start
    end = range_bound(end_arg, False)
    if isinstance(end, bytes):
        return end
    count = -1
    j = 4
    argc = len(argv)
    while j < argc:
        if argv[j].lower() == b"count" and j + 1 < argc:
            number = int_arg(argv[j + 1])
            if number is None:
                return ERR_NOT_INT
            count = max(number, 0)
            j += 2
        else:
            return ERR_SYNTAX
    stream: Stream | None = ctx.keyspace.lookup_typed(argv[1], STREAM_TYPES)
    if stream is None:
        return resp.EMPTY_ARRAY
    if count == 0:
        return NULL_ARRAY[ctx.resp3]
    entries = stream.entries
    ids = entries.irange(start, end, reverse=rev)
    if count > 0:
        ids = islice(ids, count)
    return range_reply(ctx, ((sid, entries[sid]) for sid in ids))


@command("xrange", -4, "readonly", (1, 1, 1))
def xrange(ctx: Context, argv: list[bytes]) -> bytes:
    return _xrange(ctx, argv, False)


@command("xrevrange", -4, "readonly", (1, 1, 1))
def xrevrange(ctx: Context, argv: list[bytes]) -> bytes:
    return _xrange(ctx, argv, True)


@command("xlen", 2, "readonly fast", (1, 1, 1))
def xlen(ctx: Context, argv: list[bytes]) -> bytes:
    stream: Stream | None = ctx.keyspace.lookup_typed(argv[1], STREAM_TYPES)
    return ZERO if stream is None else b":%d\r\n" % len(stream)


@command("xdel", -3, "write fast", (1, 1, 1))
def xdel(ctx: Context, argv: list[bytes]) -> bytes:
    keyspace = ctx.keyspace
    key = argv[1]
    stream: Stream | None = keyspace.lookup_typed(key, STREAM_TYPES, True)
    if stream is None:
        return ZERO
    ids = parse_strict_ids(argv[2:])
    if ids is None:
        return ERR_INVALID_ID
    deleted = 0
    for sid in ids:
        if stream.delete(sid):
            if sid > stream.max_deleted_id:
                stream.max_deleted_id = sid
            deleted += 1
    if deleted:
        keyspace.modified(key)
        if keyspace.notify_flags:
            keyspace.notify(NOTIFY_STREAM, b"xdel", key)
        ctx.aof_feed(argv)
    return b":%d\r\n" % deleted


@command("xtrim", -4, "write", (1, 1, 1))
def xtrim(ctx: Context, argv: list[bytes]) -> bytes:
    args = _parse_add_trim(ctx, argv, False)
    if isinstance(args, bytes):
        return args
    keyspace = ctx.keyspace
    key = argv[1]
    stream: Stream | None = keyspace.lookup_typed(key, STREAM_TYPES, True)
    if stream is None:
        return ZERO
    removed = stream.trim(args.strategy, args.maxlen, args.minid, args.approx, args.limit)
    if removed:
        if keyspace.notify_flags:
            keyspace.notify(NOTIFY_STREAM, b"xtrim", key)
        ctx.aof_feed(_logged_trim(argv, stream, args) if args.approx else argv)
        keyspace.modified(key)
    return b":%d\r\n" % removed


@command("xsetid", -3, "write denyoom fast", (1, 1, 1))
def xsetid(ctx: Context, argv: list[bytes]) -> bytes:
    sid = parse_strict_id(argv[2])
    if sid is None:
        return ERR_INVALID_ID
    entries_added = -1
    max_deleted = MIN_ID
    argc = len(argv)
    i = 3
    while i < argc:
        more = argc - 1 - i
        opt = argv[i].lower()
        if opt == b"entriesadded" and more:
            number = int_arg(argv[i + 1])
            if number is None:
                return ERR_NOT_INT
            if number < 0:
                return ERR_ENTRIES_ADDED_NEGATIVE
            entries_added = number
        elif opt == b"maxdeletedid" and more:
            given = parse_strict_id(argv[i + 1])
            if given is None:
                return ERR_INVALID_ID
            if sid < given:
                return ERR_SETID_BELOW_MAXDELETED_ARG
            max_deleted = given
        else:
            return ERR_SYNTAX
        i += 2
    keyspace = ctx.keyspace
    key = argv[1]
    stream: Stream | None = keyspace.lookup_typed(key, STREAM_TYPES, True)
    if stream is None:
        return ERR_NO_SUCH_KEY
    # (Redis 7.0 does not compare the ID with the stream's own max-deleted-id; 7.2 does)
    if stream.entries:
        if sid < stream.entries.peekitem(-1)[0]:
            return ERR_SETID_BELOW_TOP
        if entries_added != -1 and len(stream) > entries_added:
            return ERR_SETID_ENTRIES_ADDED
    stream.last_id = sid
    if entries_added != -1:
        stream.entries_added = entries_added
    if max_deleted != MIN_ID:
        stream.max_deleted_id = max_deleted
    keyspace.modified(key)
    if keyspace.notify_flags:
        keyspace.notify(NOTIFY_STREAM, b"xsetid", key)
    ctx.aof_feed(argv)
    return resp.OK


# --- the value type ----------------------------------------------------------------------


def _encoding(stream: Stream) -> bytes:
    return b"stream"


def _copy(stream: Stream) -> Stream:
    duplicate = Stream()
    duplicate.entries = stream.entries.copy()  # the field tuples are immutable: shared
    duplicate.nodes = [node.clone() for node in stream.nodes]
    duplicate.last_id = stream.last_id
    duplicate.entries_added = stream.entries_added
    duplicate.max_deleted_id = stream.max_deleted_id
    duplicate.groups = {name: group.clone() for name, group in stream.groups.items()}
    return duplicate


def _rewrite(key: bytes, stream: Stream) -> Iterator[list[bytes]]:
    """Redis's rewriteStreamObject: an XADD per entry (an empty stream: an entry added
    and trimmed at once), then the XSETID that restores the stream's bookkeeping."""
    if stream.entries:
        for sid, fields in stream.entries.items():
            yield [b"XADD", key, format_id(sid), *fields]
    else:
        yield [b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"]
    yield [b"XSETID", key, format_id(stream.last_id), b"ENTRIESADDED", b"%d" % stream.entries_added,
           b"MAXDELETEDID", format_id(stream.max_deleted_id)]
    for name, group in sorted(stream.groups.items()):  # Redis's rax: in name order
        yield [b"XGROUP", b"CREATE", key, name, format_id(group.last_id), b"ENTRIESREAD", b"%d" % group.entries_read]
        for _name, consumer in sorted(group.consumers.items()):
            if not consumer.pel:
                yield [b"XGROUP", b"CREATECONSUMER", key, name, consumer.name]
            for sid, nack in consumer.pel.items():
                yield [b"XCLAIM", key, name, consumer.name, b"0", format_id(sid), b"TIME", b"%d" % nack.delivery_time,
                       b"RETRYCOUNT", b"%d" % nack.delivery_count, b"JUSTID", b"FORCE"]


STREAM = register_type(ValueType(b"stream", STREAM_TYPES, _encoding, _copy, _rewrite))
