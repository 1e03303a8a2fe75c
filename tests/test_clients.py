"""Integration tests: real clients (redis-cli, redis-benchmark, redis-py) against kvred.

WIRE.md sections 1-3 and 7 say what each client sends and needs. Every
subprocess runs with a timeout; every server is stopped by PID in teardown.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from typing import Any

import psutil
import pytest
import redis
import redis.asyncio
from conftest import ServerProcess, against_redis, require_tool

CLI_TIMEOUT_S = 10.0
BENCHMARK_TIMEOUT_S = 60.0
PIPELINE_COMMANDS = 100
# Bytes that survive argv (no NUL) yet need escaping or raw output in redis-cli.
BINARYISH_VALUE = b'bin\x01\x02\xff\xfe "q" \'x\' \\ \t end \xc3\xa9'


def redis_cli(server: ServerProcess, *args: str | bytes, stdin: bytes | None = None,
              timeout: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess[bytes]:
    exe = require_tool("redis-cli")
    return subprocess.run([exe, "-p", str(server.port), *args], input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, timeout=timeout, check=False)


def ok_output(result: subprocess.CompletedProcess[bytes]) -> bytes:
    """stdout of a successful run, with the full output in the failure message."""
    assert result.returncode == 0 and not result.stderr, (
        f"rc={result.returncode} stdout={result.stdout!r} stderr={result.stderr!r}")
    return result.stdout


# --- redis-cli -----------------------------------------------------------------


def test_redis_cli_one_shot(kvred_module: ServerProcess) -> None:
    assert ok_output(redis_cli(kvred_module, "PING")) == b"PONG\n"
    assert ok_output(redis_cli(kvred_module, "SET", "cli:k", "v")) == b"OK\n"
    assert ok_output(redis_cli(kvred_module, "GET", "cli:k")) == b"v\n"
    # Not a TTY: redis-cli prints nil as an empty line.
    assert ok_output(redis_cli(kvred_module, "GET", "cli:missing")) == b"\n"
    assert ok_output(redis_cli(kvred_module, "ping", "hello")) == b"hello\n"


def test_redis_cli_binaryish_values(kvred_module: ServerProcess) -> None:
    assert ok_output(redis_cli(kvred_module, "SET", "cli:bin", BINARYISH_VALUE)) == b"OK\n"
    # Raw output (not a TTY) gives the exact bytes back.
    assert ok_output(redis_cli(kvred_module, "GET", "cli:bin")) == BINARYISH_VALUE + b"\n"
    assert ok_output(redis_cli(kvred_module, "--no-raw", "GET", "cli:bin")) == (
        b'"bin\\x01\\x02\\xff\\xfe \\"q\\" \'x\' \\\\ \\t end \\xc3\\xa9"\n')
    assert ok_output(redis_cli(kvred_module, "STRLEN", "cli:bin")) == (
        b"%d\n" % len(BINARYISH_VALUE))
    with redis.Redis(port=kvred_module.port, protocol=2) as r:
        assert r.get("cli:bin") == BINARYISH_VALUE


def test_redis_cli_resp3(kvred_module: ServerProcess) -> None:
    """`-3` sends HELLO 3 first; the command must then work in RESP3."""
    assert ok_output(redis_cli(kvred_module, "-3", "SET", "cli:r3", "v")) == b"OK\n"
    assert ok_output(redis_cli(kvred_module, "-3", "GET", "cli:r3")) == b"v\n"
    assert ok_output(redis_cli(kvred_module, "-3", "GET", "cli:nokey")) == b"\n"
    assert ok_output(redis_cli(kvred_module, "-3", "MGET", "cli:r3", "cli:nokey")) == b"v\n\n"
    assert ok_output(redis_cli(kvred_module, "-3", "PING")) == b"PONG\n"


def test_redis_cli_interactive_heredoc(kvred_module: ServerProcess) -> None:
    """Interactive mode sends COMMAND DOCS first, then the lines; quit is local."""
    script = b"SET cli:i 1\nINCR cli:i\nGET cli:i\nGET cli:inokey\nPING\nquit\n"
    out = ok_output(redis_cli(kvred_module, stdin=script))
    assert out == b"OK\n2\n2\n\nPONG\n"


def test_redis_cli_select_db(kvred_module: ServerProcess) -> None:
    """`-n N` sends SELECT N first; 16 databases, as redis-server's default."""
    assert ok_output(redis_cli(kvred_module, "-n", "0", "SET", "cli:db0", "x")) == b"OK\n"
    assert ok_output(redis_cli(kvred_module, "-n", "0", "GET", "cli:db0")) == b"x\n"
    assert ok_output(redis_cli(kvred_module, "-n", "1", "GET", "cli:db0")) == b"\n"
    assert ok_output(redis_cli(kvred_module, "-n", "15", "SET", "cli:db15", "y")) == b"OK\n"
    assert ok_output(redis_cli(kvred_module, "-n", "15", "GET", "cli:db15")) == b"y\n"
    proc = redis_cli(kvred_module, "-n", "16", "GET", "cli:db0")
    assert b"SELECT 16 failed: ERR DB index is out of range" in proc.stderr + proc.stdout


