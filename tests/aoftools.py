"""What the AOF tests of every value type share: reading an AOF's commands with a
test-side parser (independent of kvred's), killing a server the hard way, and a
BGREWRITEAOF that the caller waits out."""

from __future__ import annotations

import time

from conftest import ServerProcess
from rawclient import RawClient

__all__ = ["aof_commands", "kill_hard", "rewrite_and_wait"]

REWRITE_TIMEOUT_S = 30.0


def aof_commands(content: bytes) -> list[list[bytes]]:
    """The commands of a plain-RESP AOF, in order."""
    out: list[list[bytes]] = []
    pos = 0
    while pos < len(content):
        assert content[pos : pos + 1] == b"*", f"not a command at offset {pos}: {content[pos : pos + 40]!r}"
        end = content.index(b"\r\n", pos)
        count, pos = int(content[pos + 1 : end]), end + 2
        argv = []
        for _ in range(count):
            end = content.index(b"\r\n", pos)
            length, pos = int(content[pos + 1 : end]), end + 2
            argv.append(content[pos : pos + length])
            pos += length + 2
        out.append(argv)
    return out


def kill_hard(server: ServerProcess) -> None:
    """SIGKILL, as a crash: nothing is flushed or synced on the way out."""
    assert server.proc is not None
    server.proc.kill()
    server.proc.wait(10)
    server.stop()


def _rewrites(info: bytes) -> int | None:
    """aof_rewrites from INFO persistence, once no rewrite is in progress or scheduled
    and the last one succeeded."""
    if (b"aof_rewrite_in_progress:0\r\n" not in info or b"aof_rewrite_scheduled:1\r\n" in info
            or b"aof_last_bgrewrite_status:ok\r\n" not in info):
        return None
    return int(info.split(b"aof_rewrites:", 1)[1].split(b"\r\n", 1)[0])


def rewrite_and_wait(server: ServerProcess) -> None:
    """BGREWRITEAOF, then wait until it has finished."""
    with RawClient(server.port, timeout=5) as c:
        before = _rewrites(c.call("INFO", "persistence")) or 0
        assert c.call("BGREWRITEAOF").startswith(b"+")
        deadline = time.monotonic() + REWRITE_TIMEOUT_S
        while True:
            info = c.call("INFO", "persistence")
            done = _rewrites(info)
            if done is not None and done > before:
                return
            assert time.monotonic() < deadline, info
            time.sleep(0.05)
