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

When a write (or fsync) of the AOF fails, no reply says something untrue:
- write commands that arrive afterwards are refused with Redis's MISCONF error
  *before* they run, until the cron's retry gets the pending bytes on disk;
  reads keep working;
- the pass whose write failed did run: its data stays in memory and pending for
  the retry. Under `everysec` and `no` its replies are released, as Redis does
  (those policies already allow losing the last second on a crash). Under
  `always` nothing unsynced is acknowledged: the pass's clients get
  REPLY_DEFERRED, their later commands wait here in order, and their replies go
  out in `resume` messages once the retry has written and synced the data.

Nothing a client sends ends this process: a command's bug is an internal error
for that command, an oversized reply drops only its client, a corrupt link only
that worker (which the supervisor restarts).
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
from .blocking import BlockOn
from .clients import WriterClient
from .collector import CycleCollector
from .commands import COMMANDS
from .commands.base import Handler
from .config import MULTI_ARG_SETTINGS, Config, plural, set_log_level, setup_logging
from .eviction import EVICT_OK, tracking_for
from .execute import Executor
from .keyspace import Databases, WrongType, unwatch_all
from .memory import DICT_ENTRY_BYTES, MemoryTrimmer, bytes_to_human, malloc_report
from .replay import scan_aof
from .rewrite import AofRewriter, fsync_directory, remove_stale_temp_files, write_snapshot
from .scripting.runner import runner_for
from .settings import ALIASES, ERR_NO_CONFIG_FILE, Setting, SettingError, SettingsTable, config_set, rewrite_config_text

__all__ = ["Writer", "Link"]

log = logging.getLogger("kvred.writer")

LINK_RECV_BYTES = 1 << 20  # one recv() per readable link per pass
PUSH_FRAME_BYTES = 64 << 20  # pushes per frame, at most about (a fan-out can be large)
OP_DONE = 99  # an event of a stashed batch already handled while a script was busy
CRON_INTERVAL_S = 0.1  # statistics sampling, as Redis's serverCron at hz 10
EXPIRE_BEHIND_INTERVAL_S = 0.02  # the next expire cycle while keys are left to expire (kvred/keyspace.py)
HZ = 10  # the writer's cron runs 10 times a second, as Redis's default hz
LRU_CLOCK_MAX = (1 << 24) - 1  # Redis's LRU clock: seconds, 24 bits
REDIS_VERSION = "7.0.15"  # the Redis version whose behaviour kvred reproduces
ERR_REWRITE_FORK = (
    b"-ERR Can't execute an AOF background rewriting. Please check the server logs for more information.\r\n"
)


class Link:
    """The writer's end of one worker link."""

    __slots__ = ("sock", "reader", "out", "slot", "wants_write", "stashed")

    def __init__(self, sock: socket.socket, slot: int) -> None:
        self.sock = sock
        self.reader = ipc.FrameReader()
        self.out: list[bytes | bytearray] = []  # encoded reply frames waiting for the group commit
        self.slot = slot
        self.wants_write = False  # registered for writability: `out` holds what the worker has not taken
        self.stashed: list[Any] = []  # batches read while a script was busy: they run after it


