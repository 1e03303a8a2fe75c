"""A worker killed with subscribed, blocked or mid-MULTI clients loses only its own clients
(issue 13, item 6).

kvred (kvred/supervisor.py, kvred/writer.py): every worker has its own link to the writer;
when a worker dies the writer drops that link and forgets every client that came through
it (`Writer._drop_link`), and the supervisor forks a replacement. So after a SIGKILL of one
worker:
- the dead worker's clients see their connection closed;
- a replacement (new PID) listens, and new connections work;
- INFO clients (connected_clients, blocked_clients), PUBSUB NUMSUB and PUBSUB NUMPAT count
  only the surviving workers' clients;
- PUBLISH reaches exactly the surviving subscribers, once each, and says so;
- a push serves exactly the surviving blocked clients, first blocked first served, and
  pops nothing for the dead worker's blocked client;
- clients of the other workers keep working throughout (a GET loop never fails);
- a transaction queued (MULTI, no EXEC) on the dead worker changes nothing.

Rules: real processes and signals, every process signalled by PID, no fixed sleeps (every
wait polls with a deadline), every client and server closed by its fixture.
"""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import ServerProcess, against_redis, start_kvred
from rawclient import RawClient, encode_command
from test_process import alive, owner_of, wait_for

pytestmark = pytest.mark.skipif(against_redis(), reason="kvred process model: redis-server has no workers")

POLL_S = 0.01
WAIT_S = 5.0  # bound for every condition polled below
READ_TIMEOUT_S = 3.0
REPLACEMENT_BOUND_S = 5.0  # generous: test_process.py holds kvred to 1 s
MAX_CONNECTIONS = 120  # opened before giving up on reaching every worker
QUIET_S = 0.1  # "nothing more arrives" window for exactly-once checks


# ---------------------------------------------------------------- helpers


def reaped(proc: psutil.Process) -> bool:
    """The process is gone entirely. A SIGKILLed worker's main thread shows as a zombie while
    its other threads still exit, and its listening socket (SO_REUSEPORT) stays open until
    the last one has: a connection made in that window is reset by the kernel. Only once the
    supervisor has reaped it is the socket surely closed."""
    try:
        proc.status()
    except psutil.NoSuchProcess:
        return True
    return False


def info_field(c: RawClient, section: str, field: str) -> int:
    text = c.call("INFO", section)
    match = re.search(rb"\r\n%s:(\d+)\r\n" % field.encode(), text)
    assert match, f"no {field} in INFO {section}: {text!r}"
    return int(match[1])


def writer_pid(server: ServerProcess) -> int:
    with RawClient(server.port, timeout=READ_TIMEOUT_S) as c:
        return info_field(c, "server", "writer_process_id")


def workers(server: ServerProcess, wpid: int) -> list[psutil.Process]:
    """The live worker processes: children of the supervisor other than the writer."""
    server.capture_tree()
    kids = psutil.Process(server.pid).children()
    return [p for p in kids if p.pid != wpid and alive(p)]


def listening(proc: psutil.Process, port: int) -> bool:
    try:
        return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
                   for c in proc.net_connections(kind="tcp"))
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def owner(server: ServerProcess, procs: list[psutil.Process], c: RawClient) -> int:
    """PID of the process in `procs` holding the server side of `c` (polled: accept() is async)."""
    port: int = c.sock.getsockname()[1]
    found: int = wait_for(lambda: owner_of(port, procs), WAIT_S, f"the worker holding client port {port}")
    return found


def spread(server: ServerProcess, procs: list[psutil.Process], per_worker: int,
           opened: list[RawClient]) -> dict[int, list[RawClient]]:
    """At least `per_worker` fresh connections held by every worker (SO_REUSEPORT spreads by
    hash); connections beyond that are closed. Returns worker PID -> its clients."""
    by_worker: dict[int, list[RawClient]] = {p.pid: [] for p in procs}
    extra: list[RawClient] = []
    for _ in range(MAX_CONNECTIONS):
        if all(len(v) >= per_worker for v in by_worker.values()):
            break
        c = RawClient(server.port, timeout=READ_TIMEOUT_S)
        opened.append(c)
        assert c.call("PING") == b"+PONG\r\n"  # accepted by its worker
        pid = owner(server, procs, c)
        assert pid in by_worker, f"a client is held by {pid}, not by a worker {list(by_worker)}"
        (by_worker[pid] if len(by_worker[pid]) < per_worker else extra).append(c)
    assert all(len(v) >= per_worker for v in by_worker.values()), \
        f"{MAX_CONNECTIONS} connections did not reach every worker: {({k: len(v) for k, v in by_worker.items()})}"
    for c in extra:
        c.close()
    return by_worker


