"""maxmemory, eviction, OBJECT FREQ, MEMORY and INFO memory (kvred/memory.py,
kvred/eviction.py, kvred/lfu.py, kvred/commands/memory.py).

- differential cases: MEMORY's replies and errors (shapes and field names where the
  values are naturally kvred's own), OBJECT FREQ/IDLETIME under an LFU policy, the
  maxmemory settings in CONFIG GET, against redis-server started with the same settings;
- the -OOM error text, taken from a redis-server over its maxmemory;
- caches in operation, on real kvred processes: allkeys-lru keeps recently used keys,
  volatile-ttl evicts the soonest to expire, allkeys-lfu keeps frequently read keys,
  noeviction refuses writes but not reads or deletions (and accepts writes again once
  keys are deleted), the AOF after evictions replays to the same keys, the RSS of a
  server with maxmemory 100mb grows by about 100 MB;
- redis-cli --bigkeys and --memkeys run to completion against kvred;
- the LFU counter's arithmetic (pure).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import ServerProcess, against_redis, free_port, require_tool, start_kvred
from differential import C, Case, Cases, Servers, check_case, servers  # noqa: F401  (servers: the fixture)
from rawclient import RawClient, encode_command, parse_reply

from kvred.eviction import EVICT_FAIL, EVICT_OK, eviction_time_limit_us, tracking_for
from kvred.keyspace import TRACK_LFU, TRACK_LRU, TRACK_NONE
from kvred.lfu import LFU_INIT_VAL, lfu_decayed, lfu_log_incr
from kvred.memory import bytes_to_human

pytestmark = pytest.mark.skipif(against_redis(), reason="kvred's memory accounting and settings")

MB = 1024 * 1024
DEADLINE_S = 30.0


# --- differential: replies and errors ------------------------------------------------


def _shape(node: Any) -> Any:
    """A reply with its numbers blanked: field names and types stay, values go."""
    kind, payload = node
    if kind in ":,":
        return "number"
    if kind in "$+" and payload is not None and re.fullmatch(rb"-?[0-9.e+-]+", payload):
        return "number"
    if kind in "*~":
        return [_shape(item) for item in payload]
    if kind == "%":
        return [(_shape(k), _shape(v)) for k, v in payload]
    if kind == "=":
        return ("verbatim", payload[:4])
    return (kind, payload)


def shape(raw: bytes) -> Any:
    return _shape(parse_reply(raw))


def sorted_pairs(raw: bytes) -> Any:
    """CONFIG GET of a glob: the (name, value) pairs, in any order."""
    kind, items = parse_reply(raw)
    return kind, sorted(zip(items[0::2], items[1::2], strict=True))


def kind_only(raw: bytes) -> bytes:
    return raw[:1]


CASES = Cases()
CASES.case("memory-help", C("MEMORY", "HELP"), C("MEMORY", "help"))
CASES.case("memory-usage-missing", C("MEMORY", "USAGE", "missing"), C("MEMORY", "USAGE", "missing", "SAMPLES", "0"))
CASES.case("memory-usage-errors", C("SET", "k", "v"), C("MEMORY", "USAGE", "k", "SAMPLES"),
           C("MEMORY", "USAGE", "k", "SAMPLES", "-1"), C("MEMORY", "USAGE", "k", "SAMPLES", "x"),
           C("MEMORY", "USAGE", "k", "FOO", "1"), C("MEMORY", "USAGE", "k", "SAMPLES", "0", "x"),
           C("MEMORY", "USAGE", "missing", "SAMPLES", "x"), C("MEMORY", "USAGE"))
CASES.case("memory-usage-types", C("SET", "s", "v"), C("RPUSH", "l", "a", "b"), C("HSET", "h", "f", "v"),
           C("SADD", "st", "m"), C("ZADD", "z", "1", "m"), C("XADD", "x", "1-1", "f", "v"),
           *(C("MEMORY", "USAGE", key, norm=kind_only) for key in ("s", "l", "h", "st", "z", "x")),
           C("MEMORY", "USAGE", "h", "SAMPLES", "0", norm=kind_only))
CASES.case("memory-usage-wrongtype-free", C("RPUSH", "l", "a"), C("MEMORY", "USAGE", "l", "samples", "3", norm=kind_only))
CASES.case("memory-arity", C("MEMORY"), C("MEMORY", "STATS", "x"), C("MEMORY", "DOCTOR", "x"),
           C("MEMORY", "PURGE", "x"), C("MEMORY", "MALLOC-STATS", "x"), C("MEMORY", "HELP", "x"),
           C("MEMORY", "NOPE"))
CASES.case("memory-stats-shape", C("SET", "k", "v"), C("EXPIRE", "k", "100"), C("MEMORY", "STATS", norm=shape))
CASES.case("memory-stats-shape-resp3", C("HELLO", "3", norm=kind_only), C("SET", "k", "v"),
           C("MEMORY", "STATS", norm=shape), C("MEMORY", "DOCTOR", norm=shape),
           C("MEMORY", "MALLOC-STATS", norm=shape))
CASES.case("memory-doctor-purge", C("MEMORY", "DOCTOR", norm=kind_only), C("MEMORY", "MALLOC-STATS", norm=kind_only),
           C("MEMORY", "PURGE"))
CASES.case("maxmemory-config-defaults", C("CONFIG", "GET", "maxmemory"), C("CONFIG", "GET", "maxmemory-policy"),
           C("CONFIG", "GET", "maxmemory-samples"), C("CONFIG", "GET", "maxmemory-eviction-tenacity"),
           C("CONFIG", "GET", "lfu-log-factor"), C("CONFIG", "GET", "lfu-decay-time"))
CASES.case("maxmemory-config-glob", C("CONFIG", "GET", "maxmemory*", norm=sorted_pairs),
           C("CONFIG", "GET", "lfu-*", norm=sorted_pairs))
CASES.case("object-freq-needs-lfu", C("SET", "k", "v"), C("OBJECT", "FREQ", "k"), C("OBJECT", "FREQ", "missing"))


@pytest.mark.parametrize("seq", CASES, ids=CASES.ids())
def test_same_replies_as_redis(servers: Servers, seq: Case) -> None:  # noqa: F811
    check_case(servers, seq)


def _start_redis(workdir: Path, *flags: str) -> ServerProcess:
    port = free_port()
    argv = [require_tool("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(workdir), *flags]
    return ServerProcess("redis-server", argv, port, workdir).start()


@pytest.fixture(scope="module")
def lfu_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Both servers with maxmemory-policy allkeys-lfu (no maxmemory: nothing is evicted)."""
    redis_server = _start_redis(tmp_path_factory.mktemp("redis"), "--maxmemory-policy", "allkeys-lfu")
    try:
        kvred = start_kvred(tmp_path_factory.mktemp("kvred"), maxmemory_policy="allkeys-lfu")
        try:
            yield Servers(redis_server, kvred)
        finally:
            kvred.stop()
    finally:
        redis_server.stop()


