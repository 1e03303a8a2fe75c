"""Consumer groups (Redis 7.0's t_stream.c): XGROUP, XREADGROUP, XACK, XPENDING
(XCLAIM and XAUTOCLAIM: kvred/commands/stream_claim.py).

A group lives in its `Stream` (kvred/stream.py: `ConsumerGroup`, `Consumer`, `NACK`):
the last ID it delivered, how many entries it read, its pending entries list (PEL) and
its consumers, each with its own part of the PEL. Times (delivery, seen) come from the
keyspace's clock, `Databases.now_ms()`.

What is logged, as Redis 7.0 propagates it: XREADGROUP as one `XCLAIM key group consumer
0 id TIME t RETRYCOUNT n FORCE JUSTID LASTID <group last id>` per entry it made pending;
with NOACK, `XGROUP SETID key group <last id> ENTRIESREAD n`; a consumer it created, as
`XGROUP CREATECONSUMER`, unless XCLAIMs create it (a consumer is created only when
XREADGROUP serves it something, or reads its history, as in Redis 7.0). XCLAIM as the same XCLAIM form per entry claimed.
The others are logged as sent when they changed something.

XREADGROUP BLOCK waits as XREAD BLOCK does (kvred/commands/stream_read.py); a served
client re-runs its command on the stream that became ready, and gets Redis's -NOGROUP
when XGROUP DESTROY took its group, or "-UNBLOCKED the stream key no longer exists" when
the stream was deleted, replaced, renamed away, flushed or expired (Redis 7.0's
signalDeletedKeyAsReady, done in kvred/keyspace.py).
"""

from __future__ import annotations

from collections.abc import Callable

from ..notify import NOTIFY_STREAM
from ..stream import (
    MAX_ID,
    MIN_ID,
    NACK,
    SCG_INVALID_ENTRIES_READ,
    Consumer,
    ConsumerGroup,
    Stream,
    StreamID,
    estimate_entries_read,
    format_id,
    incr_id,
    parse_stream_id,
    parse_strict_id,
    parse_strict_ids,
    range_has_tombstones,
)
from .base import ERR_NOT_INT, ERR_SYNTAX, Context, command, int_arg, subcommand_syntax_error
from .stream_read import check_reply_size, parse_read_args, reply_or_block
from .streams import ERR_INVALID_ID, NULL_ARRAY, STREAM_TYPES, entry_reply, range_bound

__all__ = ["bulk", "now_ms", "consumer_of", "claim_logged", "setid_logged", "entry_reply", "no_group"]

ERR_DOLLAR_XREADGROUP = (
    b"-ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this "
    b"consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return "
    b"an empty result set.\r\n")
ERR_KEY_MUST_EXIST = (
    b"-ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the "
    b"MKSTREAM option to create an empty stream automatically.\r\n")
ERR_STREAM_GONE = b"-UNBLOCKED the stream key no longer exists\r\n"
ERR_GROUP_GONE = b"-NOGROUP the consumer group this client was blocked on no longer exists\r\n"
ERR_BUSYGROUP = b"-BUSYGROUP Consumer Group name already exists\r\n"
ERR_ENTRIESREAD = b"-ERR value for ENTRIESREAD must be positive or -1\r\n"
ZERO, ONE = b":0\r\n", b":1\r\n"


def bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


def now_ms(ctx: Context) -> int:
    return ctx.keyspace.databases.now_ms()


def consumer_of(ctx: Context, key: bytes, group: ConsumerGroup, name: bytes, now: int) -> tuple[Consumer, bool]:
    """The group's consumer `name`, seen now; a new one is announced (xgroup-createconsumer)."""
    consumer, created = group.consumer(name, now)
    if created and ctx.keyspace.notify_flags:
        ctx.keyspace.notify(NOTIFY_STREAM, b"xgroup-createconsumer", key)
    return consumer, created


def no_group(key: bytes, group: bytes) -> bytes:
    return b"-NOGROUP No such key '" + key + b"' or consumer group '" + group + b"'\r\n"


# --- XGROUP --------------------------------------------------------------------------------


XGROUP_HELP = [
    b"XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"CREATE <key> <groupname> <id|$> [option]",
    b"    Create a new consumer group. Options are:",
    b"    * MKSTREAM",
    b"      Create the empty stream if it does not exist.",
    b"    * ENTRIESREAD entries_read",
    b"      Set the group's entries_read counter (internal use).",
    b"CREATECONSUMER <key> <groupname> <consumer>",
    b"    Create a new consumer in the specified group.",
    b"DELCONSUMER <key> <groupname> <consumer>",
    b"    Remove the specified consumer.",
    b"DESTROY <key> <groupname>",
    b"    Remove the specified group.",
    b"SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    b"    Set the current group ID and entries_read counter.",
    b"HELP",
    b"    Prints this help.",
]


