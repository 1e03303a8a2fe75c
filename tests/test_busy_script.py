"""A script that runs past busy-reply-threshold, across processes (issue 14): while the
writer is inside the script the workers answer other clients BUSY (Redis's text), SCRIPT
KILL and FUNCTION KILL reach the writer and are answered at once, a killed read-only
script ends with Redis's error and the server goes on serving, a script that already
wrote is UNKILLABLE, and SHUTDOWN NOSAVE stops the server without logging the part of
the script that ran (the AOF replays to the state before it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from conftest import ServerProcess, against_redis, start_kvred
from rawclient import RawClient, encode_command

BUSY = b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
LOOP = "local i = 0 while true do i = i + 1 end"


def cmd(conn: RawClient, *args: str) -> bytes:
    conn.send(encode_command(*args))
    return conn.read_reply()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")


def busy_seen(port: int) -> bool:
    """A fresh client (on whichever worker) gets BUSY."""
    with RawClient(port, timeout=5) as probe:
        return cmd(probe, "PING") == BUSY


def test_busy_then_script_kill(kvred_factory: Callable[..., ServerProcess]) -> None:
    server = kvred_factory(busy_reply_threshold=200)
    with RawClient(server.port, timeout=10) as runner, RawClient(server.port, timeout=5) as other:
        assert cmd(other, "SET", "before", "1") == b"+OK\r\n"
        runner.send(encode_command("EVAL", LOOP, "0"))
        wait_for(lambda: busy_seen(server.port))
        assert cmd(other, "GET", "before") == BUSY
        # clients that connect during the script, on both workers, are answered too
        for _ in range(6):
            with RawClient(server.port, timeout=5) as late:
                # FUNCTION KILL while a script (not a function) runs: Redis's BUSY naming SCRIPT KILL
                assert cmd(late, "FUNCTION", "KILL") == BUSY
        assert cmd(other, "SCRIPT", "KILL") == b"+OK\r\n"
        reply = runner.read_reply()
        assert reply.startswith(b"-ERR Script killed by user with SCRIPT KILL. script: ")
        assert cmd(other, "GET", "before") == b"$1\r\n1\r\n"
        assert cmd(other, "SCRIPT", "KILL") == b"-NOTBUSY No scripts in execution right now.\r\n"
        assert cmd(runner, "PING") == b"+PONG\r\n"


def test_unkillable_then_shutdown_nosave(tmp_path: Path) -> None:
    if against_redis():
        return  # the AOF half needs kvred's files
    server = start_kvred(tmp_path, busy_reply_threshold=200, fsync="always")
    try:
        with RawClient(server.port, timeout=10) as runner, RawClient(server.port, timeout=5) as other:
            assert cmd(other, "SET", "acknowledged", "yes") == b"+OK\r\n"
            runner.send(encode_command("EVAL", "redis.call('SET', 'partial', '1') " + LOOP, "0"))
            wait_for(lambda: busy_seen(server.port))
            assert cmd(other, "SCRIPT", "KILL").startswith(b"-UNKILLABLE Sorry the script already executed")
            other.send(encode_command("SHUTDOWN", "NOSAVE"))
            assert server.proc is not None
            server.proc.wait(timeout=15)
    finally:
        server.stop()
    restarted = start_kvred(tmp_path)
    try:
        with RawClient(restarted.port, timeout=5) as check:
            assert cmd(check, "GET", "acknowledged") == b"$3\r\nyes\r\n"
            assert cmd(check, "EXISTS", "partial") == b":0\r\n"  # a part-run script is never logged
    finally:
        restarted.stop()
