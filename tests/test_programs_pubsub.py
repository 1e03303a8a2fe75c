"""Programs that use pub/sub and blocking pops, through their own libraries, against
kvred (two workers) and a real redis-server 7.0 (which proves each test itself right).

  * redis-py's `pubsub()`: SUBSCRIBE/PSUBSCRIBE with `get_message` and `listen`, the
    receiver count of PUBLISH, `pubsub.ping()` while subscribed, UNSUBSCRIBE/PUNSUBSCRIBE,
    with subscribers on both kvred workers; `run_in_thread` with handlers; the same over
    `redis.asyncio`; and over RESP3 (`protocol=3`, push frames).
  * rq: jobs enqueued and run by a `SimpleWorker` in burst mode in this process (the job
    functions live in tests/rqjobs.py), one that returns and one that raises.
  * celery with the redis broker and result backend: a `celery worker --pool=solo`
    subprocess (the app lives in tests/celeryapp.py), `.delay(...).get()`.
  * node's ioredis (tests/node/, `npm ci` on first use): subscriber mode (a message and a
    pmessage published from Python) and a BRPOP served by an LPUSH from Python.
  * redis-cli: `--csv psubscribe` receiving a PUBLISH, and `monitor` seeing the commands
    of clients on both workers.

Every subprocess is stopped by its PID (SIGTERM, then SIGKILL after a timeout); every
wait polls a condition with a deadline. Without redis-server, node/npm, celery or rq the
tests are skipped, or fail when the environment variable CI is set.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest
import redis
import redis.asyncio
from conftest import ServerProcess, against_redis, require_tool
from test_programs import _worker_of_connection, require_module, wait_until
from test_programs import test_servers_survived as check_servers_survived

TESTS_DIR = Path(__file__).resolve().parent
NODE_DIR = TESTS_DIR / "node"
KVRED_WORKERS = 2
MAX_SPREAD_ATTEMPTS = 64  # connections opened before giving up on reaching every worker
MESSAGE_TIMEOUT_S = 5.0
PROCESS_STOP_TIMEOUT_S = 10.0
NPM_TIMEOUT_S = 180.0
CELERY_RESULT_TIMEOUT_S = 20.0
CELERY_DB = 4
RQ_DB = 5

T = TypeVar("T")


# ---------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def servers(kvred_factory: Callable[..., ServerProcess], redis_server: ServerProcess) -> dict[str, ServerProcess]:
    """kvred with two workers and redis-server, once for the module."""
    return {"kvred": kvred_factory(workers=KVRED_WORKERS), "redis": redis_server}


@pytest.fixture(params=["kvred", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(servers: dict[str, ServerProcess], kind: str) -> ServerProcess:
    return servers[kind]


def client_of(server: ServerProcess, db: int = 0, **kwargs: Any) -> redis.Redis:
    return redis.Redis(port=server.port, db=db, socket_timeout=10, **kwargs)


# ------------------------------------------------- connections on every worker


def worker_of_port(server: ServerProcess, client_port: int) -> int | None:
    """PID of the kvred process holding the accepted end of the client's connection."""
    return _worker_of_connection(server).get(client_port)


def on_every_worker(server: ServerProcess, kind: str, open_one: Callable[[], T],
                    port_of: Callable[[T], int], close: Callable[[T], None]) -> list[T]:
    """Objects made by `open_one` (which must have done a round trip on its connection):
    on kvred one per worker, opening and closing extra ones until every worker has one
    (SO_REUSEPORT spreads connections by a hash); on redis-server two."""
    if kind != "kvred" or against_redis():
        return [open_one() for _ in range(KVRED_WORKERS)]
    chosen: dict[int | None, T] = {}
    extra: list[T] = []
    try:
        for _ in range(MAX_SPREAD_ATTEMPTS):
            obj = open_one()
            pid = worker_of_port(server, port_of(obj))
            if pid is None or pid in chosen:
                extra.append(obj)
            else:
                chosen[pid] = obj
            if len(chosen) >= KVRED_WORKERS:
                return list(chosen.values())
        pytest.fail(f"{MAX_SPREAD_ATTEMPTS} connections did not reach {KVRED_WORKERS} workers")
    finally:
        for obj in extra:
            close(obj)


def sock_port(sock: Any) -> int:
    assert sock is not None
    return int(sock.getsockname()[1])


