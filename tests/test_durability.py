"""Durability of the AOF: crashes, torn tails, corruption, rewrites, shutdown,
interop with redis-server's AOF, disk errors; TTLs and the 16 databases (section 10); the
value types: lists, hashes, sets, sorted sets, bitmaps, HyperLogLogs (section 11).

Real processes, real files, real signals; no mocks. Every wait polls a
condition with a deadline (POLL_S between checks), every process is stopped by
PID, all traffic goes to 127.0.0.1.

A crash is simulated by `kill_all()`: every process of the kvred tree
(supervisor, writer, workers, a rewrite child) is frozen with SIGSTOP, the tree
is listed again (so a child forked just before the freeze is caught too), and
then every one gets SIGKILL. The freeze makes the kill one instant for the
whole tree, as a power cut would be, instead of a sequence in which a survivor
could notice the others dying and start a graceful stop.

Set KVRED_DURABILITY_SEED to replay the random choices of a failed run (the
seed is printed in every failure message).
"""

from __future__ import annotations

import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
from aoftools import aof_commands, rewrite_and_wait
from conftest import REPO_ROOT, ServerProcess, against_redis, answers_ping, free_port, require_tool
from rawclient import RawClient, encode_command, parse_reply
from redis.backoff import NoBackoff
from redis.retry import Retry

pytestmark = pytest.mark.skipif(
    against_redis(), reason="kvred durability flags and process tree; not applicable to redis-server")

POLL_S = 0.005  # interval between two checks of a polled condition
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0
KILL_TIMEOUT_S = 10.0
REWRITE_TIMEOUT_S = 60.0
CHECK_AOF_TIMEOUT_S = 30.0
CLIENT_TIMEOUT_S = 10.0
EVERYSEC_WINDOW_S = 2.0  # under everysec an acknowledged write may be lost if acked this recently
AOF_NAME = "kvred.aof"
SEED = int(os.environ.get("KVRED_DURABILITY_SEED", "0")) or random.randrange(1, 2**31)


# --------------------------------------------------------------------------- processes


def _kvred_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


