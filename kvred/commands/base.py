"""The command table's building blocks: `Command`, the `@command` registry,
the handler context's type, Redis's shared error replies, and argument helpers.

A handler is `handler(ctx, argv) -> bytes`: it gets the execution context and
the full argv (argv[0] is the name as the client sent it) and returns the
encoded reply. For keyspace commands the context is the writer's
`CommandContext` (kvred/execute.py), typed here as `Context`:

    ctx.keyspace        the client's database (kvred/keyspace.py): every key goes through it
    ctx.databases       all of them (SELECT, MOVE, SWAPDB, FLUSHALL, INFO keyspace)
    ctx.client          the client (kvred/clients.py): id, selected db, WATCHed keys, name
    ctx.resp3, ctx.null the client's protocol and its null reply ($-1 or _)
    ctx.aof_feed(argv)  log a change exactly as it must be replayed
    ctx.output_limit    bytes a client's replies may reach: a handler that builds a
                        reply of many parts raises ReplyTooLarge once its parts pass
                        it, so that no client can make the writer build a reply of
                        unbounded size
    ctx.server          server-wide state and requests (INFO, CONFIG, CLIENT, rewrite)

A command flagged `local` (no keyspace, no shared state) may also run in a worker,
with the client's `Connection` as its context, which has only `resp3` and `null`.

A handler that changes the keyspace calls `ctx.aof_feed` with what must be
replayed, and only when something changed: that is how the AOF stays
deterministic and free of no-ops. A key of the wrong type: raise WrongType
(kvred/keyspace.py) before changing anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .. import resp
from ..blocking import BlockOn, parse_timeout
from ..stats import new_stat

if TYPE_CHECKING:
    from ..clients import WriterClient
    from ..config import Config
    from ..keyspace import Databases, Keyspace

__all__ = [
    "parse_mpop",
    "subcommand_syntax_error",
    "parse_bmpop",
    "wait_for_keys",
    "Command",
    "COMMANDS",
    "command",
    "register",
    "lookup",
    "check_command",
    "command_error",
    "NO_SUCH_COMMAND",
    "BAD_ARITY",
    "NO_SUCH_SUBCOMMAND",
    "BAD_SUBCOMMAND_ARITY",
    "wrong_arity",
    "unknown_command",
    "unknown_subcommand",
    "error_quoting",
    "int_arg",
    "ERR_SYNTAX",
    "ERR_NOT_INT",
    "ERR_NOT_FLOAT",
    "ERR_WRONGTYPE",
    "ERR_OVERFLOW",
    "Handler",
    "ReplyTooLarge",
    "Context",
    "LocalContext",
    "Server",
]

Handler = Callable[[Any, list[bytes]], bytes]
H = TypeVar("H", bound=Handler)

ERR_SYNTAX = resp.ERR_SYNTAX
ERR_NOT_INT = b"-ERR value is not an integer or out of range\r\n"
ERR_NOT_FLOAT = b"-ERR value is not a valid float\r\n"
ERR_WRONGTYPE = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
ERR_OVERFLOW = b"-ERR increment or decrement would overflow\r\n"


class Server(Protocol):
    """The writer as handlers see it: server-wide state and requests."""

    config: Config
    started_at: float
    clients: dict[int, WriterClient]

    def config_params(self) -> dict[str, bytes]: ...

    def info_sections(self) -> dict[str, Callable[[], dict[str, object]]]: ...

    def client_list(self, only: WriterClient | None = None) -> bytes: ...

    def reset_stats(self) -> bytes: ...

    def debug_reload(self) -> bytes: ...

    def request_rewrite(self) -> bytes: ...

    def request_shutdown(self) -> bytes: ...

    def memory_figures(self) -> dict[str, Any]: ...

    def malloc_stats(self) -> bytes: ...

    def purge_memory(self) -> None: ...


class LocalContext(Protocol):
    """What a `local` command may use (a worker's Connection has just this)."""

    resp3: bool
    null: bytes


class Context(LocalContext, Protocol):
    """What a keyspace command gets (kvred/execute.py's CommandContext)."""

    keyspace: Keyspace
    databases: Databases
    client: WriterClient
    config: Config
    server: Server
    output_limit: int
    aof_feed: Callable[[list[bytes]], None]
    may_block: bool  # a blocking command may wait (raise BlockOn), kvred/blocking.py
    executor: Any  # kvred/execute.py's Executor: pub/sub, blocked clients, MONITOR

    def select(self, index: int) -> None: ...


class ReplyTooLarge(Exception):
    """The reply being built passed the client's output limit: the caller drops the
    client and discards its replies. Raise it only after every effect of the command
    is applied and logged (read-only commands: any time), so the command stays whole."""


class Command:
    """One row of the command table (Redis's `redisCommand`)."""

    __slots__ = (
        "name",
        "handler",
        "arity",
        "min_argc",
        "max_argc",
        "flags",
        "first_key",
        "last_key",
        "key_step",
        "local",
        "write",
        "denyoom",
        "subcommands",
        "direct",
        "stat",
    )

    def __init__(
        self,
        name: str,
        handler: Handler | None,
        arity: int,
        flags: tuple[str, ...],
        keys: tuple[int, int, int],
    ) -> None:
        self.name = name  # lowercase, as Redis names it in errors
        self.handler = handler  # None: the worker's connection handles it (HELLO, MULTI, ...)
        self.arity = arity  # Redis convention: N exact, -N at least N; argv[0] counts
        # the same as a range, one chained comparison on the hot paths
        self.min_argc = abs(arity)
        self.max_argc = arity if arity > 0 else 1 << 62
        self.flags = flags  # Redis's COMMAND INFO flags
        self.first_key, self.last_key, self.key_step = keys
        self.local = "local" in flags  # a worker may answer it without the writer
        self.write = "write" in flags
        self.denyoom = "denyoom" in flags  # may grow memory: evict first, or -OOM (kvred/eviction.py)
        # a container command (CONFIG, CLIENT, OBJECT...): lowercase subcommand -> its arity
        self.subcommands: dict[bytes, int] = {}
        # the writer may call the handler once the arity is right (no subcommands to check,
        # not a connection command): its hot loop skips call() for these
        # (a blocking command neither: the executor must see it raise BlockOn)
        self.direct = handler is not None and "blocking" not in flags
        # INFO commandstats' counters (kvred/stats.py), set by the writer's executor
        self.stat: list[int] = new_stat()


# name -> Command, under both the lowercase and the uppercase name so that the
# hot path finds what clients usually send without calling bytes.lower().
COMMANDS: dict[bytes, Command] = {}


def register(
    name: str, handler: Handler | None, arity: int, flags: str = "", keys: tuple[int, int, int] = (0, 0, 0)
) -> None:
    """Add a row to the table; `handler` None marks a connection command (run by the worker)."""
    cmd = Command(name, handler, arity, tuple(flags.split()), keys)
    COMMANDS[name.encode()] = cmd
    COMMANDS[name.upper().encode()] = cmd


def command(
    name: str,
    arity: int,
    flags: str = "",
    keys: tuple[int, int, int] = (0, 0, 0),
    subcommands: dict[str, int] | None = None,
) -> Callable[[H], H]:
    """Register the decorated handler as command `name` (a container, with `subcommands`:
    name -> arity, Redis's convention, argv[0] and the subcommand counted)."""

    def decorate(handler: H) -> H:
        register(name, handler, arity, flags, keys)
        if subcommands:
            cmd = COMMANDS[name.encode()]
            cmd.subcommands = {sub.encode(): n for sub, n in subcommands.items()}
            cmd.direct = False
        return handler

    return decorate


def lookup(name: bytes) -> Command | None:
    cmd = COMMANDS.get(name)
    if cmd is None:
        cmd = COMMANDS.get(name.lower())
    return cmd


# What check_command found wrong with a command line (0: nothing).
NO_SUCH_COMMAND = 1
BAD_ARITY = 2  # the command's (or the container's) arity
NO_SUCH_SUBCOMMAND = 3
BAD_SUBCOMMAND_ARITY = 4


def check_command(argv: list[bytes]) -> tuple[Command | None, int]:
    """Redis's lookupCommand and arity checks, the one place kvred makes them: the
    worker's dispatch, the writer's call() and redis.call all come here (the writer's
    inlined GET/SET path repeats only the arity comparison, on the same Command).
    Returns (the command, 0) or (the command if known, what is wrong)."""
    cmd = COMMANDS.get(argv[0])
    if cmd is None:
        cmd = COMMANDS.get(argv[0].lower())
        if cmd is None:
            return None, NO_SUCH_COMMAND
    argc = len(argv)
    if not cmd.min_argc <= argc <= cmd.max_argc:
        return cmd, BAD_ARITY
    if cmd.subcommands and argc >= 2:  # a container that also runs alone (COMMAND) skips this
        arity = cmd.subcommands.get(argv[1].lower())
        if arity is None:
            return cmd, NO_SUCH_SUBCOMMAND
        if (arity > 0 and argc != arity) or argc < -arity:
            return cmd, BAD_SUBCOMMAND_ARITY
    return cmd, 0


def command_error(cmd: Command | None, argv: list[bytes], problem: int) -> bytes:
    """Redis's reply to a command line check_command refused."""
    if cmd is None:
        return unknown_command(argv)
    if problem == BAD_ARITY:
        return wrong_arity(cmd.name)
    if problem == NO_SUCH_SUBCOMMAND:
        return unknown_subcommand(argv[1], cmd.name)
    return wrong_arity(full_name(cmd, argv))


def full_name(cmd: Command, argv: list[bytes]) -> str:
    """Redis's full name of a command line: `get`, or `config|get` for a container's
    subcommand (commandstats, ACL rules, error texts)."""
    if cmd.subcommands and len(argv) >= 2:
        return f"{cmd.name}|{argv[1].lower().decode('utf-8', 'replace')}"
    return cmd.name


def wrong_arity(name: str) -> bytes:
    return b"-ERR wrong number of arguments for '" + name.encode() + b"' command\r\n"


def _printable(arg: bytes) -> bytes:
    # Redis replaces CR and LF by spaces so that an error stays on one line.
    return arg.replace(b"\r", b" ").replace(b"\n", b" ")


def error_quoting(prefix: str, arg: bytes, suffix: str = "'") -> bytes:
    """`-ERR <prefix><arg><suffix>`: a client's bytes inside an error, kept on one line
    as Redis's addReplyErrorFormat does (a raw CR/LF would break the client's framing)."""
    return b"-ERR " + prefix.encode() + _printable(arg) + suffix.encode() + b"\r\n"


def unknown_command(argv: list[bytes]) -> bytes:
    """Redis's text, truncated as Redis truncates it (128 characters)."""
    args = b""
    for arg in argv[1:]:
        room = 128 - len(args)
        if room <= 0:
            break
        args += b"'" + _printable(arg[:room]) + b"' "
    return b"-ERR unknown command '" + _printable(argv[0][:128]) + b"', with args beginning with: " + args + b"\r\n"


def unknown_subcommand(sub: bytes, container: str) -> bytes:
    return (
        b"-ERR unknown subcommand '" + _printable(sub[:128]) + b"'. Try " + container.upper().encode() + b" HELP.\r\n"
    )


def subcommand_syntax_error(sub: bytes, container: str) -> bytes:
    """Redis's addReplySubcommandSyntaxError: a known subcommand with the wrong arguments."""
    return (
        b"-ERR unknown subcommand or wrong number of arguments for '" + _printable(sub[:128]) + b"'. Try "
        + container.upper().encode() + b" HELP.\r\n"
    )


def int_arg(arg: bytes) -> int | None:
    """An integer argument as Redis reads it (string2ll); None if invalid."""
    return resp.parse_strict_int(arg)


ERR_NUMKEYS = b"-ERR numkeys should be greater than 0\r\n"
ERR_MPOP_COUNT = b"-ERR count should be greater than 0\r\n"


def parse_mpop(argv: list[bytes], first: int, sides: tuple[bytes, bytes]) -> tuple[list[bytes], bool, int] | bytes:
    """LMPOP/ZMPOP and their blocking forms: `numkeys key [key ...] <side> [COUNT n]`
    from argv[first]; (keys, whether the second side, count) or Redis's error."""
    numkeys = int_arg(argv[first])
    if numkeys is None or numkeys <= 0:
        return ERR_NUMKEYS
    argc = len(argv)
    where = first + 1 + numkeys
    if where >= argc:
        return ERR_SYNTAX
    side = argv[where].lower()
    if side not in sides:
        return ERR_SYNTAX
    count = 1
    counted = False
    i = where + 1
    while i < argc:
        if argv[i].lower() != b"count" or counted or i + 1 >= argc:
            return ERR_SYNTAX
        number = int_arg(argv[i + 1])
        if number is None or number <= 0:
            return ERR_MPOP_COUNT
        count, counted = number, True
        i += 2
    return argv[first + 1 : where], side == sides[1], count


def parse_bmpop(argv: list[bytes], sides: tuple[bytes, bytes]) -> tuple[list[bytes], bool, int, float] | bytes:
    """BLMPOP/BZMPOP: `timeout numkeys key [key ...] <side> [COUNT n]`; (keys, whether
    the second side, count, timeout) or Redis's error (the timeout is checked first)."""
    timeout = parse_timeout(argv[1])
    if isinstance(timeout, bytes):
        return timeout
    parsed = parse_mpop(argv, 2, sides)
    if isinstance(parsed, bytes):
        return parsed
    return (*parsed, timeout)


def wait_for_keys(ctx: Context, argv: list[bytes], keys: list[bytes], timeout: float, timeout_reply: bytes,
                  types: tuple[type, ...], now_reply: bytes | None = None) -> bytes:
    """A blocking command found nothing to serve: wait for one of `keys` to hold one of
    `types` (BlockOn), or, where commands may not wait (MULTI/EXEC, scripts), answer
    `now_reply` (by default the timeout's reply) at once."""
    if ctx.may_block:
        raise BlockOn(keys, timeout, timeout_reply, types, _retry_on_one_key(argv, keys))
    return timeout_reply if now_reply is None else now_reply


def _retry_on_one_key(argv: list[bytes], keys: list[bytes]) -> Callable[[bytes], list[bytes]] | None:
    """How to re-run a blocking command on the one key that became ready: `B*POP key...
    timeout` -> `B*POP key timeout`; `B*MPOP timeout numkeys key... rest` -> numkeys 1."""
    if len(keys) == 1:
        return None
    if not argv[0].lower().endswith(b"mpop"):  # B*POP key [key ...] timeout
        return lambda key: [argv[0], key, argv[-1]]
    rest = argv[3 + len(keys) :]  # B*MPOP: the timeout and numkeys come first
    return lambda key: [argv[0], argv[1], b"1", key, *rest]
