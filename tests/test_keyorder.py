"""KeyOrder (kvred/keyorder.py), pure: SCAN's guarantee under any interleaving of
additions, deletions, re-additions and compactions; bounded work per call; random picks.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from kvred.keyorder import SLACK, KeyOrder

KEYS = [b"k%d" % i for i in range(40)]


def add(order: KeyOrder, live: dict[bytes, int], key: bytes) -> None:
    if key not in live:
        live[key] = 1
        order.add(key, live)


def full_scan(order: KeyOrder, live: dict[bytes, int], count: int) -> list[bytes]:
    cursor, seen = 0, []
    while True:
        cursor, found = order.scan(cursor, count, live)
        seen += found
        if cursor == 0:
            return seen


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "del", "scan", "compact"]), st.sampled_from(KEYS)),
                max_size=300),
       st.integers(min_value=1, max_value=7), st.lists(st.sampled_from(KEYS), max_size=40))
def test_a_key_present_for_the_whole_iteration_is_returned(ops: list[tuple[str, bytes]], count: int,
                                                           initial: list[bytes]) -> None:
    order, live = KeyOrder(), {}
    for key in initial:
        add(order, live, key)
    present_throughout = set(live)
    cursor, returned, steps = 0, [], 0
    finished = False
    for op, key in ops:
        if op == "add":
            add(order, live, key)
        elif op == "del":
            live.pop(key, None)
            present_throughout.discard(key)
        elif op == "compact":
            order.compact(live)
        elif not finished:
            cursor, found = order.scan(cursor, count, live)
            steps += 1
            assert all(k in live for k in found)
            returned += found
            finished = cursor == 0
    while not finished:
        cursor, found = order.scan(cursor, count, live)
        returned += found
        finished = cursor == 0
    missing = present_throughout - set(returned)
    assert not missing, missing


def test_a_quiet_dict_is_scanned_exactly_once() -> None:
    order, live = KeyOrder(), {}
    for key in KEYS:
        add(order, live, key)
    for count in (1, 3, 10, 100):
        assert full_scan(order, live, count) == KEYS


def test_work_per_call_is_bounded_by_count() -> None:
    order, live = KeyOrder(), {}
    for i in range(10_000):
        add(order, live, b"%d" % i)
    cursor, found = order.scan(0, 10, live)
    assert len(found) == 10 and cursor != 0
    assert order.scan(cursor, 10, live)[1] == [b"%d" % i for i in range(10, 20)]


def test_dead_entries_stay_at_most_half_and_compaction_keeps_cursors() -> None:
    order, live = KeyOrder(), {}
    for i in range(5_000):
        add(order, live, b"%d" % i)
    cursor, first = order.scan(0, 2_500, live)
    for i in range(0, 2_400):  # delete most of what was returned, then add: compaction
        del live[b"%d" % i]
    for i in range(5_000, 9_000):
        add(order, live, b"%d" % i)
    assert len(order.keys) <= 2 * len(live) + SLACK
    rest = full_scan_from(order, live, cursor)
    assert {b"%d" % i for i in range(2_500, 9_000)} <= set(rest)
    assert len(rest) < 2 * (9_000 - 2_500)  # translated near where it was, not from 0


def full_scan_from(order: KeyOrder, live: dict[bytes, int], cursor: int) -> list[bytes]:
    seen = []
    while True:
        cursor, found = order.scan(cursor, 1000, live)
        seen += found
        if cursor == 0:
            return seen


def test_random_picks_are_live_and_spread() -> None:
    order, live = KeyOrder(), {}
    for key in KEYS:
        add(order, live, key)
    for key in KEYS[:30]:
        del live[key]
    picks = Counter(order.pick(live) for _ in range(2_000))
    assert set(picks) == set(KEYS[30:])
    assert min(picks.values()) > 100
    assert KeyOrder().pick({}) is None


def test_flush_restarts_cursors() -> None:
    order, live = KeyOrder(), {}
    for key in KEYS:
        add(order, live, key)
    cursor, _ = order.scan(0, 5, live)
    live.clear()
    order.clear()
    add(order, live, b"new")
    assert order.scan(cursor, 5, live) == (0, [b"new"])
