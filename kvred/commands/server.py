"""Server and connection commands: PING, ECHO, SELECT, COMMAND, CONFIG, CLIENT, INFO.

HELLO, AUTH, QUIT, RESET, MULTI, EXEC and DISCARD change the state of one
connection, which lives in the worker; they are registered here with no
handler so that arity checks, COMMAND and error texts see them, and the
worker's connection implements them (kvred/worker.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .. import resp
from ..glob import compile_glob
from ..tracking import TrackingState
from . import cmdtable
from .base import (
    ERR_NOT_INT,
    ERR_SYNTAX,
    Context,
    command,
    error_quoting,
    int_arg,
    register,
    subcommand_syntax_error,
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
    ("hello", -1, "noscript fast no-auth"),
    ("auth", -2, "noscript fast no-auth"),
    ("quit", -1, "noscript fast no-auth"),
    ("reset", 1, "noscript fast no-auth"),
    ("multi", 1, "noscript fast"),
    ("exec", 1, "noscript"),
    ("discard", 1, "noscript fast"),
):
    register(_name, None, _arity, _flags)


# ---------------------------------------------------------------- COMMAND

# What COMMAND answers comes from Redis 7.0.15's own description of each command
# (kvred/commands/cmdtable.py, table.json), limited to the commands kvred implements.

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
    b"    If no command names are given, documentation details for all",
    b"    commands are returned.",
    b"DOCS [<command-name> ...]",
    b"    Return documentation details about multiple Redis commands.",
    b"    If no command names are given, documentation details for all",
    b"    commands are returned.",
    b"GETKEYS <full-command>",
    b"    Return the keys from a full Redis command.",
    b"GETKEYSANDFLAGS <full-command>",
    b"    Return the keys and the access flags from a full Redis command.",
    b"HELP",
    b"    Prints this help.",
]

_LIST_FILTERS = {b"module": "module", b"aclcat": "aclcat", b"pattern": "pattern"}


def _command_list(argv: list[bytes]) -> bytes:
    """COMMAND LIST [FILTERBY MODULE|ACLCAT|PATTERN arg] (the last filter given wins)."""
    filter_type: str | None = None
    arg = b""
    i = 2
    while i < len(argv):
        if argv[i].lower() != b"filterby" or len(argv) - 1 - i != 2:
            return ERR_SYNTAX
        filter_type = _LIST_FILTERS.get(argv[i + 1].lower())
        if filter_type is None:
            return ERR_SYNTAX
        arg = argv[i + 2]
        i += 3
    return resp.array([resp.bulk(name.encode()) for name in cmdtable.list_names(filter_type, arg)])


def _command_getkeys(ctx: Any, argv: list[bytes], with_flags: bool) -> bytes:
    """COMMAND GETKEYS|GETKEYSANDFLAGS command arg...: Redis's getKeysSubcommandImpl."""
    target = argv[2:]
    name = target[0].decode(errors="replace").lower()
    found = cmdtable.entry(name)
    if found is not None and len(target) > 1 and found[1]["subcommands"]:
        found = cmdtable.entry(name + "|" + target[1].decode(errors="replace"))
    if found is None or "|" in name:
        return b"-ERR Invalid command specified\r\n"
    fullname, row = found
    if not cmdtable.has_keys(row, fullname):
        return b"-ERR The command has no key arguments\r\n"
    arity = row["arity"]
    if (arity > 0 and arity != len(target)) or len(target) < -arity:
        return b"-ERR Invalid number of arguments specified for command\r\n"
    keys = cmdtable.find_keys(fullname, row, target)
    if not keys:
        if "no_mandatory_keys" in row["flags"]:
            return resp.EMPTY_ARRAY
        return b"-ERR Invalid arguments specified for command\r\n"
    if not with_flags:
        return resp.array([resp.bulk(target[i]) for i, _ in keys])
    return resp.array(
        [b"*2\r\n" + resp.bulk(target[i]) + cmdtable.key_flags_reply(flags, ctx.resp3) for i, flags in keys]
    )