LFU_CASES = Cases()
# a new key starts at LFU_INIT_VAL (5); the first access always counts (probability 1)
LFU_CASES.case("object-freq-lfu", C("SET", "k", "v"), C("OBJECT", "FREQ", "k"), C("GET", "k"),
               C("OBJECT", "FREQ", "k"), C("OBJECT", "FREQ", "missing"), C("OBJECT", "IDLETIME", "k"),
               C("OBJECT", "IDLETIME", "missing"), C("CONFIG", "GET", "maxmemory-policy"))
LFU_CASES.case("object-freq-lfu-types", C("RPUSH", "l", "a"), C("OBJECT", "FREQ", "l"), C("LRANGE", "l", "0", "-1"),
               C("OBJECT", "FREQ", "l"), C("HSET", "h", "f", "v"), C("OBJECT", "FREQ", "h"))


@pytest.mark.parametrize("seq", LFU_CASES, ids=LFU_CASES.ids())
def test_lfu_replies_as_redis(lfu_servers: Servers, seq: Case) -> None:
    check_case(lfu_servers, seq)


def _info(client: RawClient, section: str) -> dict[str, str]:
    raw = client.call("INFO", section)
    body = raw[raw.index(b"\r\n") + 2 :].decode()
    return dict(line.split(":", 1) for line in body.splitlines() if ":" in line)


