"""The writer's pass in process: a real `Writer`, real links (socketpairs) carrying real
frames, the real command table. Nothing a worker sends may end the writer; a reply frame
that cannot be encoded drops only the clients whose replies made it too large.

Where a limit is too large to reach in a test (a 4 GiB frame), the test lowers the
module's constant (`ipc.MAX_FRAME_BYTES`): the same code path runs on small data.
"""

from __future__ import annotations

import gc
import select
import selectors
import socket
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kvred import ipc
from kvred.config import Config
from kvred.writer import Link, Writer

IO_TIMEOUT_S = 10.0


class Harness:
    """A writer (not forked, not serving) with one link per worker slot. Frames larger
    than a socket buffer travel in threads, as they would between two processes."""

    def __init__(self, tmp_path: Path, links: int = 1, **config: Any) -> None:
        self.control, control_peer = socket.socketpair()
        self.writer = Writer(Config(dir=str(tmp_path), appendonly=False, **config), control_peer)
        self.writer._selector = selectors.DefaultSelector()
        self.workers: list[socket.socket] = []
        self.links: list[Link] = []
        self.readers: list[ipc.FrameReader] = []
        for slot in range(links):
            self.add_link(slot)

    def add_link(self, slot: int) -> None:
        worker_end, writer_end = socket.socketpair()
        writer_end.setblocking(False)
        worker_end.settimeout(IO_TIMEOUT_S)
        link = Link(writer_end, slot)
        self.writer.links.append(link)
        assert self.writer._selector is not None
        self.writer._selector.register(writer_end, selectors.EVENT_READ, link)
        if slot < len(self.links):
            self.links[slot], self.workers[slot], self.readers[slot] = link, worker_end, ipc.FrameReader()
        else:
            self.links.append(link)
            self.workers.append(worker_end)
            self.readers.append(ipc.FrameReader())

    def send_raw(self, slot: int, data: bytes) -> threading.Thread:
        sender = threading.Thread(target=self.workers[slot].sendall, args=(data,), daemon=True)
        sender.start()
        return sender

    def run(self, slot: int, batch: list[Any]) -> Any:
        """Send a batch on `slot`, run one pass for it, return the reply frame's message."""
        sender = self.send_raw(slot, ipc.encode_frame(batch))
        link = self.links[slot]
        deadline = time.monotonic() + IO_TIMEOUT_S
        while not self.writer._read_link(link):  # a large frame arrives in several reads
            assert time.monotonic() < deadline, "the batch never completed"
            select.select([link.sock], [], [], IO_TIMEOUT_S)
        sender.join(IO_TIMEOUT_S)
        self.writer._commit_pass()
        return self.receive(slot)

    def receive(self, slot: int) -> Any:
        link, reader = self.links[slot], self.readers[slot]
        deadline = time.monotonic() + IO_TIMEOUT_S
        while True:
            self.writer._send(link)  # what did not fit waits in link.out, as in the loop
            messages = reader.feed(self.workers[slot].recv(1 << 20))
            if messages:
                assert len(messages) == 1, messages
                return messages[0]
            assert time.monotonic() < deadline

    def close(self) -> None:
        for sock in [self.control, *self.workers]:
            sock.close()
        for link in self.links:
            link.sock.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path, links=2)
    try:
        yield h
    finally:
        h.close()


def connect(client_id: int) -> list[Any]:
    return [ipc.OP_CONNECT, client_id, False, ["127.0.0.1:1", "127.0.0.1:6380"]]


def run(client_id: int, *commands: list[bytes]) -> list[Any]:
    return [ipc.OP_RUN, client_id, False, list(commands)]


