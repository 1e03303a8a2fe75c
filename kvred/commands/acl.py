"""ACL (Redis 7.0's acl.c, aclCommand): run by the writer, which owns the users
(kvred/acl.py says why). A change sets `Acl.changed`; the writer then sends the new
users to every worker and closes the clients of deleted users."""

from __future__ import annotations

import secrets
import time
from typing import Any

from .. import resp
from ..acl import CATEGORIES, AclError, User
from ..acl_table import ACL_COMMAND_TABLE
from .base import NO_SUCH_SUBCOMMAND, Context, check_command, command, int_arg, wrong_arity

__all__ = ["acl"]

_ACL_HELP = [
    b"ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"CAT [<category>]",
    b"    List all commands that belong to <category>, or all command categories",
    b"    when no category is specified.",
    b"DELUSER <username> [<username> ...]",
    b"    Delete a list of users.",
    b"DRYRUN <username> <command> [<arg> ...]",
    b"    Returns whether the user can execute the given command without executing the command.",
    b"GETUSER <username>",
    b"    Get the user's details.",
    b"GENPASS [<bits>]",
    b"    Generate a secure 256-bit user password. The optional `bits` argument can",
    b"    be used to specify a different size.",
    b"LIST",
    b"    Show users details in config file format.",
    b"LOAD",
    b"    Reload users from the ACL file.",
    b"LOG [<count> | RESET]",
    b"    Show the ACL log entries.",
    b"SAVE",
    b"    Save the current config to the ACL file.",
    b"SETUSER <username> <attribute> [<attribute> ...]",
    b"    Create or modify a user with the specified attributes.",
    b"USERS",
    b"    List all the registered usernames.",
    b"WHOAMI",
    b"    Return the current connection username.",
    b"HELP",
    b"    Prints this help.",
]

ERR_NO_ACLFILE = (b"-ERR This Redis instance is not configured to use an ACL file. You may want to specify users via "
                  b"the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration "
                  b"file set) in order to store users in the Redis configuration.\r\n")
ERR_GENPASS = b"-ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up " \
              b"to 4096\r\n"


def _err(text: str) -> bytes:
    return b"-ERR " + text.encode("utf-8", "surrogateescape").replace(b"\r", b" ").replace(b"\n", b" ") + b"\r\n"


# "admin" (Redis flags ACL SETUSER, LIST, GETUSER... so): MONITOR never shows an ACL
# command, so no password reaches it (Redis does show ACL WHOAMI, CAT, GENPASS, HELP)
@command("acl", -2, "admin noscript loading stale", subcommands={
    "cat": -2, "deluser": -3, "dryrun": -4, "genpass": -2, "getuser": 3, "list": 2, "load": 2, "log": -2,
    "save": 2, "setuser": -3, "users": 2, "whoami": 2, "help": 2})
def acl(ctx: Context, argv: list[bytes]) -> bytes:
    sub = argv[1].lower()
    try:
        return _acl(ctx, argv, sub)
    finally:
        if sub in (b"setuser", b"deluser", b"load"):
            ctx.executor.acl_changed()