@command(
    "command",
    -1,
    "local",
    subcommands={"count": 2, "list": -2, "info": -2, "docs": -2, "getkeys": -4, "getkeysandflags": -4, "help": 2},
)
def command_(ctx: Any, argv: list[bytes]) -> bytes:
    resp3 = ctx.resp3
    if len(argv) == 1:
        return resp.array([cmdtable.info_reply(name, resp3) or b"" for name in cmdtable.all_names()])
    sub = argv[1].lower()
    if sub == b"count":
        return resp.integer(len(cmdtable.TABLE))
    if sub == b"list":
        return _command_list(argv)
    if sub == b"info":
        names = [n.decode(errors="replace") for n in argv[2:]] or cmdtable.all_names()
        return resp.array([cmdtable.info_reply(name, resp3) or ctx.null for name in names])
    if sub == b"docs":
        names = [n.decode(errors="replace") for n in argv[2:]] or cmdtable.all_names()
        pairs = [pair for pair in (cmdtable.docs_pair(name, resp3) for name in names) if pair is not None]
        return (b"%%%d\r\n" if resp3 else b"*%d\r\n") % (len(pairs) * (1 if resp3 else 2)) + b"".join(pairs)
    if sub in (b"getkeys", b"getkeysandflags"):
        return _command_getkeys(ctx, argv, sub == b"getkeysandflags")
    if sub == b"help":
        return resp.array([resp.simple(line) for line in _COMMAND_HELP])
    return unknown_subcommand(argv[1], "command")


# ---------------------------------------------------------------- CONFIG


@command("config", -2, "admin noscript", subcommands={"get": -3, "set": -4, "resetstat": 2, "rewrite": 2, "help": 2})
def config(ctx: Any, argv: list[bytes]) -> bytes:
    """CONFIG GET / SET / REWRITE / RESETSTAT: the table is kvred/settings.py, the changes
    are the writer's (Writer.config_set, config_rewrite)."""
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
        if len(argv) % 2:
            return ERR_SYNTAX  # the arity (-4) let an odd number of words through
        return ctx.server.config_set([(argv[i], argv[i + 1]) for i in range(2, len(argv), 2)])
    if sub == b"resetstat":
        return ctx.server.reset_stats()
    if sub == b"rewrite":
        return ctx.server.config_rewrite()
    if sub == b"help":
        return resp.array([resp.simple(line) for line in _CONFIG_HELP])
    return unknown_subcommand(argv[1], "config")


_CONFIG_HELP = [
    b"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"GET <pattern>",
    b"    Return parameters matching the glob-like <pattern> and their values.",
    b"SET <directive> <value>",
    b"    Set the configuration <directive> to <value>.",
    b"RESETSTAT",
    b"    Reset statistics reported by the INFO command.",
    b"REWRITE",
    b"    Rewrite the configuration file.",
    b"HELP",
    b"    Prints this help.",
]


# ---------------------------------------------------------------- CLIENT


_NAME_BYTES = bytes(range(0x21, 0x7F))  # printable ASCII without the space


def valid_client_name(name: bytes) -> bool:
    """Redis's rule for CLIENT SETNAME / HELLO SETNAME; translate() checks a 64 MB name
    at C speed (a Python loop over it stalled every client for 2.8 s)."""
    return not name.translate(None, _NAME_BYTES)


