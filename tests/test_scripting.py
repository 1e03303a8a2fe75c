"""Scripting with real programs and real processes (issue 14): the `limits` rate limiters
(moving window, sliding window counter, fixed window), redis-py's Lock and
register_script (with the NOSCRIPT -> SCRIPT LOAD fallback), the AOF (a script's
effects replay after kill -9 and after BGREWRITEAOF; function libraries survive both),
bounds (a memory bomb, runtime errors, a reply past the output limit), and the
runaway-script hook: busy-reply-threshold and the writer-side kill API (in-process:
the cross-process SCRIPT KILL needs the writer's polling, see kvred/scripting/runner.py).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from aoftools import aof_commands, kill_hard, rewrite_and_wait
from conftest import ServerProcess, against_redis, start_kvred
from rawclient import RawClient, encode_command

WAIT_S = 10.0


def client(server: ServerProcess, **options: Any) -> redis.Redis:
    options.setdefault("socket_timeout", WAIT_S)
    return redis.Redis(port=server.port, **options)


# ---------------------------------------------------------------- limits


@pytest.mark.parametrize("strategy", ["MovingWindowRateLimiter", "SlidingWindowCounterRateLimiter",
                                      "FixedWindowRateLimiter"])
def test_limits_strategies(kvred: ServerProcess, strategy: str) -> None:
    from limits import parse, storage, strategies

    store = storage.storage_from_string(f"redis://127.0.0.1:{kvred.port}")
    limiter = getattr(strategies, strategy)(store)
    item = parse("5/minute")
    assert [limiter.hit(item, "user", "a") for _ in range(7)] == [True] * 5 + [False] * 2
    assert limiter.hit(item, "user", "b")  # another identity has its own window
    assert not limiter.test(item, "user", "a")
    stats = limiter.get_window_stats(item, "user", "a")
    assert stats.remaining == 0
    assert stats.reset_time > time.time()
    limiter.clear(item, "user", "a")
    assert limiter.hit(item, "user", "a")


def test_limits_window_expires(kvred: ServerProcess) -> None:
    from limits import parse, storage, strategies

    store = storage.storage_from_string(f"redis://127.0.0.1:{kvred.port}")
    limiter = strategies.MovingWindowRateLimiter(store)
    item = parse("2/second")
    assert limiter.hit(item, "k") and limiter.hit(item, "k") and not limiter.hit(item, "k")
    deadline = time.monotonic() + WAIT_S
    while not limiter.test(item, "k"):  # the window moves on
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert limiter.hit(item, "k")


# ---------------------------------------------------------------- redis-py Lock and scripts


def test_redis_py_lock(kvred: ServerProcess) -> None:
    first, second = client(kvred), client(kvred)
    lock = first.lock("resource", timeout=10)
    assert lock.acquire(blocking=False)
    assert lock.owned()
    other = second.lock("resource", timeout=10)
    assert not other.acquire(blocking=False)  # contention from a second client
    assert lock.extend(5)
    assert 10_000 < first.pttl("resource") <= 15_000
    assert lock.reacquire()
    lock.release()
    assert other.acquire(blocking=True, blocking_timeout=WAIT_S)
    lock.local.token = b"a stale token"
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        lock.release()  # not ours any more: the release script refuses
    other.release()


def test_redis_py_lock_waits_for_release(kvred: ServerProcess) -> None:
    lock = client(kvred).lock("held", timeout=10)
    assert lock.acquire()
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(
        client(kvred).lock("held", timeout=10).acquire(blocking=True, blocking_timeout=WAIT_S)))
    waiter.start()
    lock.release()
    waiter.join(WAIT_S)
    assert got == [True]


def test_register_script_falls_back_to_script_load(kvred: ServerProcess) -> None:
    r = client(kvred, protocol=2)
    incr_by = r.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert incr_by(keys=["n"], args=[5]) == 5
    r.script_flush()
    assert incr_by(keys=["n"], args=[2]) == 7  # NOSCRIPT, then SCRIPT LOAD, then EVALSHA
    assert r.script_exists(incr_by.sha) == [True]
    with r.pipeline() as pipe:  # a pipeline loads its scripts first
        incr_by(keys=["n"], args=[1], client=pipe)
        assert pipe.execute() == [8]


def test_scripts_in_resp3(kvred: ServerProcess) -> None:
    r = client(kvred, protocol=3)
    r.hset("h", mapping={"a": "1"})
    assert r.eval("redis.setresp(3) return redis.call('HGETALL', KEYS[1])", 1, "h") == {b"a": b"1"}
    assert r.eval("return {double=1.5}", 0) == 1.5


# ---------------------------------------------------------------- the AOF


def test_script_effects_replay_after_kill(tmp_path: Path) -> None:
    if against_redis():
        pytest.skip("the harness's redis-server runs without an AOF")
    server = start_kvred(tmp_path, appendfsync="always")
    r = client(server)
    script = "redis.call('SET', KEYS[1], ARGV[1]) redis.call('RPUSH', KEYS[2], ARGV[1]) return redis.call('TIME')"
    r.eval(script, 2, "s", "l", "v1")
    r.eval("redis.call('SELECT', 3) redis.call('SET', 'in3', 'x') return 1", 0)
    r.eval("return redis.call('GET', 's')", 0)  # reads: nothing logged
    r.set("after", "1")  # in the caller's database, not 3
    r.function_load("#!lua name=lib\nredis.register_function('bump', function(k) return redis.call('INCR', k[1]) end)")
    assert r.fcall("bump", 1, "counter") == 1
    if not against_redis():
        commands = aof_commands((tmp_path / "kvred.aof").read_bytes())
        assert [b"TIME"] not in commands and not any(c[0] in (b"EVAL", b"EVALSHA") for c in commands)
        assert commands.count([b"MULTI"]) == commands.count([b"EXEC"]) == 2
        assert [b"FUNCTION", b"LOAD"] == commands[-2][:2] or any(c[:2] == [b"FUNCTION", b"LOAD"] for c in commands)
    kill_hard(server)
    server = start_kvred(tmp_path)
    r = client(server)
    assert r.get("s") == b"v1" and r.lrange("l", 0, -1) == [b"v1"] and r.get("after") == b"1"
    assert client(server, db=3).get("in3") == b"x" and r.get("in3") is None
    assert r.fcall("bump", 1, "counter") == 2  # the library came back with the AOF
    rewrite_and_wait(server)
    if not against_redis():
        commands = aof_commands((tmp_path / "kvred.aof").read_bytes())
        assert commands[0][:2] == [b"FUNCTION", b"LOAD"]
    kill_hard(server)
    server = start_kvred(tmp_path)
    try:
        r = client(server)
        assert r.fcall("bump", 1, "counter") == 3
        assert r.get("s") == b"v1" and client(server, db=3).get("in3") == b"x"
    finally:
        server.stop()


# ---------------------------------------------------------------- bounds


def test_memory_bomb_fails_and_the_server_keeps_serving(kvred: ServerProcess) -> None:
    if against_redis():
        pytest.skip("redis-server has no Lua memory limit of its own")
    r = client(kvred, socket_timeout=120)
    with pytest.raises(redis.exceptions.ResponseError, match="not enough memory"):
        r.eval("local t = {} while true do t[#t+1] = 'x' end", 0)
    assert r.eval("return 'still here'", 0) == b"still here"
    assert r.ping()


def test_runtime_errors_do_not_take_the_writer_down(kvred: ServerProcess) -> None:
    r = client(kvred)
    bodies = ["error('boom')", "local x = nil return x.y", "return {} + 1", "return redis.call('nosuch')",
              "return string.rep('x', -1)", "return cjson.decode('{')"]
    if not against_redis():  # redis-server answers a reply nested past what redis-py reads
        bodies.append("local t = {} t[1] = t return t")
    for body in bodies:
        try:
            r.eval(body, 0)
        except redis.exceptions.ResponseError:
            pass
    assert r.eval("return 1", 0) == 1


def test_reply_past_the_output_limit_drops_the_client(kvred_factory: Any) -> None:
    if against_redis():
        pytest.skip("kvred's own bound: redis-server's normal clients have no output limit")
    server = kvred_factory(client_output_buffer_limit="normal 1mb 1mb 0")
    with RawClient(server.port, timeout=WAIT_S) as c:
        assert c.call("EVAL", "return {string.rep('x', 900000), 'y', 'z'}", "0").startswith(b"*3\r\n")
        c.send(encode_command("EVAL", "local t = {} for i = 1, 3 do t[i] = string.rep('x', 500000) end return t", "0"))
        assert c.is_closed(WAIT_S)
    assert client(server).ping()


# ---------------------------------------------------------------- runaway scripts


def test_long_script_passes_the_busy_threshold_and_finishes(kvred_factory: Any) -> None:
    server = kvred_factory(busy_reply_threshold=50, loglevel="warning")
    r = client(server)
    started = time.monotonic()
    assert r.eval("local n = 0 while n < 3e7 do n = n + 1 end return n", 0) == 30_000_000
    assert time.monotonic() - started > 0.05
    if not against_redis():
        assert "Slow script detected" in server.log_path.read_text()


def _runner_with_executor(threshold_ms: int) -> tuple[Any, Any]:
    """A writer-side Executor and its ScriptRunner, in this process."""
    from kvred.config import Config
    from kvred.execute import Executor
    from kvred.keyspace import Databases
    from kvred.scripting.runner import runner_for

    config = Config(busy_reply_threshold=threshold_ms)
    executor = Executor(config, Databases(4), server=None)  # type: ignore[arg-type]
    return executor, runner_for(executor.ctx)


def test_kill_from_the_heartbeat_stops_a_read_only_script() -> None:
    """The writer-side half of SCRIPT KILL: the hook's heartbeat (where the writer polls
    its links) asks for the kill; the script fails with Redis's error at once."""
    executor, runner = _runner_with_executor(20)
    replies: list[bytes] = []
    runner.heartbeat = lambda: replies.append(runner.request_kill(is_eval=True))
    assert not runner.busy
    reply = executor.call([b"EVAL", b"local n = 0 while true do n = n + 1 end", b"0"])
    assert replies == [b"+OK\r\n"]
    assert reply.startswith(b"-ERR Script killed by user with SCRIPT KILL. script: ")
    assert runner.running is None and not runner.kill_requested
    # a pcall in the script cannot keep it alive
    replies.clear()
    reply = executor.call([b"EVAL", b"while true do pcall(function() while true do end end) end", b"0"])
    assert replies == [b"+OK\r\n"] and b"Script killed by user with SCRIPT KILL." in reply
    assert executor.call([b"EVAL", b"return 1", b"0"]) == b":1\r\n"


def test_a_script_that_wrote_is_unkillable() -> None:
    executor, runner = _runner_with_executor(20)
    seen: list[bytes] = []

    def heartbeat() -> None:
        seen.append(runner.busy_error())
        seen.append(runner.request_kill(is_eval=False))  # FUNCTION KILL of an EVAL
        seen.append(runner.request_kill(is_eval=True))
        runner.heartbeat = None

    runner.heartbeat = heartbeat
    reply = executor.call([b"EVAL", b"redis.call('SET', 'k', 'v') local n = 0 while n < 2e7 do n = n + 1 end return n",
                           b"0"])
    assert reply == b":20000000\r\n"
    assert seen[0].startswith(b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL")
    assert seen[1] == seen[2]  # dirty comes first, whichever KILL it is
    assert seen[2].startswith(b"-UNKILLABLE Sorry the script already executed write commands")
    assert runner.request_kill(is_eval=True) == b"-NOTBUSY No scripts in execution right now.\r\n"
