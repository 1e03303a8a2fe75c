"""Short pauses of CPython's cycle collector in the writer, whose dataset is large.

A full (generation 2) collection traverses every container the collector tracks,
entry by entry. The writer's dataset lives in a few long-lived containers with
millions of entries (the key orders of kvred/keyorder.py; the lists, sets and
hashes of the value types), none of which can be part of a reference cycle (they
hold bytes, ints and floats), yet every full collection visits them all, a cache
miss per entry. With 1M keys that have a TTL one took 100-145 ms, and while a mass
expiry deleted keys (each deletion makes a little garbage) one ran every 0.5-1 s:
other clients' GETs waited up to 470 ms. redis-server has no such pause.

The policy, CPython's `gc.freeze()` as it is meant to be used: every
FREEZE_INTERVAL_S a full collection, then freeze. The collection sees only what was
made since the previous freeze (the frozen objects are outside every generation), so
its pause is bounded by what one interval allocated; what survives it moves to the
permanent generation and is never traversed again. Freezing also leaves the
collector's bookkeeping untouched in a forked AOF rewrite (fewer copied pages).

The price: a frozen object that later becomes part of an unreachable cycle is never
collected. So the writer must not build long-lived objects that end in cycles:
clients, transactions, WATCH and errors free themselves by reference counting
(tests/test_writer.py churns them across freezes and checks that none of kvred's
objects ends in a frozen cycle).
"""

from __future__ import annotations

import gc
import time

__all__ = ["CycleCollector", "FREEZE_INTERVAL_S"]

FREEZE_INTERVAL_S = 1.0


class CycleCollector:
    """Runs the periodic collect-then-freeze of one process."""

    __slots__ = ("_last", "freezes")

    def __init__(self) -> None:
        self._last = 0.0
        self.freezes = 0

    def freeze_now(self) -> None:
        """Collect what is garbage, then take every live object out of the collector's view."""
        gc.collect()
        gc.freeze()
        self._last = time.monotonic()
        self.freezes += 1

    def maybe_freeze(self) -> bool:
        """Freeze if FREEZE_INTERVAL_S went by since the last one; True if it did."""
        if time.monotonic() - self._last < FREEZE_INTERVAL_S:
            return False
        self.freeze_now()
        return True
