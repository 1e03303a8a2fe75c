"""Shared fixtures: real kvred and redis-server processes on free ports.

Every wait is bounded: a server must answer PING within START_TIMEOUT_S, and a
stop sends SIGTERM, waits STOP_TIMEOUT_S, then SIGKILLs the process and every
descendant seen while it ran. No fixed sleeps.

Fixtures:
  kvred            a fresh kvred per test (function scope)
  kvred_module     one kvred shared by a test module
  kvred_factory    start(**flags) -> ServerProcess, for tests that need options
  redis_server     one real redis-server per module: the oracle

Set KVRED_TEST_AGAINST_REDIS=1 to run the kvred fixtures on redis-server
instead; this checks the tests themselves (they must all pass redis vs redis).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

__all__ = [
    "REPO_ROOT",
    "ServerProcess",
    "against_redis",
    "answers_ping",
    "free_port",
    "require_tool",
    "start_kvred",
    "start_redis",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 15.0
READY_POLL_S = 0.02
STOP_TIMEOUT_S = 10.0
LOG_TAIL_BYTES = 4000


def against_redis() -> bool:
    """True when the kvred fixtures are pointed at redis-server (harness self-check)."""
    return os.environ.get("KVRED_TEST_AGAINST_REDIS", "") not in ("", "0")


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def require_tool(name: str) -> str:
    """Path of an executable; skip without it, but fail under CI (env CI set)."""
    path = shutil.which(name)
    if path is None:
        message = f"required tool {name!r} is not installed"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def live_children(pid: int) -> list[psutil.Process]:
    """The live (not zombie) children of `pid` with their names read; one that is reaped
    while it is looked at (the killed worker) is left out instead of raising."""
    found = []
    for child in psutil.Process(pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                child.name()  # cached by psutil from here on
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def answers_ping(port: int, timeout: float) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            data = b""
            while len(data) < 7:
                chunk = s.recv(64)
                if not chunk:
                    return False
                data += chunk
            return data.startswith(b"+PONG\r\n")
    except OSError:
        return False


class ServerProcess:
    """A server process started in `workdir`, logging to `log_path`.

    `descendants` is every child process seen (at readiness and at stop), so
    that nothing is left behind even if the main process dies first.
    """

    def __init__(self, name: str, argv: list[str], port: int, workdir: Path,
                 env: dict[str, str] | None = None, listeners: int = 0):
        self.name = name
        # kvred: ready only once this many workers listen. The first worker answers PING
        # while the next one still starts; connections made then all land on the first.
        self.listeners = listeners
        self.argv = argv
        self.port = port
        self.dir = workdir
        self.log_path = workdir / f"{name}.log"
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.descendants: dict[int, psutil.Process] = {}
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = START_TIMEOUT_S) -> ServerProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=self.dir, env=self.env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def log_tail(self) -> str:
        try:
            data = self.log_path.read_bytes()[-LOG_TAIL_BYTES:]
        except OSError as e:
            return f"<no log: {e}>"
        return data.decode(errors="replace")

    def wait_ready(self, timeout: float) -> None:
        """Poll every READY_POLL_S until PING gets +PONG on a raw socket."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                pytest.fail(f"{self.name} exited with {code} before answering PING; "
                            f"argv={self.argv}\n--- log tail ---\n{self.log_tail()}")
            if self.is_ready():
                self.capture_tree()
                return
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name} did not answer PING on port {self.port} "
                            f"within {timeout} s\n--- log tail ---\n{self.log_tail()}")
            time.sleep(READY_POLL_S)

    def is_ready(self) -> bool:
        """The readiness probe wait_ready polls; subclasses may accept other replies."""
        return answers_ping(self.port, timeout=1.0) and self.all_listening()

    def all_listening(self) -> bool:
        if not self.listeners:
            return True
        listening = 0
        for p in self.capture_tree():
            try:
                if any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == self.port
                       for c in p.net_connections(kind="tcp")):
                    listening += 1
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return listening >= self.listeners

    def capture_tree(self) -> list[psutil.Process]:
        """Record (and return) the current descendants of the main process."""
        try:
            children: list[psutil.Process] = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        for child in children:
            self.descendants.setdefault(child.pid, child)
        return children

    def signal_and_wait(self, sig: int = signal.SIGTERM,
                        timeout: float = STOP_TIMEOUT_S) -> int | None:
        """Send `sig` to the main process by PID; return its exit code, or None
        if it is still running after `timeout`. Kills nothing."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.capture_tree()
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
        self.returncode = self.proc.returncode
        return self.returncode

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM by PID, wait up to `timeout`, then SIGKILL; reap descendants.

        Returns the exit code of the main process (negative for a signal).
        Idempotent.
        """
        if self.proc is None:
            return None
        if self.signal_and_wait(signal.SIGTERM, timeout) is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout)
        self.returncode = self.proc.returncode
        # The main process has exited; kill whatever it left behind. psutil's
        # Process objects check the create time, so a recycled PID is safe.
        leftovers = self.leftovers()
        for p in leftovers:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(leftovers, timeout=timeout)
        return self.returncode

    def leftovers(self) -> list[psutil.Process]:
        """Descendants seen earlier that are still running (not zombies)."""
        alive = []
        for p in self.descendants.values():
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        return alive


def _kvred_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def start_redis(workdir: Path, name: str = "redis-server") -> ServerProcess:
    """Start a real redis-server with no persistence in `workdir`."""
    exe = require_tool("redis-server")
    port = free_port()
    # DEBUG (SET-ACTIVE-EXPIRE, SLEEP) is on in both servers the tests start: TTL tests use it.
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--enable-debug-command", "yes", "--dir", str(workdir)]
    return ServerProcess(name, argv, port, workdir).start()


def start_kvred(workdir: Path, **flags: object) -> ServerProcess:
    """Start kvred in `workdir`; flags become --flag-name value (True: bare flag)."""
    if against_redis():
        return start_redis(workdir, name="kvred-as-redis")
    port = free_port()
    options: dict[str, object] = {"port": port, "bind": "127.0.0.1", "workers": 2,
                                  "dir": str(workdir), "loglevel": "warning", "enable_debug_command": "yes"}
    options.update(flags)
    argv = [sys.executable, "-m", "kvred"]
    for key, value in options.items():
        if value is None or value is False:
            continue
        argv.append("--" + key.replace("_", "-"))
        if value is not True:
            argv.append(str(value))
    return ServerProcess("kvred", argv, int(options["port"]), workdir,  # type: ignore[call-overload]
                         env=_kvred_env(), listeners=int(options["workers"])).start()  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def kvred_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(**flags: object) -> ServerProcess:
        server = start_kvred(tmp_path_factory.mktemp("kvred"), **flags)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def kvred(tmp_path: Path) -> Iterator[ServerProcess]:
    server = start_kvred(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def kvred_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_kvred(tmp_path_factory.mktemp("kvred"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    require_tool("redis-cli")
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()
