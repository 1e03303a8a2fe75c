"""The stream value (Redis's stream.h and the data half of t_stream.c), sans-IO: a
`Stream`, its IDs, and how it packs entries into nodes and trims them. The commands
are in kvred/commands/streams.py.

A stream keeps its entries in a SortedDict keyed by ID, `(ms, seq)`, each entry's
field/value pairs as one flat tuple, so a range costs O(log N) to find plus O(count) to
read; and Redis 7.0's bookkeeping: `last_id` (last-generated-id), `entries_added`,
`max_deleted_id` (max-deleted-entry-id).

Approximate trimming (`~`) removes whole listpack nodes only, so its result depends on
how Redis packed the entries. `Stream.nodes` emulates that packing: a new node starts
once the last one holds STREAM_NODE_MAX_ENTRIES entries, live or deleted (Redis's
stream-node-max-entries, default 100); XDEL leaves a tombstone in its node, and a node
whose entries are all deleted goes away. Where this may differ from Redis: Redis also
starts a new node once a node's listpack passes stream-node-max-bytes (4096 bytes), which
this emulation does not compute, so with large entries (more than about 40 bytes each)
Redis's nodes are smaller and `~` may trim more in Redis; and after an AOF load both
servers repack the entries, so the packing (and a later `~`) can differ from before the
restart, in Redis too.
"""

from __future__ import annotations

import bisect
import re

from sortedcontainers import SortedDict

from .resp import parse_strict_int

__all__ = [
    "Stream",
    "StreamID",
    "ConsumerGroup",
    "Consumer",
    "NACK",
    "parse_stream_id",
    "parse_strict_id",
    "parse_strict_ids",
    "parse_interval_id",
    "incr_id",
    "decr_id",
    "format_id",
    "U64_MAX",
    "MIN_ID",
    "MAX_ID",
    "STREAM_NODE_MAX_ENTRIES",
    "SCG_INVALID_ENTRIES_READ",
    "estimate_entries_read",
    "range_has_tombstones",
    "TRIM_NONE",
    "TRIM_MAXLEN",
    "TRIM_MINID",
]

StreamID = tuple[int, int]
U64_MAX = 2**64 - 1
MIN_ID: StreamID = (0, 0)
MAX_ID: StreamID = (U64_MAX, U64_MAX)
STREAM_NODE_MAX_ENTRIES = 100  # Redis's stream-node-max-entries default
STREAM_ID_MAX_LEN = 127  # Redis parses an ID in a 128-byte buffer

TRIM_NONE, TRIM_MAXLEN, TRIM_MINID = 0, 1, 2


class _Node:
    """One of Redis's listpack nodes: the ID it was created with (its rax key), the last
    ID put in it, and how many of its entries are live and deleted."""

    __slots__ = ("master", "last", "live", "deleted")

    def __init__(self, master: StreamID) -> None:
        self.master = master
        self.last = master
        self.live = 0
        self.deleted = 0

    def clone(self) -> _Node:
        node = _Node(self.master)
        node.last, node.live, node.deleted = self.last, self.live, self.deleted
        return node


