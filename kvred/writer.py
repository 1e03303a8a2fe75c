"""The writer: the single-threaded owner of the keyspace and of the AOF.

Workers send request batches over their links (kvred/ipc.py); the writer runs
every entry in arrival order, which is the global order of the keyspace and
of the AOF, and answers each batch with one reply batch.

One loop pass:
    1. read every link that has data and run each complete batch; its replies
       wait in the pass (`_pass_batches`);
    2. group commit: write the pass's AOF buffer (and fsync under `always`);
    3. only then encode the pass's reply batches and release them to the workers.
So no client sees the reply to a mutation before the mutation is in the AOF
as the fsync policy requires: log, sync per policy, then reply.

If a write to the AOF fails, the mutating commands of that pass are answered
with a MISCONF error instead of their reply (their effect stays in memory and
in the AOF buffer, which is retried every pass), and write commands are
refused until the disk accepts data again; reads keep working.
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

import psutil

from . import __version__, ipc, resp
from .aof import AofWriteError, AppendOnlyFile
from .commands import COMMANDS, lookup, unknown_command, wrong_arity
from .commands.keys import ScanCursors
from .config import Config, setup_logging
from .replay import scan_aof
from .rewrite import AofRewriter, remove_stale_temp_files

__all__ = ["Writer", "ClientInfo"]

log = logging.getLogger("kvred.writer")

LINK_RECV_BYTES = 1 << 20  # one recv() per readable link per pass
CRON_INTERVAL_S = 0.1  # statistics sampling, as Redis's serverCron at hz 10
REDIS_VERSION = "7.0.15"  # the Redis version whose behaviour kvred reproduces
ERR_MISCONF = (
    b"-MISCONF Errors writing to the AOF file: the write was not acknowledged; "
    b"write commands are refused until the disk accepts data again\r\n"
)
ERR_INTERNAL = b"-ERR internal error (see the server log)\r\n"
# Connection commands (HELLO, AUTH, MULTI...) belong to the worker, which runs them even
# inside EXEC; one reaching the writer gets this instead of being half-run.
ERR_CONNECTION_COMMAND = b"-ERR Command not allowed inside a transaction\r\n"


class ClientInfo:
    """What the writer knows of a client (for CLIENT LIST and INFO clients)."""

    __slots__ = ("id", "addr", "laddr", "name", "created", "resp", "link")

    def __init__(self, client_id: int, addr: str, laddr: str, link: Link) -> None:
        self.id = client_id
        self.addr = addr
        self.laddr = laddr
        self.name = b""
        self.created = time.monotonic()
        self.resp = 2
        self.link = link


class Link:
    """The writer's end of one worker link."""

    __slots__ = ("sock", "reader", "out", "slot", "wants_write")

    def __init__(self, sock: socket.socket, slot: int) -> None:
        self.sock = sock
        self.reader = ipc.FrameReader()
        self.out: list[bytes] = []  # encoded reply frames waiting for the group commit
        self.slot = slot
        self.wants_write = False  # registered for writability: `out` holds what the worker has not taken