@command("client", -2, "admin noscript", subcommands={"id": 2, "setname": 3, "getname": 2, "list": -2, "info": 2,
                                              "kill": -3, "unblock": -3, "help": 2, "pause": -3, "unpause": 2,
                                              "no-evict": 3, "getredir": 2, "trackinginfo": 2,
                                              "tracking": -3, "caching": 3, "reply": 3})
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
        return _client_list(ctx, argv)
    if sub == b"kill":
        return _client_kill(ctx, argv)
    if sub == b"unblock":
        return _client_unblock(ctx, argv)
    if sub == b"help":
        return resp.array([resp.simple(line) for line in _CLIENT_HELP])
    if sub == b"pause":
        return _client_pause(ctx, argv)
    if sub == b"unpause":
        ctx.executor.unpause()
        return OK
    if sub == b"no-evict":
        if argv[2].lower() not in (b"on", b"off"):
            return ERR_SYNTAX
        return OK  # kvred evicts keys, never clients (no maxmemory-clients): nothing to protect from
    if sub == b"tracking":
        return _client_tracking(ctx, argv)
    if sub == b"caching":
        return _client_caching(ctx, argv)
    if sub == b"getredir":
        state = ctx.client.tracking
        return resp.integer(-1 if state is None else state.redirect)
    if sub == b"trackinginfo":
        return _client_trackinginfo(ctx)
    if sub == b"info":
        return resp.verbatim(ctx.server.client_list(only=ctx.client), ctx.resp3)
    return unknown_subcommand(argv[1], "client")


_CLIENT_TYPES = (b"normal", b"master", b"replica", b"slave", b"pubsub")
ERR_NO_SUCH_CLIENT = b"-ERR No such client\r\n"


def client_type(client: Any) -> bytes:
    """Redis's getClientType, for TYPE filters (kvred has no replicas or masters)."""
    return b"pubsub" if client.channels or client.patterns or client.shard_channels else b"normal"


def _client_list(ctx: Context, argv: list[bytes]) -> bytes:
    """CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id [id ...]]"""
    clients = ctx.server.clients
    if len(argv) == 2:
        chosen = list(clients.values())
    elif argv[2].lower() == b"type" and len(argv) == 4:
        wanted = argv[3].lower()
        if wanted not in _CLIENT_TYPES:
            return error_quoting("Unknown client type '", argv[3])
        wanted = b"replica" if wanted == b"slave" else wanted
        chosen = [client for client in clients.values() if client_type(client) == wanted]
    elif argv[2].lower() == b"id" and len(argv) >= 4:
        chosen = []
        for arg in argv[3:]:
            number = int_arg(arg)
            if number is None:
                return b"-ERR Invalid client ID\r\n"
            if number in clients:
                chosen.append(clients[number])
    else:
        return ERR_SYNTAX
    return resp.verbatim(b"".join(ctx.server.client_list(client) for client in chosen), ctx.resp3)


def _client_kill(ctx: Context, argv: list[bytes]) -> bytes:
    """CLIENT KILL addr:port (old form: +OK or an error), or filters ID ADDR LADDR USER
    SKIPME MAXAGE TYPE (the number of clients killed)."""
    clients = ctx.server.clients
    if len(argv) == 3:
        victims = [client for client in clients.values() if client.addr.encode() == argv[2]]
        if not victims:
            return ERR_NO_SUCH_CLIENT
        ctx.executor.kill(victims[0])
        return OK
    if len(argv) % 2:
        return ERR_SYNTAX
    wanted: dict[bytes, Any] = {}  # filter -> value every killed client must have
    skipme = True
    for i in range(2, len(argv), 2):
        name, value = argv[i].lower(), argv[i + 1]
        if name == b"id":
            number = int_arg(value)
            if number is None or number <= 0:
                return b"-ERR client-id should be greater than 0\r\n"
            wanted[name] = number
        elif name == b"type":
            kind = value.lower()
            if kind not in _CLIENT_TYPES:
                return error_quoting("Unknown client type '", value)
            wanted[name] = b"replica" if kind == b"slave" else kind
        elif name in (b"addr", b"laddr"):
            wanted[name] = value.decode(errors="replace")
        elif name == b"user":
            if value.decode("utf-8", "surrogateescape") not in ctx.executor.acl.users:
                return error_quoting("No such user '", value)
            wanted[name] = value.decode("utf-8", "surrogateescape")
        elif name == b"skipme":
            if value.lower() not in (b"yes", b"no"):
                return ERR_SYNTAX
            skipme = value.lower() == b"yes"
        elif name == b"maxage":
            number = int_arg(value)
            if number is None:
                return ERR_SYNTAX
            wanted[name] = number
        else:
            return ERR_SYNTAX
    now = time.monotonic()
    killed = 0
    for client in list(clients.values()):
        if skipme and client is ctx.client:
            continue
        seen = {b"id": client.id, b"type": client_type(client), b"addr": client.addr, b"laddr": client.laddr,
                b"user": client.user.name if client.user is not None else "default"}
        if all(seen[name] == value for name, value in wanted.items() if name != b"maxage") and (
            b"maxage" not in wanted or now - client.created >= wanted[b"maxage"]
        ):
            ctx.executor.kill(client)
            killed += 1
    return resp.integer(killed)


