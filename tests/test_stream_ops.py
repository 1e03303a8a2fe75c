"""Streams in operation (issue 15), kvred against the real redis-server where it applies:

  * AOF interop both ways: redis-server loads kvred's AOF of a stream workload (entries,
    trimming, deletions, XSETID, consumer groups with pending entries, consumers, NOACK,
    XCLAIM, XAUTOCLAIM, a rewrite in the middle) into the same streams and groups, and
    kvred loads redis-server's; each side then rewrites and is killed, and still has them.
  * memory stays bounded under a steady `XADD ... MAXLEN ~ 1000` load;
  * consumers blocked in XREADGROUP on one worker and killed from another (CLIENT KILL,
    and the death of their worker process) are forgotten: the next entry goes to a live
    consumer and nothing is pending for the dead one.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from typing import Any

import psutil
import pytest
import redis
from aoftools import rewrite_and_wait
from conftest import ServerProcess, against_redis, answers_ping
from rawclient import RawClient, encode_command
from test_diff_blocking import wait_blocked
from test_durability import (
    REDIS_AOF_OPTIONS,
    Launcher,
    aof_path,
    assert_redis_server_keeps_kvred_aof,
    kill_all,
    launcher,  # noqa: F401  (the fixture)
    redis_aof_content,
    wait_exit_after,
)

STREAM_DBS = (0, 2)


def _client(server: ServerProcess, db: int = 0) -> redis.Redis:
    """redis-py with the replies as the server sent them (no response callbacks)."""
    r = redis.Redis(host="127.0.0.1", port=server.port, db=db, socket_timeout=30, protocol=2)
    r.response_callbacks.clear()
    return r


def stream_workload(server: ServerProcess, tag: str, db: int) -> None:
    """Every way a stream and its groups change, logged as each server logs them."""
    r = _client(server, db)
    try:
        s, t, e = f"{tag}:s", f"{tag}:t", f"{tag}:empty"
        for i in range(1, 301):
            r.execute_command("XADD", s, f"{i}-1", "n", str(i), "pad", "x" * (i % 40))
        r.execute_command("XDEL", s, "5-1", "6-1", "150-1")
        r.execute_command("XGROUP", "CREATE", s, "g1", "0")
        r.execute_command("XGROUP", "CREATE", s, "g2", "100-1", "ENTRIESREAD", "99")
        r.execute_command("XGROUP", "CREATE", s, "g3", "$")
        r.execute_command("XREADGROUP", "GROUP", "g1", "c1", "COUNT", "20", "STREAMS", s, ">")
        r.execute_command("XREADGROUP", "GROUP", "g1", "c2", "COUNT", "7", "STREAMS", s, ">")
        r.execute_command("XREADGROUP", "GROUP", "g1", "c3", "NOACK", "COUNT", "4", "STREAMS", s, ">")
        r.execute_command("XREADGROUP", "GROUP", "g2", "c1", "COUNT", "3", "STREAMS", s, ">")
        r.execute_command("XACK", s, "g1", "1-1", "2-1", "3-1", "26-1")
        r.execute_command("XCLAIM", s, "g1", "c4", "0", "7-1", "8-1", "RETRYCOUNT", "5")
        r.execute_command("XCLAIM", s, "g1", "c4", "0", "9-1", "JUSTID")
        r.execute_command("XAUTOCLAIM", s, "g1", "c5", "0", "10-1", "COUNT", "3")
        r.execute_command("XGROUP", "CREATECONSUMER", s, "g3", "idle")
        r.execute_command("XGROUP", "CREATECONSUMER", s, "g3", "gone")
        r.execute_command("XGROUP", "DELCONSUMER", s, "g3", "gone")
        r.execute_command("XGROUP", "SETID", s, "g3", "250-1", "ENTRIESREAD", "248")
        r.execute_command("XTRIM", s, "MINID", "4-1")
        for _ in range(250):
            r.execute_command("XADD", t, "MAXLEN", "~", "50", "*", "f", "v" * 10)
        r.execute_command("XTRIM", t, "MAXLEN", "=", "120")
        r.execute_command("XADD", t, "MINID", "~", "0-1", "*", "last", "1")
        r.execute_command("XGROUP", "CREATE", t, "g", "$")
        r.execute_command("XADD", t, "*", "after", "group")
        r.execute_command("XREADGROUP", "GROUP", "g", "c", "STREAMS", t, ">")
        r.execute_command("XADD", e, "1-1", "f", "v")
        r.execute_command("XDEL", e, "1-1")
        r.execute_command("XSETID", e, "9-9", "ENTRIESADDED", "20", "MAXDELETEDID", "5-5")
        r.execute_command("XGROUP", "CREATE", e, "g", "0", "ENTRIESREAD", "3")
        r.execute_command("XGROUP", "CREATE", f"{tag}:mk", "g", "$", "MKSTREAM")
    finally:
        r.close()


def stream_history(server: ServerProcess) -> None:
    stream_workload(server, "a", STREAM_DBS[0])
    rewrite_and_wait(server)
    stream_workload(server, "b", STREAM_DBS[1])
    r = _client(server, STREAM_DBS[0])
    try:  # on top of the rewritten streams
        r.execute_command("XADD", "a:s", "900-1", "n", "900")
        r.execute_command("XREADGROUP", "GROUP", "g1", "c9", "COUNT", "2", "STREAMS", "a:s", ">")
        r.execute_command("XACK", "a:s", "g1", "11-1")
    finally:
        r.close()


_TIME_FIELDS = {b"seen-time", b"active-time"}


def _timeless(value: Any) -> Any:
    """XINFO STREAM FULL without what depends on when it is asked (a consumer's seen-time
    is not logged, Redis sets it on load) or on how the entries are packed in nodes
    (radix-tree sizes: both servers repack on load)."""
    if isinstance(value, list):
        out: list[Any] = []
        skip = False
        for i, item in enumerate(value):
            if skip:
                skip = False
                continue
            if i % 2 == 0 and isinstance(item, bytes) and (item in _TIME_FIELDS or item.startswith(b"radix-tree")):
                skip = True
                continue
            out.append(_timeless(item))
        return out
    return value


def dump_streams(server: ServerProcess) -> dict[tuple[int, bytes], Any]:
    out: dict[tuple[int, bytes], Any] = {}
    for db in STREAM_DBS:
        r = _client(server, db)
        try:
            for key in sorted(r.execute_command("KEYS", "*")):
                assert r.execute_command("TYPE", key) == b"stream", key
                full = r.execute_command("XINFO", "STREAM", key, "FULL", "COUNT", "0")
                pending = [[entry[0], entry[1], entry[3]] for group in r.execute_command("XINFO", "GROUPS", key)
                           for entry in r.execute_command("XPENDING", key, group[1], "-", "+", "1000")]
                out[(db, key)] = (_timeless(full), r.execute_command("XINFO", "GROUPS", key), pending)
        finally:
            r.close()
    return out


def assert_same_streams(expected: dict[tuple[int, bytes], Any], got: dict[tuple[int, bytes], Any], what: str) -> None:
    assert sorted(got) == sorted(expected), what
    for key in expected:
        assert got[key] == expected[key], f"{what}: {key}: {_first_difference(expected[key], got[key])}"


def _first_difference(want: Any, have: Any, path: str = "") -> str:
    if isinstance(want, (list, tuple)) and isinstance(have, (list, tuple)):
        for i, (a, b) in enumerate(zip(want, have, strict=False)):
            if a != b:
                return _first_difference(a, b, f"{path}[{i}]")
        return f"{path}: lengths {len(want)} != {len(have)}"
    return f"{path}: expected {want!r}, got {have!r}"


# _REPLAYED: the reference is the source server's state after it restarted from its own AOF,
# not before: Redis's AOF is not exact for a group's entries-read after XREADGROUP over
# deleted entries (it becomes unknown, but the XCLAIMs that log the delivery do not carry
# it, so a replay keeps the ENTRIESREAD the group was created with). kvred logs what Redis
# logs, so both servers replay to that same state; this test holds them to it.


@pytest.mark.skipif(against_redis(), reason="kvred's AOF read by redis-server")
def test_redis_server_loads_kvred_streams(launcher: Launcher) -> None:  # noqa: F811
    data = launcher.data_dir()
    server = launcher.kvred(data)
    stream_history(server)
    assert wait_exit_after(server, signal.SIGTERM) == 0
    server = launcher.kvred(data)  # the state the AOF holds (see _REPLAYED)
    expected = dump_streams(server)
    assert len(expected) == 8 and expected[(0, b"a:s")][1], sorted(expected)
    assert wait_exit_after(server, signal.SIGTERM) == 0
    assert_redis_server_keeps_kvred_aof(launcher, data, expected, dump_streams, assert_same_streams, "streams")


@pytest.mark.skipif(against_redis(), reason="redis-server's AOF read by kvred")
def test_kvred_loads_redis_server_streams(launcher: Launcher) -> None:  # noqa: F811
    redis_dir = launcher.data_dir("redis")
    real = launcher.redis(redis_dir, *REDIS_AOF_OPTIONS)
    stream_history(real)
    assert wait_exit_after(real, signal.SIGTERM) == 0
    real = launcher.redis(redis_dir, *REDIS_AOF_OPTIONS)  # the state the AOF holds (see _REPLAYED)
    expected = dump_streams(real)
    assert len(expected) == 8, sorted(expected)
    assert wait_exit_after(real, signal.SIGTERM) == 0

    data = launcher.data_dir()
    aof_path(data).write_bytes(redis_aof_content(redis_dir))
    server = launcher.kvred(data)
    assert_same_streams(expected, dump_streams(server), "kvred loading redis-server's AOF")
    rewrite_and_wait(server)
    kill_all(server)
    server = launcher.kvred(data)
    assert_same_streams(expected, dump_streams(server), "kvred after its own rewrite of redis-server's streams")


# --- memory under a steady capped load -----------------------------------------------------------

STEADY_ENTRIES = 300_000
STEADY_BATCH = 2_000
STEADY_GROWTH_BOUND_BYTES = 8 * 2**20
_ENTRY_ID = re.compile(rb"\*2\r\n\$\d+\r\n(\d+-\d+)\r\n")


def _tree_rss(server: ServerProcess) -> int:
    root = psutil.Process(server.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


@pytest.mark.skipif(against_redis(), reason="kvred's process tree")
def test_capped_stream_memory_is_bounded(launcher: Launcher) -> None:  # noqa: F811
    """300,000 `XADD s MAXLEN ~ 1000 * ...` (with a consumer group reading and acking as
    it goes): the stream stays near 1000 entries and the server's RSS stops growing; what
    it adds over the second half of the load is noise, not a leak."""
    server = launcher.kvred(launcher.data_dir(), fsync="everysec")
    samples: list[int] = []
    with RawClient(server.port, timeout=30) as c:
        assert c.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM") == b"+OK\r\n"
        batch = encode_command("XADD", "s", "MAXLEN", "~", "1000", "*", "f", "v" * 32) * STEADY_BATCH
        for done in range(0, STEADY_ENTRIES, STEADY_BATCH):
            c.send(batch)
            for _ in range(STEADY_BATCH):
                assert c.read_reply().startswith(b"$")
            delivered = c.call("XREADGROUP", "GROUP", "g", "c", "COUNT", str(STEADY_BATCH), "STREAMS", "s", ">")
            ids = _ENTRY_ID.findall(delivered)
            assert ids, delivered[:80]
            assert c.call("XACK", "s", "g", *ids) == b":%d\r\n" % len(ids)
            if done % (STEADY_ENTRIES // 10) == 0:
                samples.append(_tree_rss(server))
        length = int(c.call("XLEN", "s")[1:-2])
        assert 1000 <= length <= 1100, length
        assert c.call("XPENDING", "s", "g").startswith(b"*4\r\n:0\r\n")  # every entry delivered was acked
    samples.append(_tree_rss(server))
    growth = samples[-1] - samples[len(samples) // 2]
    print("RSS MiB:", [round(s / 2**20, 1) for s in samples])
    assert growth < STEADY_GROWTH_BOUND_BYTES, [round(s / 2**20, 1) for s in samples]


# --- blocked consumers killed --------------------------------------------------------------------


@pytest.mark.skipif(against_redis(), reason="kvred's workers")
def test_killed_blocked_consumers_are_forgotten(launcher: Launcher) -> None:  # noqa: F811
    """Consumers waiting in XREADGROUP BLOCK, spread over 3 workers: one is CLIENT KILLed
    from another connection, another loses its worker process (kill -9; the supervisor
    starts a new one). The next entries go to the live consumer only, and nothing is
    pending for the dead ones."""
    server = launcher.kvred(launcher.data_dir(), workers=3)
    consumers: dict[str, RawClient] = {}
    pids: dict[str, int] = {}
    for name in ("killed", "orphan", "live"):
        for _attempt in range(50):  # until each consumer sits on a worker of its own
            c = RawClient(server.port, timeout=10)
            pid = _serving_pid(server, c)
            if pid not in pids.values():
                break
            c.close()
        consumers[name], pids[name] = c, pid
    assert len(set(pids.values())) == 3, pids
    while True:  # the control connection must outlive the orphan's worker
        control = RawClient(server.port, timeout=10)
        if _serving_pid(server, control) != pids["orphan"]:
            break
        control.close()
    assert control.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM") == b"+OK\r\n"
    ids = {name: int(c.call("CLIENT", "ID")[1:-2]) for name, c in consumers.items()}
    for name, c in consumers.items():
        c.send(encode_command("XREADGROUP", "GROUP", "g", name, "BLOCK", "0", "STREAMS", "s", ">"))
    wait_blocked(server.port, 3)
    assert control.call("CLIENT", "KILL", "ID", str(ids["killed"])) == b":1\r\n"
    orphan_worker = psutil.Process(pids["orphan"])
    orphan_worker.kill()
    _gone, alive = psutil.wait_procs([orphan_worker], timeout=10)  # its listening socket closed with it
    assert not alive
    wait_blocked(server.port, 1)
    assert control.call("XADD", "s", "1-1", "f", "v").endswith(b"1-1\r\n")
    served = consumers["live"].read_reply()
    assert b"1-1" in served, served
    pending = control.call("XPENDING", "s", "g", "-", "+", "10")
    assert pending.count(b"1-1") == 1 and b"live" in pending and b"killed" not in pending and b"orphan" not in pending
    consumers_reply = control.call("XINFO", "CONSUMERS", "s", "g")
    assert b"live" in consumers_reply and b"killed" not in consumers_reply and b"orphan" not in consumers_reply
    deadline = time.monotonic() + 30
    while not answers_ping(server.port, 5):  # the supervisor replaced the worker: the port serves again
        assert time.monotonic() < deadline, "the server stopped answering"
        time.sleep(0.05)
    for c in [control, *consumers.values()]:
        c.close()


def _serving_pid(server: ServerProcess, c: RawClient) -> int:
    """The worker process that holds the connection of `c` (by its local port)."""
    local_port = c.sock.getsockname()[1]
    c.call("PING")
    root = psutil.Process(server.pid)
    for p in root.children(recursive=True):
        for conn in p.net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port == local_port and conn.laddr.port == server.port:
                return p.pid
    raise AssertionError(f"no worker holds the connection from port {local_port}")


# --- kill -9 rounds with a consumer group ------------------------------------------------------

ROUNDS = 3
CONSUMERS = 2


class GroupTraffic:
    """A producer XADDs, CONSUMERS consumers XREADGROUP and XACK every other entry, until the
    crash; each records what the server acknowledged to it."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.added: list[bytes] = []  # IDs XADD returned
        self.delivered: list[list[bytes]] = [[] for _ in range(CONSUMERS)]  # IDs XREADGROUP returned
        self.acked: list[set[bytes]] = [set() for _ in range(CONSUMERS)]  # IDs XACK confirmed
        self.acking: list[list[bytes]] = [[] for _ in range(CONSUMERS)]  # an XACK the crash may have cut
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.started = threading.Barrier(CONSUMERS + 2)
        self.threads = [threading.Thread(target=self._produce, daemon=True)]
        self.threads += [threading.Thread(target=self._consume, args=(i,), daemon=True) for i in range(CONSUMERS)]

    def _guard(self, body: Any) -> None:
        try:
            self.started.wait()
            while not self.stop.is_set():
                body()
        except (redis.ConnectionError, redis.TimeoutError):
            pass  # the crash
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(e))

    def _produce(self) -> None:
        r = _client(self.server)
        self._guard(lambda: self.added.append(r.execute_command("XADD", "s", "*", "n", str(len(self.added)))))

    def _consume(self, i: int) -> None:
        r = _client(self.server)

        def step() -> None:
            reply = r.execute_command("XREADGROUP", "GROUP", "g", f"c{i}", "COUNT", "5", "BLOCK", "100",
                                      "STREAMS", "s", ">")
            ids = [sid for sid, _fields in reply[0][1]] if reply else []
            self.delivered[i] += ids
            to_ack = ids[::2]
            if to_ack:
                self.acking[i] = to_ack
                assert r.execute_command("XACK", "s", "g", *to_ack) == len(to_ack)
                self.acked[i].update(to_ack)
                self.acking[i] = []
        self._guard(step)

    def __enter__(self) -> GroupTraffic:
        for t in self.threads:
            t.start()
        self.started.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(20)