def single_connection_client(server: ServerProcess, **kwargs: Any) -> redis.Redis:
    client = redis.Redis(port=server.port, socket_timeout=10, single_connection_client=True, **kwargs)
    assert client.ping() is True
    return client


def clients_on_every_worker(server: ServerProcess, kind: str, **kwargs: Any) -> list[redis.Redis]:
    return on_every_worker(server, kind, lambda: single_connection_client(server, **kwargs),
                           lambda c: sock_port(c.connection._sock), lambda c: c.close())


# ---------------------------------------------------------------- helpers


def next_message(pubsub: Any, timeout: float = MESSAGE_TIMEOUT_S) -> dict[str, Any]:
    """The next message of a sync PubSub (subscribe confirmations included)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"no pub/sub message within {timeout} s")
        message = pubsub.get_message(timeout=min(left, 0.5))
        if message is not None:
            return dict(message)


async def anext_message(pubsub: Any, timeout: float = MESSAGE_TIMEOUT_S) -> dict[str, Any]:
    """The next message of an asyncio PubSub (subscribe confirmations included)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"no pub/sub message within {timeout} s")
        message = await pubsub.get_message(timeout=min(left, 0.5))
        if message is not None:
            return dict(message)


def msg(type_: str, channel: str | bytes | None, data: Any, pattern: str | None = None) -> dict[str, Any]:
    """A message as redis-py returns it (bytes, decode_responses off)."""
    def b(x: str | bytes | None) -> bytes | None:
        return x.encode() if isinstance(x, str) else x
    return {"type": type_, "pattern": b(pattern), "channel": b(channel), "data": b(data) if isinstance(data, str) else data}


def numsub(client: redis.Redis, channel: str) -> int:
    return int(dict(client.pubsub_numsub(channel))[channel.encode()])


def blocked_clients(client: redis.Redis) -> int:
    return int(client.info("clients")["blocked_clients"])


def stop_process(proc: subprocess.Popen[Any], timeout: float = PROCESS_STOP_TIMEOUT_S) -> int:
    """SIGTERM by PID, wait up to `timeout`, then SIGKILL; returns the exit code."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout)
    return int(proc.returncode)


class LineReader:
    """Reads a subprocess's output lines in a thread; `expect` waits for one with a deadline."""

    def __init__(self, stream: IO[bytes], name: str):
        self.name = name
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), name=f"read-{name}", daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        try:
            for raw in iter(stream.readline, b""):
                self._queue.put(raw.decode(errors="replace").rstrip("\r\n"))
        finally:
            self._queue.put(None)

    def expect(self, predicate: Callable[[str], bool], what: str, timeout: float = MESSAGE_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"{self.name}: no line {what} within {timeout} s; lines so far: {self.lines}")
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self._queue.put(None)  # stay at EOF
                pytest.fail(f"{self.name}: output ended before a line {what}; lines: {self.lines}")
            self.lines.append(line)
            if predicate(line):
                return line


# ---------------------------------------------------------------- redis-py, sync


def test_redis_py_pubsub(server: ServerProcess, kind: str) -> None:
    """Subscribers on every worker get each PUBLISH (message, then pmessage), in order."""
    channel, pattern = f"news.sync.{kind}", "news.sync.*"
    publisher = client_of(server)
    observer = client_of(server)

    def open_subscriber() -> Any:
        p = client_of(server).pubsub()
        p.subscribe(channel)
        assert next_message(p) == msg("subscribe", channel, 1)
        return p

    subscribers = on_every_worker(server, kind, open_subscriber,
                                  lambda p: sock_port(p.connection._sock), lambda p: p.close())
    try:
        for p in subscribers:
            p.psubscribe(pattern)
            assert next_message(p) == msg("psubscribe", pattern, 2)
            assert p.subscribed
        n = len(subscribers)
        wait_until(lambda: numsub(observer, channel) == n, "PUBSUB NUMSUB counting every subscriber")
        assert channel.encode() in observer.pubsub_channels("news.sync.*")
        assert observer.pubsub_numpat() >= 1  # distinct patterns, not subscriptions

        # Each subscriber matches twice: by channel and by pattern. PUBLISH counts both.
        for i in range(5):
            assert publisher.publish(channel, f"m{i}") == 2 * n
        for p in subscribers:
            for i in range(5):
                assert next_message(p) == msg("message", channel, f"m{i}")
                assert next_message(p) == msg("pmessage", channel, f"m{i}", pattern)

        # A channel only the pattern matches, a binary payload; read with listen().
        other = "news.sync.other"
        payload = bytes(range(256)) * 4
        assert publisher.publish(other, payload) == n
        assert publisher.publish("elsewhere", "nobody") == 0
        for p in subscribers:
            assert dict(next(p.listen())) == msg("pmessage", other, payload, pattern)

        # PING while subscribed (RESP2: the ["pong", arg] array, which redis-py reports as such).
        for p in subscribers:
            p.ping()
            assert next_message(p) == msg("pong", None, b"")
            p.ping("hello")
            assert next_message(p) == msg("pong", None, b"hello")

        # UNSUBSCRIBE / PUNSUBSCRIBE: the counts go down to 0 and nothing more arrives.
        for p in subscribers:
            p.unsubscribe(channel)
            assert next_message(p) == msg("unsubscribe", channel, 1)
            p.punsubscribe()
            assert next_message(p) == msg("punsubscribe", pattern, 0)
            assert not p.subscribed
        wait_until(lambda: numsub(observer, channel) == 0, "PUBSUB NUMSUB back to 0")
        assert publisher.publish(channel, "after") == 0
        for p in subscribers:
            assert p.get_message(timeout=0.05) is None
            # Out of subscribed mode the connection takes ordinary commands again.
            assert p.connection is not None
            p.connection.send_command("ECHO", "plain")
            assert p.connection.read_response() == b"plain"
    finally:
        for p in subscribers:
            p.close()
        publisher.close()
        observer.close()