# --- redis-py --------------------------------------------------------------------


def _exercise_sync(r: redis.Redis, prefix: str) -> None:
    assert r.ping() is True
    assert r.set(f"{prefix}:a", "b") is True
    assert r.get(f"{prefix}:a") == b"b"
    assert r.get(f"{prefix}:missing") is None
    assert r.set(f"{prefix}:a", "c", nx=True) is None
    assert r.set(f"{prefix}:a", "c", xx=True, get=True) == b"b"
    assert r.mget([f"{prefix}:a", f"{prefix}:missing"]) == [b"c", None]
    assert r.incr(f"{prefix}:n") == 1
    assert r.incrby(f"{prefix}:n", 10) == 11
    assert r.incrbyfloat(f"{prefix}:f", 1.5) == 1.5
    assert r.exists(f"{prefix}:a", f"{prefix}:a", f"{prefix}:missing") == 2
    assert r.append(f"{prefix}:a", "dd") == 3
    assert r.getrange(f"{prefix}:a", 0, -1) == b"cdd"
    assert r.delete(f"{prefix}:a", f"{prefix}:n", f"{prefix}:f") == 3
    assert r.echo(b"\x00\xff") == b"\x00\xff"
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.incrby(f"{prefix}:x", "abc")  # type: ignore[arg-type]


@pytest.mark.parametrize("protocol", [None, 2, 3], ids=["default", "resp2", "resp3"])
def test_redis_py_sync(kvred_module: ServerProcess, protocol: int | None) -> None:
    kwargs: dict[str, Any] = {} if protocol is None else {"protocol": protocol}
    with redis.Redis(port=kvred_module.port, socket_timeout=5, **kwargs) as r:
        _exercise_sync(r, f"py:{protocol}")


@pytest.mark.parametrize("protocol", [None, 2], ids=["default", "resp2"])
def test_redis_py_asyncio(kvred_module: ServerProcess, protocol: int | None) -> None:
    kwargs: dict[str, Any] = {} if protocol is None else {"protocol": protocol}

    async def scenario() -> None:
        r = redis.asyncio.Redis(port=kvred_module.port, socket_timeout=5, **kwargs)
        try:
            prefix = f"aio:{protocol}"
            assert await r.ping() is True
            assert await r.set(f"{prefix}:a", "b") is True
            assert await r.get(f"{prefix}:a") == b"b"
            assert await r.get(f"{prefix}:missing") is None
            assert await r.mget([f"{prefix}:a", f"{prefix}:missing"]) == [b"b", None]
            # Many clients at once, as an application would.
            values = await asyncio.gather(*(r.incr(f"{prefix}:n") for _ in range(50)))
            assert sorted(values) == list(range(1, 51))
            async with r.pipeline(transaction=True) as pipe:
                for i in range(PIPELINE_COMMANDS):
                    pipe.set(f"{prefix}:p{i}", i)
                assert await pipe.execute() == [True] * PIPELINE_COMMANDS
            assert await r.delete(f"{prefix}:a", f"{prefix}:n") == 2
        finally:
            await r.aclose()

    asyncio.run(asyncio.wait_for(scenario(), timeout=20))