@pytest.mark.skipif(against_redis(), reason="kvred's AOF and process tree")
def test_kill9_rounds_with_a_consumer_group(launcher: Launcher) -> None:  # noqa: F811
    """Rounds of kill -9 of the whole tree while a producer and two consumers run. After
    every restart: every acknowledged XADD is there; no entry was ever delivered twice; an
    entry a consumer got is acknowledged (if XACK said so) or pending for that consumer."""
    data = launcher.data_dir()
    server = launcher.kvred(data, workers=2)
    r = _client(server)
    r.execute_command("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    everything_added: set[bytes] = set()
    ever_delivered: dict[bytes, int] = {}
    ever_acked: set[bytes] = set()
    maybe_acked: set[bytes] = set()  # an XACK cut by the crash: acknowledged or pending, either is right
    for rnd in range(ROUNDS):
        with GroupTraffic(server) as traffic:
            deadline = time.monotonic() + 30
            while (len(traffic.added) < 200 or min(map(len, traffic.delivered)) < 20) and not traffic.errors:
                assert time.monotonic() < deadline, (len(traffic.added), list(map(len, traffic.delivered)))
                time.sleep(0.005)  # a poll of the condition, not a wait for it
            kill_all(server)
        assert not traffic.errors, traffic.errors
        server.stop()
        server = launcher.kvred(data, workers=2)
        r = _client(server)
        present = {sid for sid, _fields in r.execute_command("XRANGE", "s", "-", "+")}
        everything_added.update(traffic.added)
        assert everything_added <= present, f"round {rnd}: lost {sorted(everything_added - present)[:5]}"
        for i, ids in enumerate(traffic.delivered):
            for sid in ids:
                assert sid not in ever_delivered, f"round {rnd}: {sid!r} delivered to c{ever_delivered[sid]} and c{i}"
                ever_delivered[sid] = i
            ever_acked.update(traffic.acked[i])
            maybe_acked.update(traffic.acking[i])
        pending = {entry[0]: entry[1] for entry in r.execute_command("XPENDING", "s", "g", "-", "+", "100000")}
        for sid, i in ever_delivered.items():
            if sid in ever_acked:
                assert sid not in pending, f"round {rnd}: {sid!r} acknowledged but pending"
            elif sid in maybe_acked and sid not in pending:
                ever_acked.add(sid)  # that XACK made it before the crash
            else:
                assert pending.get(sid) == f"c{i}".encode(), f"round {rnd}: {sid!r} of c{i}: {pending.get(sid)!r}"
        assert len(ever_delivered) >= 20 * CONSUMERS * (rnd + 1)
    r.close()
