"""Running clients' commands against the keyspace: Redis's call() and execCommand(),
sans-IO (the writer hands it entries and sends what it returns; replay uses it too).

- The command table (kvred/commands) gives each command's handler and arity; a
  handler gets the typed `CommandContext` (commands/base.py `Context`): the client,
  its database, its protocol, where to log.
- Logging: a handler logs each change as the argv to replay (`ctx.aof_feed`); this
  module puts a `SELECT` in front when the database differs from the last one logged,
  as Redis's feedAppendOnlyFile does. `ctx.aof_feed` is the AOF buffer's own append
  whenever no SELECT is needed (the hot path: one C call per change).
- Refusals: while the AOF is failing, write commands get MISCONF before they run;
  a reply that passes the client's output limit drops the client (ReplyTooLarge);
  WrongType from a handler is the WRONGTYPE error; any other exception is a bug in
  that one command: logged, answered with an internal error.
- EXEC runs the queued commands with one time snapshot (no key expires halfway),
  fails with a null array when a WATCHed key changed, and logs the block as
  MULTI ... EXEC so that replay applies all of it or none.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from time import perf_counter_ns
from typing import Any

from . import ipc, resp
from .acl import DENIED_CHANNEL, DENIED_CMD, DENIED_KEY, Acl, AclError, User, noperm_error
from .blocking import ERR_UNBLOCKED, Blocked, BlockedClients, BlockOn
from .clients import WriterClient
from .commands import COMMANDS, lookup
from .commands.base import ERR_WRONGTYPE, Command, ReplyTooLarge, Server, check_command, command_error, full_name
from .config import Config
from .eviction import ERR_OOM, EVICT_FAIL, Evictor
from .keyspace import Databases, Keyspace, WrongType, time_ms, unwatch_all, watched_key_expired
from .memory import DatasetEstimate
from .pubsub import PubSub
from .slowlog import LatencyMonitor, SlowLog
from .stats import REJECTED, CommandStats, bucket_of
from .tracking import Tracking

__all__ = ["CommandContext", "Executor", "ERR_INTERNAL"]

log = logging.getLogger("kvred.writer")

ERR_INTERNAL = resp.ERR_INTERNAL
# Connection commands (HELLO, AUTH, MULTI...) belong to the worker, which runs them even
# inside EXEC; one reaching the writer gets this instead of being half-run.
ERR_CONNECTION_COMMAND = b"-ERR Command not allowed inside a transaction\r\n"
NULL_ARRAY = {False: b"*-1\r\n", True: b"_\r\n"}  # EXEC whose WATCHed keys changed


def _log_nothing(argv: list[bytes]) -> None:
    pass


class CommandContext:
    """What a handler gets: set to each entry's client and database before it runs."""

    __slots__ = ("executor", "server", "databases", "config", "keyspace", "db_index", "client", "resp3", "null",
                 "aof_feed", "output_limit", "may_block")

    def __init__(self, executor: Executor, server: Server, databases: Databases, config: Config) -> None:
        self.executor = executor
        self.server = server
        self.databases = databases
        self.config = config
        self.keyspace: Keyspace = databases.dbs[0]
        self.db_index = 0  # keyspace.id, read once per entry
        self.client = WriterClient(0, "", "", None)
        self.resp3 = False
        self.null = resp.NULL_BULK
        self.aof_feed: Callable[[list[bytes]], None] = _log_nothing
        # a client's replies may not pass this while they are built (0 in the config: no limit)
        self.output_limit = config.client_output_buffer_limit or 1 << 62
        # a blocking command may wait (raise BlockOn): only when run as a client's own
        # command, never inside MULTI/EXEC or a script (those answer as on a timeout)
        self.may_block = False

    def select(self, index: int) -> None:
        """SELECT (and RESET): the client's database from now on."""
        self.client.db = index
        self.executor.use_db(index)


