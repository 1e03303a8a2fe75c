"""Redis 7.0's ACL (sans-IO): users, their rules, permission checks, the ACL LOG and the
aclfile format. No I/O but reading/writing the aclfile in `load_file`/`save_file`.

Where it lives (the choice, and why): the writer owns the authoritative `Acl` and checks
every command it runs (kvred/execute.py): it runs all keyspace commands of all workers in
one order, so an ACL SETUSER takes effect exactly between two commands, as in Redis, and
the ACL LOG is one list. AUTH and HELLO AUTH stay in the workers, because a worker must
know at once whether the commands pipelined after AUTH pass the NOAUTH gate and the
pre-AUTH request limits; forwarding AUTH would stall the client's pipeline until the
writer answered. So each worker holds a replica of the users, rebuilt from the writer's
`ACL LIST` lines (`describe_all`), which are a complete description of every user; the
writer sends them after every change. The worker also uses its replica for the checks
Redis makes when a command is queued in MULTI and for commands it answers itself (PING).
A replica may lag the writer by one message: an AUTH racing an ACL SETUSER on another
worker may see the old password (Redis, single-threaded, has no such window).

Users' passwords are kept as SHA-256 hex, as Redis keeps them, and compared with
hmac.compare_digest so that the time taken does not tell how much matched.

Hot path: a user with every command, key and channel (the default user, unless changed)
is `unrestricted`: the executor skips every check for it with one attribute test.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from .acl_keys import READ, WRITE, command_channels, command_keys
from .acl_table import ACL_COMMAND_TABLE
from .glob import compile_glob

__all__ = [
    "Acl",
    "AclError",
    "User",
    "CATEGORIES",
    "DENIED_CMD",
    "DENIED_KEY",
    "DENIED_CHANNEL",
    "DENIED_AUTH",
    "hash_password",
    "noperm_error",
]

log = logging.getLogger("kvred.acl")

# ACL CAT order (Redis's ACLCommandCategories), which ACL LIST's description follows too
CATEGORIES = ("keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap", "hyperloglog",
              "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous", "connection",
              "transaction", "scripting")

DENIED_CMD, DENIED_KEY, DENIED_CHANNEL, DENIED_AUTH = "command", "key", "channel", "auth"
ERR_UNKNOWN_NAME = "Unknown command or category name in ACL"
_RANK = {DENIED_CMD: 1, DENIED_KEY: 2, DENIED_AUTH: 3, DENIED_CHANNEL: 4}  # Redis's ACL_DENIED_* values
_REASON = {rank: reason for reason, rank in _RANK.items()}
ACL_LOG_GROUPING_MS = 60000  # entries alike within this merge into one (count += 1)...
ACL_LOG_GROUPING_SCAN = 10  # ...if among the newest 10, as Redis looks no further

# every command and subcommand name, parents before their subcommands
_ALL_NAMES = tuple(ACL_COMMAND_TABLE)
_CONTAINERS: dict[str, list[str]] = {}
for _name in _ALL_NAMES:
    if "|" in _name:
        _CONTAINERS.setdefault(_name.split("|", 1)[0], []).append(_name)
_BY_CATEGORY: dict[str, frozenset[str]] = {
    cat: frozenset(n for n, (cats, _specs) in ACL_COMMAND_TABLE.items() if cat in cats) for cat in CATEGORIES
}


def _apply_category(names: set[str], category: str, allow: bool) -> None:
    """+@category / -@category on a set of allowed names (ACLSetSelectorCommandBitsForCategory)."""
    for name in _BY_CATEGORY[category]:
        group = [name] + _CONTAINERS.get(name, [])
        if allow:
            names.update(group)
        else:
            names.difference_update(group)


class AclError(Exception):
    """A rule that SETUSER (or the aclfile) refuses; the message is Redis's."""


def hash_password(password: bytes) -> str:
    return hashlib.sha256(password).hexdigest()


def noperm_error(denied: str, name: str) -> bytes:
    """The error a client gets for a command it may not run (Redis 7.0's texts)."""
    if denied == DENIED_CMD:
        return b"-NOPERM this user has no permissions to run the '" + name.encode() + b"' command\r\n"
    if denied == DENIED_KEY:
        return b"-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"
    return b"-NOPERM this user has no permissions to access one of the channels used as arguments\r\n"