@command("xgroup", -2, "", (0, 0, 0), subcommands={"create": -5, "setid": -5, "destroy": 4,
                                                   "createconsumer": 5, "delconsumer": 5, "help": 2})
def xgroup(ctx: Context, argv: list[bytes]) -> bytes:
    argc = len(argv)
    sub = argv[1].lower()
    keyspace = ctx.keyspace
    stream: Stream | None = None
    group: ConsumerGroup | None = None
    mkstream = False
    entries_read = SCG_INVALID_ENTRIES_READ
    if argc >= 4:
        if sub == b"create":
            i = 5
            while i < argc:
                opt = argv[i].lower()
                if opt == b"mkstream":
                    mkstream = True
                    i += 1
                elif opt == b"entriesread" and i + 1 < argc:
                    number = int_arg(argv[i + 1])
                    if number is None:
                        return ERR_NOT_INT
                    if number < 0 and number != SCG_INVALID_ENTRIES_READ:
                        return ERR_ENTRIESREAD
                    entries_read = number
                    i += 2
                else:
                    return subcommand_syntax_error(argv[1], "xgroup")
        stream = keyspace.lookup_typed(argv[2], STREAM_TYPES, True)
        if not mkstream:
            if stream is None:
                return ERR_KEY_MUST_EXIST
            group = stream.groups.get(argv[3])
            if group is None and sub in (b"setid", b"createconsumer", b"delconsumer"):
                return (b"-NOGROUP No such consumer group '" + argv[3] + b"' for key name '" + argv[2]
                        + b"'\r\n")
    if sub == b"help" and argc == 2:
        return b"*%d\r\n" % len(XGROUP_HELP) + b"".join(b"+%b\r\n" % line for line in XGROUP_HELP)
    if sub == b"create" and 5 <= argc <= 8:
        return _create(ctx, argv, stream, entries_read)
    if stream is None:
        return subcommand_syntax_error(argv[1], "xgroup")
    name = argv[3]
    if sub == b"setid" and argc in (5, 7):
        assert group is not None
        if argv[4] == b"$":
            sid = stream.last_id
        else:
            parsed = parse_stream_id(argv[4], 0, False)  # `-` and `+` too
            if parsed is None:
                return ERR_INVALID_ID
            sid = parsed[0]
        if argc == 7:
            if argv[5].lower() != b"entriesread":
                return subcommand_syntax_error(argv[1], "xgroup")
            number = int_arg(argv[6])
            if number is None:
                return ERR_NOT_INT
            if number < 0 and number != SCG_INVALID_ENTRIES_READ:
                return ERR_ENTRIESREAD
            entries_read = number
        group.last_id = sid
        group.entries_read = entries_read
        return _changed(ctx, argv, b"xgroup-setid", b"+OK\r\n")
    if sub == b"destroy" and argc == 4:
        if group is None:
            return ZERO
        del stream.groups[name]
        if keyspace.blocking and argv[2] in keyspace.blocking:  # XREADGROUP clients get -NOGROUP
            ctx.databases.ready_keys.append((keyspace, argv[2]))
        return _changed(ctx, argv, b"xgroup-destroy", ONE)
    if sub == b"createconsumer" and argc == 5:
        assert group is not None
        if argv[4] in group.consumers:
            return ZERO
        group.consumer(argv[4], now_ms(ctx))
        return _changed(ctx, argv, b"xgroup-createconsumer", ONE)
    if sub == b"delconsumer" and argc == 5:
        assert group is not None
        consumer = group.consumers.pop(argv[4], None)
        if consumer is None:
            return ZERO
        for sid in consumer.pel:
            del group.pel[sid]
        return _changed(ctx, argv, b"xgroup-delconsumer", b":%d\r\n" % len(consumer.pel))
    return subcommand_syntax_error(argv[1], "xgroup")


def _changed(ctx: Context, argv: list[bytes], event: bytes, reply: bytes) -> bytes:
    keyspace = ctx.keyspace
    keyspace.modified(argv[2])
    if keyspace.notify_flags:
        keyspace.notify(NOTIFY_STREAM, event, argv[2])
    ctx.aof_feed(argv)
    return reply


def _create(ctx: Context, argv: list[bytes], stream: Stream | None, entries_read: int) -> bytes:
    if argv[4] == b"$":
        sid = stream.last_id if stream is not None else MIN_ID
    else:
        parsed = parse_strict_id(argv[4])
        if parsed is None:
            return ERR_INVALID_ID
        sid = parsed
    keyspace = ctx.keyspace
    if stream is None:
        stream = Stream()
        keyspace.set_key(argv[2], stream)
    if argv[3] in stream.groups:
        return ERR_BUSYGROUP
    stream.groups[argv[3]] = ConsumerGroup(sid, entries_read)
    return _changed(ctx, argv, b"xgroup-create", b"+OK\r\n")


