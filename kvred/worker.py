"""A worker: accepts clients on its own SO_REUSEPORT socket, parses RESP, and
forwards commands to the writer in batches.

Per event-loop pass a worker sends one request batch (everything parsed in
that pass), and at most MAX_INFLIGHT_BATCHES are outstanding; while the writer
is busy, commands accumulate into the next batch, so batches grow with load.
Replies come back in order and are written to each client once per batch.

Each connection keeps its replies in order with `outq`: a `None` stands for
a reply the writer still owes, bytes for a reply the worker computed itself
(PING, HELLO, MULTI bookkeeping...). A worker-made reply is written at once
only if nothing is owed before it.

Back-pressure: a client whose unsent replies pass the transport's high-water
mark stops being read until it drains; when the batch waiting for the link
grows past MAX_PENDING_COMMANDS every client stops being read until the
writer catches up.
"""

from __future__ import annotations

import asyncio
import hmac
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

from . import ipc, resp
from .commands import lookup, unknown_command, wrong_arity
from .config import Config, setup_logging

__all__ = ["Worker", "WORKER_BOOT_ERROR", "MAX_WORKERS"]

log = logging.getLogger("kvred.worker")

WORKER_BOOT_ERROR = 3  # exit code: failed before serving; the supervisor must not retry
MAX_WORKERS = 64  # client ids interleave the worker slot: id = seq * MAX_WORKERS + slot + 1
MAX_INFLIGHT_BATCHES = 1  # batches sent and not yet answered
MAX_PENDING_COMMANDS = 100_000  # queued for the writer; above it, stop reading clients
CLIENT_WRITE_HIGH_WATER = 4 * 1024 * 1024  # bytes of unsent replies before a client is paused
TCP_BACKLOG = 511  # Redis's tcp-backlog

_CLIENT_COUNT = struct.Struct("q")  # one slot of the shared client-count array

_PAUSED_BY_OUTPUT = 1
_PAUSED_BY_LINK = 2
_PAUSED_BY_SHUTDOWN = 4

ERR_EXEC_WITHOUT_MULTI = b"-ERR EXEC without MULTI\r\n"
ERR_DISCARD_WITHOUT_MULTI = b"-ERR DISCARD without MULTI\r\n"
ERR_NESTED_MULTI = b"-ERR MULTI calls can not be nested\r\n"
ERR_EXECABORT = b"-EXECABORT Transaction discarded because of previous errors.\r\n"
ERR_NOT_IN_MULTI = b"-ERR Command not allowed inside a transaction\r\n"
ERR_NOPROTO = b"-NOPROTO unsupported protocol version\r\n"
ERR_PROTO_NOT_INT = b"-ERR Protocol version is not an integer or out of range\r\n"
ERR_NOAUTH = b"-NOAUTH Authentication required.\r\n"
ERR_WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
ERR_HELLO_NOAUTH = (
    b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH "
    b"<user> <pass> option can be used to authenticate the client and select the RESP protocol version "
    b"at the same time\r\n"
)
ERR_MAXCLIENTS = b"-ERR max number of clients reached\r\n"
ERR_DENIED = (
    b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set "
    b"for the default user. In this mode connections are only accepted from the loopback interface. If you "
    b"want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just "
    b"disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by "
    b"connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly "
    b"accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively "
    b"you can just disable the protected mode by editing the Redis configuration file, and setting the protected "
    b"mode option to 'no', and then restarting the server. 3) If you started the server manually just for "
    b"testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the "
    b"default user. NOTE: You only need to do one of the above things in order for the server to start accepting "
    b"connections from the outside.\r\n"
)
ERR_AUTH_NO_PASSWORD = (
    b"-ERR AUTH <password> called without any password configured for the default user. "
    b"Are you sure your configuration is correct?\r\n"
)


