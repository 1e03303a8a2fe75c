"""COMMAND against redis-server 7.0.15: INFO and DOCS of every command kvred implements
(RESP2 and RESP3), COUNT, LIST and its filters, GETKEYS and GETKEYSANDFLAGS (movable keys
and every error), and the registrations checked against the generated table.

kvred lists only what it implements, Redis all of its commands: where a reply lists
commands (COMMAND, COMMAND INFO/DOCS with no names, LIST) or a container's subcommands,
both replies are cut to the commands kvred registers (kvred.commands.COMMANDS, the
handlers, not the table) and compared sorted, as Redis's order is its hash tables' order.
A test below checks that kvred lists exactly what it registers.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import require_tool
from differential import C, Case, Cases, Servers, check_case, check_survived, servers  # noqa: F401
from rawclient import RawClient, parse_reply

from kvred.commands import COMMANDS
from kvred.commands.cmdtable import TABLE

ROOT = Path(__file__).resolve().parent.parent

# name -> its registered subcommands (empty for a plain command)
REGISTERED: dict[bytes, set[bytes]] = {}
for _cmd in COMMANDS.values():
    REGISTERED[_cmd.name.encode()] = set(_cmd.subcommands)


def _registered(fullname: bytes) -> bool:
    name, _, sub = fullname.lower().partition(b"|")
    return name in REGISTERED and (not sub or sub in REGISTERED[name])


def _pairs(node: Any) -> list[tuple[Any, Any]]:
    """A map's pairs, from a RESP3 map or a RESP2 flat array."""
    if node[0] == "%":
        return list(node[1])
    items = node[1]
    return list(zip(items[::2], items[1::2], strict=True))


def _info_entry(node: Any) -> Any:
    """One COMMAND INFO entry with its subcommands cut to kvred's and sorted."""
    if node[0] != "*" or node[1] is None:
        return node
    items = list(node[1])
    subs = items[9]
    if subs[0] == "*" and subs[1]:
        kept = [_info_entry(s) for s in subs[1] if _registered(s[1][0][1])]
        items[9] = ("* sorted", sorted(kept, key=repr))
    return (node[0], items)


def info_entries(raw: bytes) -> Any:
    node = parse_reply(raw)
    if node[0] != "*":
        return raw
    return ("*", [_info_entry(e) for e in node[1]])


def all_info(raw: bytes) -> Any:
    node = parse_reply(raw)
    kept = [_info_entry(e) for e in node[1] if _registered(e[1][0][1])]
    return ("* sorted", sorted(kept, key=repr))


def _docs_entry(node: Any) -> Any:
    pairs = []
    for key, value in _pairs(node):
        if key[1] == b"subcommands":
            subs = [(k, _docs_entry(v)) for k, v in _pairs(value) if _registered(k[1])]
            value = ("map sorted", sorted(subs, key=repr))
        pairs.append((key, value))
    return (node[0], pairs)


def docs(raw: bytes) -> Any:
    node = parse_reply(raw)
    kept = [(k, _docs_entry(v)) for k, v in _pairs(node) if _registered(k[1])]
    return ("map sorted", sorted(kept, key=repr))


def names(raw: bytes) -> Any:
    node = parse_reply(raw)
    if node[0] != "*":
        return raw
    return ("* sorted", sorted(n for n in node[1] if _registered(n[1])))


CASES = Cases()

for _name in sorted(TABLE):
    for _proto in ("2", "3"):
        CASES.case(f"info-{_name}-resp{_proto}", C("HELLO", _proto, norm=lambda raw: "hello"),
                   C("COMMAND", "INFO", _name, norm=info_entries),
                   C("COMMAND", "DOCS", _name, norm=docs))
        for _sub in sorted(TABLE[_name]["subcommands"]):
            CASES.case(f"info-{_name}|{_sub}-resp{_proto}", C("HELLO", _proto, norm=lambda raw: "hello"),
                       C("COMMAND", "INFO", f"{_name}|{_sub}", norm=info_entries),
                       C("COMMAND", "DOCS", f"{_name}|{_sub}", norm=docs))

