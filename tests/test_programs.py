"""Programs that use Redis, through their own libraries, against kvred and redis-server.

Every scenario runs twice: on kvred (two workers) and on a real redis-server 7.0,
which proves the test itself right. Both servers are started once for the module
on free loopback ports and stopped by PID by the conftest fixtures.

  * Django's cache backend (`django.core.cache.backends.redis.RedisCache`, tested
    with Django 5.2.19 and redis-py 8.1.0): SET EX, the 300 s default timeout,
    INCRBY on a key with a TTL, SET NX (`add`), MGET, MSET + EXPIRE in MULTI/EXEC
    (`set_many`), DEL, EXPIRE/PERSIST (`touch`), EXISTS, FLUSHDB on database 3 only.
  * aiocache's `RedisCache` (aiocache 0.12.3, on redis.asyncio): SETEX, PSETEX,
    SET NX PX, EXISTS, EXPIRE/PERSIST, INCRBY, MSET + PEXPIRE in MULTI/EXEC, MGET,
    KEYS + DEL (`clear` of a namespace), in database 1.
  * redis-py's optimistic locking: `Redis.transaction()` from 8 threads whose
    connections are spread over both kvred workers, with a disturbing client; a
    WATCH pipeline driven by hand; a watched key that expires makes EXEC fail.

Waits for expiry are bounded polls on the condition, never fixed sleeps. Without
Django or aiocache their tests are skipped, or fail when the environment variable
CI is set (as `require_tool` does for programs).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import psutil
import pytest
import redis
from conftest import ServerProcess, against_redis
from oracle import kvred_tree

KINDS = ["kvred", "redis"]
POLL_TIMEOUT_S = 5.0
POLL_INTERVAL_S = 0.01
DJANGO_DEFAULT_TIMEOUT_S = 300  # Django's TIMEOUT when CACHES does not set one
DJANGO_DB = 3  # the non-default database of the "-db3" caches
AIOCACHE_DB = 1
CONTENDERS = 8
INCREMENTS_PER_CONTENDER = 200
THREAD_JOIN_TIMEOUT_S = 40.0
DISTURB_INTERVAL_S = 0.005  # a write flood would starve the contenders instead of disturbing them
MAX_SPREAD_ATTEMPTS = 64  # connections tried before giving up on reaching every worker


def require_module(name: str) -> ModuleType:
    """Import a library a test needs; skip without it, but fail under CI (env CI set)."""
    if not os.environ.get("CI"):
        return pytest.importorskip(name)
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.fail(f"required library {name!r} is not installed: {exc}")


def wait_until(condition: Callable[[], object], what: str, timeout: float = POLL_TIMEOUT_S) -> None:
    """Poll `condition` every POLL_INTERVAL_S until it is true; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(POLL_INTERVAL_S)


# ---------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def servers(kvred_factory: Callable[..., ServerProcess], redis_server: ServerProcess) -> dict[str, ServerProcess]:
    return {"kvred": kvred_factory(), "redis": redis_server}


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(servers: dict[str, ServerProcess], kind: str) -> ServerProcess:
    return servers[kind]


def raw_client(server: ServerProcess, db: int = 0) -> redis.Redis:
    """A plain redis-py client (redis-py sends SELECT db when it connects)."""
    return redis.Redis(port=server.port, db=db, socket_timeout=10)


# ---------------------------------------------------------------- Django


@pytest.fixture(scope="module")
def django_caches(servers: dict[str, ServerProcess]) -> Iterator[Any]:
    """Django's `caches`, configured once for the module: per server, one cache on
    database 0 and one on database 3."""
    django_conf = require_module("django.conf")
    require_module("django.core.cache.backends.redis")
    from django.core.cache import CacheHandler, caches

    config: dict[str, dict[str, Any]] = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    for name, srv in servers.items():
        backend = "django.core.cache.backends.redis.RedisCache"
        config[name] = {"BACKEND": backend, "LOCATION": f"redis://127.0.0.1:{srv.port}"}
        config[f"{name}-db{DJANGO_DB}"] = {"BACKEND": backend,
                                           "LOCATION": f"redis://127.0.0.1:{srv.port}/{DJANGO_DB}"}
    if not django_conf.settings.configured:
        django_conf.settings.configure(CACHES=config)
    # Settings can be configured once per process; a second configuration (a re-run
    # in the same interpreter) gets its own handler built the same way.
    handler = caches if django_conf.settings.CACHES == config else CacheHandler(config)
    yield handler
    handler.close_all()