def test_redis_py_run_in_thread(server: ServerProcess, kind: str) -> None:
    """`run_in_thread` with handlers for a channel and a pattern; the thread stops cleanly."""
    channel, pattern = f"thread.{kind}.chan", f"thread.{kind}.*"
    client = client_of(server)
    publishers = clients_on_every_worker(server, kind)
    got: queue.Queue[dict[str, Any]] = queue.Queue()
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(**{channel: got.put})
    pubsub.psubscribe(**{pattern: got.put})
    worker = pubsub.run_in_thread(sleep_time=0.05, daemon=True)
    try:
        wait_until(lambda: numsub(client, channel) == 1, "the thread's SUBSCRIBE taking effect")
        wait_until(lambda: client.pubsub_numpat() >= 1, "the thread's PSUBSCRIBE taking effect")
        sent = []
        for i in range(20):
            publisher = publishers[i % len(publishers)]
            assert publisher.publish(channel, f"t{i}") == 2
            sent.append(f"t{i}".encode())
        received: dict[str, list[bytes]] = {"message": [], "pmessage": []}
        deadline = time.monotonic() + MESSAGE_TIMEOUT_S
        while sum(len(v) for v in received.values()) < 2 * len(sent):
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"run_in_thread handlers got {received} of {sent}")
            try:
                message = got.get(timeout=left)
            except queue.Empty:
                continue
            assert message["channel"] == channel.encode()
            received[message["type"]].append(message["data"])
        # Two publishers on two connections, each waited for its reply: one global order.
        assert received["message"] == sent and received["pmessage"] == sent
    finally:
        worker.stop()
        worker.join(PROCESS_STOP_TIMEOUT_S)
        assert not worker.is_alive(), "run_in_thread's thread did not stop"
        pubsub.close()
        client.close()
        for publisher in publishers:
            publisher.close()


# ---------------------------------------------------------------- redis-py, asyncio


async def _asyncio_scenario(port: int, kind: str) -> None:
    channel, pattern = f"aio.{kind}.chan", f"aio.{kind}.*"
    client = redis.asyncio.Redis(port=port, socket_timeout=10)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(channel)
        assert await anext_message(pubsub) == msg("subscribe", channel, 1)
        await pubsub.psubscribe(pattern)
        assert await anext_message(pubsub) == msg("psubscribe", pattern, 2)
        assert dict(await client.pubsub_numsub(channel))[channel.encode()] == 1
        assert await client.publish(channel, "one") == 2
        assert await anext_message(pubsub) == msg("message", channel, "one")
        assert await anext_message(pubsub) == msg("pmessage", channel, "one", pattern)

        # listen() as an async iterator, while a task publishes.
        async def publish_later() -> None:
            for i in range(3):
                assert await client.publish(f"aio.{kind}.x", f"x{i}") == 1

        task = asyncio.create_task(publish_later())
        seen: list[bytes] = []
        async with asyncio.timeout(MESSAGE_TIMEOUT_S):
            async for message in pubsub.listen():
                assert message["type"] == "pmessage" and message["pattern"] == pattern.encode()
                seen.append(message["data"])
                if len(seen) == 3:
                    break
        await task
        assert seen == [b"x0", b"x1", b"x2"]

        await pubsub.ping()
        assert await anext_message(pubsub) == msg("pong", None, b"")
        await pubsub.unsubscribe()
        assert await anext_message(pubsub) == msg("unsubscribe", channel, 1)
        await pubsub.punsubscribe()
        assert await anext_message(pubsub) == msg("punsubscribe", pattern, 0)
        assert await client.publish(channel, "gone") == 0
    finally:
        await pubsub.aclose()
        await client.aclose()


