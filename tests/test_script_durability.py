"""Scripts and crashes (issue 14): rounds of kill -9 of the whole kvred tree while clients
run scripts that change several keys at once. A script's effects are logged as one
MULTI/EXEC block, so after every restart each script is there entirely or not at all,
every acknowledged script is there, and function libraries come back.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import redis
from conftest import ServerProcess, against_redis, start_kvred
from test_durability import kill_all

ROUNDS = 3
WRITERS = 3
# moves one unit from `a` to `b` and logs it: a + b stays 0 and len(log) == b, if atomic
TRANSFER = """
redis.call('DECR', KEYS[1])
local n = redis.call('INCR', KEYS[2])
redis.call('RPUSH', KEYS[3], n)
return n
"""
LIBRARY = "#!lua name=counters\nredis.register_function('bump', function(k) return redis.call('INCR', k[1]) end)"


def client(server: ServerProcess) -> redis.Redis:
    return redis.Redis(port=server.port, socket_timeout=10)


class ScriptWriters:
    """Threads that run TRANSFER (with EVALSHA, as libraries do) until the crash."""

    def __init__(self, server: ServerProcess, sha: str) -> None:
        self.server, self.sha = server, sha
        self.acked = [0] * WRITERS
        self.pending = [False] * WRITERS
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.started = threading.Barrier(WRITERS + 1)
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(WRITERS)]

    def _run(self, i: int) -> None:
        r = client(self.server)
        keys = [f"w{i}:a", f"w{i}:b", f"w{i}:log"]
        try:
            self.started.wait()
            while not self.stop.is_set():
                self.pending[i] = True
                r.evalsha(self.sha, 3, *keys)
                self.acked[i] += 1
                self.pending[i] = False
        except (redis.ConnectionError, redis.TimeoutError):
            pass  # the crash
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(e))

    def __enter__(self) -> ScriptWriters:
        for t in self.threads:
            t.start()
        self.started.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(20)


def test_kill9_rounds_with_scripts(tmp_path: Path) -> None:
    if against_redis():
        pytest.skip("needs kvred's AOF and a process tree to kill")
    server = start_kvred(tmp_path, appendfsync="always")
    r = client(server)
    r.function_load(LIBRARY)
    totals = [0] * WRITERS  # acknowledged transfers over all rounds
    try:
        for rnd in range(ROUNDS):
            sha = r.script_load(TRANSFER)  # the script cache is not persistent, as in Redis
            with ScriptWriters(server, sha) as writers:
                deadline = time.monotonic() + 30
                while min(writers.acked) < 20 and not writers.errors:
                    assert time.monotonic() < deadline, f"writers stalled at {writers.acked}"
                    time.sleep(0.005)  # a poll of the condition, not a wait for it
                kill_all(server)
            assert not writers.errors, writers.errors
            server.stop()
            server = start_kvred(tmp_path, appendfsync="always")
            r = client(server)
            for i in range(WRITERS):
                a, b = int(r.get(f"w{i}:a") or 0), int(r.get(f"w{i}:b") or 0)
                log = [int(x) for x in r.lrange(f"w{i}:log", 0, -1)]
                totals[i] += writers.acked[i]
                context = f"round {rnd}, writer {i}: acked {totals[i]}, a={a} b={b} log={len(log)}"
                assert a + b == 0 and log == list(range(1, b + 1)), f"a script ran in part: {context}"
                assert totals[i] <= b <= totals[i] + writers.pending[i], f"lost or invented a script: {context}"
                totals[i] = b  # an unacknowledged one that made it counts from now on
            assert r.fcall("bump", 1, "functions") == rnd + 1  # the library came back with the AOF
    finally:
        server.stop()
