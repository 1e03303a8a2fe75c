"""Shared helpers of the benchmark scripts: servers on free loopback ports,
readiness checks, RESP encoding, process memory, a description of the machine.

Every wait is bounded. A server is started in its own session (so a Ctrl-C on
the terminal reaches the benchmark, not the server) and stopped by its PID:
SIGTERM, wait up to 10 s, then SIGKILL, then any descendant still running.

Only standard library + psutil (a kvred dependency).
"""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
HOST = "127.0.0.1"
STOP_TIMEOUT_S = 10.0
READY_POLL_S = 0.01


# --------------------------------------------------------------------- RESP


def encode_command(*args: bytes | str | int) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = b"%d" % arg
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


def _recv_line(sock: socket.socket, buf: bytearray) -> bytes:
    while b"\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    end = buf.index(b"\r\n")
    line = bytes(buf[:end])
    del buf[: end + 2]
    return line


def simple_command(port: int, *args: bytes | str | int, timeout: float = 5.0) -> bytes:
    """Send one command, return the first line of the reply (or the bulk body)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(encode_command(*args))
        buf = bytearray()
        line = _recv_line(s, buf)
        if line.startswith(b"$") and line != b"$-1":
            size = int(line[1:])
            while len(buf) < size + 2:
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("connection closed")
                buf += chunk
            return bytes(buf[:size])
        return line


def answers_ping(port: int, timeout: float = 1.0) -> bool:
    """True when PING on a raw socket gets +PONG (Redis answers -LOADING while loading)."""
    try:
        return simple_command(port, "PING", timeout=timeout) == b"+PONG"
    except OSError:
        return False


def dbsize(port: int) -> int:
    reply = simple_command(port, "DBSIZE")
    if not reply.startswith(b":"):
        raise RuntimeError(f"DBSIZE answered {reply!r}")
    return int(reply[1:])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


# ------------------------------------------------------------------ servers


class ServerError(RuntimeError):
    pass


class Server:
    """One server process (kvred's supervisor, or redis-server) in `workdir`."""

    def __init__(self, label: str, kind: str, argv: list[str], port: int, workdir: Path,
                 env: dict[str, str] | None = None, workers: int | None = None,
                 fsync: str | None = None) -> None:
        self.label = label
        self.kind = kind  # "kvred", "redis" or "other"
        self.argv = argv
        self.port = port
        self.dir = workdir
        self.env = env
        self.workers = workers
        self.fsync = fsync
        self.log_path = workdir / f"{kind}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.seen: dict[int, psutil.Process] = {}
        self.started_at = 0.0

    @property
    def command(self) -> str:
        prefix = ""
        if self.env is not None and self.env.get("PYTHONPATH"):
            prefix = f"PYTHONPATH={shlex.quote(self.env['PYTHONPATH'])} "
        return f"(cd {shlex.quote(str(self.dir))} && {prefix}{shlex.join(self.argv)})"

    def spawn(self) -> None:
        with open(self.log_path, "ab") as log:
            self.started_at = time.perf_counter()
            self.proc = subprocess.Popen(self.argv, cwd=self.dir, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, timeout: float = 60.0) -> Server:
        self.spawn()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float, keys: int | None = None) -> float:
        """Wait until PING answers +PONG (and DBSIZE == keys if given); return
        the seconds since spawn()."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        pinged = False
        while True:
            code = self.proc.poll()
            if code is not None:
                raise ServerError(f"{self.label} exited with {code} before it was ready\n"
                                  f"command: {self.command}\n--- log tail ---\n{self.log_tail()}")
            if not pinged:
                pinged = answers_ping(self.port, timeout=1.0)
            if pinged:
                if keys is None:
                    break
                try:
                    if dbsize(self.port) == keys:
                        break
                except (OSError, RuntimeError):
                    pass
            if time.monotonic() > deadline:
                raise ServerError(f"{self.label} not ready on port {self.port} within {timeout} s\n"
                                  f"--- log tail ---\n{self.log_tail()}")
            time.sleep(READY_POLL_S)
        elapsed = time.perf_counter() - self.started_at
        self.processes()
        return elapsed

    def processes(self) -> list[psutil.Process]:
        """The main process and all its descendants (remembered for stop())."""
        if not self.alive():
            return []
        assert self.proc is not None
        try:
            main = psutil.Process(self.proc.pid)
            procs = [main, *main.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        for p in procs[1:]:
            self.seen.setdefault(p.pid, p)
        return procs

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_bytes()[-size:].decode(errors="replace")
        except OSError as e:
            return f"<no log: {e}>"

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM by PID, wait, SIGKILL after `timeout`; then reap leftovers."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.processes()
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        leftovers = []
        for p in self.seen.values():
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    p.kill()
                    leftovers.append(p)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(leftovers, timeout=timeout)
        return self.proc.returncode


def kvred_env(tree: Path = REPO_ROOT) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tree), env.get("PYTHONPATH", "")) if p)
    return env


def kvred_server(workdir: Path, workers: int, fsync: str, extra: list[str] | None = None,
                 python: str = sys.executable, tree: Path | None = None) -> Server:
    """kvred from this checkout, or from `tree` (another checkout: a before/after run)."""
    port = free_port()
    argv = [python, "-m", "kvred", "--port", str(port), "--bind", HOST, "--workers", str(workers),
            "--dir", str(workdir), "--fsync", fsync, "--loglevel", "warning", *(extra or [])]
    label = f"kvred w={workers}" if tree is None else f"kvred w={workers} @{git_commit(tree)}"
    return Server(label, "kvred", argv, port, workdir, env=kvred_env(tree or REPO_ROOT), workers=workers, fsync=fsync)


def redis_server(workdir: Path, fsync: str, binary: str = "redis-server", appendonly: bool = True,
                 extra: list[str] | None = None) -> Server:
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--dir", str(workdir),
            "--appendonly", "yes" if appendonly else "no", "--appendfsync", fsync,
            "--aof-use-rdb-preamble", "no", *(extra or [])]
    return Server("redis-server", "redis", argv, port, workdir, fsync=fsync)


def other_server(workdir: Path, binary: str) -> Server:
    port = free_port()
    name = Path(binary).name
    if name in ("redis-server", "kvred") or name.startswith("kvred "):
        name += " (--server-bin)"  # keep the labels of the servers compared apart
    return Server(name, "other", [binary, "--port", str(port)], port, workdir)


def which_or_die(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        sys.exit(f"error: {name!r} not found on PATH")
    return path


# ------------------------------------------------------------ memory / info


def tree_memory(server: Server) -> dict[str, Any]:
    """RSS (and PSS/USS, which do not double-count pages shared after fork)
    summed over the server's main process and all its descendants."""
    procs = server.processes()
    rows = []
    total = {"rss": 0, "pss": 0, "uss": 0}
    for p in procs:
        try:
            info = p.memory_full_info()
            name = " ".join(p.cmdline()[:3]) or p.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        row: dict[str, Any] = {"pid": p.pid, "name": name, "rss": info.rss,
               "pss": getattr(info, "pss", 0), "uss": getattr(info, "uss", 0)}
        rows.append(row)
        for key in total:
            total[key] += int(row[key])
    return {"processes": len(rows), **{f"{k}_bytes": v for k, v in total.items()}, "per_process": rows}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _tool_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unavailable"