def test_info_memory_fields_are_redis_fields(servers: Servers) -> None:  # noqa: F811
    """Every INFO memory field kvred prints is one Redis 7.0 prints (but the RSS of all
    of kvred's processes), and the ones the brief asks for are there."""
    with RawClient(servers.redis.port) as r, RawClient(servers.kvred.port) as k:
        redis_fields = set(_info(r, "memory"))
        kvred_info = _info(k, "memory")
    extra = set(kvred_info) - redis_fields - {"used_memory_rss_all_processes"}
    assert not extra
    for name in ("used_memory", "used_memory_human", "used_memory_rss", "used_memory_rss_human",
                 "used_memory_peak", "used_memory_peak_human", "used_memory_dataset", "used_memory_startup",
                 "maxmemory", "maxmemory_human", "maxmemory_policy", "mem_fragmentation_ratio", "mem_allocator"):
        assert name in kvred_info, name
    assert kvred_info["maxmemory_policy"] == "noeviction"
    assert kvred_info["maxmemory_human"] == "0B"


def test_bytes_to_human_as_redis() -> None:
    assert [bytes_to_human(n) for n in (0, 1023, 1024, 1536, 100 * MB, 3 * 1024 * MB)] == [
        "0B", "1023B", "1.00K", "1.50K", "100.00M", "3.00G"]


# --- the -OOM error, and writes refused under noeviction ------------------------------


def _oom_text_from_redis(workdir: Path) -> bytes:
    """What redis-server answers to a SET over its maxmemory under noeviction."""
    server = _start_redis(workdir, "--maxmemory", "1", "--maxmemory-policy", "noeviction")
    try:
        with RawClient(server.port) as c:
            return c.call("SET", "k", "v")
    finally:
        server.stop()


def _fill_until(client: RawClient, prefix: str, value: bytes, stop: bytes, limit: int = 200_000) -> int:
    """SET keys until a reply starts with `stop`; the number of keys set."""
    for i in range(0, limit, 100):
        client.send(b"".join(encode_command("SET", f"{prefix}{j}", value) for j in range(i, i + 100)))
        replies = [client.read_reply() for _ in range(100)]
        for n, reply in enumerate(replies):
            if reply.startswith(stop):
                return i + n
    raise AssertionError(f"no {stop!r} after {limit} keys")


def test_noeviction_refuses_writes_not_reads(tmp_path: Path) -> None:
    (tmp_path / "redis").mkdir()
    oom = _oom_text_from_redis(tmp_path / "redis")
    assert oom == b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"
    server = start_kvred(tmp_path, maxmemory="1mb", maxmemory_policy="noeviction")
    try:
        with RawClient(server.port) as c:
            stored = _fill_until(c, "k", b"x" * 1000, b"-OOM")
            assert 500 < stored < 1100  # 1 MB of 1 KB values, about
            assert c.call("SET", "one-more", "v") == oom
            assert c.call("APPEND", "k0", "more") == oom
            assert c.call("LPUSH", "list", "a") == oom
            assert c.call("GET", "k0") == b"$1000\r\n" + b"x" * 1000 + b"\r\n"
            assert c.call("EXISTS", "k1") == b":1\r\n"
            # in a transaction every command is refused when queued, as in Redis (the workers
            # are told the writer is out of memory), and EXEC aborts
            assert c.call("MULTI") == b"+OK\r\n"
            assert c.call("SET", "t", "v") == oom
            assert c.call("GET", "k0") == oom
            assert c.call("EXEC") == b"-EXECABORT Transaction discarded because of previous errors.\r\n"
            assert c.call("EXISTS", "t") == b":0\r\n"
            # a script's write is refused too
            assert c.call("EVAL", "return redis.pcall('set', 'q', 'v')", "0").startswith(b"-OOM")
            # deleting frees memory: the estimate goes down and writes are accepted again
            assert c.call("DEL", *[f"k{i}" for i in range(300)]) == b":300\r\n"
            assert c.call("SET", "one-more", "v") == b"+OK\r\n"
            info = _info(c, "stats")
            assert info["evicted_keys"] == "0"
            assert _info(c, "memory")["maxmemory_policy"] == "noeviction"
    finally:
        server.stop()


