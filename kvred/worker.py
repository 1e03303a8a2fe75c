"""A worker: accepts clients on its own SO_REUSEPORT socket, parses RESP, and
forwards commands to the writer in batches.

Per event-loop pass a worker sends one request batch (everything parsed in
that pass), and at most MAX_INFLIGHT_BATCHES are outstanding; while the writer
is busy, commands accumulate into the next batch, so batches grow with load.
Replies come back in order and are written to each client once per batch.

Each client is a `Connection` (kvred/connection.py), which keeps its replies
in order and answers connection commands itself.

Back-pressure, so that what a worker holds stays bounded in bytes:
- a client whose unsent replies pass the transport's high-water mark stops
  being read until it drains;
- a client whose replies the writer deferred (REPLY_DEFERRED) stops being read
  until they come (its later commands would only queue in the writer);
- every client stops being read while the bytes forwarded to the writer and not
  yet answered (the batch being built and the batches in flight) pass
  MAX_PENDING_BYTES, or the commands of the batch being built pass
  MAX_PENDING_COMMANDS, or the link's own write buffer is full; reading resumes
  below half of each.
One connection sending `SET k <1 MB>` as fast as it could took a worker to
2.5 GB when only commands were counted; counted in bytes it stays near
MAX_PENDING_BYTES times the copies a command makes on its way (parsed, framed).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import mmap
import os
import signal
import socket
import struct
import time
from collections import deque
from typing import Any

import uvloop

from . import ipc
from .acl import Acl, AclError
from .config import WORKERS_MAX, Config, set_log_level, setup_logging
from .connection import ERR_DENIED, ERR_MAXCLIENTS, PAUSED_BY_LINK, PAUSED_BY_SHUTDOWN, Connection
from .memory import MemoryTrimmer
from .stats import FAILED, NS, REJECTED, bucket_of, new_stat

__all__ = ["Worker", "WORKER_BOOT_ERROR", "MAX_WORKERS"]

log = logging.getLogger("kvred.worker")

WORKER_BOOT_ERROR = 3  # exit code: failed before serving; the supervisor must not retry
MAX_WORKERS = WORKERS_MAX  # client ids interleave the worker slot: id = seq * MAX_WORKERS + slot + 1
# Batches sent and not yet answered. More than one lets the writer read the next batch
# while the previous one's fsync runs. Measured (c50, fsync always, P1/P16): 1 -> 45k/355k,
# 2 -> 57k/360k, 4 -> 67k/453k, 8 -> 62k/410k SET/s; everysec gained ~5% from 1 to 4,
# and 2 or 8 were within noise of 4 for everysec GET -P 16.
MAX_INFLIGHT_BATCHES = 4
PUSH_WRITES_PER_PASS = 256  # subscribers written per event-loop pass during a fan-out
MAX_PENDING_COMMANDS = 100_000  # in the batch being built; above it, stop reading clients
MAX_PENDING_BYTES = 32 * 1024 * 1024  # forwarded and not yet answered; above it, stop reading clients
TCP_BACKLOG = 511  # Redis's tcp-backlog
WORKER_CRON_S = 1.0  # idle-client timeout checks, memory trimming

_CLIENT_COUNT = struct.Struct("q")  # one slot of the shared client-count array


class LinkProtocol(asyncio.Protocol):
    """The worker's end of the link to the writer."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.reader = ipc.FrameReader()

    def data_received(self, data: bytes) -> None:
        worker = self.worker
        worker.trimmer.churned += len(data)
        for message in self.reader.feed(data):
            if type(message) is list:
                worker.on_replies(message)
            else:
                worker.on_message(message)

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker.on_link_lost()

    def pause_writing(self) -> None:
        self.worker.link_full = True
        self.worker.update_reading()

    def resume_writing(self) -> None:
        self.worker.link_full = False
        self.worker.update_reading()


