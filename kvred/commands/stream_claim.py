"""Claiming pending entries (Redis 7.0's t_stream.c): XCLAIM and XAUTOCLAIM. Consumer
groups and what is logged: kvred/commands/stream_groups.py. Both are logged as one
`XCLAIM ... FORCE JUSTID LASTID` per entry claimed, or per pending entry dropped
because its stream entry was deleted (which replay drops too).

Where this differs from Redis: XAUTOCLAIM with a COUNT so high that Redis cannot allocate
its array of COUNT deleted IDs answers "Insufficient memory ... COUNT too high" in Redis;
kvred allocates nothing per COUNT and answers."""

from __future__ import annotations

from ..stream import MAX_ID, MIN_ID, NACK, Consumer, ConsumerGroup, Stream, StreamID, format_id, parse_strict_id
from .base import ERR_SYNTAX, Context, command, int_arg
from .stream_groups import bulk, claim_logged, consumer_of, entry_reply, no_group, now_ms, setid_logged
from .streams import ERR_INVALID_ID, STREAM_TYPES, range_bound

__all__: list[str] = []

ERR_COUNT_POSITIVE = b"-ERR COUNT must be > 0\r\n"
AUTOCLAIM_ATTEMPTS_FACTOR = 10  # XAUTOCLAIM looks at up to COUNT * this many pending entries
AUTOCLAIM_MAX_COUNT = (2**63 - 1) // 16  # LONG_MAX / max(sizeof(streamID), the factor)


# --- XCLAIM --------------------------------------------------------------------------------


def _claim_option_error(name: bytes) -> bytes:
    return b"-ERR Invalid " + name + b" option argument for XCLAIM\r\n"


def _claim_target(ctx: Context, argv: list[bytes], name: bytes) -> tuple[Stream, ConsumerGroup, int] | bytes:
    """XCLAIM's and XAUTOCLAIM's stream, group and min-idle-time, or Redis's error."""
    stream: Stream | None = ctx.keyspace.lookup_typed(argv[1], STREAM_TYPES, True)
    group = stream.groups.get(argv[2]) if stream is not None else None
    if stream is None or group is None:
        return no_group(argv[1], argv[2])
    min_idle = int_arg(argv[4])
    if min_idle is None:
        return b"-ERR Invalid min-idle-time argument for " + name + b"\r\n"
    return stream, group, max(min_idle, 0)


@command("xclaim", -6, "write fast", (1, 1, 1))
def xclaim(ctx: Context, argv: list[bytes]) -> bytes:
    target = _claim_target(ctx, argv, b"XCLAIM")
    if isinstance(target, bytes):
        return target
    stream, group, min_idle = target
    keyspace = ctx.keyspace
    key = argv[1]
    argc = len(argv)
    ids: list[StreamID] = []
    j = 5
    while j < argc:
        sid = parse_strict_id(argv[j])
        if sid is None:
            break
        ids.append(sid)
        j += 1
    now = now_ms(ctx)
    force = justid = False
    retrycount = -1
    delivery_time = -1
    last_id = MIN_ID
    while j < argc:
        more = argc - 1 - j
        opt = argv[j].lower()
        if opt == b"force":
            force = True
        elif opt == b"justid":
            justid = True
        elif opt in (b"idle", b"time", b"retrycount") and more:
            j += 1
            number = int_arg(argv[j])
            if number is None:
                return _claim_option_error(opt.upper())
            if opt == b"idle":
                delivery_time = now - number
            elif opt == b"time":
                delivery_time = number
            else:
                retrycount = number
        elif opt == b"lastid" and more:
            j += 1
            parsed = parse_strict_id(argv[j])
            if parsed is None:
                return ERR_INVALID_ID
            last_id = parsed
        else:
            return b"-ERR Unrecognized XCLAIM option '" + argv[j] + b"'\r\n"
        j += 1
    propagate_last_id = False
    if last_id > group.last_id:
        group.last_id = last_id
        propagate_last_id = True
    if delivery_time < 0 or delivery_time > now:
        delivery_time = now
    consumer: Consumer | None = None
    out: list[bytes] = []
    logged: list[list[bytes]] = []
    for sid in ids:
        nack = group.pel.get(sid)
        if sid not in stream.entries:
            if nack is not None:
                logged.append(claim_logged(key, argv[2], group, nack.consumer or Consumer(argv[3], now), sid, nack))
                propagate_last_id = False
                del group.pel[sid]
                if nack.consumer is not None:
                    nack.consumer.pel.pop(sid, None)
            continue
        if force and nack is None:
            nack = group.pel[sid] = NACK(None, now)
        if nack is None:
            continue
        if nack.consumer is not None and min_idle and now - nack.delivery_time < min_idle:
            continue
        if consumer is None:
            consumer, _created = consumer_of(ctx, key, group, argv[3], now)
        if nack.consumer is not consumer and nack.consumer is not None:
            del nack.consumer.pel[sid]
        nack.delivery_time = delivery_time
        if retrycount >= 0:
            nack.delivery_count = retrycount
        elif not justid:
            nack.delivery_count += 1
        if nack.consumer is not consumer:
            consumer.pel[sid] = nack
            nack.consumer = consumer
        out.append(bulk(format_id(sid)) if justid else entry_reply(sid, stream.entries[sid], ctx.resp3))
        logged.append(claim_logged(key, argv[2], group, consumer, sid, nack))
        propagate_last_id = False
    if propagate_last_id:
        logged.append(setid_logged(key, argv[2], group))
    for command_argv in logged:
        ctx.aof_feed(command_argv)
    if logged:
        keyspace.modified(key)
    return b"*%d\r\n" % len(out) + b"".join(out)


