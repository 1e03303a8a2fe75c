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
    """The data is not on disk: write() or fsync() failed, now or before (it stays
    pending for `sync_all()`)."""


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
        self._rewrite_skip = 0  # leading bytes of _unwritten the rewrite's snapshot already holds
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

    def set_policy(self, policy: str) -> None:
        """appendfsync changed at runtime (CONFIG SET): what is written so far is synced
        now, then the new policy applies (its thread started or stopped)."""
        if policy == self.fsync_policy:
            return
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None
            self._stop = threading.Event()
        if self.fd >= 0 and self.last_write_ok:
            try:
                self.fsync_now()
            except OSError as exc:
                self._write_failed(exc)
        self.fsync_policy = policy
        if policy == "everysec" and self.fd >= 0:
            self._thread = threading.Thread(target=self._everysec_loop, name="aof-fsync", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Write what is buffered, fsync whatever the policy, close."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.fd >= 0:
            try:
                if not self.sync_all():
                    log.warning(
                        "AOF: %d bytes could not be written on shutdown (%s)", self.pending_bytes, self.last_write_error
                    )
            finally:
                os.close(self.fd)
                self.fd = -1

    # ---------------------------------------------------------------- appends

    def flush(self) -> None:
        """Write the pass's buffer, then fsync under `always`. Raises AofWriteError
        when the pass's data is not on disk as the policy requires.

        After a failed write or fsync the AOF is *failing*: a pass only encodes its
        buffer behind the bytes already pending (they stay in order) and raises;
        `sync_all()`, called by the writer's cron, is what tries the disk again. That
        keeps a full disk from costing a write attempt of every pending byte per pass.
        """
        if self.aof_buf:
            self._seal()
        if not self.last_write_ok:
            raise AofWriteError(self.last_write_error)
        if not self._unwritten:
            return
        self._write_pending()
        if self.fsync_policy == "always":
            self._fsync_or_fail()

    def sync_all(self) -> bool:
        """Write everything pending and fsync it, whatever the policy (the retry after
        an error, SHUTDOWN, close). True once all of it is on disk; a failing AOF is
        healthy again from then on."""
        if self.aof_buf:
            self._seal()
        try:
            if self._unwritten:
                self._write_pending()
            self._fsync_or_fail()
        except AofWriteError:
            return False
        if not self.last_write_ok:
            log.warning("AOF write error is solved, the AOF is being written again")
            self.last_write_ok = True
            self.last_write_error = ""
        return True

    def sync_written(self) -> None:
        """fsync what is already in the file, leaving the buffer unwritten (an exit that
        must not log the pass in progress: SHUTDOWN NOSAVE during a busy script)."""
        try:
            os.fsync(self.fd)
        except OSError as exc:
            log.warning("AOF fsync failed on exit: %s", exc)

    @property
    def pending_bytes(self) -> int:
        """Encoded bytes not yet in the file (a failed write keeps them here)."""
        return len(self._unwritten)

    def start_rewrite_buffer(self) -> None:
        """A rewrite child is about to snapshot the keyspace. Everything logged so far
        is in that snapshot: encode it now and remember how much of it is still to be
        written, so that it reaches the old file but not also the rewrite's tail
        (which would apply it twice after the switch)."""
        if self.aof_buf:
            self._seal()
        self.rewrite_buf = []
        self._rewrite_skip = len(self._unwritten)

    def stop_rewrite_buffer(self) -> None:
        self.rewrite_buf = None
        self._rewrite_skip = 0

    def _seal(self) -> None:
        encoded = b"".join(map(encode_command, self.aof_buf))
        self.aof_buf.clear()
        self._unwritten = self._unwritten + encoded if self._unwritten else encoded

    def _write_pending(self) -> None:
        data = self._unwritten
        try:
            written = 0
            view = memoryview(data)
            while written < len(data):
                written += os.write(self.fd, view[written:])
        except OSError as exc:
            self._undo_partial_write()
            self._write_failed(exc)
            raise AofWriteError(str(exc)) from exc
        self._unwritten = b""
        self.current_size += len(data)
        self._dirty = True
        if self.rewrite_buf is not None:
            skip, self._rewrite_skip = self._rewrite_skip, 0
            self.rewrite_buf.append(data[skip:] if skip else data)

    def _fsync_or_fail(self) -> None:
        try:
            self.fsync_now()
        except OSError as exc:
            self._write_failed(exc)
            raise AofWriteError(str(exc)) from exc

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
        # strerror's text, as Redis quotes it in MISCONF replies ("No space left on device")
        self.last_write_error = exc.strerror or reason

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
