"""Memory: giving freed memory back to the OS after bursts (MemoryTrimmer), and the
estimate of what the dataset takes (key_memory, DatasetEstimate), sans-IO.

Giving freed memory back to the OS after a burst of large requests or replies:

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
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import Any

__all__ = [
    "MemoryTrimmer",
    "TRIM_AFTER_BYTES",
    "DatasetEstimate",
    "key_memory",
    "value_memory",
    "alloc_size",
    "MEMORY_USAGE_SAMPLES",
    "DICT_ENTRY_BYTES",
    "bytes_to_human",
    "malloc_report",
]

_getsizeof = sys.getsizeof

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

    def trim_now(self) -> None:
        """MEMORY PURGE: trim whatever is due or not."""
        self.churned = 0
        self._last = time.monotonic()
        if self._trim is not None:
            self._trim(0)

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


# ------------------------------------------------------------------ accounting
#
# Redis's used_memory is what its allocator handed out. CPython cannot say that per
# key cheaply (tracemalloc doubles the cost of every allocation; pymalloc keeps no byte
# count), so kvred ESTIMATES it: `key_memory()` prices one key from sys.getsizeof and
# the allocator's rounding (pymalloc rounds blocks of up to 512 bytes to 16, malloc adds
# a header), sampling the elements of an aggregate as Redis's MEMORY USAGE does; and
# `DatasetEstimate` keeps, per database, a running average of sampled keys' prices,
# so that the dataset is `keys x average`: nothing on the hot path, and the figure
# falls as soon as a key is deleted or evicted (the count falls). The constants
# below were calibrated against the writer's RSS growth (bench/README.md, "Memory
# accounting"): KEY_OVERHEAD_BYTES is what a key costs besides its name and value
# (its dict entry at the dicts' average fill, its slot in the key order).

# A dict entry is 24 bytes plus a 4-byte index slot per 1.5 entries of capacity, at a
# fill between 1/3 and 2/3: 48 bytes per key was measured at 90k keys under churn.
DICT_ENTRY_BYTES = 48
# a slot of the key order (kvred/keyorder.py), plus the deleted keys it keeps alive until
# its compaction (at most as many as live ones): 8 bytes, and half a dead key on average
# under churn (eviction), nothing without deletions
KEY_ORDER_BYTES = 24
KEY_OVERHEAD_BYTES = DICT_ENTRY_BYTES + KEY_ORDER_BYTES
EXPIRE_BYTES = DICT_ENTRY_BYTES + KEY_ORDER_BYTES + 32  # entry, order slot, its int
LRU_BYTES = DICT_ENTRY_BYTES  # Keyspace.access under LRU: an entry, the clock int is shared
LFU_BYTES = DICT_ENTRY_BYTES + 32  # under LFU: an entry and an int per key
SORTED_ENTRY_BYTES = 8 + 8  # a slot in a sortedcontainers list and its index share
MEMORY_USAGE_SAMPLES = 5  # Redis's OBJ_COMPUTE_SIZE_DEF_SAMPLES
ESTIMATE_SAMPLES = 32  # keys priced per database per cron tick
ESTIMATE_WEIGHT = 0.25  # how much one tick's sample moves the running average


def alloc_size(size: int) -> int:
    """What the allocator really takes for a request of `size` bytes: pymalloc's
    16-byte size classes up to 512 bytes, glibc malloc's 16-byte chunks and header above."""
    if size <= 512:
        return (size + 15) & ~15
    return (size + 8 + 15) & ~15


def object_size(obj: Any) -> int:
    """One flat object (bytes, int, float, tuple) as allocated."""
    return alloc_size(_getsizeof(obj))


def _sampled(count: int, items: Iterable[Any], price: Callable[[Any], int], samples: int) -> int:
    """`count` elements priced from the first `samples` of them (all with samples 0),
    as Redis's objectComputeSize extrapolates."""
    if count == 0:
        return 0
    limit = count if samples <= 0 else min(samples, count)
    total = seen = 0
    for item in islice(items, limit):
        total += price(item)
        seen += 1
    return total * count // seen if seen else 0


def _pair_size(pair: tuple[Any, Any]) -> int:
    return object_size(pair[0]) + object_size(pair[1])


def _entry_size(entry: tuple[Any, Any]) -> int:
    """A stream entry: its ID tuple and the flat tuple of fields and values."""
    sid, fields = entry
    return object_size(sid) + object_size(fields) + sum(object_size(f) for f in fields) + SORTED_ENTRY_BYTES


