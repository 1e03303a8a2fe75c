"""Process-level tests: the supervisor, its writer and workers, real signals.

What kvred documents (kvred/supervisor.py, kvred/worker.py, kvred/config.py):
- the supervisor forks one writer, then N workers listening with SO_REUSEPORT;
- a worker that dies is replaced (backoff from 50 ms), the others keep serving;
- the writer is not restarted: if it dies the supervisor stops every worker
  and exits 1, logging "the writer exited unexpectedly";
- SIGTERM/SIGINT stop gracefully (in-flight commands are answered, the writer
  stops last and fsyncs), exit 0 within 10 s, nothing left behind; a second
  SIGINT skips the wait for workers;
- a busy port exits 1 ("cannot listen"); a bad flag or KVRED_FSYNC value is one
  stderr line and exit 2, never a traceback.

Rules: real processes and signals, no mocks; every process is signalled by PID;
no fixed sleeps (every wait polls a condition with a deadline); traffic only to
127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import psutil
import pytest
import redis
from conftest import (
    REPO_ROOT,
    ServerProcess,
    _kvred_env,
    against_redis,
    free_port,
    require_tool,
    start_kvred,
)
from rawclient import RawClient, encode_command
from redis.backoff import NoBackoff
from redis.retry import Retry

pytestmark = pytest.mark.skipif(against_redis(), reason="kvred process model: redis-server has no workers")

POLL_S = 0.01
STOP_BOUND_S = 10.0  # documented: SIGTERM to exit within 10 s
REPLACEMENT_BOUND_S = 1.0  # a killed worker is replaced within 1 s (backoff starts at 50 ms)
WRITER_DEATH_BOUND_S = 5.0  # writer killed -> supervisor exits 1 within a few seconds
HURRIED_STOP_BOUND_S = 3.0  # after a second SIGINT; well below the 8 s graceful timeout
CLI_TIMEOUT_S = 15.0
BENCHMARK_TIMEOUT_S = 45.0
PIPELINE_SETS = 10_000


# ---------------------------------------------------------------- helpers


def wait_for(condition: Callable[[], Any], timeout: float, what: str,
             details: Callable[[], str] = lambda: "") -> Any:
    """Poll `condition` every POLL_S until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}\n{details()}")
        time.sleep(POLL_S)


def client(port: int, **kwargs: Any) -> redis.Redis:
    """One redis-py connection, no automatic retry (a retry would hide a closed connection)."""
    return redis.Redis(port=port, host="127.0.0.1", protocol=2, socket_timeout=5,
                       single_connection_client=True, retry=Retry(NoBackoff(), 0), **kwargs)


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def children(server: ServerProcess) -> list[psutil.Process]:
    """Live direct children of the supervisor (and record them for teardown)."""
    server.capture_tree()
    try:
        kids = psutil.Process(server.pid).children()
    except psutil.NoSuchProcess:
        return []
    return [p for p in kids if alive(p)]


def describe(procs: list[psutil.Process]) -> str:
    out = []
    for p in procs:
        try:
            out.append(f"{p.pid} ppid={p.ppid()} {p.status()} {' '.join(p.cmdline())[:90]}")
        except psutil.NoSuchProcess:
            out.append(f"{p.pid} (gone)")
    return "\n".join(out)


def kvred_processes(port: int) -> list[psutil.Process]:
    """Every live process whose command line is `python -m kvred ... --port <port>`.

    Forked children keep the supervisor's command line, so this finds workers
    and writers even if nobody recorded their PIDs.
    """
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info.get("cmdline") or []
        if "kvred" in cmd and "--port" in cmd and str(port) in cmd and alive(p):
            found.append(p)
    return found


def listening_pids(procs: list[psutil.Process], port: int) -> set[int]:
    pids = set()
    for p in procs:
        try:
            conns = p.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in conns):
            pids.add(p.pid)
    return pids


def owner_of(client_port: int, procs: list[psutil.Process]) -> int | None:
    """PID of the worker holding the server side of the connection from `client_port`."""
    for p in procs:
        try:
            conns = p.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if any(c.raddr and c.raddr.port == client_port for c in conns):
            return p.pid
    return None


def client_port(r: redis.Redis) -> int:
    """The local port of a redis-py connection, as the server sees it (CLIENT INFO addr)."""
    return int(str(r.client_info()["addr"]).rsplit(":", 1)[1])


def info(port: int, section: str) -> dict[str, Any]:
    with client(port) as r:
        return r.info(section)


