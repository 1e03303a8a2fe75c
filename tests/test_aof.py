"""The AOF and its rewrite in process, on real files: a real write failure
(RLIMIT_FSIZE on this process), a real fork for the rewrite child.

Issue: with writes pending after a failed AOF write, a rewrite's snapshot held them
and its tail appended them again: `APPEND k x` before the error read `ax` live and
`axx` after a restart. The snapshot and the tail must never overlap.
"""

from __future__ import annotations

import os
import resource
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvred.aof import AofWriteError, AppendOnlyFile
from kvred.keyspace import Databases
from kvred.resp import RequestParser
from kvred.rewrite import AofRewriter

CHILD_TIMEOUT_S = 10.0


def commands_in(path: Path) -> list[list[bytes]]:
    parser = RequestParser(strict=True)
    commands = parser.feed(path.read_bytes())
    assert parser.error is None and not parser.in_command
    return commands


@pytest.fixture
def file_size_limit() -> Iterator[None]:
    """Lets a test lower this process's RLIMIT_FSIZE; SIGXFSZ becomes an EFBIG error."""
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, previous)


def keyspace_of(**keys: bytes) -> Databases:
    databases = Databases(1)
    for key, value in keys.items():
        databases.dbs[0].set_key(key.encode(), value)
    return databases


def finish(rewriter: AofRewriter) -> None:
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while rewriter.in_progress:
        assert time.monotonic() < deadline, "the rewrite child did not finish"
        rewriter.poll()
        time.sleep(0.01)


def test_rewrite_started_with_writes_pending_after_an_error_applies_them_once(
        tmp_path: Path, file_size_limit: None) -> None:
    path = tmp_path / "kvred.aof"
    aof = AppendOnlyFile(str(path), "always")
    aof.open()
    try:
        aof.aof_buf.append([b"SET", b"k", b"a"])
        aof.flush()
        size = path.stat().st_size
        limits = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 5, limits[1]))
        aof.aof_buf.append([b"APPEND", b"k", b"x"])
        with pytest.raises(AofWriteError):
            aof.flush()
        assert path.stat().st_size == size and aof.pending_bytes > 0
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)  # the disk has room again; nothing retried yet
        rewriter = AofRewriter(aof)
        assert rewriter.start(keyspace_of(k=b"ax"))  # the keyspace holds the pending APPEND
        aof.aof_buf.append([b"APPEND", b"k", b"y"])  # logged after the fork: the tail's job
        assert aof.sync_all()
        assert commands_in(path)[-2:] == [[b"APPEND", b"k", b"x"], [b"APPEND", b"k", b"y"]]
        finish(rewriter)
        assert rewriter.last_status == "ok", rewriter.last_status
        assert commands_in(path) == [[b"SELECT", b"0"], [b"MSET", b"k", b"ax"], [b"APPEND", b"k", b"y"]]
    finally:
        aof.close()


def test_rewrite_started_in_the_middle_of_a_pass_keeps_the_pass_out_of_its_tail(tmp_path: Path) -> None:
    """BGREWRITEAOF forks from the command: what the pass logged before it is in the
    snapshot, what it logs after is in the tail, nothing in both."""
    path = tmp_path / "kvred.aof"
    aof = AppendOnlyFile(str(path), "everysec")
    aof.open()
    try:
        aof.aof_buf.append([b"SET", b"a", b"1"])
        rewriter = AofRewriter(aof)
        assert rewriter.start(keyspace_of(a=b"1"))
        aof.aof_buf.append([b"SET", b"b", b"2"])
        aof.flush()
        finish(rewriter)
        assert rewriter.last_status == "ok"
        assert commands_in(path) == [[b"SELECT", b"0"], [b"MSET", b"a", b"1"], [b"SET", b"b", b"2"]]
        assert os.listdir(tmp_path) == ["kvred.aof"]
    finally:
        aof.close()
