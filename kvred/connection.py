"""One client connection of a worker: parsing, ordering of replies, connection state.

A `Connection` turns bytes into commands (kvred/resp.py), answers what needs no
shared state itself (PING, HELLO, AUTH, MULTI bookkeeping, protocol errors) and
hands the rest to its worker, which batches them for the writer.

Replies stay in command order with `outq`: a `None` stands for a reply the
writer still owes, bytes for a reply made here. A reply made here is written at
once only if nothing is owed before it.

Limits (kvred/config.py): the query buffer, the output buffer and AUTH's
unauthenticated request sizes close the connection when passed; nothing a
client sends can affect another client.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
import time
from collections import deque
from typing import TYPE_CHECKING

from . import ipc, resp
from .acl import DENIED_AUTH, noperm_error
from .commands import FORWARDED_NAMES, Command, lookup, unknown_command, wrong_arity
from .commands.base import check_command, command_error, error_quoting, full_name
from .commands.debug import ERR_DEBUG_NOT_ALLOWED, debug_allowed
from .commands.server import valid_client_name
from .config import VERBOSE
from .eviction import ERR_OOM
from .fastparse import FastRequestParser

if TYPE_CHECKING:
    from .worker import Worker

# Not queued inside MULTI: they act on the transaction itself (Redis's list).
_NOT_QUEUED = frozenset({"exec", "discard", "multi", "watch", "quit", "reset"})
_RUN_WHEN_OOM = frozenset({"exec", "discard", "quit", "reset"})  # in MULTI, over maxmemory

__all__ = ["Connection", "ERR_DENIED", "ERR_MAXCLIENTS", "PAUSED_BY_LINK", "PAUSED_BY_SHUTDOWN"]

log = logging.getLogger("kvred.worker")

CLIENT_WRITE_HIGH_WATER = 4 * 1024 * 1024  # bytes of unsent replies before a client is paused

REPLY_ON, REPLY_OFF, REPLY_SKIP = 0, 1, 2  # CLIENT REPLY

PAUSED_BY_OUTPUT = 1
PAUSED_BY_LINK = 2
PAUSED_BY_SHUTDOWN = 4

# RESP2 clients with subscriptions may run only these (Redis's pub/sub context)
_SUBSCRIBED_ALLOWED = frozenset({"subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe",
                                 "sunsubscribe", "ping", "quit", "reset"})
# the commands that change a client's subscriptions: (kind, subscribing)
_SUBSCRIPTION_COMMANDS = {
    "subscribe": ("channels", True),
    "unsubscribe": ("channels", False),
    "psubscribe": ("patterns", True),
    "punsubscribe": ("patterns", False),
    "ssubscribe": ("shard_channels", True),
    "sunsubscribe": ("shard_channels", False),
}

ERR_EXEC_WITHOUT_MULTI = b"-ERR EXEC without MULTI\r\n"
ERR_DISCARD_WITHOUT_MULTI = b"-ERR DISCARD without MULTI\r\n"
ERR_NESTED_MULTI = b"-ERR MULTI calls can not be nested\r\n"
ERR_EXECABORT = b"-EXECABORT Transaction discarded because of previous errors.\r\n"
ERR_WATCH_IN_MULTI = b"-ERR WATCH inside MULTI is not allowed\r\n"
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
        "user",
        "running_exec",
        "last_active",
        "deferred",
        "held",
        "peer",
        "answered",
        "pushes",
        "subscriptions",
        "subscribed",
        "over_soft_since",
        "reply_mode",
        "pushes_bytes",
    )

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.transport: asyncio.Transport | None = None
        config = worker.config
        self.parser = FastRequestParser(max_bulk_len=config.proto_max_bulk_len)
        self.user = "default"  # its ACL user's name (the worker's replica: worker.acl)
        self.running_exec = False  # running EXEC's queued AUTH/HELLO (ACL LOG's context: multi)
        self.authenticated = self.default_user_open()
        self.parser.unauthenticated = not self.authenticated
        self.last_active = time.monotonic()  # for the idle --timeout
        self.client_id = worker.next_client_id()
        # protocol state
        self.resp3 = False
        self.null = resp.NULL_BULK
        # replies in order: None = owed by the writer, bytes = ready
        self.outq: deque[bytes | bool | None] = deque()  # False: owed, and dropped (CLIENT REPLY)
        # the OP_RUN payload of the batch being built that new commands may join
        self.open_run: list[list[bytes]] | None = None
        self.open_run_batch = -1
        # MULTI: queued argvs, or None outside a transaction
        self.multi: list[list[bytes]] | None = None
        self.multi_failed = False
        self.paused = 0  # PAUSED_BY_* bits
        self.deferred = 0  # replies the writer answered REPLY_DEFERRED and still owes
        # While replies are deferred (the client waits in BLPOP...), what it sends is kept
        # here unparsed, as Redis keeps a blocked client's query buffer: reading goes on,
        # so a client that leaves is seen leaving (and nothing is popped for it).
        self.held = bytearray()
        self.answered = 0  # writer replies delivered (ipc.MSG_PUSH counts in those)
        self.pushes: deque[tuple[int, bytes]] = deque()  # pushes waiting for their reply
        # The client's subscriptions, mirrored from what it sent (the writer keeps the real
        # ones): in RESP2 a subscribed client may only run _SUBSCRIBED_ALLOWED.
        self.subscriptions: dict[str, set[bytes]] | None = None
        self.subscribed = False  # RESP2 with at least one subscription
        self.over_soft_since = 0.0  # pub/sub output past the soft limit since (monotonic)
        self.pushes_bytes = 0  # bytes in `pushes`
        self.reply_mode = REPLY_ON  # CLIENT REPLY: ON, OFF, or SKIP (the next command's reply)
        self.peer = ""  # the client's address, "host:port" (set once connected)
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
        self.peer = _address(transport, "peername")
        if log.isEnabledFor(VERBOSE):  # once per connection, but a connection storm must not pay for it
            log.log(VERBOSE, "Accepted %s", self.peer)  # Redis's line, at Redis's level
        refusal = worker.refusal_for(transport)
        if refusal is not None:
            self.closed = True  # never registered: connection_lost must not report it
            if log.isEnabledFor(VERBOSE):
                log.log(VERBOSE, "refused client %s: %s", self.peer, refusal[:120].decode(errors="replace").strip())
            transport.write(refusal)  # type: ignore[attr-defined]
            transport.close()
            if refusal is ERR_MAXCLIENTS:
                worker.totals[4] += 1  # INFO rejected_connections
            return
        worker.clients[self.client_id] = self
        worker.count_client(+1)
        worker.send_event(ipc.OP_CONNECT, self, [self.peer, _address(transport, "sockname"),
                                                 sock.fileno() if sock is not None else -1])
        if worker.reading_paused:
            self.pause(PAUSED_BY_LINK)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        self.outq.clear()
        if log.isEnabledFor(VERBOSE):
            self.log_close(exc)
        worker = self.worker
        worker.clients.pop(self.client_id, None)
        worker.count_client(-1)
        worker.send_event(ipc.OP_DISCONNECT, self, None)

    def log_close(self, exc: Exception | None) -> None:
        """Why the connection ended, in Redis's words where Redis logs it (at verbose)."""
        who = f"id={self.client_id} addr={self.peer}"
        if exc is not None:
            log.log(VERBOSE, "Reading from client: %s (%s)", exc, who)
        elif self.closing:  # kvred closed it: QUIT, CLIENT KILL, a limit (logged where decided)
            log.debug("closed client %s", who)
        else:
            log.log(VERBOSE, "Client closed connection %s", who)

    def pause_writing(self) -> None:
        self.pause(PAUSED_BY_OUTPUT)

    def resume_writing(self) -> None:
        self.resume(PAUSED_BY_OUTPUT)

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
        if self.deferred:
            self.hold(data)
            return
        worker = self.worker
        totals = worker.totals  # INFO total_net_input_bytes, total_reads_processed
        totals[0] += len(data)
        totals[2] += 1
        self.last_active = time.monotonic()  # --timeout, and CLIENT LIST's idle=
        parser = self.parser
        commands = parser.feed(data)
        # The common case, checked first: whole keyspace commands from an authenticated
        # client outside MULTI go to the writer as one run, nothing else to do here.
        if (parser.reference is None and self.authenticated and self.multi is None and commands
                and not self.subscribed and worker.busy_error is None and not self.reply_mode):
            for argv in commands:
                if argv[0] not in FORWARDED_NAMES:
                    break
            else:
                worker.forward_run(self, commands, len(data))
                return
        if parser.buffered > worker.config.client_query_buffer_limit:
            log.warning("closing client %d: query buffer over %d bytes", self.client_id, parser.buffered)
            self.abort()
            return
        one_at_a_time = parser.unauthenticated
        ready: list[bytes] = []  # worker-made replies that can be written at once
        self.handle_commands(commands, ready)
        # Before AUTH the parser stops after each command, because AUTH lifts the
        # request limits for the commands after it (twemproxy pipelines AUTH + command).
        while one_at_a_time and commands and parser.buffered and parser.error is None and not self.closing:
            one_at_a_time = parser.unauthenticated
            commands = parser.feed(b"")
            self.handle_commands(commands, ready)
        if parser.error is not None and not self.closing:
            if self.outq:
                self.outq.append(parser.error)
            else:
                ready.append(parser.error)
            self.closing = True
        if ready and self.transport is not None:
            out = b"".join(ready) if len(ready) > 1 else ready[0]
            self.worker.count_output(len(out))
            self.transport.write(out)
        if self.closing:
            self.close_when_flushed()

    def handle_commands(self, commands: list[list[bytes]], ready: list[bytes]) -> None:
        """Forward or answer each command in order; replies made here that nothing
        owed precedes go to `ready`, to be written in one call."""
        # Fast path: an authenticated client outside MULTI sending keyspace commands
        # (named exactly as in the table) forwards them as one run, checks left to the
        # writer. Measured: ~1.6x fewer worker CPU-seconds per pipelined SET.
        run: list[list[bytes]] = []
        run_bytes = 0
        fast = (self.authenticated and self.multi is None and not self.subscribed and self.worker.busy_error is None
                and not self.reply_mode)
        for argv in commands:
            if fast and argv[0] in FORWARDED_NAMES:
                run.append(argv)
                run_bytes += _request_bytes(argv)
                continue
            if run:
                self.worker.forward_run(self, run, run_bytes)
                run = []
                run_bytes = 0
            if self.reply_mode and not _is_client_reply(argv):
                self.dispatch_silently(argv)
                reply = None
            else:
                reply = self.dispatch(argv)
            if reply is not None:
                if self.outq:
                    self.outq.append(reply)
                else:
                    ready.append(reply)
            if self.closing:
                return
            fast = (self.authenticated and self.multi is None and not self.subscribed and self.worker.busy_error is None
                and not self.reply_mode)
        if run:
            self.worker.forward_run(self, run, run_bytes)

    # ---------------------------------------------------------------- commands

    def dispatch(self, argv: list[bytes]) -> bytes | None:
        """Handle one command: return a reply made here, or None if forwarded.

        The checks run in Redis's processCommand order: unknown command, arity,
        authentication; a rejected command also fails an open transaction."""
        cmd, problem = check_command(argv)
        if problem:
            return self.reject(cmd, command_error(cmd, argv, problem))
        assert cmd is not None
        if not self.authenticated and "no-auth" not in cmd.flags:
            return self.reject(cmd, ERR_NOAUTH)
        if "protected" in cmd.flags and not debug_allowed(self.worker.config.enable_debug_command, self.peer):
            return self.reject(cmd, ERR_DEBUG_NOT_ALLOWED)
        if self.multi is not None or cmd.handler is None or cmd.local or cmd.name in _MIRRORED:
            # ACL: what this worker answers, queues or mirrors itself (a denied SUBSCRIBE must
            # not be mirrored, CLIENT REPLY is answered here); the writer checks what it runs
            denial = self.acl_check(cmd, argv)
            if denial is not None:
                return self.reject(cmd, denial)
        busy = self.worker.busy_error
        if busy is not None:  # a script is running past busy-reply-threshold
            if not _allowed_when_busy(cmd, argv):
                return self.reject(cmd, busy)
            if cmd.name in ("script", "function") and argv[1].lower() == b"kill" and self.multi is None:
                # an event, which the writer reads from inside the script, and answers with
                # a push (a command would wait behind the script)
                self.worker.send_event(ipc.OP_UPDATE, self, {"kill": cmd.name})
                return None
        if self.subscribed:
            if cmd.name not in _SUBSCRIBED_ALLOWED:
                # the subcommand as the client sent it, raw, as Redis quotes it
                name = cmd.name.encode() + (b"|" + argv[1].lower() if cmd.subcommands and len(argv) >= 2 else b"")
                return self.reject(cmd, b"-ERR Can't execute '" + name + b"': only (P|S)SUBSCRIBE / "
                                   b"(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n")
            if cmd.name == "ping":  # the subscribed form of the reply
                if len(argv) > 2:
                    return self.reject(cmd, wrong_arity("ping"))
                return resp.encode_value([b"pong", argv[1] if len(argv) > 1 else b""], False)
        if self.multi is not None and self.worker.oom and cmd.name not in _RUN_WHEN_OOM:
            # over maxmemory with nothing to evict, queueing could grow memory without bound:
            # Redis refuses every command but these (processCommand), and EXEC then aborts
            return self.reject(cmd, ERR_OOM)
        if self.multi is not None:
            if "no-multi" in cmd.flags:
                return self.reject(cmd, ERR_NOT_IN_MULTI)
            if cmd.name not in _NOT_QUEUED:
                self.multi.append(argv)
                return resp.QUEUED
            if cmd.name == "watch":
                return ERR_WATCH_IN_MULTI  # an error, not a rejection: the transaction goes on
        if cmd.name == "client" and self.multi is None and argv[1].lower() == b"reply":
            return self.client_reply(argv)  # the worker owns the client's replies
        if cmd.handler is None or cmd.local:
            if self.worker.monitoring and cmd.name not in ("multi", "exec"):
                self.send_monitor_feed(cmd.name, argv)  # forwarded commands, the writer shows
            started = time.perf_counter_ns()
            try:
                reply = self.connection_command(cmd.name, argv) if cmd.handler is None else cmd.handler(self, argv)
            except Exception:  # a bug in a worker-local command answers an error, as the writer's call()
                log.exception("internal error running %r in the worker", argv[0][:64])
                reply = resp.ERR_INTERNAL
            self.worker.count_local(_stat_name(cmd, argv), time.perf_counter_ns() - started, reply)
            return reply
        if cmd.name in _SUBSCRIPTION_COMMANDS:
            self.mirror_subscriptions(cmd.name, argv)
        self.worker.forward_run(self, [argv], _request_bytes(argv))
        return None

    def dispatch_silently(self, argv: list[bytes]) -> None:
        """CLIENT REPLY OFF or SKIP: run the command, drop its reply. A forwarded command
        gets an entry of its own whose slot says so (False, see deliver)."""
        outq = self.outq
        self.open_run = None
        owed = len(outq)
        self.dispatch(argv)  # a reply made here is dropped
        if len(outq) > owed and outq[-1] is None:
            outq[-1] = False
            self.open_run = None  # nothing else joins the silent entry
        if self.reply_mode == REPLY_SKIP:
            self.reply_mode = REPLY_ON

    def client_reply(self, argv: list[bytes]) -> bytes | None:
        """CLIENT REPLY ON|OFF|SKIP: only ON answers."""
        mode = argv[2].lower()
        if mode == b"on":
            self.reply_mode = REPLY_ON
            return resp.OK
        if mode == b"off":
            self.reply_mode = REPLY_OFF
        elif mode == b"skip":
            if self.reply_mode != REPLY_OFF:
                self.reply_mode = REPLY_SKIP
        else:
            return resp.ERR_SYNTAX
        return None

    def reject(self, cmd: Command | None, error: bytes) -> bytes:
        """Redis's rejectCommand: flag an open transaction; a rejected EXEC aborts it."""
        if cmd is not None and cmd.name == "exec":
            if self.multi is not None:
                self.unwatch()
            self.multi = None
            message = error[1:-2]
            if message.startswith(b"ERR "):
                message = message[4:]
            return b"-EXECABORT Transaction discarded because of: " + message + b"\r\n"
        if self.multi is not None:
            self.multi_failed = True
        self.worker.count_rejected(None if cmd is None else cmd.name, error)
        return error

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
                self.unwatch()
                return ERR_EXECABORT
            self.running_exec = True
            try:
                transaction: list[list[bytes] | bytes] = [self.run_queued_connection_command(argv) for argv in queued]
            finally:
                self.running_exec = False
            self.worker.forward_exec(self, transaction, sum(map(_request_bytes, queued)))
            return None
        if name == "discard":
            if self.multi is None:
                return ERR_DISCARD_WITHOUT_MULTI
            self.multi = None
            self.unwatch()
            return resp.OK
        if name == "quit":
            # through the writer, which forgets the client before the +OK is written: once
            # the client has read it, no other client sees it subscribed, blocked or watching
            self.closing = True
            self.worker.forward_run(self, [argv], _request_bytes(argv))
            return None
        if name == "reset":
            # as Redis: leave MULTI, back to RESP2, no name, database 0, nothing watched, and
            # authenticated only if no password is set
            self.multi = None
            self.subscriptions = None  # the writer unsubscribes it from everything
            self.set_protocol(2)
            self.update_subscribed()
            self.worker.send_event(ipc.OP_UPDATE, self, {"name": b"", "reset": 1})
            self.user = "default"  # the writer's RESET event does the same
            self.authenticated = self.default_user_open()
            self.parser.unauthenticated = not self.authenticated
            return b"+RESET\r\n"
        if name == "hello":
            return self.hello(argv)
        if name == "auth":
            if len(argv) > 3:
                return resp.ERR_SYNTAX
            return self.authenticate(argv[1] if len(argv) == 3 else None, argv[-1], argv[0])
        return unknown_command(argv)

    def send_monitor_feed(self, name: str, argv: list[bytes]) -> None:
        """Show MONITOR a command answered here, with credentials redacted as Redis does."""
        if name == "auth":
            argv = argv[:1] + [b"(redacted)"] * (len(argv) - 1)
        elif name == "hello":
            shown = list(argv)
            for i in range(2, len(argv) - 2):
                if argv[i].lower() == b"auth":
                    shown[i + 1] = shown[i + 2] = b"(redacted)"
                    break
            argv = shown
        self.worker.send_event(ipc.OP_UPDATE, self, {"feed": argv})

    def unwatch(self) -> None:
        """DISCARD and an aborted EXEC end WATCH, which the writer keeps."""
        self.worker.send_event(ipc.OP_UPDATE, self, {"unwatch": 1})

    def run_queued_connection_command(self, argv: list[bytes]) -> list[bytes] | bytes:
        """At EXEC: a queued AUTH or HELLO runs here, in order, and its reply (bytes) takes
        its place in the transaction; keyspace commands stay argv for the writer."""
        cmd = lookup(argv[0])
        if cmd is not None and cmd.handler is None:
            return self.connection_command(cmd.name, argv) or b""
        if cmd is not None and cmd.name in _SUBSCRIPTION_COMMANDS:
            self.mirror_subscriptions(cmd.name, argv)
        return argv

    def default_user_open(self) -> bool:
        """Redis's authRequired: a client needs no AUTH while the default user is on and
        has no password."""
        default = self.worker.acl.users["default"]
        return default.enabled and default.nopass

    def acl_check(self, cmd: Command, argv: list[bytes]) -> bytes | None:
        """ACL for a command this worker answers or queues in MULTI (Redis checks both at
        queue time and at EXEC): None, or the NOPERM error (logged by the writer)."""
        user = self.worker.acl.users.get(self.user)
        if user is None or user.unrestricted or "no-auth" in cmd.flags:
            return None
        name = full_name(cmd, argv)
        denied = user.check_command(name, argv)
        if denied is None:
            return None
        context = "multi" if self.multi is not None else "toplevel"
        self.worker.send_event(ipc.OP_UPDATE, self, {"acl_log": [
            denied[0], context, ipc.text_to_wire(denied[1]), ipc.text_to_wire(self.user), argv[:2]]})
        return noperm_error(denied[0], name)

    def authenticate(self, user: bytes | None, password: bytes, command: bytes) -> bytes:
        """AUTH [user] password against the worker's replica of the users (kvred/acl.py);
        the writer learns the client's new user from the event, before its next command."""
        users = self.worker.acl.users
        if user is None:
            if users["default"].nopass:
                return ERR_AUTH_NO_PASSWORD  # Redis's error for the old form without a password
            name = "default"
        else:
            name = user.decode("utf-8", "surrogateescape")
        found = users.get(name)
        if found is None or not found.check_password(password):
            if found is None:
                hmac.compare_digest(password, password)  # (no early answer for unknown users)
            context = "multi" if self.multi is not None or self.running_exec else "toplevel"
            # the ACL LOG's object is the command as the client sent it (AUTH, hello...);
            # inside EXEC, CLIENT LIST's cmd= is exec, as in Redis
            self.worker.send_event(ipc.OP_UPDATE, self, {"acl_log": [
                DENIED_AUTH, context, ipc.text_to_wire(command.decode("utf-8", "replace")), ipc.text_to_wire(name),
                [b"exec"] if self.running_exec else [command]]})
            return ERR_WRONGPASS
        self.user = name
        self.authenticated = True
        self.parser.unauthenticated = False
        self.worker.send_event(ipc.OP_UPDATE, self, {"user": ipc.text_to_wire(name)})
        return resp.OK

    def hello(self, argv: list[bytes]) -> bytes:
        """HELLO [protover [AUTH user pass] [SETNAME name]], checked in Redis's order:
        version, then options in order (an AUTH option authenticates at once, as in
        Redis 7.0), then the NOAUTH check, and only then any change."""
        version = 3 if self.resp3 else 2
        name = None
        if len(argv) > 1:
            requested = resp.parse_strict_int(argv[1])
            if requested is None:
                return ERR_PROTO_NOT_INT
            if requested not in (2, 3):
                return ERR_NOPROTO
            version = requested
            i = 2
            while i < len(argv):
                opt = argv[i].lower()
                if opt == b"auth" and i + 2 < len(argv):
                    auth_reply = self.authenticate(argv[i + 1], argv[i + 2], argv[0])
                    if auth_reply is not resp.OK:
                        return auth_reply
                    i += 3
                elif opt == b"setname" and i + 1 < len(argv):
                    name = argv[i + 1]
                    if not valid_client_name(name):
                        return b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
                    i += 2
                else:
                    return error_quoting("Syntax error in HELLO option '", argv[i])
        if not self.authenticated:
            return ERR_HELLO_NOAUTH
        if name is not None:
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
            self.update_subscribed()

    # ---------------------------------------------------------------- replies

    def deliver(self, reply: bytes | int | bool) -> None:
        """The writer's reply for the oldest owed slot; flush what is then ready."""
        if self.closed:
            return
        if reply is ipc.REPLY_DEFERRED:  # owed still: it comes in a resume message
            self.deferred += 1  # what the client sends meanwhile is held (data_received)
            return
        if type(reply) is int:  # the writer stopped this client: its replies passed the output limit
            if not self.closing:
                log.warning("closing client %d: output buffer over the limit", self.client_id)
            self.abort()
            return
        assert type(reply) is bytes
        if self.pushes and self.pushes[0][0] <= self.answered:
            self.write_pushes()  # messages queued before this reply go first
        outq = self.outq
        if outq.popleft() is False:
            reply = b""  # CLIENT REPLY OFF/SKIP was on for it
        self.answered += 1
        if outq and type(outq[0]) is bytes:
            parts = [reply]
            while outq and type(outq[0]) is bytes:
                parts.append(outq.popleft())  # type: ignore[arg-type]
            reply = b"".join(parts)
        transport = self.transport
        assert transport is not None
        totals = self.worker.totals  # INFO total_net_output_bytes, total_writes_processed
        totals[1] += len(reply)
        totals[3] += 1
        transport.write(reply)
        if self.pushes and self.pushes[0][0] <= self.answered:
            self.write_pushes()
        # The output limit can only be passed with unsent replies, and those show as a
        # paused client first unless the limit is below the pause threshold.
        limit = self.worker.output_limit
        if limit and (self.paused or limit <= CLIENT_WRITE_HIGH_WATER) and transport.get_write_buffer_size() > limit:
            log.warning(
                "closing client %d: %d bytes of unread replies", self.client_id, transport.get_write_buffer_size()
            )
            self.abort()
            return
        if self.closing and not outq:
            self.close_when_flushed()

    def resume_deferred(self, replies: list[bytes | int]) -> None:
        """The replies the writer deferred, in order: they fill the oldest owed slots."""
        for reply in replies:
            if self.closed:
                return
            if type(reply) is list:  # a partial reply: the start of the oldest owed one
                if self.transport is not None:
                    self.worker.count_output(len(reply[0]))
                    self.transport.write(reply[0])
                continue
            self.deferred -= 1
            self.deliver(reply)
        if not self.deferred and self.held and not self.closed:
            held, self.held = bytes(self.held), bytearray()
            self.data_received(held)

    def hold(self, data: bytes) -> None:
        """Keep what a waiting client sends for when it is served (bounded as its
        query buffer is)."""
        self.held += data
        if len(self.held) > self.worker.config.client_query_buffer_limit:
            log.warning("closing client %d: query buffer over %d bytes", self.client_id, len(self.held))
            self.abort()

    def queue_push(self, answered: int, data: bytes) -> None:
        """A message the client did not ask for, to write after its `answered`-th reply;
        what is queued counts against the client's output limit."""
        self.pushes.append((answered, data))
        self.pushes_bytes += len(data)
        if self.pushes_bytes > 1 << 20 and self.transport is not None:  # (the limits are far larger)
            self.check_push_limit(self.pushes_bytes + self.transport.get_write_buffer_size())

    def flush_pushes(self) -> None:
        """Messages the client did not ask for were queued (`pushes`, each to be written
        after the client's `answered`-th reply): write those that are due."""
        pushes = self.pushes
        if pushes[0][0] <= self.answered:
            self.write_pushes()
        elif self.transport is not None:
            self.check_push_limit(self.pushes_bytes + self.transport.get_write_buffer_size())

    def write_pushes(self) -> None:
        pushes = self.pushes
        parts = []
        answered = self.answered
        while pushes and pushes[0][0] <= answered:
            parts.append(pushes.popleft()[1])
        self.pushes_bytes -= sum(map(len, parts))
        transport = self.transport
        if transport is None or self.closed:
            return
        out = b"".join(parts) if len(parts) > 1 else parts[0]
        self.worker.count_output(len(out))
        transport.write(out)
        self.check_push_limit(transport.get_write_buffer_size() + self.pushes_bytes)

    def check_push_limit(self, pending: int) -> None:
        """`pending` bytes of pushes and replies are unsent: a subscriber is held to the
        pubsub class's limits, any other client (MONITOR, CLIENT TRACKING) to the normal
        output limit."""
        if self.subscriptions is not None:
            self.check_pubsub_limit(pending)
            return
        limit = self.worker.output_limit
        if limit and pending > limit:
            log.warning("closing client %d: %d bytes of unread messages", self.client_id, pending)
            self.abort()

    def check_pubsub_limit(self, pending: int) -> None:
        """client-output-buffer-limit pubsub: a subscriber that does not read is cut off
        at the hard limit at once, or after staying over the soft limit for its seconds."""
        hard, soft, seconds = self.worker.pubsub_output_limit
        if hard and pending > hard:
            log.warning("closing subscriber %d: %d bytes of unread messages", self.client_id, pending)
            self.abort()
        elif soft and pending > soft:
            now = time.monotonic()
            if not self.over_soft_since:
                self.over_soft_since = now
            elif now - self.over_soft_since >= seconds:
                log.warning("closing subscriber %d: over %d bytes of unread messages for %d s",
                            self.client_id, soft, seconds)
                self.abort()
        else:
            self.over_soft_since = 0.0

    def mirror_subscriptions(self, name: str, argv: list[bytes]) -> None:
        """Follow a (un)subscribe the client sends, to know when it is in RESP2's
        subscribed mode (the writer answers it with the real counts)."""
        kind, subscribing = _SUBSCRIPTION_COMMANDS[name]
        subscriptions = self.subscriptions
        if subscriptions is None:
            if not subscribing:
                return
            subscriptions = self.subscriptions = {kind: set() for kind, _sub in _SUBSCRIPTION_COMMANDS.values()}
        names = subscriptions[kind]
        if subscribing:
            names.update(argv[1:])
        elif len(argv) == 1:
            names.clear()
        else:
            names.difference_update(argv[1:])
        self.update_subscribed()

    def update_subscribed(self) -> None:
        subscriptions = self.subscriptions
        self.subscribed = not self.resp3 and subscriptions is not None and any(subscriptions.values())

    def stats(self, now: float) -> list[int | str]:
        """[id, fd, idle s, multi, qbuf, multi-mem, omem, events] for CLIENT LIST (OP_STATS)."""
        transport = self.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        omem = transport.get_write_buffer_size() if transport is not None and not self.closed else 0
        multi = self.multi
        multi_mem = sum(map(_request_bytes, multi)) if multi else 0
        events = ("r" if not self.paused else "") + ("w" if omem else "")
        return [self.client_id, sock.fileno() if sock is not None else -1, int(now - self.last_active),
                len(multi) if multi is not None else -1, self.parser.buffered + len(self.held), multi_mem, omem,
                events]

    def kill(self) -> None:
        """CLIENT KILL: close now, after what was already written (no more replies)."""
        self.closing = True
        self.outq.clear()
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the client now, unsent replies included (a limit was passed)."""
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def close_when_flushed(self) -> None:
        if self.outq or self.transport is None:
            return  # deliver() closes once the owed replies are written
        self.transport.close()  # asyncio flushes the write buffer before closing


# Redis 7.0's allow-busy commands (COMMAND INFO), what a busy server still takes
_ALLOWED_WHEN_BUSY = frozenset({"auth", "discard", "hello", "multi", "quit", "reset", "shutdown", "unwatch", "watch"})
_ALLOWED_WHEN_BUSY_SUB = frozenset({(b"script", b"kill"), (b"function", b"kill"), (b"function", b"stats")})


_MIRRORED = frozenset(_SUBSCRIPTION_COMMANDS) | {"client"}


def _allowed_when_busy(cmd: Command, argv: list[bytes]) -> bool:
    if cmd.name in _ALLOWED_WHEN_BUSY:
        return True
    return len(argv) > 1 and (cmd.name.encode(), argv[1].lower()) in _ALLOWED_WHEN_BUSY_SUB


def _is_client_reply(argv: list[bytes]) -> bool:
    return len(argv) == 3 and argv[0].lower() == b"client" and argv[1].lower() == b"reply"


def _request_bytes(argv: list[bytes]) -> int:
    """What a forwarded command weighs in the worker's back-pressure accounting."""
    return sum(map(len, argv)) + 16 * len(argv)  # 16: its RESP framing, about


def _address(transport: asyncio.BaseTransport, what: str) -> str:
    addr = transport.get_extra_info(what)
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return str(addr or "")


_stat_name = full_name  # commandstats' name: `hello`, or `client|reply` for a container's subcommand