def writer_pid(server: ServerProcess) -> int:
    pid = int(info(server.port, "server")["writer_process_id"])
    assert pid > 0
    return pid


def tcp_queues(local_port: int, remote_port: int) -> tuple[int, int] | None:
    """(tx_queue, rx_queue) of the IPv4 TCP socket local_port -> remote_port, from /proc/net/tcp."""
    with open("/proc/net/tcp") as f:
        lines = f.read().splitlines()[1:]
    for line in lines:
        fields = line.split()
        local, remote, queues = fields[1], fields[2], fields[4]
        if int(local.split(":")[1], 16) == local_port and int(remote.split(":")[1], 16) == remote_port:
            tx, rx = queues.split(":")
            return int(tx, 16), int(rx, 16)
    return None


def pipeline_read(client_port: int, server_port: int) -> bool:
    """Everything the client sent was read by the server process: the client's send queue
    and the server socket's receive queue are both empty."""
    sent = tcp_queues(client_port, server_port)
    received = tcp_queues(server_port, client_port)
    return sent is not None and received is not None and sent[0] == 0 and received[1] == 0


def log_problems(server: ServerProcess, since: int = 0) -> list[str]:
    """Log lines that a clean run must not have: tracebacks and ERROR lines."""
    text = server.log_path.read_bytes()[since:].decode(errors="replace")
    return [line for line in text.splitlines()
            if "Traceback" in line or " ERROR " in line or "Error:" in line]


def log_text(server: ServerProcess, since: int = 0) -> str:
    return server.log_path.read_bytes()[since:].decode(errors="replace")


def log_size(server: ServerProcess) -> int:
    try:
        return server.log_path.stat().st_size
    except OSError:
        return 0


def stop_and_check(server: ServerProcess, sig: int = signal.SIGTERM) -> float:
    """Send `sig` by PID; require exit 0 within STOP_BOUND_S and no process left. Returns the time."""
    started = time.monotonic()
    code = server.signal_and_wait(sig, timeout=STOP_BOUND_S)
    elapsed = time.monotonic() - started
    assert code is not None, f"still running {STOP_BOUND_S} s after {sig!r}\n{server.log_tail()}"
    assert code == 0, f"exit code {code} after {sig!r}\n{server.log_tail()}"
    left = server.leftovers() + kvred_processes(server.port)
    assert not left, f"left behind after {sig!r}:\n{describe(left)}"
    return elapsed


def wait_stopped(server: ServerProcess, signalled_at: float) -> float:
    """The stop signal was already sent (once, at `signalled_at`): require exit 0 within
    STOP_BOUND_S of it and no process left, without signalling again."""
    assert server.proc is not None
    remaining = STOP_BOUND_S - (time.monotonic() - signalled_at)
    try:
        code = server.proc.wait(max(0.0, remaining))
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {STOP_BOUND_S} s after the stop signal\n{server.log_tail()}")
    server.returncode = code
    elapsed = time.monotonic() - signalled_at
    assert code == 0, f"exit code {code} after the stop signal\n{server.log_tail()}"
    left = server.leftovers() + kvred_processes(server.port)
    assert not left, f"left behind after the stop signal:\n{describe(left)}"
    return elapsed


def port_is_free(port: int) -> bool:
    """Nobody listens on 127.0.0.1:port (SO_REUSEADDR: TIME_WAIT leftovers do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def kvred_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "kvred", *args]


def run_kvred(args: list[str], env_extra: dict[str, str] | None = None,
              drop_env: tuple[str, ...] = ("KVRED_FSYNC",)) -> subprocess.Popen[bytes]:
    env = _kvred_env()
    for name in drop_env:
        env.pop(name, None)
    env.update(env_extra or {})
    return subprocess.Popen(kvred_argv(*args), cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def finish(proc: subprocess.Popen[bytes], timeout: float = CLI_TIMEOUT_S) -> tuple[int, str, str]:
    """Wait for a short-lived kvred; kill it (by PID) and fail if it runs too long."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for p in psutil.Process(proc.pid).children(recursive=True):
            p.kill()
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"{proc.args!r} still running after {timeout} s\nstdout={out!r}\nstderr={err!r}")
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """start(workdir=None, **flags): a kvred in tmp_path (or workdir); all stopped by PID at teardown."""
    started: list[ServerProcess] = []

    def start(workdir: Path | None = None, **flags: object) -> ServerProcess:
        server = start_kvred(workdir or tmp_path, **flags)
        started.append(server)
        return server

    yield start
    for server in started:
        # Nothing may stay stopped (SIGSTOP) or alive past the test.
        for p in server.leftovers():
            try:
                p.send_signal(signal.SIGCONT)
            except psutil.NoSuchProcess:
                pass
        server.stop()