@command("xautoclaim", -6, "write fast", (1, 1, 1))
def xautoclaim(ctx: Context, argv: list[bytes]) -> bytes:
    target = _claim_target(ctx, argv, b"XAUTOCLAIM")
    if isinstance(target, bytes):
        return target
    stream, group, min_idle = target
    keyspace = ctx.keyspace
    key = argv[1]
    start = range_bound(argv[5], True)
    if isinstance(start, bytes):
        return start
    count = 100
    justid = False
    argc = len(argv)
    j = 6
    while j < argc:
        opt = argv[j].lower()
        if opt == b"count" and j + 1 < argc:
            number = int_arg(argv[j + 1])
            if number is None or not 1 <= number <= AUTOCLAIM_MAX_COUNT:
                return ERR_COUNT_POSITIVE
            count = number
            j += 1
        elif opt == b"justid":
            justid = True
        else:
            return ERR_SYNTAX
        j += 1
    attempts = count * AUTOCLAIM_ATTEMPTS_FACTOR
    now = now_ms(ctx)
    pending = list(group.pel.irange(start, MAX_ID))
    consumer: Consumer | None = None
    claimed: list[bytes] = []
    deleted: list[StreamID] = []
    logged: list[list[bytes]] = []
    at = 0
    while attempts and count and at < len(pending):
        attempts -= 1
        sid = pending[at]
        at += 1
        nack: NACK = group.pel[sid]
        assert nack.consumer is not None
        if sid not in stream.entries:
            logged.append(claim_logged(key, argv[2], group, nack.consumer, sid, nack))
            del group.pel[sid]
            del nack.consumer.pel[sid]
            deleted.append(sid)
            count -= 1
            continue
        if min_idle and now - nack.delivery_time < min_idle:
            continue
        if consumer is None:
            consumer, _created = consumer_of(ctx, key, group, argv[3], now)
        if nack.consumer is not consumer:
            del nack.consumer.pel[sid]
            consumer.pel[sid] = nack
            nack.consumer = consumer
        nack.delivery_time = now
        if not justid:
            nack.delivery_count += 1
        claimed.append(bulk(format_id(sid)) if justid else entry_reply(sid, stream.entries[sid], ctx.resp3))
        count -= 1
        logged.append(claim_logged(key, argv[2], group, consumer, sid, nack))
    cursor = pending[at] if at < len(pending) else MIN_ID
    for command_argv in logged:
        ctx.aof_feed(command_argv)
    if logged:
        keyspace.modified(key)
    return (b"*3\r\n" + bulk(format_id(cursor)) + b"*%d\r\n" % len(claimed) + b"".join(claimed)
            + b"*%d\r\n" % len(deleted) + b"".join(bulk(format_id(sid)) for sid in deleted))
