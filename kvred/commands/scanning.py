"""HSCAN, SSCAN and ZSCAN's iteration over one aggregate (Redis's scanGenericCommand
applied to a value), and the options of the whole SCAN family (SCAN adds TYPE), sans-IO.

A compact aggregate (listpack or intset encoding in Redis) is returned whole by the
first call with cursor 0, as Redis does, whatever COUNT says, in Redis's order.

A large one is walked in pages. Python's dicts and sets have no cursor that survives
changes, so the first call (cursor 0) takes a snapshot of the members, `list(value)`
(one C-speed copy, about 7 ms per million members; Redis's SCAN 0 costs O(1), a
documented difference), and the cursor is (snapshot id, position in it). SCAN's
guarantee holds: a member present for the whole iteration is in the snapshot and is
returned once; a member removed meanwhile is skipped when its page comes; one added
meanwhile may be missed, which SCAN allows. The snapshot lives on the aggregate (one
per aggregate: a second client starting a scan replaces it, and a cursor of a
replaced snapshot starts again at the beginning of the new one: duplicates, never a
miss) and is dropped when a scan reaches its end.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection
from typing import Any, Protocol

from ..glob import compile_glob
from .base import ERR_NOT_INT, ERR_SYNTAX, int_arg

__all__ = ["Scannable", "ScanOptions", "parse_scan_options", "scan_members"]

_POSITION_BITS = 40
_POSITION_MASK = (1 << _POSITION_BITS) - 1
_ids = itertools.count(1)


class Scannable(Protocol):
    """An aggregate value that keeps the snapshot of its current scan."""

    scan_snapshot: tuple[int, list[Any]] | None


class ScanOptions:
    __slots__ = ("count", "match", "type_filter")

    def __init__(self, count: int, match: Callable[[bytes], bool] | None, type_filter: bytes | None) -> None:
        self.count = count
        self.match = match  # None: every member
        self.type_filter = type_filter  # SCAN's TYPE, lowercased; None: any type


def parse_scan_options(argv: list[bytes], first: int, with_type: bool = False) -> ScanOptions | bytes:
    """MATCH pattern and COUNT n (and TYPE t for the keyspace's SCAN, `with_type`) from
    argv[first:], with Redis's errors."""
    count, match, type_filter = 10, None, None
    i = first
    while i < len(argv):
        opt = argv[i].lower()
        if i + 1 >= len(argv):
            return ERR_SYNTAX
        if opt == b"count":
            value = int_arg(argv[i + 1])
            if value is None:
                return ERR_NOT_INT
            if value < 1:
                return ERR_SYNTAX
            count = value
        elif opt == b"match":
            match = None if argv[i + 1] == b"*" else compile_glob(argv[i + 1]).match
        elif opt == b"type" and with_type:
            type_filter = argv[i + 1].split(b"\0", 1)[0].lower()  # strcasecmp: a C string
        else:
            return ERR_SYNTAX
        i += 2
    return ScanOptions(count, match, type_filter)


def scan_members(value: Scannable, members: Collection[Any], cursor: int, count: int,
                 compact: bool) -> tuple[int, list[Any]]:
    """(next cursor, members of this page): all of `members` (in its order) if `compact`,
    else the next `count` of the snapshot still present in `members`."""
    if compact:
        value.scan_snapshot = None
        return 0, list(members)
    state = value.scan_snapshot
    position = cursor & _POSITION_MASK
    if cursor == 0 or state is None or state[0] != cursor >> _POSITION_BITS:
        state = value.scan_snapshot = (next(_ids) & 0xFFFFFF, list(members))
        position = 0
    snapshot_id, snapshot = state
    stop = position + count
    page = [m for m in snapshot[position:stop] if m in members]
    if stop >= len(snapshot):
        value.scan_snapshot = None
        return 0, page
    return snapshot_id << _POSITION_BITS | stop, page