# ---------------------------------------------------------------- 1. process tree


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_process_tree_three_workers_and_graceful_stop(spawn: Callable[..., ServerProcess],
                                                      stop_signal: signal.Signals) -> None:
    """--workers 3: exactly 4 children (1 writer + 3 listening workers); SIGTERM or SIGINT:
    exit 0 within 10 s, every client disconnected, nothing left."""
    server = spawn(workers=3, loglevel="notice")
    kids = wait_for(lambda: (k := children(server)) and len(k) == 4 and k, 5,
                    "4 children", lambda: describe(children(server)))
    described = describe(kids)
    assert len(kids) == 4, described
    # no grandchildren either (no rewrite is running)
    assert len(psutil.Process(server.pid).children(recursive=True)) == 4, described

    wpid = writer_pid(server)
    kid_pids = {p.pid for p in kids}
    assert wpid in kid_pids, f"writer_process_id {wpid} is not a child of {server.pid}\n{described}"
    assert int(info(server.port, "server")["process_id"]) == server.pid
    workers = [p for p in kids if p.pid != wpid]
    assert len(workers) == 3
    listeners = wait_for(lambda: (s := listening_pids(kids, server.port)) and len(s) == 3 and s,
                         5, "3 listening workers", lambda: described)
    assert listeners == {p.pid for p in workers}, f"listening: {listeners}\n{described}"

    # Stop with clients connected (idle ones and one that just wrote).
    idle = [RawClient(server.port) for _ in range(6)]
    for c in idle:
        assert c.call("PING") == b"+PONG\r\n"
    with client(server.port) as r:
        assert r.set("tree:k", "v") is True

    elapsed = stop_and_check(server, stop_signal)
    assert elapsed < STOP_BOUND_S
    for p in kids:
        assert not alive(p), f"{p.pid} still alive after the supervisor exited"
    for c in idle:
        assert c.is_closed(timeout=2), "an idle client was not disconnected by the stop"
        c.close()
    assert f"received {stop_signal.name}: shutting down" in log_text(server), server.log_tail()
    assert "second signal" not in log_text(server), "one signal was taken for two:\n" + server.log_tail()
    assert port_is_free(server.port)


def test_graceful_stop_logs_no_errors(spawn: Callable[..., ServerProcess]) -> None:
    """A plain SIGTERM with clients connected (idle ones, one with a pipeline being answered)
    is a normal event: no ERROR line and no traceback in the log."""
    server = spawn(workers=2, loglevel="notice")
    idle = [RawClient(server.port) for _ in range(6)]
    for c in idle:
        assert c.call("PING") == b"+PONG\r\n"
    busy = RawClient(server.port, timeout=10)
    busy.send(_pipeline_sets(1000, "clean"))
    assert busy.read_reply() == b"+OK\r\n"  # the pipeline is being answered
    stop_and_check(server)
    for c in [*idle, busy]:
        c.close()
    problems = log_problems(server)
    assert not problems, "a graceful stop logged errors:\n" + log_text(server)


# ---------------------------------------------------------------- 2. worker killed