def value_memory(value: Any, samples: int = MEMORY_USAGE_SAMPLES) -> int:
    """The bytes a value takes, elements sampled (samples <= 0: all of them)."""
    kind = type(value)
    if kind is bytes:
        return object_size(value)
    if kind is bytearray:
        return alloc_size(56) + alloc_size(len(value) + 1)
    if isinstance(value, dict):  # a hash
        return alloc_size(_getsizeof(value)) + _sampled(len(value), value.items(), _pair_size, samples)
    if isinstance(value, (set, deque)):
        return alloc_size(_getsizeof(value)) + _sampled(len(value), value, object_size, samples)
    scores = getattr(value, "scores", None)
    if scores is not None:  # a sorted set: the member -> score dict and the ordered (score, member) pairs
        per_member = 64 + SORTED_ENTRY_BYTES  # the (score, member) tuple and its slot
        return (alloc_size(_getsizeof(scores)) + 128
                + _sampled(len(scores), scores.items(), lambda p: _pair_size(p) + per_member, samples))
    entries = getattr(value, "entries", None)
    if entries is not None:  # a stream (consumer groups are not priced)
        return 256 + DICT_ENTRY_BYTES * len(entries) + _sampled(len(entries), entries.items(), _entry_size, samples)
    return object_size(value)


def key_memory(key: bytes, value: Any, has_expire: bool, samples: int = MEMORY_USAGE_SAMPLES,
               tracked: int = 0) -> int:
    """A key's whole price: name, value, its entries in the keyspace's tables (`tracked`:
    the keyspace's TRACK_* mode, 1 LRU, 2 LFU)."""
    size = object_size(key) + KEY_OVERHEAD_BYTES + value_memory(value, samples)
    if has_expire:
        size += EXPIRE_BYTES
    if tracked:
        size += LRU_BYTES if tracked == 1 else LFU_BYTES
    return size


class DatasetEstimate:
    """used_memory_dataset: per database, keys x a running average of sampled keys'
    prices. `refresh()` (the cron) samples; `dataset_bytes()` is cheap (one multiply per
    database), so the eviction check may call it before every write."""

    __slots__ = ("averages", "peak")

    def __init__(self, databases: int) -> None:
        self.averages = [0.0] * databases  # bytes per key, per database
        self.peak = 0

    def refresh(self, dbs: Sequence[Any], samples: int = ESTIMATE_SAMPLES) -> None:
        """Price `samples` random keys of each database (all of a smaller one) and
        move its average toward them."""
        for db in dbs:
            self.refresh_db(db, samples)

    def refresh_db(self, db: Any, samples: int = ESTIMATE_SAMPLES) -> None:
        data, expires = db.data, db.expires
        count = len(data)
        if count == 0:
            self.averages[db.id] = 0.0
            return
        keys: Iterable[bytes]
        if count <= samples:
            keys = list(data)
        else:
            pick = db.order.pick
            keys = [key for key in (pick(data) for _ in range(samples)) if key is not None]
        if not keys:
            return
        track = db.track
        total = sum(key_memory(key, data[key], key in expires, tracked=track) for key in keys if key in data)
        mean = total / len(keys)
        old = self.averages[db.id]
        # a small database is priced whole: take it as it is; a large one moves gradually
        self.averages[db.id] = mean if count <= samples or not old else old + (mean - old) * ESTIMATE_WEIGHT

    def dataset_bytes(self, dbs: Sequence[Any]) -> int:
        averages = self.averages
        total = 0.0
        for db in dbs:
            if db.data:
                if not averages[db.id]:
                    self.refresh_db(db)  # keys arrived since the last tick: price them now
                total += len(db.data) * averages[db.id]
        size = int(total)
        if size > self.peak:
            self.peak = size
        return size


_HUMAN_UNITS = ("K", "M", "G", "T", "P")


def bytes_to_human(n: int) -> str:
    """Redis's bytesToHuman: 512B, 1.50K, 2.00M ..."""
    if n < 1024:
        return f"{n}B"
    value = float(n)
    for unit in _HUMAN_UNITS:
        value /= 1024
        if value < 1024 or unit == _HUMAN_UNITS[-1]:
            return f"{value:.2f}{unit}"
    return f"{n}B"  # unreachable: the loop returns at P


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]


def malloc_report() -> bytes:
    """MEMORY MALLOC-STATS: CPython's block count and glibc's mallinfo2 (Redis prints
    jemalloc's report; kvred has pymalloc for objects up to 512 bytes over glibc)."""
    lines = [f"CPython {sys.version.split()[0]} pymalloc: {sys.getallocatedblocks()} allocated blocks"]
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallinfo2 = libc.mallinfo2
        mallinfo2.restype = _MallInfo2
        info = mallinfo2()
        lines.append("glibc mallinfo2:")
        lines += [f"  {field[0]}: {getattr(info, field[0])}" for field in _MallInfo2._fields_]
    except (OSError, AttributeError):
        lines.append("glibc mallinfo2: not available (not glibc 2.33 or later)")
    return ("\n".join(lines) + "\n").encode()
