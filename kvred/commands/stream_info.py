"""XINFO (Redis 7.0's t_stream.c): STREAM [FULL [COUNT n]], GROUPS, CONSUMERS, HELP.

Replies are maps (RESP2: flat arrays of name, value). Idle times come from the
keyspace's clock, as delivery and seen times do (kvred/commands/stream_groups.py).

Where this differs from Redis: `radix-tree-keys` is the number of listpack nodes as
kvred/stream.py emulates them, and `radix-tree-nodes` is not Redis's count of its rax's
inner nodes (which kvred does not build) but that number plus one.
"""

from __future__ import annotations

from ..stream import (
    MIN_ID,
    SCG_INVALID_ENTRIES_READ,
    ConsumerGroup,
    Stream,
    estimate_entries_read,
    format_id,
    range_has_tombstones,
)
from .base import ERR_NOT_INT, Context, command, int_arg, subcommand_syntax_error
from .stream_groups import bulk, entry_reply, now_ms
from .streams import STREAM_TYPES

__all__: list[str] = []

ERR_NO_SUCH_KEY = b"-ERR no such key\r\n"
XINFO_FULL_DEFAULT_COUNT = 10  # FULL lists at most this many entries and pending entries

XINFO_HELP = [
    b"XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"CONSUMERS <key> <groupname>",
    b"    Show consumers of <groupname>.",
    b"GROUPS <key>",
    b"    Show the stream consumer groups.",
    b"STREAM <key> [FULL [COUNT <count>]",
    b"    Show information about the stream.",
    b"HELP",
    b"    Prints this help.",
]


def _map(ctx: Context, pairs: list[tuple[bytes, bytes]]) -> bytes:
    head = b"%%%d\r\n" % len(pairs) if ctx.resp3 else b"*%d\r\n" % (2 * len(pairs))
    return head + b"".join(bulk(name) + value for name, value in pairs)


def _int(value: int) -> bytes:
    return b":%d\r\n" % value


def _array(items: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(items) + b"".join(items)


def _lag(ctx: Context, stream: Stream, group: ConsumerGroup) -> bytes:
    """streamReplyWithCGLag: entries not yet delivered to the group, where known."""
    if not stream.entries_added:
        return _int(0)
    if group.entries_read != SCG_INVALID_ENTRIES_READ and not range_has_tombstones(stream, group.last_id):
        return _int(stream.entries_added - group.entries_read)
    read = estimate_entries_read(stream, group.last_id)
    return ctx.null if read == SCG_INVALID_ENTRIES_READ else _int(stream.entries_added - read)


def _entries_read(ctx: Context, group: ConsumerGroup) -> bytes:
    return ctx.null if group.entries_read == SCG_INVALID_ENTRIES_READ else _int(group.entries_read)


@command("xinfo", -2, "", (0, 0, 0), subcommands={"consumers": 4, "groups": 3, "stream": -3, "help": 2})
def xinfo(ctx: Context, argv: list[bytes]) -> bytes:
    sub = argv[1].lower()
    if sub == b"help":
        return b"*%d\r\n" % len(XINFO_HELP) + b"".join(b"+%b\r\n" % line for line in XINFO_HELP)
    stream: Stream | None = ctx.keyspace.lookup_typed(argv[2], STREAM_TYPES)
    if stream is None:
        return ERR_NO_SUCH_KEY
    now = now_ms(ctx)
    if sub == b"consumers":
        group = stream.groups.get(argv[3])
        if group is None:
            return (b"-NOGROUP No such consumer group '" + argv[3] + b"' for key name '" + argv[2] + b"'\r\n")
        return _array([_map(ctx, [(b"name", bulk(name)), (b"pending", _int(len(consumer.pel))),
                                  (b"idle", _int(max(now - consumer.seen_time, 0)))])
                       for name, consumer in sorted(group.consumers.items())])
    if sub == b"groups":
        return _array([_map(ctx, [(b"name", bulk(name)), (b"consumers", _int(len(group.consumers))),
                                  (b"pending", _int(len(group.pel))), (b"last-delivered-id", bulk(format_id(group.last_id))),
                                  (b"entries-read", _entries_read(ctx, group)), (b"lag", _lag(ctx, stream, group))])
                       for name, group in sorted(stream.groups.items())])
    return _stream_info(ctx, argv, stream)


def _stream_info(ctx: Context, argv: list[bytes], stream: Stream) -> bytes:
    options = argv[3:]
    count = XINFO_FULL_DEFAULT_COUNT
    full = bool(options)
    if full:
        if len(options) not in (1, 3) or options[0].lower() != b"full":
            return subcommand_syntax_error(argv[1], "xinfo")
        if len(options) == 3:
            if options[1].lower() != b"count":
                return subcommand_syntax_error(argv[1], "xinfo")
            number = int_arg(options[2])
            if number is None:
                return ERR_NOT_INT
            count = number if number >= 0 else XINFO_FULL_DEFAULT_COUNT
    entries = stream.entries
    first = entries.peekitem(0) if entries else None
    last = entries.peekitem(-1) if entries else None
    pairs = [(b"length", _int(len(stream))), (b"radix-tree-keys", _int(len(stream.nodes))),
             (b"radix-tree-nodes", _int(len(stream.nodes) + 1)),
             (b"last-generated-id", bulk(format_id(stream.last_id))),
             (b"max-deleted-entry-id", bulk(format_id(stream.max_deleted_id))),
             (b"entries-added", _int(stream.entries_added)),
             (b"recorded-first-entry-id", bulk(format_id(first[0] if first else MIN_ID)))]
    if not full:
        pairs += [(b"groups", _int(len(stream.groups))),
                  (b"first-entry", entry_reply(first[0], first[1], ctx.resp3) if first else ctx.null),
                  (b"last-entry", entry_reply(last[0], last[1], ctx.resp3) if last else ctx.null)]
        return _map(ctx, pairs)
    shown = list(entries.items()[:count] if count else entries.items())
    pairs.append((b"entries", _array([entry_reply(sid, fields, ctx.resp3) for sid, fields in shown])))
    groups = []
    for name, group in sorted(stream.groups.items()):
        pel = list(group.pel.items()[:count] if count else group.pel.items())
        pending = [_array([bulk(format_id(sid)), bulk(nack.consumer.name if nack.consumer else b""),
                           _int(nack.delivery_time), _int(nack.delivery_count)]) for sid, nack in pel]
        consumers = []
        for cname, consumer in sorted(group.consumers.items()):
            own = list(consumer.pel.items()[:count] if count else consumer.pel.items())
            consumers.append(_map(ctx, [
                (b"name", bulk(cname)), (b"seen-time", _int(consumer.seen_time)), (b"pel-count", _int(len(consumer.pel))),
                (b"pending", _array([_array([bulk(format_id(sid)), _int(nack.delivery_time), _int(nack.delivery_count)])
                                     for sid, nack in own]))]))
        groups.append(_map(ctx, [
            (b"name", bulk(name)), (b"last-delivered-id", bulk(format_id(group.last_id))),
            (b"entries-read", _entries_read(ctx, group)), (b"lag", _lag(ctx, stream, group)),
            (b"pel-count", _int(len(group.pel))), (b"pending", _array(pending)), (b"consumers", _array(consumers))]))
    pairs.append((b"groups", _array(groups)))
    return _map(ctx, pairs)
