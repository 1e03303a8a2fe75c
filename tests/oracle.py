"""Start kvred, or redis-server as the oracle, with the same security and limit flags.

conftest's `start_kvred` waits for `+PONG`, which a server with a password
never sends (it answers `-NOAUTH`), and under KVRED_TEST_AGAINST_REDIS it
drops every flag. This module fills both gaps for the security, limit, fuzz
and load tests:

  start_server(workdir, kind="kvred"|"redis", *, env_extra=None, **flags)

takes kvred's flag names (requirepass, protected_mode, maxclients, timeout,
proto_max_bulk_len, client_query_buffer_limit, client_output_buffer_limit,
bind, workers, ...) and, for redis-server, translates them to Redis's
configuration (`client-output-buffer-limit "normal X X 0"`, no persistence). kvred-only flags (workers, fsync, appendonly...) are dropped for
Redis. Under KVRED_TEST_AGAINST_REDIS=1 a "kvred" is a redis-server too, so
every test here can be checked against the real thing.

Also: a `Servers` collection that stops everything it started by PID, process
helpers (the kvred tree, its RSS) and a background `SteadyClient` that keeps
checking SET/GET answers on its own keys while a test misbehaves elsewhere.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import threading
import time
from pathlib import Path

import psutil
from conftest import (
    START_TIMEOUT_S,
    ServerProcess,
    _kvred_env,
    against_redis,
    free_port,
    require_tool,
)
from rawclient import RawClient, encode_command

__all__ = [
    "READY_REPLIES",
    "Servers",
    "SteadyClient",
    "kvred_tree",
    "start_server",
    "total_rss",
]

# A server is up once PING gets one of these (a passworded one says NOAUTH).
READY_REPLIES = (b"+PONG\r\n", b"-NOAUTH ")
READY_POLL_S = 0.02

# kvred flags that have no meaning for redis-server.
_KVRED_ONLY = {"workers", "fsync", "appendonly", "appendfilename", "auto_aof_rewrite_percentage",
               "auto_aof_rewrite_min_size"}


def _answers(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            data = b""
            while b"\r\n" not in data and len(data) < 256:
                chunk = s.recv(256)
                if not chunk:
                    return False
                data += chunk
            return data.startswith(READY_REPLIES)
    except OSError:
        return False


class FlexServer(ServerProcess):
    """A ServerProcess that is ready when PING gets +PONG or -NOAUTH."""

    def is_ready(self) -> bool:
        return _answers(self.port) and self.all_listening()


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _value(value: object) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value)


def start_server(workdir: Path, kind: str = "kvred", *, env_extra: dict[str, str] | None = None,
                 **flags: object) -> ServerProcess:
    """Start kvred (kind="kvred") or redis-server (kind="redis") with kvred-named flags."""
    assert kind in ("kvred", "redis"), kind
    workdir.mkdir(parents=True, exist_ok=True)
    port = int(flags.pop("port", 0) or free_port())  # type: ignore[call-overload]
    bind = str(flags.pop("bind", "127.0.0.1"))
    env = _kvred_env()
    env.update(env_extra or {})
    if kind == "redis" or against_redis():
        exe = require_tool("redis-server")
        argv = [exe, "--port", str(port), "--bind", bind, "--save", "", "--appendonly", "no",
                "--dir", str(workdir)]
        if "requirepass" not in flags and env.get("KVRED_PASSWORD"):
            flags["requirepass"] = env["KVRED_PASSWORD"]  # what kvred reads from the environment
        for key, value in flags.items():
            if key in _KVRED_ONLY or value is None:
                continue
            if key == "client_output_buffer_limit":
                argv += [_flag(key), f"normal {value} {value} 0"]
            elif key == "loglevel":
                argv += [_flag(key), str(value)]
            else:
                argv += [_flag(key), _value(value)]
        name = "redis-server" if kind == "redis" else "kvred-as-redis"
        return FlexServer(name, argv, port, workdir).start(START_TIMEOUT_S)
    options: dict[str, object] = {"workers": 2, "loglevel": "warning"}
    options.update(flags)
    argv = [sys.executable, "-m", "kvred", "--port", str(port), "--bind", bind, "--dir", str(workdir)]
    for key, value in options.items():
        if value is None:
            continue
        if key in ("protected_mode", "appendonly") and isinstance(value, bool):
            value = "yes" if value else "no"
        argv += [_flag(key), str(value)]
    return FlexServer("kvred", argv, port, workdir, env=env,
                      listeners=int(options["workers"])).start(START_TIMEOUT_S)  # type: ignore[call-overload]


class Servers:
    """Servers started for one test or module; `stop_all()` stops each by PID."""

    def __init__(self, base: Path):
        self.base = base
        self.started: list[ServerProcess] = []

    def start(self, kind: str = "kvred", *, env_extra: dict[str, str] | None = None,
              **flags: object) -> ServerProcess:
        workdir = self.base / f"{kind}-{len(self.started)}"
        server = start_server(workdir, kind, env_extra=env_extra, **flags)
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


# ---------------------------------------------------------------- processes


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kvred_tree(server: ServerProcess) -> list[psutil.Process]:
    """The live main process and every live descendant (recorded for teardown)."""
    server.capture_tree()
    try:
        main = psutil.Process(server.pid)
        procs = [main, *main.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    return [p for p in procs if alive(p)]


def total_rss(server: ServerProcess) -> int:
    total = 0
    for p in kvred_tree(server):
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


class RssSampler:
    """Samples the total RSS of a server's processes in a thread until stopped."""

    def __init__(self, server: ServerProcess, interval_s: float = 0.02):
        self.server = server
        self.interval_s = interval_s
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, total_rss(self.server))
            self.samples += 1
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