SCRIPTS_UNDER_OOM = [
    ("EVAL", "return redis.pcall('set', 'q', 'v')", "0"),
    ("EVAL", "return redis.call('set', 'q', 'v')", "0"),
    ("EVAL", "return redis.call('get', 'k')", "0"),
    ("EVAL", "#!lua\nreturn redis.call('get', 'k')", "0"),
    ("EVAL", "#!lua flags=no-writes\nreturn redis.call('get', 'k')", "0"),
    ("EVAL", "#!lua flags=allow-oom\nreturn redis.call('set', 'q', 'v')", "0"),
]


def test_scripts_under_oom_as_redis(tmp_path: Path) -> None:
    """Over maxmemory under noeviction: a script without a shebang is refused at its first
    write, one with a shebang that may write is refused whole, no-writes and allow-oom
    ones run; the same replies as redis-server's (which is put over its limit by CONFIG
    SET after a key exists; kvred, started with the limit, accepts its first key)."""
    (tmp_path / "redis").mkdir()
    redis_server = _start_redis(tmp_path / "redis")
    kvred = start_kvred(tmp_path, maxmemory="1", maxmemory_policy="noeviction")
    try:
        with RawClient(redis_server.port) as r, RawClient(kvred.port) as k:
            assert r.call("SET", "k", "v") == k.call("SET", "k", "v") == b"+OK\r\n"
            assert r.call("CONFIG", "SET", "maxmemory", "1") == b"+OK\r\n"
            for script in SCRIPTS_UNDER_OOM:
                assert k.call(*script) == r.call(*script), script
    finally:
        kvred.stop()
        redis_server.stop()


# --- caches in operation ---------------------------------------------------------------


def _subscribe_events(port: int, event: str) -> RawClient:
    sub = RawClient(port)
    sub.call("SUBSCRIBE", f"__keyevent@0__:{event}")
    return sub


def _exists(client: RawClient, keys: list[str]) -> list[bool]:
    client.send(b"".join(encode_command("EXISTS", key) for key in keys))
    return [client.read_reply() == b":1\r\n" for _ in keys]


def _write(client: RawClient, keys: list[str], value: bytes, *extra: str) -> None:
    client.send(b"".join(encode_command("SET", key, value, *extra) for key in keys))
    for _ in keys:
        reply = client.read_reply()
        assert reply == b"+OK\r\n", reply


def _read(client: RawClient, keys: list[str]) -> None:
    client.send(b"".join(encode_command("GET", key) for key in keys))
    for _ in keys:
        client.read_reply()


def test_allkeys_lru_cache(tmp_path: Path) -> None:
    """maxmemory 20mb, allkeys-lru, 3x that written: the server stays up under its limit,
    keys are evicted (evicted_keys, `evicted` events), keys read all along survive
    better than keys never read again."""
    server = start_kvred(tmp_path, maxmemory="20mb", maxmemory_policy="allkeys-lru",
                         notify_keyspace_events="Ee")
    value = b"v" * 1000
    hot = [f"hot:{i}" for i in range(200)]
    try:
        with RawClient(server.port) as c:
            sub = _subscribe_events(server.port, "evicted")
            _write(c, hot, value)
            cold_first = [f"cold:{i}" for i in range(200)]
            _write(c, cold_first, value)
            for batch in range(60):  # 60 x 1000 x 1 KB: 3x maxmemory
                _write(c, [f"bulk:{batch}:{i}" for i in range(1000)], value)
                _read(c, hot)  # the hot keys are used all along
            info = _info(c, "stats")
            evicted = int(info["evicted_keys"])
            assert evicted > 30_000
            dbsize = int(c.call("DBSIZE")[1:-2])
            assert dbsize < 60_400 - 30_000
            memory = _info(c, "memory")
            assert int(memory["used_memory_dataset"]) <= 20 * MB * 1.05
            hot_alive = sum(_exists(c, hot))
            cold_alive = sum(_exists(c, cold_first))
            assert hot_alive >= 190, (hot_alive, cold_alive)
            assert cold_alive <= 20, (hot_alive, cold_alive)
            # the events: one `evicted` message per eviction (read what has arrived)
            events = sub.read_available(2.0).count(b"__keyevent@0__:evicted")
            assert events > 1000
            sub.close()
        assert server.proc is not None and server.proc.poll() is None
    finally:
        server.stop()