class Launcher:
    """Starts kvred / redis-server processes; the fixture stops them all by PID.

    Logs go to `run_dir` (one file per start), data to the `--dir` given, so a
    data directory only ever holds what the server itself wrote there.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.run_dir = root / "run"
        self.run_dir.mkdir()
        self.started: list[ServerProcess] = []
        self._count = 0

    def data_dir(self, name: str = "data") -> Path:
        path = self.root / name
        path.mkdir(exist_ok=True)
        return path

    def _kvred(self, data_dir: Path, flags: dict[str, object], prefix: tuple[str, ...] = ()) -> ServerProcess:
        self._count += 1
        port = free_port()
        options: dict[str, object] = {"port": port, "bind": "127.0.0.1", "workers": 2, "dir": str(data_dir),
                                      "fsync": "always", "loglevel": "warning"}
        options.update(flags)
        argv = [*prefix, sys.executable, "-m", "kvred"]
        for key, value in options.items():
            argv += ["--" + key.replace("_", "-"), str(value)]
        server = ServerProcess(f"kvred-{self._count}", argv, port, self.run_dir, env=_kvred_env(),
                               listeners=int(options["workers"]))  # type: ignore[call-overload]
        self.started.append(server)
        return server

    def kvred(self, data_dir: Path, **flags: object) -> ServerProcess:
        """Start kvred on `data_dir` and wait until it answers PING."""
        return self._kvred(data_dir, flags).start(START_TIMEOUT_S)

    def kvred_unprivileged(self, data_dir: Path, **flags: object) -> ServerProcess:
        """kvred as user `nobody`, so that RLIMIT_NPROC applies to it (root is exempt). It
        keeps the file-access capabilities (ambient), to run the interpreter and the
        checkout wherever they are (a home directory nobody cannot enter, say)."""
        if os.geteuid() != 0 and not os.environ.get("CI"):
            pytest.skip("needs root to run kvred as another user")
        setpriv = require_tool("setpriv")
        caps = "+dac_override,+dac_read_search"
        prefix = (setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", f"--inh-caps={caps}",
                  f"--ambient-caps={caps}")
        return self._kvred(data_dir, flags, prefix).start(START_TIMEOUT_S)

    def kvred_must_fail(self, data_dir: Path, **flags: object) -> tuple[int, str]:
        """Start kvred, expecting it to refuse to start: (exit code, log)."""
        server = self._kvred(data_dir, flags)
        with open(server.log_path, "ab") as log:
            server.proc = subprocess.Popen(server.argv, cwd=server.dir, env=server.env, stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while (code := server.proc.poll()) is None:
            server.capture_tree()
            if answers_ping(server.port, timeout=0.5):
                pytest.fail(f"kvred started serving; expected it to refuse\n--- log ---\n{server.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"kvred neither served nor exited within {START_TIMEOUT_S} s\n{server.log_tail()}")
            time.sleep(POLL_S)
        wait_gone(list(server.descendants.values()))
        return code, server.log_path.read_text(errors="replace")

    def redis(self, data_dir: Path, *options: str) -> ServerProcess:
        exe = require_tool("redis-server")
        self._count += 1
        port = free_port()
        argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir), "--save", "", *options]
        server = ServerProcess(f"redis-{self._count}", argv, port, self.run_dir)
        self.started.append(server)
        return server.start(START_TIMEOUT_S)

    def stop_all(self) -> None:
        for server in self.started:
            server.stop(STOP_TIMEOUT_S)


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    lau = Launcher(tmp_path)
    try:
        yield lau
    finally:
        lau.stop_all()


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(procs: list[psutil.Process], timeout: float = KILL_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while alive := [p for p in procs if _alive(p)]:
        if time.monotonic() > deadline:
            pytest.fail(f"processes still running after {timeout} s: {[p.pid for p in alive]}")
        time.sleep(POLL_S)


def kill_all(server: ServerProcess) -> list[psutil.Process]:
    """Crash: freeze the whole kvred tree, then SIGKILL every process of it."""
    root = psutil.Process(server.pid)
    tree: dict[int, psutil.Process] = {root.pid: root}
    while True:
        for p in list(tree.values()):
            try:
                p.suspend()  # SIGSTOP: a frozen process forks nothing more
            except psutil.NoSuchProcess:
                pass
        try:
            children = root.children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        new = [c for c in children if c.pid not in tree]
        if not new:
            break
        tree.update((c.pid, c) for c in new)
    for p in tree.values():
        server.descendants.setdefault(p.pid, p)
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    assert server.proc is not None
    server.proc.wait(KILL_TIMEOUT_S)
    wait_gone(list(tree.values()))
    return list(tree.values())


def wait_exit(server: ServerProcess, timeout: float = STOP_TIMEOUT_S) -> int:
    """Wait for the supervisor to exit on its own; then no process of the tree may be left."""
    assert server.proc is not None
    try:
        code = server.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{server.name} did not exit within {timeout} s\n{server.log_tail()}")
    wait_gone(list(server.descendants.values()), timeout)
    return code


# --------------------------------------------------------------------------- clients and data


def client(server: ServerProcess) -> redis.Redis:
    """redis-py without retries: a command is sent at most once, so an ack means what it says."""
    return redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=CLIENT_TIMEOUT_S,
                       socket_connect_timeout=CLIENT_TIMEOUT_S, retry=Retry(NoBackoff(), 0), protocol=2)


def dump(server: ServerProcess) -> dict[bytes, bytes]:
    """Every key and its value, via SCAN + MGET."""
    with client(server) as r:
        keys = list(dict.fromkeys(r.scan_iter(count=1000)))
        out: dict[bytes, bytes] = {}
        for i in range(0, len(keys), 2000):
            chunk = keys[i : i + 2000]
            out.update(zip(chunk, r.mget(chunk), strict=True))
    missing = [k for k, v in out.items() if v is None]
    assert not missing, f"SCAN returned keys that GET does not find: {missing[:10]}"
    return out


def info(server: ServerProcess, section: str = "persistence") -> dict[str, Any]:
    with client(server) as r:
        return r.info(section)


def wait_for(what: str, condition: Callable[[], bool], timeout: float, details: Callable[[], str] = str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}; {details()}")
        time.sleep(POLL_S)


def aof_path(data_dir: Path) -> Path:
    return data_dir / AOF_NAME


def temp_files(data_dir: Path) -> list[str]:
    return sorted(p.name for p in data_dir.glob("temp-rewriteaof-*"))


def check_aof(path: Path, fix: bool = False) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "kvred", "check-aof", *(["--fix"] if fix else []), str(path)]
    return subprocess.run(argv, env=_kvred_env(), cwd=path.parent, capture_output=True, text=True,
                          timeout=CHECK_AOF_TIMEOUT_S, check=False)


def cmd(*args: str | bytes) -> bytes:
    return encode_command(*args)


def log_lines(text: str, level: str) -> list[str]:
    return [line for line in text.splitlines() if level in line]


def mentions_number(text: str, number: int) -> bool:
    return re.search(rf"(?<![0-9]){number}(?![0-9])", text) is not None


def bulk_load(server: ServerProcess, items: dict[bytes, bytes], per_mset: int = 100, per_pipe: int = 50) -> None:
    """MSET `items` in pipelined batches; every reply must be OK."""
    pairs = list(items.items())
    with client(server) as r:
        for i in range(0, len(pairs), per_mset * per_pipe):
            pipe = r.pipeline(transaction=False)
            chunk = pairs[i : i + per_mset * per_pipe]
            for j in range(0, len(chunk), per_mset):
                pipe.mset(dict(chunk[j : j + per_mset]))
            assert all(reply is True for reply in pipe.execute())


def assert_has(server: ServerProcess, items: dict[bytes, bytes]) -> None:
    keys = list(items)
    wrong = []
    with client(server) as r:
        for i in range(0, len(keys), 5000):
            chunk = keys[i : i + 5000]
            for k, v in zip(chunk, r.mget(chunk), strict=True):
                if v != items[k]:
                    wrong.append((k, items[k], v))
    assert not wrong, f"{len(wrong)} keys lost or wrong (key, expected, actual), first ones: {wrong[:5]}"


# --------------------------------------------------------------------------- concurrent writers


@dataclass
class Ledger:
    """What one writer thread sent and what was acknowledged, with monotonic ack times."""

    acked: dict[bytes, tuple[bytes, float]] = field(default_factory=dict)  # SET and MSET keys
    unacked: dict[bytes, bytes] = field(default_factory=dict)  # sent, reply never received
    mset_groups: list[tuple[tuple[bytes, ...], float | None]] = field(default_factory=list)  # None: unacked
    counter: bytes = b""
    counter_acks: list[tuple[int, float]] = field(default_factory=list)
    counter_in_flight: bool = False
    error: str = ""  # an unexpected reply or exception (not the connection dropping)

    @property
    def acks(self) -> int:
        return len(self.acked) + len(self.counter_acks)

    def all_keys(self) -> set[bytes]:
        return set(self.acked) | set(self.unacked) | ({self.counter} if self.counter else set())


class WriterThreads:
    """N threads, each with its own redis-py client, writing unique keys (SET, INCR, MSET)."""

    def __init__(self, server: ServerProcess, prefix: str, threads: int, seed: int) -> None:
        self.stop = threading.Event()
        self.crashing = threading.Event()  # set just before the test kills the server
        self.ledgers = [Ledger(counter=f"{prefix}:t{i}:ctr".encode()) for i in range(threads)]
        self.threads = [threading.Thread(target=self._run, args=(server.port, f"{prefix}:t{i}", self.ledgers[i],
                                                                  random.Random(seed * 1000 + i)), daemon=True)
                        for i in range(threads)]

    def __enter__(self) -> WriterThreads:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def _run(self, port: int, prefix: str, led: Ledger, rng: random.Random) -> None:
        r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=CLIENT_TIMEOUT_S,
                        socket_connect_timeout=CLIENT_TIMEOUT_S, retry=Retry(NoBackoff(), 0), protocol=2)
        n = 0
        try:
            while not self.stop.is_set():
                n += 1
                roll = rng.random()
                if roll < 0.15:
                    led.counter_in_flight = True
                    count = int(r.incr(led.counter))
                    led.counter_acks.append((count, time.monotonic()))
                    led.counter_in_flight = False
                    if count != len(led.counter_acks):
                        led.error = f"INCR {led.counter!r} answered {count}, expected {len(led.counter_acks)}"
                        return
                elif roll < 0.30:
                    group = {f"{prefix}:m{n}:{j}".encode(): _value(rng, n) for j in range(3)}
                    led.unacked.update(group)
                    led.mset_groups.append((tuple(group), None))
                    ok = r.mset(group)
                    now = time.monotonic()
                    if ok is not True:
                        led.error = f"MSET answered {ok!r}"
                        return
                    led.mset_groups[-1] = (tuple(group), now)
                    for k, v in group.items():
                        del led.unacked[k]
                        led.acked[k] = (v, now)
                else:
                    key, value = f"{prefix}:s{n}".encode(), _value(rng, n)
                    led.unacked[key] = value
                    answer = r.set(key, value)
                    now = time.monotonic()
                    if answer is not True:
                        led.error = f"SET answered {answer!r}"
                        return
                    del led.unacked[key]
                    led.acked[key] = (value, now)
        except (redis.ConnectionError, redis.TimeoutError, ConnectionError) as exc:
            if self.crashing.is_set():
                return  # the server died: the last command's outcome is unknown (it stays in `unacked`)
            led.error = f"connection lost while the server was supposed to be up: {exc}"
        except Exception as exc:  # noqa: BLE001 - reported by the test
            led.error = f"{type(exc).__name__}: {exc}"
        finally:
            r.close()

    def acks(self) -> int:
        return sum(led.acks for led in self.ledgers)

    def wait_acks(self, count: int, timeout: float = 60.0) -> None:
        wait_for(f"{count} acknowledged writes", lambda: self.acks() >= count or self.failed(), timeout,
                 lambda: f"acks={self.acks()}")
        self.assert_no_error()
        assert self.acks() >= count, "a writer thread stopped early"

    def crash(self, server: ServerProcess) -> list[psutil.Process]:
        """kill_all(server) while the threads keep writing; returns the killed processes."""
        self.crashing.set()
        return kill_all(server)

    def failed(self) -> bool:
        return any(led.error for led in self.ledgers) or not all(t.is_alive() for t in self.threads)

    def finish(self, timeout: float = 3 * CLIENT_TIMEOUT_S) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in self.threads), "a writer thread did not stop"

    def assert_no_error(self) -> None:
        errors = [led.error for led in self.ledgers if led.error]
        assert not errors, f"writer threads failed: {errors} (seed {SEED})"


def _value(rng: random.Random, n: int) -> bytes:
    """A value that is unique to its write, with some binary bytes and varying length."""
    return b"%d:" % n + rng.randbytes(rng.randint(1, 40))


def check_ledgers(state: dict[bytes, bytes], ledgers: list[Ledger], prefix: bytes,
                  lose_after: float | None = None) -> list[str]:
    """Compare the recovered state with what the writers were told.

    `lose_after`: None means no acknowledged write may be lost; otherwise a
    write acknowledged at or after that monotonic time may be lost.
    """
    problems: list[str] = []

    def may_lose(ack_time: float) -> bool:
        return lose_after is not None and ack_time >= lose_after

    known: set[bytes] = set()
    for led in ledgers:
        known |= led.all_keys()
        for key, (value, t) in led.acked.items():
            got = state.get(key)
            if got == value or (got is None and may_lose(t)):
                continue
            problems.append(f"acknowledged {key!r}={value!r} (acked {_ago(t, lose_after)}) recovered as {got!r}")
        for key, value in led.unacked.items():
            got = state.get(key)
            if got is not None and got != value:
                problems.append(f"unacknowledged {key!r}={value!r} recovered as {got!r}")
        for keys, _acked_at in led.mset_groups:
            present = [k in state for k in keys]
            if any(present) and not all(present):
                problems.append(f"MSET {keys} recovered partially: {present}")
        got = state.get(led.counter)
        found = int(got) if got is not None else 0
        acked = led.counter_acks[-1][0] if led.counter_acks else 0
        highest = acked + (1 if led.counter_in_flight else 0)
        if found > highest:
            problems.append(f"counter {led.counter!r} is {found}, but only {highest} INCRs were sent")
        lost = [(v, t) for v, t in led.counter_acks if v > found]
        if lost and not all(may_lose(t) for _v, t in lost):
            problems.append(f"counter {led.counter!r} recovered as {found}, but INCR acknowledged {acked} "
                            f"({len(lost)} acknowledged INCRs lost, oldest acked {_ago(lost[0][1], lose_after)})")
    phantoms = [k for k in state if k.startswith(prefix) and k not in known]
    if phantoms:
        problems.append(f"{len(phantoms)} keys nobody wrote: {phantoms[:5]}")
    return problems


def _ago(t: float, ref: float | None) -> str:
    return f"at t={t:.3f}" if ref is None else f"{ref + EVERYSEC_WINDOW_S - t:.3f} s before the kill"


# --------------------------------------------------------------------------- 1, 2: crashes


def _crash_rounds(launcher: Launcher, fsync: str, rounds: int) -> None:
    rng = random.Random(SEED)
    data = launcher.data_dir()
    server = launcher.kvred(data, fsync=fsync)
    history: list[tuple[list[Ledger], float | None]] = []  # per round: ledgers and the loss bound
    previous: dict[bytes, bytes] = {}
    for rnd in range(rounds):
        target = rng.randint(300, 2500)
        prefix = f"crash{rnd}"
        with WriterThreads(server, prefix, threads=4, seed=SEED + rnd) as writers:
            writers.wait_acks(target)
            killed_at = time.monotonic()
            writers.crash(server)
            writers.finish()
            writers.assert_no_error()
        lose_after = None if fsync == "always" else killed_at - EVERYSEC_WINDOW_S
        history.append((writers.ledgers, lose_after))
        server = launcher.kvred(data, fsync=fsync)
        state = dump(server)
        context = f"round {rnd}, {writers.acks()} acks before the kill, seed {SEED}"
        for past, (ledgers, bound) in enumerate(history):
            problems = check_ledgers(state, ledgers, f"crash{past}:".encode(), bound)
            assert not problems, f"{context}: writes of round {past}:\n" + "\n".join(problems[:20])
        if fsync == "always":
            # what a restart recovered is in the file: a later crash cannot take it away
            changed = {k: (v, state.get(k)) for k, v in previous.items() if state.get(k) != v}
            assert not changed, f"{context}: recovered earlier, now different: {list(changed.items())[:5]}"
        previous = state
        assert not temp_files(data)
    server.stop(STOP_TIMEOUT_S)
    assert check_aof(aof_path(data)).returncode == 0


def test_crash_fsync_always_loses_no_acknowledged_write(launcher: Launcher) -> None:
    _crash_rounds(launcher, "always", rounds=5)


def test_crash_fsync_everysec_loses_only_the_last_seconds(launcher: Launcher) -> None:
    _crash_rounds(launcher, "everysec", rounds=3)


# --------------------------------------------------------------------------- 3: torn tail


def _write_prefix(launcher: Launcher, data: Path) -> tuple[bytes, dict[bytes, bytes]]:
    """An AOF written by kvred (plain commands and a MULTI/EXEC block); its bytes and keyspace."""
    server = launcher.kvred(data, workers=1)
    with client(server) as r:
        r.set("p:a", "1")
        r.mset({"p:b": b"two", "p:c": b"\x00\r\n3"})
        r.incr("p:n")
        with r.pipeline(transaction=True) as tx:
            tx.set("p:tx1", "x").append("p:tx1", "y").incrbyfloat("p:f", "1.5")
            tx.execute()
        r.delete("p:b")
    state = dump(server)
    assert wait_exit_after(server, signal.SIGTERM) == 0
    return aof_path(data).read_bytes(), state


def wait_exit_after(server: ServerProcess, sig: int) -> int:
    assert server.proc is not None
    server.capture_tree()
    os.kill(server.pid, sig)
    return wait_exit(server)


def _start_on_tail(launcher: Launcher, data: Path, content: bytes, valid: int,
                   expected: dict[bytes, bytes], what: str) -> None:
    aof = aof_path(data)
    aof.write_bytes(content)
    server = launcher.kvred(data, workers=1)
    state = dump(server)
    size = aof.stat().st_size
    log = server.log_path.read_text(errors="replace")
    assert wait_exit_after(server, signal.SIGTERM) == 0
    assert state == expected, f"{what}: keyspace differs from the prefix's"
    assert size == valid, f"{what}: file is {size} bytes after start, expected truncation to {valid}"
    warnings = log_lines(log, "WARN")
    assert any(mentions_number(line, valid) for line in warnings), (
        f"{what}: no warning mentioning offset {valid}; log:\n{log}")
    assert aof.read_bytes() == content[:valid], f"{what}: the file is not the valid prefix after the restart"


def test_torn_tail_at_every_offset_is_truncated(launcher: Launcher) -> None:
    data = launcher.data_dir()
    prefix, expected = _write_prefix(launcher, data)
    last = cmd("SET", "k", "vv")
    for cut in range(1, len(last)):
        _start_on_tail(launcher, data, prefix + last[:cut], len(prefix), expected,
                       f"cut {cut} bytes into {last!r}")
    # the whole record is a valid file: loaded, nothing truncated
    aof_path(data).write_bytes(prefix + last)
    server = launcher.kvred(data, workers=1)
    assert dump(server) == {**expected, b"k": b"vv"}
    assert aof_path(data).stat().st_size == len(prefix) + len(last)


def test_torn_multi_block_is_dropped_entirely(launcher: Launcher) -> None:
    data = launcher.data_dir()
    prefix, expected = _write_prefix(launcher, data)
    block = cmd("MULTI") + cmd("SET", "m1", "1") + cmd("SET", "m2", "2")
    exec_ = cmd("EXEC")
    cuts = {
        "MULTI only": len(cmd("MULTI")),
        "inside the second SET": len(cmd("MULTI") + cmd("SET", "m1", "1")) + 7,
        "MULTI and both SETs, no EXEC": len(block),
        "inside EXEC": len(block) + len(exec_) - 1,
    }
    for what, cut in cuts.items():
        _start_on_tail(launcher, data, prefix + (block + exec_)[:cut], len(prefix), expected, what)
    aof_path(data).write_bytes(prefix + block + exec_)
    server = launcher.kvred(data, workers=1)
    assert dump(server) == {**expected, b"m1": b"1", b"m2": b"2"}


def test_check_aof_fixes_a_torn_tail(launcher: Launcher) -> None:
    data = launcher.data_dir()
    prefix, _expected = _write_prefix(launcher, data)
    aof = aof_path(data)
    aof.write_bytes(prefix + cmd("SET", "k", "vv")[:-3])
    assert check_aof(aof).returncode == 1
    fixed = check_aof(aof, fix=True)
    assert fixed.returncode == 0, fixed
    assert aof.read_bytes() == prefix
    assert check_aof(aof).returncode == 0


# --------------------------------------------------------------------------- 4: corruption in the middle


CORRUPTIONS = {
    "garbage": b"\x00\x17garbage, not RESP\r\n",
    "unknown command": cmd("NOSUCHCMD", "k", "v"),
    "bad arity": cmd("SET", "k"),
    "bad bulk length": b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvv\r\n",
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_corruption_in_the_middle_refuses_to_start(launcher: Launcher, kind: str) -> None:
    data = launcher.data_dir()
    prefix, expected = _write_prefix(launcher, data)
    suffix = cmd("SET", "after1", "x") + cmd("SET", "after2", "y") + cmd("DEL", "p:a")
    content = prefix + CORRUPTIONS[kind] + suffix
    aof = aof_path(data)
    aof.write_bytes(content)
    before = sorted(p.name for p in data.iterdir())

    code, log = launcher.kvred_must_fail(data)
    assert code != 0, log
    assert mentions_number(log, len(prefix)), f"the log does not mention offset {len(prefix)}:\n{log}"
    assert "check-aof --fix" in log, log
    assert aof.read_bytes() == content, "a refused start modified the AOF"
    assert sorted(p.name for p in data.iterdir()) == before

    checked = check_aof(aof)
    assert checked.returncode == 1, checked
    assert aof.read_bytes() == content, "check-aof without --fix modified the file"
    fixed = check_aof(aof, fix=True)
    assert fixed.returncode == 0, fixed
    backups = list(data.glob(f"{AOF_NAME}.bak.*"))
    assert len(backups) == 1, sorted(p.name for p in data.iterdir())
    assert backups[0].read_bytes() == content
    assert aof.read_bytes() == prefix, "--fix must truncate to the last valid command"
    assert check_aof(aof).returncode == 0

    server = launcher.kvred(data)
    assert dump(server) == expected


# --------------------------------------------------------------------------- 5: rewrite


def test_bgrewriteaof_with_concurrent_writers(launcher: Launcher) -> None:
    data = launcher.data_dir()
    server = launcher.kvred(data)
    # many overwrites of few keys: a rewrite shrinks the file a lot
    rng = random.Random(SEED)
    final: dict[bytes, bytes] = {}
    with client(server) as r:
        for rnd in range(200):
            pipe = r.pipeline(transaction=False)
            for j in range(10):
                batch = {b"ow:%d" % i: b"%d:" % rnd + rng.randbytes(80) for i in range(10 * j, 10 * j + 10)}
                final.update(batch)
                pipe.mset(batch)
            assert all(reply is True for reply in pipe.execute())
    with WriterThreads(server, "rw", threads=3, seed=SEED) as writers:
        writers.wait_acks(200)
        size_before = aof_path(data).stat().st_size
        with client(server) as r:
            assert r.bgrewriteaof() is True
        acks_at_start = writers.acks()
        wait_for("the rewrite to finish", lambda: (i := info(server))["aof_rewrite_in_progress"] == 0
                 and i["aof_rewrites"] >= 1, REWRITE_TIMEOUT_S, lambda: str(info(server)))
        acks_at_rewrite = writers.acks()
        assert acks_at_rewrite > acks_at_start, "no write was acknowledged while the rewrite ran"
        writers.wait_acks(acks_at_rewrite + 200)  # writes to the new file
        writers.finish()
        writers.assert_no_error()
    persistence = info(server)
    assert persistence["aof_last_bgrewrite_status"] == "ok"
    size_after = aof_path(data).stat().st_size
    assert size_after < size_before / 2, (size_before, size_after)
    assert persistence["aof_current_size"] == size_after
    assert not temp_files(data)
    state = dump(server)

    kill_all(server)
    server = launcher.kvred(data)
    recovered = dump(server)
    assert recovered == state
    assert_has(server, final)
    problems = check_ledgers(recovered, writers.ledgers, b"rw:")
    assert not problems, "\n".join(problems[:20])
    server.stop(STOP_TIMEOUT_S)
    assert check_aof(aof_path(data)).returncode == 0


def test_crash_during_rewrite_loses_nothing(launcher: Launcher) -> None:
    data = launcher.data_dir()
    server = launcher.kvred(data)
    big = {b"big:%06d" % i: b"v%d" % i for i in range(200_000)}
    bulk_load(server, big)
    with WriterThreads(server, "kr", threads=2, seed=SEED) as writers:
        writers.wait_acks(50)
        with client(server) as r:
            r.execute_command("BGREWRITEAOF")
        wait_for("the rewrite to start", lambda: info(server)["aof_rewrite_in_progress"] == 1,
                 REWRITE_TIMEOUT_S, lambda: str(info(server)))
        wait_for("the rewrite's temp file", lambda: bool(temp_files(data)), REWRITE_TIMEOUT_S,
                 lambda: str(info(server)))
        writers.crash(server)
        writers.finish()
        writers.assert_no_error()
    assert temp_files(data), "the rewrite was not interrupted: make the dataset larger"
    server = launcher.kvred(data)
    assert not temp_files(data), "a temp file of the interrupted rewrite survived the restart"
    assert_has(server, big)
    problems = check_ledgers(dump(server), writers.ledgers, b"kr:")
    assert not problems, "\n".join(problems[:20])


def test_automatic_rewrite(launcher: Launcher) -> None:
    data = launcher.data_dir()
    server = launcher.kvred(data, auto_aof_rewrite_min_size="1mb", auto_aof_rewrite_percentage=100)
    assert info(server)["aof_rewrites"] == 0
    final: dict[bytes, bytes] = {}
    for wanted in (1, 2):
        # ~100 KB of overwrites of the same 200 keys per batch, until the rewrite starts
        rnd = 0
        while (now := info(server))["aof_rewrites"] < wanted and not now["aof_rewrite_in_progress"]:
            rnd += 1
            assert rnd < 100, f"no automatic rewrite #{wanted} after {rnd} batches: {now}"
            batch = {b"auto:%d" % i: b"%d:%d:%s" % (wanted, rnd, b"x" * 500) for i in range(200)}
            final.update(batch)
            bulk_load(server, batch, per_mset=20)
        def rewritten(count: int = wanted) -> bool:
            now = info(server)
            return bool(now["aof_rewrites"] >= count and not now["aof_rewrite_in_progress"])

        wait_for(f"automatic rewrite #{wanted} to finish", rewritten, REWRITE_TIMEOUT_S, lambda: str(info(server)))
        # the snapshot (200 keys) plus at most the one batch written while the rewrite ran
        assert aof_path(data).stat().st_size < 512 * 1024, info(server)
    assert info(server)["aof_last_bgrewrite_status"] == "ok"
    kill_all(server)
    server = launcher.kvred(data)
    assert dump(server) == final


# --------------------------------------------------------------------------- 6: shutdown


def mixed_workload(r: redis.Redis, tag: str) -> None:
    """Every kind of write kvred logs, with binary values."""
    r.set(f"{tag}:s", "hello")
    r.append(f"{tag}:s", " world")
    r.setrange(f"{tag}:s", 0, "J")
    r.setrange(f"{tag}:pad", 5, b"\x00x")
    r.incr(f"{tag}:n")
    r.incrby(f"{tag}:n", 41)
    r.decrby(f"{tag}:n", 2)
    r.incrbyfloat(f"{tag}:f", 10.5)
    r.execute_command("INCRBYFLOAT", f"{tag}:f", "0.1")
    r.execute_command("INCRBYFLOAT", f"{tag}:f", "5.0e3")
    r.mset({f"{tag}:m1": b"\x00\xff\r\n", f"{tag}:m2": b"", f"{tag}:m3": "gone"})
    r.delete(f"{tag}:m3", f"{tag}:nosuch")
    r.setnx(f"{tag}:nx", "first")
    r.setnx(f"{tag}:nx", "second")
    r.getset(f"{tag}:gs", "new")
    r.set(f"{tag}:ren", "moved")
    r.rename(f"{tag}:ren", f"{tag}:ren2")
    r.set(f"{tag}:gd", "x")
    r.getdel(f"{tag}:gd")
    with r.pipeline(transaction=True) as tx:
        tx.set(f"{tag}:tx", "a")
        tx.append(f"{tag}:tx", "b")
        tx.incrbyfloat(f"{tag}:txf", 2.5)
        tx.delete(f"{tag}:m1")
        tx.setrange(f"{tag}:tx", 1, "BC")
        tx.execute()
    for i in range(50):
        r.set(f"{tag}:k{i}", f"value {i} " * (i % 7))


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "SHUTDOWN"])
def test_shutdown_keeps_everything(launcher: Launcher, how: str) -> None:
    data = launcher.data_dir()
    server = launcher.kvred(data, fsync="no")
    with client(server) as r:
        mixed_workload(r, "sd")
        pipe = r.pipeline(transaction=False)
        for i in range(2000):
            pipe.set(f"sd:p{i}", i)
        pipe.execute()
    before = dump(server)
    assert stop_by(server, how) == 0, server.log_tail()
    assert check_aof(aof_path(data)).returncode == 0
    server = launcher.kvred(data, fsync="no")
    assert dump(server) == before


def stop_by(server: ServerProcess, how: str) -> int:
    """Stop kvred by SIGTERM, SIGINT or the SHUTDOWN command; its exit code."""
    server.capture_tree()
    if how != "SHUTDOWN":
        return wait_exit_after(server, getattr(signal, how))
    with RawClient(server.port) as raw:
        raw.send(cmd("SHUTDOWN"))
        reply, closed = raw.read_until_close(timeout=STOP_TIMEOUT_S)
    assert (reply, closed) == (b"", True), "SHUTDOWN must close the connection without a reply"
    return wait_exit(server)


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "SHUTDOWN"])
def test_graceful_stop_logs_no_errors(launcher: Launcher, how: str) -> None:
    server = launcher.kvred(launcher.data_dir())
    with client(server) as r:
        for i in range(100):
            r.set(f"g:{i}", i)
    assert stop_by(server, how) == 0
    log = server.log_path.read_text(errors="replace")
    bad = [line for line in log.splitlines() if "ERROR" in line or "Traceback" in line]
    assert not bad, f"a graceful stop ({how}) logged errors:\n{log}"


# --------------------------------------------------------------------------- 7: interop with redis-server


def test_redis_server_loads_a_kvred_aof(launcher: Launcher) -> None:
    data = launcher.data_dir()
    server = launcher.kvred(data)
    with client(server) as r:
        mixed_workload(r, "a")
        r.execute_command("BGREWRITEAOF")
        wait_for("the rewrite", lambda: (i := info(server))["aof_rewrites"] >= 1 and not i["aof_rewrite_in_progress"],
                 REWRITE_TIMEOUT_S)
        mixed_workload(r, "b")
        r.delete("a:s")
        r.append("a:pad", "more")
    expected = dump(server)
    assert wait_exit_after(server, signal.SIGTERM) == 0

    redis_dir = launcher.data_dir("redis")
    shutil.copy(aof_path(data), redis_dir / AOF_NAME)
    real = launcher.redis(redis_dir, "--appendonly", "yes", "--appendfilename", AOF_NAME)
    assert dump(real) == expected, real.log_tail()


def test_kvred_loads_a_redis_server_aof(launcher: Launcher) -> None:
    redis_dir = launcher.data_dir("redis")
    real = launcher.redis(redis_dir, "--appendonly", "yes", "--aof-use-rdb-preamble", "no",
                          "--appendfsync", "always")
    with client(real) as r:
        mixed_workload(r, "a")
        r.bgrewriteaof()
        wait_for("redis's rewrite", lambda: (i := info(real))["aof_rewrite_in_progress"] == 0
                 and i["aof_rewrite_scheduled"] == 0 and i["aof_last_bgrewrite_status"] == "ok",
                 REWRITE_TIMEOUT_S)
        mixed_workload(r, "b")
        r.delete("a:s")
    expected = dump(real)
    assert wait_exit_after(real, signal.SIGTERM) == 0

    aof_dir = redis_dir / "appendonlydir"
    manifest = (aof_dir / "appendonly.aof.manifest").read_text().splitlines()
    entries = [dict(zip(line.split()[::2], line.split()[1::2], strict=True)) for line in manifest if line.strip()]
    base = [e["file"] for e in entries if e["type"] == "b"]
    incr = sorted((e for e in entries if e["type"] == "i"), key=lambda e: int(e["seq"]))
    assert len(base) == 1 and incr, manifest
    content = b"".join((aof_dir / name).read_bytes() for name in base + [e["file"] for e in incr])
    assert content.startswith(b"*"), "expected a plain RESP AOF (no RDB preamble)"

    data = launcher.data_dir()
    aof_path(data).write_bytes(content)
    server = launcher.kvred(data)
    assert dump(server) == expected


# --------------------------------------------------------------------------- 8: disk errors


class DiskLimit:
    """The writer's AOF disk made 'full': RLIMIT_FSIZE just above the file's size, so the
    next write is short, then fails with EFBIG. Only the soft limit is lowered (raising a
    hard limit again needs CAP_SYS_RESOURCE). The limit covers every file the writer
    writes, its log included, so what it logs while limited may be cut short."""

    def __init__(self, server: ServerProcess, data: Path) -> None:
        with client(server) as r:
            self.writer = psutil.Process(r.info("server")["writer_process_id"])
        self.size = aof_path(data).stat().st_size
        self.soft, self.hard = self.writer.rlimit(psutil.RLIMIT_FSIZE)

    def __enter__(self) -> DiskLimit:
        self.writer.rlimit(psutil.RLIMIT_FSIZE, (self.size + 10, self.hard))
        return self

    def lift(self) -> None:
        self.writer.rlimit(psutil.RLIMIT_FSIZE, (self.soft, self.hard))

    def __exit__(self, *exc: object) -> None:
        self.lift()


MISCONF_EFBIG = b"-MISCONF Errors writing to the AOF file: File too large\r\n"
POLL_REPLY_TIMEOUT_S = 0.5


def aof_write_failed(server: ServerProcess) -> bool:
    """INFO says the AOF write failed. Under `always`, an INFO that ran in the same pass as
    the failing write is held with it (nothing of that pass is released before the data is
    on disk): such a poll times out, and the next one, on a new connection, answers."""
    with redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=POLL_REPLY_TIMEOUT_S,
                     retry=Retry(NoBackoff(), 0), protocol=2) as r:
        try:
            return r.info("persistence")["aof_last_write_status"] == "err"
        except redis.TimeoutError:
            return False
SILENCE_S = 0.3  # how long a held reply is checked not to arrive (nothing later can prove it)


def wait_writes_accepted(server: ServerProcess, key: str = "recovered") -> None:
    def accepted() -> bool:
        with client(server) as r:
            try:
                return r.set(key, "yes") is True
            except redis.ResponseError as exc:
                assert str(exc).startswith("MISCONF"), exc
                return False

    wait_for("writes to be accepted again", accepted, 10.0, lambda: str(info(server)))


def assert_refused_while_failing(raw: RawClient, acked: dict[bytes, bytes]) -> None:
    """Every kind of write gets Redis's MISCONF and is not applied; reads keep working."""
    for args in (("SET", "fail:2", "y"), ("INCR", "ok:ctr"), ("DEL", "ok:1"), ("APPEND", "ok:2", "z"),
                 ("MSET", "fail:3", "a", "fail:4", "b")):
        assert raw.call(*args) == MISCONF_EFBIG, args
    raw.send(cmd("MULTI") + cmd("SET", "fail:5", "t") + cmd("EXEC"))
    replies = [raw.read_reply() for _ in range(3)]
    assert replies == [b"+OK\r\n", b"+QUEUED\r\n",
                       b"-EXECABORT Transaction discarded because of: " + MISCONF_EFBIG[1:]], replies
    # nothing of it was applied: a client that retries a MISCONF'd INCR counts once
    assert raw.call("MGET", "fail:2", "ok:ctr", "fail:3", "fail:5") == b"*4\r\n" + b"$-1\r\n" * 4
    assert raw.call("GET", "ok:1") == b"$2\r\n" + acked[b"ok:1"] + b"\r\n"
    assert raw.call("GET", "ok:2") == b"$2\r\n" + acked[b"ok:2"] + b"\r\n"
    assert raw.call("PING") == b"+PONG\r\n"