class Connection(asyncio.Protocol):
    """One client. Also the context for commands a worker answers itself."""

    __slots__ = (
        "worker",
        "transport",
        "parser",
        "client_id",
        "resp3",
        "null",
        "outq",
        "open_run",
        "open_run_batch",
        "multi",
        "multi_failed",
        "paused",
        "closing",
        "closed",
        "authenticated",
        "last_active",
    )

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.transport: asyncio.Transport | None = None
        config = worker.config
        self.parser = resp.RequestParser(max_bulk_len=config.proto_max_bulk_len)
        self.authenticated = config.requirepass is None
        self.parser.unauthenticated = not self.authenticated
        self.last_active = time.monotonic()  # for the idle --timeout
        self.client_id = worker.next_client_id()
        # protocol state
        self.resp3 = False
        self.null = resp.NULL_BULK
        # replies in order: None = owed by the writer, bytes = ready
        self.outq: deque[bytes | None] = deque()
        # the OP_RUN payload of the batch being built that new commands may join
        self.open_run: list[list[bytes]] | None = None
        self.open_run_batch = -1
        # MULTI: queued argvs, or None outside a transaction
        self.multi: list[list[bytes]] | None = None
        self.multi_failed = False
        self.paused = 0  # _PAUSED_BY_* bits
        self.closing = False  # close once every owed reply is written
        self.closed = False

    # ---------------------------------------------------------------- transport events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence the ignore
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=CLIENT_WRITE_HIGH_WATER)  # type: ignore[attr-defined]
        worker = self.worker
        refusal = worker.refusal_for(transport)
        if refusal is not None:
            self.closed = True  # never registered: connection_lost must not report it
            transport.write(refusal)  # type: ignore[attr-defined]
            transport.close()
            return
        worker.clients[self.client_id] = self
        worker.count_client(+1)
        worker.send_event(ipc.OP_CONNECT, self, [_address(transport, "peername"), _address(transport, "sockname")])
        if worker.reading_paused:
            self.pause(_PAUSED_BY_LINK)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        self.outq.clear()
        worker = self.worker
        worker.clients.pop(self.client_id, None)
        worker.count_client(-1)
        worker.send_event(ipc.OP_DISCONNECT, self, None)

    def pause_writing(self) -> None:
        self.pause(_PAUSED_BY_OUTPUT)

    def resume_writing(self) -> None:
        self.resume(_PAUSED_BY_OUTPUT)

    def pause(self, reason: int) -> None:
        if not self.paused and self.transport is not None and not self.closed:
            self.transport.pause_reading()
        self.paused |= reason

    def resume(self, reason: int) -> None:
        was = self.paused
        self.paused &= ~reason
        if was and not self.paused and self.transport is not None and not self.closed and not self.closing:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.last_active = time.monotonic()
        parser = self.parser
        commands = parser.feed(data)
        if parser.buffered > self.worker.config.client_query_buffer_limit:
            log.warning("closing client %d: query buffer over %d bytes", self.client_id, parser.buffered)
            self.abort()
            return
        ready: list[bytes] = []  # worker-made replies that can be written at once
        for argv in commands:
            reply = self.dispatch(argv)
            if reply is not None:
                if self.outq:
                    self.outq.append(reply)
                else:
                    ready.append(reply)
            if self.closing:
                break
        if parser.error is not None and not self.closing:
            if self.outq:
                self.outq.append(parser.error)
            else:
                ready.append(parser.error)
            self.closing = True
        if ready and self.transport is not None:
            self.transport.write(b"".join(ready) if len(ready) > 1 else ready[0])
        if self.closing:
            self.close_when_flushed()

    # ---------------------------------------------------------------- commands

    def dispatch(self, argv: list[bytes]) -> bytes | None:
        """Handle one command: return a reply made here, or None if forwarded."""
        cmd = lookup(argv[0])
        if self.multi is not None:
            return self.queue_in_multi(argv, cmd)
        if cmd is None:
            return unknown_command(argv)
        if not cmd.arity_ok(len(argv)):
            return self.reject_arity(cmd.name)
        if not self.authenticated and "no-auth" not in cmd.flags:
            return ERR_NOAUTH
        if cmd.handler is None:
            return self.connection_command(cmd.name, argv)
        if cmd.local:
            return cmd.handler(self, argv)
        self.worker.forward(self, argv)
        return None

    def queue_in_multi(self, argv: list[bytes], cmd: Any) -> bytes | None:
        name = cmd.name if cmd is not None else ""
        if name in ("exec", "discard", "multi", "quit", "reset"):
            if not cmd.arity_ok(len(argv)):
                return self.reject_arity(cmd.name)
            return self.connection_command(name, argv)
        if cmd is None:
            self.multi_failed = True
            return unknown_command(argv)
        if not cmd.arity_ok(len(argv)):
            self.multi_failed = True
            return wrong_arity(cmd.name)
        if "no-multi" in cmd.flags:
            self.multi_failed = True
            return ERR_NOT_IN_MULTI
        assert self.multi is not None
        self.multi.append(argv)
        return resp.QUEUED

    def reject_arity(self, name: str) -> bytes:
        """Redis's rejectCommand: a rejected EXEC also discards the transaction."""
        if name != "exec":
            if self.multi is not None:
                self.multi_failed = True
            return wrong_arity(name)
        self.multi = None
        return b"-EXECABORT Transaction discarded because of: " + wrong_arity(name)[5:]

    def connection_command(self, name: str, argv: list[bytes]) -> bytes | None:
        if name == "multi":
            if self.multi is not None:
                return ERR_NESTED_MULTI
            self.multi = []
            self.multi_failed = False
            return resp.OK
        if name == "exec":
            if self.multi is None:
                return ERR_EXEC_WITHOUT_MULTI
            queued, failed = self.multi, self.multi_failed
            self.multi = None
            if failed:
                return ERR_EXECABORT
            self.worker.forward_exec(self, queued)
            return None
        if name == "discard":
            if self.multi is None:
                return ERR_DISCARD_WITHOUT_MULTI
            self.multi = None
            return resp.OK
        if name == "quit":
            self.closing = True
            return resp.OK
        if name == "reset":
            # as Redis: leave MULTI, back to RESP2, no name, and authenticated only if no password is set
            self.multi = None
            self.set_protocol(2)
            self.worker.send_event(ipc.OP_UPDATE, self, {"name": b""})
            self.authenticated = self.worker.config.requirepass is None
            self.parser.unauthenticated = not self.authenticated
            return b"+RESET\r\n"
        if name == "hello":
            return self.hello(argv)
        if name == "auth":
            if len(argv) > 3:
                return resp.ERR_SYNTAX
            return self.authenticate(argv[1] if len(argv) == 3 else b"default", argv[-1])
        return unknown_command(argv)

    def authenticate(self, user: bytes, password: bytes) -> bytes:
        """AUTH [user] password against --requirepass (the `default` user only)."""
        required = self.worker.config.requirepass
        if required is None:
            return ERR_AUTH_NO_PASSWORD
        # compare_digest: the time taken does not leak how much of the password matched
        if user != b"default" or not hmac.compare_digest(password, required.encode()):
            return ERR_WRONGPASS
        self.authenticated = True
        self.parser.unauthenticated = False
        return resp.OK

    def hello(self, argv: list[bytes]) -> bytes:
        version = 3 if self.resp3 else 2
        if not self.authenticated and not any(a.lower() == b"auth" for a in argv[2:]):
            return ERR_HELLO_NOAUTH
        if len(argv) > 1:
            requested = resp.parse_strict_int(argv[1])
            if requested is None:
                return ERR_PROTO_NOT_INT
            if requested not in (2, 3):
                return ERR_NOPROTO
            version = requested
            name = None
            i = 2
            while i < len(argv):
                opt = argv[i].lower()
                if opt == b"auth" and i + 2 < len(argv):
                    auth_reply = self.authenticate(argv[i + 1], argv[i + 2])
                    if auth_reply is not resp.OK:
                        return auth_reply
                    i += 3
                    continue
                if opt == b"setname" and i + 1 < len(argv):
                    name = argv[i + 1]
                    i += 2
                    continue
                return b"-ERR Syntax error in HELLO option '" + argv[i] + b"'\r\n"
            if name is not None:
                if not all(0x21 <= c <= 0x7E for c in name):
                    return b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
                self.worker.send_event(ipc.OP_UPDATE, self, {"name": name})
            self.set_protocol(version)
        fields = {
            b"server": b"redis",
            b"version": b"7.0.15",
            b"proto": version,
            b"id": self.client_id,
            b"mode": b"standalone",
            b"role": b"master",
            b"modules": [],
        }
        return resp.encode_value(fields, self.resp3)

    def set_protocol(self, version: int) -> None:
        resp3 = version == 3
        if resp3 != self.resp3:
            self.resp3 = resp3
            self.null = resp.NULL_RESP3 if resp3 else resp.NULL_BULK
            self.open_run = None  # later commands need an entry with the new protocol
            self.worker.send_event(ipc.OP_UPDATE, self, {"resp": version})

    # ---------------------------------------------------------------- replies

    def deliver(self, reply: bytes | int) -> None:
        """The writer's reply for the oldest owed slot; flush what is then ready."""
        if self.closed:
            return
        if type(reply) is int:  # the writer stopped this client: its replies passed the output limit
            log.warning("closing client %d: output buffer over %d bytes", self.client_id, reply)
            self.abort()
            return
        assert type(reply) is bytes
        outq = self.outq
        outq.popleft()
        if outq and outq[0] is not None:
            parts = [reply]
            while outq and outq[0] is not None:
                parts.append(outq.popleft())  # type: ignore[arg-type]
            reply = b"".join(parts)
        transport = self.transport
        assert transport is not None
        transport.write(reply)
        limit = self.worker.config.client_output_buffer_limit
        if limit and transport.get_write_buffer_size() > limit:
            log.warning(
                "closing client %d: %d bytes of unread replies", self.client_id, transport.get_write_buffer_size()
            )
            self.abort()
            return
        if self.closing and not outq:
            self.close_when_flushed()

    def abort(self) -> None:
        """Drop the client now, unsent replies included (a limit was passed)."""
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def close_when_flushed(self) -> None:
        if self.outq or self.transport is None:
            return  # deliver() closes once the owed replies are written
        self.transport.close()  # asyncio flushes the write buffer before closing