def bulks(*parts: bytes) -> bytes:
    """RESP2 bulk strings, one after the other."""
    return b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def arr(*parts: bytes | int) -> bytes:
    """A RESP2 array of bulk strings and integers (a pub/sub message, a BLPOP reply)."""
    items = [b":%d\r\n" % p if isinstance(p, int) else bulks(p) for p in parts]
    return b"*%d\r\n" % len(parts) + b"".join(items)


class GetLoop(threading.Thread):
    """GET from one client in a loop until stopped; records every failure."""

    def __init__(self, client: RawClient, key: str, value: bytes):
        super().__init__(daemon=True)
        self.client, self.key, self.expected = client, key, bulks(value)
        self.stop = threading.Event()
        self.count = 0
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                reply = self.client.call("GET", self.key)
            except Exception as e:  # noqa: BLE001 - every failure is a finding
                self.errors.append(f"{type(e).__name__}: {e}")
                return
            if reply != self.expected:
                self.errors.append(f"GET {self.key} -> {reply!r}")
                return
            self.count += 1

    def finish(self) -> None:
        self.stop.set()
        self.join(READ_TIMEOUT_S + 1)
        assert not self.is_alive(), "the GET loop is stuck"


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def opened() -> Iterator[list[RawClient]]:
    clients: list[RawClient] = []
    yield clients
    for c in clients:
        c.close()


