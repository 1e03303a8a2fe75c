"""What `--loglevel` shows an operator, checked in the log of a real kvred.

Redis's levels, seen in redis-server 7.0.15's own log: "Accepted 127.0.0.1:PORT" and
"Client closed connection ..." are verbose; the AOF rewrite steps ("Background append only
file rewriting started by pid", "Background AOF rewrite terminated with success", ...) are
notice; "Configuration loaded" is warning, so it shows at every level. kvred adds, at
verbose, the start and the end of its writer and workers, and at debug the connections
the server itself closed (QUIT). A replaced worker is a warning that says why it went:
its exit code or the signal that killed it.

Each test drives one kvred started from a config file: a client that connects, runs a
command and hangs up, a client that QUITs, a BGREWRITEAOF, a worker killed with SIGKILL,
then SIGTERM; and reads the lines every process wrote to the shared log.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
from conftest import ServerProcess, _kvred_env, against_redis, free_port, live_children
from rawclient import RawClient

pytestmark = pytest.mark.skipif(against_redis(), reason="kvred's own log lines")

LOG_WAIT_S = 15.0
POLL_S = 0.02


def wait_for_log(server: ServerProcess, pattern: str, timeout: float = LOG_WAIT_S) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while True:
        match = re.search(pattern, server.log_path.read_text(errors="replace"), re.MULTILINE)
        if match is not None:
            return match
        if time.monotonic() > deadline:
            pytest.fail(f"no log line matches {pattern!r} within {timeout} s\n--- log ---\n{server.log_tail()}")
        time.sleep(POLL_S)


def start_from_config_file(tmp_path: Path, level: str) -> tuple[ServerProcess, Path]:
    port = free_port()
    conf = tmp_path / "kvred.conf"
    conf.write_text(f"loglevel {level}\nport {port}\nbind 127.0.0.1\nworkers 2\ndir {tmp_path}\n")
    argv = [sys.executable, "-m", "kvred", str(conf)]
    server = ServerProcess("kvred", argv, port, tmp_path, env=_kvred_env(), listeners=2)
    return server.start(), conf


def exercise(server: ServerProcess) -> dict[str, object]:
    """Everything an operator may want to see in the log; returns what identifies it."""
    seen: dict[str, object] = {}
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        seen["hangup_port"] = sock.getsockname()[1]
        sock.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
        assert sock.recv(64) == b"+OK\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        seen["quit_port"] = sock.getsockname()[1]
        sock.sendall(b"*1\r\n$4\r\nQUIT\r\n")
        assert sock.recv(64) == b"+OK\r\n"
        assert sock.recv(64) == b""  # the server closed it
    with RawClient(server.port) as client:
        assert client.call("BGREWRITEAOF") == b"+Background append only file rewriting started\r\n"
    wait_for_log(server, r"Background AOF rewrite finished successfully")
    workers = [p for p in live_children(server.pid) if p.name().startswith("kvred-worker")]
    assert len(workers) == 2
    victim = workers[0]
    seen["killed_pid"] = victim.pid
    os.kill(victim.pid, signal.SIGKILL)
    # the replacement is ready once the supervisor has two live workers again
    deadline = time.monotonic() + LOG_WAIT_S
    while True:
        live = [p for p in live_children(server.pid) if p.name().startswith("kvred-worker") and p.pid != victim.pid]
        if len(live) == 2:
            break
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(POLL_S)
    seen["replacement_pid"] = next(p.pid for p in live if p.pid != workers[1].pid)
    seen["writer_pid"] = next(p.pid for p in live_children(server.pid) if p.name() == "kvred-writer")
    wait_for_log(server, rf"worker {victim.pid} \(slot \d\) was killed by SIGKILL: replacing it")
    assert server.signal_and_wait(signal.SIGTERM) == 0, server.log_tail()
    seen["log"] = server.log_path.read_text(errors="replace")
    return seen


@pytest.fixture
def run_at(tmp_path: Path):  # type: ignore[no-untyped-def]
    started: list[ServerProcess] = []

    def run(level: str) -> tuple[dict[str, object], Path]:
        server, conf = start_from_config_file(tmp_path, level)
        started.append(server)
        return exercise(server), conf

    yield run
    for server in started:
        server.stop()


def always_logged(seen: dict[str, object], conf: Path) -> None:
    """What every level shows: Redis's warning and notice lines."""
    log = str(seen["log"])
    assert f"Configuration loaded from {conf}" in log
    for step in ("Background append only file rewriting started by pid",
                 "Background AOF rewrite terminated with success",
                 "Residual parent diff successfully flushed to the rewritten AOF",
                 "Successfully renamed the temporary AOF file",
                 "Background AOF rewrite finished successfully"):
        assert step in log, f"{step!r} missing\n{log}"
    assert f"worker {seen['killed_pid']} (slot " in log and "was killed by SIGKILL: replacing it" in log
    assert re.search(r"kvred starting: port \d+, 2 workers, fsync ", log), log


def test_counts_in_log_lines_agree_with_their_words() -> None:
    """`1 worker`, not `1 workers` (the start-up line, the AOF loading lines)."""
    from kvred.config import plural

    assert [plural(n, "worker") for n in (0, 1, 2)] == ["0 workers", "1 worker", "2 workers"]


VERBOSE_LINES = (
    r"Accepted 127\.0\.0\.1:{hangup_port}$",
    r"Client closed connection id=\d+ addr=127\.0\.0\.1:{hangup_port}$",
    r"Accepted 127\.0\.0\.1:{quit_port}$",
    r"writer started: pid {writer_pid}, AOF loaded$",
    r"worker {replacement_pid} \(slot \d\) started, listening on port \d+$",
    r"worker {replacement_pid} \(slot \d\) exited with code 0$",
    r"the writer \(pid {writer_pid}\) exited with code 0$",
)
DEBUG_LINES = (r"closed client id=\d+ addr=127\.0\.0\.1:{quit_port}$",)


def lines_found(seen: dict[str, object], patterns: tuple[str, ...]) -> dict[str, bool]:
    log = str(seen["log"])
    return {p: re.search(p.format(**seen), log, re.MULTILINE) is not None for p in patterns}


def test_debug_logs_connections_processes_and_closes(run_at) -> None:  # type: ignore[no-untyped-def]
    seen, conf = run_at("debug")
    always_logged(seen, conf)
    found = lines_found(seen, VERBOSE_LINES + DEBUG_LINES)
    assert all(found.values()), f"{found}\n{seen['log']}"


def test_verbose_logs_connections_and_processes(run_at) -> None:  # type: ignore[no-untyped-def]
    seen, conf = run_at("verbose")
    always_logged(seen, conf)
    assert all((found := lines_found(seen, VERBOSE_LINES)).values()), f"{found}\n{seen['log']}"
    # a connection the server closed itself is debug detail
    assert not any(lines_found(seen, DEBUG_LINES).values()), seen["log"]


def test_notice_leaves_out_connections(run_at) -> None:  # type: ignore[no-untyped-def]
    seen, conf = run_at("notice")
    always_logged(seen, conf)
    found = lines_found(seen, VERBOSE_LINES + DEBUG_LINES)
    assert not any(found.values()), f"{found}\n{seen['log']}"
    assert "Accepted" not in str(seen["log"]) and "Client closed connection" not in str(seen["log"])
