"""The supervisor: starts the writer, then N workers, and keeps them running.

Process model (gunicorn's arbiter, adapted):
- The writer starts first; it loads the AOF and says "R" on its control
  socket. Only then are workers started, so no client sees a half-loaded
  keyspace.
- For every worker (and every replacement) the supervisor makes a fresh Unix
  socketpair, passes one end to the writer over the control socket
  (SCM_RIGHTS) and forks the worker with the other. No filesystem path is
  involved, so no other local user can reach the writer.
- Signal handlers only record the signal; the main loop handles it.
- A worker that dies is replaced, with exponential backoff when deaths come
  in a burst. A worker that exits with WORKER_BOOT_ERROR (it could not
  listen) stops the whole server: retrying would only loop.
- The writer is not restarted: if it dies, the keyspace is gone with it, so
  the supervisor stops every worker and exits with status 1 and a clear log
  line. Restarting is left to the service manager (systemd, Docker), and the
  next start replays the AOF.
- SIGTERM/SIGINT: workers stop accepting and finish what is in flight, the
  writer is stopped last (it writes and fsyncs the AOF), exit 0, all within
  GRACEFUL_TIMEOUT_S; then anything left is killed. A second SIGINT/SIGTERM
  skips the wait for workers.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import mmap
import os
import resource
import select
import signal
import socket
import sys
import time
from collections.abc import Callable

from .acl import AclError
from .config import VERBOSE, Config, check_startup, describe_exit, plural, setup_logging
from .worker import WORKER_BOOT_ERROR, Worker
from .writer import Writer

__all__ = ["Supervisor", "run"]

log = logging.getLogger("kvred.supervisor")

WRITER_BOOT_TIMEOUT_S = 3600.0  # a very large AOF may take long to load
WORKER_BOOT_TIMEOUT_S = 10.0
RESPAWN_BACKOFF_MIN_S = 0.05
RESPAWN_BACKOFF_MAX_S = 5.0
LINK_BUFFER_BYTES = 4 * 1024 * 1024
PR_SET_NAME = 15  # prctl option (linux/prctl.h)
RESERVED_FDS = 32  # descriptors a worker needs besides its clients (listeners, link, logs), as Redis  # socket buffer of each worker<->writer link


def set_process_name(name: str) -> None:
    """Name this process for `ps -e`, `top` and `pgrep kvred-writer` (Linux comm, 15 bytes)."""
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _fork(target: Callable[[], int], name: str) -> int:
    """Fork a child that runs `target` and exits with its status, never returning."""
    pid = os.fork()
    if pid:
        return pid
    set_process_name(name)
    status = 1
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    try:
        status = target()
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        logging.getLogger("kvred").exception("process failed")
    finally:
        logging.shutdown()
        os._exit(status)


class Supervisor:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.writer_pid = 0
        self.writer_control: socket.socket | None = None
        self.workers: dict[int, int] = {}  # pid -> slot
        self.generations = [0] * config.workers  # spawns per slot
        self.respawn_at: dict[int, float] = {}  # slot -> when to start its replacement
        self.backoff = [RESPAWN_BACKOFF_MIN_S] * config.workers
        self.signals: list[int] = []
        self.stopping = False
        self.exit_code = 0
        self._wakeup_r, self._wakeup_w = os.pipe()
        # server-wide client count: one int64 per worker slot, shared memory made before fork
        self.client_counts = mmap.mmap(-1, 8 * max(config.workers, 1))

    # ---------------------------------------------------------------- main loop

    def run(self) -> int:
        check_startup(self.config)  # a bad --dir is exit 2 here, not a writer that dies after fork
        setup_logging(self.config.loglevel, "S")
        set_process_name("kvred-super")
        self._check_port_free()
        self._raise_open_files_limit()
        for fd in (self._wakeup_r, self._wakeup_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self._wakeup_w)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(signum, self._record_signal)
        if self.config.config_file:
            # Redis logs this at its warning level too: it shows at every loglevel
            log.warning("Configuration loaded from %s", self.config.config_file)
        log.info(
            "kvred starting: port %d, %s, fsync %s, dir %s",
            self.config.port,
            plural(self.config.workers, "worker"),
            self.config.fsync,
            self.config.dir,
        )
        try:
            if self._start_writer() and self._start_workers():
                log.info("ready to accept connections on %s port %d", " ".join(self.config.bind), self.config.port)
                self._loop()
        finally:
            self._stop_all()
        return self.exit_code

    def _close_wakeup(self) -> None:
        os.close(self._wakeup_r)
        os.close(self._wakeup_w)

    def _record_signal(self, signum: int, frame: object) -> None:
        self.signals.append(signum)

    def _loop(self) -> None:
        while not self.stopping:
            timeout = 1.0
            if self.respawn_at:
                timeout = max(0.0, min(self.respawn_at.values()) - time.monotonic())
            assert self.writer_control is not None
            try:
                readable, _, _ = select.select([self._wakeup_r, self.writer_control.fileno()], [], [], timeout)
            except InterruptedError:
                readable = []
            if self.writer_control.fileno() in readable:
                self._on_writer_message()
            self._drain_wakeup()
            while self.signals:
                self._handle_signal(self.signals.pop(0))
            self._reap()
            self._respawn_due()

    def _on_writer_message(self) -> None:
        assert self.writer_control is not None
        try:
            message = self.writer_control.recv(64)
        except OSError:
            message = b""
        if b"S" in message:
            log.info("SHUTDOWN requested by a client: shutting down")
            self.stopping = True
        elif not message:
            self._reap()  # the writer is gone; _reap() reports it

    def _drain_wakeup(self) -> None:
        try:
            while os.read(self._wakeup_r, 512):
                pass
        except BlockingIOError:
            pass

    def _handle_signal(self, signum: int) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            log.info("received %s: shutting down", signal.Signals(signum).name)
            self.stopping = True

    # ---------------------------------------------------------------- children

    def _check_port_free(self) -> None:
        """Workers bind with SO_REUSEPORT, which would share the port with another
        kvred; a plain bind first makes a busy port an error, as in Redis."""
        for host in self.config.bind:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            probe = socket.socket(family, socket.SOCK_STREAM)
            # SO_REUSEADDR: connections of a previous run lingering in TIME_WAIT/FIN_WAIT must
            # not count as "in use"; a live listener still makes the bind fail.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, self.config.port))
            except OSError as exc:
                log.error("cannot listen on %s:%d: %s", host, self.config.port, exc.strerror)
                sys.exit(1)
            finally:
                probe.close()

    def _raise_open_files_limit(self) -> None:
        """Raise the soft RLIMIT_NOFILE toward the hard one, and say what maxclients can be.

        Every worker has its own descriptor table, but SO_REUSEPORT does not balance
        perfectly, so each worker must be able to hold all clients."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = self.config.maxclients + RESERVED_FDS
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if soft != resource.RLIM_INFINITY and soft < target:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError) as exc:
                log.warning("could not raise the open files limit from %d to %d: %s", soft, target, exc)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            possible = max(1, soft - RESERVED_FDS)
            log.warning(
                "maxclients %d needs %d open files but the limit is %d: maxclients is now %d",
                self.config.maxclients,
                wanted,
                soft,
                possible,
            )
            self.config.maxclients = possible

    def _start_writer(self) -> bool:
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            writer = Writer(self.config, child_end)
        except AclError as e:  # --aclfile missing or wrong: Redis does not start either
            log.error("%s", e)
            parent_end.close()
            child_end.close()
            self.exit_code = 1
            return False

        def child() -> int:
            parent_end.close()
            self._close_wakeup()
            return writer.run()

        self.writer_pid = _fork(child, "kvred-writer")
        child_end.close()
        self.writer_control = parent_end
        parent_end.settimeout(WRITER_BOOT_TIMEOUT_S)
        try:
            ready = parent_end.recv(1)
        except (TimeoutError, OSError):
            ready = b""
        if ready != b"R":
            log.error("the writer failed to start (see its log lines above)")
            self.exit_code = 1
            return False
        parent_end.settimeout(None)
        if log.isEnabledFor(VERBOSE):
            log.log(VERBOSE, "writer started: pid %d, AOF loaded", self.writer_pid)
        return True

    def _start_workers(self) -> bool:
        for slot in range(self.config.workers):
            if not self._spawn_worker(slot, boot=True):
                return False
        return True

    def _spawn_worker(self, slot: int, boot: bool = False) -> bool:
        writer_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for end in (writer_end, worker_end):
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, LINK_BUFFER_BYTES)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, LINK_BUFFER_BYTES)
        assert self.writer_control is not None
        try:
            socket.send_fds(self.writer_control, [b"L%d" % slot], [writer_end.fileno()])
        except OSError as exc:
            log.error("cannot hand a link to the writer: %s", exc)
            self.exit_code = 1
            self.stopping = True
            return False
        finally:
            writer_end.close()
        ready_r, ready_w = os.pipe()
        generation = self.generations[slot]
        self.generations[slot] += 1
        control = self.writer_control
        self.client_counts[slot * 8 : slot * 8 + 8] = bytes(8)  # a new worker starts with no clients
        worker = Worker(self.config, slot, generation, worker_end, ready_w, self.client_counts)

        def child() -> int:
            control.close()
            os.close(ready_r)
            self._close_wakeup()
            return worker.run()

        pid = _fork(child, f"kvred-worker{slot}")
        worker_end.close()
        os.close(ready_w)
        self.workers[pid] = slot
        ok = self._wait_ready(ready_r, pid)
        os.close(ready_r)
        if ok and log.isEnabledFor(VERBOSE):
            log.log(VERBOSE, "worker %d (slot %d) started, listening on port %d", pid, slot, self.config.port)
        if not ok and boot:
            return False
        return True

    def _wait_ready(self, ready_r: int, pid: int) -> bool:
        deadline = time.monotonic() + WORKER_BOOT_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                readable, _, _ = select.select([ready_r], [], [], 0.1)
            except InterruptedError:
                continue
            if readable:
                if os.read(ready_r, 1) == b"R":
                    return True
                break  # EOF: the worker exited before listening
        log.error("worker %d did not start listening", pid)
        self.exit_code = 1
        self.stopping = True
        return False

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            if pid == self.writer_pid:
                self.writer_pid = 0
                if not self.stopping:
                    log.error("the writer exited unexpectedly (pid %d %s): stopping the server", pid, describe_exit(code))
                    self.exit_code = 1
                    self.stopping = True
                elif log.isEnabledFor(VERBOSE):
                    log.log(VERBOSE, "the writer (pid %d) %s", pid, describe_exit(code))
                continue
            slot = self.workers.pop(pid, None)
            if slot is None:
                continue
            if self.stopping:
                if log.isEnabledFor(VERBOSE):
                    log.log(VERBOSE, "worker %d (slot %d) %s", pid, slot, describe_exit(code))
                continue
            if code == WORKER_BOOT_ERROR:
                log.error("worker %d could not start serving: stopping the server", pid)
                self.exit_code = 1
                self.stopping = True
                continue
            delay = self.backoff[slot]
            self.backoff[slot] = min(delay * 2, RESPAWN_BACKOFF_MAX_S)
            log.warning("worker %d (slot %d) %s: replacing it in %.2f s", pid, slot, describe_exit(code), delay)
            self.respawn_at[slot] = time.monotonic() + delay

    def _respawn_due(self) -> None:
        now = time.monotonic()
        for slot, when in list(self.respawn_at.items()):
            if when <= now and not self.stopping:
                del self.respawn_at[slot]
                self._spawn_worker(slot)
        # a worker that stayed up for a while resets its slot's backoff
        for slot in range(self.config.workers):
            if slot not in self.respawn_at and slot in self.workers.values():
                self.backoff[slot] = max(RESPAWN_BACKOFF_MIN_S, self.backoff[slot] * 0.9)

    # ---------------------------------------------------------------- stop

    def _stop_all(self) -> None:
        """Workers first (they finish what is in flight), the writer last."""
        deadline = time.monotonic() + self.config.graceful_timeout
        self._signal_all(list(self.workers), signal.SIGTERM)
        self._wait_children(lambda: bool(self.workers), deadline, hurry_on_signal=True)
        self._signal_all(list(self.workers), signal.SIGKILL)
        if self.writer_pid:
            self._signal_all([self.writer_pid], signal.SIGTERM)
            self._wait_children(lambda: bool(self.writer_pid), deadline + 2.0, hurry_on_signal=False)
            if self.writer_pid:
                log.error("the writer did not stop in time: killing it")
                self._signal_all([self.writer_pid], signal.SIGKILL)
                self.exit_code = self.exit_code or 1
        self._wait_children(lambda: bool(self.workers or self.writer_pid), time.monotonic() + 2.0, False)
        if self.exit_code == 0:
            log.info("kvred is now ready to exit, bye bye...")

    def _signal_all(self, pids: list[int], signum: int) -> None:
        for pid in pids:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def _wait_children(self, pending: Callable[[], bool], deadline: float, hurry_on_signal: bool) -> None:
        # self.signals still holds any signal that came after the one that began the stop
        while pending() and time.monotonic() < deadline:
            self._reap()
            if not pending():
                break
            try:
                select.select([self._wakeup_r], [], [], 0.05)
            except InterruptedError:
                pass
            self._drain_wakeup()
            if hurry_on_signal and any(s in (signal.SIGINT, signal.SIGTERM) for s in self.signals):
                log.warning("second signal: not waiting for in-flight commands")
                return
            self.signals.clear()


def run(config: Config) -> int:
    try:
        return Supervisor(config).run()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return 1
        raise