def _acl(ctx: Context, argv: list[bytes], sub: bytes) -> bytes:
    state = ctx.executor.acl
    if sub == b"setuser":
        if any(c in argv[2] for c in b" \t\n\r\v\f\x00"):  # (ACL LIST's words must name it)
            return b"-ERR Usernames can't contain spaces or null characters\r\n"
        try:
            state.setuser(argv[2], argv[3:])
        except AclError as e:
            return _err(str(e))
        ctx.executor.kill_unsubscribable(argv[2].decode("utf-8", "surrogateescape"))
        return resp.OK
    if sub == b"getuser":
        user = state.users.get(argv[2].decode("utf-8", "surrogateescape"))
        return _getuser(user, ctx.resp3) if user is not None else ctx.null
    if sub == b"deluser":
        deleted = 0
        for raw in argv[2:]:
            name = raw.decode("utf-8", "surrogateescape")
            if name == "default":
                return b"-ERR The 'default' user cannot be removed\r\n"
        for raw in argv[2:]:
            name = raw.decode("utf-8", "surrogateescape")
            if state.users.pop(name, None) is not None:
                deleted += 1
                ctx.executor.kill_user_clients(name)
        if deleted:
            state.changed = True
        return resp.integer(deleted)
    if sub == b"list":
        return resp.array([resp.bulk(line.encode("utf-8", "surrogateescape")) for line in state.describe_all()])
    if sub == b"users":
        return resp.array([resp.bulk(name.encode("utf-8", "surrogateescape")) for name in sorted(state.users)])
    if sub == b"whoami":
        return resp.bulk(ctx.client.user.name.encode("utf-8", "surrogateescape"))
    if sub == b"cat":
        if len(argv) > 3:
            return _bad_subcommand(argv)
        if len(argv) == 2:
            return resp.array([resp.bulk(c.encode()) for c in CATEGORIES])
        cat = argv[2].lower().decode("utf-8", "replace")
        if cat not in CATEGORIES:
            return b"-ERR Unknown category '" + argv[2] + b"'\r\n"
        return resp.array([resp.bulk(name.encode()) for name, (cats, _s) in ACL_COMMAND_TABLE.items()
                           if cat in cats])
    if sub == b"genpass":
        if len(argv) > 3:
            return _bad_subcommand(argv)
        bits = 256
        if len(argv) == 3:
            number = int_arg(argv[2])
            if number is None:
                return b"-ERR value is not an integer or out of range\r\n"
            if not 0 < number <= 4096:
                return ERR_GENPASS
            bits = number
        chars = (bits + 3) // 4
        return resp.bulk(secrets.token_hex((chars + 1) // 2)[:chars].encode())
    if sub == b"dryrun":
        return _dryrun(ctx, state.users, argv)
    if sub == b"log":
        return _log(ctx, argv)
    if sub in (b"save", b"load"):
        path = ctx.config.aclfile
        if not path:
            return ERR_NO_ACLFILE
        error = state.save_file(path) if sub == b"save" else state.load_file(path)
        if error is not None:
            return _err(error)
        if sub == b"load":
            ctx.executor.rebind_users()
        return resp.OK
    if sub == b"help":
        return resp.array([resp.simple(line) for line in _ACL_HELP])
    return b"-ERR unknown subcommand '" + argv[1] + b"'. Try ACL HELP.\r\n"  # pragma: no cover (checked earlier)


def _bad_subcommand(argv: list[bytes]) -> bytes:
    return b"-ERR unknown subcommand or wrong number of arguments for '" + argv[1] + b"'. Try ACL HELP.\r\n"


def _getuser(user: User, resp3: bool) -> bytes:
    flags = [f.encode() for f in user.flags()]
    fields: dict[bytes, Any] = {
        b"flags": flags,
        b"passwords": [h.encode() for h in user.passwords],
        b"commands": user.describe_commands().encode("utf-8", "surrogateescape"),
        b"keys": user.describe_keys().encode("utf-8", "surrogateescape"),
        b"channels": user.describe_channels().encode("utf-8", "surrogateescape"),
        b"selectors": [{
            b"commands": selector.describe_commands().encode("utf-8", "surrogateescape"),
            b"keys": selector.describe_keys().encode("utf-8", "surrogateescape"),
            b"channels": selector.describe_channels().encode("utf-8", "surrogateescape"),
        } for selector in user.selectors],
    }
    reply = resp.encode_value(fields, resp3)
    if resp3:  # flags are a set in RESP3
        head = b"*%d\r\n" % len(flags)
        at = reply.index(head)
        reply = reply[:at] + b"~" + reply[at + 1:]
    return reply


def _dryrun(ctx: Context, users: dict[str, User], argv: list[bytes]) -> bytes:
    user = users.get(argv[2].decode("utf-8", "surrogateescape"))
    if user is None:
        return b"-ERR User '" + argv[2] + b"' not found\r\n"
    args = argv[3:]
    cmd, problem = check_command(args)  # the one lookup and arity check (commands/base.py)
    if cmd is None or problem == NO_SUCH_SUBCOMMAND:
        return b"-ERR Command '" + args[0] + b"' not found\r\n"
    name = cmd.name
    if cmd.subcommands and len(args) >= 2:
        name = f"{cmd.name}|{args[1].lower().decode()}"
    if problem:
        return wrong_arity(name)
    denied = user.check_command(name, args)
    if denied is None:
        return resp.OK
    reason, obj = denied
    if reason == "command":
        text = f"This user has no permissions to run the '{obj}' command"
    elif reason == "key":
        text = f"This user has no permissions to access the '{obj}' key"
    else:
        text = f"This user has no permissions to access the '{obj}' channel"
    return resp.bulk(text.encode("utf-8", "surrogateescape"))


def _log(ctx: Context, argv: list[bytes]) -> bytes:
    state = ctx.executor.acl
    if len(argv) > 3:
        return _bad_subcommand(argv)
    count = len(state.log)
    if len(argv) == 3:
        if argv[2].lower() == b"reset":
            state.log.clear()
            return resp.OK
        number = int_arg(argv[2])
        if number is None:
            return b"-ERR value is not an integer or out of range\r\n"
        count = max(0, min(number, count))
    now = time.time()
    parts = [b"*%d\r\n" % count]
    head = (lambda n: b"%%%d\r\n" % n) if ctx.resp3 else (lambda n: b"*%d\r\n" % (2 * n))
    for entry in state.log[:count]:
        age = int((now - entry["ctime"]) * 1000) / 1000
        parts.append(head(7))
        for field, value in (
            (b"count", resp.integer(entry["count"])),
            (b"reason", resp.bulk(entry["reason"].encode())),
            (b"context", resp.bulk(entry["context"].encode())),
            (b"object", resp.bulk(entry["object"].encode("utf-8", "surrogateescape"))),
            (b"username", resp.bulk(entry["username"].encode("utf-8", "surrogateescape"))),
            (b"age-seconds", _double(age, ctx.resp3)),
            (b"client-info", resp.bulk(entry["client-info"].encode("utf-8", "surrogateescape"))),
        ):
            parts.append(resp.bulk(field))
            parts.append(value)
    return b"".join(parts)


def _double(value: float, resp3: bool) -> bytes:
    text = b"%.17g" % value
    return b"," + text + b"\r\n" if resp3 else b"$%d\r\n%s\r\n" % (len(text), text)