class Stream:
    """A stream value: entries (ID -> flat field/value tuple) in ID order, the emulated
    node packing, and Redis 7.0's last-id, entries-added and max-deleted-id."""

    __slots__ = ("entries", "nodes", "last_id", "entries_added", "max_deleted_id", "groups")

    def __init__(self) -> None:
        self.entries: SortedDict = SortedDict()
        self.nodes: list[_Node] = []
        self.last_id: StreamID = MIN_ID
        self.entries_added = 0
        self.max_deleted_id: StreamID = MIN_ID
        self.groups: dict[bytes, ConsumerGroup] = {}  # name -> group (Redis keeps them sorted)

    def __len__(self) -> int:
        return len(self.entries)

    def append(self, sid: StreamID, fields: tuple[bytes, ...]) -> None:
        """streamAppendItem, once the ID is known to be above last_id."""
        nodes = self.nodes
        if not nodes or nodes[-1].live + nodes[-1].deleted >= STREAM_NODE_MAX_ENTRIES:
            nodes.append(_Node(sid))
        node = nodes[-1]
        node.live += 1
        node.last = sid
        self.entries[sid] = fields
        self.last_id = sid
        self.entries_added += 1

    def delete(self, sid: StreamID) -> bool:
        """streamDeleteItem: a tombstone in its node; the node goes once all are deleted."""
        if sid not in self.entries:
            return False
        del self.entries[sid]
        nodes = self.nodes
        at = bisect.bisect_right(nodes, sid, key=lambda node: node.master) - 1
        node = nodes[at]
        node.live -= 1
        node.deleted += 1
        if node.live == 0:
            del nodes[at]
        return True

    def trim(self, strategy: int, maxlen: int, minid: StreamID, approx: bool, limit: int) -> int:
        """streamTrim: whole nodes from the head while they may all go, then (exact
        trimming only) entries of the next node; the number of entries removed."""
        entries, nodes = self.entries, self.nodes
        removed = 0
        while nodes:
            if strategy == TRIM_MAXLEN and len(entries) <= maxlen:
                break
            node = nodes[0]
            live = node.live
            if limit and removed + live > limit:
                break
            if strategy == TRIM_MAXLEN:
                whole = len(entries) - live >= maxlen
            else:
                whole = node.last < minid
            if whole:
                for _ in range(live):
                    entries.popitem(0)
                del nodes[0]
                removed += live
                continue
            if approx:
                break
            count = 0
            if strategy == TRIM_MAXLEN:
                count = len(entries) - maxlen
                for _ in range(count):
                    entries.popitem(0)
            else:
                while entries and entries.peekitem(0)[0] < minid:
                    entries.popitem(0)
                    count += 1
            node.live -= count
            node.deleted += count
            removed += count
            break
        return removed


# --- consumer groups -----------------------------------------------------------------

SCG_INVALID_ENTRIES_READ = -1


class NACK:
    """A pending entry (Redis's streamNACK): delivered, not yet acknowledged."""

    __slots__ = ("delivery_time", "delivery_count", "consumer")

    def __init__(self, consumer: Consumer | None, now_ms: int) -> None:
        self.delivery_time = now_ms
        self.delivery_count = 1
        self.consumer = consumer  # None only while XCLAIM FORCE creates it


class Consumer:
    """A consumer of a group: when it was last seen, and its own pending entries (the
    same NACK objects as the group's PEL)."""

    __slots__ = ("name", "seen_time", "pel")

    def __init__(self, name: bytes, now_ms: int) -> None:
        self.name = name
        self.seen_time = now_ms
        self.pel: SortedDict = SortedDict()  # StreamID -> NACK


class ConsumerGroup:
    """A consumer group (Redis's streamCG): the last ID delivered, how many entries it
    has read (SCG_INVALID_ENTRIES_READ: not known), its PEL and its consumers."""

    __slots__ = ("last_id", "entries_read", "pel", "consumers")

    def __init__(self, last_id: StreamID, entries_read: int) -> None:
        self.last_id = last_id
        self.entries_read = entries_read
        self.pel: SortedDict = SortedDict()  # StreamID -> NACK
        self.consumers: dict[bytes, Consumer] = {}

    def consumer(self, name: bytes, now_ms: int) -> tuple[Consumer, bool]:
        """The consumer `name`, seen now, created if new: (consumer, whether created)."""
        found = self.consumers.get(name)
        if found is not None:
            found.seen_time = now_ms
            return found, False
        created = self.consumers[name] = Consumer(name, now_ms)
        return created, True

    def clone(self) -> ConsumerGroup:
        group = ConsumerGroup(self.last_id, self.entries_read)
        for name, old in self.consumers.items():
            consumer = group.consumers[name] = Consumer(name, old.seen_time)
            for sid, nack in old.pel.items():
                copy = NACK(consumer, nack.delivery_time)
                copy.delivery_count = nack.delivery_count
                consumer.pel[sid] = copy
                group.pel[sid] = copy
        return group


