"""AOF rewrite (compaction) without stopping service: BGREWRITEAOF.

1. The writer forks (from BGREWRITEAOF itself, or between passes). The child
   owns a copy-on-write snapshot and writes the keyspace to
   `temp-rewriteaof-<pid>.aof`, fsyncs it, exits 0.
2. The parent keeps serving; every AOF write it makes meanwhile is also kept
   in `AppendOnlyFile.rewrite_buf`. What was logged before the fork and not yet
   written (the pass so far, or bytes a failed write left pending) is in the
   snapshot, so it goes to the old file only (`start_rewrite_buffer`).
3. When the child is done, the parent appends that buffer to the temp file,
   fsyncs it, renames it over the AOF (atomic), fsyncs the directory and
   switches its descriptor to the new file, all within one loop pass so no
   reply is released in between.

A crash before the rename leaves the old AOF, complete; after it, the new one,
complete. A stale temp file is removed at the next start.

A failed fork (process limit, ENOMEM, a container's pids limit) or a failed
child is logged and reported, never fatal. After a failure the automatic
rewrite waits before it tries again: 1 s, then twice as long after each
further failure in a row, up to an hour (Redis 7 retries at once three times,
then waits 1 minute doubling to an hour; at kvred's cron rate those three
tries would take 0.3 s). BGREWRITEAOF always tries at once.
"""

from __future__ import annotations

import glob
import logging
import os
import signal
import time

from .aof import AppendOnlyFile
from .config import describe_exit
from .keyspace import Databases
from .resp import encode_command
from .scripting import runner as scripting_runner
from .valuetypes import STRING_TYPES, value_type

__all__ = ["AofRewriter", "remove_stale_temp_files", "write_snapshot", "fsync_directory"]

log = logging.getLogger("kvred.rewrite")

TEMP_PATTERN = "temp-rewriteaof-*.aof"
WRITE_BUFFER_BYTES = 1 << 20
KEYS_PER_MSET = 64  # the snapshot is written as MSETs: fewer, larger commands load faster
AUTO_RETRY_FIRST_DELAY_S = 1.0  # after a failed rewrite, before the next automatic one
AUTO_RETRY_MAX_DELAY_S = 3600.0


def remove_stale_temp_files(directory: str) -> None:
    for path in glob.glob(os.path.join(directory, TEMP_PATTERN)):
        log.warning("removing %s left by an interrupted AOF rewrite", path)
        os.unlink(path)


def fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_snapshot(databases: Databases, path: str) -> None:
    """In the child: the function libraries as FUNCTION LOAD, every database as SELECT,
    its keys (strings many per MSET, other types with their own commands,
    kvred/valuetypes.py), and their TTLs as PEXPIREAT,
    fsynced. Keys whose time has passed are written too, with their past deadline, as
    Redis 7 does: the parent may still change such a key after the fork (its clock is
    not the child's), and the tail's change must find the key it changes."""
    with open(path, "wb", buffering=WRITE_BUFFER_BYTES) as f:
        write = f.write
        runner = scripting_runner.runner_of(databases)
        if runner is not None:  # the function libraries first, as Redis's rewrite writes them
            for library in runner.functions.libraries.values():
                write(encode_command([b"FUNCTION", b"LOAD", library.code]))
        for db in databases.dbs:
            if not db.data:
                continue
            write(encode_command([b"SELECT", b"%d" % db.id]))
            batch: list[bytes] = [b"MSET"]
            for key, value in db.data.items():
                if type(value) not in STRING_TYPES:
                    for cmd in value_type(value).rewrite(key, value):  # type: ignore[union-attr]
                        write(encode_command(cmd))
                    continue
                batch.append(key)
                batch.append(value)
                if len(batch) > 2 * KEYS_PER_MSET:
                    write(encode_command(batch))
                    batch = [b"MSET"]
            if len(batch) > 1:
                write(encode_command(batch))
            for key, when in db.expires.items():
                write(encode_command([b"PEXPIREAT", key, b"%d" % when]))
        f.flush()
        os.fsync(f.fileno())


