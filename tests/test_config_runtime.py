"""CONFIG at runtime (issue 16): CONFIG SET / GET / REWRITE / HELP.

Differential cases against redis-server 7.0 for what both servers share: CONFIG SET's
errors (unknown, immutable, duplicate, each kind of bad value, Redis's enum lists), all
or nothing (a bad second pair leaves the first unchanged), aliases, several patterns
for CONFIG GET. Then kvred only: every worker sees a change at once (maxclients,
timeout, requirepass, proto-max-bulk-len on connections to other workers), appendfsync
and appendonly switched while serving (the AOF then holds the dataset, replayed after a
restart), and CONFIG REWRITE keeping a config file's comments and order.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import ServerProcess, _kvred_env, against_redis, answers_ping, free_port, live_children, start_kvred
from differential import (  # noqa: F401  (servers: the fixture)
    C,
    Case,
    Cases,
    Servers,
    check_case,
    check_survived,
    config_keys,
    servers,
)
from rawclient import RawClient, encode_command

CASES = Cases()
case = CASES.case

case("set-unknown", C("CONFIG", "SET", "no-such-thing", "1"))
case("set-immutable", C("CONFIG", "SET", "databases", "4"), C("CONFIG", "SET", "daemonize", "no"),
     C("CONFIG", "SET", "enable-debug-command", "yes"))
case("set-duplicate", C("CONFIG", "SET", "timeout", "1", "timeout", "2"),
     C("CONFIG", "SET", "lua-time-limit", "1", "busy-reply-threshold", "2"),
     C("CONFIG", "SET", "hash-max-ziplist-entries", "1", "hash-max-listpack-entries", "2"),
     C("CONFIG", "GET", "hash-max-ziplist-entries"), C("CONFIG", "GET", "lua-time-limit"),
     C("CONFIG", "SET", "lua-time-limit", "5000", "hash-max-listpack-entries", "512"))
case("set-arity", C("CONFIG", "SET", "timeout"), C("CONFIG", "SET", "timeout", "1", "maxclients"), C("CONFIG", "SET"))
case("set-bad-values",
     C("CONFIG", "SET", "timeout", "-1"), C("CONFIG", "SET", "timeout", "abc"), C("CONFIG", "SET", "timeout", "1.5"),
     C("CONFIG", "SET", "maxclients", "0"), C("CONFIG", "SET", "appendfsync", "sometimes"),
     C("CONFIG", "SET", "loglevel", "loud"), C("CONFIG", "SET", "appendonly", "maybe"),
     C("CONFIG", "SET", "protected-mode", "1"), C("CONFIG", "SET", "proto-max-bulk-len", "10"),
     C("CONFIG", "SET", "proto-max-bulk-len", "1x"), C("CONFIG", "SET", "client-query-buffer-limit", "100"),
     C("CONFIG", "SET", "notify-keyspace-events", "Q"),
     C("CONFIG", "SET", "client-output-buffer-limit", "bogus 1 2 3"),
     C("CONFIG", "SET", "client-output-buffer-limit", "normal 1 2"),
     C("CONFIG", "SET", "client-output-buffer-limit", "normal x 2 3"),
     C("CONFIG", "SET", "auto-aof-rewrite-percentage", "-5"), C("CONFIG", "SET", "busy-reply-threshold", "x"),
     C("CONFIG", "SET", "list-max-listpack-size", "99999999999"),
     C("CONFIG", "SET", "maxmemory", "abc"), C("CONFIG", "SET", "maxmemory-policy", "lru"),
     C("CONFIG", "SET", "maxmemory-samples", "0"), C("CONFIG", "SET", "lfu-log-factor", "-1"),
     C("CONFIG", "SET", "acllog-max-len", "x"), C("CONFIG", "SET", "aclfile", "/tmp/x"))
case("set-all-or-nothing", C("CONFIG", "SET", "timeout", "77", "maxclients", "0"), C("CONFIG", "GET", "timeout"),
     C("CONFIG", "SET", "timeout", "77", "nosuch", "1"), C("CONFIG", "GET", "timeout"),
     C("CONFIG", "SET", "timeout", "77", "hash-max-listpack-entries", "9", "loglevel", "x"),
     C("CONFIG", "GET", "hash-max-listpack-entries"))
case("set-then-get", C("CONFIG", "SET", "timeout", "123", "hash-max-ziplist-entries", "99", "loglevel", "warning",
                       "notify-keyspace-events", "KEA"),
     C("CONFIG", "GET", "timeout"), C("CONFIG", "GET", "hash-max-listpack-entries"),
     C("CONFIG", "GET", "hash-max-ziplist-entries"), C("CONFIG", "GET", "loglevel"),
     C("CONFIG", "GET", "notify-keyspace-events"),
     C("CONFIG", "SET", "timeout", "0", "hash-max-listpack-entries", "512", "loglevel", "notice",
       "notify-keyspace-events", ""))
case("set-case-and-units", C("CONFIG", "SET", "TIMEOUT", "5"), C("CONFIG", "GET", "timeout"),
     C("CONFIG", "SET", "auto-aof-rewrite-min-size", "1mb"), C("CONFIG", "GET", "auto-aof-rewrite-min-size"),
     C("CONFIG", "SET", "client-query-buffer-limit", "2GB"), C("CONFIG", "GET", "client-query-buffer-limit"),
     C("CONFIG", "SET", "timeout", "0", "auto-aof-rewrite-min-size", "64mb", "client-query-buffer-limit", "1gb"))
case("set-save-empty", C("CONFIG", "SET", "save", ""), C("CONFIG", "GET", "save"))
case("get-several-patterns", C("CONFIG", "GET", "timeout", "maxclients", norm=config_keys),
     C("CONFIG", "GET", "*max-*-entries*", norm=config_keys), C("CONFIG", "GET", "nosuch"),
     C("CONFIG", "GET", "slowlog-*", "latency-tracking", norm=config_keys),
     C("CONFIG", "GET", "cluster-enabled", "repl-backlog-size", "stream-node-max-entries", norm=config_keys))
case("get-arity", C("CONFIG", "GET"), C("CONFIG"), C("CONFIG", "NOSUCH"))
case("help", C("CONFIG", "HELP"))
# over maxmemory (1 byte) with noeviction: a write is refused, and inside MULTI every
# command but EXEC/DISCARD/QUIT/RESET, so that EXEC aborts (the workers queue MULTI: the
# writer tells them, before the CONFIG SET is answered)
CASES.append(Case("maxmemory-oom-in-multi", [
    C("FLUSHALL"), C("SET", "k", "v"), C("CONFIG", "SET", "maxmemory-policy", "noeviction", "maxmemory", "1"),
    C("GET", "k"), C("SET", "a", "b"), C("MULTI"), C("GET", "k"), C("SET", "a", "b"), C("MULTI"), C("WATCH", "x"),
    C("EXEC"), C("MULTI"), C("DISCARD"), C("PING"), C("CONFIG", "SET", "maxmemory", "0"), C("MULTI"),
    C("SET", "a", "b"), C("EXEC")], [C("CONFIG", "SET", "maxmemory", "0")]))


@pytest.mark.parametrize("seq", CASES, ids=CASES.ids())
def test_same_replies_as_redis(servers: Servers, seq: Case) -> None:  # noqa: F811
    check_case(servers, seq)


def test_kvred_survived_the_cases(servers: Servers) -> None:  # noqa: F811
    check_survived(servers)


# --- kvred: every worker sees a change at once --------------------------------------------------


def _on_every_worker(server: ServerProcess, workers: int) -> list[RawClient]:
    """Connections until one sits on each worker (CLIENT LIST's fd is per worker; the
    address each worker listens with is the same, so ask the server which worker by
    the client id, whose low bits are the worker's slot: kvred/worker.py)."""
    seen: dict[int, RawClient] = {}
    spare = []
    deadline = time.monotonic() + 10
    while len(seen) < workers:
        assert time.monotonic() < deadline, "could not reach every worker"
        c = RawClient(server.port, timeout=5)
        slot = int(c.call("CLIENT", "ID")[1:-2]) % 64  # kvred/config.py WORKERS_MAX
        if slot in seen:
            spare.append(c)
        else:
            seen[slot] = c
    for c in spare:
        c.close()
    return list(seen.values())


@pytest.mark.skipif(against_redis(), reason="kvred's workers")
def test_every_worker_sees_a_change(tmp_path: Path) -> None:
    server = start_kvred(tmp_path, workers=3)
    try:
        clients = _on_every_worker(server, 3)
        first = clients[0]
        assert first.call("CONFIG", "SET", "requirepass", "s3cret") == b"+OK\r\n"
        for c in clients:  # connections made before keep working, as in Redis
            assert c.call("PING") == b"+PONG\r\n"
        for _ in range(6):  # new connections, landing on every worker, must AUTH
            with RawClient(server.port, timeout=5) as c:
                assert c.call("GET", "k") == b"-NOAUTH Authentication required.\r\n"
                assert c.call("AUTH", "s3cret") == b"+OK\r\n"
        assert first.call("CONFIG", "SET", "requirepass", "") == b"+OK\r\n"
        # proto-max-bulk-len: a bulk over the new limit is refused by whichever worker parses it
        assert first.call("CONFIG", "SET", "proto-max-bulk-len", "1mb") == b"+OK\r\n"
        for c in clients[1:]:
            c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n")
            assert c.read_reply() == b"-ERR Protocol error: invalid bulk length\r\n"
        clients = [clients[0]]
        assert first.call("CONFIG", "SET", "proto-max-bulk-len", "512mb") == b"+OK\r\n"
        # maxclients: counted per worker against the same limit
        assert first.call("CONFIG", "SET", "maxclients", "1") == b"+OK\r\n"
        with RawClient(server.port, timeout=5) as c:
            assert c.read_reply().startswith(b"-ERR max number of clients reached")
        assert first.call("CONFIG", "SET", "maxclients", "10000") == b"+OK\r\n"
        # timeout: idle clients on any worker are closed
        idle = _on_every_worker(server, 3)
        assert first.call("CONFIG", "SET", "timeout", "1") == b"+OK\r\n"
        deadline = time.monotonic() + 15
        for c in [*idle, first]:  # the one that sent CONFIG SET is idle from then on too
            while not c.eof:
                assert time.monotonic() < deadline, "an idle client stayed open"
                c.read_available(0.2)
        with RawClient(server.port, timeout=5) as c:
            assert c.call("CONFIG", "SET", "timeout", "0") == b"+OK\r\n"
    finally:
        server.stop()


@pytest.mark.skipif(against_redis(), reason="kvred's workers")
def test_a_respawned_worker_has_the_running_settings(tmp_path: Path) -> None:
    """A worker that dies is replaced with the start-up config: the writer gives it every
    setting changed since, before it serves anyone."""
    server = start_kvred(tmp_path, workers=2)
    try:
        with RawClient(server.port, timeout=5) as c:
            assert c.call("CONFIG", "SET", "proto-max-bulk-len", "1mb", "timeout", "3600") == b"+OK\r\n"
        workers = [p for p in live_children(server.pid) if p.name().startswith("kvred-worker")]
        assert len(workers) == 2, workers
        for victim in workers:
            victim.kill()
        psutil.wait_procs(workers, timeout=10)
        deadline = time.monotonic() + 30
        while True:  # both replaced: the port answers again from new workers
            alive = [p for p in live_children(server.pid) if p.name().startswith("kvred-worker")]
            if len(alive) == 2 and not {p.pid for p in alive} & {p.pid for p in workers} \
                    and answers_ping(server.port, 5):
                break
            assert time.monotonic() < deadline, "the workers were not replaced"
            time.sleep(0.05)
        for _ in range(6):  # connections on both new workers
            with RawClient(server.port, timeout=5) as c:
                c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n")
                assert c.read_reply() == b"-ERR Protocol error: invalid bulk length\r\n"
    finally:
        server.stop()


@pytest.mark.skipif(against_redis(), reason="kvred's AOF")
def test_appendonly_and_appendfsync_at_runtime(tmp_path: Path) -> None:
    aof = tmp_path / "kvred.aof"
    server = start_kvred(tmp_path, appendonly="no")
    try:
        with RawClient(server.port, timeout=10) as c:
            for i in range(100):
                c.call("SET", f"before:{i}", str(i))
            c.call("RPUSH", "list", "a", "b")
            assert not aof.exists() or aof.stat().st_size == 0
            assert c.call("CONFIG", "SET", "appendonly", "yes", "appendfsync", "always") == b"+OK\r\n"
            assert c.call("CONFIG", "GET", "appendonly") == b"*2\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n"
            assert aof.stat().st_size > 0  # the dataset, written at once
            c.call("SET", "after", "1")
            assert c.call("INFO", "persistence").count(b"aof_enabled:1") == 1
        server.stop()  # SIGTERM
        server = start_kvred(tmp_path, appendonly="yes")
        with RawClient(server.port, timeout=10) as c:
            assert c.call("DBSIZE") == b":102\r\n"
            assert c.call("LRANGE", "list", "0", "-1") == b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"
            assert c.call("CONFIG", "SET", "appendonly", "no") == b"+OK\r\n"
            size = aof.stat().st_size
            c.call("SET", "not-logged", "1")
            assert aof.stat().st_size == size
            assert c.call("CONFIG", "SET", "appendfsync", "no") == b"+OK\r\n"  # with the AOF off: just the value
    finally:
        server.stop()


@pytest.mark.skipif(against_redis(), reason="kvred's eviction figures")
def test_maxmemory_set_at_runtime_evicts(tmp_path: Path) -> None:
    server = start_kvred(tmp_path, appendonly="no")
    try:
        with RawClient(server.port, timeout=10) as c:
            assert c.call("CONFIG", "SET", "maxmemory", "4mb", "maxmemory-policy", "allkeys-lru") == b"+OK\r\n"
            value = b"v" * 1000
            for start in range(0, 20_000, 500):  # 20 MB of values, pipelined
                c.send(b"".join(encode_command("SET", f"k{i}", value) for i in range(start, start + 500)))
                for _ in range(500):
                    assert c.read_reply() == b"+OK\r\n"
            stats = c.call("INFO", "stats")
            evicted = int(re.search(rb"evicted_keys:(\d+)", stats)[1])  # type: ignore[index]
            assert evicted > 10_000, stats
            assert int(c.call("DBSIZE")[1:-2]) < 10_000
            assert c.call("CONFIG", "SET", "maxmemory-policy", "noeviction") == b"+OK\r\n"
            for i in range(20_000):  # eviction left it just under the limit: the next writes pass it
                reply = c.call("SET", f"more{i}", value)
                if reply != b"+OK\r\n":
                    break
            assert reply.startswith(b"-OOM command not allowed"), reply
            assert c.call("CONFIG", "SET", "maxmemory", "0") == b"+OK\r\n"
            assert c.call("SET", "more", value) == b"+OK\r\n"
    finally:
        server.stop()


# --- CONFIG REWRITE ---------------------------------------------------------------------------

CONFIG_TEXT = """# kvred test configuration
# (comments and order stay)

port {port}
timeout 10

# encodings
hash-max-ziplist-entries 100
loglevel notice
loglevel warning
"""


@pytest.mark.skipif(against_redis(), reason="kvred's config file")
def test_config_rewrite_keeps_the_file(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    without = start_kvred(tmp_path / "plain")
    try:
        with RawClient(without.port, timeout=5) as c:
            assert c.call("CONFIG", "REWRITE") == b"-ERR The server is running without a config file\r\n"
    finally:
        without.stop()
    port = free_port()
    conf = tmp_path / "kvred.conf"
    conf.write_text(CONFIG_TEXT.format(port=port))
    server = _start_with_config(conf, port, tmp_path)
    try:
        with RawClient(port, timeout=5) as c:
            assert c.call("CONFIG", "GET", "timeout") == b"*2\r\n$7\r\ntimeout\r\n$2\r\n10\r\n"
            assert c.call("CONFIG", "SET", "timeout", "30", "hash-max-listpack-entries", "7",
                          "notify-keyspace-events", "Ex", "maxclients", "500") == b"+OK\r\n"
            assert c.call("CONFIG", "REWRITE") == b"+OK\r\n"
        text = conf.read_text()
        lines = text.splitlines()
        assert lines[:7] == ["# kvred test configuration", "# (comments and order stay)", "", f"port {port}",
                             "timeout 30", "", "# encodings"], text
        assert "hash-max-listpack-entries 7" in lines and "loglevel notice" not in lines
        assert lines.count("loglevel warning") == 1 and not any(line.startswith("hash-max-ziplist") for line in lines)
        assert "# Generated by CONFIG REWRITE" in lines
        assert "notify-keyspace-events xE" in lines or "notify-keyspace-events Ex" in lines, text
        assert "maxclients 500" in lines
        # a second rewrite with nothing changed leaves the file as it is
        with RawClient(port, timeout=5) as c:
            assert c.call("CONFIG", "REWRITE") == b"+OK\r\n"
        assert conf.read_text() == text
        server.stop()
        server = _start_with_config(conf, port, tmp_path)  # the rewritten file starts the same server
        with RawClient(port, timeout=5) as c:
            got = c.call("CONFIG", "GET", "timeout", "hash-max-listpack-entries", "maxclients")
            assert re.findall(rb"\$\d+\r\n([^\r]*)\r\n", got)[1::2] == [b"30", b"7", b"500"], got
    finally:
        server.stop()


def _start_with_config(conf: Path, port: int, workdir: Path) -> ServerProcess:
    """kvred started as `kvred FILE` (the port is in the file: the flag repeats it)."""
    argv = [sys.executable, "-m", "kvred", str(conf), "--port", str(port), "--dir", str(workdir), "--workers", "2"]
    return ServerProcess("kvred-conf", argv, port, workdir, env=_kvred_env(), listeners=2).start(30)


def test_no_stray_bytes(servers: Servers) -> None:  # noqa: F811
    """CONFIG SET with a value that is not UTF-8 is refused or kept byte for byte."""
    for server in (servers.redis, servers.kvred):
        with RawClient(server.port, timeout=5) as c:
            c.send(encode_command("CONFIG", "SET", "loglevel", b"\xff\xfe"))
            assert c.read_reply().startswith(b"-ERR CONFIG SET failed (possibly related to argument 'loglevel')")