for _proto in ("2", "3"):
    CASES.case(f"all-resp{_proto}", C("HELLO", _proto, norm=lambda raw: "hello"),
               C("COMMAND", norm=all_info),
               C("COMMAND", "INFO", norm=all_info),
               C("COMMAND", "DOCS", norm=docs))
    CASES.case(f"unknown-names-resp{_proto}", C("HELLO", _proto, norm=lambda raw: "hello"),
               C("COMMAND", "INFO", "nosuch", "GET", "config|nosuch", "get|x", "Config|GET"),
               C("COMMAND", "DOCS", "nosuch", "GET", "config|nosuch", "Config|GET", norm=docs),
               C("COMMAND", "DOCS", "nosuch"))
    CASES.case(f"getkeysandflags-resp{_proto}", C("HELLO", _proto, norm=lambda raw: "hello"),
               C("COMMAND", "GETKEYSANDFLAGS", "SET", "k", "v"),
               C("COMMAND", "GETKEYSANDFLAGS", "SET", "k", "v", "get"),
               C("COMMAND", "GETKEYSANDFLAGS", "zunionstore", "d", "2", "a", "b"),
               C("COMMAND", "GETKEYSANDFLAGS", "sort", "a", "by", "x", "store", "d"))

CASES.case("count-list-help",
           C("COMMAND", "HELP"),
           C("COMMAND", "LIST", norm=names),
           C("COMMAND", "LIST", "FILTERBY", "PATTERN", "x*", norm=names),
           C("COMMAND", "LIST", "FILTERBY", "PATTERN", "CONFIG|*", norm=names),
           C("COMMAND", "LIST", "FILTERBY", "PATTERN", "nomatch"),
           C("COMMAND", "LIST", "FILTERBY", "ACLCAT", "hash", norm=names),
           C("COMMAND", "LIST", "FILTERBY", "ACLCAT", "DANGEROUS", norm=names),
           C("COMMAND", "LIST", "FILTERBY", "ACLCAT", "nosuch"),
           C("COMMAND", "LIST", "FILTERBY", "MODULE", "x"),
           C("COMMAND", "LIST", "FILTERBY", "pattern", "a*", "FILTERBY", "aclcat", "list", norm=names))
CASES.case("list-errors",
           C("COMMAND", "LIST", "FILTERBY"),
           C("COMMAND", "LIST", "FILTERBY", "foo", "x"),
           C("COMMAND", "LIST", "FILTERBY", "PATTERN"),
           C("COMMAND", "LIST", "FILTERBY", "PATTERN", "a", "b"),
           C("COMMAND", "LIST", "nope"),
           C("COMMAND", "NOPE"),
           C("COMMAND", "COUNT", "x"),
           C("COMMAND", "HELP", "x"))

GETKEYS = [
    ("GET", "k"), ("SET", "k", "v"), ("SET", "k", "v", "GET"), ("MSET", "a", "1", "b", "2"),
    ("MSET", "a", "1", "b"), ("DEL", "a", "b", "c"), ("RENAME", "a", "b"), ("LMOVE", "a", "b", "LEFT", "RIGHT"),
    ("ZUNIONSTORE", "d", "2", "a", "b"), ("ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"),
    ("ZINTERSTORE", "d", "3", "a", "b"), ("ZDIFFSTORE", "d", "0", "a"), ("ZUNIONSTORE", "d", "2x", "a", "b"),
    ("ZUNIONSTORE", "d", "-1", "a"), ("ZUNION", "2", "a", "b"), ("ZINTER", "1", "a", "WITHSCORES"),
    ("ZDIFF", "x", "a"), ("ZINTERCARD", "2", "a", "b", "LIMIT", "1"), ("SINTERCARD", "1", "a"),
    ("EVAL", "return 1", "0"), ("EVAL", "return 1", "2", "a", "b", "c"), ("EVAL", "return 1", "3", "a"),
    ("EVAL", "return 1", "x"), ("EVALSHA", "abc", "1", "k"), ("EVAL_RO", "s", "1", "k"), ("EVALSHA_RO", "s", "0"),
    ("FCALL", "f", "1", "k", "arg"), ("FCALL_RO", "f", "0"),
    ("XREAD", "COUNT", "2", "STREAMS", "a", "b", "0", "0"), ("XREAD", "STREAMS", "a"), ("XREAD", "BLOCK", "0"),
    ("XREAD", "STREAMS", "a", "b", "0"), ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", ">"),
    ("XREADGROUP", "GROUP", "g", "STREAMS", "STREAMS", "a", ">"),
    ("SORT", "a"), ("SORT", "a", "BY", "w", "GET", "#", "STORE", "d"), ("SORT", "a", "STORE", "d1", "STORE", "d2"),
    ("SORT", "a", "LIMIT", "0", "1", "STORE"), ("SORT_RO", "a", "BY", "x"),
    ("LMPOP", "2", "a", "b", "LEFT"), ("LMPOP", "0", "a", "LEFT"), ("BLMPOP", "0", "1", "a", "LEFT"),
    ("ZMPOP", "1", "a", "MIN"), ("BZMPOP", "0", "2", "a", "b", "MAX"), ("BZMPOP", "0", "5", "a"),
    ("BITFIELD", "k", "GET", "u8", "0"), ("BITFIELD", "k", "SET", "u8", "0", "1"), ("BITFIELD", "k", "junk"),
    ("BITFIELD_RO", "k", "GET", "u8", "0"), ("BLPOP", "a", "b", "0"), ("OBJECT", "ENCODING", "k"),
    ("SPUBLISH", "c", "m"), ("XINFO", "STREAM", "s"),
    ("XGROUP", "CREATE", "s", "g", "$"), ("PFCOUNT", "a", "b"),
    ("BITOP", "AND", "d", "a", "b"), ("WATCH", "a", "b"), ("SMOVE", "a", "b", "m"),
    # errors: no such command, no keys, arity, unknown subcommand, container alone
    ("NOSUCH", "x"), ("PING",), ("PING", "x"), ("CONFIG", "GET", "x"), ("CONFIG",), ("OBJECT",),
    ("OBJECT", "NOSUCH", "k"), ("GET",), ("GET", "a", "b"), ("MSET", "a"), ("config|get", "x"),
    ("OBJECT", "ENCODING"), ("PUBLISH", "c", "m"), ("SUBSCRIBE", "c"),
]
for _args in GETKEYS:
    CASES.case("getkeys-" + "-".join(_args).lower(),
               C("COMMAND", "GETKEYS", *_args),
               C("COMMAND", "GETKEYSANDFLAGS", *_args))