def test_redis_py_asyncio_pubsub(server: ServerProcess, kind: str) -> None:
    asyncio.run(_asyncio_scenario(server.port, kind))


# ---------------------------------------------------------------- redis-py, RESP3


def test_redis_py_resp3_pubsub(server: ServerProcess, kind: str) -> None:
    """protocol=3: subscribe confirmations and messages are push frames; PING answers PONG."""
    channel, pattern = f"resp3.{kind}.chan", f"resp3.{kind}.*"
    publishers = clients_on_every_worker(server, kind, protocol=3)
    client = client_of(server, protocol=3)
    pubsub = client.pubsub()
    try:
        pubsub.subscribe(channel)
        assert next_message(pubsub) == msg("subscribe", channel, 1)
        pubsub.psubscribe(pattern)
        assert next_message(pubsub) == msg("psubscribe", pattern, 2)
        assert pubsub.connection is not None and pubsub.connection.protocol in (3, "3")
        for i, publisher in enumerate(publishers):
            assert publisher.publish(channel, f"r{i}") == 2
            assert next_message(pubsub) == msg("message", channel, f"r{i}")
            assert next_message(pubsub) == msg("pmessage", channel, f"r{i}", pattern)
        pubsub.ping()
        assert next_message(pubsub) == msg("pong", None, b"")
        pubsub.ping("three")
        assert next_message(pubsub) == msg("pong", None, b"three")
        pubsub.unsubscribe(channel)
        assert next_message(pubsub) == msg("unsubscribe", channel, 1)
        pubsub.punsubscribe(pattern)
        assert next_message(pubsub) == msg("punsubscribe", pattern, 0)
        assert publishers[0].publish(channel, "gone") == 0
    finally:
        pubsub.close()
        client.close()
        for publisher in publishers:
            publisher.close()


# ---------------------------------------------------------------- rq


def test_rq_simple_worker(server: ServerProcess, kind: str) -> None:
    rq = require_module("rq")
    import rqjobs

    conn = client_of(server, db=RQ_DB)
    conn.flushdb()
    try:
        q = rq.Queue(f"kvred-test-{kind}", connection=conn)
        ok = q.enqueue(rqjobs.add, 2, 3)
        bad = q.enqueue(rqjobs.fail, "boom")
        assert q.count == 2
        assert ok.get_status() == rq.job.JobStatus.QUEUED
        worker = rq.SimpleWorker([q], connection=conn)
        assert worker.work(burst=True) is True
        assert q.count == 0
        ok.refresh()
        bad.refresh()
        assert ok.get_status() == rq.job.JobStatus.FINISHED, ok.get_status()
        assert ok.return_value() == 5
        assert bad.get_status() == rq.job.JobStatus.FAILED, bad.get_status()
        result = bad.latest_result()
        assert result is not None and "ValueError: boom" in (result.exc_string or "")
        assert ok.id in q.finished_job_registry.get_job_ids()
        assert bad.id in q.failed_job_registry.get_job_ids()
        # A job fetched back by id from the server (a fresh Job object, not a cached one).
        again = rq.job.Job.fetch(ok.id, connection=conn)
        assert again.return_value() == 5 and again.func_name == "rqjobs.add"
    finally:
        conn.flushdb()
        conn.close()