def test_a_reply_frame_over_the_frame_limit_drops_only_the_largest_replies(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    big, small = b"b" * 600_000, b"s" * 300_000
    assert harness.run(0, [connect(1), connect(2), connect(3),
                           run(1, [b"SET", b"big", big], [b"SET", b"small", small])]) == [
        None, None, None, b"+OK\r\n+OK\r\n"]
    monkeypatch.setattr(ipc, "MAX_FRAME_BYTES", 1_000_000)  # the 4 GiB limit, scaled down
    # one pass whose replies together (1.5 MB) cannot be one frame: the largest go until it fits
    replies = harness.run(0, [run(1, [b"GET", b"big"]), run(2, [b"GET", b"big"]), run(3, [b"GET", b"small"])])
    assert type(replies[0]) is int, "the client of the largest reply is dropped"
    assert replies[1:] == [b"$600000\r\n" + big + b"\r\n", b"$300000\r\n" + small + b"\r\n"], "not the others"
    assert harness.run(0, [run(3, [b"STRLEN", b"big"])]) == [b":600000\r\n"], "the writer goes on serving"


def test_a_malformed_batch_drops_its_link_not_the_writer(harness: Harness) -> None:
    assert harness.run(0, [connect(1), run(1, [b"SET", b"k", b"v"])]) == [None, b"+OK\r\n"]
    harness.send_raw(1, ipc.encode_frame([[ipc.OP_RUN, 2]])).join(IO_TIMEOUT_S)  # an entry without its fields
    harness.writer._read_link(harness.links[1])
    assert harness.links[1] not in harness.writer.links
    harness.send_raw(0, b"\x05\x00\x00\x00\xc1\xc1\xc1\xc1\xc1").join(IO_TIMEOUT_S)  # not msgpack
    harness.writer._read_link(harness.links[0])
    assert harness.links[0] not in harness.writer.links
    harness.add_link(0)  # the supervisor's replacement worker: the keyspace is intact
    assert harness.run(0, [connect(3), run(3, [b"GET", b"k"])]) == [None, b"$1\r\nv\r\n"]


def test_a_command_whose_reply_passes_the_output_limit_drops_only_its_client(tmp_path: Path) -> None:
    h = Harness(tmp_path, links=1, client_output_buffer_limit=1_000_000)
    try:
        replies = h.run(0, [
            connect(1), connect(2),
            run(1, [b"SET", b"v", b"x" * 400_000]),
            run(1, [b"MGET", b"v", b"v", b"v"]),  # 1.2 MB: over while MGET builds it
            [ipc.OP_EXEC, 2, False, [[b"GET", b"v"], [b"SET", b"after", b"1"], [b"GET", b"v"], [b"GET", b"v"]]],
        ])
        assert replies[:3] == [None, None, b"+OK\r\n"]
        assert type(replies[3]) is int and type(replies[4]) is int
        # the transaction ran whole though its replies were dropped
        assert h.run(0, [connect(5), run(5, [b"GET", b"after"])]) == [None, b"$1\r\n1\r\n"]
    finally:
        h.close()


def disconnect(client_id: int) -> list[Any]:
    return [ipc.OP_DISCONNECT, client_id, False, None]


def kvred_objects_in_cycles() -> list[str]:
    """What the cycle collector finds unreachable, among kvred's objects and the frames
    of its code (tracebacks): what a writer that froze them would leak."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found = []
        for obj in gc.garbage:
            module = getattr(type(obj), "__module__", "") or ""
            if module.startswith("kvred"):
                found.append(f"{type(obj).__name__} object")
            elif type(obj) is types.FrameType and "/kvred/" in obj.f_code.co_filename:
                found.append(f"frame of {obj.f_code.co_name}")
        return found
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def test_nothing_the_writer_keeps_across_a_freeze_ends_in_a_cycle(harness: Harness) -> None:
    """kvred/collector.py freezes what is alive every second: an object that is later
    part of an unreachable cycle would never be freed. Clients come and go with every
    kind of state (WATCH, SELECT, names, MULTI, errors, TTLs) across freezes."""
    writer = harness.writer
    # Collect until nothing is left: an earlier test's writer can need two passes (its script
    # runner is released by a weak-reference callback of the first), and what is still
    # uncollected here would be frozen, then found below.
    while gc.collect():
        pass
    gc.freeze()
    try:
        for round_ in range(3):
            ids = range(round_ * 100 + 1, round_ * 100 + 51)
            harness.run(0, [connect(i) for i in ids])
            for i in ids:
                key = b"k%d" % (i % 7)
                harness.run(i % 2, [
                    run(i, [b"SET", key, b"v", b"EX", b"100"], [b"SELECT", b"3"], [b"WATCH", key, b"other"],
                        [b"CLIENT", b"SETNAME", b"c%d" % i], [b"INCR", key], [b"GET"], [b"NOSUCH"],
                        [b"SET", b"gone", b"1", b"PX", b"1"], [b"OBJECT", b"ENCODING", b"k1"]),
                    [ipc.OP_EXEC, i, False, [[b"SET", key, b"x"], [b"LPUSH", key, b"y"], [b"EXPIRE", key, b"0"]]],
                ])
            writer.collector.freeze_now()  # the clients and their state are frozen alive...
            harness.run(0, [disconnect(i) for i in ids])  # ... then leave
            writer.databases.active_expire_cycle()
        assert writer.collector.freezes == 3
        gc.unfreeze()
        assert kvred_objects_in_cycles() == []
    finally:
        gc.unfreeze()
