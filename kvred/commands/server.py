"""Server and connection commands: PING, ECHO, SELECT, COMMAND, CONFIG, CLIENT, INFO.

HELLO, AUTH, QUIT, RESET, MULTI, EXEC and DISCARD change the state of one
connection, which lives in the worker; they are registered here with no
handler so that arity checks, COMMAND and error texts see them, and the
worker's connection implements them (kvred/worker.py).
"""

from __future__ import annotations

import time
from typing import Any

from .. import resp
from ..glob import compile_glob
from ..notify import parse_flags
from .base import (
    COMMANDS,
    Command,
    Context,
    command,
    error_quoting,
    register,
    unknown_subcommand,
    wrong_arity,
)

__all__ = ["format_info", "INFO_DEFAULT_SECTIONS", "valid_client_name"]

OK = resp.OK


@command("ping", -1, "fast local")
def ping(ctx: Any, argv: list[bytes]) -> bytes:
    if len(argv) > 2:
        return wrong_arity("ping")
    return resp.PONG if len(argv) == 1 else resp.bulk(argv[1])


@command("echo", 2, "fast local")
def echo(ctx: Any, argv: list[bytes]) -> bytes:
    return resp.bulk(argv[1])


# Connection commands, implemented by the worker's connection.
for _name, _arity, _flags in (
    ("hello", -1, "fast no-auth"),
    ("auth", -2, "fast no-auth"),
    ("quit", -1, "fast no-auth"),
    ("reset", 1, "fast no-auth"),
    ("multi", 1, "fast"),
    ("exec", 1, "slow"),
    ("discard", 1, "fast"),
):
    register(_name, None, _arity, _flags)


# ---------------------------------------------------------------- COMMAND

_HIDDEN_FLAGS = {"local", "protected"}  # kvred's own: where it runs, when DEBUG is allowed


def _command_info(cmd: Command) -> bytes:
    # Redis 7 spells its flags with underscores (no_auth, no_multi)
    flags = [b"+" + f.replace("-", "_").encode() + b"\r\n" for f in cmd.flags if f not in _HIDDEN_FLAGS]
    return b"".join(
        [
            b"*10\r\n",
            resp.bulk(cmd.name.encode()),
            resp.integer(cmd.arity),
            resp.array(flags),
            resp.integer(cmd.first_key),
            resp.integer(cmd.last_key),
            resp.integer(cmd.key_step),
            resp.EMPTY_ARRAY,  # ACL categories
            resp.EMPTY_ARRAY,  # tips
            resp.EMPTY_ARRAY,  # key specs
            resp.EMPTY_ARRAY,  # subcommands
        ]
    )


def _all_commands() -> list[Command]:
    seen: dict[str, Command] = {}
    for cmd in COMMANDS.values():
        seen.setdefault(cmd.name, cmd)
    return list(seen.values())


_COMMAND_HELP = [
    b"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"(no subcommand)",
    b"    Return details about all Redis commands.",
    b"COUNT",
    b"    Return the total number of commands in this Redis server.",
    b"LIST",
    b"    Return a list of all commands in this Redis server.",
    b"INFO [<command-name> ...]",
    b"    Return details about multiple Redis commands.",
    b"DOCS [<command-name> ...]",
    b"    Return documentation details about multiple Redis commands.",
    b"HELP",
    b"    Print this help.",
]


@command("command", -1, "local", subcommands={"count": 2, "list": -2, "info": -2, "docs": -2, "help": 2})
def command_(ctx: Any, argv: list[bytes]) -> bytes:
    if len(argv) == 1:
        return resp.array([_command_info(cmd) for cmd in _all_commands()])
    sub = argv[1].lower()
    if sub == b"count":
        return resp.integer(len(_all_commands()))
    if sub == b"list":
        return resp.array([resp.bulk(cmd.name.encode()) for cmd in _all_commands()])
    if sub == b"info":
        infos = []
        names = argv[2:] or [cmd.name.encode() for cmd in _all_commands()]
        for name in names:
            cmd = COMMANDS.get(name.lower())
            infos.append(_command_info(cmd) if cmd else ctx.null)
        return resp.array(infos)
    if sub == b"docs":
        # Documentation is optional for clients: an empty map makes redis-cli
        # skip its hints without a fallback round trip.
        return b"%0\r\n" if ctx.resp3 else resp.EMPTY_ARRAY
    if sub == b"help":
        return resp.array([resp.simple(line) for line in _COMMAND_HELP])
    return unknown_subcommand(argv[1], "command")


# ---------------------------------------------------------------- CONFIG


@command("config", -2, "admin", subcommands={"get": -3, "set": -4, "resetstat": 2, "rewrite": 2})
def config(ctx: Any, argv: list[bytes]) -> bytes:
    sub = argv[1].lower()
    if sub == b"get":
        params: dict[str, bytes] = ctx.server.config_params()
        found: dict[bytes, bytes] = {}
        for pattern in argv[2:]:
            if not any(c in pattern for c in b"*?["):
                # An exact name is echoed as the client spelled it, as Redis does.
                value = params.get(pattern.lower().decode(errors="replace"))
                if value is not None:
                    found[pattern] = value
                continue
            match = compile_glob(pattern, nocase=True).match
            for name, value in params.items():
                if match(name.encode()):
                    found[name.encode()] = value
        head = b"%%%d\r\n" % len(found) if ctx.resp3 else b"*%d\r\n" % (2 * len(found))
        return head + b"".join(resp.bulk(k) + resp.bulk(v) for k, v in found.items())
    if sub == b"set":
        return _config_set(ctx, argv)
    if sub == b"resetstat":
        return ctx.server.reset_stats()
    if sub == b"rewrite":
        return b"-ERR The server is running without a config file\r\n"
    return unknown_subcommand(argv[1], "config")