# --- XREADGROUP ----------------------------------------------------------------------------


def claim_logged(key: bytes, group_name: bytes, group: ConsumerGroup, consumer: Consumer, sid: StreamID,
                  nack: NACK) -> list[bytes]:
    """streamPropagateXCLAIM."""
    return [b"XCLAIM", key, group_name, consumer.name, b"0", format_id(sid), b"TIME", b"%d" % nack.delivery_time,
            b"RETRYCOUNT", b"%d" % nack.delivery_count, b"FORCE", b"JUSTID", b"LASTID", format_id(group.last_id)]


def setid_logged(key: bytes, group_name: bytes, group: ConsumerGroup) -> list[bytes]:
    """streamPropagateGroupID."""
    return [b"XGROUP", b"SETID", key, group_name, format_id(group.last_id), b"ENTRIESREAD",
            b"%d" % group.entries_read]


@command("xreadgroup", -7, "write blocking movablekeys", (0, 0, 0))
def xreadgroup(ctx: Context, argv: list[bytes]) -> bytes:
    args = parse_read_args(ctx, argv, True)
    if isinstance(args, bytes):
        return args
    assert args.group is not None
    group_name, consumer_name, count, noack = args.group, args.consumer, args.count, args.noack
    keys = args.keys
    keyspace = ctx.keyspace
    targets: list[tuple[Stream, ConsumerGroup, StreamID | None]] = []
    for key, id_arg in zip(keys, args.id_args, strict=True):
        stream: Stream | None = keyspace.lookup_typed(key, STREAM_TYPES, True)
        group = stream.groups.get(group_name) if stream is not None else None
        if stream is None or group is None:
            if getattr(ctx.executor, "reprocessing", False):  # a blocked client's group went away
                return ERR_GROUP_GONE
            return (b"-NOGROUP No such key '" + key + b"' or consumer group '" + group_name
                    + b"' in XREADGROUP with GROUP option\r\n")
        if id_arg == b"$":
            return ERR_DOLLAR_XREADGROUP
        if id_arg == b">":
            targets.append((stream, group, None))
            continue
        sid = parse_strict_id(id_arg)
        if sid is None:
            return ERR_INVALID_ID
        targets.append((stream, group, sid))
    now = now_ms(ctx)
    served = getattr(ctx.executor, "reprocessing", False)  # re-run for a blocked client
    parts: list[bytes] = []
    for key, (stream, group, gt) in zip(keys, targets, strict=True):
        if gt is None and not (stream.entries and stream.entries.peekitem(-1)[0] > group.last_id):
            # nothing new: the consumer is not even created (Redis 7.0); but a served
            # client is answered once the stream's last ID passes the group's, as XREAD
            if not (served and stream.last_id > group.last_id):
                continue
        consumer, created = consumer_of(ctx, key, group, consumer_name, now)
        if gt is None:
            body, logged = _deliver_new(ctx, key, group_name, stream, group, consumer, count, noack, now)
            if created and (noack or not logged):
                logged.insert(0, [b"XGROUP", b"CREATECONSUMER", key, group_name, consumer_name])
        else:
            body = _deliver_history(ctx, stream, consumer, gt, count, now)
            logged = [[b"XGROUP", b"CREATECONSUMER", key, group_name, consumer_name]] if created else []
        for command_argv in logged:
            ctx.aof_feed(command_argv)
        if logged:
            keyspace.modified(key)
        parts.append((b"" if ctx.resp3 else b"*2\r\n") + bulk(key) + body)
        check_reply_size(ctx, parts)

    def make_retry() -> Callable[[bytes], list[bytes]]:
        rest = [b"NOACK"] if noack else []
        ids = dict(zip(reversed(keys), reversed(args.id_args), strict=True))  # a key named twice: its first ID
        return lambda key: [argv[0], b"GROUP", group_name, consumer_name, b"COUNT", args.served_count(), *rest,
                            b"BLOCK", b"0", b"STREAMS", key, ids[key]]

    return reply_or_block(ctx, args, parts, make_retry, ERR_STREAM_GONE)


def _deliver_new(ctx: Context, key: bytes, group_name: bytes, stream: Stream, group: ConsumerGroup,
                 consumer: Consumer, count: int, noack: bool, now: int) -> tuple[bytes, list[list[bytes]]]:
    """streamReplyWithRange for `>`: the entries after the group's last ID, made pending."""
    start = incr_id(group.last_id)
    assert start is not None
    entries = stream.entries
    out: list[bytes] = []
    logged: list[list[bytes]] = []
    for sid in entries.irange(start, MAX_ID):
        if count and len(out) >= count:
            break
        if group.entries_read != SCG_INVALID_ENTRIES_READ and not range_has_tombstones(stream, sid):
            group.entries_read += 1
        elif stream.entries_added:
            group.entries_read = estimate_entries_read(stream, sid)
        group.last_id = sid
        out.append(entry_reply(sid, entries[sid], ctx.resp3))
        if noack:
            continue
        old = group.pel.get(sid)
        if old is not None:
            del old.consumer.pel[sid]
        nack = NACK(consumer, now)
        group.pel[sid] = nack
        consumer.pel[sid] = nack
        logged.append(claim_logged(key, group_name, group, consumer, sid, nack))
    if noack and out:
        logged.append(setid_logged(key, group_name, group))
    return b"*%d\r\n" % len(out) + b"".join(out), logged