@pytest.fixture
def kvred_workers(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """kvred with `request.param` workers, no AOF."""
    server = start_kvred(tmp_path, workers=request.param, appendonly="no", loglevel="notice")
    try:
        yield server
    finally:
        server.stop()


def kill_and_wait_replacement(server: ServerProcess, wpid: int, victim: psutil.Process,
                              before: list[psutil.Process]) -> psutil.Process:
    """SIGKILL `victim` by PID; wait until it is reaped and exactly one new worker listens;
    return the new one."""
    old = {p.pid for p in before}
    victim.send_signal(signal.SIGKILL)

    def replacement() -> psutil.Process | None:
        if not reaped(victim):
            return None
        now = workers(server, wpid)
        fresh = [p for p in now if p.pid not in old]
        if len(now) == len(before) and len(fresh) == 1 and listening(fresh[0], server.port):
            return fresh[0]
        return None

    new: psutil.Process = wait_for(replacement, REPLACEMENT_BOUND_S,
                                   f"a listening replacement for worker {victim.pid}", server.log_tail)
    return new


def reach(server: ServerProcess, wpid: int, target: psutil.Process, opened: list[RawClient]) -> RawClient:
    """A new connection that lands on `target` (others are closed)."""
    for _ in range(MAX_CONNECTIONS):
        c = RawClient(server.port, timeout=READ_TIMEOUT_S)
        opened.append(c)
        assert c.call("PING") == b"+PONG\r\n"
        if owner(server, workers(server, wpid), c) == target.pid:
            return c
        c.close()
    pytest.fail(f"{MAX_CONNECTIONS} new connections never reached worker {target.pid}")


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("kvred_workers", [3], indirect=True)
def test_killed_worker_loses_only_its_own_subscribed_and_blocked_clients(
        kvred_workers: ServerProcess, opened: list[RawClient]) -> None:
    server = kvred_workers
    wpid = writer_pid(server)
    before = workers(server, wpid)
    assert len(before) == 3, before
    # Per worker: SUBSCRIBE, PSUBSCRIBE, two BLPOP clients, a control client (INFO/commands)
    # and a GET-loop client.
    roles = ("sub", "psub", "blocked1", "blocked2", "control", "getter")
    by_worker = spread(server, before, len(roles), opened)
    clients = {pid: dict(zip(roles, cs, strict=False)) for pid, cs in by_worker.items()}
    pids = [p.pid for p in before]
    victim = before[1]  # the middle one: its blocked clients sit between the survivors' ones
    survivors = [pid for pid in pids if pid != victim.pid]
    control = clients[survivors[0]]["control"]

    assert control.call("SET", "steady", "value") == b"+OK\r\n"
    # PUBSUB NUMPAT counts distinct patterns: one of its own per worker, each matching "news".
    pattern = {pid: b"n" + b"?" * i + b"*" for i, pid in enumerate(pids)}
    for pid in pids:
        sub, psub = clients[pid]["sub"], clients[pid]["psub"]
        assert sub.call("SUBSCRIBE", "news") == arr(b"subscribe", b"news", 1)
        assert psub.call("PSUBSCRIBE", pattern[pid]) == arr(b"psubscribe", pattern[pid], 1)
    assert control.call("PUBSUB", "NUMSUB", "news") == b"*2\r\n$4\r\nnews\r\n:3\r\n"
    assert control.call("PUBSUB", "NUMPAT") == b":3\r\n"

    # Blocked in the order w0, w1, w2, w0, w1, w2: each one counted before the next blocks.
    order: list[tuple[int, RawClient]] = []
    for round_ in ("blocked1", "blocked2"):
        for pid in pids:
            c = clients[pid][round_]
            c.send(encode_command("BLPOP", "jobs", "0"))
            order.append((pid, c))
            n = len(order)
            wait_for(lambda n=n: info_field(control, "clients", "blocked_clients") == n,  # type: ignore[misc]
                     WAIT_S, f"{n} blocked clients")
    per_worker = len(roles)
    wait_for(lambda: info_field(control, "clients", "connected_clients") == 3 * per_worker,
             WAIT_S, f"{3 * per_worker} connected clients", details=lambda: control.call("CLIENT", "LIST").decode())

    loops = [GetLoop(clients[pid]["getter"], "steady", b"value") for pid in survivors]
    for loop in loops:
        loop.start()
    try:
        wait_for(lambda: all(loop.count > 0 or loop.errors for loop in loops), WAIT_S, "the GET loops to run")

        new = kill_and_wait_replacement(server, wpid, victim, before)

        # The killed worker's clients see their connection closed, and were sent nothing.
        for role, c in clients[victim.pid].items():
            assert c.is_closed(timeout=WAIT_S), f"the killed worker's {role} client is still open"
            assert c.buf == b"", f"the killed worker's {role} client got {c.buf!r}"

        # The writer forgot the dead worker's clients.
        survivors_blocked = [(pid, c) for pid, c in order if pid != victim.pid]
        wait_for(lambda: info_field(control, "clients", "blocked_clients") == len(survivors_blocked),
                 WAIT_S, f"blocked_clients to drop to {len(survivors_blocked)}",
                 details=lambda: f"blocked_clients={info_field(control, 'clients', 'blocked_clients')}")
        wait_for(lambda: info_field(control, "clients", "connected_clients") == 2 * per_worker,
                 WAIT_S, f"connected_clients to drop to {2 * per_worker}",
                 details=lambda: control.call("CLIENT", "LIST").decode())
        assert control.call("PUBSUB", "NUMSUB", "news") == b"*2\r\n$4\r\nnews\r\n:2\r\n"
        assert control.call("PUBSUB", "NUMPAT") == b":2\r\n"

        # No surviving client was answered or messaged by the kill.
        for pid in survivors:
            for role in ("sub", "psub", "blocked1", "blocked2"):
                got = clients[pid][role].read_available(0)
                assert got == b"", f"worker {pid}'s {role} client got {got!r} after the kill"

        # PUBLISH: counts the 2 surviving subscribers and 2 pattern subscribers; each gets it once.
        assert control.call("PUBLISH", "news", "hello") == b":4\r\n"
        for pid in survivors:
            sub, psub = clients[pid]["sub"], clients[pid]["psub"]
            assert sub.read_reply() == arr(b"message", b"news", b"hello")
            assert psub.read_reply() == arr(b"pmessage", pattern[pid], b"news", b"hello")
        for pid in survivors:
            for role in ("sub", "psub"):
                got = clients[pid][role].read_available(QUIET_S)
                assert got == b"", f"worker {pid}'s {role} client got more: {got!r}"

        # A push of 7 serves the 4 surviving blocked clients in the order they blocked.
        values = [f"j{i}".encode() for i in range(7)]
        assert control.call("RPUSH", "jobs", *values) == b":7\r\n"
        served = [c.read_reply() for _, c in survivors_blocked]
        assert served == [arr(b"jobs", v) for v in values[:len(survivors_blocked)]], \
            f"served in blocking order {[pid for pid, _ in survivors_blocked]}: {served}"
        rest = values[len(survivors_blocked):]
        assert control.call("LLEN", "jobs") == b":%d\r\n" % len(rest)
        assert control.call("LRANGE", "jobs", "0", "-1") == b"*%d\r\n" % len(rest) + bulks(*rest)
        wait_for(lambda: info_field(control, "clients", "blocked_clients") == 0, WAIT_S, "no blocked clients left")

        # The surviving clients all still work, and a new connection reaches the replacement.
        for pid in survivors:
            for role in ("blocked1", "blocked2", "control"):
                assert clients[pid][role].call("GET", "steady") == b"$5\r\nvalue\r\n"
            for role in ("sub", "psub"):
                assert clients[pid][role].call("PING") == arr(b"pong", b"")
        fresh = reach(server, wpid, new, opened)
        assert fresh.call("GET", "steady") == b"$5\r\nvalue\r\n"
        assert fresh.call("SUBSCRIBE", "news") == arr(b"subscribe", b"news", 1)
        assert control.call("PUBSUB", "NUMSUB", "news") == b"*2\r\n$4\r\nnews\r\n:3\r\n"
        assert control.call("PUBLISH", "news", "again") == b":5\r\n"
        assert fresh.read_reply() == arr(b"message", b"news", b"again")
    finally:
        for loop in loops:
            loop.finish()
    for pid, loop in zip(survivors, loops, strict=True):
        assert not loop.errors, f"the GET loop on surviving worker {pid} failed: {loop.errors}"
        assert loop.count > 0
    assert f"worker {victim.pid}" in server.log_path.read_text(errors="replace"), server.log_tail()


@pytest.mark.parametrize("kvred_workers", [2], indirect=True)
def test_killed_worker_mid_multi_changes_nothing(kvred_workers: ServerProcess, opened: list[RawClient]) -> None:
    server = kvred_workers
    wpid = writer_pid(server)
    before = workers(server, wpid)
    assert len(before) == 2, before
    by_worker = spread(server, before, 1, opened)
    victim, survivor = before
    tx, control = by_worker[victim.pid][0], by_worker[survivor.pid][0]

    assert control.call("SET", "k", "old") == b"+OK\r\n"
    assert control.call("RPUSH", "l", "x") == b":1\r\n"
    before_keys = control.call("DBSIZE")
    assert tx.call("MULTI") == b"+OK\r\n"
    queued = [("SET", "k", "new"), ("INCR", "counter"), ("DEL", "l"), ("RPUSH", "l", "y"),
              ("SET", "fresh", "1"), ("FLUSHALL",)]
    for cmd in queued:
        assert tx.call(*cmd) == b"+QUEUED\r\n", cmd

    kill_and_wait_replacement(server, wpid, victim, before)
    assert tx.is_closed(timeout=WAIT_S), "the killed worker's MULTI client is still open"
    assert tx.buf == b""
    wait_for(lambda: info_field(control, "clients", "connected_clients") == 1,
             WAIT_S, "the writer to forget the MULTI client", details=lambda: control.call("CLIENT", "LIST").decode())

    assert control.call("GET", "k") == b"$3\r\nold\r\n"
    assert control.call("LRANGE", "l", "0", "-1") == b"*1\r\n$1\r\nx\r\n"
    assert control.call("EXISTS", "counter", "fresh") == b":0\r\n"
    assert control.call("DBSIZE") == before_keys == b":2\r\n"
    # and the survivor still runs a transaction of its own
    assert control.call("MULTI") == b"+OK\r\n"
    assert control.call("INCR", "counter") == b"+QUEUED\r\n"
    assert control.call("EXEC") == b"*1\r\n:1\r\n"