def _valid_hash(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


class Selector:
    """What a user may touch: commands, keys, channels (Redis's aclSelector). A user is
    its root selector plus flags, passwords and more selectors (`User`)."""

    __slots__ = ("allowed", "all_future", "firstargs", "allkeys", "keys", "allchannels", "channels")

    def __init__(self) -> None:
        self.allowed: set[str] = set()  # command and "container|sub" names allowed
        self.all_future = False  # +@all: commands added later are allowed too
        self.firstargs: dict[str, list[bytes]] = {}  # +select|0: a command allowed for a first argument
        self.allkeys = False
        self.keys: list[list[Any]] = []  # [pattern, READ|WRITE] in order
        self.allchannels = False
        self.channels: list[bytes] = []

    # ------------------------------------------------------------ rules

    def apply_selector_rule(self, rule: bytes) -> None:
        """One command, key or channel rule (Redis's ACLSetSelector); AclError."""
        low = rule.lower()
        if rule[:1] in (b"~", b"%", b"&") and any(c in rule for c in b" \t\n\r\v\f"):
            raise AclError("Syntax error")  # patterns have no spaces (ACL LIST's words)
        if low in (b"allkeys", b"~*"):
            self.allkeys = True
            self.keys = []
        elif low == b"resetkeys":
            self.allkeys = False
            self.keys = []
        elif rule[:1] == b"~":
            self.add_key_pattern(rule[1:], READ | WRITE)
        elif rule[:1] == b"%":
            # Redis's loop: R and W once each, up to the first ~ (none: an empty pattern)
            flags = 0
            offset = 1
            while offset < len(low):
                c = low[offset]
                offset += 1
                if c == ord("r") and not flags & READ:
                    flags |= READ
                elif c == ord("w") and not flags & WRITE:
                    flags |= WRITE
                elif c == ord("~"):
                    break
                else:
                    raise AclError("Syntax error")
            if not flags:
                raise AclError("Syntax error")
            self.add_key_pattern(rule[offset:], flags)
        elif low == b"allchannels":
            self.allchannels = True
            self.channels = []
        elif low == b"resetchannels":
            self.allchannels = False
            self.channels = []
        elif rule[:1] == b"&":
            if self.allchannels:
                raise AclError("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and "
                               "does not have any effect. Try 'resetchannels' to start with an empty list of "
                               "channels")
            if rule == b"&*":
                self.allchannels = True
                self.channels = []
            elif rule[1:] not in self.channels:
                self.channels.append(rule[1:])
        elif low in (b"allcommands", b"+@all"):
            self.all_future = True
            self.allowed = set(_ALL_NAMES)
            self.firstargs = {}
        elif low in (b"nocommands", b"-@all"):
            self.all_future = False
            self.allowed = set()
            self.firstargs = {}
        elif rule[:2] in (b"+@", b"-@"):
            names = _BY_CATEGORY.get(low[2:].decode("utf-8", "replace"))
            if names is None:
                raise AclError(ERR_UNKNOWN_NAME)
            for name in names:
                self.change(name, rule[0] == ord("+"))
        elif rule[:1] in (b"+", b"-"):
            self.apply_command_rule(low[1:].decode("utf-8", "surrogateescape"), rule[0] == ord("+"), rule)
        else:
            raise AclError("Syntax error")

    def add_key_pattern(self, pattern: bytes, flags: int) -> None:
        if self.allkeys:
            raise AclError("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not "
                           "have any effect. Try 'resetkeys' to start with an empty list of patterns")
        for entry in self.keys:
            if entry[0] == pattern:
                entry[1] |= flags
                flags = entry[1]
                break
        else:
            self.keys.append([pattern, flags])

    def apply_command_rule(self, name: str, allow: bool, rule: bytes) -> None:
        if name in ACL_COMMAND_TABLE:
            self.change(name, allow)
            return
        if "|" not in name:
            raise AclError(ERR_UNKNOWN_NAME)
        parent, arg = name.split("|", 1)
        if parent not in ACL_COMMAND_TABLE or parent in _CONTAINERS:
            raise AclError(ERR_UNKNOWN_NAME)
        if not arg or "|" in arg:
            raise AclError("Syntax error")
        if not allow:  # a first argument can only be allowed (Redis 7.0)
            raise AclError(ERR_UNKNOWN_NAME)
        if parent not in self.allowed:
            self.firstargs.setdefault(parent, []).append(arg.encode("utf-8", "surrogateescape"))

    def change(self, name: str, allow: bool) -> None:
        """Redis's ACLChangeSelectorPerm: a container's subcommands follow it."""
        names = [name] + _CONTAINERS.get(name, [])
        if allow:
            self.allowed.update(names)
        else:
            self.allowed.difference_update(names)
        self.firstargs.pop(name, None)

    # ------------------------------------------------------------ description

    def describe_commands(self) -> str:
        """The command rules as Redis 7.0 describes them: +@all or -@all, then, while one
        fits, the category with the fewest differences from what is left to describe
        (most in common on a tie), then single commands (in table order: Redis uses its
        dict's order, which changes with every start) and first arguments."""
        additive = not self.all_future
        rules = ["-@all" if additive else "+@all"]
        fake: set[str] = set() if additive else set(_ALL_NAMES)
        temp = set(self.allowed)  # categories applied are taken out of it (their inverse)
        applied: set[str] = set()
        while True:
            best = ""
            mindiff, maxsame = 1 << 62, 0
            for cat in CATEGORIES:
                if cat in applied:
                    continue
                names = _BY_CATEGORY[cat]
                on = len(names & temp)
                off = len(names) - on
                diff, same = (off, on) if additive else (on, off)
                if same > diff and (diff < mindiff or (diff == mindiff and same > maxsame)):
                    best, mindiff, maxsame = cat, diff, same
            if not best:
                break
            _apply_category(fake, best, additive)
            _apply_category(temp, best, not additive)
            rules.append(("+@" if additive else "-@") + best)
            applied.add(best)
        for name in _ALL_NAMES:
            mine = name in self.allowed
            if mine != (name in fake):
                rules.append(("+" if mine else "-") + name)
                group = [name] + _CONTAINERS.get(name, [])
                if mine:
                    fake.update(group)
                else:
                    fake.difference_update(group)
            if not mine:
                for arg in self.firstargs.get(name, ()):
                    rules.append("+" + name + "|" + arg.decode("utf-8", "surrogateescape"))
        return " ".join(rules)

    def describe_keys(self) -> str:
        if self.allkeys:
            return "~*"
        out = []
        for pattern, flags in self.keys:
            prefix = "~" if flags == READ | WRITE else "%R~" if flags == READ else "%W~"
            out.append(prefix + pattern.decode("utf-8", "surrogateescape"))
        return " ".join(out)

    def describe_channels(self) -> str:
        if self.allchannels:
            return "&*"
        return " ".join("&" + c.decode("utf-8", "surrogateescape") for c in self.channels)

    def describe_selector(self) -> str:
        """Keys, channels, commands: Redis's ACLDescribeSelector."""
        parts = []
        keys = self.describe_keys()
        if keys:
            parts.append(keys)
        channels = self.describe_channels()
        parts.append(channels if self.allchannels else ("resetchannels " + channels).rstrip())
        parts.append(self.describe_commands())
        return " ".join(parts)

    def check(self, name: str, argv: list[bytes]) -> tuple[int, str, int] | None:
        """(denial rank, object, argument position) if this selector does not allow
        `argv` (command `name`, "x|y" for a subcommand), else None (ACLSelectorCheckCmd)."""
        if name not in self.allowed:
            args = self.firstargs.get(name)
            if not args or len(argv) < 2 or argv[1].lower() not in args:
                return _RANK[DENIED_CMD], name, 0
        if not self.allkeys:
            for pos, key, need in command_keys(name, argv):
                if not self.key_allowed(key, need):
                    return _RANK[DENIED_KEY], key.decode("utf-8", "surrogateescape"), pos
        if not self.allchannels:
            for pos, channel, is_pattern in command_channels(name, argv):
                if not self.channel_allowed(channel, is_pattern):
                    return _RANK[DENIED_CHANNEL], channel.decode("utf-8", "surrogateescape"), pos
        return None

    def key_allowed(self, key: bytes, need: int) -> bool:
        if self.allkeys:
            return True
        for pattern, flags in self.keys:
            if flags & need == need and (pattern == b"*" or compile_glob(pattern).match(key)):
                return True
        return False

    def channel_allowed(self, channel: bytes, is_pattern: bool) -> bool:
        if self.allchannels:
            return True
        for allowed in self.channels:
            if allowed == channel if is_pattern else (allowed == b"*" or compile_glob(allowed).match(channel)):
                return True
        return False


class User(Selector):
    """One user: flags, passwords, its root selector (itself) and more selectors."""

    __slots__ = ("name", "enabled", "nopass", "sanitize", "passwords", "selectors", "unrestricted")

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.enabled = False
        self.nopass = False
        self.sanitize = ""  # "", "sanitize-payload" or "skip-sanitize-payload" (flags only)
        self.passwords: dict[str, None] = {}  # SHA-256 hex, in the order added
        self.selectors: list[Selector] = []
        self.unrestricted = False

    def apply(self, rule: bytes) -> None:
        """One SETUSER rule (Redis's ACLSetUser); AclError with Redis's reason."""
        if not rule:
            return  # an empty rule does nothing, as in Redis
        low = rule.lower()
        text = rule.decode("utf-8", "surrogateescape")
        if low == b"on":
            self.enabled = True
        elif low == b"off":
            self.enabled = False
        elif low in (b"sanitize-payload", b"skip-sanitize-payload"):
            self.sanitize = low.decode()
        elif low == b"nopass":
            self.nopass = True
            self.passwords.clear()
        elif low == b"resetpass":
            self.nopass = False
            self.passwords.clear()
        elif rule[:1] == b">":
            self.passwords[hash_password(rule[1:])] = None
            self.nopass = False
        elif rule[:1] == b"#":
            if not _valid_hash(text[1:]):
                raise AclError("The password hash must be exactly 64 characters and contain only lowercase "
                               "hexadecimal characters")
            self.passwords[text[1:]] = None
            self.nopass = False
        elif rule[:1] == b"<":
            if self.passwords.pop(hash_password(rule[1:]), 0) != None:  # noqa: E711 (None: was there)
                raise AclError("The password you are trying to remove from the user does not exist")
        elif rule[:1] == b"!":
            if not _valid_hash(text[1:]):
                raise AclError("The password hash must be exactly 64 characters and contain only lowercase "
                               "hexadecimal characters")
            if text[1:] not in self.passwords:
                raise AclError("The password you are trying to remove from the user does not exist")
            del self.passwords[text[1:]]
        elif low == b"reset":
            for step in (b"resetpass", b"resetkeys", b"resetchannels", b"off", b"-@all", b"sanitize-payload",
                         b"clearselectors"):
                self.apply(step)
        elif low == b"clearselectors":
            self.selectors = []
        elif rule[:1] == b"(" and rule[-1:] == b")":
            selector = Selector()
            for op in rule[1:-1].split():
                selector.apply_selector_rule(op)
            self.selectors.append(selector)
        else:
            self.apply_selector_rule(rule)
        self.unrestricted = self.all_future and len(self.allowed) == len(_ALL_NAMES) and self.allkeys \
            and self.allchannels

    def flags(self) -> list[str]:
        out = ["on" if self.enabled else "off"]
        if self.nopass:
            out.append("nopass")
        if self.sanitize:
            out.append(self.sanitize)
        return out

    def describe(self) -> str:
        """ACL LIST's line (without "user name")."""
        parts = self.flags() + ["#" + h for h in self.passwords] + [self.describe_selector()]
        parts += ["(" + selector.describe_selector() + ")" for selector in self.selectors]
        return " ".join(parts)

    # ------------------------------------------------------------ checks

    def check_password(self, password: bytes) -> bool:
        if not self.enabled:
            return False
        if self.nopass:
            return True
        digest = hash_password(password)
        # compare against every hash, in constant time each: no early exit on a match
        matched = False
        for stored in self.passwords:
            matched |= hmac.compare_digest(digest, stored)
        return matched

    def may_use_channel(self, channel: bytes, is_pattern: bool) -> bool:
        """Whether some selector of the user allows the channel (or this exact pattern)."""
        return self.channel_allowed(channel, is_pattern) or any(
            s.channel_allowed(channel, is_pattern) for s in self.selectors)

    def check_command(self, name: str, argv: list[bytes]) -> tuple[str, str] | None:
        """(denial, object) if no selector of the user allows `argv`, else None. Of the
        denials, the most relevant (Redis's ACLCheckAllUserCommandPerm): channel over key
        over command, then the furthest argument."""
        denied = self.check(name, argv)
        if denied is None:
            return None
        best = denied
        for selector in self.selectors:
            found = selector.check(name, argv)
            if found is None:
                return None
            if found[0] > best[0] or (found[0] == best[0] and found[2] > best[2]):
                best = found
        return _REASON[best[0]], best[1]


# ---------------------------------------------------------------- the set of users

class Acl:
    """Every user, the ACL LOG, and the aclfile."""

    def __init__(self, requirepass: str | None = None) -> None:
        self.users: dict[str, User] = {}
        self.log: list[dict[str, Any]] = []
        self.log_max_len = 128
        self.changed = False  # users changed since the workers were told (writer)
        self.users["default"] = self.new_default(requirepass)

    @staticmethod
    def new_default(requirepass: str | None) -> User:
        user = User("default")
        for rule in (b"+@all", b"~*", b"&*", b"on"):
            user.apply(rule)
        user.apply(b">" + requirepass.encode() if requirepass else b"nopass")
        return user

    def set_requirepass(self, password: str | None) -> None:
        """CONFIG SET requirepass: the default user's only password (empty: nopass)."""
        user = self.users["default"]
        user.apply(b"resetpass")
        user.apply(b">" + password.encode() if password else b"nopass")
        self.changed = True

    def setuser(self, name: bytes, rules: list[bytes]) -> None:
        """ACL SETUSER: all rules or none (AclError names the one refused)."""
        key = name.decode("utf-8", "surrogateescape")
        old = self.users.get(key)
        user = _copy(old) if old is not None else User(key)
        if old is None:
            user.apply(b"resetchannels")  # acl-pubsub-default is resetchannels in 7.0
        for rule in merge_selector_args(rules):
            try:
                user.apply(rule)
            except AclError as e:
                raise AclError("Error in ACL SETUSER modifier '" + rule.decode("utf-8", "surrogateescape")
                               + "': " + str(e)) from None
        if old is not None:
            _assign(old, user)
        else:
            self.users[key] = user
        self.changed = True

    def describe_all(self) -> list[str]:
        return ["user " + name + " " + self.users[name].describe() for name in sorted(self.users)]

    def replace_from_lines(self, lines: list[str]) -> None:
        """Rebuild every user from ACL LIST lines (a worker's replica, ACL LOAD)."""
        users: dict[str, User] = {}
        for line in lines:
            words = line.split(" ")  # (one space between words; a user may be named "")
            if len(words) < 2 or words[0] != "user":
                raise AclError("line should start with user keyword")
            user = User(words[1])
            user.apply(b"resetchannels")
            for rule in merge_selector_args([w.encode("utf-8", "surrogateescape") for w in words[2:]]):
                user.apply(rule)
            users[words[1]] = user
        if "default" not in users:
            users["default"] = self.new_default(None)
        self.users = users

    # ------------------------------------------------------------ aclfile

    def load_file(self, path: str) -> str | None:
        """ACL LOAD: all users from the file, or none (Redis's error text, else None).
        Redis's ACLLoadFromFile: every line is tried and every error reported."""
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except OSError as e:
            return f"Error loading ACLs, opening file '{path}': {e.strerror}"
        users: dict[str, User] = {}
        errors = []
        for lineno, raw in enumerate(text.split("\n"), 1):
            line = raw.strip(" \t\r\n")
            if not line:
                continue
            words = line.split(" ")
            if words[0] != "user" or len(words) < 2:
                errors.append(f"{path}:{lineno} should start with user keyword followed by the username. ")
                continue
            if words[1] in users:
                errors.append(f"WARNING: Duplicate user '{words[1]}' found on line {lineno}. ")
                continue
            user = users[words[1]] = User(words[1])
            user.apply(b"resetchannels")
            try:
                rules = merge_selector_args([w.encode("utf-8", "surrogateescape") for w in words[2:]])
            except AclError:
                errors.append(f"{path}:{lineno}: Unmatched parenthesis in selector definition.")
                rules = []
            reported = False
            for rule in rules:
                rule = rule.strip(b"\t\r\n")
                try:
                    user.apply(rule)
                except AclError as e:
                    if str(e) == ERR_UNKNOWN_NAME:  # names of commands are no secret: always said
                        errors.append(f"{path}:{lineno}: Error in applying operation "
                                      f"'{rule.decode('utf-8', 'surrogateescape')}': {e}. ")
                    elif not reported:  # other errors might show a password: the first only
                        errors.append(f"{path}:{lineno}: {e}. ")
                        reported = True
        if errors:
            return "".join(errors) + "WARNING: ACL errors detected, no change to the previously active ACL rules " \
                                     "was performed"
        if "default" not in users:
            users["default"] = self.new_default(None)
        self.users = users
        self.changed = True
        return None

    def save_file(self, path: str) -> str | None:
        """ACL SAVE: write to a temporary file, then rename it over the aclfile."""
        tmp = f"{path}.tmp-{os.getpid()}-{time.monotonic_ns()}"
        try:
            with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write("".join(line + "\n" for line in self.describe_all()))
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, path)
        except OSError as e:
            log.warning("ACL SAVE to %s failed: %s", path, e)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return "There was an error trying to save the ACLs. Please check the server logs for more information"
        return None

    # ------------------------------------------------------------ ACL LOG

    def add_log(self, reason: str, context: str, obj: str, username: str, client_info: Callable[[], str]) -> None:
        now = time.time()
        for i, entry in enumerate(self.log[:ACL_LOG_GROUPING_SCAN]):
            if (entry["reason"], entry["context"], entry["object"], entry["username"]) == (reason, context, obj,
                                                                                           username) \
                    and (now - entry["ctime"]) * 1000 < ACL_LOG_GROUPING_MS:
                entry["count"] += 1
                entry["ctime"] = now
                entry["client-info"] = client_info()
                self.log.insert(0, self.log.pop(i))
                return
        self.log.insert(0, {"count": 1, "reason": reason, "context": context, "object": obj, "username": username,
                            "ctime": now, "client-info": client_info()})
        del self.log[self.log_max_len:]