def estimate_entries_read(stream: Stream, sid: StreamID) -> int:
    """streamEstimateDistanceFromFirstEverEntry: how many entries were added up to
    `sid`, where that can be known."""
    if not stream.entries_added:
        return 0
    if not stream.entries and sid <= stream.last_id:
        return stream.entries_added
    if sid == stream.last_id:
        return stream.entries_added
    if sid > stream.last_id:
        return SCG_INVALID_ENTRIES_READ
    first = stream.entries.peekitem(0)[0] if stream.entries else MIN_ID
    if stream.max_deleted_id == MIN_ID or stream.max_deleted_id < first:
        if sid < first:
            return stream.entries_added - len(stream)
        if sid == first:
            return stream.entries_added - len(stream) + 1
    return SCG_INVALID_ENTRIES_READ


def range_has_tombstones(stream: Stream, start: StreamID) -> bool:
    """streamRangeHasTombstones(start, NULL): a deleted entry at or after `start`?"""
    deleted = stream.max_deleted_id
    if not stream.entries or deleted == MIN_ID:
        return False
    if stream.entries.peekitem(0)[0] > deleted:
        return False
    return start <= deleted


# --- IDs -------------------------------------------------------------------------------

_STRTOULL = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]+)")


def _string2ull(text: bytes) -> int | None:
    """Redis's string2ull: string2ll for a non-negative value, else strtoull's reading
    (leading spaces, a sign, leading zeros; a minus wraps modulo 2**64)."""
    value = parse_strict_int(text)
    if value is not None:
        return value if value >= 0 else None
    match = _STRTOULL.fullmatch(text)
    if match is None:
        return None
    value = int(match.group(2))
    if value > U64_MAX:
        return None
    return (-value) % (U64_MAX + 1) if match.group(1) == b"-" else value


def parse_stream_id(arg: bytes, missing_seq: int, strict: bool, seq_star: bool = False
                    ) -> tuple[StreamID, bool] | None:
    """streamGenericParseIDOrReply: (id, whether the sequence was given) or None.
    `strict` refuses `-` and `+`; `seq_star` accepts XADD's `ms-*`."""
    if len(arg) > STREAM_ID_MAX_LEN:
        return None
    arg = arg.split(b"\0", 1)[0]  # Redis reads the argument as a C string
    if arg == b"-" or arg == b"+":
        if strict:
            return None
        return (MIN_ID if arg == b"-" else MAX_ID), True
    ms_text, dash, seq_text = arg.partition(b"-")
    ms = _string2ull(ms_text)
    if ms is None:
        return None
    if not dash:
        return (ms, missing_seq), True
    if seq_star and seq_text == b"*":
        return (ms, 0), False
    seq = _string2ull(seq_text)
    if seq is None:
        return None
    return (ms, seq), True


def parse_strict_id(arg: bytes) -> StreamID | None:
    parsed = parse_stream_id(arg, 0, True)
    return None if parsed is None else parsed[0]


def parse_interval_id(arg: bytes, missing_seq: int) -> tuple[StreamID, bool] | None:
    """streamParseIntervalIDOrReply: (id, exclusive) for XRANGE's `(id` bounds."""
    if len(arg) > 1 and arg[:1] == b"(":
        parsed = parse_stream_id(arg[1:], missing_seq, True)
        return None if parsed is None else (parsed[0], True)
    parsed = parse_stream_id(arg, missing_seq, False)
    return None if parsed is None else (parsed[0], False)


def parse_strict_ids(args: list[bytes]) -> list[StreamID] | None:
    """XDEL's and XACK's IDs, all checked before any is used; None if one is invalid."""
    ids = []
    for arg in args:
        sid = parse_strict_id(arg)
        if sid is None:
            return None
        ids.append(sid)
    return ids


def incr_id(sid: StreamID) -> StreamID | None:
    ms, seq = sid
    if seq < U64_MAX:
        return ms, seq + 1
    return None if ms == U64_MAX else (ms + 1, 0)


def decr_id(sid: StreamID) -> StreamID | None:
    ms, seq = sid
    if seq > 0:
        return ms, seq - 1
    return None if ms == 0 else (ms - 1, U64_MAX)


def format_id(sid: StreamID) -> bytes:
    return b"%d-%d" % sid
