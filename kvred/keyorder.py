"""The order of a dict's keys, kept so that SCAN, random picks and expiry scans do
bounded work per call (sans-IO).

A Python dict has no cursor that survives changes (its iterators fail when the size
changes) and no random access. `KeyOrder` keeps a list of the keys in insertion order:
a key is appended when it enters the dict, and is *not* removed when it leaves (that
would need its position); a dead entry is skipped when met, and the list is compacted
once dead entries pass the live ones, at most once per as many deletions as there are
keys.

Compaction is incremental, as Redis's rehashing is: finding which entries are alive
costs a dict lookup per entry, a few cache misses each (300 ms for a list of 1M
entries, all at once a 300 ms stall for every client after a mass expiry or DEL).
So a compaction walks the list COMPACT_STEP entries per call of `add`, `scan` or
`pick` (and `step` from the writer's cron, within a time budget), counting the live
entries per block; when the walk reaches the end it swaps in `list(live)` (one
C-speed pass in the dict's order, which is the list's: 7 ms per million keys).

SCAN's guarantee, as Redis's: a key present for the whole of an iteration is returned
at least once, whatever happens meanwhile. A cursor is (epoch, position): positions
are stable until a compaction ends, which starts a new epoch and records, per block of
BLOCK positions, how many entries before it were alive; a cursor of an older epoch is
translated through those maps to a position at or before where its keys went (so a
few keys may come twice, none is missed). A cursor of an epoch too old to translate
restarts at 0, which still misses nothing. The counts of a walk may be too high (an
entry counted alive was deleted later, or is an older copy of a key added again): the
walk subtracts that excess, known at its end, from every count, so a translated
position is never past a key not yet returned.

Entries are the key objects; a key deleted and added again has two entries (both
"alive") until the next compaction: SCAN may return it twice and a random pick favours
it a little, as Redis's own rehashing may. Memory: 8 bytes per entry, about twice the
live keys (+ SLACK) at most, until deletions outpace a walk.
"""

from __future__ import annotations

import random
from typing import Any

__all__ = ["KeyOrder", "CURSOR_POSITION_BITS"]

CURSOR_POSITION_BITS = 40  # a cursor is epoch << 40 | position
_POSITION_MASK = (1 << CURSOR_POSITION_BITS) - 1
_EPOCH_MASK = (1 << (64 - CURSOR_POSITION_BITS)) - 1
BLOCK = 1024  # positions per entry of an epoch's translation map
EPOCHS_KEPT = 16  # translation maps kept; an older cursor restarts at 0
SLACK = 64  # dead entries always allowed, so that tiny dicts do not compact on every delete
COMPACT_STEP = 32  # entries a compaction walks per add/scan/pick (~10 us): it outpaces the adds
PICK_TRIES = 64  # random probes before a pick takes the dict's first key (most entries dead)


LiveKeys = dict[bytes, Any]  # the dict whose keys are kept in order