_USER_SLOTS = Selector.__slots__ + User.__slots__


def merge_selector_args(args: list[bytes]) -> list[bytes]:
    """Join the arguments of a selector written over several ("(~a", "+get)") into one
    rule, as Redis's ACLMergeSelectorArguments; AclError if a parenthesis is not closed."""
    out: list[bytes] = []
    open_at = -1
    opened_by = b""
    for arg in args:
        if open_at >= 0:
            out[-1] += b" " + arg
            if arg.endswith(b")"):
                open_at = -1
        elif arg.startswith(b"(") and not arg.endswith(b")"):
            open_at = len(out)
            opened_by = arg
            out.append(arg)
        else:
            out.append(arg)
    if open_at >= 0:
        raise AclError("Unmatched parenthesis in acl selector starting at '" + opened_by.decode("utf-8", "replace")
                       + "'.")
    return out


def _copy(user: User) -> User:
    new = User(user.name)
    for slot in _USER_SLOTS:
        value = getattr(user, slot)
        if isinstance(value, (set, dict)):
            value = value.copy()
        elif isinstance(value, list):
            value = [list(v) if isinstance(v, list) else v for v in value]
        setattr(new, slot, value)
    new.firstargs = {k: list(v) for k, v in user.firstargs.items()}
    return new


def _assign(target: User, source: User) -> None:
    for slot in _USER_SLOTS:
        setattr(target, slot, getattr(source, slot))