@pytest.mark.parametrize("transaction", [True, False], ids=["multi-exec", "no-transaction"])
@pytest.mark.parametrize("protocol", [None, 2], ids=["default", "resp2"])
def test_redis_py_pipeline(kvred_module: ServerProcess, transaction: bool,
                           protocol: int | None) -> None:
    kwargs: dict[str, Any] = {} if protocol is None else {"protocol": protocol}
    prefix = f"pipe:{transaction}:{protocol}"
    with redis.Redis(port=kvred_module.port, socket_timeout=5, **kwargs) as r:
        with r.pipeline(transaction=transaction) as pipe:
            for i in range(PIPELINE_COMMANDS):
                pipe.set(f"{prefix}:{i}", f"v{i}")
            assert pipe.execute() == [True] * PIPELINE_COMMANDS
        with r.pipeline(transaction=transaction) as pipe:
            for i in range(PIPELINE_COMMANDS):
                pipe.get(f"{prefix}:{i}")
            assert pipe.execute() == [f"v{i}".encode() for i in range(PIPELINE_COMMANDS)]
        with r.pipeline(transaction=transaction) as pipe:
            pipe.incr(f"{prefix}:n").get(f"{prefix}:missing").incrby(f"{prefix}:n", 5)
            assert pipe.execute() == [1, None, 6]


# --- redis-benchmark -------------------------------------------------------------


def test_redis_benchmark(kvred_module: ServerProcess) -> None:
    exe = require_tool("redis-benchmark")
    result = subprocess.run(
        [exe, "-p", str(kvred_module.port), "-t", "ping,set,get", "-n", "20000", "-q"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=BENCHMARK_TIMEOUT_S,
        check=False)
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    assert "error" not in output.lower(), output
    for test in ("PING_INLINE", "PING_MBULK", "SET", "GET"):
        assert f"{test}: " in output, output


# What redis-benchmark runs with no -t, in order (redis-benchmark 7.0).
DEFAULT_SUITE = ("PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "LPUSH", "RPUSH", "LPOP", "RPOP", "SADD",
                 "HSET", "SPOP", "ZADD", "ZPOPMIN", "LPUSH (needed to benchmark LRANGE)",
                 "LRANGE_100 (first 100 elements)", "LRANGE_300 (first 300 elements)",
                 "LRANGE_500 (first 500 elements)", "LRANGE_600 (first 600 elements)", "MSET (10 keys)")


def test_redis_benchmark_default_suite(kvred_module: ServerProcess) -> None:
    """What a user runs first: `redis-benchmark -q` with no -t runs every test of its
    default suite, each without an error."""
    exe = require_tool("redis-benchmark")
    result = subprocess.run(
        [exe, "-p", str(kvred_module.port), "-n", "10000", "-q", "--csv"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=BENCHMARK_TIMEOUT_S,
        check=False)
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0, output
    assert "WARNING" not in output and "error" not in output.lower(), output
    ran = [line.split(",")[0].strip('"') for line in output.splitlines()[1:] if line.startswith('"')]
    assert ran == list(DEFAULT_SUITE), output


# --- processes -------------------------------------------------------------------


def _wait_for_children(server: ServerProcess, count: int, timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while True:
        children = server.capture_tree()
        if len(children) == count or time.monotonic() > deadline:
            return children
        time.sleep(0.02)


@pytest.mark.skipif(against_redis(), reason="redis-server has no worker processes")
def test_process_tree_and_graceful_sigterm(kvred: ServerProcess) -> None:
    """--workers 2: 1 supervisor + 2 workers + 1 writer; SIGTERM leaves nothing behind."""
    children = _wait_for_children(kvred, 3, timeout=10)
    described = [(p.pid, p.ppid(), " ".join(p.cmdline())[:80]) for p in children]
    assert len(children) == 3, f"expected 2 workers + 1 writer, got {described}"

    with redis.Redis(port=kvred.port, protocol=2, socket_timeout=5) as r:
        assert r.set("before-stop", "1") is True

    started = time.monotonic()
    code = kvred.signal_and_wait(signal.SIGTERM, timeout=10)
    elapsed = time.monotonic() - started
    assert code is not None, f"supervisor still running 10 s after SIGTERM\n{kvred.log_tail()}"
    assert code == 0, f"exit code {code} after SIGTERM\n{kvred.log_tail()}"
    # The supervisor reaps its children before it exits; allow a moment for
    # the kernel to finish tearing them down.
    psutil.wait_procs(list(kvred.descendants.values()), timeout=2)
    alive = kvred.leftovers()
    assert not alive, f"left behind after SIGTERM: {[(p.pid, p.cmdline()) for p in alive]}"
    assert elapsed < 10
