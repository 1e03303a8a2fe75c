"""Giving freed memory back to the OS after a burst of large requests or replies.

Requests and replies of hundreds of KB are allocated by glibc's malloc. After the
first one is freed, glibc raises its mmap threshold to that size, so later ones come
from the heap, and a heap that is free in the middle is not returned to the OS. A
burst of `SET k <1 MB>` left a worker and the writer about 20 MB larger each, for
good. `malloc_trim(0)` returns what is free (8 ms with 50 MB to release next to 1M
keys, 16 us when there is nothing). `MemoryTrimmer` calls it only after at least
TRIM_AFTER_BYTES went through the process, and at most once per TRIM_INTERVAL_S.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable

__all__ = ["MemoryTrimmer", "TRIM_AFTER_BYTES"]

TRIM_AFTER_BYTES = 32 * 1024 * 1024
TRIM_INTERVAL_S = 1.0


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
        return trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return None


class MemoryTrimmer:
    """Counts bytes that passed through; trims when enough did and enough time went by."""

    __slots__ = ("churned", "_last", "_trim")

    def __init__(self) -> None:
        self.churned = 0  # bytes allocated and freed since the last trim (callers add to it)
        self._last = 0.0
        self._trim = _load_malloc_trim()

    def maybe_trim(self) -> bool:
        """Trim if it is due; True if it did."""
        if self.churned < TRIM_AFTER_BYTES or self._trim is None:
            return False
        now = time.monotonic()
        if now - self._last < TRIM_INTERVAL_S:
            return False
        self._last = now
        self.churned = 0
        self._trim(0)
        return True