class Worker:
    """Build before fork (nothing happens until `run()`)."""

    def __init__(
        self, config: Config, slot: int, generation: int, link: socket.socket, ready_fd: int, client_counts: mmap.mmap
    ) -> None:
        self.config = config
        # read on the hot path: plain attributes, not config lookups
        self.idle_timeout = config.timeout
        self.output_limit = config.client_output_buffer_limit
        self.pubsub_output_limit = config.pubsub_output_buffer_limit  # (hard, soft, seconds)
        self.slot = slot
        # one int64 per worker slot, shared by all workers: the server-wide client count
        self.client_counts = client_counts
        self.local_clients = 0
        # INFO stats counted here since the last report to the writer (OP_STATS WORKER_TOTALS):
        # [net input bytes, net output bytes, reads, writes, rejected connections]
        self.totals = [0, 0, 0, 0, 0]
        # commands answered or rejected here and error replies made here (INFO
        # commandstats, errorstats): reported before the next batch that goes to the
        # writer, so that an INFO sent after them counts them
        self.command_stats: dict[str, list[int]] = {}
        self.error_counts: dict[str, int] = {}
        self.stats_pending = False
        self.link_sock = link
        self.ready_fd = ready_fd  # write one byte once listening
        self._client_seq = generation << 32  # replacement workers never reuse ids of the slot
        self.clients: dict[int, Connection] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.link: asyncio.Transport | None = None
        self.servers: list[asyncio.AbstractServer] = []
        # the batch being built: entries, and the connection each reply goes to
        self.batch: list[list[Any]] = []
        self.batch_conns: list[Connection | None] = []
        self.batch_id = 0
        self.pending_commands = 0  # commands in the batch being built
        self.batch_bytes = 0  # request bytes in the batch being built
        self.pending_bytes = 0  # ...plus those of the batches in flight
        # batches sent and not answered: their connections (one per entry) and request bytes
        self.inflight: deque[tuple[list[Connection | None], int]] = deque()
        self.flush_scheduled = False
        self.reading_paused = False
        self.link_full = False  # the link's transport is over its write high-water mark
        self.trimmer = MemoryTrimmer()  # requests and replies that passed through: give memory back
        self.stopping = False
        self.monitoring = False  # some client runs MONITOR: report what this worker answers
        # the users, a replica of the writer's (kvred/acl.py): AUTH and MULTI's ACL checks.
        # Until the writer's first message: the users of the config, as the writer starts.
        self.acl = Acl(config.requirepass)
        if config.aclfile:
            self.acl.load_file(config.aclfile)  # (the writer, built first, refuses a bad file)
        self.push_pending: dict[int, Connection] = {}  # clients with queued pushes to write
        self.push_flush_scheduled = False
        self.busy_error: bytes | None = None  # a script is busy: the BUSY error (kvred/ipc.py)
        self.oom = False  # over maxmemory with nothing to evict: MULTI refuses to queue (kvred/ipc.py)
        self._stopped: asyncio.Future[None] | None = None

    # ---------------------------------------------------------------- process

    def run(self) -> int:
        setup_logging(self.config.loglevel, f"C{self.slot}")
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor orchestrates Ctrl-C
        uvloop.install()
        return asyncio.run(self._main())

    async def _main(self) -> int:
        loop = self.loop = asyncio.get_running_loop()
        self._stopped = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, self.begin_stop)
        self.link, _ = await loop.create_unix_connection(lambda: LinkProtocol(self), sock=self.link_sock)
        try:
            for host in self.config.bind:
                server = await loop.create_server(
                    lambda: Connection(self), host, self.config.port, reuse_port=True, backlog=TCP_BACKLOG
                )
                self.servers.append(server)
        except OSError as exc:
            log.error("cannot listen on %s port %d: %s", " ".join(self.config.bind), self.config.port, exc.strerror)
            return WORKER_BOOT_ERROR
        loop.call_later(WORKER_CRON_S, self.cron)
        os.write(self.ready_fd, b"R")
        os.close(self.ready_fd)
        await self._stopped
        return 0

    def begin_stop(self) -> None:
        """SIGTERM: stop accepting and reading, answer what is in flight, then exit."""
        if self.stopping:
            return
        self.stopping = True
        for server in self.servers:
            server.close()
        for conn in list(self.clients.values()):
            conn.pause(PAUSED_BY_SHUTDOWN)
        self._finish_if_drained()

    def _finish_if_drained(self) -> None:
        if not self.stopping or self.inflight or self.batch or self._stopped is None or self._stopped.done():
            return
        for conn in list(self.clients.values()):
            if conn.transport is not None:
                conn.transport.close()
        if self.link is not None:
            self.link.close()
        self._stopped.set_result(None)

    def write_pending_pushes(self) -> None:
        pending = self.push_pending
        for _ in range(min(PUSH_WRITES_PER_PASS, len(pending))):
            _client_id, conn = pending.popitem()
            if conn.pushes:
                conn.flush_pushes()
        if pending:
            assert self.loop is not None
            self.loop.call_soon(self.write_pending_pushes)  # the rest after other callbacks run
        else:
            self.push_flush_scheduled = False

    def on_link_lost(self) -> None:
        if not self.stopping:
            log.error("lost the link to the writer: exiting")
        self.stopping = True
        for conn in list(self.clients.values()):
            if conn.transport is not None:
                conn.transport.abort()
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)

    def count_client(self, delta: int) -> None:
        self.local_clients += delta
        _CLIENT_COUNT.pack_into(self.client_counts, self.slot * _CLIENT_COUNT.size, self.local_clients)

    def connected_clients(self) -> int:
        return sum(count for (count,) in _CLIENT_COUNT.iter_unpack(self.client_counts))

    def refusal_for(self, transport: Any) -> bytes | None:
        """The error a new client gets instead of service (protected mode, maxclients), or None."""
        config = self.config
        # Redis's test: the default user has no password (whether set by --requirepass or ACL)
        if config.protected_mode and self.acl.users["default"].nopass:
            peer = transport.get_extra_info("peername")
            if isinstance(peer, tuple) and not ipaddress.ip_address(peer[0].split("%")[0]).is_loopback:
                return ERR_DENIED
        if self.connected_clients() >= config.maxclients:
            return ERR_MAXCLIENTS
        return None

    def apply_config(self, changes: dict[str, Any]) -> None:
        """CONFIG SET in the writer: the same values here, and in the copies kept of them."""
        config = self.config
        for attr, value in changes.items():
            setattr(config, attr, tuple(value) if type(value) is list else value)
        self.idle_timeout = config.timeout
        self.output_limit = config.client_output_buffer_limit
        self.pubsub_output_limit = config.pubsub_output_buffer_limit
        if "loglevel" in changes:
            set_log_level(config.loglevel)
        if "proto_max_bulk_len" in changes:
            for conn in self.clients.values():
                conn.parser.max_bulk_len = config.proto_max_bulk_len

    def cron(self) -> None:
        assert self.loop is not None
        if self.idle_timeout > 0:
            self.close_idle_clients()
        self.send_client_stats()
        self.trimmer.maybe_trim()
        self.loop.call_later(WORKER_CRON_S, self.cron)

    def count_output(self, nbytes: int) -> None:
        totals = self.totals
        totals[1] += nbytes
        totals[3] += 1

    def count_local(self, name: str, ns: int, reply: bytes | None) -> None:
        """A command this worker answered ran for `ns` (INFO commandstats)."""
        stat = self.command_stats.get(name)
        if stat is None:
            stat = self.command_stats[name] = new_stat()
        stat[NS] += ns
        stat[bucket_of(ns)] += 1
        if reply is not None and reply[:1] == b"-":
            stat[FAILED] += 1
            self.count_error(reply)
        self.stats_pending = True

    def count_rejected(self, name: str | None, reply: bytes) -> None:
        """A command refused here (unknown, arity, NOAUTH...): Redis's rejected_calls."""
        if name is not None:
            stat = self.command_stats.get(name)
            if stat is None:
                stat = self.command_stats[name] = new_stat()
            stat[REJECTED] += 1
        self.count_error(reply)

    def count_error(self, reply: bytes) -> None:
        code = reply[1:].split(b" ", 1)[0].split(b"\r", 1)[0].decode(errors="replace")
        self.error_counts[code] = self.error_counts.get(code, 0) + 1
        self.stats_pending = True

    def report_totals(self) -> None:
        """This worker's counts since its last report, to the writer (OP_STATS WORKER_TOTALS)."""
        sparse = {name: {i: n for i, n in enumerate(stat) if n} for name, stat in self.command_stats.items()}
        self.batch.append([ipc.OP_STATS, ipc.WORKER_TOTALS, False, [*self.totals, sparse, self.error_counts]])
        self.batch_conns.append(None)
        self.totals = [0, 0, 0, 0, 0]
        self.command_stats = {}
        self.error_counts = {}
        self.stats_pending = False
        self._queued(0, 0)

    def send_client_stats(self) -> None:
        """CLIENT LIST's per-client buffers and idle times, which live here, and this
        worker's counts since the last report (INFO stats): once a second."""
        if self.stopping:
            return
        if self.stats_pending or any(self.totals):
            self.report_totals()
        if not self.clients:
            return
        now = time.monotonic()
        self.batch.append([ipc.OP_STATS, 0, False, [conn.stats(now) for conn in self.clients.values()]])
        self.batch_conns.append(None)
        self._queued(0, 0)

    def close_idle_clients(self) -> None:
        """--timeout: close clients that sent nothing for that many seconds (checked once a second)."""
        timeout = self.idle_timeout
        deadline = time.monotonic() - timeout
        for conn in list(self.clients.values()):
            if conn.last_active < deadline and not conn.outq:
                log.info("closing client %d: idle for over %d s", conn.client_id, timeout)
                conn.abort()

    def next_client_id(self) -> int:
        self._client_seq += 1
        return self._client_seq * MAX_WORKERS + self.slot + 1

    # ---------------------------------------------------------------- batching

    def forward_run(self, conn: Connection, run: list[list[bytes]], nbytes: int) -> None:
        """Queue commands (`nbytes` of requests) for the writer; they join the
        connection's open entry if any."""
        if self.stats_pending:
            self.report_totals()
        outq = conn.outq
        if conn.open_run_batch == self.batch_id and outq and outq[-1] is None and conn.open_run is not None:
            conn.open_run.extend(run)
        else:
            self.batch.append([ipc.OP_RUN, conn.client_id, conn.resp3, run])
            self.batch_conns.append(conn)
            outq.append(None)
            conn.open_run = run
            conn.open_run_batch = self.batch_id
        self._queued(len(run), nbytes)

    def forward_exec(self, conn: Connection, queued: list[list[bytes] | bytes], nbytes: int) -> None:
        if self.stats_pending:
            self.report_totals()
        self.batch.append([ipc.OP_EXEC, conn.client_id, conn.resp3, queued])
        self.batch_conns.append(conn)
        conn.outq.append(None)
        conn.open_run = None
        self._queued(len(queued), nbytes)

    def send_event(self, op: int, conn: Connection, payload: Any) -> None:
        self.batch.append([op, conn.client_id, conn.resp3, payload])
        self.batch_conns.append(None)
        self._queued(0, 0)

    def _queued(self, count: int, nbytes: int) -> None:
        self.pending_commands += count
        self.batch_bytes += nbytes
        self.pending_bytes += nbytes
        if not self.flush_scheduled:
            self.flush_scheduled = True
            assert self.loop is not None
            self.loop.call_soon(self.flush)
        if not self.reading_paused and (
            self.pending_commands > MAX_PENDING_COMMANDS or self.pending_bytes > MAX_PENDING_BYTES
        ):
            self.update_reading()

    def update_reading(self) -> None:
        """Pause every client while the writer is this far behind; resume at half."""
        if self.reading_paused:
            if (
                self.link_full
                or self.pending_commands > MAX_PENDING_COMMANDS // 2
                or self.pending_bytes > MAX_PENDING_BYTES // 2
            ):
                return
            self.reading_paused = False
            for conn in self.clients.values():
                conn.resume(PAUSED_BY_LINK)
        elif (
            self.link_full
            or self.pending_commands > MAX_PENDING_COMMANDS
            or self.pending_bytes > MAX_PENDING_BYTES
        ):
            self.reading_paused = True
            for conn in self.clients.values():
                conn.pause(PAUSED_BY_LINK)

    def flush(self) -> None:
        """Send the batch built during this loop pass, if the link has room."""
        self.flush_scheduled = False
        if not self.batch or self.link is None:
            return
        # (while a script is busy the writer answers nothing, but must still get SCRIPT KILL:
        # what goes then is only connections coming and going and the few commands a busy
        # server takes, kvred/ipc.py)
        if len(self.inflight) >= MAX_INFLIGHT_BATCHES and self.busy_error is None:
            return
        if self.link.is_closing():
            self.batch.clear()  # stopping: the writer will not read it (disconnects of a dying worker)
            self.batch_conns.clear()
            self.pending_bytes -= self.batch_bytes
            self.batch_bytes = 0
            return
        frame = ipc.encode_frame(self.batch)
        self.trimmer.churned += len(frame)
        self.inflight.append((self.batch_conns, self.batch_bytes))
        self.batch = []
        self.batch_conns = []
        self.batch_id += 1
        self.pending_commands = 0
        self.batch_bytes = 0
        self.link.write(frame)

    def on_replies(self, replies: list[Any]) -> None:
        conns, nbytes = self.inflight.popleft()
        self.pending_bytes -= nbytes
        for conn, reply in zip(conns, replies, strict=True):
            if conn is not None:
                conn.deliver(reply)
        if self.batch:
            self.flush()
        if self.reading_paused:
            self.update_reading()
        if self.stopping:
            self._finish_if_drained()

    def on_message(self, message: dict[str, Any]) -> None:
        """A writer message other than a reply batch (kvred/ipc.py)."""
        for client_id, replies in message.get(ipc.MSG_RESUME, ()):
            conn = self.clients.get(client_id)
            if conn is not None:
                conn.resume_deferred(replies)
        pushes = message.get(ipc.MSG_PUSH)
        if pushes:
            # Queue each message on its client now (cheap, and what keeps it ahead of that
            # client's later replies: deliver() writes due pushes first), and write them
            # PUSH_WRITES_PER_PASS clients per loop pass: a fan-out to thousands of
            # subscribers must not hold up other clients' reads and replies until all of
            # it is written. One write per client for all its queued messages.
            pending = self.push_pending
            clients = self.clients
            for client_id, answered, data in pushes:
                conn = clients.get(client_id)
                if conn is not None:
                    conn.queue_push(answered, data)
                    pending[client_id] = conn
            if not self.push_flush_scheduled:
                self.push_flush_scheduled = True
                assert self.loop is not None
                self.loop.call_soon(self.write_pending_pushes)
        if ipc.MSG_MONITORING in message:
            self.monitoring = message[ipc.MSG_MONITORING]
        if ipc.MSG_BUSY in message:
            self.busy_error = message[ipc.MSG_BUSY]
        if ipc.MSG_OOM in message:
            self.oom = message[ipc.MSG_OOM]
        if ipc.MSG_CONFIG in message:
            token, changes = message[ipc.MSG_CONFIG]
            self.apply_config(changes)
            if token:  # the writer answers the CONFIG SET once every worker has applied it
                self.batch.append([ipc.OP_ACK, 0, False, [token]])
                self.batch_conns.append(None)
                self._queued(0, 0)
        if ipc.MSG_USERS in message:
            try:
                self.acl.replace_from_lines([ipc.text_from_wire(line) for line in message[ipc.MSG_USERS]])
            except AclError:  # a description that does not read back: a bug, not a client's
                log.exception("ACL users from the writer could not be read: keeping the previous ones")
        for client_id in message.get(ipc.MSG_KILL, ()):
            conn = self.clients.get(client_id)
            if conn is not None:
                conn.kill()
