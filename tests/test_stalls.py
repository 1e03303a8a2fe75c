"""One client's command must not stall every other client for longer than redis-server
would: the wait of a second client's GET while the command runs, kvred and
redis-server 7.0.15 side by side, with the same data and the same command.

Issue figures before the fixes (kvred vs redis-server): KEYS <1 MB literal> 3 s vs 5 ms,
KEYS [<1 MB class>] 1.1 s vs 3 ms, 200 pipelined SETRANGE on a 64 MB string 15.6 s vs
1 ms, 1024 APPENDs of 16 KB 3.0 s vs 65 ms, SETRANGE k 536870911 x 2.9 s vs 0.22 s,
CLIENT SETNAME <64 MB> 2.8 s vs 0.2 s, HELLO 3 SETNAME <64 MB> stalled a worker 2.1 s,
RANDOMKEY 2.7 ms each on 1M keys vs 10 us, and a 20-star KEYS pattern never finished.

Each scenario prints both waits (`-s` shows them). The assertion is a generous bound on
kvred's wait, far below the old figure and far above the new one, so it is not flaky.
All traffic goes to 127.0.0.1; every process is stopped by its PID.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from conftest import ServerProcess, against_redis
from oracle import Servers, total_rss
from rawclient import RawClient, encode_command

COMMAND_TIMEOUT_S = 60.0
PROBE_INTERVAL_S = 0.002
MB = 1024 * 1024


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    started = Servers(tmp_path_factory.mktemp("stalls"))
    try:
        # one worker: a stall inside a worker (HELLO SETNAME) then hits the probe too
        yield {"kvred": started.start("kvred", workers=1, appendonly="no"), "redis": started.start("redis")}
    finally:
        started.stop_all()


@dataclass
class Stall:
    """What a scenario measured on one server."""

    command_s: float  # the stalling request, from send to its last reply
    worst_wait_s: float  # the longest GET round trip of the probe meanwhile
    probes: int


def measure(server: ServerProcess, setup: Callable[[RawClient], None], request: bytes, replies: int,
            check: Callable[[list[bytes]], None]) -> Stall:
    """Run `setup`, then send `request` on one connection while another sends GETs, one
    at a time, until the `replies` replies of the request have arrived."""
    with RawClient(server.port, timeout=COMMAND_TIMEOUT_S) as c, \
            RawClient(server.port, timeout=COMMAND_TIMEOUT_S) as probe:
        assert c.call("FLUSHALL") == b"+OK\r\n"
        setup(c)
        assert probe.call("SET", "probe", "p") == b"+OK\r\n"
        done = threading.Event()
        waits: list[float] = []

        def probing() -> None:
            while not done.is_set():
                started = time.perf_counter()
                assert probe.call("GET", "probe") == b"$1\r\np\r\n"
                waits.append(time.perf_counter() - started)
                time.sleep(PROBE_INTERVAL_S)

        prober = threading.Thread(target=probing, daemon=True)
        prober.start()
        time.sleep(0.02)  # the probe is running before the request goes out
        started = time.perf_counter()
        c.send(request)
        got = [c.read_reply() for _ in range(replies)]
        command_s = time.perf_counter() - started
        done.set()
        prober.join(COMMAND_TIMEOUT_S)
        assert not prober.is_alive()
        check(got)
        assert c.call("PING") == b"+PONG\r\n"
    return Stall(command_s, max(waits), len(waits))


def compare(servers: dict[str, ServerProcess], name: str, setup: Callable[[RawClient], None], request: bytes,
            replies: int, check: Callable[[list[bytes]], None], bound_s: float) -> None:
    results = {kind: measure(server, setup, request, replies, check) for kind, server in servers.items()}
    k, r = results["kvred"], results["redis"]
    print(f"\n{name}: worst GET wait kvred {k.worst_wait_s * 1000:.1f} ms, redis-server "
          f"{r.worst_wait_s * 1000:.1f} ms (command {k.command_s * 1000:.1f} / {r.command_s * 1000:.1f} ms, "
          f"{k.probes} / {r.probes} probes)")
    if not against_redis():
        assert k.worst_wait_s < bound_s, f"{name}: another client waited {k.worst_wait_s:.3f} s"


# ---------------------------------------------------------------- strings changed in place


def test_setrange_on_a_large_string(servers: dict[str, ServerProcess]) -> None:
    def setup(c: RawClient) -> None:
        assert c.call("SET", "s", b"s" * (64 * MB)) == b"+OK\r\n"

    request = b"".join(encode_command("SETRANGE", "s", str(i * 300_000), "z") for i in range(200))
    compare(servers, "200 x SETRANGE on 64 MB", setup, request, 200, all_equal(b":67108864\r\n"), bound_s=1.0)


def test_appends_of_16kb(servers: dict[str, ServerProcess]) -> None:
    chunk = b"a" * 16384
    request = encode_command("APPEND", "a", chunk) * 1024
    compare(servers, "1024 x APPEND 16 KB", lambda c: None, request, 1024,
            lambda got: assert_eq(got[-1], b":%d\r\n" % (1024 * 16384)), bound_s=1.0)


def test_setrange_at_a_huge_offset(servers: dict[str, ServerProcess]) -> None:
    compare(servers, "SETRANGE k 536870911 x", lambda c: None, encode_command("SETRANGE", "k", "536870911", "x"), 1,
            lambda got: assert_eq(got[0], b":536870912\r\n"), bound_s=1.5)


def assert_eq(got: bytes, expected: bytes) -> None:
    assert got == expected, got[:100]


def all_equal(expected: bytes) -> Callable[[list[bytes]], None]:
    def check(got: list[bytes]) -> None:
        for reply in got:
            assert_eq(reply, expected)

    return check


# ---------------------------------------------------------------- client names


def test_client_setname_of_64mb(servers: dict[str, ServerProcess]) -> None:
    name = b"n" * (64 * MB)
    compare(servers, "CLIENT SETNAME <64 MB>", lambda c: None, encode_command("CLIENT", "SETNAME", name), 1,
            lambda got: assert_eq(got[0], b"+OK\r\n"), bound_s=1.0)


def test_hello_setname_of_64mb(servers: dict[str, ServerProcess]) -> None:
    name = b"n" * (64 * MB)
    compare(servers, "HELLO 3 SETNAME <64 MB>", lambda c: None, encode_command("HELLO", "2", "SETNAME", name), 1,
            lambda got: assert_eq(got[0][:1], b"*"), bound_s=1.0)


# ---------------------------------------------------------------- RANDOMKEY


def test_randomkey_on_a_million_keys(servers: dict[str, ServerProcess]) -> None:
    def setup(c: RawClient) -> None:
        for start in range(0, 1_000_000, 100_000):
            batch = [encode_command("MSET", *[f"key:{i}" for j in range(start + k * 1000, start + (k + 1) * 1000)
                                               for i in (j, j)]) for k in range(100)]
            c.send(b"".join(batch))
            for _ in range(100):
                assert c.read_reply() == b"+OK\r\n"

    def check(got: list[bytes]) -> None:
        assert all(reply.startswith(b"$") and b"\r\nkey:" in reply for reply in got), got[:3]
        assert len(set(got)) > 400, "RANDOMKEY keeps returning the same keys"

    compare(servers, "500 x RANDOMKEY on 1M keys", setup, encode_command("RANDOMKEY") * 500, 500, check,
            bound_s=0.5)


# ---------------------------------------------------------------- glob patterns


def _keys(c: RawClient) -> None:
    c.send(b"".join(encode_command("SET", f"user:{i}:name", "x") for i in range(1000)))
    for _ in range(1000):
        assert c.read_reply() == b"+OK\r\n"
    assert c.call("SET", b"a" * 40, "v") == b"+OK\r\n"


def empty_array(got: list[bytes]) -> None:
    assert got == [b"*0\r\n"], got[:1]


def test_keys_with_a_1mb_literal_pattern(servers: dict[str, ServerProcess]) -> None:
    compare(servers, "KEYS <1 MB literal>", _keys, encode_command("KEYS", b"k" * MB), 1, empty_array, bound_s=0.3)


def test_keys_with_a_1mb_class(servers: dict[str, ServerProcess]) -> None:
    pattern = b"[" + bytes(range(0x30, 0x7B)) * (MB // 75) + b"]"
    compare(servers, "KEYS [<1 MB class>]", _keys, encode_command("KEYS", pattern), 1, empty_array, bound_s=0.3)


def test_scan_match_with_a_1mb_pattern(servers: dict[str, ServerProcess]) -> None:
    def check(got: list[bytes]) -> None:
        assert got[0].endswith(b"*0\r\n"), got[0][:60]

    compare(servers, "SCAN 0 MATCH <1 MB> COUNT 2000", _keys,
            encode_command("SCAN", "0", "MATCH", b"u" * MB, "COUNT", "2000"), 1, check, bound_s=0.3)


def test_config_get_with_a_1mb_pattern(servers: dict[str, ServerProcess]) -> None:
    compare(servers, "CONFIG GET <1 MB>", lambda c: None, encode_command("CONFIG", "GET", b"*" + b"x" * MB), 1,
            empty_array, bound_s=0.3)


def test_keys_with_twenty_stars(servers: dict[str, ServerProcess]) -> None:
    """Exponential backtracking: this never finished (every client hung)."""
    compare(servers, "KEYS a*a*...*b (20 stars) over 1000 keys and a 40-byte one", _keys,
            encode_command("KEYS", b"a*" * 20 + b"b"), 1, empty_array, bound_s=0.3)


@pytest.mark.skipif(against_redis(), reason="kvred's process tree")
def test_distinct_large_patterns_do_not_grow_the_writer(servers: dict[str, ServerProcess]) -> None:
    """Issue: compiled patterns were cached by count, not size: 40 distinct 256 KB
    patterns left the writer 200 MB larger."""
    server = servers["kvred"]
    with RawClient(server.port, timeout=COMMAND_TIMEOUT_S) as c:
        assert c.call("SET", "k", "v") == b"+OK\r\n"
        c.call("KEYS", b"warm-up*")
        before = total_rss(server)
        for i in range(40):
            assert c.call("KEYS", b"%02d*" % i + b"?" * (256 * 1024)) == b"*0\r\n"
    growth = total_rss(server) - before
    print(f"\nRSS growth after 40 distinct 256 KB patterns: {growth / MB:.1f} MB")
    assert growth < 32 * MB, f"{growth / MB:.0f} MB"
