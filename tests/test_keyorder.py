"""KeyOrder (kvred/keyorder.py), pure: SCAN's guarantee under any interleaving of
additions, deletions, re-additions and (incremental) compactions; bounded work per
call; random picks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import given, settings
from hypothesis import strategies as st

from kvred import keyorder
from kvred.keyorder import COMPACT_STEP, SLACK, KeyOrder

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


@contextmanager
def small_blocks() -> Iterator[None]:
    """Blocks of 4 entries, compactions that start at once and walk 3 entries per call:
    40 keys then exercise what a million do (cursor translation across blocks, walks
    spread over many calls, several epochs)."""
    saved = keyorder.BLOCK, keyorder.SLACK, keyorder.COMPACT_STEP
    keyorder.BLOCK, keyorder.SLACK, keyorder.COMPACT_STEP = 4, 0, 3
    try:
        yield
    finally:
        keyorder.BLOCK, keyorder.SLACK, keyorder.COMPACT_STEP = saved


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "del", "scan", "compact", "step"]), st.sampled_from(KEYS)),
                max_size=300),
       st.integers(min_value=1, max_value=7), st.lists(st.sampled_from(KEYS), max_size=40),
       st.booleans())
def test_a_key_present_for_the_whole_iteration_is_returned(ops: list[tuple[str, bytes]], count: int,
                                                           initial: list[bytes], small: bool) -> None:
    with small_blocks() if small else contextmanager(lambda: iter([None]))():
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
            elif op == "step":
                order.step(live, 1 + KEYS.index(key) % 5)
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


class CountingDict(dict[bytes, int]):
    """A dict that counts membership tests: the work a KeyOrder call does."""

    lookups = 0

    def __contains__(self, key: object) -> bool:
        CountingDict.lookups += 1
        return super().__contains__(key)


def test_compaction_after_a_mass_deletion_is_spread_over_calls() -> None:
    live = CountingDict()
    order = KeyOrder()
    for i in range(100_000):
        add(order, live, b"%d" % i)
    for i in range(99_000):  # a mass expiry or DEL: the list is 99% dead entries
        del live[b"%d" % i]
    worst, calls = 0, 0
    while len(order.keys) > len(live) + 1_000:
        CountingDict.lookups = 0
        add(order, live, b"new%d" % calls)
        calls += 1
        worst = max(worst, CountingDict.lookups)
        assert calls < 10_000, "the walk never ends"
    # each add walked at most a step (and the block it ends in), never the whole list
    assert worst <= COMPACT_STEP + keyorder.BLOCK
    assert order.keys == list(live), "the compaction ended with the live keys, in order"
    assert len(order.keys) < 2 * len(live) + SLACK


def test_random_picks_stay_live_and_bounded_while_most_entries_are_dead() -> None:
    live = CountingDict()
    order = KeyOrder()
    for i in range(50_000):
        add(order, live, b"%d" % i)
    for i in range(49_990):
        del live[b"%d" % i]
    for _ in range(200):
        CountingDict.lookups = 0
        assert order.pick(live) in live
        assert CountingDict.lookups <= keyorder.PICK_TRIES + COMPACT_STEP + keyorder.BLOCK + 1


def test_a_cursor_taken_before_a_walk_survives_it() -> None:
    order, live = KeyOrder(), {}
    for i in range(20_000):
        add(order, live, b"%d" % i)
    cursor, first = order.scan(0, 5_000, live)
    for i in [*range(4_000), *range(10_000, 20_000)]:  # a walk starts on the next add
        del live[b"%d" % i]
    for i in range(20_000, 20_010):
        add(order, live, b"%d" % i)
    assert order.compacting
    while order.step(live, 500):
        add(order, live, b"again%d" % len(live))
    rest = full_scan_from(order, live, cursor)
    assert {b"%d" % i for i in range(5_000, 10_000)} <= set(rest), "nothing present throughout is missed"
    assert len(rest) < len(live), "the cursor was translated, not restarted"


def test_keys_deleted_behind_a_walk_do_not_push_a_cursor_past_unreturned_keys() -> None:
    with small_blocks():
        order, live = KeyOrder(), {}
        for key in [b"d%d" % i for i in range(30)] + [b"k%d" % i for i in range(20)]:
            add(order, live, key)
        cursor, _ = order.scan(0, 42, live)  # d0..d29 and k0..k11 returned
        for i in range(30):
            del live[b"d%d" % i]
        add(order, live, b"x")  # 51 entries, 21 live: a walk starts
        order.step(live, 40)  # ... and counts k0..k11 alive
        assert order.compacting
        for i in range(12):
            del live[b"k%d" % i]  # deleted after they were counted
        while order.step(live, 100):
            pass
        rest = full_scan_from(order, live, cursor)
        assert {b"k%d" % i for i in range(12, 20)} <= set(rest)