def test_killed_worker_is_replaced_and_others_keep_serving(spawn: Callable[..., ServerProcess]) -> None:
    n_workers = 3
    server = spawn(workers=n_workers, loglevel="notice")
    kids = wait_for(lambda: (k := children(server)) and len(k) == n_workers + 1 and k, 5,
                    "all children", lambda: describe(children(server)))
    wpid = writer_pid(server)
    workers = [p for p in kids if p.pid != wpid]

    # Connections until every worker holds at least two (SO_REUSEPORT spreads by hash).
    conns: dict[int, list[redis.Redis]] = {p.pid: [] for p in workers}
    opened: list[redis.Redis] = []
    try:
        for _ in range(96):
            if all(len(v) >= 2 for v in conns.values()):
                break
            r = client(server.port)
            opened.append(r)
            port = client_port(r)
            owner = owner_of(port, workers)
            assert owner in conns, f"connection from port {port} held by {owner}, not a worker"
            conns[owner].append(r)
        assert all(len(v) >= 2 for v in conns.values()), {k: len(v) for k, v in conns.items()}

        acked: dict[str, str] = {}

        def write(r: redis.Redis, key: str) -> None:
            value = f"value-of-{key}"
            assert r.set(key, value) is True
            acked[key] = value
            assert r.get(key) == value.encode()

        for pid, rs in conns.items():
            for i, r in enumerate(rs):
                write(r, f"before:{pid}:{i}")

        victim = workers[0]
        survivors = {pid: rs for pid, rs in conns.items() if pid != victim.pid}
        killed_at = time.monotonic()
        victim.send_signal(signal.SIGKILL)

        # Until the replacement is up and listening, the other workers' clients keep working.
        new_pid: int | None = None
        rounds = 0
        while True:
            rounds += 1
            for pid, rs in survivors.items():
                for i, r in enumerate(rs):
                    write(r, f"during:{pid}:{i}:{rounds}")
            now_kids = children(server)
            fresh = [p for p in now_kids if p.pid not in {k.pid for k in kids}]
            if (len(now_kids) == n_workers + 1 and len(fresh) == 1 and not alive(victim)
                    and listening_pids(fresh, server.port)):
                new_pid = fresh[0].pid
                break
            if time.monotonic() - killed_at > REPLACEMENT_BOUND_S:
                pytest.fail(f"no listening replacement {REPLACEMENT_BOUND_S} s after SIGKILL of worker "
                            f"{victim.pid}; children now:\n{describe(now_kids)}\n{server.log_tail()}")
        replaced_in = time.monotonic() - killed_at
        assert writer_pid(server) == wpid, "the writer changed after a worker died"
        assert rounds >= 1

        # The killed worker's clients see a closed connection (no retry, no hang).
        for r in conns[victim.pid]:
            with pytest.raises(redis.ConnectionError):
                r.ping()

        # Survivors still fine after the replacement; new connections work and reach the new worker.
        for pid, rs in survivors.items():
            for i, r in enumerate(rs):
                write(r, f"after:{pid}:{i}")
        current = children(server)
        current_workers = [p for p in current if p.pid != wpid]
        reached_new = False
        for attempt in range(96):
            r = client(server.port)
            opened.append(r)
            write(r, f"fresh:{attempt}")
            port = client_port(r)
            if owner_of(port, current_workers) == new_pid:
                reached_new = True
                break
        assert reached_new, f"no new connection reached the replacement worker {new_pid}"

        # No acknowledged write is lost, whichever worker took it.
        with client(server.port) as r:
            keys = list(acked)
            values = r.mget(keys)
        missing = [k for k, v in zip(keys, values, strict=True) if v != acked[k].encode()]
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
        assert replaced_in <= REPLACEMENT_BOUND_S
        assert f"worker {victim.pid}" in log_text(server), server.log_tail()
    finally:
        for r in opened:
            r.close()
    stop_and_check(server)


# ---------------------------------------------------------------- 3. writer killed


def test_writer_killed_stops_the_server_with_status_1(spawn: Callable[..., ServerProcess]) -> None:
    server = spawn(workers=2, loglevel="notice")
    kids = wait_for(lambda: (k := children(server)) and len(k) == 3 and k, 5, "3 children")
    wpid = writer_pid(server)
    assert wpid in {p.pid for p in kids}
    clients = [RawClient(server.port) for _ in range(4)]
    for c in clients:
        assert c.call("SET", "w:k", "v") == b"+OK\r\n"

    killed_at = time.monotonic()
    os.kill(wpid, signal.SIGKILL)
    assert server.proc is not None
    try:
        code = server.proc.wait(WRITER_DEATH_BOUND_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"supervisor still running {WRITER_DEATH_BOUND_S} s after the writer was killed\n"
                    f"{describe(children(server))}\n{server.log_tail()}")
    took = time.monotonic() - killed_at
    assert code == 1, f"exit code {code} (expected 1) after the writer died\n{server.log_tail()}"
    assert "the writer exited unexpectedly" in log_text(server), server.log_tail()
    left = server.leftovers() + kvred_processes(server.port)
    assert not left, f"left behind {took:.2f} s after the writer died:\n{describe(left)}"
    for c in clients:
        assert c.is_closed(timeout=2), "a client stayed connected to a server without a writer"
        c.close()
    assert port_is_free(server.port), "something still listens on the port"


# ---------------------------------------------------------------- 4. graceful drain


def _pipeline_sets(count: int, tag: str) -> bytes:
    return b"".join(encode_command("SET", f"{tag}:{i}", f"val-{i}") for i in range(count))


