"""The worker <-> writer frames (kvred/ipc.py): whatever way the stream is cut,
every message comes out once, whole and in order."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_resp import cut  # the same way of cutting a stream as the parser tests

from kvred import ipc

ENTRY = st.lists(st.one_of(st.integers(0, 2**40), st.booleans(), st.none(),
                           st.binary(max_size=300), st.lists(st.binary(max_size=20), max_size=4)),
                 max_size=4)
MESSAGES = st.lists(st.lists(ENTRY, max_size=5), min_size=1, max_size=20)


@given(MESSAGES, st.lists(st.integers(min_value=0), max_size=30), st.booleans())
@settings(max_examples=300, deadline=None)
def test_any_cut_gives_every_message_once_in_order(messages: list[Any], cuts: list[int],
                                                    as_view: bool) -> None:
    wire = b"".join(ipc.encode_frame(m) for m in messages)
    reader = ipc.FrameReader()
    got: list[Any] = []
    for chunk in cut(wire, cuts):
        # the writer feeds slices of its receive buffer, the workers feed bytes
        got += reader.feed(memoryview(chunk) if as_view else chunk)
    assert got == messages
    assert reader.buffered == 0


def test_one_whole_frame_per_read() -> None:
    # the common case, decoded without going through the reader's buffer
    reader = ipc.FrameReader()
    frame = ipc.encode_frame([[ipc.OP_RUN, 65, False, [[b"GET", b"k"]]]])
    for _ in range(3):
        assert reader.feed(frame) == [[[ipc.OP_RUN, 65, False, [[b"GET", b"k"]]]]]
        assert reader.buffered == 0


def test_decoded_messages_do_not_share_the_fed_buffer() -> None:
    # the writer reuses its receive buffer: what was decoded must not change with it
    buffer = bytearray(ipc.encode_frame([b"value"]))
    message = ipc.FrameReader().feed(memoryview(buffer))[0]
    buffer[-5:] = b"XXXXX"
    assert message == [b"value"]


def test_partial_header_then_rest() -> None:
    frame = ipc.encode_frame([b"abc"])
    reader = ipc.FrameReader()
    assert reader.feed(frame[:2]) == []
    assert reader.buffered == 2
    assert reader.feed(frame[2:] + frame) == [[b"abc"], [b"abc"]]
    assert reader.buffered == 0
