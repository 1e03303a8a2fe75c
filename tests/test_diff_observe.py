"""Differential tests of what the server tells about itself (issue 16): INFO's sections,
field names and value formats; SLOWLOG, LATENCY, LOLWUT, TIME, DEBUG OBJECT and
RELOAD, errorstats and commandstats, against redis-server 7.0 (machinery:
tests/differential.py). Values that depend on time, ports or history are normalised
(each normaliser says why); errors are compared byte for byte.

Both servers log every command in SLOWLOG (slowlog-log-slower-than 0: kvred by its
flag, redis-server by CONFIG SET) so that the entries themselves compare.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import ServerProcess, start_kvred
from differential import C, Case, Cases, Servers, check_case, check_survived, hello_masked
from rawclient import RawClient, parse_reply

CASES = Cases()
case, arity = CASES.case, CASES.arity


@pytest.fixture(scope="module")
def servers(redis_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with RawClient(redis_server.port) as client:
        assert client.call("CONFIG", "SET", "slowlog-log-slower-than", "0") == b"+OK\r\n"
    pair = Servers(redis_server, start_kvred(tmp_path_factory.mktemp("kvred"), slowlog_log_slower_than=0))
    try:
        yield pair
    finally:
        pair.kvred.stop()
        with RawClient(redis_server.port) as client:
            client.call("CONFIG", "SET", "slowlog-log-slower-than", "10000")


# --- normalisers ---------------------------------------------------------------------

def _tree(node: Any) -> Any:
    """A parsed reply as plain Python values."""
    kind, payload = node
    if kind in "*~>":
        return [_tree(child) for child in payload]
    if kind == "%":
        return [[_tree(k), _tree(v)] for k, v in payload]
    return payload


def slowlog_entries(raw: bytes) -> Any:
    """SLOWLOG GET: id, timestamp and duration masked (they count and time), and the
    client's port (each server gets its own connection); the arguments, address and
    name compare exactly, and the ids must decrease by one."""
    entries = _tree(parse_reply(raw))
    if not isinstance(entries, list):
        return raw
    ids = [entry[0] for entry in entries]
    ordered = all(a - b == 1 for a, b in zip(ids, ids[1:], strict=False))
    return ordered, [[entry[3], entry[4].rsplit(b":", 1)[0], entry[5]] for entry in entries]


def histogram_calls(raw: bytes) -> Any:
    """LATENCY HISTOGRAM: each command and its calls; the buckets hold durations."""
    node = parse_reply(raw)
    rows = _tree(node)
    if not isinstance(rows, list):
        return raw
    if node[0] == "*":  # RESP2: a flat list of name, details
        rows = [rows[i:i + 2] for i in range(0, len(rows), 2)]
        return sorted((name, details[1]) for name, details in rows)
    return sorted((name, dict((k, v) for k, v in details)[b"calls"]) for name, details in rows)


def commandstats(raw: bytes) -> Any:
    """INFO commandstats: calls, rejected and failed calls per command, sorted (Redis
    lists them in its hash table's order); usec and usec_per_call are durations."""
    node = parse_reply(raw)
    lines = [line for line in node[1].split(b"\r\n") if line.startswith(b"cmdstat_")]
    return sorted(re.sub(rb"usec=\d+,usec_per_call=\d+\.\d\d,", b"", line) for line in lines)


def latency_names(raw: bytes) -> Any:
    """INFO latencystats: which commands have percentiles and their format (the values are durations)."""
    node = parse_reply(raw)
    lines = [line for line in node[1].split(b"\r\n") if line.startswith(b"latency_")]
    return sorted(re.sub(rb"=\d+\.\d{3}", b"=F", line) for line in lines)


def debug_object(raw: bytes) -> Any:
    """DEBUG OBJECT: the field names and the encoding (the address, the serialized length
    (Redis's is its RDB's) and the LRU clock are the server's own)."""
    if not raw.startswith(b"+"):
        return raw
    fields = dict(word.split(b":", 1) for word in raw[1:-2].split(b" ") if b":" in word)
    return [name for name in fields][:6], fields.get(b"refcount"), fields.get(b"encoding")


def time_reply(raw: bytes) -> Any:
    """TIME: two bulk strings, seconds and microseconds, within a minute of the test's clock."""
    import time

    seconds, micros = _tree(parse_reply(raw))
    return abs(int(seconds) - time.time()) < 60, 0 <= int(micros) < 1_000_000


# --- SLOWLOG -------------------------------------------------------------------------

LONG = "x" * 200
MANY = [str(i) for i in range(40)]
case("slowlog-entries", C("SLOWLOG", "RESET"), C("SET", "k", "v"), C("SET", "big", LONG),
     C("RPUSH", "l", *MANY), C("GET", "k"), C("SLOWLOG", "LEN"), C("SLOWLOG", "GET", norm=slowlog_entries),
     C("SLOWLOG", "GET", "2", norm=slowlog_entries), C("SLOWLOG", "GET", "-1", norm=slowlog_entries),
     C("SLOWLOG", "GET", "0"))
case("slowlog-reset-len", C("SLOWLOG", "RESET"), C("SLOWLOG", "LEN"))
case("slowlog-errors", C("SLOWLOG", "GET", "-2"), C("SLOWLOG", "GET", "x"), C("SLOWLOG", "GET", "1", "2"),
     C("SLOWLOG", "FOO"), C("SLOWLOG", "LEN", "1"), C("SLOWLOG", "RESET", "1"), C("SLOWLOG", "HELP"),
     C("SLOWLOG", "help"))
arity("SLOWLOG")

# --- LATENCY (the monitor is off on both: latency-monitor-threshold 0) ----------------

case("latency-off", C("LATENCY", "RESET"), C("LATENCY", "LATEST"), C("LATENCY", "HISTORY", "command"),
     C("LATENCY", "DOCTOR"), C("LATENCY", "GRAPH", "command"), C("LATENCY", "RESET", "command", "x"))
case("latency-errors", C("LATENCY", "FOO"), C("LATENCY", "HISTORY"), C("LATENCY", "GRAPH"),
     C("LATENCY", "LATEST", "x"), C("LATENCY", "DOCTOR", "x"), C("LATENCY", "HELP"))
arity("LATENCY")
case("latency-histogram", C("CONFIG", "RESETSTAT"), C("SET", "k", "v"), C("SET", "k", "w"), C("GET", "k"),
     C("LATENCY", "HISTOGRAM", "set", "GET", "nosuch", norm=histogram_calls),
     C("LATENCY", "HISTOGRAM", "nosuch"))
case("latency-histogram-resp3", C("HELLO", "3", norm=lambda raw: raw[:1]), C("CONFIG", "RESETSTAT"),
     C("SET", "k", "v"), C("LATENCY", "HISTOGRAM", "set", norm=histogram_calls))

# --- INFO's statistics ------------------------------------------------------------------

case("errorstats", C("CONFIG", "RESETSTAT"), C("SET", "k", "v"), C("LPUSH", "k", "x"), C("NOSUCHCMD"),
     C("GET"), C("INCR", "k"), C("INFO", "errorstats"), C("CONFIG", "RESETSTAT"), C("INFO", "errorstats"))
case("commandstats", C("CONFIG", "RESETSTAT"), C("SET", "k", "v"), C("GET", "k"), C("GET", "k"),
     C("LPUSH", "k", "x"), C("GET"), C("CONFIG", "GET", "port", norm=lambda raw: raw[:2]),
     C("INFO", "commandstats", norm=commandstats))
case("latencystats", C("CONFIG", "RESETSTAT"), C("SET", "k", "v"), C("GET", "k"),
     C("INFO", "latencystats", norm=latency_names))
case("info-section-choice", C("INFO", "nosuchsection"), C("INFO", "cluster"), C("INFO", "CLUSTER", "modules"),
     C("INFO", "modules"))

# --- DEBUG, LOLWUT, TIME ----------------------------------------------------------------------

case("debug-object", C("SET", "s", "hello"), C("SET", "n", "123"), C("SET", "big", LONG), C("HSET", "h", "f", "v"),
     C("DEBUG", "OBJECT", "s", norm=debug_object), C("DEBUG", "OBJECT", "n", norm=debug_object),
     C("DEBUG", "OBJECT", "big", norm=debug_object), C("DEBUG", "OBJECT", "h", norm=debug_object),
     C("DEBUG", "OBJECT", "nosuch"), C("DEBUG", "OBJECT"))
case("debug-reload", C("SET", "s", "hello"), C("RPUSH", "l", "a", "b"), C("SELECT", "3"), C("SET", "x", "y"),
     C("PEXPIRE", "x", "100000"), C("DEBUG", "RELOAD"), C("GET", "x"), C("TTL", "x"), C("SELECT", "0"),
     C("LRANGE", "l", "0", "-1"), C("GET", "s"), C("DBSIZE"))
def lolwut_art(raw: bytes) -> Any:
    """A random picture's shape: its lines' widths in characters (braille) or in cells
    (colour escapes), its first 5 lines when they are not random yet (Schotter's top
    rows of squares, default size), and its caption, exactly."""
    if not raw.startswith((b"$", b"=")):
        return raw
    text = raw.split(b"\r\n", 1)[1].decode()
    lines = text.split("\n")
    cells = [line.count("\033[") // 2 or len(line) for line in lines]
    return cells, lines[-3:], lines[:5] if len(lines) == 54 else None


case("lolwut-versions", C("LOLWUT", "VERSION", "1"), C("LOLWUT", "VERSION", "4"), C("LOLWUT", "VERSION", "x"),
     C("LOLWUT", "VERSION", "-3"), C("LOLWUT", "foo"), C("LOLWUT"), C("LOLWUT", "VERSION", "4294967302", norm=lolwut_art))
case("lolwut-art", C("LOLWUT", "VERSION", "5", norm=lolwut_art), C("LOLWUT", "VERSION", "6", norm=lolwut_art),
     C("LOLWUT", "VERSION", "5", "20", "3", "4", norm=lolwut_art), C("LOLWUT", "VERSION", "5", "0", "-1", "9999",
                                                                      norm=lolwut_art),
     C("LOLWUT", "VERSION", "6", "7", "5", norm=lolwut_art), C("LOLWUT", "VERSION", "6", "5000", "0", norm=lolwut_art),
     C("LOLWUT", "VERSION", "5", "x"), C("LOLWUT", "VERSION", "6", "1", "y"), C("LOLWUT", "VERSION", "5.9"),
     C("HELLO", "3", norm=hello_masked), C("LOLWUT", "VERSION", "5", "10", norm=lolwut_art),
     C("HELLO", "2", norm=hello_masked))
case("time", C("TIME", norm=time_reply), C("TIME", "x"))


@pytest.mark.parametrize("seq", CASES, ids=CASES.ids())
def test_same_replies_as_redis(servers: Servers, seq: Case) -> None:
    check_case(servers, seq)


# --- INFO: sections, field names, order and formats -------------------------------------------

# Fields of Redis's INFO everything that kvred leaves out because it has nothing true to
# put there (no jemalloc, no RDB, no replicas, no modules, no threads, no defrag). A field
# that kvred adds or newly leaves out fails the test: the list is the whole truth.
REDIS_ONLY = {
    "server": {"redis_build_id", "atomicvar_api", "gcc_version"},
    "clients": set(),
    "memory": {"allocator_allocated", "allocator_active", "allocator_resident", "used_memory_lua",
               "used_memory_vm_eval", "used_memory_lua_human", "used_memory_scripts_eval", "number_of_cached_scripts",
               "number_of_functions", "number_of_libraries", "used_memory_vm_functions", "used_memory_vm_total",
               "used_memory_vm_total_human", "used_memory_functions", "used_memory_scripts",
               "used_memory_scripts_human", "allocator_frag_ratio", "allocator_frag_bytes", "allocator_rss_ratio",
               "allocator_rss_bytes", "rss_overhead_ratio", "rss_overhead_bytes", "mem_total_replication_buffers",
               "mem_cluster_links"},
    "persistence": {"current_cow_peak", "current_cow_size", "current_cow_size_age", "current_fork_perc",
                    "current_save_keys_processed", "current_save_keys_total", "rdb_changes_since_last_save",
                    "rdb_last_cow_size", "rdb_last_load_keys_expired", "rdb_last_load_keys_loaded",
                    "aof_rewrites_consecutive_failures", "aof_last_cow_size", "module_fork_in_progress",
                    "module_fork_last_cow_size"},
    "stats": {"migrate_cached_sockets", "slave_expires_tracked_keys", "active_defrag_hits", "active_defrag_misses",
              "active_defrag_key_hits", "active_defrag_key_misses", "total_active_defrag_time",
              "current_active_defrag_time", "tracking_total_items", "tracking_total_prefixes",
              "unexpected_error_replies", "dump_payload_sanitizations", "io_threaded_reads_processed",
              "io_threaded_writes_processed", "reply_buffer_shrinks", "reply_buffer_expands"},
}
# kvred's own, at the end of their section; and the AOF's (kvred's is on, the oracle's
# off: Redis shows these six, in this order, at the end of Persistence when it is on)
KVRED_ONLY = {
    "server": ["kvred_version", "writer_process_id", "workers"],
    "memory": ["used_memory_rss_all_processes"],
    "persistence": ["aof_current_size", "aof_base_size", "aof_pending_rewrite", "aof_buffer_length",
                    "aof_pending_bio_fsync", "aof_delayed_fsync"],
}


def _value_shape(value: str) -> str:
    """A value's format: integer, decimal with N digits, human size, or text."""
    if re.fullmatch(r"-?\d+", value):
        return "int"
    if re.fullmatch(r"-?\d+\.\d+", value):
        return f"float{len(value.split('.')[1])}"
    if re.fullmatch(r"\d+(\.\d\d)?[BKMGTP]", value):
        return "human"
    return "text"


def _sections(text: str) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.split("\r\n"):
        if line.startswith("# "):
            current = sections.setdefault(line[2:], [])
        elif line:
            name, _, value = line.partition(":")
            current.append((name, value))
    return sections


def _info(server: ServerProcess, *sections: str) -> str:
    with RawClient(server.port) as client:
        client.call("SET", "k", "v")
        client.call("LPUSH", "k", "x")  # an errorstat
        node = parse_reply(client.call("INFO", *sections))
    assert node[0] == "$"
    return node[1].decode()


def test_info_everything_same_sections_fields_and_formats(servers: Servers) -> None:
    redis = _sections(_info(servers.redis, "everything"))
    kvred = _sections(_info(servers.kvred, "everything"))
    assert list(kvred) == list(redis)
    for section, redis_fields in redis.items():
        if section in ("Commandstats", "Latencystats", "Keyspace", "Errorstats"):
            continue  # rows per command, per error, per database: compared by the cases above
        key = section.lower()
        expected = [(name, _value_shape(value)) for name, value in redis_fields
                    if name not in REDIS_ONLY.get(key, set())]
        extra = KVRED_ONLY.get(key, [])
        got = [(name, _value_shape(value)) for name, value in kvred[section] if name not in extra]
        assert got == expected, section
        assert [name for name, _v in kvred[section] if name in extra] == extra


@pytest.mark.parametrize("args", [(), ("default",), ("all",), ("everything",), ("server", "cpu"),
                                  ("CPU", "server"), ("default", "commandstats"), ("commandstats",),
                                  ("errorstats", "latencystats"), ("nosuch",), ("modules",)])
def test_info_sections_chosen_as_redis(servers: Servers, args: tuple[str, ...]) -> None:
    headers = [[line for line in _info(server, *args).split("\r\n") if line.startswith("# ")]
               for server in (servers.redis, servers.kvred)]
    assert headers[1] == headers[0]


def test_info_counts_net_bytes_and_connections(servers: Servers) -> None:
    """The workers' byte counts reach INFO (within a second: they report once a second)."""
    import time

    def stats() -> dict[str, int]:
        fields = dict(_sections(_info(servers.kvred, "stats"))["Stats"])
        return {name: int(fields[name]) for name in ("total_net_input_bytes", "total_net_output_bytes",
                                                     "total_connections_received", "total_reads_processed")}

    before = stats()
    with RawClient(servers.kvred.port) as client:
        client.call("SET", "payload", "z" * 100_000)
    deadline = time.monotonic() + 5
    while True:
        after = stats()
        if after["total_net_input_bytes"] - before["total_net_input_bytes"] >= 100_000:
            break
        assert time.monotonic() < deadline, (before, after)
        time.sleep(0.05)
    assert after["total_connections_received"] > before["total_connections_received"]
    assert after["total_net_output_bytes"] > before["total_net_output_bytes"]


def latency_latest(raw: bytes) -> Any:
    """LATENCY LATEST: event names, and latest <= max (times and durations are the server's)."""
    rows = _tree(parse_reply(raw))
    return sorted((row[0], row[2] <= row[3], row[2] >= 100) for row in rows)


def latency_history(raw: bytes) -> Any:
    rows = _tree(parse_reply(raw))
    return [(len(row), row[1] >= 100) for row in rows]


def test_latency_monitor_events_as_redis(redis_server: ServerProcess,
                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    """With latency-monitor-threshold on, a DEBUG SLEEP of 0.15 s is a `command` event,
    in LATEST, HISTORY, GRAPH and DOCTOR; RESET forgets it."""
    from differential import _compare

    kvred = start_kvred(tmp_path_factory.mktemp("kvred"), latency_monitor_threshold=100)
    try:
        with RawClient(redis_server.port) as client:
            assert client.call("CONFIG", "SET", "latency-monitor-threshold", "100") == b"+OK\r\n"
        steps = [C("LATENCY", "RESET"), C("DEBUG", "SLEEP", "0.15"), C("DEBUG", "SLEEP", "0"),
                 C("LATENCY", "LATEST", norm=latency_latest), C("LATENCY", "HISTORY", "command", norm=latency_history),
                 C("LATENCY", "HISTORY", "fast-command"),
                 C("LATENCY", "GRAPH", "command", norm=lambda raw: raw[:1]),
                 C("LATENCY", "DOCTOR", norm=lambda raw: b"Dave, I have observed latency spikes" in raw),
                 C("LATENCY", "RESET", "command", "command"), C("LATENCY", "LATEST")]
        mismatches = _compare(redis_server, kvred, steps)
        assert not mismatches, "\n".join(mismatches)
    finally:
        kvred.stop()
        with RawClient(redis_server.port) as client:
            client.call("CONFIG", "SET", "latency-monitor-threshold", "0")


def test_survived(servers: Servers) -> None:
    check_survived(servers)