def test_rq_waits_for_a_result(server: ServerProcess, kind: str) -> None:
    """`job.latest_result(timeout=...)` waits in XREAD BLOCK on the job's result stream
    until the worker XADDs the result (rq 2+): a thread waits before the job runs."""
    rq = require_module("rq")
    import rqjobs

    conn = client_of(server, db=RQ_DB)
    conn.flushdb()
    try:
        q = rq.Queue(f"kvred-test-wait-{kind}", connection=conn)
        job = q.enqueue(rqjobs.add, 20, 22)
        got: queue.Queue[Any] = queue.Queue()
        waiter_conn = client_of(server, db=RQ_DB)

        def wait() -> None:
            try:
                got.put(rq.job.Job.fetch(job.id, connection=waiter_conn).latest_result(timeout=30))
            except Exception as e:  # reported to the test thread
                got.put(e)

        thread = threading.Thread(target=wait, daemon=True)
        thread.start()
        wait_until(lambda: any(b"cmd=xread" in line for line in conn.execute_command("CLIENT", "LIST").split(b"\n")),
                   "the waiter never blocked in XREAD")
        assert got.empty()
        assert rq.SimpleWorker([q], connection=conn).work(burst=True) is True
        result = got.get(timeout=20)
        thread.join(timeout=5)
        waiter_conn.close()
        assert not isinstance(result, Exception), result
        assert result is not None and result.type == result.Type.SUCCESSFUL and result.return_value == 42
        assert conn.xlen(f"rq:results:{job.id}") == 1
    finally:
        conn.flushdb()
        conn.close()


# ---------------------------------------------------------------- celery


def test_celery_worker(server: ServerProcess, kind: str, tmp_path: Path) -> None:
    """A real `celery worker --pool=solo` on the server as broker and result backend."""
    require_module("celery")
    import celeryapp

    url = f"redis://127.0.0.1:{server.port}/{CELERY_DB}"
    raw = client_of(server, db=CELERY_DB)
    raw.flushdb()
    env = dict(os.environ)
    env[celeryapp.URL_ENV] = url
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS_DIR), env.get("PYTHONPATH", "")) if p)
    log_path = tmp_path / "celery-worker.log"
    argv = [sys.executable, "-m", "celery", "-A", "celeryapp", "worker", "--pool=solo", "--concurrency=1",
            "--loglevel=INFO", "--hostname", f"kvred-test-{kind}@%h"]
    app = celeryapp.make_app(url)
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(argv, cwd=TESTS_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)

    def log_text() -> str:
        return log_path.read_text(errors="replace")[-6000:]

    try:
        result = app.tasks["celeryapp.add"].delay(2, 3)
        try:
            assert result.get(timeout=CELERY_RESULT_TIMEOUT_S) == 5
        except Exception as exc:
            pytest.fail(f"celery task: {type(exc).__name__}: {exc}; worker exit code {worker.poll()}\n"
                        f"--- worker log ---\n{log_text()}")
        assert result.status == "SUCCESS"
        failing = app.tasks["celeryapp.fail"].delay("boom")
        with pytest.raises(ValueError, match="boom"):
            failing.get(timeout=CELERY_RESULT_TIMEOUT_S)
        assert failing.status == "FAILURE"
        assert worker.poll() is None, f"the worker exited\n{log_text()}"
        assert "unknown command" not in log_text().lower(), log_text()
    finally:
        code = stop_process(worker)
        app.close()
        raw.flushdb()
        raw.close()
    # SIGTERM is celery's warm shutdown: the worker finishes and exits 0.
    assert code == 0, f"celery worker exit code {code}\n{log_text()}"


# ---------------------------------------------------------------- node ioredis