def test_eviction_touches_watchers(tmp_path: Path) -> None:
    """A WATCHed key that is evicted makes EXEC fail, as any other change."""
    server = start_kvred(tmp_path, maxmemory="1mb", maxmemory_policy="allkeys-lru")
    try:
        with RawClient(server.port) as c, RawClient(server.port) as writer:
            _write(c, ["watched"], b"w" * 1000)
            assert c.call("WATCH", "watched") == b"+OK\r\n"
            time.sleep(0.25)  # two ticks of the LRU clock (100 ms): the watched key is the oldest
            for i in range(0, 3000, 500):
                _write(writer, [f"w:{j}" for j in range(i, i + 500)], b"w" * 1000)
            assert c.call("EXISTS", "watched") == b":0\r\n"  # the oldest key: evicted
            assert c.call("MULTI") == b"+OK\r\n"
            assert c.call("SET", "other", "v") == b"+QUEUED\r\n"
            assert c.call("EXEC") == b"*-1\r\n"
    finally:
        server.stop()


def test_volatile_ttl_evicts_soonest_expiring(tmp_path: Path) -> None:
    server = start_kvred(tmp_path, maxmemory="2mb", maxmemory_policy="volatile-ttl")
    value = b"t" * 1000
    try:
        with RawClient(server.port) as c:
            persistent = [f"keep:{i}" for i in range(100)]
            _write(c, persistent, value)
            keys = [f"ttl:{i}" for i in range(4000)]
            for i in range(0, 4000, 100):  # TTLs grow with the index: the first expire soonest
                c.send(b"".join(encode_command("SET", keys[j], value, "EX", str(10_000 + j)) for j in range(i, i + 100)))
                for _ in range(100):
                    assert c.read_reply() == b"+OK\r\n"
            alive = _exists(c, keys)
            assert all(_exists(c, persistent))  # never a key without a TTL
            early, late = sum(alive[:1000]), sum(alive[3000:])
            assert int(_info(c, "stats")["evicted_keys"]) > 1000
            assert late > 3 * max(early, 1), (early, late)
    finally:
        server.stop()


@pytest.mark.parametrize("policy", ["volatile-lru", "volatile-lfu", "volatile-random"])
def test_volatile_policies_never_evict_persistent_keys(tmp_path: Path, policy: str) -> None:
    """A cache of keys with a TTL over keys without one: the volatile policies evict
    among the first only (volatile-ttl: above)."""
    server = start_kvred(tmp_path, maxmemory="2mb", maxmemory_policy=policy)
    value = b"v" * 1000
    try:
        with RawClient(server.port) as c:
            persistent = [f"keep:{i}" for i in range(200)]
            _write(c, persistent, value)
            for i in range(0, 4000, 100):
                c.send(b"".join(encode_command("SET", f"ttl:{j}", value, "EX", "100000") for j in range(i, i + 100)))
                for _ in range(100):
                    assert c.read_reply() == b"+OK\r\n"
            assert all(_exists(c, persistent))
            assert int(_info(c, "stats")["evicted_keys"]) > 1000
            assert sum(_exists(c, [f"ttl:{j}" for j in range(4000)])) < 3000
    finally:
        server.stop()


def test_volatile_policy_with_nothing_volatile_answers_oom(tmp_path: Path) -> None:
    server = start_kvred(tmp_path, maxmemory="1mb", maxmemory_policy="volatile-lru")
    try:
        with RawClient(server.port) as c:
            _fill_until(c, "k", b"x" * 1000, b"-OOM")
            assert c.call("SET", "x", "y") == b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"
            assert c.call("GET", "k1").startswith(b"$1000")
    finally:
        server.stop()


def test_allkeys_lfu_keeps_frequently_read_keys(tmp_path: Path) -> None:
    server = start_kvred(tmp_path, maxmemory="5mb", maxmemory_policy="allkeys-lfu")
    value = b"f" * 1000
    hot = [f"hot:{i}" for i in range(300)]
    try:
        with RawClient(server.port) as c:
            _write(c, hot, value)
            for _ in range(30):
                _read(c, hot)
            freq = int(c.call("OBJECT", "FREQ", "hot:0")[1:-2])
            assert freq > LFU_INIT_VAL
            cold = [f"cold:{i}" for i in range(15_000)]
            for i in range(0, len(cold), 1000):
                _write(c, cold[i : i + 1000], value)
            assert int(_info(c, "stats")["evicted_keys"]) > 5000
            hot_alive = sum(_exists(c, hot))
            cold_alive = sum(_exists(c, cold)) / len(cold) * len(hot)  # the same number of cold keys
            assert hot_alive >= 270, (hot_alive, cold_alive)
            assert hot_alive > 2 * cold_alive
            assert c.call("OBJECT", "IDLETIME", "hot:0").startswith(b"-ERR An LFU maxmemory policy is selected")
    finally:
        server.stop()


