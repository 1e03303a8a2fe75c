"""Differential tests of the HyperLogLog commands (PFADD, PFCOUNT, PFMERGE, PFDEBUG,
PFSELFTEST) against redis-server 7.0: replies, and the bytes of the values themselves
(GET after every step), which must be identical (sparse edits, promotion to dense, the
cached cardinality); HLL values copied with GET/SET between the two servers; the AOF.

The machinery is tests/differential.py.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from aoftools import aof_commands, kill_hard, rewrite_and_wait
from conftest import ServerProcess, against_redis, start_kvred
from differential import (  # noqa: F401  (servers: the fixture)
    C2,
    C,
    Case,
    Cases,
    Servers,
    check_case,
    check_survived,
    hello_masked,
    int_range,
    servers,
)
from rawclient import RawClient

from kvred.commands.hyperloglog import murmurhash64a

CASES = Cases()
case, arity = CASES.case, CASES.arity

MS_2100 = "4102444800123"
T_2100 = "4102444800"

# Values crafted byte by byte: what PFADD creates (18 bytes), and corrupted ones.
HEADER_SPARSE = b"HYLL\x01\x00\x00\x00"
VALID_CACHE_0 = bytes(8)
INVALID_CACHE = bytes(7) + b"\x80"
EMPTY = HEADER_SPARSE + VALID_CACHE_0 + b"\x7f\xff"  # XZERO 16384
SHORT = HEADER_SPARSE + INVALID_CACHE + b"\x00"  # ZERO 1: one register only
OVERFLOW = HEADER_SPARSE + INVALID_CACHE + b"\x7f\xff\x00"  # 16385 registers
HALF = HEADER_SPARSE + INVALID_CACHE + b"\x5f\x3f"  # XZERO 8000: registers 8000.. missing
CACHED_CORRUPT = HEADER_SPARSE + b"\x2a" + bytes(7) + b"\x00"  # valid cache (42), no opcodes
DENSE_ZEROS = b"HYLL\x00\x00\x00\x00" + INVALID_CACHE + bytes(12288)
UNUSED_BYTES = b"HYLL\x01\xaa\xbb\xcc" + INVALID_CACHE + b"\x7f\xff"


def elements(seed: int, count: int, prefix: str = "e") -> list[bytes]:
    rng = random.Random(seed)
    return [f"{prefix}{rng.randrange(10**12)}".encode() * rng.randint(1, 3) for _ in range(count)]


def register_of(element: bytes) -> int:
    return murmurhash64a(element) & 16383


LOW = [e for e in elements(99, 400, "low") if register_of(e) < 8000][:3]
HIGH = [e for e in elements(98, 400, "high") if register_of(e) >= 8000][:3]


def adds(key: str, seed: int, total: int, batch: int) -> list[Any]:
    """PFADDs of `total` elements in batches, each followed by GET (the bytes) and,
    every other batch, PFCOUNT then GET (the cache written)."""
    steps = []
    items = elements(seed, total)
    for n, start in enumerate(range(0, total, batch)):
        steps.append(C("PFADD", key, *items[start : start + batch]))
        steps.append(C("GET", key))
        if n % 2:
            steps += [C("PFCOUNT", key), C("GET", key)]
    return steps


# --- PFADD / PFCOUNT ---------------------------------------------------------------------

case("pfadd-basic", C("PFADD", "h", "a", "b", "c"), C("GET", "h"), C("TYPE", "h"), C("OBJECT", "ENCODING", "h"),
     C("STRLEN", "h"), C("PFCOUNT", "h"), C("GET", "h"), C("PFADD", "h", "a"), C("GET", "h"),
     C("PFADD", "h", "d"), C("GET", "h"), C("PFCOUNT", "h"), C("PFCOUNT", "h"), C("GET", "h"),
     C("PFDEBUG", "ENCODING", "h"), C("PFDEBUG", "DECODE", "h"))
case("pfadd-no-elements", C("PFADD", "h"), C("EXISTS", "h"), C("GET", "h"), C("PFADD", "h"), C("PFCOUNT", "h"),
     C("OBJECT", "ENCODING", "h"))
case("pfadd-binary-and-empty", C("PFADD", "h", "", b"\x00", b"\xff\xfe\r\n", "x" * 8, "y" * 9, "z" * 100),
     C("GET", "h"), C("PFCOUNT", "h"), C("PFADD", "h", ""), C("PFADD", "h", "a" * 7, "b" * 15, "c" * 16, "d" * 1000),
     C("GET", "h"), C("PFCOUNT", "h"))
case("pfcount-missing", C("PFCOUNT", "nokey"), C("EXISTS", "nokey"), C("PFCOUNT", "a", "b"), C("EXISTS", "a"))
for seed, total, batch in ((1, 60, 7), (2, 400, 23), (3, 2500, 250), (4, 3000, 40)):
    # grows from sparse through the hll-sparse-max-bytes promotion to dense
    case(f"pfadd-growth-{total}-by-{batch}", *adds("h", seed, total, batch), C("PFDEBUG", "ENCODING", "h"),
         C("OBJECT", "ENCODING", "h"))
case("pfadd-dense-large", C("PFADD", "h", *elements(5, 20000)), C("GET", "h"), C("PFCOUNT", "h"), C("GET", "h"),
     C("PFADD", "h", *elements(6, 5000)), C("PFCOUNT", "h"), C("GET", "h"), C("PFADD", "h", *elements(6, 100)),
     C("GET", "h"))
case("pfadd-one-at-a-time", *[C("PFADD", "h", e) for e in elements(7, 150)], C("GET", "h"), C("PFCOUNT", "h"))
case("pfcount-multi", C("PFADD", "a", *elements(8, 300)), C("PFADD", "b", *elements(9, 5000)),
     C("PFADD", "c", *elements(8, 100)), C("GET", "a"), C("GET", "b"),
     C("PFCOUNT", "a", "b"), C("PFCOUNT", "a", "c"), C("PFCOUNT", "a", "nokey"), C("PFCOUNT", "a", "a"),
     C("PFCOUNT", "nokey", "nokey2"), C("PFCOUNT", "a", "b", "c", "nokey"),
     # on the fly: the keys' bytes (and their invalid caches) are untouched
     C("GET", "a"), C("GET", "b"), C("GET", "c"), C("PFCOUNT", "c"))

# --- PFMERGE --------------------------------------------------------------------------------

case("pfmerge-sparse", C("PFADD", "a", *elements(10, 50)), C("PFADD", "b", *elements(11, 80)),
     C("PFMERGE", "d", "a", "b"), C("GET", "d"), C("PFCOUNT", "d"), C("PFDEBUG", "ENCODING", "d"),
     C("OBJECT", "ENCODING", "d"), C("PFMERGE", "d", "a"), C("GET", "d"), C("PFMERGE", "a", "b"), C("GET", "a"),
     C("PFMERGE", "b"), C("GET", "b"), C("PFCOUNT", "a", "b", "d"))
case("pfmerge-adjacent-registers", C("PFADD", "a", *elements(12, 700)), C("PFADD", "b", *elements(13, 700)),
     C("PFMERGE", "b", "a"), C("GET", "b"), C("PFDEBUG", "ENCODING", "b"), C("PFMERGE", "c", "a", "b", "a"),
     C("GET", "c"))
case("pfmerge-sparse-grows-dense", C("PFADD", "a", *elements(14, 1200)), C("PFADD", "b", *elements(15, 1200)),
     C("PFDEBUG", "ENCODING", "a"), C("PFMERGE", "d", "a", "b"), C("PFDEBUG", "ENCODING", "d"), C("GET", "d"),
     C("PFCOUNT", "d"))
case("pfmerge-dense", C("PFADD", "a", *elements(16, 5000)), C("PFADD", "b", *elements(17, 30)),
     C("PFMERGE", "b", "a"), C("PFDEBUG", "ENCODING", "b"), C("GET", "b"), C("PFCOUNT", "b"), C("GET", "b"),
     C("PFMERGE", "c", "b", "nokey"), C("GET", "c"), C("PFADD", "e", "x"), C("PFMERGE", "e", "c"), C("GET", "e"))
case("pfmerge-missing-sources", C("PFMERGE", "d"), C("GET", "d"), C("PFMERGE", "d2", "x", "y"), C("GET", "d2"),
     C("EXISTS", "x"), C("PFCOUNT", "d2"), C("GET", "d2"))
case("pfmerge-keeps-cache-invalid", C("PFADD", "a", "x"), C("PFCOUNT", "a"), C("GET", "a"), C("PFMERGE", "a"),
     C("GET", "a"), C("PFCOUNT", "a"), C("GET", "a"))

# --- TTLs: in-place changes keep them -----------------------------------------------------

case("ttl-kept", C("PFADD", "h", "a"), C("PEXPIREAT", "h", MS_2100), C("PFADD", "h", "b"), C("PTTL", "h", norm=int_range(1, 10**13)),
     C("PEXPIRETIME", "h"), C("PFCOUNT", "h"), C("PEXPIRETIME", "h"), C("PFMERGE", "h", "nokey"),
     C("PEXPIRETIME", "h"), C("PFADD", "h", *elements(18, 3000)), C("PEXPIRETIME", "h"),
     C("PFDEBUG", "TODENSE", "h"), C("PEXPIRETIME", "h"), C("SET", "d", EMPTY, "EXAT", T_2100),
     C("PFMERGE", "d", "h"), C("PEXPIRETIME", "d"), C("GET", "d"))

# --- values copied in: GET/SET bytes ------------------------------------------------------

case("set-empty-then-pfadd", C("SET", "h", EMPTY), C("OBJECT", "ENCODING", "h"), C("PFCOUNT", "h"),
     C("OBJECT", "ENCODING", "h"), C("PFADD", "h", "a"), C("GET", "h"))
case("set-embstr-pfadd-unshares", C("SET", "h", EMPTY), C("PFADD", "h", "a"), C("OBJECT", "ENCODING", "h"),
     C("SET", "h2", EMPTY), C("PFADD", "h2"), C("OBJECT", "ENCODING", "h2"),
     C("SET", "h3", EMPTY), C("PFCOUNT", "h3", "h3"), C("OBJECT", "ENCODING", "h3"))
case("set-dense-zeros", C("SET", "h", DENSE_ZEROS), C("PFCOUNT", "h"), C("GET", "h"), C("PFADD", "h", "a", "b"),
     C("PFCOUNT", "h"), C("PFDEBUG", "ENCODING", "h"))
case("unused-header-bytes-kept", C("SET", "h", UNUSED_BYTES), C("PFADD", "h", "a"), C("GET", "h"),
     C("PFDEBUG", "TODENSE", "h"), C("GETRANGE", "h", "0", "15"), C("SET", "h", UNUSED_BYTES),
     C("PFADD", "h", *elements(19, 3000)), C("GETRANGE", "h", "0", "15"))
case("cache-trusted", C("SET", "h", CACHED_CORRUPT), C("PFCOUNT", "h"), C("PFCOUNT", "h", "h"))

# --- errors ------------------------------------------------------------------------------

arity("PFADD")
arity("PFCOUNT")
arity("PFMERGE")
arity("PFDEBUG")
arity("PFDEBUG", "ENCODING")
arity("PFDEBUG", "ENCODING", "h", "x")
arity("PFSELFTEST", "x")
case("not-an-hll", C("SET", "s", "hello"), C("PFADD", "s", "a"), C("PFADD", "s"), C("PFCOUNT", "s"),
     C("PFCOUNT", "s", "nokey"), C("PFCOUNT", "nokey", "s"), C("PFMERGE", "s"), C("PFMERGE", "d", "s"),
     C("EXISTS", "d"), C("PFDEBUG", "ENCODING", "s"), C("GET", "s"), C("OBJECT", "ENCODING", "s"),
     C("SET", "i", "12345678901234567"), C("PFADD", "i", "a"), C("PFCOUNT", "i"),
     C("SET", "m", b"HYLM" + EMPTY[4:]), C("PFCOUNT", "m"),
     C("SET", "e", b"HYLL\x02" + EMPTY[5:]), C("PFCOUNT", "e"), C("SET", "x", b"HYLL\x01"), C("PFADD", "x"),
     C("SET", "dshort", DENSE_ZEROS[:-1]), C("PFCOUNT", "dshort"), C("SET", "dlong", DENSE_ZEROS + b"\x00"),
     C("PFADD", "dlong", "a"), C("SET", "sparse-long", EMPTY + bytes(20000)), C("PFDEBUG", "ENCODING", "sparse-long"))
case("wrongtype", C("RPUSH", "l", "a"), C("PFADD", "l", "a"), C("PFCOUNT", "l"), C("PFCOUNT", "l", "x"),
     C("PFMERGE", "l", "x"), C("PFMERGE", "d", "l"), C("EXISTS", "d"), C("PFDEBUG", "GETREG", "l"),
     C("PFADD", "h", "a"), C("LPUSH", "h", "x"), C("SADD", "h", "x"), C("HSET", "h", "f", "v"), C("INCR", "h"),
     C("APPEND", "h", "x"), C("PFCOUNT", "h"))
case("corrupted", C("SET", "short", SHORT), C("PFCOUNT", "short"), C("GET", "short"), C("PFADD", "short", "a"),
     C("PFCOUNT", "short", "nokey"), C("PFMERGE", "d", "short"), C("EXISTS", "d"),
     C("PFDEBUG", "GETREG", "short"), C("PFDEBUG", "TODENSE", "short"), C("PFDEBUG", "DECODE", "short"),
     C("PFDEBUG", "ENCODING", "short"), C("OBJECT", "ENCODING", "short"),
     C("SET", "over", OVERFLOW), C("PFCOUNT", "over"), C("PFADD", "over", "a"), C("GET", "over"),
     C("PFADD", "over", *elements(20, 30)), C("PFCOUNT", "over", "over"), C("PFDEBUG", "DECODE", "over"))
case("corrupted-partial-pfadd", C("SET", "h", HALF), C("PFADD", "h", *LOW), C("GET", "h"),
     C("PFADD", "h", LOW[0], HIGH[0], LOW[1]), C("GET", "h"), C("PFADD", "h", *HIGH), C("GET", "h"),
     C("PFDEBUG", "DECODE", "h"), C("PFCOUNT", "h"))

# --- PFDEBUG / PFSELFTEST ---------------------------------------------------------------------

case("pfdebug", C("PFADD", "h", *elements(21, 40)), C("PFDEBUG", "DECODE", "h"), C("PFDEBUG", "ENCODING", "h"),
     C("PFDEBUG", "encoding", "h"), C("PFDEBUG", "FOO", "h"), C("PFDEBUG", "FOO", "nokey"),
     C("PFDEBUG", "GETREG", "nokey"), C("PFDEBUG", "GETREG", "h"), C("GET", "h"),
     C("PFDEBUG", "ENCODING", "h"), C("PFDEBUG", "DECODE", "h"), C("PFDEBUG", "TODENSE", "h"),
     C("PFADD", "h2", "a"), C("PFDEBUG", "TODENSE", "h2"), C("PFDEBUG", "TODENSE", "h2"), C("GET", "h2"),
     C("PFCOUNT", "h2"), C("PFDEBUG", "getreg", "h2"), C("PFDEBUG", b"a\r\nb", "h2"), C("PFDEBUG", b"todense\x00x", "h2"),
     C("PFADD", "e"), C("PFDEBUG", "DECODE", "e"), C("SET", "z", HEADER_SPARSE + VALID_CACHE_0),
     C("PFDEBUG", "DECODE", "z"))

# --- WATCH / MULTI / RESP3 ---------------------------------------------------------------------


def watch_case(id: str, *steps: object) -> None:
    """h exists with a valid cache; WATCH h, the steps, then MULTI PING EXEC."""
    case(id, C("PFADD", "h", "a", "b"), C("PFCOUNT", "h"), C("WATCH", "h"), *steps,
         C("MULTI"), C("PING"), C("EXEC"))


watch_case("watch-pfadd", C2("PFADD", "h", "c"))
watch_case("watch-pfadd-no-change", C2("PFADD", "h", "a"), C2("PFADD", "h"))
watch_case("watch-pfcount-cached", C2("PFCOUNT", "h"), C2("PFCOUNT", "h", "x"))
watch_case("watch-pfcount-recomputes", C2("PFADD", "x", "c"), C2("PFMERGE", "x", "h"), C2("PFCOUNT", "h", "x"))
watch_case("watch-pfcount-writes-cache", C("UNWATCH"), C2("PFADD", "h", "c"), C("WATCH", "h"), C2("PFCOUNT", "h"))
watch_case("watch-pfmerge-dest", C2("PFMERGE", "h"))
watch_case("watch-pfmerge-source", C2("PFMERGE", "x", "h"))
watch_case("watch-pfdebug-todense", C2("PFDEBUG", "TODENSE", "h"))
watch_case("watch-pfdebug-getreg", C2("PFDEBUG", "GETREG", "h"))
watch_case("watch-pfdebug-encoding", C2("PFDEBUG", "ENCODING", "h"), C2("PFDEBUG", "TODENSE", "missing"))
case("multi-exec", C("MULTI"), C("PFADD", "h", "a", "b"), C("PFCOUNT", "h"), C("PFADD", "h2", *elements(22, 50)),
     C("PFMERGE", "d", "h", "h2"), C("PFCOUNT", "d"), C("PFCOUNT", "h", "h2"), C("GET", "d"), C("EXEC"),
     C("MULTI"), C("PFADD", "s"), C("SET", "s", "x"), C("PFADD", "s", "a"), C("PFCOUNT", "s"), C("EXEC"))
case("multi-queue-errors", C("MULTI"), C("PFADD"), C("PFCOUNT"), C("PFDEBUG", "x"), C("EXEC"))
case("resp3", C("HELLO", "3", norm=hello_masked), C("PFADD", "h", "a"), C("PFADD", "h", "a"), C("PFCOUNT", "h"),
     C("PFCOUNT", "h", "x"), C("PFMERGE", "d", "h"), C("GET", "d"), C("PFDEBUG", "ENCODING", "d"),
     C("PFDEBUG", "DECODE", "d"), C("PFDEBUG", "TODENSE", "d"), C("PFCOUNT", "nokey"), C("SET", "s", "x"),
     C("PFCOUNT", "s"), C("PFADD", "short", "x"), C("SET", "short", SHORT), C("PFCOUNT", "short"))


@pytest.mark.parametrize("seq", CASES, ids=CASES.ids())
def test_same_replies_as_redis(servers: Servers, seq: Case) -> None:  # noqa: F811
    check_case(servers, seq)


# --- values copied between the servers -------------------------------------------------------


@pytest.mark.parametrize("size", [3, 300, 2000, 30000])
def test_values_copied_both_ways(servers: Servers, size: int) -> None:  # noqa: F811
    """An HLL built on one server, copied with GET/SET to the other, keeps working there
    exactly as on the server that built it (both directions)."""
    with RawClient(servers.redis.port) as redis, RawClient(servers.kvred.port) as kvred:
        for c in (redis, kvred):
            c.call("FLUSHALL")
        first, more = elements(100 + size, size), elements(200 + size, size // 2 + 5)
        for source, target in ((redis, kvred), (kvred, redis)):
            assert source.call("PFADD", "h", *first) == b":1\r\n"
            value = source.call("GET", "h")
            assert value.startswith(b"$") and b"HYLL" in value
            raw = value.split(b"\r\n", 1)[1][:-2]
            assert target.call("SET", "copy", raw) == b"+OK\r\n"
            for c in (source, target):
                name = "h" if c is source else "copy"
                c.call("PFADD", name, *more)
            assert source.call("GET", "h") == target.call("GET", "copy")
            assert source.call("PFCOUNT", "h") == target.call("PFCOUNT", "copy")
            assert source.call("GET", "h") == target.call("GET", "copy")
            assert source.call("PFCOUNT", "h", "nokey") == target.call("PFCOUNT", "copy", "nokey")
            for c in (source, target):
                c.call("FLUSHALL")


def test_pfselftest(servers: Servers) -> None:  # noqa: F811
    """Redis's self-test adds 10 million elements (seconds); kvred's is shorter."""
    with RawClient(servers.kvred.port) as kvred:
        assert kvred.call("PFSELFTEST") == b"+OK\r\n"


def test_kvred_survived_the_cases(servers: Servers) -> None:  # noqa: F811
    check_survived(servers)


# --- AOF -------------------------------------------------------------------------------------

WRITES: list[list[str | bytes]] = [
    ["PFADD", "a", *elements(30, 200)],
    ["PEXPIREAT", "a", MS_2100],
    ["PFADD", "a", *elements(30, 10)],  # no change: not logged
    ["PFCOUNT", "a"],  # writes the cache
    ["PFCOUNT", "a"],  # cached: nothing
    ["PFADD", "b", *elements(31, 4000)],
    ["PFADD", "b", "x"],
    ["PFCOUNT", "a", "b"],  # nothing
    ["PFMERGE", "m", "a", "b"],
    ["PFCOUNT", "m"],
    ["SET", "c", EMPTY, "EXAT", T_2100],
    ["PFADD", "c", "one", "two"],
    ["PFADD", "e"],
    ["PFADD", "t", "x"],
    ["PFDEBUG", "TODENSE", "t"],
]
READS: list[list[str]] = [
    ["GET", "a"], ["GET", "b"], ["GET", "m"], ["GET", "c"], ["GET", "e"], ["GET", "t"],
    ["PEXPIRETIME", "a"], ["PEXPIRETIME", "c"], ["PEXPIRETIME", "m"], ["DBSIZE"],
    ["PFCOUNT", "a", "b", "c"], ["TYPE", "a"],
]


def _reads(server: ServerProcess) -> list[bytes]:
    with RawClient(server.port) as c:
        return [c.call(*cmd) for cmd in READS]


@pytest.mark.skipif(against_redis(), reason="kvred's AOF file")
def test_aof_replay_and_rewrite(tmp_path: Path) -> None:
    server = start_kvred(tmp_path)
    try:
        with RawClient(server.port) as c:
            for cmd in WRITES:
                assert not c.call(*cmd).startswith(b"-"), cmd
        before = _reads(server)
        logged = aof_commands((tmp_path / "kvred.aof").read_bytes())
        names = [cmd[0].upper() for cmd in logged]
        assert names.count(b"PFCOUNT") == 2  # the two that wrote a cache
        assert sum(cmd[:2] == [b"PFADD", b"a"] for cmd in logged) == 1
        kill_hard(server)
        server = start_kvred(tmp_path)
        assert _reads(server) == before  # the same bytes, caches included
        rewrite_and_wait(server)
        rewritten = aof_commands((tmp_path / "kvred.aof").read_bytes())
        assert all(len(cmd) <= 65 for cmd in rewritten), rewritten  # the name and 64 items
        assert not any(cmd[0].upper().startswith(b"PF") for cmd in rewritten)
        kill_hard(server)
        server = start_kvred(tmp_path)
        assert _reads(server) == before
    finally:
        server.stop()