def fill(server: ServerProcess, acked: dict[bytes, bytes], start: int, stop: int) -> None:
    with client(server) as r:
        for i in range(start, stop):
            assert r.set(f"ok:{i}", f"v{i}") is True
            acked[f"ok:{i}".encode()] = f"v{i}".encode()


def test_disk_error_everysec_acks_the_failed_pass_and_refuses_later_writes(launcher: Launcher) -> None:
    """everysec (and no): the pass whose write failed is acknowledged, as Redis does (it
    is applied and stays pending until the disk takes it); later writes are refused
    before they run; after the retry succeeds the acknowledged write is on disk."""
    data = launcher.data_dir()
    server = launcher.kvred(data, fsync="everysec")
    acked: dict[bytes, bytes] = {}
    fill(server, acked, 0, 100)
    with DiskLimit(server, data) as disk, RawClient(server.port) as raw:
        assert raw.call("SET", "fail:1", "x" * 100) == b"+OK\r\n"
        acked[b"fail:1"] = b"x" * 100
        assert_refused_while_failing(raw, acked)
        assert info(server)["aof_last_write_status"] == "err"
        assert aof_path(data).stat().st_size == disk.size, "the failed write was not undone"
    wait_writes_accepted(server)
    acked[b"recovered"] = b"yes"
    assert info(server)["aof_last_write_status"] == "ok"
    fill(server, acked, 100, 200)
    kill_all(server)
    server = launcher.kvred(data, fsync="everysec")
    assert dump(server) == acked  # fail:1 made it; nothing refused did


def test_disk_error_always_holds_the_failed_pass_until_it_is_on_disk(launcher: Launcher) -> None:
    """always: nothing that is not synced is acknowledged. The client of the failed pass
    waits (its pipelined commands behind it run only after the retry, once); every other
    client's writes are refused with MISCONF at once; reads keep working."""
    data = launcher.data_dir()
    server = launcher.kvred(data, fsync="always")
    acked: dict[bytes, bytes] = {}
    fill(server, acked, 0, 100)
    with DiskLimit(server, data) as disk, RawClient(server.port) as held, RawClient(server.port) as other:
        held.send(cmd("SET", "fail:1", "x" * 100))
        wait_for("the AOF write to fail", lambda: aof_write_failed(server), 10.0)
        held.send(cmd("INCR", "held:ctr") + cmd("GET", "fail:1"))
        assert held.read_available(SILENCE_S) == b"", "a reply was released before its write was on disk"
        assert_refused_while_failing(other, acked)
        assert aof_path(data).stat().st_size == disk.size
        disk.lift()
        replies = [held.read_reply() for _ in range(3)]
        assert replies == [b"+OK\r\n", b":1\r\n", b"$100\r\n" + b"x" * 100 + b"\r\n"], replies
    acked[b"fail:1"] = b"x" * 100
    acked[b"held:ctr"] = b"1"
    wait_writes_accepted(server)
    acked[b"recovered"] = b"yes"
    kill_all(server)
    server = launcher.kvred(data, fsync="always")
    assert dump(server) == acked


@pytest.mark.parametrize("fsync", ["always", "everysec"])
def test_disk_error_with_an_output_limited_pipeline(launcher: Launcher, fsync: str) -> None:
    """Issue: with the AOF failing, a pipeline whose replies pass the output limit killed
    the writer (a TypeError refusing writes in a dropped client's replies)."""
    data = launcher.data_dir()
    server = launcher.kvred(data, fsync=fsync, client_output_buffer_limit="4mb")
    value = b"v" * (2 * 1024 * 1024)
    with client(server) as r:
        assert r.set("v", value) is True
    with DiskLimit(server, data) as disk, RawClient(server.port) as first:
        first.send(cmd("SET", "w", "1"))  # fails: answered (everysec) or held (always)
        wait_for("the AOF write to fail", lambda: aof_write_failed(server), 10.0)
        with RawClient(server.port) as greedy:
            greedy.send(cmd("SET", "a", "b") + cmd("GET", "v") * 3)
            data_seen, closed = greedy.read_until_close(CLIENT_TIMEOUT_S)
        assert closed, "the client over its output limit was not closed"
        assert len(data_seen) < 3 * len(value), "the replies over the limit were sent"
        assert data_seen in (b"", MISCONF_EFBIG) or data_seen.startswith(MISCONF_EFBIG + b"$"), data_seen[:100]
        with RawClient(server.port) as raw:
            assert raw.call("GET", "v") == b"$%d\r\n%b\r\n" % (len(value), value)
        disk.lift()
        assert first.read_reply() == b"+OK\r\n"
    wait_writes_accepted(server)
    assert server.proc is not None and server.proc.poll() is None


def user_tasks(uid: int) -> int:
    """Processes and threads of `uid`: what RLIMIT_NPROC counts."""
    total = 0
    for p in psutil.process_iter(["uids", "num_threads"]):
        try:
            if p.info["uids"] is not None and p.info["uids"].real == uid:
                total += p.info["num_threads"]
        except psutil.NoSuchProcess:
            pass
    return total