def test_django_cache(django_caches: Any, server: ServerProcess, kind: str) -> None:
    cache = django_caches[f"{kind}-db{DJANGO_DB}"]
    other_db_cache = django_caches[kind]  # same server, database 0
    raw = raw_client(server, db=DJANGO_DB)
    raw0 = raw_client(server, db=0)
    try:
        # The keys Django makes (":1:name", KEY_PREFIX and VERSION) live in database 3 only.
        cache.set("dj:obj", {"a": [1, 2.5, "é"], "b": b"\x00\xff"}, timeout=1000)
        key = cache.make_key("dj:obj")
        assert key == ":1:dj:obj"
        assert raw.exists(key) == 1 and raw0.exists(key) == 0
        assert cache.get("dj:obj") == {"a": [1, 2.5, "é"], "b": b"\x00\xff"}
        assert 990 <= raw.ttl(key) <= 1000
        assert cache.get("dj:missing") is None and cache.get("dj:missing", "dflt") == "dflt"

        # The default timeout: SET ... EX 300.
        cache.set("dj:default", "v")
        assert DJANGO_DEFAULT_TIMEOUT_S - 10 <= raw.ttl(cache.make_key("dj:default")) <= DJANGO_DEFAULT_TIMEOUT_S
        # timeout=None: a plain SET, which also drops the TTL the key had.
        cache.set("dj:default", "forever", timeout=None)
        assert raw.ttl(cache.make_key("dj:default")) == -1 and cache.get("dj:default") == "forever"
        # timeout=0: deleted.
        cache.set("dj:default", "gone", timeout=0)
        assert raw.exists(cache.make_key("dj:default")) == 0

        # incr/decr: EXISTS then INCRBY on an unpickled integer; the TTL survives.
        cache.set("dj:n", 10, timeout=1000)
        assert raw.get(cache.make_key("dj:n")) == b"10"
        assert cache.incr("dj:n") == 11
        assert cache.incr("dj:n", 5) == 16
        assert cache.decr("dj:n", 3) == 13
        assert cache.get("dj:n") == 13 and raw.get(cache.make_key("dj:n")) == b"13"
        assert 990 <= raw.ttl(cache.make_key("dj:n")) <= 1000
        with pytest.raises(ValueError):
            cache.incr("dj:no-such-counter")

        # add: SET NX EX; timeout=0 sets and deletes.
        assert cache.add("dj:add", "first") is True
        assert cache.add("dj:add", "second") is False
        assert cache.get("dj:add") == "first"
        assert DJANGO_DEFAULT_TIMEOUT_S - 10 <= raw.ttl(cache.make_key("dj:add")) <= DJANGO_DEFAULT_TIMEOUT_S
        assert cache.add("dj:add0", "x", timeout=0) is True
        assert raw.exists(cache.make_key("dj:add0")) == 0

        # set_many: MSET plus one EXPIRE per key, in MULTI/EXEC; get_many: MGET.
        data = {"dj:m1": "one", "dj:m2": 2, "dj:m3": ["three"]}
        assert cache.set_many(data, timeout=500) == []
        assert cache.get_many(["dj:m1", "dj:m2", "dj:m3", "dj:m-missing"]) == data
        for name in data:
            assert 490 <= raw.ttl(cache.make_key(name)) <= 500, name
        cache.set_many({"dj:p1": "x", "dj:p2": "y"}, timeout=None)
        assert raw.ttl(cache.make_key("dj:p1")) == -1 and raw.ttl(cache.make_key("dj:p2")) == -1
        cache.delete_many(["dj:m1", "dj:m3", "dj:p2"])
        assert cache.get_many(["dj:m1", "dj:m2", "dj:m3", "dj:p1", "dj:p2"]) == {"dj:m2": 2, "dj:p1": "x"}
        assert cache.delete("dj:m2") is True and cache.delete("dj:m2") is False

        # touch: EXPIRE to a new timeout, PERSIST for None; False for a missing key.
        assert cache.touch("dj:obj", 5000) is True
        assert 4990 <= raw.ttl(cache.make_key("dj:obj")) <= 5000
        assert 4_990_000 <= raw.pttl(cache.make_key("dj:obj")) <= 5_000_000
        assert cache.touch("dj:obj", None) is True
        assert raw.ttl(cache.make_key("dj:obj")) == -1
        assert cache.touch("dj:no-such-key", 10) is False

        # get_or_set: GET, then SET NX with the computed default, then GET.
        assert cache.get_or_set("dj:gos", lambda: "computed") == "computed"
        assert cache.get_or_set("dj:gos", lambda: "other") == "computed"
        assert DJANGO_DEFAULT_TIMEOUT_S - 10 <= raw.ttl(cache.make_key("dj:gos")) <= DJANGO_DEFAULT_TIMEOUT_S

        assert cache.has_key("dj:gos") is True and cache.has_key("dj:nope") is False

        # A key set with timeout=1 is gone a second later (bounded poll, no fixed sleep).
        cache.set("dj:short", "brief", timeout=1)
        assert 0 < raw.pttl(cache.make_key("dj:short")) <= 1000
        wait_until(lambda: cache.get("dj:short") is None, "a Django key set with timeout=1 expiring")
        assert cache.has_key("dj:short") is False
        assert raw.exists(cache.make_key("dj:short")) == 0

        # clear is FLUSHDB: database 3 empties, database 0 keeps its keys.
        other_db_cache.set("dj:db0", "kept", timeout=1000)
        assert raw0.exists(other_db_cache.make_key("dj:db0")) == 1
        assert raw.dbsize() > 0
        assert cache.clear() is True
        assert raw.dbsize() == 0
        assert cache.get("dj:gos") is None
        assert other_db_cache.get("dj:db0") == "kept"
        assert other_db_cache.delete("dj:db0") is True
    finally:
        raw.close()
        raw0.close()