def _check_restart(spawn: Callable[..., ServerProcess], workdir: Path, tag: str, count: int) -> None:
    """Restart on `workdir`: exactly keys tag:0..count-1, with their values."""
    log_path = workdir / "kvred.log"  # shared with the first run: check only the new part
    before = log_path.stat().st_size if log_path.exists() else 0
    restarted = spawn(workdir, workers=1, loglevel="notice")
    try:
        with client(restarted.port) as r:
            assert r.dbsize() == count, f"after restart: DBSIZE {r.dbsize()}, acknowledged {count}"
            for start in range(0, count, 1000):
                keys = [f"{tag}:{i}" for i in range(start, min(count, start + 1000))]
                values = r.mget(keys)
                bad = [k for k, v in zip(keys, values, strict=True) if v != f"val-{k.split(':')[1]}".encode()]
                assert not bad, f"after restart, wrong or missing: {bad[:5]}"
        text = log_text(restarted, before)
        assert "Bad file format" not in text and "incomplete command" not in text, text
    finally:
        stop_and_check(restarted)


def test_sigterm_answers_every_command_already_read(spawn: Callable[..., ServerProcess],
                                                     tmp_path: Path) -> None:
    """10k pipelined SETs, all received by the worker, none read back yet: SIGTERM, then every
    reply arrives complete before the close, exit 0, and a restart has every key."""
    server = spawn(workers=2, loglevel="notice")
    c = RawClient(server.port, timeout=10)
    cport = c.sock.getsockname()[1]
    c.send(_pipeline_sets(PIPELINE_SETS, "drain"))
    # In flight = sent by the client and read by the worker: nothing left in either kernel queue.
    wait_for(lambda: pipeline_read(cport, server.port), 10, "the worker to read the whole pipeline")
    server.capture_tree()
    signalled_at = time.monotonic()
    os.kill(server.pid, signal.SIGTERM)
    data, closed = c.read_until_close(timeout=STOP_BOUND_S)
    c.close()
    assert closed, f"connection still open {STOP_BOUND_S} s after SIGTERM; got {len(data)} bytes"
    assert data == b"+OK\r\n" * PIPELINE_SETS, (
        f"{data.count(b'+OK')} of {PIPELINE_SETS} replies, {len(data)} bytes, tail {data[-40:]!r}")
    wait_stopped(server, signalled_at)
    _check_restart(spawn, tmp_path, "drain", PIPELINE_SETS)


def test_sigterm_right_after_a_pipelined_write(spawn: Callable[..., ServerProcess],
                                               tmp_path: Path) -> None:
    """SIGTERM right after one 10k-SET write: the replies form a complete prefix (no torn reply),
    the connection closes, and after a restart exactly the acknowledged keys exist."""
    server = spawn(workers=2, loglevel="notice")
    c = RawClient(server.port, timeout=10)
    server.capture_tree()
    c.send(_pipeline_sets(PIPELINE_SETS, "race"))
    signalled_at = time.monotonic()
    os.kill(server.pid, signal.SIGTERM)
    data, closed = c.read_until_close(timeout=STOP_BOUND_S)
    c.close()
    assert closed, f"connection still open {STOP_BOUND_S} s after SIGTERM; got {len(data)} bytes"
    acked = data.count(b"+OK\r\n")
    assert data == b"+OK\r\n" * acked, f"torn or unexpected replies: tail {data[-40:]!r}"
    wait_stopped(server, signalled_at)
    _check_restart(spawn, tmp_path, "race", acked)


# ---------------------------------------------------------------- 5. second SIGINT


