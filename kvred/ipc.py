"""The worker <-> writer link: message format and framing (sans-IO).

Each worker owns one end of a Unix socketpair made by the supervisor before
fork (no filesystem path, so no other local process can reach the writer).
Per event-loop pass a worker sends at most one *request batch*; the writer
answers each batch with one *reply batch*, in order, on the same link.

A frame is a 4-byte little-endian length followed by a msgpack body.

Request batch: a list of entries `[op, client_id, resp3, payload]`:

    OP_RUN         payload = [argv, ...]  -> the concatenated replies (bytes)
    OP_EXEC        payload = [argv, ...]  -> one array reply; run atomically (MULTI/EXEC)
    OP_CONNECT     payload = [addr, laddr, fd] -> None
    OP_DISCONNECT  payload = None         -> None
    OP_UPDATE      payload = {field: value} (client name, protocol) -> None
    OP_CONTROL     payload = [argv]       -> bytes; server-level requests (shutdown)
    OP_STATS       payload = [[client_id, fd, idle s, multi, qbuf, multi-mem, omem, events], ...]
                   or, with client id WORKER_TOTALS, [in bytes, out bytes, reads, writes, rejected
    OP_ACK         payload = [token]      a {"config" [token, ...]} message is applied
                   connections, {command: {stat index: count}}, {error code: count}]
                   -> None; once a second, what CLIENT LIST shows of each client's buffers

Reply batch: a list with one item per request entry, in the same order.
The writer executes entries in the order it receives them; that order is the
global order of the keyspace and of the AOF. A reply item is:

    bytes           the entry's replies
    None            no reply (client events)
    int             DROPPED: the client's replies passed its output limit; close it
    REPLY_DEFERRED  the replies come later, in a `resume` message (below)

Besides reply batches the writer sends *messages*, msgpack maps (a batch is
always a list, so one type check tells them apart):

    {"resume": [[client_id, [reply item, ...]], ...]}
        the replies owed to clients whose entries were answered REPLY_DEFERRED
        (blocked in BLPOP..., or held while the AOF failed), in the order of those
        entries. A worker keeps a client's later replies behind them (the client's
        reply order is its command order). An item that is a one-element array
        [bytes] is a *partial* reply: the first replies of the oldest owed entry
        (commands before a second blocking command in it), written at once; the
        entry stays owed.

    {"push": [[client_id, answered, data], ...]}
        bytes for a client that did not ask for them (a published message, a
        MONITOR line, a keyspace event), to be written right after the client's
        `answered`-th reply (counting replies of entries, deferred ones when they
        come): that keeps a push in the global order relative to the client's own
        commands even though replies and pushes travel in different frames.

    {"kill": [client_id, ...]}
        CLIENT KILL: close these clients (after writing what they were sent).

    {"monitoring": bool}
        whether some client runs MONITOR: while it does, a worker reports the
        commands it answers itself (OP_UPDATE {"feed": argv}, AUTH/HELLO redacted).

    {"config": [token, {attribute: value}]}
        CONFIG SET changed these Config attributes (or, token 0, a new link: every
        runtime setting as it is now): the worker's Config mirrors the writer's. The
        worker applies them and answers OP_ACK [token]; the CONFIG SET's client is
        answered once every worker has (kvred/writer.py).
    {"users": [ACL LIST line, ...]}
        every ACL user (kvred/acl.py), after each change and when a link opens: the
        worker rebuilds its replica of the users from them (AUTH, MULTI's checks).

    {"oom": bool}
        the dataset is over maxmemory and nothing may be evicted (noeviction, or nothing
        left the policy may take): until False, a worker refuses with -OOM every command
        queued in MULTI but EXEC, DISCARD, QUIT and RESET, as Redis's processCommand does.
    {"busy": error bytes | None}
        a script has run past busy-reply-threshold (None: it ended). Sent at once,
        while the writer is inside the script: until None, a worker answers that
        error to every command but the few Redis allows on a busy server, and
        forwards SCRIPT KILL, FUNCTION KILL and SHUTDOWN, which the writer reads
        from inside the script.

Every frame the writer sends obeys the durability rule: it leaves only after
the AOF write (and sync, per policy) of the pass that produced it.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "OP_RUN",
    "OP_EXEC",
    "OP_CONNECT",
    "OP_DISCONNECT",
    "OP_UPDATE",
    "OP_CONTROL",
    "OP_STATS",
    "OP_ACK",
    "WORKER_TOTALS",
    "REPLY_DEFERRED",
    "MSG_RESUME",
    "MSG_PUSH",
    "MSG_KILL",
    "MSG_MONITORING",
    "MSG_BUSY",
    "MSG_CONFIG",
    "MSG_OOM",
    "MSG_USERS",
    "MAX_FRAME_BYTES",
    "FrameTooLarge",
    "encode_frame",
    "FrameReader",
]

OP_RUN, OP_EXEC, OP_CONNECT, OP_DISCONNECT, OP_UPDATE, OP_CONTROL, OP_STATS, OP_ACK = range(8)
# OP_STATS with this client id: the worker's own counts since its last report,
# [net input bytes, net output bytes, reads, writes, rejected connections, commands, errors]
WORKER_TOTALS = -1
REPLY_DEFERRED = False  # a reply item: "owed, comes in a resume message"
MSG_RESUME = "resume"
MSG_PUSH = "push"
MSG_KILL = "kill"
MSG_MONITORING = "monitoring"
MSG_BUSY = "busy"


def text_to_wire(text: str) -> bytes:
    """A str that may hold a client's undecodable bytes (surrogateescape: user names,
    keys) as bytes for a frame: msgspec refuses to encode lone surrogates."""
    return text.encode("utf-8", "surrogateescape")


def text_from_wire(data: bytes | str) -> str:
    return data if isinstance(data, str) else data.decode("utf-8", "surrogateescape")
MSG_CONFIG = "config"
MSG_OOM = "oom"
MSG_USERS = "users"

HEADER_BYTES = 4
MAX_FRAME_BYTES = 2**32 - 1  # the length prefix is a uint32; workers keep batches far below

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


class FrameTooLarge(Exception):
    """A peer announced a frame over MAX_FRAME_BYTES: the link is corrupt."""


def encode_frame(message: Any) -> bytearray:
    """Length-prefixed msgpack frame of `message` (not copied into a `bytes`: a frame
    can hold hundreds of MB of replies, and sockets and transports take a bytearray)."""
    buf = bytearray(HEADER_BYTES)
    # encode_into appends after the header without an intermediate copy.
    _encoder.encode_into(message, buf, HEADER_BYTES)
    size = len(buf) - HEADER_BYTES
    if size > MAX_FRAME_BYTES:
        raise FrameTooLarge(size)
    buf[:HEADER_BYTES] = size.to_bytes(HEADER_BYTES, "little")
    return buf


class FrameReader:
    """Incremental frame splitter: feed bytes, get decoded messages back."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes | memoryview) -> list[Any]:
        buf = self._buf
        if not buf and len(data) >= HEADER_BYTES:
            # The usual read: exactly one whole frame (a batch, or its replies).
            # Decode it in place instead of copying it through the buffer.
            size = int.from_bytes(data[:HEADER_BYTES], "little")
            if len(data) == HEADER_BYTES + size:
                return [_decoder.decode(data[HEADER_BYTES:])]
        buf += data
        messages = []
        pos = 0
        end = len(buf)
        view = memoryview(buf)
        try:
            while end - pos >= HEADER_BYTES:
                size = int.from_bytes(view[pos : pos + HEADER_BYTES], "little")
                stop = pos + HEADER_BYTES + size
                if stop > end:
                    break
                messages.append(_decoder.decode(view[pos + HEADER_BYTES : stop]))
                pos = stop
        finally:
            view.release()
        if pos:
            del buf[:pos]
        return messages

    @property
    def buffered(self) -> int:
        return len(self._buf)