def _git(*args: str, cwd: Path = REPO_ROOT) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def git_commit(tree: Path) -> str:
    """The short commit of another checkout (its path if it is not one)."""
    return _git("rev-parse", "--short", "HEAD", cwd=tree) or str(tree)


def _fstype(path: Path) -> str:
    best = ""
    fstype = "unknown"
    target = str(path.resolve())
    for part in psutil.disk_partitions(all=True):
        mount = part.mountpoint
        if (target == mount or target.startswith(mount.rstrip("/") + "/")) and len(mount) > len(best):
            best, fstype = mount, part.fstype
    return f"{fstype} on {best or '?'}"


def machine_info(redis_bin: str = "redis-server", bench_bin: str = "redis-benchmark",
                 data_dir: Path | None = None) -> dict[str, object]:
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--", "kvred"))
    info: dict[str, object] = {
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": f"{platform.system()} {platform.release()} {platform.version()}",
        "os": _os_release(),
        "python": f"{platform.python_implementation()} {sys.version.split()[0]} ({sys.executable})",
        "redis_server": _tool_version([redis_bin, "--version"]),
        "redis_benchmark": _tool_version([bench_bin, "--version"]),
        "kvred_commit": f"{commit}{' (kvred/ modified)' if dirty else ''}" if commit else "unknown",
        "uvloop": _module_version("uvloop"),
        "load_average": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    if data_dir is not None:
        info["data_dir_filesystem"] = _fstype(data_dir)
    return info


def _module_version(name: str) -> str:
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:
        return "not installed"


def _os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


def machine_markdown(info: dict[str, object]) -> str:
    labels = {
        "cpu_model": "CPU", "logical_cpus": "logical CPUs", "physical_cores": "physical cores",
        "memory_gib": "memory (GiB)", "kernel": "kernel", "os": "OS", "python": "Python",
        "redis_server": "redis-server", "redis_benchmark": "redis-benchmark", "kvred_commit": "kvred commit",
        "uvloop": "uvloop", "load_average": "load average at start", "data_dir_filesystem": "data dir filesystem",
    }
    lines = ["| | |", "|---|---|"]
    for key, value in info.items():
        lines.append(f"| {labels.get(key, key)} | {value} |")
    return "\n".join(lines)


def median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    if n == 0:
        return float("nan")
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")