def _client_tracking(ctx: Context, argv: list[bytes]) -> bytes:
    """CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP],
    checked in Redis's order."""
    switch = argv[2].lower()
    if switch not in (b"on", b"off"):
        return ERR_SYNTAX
    client = ctx.client
    tracking = ctx.executor.tracking
    new = TrackingState()
    i = 3
    while i < len(argv):
        option = argv[i].lower()
        if option == b"redirect" and i + 1 < len(argv):
            if new.redirect:
                return b"-ERR A client can only redirect to a single other client\r\n"
            number = int_arg(argv[i + 1])
            if number is None:
                return ERR_NOT_INT
            if number not in ctx.server.clients:
                return b"-ERR The client ID you want redirect to does not exist\r\n"
            new.redirect = number
            i += 2
        elif option == b"bcast":
            new.bcast = True
            i += 1
        elif option == b"optin":
            new.optin = True
            i += 1
        elif option == b"optout":
            new.optout = True
            i += 1
        elif option == b"noloop":
            new.noloop = True
            i += 1
        elif option == b"prefix" and i + 1 < len(argv):
            new.prefixes.append(argv[i + 1])
            i += 2
        else:
            return ERR_SYNTAX
    if switch == b"off":
        tracking.disable(client)
        return OK
    old = client.tracking
    if new.optin and new.optout:
        return b"-ERR You can't specify both OPTIN mode and OPTOUT mode\r\n"
    if new.prefixes and not new.bcast:
        return b"-ERR PREFIX option requires BCAST mode to be enabled\r\n"
    if old is not None and old.bcast != new.bcast:
        return (b"-ERR You can't switch BCAST mode on/off before disabling tracking for this client, "
                b"and then re-enabling it with a different mode.\r\n")
    if old is not None and ((old.optin and new.optout) or (old.optout and new.optin)):
        return (b"-ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, "
                b"and then re-enabling it with a different mode.\r\n")
    if new.bcast and (new.optin or new.optout):
        return b"-ERR OPTIN and OPTOUT are not compatible with BCAST\r\n"
    held = old.prefixes if old is not None else []
    for j, prefix in enumerate(new.prefixes):
        for other in held:
            if prefix.startswith(other) or other.startswith(prefix):
                return _prefix_overlap(prefix, other, "an existing prefix")
        for other in new.prefixes[j + 1 :]:
            if prefix.startswith(other) or other.startswith(prefix):
                return _prefix_overlap(prefix, other, "another provided prefix")
    if old is not None:  # options add up while tracking stays on, as in Redis
        new.optin = new.optin or old.optin
        new.optout = new.optout or old.optout
        new.noloop = new.noloop or old.noloop
        new.prefixes = held + new.prefixes
        new.redirect = new.redirect or old.redirect
    tracking.enable(client, new)
    return OK


def _prefix_overlap(prefix: bytes, other: bytes, which: str) -> bytes:
    return (b"-ERR Prefix '" + prefix + b"' overlaps with " + which.encode() + b" '" + other
            + b"'. Prefixes for a single client must not overlap.\r\n")