def test_second_sigint_skips_waiting_for_workers(spawn: Callable[..., ServerProcess],
                                                 tmp_path: Path) -> None:
    """A wedged (SIGSTOPped) worker would hold the stop for the 8 s graceful timeout; a second
    SIGINT kills it at once. Exit 0, nothing left, and the AOF replays."""
    server = spawn(workers=2, loglevel="notice")
    kids = wait_for(lambda: (k := children(server)) and len(k) == 3 and k, 5, "3 children")
    wpid = writer_pid(server)
    workers = [p for p in kids if p.pid != wpid]

    # One connection on each worker.
    by_worker: dict[int, RawClient] = {}
    spare: list[RawClient] = []
    for _ in range(96):
        if len(by_worker) == 2:
            break
        c = RawClient(server.port)
        owner = owner_of(c.sock.getsockname()[1], workers)
        if owner in by_worker or owner is None:
            spare.append(c)
        else:
            by_worker[owner] = c
    assert len(by_worker) == 2
    for c in spare:
        c.close()
    wedged, healthy = workers
    acked = 0
    for c in by_worker.values():
        for _ in range(50):
            assert c.call("SET", f"sig:{acked}", f"val-{acked}") == b"+OK\r\n"
            acked += 1

    wedged.send_signal(signal.SIGSTOP)
    wait_for(lambda: wedged.status() == psutil.STATUS_STOPPED, 5, "the worker to stop")
    # The wedged worker's client sends writes nobody will read.
    by_worker[wedged.pid].send(_pipeline_sets(100, "lost"))
    # The healthy worker's client has a pipeline in flight when the stop begins.
    healthy_client = by_worker[healthy.pid]
    hport = healthy_client.sock.getsockname()[1]
    healthy_client.send(b"".join(encode_command("SET", f"sig:{acked + i}", f"val-{acked + i}")
                                 for i in range(1000)))
    wait_for(lambda: pipeline_read(hport, server.port), 10, "the healthy worker to read its pipeline")

    os.kill(server.pid, signal.SIGINT)
    wait_for(lambda: "received SIGINT: shutting down" in log_text(server), 5,
             "the first SIGINT to be logged", server.log_tail)
    data, closed = healthy_client.read_until_close(timeout=STOP_BOUND_S)
    assert closed and data == b"+OK\r\n" * 1000, f"{data.count(b'+OK')} of 1000 replies, closed={closed}"
    acked += 1000
    wait_for(lambda: not alive(healthy), 5, "the healthy worker to exit")
    assert server.proc is not None
    assert server.proc.poll() is None, (
        f"the supervisor did not wait for the wedged worker (exit {server.proc.returncode})\n"
        f"{server.log_tail()}")

    second_at = time.monotonic()
    os.kill(server.pid, signal.SIGINT)
    try:
        code = server.proc.wait(HURRIED_STOP_BOUND_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {HURRIED_STOP_BOUND_S} s after the second SIGINT\n{server.log_tail()}")
    took = time.monotonic() - second_at
    assert code == 0, f"exit code {code} after the second SIGINT\n{server.log_tail()}"
    assert "second signal" in log_text(server), server.log_tail()
    left = server.leftovers() + kvred_processes(server.port)
    assert not left, f"left behind {took:.2f} s after the second SIGINT:\n{describe(left)}"
    assert by_worker[wedged.pid].is_closed(timeout=2)
    for c in by_worker.values():
        c.close()

    before = log_size(server)
    restarted = spawn(tmp_path, workers=1, loglevel="notice")
    with client(restarted.port) as r:
        keys = [f"sig:{i}" for i in range(acked)]
        values = r.mget(keys)
        bad = [k for k, v in zip(keys, values, strict=True) if v != f"val-{k.split(':')[1]}".encode()]
        assert not bad, f"acknowledged writes lost over the hurried stop: {bad[:5]}"
        assert r.dbsize() == acked, f"DBSIZE {r.dbsize()}, acknowledged {acked}"
    text = log_text(restarted, before)
    assert "Bad file format" not in text and "incomplete command" not in text, text
    stop_and_check(restarted)


def test_wedged_worker_is_killed_at_the_graceful_timeout(spawn: Callable[..., ServerProcess],
                                                          tmp_path: Path) -> None:
    """One SIGTERM and a worker that never finishes (SIGSTOPped): the stop still ends within
    10 s with exit 0 and nothing left; acknowledged writes survive."""
    server = spawn(workers=2, loglevel="notice")
    kids = wait_for(lambda: (k := children(server)) and len(k) == 3 and k, 5, "3 children")
    wpid = writer_pid(server)
    wedged = next(p for p in kids if p.pid != wpid)
    with client(server.port) as r:
        for i in range(100):
            assert r.set(f"wedge:{i}", f"val-{i}") is True
    wedged.send_signal(signal.SIGSTOP)
    wait_for(lambda: wedged.status() == psutil.STATUS_STOPPED, 5, "the worker to stop")
    elapsed = stop_and_check(server)
    assert elapsed < STOP_BOUND_S
    _check_restart(spawn, tmp_path, "wedge", 100)


def test_supervisor_killed_leaves_no_orphans(spawn: Callable[..., ServerProcess],
                                             tmp_path: Path) -> None:
    """SIGKILL of the supervisor: the writer sees its control socket close and stops (writing
    the AOF), the workers lose their link and exit; nothing keeps running or serving."""
    server = spawn(workers=2, loglevel="notice")
    kids = wait_for(lambda: (k := children(server)) and len(k) == 3 and k, 5, "3 children")
    c = RawClient(server.port)
    for i in range(100):
        assert c.call("SET", f"orphan:{i}", f"val-{i}") == b"+OK\r\n"
    assert server.proc is not None
    os.kill(server.pid, signal.SIGKILL)
    server.proc.wait(5)
    _gone, still = psutil.wait_procs(kids, timeout=5)
    still = [p for p in still if alive(p)]
    assert not still, f"orphans 5 s after the supervisor was killed:\n{describe(still)}\n{server.log_tail()}"
    assert not kvred_processes(server.port)
    assert c.is_closed(timeout=2)
    c.close()
    assert port_is_free(server.port)
    _check_restart(spawn, tmp_path, "orphan", 100)


# ---------------------------------------------------------------- 6. start-up errors and flags


def test_port_in_use_by_redis_server(redis_server: ServerProcess, tmp_path: Path) -> None:
    code, out, err = finish(run_kvred(["--port", str(redis_server.port), "--bind", "127.0.0.1",
                                       "--workers", "2", "--dir", str(tmp_path)]))
    assert code == 1, f"exit {code}\nstdout={out}\nstderr={err}"
    assert "cannot listen" in err, err
    assert "Traceback" not in out + err, err
    assert not kvred_processes(redis_server.port)
    with client(redis_server.port) as r:
        assert r.ping() is True  # the other server is untouched


def test_port_in_use_by_another_kvred(spawn: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """SO_REUSEPORT must not let a second kvred share the port."""
    first = spawn(workers=2)
    before = {p.pid for p in children(first)}
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    code, out, err = finish(run_kvred(["--port", str(first.port), "--bind", "127.0.0.1",
                                       "--workers", "2", "--dir", str(other_dir)]))
    assert code == 1, f"exit {code}\nstdout={out}\nstderr={err}"
    assert "cannot listen" in err, err
    assert "Traceback" not in out + err, err
    assert {p.pid for p in children(first)} == before
    assert {p.pid for p in kvred_processes(first.port)} == before | {first.pid}
    with client(first.port) as r:
        assert r.set("still", "here") is True
    stop_and_check(first)


def test_restart_on_the_same_port_right_after_a_stop(spawn: Callable[..., ServerProcess],
                                                     tmp_path: Path) -> None:
    """A service manager restarts kvred on its port at once: connections the stop closed
    (FIN-WAIT/TIME-WAIT on the server side) must not make the port look busy, as with Redis."""
    first = spawn(workers=2)
    port = first.port
    clients = [RawClient(port) for _ in range(4)]
    for c in clients:
        assert c.call("SET", "restart:k", "v") == b"+OK\r\n"
    stop_and_check(first)
    for c in clients:
        assert c.is_closed(timeout=2)
        c.close()
    assert port_is_free(port)
    second = spawn(tmp_path, port=port, workers=1)
    with client(second.port) as r:
        assert r.get("restart:k") == b"v"
    stop_and_check(second)


BAD_FLAGS = [
    pytest.param(["--port", "0"], {}, id="port-0"),
    pytest.param(["--port", "abc"], {}, id="port-abc"),
    pytest.param(["--port", "65536"], {}, id="port-65536"),
    pytest.param(["--port"], {}, id="port-missing-value"),
    pytest.param(["--workers", "0"], {}, id="workers-0"),
    pytest.param(["--workers", "-3"], {}, id="workers-negative"),
    pytest.param(["--workers", "many"], {}, id="workers-many"),
    pytest.param(["--fsync", "sometimes"], {}, id="fsync-sometimes"),
    pytest.param([], {"KVRED_FSYNC": "bogus"}, id="env-KVRED_FSYNC-bogus"),
    pytest.param(["--dir", "/nonexistent/kvred-test-dir"], {}, id="dir-nonexistent"),
    pytest.param(["--dir", "/etc/hostname"], {}, id="dir-is-a-file"),
    pytest.param(["--loglevel", "loud"], {}, id="loglevel-loud"),
    pytest.param(["--no-such-flag"], {}, id="unknown-flag"),
    pytest.param(["--appendonly", "maybe"], {}, id="appendonly-maybe"),
]


def test_bad_flags_exit_2_with_one_line(tmp_path: Path) -> None:
    """Every bad value: exit 2, exactly one stderr line, nothing on stdout, no traceback.

    All cases run concurrently (each is a short-lived process) to keep the runtime down.
    """
    procs = []
    for param in BAD_FLAGS:
        args, env = cast(tuple[list[str], dict[str, str]], param.values)
        # Valid defaults first (a free port, this test's dir); the case's own flags come
        # last and win.
        base = ["--bind", "127.0.0.1", "--dir", str(tmp_path), "--port", str(free_port())]
        procs.append((param.id, args, run_kvred(base + list(args), env_extra=env)))
    failures = []
    for case_id, args, proc in procs:
        code, out, err = finish(proc)
        lines = err.splitlines()
        ok = (code == 2 and len(lines) == 1 and err.endswith("\n") and lines[0].strip()
              and out == "" and "Traceback" not in out + err)
        if not ok:
            failures.append(f"{case_id} {args}: exit {code}, stdout={out!r}, stderr={err!r}")
    assert not failures, "\n".join(failures)


def test_help_lists_the_flags() -> None:
    code, out, err = finish(run_kvred(["--help"]))
    assert code == 0, err
    assert err == ""
    for flag in ("--port", "--bind", "--workers", "--dir", "--fsync", "--loglevel"):
        assert flag in out, f"{flag} missing from --help:\n{out}"


@pytest.mark.parametrize(
    ("env_value", "flag", "expected"),
    [
        (None, None, "everysec"),
        ("always", None, "always"),
        ("everysec", None, "everysec"),
        ("no", None, "no"),
        ("none", None, "no"),
        ("always", "no", "no"),
        ("no", "always", "always"),
        ("none", "everysec", "everysec"),
        (None, "none", "no"),
    ],
)
def test_fsync_policy_from_env_and_flag(spawn: Callable[..., ServerProcess], monkeypatch: pytest.MonkeyPatch,
                                        env_value: str | None, flag: str | None, expected: str) -> None:
    if env_value is None:
        monkeypatch.delenv("KVRED_FSYNC", raising=False)
    else:
        monkeypatch.setenv("KVRED_FSYNC", env_value)
    server = spawn(workers=1, fsync=flag)
    with client(server.port) as r:
        assert r.config_get("appendfsync") == {"appendfsync": expected}
        assert r.set("fsync:k", "v") is True
    stop_and_check(server)


# ---------------------------------------------------------------- 7. redis-benchmark


def test_redis_benchmark_spreads_over_workers(spawn: Callable[..., ServerProcess]) -> None:
    exe = require_tool("redis-benchmark")
    server = spawn(workers=2)
    kids = wait_for(lambda: (k := children(server)) and len(k) == 3 and k, 5, "3 children")
    wpid = writer_pid(server)
    workers = [p for p in kids if p.pid != wpid]
    with client(server.port) as r:
        r.config_resetstat()
        base = int(r.info("stats")["total_commands_processed"])

    bench = subprocess.Popen([exe, "-h", "127.0.0.1", "-p", str(server.port), "-t", "set,get",
                              "-n", "20000", "-c", "50", "-q"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # While it runs, both workers hold benchmark connections.
    busy: set[int] = set()
    try:
        deadline = time.monotonic() + BENCHMARK_TIMEOUT_S
        while bench.poll() is None and len(busy) < 2 and time.monotonic() < deadline:
            for p in workers:
                try:
                    n = sum(1 for c in p.net_connections(kind="tcp")
                            if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == server.port)
                except psutil.NoSuchProcess:
                    n = 0
                if n > 0:
                    busy.add(p.pid)
            time.sleep(POLL_S)
        out, err = bench.communicate(timeout=BENCHMARK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        bench.kill()
        bench.communicate()
        pytest.fail(f"redis-benchmark still running after {BENCHMARK_TIMEOUT_S} s\n{server.log_tail()}")
    output = (out + err).decode(errors="replace")
    assert bench.returncode == 0, output
    assert "WARNING" not in output, output
    assert "error" not in output.lower(), output
    for test in ("SET: ", "GET: "):
        assert test in output, output
    assert busy == {p.pid for p in workers}, f"benchmark connections seen only on {busy}"
    total = int(info(server.port, "stats")["total_commands_processed"]) - base
    assert total >= 40_000, f"total_commands_processed grew by {total}"
    text = log_text(server)
    assert "WARNING" not in text and not log_problems(server), text
    stop_and_check(server)