@pytest.fixture(scope="module")
def ioredis_dir() -> Path:
    """tests/node with its node_modules (npm ci from package-lock.json on first use)."""
    require_tool("node")
    npm = require_tool("npm")
    if not (NODE_DIR / "node_modules" / "ioredis" / "package.json").exists():
        out = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True,
                             text=True, timeout=NPM_TIMEOUT_S, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            pytest.fail(f"npm ci in {NODE_DIR} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return NODE_DIR


def test_ioredis_subscriber_and_brpop(ioredis_dir: Path, server: ServerProcess, kind: str) -> None:
    node = require_tool("node")
    channel, pattern, key = f"io.{kind}.chan", f"io.{kind}.*", f"io:{kind}:list"
    r = client_of(server)
    r.delete(key)
    proc = subprocess.Popen([node, "pubsub.js", str(server.port), channel, pattern, key], cwd=ioredis_dir,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    assert proc.stdout is not None
    out = LineReader(proc.stdout, "node pubsub.js")

    def event(name: str) -> dict[str, Any]:
        def is_it(line: str) -> bool:
            try:
                obj = json.loads(line)
            except ValueError:
                return False
            if isinstance(obj, dict) and obj.get("event") == "error":
                pytest.fail(f"ioredis: {obj}; output: {out.lines}")
            return isinstance(obj, dict) and obj.get("event") == name
        return dict(json.loads(out.expect(is_it, f"with event {name!r}", timeout=15.0)))

    try:
        ready = event("ready")
        assert ready == {"event": "ready", "count": 1, "pcount": 2, "refused": True}
        wait_until(lambda: numsub(r, channel) == 1, "ioredis's SUBSCRIBE taking effect")
        assert r.publish(channel, "from python") == 2
        assert event("message") == {"event": "message", "channel": channel, "message": "from python"}
        assert event("pmessage") == {"event": "pmessage", "pattern": pattern, "channel": channel,
                                     "message": "from python"}
        # The BRPOP must be blocked before the LPUSH serves it.
        wait_until(lambda: blocked_clients(r) >= 1, "ioredis's BRPOP blocking")
        assert r.lpush(key, "job-1") == 1
        assert event("brpop") == {"event": "brpop", "reply": [key, "job-1"]}
        assert proc.wait(PROCESS_STOP_TIMEOUT_S) == 0, out.lines
        assert r.exists(key) == 0
    finally:
        stop_process(proc)
        r.close()


# ---------------------------------------------------------------- redis-cli


def test_redis_cli_csv_psubscribe(server: ServerProcess, kind: str) -> None:
    cli = require_tool("redis-cli")
    pattern = f"news.{kind}.*"
    proc = subprocess.Popen([cli, "-p", str(server.port), "--csv", "psubscribe", pattern],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    assert proc.stdout is not None
    out = LineReader(proc.stdout, "redis-cli --csv psubscribe")
    publishers = clients_on_every_worker(server, kind)
    try:
        # redis-cli first prints "Reading messages... (press Ctrl-C to quit)" (to stdout).
        first = out.expect(lambda line: line.startswith('"'), "confirming the PSUBSCRIBE")
        assert first == f'"psubscribe","{pattern}",1'
        for i, publisher in enumerate(publishers):
            channel = f"news.{kind}.w{i}"
            assert publisher.publish(channel, f'hello, "cli" {i}') == 1
            line = out.expect(lambda line: line.startswith('"pmessage"'), "with the pmessage")
            assert line == f'"pmessage","{pattern}","{channel}","hello, \\"cli\\" {i}"'
        assert proc.poll() is None
    finally:
        stop_process(proc)
        for publisher in publishers:
            publisher.close()


MONITOR_LINE = re.compile(r'^(\d+\.\d{6}) \[(\d+) 127\.0\.0\.1:(\d+)\] (.*)$')


def test_redis_cli_monitor(server: ServerProcess, kind: str) -> None:
    """`redis-cli monitor` prints every client's commands (clients on both workers), in
    Redis's line format: `<unix time with µs> [<db> 127.0.0.1:<client port>] "ARG" ...`."""
    cli = require_tool("redis-cli")
    proc = subprocess.Popen([cli, "-p", str(server.port), "monitor"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    assert proc.stdout is not None
    out = LineReader(proc.stdout, "redis-cli monitor")
    clients = clients_on_every_worker(server, kind)
    try:
        assert out.expect(lambda line: line.strip() != "", "answering MONITOR") == "OK"
        for i, client in enumerate(clients):
            key = f"mon:{kind}:{i}"
            port = sock_port(client.connection._sock)
            assert client.set(key, f'a "b" {i}') is True
            client.execute_command("SELECT", 2)
            assert client.get(key) is None
            client.execute_command("SELECT", 0)
            set_line = out.expect(lambda line, key=key: f'"{key}"' in line and '"SET"' in line, f"with SET {key}")
            m = MONITOR_LINE.match(set_line)
            assert m is not None, set_line
            assert (m.group(2), int(m.group(3))) == ("0", port)
            assert m.group(4) == f'"SET" "{key}" "a \\"b\\" {i}"'
            assert abs(float(m.group(1)) - time.time()) < 60
            get_line = out.expect(lambda line, key=key: '"GET"' in line, f"with GET {key}")
            m = MONITOR_LINE.match(get_line)
            assert m is not None and m.group(2) == "2" and m.group(4) == f'"GET" "{key}"', get_line
            client.delete(key)
        assert proc.poll() is None
    finally:
        stop_process(proc)
        for client in clients:
            client.close()


def test_servers_survived(servers: dict[str, ServerProcess]) -> None:
    """Runs last: no scenario above may crash a kvred process (test_programs.py's check)."""
    check_servers_survived(servers)