def _address(transport: asyncio.BaseTransport, what: str) -> str:
    addr = transport.get_extra_info(what)
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return str(addr or "")


class LinkProtocol(asyncio.Protocol):
    """The worker's end of the link to the writer."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.reader = ipc.FrameReader()

    def data_received(self, data: bytes) -> None:
        for replies in self.reader.feed(data):
            self.worker.on_replies(replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker.on_link_lost()


class Worker:
    """Build before fork (nothing happens until `run()`)."""

    def __init__(
        self, config: Config, slot: int, generation: int, link: socket.socket, ready_fd: int, client_counts: mmap.mmap
    ) -> None:
        self.config = config
        self.slot = slot
        # one int64 per worker slot, shared by all workers: the server-wide client count
        self.client_counts = client_counts
        self.local_clients = 0
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
        self.pending_commands = 0
        self.inflight: deque[list[Connection | None]] = deque()
        self.flush_scheduled = False
        self.reading_paused = False
        self.stopping = False
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
        if self.config.timeout > 0:
            loop.call_later(1.0, self.close_idle_clients)
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
            conn.pause(_PAUSED_BY_SHUTDOWN)
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
        if config.protected_mode and config.requirepass is None:
            peer = transport.get_extra_info("peername")
            if isinstance(peer, tuple) and not ipaddress.ip_address(peer[0].split("%")[0]).is_loopback:
                return ERR_DENIED
        if self.connected_clients() >= config.maxclients:
            return ERR_MAXCLIENTS
        return None

    def close_idle_clients(self) -> None:
        """--timeout: close clients that sent nothing for that many seconds (checked once a second)."""
        assert self.loop is not None
        timeout = self.config.timeout
        deadline = time.monotonic() - timeout
        for conn in list(self.clients.values()):
            if conn.last_active < deadline and not conn.outq and conn.multi is None:
                log.info("closing client %d: idle for over %d s", conn.client_id, timeout)
                conn.abort()
        self.loop.call_later(1.0, self.close_idle_clients)

    def next_client_id(self) -> int:
        self._client_seq += 1
        return self._client_seq * MAX_WORKERS + self.slot + 1

    # ---------------------------------------------------------------- batching

    def forward(self, conn: Connection, argv: list[bytes]) -> None:
        """Queue a command for the writer; it joins the connection's open entry if any."""
        if conn.open_run_batch == self.batch_id and conn.open_run is not None and conn.outq and conn.outq[-1] is None:
            conn.open_run.append(argv)
        else:
            payload = [argv]
            self.batch.append([ipc.OP_RUN, conn.client_id, conn.resp3, payload])
            self.batch_conns.append(conn)
            conn.outq.append(None)
            conn.open_run = payload
            conn.open_run_batch = self.batch_id
        self._queued(1)

    def forward_exec(self, conn: Connection, queued: list[list[bytes]]) -> None:
        self.batch.append([ipc.OP_EXEC, conn.client_id, conn.resp3, queued])
        self.batch_conns.append(conn)
        conn.outq.append(None)
        conn.open_run = None
        self._queued(len(queued))

    def send_event(self, op: int, conn: Connection, payload: Any) -> None:
        self.batch.append([op, conn.client_id, conn.resp3, payload])
        self.batch_conns.append(None)
        self._queued(0)

    def _queued(self, count: int) -> None:
        self.pending_commands += count
        if not self.flush_scheduled:
            self.flush_scheduled = True
            assert self.loop is not None
            self.loop.call_soon(self.flush)
        if self.pending_commands > MAX_PENDING_COMMANDS and not self.reading_paused:
            self.reading_paused = True
            for conn in self.clients.values():
                conn.pause(_PAUSED_BY_LINK)

    def flush(self) -> None:
        """Send the batch built during this loop pass, if the link has room."""
        self.flush_scheduled = False
        if not self.batch or len(self.inflight) >= MAX_INFLIGHT_BATCHES or self.link is None:
            return
        if self.link.is_closing():
            self.batch.clear()  # stopping: the writer will not read it (disconnects of a dying worker)
            self.batch_conns.clear()
            return
        frame = ipc.encode_frame(self.batch)
        self.inflight.append(self.batch_conns)
        self.batch = []
        self.batch_conns = []
        self.batch_id += 1
        self.pending_commands = 0
        self.link.write(frame)

    def on_replies(self, replies: list[Any]) -> None:
        conns = self.inflight.popleft()
        for conn, reply in zip(conns, replies, strict=True):
            if conn is not None:
                conn.deliver(reply)
        if self.batch:
            self.flush()
        if self.reading_paused and self.pending_commands <= MAX_PENDING_COMMANDS // 2:
            self.reading_paused = False
            for conn in self.clients.values():
                conn.resume(_PAUSED_BY_LINK)
        if self.stopping:
            self._finish_if_drained()