# ---------------------------------------------------------------- aiocache


async def _aiocache_scenario(port: int, raw: redis.Redis) -> None:
    aiocache = require_module("aiocache")
    cache = aiocache.RedisCache(endpoint="127.0.0.1", port=port, db=AIOCACHE_DB, namespace="aio")

    async def gone(key: str) -> None:
        deadline = time.monotonic() + POLL_TIMEOUT_S
        while await cache.exists(key):
            if time.monotonic() > deadline:
                pytest.fail(f"aiocache key {key!r} still exists after {POLL_TIMEOUT_S} s")
            await asyncio.sleep(POLL_INTERVAL_S)

    try:
        # set/get (JSON serializer) in the namespace "aio:" of database 1.
        assert await cache.set("obj", {"a": [1, "two"], "b": None}) is True
        assert await cache.get("obj") == {"a": [1, "two"], "b": None}
        assert raw.get("aio:obj") == b'{"a": [1, "two"], "b": null}'
        assert raw.ttl("aio:obj") == -1
        assert await cache.get("missing") is None

        # ttl as int (SETEX) and as float (PSETEX).
        assert await cache.set("long", "v", ttl=100) is True
        assert 90 <= raw.ttl("aio:long") <= 100
        assert await cache.set("short", "v", ttl=0.2) is True
        assert 0 < raw.pttl("aio:short") <= 200
        await gone("short")
        assert await cache.get("short") is None

        # add: SET NX EX / PX; an existing key raises ValueError.
        assert await cache.add("added", "first", ttl=50) is True
        with pytest.raises(ValueError):
            await cache.add("added", "second")
        assert await cache.get("added") == "first"
        assert 40 <= raw.ttl("aio:added") <= 50
        assert await cache.add("added-short", "x", ttl=0.15) is True
        assert 0 < raw.pttl("aio:added-short") <= 150
        await gone("added-short")

        # exists/delete.
        assert await cache.exists("obj") is True
        assert await cache.delete("obj") == 1
        assert await cache.delete("obj") == 0
        assert await cache.exists("obj") is False

        # expire: EXPIRE, and ttl=0 is PERSIST; a missing key answers False.
        assert await cache.expire("long", 1000) is True
        assert 990 <= raw.ttl("aio:long") <= 1000
        assert await cache.expire("long", 0) is True
        assert raw.ttl("aio:long") == -1
        assert await cache.expire("no-such-key", 10) is False

        # increment: INCRBY; a non-integer value raises TypeError.
        assert await cache.increment("counter") == 1
        assert await cache.increment("counter", 41) == 42
        assert await cache.increment("counter", -2) == 40
        assert await cache.get("counter") == 40
        with pytest.raises(TypeError):
            await cache.increment("added")

        # multi_set with a TTL: MULTI, MSET, one EXPIRE (int) or PEXPIRE (float) per key, EXEC.
        pairs = [("m1", "one"), ("m2", 2), ("m3", [3])]
        assert await cache.multi_set(pairs, ttl=600) is True
        assert await cache.multi_get(["m1", "m2", "missing", "m3"]) == ["one", 2, None, [3]]
        for name, _ in pairs:
            assert 590 <= raw.ttl(f"aio:{name}") <= 600, name
        assert await cache.multi_set([("f1", "a"), ("f2", "b")], ttl=0.25) is True
        assert 0 < raw.pttl("aio:f1") <= 250 and 0 < raw.pttl("aio:f2") <= 250
        await gone("f1")
        await gone("f2")
        assert await cache.multi_get(["f1", "f2"]) == [None, None]
        assert await cache.multi_set([("p1", "a")]) is True  # no TTL: a plain MSET
        assert raw.ttl("aio:p1") == -1

        # clear of the namespace: KEYS aio:* then DEL; other keys of database 1 stay.
        raw.set("not-aio", "stays")
        assert await cache.clear(namespace="aio") is True
        assert raw.keys("aio:*") == []
        assert raw.get("not-aio") == b"stays"
        raw.delete("not-aio")
    finally:
        await cache.close()


