"""Reading streams (Redis's xreadCommand in t_stream.c): XREAD, plain and blocking.

XREAD [COUNT n] [BLOCK ms] STREAMS key... id... answers, for each stream with entries
after its ID, the key and those entries (RESP3: a map key -> entries); a null array
when no stream has any. `$` is the stream's last ID when the command runs.

With BLOCK, a client that finds nothing waits (kvred/blocking.py) on all its keys for
a `Stream`. Streams are not deleted when they empty, so XADD signals the key ready
itself. A served client is answered as Redis 7.0's serveClientsBlockedOnStreamKey
answers it: from the one stream that became ready, with what came after the ID it
gave (`$`: the stream's last ID when it blocked), at most COUNT entries, or 1000 when
it gave no COUNT (Redis's XREAD_BLOCKED_DEFAULT_COUNT). Inside MULTI/EXEC it answers as
on a timeout at once; in scripts BLOCK is an error, as in Redis.

Where this differs from Redis: Redis serves a blocked client once the stream's
last-generated ID passes the client's ID even if no entry is left after it (an XADD
with MAXLEN 0): it answers the key with no entries; kvred keeps such a client waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice

from ..blocking import BlockOn
from ..stream import MAX_ID, Stream, StreamID, format_id, incr_id, parse_strict_id
from .base import ERR_NOT_INT, ERR_SYNTAX, Context, ReplyTooLarge, command, int_arg
from .streams import ERR_INVALID_ID, NULL_ARRAY, STREAM_TYPES, range_reply

__all__ = ["XREAD_BLOCKED_DEFAULT_COUNT", "parse_block_timeout"]

XREAD_BLOCKED_DEFAULT_COUNT = 1000  # a served client without COUNT gets at most this many

ERR_TIMEOUT_NOT_INT = b"-ERR timeout is not an integer or out of range\r\n"
ERR_TIMEOUT_NEGATIVE = b"-ERR timeout is negative\r\n"
ERR_GROUP_XREAD = b"-ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.\r\n"
ERR_NOACK_XREAD = b"-ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.\r\n"
ERR_GT_XREAD = (b"-ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> "
                b"<consumer> option.\r\n")


def parse_block_timeout(arg: bytes) -> float | bytes:
    """BLOCK's milliseconds (getTimeoutFromObjectOrReply, UNIT_MILLISECONDS) as
    seconds (0: forever), or Redis's error."""
    ms = int_arg(arg)
    if ms is None:
        return ERR_TIMEOUT_NOT_INT
    if ms < 0:
        return ERR_TIMEOUT_NEGATIVE
    return ms / 1000


def _in_script(ctx: Context) -> bool:
    from ..scripting.runner import runner_of  # (the scripting package imports the command table)

    runner = runner_of(ctx.databases)
    return runner is not None and runner.running is not None


def _unbalanced(name: bytes, symbol: str) -> bytes:
    return (b"-ERR Unbalanced " + name + b" list of streams: for each stream key an ID or '"
            + symbol.encode() + b"' must be specified.\r\n")


@command("xread", -4, "readonly blocking movablekeys", (0, 0, 0))
def xread(ctx: Context, argv: list[bytes]) -> bytes:
    timeout: float | None = None
    count = 0
    count_arg = b"0"
    streams_at = 0
    argc = len(argv)
    i = 1
    while i < argc:
        more = argc - i - 1
        opt = argv[i].lower()
        if opt == b"block" and more:
            if _in_script(ctx):
                return b"-ERR " + argv[0] + b" command is not allowed with BLOCK option from scripts\r\n"
            i += 1
            parsed = parse_block_timeout(argv[i])
            if isinstance(parsed, bytes):
                return parsed
            timeout = parsed
        elif opt == b"count" and more:
            i += 1
            number = int_arg(argv[i])
            if number is None:
                return ERR_NOT_INT
            count = max(number, 0)
            count_arg = argv[i]
        elif opt == b"streams" and more:
            streams_at = i + 1
            if (argc - streams_at) % 2:
                return _unbalanced(b"XREAD", "$")
            break
        elif opt == b"group" and more >= 2:
            return ERR_GROUP_XREAD
        elif opt == b"noack":
            return ERR_NOACK_XREAD
        else:
            return ERR_SYNTAX
        i += 1
    if not streams_at:
        return ERR_SYNTAX
    nkeys = (argc - streams_at) // 2
    keys = argv[streams_at : streams_at + nkeys]
    keyspace = ctx.keyspace
    ids: list[StreamID] = []
    for key, id_arg in zip(keys, argv[streams_at + nkeys :], strict=True):
        stream: Stream | None = keyspace.lookup_typed(key, STREAM_TYPES)
        if id_arg == b"$":
            ids.append(stream.last_id if stream is not None else (0, 0))
            continue
        if id_arg == b">":
            return ERR_GT_XREAD
        sid = parse_strict_id(id_arg)
        if sid is None:
            return ERR_INVALID_ID
        ids.append(sid)
    parts: list[bytes] = []
    size = 0
    limit = ctx.output_limit
    for key, gt in zip(keys, ids, strict=True):
        stream = keyspace.lookup_typed(key, STREAM_TYPES)
        if stream is None or not stream.entries or stream.entries.peekitem(-1)[0] <= gt:
            continue
        part = _key_reply(ctx, key, stream, gt, count)
        parts.append(part)
        size += len(part)
        if size > limit:
            raise ReplyTooLarge
    if parts:
        head = b"%%%d\r\n" if ctx.resp3 else b"*%d\r\n"
        return head % len(parts) + b"".join(parts)
    null = NULL_ARRAY[ctx.resp3]
    if timeout is None:
        return null
    if not ctx.may_block:  # MULTI/EXEC: as on a timeout, at once
        return null
    gts: dict[bytes, StreamID] = {}
    for key, gt in zip(keys, ids, strict=True):
        gts.setdefault(key, gt)  # a key named twice waits for its first ID, as Redis
    served_count = count_arg if count else b"%d" % XREAD_BLOCKED_DEFAULT_COUNT
    raise BlockOn(keys, timeout, null, STREAM_TYPES, _retry(argv[0], served_count, gts))


def _key_reply(ctx: Context, key: bytes, stream: Stream, gt: StreamID, count: int) -> bytes:
    """One stream's part: [key, entries after `gt`] (RESP3: a map's key and value)."""
    start = incr_id(gt)
    assert start is not None  # the stream has an entry after `gt`
    entries = stream.entries
    ids = entries.irange(start, MAX_ID)
    if count:
        ids = islice(ids, count)
    rows = ((sid, entries[sid]) for sid in ids)
    head = b"" if ctx.resp3 else b"*2\r\n"
    return head + b"$%d\r\n%b\r\n" % (len(key), key) + range_reply(ctx, rows)


def _retry(name: bytes, count_arg: bytes, ids: dict[bytes, StreamID]) -> Callable[[bytes], list[bytes]]:
    """A served client's command: XREAD on the ready stream alone, after the ID it gave
    (`$` resolved to the last ID at block time), still with BLOCK so that it keeps
    waiting if that stream has nothing for it."""
    def retry(key: bytes) -> list[bytes]:
        return [name, b"COUNT", count_arg, b"BLOCK", b"0", b"STREAMS", key, format_id(ids[key])]
    return retry