class Executor:
    def __init__(self, config: Config, databases: Databases, server: Server) -> None:
        self.databases = databases
        self.ctx = CommandContext(self, server, databases, config)
        self.refusing = ""  # the AOF error while write commands are refused (MISCONF), else ""
        self.output_limited: set[int] = set()  # clients dropped for their output, until they disconnect
        self.stat_commands = 0
        # INFO commandstats/errorstats/latencystats (kvred/stats.py); SLOWLOG, LATENCY
        self.stats = CommandStats()
        for cmd in set(COMMANDS.values()):
            cmd.stat = self.stats.stat_for(cmd.name)
        self.slowlog = SlowLog()
        self.latency = LatencyMonitor()
        self.slow_ns: float = math.inf
        self.refresh_slow_threshold()
        self.in_exec = False  # BGREWRITEAOF must not fork inside EXEC (its aof_buf positions)
        self.allow_oom = False  # running a script flagged allow-oom: denyoom commands are not refused
        self._aof_buf: list[list[bytes]] | None = None  # None: nothing is logged (loading, --appendonly no)
        self._aof_append: Callable[[list[bytes]], None] = _log_nothing
        self._logged_db = -1  # database of the last change in the log; -1: SELECT before the next
        databases.propagate = self.propagate
        # Messages nobody asked for (kvred/pubsub.py, MONITOR, keyspace events): the writer
        # releases `pushes` with the pass's replies. A push to the client whose commands
        # are running goes into its replies instead (`push_here`), in command order.
        self.pubsub = PubSub()
        self.pubsub.push = self.push_to
        self.tracking = Tracking(lambda client_id: server.clients.get(client_id), self.push_to)
        databases.publish = self.pubsub.publish
        self.pushes: list[tuple[WriterClient, int, bytes]] = []
        self.push_here: list[Any] | None = None
        self.monitors: dict[int, WriterClient] = {}
        self.kills: list[WriterClient] = []  # CLIENT KILL: closed by their workers after the pass
        self.reprocessing = False  # re-running a blocked client's command (not shown to MONITOR again)
        # CLIENT PAUSE: until when (monotonic; 0: not paused), whether reads wait too, and
        # the clients whose entries wait for the end of the pause
        self.paused_until = 0.0
        self.pause_all = False
        self.paused_clients: dict[int, WriterClient] = {}
        # Blocking commands (kvred/blocking.py). `waiting`: clients whose next entries must
        # queue behind replies they are owed (blocked, or deferred by a failing AOF);
        # `resumed`: (client, replies) produced for them since the writer last looked.
        self.blocked = BlockedClients()
        self.waiting: dict[int, WriterClient] = {}
        self.resumed: list[tuple[WriterClient, list[Any]]] = []
        self._ready = databases.ready_keys
        # ACL users (kvred/acl.py): the writer's copy is the one that decides
        self.acl = Acl(config.requirepass)
        if config.aclfile:  # as Redis: a file that is missing or wrong stops the start
            error = self.acl.load_file(config.aclfile)
            if error is not None:
                raise AclError("Aborting startup because of ACL errors: " + error)
        self.acl_context = "toplevel"  # where a denial happened, for ACL LOG: toplevel, multi, lua
        self.acl_open = True  # every user may run everything: no checks (see acl_changed)
        self.acl_changed()
        # maxmemory (kvred/eviction.py): the dataset estimate and the evictor
        self.memory = DatasetEstimate(len(databases.dbs))
        self.evictor = Evictor(databases, config, self.memory)

    # ---------------------------------------------------------------- logging

    def log_into(self, aof_buf: list[list[bytes]] | None) -> None:
        """The AOF is open: log every change into its buffer from now on (None: the AOF
        was turned off, log nothing)."""
        self._aof_buf = aof_buf
        self._aof_append = aof_buf.append if aof_buf is not None else _log_nothing
        self.select_before_next()

    def stop_logging(self) -> list[list[bytes]] | None:
        """Log nothing until `log_into` (DEBUG RELOAD replays data the AOF already has);
        returns the buffer to give back."""
        aof_buf, self._aof_buf = self._aof_buf, None
        self._aof_append = _log_nothing
        self._refresh_feed()
        return aof_buf

    def select_before_next(self) -> None:
        """The next change logged starts with SELECT: a new AOF, or a rewrite whose tail
        must not rely on the database the old file had selected."""
        self._logged_db = -1
        self._refresh_feed()

    def propagate(self, db: int, argv: list[bytes]) -> None:
        """Log `argv` as a change in database `db` (Databases.propagate: expiry's DELs)."""
        if self.tracking.clients and argv[0] == b"DEL":
            self.tracking.changed(argv[1:], None)  # an expired key: cached copies are stale
        if self._aof_buf is None:
            return
        if db != self._logged_db:
            self._aof_append([b"SELECT", b"%d" % db])
            self._logged_db = db
            self._refresh_feed()
        self._aof_append(argv)

    def _feed_selecting(self, argv: list[bytes]) -> None:
        self.propagate(self.ctx.db_index, argv)

    def _refresh_feed(self) -> None:
        ctx = self.ctx
        if self._aof_buf is None:
            ctx.aof_feed = _log_nothing
        elif ctx.db_index == self._logged_db:
            ctx.aof_feed = self._aof_append
        else:
            ctx.aof_feed = self._feed_selecting

    def use_db(self, index: int) -> None:
        ctx = self.ctx
        if ctx.db_index != index:
            ctx.keyspace = self.databases.dbs[index]
            ctx.db_index = index
            self._refresh_feed()

    # ---------------------------------------------------------------- entries

    def run_entry(self, op: int, client: WriterClient, resp3: bool, payload: Any) -> Any:
        """One client's entry of a batch: its replies (bytes, or a list joined later),
        an int (DROPPED) when they passed the output limit, or REPLY_DEFERRED when a
        blocking command made the client wait. The caller counts the commands."""
        ctx = self.ctx
        ctx.client = client
        if ctx.db_index != client.db:  # another client's, or this one's after a RESET
            self.use_db(client.db)
        if resp3 is not ctx.resp3:
            ctx.resp3 = resp3
            ctx.null = resp.NULL_RESP3 if resp3 else resp.NULL_BULK
        try:
            if op == ipc.OP_RUN:
                return self.run_commands(payload)
            if self.output_limited and client.id in self.output_limited:
                return 0
            reply = self.exec_transaction(payload)
            if self._ready:
                self.serve_ready()  # after the whole transaction, as Redis
            return reply
        except Exception:  # not a handler's (call() catches those): never answer out of step
            log.exception("internal error running commands of client %d: dropping it", client.id)
            self.output_limited.add(client.id)
            return 0

    def run_single(self, client: WriterClient, resp3: bool, argv: list[bytes]) -> Any:
        """run_entry for an entry of one command (a client that does not pipeline):
        run_commands' direct branch without its per-entry set-up (no reply list, no
        try/finally, the clock read around the handler alone). Anything else goes the
        general way (its list of replies joined, as the link carries them). Writer
        instructions per `-P 1` SET (no AOF) 22.8k -> 18.8k (callgrind,
        bench/writer_pass.py), writer µs per SET at c50 P1 10.0 -> 9.1 (bench/cpu.py)."""
        ctx = self.ctx
        cmd = COMMANDS.get(argv[0])
        if (cmd is None or not cmd.direct or not cmd.min_argc <= len(argv) <= cmd.max_argc
                or self.refusing or self.monitors or self.tracking.clients or not self.acl_open
                or (self.output_limited and client.id in self.output_limited)):
            reply = self.run_entry(ipc.OP_RUN, client, resp3, [argv])
            return b"".join(reply) if type(reply) is list else reply  # as the link carries it
        ctx.client = client
        if ctx.db_index != client.db:
            self.use_db(client.db)
        if resp3 is not ctx.resp3:
            ctx.resp3 = resp3
            ctx.null = resp.NULL_RESP3 if resp3 else resp.NULL_BULK
        stat = cmd.stat
        pushed = self.push_here = []  # a push to this client goes before the reply (push_to)
        started = perf_counter_ns()
        try:
            if ctx.config.maxmemory and cmd.denyoom and self.evictor.check(argv) == EVICT_FAIL:
                reply = ERR_OOM
            else:
                reply = cmd.handler(ctx, argv)  # type: ignore[misc]
        except WrongType:
            reply = ERR_WRONGTYPE
        except ReplyTooLarge:
            self.push_here = None
            return self._over_output_limit(ctx.output_limit + 1)
        except Exception:
            reply = _internal_error(argv)
        ns = perf_counter_ns() - started
        self.push_here = None
        if ns < self.slow_ns:  # count_entry of one command, inlined
            stat[0] += ns  # NS
            b = (ns | 8).bit_length()  # stats.bucket_of
            stat[(b << 2) | ((ns >> (b - 3)) & 3)] += 1
        else:
            self.count_entry([cmd], ns, [argv])
        if b"-" <= reply < b".":  # an error reply: starts with "-" (no slice made)
            self.count_failed(stat, reply)
        if pushed:
            reply = b"".join(pushed) + reply
        if len(reply) > ctx.output_limit:
            return self._over_output_limit(len(reply))
        if self._ready:
            self.serve_ready()  # clients blocked on keys this command created
        return reply

    def run_commands(self, payload: list[list[bytes]], out: list[Any] | None = None) -> Any:
        """One client's commands of a batch (or what is left of them after it waited,
        with the replies so far in `out`). If their replies pass the client output
        buffer limit, stop (as Redis stops reading a client it closes) and return the
        size reached: the worker then drops the client. If a command blocks, return
        REPLY_DEFERRED: the client waits (kvred/blocking.py)."""
        ctx = self.ctx
        if self.output_limited and ctx.client.id in self.output_limited:
            return 0  # already over its limit: the worker is dropping it, run nothing more
        limit = ctx.output_limit
        commands_get = COMMANDS.get
        # while refusing writes or feeding MONITOR, every command goes through call()
        # ...and while some user has restrictions (call() checks the client's): a server
        # whose users may all do anything (the default user alone) pays one attribute test
        direct = not self.refusing and not self.monitors and not self.tracking.clients and self.acl_open
        # with a maxmemory, a denyoom command evicts first, or is refused (as in call())
        maxmemory = ctx.config.maxmemory
        evictor = self.evictor
        ready = self._ready
        if out is None:
            out = []
            size = 0
        else:
            size = sum(map(len, out))
        self.push_here = out
        ctx.may_block = True
        # commandstats per entry, not per command: the clock is read at its start and end
        # and the time shared among the commands that ran (exact for a client that does
        # not pipeline). Per command it cost ~500 ns on a ~600 ns GET (2 clock reads,
        # big-int sums, the histogram index: bench/obs in the commit message).
        clock = perf_counter_ns
        ran: list[Command] = []
        note = ran.append
        started = clock()
        counted = 0  # payload[counted:] holds the commands in `ran`
        argv: list[bytes] = []
        try:
            for argv in payload:
                # call()'s dispatch inlined for a command named as in the table, of the right
                # arity, not a container: a Python call level less per command, ~20% of a
                # GET's writer instructions (callgrind). Anything else goes through call().
                cmd = commands_get(argv[0])
                if direct and cmd is not None and cmd.direct and cmd.min_argc <= len(argv) <= cmd.max_argc:
                    try:
                        if maxmemory and cmd.denyoom and evictor.check(argv) == EVICT_FAIL:
                            reply = ERR_OOM
                        else:
                            reply = cmd.handler(ctx, argv)  # type: ignore[misc]
                    except WrongType:
                        reply = ERR_WRONGTYPE
                    except ReplyTooLarge:
                        raise
                    except Exception:
                        reply = _internal_error(argv)
                    note(cmd)
                    if b"-" <= reply < b".":  # an error reply: starts with "-" (no slice made)
                        self.count_failed(cmd.stat, reply)
                else:
                    if ran:  # what ran so far is counted first (SLOWLOG, INFO in the same pipeline see it)
                        here = next(i for i, item in enumerate(payload) if item is argv)
                        self.count_entry(ran, clock() - started, payload[counted:here])
                        ran.clear()
                        counted = here
                    reply = self.call(argv)  # which counts itself
                    started = clock()
                    # what call() ran may have changed the ACL (an ACL SETUSER in the same batch)
                    direct = not self.refusing and not self.monitors and not self.tracking.clients and self.acl_open
                out.append(reply)
                size += len(reply)
                if size > limit:
                    raise ReplyTooLarge
                if ready:
                    self.serve_ready()  # clients blocked on keys this command created
        except ReplyTooLarge:
            return self._over_output_limit(size + 1)
        except BlockOn as block:
            self._block(argv, block, out, payload)
            return ipc.REPLY_DEFERRED
        finally:
            ctx.may_block = False
            self.push_here = None
            if ran:
                ns = clock() - started
                if len(ran) == 1 and ns < self.slow_ns:
                    # count_entry inlined for one command that was not slow (a client that
                    # does not pipeline): three Python calls less per entry, -9k of 19k
                    # writer instructions per P1 command (callgrind, tools in issue 17's note)
                    stat = ran[0].stat
                    stat[0] += ns  # NS
                    b = (ns | 8).bit_length()  # stats.bucket_of
                    stat[(b << 2) | ((ns >> (b - 3)) & 3)] += 1
                else:
                    self.count_entry(ran, ns, payload[counted:])
        return out

    # ---------------------------------------------------------------- blocking (kvred/blocking.py)

    def _block(self, argv: list[bytes], block: BlockOn, out: list[Any], payload: list[list[bytes]]) -> None:
        ctx = self.ctx
        client = ctx.client
        i = next(i for i, command in enumerate(payload) if command is argv)
        deadline = time.monotonic() + block.timeout if block.timeout else math.inf
        blocked = Blocked(ctx.keyspace, argv, deadline, block, out, payload[i + 1:])
        self.blocked.block(client, blocked)
        self.waiting[client.id] = client

    def serve_ready(self) -> None:
        """Serve the clients blocked on keys that were just created, first come first
        served, while each key lasts (Redis's handleClientsBlockedOnKeys)."""
        ready = self._ready
        saved = self._save_ctx()
        try:
            while ready:
                keyspace, key = ready.pop(0)
                waiting = keyspace.blocking.get(key)
                if not waiting:
                    continue
                for client in list(waiting.values()):
                    blocked = client.blocked
                    if blocked is None:
                        continue
                    value = keyspace.data.get(key)
                    if value is not None and type(value) in blocked.types:
                        self._serve(client, key)
                    elif blocked.gone_reply is not None:
                        self.unblock(client, blocked.gone_reply)  # its stream was deleted or replaced
                    elif value is None and not self.blocked.count_on_nokey:
                        break  # used up
                    # else a client whose command cannot use this type keeps waiting (Redis 7.0)
        finally:
            self._restore_ctx(saved)

    def _serve(self, client: WriterClient, key: bytes) -> bool:
        """Re-run a blocked client's command on the ready `key`; True if it no longer waits."""
        blocked = client.blocked
        assert blocked is not None
        ctx = self.ctx
        self._become(client)
        self.push_here = blocked.parts
        ctx.may_block = True
        self.reprocessing = True  # MONITOR saw the command when it first ran
        try:
            reply: Any = self.call(blocked.retry(key) if blocked.retry else blocked.argv)
        except BlockOn:
            return False
        except ReplyTooLarge:
            reply = None
        finally:
            ctx.may_block = False
            self.reprocessing = False
        self.blocked.unblock(client)
        self._finish_entry(client, blocked, reply)
        return True

    def _finish_entry(self, client: WriterClient, blocked: Blocked, reply: bytes | None) -> None:
        """The blocking command of a waiting client was answered (`reply`; None: over
        the output limit): run the rest of its entry, then its queued entries."""
        if reply is None:
            result: Any = self._over_output_limit(sum(map(len, blocked.parts)))
        else:
            blocked.parts.append(reply)
            result = self.run_commands(blocked.rest, blocked.parts) if blocked.rest else blocked.parts
            if result is ipc.REPLY_DEFERRED:
                # blocked again, further in the same entry: what came before goes out now
                # (a partial reply, which leaves the entry's slot owed: kvred/ipc.py)
                parts = blocked.parts
                if parts:
                    self.resumed.append((client, [(b"".join(parts),)]))
                    parts.clear()
                return
        self.run_queued(client, [result])

    def run_queued(self, client: WriterClient, replies: list[Any]) -> None:
        queued = client.queued
        while queued and client.blocked is None:
            op, _client_id, resp3, payload = queued.pop(0)
            reply = self.run_entry(op, client, resp3, payload)
            self.stat_commands += len(payload) + op
            if reply is ipc.REPLY_DEFERRED:
                break
            replies.append(reply)
        if client.blocked is None and not client.queued and not client.owed:
            self.waiting.pop(client.id, None)
        client.answered += len(replies)
        self.resumed.append((client, replies))

    def expire_blocked(self) -> None:
        """Answer the clients whose blocking timeout passed."""
        for client in self.blocked.timed_out(time.monotonic()):
            self.unblock(client, None)

    def unblock(self, client: WriterClient, reply: bytes | None) -> bool:
        """End a client's wait with `reply` (None: its timeout reply); CLIENT UNBLOCK."""
        blocked = self.blocked.unblock(client)
        if blocked is None:
            return False
        saved = self._save_ctx()
        try:
            self._become(client)
            self._finish_entry(client, blocked, blocked.timeout_reply if reply is None else reply)
        finally:
            self._restore_ctx(saved)
        return True

    def unblock_by_id(self, client_id: int, error: bool) -> bool:
        client = self.waiting.get(client_id)
        if client is None or client.blocked is None:
            return False
        return self.unblock(client, ERR_UNBLOCKED if error else None)

    def forget_client(self, client: WriterClient) -> None:
        """The client left: it waits for nothing and listens to nothing any more. Nothing
        is popped for a blocked client that left; a client whose replies the AOF deferred
        stays queued (what it sent still runs, as Redis runs what it read)."""
        if client.blocked is not None:
            self.blocked.unblock(client)
            client.queued.clear()
            if not client.owed:
                self.waiting.pop(client.id, None)
        if client.channels or client.patterns or client.shard_channels:
            self.pubsub.forget(client)
        if client.monitor:
            self.stop_monitor(client)
        if client.tracking is not None:
            self.tracking.disable(client)

    def _become(self, client: WriterClient) -> None:
        ctx = self.ctx
        ctx.client = client
        if ctx.db_index != client.db:
            self.use_db(client.db)
        resp3 = client.resp == 3
        if resp3 is not ctx.resp3:
            ctx.resp3 = resp3
            ctx.null = resp.NULL_RESP3 if resp3 else resp.NULL_BULK

    def _save_ctx(self) -> tuple[Any, ...]:
        ctx = self.ctx
        return ctx.client, ctx.resp3, ctx.null, ctx.may_block, self.push_here

    def _restore_ctx(self, saved: tuple[Any, ...]) -> None:
        ctx = self.ctx
        ctx.client, ctx.resp3, ctx.null, ctx.may_block, self.push_here = saved
        if ctx.db_index != ctx.client.db:
            self.use_db(ctx.client.db)

    # ---------------------------------------------------------------- pushes

    def push_to(self, client: WriterClient, frame: bytes) -> None:
        """A message for `client` that it did not ask for (pub/sub, MONITOR, events)."""
        if client is self.ctx.client and self.push_here is not None:
            self.push_here.append(frame)  # among its own replies, before the running command's
        else:
            self.pushes.append((client, client.answered, frame))

    # ---------------------------------------------------------------- CLIENT PAUSE

    def pause(self, until: float, pause_all: bool) -> None:
        """CLIENT PAUSE: a later end wins; ALL stays ALL until the pause ends."""
        if not self.paused_until:
            self.pause_all = pause_all
        else:
            self.pause_all = self.pause_all or pause_all
        self.paused_until = max(self.paused_until, until)

    def pause_applies(self, op: int, payload: list[Any]) -> bool:
        """Whether an entry must wait for the end of the pause: every entry under ALL,
        entries with a command that writes (or may: PUBLISH, scripts) under WRITE."""
        if self.pause_all:
            return True
        for argv in payload:
            if type(argv) is list:
                cmd = lookup(argv[0])
                if cmd is not None and (cmd.write or "may-replicate" in cmd.flags):
                    return True
        return False

    def hold_for_pause(self, client: WriterClient, entry: list[Any]) -> None:
        client.queued.append(entry)
        self.waiting[client.id] = client
        self.paused_clients[client.id] = client

    def unpause(self) -> None:
        """The pause ended (timeout or CLIENT UNPAUSE): the held clients run, in order."""
        self.paused_until = 0.0
        self.pause_all = False
        held, self.paused_clients = self.paused_clients, {}
        saved = self._save_ctx()
        try:
            for client in held.values():
                if client.blocked is None:
                    self.run_queued(client, [])
        finally:
            self._restore_ctx(saved)

    def start_monitor(self, client: WriterClient) -> None:
        client.monitor = True
        self.monitors[client.id] = client

    def stop_monitor(self, client: WriterClient) -> None:
        client.monitor = False
        self.monitors.pop(client.id, None)

    def _in_script(self) -> bool:
        from .scripting.runner import runner_of  # (the scripting package imports the command table)

        runner = runner_of(self.databases)
        return runner is not None and runner.running is not None

    # ---------------------------------------------------------------- ACL (kvred/acl.py)

    def acl_check(self, user: User, cmd: Command, argv: list[bytes]) -> bytes | None:
        """Redis's ACLCheckAllPerm in call(): None, or the error (the denial is logged)."""
        name = full_name(cmd, argv)
        if "no-auth" in cmd.flags:
            return None
        denied = user.check_command(name, argv)
        if denied is None:
            return None
        reason, obj = denied
        self.acl_log(reason, self.acl_context, obj, user.name, self.ctx.client)
        if self.acl_context == "multi":
            why = {DENIED_CMD: b"no permission to execute the command or subcommand",
                   DENIED_KEY: b"no permission to touch the specified keys",
                   DENIED_CHANNEL: b"no permission to access one of the channels used as arguments"}[reason]
            return (b"-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC "
                    b"call. This command is no longer allowed for the following reason: " + why + b"\r\n")
        return noperm_error(reason, name)

    def acl_log(self, reason: str, context: str, obj: str, username: str, client: WriterClient) -> None:
        self.acl.log_max_len = self.ctx.config.acllog_max_len
        self.acl.add_log(reason, context, obj, username,
                         lambda: self.ctx.server.client_list(client).decode("utf-8", "surrogateescape").rstrip("\n"))

    def acl_changed(self) -> None:
        """After any change of the users: whether any of them has restrictions."""
        self.acl_open = all(user.unrestricted for user in self.acl.users.values())

    def kill_unsubscribable(self, name: str) -> None:
        """After ACL SETUSER: the user's clients subscribed to a channel or pattern it may
        no longer use are closed, as Redis 7.0's ACLKillPubsubClientsIfNeeded."""
        user = self.acl.users.get(name)
        if user is None or user.allchannels:
            return
        for client in list(self.ctx.server.clients.values()):
            if client.user is not user:
                continue
            if any(not user.may_use_channel(c, False) for c in (*client.channels, *client.shard_channels)) or any(
                    not user.may_use_channel(p, True) for p in client.patterns):
                self.kill(client)

    def kill_user_clients(self, name: str) -> None:
        """ACL DELUSER: the user's clients are closed (the one that asked, after its reply)."""
        for client in list(self.ctx.server.clients.values()):
            if client.user is not None and client.user.name == name:
                self.kill(client)

    def rebind_users(self) -> None:
        """ACL LOAD replaced every user: as in Redis 7.0, the clients of every user but
        the default one are closed (the old users are freed with their clients), and the
        default user's clients follow its new rules."""
        default = self.acl.users["default"]
        for client in list(self.ctx.server.clients.values()):
            if client.user is not None:
                if client.user.name == "default":
                    client.user = default
                else:
                    self.kill(client)

    def kill(self, client: WriterClient) -> None:
        """CLIENT KILL: gone from CLIENT LIST at once, nothing more of it runs (what it
        sent meanwhile is dropped like an over-limit client's), and its worker closes
        it once this pass's replies are out."""
        self.kills.append(client)
        self.ctx.server.clients.pop(client.id, None)
        if client.watched:
            unwatch_all(client)
        self.forget_client(client)
        self.output_limited.add(client.id)

    def feed_monitors(self, argv: list[bytes], client: WriterClient | None = None) -> None:
        """MONITOR: one line per command run, Redis's format (`client`: one whose command
        its worker answered)."""
        if client is None:
            client, db = self.ctx.client, self.ctx.db_index
        else:
            db = client.db
        addr = b"lua" if self._in_script() else client.addr.encode()  # a script's redis.call, as Redis
        line = b"+%.6f [%d %b] %b\r\n" % (time.time(), db, addr, b" ".join(map(_repr_arg, argv)))
        for monitor in list(self.monitors.values()):
            self.push_to(monitor, line)

    def _over_output_limit(self, size: int) -> int:
        client_id = self.ctx.client.id
        log.warning("client %d: replies over the output buffer limit (%d bytes): closing it", client_id, size)
        self.output_limited.add(client_id)
        return size

    def call(self, argv: list[bytes]) -> bytes:
        """Run one command: table lookup, arity check, refusals, handler.

        A handler may raise ReplyTooLarge (its reply would pass the output limit):
        that propagates to the caller, which drops the client."""
        cmd, problem = check_command(argv)
        if problem:
            error = command_error(cmd, argv, problem)
            # an unknown command counts as an error only; a known one's bad arity or
            # subcommand is also a rejected call of it (Redis's commandstats)
            return self.count_error(error) if cmd is None else self.count_rejected(cmd.stat, error)
        assert cmd is not None
        stat = cmd.stat
        if cmd.subcommands and len(argv) > 1:
            stat = self.stats.stat_for(full_name(cmd, argv))
        handler = cmd.handler
        if handler is None:  # a connection command: the worker runs those, see ERR_CONNECTION_COMMAND
            if cmd.name == "quit":  # ...but QUIT comes here first (kvred/connection.py)
                client = self.ctx.client
                if client.watched:
                    unwatch_all(client)
                self.forget_client(client)
                return resp.OK
            return ERR_CONNECTION_COMMAND
        user = self.ctx.client.user
        if user is not None and not user.unrestricted:
            denial = self.acl_check(user, cmd, argv)
            if denial is not None:
                return self.count_rejected(stat, denial)
        if cmd.write and self.refusing:
            return self.count_rejected(stat, self.misconf_error())
        # Redis's processCommand: evict before a command that may grow memory; -OOM when
        # nothing may be. Not inside EXEC, which was checked as a whole before it ran.
        if (cmd.denyoom and self.ctx.config.maxmemory and not self.in_exec and not self.allow_oom
                and self.evictor.check(argv) == EVICT_FAIL):
            return self.count_rejected(stat, ERR_OOM)
        started = perf_counter_ns()
        try:
            reply = handler(self.ctx, argv)
        except WrongType:
            reply = ERR_WRONGTYPE
        except ReplyTooLarge:
            raise
        except BlockOn:
            if self.monitors and not self.reprocessing:
                self.feed_monitors(argv)  # it ran, and now waits
            raise
        except Exception:  # a bug in one command must not take the keyspace down
            reply = _internal_error(argv)
        self.count_call(cmd, stat, argv, perf_counter_ns() - started, reply)
        if self.monitors and "admin" not in cmd.flags and not self.reprocessing:
            self.feed_monitors(argv)  # after it ran, as Redis 7.0's call()
        if self.tracking.clients:
            reply += self._track(cmd, argv, reply)
        return reply

    # ---------------------------------------------------------------- statistics (kvred/stats.py)

    def refresh_slow_threshold(self) -> None:
        """The shortest duration the slow log or the latency monitor wants to see, kept
        as `slow_ns` (at start and by CONFIG SET of slowlog-log-slower-than or
        latency-monitor-threshold): the hot loop compares with it, no call."""
        config = self.ctx.config
        slower_than = config.slowlog_log_slower_than
        threshold = slower_than * 1000 if slower_than >= 0 else math.inf
        monitor_ms = config.latency_monitor_threshold
        if monitor_ms > 0:
            threshold = min(threshold, monitor_ms * 1_000_000)
        self.slow_ns = threshold

    def count_entry(self, ran: list[Command], ns: int, payload: list[list[bytes]]) -> None:
        """The direct commands of an entry ran in `ns` together: each gets its share.
        The slow log and the latency monitor see an entry whose share passes their
        threshold (its commands, each with its share: which one was slow is not known)."""
        share = ns // len(ran)
        index = bucket_of(share)
        for cmd in ran:
            stat = cmd.stat
            stat[0] += share  # NS
            stat[index] += 1
        if share >= self.slow_ns:
            left = len(ran)
            for argv in payload:  # the direct ones, as run_commands chose them, in order
                found = COMMANDS.get(argv[0])
                if found is not None and found.direct and found.min_argc <= len(argv) <= found.max_argc:
                    self.record_slow(found, argv, share)
                    left -= 1
                    if not left:
                        break

    def count_call(self, cmd: Command, stat: list[int], argv: list[bytes], ns: int, reply: bytes) -> None:
        """A command ran for `ns` (the hot loop inlines this for direct commands)."""
        self.stats.record(stat, ns)
        if reply[:1] == b"-":
            self.count_failed(stat, reply)
        if ns >= self.slow_ns:
            self.record_slow(cmd, argv, ns)

    def count_failed(self, stat: list[int], reply: bytes) -> None:
        stat[1] += 1  # FAILED
        self.stats.count_error(reply)

    def count_rejected(self, stat: list[int], reply: bytes) -> bytes:
        stat[REJECTED] += 1
        self.stats.count_error(reply)
        return reply

    def count_error(self, reply: bytes) -> bytes:
        self.stats.count_error(reply)
        return reply

    def record_slow(self, cmd: Command, argv: list[bytes], ns: int) -> None:
        """SLOWLOG and the latency monitor's `command` / `fast-command` events."""
        config = self.ctx.config
        usec = ns // 1000
        slower_than = config.slowlog_log_slower_than
        if 0 <= slower_than <= usec and "skip-slowlog" not in cmd.flags:
            client = self.ctx.client
            self.slowlog.add(argv, usec, client.addr, client.name, config.slowlog_max_len)
        event = "fast-command" if "fast" in cmd.flags else "command"
        self.latency.add(event, usec // 1000, config.latency_monitor_threshold)

    def _track(self, cmd: Command, argv: list[bytes], reply: bytes) -> bytes:
        """CLIENT TRACKING: what a command read or changed (kvred/tracking.py); returns
        the invalidations of the client's own keys, which follow its reply."""
        client = self.ctx.client
        state = client.tracking
        own = b""
        if cmd.write:
            if reply[:1] != b"-":  # a refused write changed nothing
                if cmd.name in ("flushdb", "flushall"):
                    own = self.tracking.flushed(client)
                else:
                    own = self.tracking.changed(command_keys(cmd, argv), client)
        elif state is not None and "readonly" in cmd.flags:
            self.tracking.read(client, command_keys(cmd, argv))
        if state is not None and state.caching is not None and not (
            cmd.name == "client" and argv[1].lower() == b"caching"
        ):
            state.caching = None  # CLIENT CACHING applies to the next command only
        return own

    def misconf_error(self) -> bytes:
        return b"-MISCONF Errors writing to the AOF file: " + self.refusing.encode() + b"\r\n"

    def exec_transaction(self, commands: list[list[bytes] | bytes]) -> bytes | int:
        """EXEC: run the queued commands back to back; log them as one MULTI/EXEC block.

        Once the replies pass the output limit the remaining commands still run (a
        transaction is all or nothing) but their replies are not kept: DROPPED."""
        ctx = self.ctx
        client = ctx.client
        if self.refusing and any(type(argv) is list and _is_write(argv) for argv in commands):
            # Redis refuses the whole EXEC before running any of it
            unwatch_all(client)
            return b"-EXECABORT Transaction discarded because of: " + self.misconf_error()[1:]
        if ctx.config.maxmemory and any(type(argv) is list and _is_denyoom(argv) for argv in commands) \
                and self.evictor.check([arg for argv in commands if type(argv) is list for arg in argv]) == EVICT_FAIL:
            # Redis refuses EXEC whole when a queued command may grow memory (and, unlike
            # kvred, already refuses such a command when it is queued: kvred's workers
            # queue without knowing the writer's memory)
            unwatch_all(client)
            return b"-EXECABORT Transaction discarded because of: " + ERR_OOM[1:]
        if client.watched:
            changed = client.dirty_cas or watched_key_expired(client)
            unwatch_all(client)
            if changed:
                return NULL_ARRAY[ctx.resp3]
        aof_buf = self._aof_buf
        start = len(aof_buf) if aof_buf is not None else 0
        limit = ctx.output_limit
        replies: list[bytes] = []
        size = 0
        self.in_exec = True
        databases = self.databases
        databases.frozen_ms = time_ms()  # one time for the whole transaction, as Redis
        # pushes to this client land inside the array, where Redis 7.0 puts them too
        # (only RESP3 clients can be subscribed and run MULTI)
        self.push_here = replies
        if self.monitors:
            self.feed_monitors([b"multi"])
        self.acl_context = "multi"
        try:
            for item in commands:
                # an item that is bytes is the reply of a connection command the worker ran (AUTH...)
                try:
                    reply = item if type(item) is bytes else self.call(item)  # type: ignore[arg-type]
                except ReplyTooLarge:
                    size = limit + 1
                    continue
                size += len(reply)
                if size <= limit:
                    replies.append(reply)
        finally:
            self.acl_context = "toplevel"
            self.in_exec = False
            databases.frozen_ms = 0
            self.push_here = None
        if self.monitors:
            self.feed_monitors([b"exec"])
        if aof_buf is not None and len(aof_buf) - start > 1:
            # Replay applies all of it or none of it (a torn block is cut at MULTI).
            aof_buf.insert(start, [b"MULTI"])
            aof_buf.append([b"EXEC"])
        if size > limit:
            return self._over_output_limit(size)
        return b"*%d\r\n" % len(commands) + b"".join(replies)


# sdscatrepr: how MONITOR quotes an argument (printable bytes as they are)
_REPR = {i: b"\\x%02x" % i for i in range(256)}
_REPR.update({i: bytes([i]) for i in range(32, 127)})
_REPR.update({ord("\\"): b"\\\\", ord('"'): b'\\"', ord("\n"): b"\\n", ord("\r"): b"\\r",
              ord("\t"): b"\\t", 7: b"\\a", 8: b"\\b"})


def _repr_arg(arg: bytes) -> bytes:
    return b'"' + b"".join([_REPR[c] for c in arg]) + b'"'


def command_keys(cmd: Command, argv: list[bytes]) -> list[bytes]:
    """The keys of a command by the table's key positions (none for movable keys)."""
    if not cmd.first_key:
        return []
    last = cmd.last_key if cmd.last_key >= 0 else len(argv) + cmd.last_key
    return argv[cmd.first_key : last + 1 : cmd.key_step or 1]


def _internal_error(argv: list[bytes]) -> bytes:
    """A bug in one command must not take the keyspace down: logged, and its error."""
    log.exception("internal error running %r", argv[0][:64])
    return ERR_INTERNAL


def _is_denyoom(argv: list[bytes]) -> bool:
    cmd = lookup(argv[0])
    return cmd is not None and cmd.denyoom


def _is_write(argv: list[bytes]) -> bool:
    cmd = lookup(argv[0])
    return cmd is not None and cmd.write
