"""The order of a dict's keys, kept so that SCAN, random picks and expiry scans do
bounded work per call (sans-IO).

A Python dict has no cursor that survives changes (its iterators fail when the size
changes) and no random access. `KeyOrder` keeps a list of the keys in insertion order:
a key is appended when it enters the dict, and is *not* removed when it leaves (that
would need its position); a dead entry is skipped when met, and the list is compacted
once dead entries pass the live ones. Compaction is one C-speed pass (`list(live)`:
the dict is in the same order), at most once per as many deletions as there are keys.

SCAN's guarantee, as Redis's: a key present for the whole of an iteration is returned
at least once, whatever happens meanwhile. A cursor is (epoch, position): positions
are stable until a compaction, which starts a new epoch and records, per block of
BLOCK positions, how many entries before it were alive; a cursor of an older epoch is
translated through those maps to a position at or before where its keys went (so a
few keys may come twice, none is missed). A cursor of an epoch too old to translate
restarts at 0, which still misses nothing.

Entries are the key objects; a key deleted and added again has two entries (both
"alive"): SCAN may return it twice and a random pick favours it a little, as Redis's
own rehashing may. Memory: 8 bytes per entry, at most twice the live keys (+ SLACK).
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


LiveKeys = dict[bytes, Any]  # the dict whose keys are kept in order


class KeyOrder:
    __slots__ = ("keys", "epoch", "_maps")

    def __init__(self) -> None:
        self.keys: list[bytes] = []
        self.epoch = 0
        # epoch -> live entries before each BLOCK of that epoch's positions (index i: before i * BLOCK)
        self._maps: dict[int, list[int]] = {}

    def clear(self) -> None:
        """The dict was emptied (FLUSHDB): every old cursor restarts."""
        self.keys = []
        self._new_epoch(None)

    def add(self, key: bytes, live: LiveKeys) -> None:
        """`key` just entered the dict `live`."""
        keys = self.keys
        keys.append(key)
        if len(keys) > 2 * len(live) + SLACK:
            self.compact(live)

    def _keep_dense(self, live: LiveKeys) -> None:
        # deletions do not check (they do not touch the list): reads do, before they walk it
        if len(self.keys) > 2 * len(live) + SLACK:
            self.compact(live)

    def compact(self, live: LiveKeys) -> None:
        old = self.keys
        contains = live.__contains__
        counts = [0]
        alive = 0
        for start in range(0, len(old), BLOCK):
            alive += sum(map(contains, old[start : start + BLOCK]))
            counts.append(alive)
        # An entry counted alive may be a stale copy of a key added again later (it sits
        # at its newer place in the new list): subtract those copies everywhere, so that
        # a translated position never passes a key it has not returned.
        duplicates = alive - len(live)
        if duplicates:
            counts = [max(0, c - duplicates) for c in counts]
        self.keys = list(live)
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
        """A random key of `live`, in O(1) expected time (dead entries are at most half)."""
        if not live:
            return None
        self._keep_dense(live)
        keys = self.keys
        contains = live.__contains__
        while True:
            key = keys[random.randrange(len(keys))]
            if contains(key):
                return key
