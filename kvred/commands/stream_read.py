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
Redis serves a blocked client once the stream's last-generated ID passes the client's
ID even if no entry is left after it (an XADD with MAXLEN 0): it answers the key with
no entries, and so does kvred.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice

from ..blocking import BlockOn
from ..stream import MAX_ID, Stream, StreamID, format_id, incr_id, parse_strict_id
from .base import ERR_NOT_INT, ERR_SYNTAX, Context, ReplyTooLarge, command, int_arg
from .streams import ERR_INVALID_ID, NULL_ARRAY, STREAM_TYPES, range_reply

__all__ = ["XREAD_BLOCKED_DEFAULT_COUNT", "ReadArgs", "parse_read_args", "reply_or_block", "check_reply_size"]

XREAD_BLOCKED_DEFAULT_COUNT = 1000  # a served client without COUNT gets at most this many

ERR_TIMEOUT_NOT_INT = b"-ERR timeout is not an integer or out of range\r\n"
ERR_TIMEOUT_NEGATIVE = b"-ERR timeout is negative\r\n"
ERR_GROUP_XREAD = b"-ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.\r\n"
ERR_NOACK_XREAD = b"-ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.\r\n"
ERR_MISSING_GROUP = b"-ERR Missing GROUP option for XREADGROUP\r\n"
UNBALANCED = b"-ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.\r\n"
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


def in_script(ctx: Context) -> bool:
    from ..scripting.runner import runner_of  # (the scripting package imports the command table)

    runner = runner_of(ctx.databases)
    return runner is not None and runner.running is not None




class ReadArgs:
    """What XREAD and XREADGROUP parsed (Redis parses both in xreadCommand)."""

    __slots__ = ("timeout", "count", "count_arg", "noack", "group", "consumer", "keys", "id_args")

    def __init__(self) -> None:
        self.timeout: float | None = None  # seconds; None: no BLOCK
        self.count = 0  # 0: no limit
        self.count_arg = b"0"
        self.noack = False
        self.group: bytes | None = None
        self.consumer = b""
        self.keys: list[bytes] = []
        self.id_args: list[bytes] = []

    def served_count(self) -> bytes:
        """The COUNT of a served client: its own, or XREAD_BLOCKED_DEFAULT_COUNT."""
        return self.count_arg if self.count else b"%d" % XREAD_BLOCKED_DEFAULT_COUNT


def parse_read_args(ctx: Context, argv: list[bytes], xreadgroup: bool) -> ReadArgs | bytes:
    """The options up to STREAMS, then the keys and their IDs, or Redis's error."""
    args = ReadArgs()
    streams_at = 0
    argc = len(argv)
    i = 1
    while i < argc:
        more = argc - i - 1
        opt = argv[i].lower()
        if opt == b"block" and more:
            if in_script(ctx):
                return b"-ERR " + argv[0] + b" command is not allowed with BLOCK option from scripts\r\n"
            i += 1
            parsed = parse_block_timeout(argv[i])
            if isinstance(parsed, bytes):
                return parsed
            args.timeout = parsed
        elif opt == b"count" and more:
            i += 1
            number = int_arg(argv[i])
            if number is None:
                return ERR_NOT_INT
            args.count = max(number, 0)
            args.count_arg = argv[i]
        elif opt == b"streams" and more:
            streams_at = i + 1
            if (argc - streams_at) % 2:
                return UNBALANCED  # (Redis 7.0 names XREAD and `$` for XREADGROUP too)
            break
        elif opt == b"group" and more >= 2:
            if not xreadgroup:
                return ERR_GROUP_XREAD
            args.group, args.consumer = argv[i + 1], argv[i + 2]
            i += 2
        elif opt == b"noack":
            if not xreadgroup:
                return ERR_NOACK_XREAD
            args.noack = True
        else:
            return ERR_SYNTAX
        i += 1
    if not streams_at:
        return ERR_SYNTAX
    if xreadgroup and args.group is None:
        return ERR_MISSING_GROUP
    nkeys = (argc - streams_at) // 2
    args.keys = argv[streams_at : streams_at + nkeys]
    args.id_args = argv[streams_at + nkeys :]
    return args


def check_reply_size(ctx: Context, parts: list[bytes]) -> None:
    if sum(map(len, parts)) > ctx.output_limit:
        raise ReplyTooLarge


@command("xread", -4, "readonly blocking movablekeys", (0, 0, 0))
def xread(ctx: Context, argv: list[bytes]) -> bytes:
    args = parse_read_args(ctx, argv, False)
    if isinstance(args, bytes):
        return args
    keys = args.keys
    keyspace = ctx.keyspace
    ids: list[StreamID] = []
    for key, id_arg in zip(keys, args.id_args, strict=True):
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
    served = getattr(ctx.executor, "reprocessing", False)  # re-run for a blocked client
    parts: list[bytes] = []
    for key, gt in zip(keys, ids, strict=True):
        stream = keyspace.lookup_typed(key, STREAM_TYPES)
        if stream is None:
            continue
        if not stream.entries or stream.entries.peekitem(-1)[0] <= gt:
            # a served client is answered once the stream's last ID passes its own, even
            # when no entry is left after it (Redis 7.0's serveClientsBlockedOnStreamKey)
            if not (served and stream.last_id > gt):
                continue
        parts.append(_key_reply(ctx, key, stream, gt, args.count))
        check_reply_size(ctx, parts)
    first_ids = dict(zip(reversed(keys), reversed(ids), strict=True))  # a key named twice: its first ID
    return reply_or_block(ctx, args, parts, lambda: _retry(argv[0], args.served_count(), first_ids))


def reply_or_block(ctx: Context, args: ReadArgs, parts: list[bytes],
                   make_retry: Callable[[], Callable[[bytes], list[bytes]]], gone_reply: bytes | None = None) -> bytes:
    """The streams that had something; else, with BLOCK, wait for one of the keys
    (BlockOn, the served client re-run as `make_retry()` says, or answered `gone_reply`
    if a stream it waits on is deleted); else a null array."""
    if parts:
        head = b"%%%d\r\n" if ctx.resp3 else b"*%d\r\n"
        return head % len(parts) + b"".join(parts)
    null = NULL_ARRAY[ctx.resp3]
    if args.timeout is None or not ctx.may_block:  # MULTI/EXEC: as on a timeout, at once
        return null
    raise BlockOn(args.keys, args.timeout, null, STREAM_TYPES, make_retry(), gone_reply)


def _key_reply(ctx: Context, key: bytes, stream: Stream, gt: StreamID, count: int) -> bytes:
    """One stream's part: [key, entries after `gt`] (RESP3: a map's key and value)."""
    start = incr_id(gt)
    assert start is not None  # the stream's last ID is after `gt`
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