CASES.case("getkeys-arity", C("COMMAND", "GETKEYS"), C("COMMAND", "GETKEYS", "get"),
           C("COMMAND", "GETKEYSANDFLAGS", "get"), C("COMMAND", "GETKEYSANDFLAGS"))


@pytest.mark.parametrize("seq", CASES, ids=CASES.ids())
def test_same_replies_as_redis(servers: Servers, seq: Case) -> None:  # noqa: F811
    check_case(servers, seq)


def test_lists_exactly_what_it_registers(servers: Servers) -> None:  # noqa: F811
    """COUNT, LIST and COMMAND name the registered commands, no more, no fewer."""
    with RawClient(servers.kvred.port) as client:
        count = parse_reply(client.call("COMMAND", "COUNT"))
        listed = {n[1] for n in parse_reply(client.call("COMMAND", "LIST"))[1]}
        entries = parse_reply(client.call("COMMAND"))[1]
    expected = {name for name in REGISTERED}
    expected |= {name + b"|" + sub for name, subs in REGISTERED.items() for sub in subs}
    assert count == (":", len(REGISTERED))
    assert listed == expected
    assert {e[1][0][1] for e in entries} == set(REGISTERED)
    # a Redis command kvred does not implement is unknown to COMMAND too
    with RawClient(servers.kvred.port) as client:
        assert client.call("COMMAND", "GETKEYS", "GEOADD", "k", "1", "2", "m") == b"-ERR Invalid command specified\r\n"
        assert client.call("COMMAND", "INFO", "geoadd") == b"*1\r\n$-1\r\n"
        assert client.call("COMMAND", "DOCS", "geoadd") == b"*0\r\n"