class KeyOrder:
    __slots__ = ("keys", "epoch", "_maps", "_walk")

    def __init__(self) -> None:
        self.keys: list[bytes] = []
        self.epoch = 0
        # epoch -> live entries before each BLOCK of that epoch's positions (index i: before i * BLOCK)
        self._maps: dict[int, list[int]] = {}
        self._walk: _Walk | None = None  # the compaction under way

    def clear(self) -> None:
        """The dict was emptied (FLUSHDB): every old cursor restarts."""
        self.keys = []
        self._walk = None
        self._new_epoch(None)

    def add(self, key: bytes, live: LiveKeys) -> None:
        """`key` just entered the dict `live`."""
        keys = self.keys
        keys.append(key)
        if self._walk is not None or len(keys) > 2 * len(live) + SLACK:
            self._compact_step(live, COMPACT_STEP)

    def _keep_dense(self, live: LiveKeys) -> None:
        # deletions do not check (they do not touch the list): reads do, before they walk it
        if self._walk is not None or len(self.keys) > 2 * len(live) + SLACK:
            self._compact_step(live, COMPACT_STEP)

    @property
    def compacting(self) -> bool:
        return self._walk is not None

    def step(self, live: LiveKeys, entries: int) -> bool:
        """Walk an ongoing compaction `entries` further; True while one is under way."""
        if self._walk is None:
            return False
        self._compact_step(live, entries)
        return self._walk is not None

    def compact(self, live: LiveKeys) -> None:
        """Compact now, whole (an ongoing walk is finished)."""
        self._compact_step(live, len(self.keys) + 1)

    def _compact_step(self, live: LiveKeys, entries: int) -> None:
        walk = self._walk
        if walk is None:
            walk = self._walk = _Walk()
        keys = self.keys
        contains = live.__contains__
        position, alive, counts = walk.position, walk.alive, walk.counts
        stop = min(len(keys), position + entries)
        while position < stop:
            end = min(position + BLOCK - position % BLOCK, len(keys))
            alive += sum(map(contains, keys[position:end]))
            position = end
            if position % BLOCK == 0:
                counts.append(alive)
        if position < len(keys):
            walk.position, walk.alive = position, alive
            return
        if position % BLOCK:
            counts.append(alive)  # the last, partial block
        # Every live key's latest entry was counted alive (it was appended after the key's
        # last insertion, and met by the walk after that): the excess is everything else.
        excess = alive - len(live)
        if excess:
            counts = [max(0, c - excess) for c in counts]
        self.keys = list(live)
        self._walk = None
        self._new_epoch(counts)

    def _new_epoch(self, counts: list[int] | None) -> None:
        if counts is not None:
            self._maps[self.epoch] = counts
        else:
            self._maps.clear()  # nothing to translate into: every old cursor restarts
        self.epoch = (self.epoch + 1) & _EPOCH_MASK
        while len(self._maps) > EPOCHS_KEPT:
            del self._maps[next(iter(self._maps))]

    def position(self, cursor: int) -> int:
        """Where SCAN `cursor` resumes in the current list."""
        epoch, position = cursor >> CURSOR_POSITION_BITS, cursor & _POSITION_MASK
        while epoch != self.epoch:
            counts = self._maps.get(epoch)
            if counts is None:
                return 0  # unknown or too old: start over (duplicates, never a miss)
            block = position // BLOCK
            position = counts[block] if block < len(counts) else counts[-1]
            epoch = (epoch + 1) & _EPOCH_MASK
        return position

    def scan(self, cursor: int, count: int, live: LiveKeys) -> tuple[int, list[bytes]]:
        """Up to `count` entries from `cursor`: (next cursor, the live keys among them).
        The next cursor is 0 when the end of the list was reached."""
        self._keep_dense(live)
        keys = self.keys
        start = self.position(cursor)
        stop = start + count
        contains = live.__contains__
        found = [key for key in keys[start:stop] if contains(key)]
        if stop >= len(keys):
            return 0, found
        return self.epoch << CURSOR_POSITION_BITS | stop, found

    def pick(self, live: LiveKeys) -> bytes | None:
        """A random key of `live`, in O(1) expected time (dead entries are at most half
        once a compaction ends; while one walks, deletions may have left more)."""
        if not live:
            return None
        self._keep_dense(live)
        keys = self.keys
        contains = live.__contains__
        randrange = random.randrange
        for _ in range(PICK_TRIES):
            key = keys[randrange(len(keys))]
            if contains(key):
                return key
        return next(iter(live))  # not random, but bounded: the walk will soon end this


class _Walk:
    """A compaction under way: the next entry to look at, the live entries met so far,
    and the live entries before each BLOCK boundary passed."""

    __slots__ = ("position", "alive", "counts")

    def __init__(self) -> None:
        self.position = 0
        self.alive = 0
        self.counts = [0]