class Writer:
    """Keyspace + AOF owner. Build before fork; `run()` in the child."""

    def __init__(self, config: Config, control: socket.socket) -> None:
        self.config = config
        self.control = control  # to the supervisor: new links arrive here (SCM_RIGHTS)
        self.databases = Databases(config.databases, config.track_key_access, config)
        self.databases.set_tracking(tracking_for(config.maxmemory_policy, config.track_key_access))
        self.executor = Executor(config, self.databases, self)
        self.databases.set_notify_flags(config.notify_keyspace_events)
        self.clients: dict[int, WriterClient] = {}
        self.links: list[Link] = []
        self.aof: AppendOnlyFile | None = None
        self.started_at = time.time()
        # clients whose later entries queue: blocked (BLPOP...), or their replies wait for
        # the AOF retry (fsync always); the executor's, shared
        self.deferred: dict[int, WriterClient] = self.executor.waiting
        self._pass_resumes: list[tuple[Link, int, list[Any]]] = []  # released this pass
        self._held_pushes: list[tuple[WriterClient, int, bytes]] = []  # of passes the AOF failed
        self._monitoring = False  # what the workers were told: some client runs MONITOR
        self._busy_announced = False  # the workers were told a script is busy (they answer BUSY)
        self.scripts = runner_for(self.executor.ctx)
        self.scripts.heartbeat = self._script_heartbeat
        self.trimmer = MemoryTrimmer()  # requests and replies that passed through: give memory back
        self.startup_rss = 0  # used_memory_startup: the writer's RSS before it loads or serves
        self.collector = CycleCollector()  # the dataset out of the cycle collector's view
        # statistics for INFO
        self.stat_connections = 0
        self.run_id = os.urandom(20).hex()  # Redis's run_id: new at each start
        self.run_id_repl = os.urandom(20).hex()  # master_replid
        self.peak_rss = 0
        # what the workers report (OP_STATS, client id 0): bytes read and written on
        # client sockets, reads and writes, connections refused
        self.net_input_bytes = self.net_output_bytes = 0
        self.reads_processed = self.writes_processed = 0
        self.rejected_connections = 0
        self._net_sample = (time.monotonic(), 0, 0)
        self.instantaneous_input_kbps = self.instantaneous_output_kbps = 0.0
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
        self.settings = SettingsTable()
        self._config_changes: dict[str, Any] = {}  # CONFIG SET's, for the workers, sent in the pass
        self._config_token = 0  # numbers each CONFIG SET's message to the workers
        self._oom_announced = False  # what the workers were last told of maxmemory (MSG_OOM)
        # token -> (client, reply, links yet to apply it): the CONFIG SET's client waits
        self._config_waits: dict[int, tuple[WriterClient, bytes, set[Link]]] = {}
        self._rewrite_requested = False
        self._shutdown_requested = False

    # ---------------------------------------------------------------- process

    def run(self) -> int:
        setup_logging(self.config.loglevel, "W")
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor orchestrates Ctrl-C
        signal.signal(signal.SIGTERM, self._on_sigterm)
        # A file-size limit must fail write() with EFBIG (a disk error we report), not kill us.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        self.startup_rss = psutil.Process().memory_info().rss
        if self.config.appendonly:
            remove_stale_temp_files(self.config.dir)
            if not self._load_aof():
                return 1
            self.aof = AppendOnlyFile(self.config.aof_path, self.config.fsync)
            self.aof.open()
            self.executor.log_into(self.aof.aof_buf)  # from now on every change is logged
            self.rewriter = AofRewriter(self.aof)
            expired = self.databases.expire_after_load()
            if expired:
                log.info("%d keys expired while the server was down: deleted", expired)
        self.collector.freeze_now()  # the loaded dataset is never traversed by a collection
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
        # nothing is logged yet, and nothing expires while loading
        self.databases.loading = True
        try:
            scan = scan_aof(path, self._replay)
        finally:
            self.databases.loading = False
            self.executor.ctx.select(0)
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
            "DB loaded from append only file: %.3f seconds, %s, %s, %.1f MB/s",
            took,
            plural(scan.commands, "command"),
            plural(sum(len(db) for db in self.databases.dbs), "key"),
            scan.size / max(took, 1e-9) / 1e6,
        )
        return True

    def _replay(self, handler: Handler, argv: list[bytes]) -> None:
        try:
            handler(self.executor.ctx, argv)
        except WrongType:
            pass  # an error reply, as it was when the command first ran

    def _on_sigterm(self, signum: int, frame: object) -> None:
        self._stopping = True

    def _serve(self) -> None:
        sel = self._selector = selectors.DefaultSelector()
        sel.register(self.control, selectors.EVENT_READ, None)
        cron_due = expire_due = time.monotonic() + CRON_INTERVAL_S
        executor = self.executor
        blocked = executor.blocked
        while not self._stopping:
            # wake for the cron, the expire cycle, or the first blocked client's timeout
            due = min(cron_due, expire_due)
            if blocked.count:
                due = min(due, blocked.next_deadline())
            if executor.paused_until:
                due = min(due, executor.paused_until)
            try:
                events = sel.select(max(0.0, due - time.monotonic()))
            except InterruptedError:
                continue
            for key, mask in events:
                link = key.data
                if link is None:
                    self._on_control()
                    continue
                if mask & selectors.EVENT_READ:
                    self._read_link(link)
                if mask & selectors.EVENT_WRITE:
                    self._send(link)
            if self._busy_announced:
                self._end_busy()
            if self._rewrite_requested:
                self._rewrite_requested = False  # scheduled by a BGREWRITEAOF inside EXEC
                self._start_rewrite()
            now = time.monotonic()
            if executor.paused_until and executor.paused_until <= now:
                self._duty(executor.unpause)
            if blocked.count and blocked.next_deadline() <= now:
                self._duty(executor.expire_blocked)
            if now >= expire_due and not executor.paused_until:  # a pause stops expiry too (Redis)
                behind = self._duty(self._expire_keys)
                expire_due = now + (EXPIRE_BEHIND_INTERVAL_S if behind else CRON_INTERVAL_S)
            if now >= cron_due:
                self._cron(now)
                cron_due = now + CRON_INTERVAL_S
            if (self._pass_batches or executor.resumed or executor.pushes or executor.kills or self._config_changes
                    or executor.tracking.pending or bool(executor.monitors) is not self._monitoring):
                for link in self._commit_pass():
                    self._send(link)

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
            # a worker starts with the settings and users of the start-up config (a worker
            # respawned after a crash too): tell it of every change since
            self._queue_frame(link, {ipc.MSG_CONFIG: [0, self.settings.runtime_values(self.config)]})
            self._queue_frame(link, {ipc.MSG_USERS: self._users_message()})
            self._send(link)
            assert self._selector is not None
            self._selector.register(sock, selectors.EVENT_READ, link)

    def _read_link(self, link: Link) -> bool:
        """Run every complete batch waiting on `link`; False if nothing was run."""
        if link.stashed:  # read while a script was busy: they come first
            self._end_busy()
        # MISCONF until the AOF takes writes again (the everysec thread may also fail)
        aof = self.aof
        self.executor.refusing = "" if aof is None or aof.last_write_ok else aof.last_write_error
        try:
            size = link.sock.recv_into(self._recv_buf)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            size = 0
        if not size:
            self._drop_link(link)
            return False
        self.trimmer.churned += size
        try:
            batches = link.reader.feed(self._recv_view[:size])
        except Exception:  # not msgpack, or not a batch: the link is corrupt, not the keyspace
            log.exception("unreadable message from worker slot %d: dropping its link", link.slot)
            self._drop_link(link)
            return False
        ran = False
        for batch in batches:
            try:
                self._run_batch(batch, link)
            except Exception:  # a batch that is not [op, client, resp3, payload] entries
                log.exception("malformed batch from worker slot %d: dropping its link", link.slot)
                self._drop_link(link)
                return ran
            ran = True
        return ran

    # ---------------------------------------------------------------- busy scripts

    def _script_heartbeat(self) -> None:
        """Called by the script runner while a script runs past busy-reply-threshold
        (kvred/scripting/runner.py): tell the workers once, so that they answer other
        clients BUSY themselves, and look at what the links bring for SCRIPT KILL,
        FUNCTION KILL and SHUTDOWN NOSAVE, the commands that may act on a busy server.
        Whatever else arrives waits, in order, until the script ends."""
        if not self._busy_announced:
            self._busy_announced = True
            self._announce({ipc.MSG_BUSY: self.scripts.busy_error()})
        for link in list(self.links):
            try:
                data = link.sock.recv(LINK_RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                continue  # a closed link is dropped by the main loop, after the script
            try:
                batches = link.reader.feed(data)
            except Exception:
                log.exception("unreadable message from worker slot %d while a script ran", link.slot)
                continue
            for batch in batches:
                link.stashed.append(batch)
                self._act_while_busy(batch, link)

    def _act_while_busy(self, batch: list[Any], link: Link) -> None:
        for entry in batch:
            op, client_id, _resp3, payload = entry
            if op == ipc.OP_CONNECT:  # known now, so that a SCRIPT KILL of its can be answered
                self._client_event(op, client_id, payload, link)
                entry[0] = OP_DONE
            elif op == ipc.OP_UPDATE and "kill" in payload:
                self._kill_script(client_id, payload["kill"], payload)
            elif op <= ipc.OP_EXEC:
                for argv in payload:
                    if type(argv) is list and len(argv) == 2 and argv[0].lower() == b"shutdown" \
                            and argv[1].lower() == b"nosave":
                        self._shutdown_during_script()

    def _kill_script(self, client_id: int, what: str, event: dict[str, Any]) -> None:
        """SCRIPT KILL / FUNCTION KILL sent while a script was busy: the worker sent it as
        an event (kvred/connection.py) and the answer goes back at once as a push, after
        the replies the client is owed. Its event is seen twice (now, and when its batch
        runs after the script): the first sight answers."""
        if event.pop("answered", False):
            return
        event["answered"] = True
        client = self.clients.get(client_id)
        if client is None or client.link is None:
            return
        reply = self.scripts.request_kill(what == "script")
        self._queue_frame(client.link, {ipc.MSG_PUSH: [[client_id, client.answered, reply]]})
        self._send(client.link)

    def _shutdown_during_script(self) -> None:
        """SHUTDOWN NOSAVE while a script is busy: stop now. What the script changed is
        not in the AOF (a script's effects are logged when it ends), and nothing of this
        pass was acknowledged; what earlier passes wrote is synced."""
        log.warning("SHUTDOWN NOSAVE while a script was busy: exiting without running the rest")
        if self.aof is not None:
            self.aof.sync_written()
        try:
            self.control.sendall(b"S")
        except OSError:
            pass
        os._exit(0)

    def _users_message(self) -> list[bytes]:
        """The users as ACL LIST lines for the workers, as bytes: a name or a pattern
        may hold a client's undecodable bytes (kvred/ipc.py text_to_wire)."""
        return [ipc.text_to_wire(line) for line in self.executor.acl.describe_all()]

    def _announce(self, message: Any) -> None:
        """A message for every worker, sent now (it says nothing about the data)."""
        for link in list(self.links):
            self._queue_frame(link, message)
            self._send(link)

    def _end_busy(self) -> None:
        """After a busy script: workers forward again, and what waited runs in order."""
        if self.scripts.busy:
            return
        self._busy_announced = False
        self._announce({ipc.MSG_BUSY: None})
        for link in list(self.links):
            stashed, link.stashed = link.stashed, []
            for batch in stashed:
                self._run_batch(batch, link)

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
        if self._config_waits:
            self._config_applied(link, -1)  # a CONFIG SET does not wait for a worker that is gone
        for client_id in [cid for cid, info in self.clients.items() if info.link is link]:
            self._forget_client(client_id)

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

    def _commit_pass(self) -> set[Link]:
        """Group commit: log, sync per policy, then encode the pass's replies, resumed
        replies and pushes; returns the links that have frames to send.

        Under `always`, a pass whose own AOF data did not reach the disk releases
        none of them: its clients are deferred, and its pushes held, until `_retry_aof`."""
        batches, self._pass_batches = self._pass_batches, []
        resumes, self._pass_resumes = self._pass_resumes, []
        executor = self.executor
        if executor.tracking.pending:
            executor.tracking.flush_broadcasts()  # BCAST: the keys changed in this pass, at once
        for client, replies in executor.resumed:
            resumes.append((client.link, client.id, replies))
        executor.resumed.clear()
        pushes, executor.pushes = executor.pushes, []
        aof = self.aof
        if aof is not None:
            logged = bool(aof.aof_buf)
            try:
                aof.flush()
            except AofWriteError:
                if not self.executor.refusing:
                    log.warning("AOF write failed (%s): write commands are refused until it succeeds", aof.last_write_error)
                self.executor.refusing = aof.last_write_error or "unknown error"
                if logged and aof.fsync_policy == "always":
                    self._defer_replies(resumes, batches)
                    self._held_pushes += pushes
                    pushes = []
        touched = set()
        if self.config.maxmemory or self._oom_announced:
            oom = self.config.maxmemory > 0 and executor.evictor.out_of_memory()
            if oom is not self._oom_announced:  # workers refuse MULTI's queueing meanwhile
                self._oom_announced = oom
                for link in self.links:
                    self._queue_frame(link, {ipc.MSG_OOM: oom})
                    touched.add(link)
        if self._config_changes:
            # every worker applies it and says so (OP_ACK): the CONFIG SET waits for that
            for link in self.links:
                self._queue_frame(link, {ipc.MSG_CONFIG: [self._config_token, self._config_changes]})
                touched.add(link)
            self._config_changes = {}
        if executor.acl.changed:
            # the workers' replicas of the users (AUTH, MULTI's checks), sent to every
            # worker before any reply of this pass is queued: a client that heard of a
            # change finds it in every worker's socket (ACL is not data: no AOF to wait for)
            executor.acl.changed = False
            self._announce({ipc.MSG_USERS: self._users_message()})
        # A client's resumed replies are older than anything of it in this pass's batches.
        for link, client_id, replies in resumes:
            self._queue_frame(link, {ipc.MSG_RESUME: [[client_id, [_joined(r) for r in replies]]]})
            touched.add(link)
        for link, _batch, replies in batches:
            self._queue_frame(link, replies)  # joined by _run_batch
            touched.add(link)
        if pushes:
            touched.update(self._queue_pushes(pushes))
        if executor.kills:
            touched.update(self._queue_kills(executor.kills))
            executor.kills = []
        if bool(executor.monitors) is not self._monitoring:
            # workers show MONITOR the commands they answer themselves (PING, AUTH...)
            self._monitoring = bool(executor.monitors)
            for link in self.links:
                self._queue_frame(link, {ipc.MSG_MONITORING: self._monitoring})
                touched.add(link)
        return touched

    def _queue_kills(self, victims: list[WriterClient]) -> set[Link]:
        by_link: dict[Link, list[int]] = {}
        for client in victims:
            if client.link is not None:
                by_link.setdefault(client.link, []).append(client.id)
        for link, ids in by_link.items():
            self._queue_frame(link, {ipc.MSG_KILL: ids})
        return set(by_link)

    def _queue_pushes(self, pushes: list[tuple[WriterClient, int, bytes]]) -> set[Link]:
        """One push message per link (per PUSH_FRAME_BYTES of them); each push says after
        how many of its client's replies it goes (kvred/ipc.py)."""
        by_link: dict[Link, list[list[Any]]] = {}
        sizes: dict[Link, int] = {}
        for client, answered, frame in pushes:
            link = client.link
            if link is None or client.id not in self.clients:
                continue  # gone since
            items = by_link.get(link)
            if items is None:
                items = by_link[link] = []
                sizes[link] = 0
            items.append([client.id, answered, frame])
            sizes[link] += len(frame)
            if sizes[link] > PUSH_FRAME_BYTES:
                self._queue_frame(link, {ipc.MSG_PUSH: items})
                by_link[link] = []
                sizes[link] = 0
        for link, items in by_link.items():
            if items:
                self._queue_frame(link, {ipc.MSG_PUSH: items})
        return set(by_link)

    def _defer_replies(self, resumes: list[tuple[Link, int, list[Any]]], batches: list[Any]) -> None:
        """Hold every reply of the pass for the retry; the clients' later entries wait too."""
        for link, client_id, replies in resumes:
            client = self._deferred_client(client_id, link)
            client.owed.extend(replies)
            client.answered -= sum(type(reply) is not tuple for reply in replies)  # partials count not
        resumes.clear()
        for link, batch, replies in batches:
            for i, entry in enumerate(batch):
                reply = replies[i]
                if entry[0] > ipc.OP_EXEC or reply is ipc.REPLY_DEFERRED or type(reply) is int:
                    continue  # events have no reply; a dropped client is dropped anyway
                client = self._deferred_client(entry[1], link)
                client.owed.append(reply)
                client.answered -= 1  # answered again when resumed
                replies[i] = ipc.REPLY_DEFERRED

    def _deferred_client(self, client_id: int, link: Link) -> WriterClient:
        client = self.deferred.get(client_id)
        if client is None:
            client = self.clients.get(client_id) or self._new_client(client_id, "", "", link)
            self.deferred[client_id] = client
        return client

    def _retry_aof(self) -> None:
        """Cron: after an AOF error, try the disk again; once the pending bytes are
        written and synced, writes are accepted again and deferred clients resume."""
        aof = self.aof
        if aof is None or (aof.last_write_ok and not aof.pending_bytes and not self.deferred):
            return
        if not aof.sync_all():
            return
        self.executor.refusing = ""
        self.executor.pushes[:0] = self._held_pushes
        self._held_pushes = []
        for client in [client for client in self.deferred.values() if client.owed and client.blocked is None]:
            replies, client.owed = client.owed, []
            self.executor.run_queued(client, replies)
        for link in self._commit_pass():
            self._send(link)

    def _queue_frame(self, link: Link, message: Any) -> None:
        try:
            frame = ipc.encode_frame(message)
        except Exception:  # over MAX_FRAME_BYTES (or a reply msgpack cannot hold)
            log.exception("a reply frame for worker slot %d is too large: dropping its largest replies", link.slot)
            frame = ipc.encode_frame(_fit_frame(message))
        self.trimmer.churned += len(frame)
        link.out.append(frame)

    def _run_batch(self, batch: list[Any], link: Link) -> None:
        """Run one request batch; its replies wait in the pass until the commit."""
        replies: list[Any] = []
        deferred = self.deferred
        clients = self.clients
        executor = self.executor
        run_entry = executor.run_entry
        run_single = executor.run_single
        commands = 0  # counted here, once per batch: an attribute += per entry cost ~400 instructions
        for entry in batch:
            op, client_id, resp3, payload = entry
            if op <= _OP_EXEC:  # OP_RUN or OP_EXEC
                if deferred and client_id in deferred:
                    deferred[client_id].queued.append(entry)  # behind its owed replies, in order
                    replies.append(_REPLY_DEFERRED)
                elif executor.paused_until and executor.pause_applies(op, payload):
                    client = clients.get(client_id) or self._unannounced_client(client_id, link)
                    executor.hold_for_pause(client, entry)  # CLIENT PAUSE: runs when it ends
                    replies.append(_REPLY_DEFERRED)
                else:
                    client = clients.get(client_id) or self._unannounced_client(client_id, link)
                    if not op and len(payload) == 1:  # one command: a client that does not pipeline
                        client.last_command = argv = payload[0]  # CLIENT LIST's cmd=
                        reply = run_single(client, resp3, argv)
                    else:
                        client.last_command = _EXEC_ARGV if op else payload[-1]
                        reply = run_entry(op, client, resp3, payload)
                        if type(reply) is list:  # an OP_RUN's replies go on the link joined
                            reply = b"".join(reply)
                    replies.append(reply)
                    if reply is not _REPLY_DEFERRED:  # (False: the client blocked)
                        client.answered += 1
                    commands += len(payload) + op  # EXEC counts itself (OP_EXEC is 1, OP_RUN 0)
                continue
            try:
                self._client_event(op, client_id, payload, link)
            except Exception:
                log.exception("internal error handling event %d of client %d", op, client_id)
            replies.append(None)
        self.executor.stat_commands += commands
        self._pass_batches.append((link, batch, replies))

    def _unannounced_client(self, client_id: int, link: Link) -> WriterClient:
        # every client's OP_CONNECT precedes its commands on its link; this is a safety net
        # (a client killed with CLIENT KILL may still have commands in flight: those run
        # nothing, see Executor.kill, and it does not come back into CLIENT LIST)
        client = self._new_client(client_id, "?", "?", link)
        if client_id not in self.executor.output_limited:
            log.warning("commands of client %d came before its connection did", client_id)
            self.clients[client_id] = client
        return client

    def _new_client(self, client_id: int, addr: str, laddr: str, link: Link) -> WriterClient:
        client = WriterClient(client_id, addr, laddr, link)
        client.user = self.executor.acl.users["default"]  # as Redis: authenticated or not, the default user
        return client

    def _client_event(self, op: int, client_id: int, payload: Any, link: Link) -> None:
        if op == ipc.OP_CONNECT:
            new = self.clients[client_id] = self._new_client(client_id, payload[0], payload[1], link)
            if len(payload) > 2:
                new.stats[0] = payload[2]  # its socket's fd in its worker
            self.stat_connections += 1
        elif op == ipc.OP_DISCONNECT:
            self._forget_client(client_id)
        elif op == ipc.OP_ACK:
            self._config_applied(link, payload[0])
        elif op == ipc.OP_STATS:
            if client_id == ipc.WORKER_TOTALS:  # the worker's counts since its last report
                net_in, net_out, reads, writes, rejected, commands, errors = payload
                self.executor.stats.merge(commands, errors)
                self.net_input_bytes += net_in
                self.net_output_bytes += net_out
                self.reads_processed += reads
                self.writes_processed += writes
                self.rejected_connections += rejected
                return
            clients = self.clients
            for row in payload:
                known = clients.get(row[0])
                if known is not None:
                    known.stats = row[1:]
        elif op == ipc.OP_UPDATE:
            client = self.clients.get(client_id)
            if client is None:
                return
            client.name = payload.get("name", client.name)
            client.resp = payload.get("resp", client.resp)
            if "user" in payload:  # AUTH or HELLO AUTH succeeded in its worker
                user = self.executor.acl.users.get(ipc.text_from_wire(payload["user"]))
                if user is None:  # deleted since the worker's replica said yes
                    self.executor.kill(client)
                    return
                client.user = user
            if "acl_log" in payload:  # a denial the worker made (AUTH, MULTI queueing)
                reason, context, obj, username, argv = payload["acl_log"]
                client.last_command = argv  # a rejected command is CLIENT LIST's cmd= too, as in Redis
                self.executor.acl_log(reason, context, ipc.text_from_wire(obj), ipc.text_from_wire(username), client)
            if "kill" in payload:  # SCRIPT/FUNCTION KILL sent while busy, maybe answered then
                self._kill_script(client_id, payload["kill"], payload)
            if "feed" in payload:  # a command the worker answered, for MONITOR
                self.executor.feed_monitors(payload["feed"], client)
            if payload.get("unwatch"):  # DISCARD, an aborted EXEC
                unwatch_all(client)
            if payload.get("reset"):  # RESET: database 0, nothing watched, subscribed or monitored
                client.user = self.executor.acl.users["default"]
                unwatch_all(client)
                client.db = 0
                self.executor.pubsub.forget(client)
                if client.monitor:
                    self.executor.stop_monitor(client)
                self.executor.tracking.disable(client)

    def _forget_client(self, client_id: int) -> None:
        client = self.clients.pop(client_id, None)
        if client is not None:
            if client.watched:
                unwatch_all(client)
            self.executor.forget_client(client)
        self.executor.output_limited.discard(client_id)

    # ---------------------------------------------------------------- handler context

    def config_params(self) -> dict[str, bytes]:
        """CONFIG GET's table: every parameter Redis 7.0 lists (kvred/settings.py)."""
        return {name: value.encode("utf-8", "surrogateescape")
                for name, value in self.settings.values(self.config).items()}

    def config_set(self, pairs: list[tuple[bytes, bytes]]) -> bytes:
        """CONFIG SET: all or nothing. What changed goes to every worker in this pass,
        and the client is answered once every worker has applied it (OP_ACK), so that
        after the reply no connection, new or old, on any worker meets the old value.
        Inside MULTI or a script the reply cannot wait: it comes at once (the workers
        apply the change within the pass)."""
        reply, changed = config_set(self.settings, self.config, pairs, self._setting_changed)
        if not changed:
            return reply
        self._config_changes.update(changed)
        log.info("CONFIG SET: %s", ", ".join(sorted(changed)))
        ctx = self.executor.ctx
        if not self.links or not ctx.may_block:
            return reply
        self._config_token += 1
        self._config_waits[self._config_token] = (ctx.client, reply, set(self.links))
        raise BlockOn([], 0, reply, (), None)  # kvred/blocking.py: no key, no timeout

    def _config_applied(self, link: Link, token: int) -> None:
        """A worker applied the CONFIG SET messages up to `token` (or went away: token
        -1): answer the clients whose change every worker now has."""
        for waited in sorted(self._config_waits):
            if waited > token and token >= 0:
                break
            client, reply, pending = self._config_waits[waited]
            pending.discard(link)
            if not pending:
                del self._config_waits[waited]
                if client.blocked is not None:
                    self.executor.unblock(client, reply)

    def _setting_changed(self, setting: Setting) -> None:
        """Apply a new value where the running server holds a copy of it."""
        c, name = self.config, setting.name
        if name == "appendfsync" and self.aof is not None:
            self.aof.set_policy(c.fsync)
        elif name == "appendonly":
            self._switch_aof(c.appendonly)
        elif name == "notify-keyspace-events":
            self.databases.set_notify_flags(c.notify_keyspace_events)
        elif name == "loglevel":
            set_log_level(c.loglevel)
        elif name == "client-output-buffer-limit":
            self.executor.ctx.output_limit = c.client_output_buffer_limit or 1 << 62
        elif name in ("track-key-access", "maxmemory-policy"):
            # what each key's access entry records (none, LRU clock, LFU counter): kvred/eviction.py
            self.databases.set_tracking(tracking_for(c.maxmemory_policy, c.track_key_access))
        elif name in ("busy-reply-threshold", "lua-time-limit"):
            runner_for(self.executor.ctx).busy_reply_threshold_ms = c.busy_reply_threshold
        elif name in ("slowlog-log-slower-than", "latency-monitor-threshold"):
            self.executor.refresh_slow_threshold()
        elif name == "requirepass":
            self.executor.acl.set_requirepass(c.requirepass)  # the default user's password (kvred/acl.py)

    def _switch_aof(self, on: bool) -> None:
        """CONFIG SET appendonly: off closes the AOF (synced) and logs nothing more; on
        writes the dataset to a fresh AOF (in this process: it blocks for the time the
        dataset takes, where Redis forks) and logs from then on."""
        if on == (self.aof is not None):
            return
        if not on:
            assert self.aof is not None
            if self.rewriter is not None:
                self.rewriter.abort()
            self.aof.close()
            self.aof = self.rewriter = None
            self.executor.log_into(None)
            log.info("AOF turned off by CONFIG SET")
            return
        path = self.config.aof_path
        temp = os.path.join(self.config.dir, f"temp-rewriteaof-{os.getpid()}.aof")
        try:
            write_snapshot(self.databases, temp)
            os.replace(temp, path)
            fsync_directory(self.config.dir)
            aof = AppendOnlyFile(path, self.config.fsync)
            aof.open()
        except OSError as exc:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise SettingError(f"can't write the append-only file: {exc.strerror or exc}") from None
        self.aof = aof
        self.rewriter = AofRewriter(aof)
        self.executor.log_into(aof.aof_buf)
        log.info("AOF turned on by CONFIG SET: the dataset was written to %s", path)

    def config_rewrite(self) -> bytes:
        """CONFIG REWRITE: the running settings back into the file kvred was started with."""
        path = self.config.config_file
        if not path:
            return ERR_NO_CONFIG_FILE
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                old = f.read()
        except FileNotFoundError:
            old = ""
        except OSError as exc:
            return b"-ERR Rewriting config file: " + (exc.strerror or str(exc)).encode() + b"\r\n"
        current = {name: value for name, value in self.settings.values(self.config).items()
                   if self.settings.settings[name].attr is not None and name not in ALIASES}
        text = rewrite_config_text(old, current, self.settings.values(Config()), MULTI_ARG_SETTINGS)
        temp = f"{path}.tmp-{os.getpid()}"
        try:
            with open(temp, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, path)
        except OSError as exc:
            try:
                os.unlink(temp)
            except OSError:
                pass
            return b"-ERR Rewriting config file: " + (exc.strerror or str(exc)).encode() + b"\r\n"
        log.info("CONFIG REWRITE executed with success")
        return resp.OK

    def _poll_rewrite(self) -> None:
        if self.rewriter is not None:
            self.rewriter.poll()
            self._maybe_auto_rewrite()

    def _maybe_auto_rewrite(self) -> None:
        """Redis's auto-aof-rewrite-percentage / -min-size rule."""
        aof, c = self.aof, self.config
        rewriter = self.rewriter
        if aof is None or rewriter is None or rewriter.in_progress or c.auto_aof_rewrite_percentage <= 0:
            return
        if not aof.last_write_ok or not rewriter.auto_allowed(time.monotonic()):
            return  # a failing disk, or Redis's back-off after failed rewrites
        if aof.current_size < c.auto_aof_rewrite_min_size:
            return
        base = max(aof.base_size, 1)
        growth = (aof.current_size - base) * 100 // base
        if growth >= c.auto_aof_rewrite_percentage:
            if aof.base_size:
                log.info("starting automatic AOF rewrite: %d%% growth over %s", growth, plural(aof.base_size, "byte"))
            else:  # an AOF that started empty: a percentage of nothing says nothing
                log.info("starting automatic AOF rewrite: the AOF has grown to %s since it started empty",
                         plural(aof.current_size, "byte"))
            self._start_rewrite()

    def request_rewrite(self) -> bytes:
        """BGREWRITEAOF: fork now, so that a failed fork is the command's error (as Redis)."""
        if self.rewriter is None:
            return b"-ERR AOF is disabled (--appendonly no)\r\n"
        if self.rewriter.in_progress:
            return b"-ERR Background append only file rewriting already in progress\r\n"
        if self.executor.in_exec:
            # EXEC wraps its AOF records by their position in aof_buf, which a fork's
            # start_rewrite_buffer() would move: fork after the pass instead
            self._rewrite_requested = True
            return b"+Background append only file rewriting scheduled\r\n"
        if not self._start_rewrite():
            return ERR_REWRITE_FORK
        return b"+Background append only file rewriting started\r\n"

    def _start_rewrite(self) -> bool:
        if self.rewriter is None or not self.rewriter.start(self.databases):
            return False
        # the rewrite's tail is appended to a snapshot that ends in whatever database it
        # wrote last: the first change logged after the fork must say its database
        self.executor.select_before_next()
        return True

    def request_shutdown(self) -> bytes:
        """SHUTDOWN: make the AOF durable now, then ask the supervisor to stop everything."""
        if self.aof is not None and not self.aof.sync_all():
            log.warning("SHUTDOWN: errors trying to write the AOF: %s", self.aof.last_write_error)
            return b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
        if not self._shutdown_requested:
            self._shutdown_requested = True
            log.info("user requested shutdown...")
            self.control.sendall(b"S")
        return b""  # no reply: the connection closes as the server stops, as with Redis

    def debug_reload(self) -> bytes:
        """DEBUG RELOAD: Redis saves its RDB, empties the dataset and loads the file back.
        kvred has no RDB: the dataset is written as the AOF rewrite writes it (to a
        temporary file in `dir`), emptied, and replayed from that file. The AOF itself is
        left alone: it describes the same data."""
        path = os.path.join(self.config.dir, f"temp-debug-reload-{os.getpid()}.aof")
        try:
            write_snapshot(self.databases, path)
        except OSError as exc:
            log.warning("DEBUG RELOAD: could not write the snapshot: %s", exc)
            return b"-ERR Error trying to save the DB\r\n"
        executor = self.executor
        ctx = executor.ctx
        client, db = ctx.client, ctx.client.db
        aof_buf = executor.stop_logging()  # what is reloaded is already in the AOF
        self.databases.flushall()
        self.databases.loading = True
        try:
            scan = scan_aof(path, self._replay)
        finally:
            self.databases.loading = False
            if aof_buf is not None:
                executor.log_into(aof_buf)
            ctx.client = client
            ctx.select(db)
            os.unlink(path)
        if scan.error is not None:  # cannot happen for a file we just wrote; never silently
            log.error("DEBUG RELOAD: the snapshot did not load: %s", scan.error)
            return b"-ERR Error trying to load the RDB dump\r\n"
        return resp.OK

    def reset_stats(self) -> bytes:
        """CONFIG RESETSTAT: Redis's resetServerStats and resetCommandTableStats."""
        self.executor.stat_commands = 0
        self.stat_connections = 0
        self.net_input_bytes = self.net_output_bytes = 0
        self.reads_processed = self.writes_processed = 0
        self.rejected_connections = 0
        self.executor.stats.reset()
        self.databases.reset_stats()
        return resp.OK

    def client_list(self, only: WriterClient | None = None) -> bytes:
        now = time.monotonic()
        rows = []
        for info in [only] if only is not None else self.clients.values():
            flags = "".join(letter for letter, on in (
                ("O", info.monitor), ("P", info.channels or info.patterns or info.shard_channels),
                ("x", info.stats[2] >= 0), ("b", info.blocked is not None), ("t", info.tracking is not None),
                ("d", info.dirty_cas)) if on) or "N"
            fd, idle, multi, qbuf, multi_mem, omem, events = info.stats  # from its worker (OP_STATS)
            redirect = info.tracking.redirect if info.tracking is not None else -1
            rows.append(
                f"id={info.id} addr={info.addr} laddr={info.laddr} fd={fd} name={info.name.decode(errors='replace')} "
                f"age={int(now - info.created)} idle={idle} flags={flags} db={info.db} sub={len(info.channels)} "
                f"psub={len(info.patterns)} ssub={len(info.shard_channels)} multi={multi} "
                f"qbuf={qbuf} qbuf-free=0 argv-mem=0 multi-mem={multi_mem} rbs=0 rbp=0 obl=0 oll=0 omem={omem} "
                f"tot-mem={qbuf + multi_mem + omem} events={events} cmd={_command_name(info.last_command)} "
                f"user={info.user.name if info.user is not None else 'default'} redir={redirect} resp={info.resp}\n"
            )
        return "".join(rows).encode("utf-8", "surrogateescape")  # a user name may hold raw bytes

    def info_sections(self) -> dict[str, Callable[[], dict[str, object]]]:
        """INFO's sections in Redis 7.0's order, each a function giving its fields (only
        the sections asked for are computed: the memory and CPU ones read /proc), each
        field a true value or left out (kvred/commands/server.py renders them; Modules
        stays empty as with no modules)."""
        return {
            "server": self._info_server,
            "clients": self._info_clients,
            "memory": self._info_memory,
            "persistence": self._info_persistence,
            "stats": self._info_stats,
            "replication": self._info_replication,
            "cpu": _cpu_times,
            "modules": dict,
            "commandstats": self.executor.stats.commandstats,
            "errorstats": self.executor.stats.errorstats,
            "latencystats": self._info_latencystats,
            "cluster": lambda: {"cluster_enabled": 0},  # clients read it at start-up (redis-py's tests do)
            "keyspace": self._info_keyspace,
        }

    def _info_server(self) -> dict[str, object]:
        config = self.config
        now = time.time()
        uptime = int(now - self.started_at)
        uname = os.uname()
        return {
            "redis_version": REDIS_VERSION,
            "redis_git_sha1": "00000000",
            "redis_git_dirty": 0,
            "redis_mode": "standalone",
            "os": f"{uname.sysname} {uname.release} {uname.machine}",
            "arch_bits": 64,
            "monotonic_clock": "POSIX clock_gettime",  # Python's time.monotonic()
            "multiplexing_api": "epoll",
            "process_id": os.getppid(),  # the supervisor: the process users signal
            "process_supervised": "no",
            "run_id": self.run_id,
            "tcp_port": config.port,
            "server_time_usec": time.time_ns() // 1000,
            "uptime_in_seconds": uptime,
            "uptime_in_days": uptime // 86400,
            "hz": HZ,
            "configured_hz": HZ,
            "lru_clock": int(now) & LRU_CLOCK_MAX,
            "executable": _executable(),
            "config_file": config.config_file or "",
            "io_threads_active": 0,
            "kvred_version": __version__,
            "writer_process_id": os.getpid(),
            "workers": config.workers,
        }

    def _info_clients(self) -> dict[str, object]:
        executor, config = self.executor, self.config
        rows = [client.stats for client in self.clients.values()]
        return {
            "connected_clients": len(self.clients),
            "cluster_connections": 0,
            "maxclients": config.maxclients,
            # the largest query buffer and output buffer its worker last reported (OP_STATS)
            "client_recent_max_input_buffer": max((row[3] for row in rows), default=0),
            "client_recent_max_output_buffer": max((row[5] for row in rows), default=0),
            "blocked_clients": executor.blocked.count,
            "tracking_clients": len(executor.tracking.clients),
            "clients_in_timeout_table": executor.blocked.count_with_timeout(),
        }

    def _info_persistence(self) -> dict[str, object]:
        aof, rw = self.aof, self.rewriter
        return {
            "loading": 0,
            "async_loading": 0,
            "rdb_bgsave_in_progress": 0,
            "rdb_last_save_time": int(self.started_at),  # as LASTSAVE: no RDB is ever saved
            "rdb_last_bgsave_status": "ok",
            "rdb_last_bgsave_time_sec": -1,
            "rdb_current_bgsave_time_sec": -1,
            "rdb_saves": 0,
            "aof_enabled": int(aof is not None),
            "aof_rewrite_in_progress": int(rw is not None and rw.in_progress),
            "aof_rewrite_scheduled": 0,
            "aof_last_rewrite_time_sec": rw.last_rewrite_time_sec if rw else -1,
            "aof_current_rewrite_time_sec": rw.current_rewrite_time_sec() if rw else -1,
            "aof_last_bgrewrite_status": rw.last_status if rw else "ok",
            "aof_rewrites": rw.rewrites if rw else 0,
            "aof_last_write_status": "ok" if aof is None or aof.last_write_ok else "err",
            **({
                "aof_current_size": aof.current_size,
                "aof_base_size": aof.base_size,
                "aof_pending_rewrite": 0,
                "aof_buffer_length": _aof_buf_bytes(aof),
                "aof_pending_bio_fsync": 0,
                "aof_delayed_fsync": aof.delayed_fsync,
            } if aof is not None else {}),
        }

    def _info_stats(self) -> dict[str, object]:
        databases, executor, rw = self.databases, self.executor, self.rewriter
        pubsub = executor.pubsub
        return {
            "total_connections_received": self.stat_connections,
            "total_commands_processed": executor.stat_commands,
            "instantaneous_ops_per_sec": self.instantaneous_ops,
            "total_net_input_bytes": self.net_input_bytes,
            "total_net_output_bytes": self.net_output_bytes,
            "total_net_repl_input_bytes": 0,
            "total_net_repl_output_bytes": 0,
            "instantaneous_input_kbps": f"{self.instantaneous_input_kbps:.2f}",
            "instantaneous_output_kbps": f"{self.instantaneous_output_kbps:.2f}",
            "instantaneous_input_repl_kbps": "0.00",
            "instantaneous_output_repl_kbps": "0.00",
            "rejected_connections": self.rejected_connections,
            "sync_full": 0,
            "sync_partial_ok": 0,
            "sync_partial_err": 0,
            "expired_keys": databases.expired_keys,
            "expired_stale_perc": f"{databases.expired_stale_perc:.2f}",
            "expired_time_cap_reached_count": 0,
            "expire_cycle_cpu_milliseconds": int(databases.expire_cycle_cpu_ms),
            "evicted_keys": databases.evicted_keys,
            "evicted_clients": 0,
            "total_eviction_exceeded_time": 0,
            "current_eviction_exceeded_time": 0,
            "keyspace_hits": databases.hits,
            "keyspace_misses": databases.misses,
            "pubsub_channels": len(pubsub.channels),
            "pubsub_patterns": len(pubsub.patterns),
            "pubsubshard_channels": len(pubsub.shard_channels),
            "latest_fork_usec": rw.latest_fork_usec if rw else 0,
            "total_forks": rw.total_forks if rw else 0,
            "tracking_total_keys": len(executor.tracking.table),
            "total_error_replies": executor.stats.total_errors,
            "total_reads_processed": self.reads_processed,
            "total_writes_processed": self.writes_processed,
        }

    def _info_replication(self) -> dict[str, object]:
        return {
            "role": "master",
            "connected_slaves": 0,
            "master_failover_state": "no-failover",
            "master_replid": self.run_id_repl,
            "master_replid2": "0" * 40,
            "master_repl_offset": 0,
            "second_repl_offset": -1,
            "repl_backlog_active": 0,
            "repl_backlog_size": 1048576,
            "repl_backlog_first_byte_offset": 0,
            "repl_backlog_histlen": 0,
        }

    def _info_latencystats(self) -> dict[str, object]:
        config = self.config
        if not config.latency_tracking:
            return {}
        return dict(self.executor.stats.latencystats(list(config.latency_tracking_info_percentiles)))

    def _info_keyspace(self) -> dict[str, object]:
        return {
            f"db{db.id}": f"keys={len(db.data)},expires={len(db.expires)},avg_ttl={db.avg_ttl}"
            for db in self.databases.dbs
            if db.data
        }

    def memory_figures(self) -> dict[str, Any]:
        """What INFO memory and MEMORY STATS/DOCTOR report (kvred/memory.py's estimate).
        used_memory is the writer's start-up RSS plus the dataset estimate; maxmemory
        applies to the dataset alone (the interpreter's start-up footprint, tens of MB
        where Redis's is under 1 MB, would leave no room under a small maxmemory)."""
        estimate = self.executor.memory
        dataset = estimate.dataset_bytes(self.databases.dbs)
        startup = self.startup_rss
        rss = psutil.Process().memory_info().rss
        # clients' buffers, as their workers last reported them (OP_STATS)
        clients = sum(info.stats[3] + info.stats[4] + info.stats[5] for info in self.clients.values())
        aof_buffer = sum(sum(map(len, argv)) for argv in self.aof.aof_buf) if self.aof is not None else 0
        return {
            "used_memory": startup + dataset,
            "used_memory_startup": startup,
            "used_memory_dataset": dataset,
            "used_memory_peak": startup + estimate.peak,
            "rss": rss,
            "maxmemory": self.config.maxmemory,
            "clients_normal": clients,
            "aof_buffer": aof_buffer,
            "entry_bytes": DICT_ENTRY_BYTES,
        }

    def _info_memory(self) -> dict[str, object]:
        f = self.memory_figures()
        used, peak, rss, dataset = f["used_memory"], f["used_memory_peak"], f["rss"], f["used_memory_dataset"]
        startup = f["used_memory_startup"]
        c = self.config
        total = psutil.virtual_memory().total
        try:  # every kvred process: the supervisor and its children (workers, writer, a rewrite)
            supervisor = psutil.Process(os.getppid())
            rss_all = supervisor.memory_info().rss + sum(
                p.memory_info().rss for p in supervisor.children(recursive=True))
        except psutil.Error:
            rss_all = rss
        return {
            "used_memory": used,
            "used_memory_human": bytes_to_human(used),
            "used_memory_rss": rss,  # the writer's, which holds the data
            "used_memory_rss_human": bytes_to_human(rss),
            "used_memory_rss_all_processes": rss_all,  # kvred's: supervisor, workers and writer
            "used_memory_peak": peak,
            "used_memory_peak_human": bytes_to_human(peak),
            "used_memory_peak_perc": f"{100.0 * used / peak if peak else 100.0:.2f}%",
            "used_memory_overhead": used - dataset,
            "used_memory_startup": startup,
            "used_memory_dataset": dataset,
            "used_memory_dataset_perc": f"{100.0 * dataset / (used - startup) if used > startup else 0.0:.2f}%",
            "total_system_memory": total,
            "total_system_memory_human": bytes_to_human(total),
            "maxmemory": c.maxmemory,
            "maxmemory_human": bytes_to_human(c.maxmemory),
            "maxmemory_policy": c.maxmemory_policy,
            "mem_fragmentation_ratio": f"{rss / used if used else 0.0:.2f}",
            "mem_fragmentation_bytes": rss - used,
            "mem_not_counted_for_evict": startup,
            "mem_replication_backlog": 0,
            "mem_clients_slaves": 0,
            "mem_clients_normal": f["clients_normal"],
            "mem_aof_buffer": f["aof_buffer"],
            "mem_allocator": "libc",  # CPython's pymalloc (objects up to 512 bytes) over glibc malloc
            "active_defrag_running": 0,
            "lazyfree_pending_objects": 0,
            "lazyfreed_objects": 0,
        }

    def malloc_stats(self) -> bytes:
        """MEMORY MALLOC-STATS: CPython's and glibc's counters (Redis prints jemalloc's)."""
        return malloc_report()

    def purge_memory(self) -> None:
        """MEMORY PURGE: give free heap memory back to the system (malloc_trim)."""
        self.trimmer.trim_now()

    def _evict_keys(self) -> None:
        """The cron's part of eviction (Redis's evictionTimeProc): a command stopped by the
        time limit left the dataset over maxmemory; its DELs are logged like expiry's."""
        executor = self.executor
        c = self.config
        self.databases.set_tracking(tracking_for(c.maxmemory_policy, c.track_key_access))
        executor.memory.refresh(self.databases.dbs)
        if c.maxmemory and c.maxmemory_policy != "noeviction" and not executor.paused_until:
            if executor.evictor.perform() != EVICT_OK:
                log.debug("still over maxmemory after a cron eviction step")
            self._flush_cron_changes()

    def _cron(self, now: float) -> None:
        # Each duty on its own: one failing (a bug, an odd OS error) must not stop the others.
        self.databases.tick()
        duties = (self._retry_aof, self._poll_rewrite, self.databases.advance_compactions, self._evict_keys,
                  self.trimmer.maybe_trim, self.collector.maybe_freeze)
        for duty in duties:
            self._duty(duty)
        then, count = self._ops_sample
        commands = self.executor.stat_commands
        if now > then:
            self.instantaneous_ops = int((commands - count) / (now - then))
        self._ops_sample = (now, commands)
        then, net_in, net_out = self._net_sample
        if now > then:
            self.instantaneous_input_kbps = (self.net_input_bytes - net_in) / (now - then) / 1024
            self.instantaneous_output_kbps = (self.net_output_bytes - net_out) / (now - then) / 1024
        self._net_sample = (now, self.net_input_bytes, self.net_output_bytes)

    @staticmethod
    def _duty(duty: Callable[[], Any]) -> Any:
        """Run one periodic duty on its own: one failing (a bug, an odd OS error) must
        not stop the others, nor the writer."""
        try:
            return duty()
        except Exception:
            log.exception("internal error in the writer's cron (%s)", duty.__name__)
            return None

    def _expire_keys(self) -> bool:
        """The active expire cycle; its DELs are logged and written like any pass's.
        True if keys are left to expire now."""
        behind = self.databases.active_expire_cycle()
        self._flush_cron_changes()
        return behind

    def _flush_cron_changes(self) -> None:
        """Deletions made outside any client's command (expiry, eviction): serve who
        waited on those keys, and write their DELs now."""
        if self.databases.ready_keys:
            self.executor.serve_ready()  # XREADGROUP clients whose stream expired
        aof = self.aof
        if aof is not None and aof.aof_buf:
            try:
                aof.flush()
            except AofWriteError:
                self.executor.refusing = aof.last_write_error or "unknown error"


def _joined(reply: Any) -> Any:
    """A reply item as it goes on the link (an OP_RUN's replies are joined once)."""
    return b"".join(reply) if type(reply) is list else reply


def _fit_frame(message: Any) -> Any:
    """`message` with its largest replies replaced by DROPPED (an int) until what is
    left fits in a frame: those clients are closed, the others get their replies."""
    lists = [message] if type(message) is list else [replies for _cid, replies in message[ipc.MSG_RESUME]]
    sized = [(len(r), items, i) for items in lists for i, r in enumerate(items) if type(r) is bytes]
    total = sum(size for size, _items, _i in sized)
    budget = ipc.MAX_FRAME_BYTES - 16 * (len(sized) + 1)  # msgpack's headers, generously
    for size, items, i in sorted(sized, key=lambda entry: entry[0], reverse=True):
        if total <= budget:
            break
        items[i] = size
        total -= size
    return message


_EXEC_ARGV = [b"exec"]
# module constants for the batch loop (one lookup per entry, not two), and replies joined
# in it, not by a function per reply at the commit: -4.8% writer instructions per P1 SET
# with the AOF, 22.9k -> 21.8k (bench/writer_pass.py --callgrind --aof); P16 GET unchanged
_OP_EXEC = ipc.OP_EXEC
_REPLY_DEFERRED = ipc.REPLY_DEFERRED


def _command_name(argv: Any) -> str:
    """CLIENT LIST's cmd=: the last command's full name (`client|list`), or NULL."""
    if not argv:
        return "NULL"
    cmd = COMMANDS.get(argv[0]) or COMMANDS.get(argv[0].lower())
    if cmd is None:
        return "NULL"
    if cmd.subcommands and len(argv) > 1 and argv[1].lower() in cmd.subcommands:
        return f"{cmd.name}|{argv[1].lower().decode()}"
    return cmd.name


def _cpu_times() -> dict[str, object]:
    """CPU of every kvred process (the supervisor, its workers and this writer), as
    Redis's used_cpu_* is its one process's; _children: AOF rewrites (forks) that
    ended; _main_thread: this writer, which runs every command."""
    own = os.times()
    sys_s = user_s = 0.0
    supervisor = os.getppid()
    family = [supervisor, *_child_pids(supervisor)]
    if os.getpid() not in family:  # no /proc children list: at least this process
        family = [os.getpid()]
    for pid in family:
        times = _proc_cpu(pid)
        if times is not None:
            user_s += times[0]
            sys_s += times[1]
    return {
        "used_cpu_sys": f"{sys_s:.6f}",
        "used_cpu_user": f"{user_s:.6f}",
        "used_cpu_sys_children": f"{own.children_system:.6f}",
        "used_cpu_user_children": f"{own.children_user:.6f}",
        "used_cpu_sys_main_thread": f"{own.system:.6f}",
        "used_cpu_user_main_thread": f"{own.user:.6f}",
    }


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _child_pids(pid: int) -> list[int]:
    """A process's children from /proc (psutil's children() scans every process: 12 ms)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as f:
            return [int(word) for word in f.read().split()]
    except (OSError, ValueError):
        return []


def _proc_cpu(pid: int) -> tuple[float, float] | None:
    """(user, system) seconds of a process, from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None  # a worker that just exited
    return int(fields[11]) / _CLOCK_TICKS, int(fields[12]) / _CLOCK_TICKS


def _aof_buf_bytes(aof: AppendOnlyFile | None) -> int:
    """The AOF buffer's size as it will be written (changes of this pass, not yet flushed)."""
    return sum(len(resp.encode_command(argv)) for argv in aof.aof_buf) if aof is not None else 0


def _human(size: int) -> str:
    """Redis's bytesToHuman."""
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.2f}{unit}"
    return f"{size}B"


def _executable() -> str:
    import sys

    return os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