def test_redis_cli_reads_the_docs(servers: Servers) -> None:  # noqa: F811
    """redis-cli asks COMMAND DOCS at start for its hints: the reply must parse."""
    cli = require_tool("redis-cli")
    for server in (servers.redis, servers.kvred):
        out = subprocess.run([cli, "-h", "127.0.0.1", "-p", str(server.port), "--no-raw", "COMMAND", "DOCS", "set"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        assert '"summary"' in out and '"Set the string value of a key"' in out, out
        assert "(error)" not in out, out


def _read_pty_until(fd: int, wanted: bytes, deadline: float) -> bytes:
    seen = b""
    while wanted not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {wanted!r} from redis-cli; got {seen!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
    return seen


def test_redis_cli_interactive_fetches_the_docs(servers: Servers) -> None:  # noqa: F811
    """An interactive redis-cli (on a terminal) asks COMMAND DOCS before its first prompt
    to build its hints: kvred sees the request and the session goes on without an error."""
    cli = require_tool("redis-cli")
    with RawClient(servers.kvred.port) as monitor:
        assert monitor.call("MONITOR") == b"+OK\r\n"
        leader, follower = pty.openpty()
        proc = subprocess.Popen([cli, "-h", "127.0.0.1", "-p", str(servers.kvred.port)],
                                stdin=follower, stdout=follower, stderr=follower, close_fds=True,
                                env={**os.environ, "TERM": "dumb"})  # plain line reading, no escapes
        os.close(follower)
        try:
            deadline = time.monotonic() + 10
            _read_pty_until(leader, b"> ", deadline)  # the prompt
            os.write(leader, b"GET cli-key\r")
            out = _read_pty_until(leader, b"(nil)", deadline)
            os.write(leader, b"quit\r")
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(leader)
        assert b"(error)" not in out, out
        fed = b""
        deadline = time.monotonic() + 5
        while b'"GET" "cli-key"' not in fed and time.monotonic() < deadline:
            fed += monitor.read_available(0.2)
    assert b'"COMMAND" "DOCS"' in fed, fed


# the flags kvred's dispatch acts on: a registration must carry each one Redis gives it
ACTED_ON = {"write", "readonly", "noscript", "no_auth", "no_multi", "blocking", "admin", "may_replicate", "pubsub"}


def test_registrations_agree_with_the_table() -> None:
    """The @command arity and key positions are Redis's; every flag a registration
    carries is one Redis gives the command (or one of its subcommands), save kvred's
    own and the listed exceptions; and a plain command has every flag kvred acts on
    that Redis gives it."""
    own = {"local", "protected"}  # kvred's: where it runs, when DEBUG is allowed
    # a flag kvred keeps for its own dispatch that Redis 7.0.15 does not list: PUBLISH's
    # "may-replicate" (read-only scripts refuse it, kvred/scripting/runner.py)
    exceptions = {("publish", "may_replicate"), ("spublish", "may_replicate")}
    problems = []
    seen: set[str] = set()
    for cmd in COMMANDS.values():
        if cmd.name in seen:
            continue
        seen.add(cmd.name)
        row = TABLE.get(cmd.name)
        if row is None:
            problems.append(f"{cmd.name}: not a Redis 7.0 command")
            continue
        if cmd.arity != row["arity"]:
            problems.append(f"{cmd.name}: arity {cmd.arity}, Redis {row['arity']}")
        if (cmd.first_key, cmd.last_key, cmd.key_step) != (row["first_key"], row["last_key"], row["step"]):
            problems.append(f"{cmd.name}: keys {(cmd.first_key, cmd.last_key, cmd.key_step)}")
        redis_flags = set(row["flags"]).union(*(set(s["flags"]) for s in row["subcommands"].values()))
        kvred_flags = {flag.replace("-", "_") for flag in cmd.flags}
        for flag in kvred_flags:
            if flag not in own and flag not in redis_flags and (cmd.name, flag) not in exceptions:
                problems.append(f"{cmd.name}: flag {flag} Redis does not give it")
        if not cmd.subcommands:  # a container's flags are its subcommands' in Redis
            for flag in ACTED_ON - kvred_flags:
                if flag in row["flags"]:
                    problems.append(f"{cmd.name}: lacks Redis's flag {flag}")
        for sub, arity in cmd.subcommands.items():
            subrow = row["subcommands"].get(sub.decode())
            if subrow is None or subrow["arity"] != arity:
                problems.append(f"{cmd.name}|{sub.decode()}: arity {arity}, Redis {subrow and subrow['arity']}")
    assert not problems, problems


def test_no_crash(servers: Servers) -> None:  # noqa: F811
    check_survived(servers)


def test_table_is_what_redis_server_says(servers: Servers, tmp_path: Path) -> None:  # noqa: F811
    """tools/gen_command_table.py run against redis-server now gives the committed table."""
    out = tmp_path / "table.json"
    subprocess.run([sys.executable, str(ROOT / "tools" / "gen_command_table.py"), "--port", str(servers.redis.port),
                    "--output", str(out)], check=True, timeout=60, capture_output=True)
    assert json.loads(out.read_text()) == json.loads((ROOT / "kvred" / "commands" / "table.json").read_text())