class AofRewriter:
    def __init__(self, aof: AppendOnlyFile) -> None:
        self.aof = aof
        self.child_pid = 0
        self.temp_path = ""
        self.started_at = 0.0
        self.rewrites = 0  # completed rewrites (INFO aof_rewrites)
        self.last_status = "ok"  # INFO aof_last_bgrewrite_status
        self.consecutive_failures = 0
        self.total_forks = 0  # INFO total_forks
        self.latest_fork_usec = 0  # how long the last fork() stalled the writer
        self.last_rewrite_time_sec = -1  # INFO aof_last_rewrite_time_sec
        self._next_auto_at = 0.0  # monotonic time before which automatic rewrites wait

    @property
    def in_progress(self) -> bool:
        return self.child_pid != 0

    def start(self, databases: Databases) -> bool:
        """Fork the snapshot writer; False if it could not start (logged)."""
        if self.child_pid:
            return False
        directory = os.path.dirname(os.path.abspath(self.aof.path))
        self.aof.start_rewrite_buffer()
        forked_at = time.perf_counter_ns()
        try:
            pid = os.fork()
        except OSError as exc:
            self.aof.stop_rewrite_buffer()
            log.warning("Can't rewrite append only file in background: fork: %s", exc.strerror)
            self._count_failure()
            return False
        if pid == 0:  # child: no logging (a lock may be held by a thread that did not survive fork)
            status = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                write_snapshot(databases, os.path.join(directory, f"temp-rewriteaof-{os.getpid()}.aof"))
                status = 0
            finally:
                os._exit(status)
        self.latest_fork_usec = (time.perf_counter_ns() - forked_at) // 1000
        self.total_forks += 1
        self.child_pid = pid
        self.temp_path = os.path.join(directory, f"temp-rewriteaof-{pid}.aof")
        self.started_at = time.monotonic()
        log.info("Background append only file rewriting started by pid %d", pid)
        return True

    def current_rewrite_time_sec(self) -> int:
        return int(time.monotonic() - self.started_at) if self.child_pid else -1

    def auto_allowed(self, now: float) -> bool:
        """May an automatic rewrite start now (not too soon after failed ones)?"""
        return now >= self._next_auto_at

    def _count_failure(self) -> None:
        self.last_status = "err"
        self.consecutive_failures += 1
        delay = min(AUTO_RETRY_FIRST_DELAY_S * 2 ** min(self.consecutive_failures - 1, 32), AUTO_RETRY_MAX_DELAY_S)
        self._next_auto_at = time.monotonic() + delay
        log.warning(
            "background AOF rewrite failed (%d in a row): the next automatic one waits %.0f s",
            self.consecutive_failures,
            delay,
        )

    def poll(self) -> None:
        """Finish the rewrite if the child has exited (called from the writer's cron)."""
        if not self.child_pid:
            return
        try:
            pid, status = os.waitpid(self.child_pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.child_pid, 1 << 8
        if pid == 0:
            return
        self.child_pid = 0
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            self._fail(f"the rewrite child {describe_exit(code)}")
            return
        log.info("Background AOF rewrite terminated with success")  # Redis's steps, at notice as in Redis
        try:
            self._install()
        except OSError as exc:
            self._fail(f"could not install the rewritten AOF: {exc}")
            return
        self.rewrites += 1
        self.last_status = "ok"
        self.consecutive_failures = 0
        self.last_rewrite_time_sec = int(time.monotonic() - self.started_at)
        self._next_auto_at = 0.0
        log.info(
            "Background AOF rewrite finished successfully in %.2f s: %d bytes",
            time.monotonic() - self.started_at,
            self.aof.current_size,
        )

    def _install(self) -> None:
        aof = self.aof
        if not aof.sync_all():  # what is pending goes to the old file and the tail first
            raise OSError(f"the AOF cannot be written: {aof.last_write_error}")
        tail = b"".join(aof.rewrite_buf or [])
        with open(self.temp_path, "ab", buffering=0) as f:
            view = memoryview(tail)
            written = 0
            while written < len(tail):
                written += f.write(view[written:]) or 0
            os.fsync(f.fileno())
        log.info("Residual parent diff successfully flushed to the rewritten AOF (%.2f MB)", len(tail) / (1024 * 1024))
        os.rename(self.temp_path, aof.path)
        fsync_directory(os.path.dirname(os.path.abspath(aof.path)))
        log.info("Successfully renamed the temporary AOF file %s into %s",
                 os.path.basename(self.temp_path), os.path.basename(aof.path))
        aof.stop_rewrite_buffer()
        aof.reopen()

    def _fail(self, reason: str) -> None:
        log.warning("background AOF rewrite failed: %s", reason)
        self._count_failure()
        self.aof.stop_rewrite_buffer()
        if self.temp_path and os.path.exists(self.temp_path):
            os.unlink(self.temp_path)

    def abort(self) -> None:
        """Stop a running rewrite (shutdown): kill the child, drop its file."""
        if not self.child_pid:
            return
        try:
            os.kill(self.child_pid, signal.SIGKILL)
            os.waitpid(self.child_pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        self.child_pid = 0
        self._fail("aborted by shutdown")