def test_aiocache(server: ServerProcess) -> None:
    require_module("aiocache")
    raw = raw_client(server, db=AIOCACHE_DB)
    try:
        asyncio.run(_aiocache_scenario(server.port, raw))
    finally:
        raw.close()


# ---------------------------------------------------------------- WATCH


def _worker_of_connection(server: ServerProcess) -> dict[int, int]:
    """For kvred: client port -> PID of the kvred process holding that accepted connection."""
    owners: dict[int, int] = {}
    for proc in kvred_tree(server):
        try:
            conns = proc.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        for conn in conns:
            if conn.laddr and conn.laddr.port == server.port and conn.raddr:
                owners[conn.raddr.port] = proc.pid
    return owners


def _connected_client(server: ServerProcess) -> tuple[redis.Redis, int]:
    """A client with exactly one connection (a one-connection pool), already open, and
    that connection's local port."""
    pool = redis.ConnectionPool(port=server.port, max_connections=1, socket_timeout=10)
    client = redis.Redis(connection_pool=pool)
    conn = pool.get_connection()
    try:
        conn.connect()
        sock = conn._sock
        assert sock is not None
        local_port = int(sock.getsockname()[1])
    finally:
        pool.release(conn)
    assert client.ping() is True
    return client, local_port


def close_client(client: redis.Redis) -> None:
    """Close a client and its own pool (Redis.close leaves a pool it was given open)."""
    client.close()
    client.connection_pool.disconnect()


