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
from collections.abc import Callable
from typing import Any

from . import ipc, resp
from .clients import WriterClient
from .commands import COMMANDS, lookup, unknown_command, wrong_arity
from .commands.base import ERR_WRONGTYPE, ReplyTooLarge, Server
from .config import Config
from .keyspace import Databases, Keyspace, WrongType, time_ms, unwatch_all, watched_key_expired

__all__ = ["CommandContext", "Executor", "ERR_INTERNAL"]

log = logging.getLogger("kvred.writer")

ERR_INTERNAL = b"-ERR internal error (see the server log)\r\n"
# Connection commands (HELLO, AUTH, MULTI...) belong to the worker, which runs them even
# inside EXEC; one reaching the writer gets this instead of being half-run.
ERR_CONNECTION_COMMAND = b"-ERR Command not allowed inside a transaction\r\n"
NULL_ARRAY = {False: b"*-1\r\n", True: b"_\r\n"}  # EXEC whose WATCHed keys changed


def _log_nothing(argv: list[bytes]) -> None:
    pass


class CommandContext:
    """What a handler gets: set to each entry's client and database before it runs."""

    __slots__ = ("executor", "server", "databases", "config", "keyspace", "db_index", "client", "resp3", "null",
                 "aof_feed", "output_limit")

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
        self.in_exec = False  # BGREWRITEAOF must not fork inside EXEC (its aof_buf positions)
        self._aof_buf: list[list[bytes]] | None = None  # None: nothing is logged (loading, --appendonly no)
        self._aof_append: Callable[[list[bytes]], None] = _log_nothing
        self._logged_db = -1  # database of the last change in the log; -1: SELECT before the next
        databases.propagate = self.propagate

    # ---------------------------------------------------------------- logging

    def log_into(self, aof_buf: list[list[bytes]]) -> None:
        """The AOF is open: log every change into its buffer from now on."""
        self._aof_buf = aof_buf
        self._aof_append = aof_buf.append
        self.select_before_next()

    def select_before_next(self) -> None:
        """The next change logged starts with SELECT: a new AOF, or a rewrite whose tail
        must not rely on the database the old file had selected."""
        self._logged_db = -1
        self._refresh_feed()

    def propagate(self, db: int, argv: list[bytes]) -> None:
        """Log `argv` as a change in database `db` (Databases.propagate: expiry's DELs)."""
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
        or an int (DROPPED) when they passed the output limit. The caller counts the
        commands (stat_commands)."""
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
            return self.exec_transaction(payload)
        except Exception:  # not a handler's (call() catches those): never answer out of step
            log.exception("internal error running commands of client %d: dropping it", client.id)
            self.output_limited.add(client.id)
            return 0

    def run_commands(self, payload: list[list[bytes]]) -> list[bytes] | int:
        """One client's commands of a batch. If their replies pass the client output
        buffer limit, stop (as Redis stops reading a client it closes) and return the
        size reached: the worker then drops the client."""
        ctx = self.ctx
        if self.output_limited and ctx.client.id in self.output_limited:
            return 0  # already over its limit: the worker is dropping it, run nothing more
        limit = ctx.output_limit
        commands_get = COMMANDS.get
        direct = not self.refusing  # while refusing writes, every command goes through call()
        out = []
        size = 0
        try:
            for argv in payload:
                # call()'s dispatch inlined for a command named as in the table, of the right
                # arity, not a container: a Python call level less per command, ~20% of a
                # GET's writer instructions (callgrind). Anything else goes through call().
                cmd = commands_get(argv[0])
                if direct and cmd is not None and cmd.direct and cmd.min_argc <= len(argv) <= cmd.max_argc:
                    try:
                        reply = cmd.handler(ctx, argv)  # type: ignore[misc]
                    except WrongType:
                        reply = ERR_WRONGTYPE
                    except ReplyTooLarge:
                        raise
                    except Exception:
                        reply = _internal_error(argv)
                else:
                    reply = self.call(argv)
                out.append(reply)
                size += len(reply)
                if size > limit:
                    raise ReplyTooLarge
        except ReplyTooLarge:
            return self._over_output_limit(size + 1)
        return out

    def _over_output_limit(self, size: int) -> int:
        client_id = self.ctx.client.id
        log.warning("client %d: replies over the output buffer limit (%d bytes): closing it", client_id, size)
        self.output_limited.add(client_id)
        return size

    def call(self, argv: list[bytes]) -> bytes:
        """Run one command: table lookup, arity check, refusals, handler.

        A handler may raise ReplyTooLarge (its reply would pass the output limit):
        that propagates to the caller, which drops the client."""
        cmd = COMMANDS.get(argv[0])
        if cmd is None:
            cmd = COMMANDS.get(argv[0].lower())
            if cmd is None:
                return unknown_command(argv)
        if not cmd.min_argc <= len(argv) <= cmd.max_argc:
            return wrong_arity(cmd.name)
        if cmd.subcommands:
            error = cmd.check_subcommand(argv)
            if error is not None:
                return error
        handler = cmd.handler
        if handler is None:  # a connection command: the worker runs those, see ERR_CONNECTION_COMMAND
            return ERR_CONNECTION_COMMAND
        if cmd.write and self.refusing:
            return self.misconf_error()
        try:
            return handler(self.ctx, argv)
        except WrongType:
            return ERR_WRONGTYPE
        except ReplyTooLarge:
            raise
        except Exception:  # a bug in one command must not take the keyspace down
            return _internal_error(argv)

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
            self.in_exec = False
            databases.frozen_ms = 0
        if aof_buf is not None and len(aof_buf) - start > 1:
            # Replay applies all of it or none of it (a torn block is cut at MULTI).
            aof_buf.insert(start, [b"MULTI"])
            aof_buf.append([b"EXEC"])
        if size > limit:
            return self._over_output_limit(size)
        return b"*%d\r\n" % len(replies) + b"".join(replies)


def _internal_error(argv: list[bytes]) -> bytes:
    """A bug in one command must not take the keyspace down: logged, and its error."""
    log.exception("internal error running %r", argv[0][:64])
    return ERR_INTERNAL


def _is_write(argv: list[bytes]) -> bool:
    cmd = lookup(argv[0])
    return cmd is not None and cmd.write
