"""The append-only file: buffered appends, group commit, and the fsync policies.

Durability invariant (Redis's beforeSleep order): every mutation executed in
a writer loop pass is appended to `aof_buf` (as its argv); at the end of the pass the buffer
is written (and, under `always`, fsynced) *before* any reply of that pass is
released. Under `everysec` a background thread fsyncs about once a second;
under `no` the kernel decides, but shutdown and rewrite still fsync.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time

from .resp import encode_command

__all__ = ["AppendOnlyFile", "AofWriteError", "SLOW_FSYNC_S"]

log = logging.getLogger("kvred.aof")

SLOW_FSYNC_S = 2.0  # an everysec fsync slower than this is logged and counted (aof_delayed_fsync)
EVERYSEC_INTERVAL_S = 1.0


class AofWriteError(OSError):
    """write() or fsync() of the AOF failed; the data stays buffered for a retry."""


class AppendOnlyFile:
    """One open AOF. Not thread-safe except for the everysec fsync thread it owns."""

    def __init__(self, path: str, fsync: str) -> None:
        self.path = path
        self.fsync_policy = fsync
        # the commands (argv) logged in the current pass, encoded all at once by flush().
        # The list object never changes, so the writer binds its append once as the
        # handlers' aof_feed: a C call per mutation (saved ~100 ns per SET).
        self.aof_buf: list[list[bytes]] = []
        self._unwritten = b""  # encoded bytes of a failed write, written first on the retry
        self.fd = -1
        self.current_size = 0
        self.base_size = 0  # size after the last rewrite (or at start-up)
        self.last_write_ok = True
        self.last_write_error = ""
        self.delayed_fsync = 0
        self._dirty = False  # written since the last fsync (everysec thread reads it)
        self.rewrite_buf: list[bytes] | None = None  # writes made while a rewrite child runs
        self._fsync_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle

    def open(self) -> None:
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.current_size = self.base_size = os.fstat(self.fd).st_size
        if self.fsync_policy == "everysec":
            self._thread = threading.Thread(target=self._everysec_loop, name="aof-fsync", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Write what is buffered, fsync whatever the policy, close."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.fd >= 0:
            try:
                self.flush()
                self.fsync_now()
            finally:
                os.close(self.fd)
                self.fd = -1

    # ---------------------------------------------------------------- appends

    def flush(self) -> None:
        """Write the pass's buffer, then fsync under `always`. Raises AofWriteError.

        On a short or failed write the file is truncated back to its last good
        size and the buffer is kept to be retried on the next pass; a failed
        fsync is retried on the next pass too.
        """
        if self.aof_buf or self._unwritten:
            data = self._unwritten + b"".join(map(encode_command, self.aof_buf))
            self.aof_buf.clear()
            try:
                written = 0
                view = memoryview(data)
                while written < len(data):
                    written += os.write(self.fd, view[written:])
            except OSError as exc:
                self._undo_partial_write()
                self._unwritten = data
                self._write_failed(exc)
                raise AofWriteError(str(exc)) from exc
            self._unwritten = b""
            self.current_size += len(data)
            self._dirty = True
            if self.rewrite_buf is not None:
                self.rewrite_buf.append(data)
        elif self.last_write_ok:
            return
        if self.fsync_policy == "always":
            try:
                self.fsync_now()
            except OSError as exc:
                self._write_failed(exc)
                raise AofWriteError(str(exc)) from exc
        if not self.last_write_ok:
            log.warning("AOF write error is solved, the AOF is being written again")
            self.last_write_ok = True
            self.last_write_error = ""

    def reopen(self) -> None:
        """Switch to the file now at `path` (after a rewrite renamed a new one there)."""
        new_fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        with self._fsync_lock:
            old_fd, self.fd = self.fd, new_fd
            self._dirty = False
        os.close(old_fd)
        self.current_size = self.base_size = os.fstat(new_fd).st_size

    def fsync_now(self) -> None:
        with self._fsync_lock:
            os.fsync(self.fd)
            self._dirty = False

    def _undo_partial_write(self) -> None:
        try:
            os.ftruncate(self.fd, self.current_size)
        except OSError as exc:
            log.warning("could not truncate the AOF back to %d bytes after a failed write: %s", self.current_size, exc)

    def _write_failed(self, exc: OSError) -> None:
        reason = errno.errorcode.get(exc.errno or 0, "EIO")
        if self.last_write_ok:
            log.warning("error writing to the AOF file (%s): %s", reason, exc.strerror)
        self.last_write_ok = False
        self.last_write_error = f"{reason} {exc.strerror}"

    def _everysec_loop(self) -> None:
        while not self._stop.wait(EVERYSEC_INTERVAL_S):
            if not self._dirty or self.fd < 0:
                continue
            started = time.monotonic()
            try:
                self.fsync_now()
            except OSError as exc:
                self._write_failed(exc)
                continue
            took = time.monotonic() - started
            if took > SLOW_FSYNC_S:
                self.delayed_fsync += 1
                log.warning("AOF fsync took %.1f s: the disk is busy", took)