def spread_clients(server: ServerProcess, kind: str, count: int) -> list[redis.Redis]:
    """`count` one-connection clients; on kvred, as evenly spread over its workers as
    SO_REUSEPORT lets us (extra connections are opened and closed until it is)."""
    if kind != "kvred" or against_redis():
        return [_connected_client(server)[0] for _ in range(count)]
    candidates: list[tuple[redis.Redis, int]] = []
    by_worker: dict[int, list[redis.Redis]] = {}
    workers = 2  # start_kvred's default --workers
    per_worker = count // workers
    for _ in range(MAX_SPREAD_ATTEMPTS):
        candidates.append(_connected_client(server))
        owners = _worker_of_connection(server)
        by_worker = {}
        for client, port in candidates:
            by_worker.setdefault(owners.get(port, -1), []).append(client)
        by_worker.pop(-1, None)
        if len(by_worker) >= workers and all(len(c) >= per_worker for c in by_worker.values()):
            break
    else:
        pytest.fail(f"{MAX_SPREAD_ATTEMPTS} connections did not reach {workers} workers: "
                    f"{ {pid: len(c) for pid, c in by_worker.items()} }")
    chosen: list[redis.Redis] = []
    for clients in by_worker.values():
        chosen.extend(clients[:per_worker])
    for client, _ in candidates:
        if len(chosen) >= count:
            break
        if client not in chosen:
            chosen.append(client)
    for client, _ in candidates:
        if client not in chosen:
            close_client(client)
    return chosen


def test_transaction_under_contention(server: ServerProcess, kind: str) -> None:
    """8 threads, each `r.transaction(func, key)` (WATCH, GET, MULTI, SET, EXEC) 200 times,
    plus a client that INCRs and DECRs the watched key meanwhile: no update is lost."""
    key = f"watch:counter:{kind}"
    setup = raw_client(server)
    setup.delete(key)
    clients = spread_clients(server, kind, CONTENDERS)
    disturber = raw_client(server)
    calls = [0] * CONTENDERS  # func calls per thread; calls beyond successes are WatchError retries
    successes = [0] * CONTENDERS
    errors: list[str] = []
    stop_disturbing = threading.Event()
    disturbances = [0]

    def contend(index: int, client: redis.Redis) -> None:
        def increment(pipe: redis.client.Pipeline) -> None:
            calls[index] += 1
            current = int(pipe.get(key) or 0)  # immediate mode: the key is WATCHed
            pipe.multi()
            pipe.set(key, current + 1)

        try:
            for _ in range(INCREMENTS_PER_CONTENDER):
                result = client.transaction(increment, key)
                assert result == [True], result
                successes[index] += 1
        except Exception as exc:  # reported by the main thread
            errors.append(f"contender {index}: {type(exc).__name__}: {exc}")

    def disturb() -> None:
        # Each pair is net zero, so the final value counts the transactions only;
        # each write makes every transaction watching the key at that moment fail.
        try:
            while not stop_disturbing.is_set():
                disturber.incr(key)
                disturber.decr(key)
                disturbances[0] += 1
                stop_disturbing.wait(DISTURB_INTERVAL_S)
        except Exception as exc:
            errors.append(f"disturber: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=contend, args=(i, c), name=f"contender-{i}", daemon=True)
               for i, c in enumerate(clients)]
    disturber_thread = threading.Thread(target=disturb, name="disturber", daemon=True)
    try:
        disturber_thread.start()
        for t in threads:
            t.start()
        deadline = time.monotonic() + THREAD_JOIN_TIMEOUT_S
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        stop_disturbing.set()
        disturber_thread.join(10)
        stuck = [t.name for t in threads + [disturber_thread] if t.is_alive()]
        assert not stuck, f"threads still running after {THREAD_JOIN_TIMEOUT_S} s: {stuck}"
        assert not errors, errors
        total = sum(successes)
        retries = sum(calls) - total
        stats = (f"{total} transactions, {retries} WatchError retries, {disturbances[0]} disturbances, "
                 f"func calls per thread {calls}")
        assert total == CONTENDERS * INCREMENTS_PER_CONTENDER, stats
        assert int(setup.get(key) or 0) == total, f"a committed increment was lost or doubled: {stats}"
        assert retries > 0, f"no transaction was ever retried, WATCH was never tested: {stats}"
        assert disturbances[0] > 0, stats
    finally:
        stop_disturbing.set()
        for client in clients:
            close_client(client)
        disturber.close()
        setup.delete(key)
        setup.close()