class Writer:
    """Keyspace + AOF owner. Build before fork; `run()` in the child."""

    def __init__(self, config: Config, control: socket.socket) -> None:
        self.config = config
        self.control = control  # to the supervisor: new links arrive here (SCM_RIGHTS)
        self.db: dict[bytes, Any] = {}
        self.scan_cursors = ScanCursors()
        self.clients: dict[int, ClientInfo] = {}
        self.links: list[Link] = []
        self.aof: AppendOnlyFile | None = None
        self.started_at = time.time()
        # execution context of the entry being run (read by command handlers)
        self.client_id = 0
        self.resp3 = False
        self.null = resp.NULL_BULK
        # log a mutation for replay; replaced by the AOF's appender once the AOF is open
        # (during replay and with --appendonly no, nothing is logged)
        self.aof_feed: Callable[[list[bytes]], None] = _log_nothing
        self.refusing_writes = False  # the last AOF write failed: write commands get MISCONF
        # statistics for INFO
        self.stat_commands = 0
        self.stat_connections = 0
        self._ops_sample = (time.monotonic(), 0)
        self.instantaneous_ops = 0
        self._stopping = False
        self._selector: selectors.BaseSelector | None = None
        # One receive buffer for every link. recv(1 MB) cost an mmap, an mremap and a
        # munmap per call (strace), three system calls per pass for nothing.
        self._recv_buf = bytearray(LINK_RECV_BYTES)
        self._recv_view = memoryview(self._recv_buf)
        self._pass_batches: list[tuple[Link, list[Any], list[Any]]] = []  # run, not yet committed
        self.rewriter: AofRewriter | None = None
        self.output_limited: set[int] = set()  # clients dropped for their output, until they disconnect
        self._rewrite_requested = False
        self._shutdown_requested = False

    # ---------------------------------------------------------------- process

    def run(self) -> int:
        setup_logging(self.config.loglevel, "W")
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor orchestrates Ctrl-C
        signal.signal(signal.SIGTERM, self._on_sigterm)
        # A file-size limit must fail write() with EFBIG (a disk error we report), not kill us.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if self.config.appendonly:
            remove_stale_temp_files(self.config.dir)
            if not self._load_aof():
                return 1
            self.aof = AppendOnlyFile(self.config.aof_path, self.config.fsync)
            self.aof.open()
            # handlers call ctx.aof_feed(argv) for every mutation: the buffer's own append
            self.aof_feed = self.aof.aof_buf.append
            self.rewriter = AofRewriter(self.aof)
        self.control.sendall(b"R")  # loaded: the supervisor may start the workers
        self._serve()
        self._shutdown()
        return 0

    def _load_aof(self) -> bool:
        """Replay the AOF through the command path; False if it is corrupt."""
        path = self.config.aof_path
        if not os.path.exists(path):
            return True
        started = time.monotonic()
        # replay runs each handler directly (scan_aof looked it up and checked its arity);
        # self.aof is still None here, so replay logs nothing
        scan = scan_aof(path, lambda handler, argv: handler(self, argv))
        if scan.error is not None:
            log.error(
                "Bad file format reading the append only file %s: %s at offset %d. "
                "Run 'kvred check-aof --fix %s' to repair it (it keeps a backup)",
                path,
                scan.error,
                scan.error_offset,
                path,
            )
            return False
        if scan.torn_tail:
            log.warning(
                "AOF %s ends with an incomplete command (crash during a write?): loaded up to offset %d "
                "and truncated the %d bytes after it",
                path,
                scan.valid_up_to,
                scan.size - scan.valid_up_to,
            )
            with open(path, "r+b") as f:
                f.truncate(scan.valid_up_to)
                os.fsync(f.fileno())
        took = time.monotonic() - started
        log.info(
            "DB loaded from append only file: %.3f seconds, %d commands, %d keys, %.1f MB/s",
            took,
            scan.commands,
            len(self.db),
            scan.size / max(took, 1e-9) / 1e6,
        )
        return True

    def _on_sigterm(self, signum: int, frame: object) -> None:
        self._stopping = True

    def _serve(self) -> None:
        sel = self._selector = selectors.DefaultSelector()
        sel.register(self.control, selectors.EVENT_READ, None)
        cron_due = time.monotonic() + CRON_INTERVAL_S
        while not self._stopping:
            try:
                events = sel.select(CRON_INTERVAL_S)
            except InterruptedError:
                continue
            replied = []
            for key, mask in events:
                link = key.data
                if link is None:
                    self._on_control()
                    continue
                if mask & selectors.EVENT_READ and self._read_link(link):
                    replied.append(link)
                if mask & selectors.EVENT_WRITE:
                    self._send(link)
            if replied:
                self._commit_pass()
                for link in replied:
                    self._send(link)
            if self._rewrite_requested and self.rewriter is not None:
                self._rewrite_requested = False  # started here: between passes the AOF buffer is empty
                self.rewriter.start(self.db)
            now = time.monotonic()
            if now >= cron_due:
                self._cron(now)
                cron_due = now + CRON_INTERVAL_S

    def _shutdown(self) -> None:
        """Answer what the links still hold, then write and fsync the AOF."""
        if self.rewriter is not None:
            self.rewriter.abort()
        for link in list(self.links):
            self._read_link(link)
        self._commit_pass()
        for link in list(self.links):
            self._send(link, blocking=True)
        if self.aof is not None:
            self.aof.close()
            log.info("AOF written and fsynced on shutdown")

    # ---------------------------------------------------------------- links

    def _on_control(self) -> None:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(self.control, 64, 4)
        except OSError:
            msg, fds = b"", []
        if not msg:
            log.warning("the supervisor went away: stopping")
            self._stopping = True
            return
        for fd in fds:
            sock = socket.socket(fileno=fd)
            sock.setblocking(False)
            link = Link(sock, int(msg[1:] or 0) if msg[:1] == b"L" else -1)
            self.links.append(link)
            assert self._selector is not None
            self._selector.register(sock, selectors.EVENT_READ, link)

    def _read_link(self, link: Link) -> bool:
        """Run every complete batch waiting on `link`; False if nothing was run."""
        # MISCONF until the AOF takes writes again (the everysec thread may also fail)
        self.refusing_writes = self.aof is not None and not self.aof.last_write_ok
        try:
            size = link.sock.recv_into(self._recv_buf)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            size = 0
        if not size:
            self._drop_link(link)
            return False
        batches = link.reader.feed(self._recv_view[:size])
        for batch in batches:
            self._run_batch(batch, link)
        return bool(batches)

    def _drop_link(self, link: Link) -> None:
        """A worker exited: forget its link and its clients."""
        if self._selector is not None:
            try:
                self._selector.unregister(link.sock)
            except (KeyError, ValueError):
                pass
        link.sock.close()
        if link in self.links:
            self.links.remove(link)
        for client_id in [cid for cid, info in self.clients.items() if info.link is link]:
            del self.clients[client_id]

    def _send(self, link: Link, blocking: bool = False) -> None:
        if not link.out or link.sock.fileno() < 0:
            return
        data = link.out[0] if len(link.out) == 1 else b"".join(link.out)
        link.out.clear()
        if blocking:
            link.sock.setblocking(True)
            try:
                link.sock.sendall(data)
            except OSError:
                pass
            return
        try:
            sent = link.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._drop_link(link)
            return
        assert self._selector is not None
        if sent < len(data):
            # The worker is slow to read: keep the rest and wait for writability.
            link.out.append(data[sent:])
            if not link.wants_write:
                link.wants_write = True
                self._selector.modify(link.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, link)
        elif link.wants_write:
            link.wants_write = False
            self._selector.modify(link.sock, selectors.EVENT_READ, link)

    # ---------------------------------------------------------------- execution

    def _commit_pass(self) -> None:
        """Group commit: log, sync per policy, then encode the pass's replies."""
        pass_batches, self._pass_batches = self._pass_batches, []
        if self.aof is not None:
            try:
                self.aof.flush()
            except AofWriteError:
                for _link, batch, replies in pass_batches:
                    _refuse_writes(batch, replies)
        for link, _batch, replies in pass_batches:
            link.out.append(ipc.encode_frame([b"".join(r) if type(r) is list else r for r in replies]))

    def _run_batch(self, batch: list[Any], link: Link) -> None:
        """Run one request batch; its replies wait in the pass until the commit."""
        replies: list[Any] = []
        for op, client_id, resp3, payload in batch:
            if resp3 is not self.resp3:
                self.resp3 = resp3
                self.null = resp.NULL_RESP3 if resp3 else resp.NULL_BULK
            self.client_id = client_id
            if op == ipc.OP_RUN:
                replies.append(self._run_commands(payload))
            elif op == ipc.OP_EXEC:
                replies.append(self.exec_transaction(payload))
            else:
                self._client_event(op, client_id, payload, link)
                replies.append(None)
        self._pass_batches.append((link, batch, replies))

    def _run_commands(self, payload: list[list[bytes]]) -> list[bytes] | int:
        """One client's commands of a batch. If their replies pass the client output
        buffer limit, stop (as Redis stops reading a client it closes) and return the
        size reached: the worker then drops the client."""
        if self.output_limited and self.client_id in self.output_limited:
            return 0  # already over its limit: the worker is dropping it, run nothing more
        call = self.call
        limit = self.config.client_output_buffer_limit or 1 << 62
        out = []
        size = 0
        for argv in payload:
            reply = call(argv)
            out.append(reply)
            size += len(reply)
            if size > limit:
                log.warning(
                    "client %d: replies over the output buffer limit (%d bytes): closing it", self.client_id, size
                )
                self.output_limited.add(self.client_id)
                self.stat_commands += len(out)
                return size
        self.stat_commands += len(payload)
        return out

    def _client_event(self, op: int, client_id: int, payload: Any, link: Link) -> None:
        if op == ipc.OP_CONNECT:
            self.clients[client_id] = ClientInfo(client_id, payload[0], payload[1], link)
            self.stat_connections += 1
        elif op == ipc.OP_DISCONNECT:
            self.clients.pop(client_id, None)
            self.output_limited.discard(client_id)
        elif op == ipc.OP_UPDATE:
            info = self.clients.get(client_id)
            if info is not None:
                info.name = payload.get("name", info.name)
                info.resp = payload.get("resp", info.resp)

    def call(self, argv: list[bytes]) -> bytes:
        """Run one command: table lookup, arity check, handler."""
        cmd = COMMANDS.get(argv[0])
        if cmd is None:
            cmd = COMMANDS.get(argv[0].lower())
            if cmd is None:
                return unknown_command(argv)
        if not cmd.min_argc <= len(argv) <= cmd.max_argc:
            return wrong_arity(cmd.name)
        handler = cmd.handler
        if handler is None:  # a connection command: the worker runs those, see ERR_CONNECTION_COMMAND
            return ERR_CONNECTION_COMMAND
        if cmd.write and self.refusing_writes:
            return ERR_MISCONF
        try:
            return handler(self, argv)
        except Exception:  # a bug in one command must not take the keyspace down
            log.exception("internal error running %r", argv[0][:64])
            return ERR_INTERNAL

    def exec_transaction(self, commands: list[list[bytes] | bytes]) -> bytes:
        """EXEC: run the queued commands back to back; log them as one MULTI/EXEC block."""
        aof = self.aof
        start = len(aof.aof_buf) if aof is not None else 0
        # an item that is bytes is the reply of a connection command the worker ran (AUTH...)
        replies = [item if isinstance(item, bytes) else self.call(item) for item in commands]
        self.stat_commands += len(commands) + 1
        if aof is not None and len(aof.aof_buf) - start > 1:
            # Replay applies all of it or none of it (a torn block is cut at MULTI).
            aof.aof_buf.insert(start, [b"MULTI"])
            aof.aof_buf.append([b"EXEC"])
        return b"*%d\r\n" % len(replies) + b"".join(replies)

    # ---------------------------------------------------------------- handler context

    def config_params(self) -> dict[str, bytes]:
        c = self.config
        return {
            "port": b"%d" % c.port,
            "bind": " ".join(c.bind).encode(),
            "dir": os.path.abspath(c.dir).encode(),
            "appendonly": b"yes" if c.appendonly else b"no",
            "appendfsync": c.fsync.encode(),
            "appendfilename": c.appendfilename.encode(),
            "appenddirname": b"",  # kvred keeps one AOF file in `dir`, not a directory of them
            "auto-aof-rewrite-percentage": b"%d" % c.auto_aof_rewrite_percentage,
            "auto-aof-rewrite-min-size": b"%d" % c.auto_aof_rewrite_min_size,
            "save": b"",
            "databases": b"1",
            "maxmemory": b"0",
            "timeout": b"%d" % c.timeout,
            "loglevel": c.loglevel.encode(),
            "proto-max-bulk-len": b"%d" % c.proto_max_bulk_len,
            "requirepass": (c.requirepass or "").encode(),
            "protected-mode": b"yes" if c.protected_mode else b"no",
            "maxclients": b"%d" % c.maxclients,
            "client-query-buffer-limit": b"%d" % c.client_query_buffer_limit,
            "client-output-buffer-limit": b"normal %d %d 0"
            % (c.client_output_buffer_limit, c.client_output_buffer_limit),
        }

    def _maybe_auto_rewrite(self) -> None:
        """Redis's auto-aof-rewrite-percentage / -min-size rule."""
        aof, c = self.aof, self.config
        if aof is None or self.rewriter is None or self.rewriter.in_progress or c.auto_aof_rewrite_percentage <= 0:
            return
        if aof.current_size < c.auto_aof_rewrite_min_size:
            return
        base = max(aof.base_size, 1)
        growth = (aof.current_size - base) * 100 // base
        if growth >= c.auto_aof_rewrite_percentage:
            log.info("starting automatic AOF rewrite: %d%% growth over %d bytes", growth, base)
            self.rewriter.start(self.db)

    def request_rewrite(self) -> bytes:
        if self.rewriter is None:
            return b"-ERR AOF is disabled (--appendonly no)\r\n"
        if self.rewriter.in_progress or self._rewrite_requested:
            return b"-ERR Background append only file rewriting already in progress\r\n"
        self._rewrite_requested = True
        return b"+Background append only file rewriting started\r\n"

    def request_shutdown(self) -> bytes:
        """SHUTDOWN: make the AOF durable now, then ask the supervisor to stop everything."""
        if self.aof is not None:
            try:
                self.aof.flush()
                self.aof.fsync_now()
            except OSError as exc:
                log.warning("SHUTDOWN: errors trying to write the AOF: %s", exc)
                return b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
        if not self._shutdown_requested:
            self._shutdown_requested = True
            log.info("user requested shutdown...")
            self.control.sendall(b"S")
        return b""  # no reply: the connection closes as the server stops, as with Redis

    def reset_stats(self) -> bytes:
        self.stat_commands = 0
        self.stat_connections = 0
        return resp.OK

    def set_client_name(self, name: bytes) -> None:
        info = self.clients.get(self.client_id)
        if info is not None:
            info.name = name

    def client_name(self) -> bytes:
        info = self.clients.get(self.client_id)
        return info.name if info is not None else b""

    def client_list(self, only_current: bool = False) -> bytes:
        now = time.monotonic()
        rows = []
        for info in self.clients.values():
            if only_current and info.id != self.client_id:
                continue
            rows.append(
                f"id={info.id} addr={info.addr} laddr={info.laddr} fd=-1 name={info.name.decode(errors='replace')} "
                f"age={int(now - info.created)} idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 "
                f"qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 "
                f"events=r cmd=NULL user=default redir=-1 resp={info.resp}\n"
            )
        return "".join(rows).encode()

    def info_sections(self) -> dict[str, dict[str, object]]:
        uptime = int(time.time() - self.started_at)
        rss = psutil.Process().memory_info().rss
        aof, rw = self.aof, self.rewriter
        return {
            "server": {
                "redis_version": REDIS_VERSION,
                "kvred_version": __version__,
                "redis_mode": "standalone",
                "os": f"{os.uname().sysname} {os.uname().release} {os.uname().machine}",
                "arch_bits": 64,
                "multiplexing_api": "epoll",
                "process_id": os.getppid(),  # the supervisor: the process users signal
                "writer_process_id": os.getpid(),
                "tcp_port": self.config.port,
                "uptime_in_seconds": uptime,
                "uptime_in_days": uptime // 86400,
                "workers": self.config.workers,
            },
            "clients": {
                "connected_clients": len(self.clients),
                "maxclients": self.config.maxclients,
                "blocked_clients": 0,
            },
            "memory": {
                "used_memory": rss,
                "used_memory_human": f"{rss / 1024 / 1024:.2f}M",
                "used_memory_rss": rss,
                "maxmemory": 0,
            },
            "persistence": {
                "loading": 0,
                "aof_enabled": int(aof is not None),
                "aof_rewrite_in_progress": int(rw is not None and rw.in_progress),
                "aof_rewrites": rw.rewrites if rw else 0,
                "aof_last_bgrewrite_status": rw.last_status if rw else "ok",
                "aof_last_write_status": "ok" if aof is None or aof.last_write_ok else "err",
                "aof_current_size": aof.current_size if aof else 0,
                "aof_base_size": aof.base_size if aof else 0,
                "aof_delayed_fsync": aof.delayed_fsync if aof else 0,
            },
            "stats": {
                "total_connections_received": self.stat_connections,
                "total_commands_processed": self.stat_commands,
                "instantaneous_ops_per_sec": self.instantaneous_ops,
            },
            "replication": {"role": "master", "connected_slaves": 0},
            "cpu": _cpu_times(),
            "keyspace": {"db0": f"keys={len(self.db)},expires=0,avg_ttl=0"} if self.db else {},
        }

    def _cron(self, now: float) -> None:
        if self.rewriter is not None:
            self.rewriter.poll()
            self._maybe_auto_rewrite()
        then, count = self._ops_sample
        if now > then:
            self.instantaneous_ops = int((self.stat_commands - count) / (now - then))
        self._ops_sample = (now, self.stat_commands)


def _log_nothing(argv: list[bytes]) -> None:
    pass


def _refuse_writes(batch: list[Any], replies: list[Any]) -> None:
    """After a failed AOF write: answer every write command of the pass with MISCONF.

    Their effect stays in memory and in the AOF buffer (retried next pass), but
    no client is told OK for data the file may not hold.
    """
    for i, (op, _client_id, _resp3, payload) in enumerate(batch):
        if op == ipc.OP_RUN:
            run_replies = replies[i]
            for j, argv in enumerate(payload):
                cmd = lookup(argv[0])
                if cmd is not None and cmd.write:
                    run_replies[j] = ERR_MISCONF
        elif op == ipc.OP_EXEC and any(
            type(argv) is list and (c := lookup(argv[0])) is not None and c.write for argv in payload
        ):
            replies[i] = ERR_MISCONF


def _cpu_times() -> dict[str, object]:
    t = os.times()
    return {"used_cpu_sys": f"{t.system:.6f}", "used_cpu_user": f"{t.user:.6f}"}
