"""AOF rewrite (compaction) without stopping service: BGREWRITEAOF.

1. Between two loop passes (the AOF buffer is empty, so the keyspace equals
   the file), the writer forks. The child owns a copy-on-write snapshot and
   writes one SET per key to `temp-rewriteaof-<pid>.aof`, fsyncs it, exits 0.
2. The parent keeps serving; every AOF write it makes meanwhile is also kept
   in `AppendOnlyFile.rewrite_buf`.
3. When the child is done, the parent appends that buffer to the temp file,
   fsyncs it, renames it over the AOF (atomic), fsyncs the directory and
   switches its descriptor to the new file, all within one loop pass so no
   reply is released in between.

A crash before the rename leaves the old AOF, complete; after it, the new one,
complete. A stale temp file is removed at the next start.
"""

from __future__ import annotations

import glob
import logging
import os
import signal
import time
from typing import Any

from .aof import AppendOnlyFile
from .resp import encode_command

__all__ = ["AofRewriter", "remove_stale_temp_files"]

log = logging.getLogger("kvred.rewrite")

TEMP_PATTERN = "temp-rewriteaof-*.aof"
WRITE_BUFFER_BYTES = 1 << 20
KEYS_PER_MSET = 64  # the snapshot is written as MSETs: fewer, larger commands load faster


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


def _write_snapshot(db: dict[bytes, Any], path: str) -> None:
    """In the child: the keyspace as MSET commands, fsynced."""
    with open(path, "wb", buffering=WRITE_BUFFER_BYTES) as f:
        batch: list[bytes] = [b"MSET"]
        for key, value in db.items():
            batch.append(key)
            batch.append(value)
            if len(batch) > 2 * KEYS_PER_MSET:
                f.write(encode_command(batch))
                batch = [b"MSET"]
        if len(batch) > 1:
            f.write(encode_command(batch))
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

    @property
    def in_progress(self) -> bool:
        return self.child_pid != 0

    def start(self, db: dict[bytes, Any]) -> bool:
        """Fork the snapshot writer. Call only between passes (empty AOF buffer)."""
        if self.child_pid:
            return False
        directory = os.path.dirname(os.path.abspath(self.aof.path))
        pid = os.fork()
        if pid == 0:  # child: no logging (a lock may be held by a thread that did not survive fork)
            status = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                _write_snapshot(db, os.path.join(directory, f"temp-rewriteaof-{os.getpid()}.aof"))
                status = 0
            finally:
                os._exit(status)
        self.child_pid = pid
        self.temp_path = os.path.join(directory, f"temp-rewriteaof-{pid}.aof")
        self.started_at = time.monotonic()
        self.aof.rewrite_buf = []
        log.info("background AOF rewrite started by pid %d", pid)
        return True

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
            self._fail(f"the rewrite child exited with status {code}")
            return
        try:
            self._install()
        except OSError as exc:
            self._fail(f"could not install the rewritten AOF: {exc}")
            return
        self.rewrites += 1
        self.last_status = "ok"
        log.info(
            "background AOF rewrite finished in %.2f s: %d bytes",
            time.monotonic() - self.started_at,
            self.aof.current_size,
        )

    def _install(self) -> None:
        aof = self.aof
        aof.flush()  # write what is buffered: the new file must not miss it
        tail = b"".join(aof.rewrite_buf or [])
        with open(self.temp_path, "ab", buffering=0) as f:
            view = memoryview(tail)
            written = 0
            while written < len(tail):
                written += f.write(view[written:]) or 0
            os.fsync(f.fileno())
        os.rename(self.temp_path, aof.path)
        fsync_directory(os.path.dirname(os.path.abspath(aof.path)))
        aof.rewrite_buf = None
        aof.reopen()

    def _fail(self, reason: str) -> None:
        log.warning("background AOF rewrite failed: %s", reason)
        self.last_status = "err"
        self.aof.rewrite_buf = None
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