def test_allkeys_random_evicts(tmp_path: Path) -> None:
    server = start_kvred(tmp_path, maxmemory="2mb", maxmemory_policy="allkeys-random")
    try:
        with RawClient(server.port) as c:
            for i in range(0, 8000, 1000):
                _write(c, [f"r:{j}" for j in range(i, i + 1000)], b"r" * 1000)
            assert int(_info(c, "stats")["evicted_keys"]) > 4000
            assert int(_info(c, "memory")["used_memory_dataset"]) <= 2 * MB * 1.05
    finally:
        server.stop()


def test_evictions_replay_from_the_aof(tmp_path: Path) -> None:
    """Evictions are logged as DEL: a restart without maxmemory has the same keys."""
    server = start_kvred(tmp_path, maxmemory="2mb", maxmemory_policy="allkeys-lru", appendonly="yes")
    try:
        with RawClient(server.port) as c:
            for i in range(0, 6000, 500):
                _write(c, [f"a:{j}" for j in range(i, i + 500)], b"a" * 1000)
            assert int(_info(c, "stats")["evicted_keys"]) > 2000
            _wait_evictions_settled(c)
            before = sorted(c.call("KEYS", "*").split(b"\r\n")[2::2])
    finally:
        server.stop()
    again = start_kvred(tmp_path)
    try:
        with RawClient(again.port) as c:
            after = sorted(c.call("KEYS", "*").split(b"\r\n")[2::2])
    finally:
        again.stop()
    assert before == after
    assert 1000 < len(after) < 4000


def _wait_evictions_settled(client: RawClient) -> None:
    """The cron re-prices keys every 100 ms and may evict a few more as the average
    moves: wait until evicted_keys stays put for half a second."""
    deadline = time.monotonic() + DEADLINE_S
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_evicted = int(_info(client, "stats")["evicted_keys"])
        if now_evicted != last:
            last, since = now_evicted, time.monotonic()
        elif time.monotonic() - since >= 0.5:
            return
        time.sleep(0.05)  # polling interval
    raise AssertionError("evictions did not settle")