def _client_caching(ctx: Context, argv: list[bytes]) -> bytes:
    """CLIENT CACHING YES|NO: whether the next command's keys are tracked (OPTIN/OPTOUT)."""
    state = ctx.client.tracking
    if state is None:
        return (b"-ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN "
                b"or OPTOUT mode enabled\r\n")
    answer = argv[2].lower()
    if answer == b"yes":
        if not state.optin:
            return b"-ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.\r\n"
        state.caching = True
    elif answer == b"no":
        if not state.optout:
            return b"-ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.\r\n"
        state.caching = False
    else:
        return ERR_SYNTAX
    return OK


def _client_trackinginfo(ctx: Context) -> bytes:
    state = ctx.client.tracking
    flags: list[bytes] = [b"off"]
    redirect, prefixes = -1, []
    if state is not None:
        flags = [b"on"]
        flags += [name for name, on in ((b"bcast", state.bcast), (b"optin", state.optin),
                                        (b"optout", state.optout)) if on]
        if state.caching is not None:
            flags.append(b"caching-yes" if state.caching else b"caching-no")
        if state.noloop:
            flags.append(b"noloop")
        if state.broken:
            flags.append(b"broken_redirect")
        redirect, prefixes = state.redirect, sorted(state.prefixes)  # a radix tree in Redis
    flags_reply = b"%c%d\r\n" % (126 if ctx.resp3 else 42, len(flags)) + b"".join(map(resp.bulk, flags))  # ~: a set
    head = b"%3\r\n" if ctx.resp3 else b"*6\r\n"
    return (head + b"$5\r\nflags\r\n" + flags_reply + b"$8\r\nredirect\r\n" + resp.integer(redirect)
            + b"$8\r\nprefixes\r\n" + resp.array([resp.bulk(p) for p in prefixes]))


def _client_pause(ctx: Context, argv: list[bytes]) -> bytes:
    """CLIENT PAUSE timeout [WRITE|ALL]"""
    if len(argv) > 4:
        return ERR_SYNTAX
    timeout = int_arg(argv[2])
    if timeout is None:
        return b"-ERR timeout is not an integer or out of range\r\n"
    if timeout < 0:
        return b"-ERR timeout is negative\r\n"
    pause_all = True
    if len(argv) == 4:
        mode = argv[3].lower()
        if mode not in (b"write", b"all"):
            return b"-ERR CLIENT PAUSE mode must be WRITE or ALL\r\n"
        pause_all = mode == b"all"
    ctx.executor.pause(time.monotonic() + timeout / 1000, pause_all)
    return OK


def _client_unblock(ctx: Context, argv: list[bytes]) -> bytes:
    """CLIENT UNBLOCK id [TIMEOUT|ERROR]"""
    if len(argv) > 4:
        return subcommand_syntax_error(argv[1], "client")
    number = int_arg(argv[2])
    if number is None:
        return ERR_NOT_INT
    error = False
    if len(argv) == 4:
        how = argv[3].lower()
        if how not in (b"timeout", b"error"):
            return b"-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"
        error = how == b"error"
    return resp.integer(int(ctx.executor.unblock_by_id(number, error)))