def set_nproc_as_nobody(pid: int, soft: int | str) -> None:
    """Set the soft RLIMIT_NPROC of nobody's process `pid`, as nobody: a process may set
    its own user's limits without CAP_SYS_RESOURCE (which root may lack in a container)."""
    argv = [require_tool("setpriv"), "--reuid=nobody", "--regid=nogroup", "--clear-groups",
            require_tool("prlimit"), "--pid", str(pid), f"--nproc={soft}:"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    assert done.returncode == 0, done.stderr


def test_failed_fork_is_an_error_not_a_crash_and_the_automatic_rewrite_retries(launcher: Launcher) -> None:
    """Issue: BGREWRITEAOF (or the automatic rewrite) when fork() fails ended the server.
    Redis answers an error, logs it and keeps serving; the automatic rewrite tries again
    later. fork() is made to fail for real: RLIMIT_NPROC on the writer, run as nobody."""
    data = launcher.data_dir()
    server = launcher.kvred_unprivileged(data, fsync="everysec", auto_aof_rewrite_min_size="64kb",
                                         auto_aof_rewrite_percentage=100)
    with client(server) as r:
        writer = psutil.Process(r.info("server")["writer_process_id"])
        soft = resource.getrlimit(resource.RLIMIT_NPROC)[0]  # what kvred inherited from this process
        set_nproc_as_nobody(writer.pid, user_tasks(writer.uids().real))
        try:
            with pytest.raises(redis.ResponseError) as failed:
                r.execute_command("BGREWRITEAOF")
            assert str(failed.value) == ("Can't execute an AOF background rewriting. "
                                         "Please check the server logs for more information.")
            assert r.info("persistence")["aof_last_bgrewrite_status"] == "err"
            # past the automatic rewrite's threshold: its fork fails too, and is logged
            acked = {f"big:{i}".encode(): b"x" * 1000 for i in range(100)}
            bulk_load(server, acked, per_mset=10)
            wait_for("the automatic rewrite to fail", lambda: server.log_path.read_text(errors="replace").count(
                "Can't rewrite append only file in background: fork") >= 2, 10.0, server.log_tail)
            assert r.set("still", "serving") is True
            acked[b"still"] = b"serving"
            assert r.info("persistence")["aof_rewrites"] == 0
        finally:
            set_nproc_as_nobody(writer.pid, "unlimited" if soft == resource.RLIM_INFINITY else soft)
        wait_for("the automatic rewrite to succeed on a later try",
                 lambda: r.info("persistence")["aof_rewrites"] >= 1, 15.0, lambda: str(r.info("persistence")))
        assert r.info("persistence")["aof_last_bgrewrite_status"] == "ok"
    kill_all(server)
    server = launcher.kvred(data, fsync="everysec")
    assert dump(server) == acked


# --------------------------------------------------------------------------- 9: no AOF


def test_appendonly_no_writes_no_file(launcher: Launcher) -> None:
    data = launcher.data_dir()
    server = launcher.kvred(data, appendonly="no")
    with client(server) as r:
        mixed_workload(r, "n")
        assert r.get("n:s") == b"Jello world"
        assert r.info("persistence")["aof_enabled"] == 0
        with pytest.raises(redis.ResponseError):
            r.execute_command("BGREWRITEAOF")
    assert wait_exit_after(server, signal.SIGTERM) == 0
    assert list(data.iterdir()) == []
    server = launcher.kvred(data, appendonly="no")
    assert dump(server) == {}
    assert list(data.iterdir()) == []


# --------------------------------------------------------------------------- 10: TTLs and databases
#
# kvred stores a TTL as an absolute unix time in ms and logs it as SET ... PXAT or
# PEXPIREAT; lazy and active expiry log DEL; a change in another database than the
# last one logged is preceded by SELECT. These tests compare every database key by
# key, value and PEXPIRETIME (exact: both kvred and Redis keep absolute ms).

DATABASES = 16
LIVE_TTL_MS = (300_000, 3_600_000)  # TTLs of keys the crash test keeps using: they never lapse in a test
DOOMED_TTL_MS = (30, 1500)  # keys set to lapse during the run, around the crash or while the server is down
RELATIVE_SLACK_MS = 60_000  # an unacknowledged EX/PX: its deadline is after the send, by at most this
TTL_CRASH_ROUNDS = 6
LAPSE_AHEAD_MS = 1200  # test 2: a clean stop (~0.2 s idle, more on a loaded machine) ends well before
ABSOLUTE_SET_OPTIONS = {b"PXAT", b"KEEPTTL", b"NX", b"XX", b"GET"}  # what kvred's SET records may carry

DbDump = dict[int, dict[bytes, tuple[bytes, int]]]  # db -> key -> (value, PEXPIRETIME, -1: no TTL)


def now_ms() -> int:
    """The clock kvred's TTLs use: unix time in ms."""
    return time.time_ns() // 1_000_000


def db_client(server: ServerProcess, db: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, db=db, socket_timeout=CLIENT_TIMEOUT_S,
                       socket_connect_timeout=CLIENT_TIMEOUT_S, retry=Retry(NoBackoff(), 0), protocol=2)


def dump_dbs(server: ServerProcess, expiring: bool = False) -> DbDump:
    """Every database: key -> (value, PEXPIRETIME), via SCAN + MGET + PEXPIRETIME.

    `expiring`: keys may lapse during the dump; one that SCAN listed and that is gone
    when MGET or PEXPIRETIME runs is left out (the caller judges it by its deadline)."""
    out: DbDump = {}
    for db in range(DATABASES):
        entries: dict[bytes, tuple[bytes, int]] = {}
        with db_client(server, db) as r:
            keys = list(dict.fromkeys(r.scan_iter(count=1000)))
            for i in range(0, len(keys), 1000):
                chunk = keys[i : i + 1000]
                pipe = r.pipeline(transaction=False)
                pipe.mget(chunk)
                for key in chunk:
                    pipe.pexpiretime(key)
                values, *deadlines = pipe.execute()
                for key, value, deadline in zip(chunk, values, deadlines, strict=True):
                    if value is None or deadline == -2:
                        assert expiring, f"db {db}: SCAN returned {key!r}, which MGET/PEXPIRETIME do not find"
                        continue
                    entries[key] = (value, deadline)
        if entries:
            out[db] = entries
    return out


def diff_dumps(expected: DbDump, got: DbDump) -> list[str]:
    """Per database and key: what differs between two dumps."""
    problems = []
    for db in sorted(set(expected) | set(got)):
        want, have = expected.get(db, {}), got.get(db, {})
        for key in sorted(set(want) | set(have)):
            if want.get(key) != have.get(key):
                elsewhere = [d for d in got if d != db and key in got[d]]
                problems.append(f"db {db} {key!r}: expected (value, PEXPIRETIME) {want.get(key)}, got "
                                f"{have.get(key)}" + (f" (found in db {elsewhere})" if elsewhere else ""))
    return problems


def assert_same_dbs(expected: DbDump, got: DbDump, what: str) -> None:
    problems = diff_dumps(expected, got)
    assert not problems, f"{what}: {len(problems)} differences, first ones:\n" + "\n".join(problems[:20])


def commands_by_db(commands: list[list[bytes]], db: int = 0) -> list[tuple[int, list[bytes]]]:
    """(database, argv) of each change, following the SELECTs from database `db` (the one
    selected where `commands` start); MULTI/EXEC left out."""
    out = []
    for argv in commands:
        name = argv[0].upper()
        if name == b"SELECT":
            db = int(argv[1])
        elif name not in (b"MULTI", b"EXEC"):
            out.append((db, argv))
    return out


def not_absolute_ttls(commands: list[list[bytes]]) -> list[list[bytes]]:
    """Records that carry a TTL in another form than SET ... PXAT or PEXPIREAT (a relative
    one would give the key another deadline at every replay)."""
    bad = []
    for argv in commands:
        name = argv[0].upper()
        if name in (b"EXPIRE", b"PEXPIRE", b"EXPIREAT", b"SETEX", b"PSETEX", b"GETEX"):
            bad.append(argv)
        elif name == b"SET" and any(opt.upper() not in ABSOLUTE_SET_OPTIONS and not opt.isdigit()
                                    for opt in argv[3:]):
            bad.append(argv)
    return bad


# ---------------------------------------------------------------- the crash test's ledger


@dataclass(frozen=True)
class KeyState:
    """What a key should be. `box`: which database's contents it is in (SWAPDB moves
    boxes between indexes, see Boxes); `value` None: unknown (an unacknowledged
    INCRBYFLOAT); `ttl`: its deadline within [lo, hi] unix ms (lo == hi when known
    exactly), None for no TTL; `doomed`: set to lapse soon, never touched again."""

    box: int
    value: bytes | None
    ttl: tuple[int, int] | None
    doomed: bool = False


class Boxes:
    """Which database's contents sit at which index. SWAPDB is exclusive of every other
    command of the writer threads (a shared/exclusive lock, exclusive first), so the
    ledger knows the order of each swap and each command."""

    def __init__(self) -> None:
        self.at = list(range(DATABASES))  # index -> box
        self.swap_in_flight: tuple[int, int] | None = None  # a SWAPDB sent and never answered
        self._cond = threading.Condition()
        self._readers = 0
        self._swapping = False
        self._waiting = 0

    def index(self, box: int) -> int:
        return self.at.index(box)

    def layouts(self) -> list[list[int]]:
        """The possible layouts: as acknowledged, and with the swap in flight done."""
        if self.swap_in_flight is None:
            return [self.at]
        a, b = self.swap_in_flight
        swapped = list(self.at)
        swapped[a], swapped[b] = swapped[b], swapped[a]
        return [self.at, swapped]

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._swapping or self._waiting:
                self._cond.wait(0.1)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._swapping or self._readers:
                self._cond.wait(0.1)
            self._waiting -= 1
            self._swapping = True
        try:
            yield
        finally:
            with self._cond:
                self._swapping = False
                self._cond.notify_all()


@dataclass
class TtlLedger:
    """One writer thread's keys as acknowledged, and the command without a reply."""

    keys: dict[bytes, KeyState] = field(default_factory=dict)
    # the command sent and never answered: [the keys it touches as they were, then each
    # state it may have left them in]; empty when nothing is in flight
    in_flight: list[dict[bytes, KeyState | None]] = field(default_factory=list)
    acks: int = 0
    ops: dict[str, int] = field(default_factory=dict)  # acknowledged commands by kind
    error: str = ""

    def commit(self, kind: str, states: dict[bytes, KeyState | None]) -> None:
        for key, state in states.items():
            if state is None:
                self.keys.pop(key, None)
            else:
                self.keys[key] = state
        self.in_flight = []
        self.acks += 1
        self.ops[kind] = self.ops.get(kind, 0) + 1

    def known(self) -> set[bytes]:
        out = set(self.keys)
        for states in self.in_flight:
            out |= set(states)
        return out


class UnexpectedReply(Exception):
    pass


def expect(reply: Any, wanted: Any, what: object) -> None:
    if reply != wanted:
        raise UnexpectedReply(f"{what!r}: expected {wanted!r}, got {reply!r}")


INT_VALUE = re.compile(rb"-?[0-9]{1,12}")
FLOAT_VALUE = re.compile(rb"-?[0-9]{1,12}(\.[0-9]{1,12})?")


class TtlWriters:
    """Writer threads over raw sockets, each on its own keys in all 16 databases: SET
    with EX/PX/EXAT/PXAT/KEEPTTL, SETEX, EXPIRE, PEXPIREAT, PERSIST, GETEX, INCR, APPEND,
    SETRANGE, INCRBYFLOAT, MOVE, COPY ... DB, RENAME, DEL; thread 0 also SWAPDB. Each
    command is one pipeline `SELECT index; command [; PEXPIRETIME key]`: the PEXPIRETIME
    of a relative TTL gives the ledger its exact deadline with the acknowledgement."""

    def __init__(self, server: ServerProcess, boxes: Boxes, prefix: str, threads: int, seed: int) -> None:
        self.boxes = boxes
        self.stop = threading.Event()
        self.crashing = threading.Event()
        self.ledgers = [TtlLedger() for _ in range(threads)]
        self.threads = [threading.Thread(target=self._run, args=(server.port, f"{prefix}:t{i}", self.ledgers[i],
                                                                  random.Random(seed * 1000 + i), i == 0),
                                         daemon=True) for i in range(threads)]

    def __enter__(self) -> TtlWriters:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def acks(self) -> int:
        return sum(led.acks for led in self.ledgers)

    def failed(self) -> bool:
        return any(led.error for led in self.ledgers) or not all(t.is_alive() for t in self.threads)

    def wait_acks(self, count: int, timeout: float = 60.0) -> None:
        wait_for(f"{count} acknowledged writes", lambda: self.acks() >= count or self.failed(), timeout,
                 lambda: f"acks={self.acks()}")
        self.assert_no_error()
        assert self.acks() >= count, "a writer thread stopped early"

    def crash(self, server: ServerProcess) -> None:
        self.crashing.set()
        kill_all(server)

    def finish(self, timeout: float = 3 * CLIENT_TIMEOUT_S) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in self.threads), "a writer thread did not stop"

    def assert_no_error(self) -> None:
        errors = [led.error for led in self.ledgers if led.error]
        assert not errors, f"writer threads failed: {errors} (seed {SEED})"

    def _run(self, port: int, prefix: str, led: TtlLedger, rng: random.Random, swapper: bool) -> None:
        raw: RawClient | None = None
        try:
            raw = RawClient(port, timeout=CLIENT_TIMEOUT_S)
            n = 0
            while not self.stop.is_set():
                n += 1
                if swapper and rng.random() < 0.05:
                    self._swapdb(raw, led, rng)
                    continue
                with self.boxes.shared():
                    self._one(raw, led, rng, f"{prefix}:{n}".encode())
        except OSError as exc:  # ConnectionError, TimeoutError, a reset
            if not self.crashing.is_set():
                led.error = f"connection lost while the server was supposed to be up: {exc!r}"
        except Exception as exc:  # noqa: BLE001 - reported by the test
            led.error = f"{type(exc).__name__}: {exc}"
        finally:
            if raw is not None:
                raw.close()

    def _pipeline(self, raw: RawClient, led: TtlLedger, box: int, commands: list[tuple[bytes | str | int, ...]],
                  afters: list[dict[bytes, KeyState | None]]) -> list[Any]:
        """SELECT the box's index, send `commands`, return their parsed replies. Until
        they arrive, the keys in `afters` are as they were or as one of `afters`."""
        touched = set().union(*afters)
        led.in_flight = [{k: led.keys.get(k) for k in touched}, *afters]
        raw.send(encode_command("SELECT", self.boxes.index(box)) + b"".join(encode_command(*c) for c in commands))
        replies = [parse_reply(raw.read_reply()) for _ in range(len(commands) + 1)]
        expect(replies[0], ("+", b"OK"), "SELECT")
        return replies[1:]

    def _swapdb(self, raw: RawClient, led: TtlLedger, rng: random.Random) -> None:
        a, b = rng.sample(range(DATABASES), 2)
        boxes = self.boxes
        with boxes.exclusive():
            boxes.swap_in_flight = (a, b)
            raw.send(encode_command("SWAPDB", a, b))
            expect(parse_reply(raw.read_reply()), ("+", b"OK"), ("SWAPDB", a, b))
            boxes.at[a], boxes.at[b] = boxes.at[b], boxes.at[a]
            boxes.swap_in_flight = None
            led.commit("SWAPDB", {})

    def _relative(self, raw: RawClient, led: TtlLedger, kind: str, key: bytes, state: KeyState,
                  command: tuple[bytes | str | int, ...], ttl_ms: int, wanted: Any,
                  others: dict[bytes, KeyState | None] | None = None) -> None:
        """A command that sets a relative TTL on `key`: the deadline is after the send,
        before the reply; the PEXPIRETIME sent with it says exactly when."""
        sent = now_ms()
        pending = KeyState(state.box, state.value, (sent + ttl_ms, sent + ttl_ms + RELATIVE_SLACK_MS), state.doomed)
        reply, deadline = self._pipeline(raw, led, state.box, [command, ("PEXPIRETIME", key)],
                                         [{**(others or {}), key: pending}])
        acked = now_ms()
        expect(reply, wanted, command)
        if deadline == (":", -2):  # a short TTL lapsed already: known within the round trip
            ttl = (sent + ttl_ms, acked + ttl_ms)
        else:
            ttl = (deadline[1], deadline[1])
            if not sent + ttl_ms <= ttl[0] <= acked + ttl_ms:
                raise UnexpectedReply(f"{command!r}: PEXPIRETIME {ttl[0]} is not within [{sent + ttl_ms}, "
                                      f"{acked + ttl_ms}]")
        led.commit(kind, {**(others or {}), key: KeyState(state.box, state.value, ttl, state.doomed)})

    def _simple(self, raw: RawClient, led: TtlLedger, kind: str, box: int, command: tuple[bytes | str | int, ...],
                wanted: Any, after: dict[bytes, KeyState | None]) -> Any:
        (reply,) = self._pipeline(raw, led, box, [command], [after])
        if wanted is not None:
            expect(reply, wanted, command)
        led.commit(kind, after)
        return reply

    def _one(self, raw: RawClient, led: TtlLedger, rng: random.Random, fresh: bytes) -> None:
        live = [k for k, s in led.keys.items() if not s.doomed]
        roll = rng.random()
        if not live or (roll < 0.2 and len(live) < 40):
            self._create(raw, led, rng, fresh)
        elif roll < 0.3:
            self._doomed(raw, led, rng, fresh)
        else:
            self._change(raw, led, rng, rng.choice(live), fresh)

    def _create(self, raw: RawClient, led: TtlLedger, rng: random.Random, key: bytes) -> None:
        box = rng.randrange(DATABASES)
        value = b"%d" % rng.randint(0, 999) if rng.random() < 0.4 else _value(rng, len(led.keys))
        ttl_ms = rng.randint(*LIVE_TTL_MS)
        kind = rng.choice(["SET", "SET EX", "SET PX", "SET EXAT", "SET PXAT", "SETEX"])
        ok = ("+", b"OK")
        if kind == "SET":
            self._simple(raw, led, kind, box, ("SET", key, value), ok, {key: KeyState(box, value, None)})
        elif kind == "SET EX":
            self._relative(raw, led, kind, key, KeyState(box, value, None), ("SET", key, value, "EX", ttl_ms // 1000),
                           ttl_ms // 1000 * 1000, ok)
        elif kind == "SET PX":
            self._relative(raw, led, kind, key, KeyState(box, value, None), ("SET", key, value, "PX", ttl_ms),
                           ttl_ms, ok)
        elif kind == "SETEX":
            self._relative(raw, led, kind, key, KeyState(box, value, None), ("SETEX", key, ttl_ms // 1000, value),
                           ttl_ms // 1000 * 1000, ok)
        elif kind == "SET EXAT":
            at = now_ms() // 1000 + ttl_ms // 1000
            self._simple(raw, led, kind, box, ("SET", key, value, "EXAT", at), ok,
                         {key: KeyState(box, value, (at * 1000, at * 1000))})
        else:
            at = now_ms() + ttl_ms
            self._simple(raw, led, kind, box, ("SET", key, value, "PXAT", at), ok,
                         {key: KeyState(box, value, (at, at))})

    def _doomed(self, raw: RawClient, led: TtlLedger, rng: random.Random, key: bytes) -> None:
        """A key with a TTL of DOOMED_TTL_MS: it lapses during the run, around the crash or
        while the server is down, and must then be gone; it is never touched again."""
        box = rng.randrange(DATABASES)
        value = _value(rng, len(led.keys))
        ttl_ms = rng.randint(*DOOMED_TTL_MS)
        kind = rng.choice(["SET PX", "SET PXAT", "SET+PEXPIREAT", "SETEX 1"])
        ok = ("+", b"OK")
        fresh = KeyState(box, value, None, doomed=True)
        if kind == "SET PX":
            self._relative(raw, led, "doomed " + kind, key, fresh, ("SET", key, value, "PX", ttl_ms), ttl_ms, ok)
        elif kind == "SETEX 1":
            self._relative(raw, led, "doomed " + kind, key, fresh, ("SETEX", key, 1, value), 1000, ok)
        elif kind == "SET PXAT":
            at = now_ms() + ttl_ms
            self._simple(raw, led, "doomed " + kind, box, ("SET", key, value, "PXAT", at), ok,
                         {key: KeyState(box, value, (at, at), doomed=True)})
        else:
            at = now_ms() + ttl_ms
            after = KeyState(box, value, (at, at), doomed=True)
            # two commands: without a reply, the key may also be there without its TTL yet
            replies = self._pipeline(raw, led, box, [("SET", key, value), ("PEXPIREAT", key, at)],
                                     [{key: KeyState(box, value, None)}, {key: after}])
            expect(replies, [ok, (":", 1)], ("SET+PEXPIREAT", key))
            led.commit("doomed " + kind, {key: after})

    def _change(self, raw: RawClient, led: TtlLedger, rng: random.Random, key: bytes, fresh: bytes) -> None:
        st = led.keys[key]
        assert st.value is not None
        box, value, ttl = st.box, st.value, st.ttl
        ttl_ms = rng.randint(*LIVE_TTL_MS)
        kinds = ["EXPIRE", "PEXPIREAT", "PERSIST", "GETEX EX", "GETEX PXAT", "GETEX PERSIST", "SET KEEPTTL", "SET",
                 "APPEND", "SETRANGE", "MOVE", "COPY DB", "COPY DB REPLACE", "RENAME", "DEL"]
        if INT_VALUE.fullmatch(value):
            kinds += ["INCR"] * 3
        if FLOAT_VALUE.fullmatch(value):
            kinds += ["INCRBYFLOAT"] * 3
        kind = rng.choice(kinds)
        new = _value(rng, led.acks)
        if kind == "EXPIRE":
            self._relative(raw, led, kind, key, st, ("EXPIRE", key, ttl_ms // 1000), ttl_ms // 1000 * 1000, (":", 1))
        elif kind == "GETEX EX":
            self._relative(raw, led, kind, key, st, ("GETEX", key, "EX", ttl_ms // 1000), ttl_ms // 1000 * 1000,
                           ("$", value))
        elif kind in ("PEXPIREAT", "GETEX PXAT"):
            at = now_ms() + ttl_ms
            command: tuple[bytes | str | int, ...] = (("PEXPIREAT", key, at) if kind == "PEXPIREAT"
                                                      else ("GETEX", key, "PXAT", at))
            self._simple(raw, led, kind, box, command, (":", 1) if kind == "PEXPIREAT" else ("$", value),
                         {key: KeyState(box, value, (at, at))})
        elif kind == "PERSIST":
            self._simple(raw, led, kind, box, ("PERSIST", key), (":", 0 if ttl is None else 1),
                         {key: KeyState(box, value, None)})
        elif kind == "GETEX PERSIST":
            self._simple(raw, led, kind, box, ("GETEX", key, "PERSIST"), ("$", value),
                         {key: KeyState(box, value, None)})
        elif kind == "SET KEEPTTL":
            self._simple(raw, led, kind, box, ("SET", key, new, "KEEPTTL"), ("+", b"OK"),
                         {key: KeyState(box, new, ttl)})
        elif kind == "SET":  # without KEEPTTL: the TTL is gone
            self._simple(raw, led, kind, box, ("SET", key, new), ("+", b"OK"), {key: KeyState(box, new, None)})
        elif kind == "APPEND":
            self._simple(raw, led, kind, box, ("APPEND", key, new), (":", len(value) + len(new)),
                         {key: KeyState(box, value + new, ttl)})
        elif kind == "SETRANGE":
            offset = rng.randint(0, len(value) + 3)
            piece = rng.randbytes(rng.randint(1, 6))
            changed = bytearray(value.ljust(offset, b"\0"))
            changed[offset : offset + len(piece)] = piece
            self._simple(raw, led, kind, box, ("SETRANGE", key, offset, piece), (":", len(changed)),
                         {key: KeyState(box, bytes(changed), ttl)})
        elif kind == "INCR":
            after = b"%d" % (int(value) + 1)
            self._simple(raw, led, kind, box, ("INCR", key), (":", int(after)), {key: KeyState(box, after, ttl)})
        elif kind == "INCRBYFLOAT":
            (reply,) = self._pipeline(raw, led, box, [("INCRBYFLOAT", key, "1.25")], [{key: KeyState(box, None, ttl)}])
            if reply[0] != "$" or abs(float(reply[1]) - (float(value) + 1.25)) > 1e-6:
                raise UnexpectedReply(f"INCRBYFLOAT {key!r} by 1.25 from {value!r}: {reply!r}")
            led.commit(kind, {key: KeyState(box, reply[1], ttl)})
        elif kind == "MOVE":
            target = rng.choice([b for b in range(DATABASES) if b != box])
            self._simple(raw, led, kind, box, ("MOVE", key, self.boxes.index(target)), (":", 1),
                         {key: KeyState(target, value, ttl)})
        elif kind == "COPY DB":
            target, copy = rng.randrange(DATABASES), fresh + b":copy"
            self._simple(raw, led, kind, box, ("COPY", key, copy, "DB", self.boxes.index(target)), (":", 1),
                         {copy: KeyState(target, value, ttl)})
        elif kind == "COPY DB REPLACE":
            others = [k for k, s in led.keys.items() if not s.doomed and k != key]
            if not others:
                return
            dest = rng.choice(others)
            target = led.keys[dest].box
            self._simple(raw, led, kind, box, ("COPY", key, dest, "DB", self.boxes.index(target), "REPLACE"),
                         (":", 1), {dest: KeyState(target, value, ttl)})
        elif kind == "RENAME":
            renamed = fresh + b":renamed"
            self._simple(raw, led, kind, box, ("RENAME", key, renamed), ("+", b"OK"),
                         {key: None, renamed: KeyState(box, value, ttl)})
        else:
            self._simple(raw, led, kind, box, ("DEL", key), (":", 1), {key: None})


def _state_problem(key: bytes, st: KeyState | None, entries: list[tuple[int, bytes, int]], at: list[int],
                   t0: int, t1: int) -> str | None:
    """Why what was found of `key` (db, value, PEXPIRETIME) does not fit `st`; None if it does.
    The dump ran from t0 to t1: a key whose deadline is in that window may or may not be there."""
    if len(entries) > 1:
        return f"{key!r} is in several databases: {entries}"
    got = entries[0] if entries else None
    if st is None:
        return None if got is None else f"{key!r} should not exist; found {got}"
    want_db = at.index(st.box)
    if got is None:
        if st.ttl is not None and st.ttl[0] <= t1:
            return None  # its deadline came before the dump ended: lapsed
        return f"{key!r} acknowledged in db {want_db} = {st.value!r} with TTL {st.ttl}: lost"
    db, value, deadline = got
    if db != want_db:
        return f"{key!r} acknowledged in db {want_db}, found in db {db}"
    if st.value is not None and value != st.value:
        return f"{key!r} in db {db}: acknowledged value {st.value!r}, found {value!r}"
    if st.ttl is None and deadline != -1:
        return f"{key!r} in db {db}: acknowledged without a TTL (PERSIST, SET...), found PEXPIRETIME {deadline}"
    if st.ttl is not None and not st.ttl[0] <= deadline <= st.ttl[1]:
        return f"{key!r} in db {db}: acknowledged deadline {st.ttl}, found PEXPIRETIME {deadline}"
    return None


def _check_layout(found: dict[bytes, list[tuple[int, bytes, int]]], t0: int, t1: int, at: list[int],
                  ledgers: list[TtlLedger]) -> tuple[list[str], list[dict[bytes, KeyState | None]]]:
    """Problems with the databases laid out as `at`, and per ledger the states of its
    command in flight that fit (the first that does)."""
    problems: list[str] = []
    chosen: list[dict[bytes, KeyState | None]] = []
    for led in ledgers:
        pick: dict[bytes, KeyState | None] = {}
        if led.in_flight:
            tried = []
            for states in led.in_flight:
                misfits = [p for k, s in states.items() if (p := _state_problem(k, s, found.get(k, []), at, t0, t1))]
                if not misfits:
                    pick = states
                    break
                tried.append(misfits)
            else:
                problems.append(f"the command in flight left its keys in none of its possible states: {tried}")
                pick = led.in_flight[0]
        chosen.append(pick)
        for key, st in led.keys.items():
            if key not in pick and (p := _state_problem(key, st, found.get(key, []), at, t0, t1)):
                problems.append(p)
    return problems, chosen


def check_ttl_ledgers(dbs: DbDump, t0: int, t1: int, boxes: Boxes, ledgers: list[TtlLedger],
                      prefix: bytes) -> list[str]:
    """Compare the recovered databases with the ledgers. Nothing acknowledged may be lost
    (value, database, exact deadline); no key may be found past its deadline; the
    command in flight at the crash (and a SWAPDB in flight) count as done or not done.
    With no problem, the ledgers adopt what was recovered: a later crash may not lose it."""
    found: dict[bytes, list[tuple[int, bytes, int]]] = {}
    for db, entries in dbs.items():
        for key, (value, deadline) in entries.items():
            found.setdefault(key, []).append((db, value, deadline))
    problems = [f"{key!r} in db {db} has PEXPIRETIME {deadline}, before the dump began at {t0}: it outlived "
                f"its deadline" for key, entries in found.items() for db, _v, deadline in entries
                if 0 <= deadline <= t0]
    results = [(at, *_check_layout(found, t0, t1, at, ledgers)) for at in boxes.layouts()]
    at, layout_problems, chosen = next((r for r in results if not r[1]), results[0])
    problems += layout_problems
    known = set().union(*(led.known() for led in ledgers))
    phantoms = [key for key in found if key.startswith(prefix) and key not in known]
    if phantoms:
        problems.append(f"{len(phantoms)} keys that no acknowledged or pending write left there: {phantoms[:5]}")
    if problems:
        return problems
    boxes.at, boxes.swap_in_flight = list(at), None
    for led, pick in zip(ledgers, chosen, strict=True):
        led.commit("recovered", pick)
        for key, st in list(led.keys.items()):
            if key not in found:
                del led.keys[key]  # lapsed
                continue
            _db, value, deadline = found[key][0]
            led.keys[key] = KeyState(st.box, value, None if deadline == -1 else (deadline, deadline), st.doomed)
    return []


def test_crash_with_ttls_and_databases_loses_nothing(launcher: Launcher) -> None:
    """kill -9 rounds under --fsync always with TTL commands in all 16 databases: every
    acknowledged key is recovered with its value, in its database, with the exact
    acknowledged deadline (or none after PERSIST / SET without KEEPTTL); nothing is
    found past its deadline; the AOF holds only absolute TTLs."""
    rng = random.Random(SEED)
    data = launcher.data_dir()
    server = launcher.kvred(data)
    boxes = Boxes()
    ledgers: list[TtlLedger] = []
    for rnd in range(TTL_CRASH_ROUNDS):
        with TtlWriters(server, boxes, f"ttl{rnd}", threads=4, seed=SEED + rnd) as writers:
            writers.wait_acks(rng.randint(300, 2000))
            writers.crash(server)
            writers.finish()
            writers.assert_no_error()
        ledgers += writers.ledgers
        server = launcher.kvred(data)
        t0 = now_ms()
        dbs = dump_dbs(server, expiring=True)
        t1 = now_ms()
        problems = check_ttl_ledgers(dbs, t0, t1, boxes, ledgers, b"ttl")
        assert not problems, (f"round {rnd}, seed {SEED}, {writers.acks()} acks before the kill: "
                              f"{len(problems)} problems, first ones:\n" + "\n".join(problems[:20]))
        assert not temp_files(data)
    ops: dict[str, int] = {}
    for led in ledgers:
        for kind, count in led.ops.items():
            ops[kind] = ops.get(kind, 0) + count
    assert ops.get("SWAPDB", 0) >= 1 and ops.get("MOVE", 0) >= 1 and ops.get("INCR", 0) >= 1, ops
    assert server.stop(STOP_TIMEOUT_S) == 0
    assert check_aof(aof_path(data)).returncode == 0
    commands = aof_commands(aof_path(data).read_bytes())
    assert not not_absolute_ttls(commands), f"relative TTLs in the AOF: {not_absolute_ttls(commands)[:5]}"
    assert any(argv[0] == b"SELECT" for argv in commands) and any(argv[0] == b"PEXPIREAT" for argv in commands)


# ---------------------------------------------------------------- TTLs that lapse while the server is down


def test_ttls_that_lapse_while_the_server_is_down(launcher: Launcher) -> None:
    """Keys whose deadline passes while kvred is stopped are gone after the restart (not
    merely hidden: DBSIZE and INFO keyspace agree), their deletion is logged as DEL in
    their database, and the other keys keep their exact deadline."""
    data = launcher.data_dir()
    server = launcher.kvred(data)
    far = now_ms() + 3_600_000
    for db in (0, 2, 15):
        with db_client(server, db) as r:
            assert r.set(f"keep:{db}:ttl", "t") is True
            assert r.pexpireat(f"keep:{db}:ttl", far + db) is True
            assert r.set(f"keep:{db}:pxat", "p", pxat=far + 100 + db) is True
            assert r.set(f"keep:{db}:plain", "no ttl") is True
    expected = dump_dbs(server)
    # the keys that lapse while the server is down: set last, just before the stop
    lapse_at = now_ms() + LAPSE_AHEAD_MS
    lapsing: dict[int, list[bytes]] = {}
    for db in (0, 2, 9, 15):  # db 9 holds only keys that lapse
        names = lapsing[db] = [f"lapse:{db}:{i}".encode() for i in range(4)]
        with db_client(server, db) as r:
            pipe = r.pipeline(transaction=False)
            for i, name in enumerate(names[:3]):
                pipe.set(name, f"v{i}").pexpireat(name, lapse_at + i)
            pipe.set(names[3], "pxat", pxat=lapse_at + 5)
            assert pipe.execute() == [True] * 7
    assert wait_exit_after(server, signal.SIGTERM) == 0
    stopped_at = now_ms()
    assert stopped_at < lapse_at, (f"the stop ended {stopped_at - lapse_at + LAPSE_AHEAD_MS} ms after the writes: "
                                   f"the keys did not lapse while the server was down (raise LAPSE_AHEAD_MS)")
    before = aof_commands(aof_path(data).read_bytes())
    size = aof_path(data).stat().st_size
    assert not [argv for argv in before if argv[0] == b"DEL"]
    last_db = [int(argv[1]) for argv in before if argv[0] == b"SELECT"][-1]

    last = lapse_at + 5
    wait_for("the deadlines to pass", lambda: now_ms() > last, LAPSE_AHEAD_MS / 1000 + 5.0)
    server = launcher.kvred(data)
    # before any lookup (a lookup would delete a lapsed key lazily): they were deleted at the start
    keyspace = info(server, "keyspace")
    assert {db: (v["keys"], v["expires"]) for db, v in keyspace.items()} == {
        f"db{db}": (len(entries), 2) for db, entries in expected.items()}, keyspace
    for db in range(DATABASES):
        with db_client(server, db) as r:
            assert r.dbsize() == len(expected.get(db, {})), f"db {db}: DBSIZE counts lapsed keys"
            assert r.exists(*lapsing.get(db, [b"nosuch"])) == 0, f"db {db}: a lapsed key is still there"
    assert_same_dbs(expected, dump_dbs(server), "after the restart")

    def deletions() -> set[tuple[int, bytes]]:
        tail = aof_path(data).read_bytes()[size:]
        return {(db, key) for db, argv in commands_by_db(aof_commands(tail), last_db) if argv[0] == b"DEL"
                for key in argv[1:]}

    wanted = {(db, key) for db, names in lapsing.items() for key in names}
    wait_for("the lapsed keys' DELs in the AOF", lambda: deletions() >= wanted, 10.0,
             lambda: f"logged {sorted(deletions())}, wanted {sorted(wanted)}")
    kill_all(server)
    assert check_aof(aof_path(data)).returncode == 0
    server = launcher.kvred(data)
    assert_same_dbs(expected, dump_dbs(server), "after a second restart")
    assert info(server, "keyspace").keys() == {f"db{db}" for db in expected}


# ---------------------------------------------------------------- rewrite, interop, MULTI


def ttl_workload(server: ServerProcess, tag: str, dbs: tuple[int, ...]) -> None:
    """Every TTL command kvred logs, in the databases `dbs`, with far deadlines (nothing
    lapses during a test), then MOVE / COPY ... DB across them and a SWAPDB."""
    second, ms = now_ms() // 1000, now_ms()
    for i, db in enumerate(dbs):
        nxt = dbs[(i + 1) % len(dbs)]
        with db_client(server, db) as r:
            def k(name: str, prefix: str = f"{tag}:{db}:") -> str:
                return prefix + name

            assert r.set(k("plain"), b"\x00plain\r\n") is True
            assert r.set(k("ex"), "ex", ex=3600) is True
            assert r.set(k("px"), "px", px=3_600_123) is True
            assert r.set(k("exat"), "exat", exat=second + 7200) is True
            assert r.set(k("pxat"), "pxat", pxat=ms + 7_200_321) is True
            assert r.execute_command("SETEX", k("setex"), 5000, "setex") is True
            assert r.set(k("exp"), "e") is True
            assert r.expire(k("exp"), 4000) is True
            assert r.set(k("pexpat"), "p") is True
            assert r.pexpireat(k("pexpat"), ms + 9_000_007) is True
            assert r.set(k("persist"), "p", ex=100) is True
            assert r.persist(k("persist")) is True
            assert r.set(k("ctr"), 10, ex=3600) is True
            assert r.incr(k("ctr")) == 11
            assert r.incrbyfloat(k("ctr"), 0.5) == 11.5
            assert r.set(k("str"), "abc", px=3_000_000) is True
            assert r.append(k("str"), "def") == 6
            assert r.setrange(k("str"), 8, "xy") == 10
            assert r.set(k("keep"), "k1", ex=3000) is True
            assert r.set(k("keep"), "k2", keepttl=True) is True
            assert r.set(k("nokeep"), "n1", ex=3000) is True
            assert r.set(k("nokeep"), "n2") is True
            assert r.getex(k("ex"), px=3_500_000) == b"ex"
            assert r.getex(k("exat"), persist=True) == b"exat"
            assert r.set(k("mv"), "moved", ex=2000) is True
            assert r.move(k("mv"), nxt) is True
            assert r.copy(k("px"), k("copy"), destination_db=nxt) is True
            assert r.rename(k("pxat"), k("renamed")) is True
            assert r.set(k("gone"), "g", ex=1000) is True
            assert r.delete(k("gone")) == 1
    first, last = dbs[0], dbs[-1]
    with RawClient(server.port) as raw:  # a transaction that changes database halfway
        raw.send(cmd("SELECT", str(last)) + cmd("MULTI") + cmd("SELECT", str(first))
                 + cmd("SET", f"{tag}:tx", "in a transaction", "PX", "3600000")
                 + cmd("COPY", f"{tag}:tx", f"{tag}:txcopy", "DB", str(last)) + cmd("EXPIRE", f"{tag}:tx", "7000")
                 + cmd("SELECT", str(last)) + cmd("INCRBYFLOAT", f"{tag}:txcopy:n", "2.5") + cmd("EXEC"))
        replies = [raw.read_reply() for _ in range(9)]
        assert replies == [b"+OK\r\n", b"+OK\r\n"] + [b"+QUEUED\r\n"] * 6 + [
            b"*6\r\n+OK\r\n+OK\r\n:1\r\n:1\r\n+OK\r\n$3\r\n2.5\r\n"], replies
    if len(dbs) > 1:
        with db_client(server, first) as r:
            assert r.swapdb(first, dbs[1]) is True


def test_rewrite_with_ttls_and_databases(launcher: Launcher) -> None:
    """BGREWRITEAOF of several databases with TTLs, writes in other databases during and
    after it: a crash and restart give the same databases, keys, values and deadlines.
    The first write after the fork is in db 0 while the snapshot ends in db 15: the
    rewrite's tail must SELECT it again."""
    data = launcher.data_dir()
    server = launcher.kvred(data)
    with db_client(server, 1) as r:  # enough data that the rewrite takes a while
        pipe = r.pipeline(transaction=False)
        for i in range(0, 20_000, 500):
            pipe.mset({b"bulk:%06d" % j: b"%d:" % j + b"x" * 1500 for j in range(i, i + 500)})
        assert all(reply is True for reply in pipe.execute())
    ttl_workload(server, "pre", (1, 4, 15))
    far = now_ms() + 3_600_000
    during = 0
    with db_client(server, 0) as r:
        assert r.set("pre:last", "the last change before the fork is in db 0") is True
        assert r.bgrewriteaof() is True
        assert r.set("during:0", "right after the fork, in db 0", pxat=far) is True
        for i in range(1000):
            with db_client(server, (0, 3, 12, 15)[i % 4]) as w:
                assert w.set(f"during:{i}:x", i, px=3_000_000 + i) is True
                assert w.pexpireat(f"during:{i}:x", far + i) is True
            if not info(server)["aof_rewrite_in_progress"]:
                break
            during += 1
    assert during, "no write was acknowledged while the rewrite ran: make the dataset larger"
    wait_for("the rewrite", lambda: (i := info(server))["aof_rewrite_in_progress"] == 0
             and i["aof_last_bgrewrite_status"] == "ok" and i["aof_rewrites"] >= 1, REWRITE_TIMEOUT_S,
             lambda: str(info(server)))
    content = aof_path(data).read_bytes()
    assert content.startswith(b"*2\r\n$6\r\nSELECT\r\n"), content[:60]
    commands = aof_commands(content)
    assert any(argv[0] == b"PEXPIREAT" for argv in commands)
    assert not not_absolute_ttls(commands), not_absolute_ttls(commands)[:5]
    dbs_of = {argv[1]: db for db, argv in commands_by_db(commands) if argv[0] == b"SET"}
    assert dbs_of[b"during:0"] == 0, "the rewrite's tail has the first write after the fork in the wrong database"
    ttl_workload(server, "post", (2, 7, 0))
    with db_client(server, 3) as r:
        assert r.persist("during:1:x") is True
        assert r.expire("during:5:x", 600) is True
    expected = dump_dbs(server)
    assert {0, 1, 2, 3, 4, 7, 15} <= set(expected), sorted(expected)
    kill_all(server)
    server = launcher.kvred(data)
    assert_same_dbs(expected, dump_dbs(server), "after the rewrite and a crash")
    assert not temp_files(data)


def redis_aof_content(redis_dir: Path) -> bytes:
    """redis-server's base and incr files, in manifest order, as one plain AOF."""
    aof_dir = redis_dir / "appendonlydir"
    manifest = (aof_dir / "appendonly.aof.manifest").read_text().splitlines()
    entries = [dict(zip(line.split()[::2], line.split()[1::2], strict=True)) for line in manifest if line.strip()]
    base = [e["file"] for e in entries if e["type"] == "b"]
    incr = sorted((e for e in entries if e["type"] == "i"), key=lambda e: int(e["seq"]))
    assert len(base) == 1 and incr, manifest
    content = b"".join((aof_dir / name).read_bytes() for name in base + [e["file"] for e in incr])
    assert content.startswith(b"*"), "expected a plain RESP AOF (no RDB preamble)"
    return content


def test_redis_server_loads_a_kvred_aof_with_ttls_and_databases(launcher: Launcher) -> None:
    data = launcher.data_dir()
    server = launcher.kvred(data)
    ttl_workload(server, "a", (0, 3, 15))
    with client(server) as r:
        r.execute_command("BGREWRITEAOF")
    wait_for("the rewrite", lambda: (i := info(server))["aof_rewrites"] >= 1 and not i["aof_rewrite_in_progress"]
             and i["aof_last_bgrewrite_status"] == "ok", REWRITE_TIMEOUT_S)
    ttl_workload(server, "b", (15, 0, 3))
    expected = dump_dbs(server)
    assert set(expected) == {0, 3, 15}, sorted(expected)
    assert wait_exit_after(server, signal.SIGTERM) == 0

    redis_dir = launcher.data_dir("redis")
    shutil.copy(aof_path(data), redis_dir / AOF_NAME)
    real = launcher.redis(redis_dir, "--appendonly", "yes", "--appendfilename", AOF_NAME)
    assert_same_dbs(expected, dump_dbs(real), f"redis-server loading kvred's AOF\n{real.log_tail()}")


def test_kvred_loads_a_redis_server_aof_with_ttls_and_databases(launcher: Launcher) -> None:
    redis_dir = launcher.data_dir("redis")
    real = launcher.redis(redis_dir, "--appendonly", "yes", "--aof-use-rdb-preamble", "no",
                          "--appendfsync", "always")
    ttl_workload(real, "a", (0, 5, 15))
    with client(real) as r:
        r.bgrewriteaof()
    wait_for("redis's rewrite", lambda: (i := info(real))["aof_rewrite_in_progress"] == 0
             and i["aof_rewrite_scheduled"] == 0 and i["aof_last_bgrewrite_status"] == "ok"
             and i["aof_rewrites"] >= 1, REWRITE_TIMEOUT_S)
    ttl_workload(real, "b", (5, 9, 0))
    expected = dump_dbs(real)
    assert set(expected) == {0, 5, 9, 15}, sorted(expected)
    assert wait_exit_after(real, signal.SIGTERM) == 0

    data = launcher.data_dir()
    aof_path(data).write_bytes(redis_aof_content(redis_dir))
    server = launcher.kvred(data)
    assert_same_dbs(expected, dump_dbs(server), "kvred loading redis-server's AOF")


def test_select_inside_multi_replays_into_that_database(launcher: Launcher) -> None:
    """MULTI; SELECT 3; SET ...; EXEC: the SET replays into database 3, and the client
    stays in database 3 afterwards (as in Redis); a block that switches twice too."""
    data = launcher.data_dir()
    server = launcher.kvred(data)
    far = now_ms() + 3_600_000
    ok, queued = b"+OK\r\n", b"+QUEUED\r\n"
    with RawClient(server.port) as raw:
        assert raw.call("SET", "tx:before", "db 0") == ok  # the last change logged is in db 0
        raw.send(cmd("MULTI") + cmd("SELECT", "3") + cmd("SET", "tx:a", "in 3") + cmd("EXEC"))
        assert [raw.read_reply() for _ in range(4)] == [ok, queued, queued, b"*2\r\n+OK\r\n+OK\r\n"]
        assert raw.call("SET", "tx:after", "still in 3") == ok
        raw.send(cmd("MULTI") + cmd("SELECT", "5") + cmd("SET", "tx:b", "in 5", "PXAT", str(far))
                 + cmd("SELECT", "0") + cmd("SET", "tx:c", "in 0") + cmd("EXEC"))
        replies = [raw.read_reply() for _ in range(6)]
        assert replies == [ok] + [queued] * 4 + [b"*4\r\n" + ok * 4], replies
        assert raw.call("SET", "tx:back", "in 0") == ok
    expected: DbDump = {0: {b"tx:before": (b"db 0", -1), b"tx:c": (b"in 0", -1), b"tx:back": (b"in 0", -1)},
                        3: {b"tx:a": (b"in 3", -1), b"tx:after": (b"still in 3", -1)},
                        5: {b"tx:b": (b"in 5", far)}}
    assert_same_dbs(expected, dump_dbs(server), "live")
    kill_all(server)
    logged = {argv[1]: db for db, argv in commands_by_db(aof_commands(aof_path(data).read_bytes()))
              if argv[0] == b"SET"}
    assert logged == {b"tx:before": 0, b"tx:a": 3, b"tx:after": 3, b"tx:b": 5, b"tx:c": 0, b"tx:back": 0}, logged
    server = launcher.kvred(data)
    assert_same_dbs(expected, dump_dbs(server), "after a crash and restart")


# --------------------------------------------------------------------------- 11: value types
#
# Lists, hashes, sets, sorted sets, bitmaps and HyperLogLogs (#12 item 9). Each command
# must log its effect so that a replay rebuilds the same value: a random choice (SPOP)
# logs the members removed, a float result (HINCRBYFLOAT) the value reached, a relative
# TTL its absolute deadline; an aggregate emptied by a pop is deleted (and loses its
# TTL). A rewrite emits each type with its own commands (RPUSH, HSET/HMSET, SADD,
# ZADD) of at most 64 items, plus PEXPIREAT. The tests compare a type-aware dump: each
# key's TYPE, its whole value and its PEXPIRETIME. Each test runs on kvred and, as a
# check of the test itself, on redis-server (same AOF settings, same kill -9).
#
# No PFCOUNT in the workloads: Redis caches the cardinality in the HLL's header without
# logging anything, so after a PFCOUNT the live bytes differ from the replayed ones.

TypedValue = bytes | tuple[Any, ...]
TypedDump = dict[int, dict[bytes, tuple[str, TypedValue, int]]]  # db -> key -> (TYPE, value, PEXPIRETIME)
KINDS = ["kvred", "redis"]
REDIS_AOF_OPTIONS = ("--appendonly", "yes", "--appendfsync", "always", "--aof-use-rdb-preamble", "no")
TYPED_FAR_MS = 3_600_000  # TTLs of the workloads: far enough never to lapse in a test
TYPED_ROUNDS = 3
READ_COMMANDS: dict[str, tuple[str | int, ...]] = {
    "string": ("GET",), "list": ("LRANGE", 0, -1), "hash": ("HGETALL",), "set": ("SMEMBERS",),
    "zset": ("ZRANGE", 0, -1, "WITHSCORES")}
REBUILD_COMMANDS = {"list": {b"RPUSH"}, "hash": {b"HSET", b"HMSET"}, "set": {b"SADD"}, "zset": {b"ZADD"},
                    "string": {b"SET", b"MSET"}}
PAIRED_COMMANDS = {b"HSET", b"HMSET", b"ZADD", b"MSET"}  # an item is a field/value or score/member pair


def raw_db_client(server: ServerProcess, db: int = 0) -> redis.Redis:
    """A db_client without redis-py's reply conversions: replies as the server sends them."""
    r = db_client(server, db)
    r.response_callbacks.clear()
    return r


def start_typed(launcher: Launcher, kind: str, data: Path) -> ServerProcess:
    """kvred (fsync always) or redis-server with a plain-RESP AOF, fsync always."""
    return launcher.kvred(data) if kind == "kvred" else launcher.redis(data, *REDIS_AOF_OPTIONS)


def _typed_value(kind: str, reply: Any) -> TypedValue:
    if kind == "string":
        assert isinstance(reply, bytes), reply
        return reply
    if kind == "hash":
        items = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2], strict=True)
        return tuple(sorted(items))
    if kind == "set":
        return tuple(sorted(reply))
    if kind == "zset":
        return tuple(zip(reply[::2], reply[1::2], strict=True))  # (member, score as formatted), in order
    return tuple(reply)


def dump_typed(server: ServerProcess) -> TypedDump:
    """Every database: key -> (TYPE, whole value, PEXPIRETIME); hashes as sorted pairs,
    sets sorted, sorted sets in ZRANGE order with the scores as the server formats them."""
    out: TypedDump = {}
    for db in range(DATABASES):
        entries: dict[bytes, tuple[str, TypedValue, int]] = {}
        with raw_db_client(server, db) as r:
            keys: list[bytes] = []
            cursor = b"0"
            while True:
                cursor, batch = r.execute_command("SCAN", cursor, "COUNT", 1000)
                keys += batch
                if cursor == b"0":
                    break
            keys = list(dict.fromkeys(keys))
            for i in range(0, len(keys), 200):
                chunk = keys[i : i + 200]
                pipe = r.pipeline(transaction=False)
                for key in chunk:
                    pipe.execute_command("TYPE", key)
                    pipe.execute_command("PEXPIRETIME", key)
                heads = pipe.execute()
                types = [t.decode() if isinstance(t, bytes) else str(t) for t in heads[::2]]
                pipe = r.pipeline(transaction=False)
                for key, kind in zip(chunk, types, strict=True):
                    assert kind in READ_COMMANDS, f"db {db}: {key!r} has TYPE {kind}"
                    command = READ_COMMANDS[kind]
                    pipe.execute_command(command[0], key, *command[1:])
                values = pipe.execute()
                for key, kind, deadline, value in zip(chunk, types, heads[1::2], values, strict=True):
                    entries[key] = (kind, _typed_value(kind, value), deadline)
        if entries:
            out[db] = entries
    return out


def _short(entry: object, limit: int = 300) -> str:
    text = repr(entry)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def assert_same_typed(expected: TypedDump, got: TypedDump, what: str) -> None:
    problems = []
    for db in sorted(set(expected) | set(got)):
        want, have = expected.get(db, {}), got.get(db, {})
        for key in sorted(set(want) | set(have)):
            if want.get(key) != have.get(key):
                problems.append(f"db {db} {key!r}: expected (TYPE, value, PEXPIRETIME) {_short(want.get(key))}, "
                                f"got {_short(have.get(key))}")
    assert not problems, f"{what}: {len(problems)} differences, first ones:\n" + "\n".join(problems[:20])


def without(dumped: TypedDump, prefix: bytes) -> TypedDump:
    out = {db: {k: v for k, v in keys.items() if not k.startswith(prefix)} for db, keys in dumped.items()}
    return {db: keys for db, keys in out.items() if keys}


def items_after_key(argv: list[bytes]) -> int:
    """The items a command carries after its key, as Redis's rewrite counts them."""
    name = argv[0].upper()
    if name == b"MSET":
        return (len(argv) - 1) // 2
    count = max(len(argv) - 2, 0)
    return count // 2 if name in PAIRED_COMMANDS else count


def typed_workload(server: ServerProcess, tag: str, db: int, other_db: int, previous: str | None = None) -> None:
    """The write commands of every value type, with their deterministic-logging traps,
    in database `db` (a few keys go to `other_db`); `previous`: the tag of an earlier
    run whose keys are changed again (on top of what a replay rebuilt)."""
    far = now_ms() + TYPED_FAR_MS
    with raw_db_client(server, db) as r:
        def x(*args: Any) -> Any:
            return r.execute_command(*args)

        def k(name: str) -> str:
            return f"{tag}:{name}"

        # lists
        lst, lst2 = k("list"), k("list2")
        assert x("RPUSH", lst, "a", "b", "c", "d", "e", "f", "g", "h") == 8
        assert x("LPUSH", lst, "z", "y", b"x\x00\r\n") == 11
        assert x("LPOP", lst, 2) == [b"x\x00\r\n", b"y"]
        assert x("RPOP", lst) == b"h"
        assert x("LINSERT", lst, "BEFORE", "c", "ins") == 9
        assert x("LINSERT", lst, "AFTER", "nosuch", "no") == -1
        assert x("LSET", lst, 0, "first") in (True, b"OK")
        assert x("RPUSH", lst, "dup", "e", "dup", "dup") == 13
        assert x("LREM", lst, 1, "e") == 1
        assert x("LREM", lst, -2, "dup") == 2
        assert x("LTRIM", lst, 0, 8) in (True, b"OK")
        assert x("LMOVE", lst, lst2, "LEFT", "RIGHT") == b"first"
        assert x("LMOVE", lst, lst, "RIGHT", "LEFT") is not None
        assert x("LMPOP", 2, k("nolist"), lst, "LEFT", "COUNT", 2)[0] == lst.encode()
        assert x("RPUSH", lst2, *(b"item %d" % i for i in range(150))) == 151  # a big list
        assert x("EXPIRE", lst, 3600) == 1
        assert x("PEXPIREAT", lst2, far) == 1
        assert x("RPUSH", k("lpop"), 1, 2, 3) == 3  # emptied by pops: deleted, TTL gone with it
        assert x("PEXPIREAT", k("lpop"), far + 1) == 1
        assert x("LPOP", k("lpop"), 5) == [b"1", b"2", b"3"]
        assert x("RPUSH", k("lpop"), "again") == 1
        assert x("RPUSH", k("lmpop"), "a", "b") == 2
        assert x("LMPOP", 1, k("lmpop"), "RIGHT", "COUNT", 9) == [k("lmpop").encode(), [b"b", b"a"]]
        assert x("RPUSH", k("ltrim"), "a", "b") == 2
        assert x("LTRIM", k("ltrim"), 5, 10) in (True, b"OK")
        assert x("RPUSH", k("lmove"), "only") == 1
        assert x("EXPIRE", k("lmove"), 500) == 1
        assert x("LMOVE", k("lmove"), k("lmoved"), "RIGHT", "LEFT") == b"only"
        # hashes
        h = k("hash")
        assert x("HSET", h, "f1", "v1", "f2", "v2", "f3", b"\x00bin\xff") == 3
        assert x("HSET", h, "f1", "v1b", "f4", "") == 1
        assert x("HDEL", h, "f2", "nosuch") == 1
        assert x("HINCRBY", h, "n", 5) == 5
        assert x("HINCRBY", h, "n", -12) == -7
        assert x("HINCRBYFLOAT", h, "fl", "0.1") == b"0.1"
        assert x("HINCRBYFLOAT", h, "fl", "0.2") == b"0.3"  # long double: exact only if logged as the result
        assert x("HINCRBYFLOAT", h, "fl", "3.0000000000000004") is not None
        assert x("HINCRBYFLOAT", h, "big", "1e300") is not None
        assert x("HINCRBYFLOAT", h, "third", "1") == b"1"
        assert x("HINCRBYFLOAT", h, "third", "-0.6666666666666666") is not None
        assert x("HSETNX", h, "f1", "no") == 0
        assert x("HSETNX", h, "f9", "yes") == 1
        assert x("HMSET", h, "m1", "1", "m2", "2") in (True, b"OK")
        assert x("EXPIRE", h, 7200) == 1
        assert x("HSET", k("hbig"), *(b"f%d" % (i // 2) if i % 2 == 0 else b"v%d" % i for i in range(400))) == 200
        assert x("HDEL", k("hbig"), *(b"f%d" % i for i in range(0, 200, 3))) == 67
        assert x("HSET", k("hdel"), "a", "1") == 1
        assert x("PEXPIREAT", k("hdel"), far + 2) == 1
        assert x("HDEL", k("hdel"), "a") == 1
        # sets: SPOP is random, the log must carry what it removed
        s, s2, s3 = k("set"), k("set2"), k("set3")
        assert x("SADD", s, *range(1, 21)) == 20  # an intset
        assert x("SREM", s, 3, 4, "nosuch") == 2
        assert x("SPOP", s) is not None
        assert len(x("SPOP", s, 3)) == 3
        assert x("SADD", s2, *"abcdefghij") == 10
        assert len(x("SPOP", s2, 2)) == 2
        assert x("SADD", s2, "keep", 7, 8) == 3
        assert x("SMOVE", s2, s3, "keep") == 1
        assert x("SMOVE", s2, s3, "nosuch") == 0
        assert x("SADD", s3, 7, 8, 9, "z") == 4
        assert x("SINTERSTORE", k("inter"), s2, s3) >= 2
        assert x("SDIFFSTORE", k("diff"), s3, s2) >= 0
        assert x("SUNIONSTORE", k("union"), s, s2, s3) > 0
        assert x("SADD", k("sbig"), *(b"member %d" % i for i in range(200))) == 200
        assert len(x("SPOP", k("sbig"), 10)) == 10  # few of many
        assert len(x("SPOP", k("sbig"), 150)) == 150  # most of them: Redis keeps the rest instead
        assert x("SADD", k("sints"), *range(0, 1000, 7)) == 143
        assert len(x("SPOP", k("sints"), 100)) == 100
        assert x("SADD", k("spop"), "x", "y") == 2  # emptied by SPOP: deleted
        assert x("PEXPIREAT", k("spop"), far + 3) == 1
        assert len(x("SPOP", k("spop"), 5)) == 2
        assert x("SADD", k("sinter0"), "a") == 1
        assert x("SINTERSTORE", k("sinter0"), k("nosuch"), s) == 0  # an empty result deletes the destination
        assert x("EXPIRE", s, 5000) == 1
        # sorted sets: odd scores; ZRANGE WITHSCORES shows them as the server formats them
        z, z2 = k("zset"), k("zset2")
        assert x("ZADD", z, "0.1", "a", "1e300", "b", "-inf", "c", "3.0000000000000004", "d", 2, "e") == 5
        assert x("ZADD", z, "NX", 5, "a", 6, "f") == 1
        assert x("ZADD", z, "XX", 7, "e", 8, "nosuch") == 0
        assert x("ZADD", z, "GT", 1, "e") == 0
        assert x("ZADD", z, "GT", "CH", 9, "e") == 1
        assert x("ZADD", z, "LT", "0.05", "a") == 0
        assert x("ZADD", z, "INCR", "0.2", "a") is not None
        assert x("ZADD", z, "XX", "INCR", "1e300", "b") is not None
        assert x("ZINCRBY", z, "0.1", "d") is not None
        assert x("ZINCRBY", z, "-1.5", "new") is not None
        assert x("ZINCRBY", z, "0.30000000000000004", "new") is not None
        assert x("ZREM", z, "nosuch", "e") == 1
        assert x("ZADD", z, "+inf", "top", 0, "zero", "-0.0", "negzero") == 3
        assert len(x("ZPOPMIN", z)) == 2
        assert len(x("ZPOPMAX", z, 2)) == 4
        assert x("ZMPOP", 2, k("nozset"), z, "MIN", "COUNT", 1)[0] == z.encode()
        assert x("ZADD", z2, *(v for i in range(1, 11) for v in (i, f"m{i}"))) == 10
        assert x("ZREMRANGEBYSCORE", z2, "(2", 5) == 3
        assert x("ZUNIONSTORE", k("zunion"), 2, z, z2, "WEIGHTS", 2, "0.5", "AGGREGATE", "MAX") > 0
        assert x("ZINTERSTORE", k("zinter"), 2, z2, k("zunion"), "AGGREGATE", "SUM") >= 0
        assert x("ZRANGESTORE", k("zrange"), z2, 5, "+inf", "BYSCORE", "LIMIT", 0, 3) == 3
        assert x("ZADD", k("zbig"), *(v for i in range(200) for v in (i / 7, f"member {i}"))) == 200
        assert x("ZREMRANGEBYRANK", k("zbig"), 0, 9) == 10
        assert x("ZADD", k("zpop"), 1, "x") == 1  # emptied by pops: deleted
        assert x("PEXPIREAT", k("zpop"), far + 4) == 1
        assert len(x("ZPOPMIN", k("zpop"), 5)) == 2
        assert x("ZADD", k("zmpop"), 1, "x", 2, "y") == 2
        assert x("ZMPOP", 1, k("zmpop"), "MAX", "COUNT", 5)[0] == k("zmpop").encode()
        assert x("ZADD", k("zrs0"), 1, "gone") == 1
        assert x("ZRANGESTORE", k("zrs0"), z2, 100, 200, "BYSCORE") == 0  # empty result: destination deleted
        assert x("PEXPIREAT", z, far + 5) == 1
        # bitmaps
        b, b2 = k("bits"), k("bits2")
        assert x("SETBIT", b, 7, 1) == 0
        assert x("SETBIT", b, 100, 1) == 0
        assert x("SETBIT", b, 7, 0) == 1
        assert x("SETBIT", b2, 3, 1) == 0
        assert x("PEXPIREAT", b, far + 6) == 1
        assert x("SETBIT", b, 9, 1) == 0  # keeps the TTL
        assert x("BITOP", "OR", k("or"), b, b2) == 13
        assert x("BITOP", "AND", k("and"), b, b2) == 13
        assert x("BITOP", "XOR", k("xor"), b, b2, k("nosuch")) == 13
        assert x("BITOP", "NOT", k("not"), b) == 13
        assert x("SET", k("bopgone"), "x") in (True, b"OK")
        assert x("BITOP", "OR", k("bopgone"), k("nosuch")) == 0  # empty result deletes the destination
        assert x("BITFIELD", k("bf"), "SET", "u8", 0, 200, "INCRBY", "u8", 0, 100) == [0, 44]
        assert x("BITFIELD", k("bf"), "OVERFLOW", "SAT", "INCRBY", "i16", 8, -40000,
                 "OVERFLOW", "FAIL", "INCRBY", "u4", 30, 20, "OVERFLOW", "WRAP", "INCRBY", "i5", 100, 17) == [
            -32768, None, -15]
        assert x("BITFIELD", k("bf"), "OVERFLOW", "FAIL", "INCRBY", "u2", 0, 9) == [None]  # a no-op
        assert x("BITFIELD", k("bf"), "GET", "u8", 0, "SET", "i8", "#3", -5) == [44, 0]
        # HyperLogLogs
        assert x("PFADD", k("hll1"), *"abcdefg") == 1
        assert x("PFADD", k("hll2"), *(b"e%d" % i for i in range(5000))) == 1  # dense
        assert x("PFADD", k("hll1"), "a") == 0
        assert x("PFADD", k("hll3")) == 1  # creates an empty one
        assert x("PFMERGE", k("hllm"), k("hll1"), k("hll3")) in (True, b"OK")
        assert x("PFMERGE", k("hll1"), k("hll2")) in (True, b"OK")
        assert x("PEXPIREAT", k("hllm"), far + 7) == 1
        assert x("PFADD", k("hllm"), "more") == 1  # keeps the TTL
        # across keys and databases
        assert x("COPY", z2, k("zcopy")) == 1
        assert x("COPY", h, k("hcopy"), "DB", other_db) == 1
        assert x("RENAME", k("sbig"), k("srenamed")) in (True, b"OK")
        assert x("MOVE", k("hbig"), other_db) == 1
        assert x("DEL", k("union"), k("or")) == 2
        tx = r.pipeline(transaction=True)  # random inside MULTI: logged inside the block
        tx.execute_command("SPOP", k("sints"), 3)
        tx.execute_command("SPOP", k("sints"))
        tx.execute_command("RPUSH", k("txlist"), "t1", "t2")
        tx.execute_command("HINCRBYFLOAT", h, "fl", "1.1")
        tx.execute_command("ZINCRBY", z2, "0.1", "m1")
        tx.execute_command("LPOP", k("txlist"))
        results = tx.execute()
        assert len(results[0]) == 3 and results[2] == 2, results
        if previous is not None:  # changes on top of an earlier run's keys (replayed ones)
            def p(name: str) -> str:
                return f"{previous}:{name}"

            assert len(x("SPOP", p("sints"), 5)) == 5
            assert x("SPOP", p("set2")) is not None
            assert x("LPOP", p("list2"), 3) is not None
            assert x("RPUSH", p("list2"), "later") > 0
            assert x("HINCRBYFLOAT", p("hash"), "fl", "0.7") is not None
            assert x("HINCRBY", p("hash"), "n", 1) == -6
            assert x("ZINCRBY", p("zset2"), "0.1", "m1") is not None
            assert x("ZPOPMAX", p("zset2")) is not None
            assert x("SETBIT", p("bits"), 200, 1) == 0
            assert x("PFADD", p("hll1"), "later") in (0, 1)
            assert x("EXPIRE", p("zset2"), 9000) == 1
            assert x("PERSIST", p("list")) == 1


# ---------------------------------------------------------------- kill -9 with writers of every type


class TypedLedgerWriters:
    """One thread per type, each on its own key of a fresh prefix, writing until the
    crash; each records what was acknowledged, and whether one more command was in
    flight (it may or may not have been applied)."""

    SET_SIZE = 2000

    def __init__(self, server: ServerProcess, prefix: str) -> None:
        self.server = server
        self.prefix = prefix
        self.stop = threading.Event()
        self.acks: dict[str, list[Any]] = {name: [] for name in ("list", "hash", "set", "zset")}
        self.pending: dict[str, bool] = dict.fromkeys(self.acks, False)
        self.errors: list[str] = []
        with raw_db_client(server) as r:
            assert r.execute_command("SADD", self.key("set"), *range(self.SET_SIZE)) == self.SET_SIZE
        self.threads = [threading.Thread(target=self._run, args=(name,), daemon=True) for name in self.acks]

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    def _command(self, name: str, i: int) -> tuple[Any, ...]:
        if name == "list":
            return ("RPUSH", self.key("list"), i)
        if name == "hash":
            return ("HSET", self.key("hash"), f"f{i}", i)
        if name == "set":
            return ("SPOP", self.key("set"))
        return ("ZINCRBY", self.key("zset"), "0.1", "m")

    def _run(self, name: str) -> None:
        r = raw_db_client(self.server)
        try:
            i = 0
            while not self.stop.is_set():
                self.pending[name] = True
                reply = r.execute_command(*self._command(name, i))
                self.acks[name].append(reply)
                self.pending[name] = False
                i += 1
        except (redis.ConnectionError, redis.TimeoutError, ConnectionError):
            pass  # the crash
        except Exception as e:  # noqa: BLE001 - reported by check()
            self.errors.append(f"{name}: {e!r}")
        finally:
            r.close()

    def __enter__(self) -> TypedLedgerWriters:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(CLIENT_TIMEOUT_S + 5)

    def wait_acks(self, each: int) -> None:
        wait_for(f"{each} acknowledged writes per type", lambda: self.errors != [] or all(
            len(a) >= each for a in self.acks.values()), START_TIMEOUT_S, lambda: str(self.counts()))

    def counts(self) -> dict[str, int]:
        return {name: len(a) for name, a in self.acks.items()}

    def check(self, dumped: TypedDump) -> list[str]:
        """What differs in `dumped` (db 0) from the acknowledged writes."""
        assert not self.errors, self.errors
        keys = dumped.get(0, {})
        problems = []

        def got(name: str) -> tuple[str, TypedValue, int] | None:
            return keys.get(self.key(name).encode())

        acked = self.counts()
        extra = {name: 1 if self.pending[name] else 0 for name in self.acks}
        lst = got("list")
        n = len(lst[1]) if lst else 0
        if not acked["list"] <= n <= acked["list"] + extra["list"] or (
                lst and lst[1] != tuple(b"%d" % i for i in range(n))):
            problems.append(f"list: {acked['list']} RPUSH acknowledged, found {_short(lst)}")
        hsh = got("hash")
        n = len(hsh[1]) if hsh else 0
        if not acked["hash"] <= n <= acked["hash"] + extra["hash"] or (
                hsh and hsh[1] != tuple(sorted((b"f%d" % i, b"%d" % i) for i in range(n)))):
            problems.append(f"hash: {acked['hash']} HSET acknowledged, found {_short(hsh)}")
        popped = set(self.acks["set"])
        remaining = {b"%d" % i for i in range(self.SET_SIZE)} - popped
        st = got("set")
        members = set(st[1]) if st else set()
        if not members <= remaining or len(remaining) - len(members) > extra["set"]:
            problems.append(f"set: {len(popped)} SPOP acknowledged, {len(remaining)} members should remain, found "
                            f"{len(members)}; popped but present: {_short(sorted(members - remaining))}")
        zs = got("zset")
        pairs = zs[1] if zs else ()
        assert isinstance(pairs, tuple), zs
        found = float(pairs[0][1]) if pairs else None
        values = [float(score) for score in self.acks["zset"]]
        allowed: list[float | None] = [values[-1] if values else None]
        if self.pending["zset"]:
            allowed.append((values[-1] if values else 0.0) + 0.1)  # ZINCRBY adds doubles, as Python does
        if found not in allowed:
            problems.append(f"zset: {acked['zset']} ZINCRBY acknowledged, the score should be one of {allowed}, "
                            f"found {found!r}")
        return problems


@pytest.mark.parametrize("kind", KINDS)
def test_kill9_rounds_with_every_type(launcher: Launcher, kind: str) -> None:
    """Rounds of: the every-type workload (on top of the previous rounds' replayed keys),
    writers of each type running, kill -9 of the whole tree, restart. What was there
    before the writers started must come back exactly; the writers' keys must hold
    every acknowledged write (and at most the one in flight)."""
    data = launcher.data_dir()
    server = start_typed(launcher, kind, data)
    previous: str | None = None
    for rnd in range(TYPED_ROUNDS):
        tag = f"r{rnd}"
        typed_workload(server, tag, db=0, other_db=3 + rnd, previous=previous)
        with raw_db_client(server, 5) as r:  # a database of its own as well
            r.execute_command("RPUSH", f"{tag}:db5", "x", "y")
            r.execute_command("SADD", f"{tag}:db5set", *range(10))
            r.execute_command("SPOP", f"{tag}:db5set", 4)
        expected = dump_typed(server)
        ledger_prefix = f"led{rnd}"
        with TypedLedgerWriters(server, ledger_prefix) as writers:
            writers.wait_acks(30)
            kill_all(server)
        context = f"{kind}, round {rnd}, acks {writers.counts()}, in flight {writers.pending}"
        server = start_typed(launcher, kind, data)
        recovered = dump_typed(server)
        assert_same_typed(without(expected, ledger_prefix.encode()), without(recovered, ledger_prefix.encode()),
                          f"{context}: after kill -9 and restart")
        problems = writers.check(recovered)
        assert not problems, f"{context}:\n" + "\n".join(problems)
        previous = tag
    server.stop(STOP_TIMEOUT_S)
    logged = aof_commands(aof_path(data).read_bytes() if kind == "kvred" else redis_aof_content(data))
    assert not not_absolute_ttls(logged), not_absolute_ttls(logged)[:5]
    replayed_as_effects = {b"SPOP", b"HINCRBYFLOAT", b"INCRBYFLOAT"}  # random, or long double arithmetic
    not_effects = [argv[:4] for argv in logged if argv[0].upper() in replayed_as_effects]
    assert not not_effects, f"logged as the command, not its effect: {not_effects[:5]}"
    if kind == "kvred":
        assert check_aof(aof_path(data)).returncode == 0


# ---------------------------------------------------------------- rewrite of every type

BIG_AGGREGATE = 10_000  # elements of each big list, hash, set and sorted set


def load_big_aggregates(server: ServerProcess, prefix: str, ttl_ms: int | None) -> dict[str, int]:
    """A list, hash, set (of strings) and sorted set of BIG_AGGREGATE elements each, plus an
    intset; `ttl_ms`: their deadline, absolute unix ms. Their names -> element counts."""
    counts: dict[str, int] = {}
    with raw_db_client(server) as r:
        pipe = r.pipeline(transaction=False)
        for i in range(0, BIG_AGGREGATE, 1000):
            span = range(i, i + 1000)
            pipe.execute_command("RPUSH", f"{prefix}:list", *(b"element %d " % j + b"l" * (j % 50) for j in span))
            pipe.execute_command("HSET", f"{prefix}:hash", *(v for j in span for v in (b"field %d" % j, b"v" * (j % 60))))
            pipe.execute_command("SADD", f"{prefix}:set", *(b"member %d " % j + b"s" * (j % 40) for j in span))
            pipe.execute_command("ZADD", f"{prefix}:zset", *(v for j in span for v in (b"%r" % (j / 3), b"m%d" % j)))
        pipe.execute_command("SADD", f"{prefix}:intset", *range(0, 500 * 3, 3))
        assert all(not isinstance(reply, Exception) for reply in pipe.execute())
        counts = {f"{prefix}:{name}": BIG_AGGREGATE for name in ("list", "hash", "set", "zset")}
        counts[f"{prefix}:intset"] = 500
        if ttl_ms is not None:
            for key in counts:
                assert r.execute_command("PEXPIREAT", key, ttl_ms) == 1
    return counts


def rewritten_aof(kind: str, data: Path) -> tuple[list[list[bytes]], list[list[bytes]]]:
    """(the rewrite's snapshot, everything) as commands: kvred's one file (its snapshot
    cannot be told from its tail, both are returned whole), redis-server's base file
    and base + incr files."""
    if kind == "kvred":
        commands = aof_commands(aof_path(data).read_bytes())
        return commands, commands
    aof_dir = data / "appendonlydir"
    manifest = (aof_dir / "appendonly.aof.manifest").read_text().splitlines()
    entries = [dict(zip(line.split()[::2], line.split()[1::2], strict=True)) for line in manifest if line.strip()]
    (base,) = [e["file"] for e in entries if e["type"] == "b"]
    return aof_commands((aof_dir / base).read_bytes()), aof_commands(redis_aof_content(data))


def check_rebuilt(commands: list[list[bytes]], key: bytes, kind: str, count: int, deadline: int) -> list[str]:
    """`key` (db 0) is rebuilt with its type's own commands, in full chunks of at most 64
    items, plus one PEXPIREAT with its deadline if it has one."""
    mine = [argv for db, argv in commands_by_db(commands) if db == 0 and len(argv) > 1 and argv[1] == key
            and argv[0].upper() != b"MSET"]
    names = {argv[0].upper() for argv in mine}
    rebuild = [argv for argv in mine if argv[0].upper() in REBUILD_COMMANDS[kind]]
    expires = [argv for argv in mine if argv[0].upper() == b"PEXPIREAT"]
    problems = []
    if not names <= REBUILD_COMMANDS[kind] | {b"PEXPIREAT"}:
        problems.append(f"{key!r} ({kind}) rebuilt with {sorted(names)}")
    if sum(items_after_key(argv) for argv in rebuild) != count:
        problems.append(f"{key!r}: {sum(items_after_key(argv) for argv in rebuild)} items rebuilt, expected {count}")
    if len(rebuild) != -(-count // 64):
        problems.append(f"{key!r}: {len(rebuild)} commands for {count} items, expected {-(-count // 64)}")
    want_expires = [[b"PEXPIREAT", key, b"%d" % deadline]] if deadline >= 0 else []
    if [[a.upper() if i == 0 else a for i, a in enumerate(argv)] for argv in expires] != want_expires:
        problems.append(f"{key!r}: TTL records {expires}, expected {want_expires}")
    return problems


@pytest.mark.parametrize("kind", KINDS)
def test_rewrite_with_every_type(launcher: Launcher, kind: str) -> None:
    """Big aggregates of every type (some with TTLs) and the every-type workload, then
    BGREWRITEAOF with writes of every type running during it (SPOP included): the
    snapshot has every type rebuilt with its own commands of at most 64 items plus
    PEXPIREAT; after more writes, kill -9 and a restart give the same data."""
    data = launcher.data_dir()
    server = start_typed(launcher, kind, data)
    far = now_ms() + TYPED_FAR_MS
    big = load_big_aggregates(server, "big", far)
    big.update(load_big_aggregates(server, "bignottl", None))
    hot = load_big_aggregates(server, "hot", far + 1)
    typed_workload(server, "pre", db=0, other_db=2)
    during = 0
    with raw_db_client(server) as r:
        pipe = r.pipeline(transaction=False)
        pipe.execute_command("BGREWRITEAOF")
        for i in range(2000):
            if i:
                pipe = r.pipeline(transaction=False)
            pipe.execute_command("RPUSH", "hot:list", b"during %d" % i)
            pipe.execute_command("LPOP", "hot:list")
            pipe.execute_command("HSET", "hot:hash", b"field %d" % i, b"during")
            pipe.execute_command("HINCRBYFLOAT", "hot:hash", "float", "0.1")
            pipe.execute_command("SPOP", "hot:set", 2)
            pipe.execute_command("SADD", "hot:intset", -i)
            pipe.execute_command("ZINCRBY", "hot:zset", "0.1", b"m%d" % i)
            pipe.execute_command("ZPOPMAX", "hot:zset")
            pipe.execute_command("SETBIT", f"during:bits:{i % 7}", i, 1)
            pipe.execute_command("PFADD", "during:hll", i)
            pipe.execute_command("RPUSH", f"during:list:{i}", "a", "b")
            pipe.execute_command("EXPIRE", f"during:list:{i}", 4000 + i)
            replies = pipe.execute()
            assert not any(isinstance(reply, Exception) for reply in replies), replies
            if not r.execute_command("INFO", "persistence").count(b"aof_rewrite_in_progress:1"):
                break
            during += 1
    assert during, "no write was acknowledged while the rewrite ran: make the aggregates larger"
    wait_for("the rewrite", lambda: (i := info(server))["aof_rewrite_in_progress"] == 0
             and i.get("aof_rewrite_scheduled", 0) == 0 and i["aof_last_bgrewrite_status"] == "ok"
             and i["aof_rewrites"] >= 1, REWRITE_TIMEOUT_S, lambda: str(info(server)))
    snapshot, everything = rewritten_aof(kind, data)
    too_long = [argv[:3] + [b"... %d items" % items_after_key(argv)] for argv in everything
                if items_after_key(argv) > 64]
    assert not too_long, too_long[:5]
    assert not not_absolute_ttls(everything), not_absolute_ttls(everything)[:5]
    live = dump_typed(server)
    problems = []
    for name, count in big.items():
        key = name.encode()
        kind_of, _, deadline = live[0][key]
        problems += check_rebuilt(snapshot, key, kind_of, count, deadline)
    assert not problems, "\n".join(problems)
    if kind == "redis":  # the hot keys too: redis-server's base file is the snapshot alone
        for name, count in hot.items():
            assert not check_rebuilt(snapshot, name.encode(), live[0][name.encode()][0], count, far + 1)
    typed_workload(server, "post", db=0, other_db=4, previous="pre")
    expected = dump_typed(server)
    kill_all(server)
    server = start_typed(launcher, kind, data)
    assert_same_typed(expected, dump_typed(server), f"{kind}: after the rewrite, kill -9 and a restart")
    if kind == "kvred":
        assert not temp_files(data)


# ---------------------------------------------------------------- interop with redis-server, every type


def every_type_history(server: ServerProcess) -> None:
    """Big aggregates and the every-type workload, a rewrite, then more of the workload on
    top of the rewritten keys (and in other databases): the AOF has both a rewrite's
    snapshot and ordinary commands of every type."""
    load_big_aggregates(server, "big", now_ms() + TYPED_FAR_MS)
    typed_workload(server, "a", db=0, other_db=3)
    rewrite_and_wait(server)
    typed_workload(server, "b", db=0, other_db=3, previous="a")
    typed_workload(server, "c", db=7, other_db=0)


def assert_redis_server_keeps_kvred_aof(launcher: Launcher, data: Path, expected: Any,
                                        dump: Callable[[ServerProcess], Any],
                                        assert_same: Callable[[Any, Any, str], None], what: str) -> None:
    """redis-server loads the AOF kvred left in `data` into `expected` (as `dump` reads
    it), and keeps it through its own rewrite and a kill -9."""
    redis_dir = launcher.data_dir("redis")
    shutil.copy(aof_path(data), redis_dir / AOF_NAME)
    options = ("--appendonly", "yes", "--appendfilename", AOF_NAME, "--aof-use-rdb-preamble", "no",
               "--appendfsync", "always")
    real = launcher.redis(redis_dir, *options)
    assert_same(expected, dump(real), f"redis-server loading kvred's AOF\n{real.log_tail()}")
    rewrite_and_wait(real)
    kill_all(real)
    real = launcher.redis(redis_dir, *options)
    assert_same(expected, dump(real), f"redis-server after its own rewrite of kvred's {what}")


def test_redis_server_loads_a_kvred_aof_with_every_type(launcher: Launcher) -> None:
    """redis-server loads kvred's AOF (a rewrite and commands of every type after it) into
    the same data; and keeps it through its own rewrite and a kill -9."""
    data = launcher.data_dir()
    server = launcher.kvred(data)
    every_type_history(server)
    expected = dump_typed(server)
    assert set(expected) == {0, 3, 7}, sorted(expected)
    assert wait_exit_after(server, signal.SIGTERM) == 0
    assert_redis_server_keeps_kvred_aof(launcher, data, expected, dump_typed, assert_same_typed, "data")


def test_kvred_loads_a_redis_server_aof_with_every_type(launcher: Launcher) -> None:
    """kvred loads redis-server's AOF (its rewrite: HMSET, ZADD with %.17g scores, SET of
    HLLs and bitmaps, PEXPIREAT; then what Redis propagates: SREM for SPOP, HSET for
    HINCRBYFLOAT, RPOP/ZPOPMIN for LMPOP/ZMPOP...) into the same data; and keeps it
    through its own rewrite and a kill -9."""
    redis_dir = launcher.data_dir("redis")
    real = launcher.redis(redis_dir, *REDIS_AOF_OPTIONS)
    every_type_history(real)
    expected = dump_typed(real)
    assert set(expected) == {0, 3, 7}, sorted(expected)
    assert wait_exit_after(real, signal.SIGTERM) == 0

    data = launcher.data_dir()
    aof_path(data).write_bytes(redis_aof_content(redis_dir))
    server = launcher.kvred(data)
    assert_same_typed(expected, dump_typed(server), "kvred loading redis-server's AOF")
    rewrite_and_wait(server)
    commands = aof_commands(aof_path(data).read_bytes())
    too_long = [argv[:3] for argv in commands if items_after_key(argv) > 64]
    assert not too_long, too_long[:5]
    kill_all(server)
    server = launcher.kvred(data)
    assert_same_typed(expected, dump_typed(server), "kvred after its own rewrite of redis-server's data")