def _config_set(ctx: Context, argv: list[bytes]) -> bytes:
    """CONFIG SET name value [name value ...]: all or nothing. Settable so far:
    notify-keyspace-events (the rest of Redis's runtime settings: see README)."""
    if len(argv) % 2:
        return wrong_arity("config|set")
    changes = {}
    for i in range(2, len(argv), 2):
        name = argv[i].lower()
        if name != b"notify-keyspace-events":
            return error_quoting("Unknown option or number of arguments for CONFIG SET - '", argv[i])
        if name in changes:
            return error_quoting("Duplicate parameter - '", argv[i])
        flags = parse_flags(argv[i + 1].decode("latin-1"))
        if flags is None:
            return (b"-ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - "
                    b"Invalid event class character. Use 'Ag$lshzxeKEtmdn'.\r\n")
        changes[name] = flags
    for flags in changes.values():
        ctx.databases.set_notify_flags(flags)
    return OK


# ---------------------------------------------------------------- CLIENT


_NAME_BYTES = bytes(range(0x21, 0x7F))  # printable ASCII without the space


def valid_client_name(name: bytes) -> bool:
    """Redis's rule for CLIENT SETNAME / HELLO SETNAME; translate() checks a 64 MB name
    at C speed (a Python loop over it stalled every client for 2.8 s)."""
    return not name.translate(None, _NAME_BYTES)


@command("client", -2, "admin", subcommands={"id": 2, "setname": 3, "getname": 2, "list": -2, "info": 2})
def client(ctx: Context, argv: list[bytes]) -> bytes:
    sub = argv[1].lower()
    if sub == b"id":
        return resp.integer(ctx.client.id)
    if sub == b"setname":
        if not valid_client_name(argv[2]):
            return b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
        ctx.client.name = argv[2]
        return OK
    if sub == b"getname":
        name = ctx.client.name
        return resp.bulk(name) if name else ctx.null
    if sub == b"list":
        return resp.verbatim(ctx.server.client_list(), ctx.resp3)
    if sub == b"info":
        return resp.verbatim(ctx.server.client_list(only=ctx.client), ctx.resp3)
    return unknown_subcommand(argv[1], "client")


# ---------------------------------------------------------------- INFO

INFO_DEFAULT_SECTIONS = (
    "server", "clients", "memory", "persistence", "stats", "replication", "cpu", "cluster", "keyspace"
)


def format_info(sections: dict[str, dict[str, object]], wanted: list[bytes]) -> bytes:
    """Render INFO: '# Name' headers, 'field:value' lines, sections split by a blank line."""
    names = [w.decode(errors="replace").lower() for w in wanted]
    if not names or "default" in names or "all" in names or "everything" in names:
        chosen = list(sections)
    else:
        chosen = [name for name in sections if name in names]
    blocks = []
    for name in chosen:
        lines = [f"# {name.capitalize()}"]
        lines += [f"{field}:{value}" for field, value in sections[name].items()]
        blocks.append("\r\n".join(lines) + "\r\n")
    return "\r\n".join(blocks).encode()


@command("info", -1, "loading stale")
def info(ctx: Context, argv: list[bytes]) -> bytes:
    return resp.verbatim(format_info(ctx.server.info_sections(), argv[1:]), ctx.resp3)


@command("time", 1, "fast local")
def time_(ctx: Any, argv: list[bytes]) -> bytes:
    now = time.time_ns() // 1000
    return resp.array([resp.bulk(b"%d" % (now // 1_000_000)), resp.bulk(b"%d" % (now % 1_000_000))])


@command("lastsave", 1, "fast")
def lastsave(ctx: Any, argv: list[bytes]) -> bytes:
    return resp.integer(int(ctx.server.started_at))


# ---------------------------------------------------------------- persistence


@command("bgrewriteaof", 1, "admin noscript")
def bgrewriteaof(ctx: Any, argv: list[bytes]) -> bytes:
    return ctx.server.request_rewrite()


_SHUTDOWN_OPTIONS = {b"nosave", b"save", b"now", b"force"}


@command("shutdown", -1, "admin noscript loading stale no-multi")
def shutdown(ctx: Any, argv: list[bytes]) -> bytes:
    options = [a.lower() for a in argv[1:]]
    if b"abort" in options:
        return b"-ERR No shutdown in progress.\r\n" if len(options) == 1 else resp.error("ERR syntax error")
    if any(o not in _SHUTDOWN_OPTIONS for o in options) or (b"save" in options and b"nosave" in options):
        return b"-ERR syntax error\r\n"
    return ctx.server.request_shutdown()