def _tree_rss(server: ServerProcess) -> int:
    root = psutil.Process(server.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


def test_rss_growth_follows_maxmemory(tmp_path: Path) -> None:
    """With maxmemory 100mb (allkeys-lru) and 3x that written in 1 KB values, the RSS of
    all of kvred's processes grows by 100 MB +-20% over the empty server."""
    server = start_kvred(tmp_path, maxmemory="100mb", maxmemory_policy="allkeys-lru", workers=1)
    value = b"m" * 1000
    try:
        with RawClient(server.port, timeout=30) as c:
            assert c.call("PING") == b"+PONG\r\n"
            empty = _tree_rss(server)
            for batch in range(300):
                _write(c, [f"m:{batch}:{i}" for i in range(1000)], value)
            # freed memory the allocator still holds is not the dataset: about 1 run in 8
            # kept 12-23 MB more in the writer for seconds after the load (the same at the
            # commit before this check), with the dataset estimate at exactly 100 MB
            assert c.call("MEMORY", "PURGE") == b"+OK\r\n"
            grown = _tree_rss(server) - empty
            evicted = int(_info(c, "stats")["evicted_keys"])
        assert evicted > 100_000
        assert 80 * MB <= grown <= 120 * MB, f"RSS grew by {grown / MB:.1f} MB"
    finally:
        server.stop()


# --- redis-cli's memory scans -----------------------------------------------------------


def test_redis_cli_bigkeys_and_memkeys(tmp_path: Path) -> None:
    cli = require_tool("redis-cli")
    server = start_kvred(tmp_path)
    try:
        with RawClient(server.port) as c:
            for i in range(0, 2000, 200):
                batch = range(i, i + 200)
                c.send(b"".join(
                    encode_command("SET", f"s:{j}", "v" * (j % 50 + 1)) + encode_command("RPUSH", f"l:{j}", "a", "b")
                    + encode_command("HSET", f"h:{j}", "f", "v") + encode_command("SADD", f"st:{j}", "m")
                    + encode_command("ZADD", f"z:{j}", "1", "m") + encode_command("XADD", f"x:{j}", "*", "f", "v")
                    for j in batch))
                for _ in range(6 * 200):
                    assert not c.read_reply().startswith(b"-")
        for option in ("--bigkeys", "--memkeys"):
            done = subprocess.run([cli, "-p", str(server.port), option], capture_output=True, timeout=60)
            out = done.stdout.decode(errors="replace")
            assert done.returncode == 0, (option, out[-2000:], done.stderr[-2000:])
            assert "Sampled 12000 keys" in out, out[-2000:]
            assert "error" not in out.lower() and not done.stderr, (out[-2000:], done.stderr)
            for kind in ("string", "list", "hash", "set", "zset", "stream"):
                assert f"2000 {kind}s" in out, (kind, out[-1500:])
    finally:
        server.stop()


# --- pure: the LFU counter, the time limit, what is tracked ------------------------------


def test_lfu_log_incr() -> None:
    assert lfu_log_incr(LFU_INIT_VAL, 10, rand=0.999) == LFU_INIT_VAL + 1  # at or below INIT: always
    assert lfu_log_incr(LFU_INIT_VAL + 1, 10, rand=0.09) == LFU_INIT_VAL + 2  # 1 / (1 * 10 + 1) = 0.0909
    assert lfu_log_incr(LFU_INIT_VAL + 1, 10, rand=0.091) == LFU_INIT_VAL + 1
    assert lfu_log_incr(255, 10, rand=0.0) == 255
    assert lfu_log_incr(100, 0, rand=0.999) == 101  # factor 0: every access counts


def test_lfu_decay() -> None:
    word = 1000 << 8 | 20
    assert lfu_decayed(word, 1000, 1) == 20
    assert lfu_decayed(word, 1003, 1) == 17
    assert lfu_decayed(word, 1010, 2) == 15
    assert lfu_decayed(word, 2000, 1) == 0
    assert lfu_decayed(word, 2000, 0) == 20  # decay time 0: never
    assert lfu_decayed(65530 << 8 | 20, 4, 1) == 11  # the 16-bit minutes wrapped (Redis: 65535 - then + now)


def test_eviction_time_limit_and_tracking() -> None:
    assert eviction_time_limit_us(0) == 0
    assert eviction_time_limit_us(10) == 500
    assert eviction_time_limit_us(11) == 575
    assert eviction_time_limit_us(100) is None
    assert tracking_for("allkeys-lfu", False) == TRACK_LFU
    assert tracking_for("volatile-lru", False) == TRACK_LRU
    assert tracking_for("noeviction", True) == TRACK_LRU
    assert tracking_for("volatile-ttl", False) == TRACK_NONE


def test_settings_validated(tmp_path: Path) -> None:
    """Bad values stop kvred at start with Redis's reasons."""
    import sys

    for flag, value, reason in (("--maxmemory-policy", "bogus", "must be one of the following: volatile-lru"),
                                ("--maxmemory-samples", "0", "between 1 and 2147483647"),
                                ("--maxmemory-eviction-tenacity", "101", "between 0 and 100"),
                                ("--lfu-log-factor", "-1", "between 0 and 2147483647"),
                                ("--maxmemory", "12zb", "memory value")):
        done = subprocess.run([sys.executable, "-m", "kvred", "--port", str(free_port()), "--dir", str(tmp_path),
                               flag, value], capture_output=True, timeout=30, cwd=Path(__file__).parent.parent)
        assert done.returncode == 2, (flag, done.stderr)
        assert reason in done.stderr.decode(), (flag, done.stderr)


def test_settings_from_config_file(tmp_path: Path) -> None:
    conf = tmp_path / "kvred.conf"
    conf.write_text("maxmemory 100mb\nmaxmemory-policy allkeys-lru\nmaxmemory-samples 10\n"
                    "maxmemory-eviction-tenacity 20\nlfu-log-factor 5\nlfu-decay-time 3\n")
    from kvred.config import parse_args

    config = parse_args([str(conf)])
    assert (config.maxmemory, config.maxmemory_policy, config.maxmemory_samples) == (100 * MB, "allkeys-lru", 10)
    assert (config.maxmemory_eviction_tenacity, config.lfu_log_factor, config.lfu_decay_time) == (20, 5, 3)
    server = start_kvred(tmp_path, maxmemory="1gb", maxmemory_policy="volatile-ttl")
    try:
        with RawClient(server.port) as c:
            assert c.call("CONFIG", "GET", "maxmemory") == b"*2\r\n$9\r\nmaxmemory\r\n$10\r\n1073741824\r\n"
            assert c.call("CONFIG", "GET", "maxmemory-policy") == (
                b"*2\r\n$16\r\nmaxmemory-policy\r\n$12\r\nvolatile-ttl\r\n")
            assert _info(c, "memory")["maxmemory_human"] == "1.00G"
    finally:
        server.stop()


# --- pure: the estimate and the evictor on a keyspace, no server ---------------------------


class _Limits:
    """The settings the evictor reads (kvred/config.py's names)."""

    def __init__(self, maxmemory: int, policy: str) -> None:
        self.maxmemory = maxmemory
        self.maxmemory_policy = policy
        self.maxmemory_samples = 5
        self.maxmemory_eviction_tenacity = 100  # no time limit: deterministic
        self.lfu_log_factor = 10
        self.lfu_decay_time = 1
        self.track_key_access = False


def _keyspace(policy: str, maxmemory: int) -> tuple[Any, Any, Any]:
    from kvred.eviction import Evictor
    from kvred.keyspace import Databases
    from kvred.memory import DatasetEstimate

    limits = _Limits(maxmemory, policy)
    databases = Databases(2, False, limits)
    databases.set_tracking(tracking_for(policy, False))
    estimate = DatasetEstimate(2)
    return databases, estimate, Evictor(databases, limits, estimate)


def test_estimate_follows_deletions() -> None:
    databases, estimate, _evictor = _keyspace("noeviction", 0)
    db = databases.dbs[0]
    for i in range(2000):
        db.set_key(b"key:%d" % i, b"x" * 100)
    full = estimate.dataset_bytes(databases.dbs)
    assert 2000 * 200 < full < 2000 * 400  # name, value, entries: about 260 bytes a key
    for i in range(1000):
        db.delete(b"key:%d" % i)
    assert estimate.dataset_bytes(databases.dbs) == pytest.approx(full / 2, rel=0.01)
    databases.dbs[1].set_key(b"big", b"y" * 1_000_000)
    assert estimate.dataset_bytes(databases.dbs) > full / 2 + 1_000_000


def test_evictor_lru_takes_the_idlest_and_logs_del() -> None:
    databases, estimate, evictor = _keyspace("allkeys-lru", 0)
    logged: list[list[bytes]] = []
    databases.propagate = lambda db, argv: logged.append(argv)
    db = databases.dbs[0]
    for i in range(1000):
        db.set_key(b"k:%d" % i, b"x" * 100)
        db.access[b"k:%d" % i] = db.clock - (1000 - i) * 1000  # k:0 idle longest
    full = estimate.dataset_bytes(databases.dbs)
    evictor.config.maxmemory = full // 2
    assert evictor.perform() == EVICT_OK
    assert estimate.dataset_bytes(databases.dbs) <= full // 2
    gone = [i for i in range(1000) if b"k:%d" % i not in db.data]
    assert 450 <= len(gone) <= 550
    assert sum(gone) / len(gone) < 400  # the oldest went (sampled, so about: their mean index)
    assert databases.evicted_keys == len(gone) == len(logged)
    assert all(argv[0] == b"DEL" for argv in logged)


def test_evictor_fails_when_nothing_may_go() -> None:
    databases, estimate, evictor = _keyspace("volatile-ttl", 1)
    databases.dbs[0].set_key(b"persistent", b"v")
    assert evictor.perform() == EVICT_FAIL
    evictor.config.maxmemory_policy = "noeviction"
    assert evictor.perform() == EVICT_FAIL
    evictor.config.maxmemory_policy = "allkeys-random"
    assert evictor.perform() == EVICT_OK
    assert not databases.dbs[0].data