# ---------------------------------------------------------------- steady client


class SteadyClient:
    """A well-behaved client with its own random key prefix.

    `check()` does one SET + GET pair and asserts the exact reply bytes;
    `start()`/`stop()` run checks in a background thread (paced by `interval_s`)
    and collect every wrong or missing answer in `failures`.
    """

    def __init__(self, port: int, password: str | None = None, timeout: float = 5.0,
                 interval_s: float = 0.01):
        self.port = port
        self.prefix = f"steady-{secrets.token_hex(8)}:"
        self.client = RawClient(port, timeout=timeout)
        if password is not None:
            reply = self.client.call("AUTH", password)
            assert reply == b"+OK\r\n", reply
        self.count = 0
        self.failures: list[str] = []
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> None:
        """One SET/GET round trip with exact replies; raises AssertionError otherwise."""
        n = self.count
        key = f"{self.prefix}{n}"
        value = f"value-{n}-{secrets.token_hex(4)}".encode()
        self.client.send(encode_command("SET", key, value) + encode_command("GET", key))
        got_set = self.client.read_reply()
        got_get = self.client.read_reply()
        assert got_set == b"+OK\r\n", f"steady SET #{n}: {got_set[:200]!r}"
        expected = b"$%d\r\n%s\r\n" % (len(value), value)
        assert got_get == expected, f"steady GET #{n}: {got_get[:200]!r}, expected {expected!r}"
        self.count += 1

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            try:
                self.check()
            except (AssertionError, OSError, TimeoutError, ConnectionError, ValueError) as exc:
                self.failures.append(f"check #{self.count} at {time.monotonic() - started:.1f} s "
                                     f"(reply timeout {self.client.timeout} s): {type(exc).__name__}: {exc}")
                return  # the connection state is unknown now
            self._stop.wait(self.interval_s)

    def start(self) -> SteadyClient:
        self._thread = threading.Thread(target=self._run, name="steady-client", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)
            assert not self._thread.is_alive(), "the steady client is stuck"
            self._thread = None
        self._stop.clear()

    def verify_all(self) -> None:
        """Every key written so far still holds a value (MGET in chunks)."""
        for start in range(0, self.count, 500):
            keys = [f"{self.prefix}{n}" for n in range(start, min(self.count, start + 500))]
            raw = self.client.call("MGET", *keys)
            assert b"$-1\r\n" not in raw, f"a steady key disappeared: {raw[:200]!r}"

    def close(self) -> None:
        self._stop.set()
        self.client.close()


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")
