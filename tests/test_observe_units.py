"""Sans-IO parts of issue 16 (kvred/stats.py, kvred/slowlog.py) and the settings read at
use time: the writer's executor in-process, its config changed between commands as a
runtime CONFIG SET will change it."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from kvred import ipc
from kvred.clients import WriterClient
from kvred.config import Config
from kvred.slowlog import LATENCY_TS_LEN, LatencyMonitor, SlowLog
from kvred.stats import HIST_FIRST, CommandStats, bucket_of, bucket_upper_ns, calls, new_stat, percentile_ns
from kvred.writer import Writer


@pytest.mark.parametrize("ns", [0, 1, 7, 8, 9, 15, 16, 17, 999, 1000, 1023, 1024, 123_456, 10**9, 2**62])
def test_bucket_holds_its_values(ns: int) -> None:
    index = bucket_of(ns)
    assert HIST_FIRST <= index < len(new_stat())
    assert ns <= bucket_upper_ns(index)
    if ns > 8 and index > HIST_FIRST:
        assert ns > bucket_upper_ns(index - 1)  # the bucket is the first one that holds it


def test_percentiles_and_calls() -> None:
    stats = CommandStats()
    stat = stats.stat_for("get")
    for ns in [1000] * 98 + [50_000, 2_000_000]:
        stats.record(stat, ns)
    assert calls(stat) == 100
    assert 1000 <= percentile_ns(stat, 50) < 1200
    assert 50_000 <= percentile_ns(stat, 99) < 60_000
    assert 2_000_000 <= percentile_ns(stat, 99.9) < 2_400_000
    stats.reset()
    assert calls(stat) == 0 and list(stats.used()) == []


def test_errorstats_bounded() -> None:
    stats = CommandStats()
    for i in range(1000):
        stats.count_error(b"-CODE%d something\r\n" % i)
    assert len(stats.errors) == 128 and stats.total_errors == 1000


def test_slowlog_truncates_as_redis() -> None:
    log = SlowLog()
    log.add([b"RPUSH", b"k", *[b"%d" % i for i in range(40)]], 5, "127.0.0.1:1", b"", 128)
    log.add([b"SET", b"k", b"x" * 200], 5, "127.0.0.1:1", b"name", 128)
    (_, _, _, argv, _, name), (_, _, _, first, _, _) = log.entries
    assert argv == [b"SET", b"k", b"x" * 128 + b"... (72 more bytes)"] and name == b"name"
    assert len(first) == 32 and first[-1] == b"... (11 more arguments)"
    for _ in range(10):
        log.add([b"GET", b"k"], 1, "127.0.0.1:1", b"", 3)
    assert len(log.entries) == 3 and log.entries[0][0] == 11


def test_latency_samples_bounded() -> None:
    monitor = LatencyMonitor()
    monitor.add("command", 5, 0)  # the monitor is off
    assert monitor.events == {}
    for second in range(500):
        monitor.events.setdefault("command", (__import__("collections").deque(maxlen=LATENCY_TS_LEN), [0]))
        monitor.events["command"][0].append([second, 10])
    monitor.add("command", 20, 10)
    assert len(monitor.events["command"][0]) == LATENCY_TS_LEN
    assert monitor.reset(["command", "command", "nosuch"]) == 1


@pytest.fixture
def writer() -> Iterator[Writer]:
    a, b = socket.socketpair()
    try:
        yield Writer(Config(appendonly=False), a)
    finally:
        a.close()
        b.close()


def _run(writer: Writer, *commands: list[bytes]) -> bytes:
    client = writer.clients.setdefault(1, WriterClient(1, "127.0.0.1:5", "127.0.0.1:6", None))
    return b"".join(writer.executor.run_entry(ipc.OP_RUN, client, False, list(commands)))


def _config_set(writer: Writer, *pairs: str) -> None:
    assert _run(writer, [b"CONFIG", b"SET", *(p.encode() for p in pairs)]) == b"+OK\r\n"


def test_settings_apply_to_the_next_command(writer: Writer) -> None:
    """slowlog-log-slower-than, slowlog-max-len, latency-monitor-threshold: a CONFIG SET
    applies to the next command."""
    assert _run(writer, [b"SET", b"k", b"v"], [b"SLOWLOG", b"LEN"]) == b"+OK\r\n:0\r\n"
    _config_set(writer, "slowlog-log-slower-than", "0")  # logged itself, as in Redis
    assert _run(writer, [b"GET", b"k"], [b"SLOWLOG", b"LEN"]) == b"$1\r\nv\r\n:2\r\n"
    _config_set(writer, "slowlog-max-len", "1")
    _run(writer, [b"GET", b"k"], [b"GET", b"k"])
    assert _run(writer, [b"SLOWLOG", b"LEN"]) == b":1\r\n"
    _config_set(writer, "slowlog-log-slower-than", "-1")
    _run(writer, [b"SLOWLOG", b"RESET"], [b"GET", b"k"])
    assert _run(writer, [b"SLOWLOG", b"LEN"]) == b":0\r\n"
    _config_set(writer, "latency-monitor-threshold", "1")
    writer.config.enable_debug_command = "yes"  # immutable: start-up only
    _run(writer, [b"DEBUG", b"SLEEP", b"0.01"])
    assert _run(writer, [b"LATENCY", b"HISTORY", b"command"]).startswith(b"*1\r\n*2\r\n")


def test_info_sections_follow_settings(writer: Writer) -> None:
    _run(writer, [b"SET", b"k", b"v"], [b"GET", b"k"])
    text = _run(writer, [b"INFO", b"latencystats"])
    assert b"latency_percentiles_usec_get:p50=" in text and b",p99.9=" in text
    writer.config.latency_tracking_info_percentiles = (90.0,)
    assert b"latency_percentiles_usec_get:p90=" in _run(writer, [b"INFO", b"latencystats"])
    writer.config.latency_tracking = False
    assert b"latency_percentiles" not in _run(writer, [b"INFO", b"latencystats"])
    assert _run(writer, [b"CONFIG", b"RESETSTAT"]) == b"+OK\r\n"
    assert b"cmdstat_get" not in _run(writer, [b"INFO", b"commandstats"])