_CLIENT_HELP = [  # Redis 7.0's CLIENT HELP, line for line
    b'CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
    b'CACHING (YES|NO)',
    b'    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.',
    b'GETREDIR',
    b'    Return the client ID we are redirecting to when tracking is enabled.',
    b'GETNAME',
    b'    Return the name of the current connection.',
    b'ID',
    b'    Return the ID of the current connection.',
    b'INFO',
    b'    Return information about the current client connection.',
    b'KILL <ip:port>',
    b'    Kill connection made from <ip:port>.',
    b'KILL <option> <value> [<option> <value> [...]]',
    b'    Kill connections. Options are:',
    b'    * ADDR (<ip:port>|<unixsocket>:0)',
    b'      Kill connections made from the specified address',
    b'    * LADDR (<ip:port>|<unixsocket>:0)',
    b'      Kill connections made to specified local address',
    b'    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)',
    b'      Kill connections by type.',
    b'    * USER <username>',
    b'      Kill connections authenticated by <username>.',
    b'    * SKIPME (YES|NO)',
    b'      Skip killing current connection (default: yes).',
    b'LIST [options ...]',
    b'    Return information about client connections. Options:',
    b'    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)',
    b'      Return clients of specified type.',
    b'UNPAUSE',
    b'    Stop the current client pause, resuming traffic.',
    b'PAUSE <timeout> [WRITE|ALL]',
    b'    Suspend all, or just write, clients for <timeout> milliseconds.',
    b'REPLY (ON|OFF|SKIP)',
    b'    Control the replies sent to the current connection.',
    b'SETNAME <name>',
    b'    Assign the name <name> to the current connection.',
    b'UNBLOCK <clientid> [TIMEOUT|ERROR]',
    b'    Unblock the specified blocked client.',
    b'TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]',
    b'         [OPTIN] [OPTOUT] [NOLOOP]',
    b'    Control server assisted client side caching.',
    b'TRACKINGINFO',
    b'    Report tracking status for the current connection.',
    b'NO-EVICT (ON|OFF)',
    b'    Protect current client connection from eviction.',
    b'HELP',
    b'    Prints this help.',
]


@command("monitor", 1, "admin noscript loading stale")
def monitor(ctx: Context, argv: list[bytes]) -> bytes:
    """MONITOR: from now on the client gets a line per command run (kvred/execute.py)."""
    executor = ctx.executor
    if executor.in_exec:
        return b"-ERR MONITOR isn't allowed for DENY BLOCKING client\r\n"
    executor.start_monitor(ctx.client)
    return OK


@command("wait", 3, "noscript")
def wait(ctx: Context, argv: list[bytes]) -> bytes:
    """WAIT numreplicas timeout: kvred has no replicas, so 0 at once (Redis would wait
    out the timeout when numreplicas > 0, for the same answer)."""
    timeout = int_arg(argv[2])
    if timeout is None:
        return b"-ERR timeout is not an integer or out of range\r\n"
    if timeout < 0:
        return b"-ERR timeout is negative\r\n"
    if int_arg(argv[1]) is None:
        return ERR_NOT_INT
    return b":0\r\n"


# ---------------------------------------------------------------- INFO

INFO_DEFAULT_SECTIONS = (
    "server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules", "errorstats",
    "cluster", "keyspace",
)
INFO_ALL_EXTRA = ("commandstats", "latencystats")  # `all` and `everything` add these (no module sections)
_HEADERS = {"cpu": "CPU"}  # Redis's section headers are capitalized, except this one


def info_wanted(wanted: list[bytes]) -> set[str]:
    """The sections INFO's arguments name (Redis 7.0's genInfoSectionDict): several
    names, `default`, `all`, `everything`; none means `default`."""
    names = {w.decode(errors="replace").lower() for w in wanted}
    if not names:
        names = {"default"}
    chosen = names - {"default", "all", "everything"}
    if "default" in names:
        chosen.update(INFO_DEFAULT_SECTIONS)
    if "all" in names or "everything" in names:
        chosen.update(INFO_DEFAULT_SECTIONS + INFO_ALL_EXTRA)
    return chosen


def format_info(sections: dict[str, Callable[[], dict[str, object]]], wanted: list[bytes]) -> bytes:
    """Render INFO: '# Name' headers, 'field:value' lines, sections split by a blank line,
    in the order of `sections` (Redis's)."""
    chosen = info_wanted(wanted)
    blocks = []
    for name, fields in sections.items():
        if name not in chosen:
            continue
        lines = [f"# {_HEADERS.get(name, name.capitalize())}"]
        lines += [f"{field}:{value}" for field, value in fields().items()]
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