def _deliver_history(ctx: Context, stream: Stream, consumer: Consumer, gt: StreamID, count: int, now: int) -> bytes:
    """streamReplyWithRangeFromConsumerPEL: the consumer's pending entries after `gt`."""
    start = incr_id(gt)
    out: list[bytes] = []
    if start is not None:
        for sid in consumer.pel.irange(start, MAX_ID):
            if count and len(out) >= count:
                break
            out.append(entry_reply(sid, stream.entries.get(sid), ctx.resp3))
            nack = consumer.pel[sid]
            nack.delivery_time = now
            nack.delivery_count += 1
    return b"*%d\r\n" % len(out) + b"".join(out)


# --- XACK, XPENDING ------------------------------------------------------------------------


@command("xack", -4, "write fast", (1, 1, 1))
def xack(ctx: Context, argv: list[bytes]) -> bytes:
    keyspace = ctx.keyspace
    stream: Stream | None = keyspace.lookup_typed(argv[1], STREAM_TYPES, True)
    group = stream.groups.get(argv[2]) if stream is not None else None
    if group is None:
        return ZERO
    ids = parse_strict_ids(argv[3:])
    if ids is None:
        return ERR_INVALID_ID
    acknowledged = 0
    for sid in ids:
        nack = group.pel.pop(sid, None)
        if nack is not None:
            del nack.consumer.pel[sid]
            acknowledged += 1
    if acknowledged:
        keyspace.modified(argv[1])
        ctx.aof_feed(argv)
    return b":%d\r\n" % acknowledged


@command("xpending", -3, "readonly", (1, 1, 1))
def xpending(ctx: Context, argv: list[bytes]) -> bytes:
    argc = len(argv)
    if argc != 3 and not 6 <= argc <= 9:
        return ERR_SYNTAX
    min_idle = 0
    start, end, count = MIN_ID, MAX_ID, 0
    consumer_name: bytes | None = None
    if argc >= 6:
        at = 3
        if argv[3].lower() == b"idle":
            number = int_arg(argv[4])
            if number is None:
                return ERR_NOT_INT
            min_idle = number
            if argc < 8:
                return ERR_SYNTAX
            at += 2
        number = int_arg(argv[at + 2])
        if number is None:
            return ERR_NOT_INT
        count = max(number, 0)
        bound = range_bound(argv[at], True)
        if isinstance(bound, bytes):
            return bound
        start = bound
        bound = range_bound(argv[at + 1], False)
        if isinstance(bound, bytes):
            return bound
        end = bound
        if at + 3 < argc:
            consumer_name = argv[at + 3]
    stream: Stream | None = ctx.keyspace.lookup_typed(argv[1], STREAM_TYPES)
    group = stream.groups.get(argv[2]) if stream is not None else None
    if group is None:
        return no_group(argv[1], argv[2])
    if argc == 3:
        pel = group.pel
        if not pel:
            null = ctx.null
            return b"*4\r\n:0\r\n" + null + null + NULL_ARRAY[ctx.resp3]
        owners = [(name, len(c.pel)) for name, c in sorted(group.consumers.items()) if c.pel]
        return (b"*4\r\n:%d\r\n" % len(pel) + bulk(format_id(pel.peekitem(0)[0]))
                + bulk(format_id(pel.peekitem(-1)[0])) + b"*%d\r\n" % len(owners)
                + b"".join(b"*2\r\n" + bulk(name) + bulk(b"%d" % n) for name, n in owners))
    if consumer_name is not None:
        found = group.consumers.get(consumer_name)
        if found is None:
            return b"*0\r\n"
        pel = found.pel
    else:
        pel = group.pel
    now = now_ms(ctx)
    rows: list[bytes] = []
    if start <= end:
        for sid in pel.irange(start, end):
            if len(rows) >= count:
                break
            nack = pel[sid]
            idle = now - nack.delivery_time
            if min_idle and idle < min_idle:
                continue
            rows.append(b"*4\r\n" + bulk(format_id(sid)) + bulk(nack.consumer.name) + b":%d\r\n:%d\r\n"
                        % (idle, nack.delivery_count))
    return b"*%d\r\n" % len(rows) + b"".join(rows)