def test_pipeline_watch_by_hand(server: ServerProcess, kind: str) -> None:
    key = f"watch:hand:{kind}"
    r = raw_client(server)
    other = raw_client(server)
    try:
        r.set(key, "start")
        # Nobody touches the key: EXEC runs.
        with r.pipeline() as pipe:
            pipe.watch(key)
            assert pipe.get(key) == b"start"
            pipe.multi()
            pipe.set(key, "mine")
            pipe.get(key)
            assert pipe.execute() == [True, b"mine"]
        # Another client writes the key between WATCH and EXEC: EXEC fails, nothing queued runs.
        with r.pipeline() as pipe:
            pipe.watch(key)
            assert pipe.get(key) == b"mine"
            assert other.set(key, "theirs") is True
            pipe.multi()
            pipe.set(key, "lost")
            with pytest.raises(redis.WatchError):
                pipe.execute()
        assert r.get(key) == b"theirs"
        # Writing the same value still counts as a change.
        with r.pipeline() as pipe:
            pipe.watch(key)
            assert other.set(key, "theirs") is True
            pipe.multi()
            pipe.set(key, "lost")
            with pytest.raises(redis.WatchError):
                pipe.execute()
        # A key that did not exist and is created meanwhile.
        absent = f"{key}:absent"
        r.delete(absent)
        with r.pipeline() as pipe:
            pipe.watch(absent)
            assert pipe.get(absent) is None
            other.set(absent, "created")
            pipe.multi()
            pipe.set(absent, "mine")
            with pytest.raises(redis.WatchError):
                pipe.execute()
        assert r.get(absent) == b"created"
        # UNWATCH forgets the change.
        with r.pipeline() as pipe:
            pipe.watch(key)
            other.set(key, "again")
            pipe.unwatch()
            pipe.multi()
            pipe.set(key, "after-unwatch")
            assert pipe.execute() == [True]
        assert r.get(key) == b"after-unwatch"
        r.delete(key, absent)
    finally:
        r.close()
        other.close()


def test_watched_key_expires_accessed(server: ServerProcess, kind: str) -> None:
    """The key expires between WATCH and EXEC and another client's access deletes it."""
    key = f"watch:expire-accessed:{kind}"
    r = raw_client(server)
    other = raw_client(server)
    try:
        assert r.set(key, "v", px=100) is True
        with r.pipeline() as pipe:
            pipe.watch(key)
            assert pipe.get(key) == b"v"
            wait_until(lambda: other.exists(key) == 0, "a PX 100 key expiring")
            pipe.multi()
            pipe.set(key, "too late")
            with pytest.raises(redis.WatchError):
                pipe.execute()
        assert r.exists(key) == 0
    finally:
        r.close()
        other.close()


def test_watched_key_expires_untouched(server: ServerProcess, kind: str) -> None:
    """The key's time passes between WATCH and EXEC with active expiry off and nobody
    accessing it: EXEC itself must see it expired (Redis ≥ 6.0.9)."""
    key = f"watch:expire-untouched:{kind}"
    r = raw_client(server)
    other = raw_client(server)
    try:
        assert other.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0") == b"OK"
        assert r.set(key, "v", px=100) is True
        expires_at_ms = r.pexpiretime(key)
        assert expires_at_ms > 0
        with r.pipeline() as pipe:
            pipe.watch(key)
            assert pipe.get(key) == b"v"

            def server_time_passed() -> bool:
                seconds, micros = other.time()
                return seconds * 1000 + micros // 1000 > expires_at_ms

            wait_until(server_time_passed, "the server clock passing the key's expiry time")
            pipe.multi()
            pipe.set(key, "too late")
            with pytest.raises(redis.WatchError):
                pipe.execute()
        assert r.exists(key) == 0
    finally:
        other.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        r.close()
        other.close()


def test_servers_survived(servers: dict[str, ServerProcess]) -> None:
    """Runs last: no scenario above may crash a kvred process."""
    for srv in servers.values():
        assert srv.proc is not None and srv.proc.poll() is None, f"{srv.name} exited\n{srv.log_tail()}"
        with raw_client(srv) as r:
            assert r.ping() is True
    log = servers["kvred"].log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]

