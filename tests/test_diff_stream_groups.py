"""Differential tests of consumer groups (issue 15): XGROUP, XREADGROUP, XACK, XPENDING
XCLAIM, XAUTOCLAIM and XINFO, the same bytes to redis-server 7.0 and to kvred (machinery:
tests/differential.py), RESP2 and RESP3. Idle times and delivery times differ between
the servers, so the replies that carry them go through `timeless`, which keeps their
shape. Also the AOF (kvred only): XREADGROUP logged as Redis propagates it (XCLAIM per
delivered entry, XGROUP SETID for NOACK), replay after kill -9, and a BGREWRITEAOF round
trip that keeps groups, consumers and pending entries; and a consumer-group scenario with
a blocked consumer, a crashed one whose entries XAUTOCLAIM takes over, and kill -9."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from aoftools import aof_commands, kill_hard, rewrite_and_wait
from conftest import against_redis, start_kvred
from differential import (  # noqa: F401  (servers: the fixture)
    C2,
    C,
    Case,
    Cases,
    Servers,
    check_case,
    check_survived,
    servers,
)
from rawclient import RawClient, encode_command
from test_diff_blocking import READ, Scene, block, hello3, play_scene
from test_diff_notifications import Events
from test_diff_streams import fill

CASES = Cases()
case, arity = CASES.case, CASES.arity

_IDLE = re.compile(rb"(\*4\r\n\$\d+\r\n[0-9-]+\r\n\$\d+\r\n[^\r]*\r\n):\d+\r\n")


_INFO_TIMES = re.compile(rb"((?:idle|seen-time)\r\n):\d+\r\n")
_RAX_NODES = re.compile(rb"(radix-tree-nodes\r\n):\d+\r\n")
_FULL_TIMES = re.compile(rb"(\*[34]\r\n\$\d+\r\n[0-9]+-[0-9]+\r\n(?:\$\d+\r\n[^\r]*\r\n)?):\d{13}\r\n")


def infoless(raw: bytes) -> Any:
    """An XINFO reply: idle and seen times, delivery times and radix-tree-nodes blanked."""
    return _FULL_TIMES.sub(rb"\1:<time>\r\n", _RAX_NODES.sub(rb"\1:<n>\r\n", _INFO_TIMES.sub(rb"\1:<t>\r\n", raw)))


def timeless(raw: bytes) -> Any:
    """An extended XPENDING reply: each entry's idle time blanked."""
    return _IDLE.sub(rb"\1:<idle>\r\n", raw)


def pending(key: str, group: str, *rest: str) -> Any:
    return C("XPENDING", key, group, "-", "+", "10", *rest, norm=timeless)


for _proto, _pre in (("resp2", ()), ("resp3", (hello3(),))):
    case(f"{_proto}-group-read-ack", *_pre, *fill("s", 4), C("XGROUP", "CREATE", "s", "g", "0"),
         C("XREADGROUP", "GROUP", "g", "c1", "COUNT", "2", "STREAMS", "s", ">"),
         C("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"),
         C("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"),
         C("XPENDING", "s", "g"), pending("s", "g"), pending("s", "g", "c1"), pending("s", "g", "nobody"),
         C("XACK", "s", "g", "1-1", "3-1", "9-9"), C("XPENDING", "s", "g"),
         C("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"),
         C("XREADGROUP", "GROUP", "g", "c1", "COUNT", "1", "STREAMS", "s", "0-0"),
         C("XREADGROUP", "GROUP", "g", "c3", "STREAMS", "s", "0"), pending("s", "g"),
         C("XDEL", "s", "2-1"), C("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"),
         C("XACK", "s", "g", "2-1", "4-1"), C("XPENDING", "s", "g"))
    case(f"{_proto}-group-noack-and-setid", *_pre, *fill("s", 3), C("XGROUP", "CREATE", "s", "g", "$"),
         C("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"), C("XGROUP", "SETID", "s", "g", "1"),
         C("XREADGROUP", "GROUP", "g", "c", "NOACK", "STREAMS", "s", ">"), C("XPENDING", "s", "g"),
         C("XGROUP", "SETID", "s", "g", "0", "ENTRIESREAD", "0"),
         C("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", ">"),
         C("XGROUP", "SETID", "s", "g", "0"), C("XREADGROUP", "GROUP", "g", "d", "COUNT", "1", "STREAMS", "s", ">"),
         pending("s", "g"))
    case(f"{_proto}-group-two-streams", *_pre, *fill("a", 2), *fill("b", 2, 5),
         C("XGROUP", "CREATE", "a", "g", "0"), C("XGROUP", "CREATE", "b", "g", "$"),
         C("XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", "b", ">", ">"),
         C("XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", "b", "0", ">"),
         C("XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", "b", ">", ">"))
    case(f"{_proto}-xpending-empty", *_pre, C("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"),
         C("XPENDING", "s", "g"), C("XPENDING", "s", "g", "-", "+", "10"))
    case(f"{_proto}-xclaim", *_pre, *fill("s", 4), C("XGROUP", "CREATE", "s", "g", "0"),
         C("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"),
         C("XCLAIM", "s", "g", "c2", "0", "1-1", "2-1"), C("XCLAIM", "s", "g", "c2", "0", "3-1", "JUSTID"),
         C("XCLAIM", "s", "g", "c3", "3600000", "4-1"), C("XCLAIM", "s", "g", "c3", "0", "9-1", "FORCE"),
         C("XDEL", "s", "4-1"), C("XCLAIM", "s", "g", "c3", "0", "4-1"),
         C("XCLAIM", "s", "g", "c3", "0", "2-1", "RETRYCOUNT", "7", "IDLE", "5000", "JUSTID"),
         pending("s", "g"), C("XPENDING", "s", "g", "IDLE", "4000", "-", "+", "10", norm=timeless),
         C("XPENDING", "s", "g"))

for _proto, _pre in (("resp2", ()), ("resp3", (hello3(),))):
    case(f"{_proto}-xautoclaim", *_pre, *fill("s", 6), C("XGROUP", "CREATE", "s", "g", "0"),
         C("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"),
         C("XAUTOCLAIM", "s", "g", "c2", "0", "0", "COUNT", "2"), C("XAUTOCLAIM", "s", "g", "c2", "0", "3-1", "JUSTID"),
         C("XAUTOCLAIM", "s", "g", "c3", "3600000", "-"), C("XDEL", "s", "2-1", "5-1"),
         C("XAUTOCLAIM", "s", "g", "c3", "0", "-", "COUNT", "3"), C("XAUTOCLAIM", "s", "g", "c3", "0", "(4-1"),
         C("XAUTOCLAIM", "s", "g", "c4", "0", "99"), pending("s", "g"), C("XPENDING", "s", "g"))
    case(f"{_proto}-xautoclaim-attempts", *_pre, *fill("s", 25), C("XGROUP", "CREATE", "s", "g", "0"),
         C("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"),
         C("XAUTOCLAIM", "s", "g", "c2", "3600000", "-", "COUNT", "1"),
         C("XAUTOCLAIM", "s", "g", "c2", "3600000", "11-1", "COUNT", "1", "JUSTID"), C("XPENDING", "s", "g"))

for _proto, _pre in (("resp2", ()), ("resp3", (hello3(),))):
    case(f"{_proto}-xinfo", *_pre, *fill("s", 4), C("XGROUP", "CREATE", "s", "g", "0"),
         C("XGROUP", "CREATE", "s", "a", "$"), C("XGROUP", "CREATE", "s", "z", "0", "ENTRIESREAD", "1"),
         C("XREADGROUP", "GROUP", "g", "c1", "COUNT", "2", "STREAMS", "s", ">"),
         C("XGROUP", "CREATECONSUMER", "s", "g", "c0"), C("XINFO", "GROUPS", "s"),
         C("XINFO", "CONSUMERS", "s", "g", norm=infoless), C("XINFO", "CONSUMERS", "s", "a"),
         C("XINFO", "STREAM", "s", norm=infoless), C("XINFO", "STREAM", "s", "FULL", norm=infoless),
         C("XINFO", "STREAM", "s", "full", "count", "1", norm=infoless),
         C("XINFO", "STREAM", "s", "FULL", "COUNT", "0", norm=infoless),
         C("XINFO", "STREAM", "s", "FULL", "COUNT", "-3", norm=infoless),
         C("XDEL", "s", "3-1"), C("XINFO", "GROUPS", "s"), C("XADD", "s", "9-1", "a", "b"), C("XINFO", "GROUPS", "s"),
         C("XTRIM", "s", "MAXLEN", "0"), C("XINFO", "STREAM", "s", norm=infoless), C("XINFO", "GROUPS", "s"))
    case(f"{_proto}-xinfo-empty", *_pre, C("XGROUP", "CREATE", "e", "g", "$", "MKSTREAM"),
         C("XINFO", "STREAM", "e", norm=infoless), C("XINFO", "STREAM", "e", "FULL", norm=infoless),
         C("XINFO", "GROUPS", "e"), C("XINFO", "CONSUMERS", "e", "g"))

case("xinfo-errors", *fill("s", 2), C("SET", "str", "x"), C("XINFO", "STREAM", "nokey"), C("XINFO", "GROUPS", "nokey"),
     C("XINFO", "CONSUMERS", "s", "nog"), C("XINFO", "CONSUMERS", "nokey", "g"), C("XINFO", "STREAM", "str"),
     C("XINFO", "STREAM", "s", "FULL", "COUNT", "x"), C("XINFO", "STREAM", "s", "BOGUS"),
     C("XINFO", "STREAM", "s", "FULL", "COUNT"), C("XINFO", "STREAM", "s", "FULL", "COUNT", "1", "x"),
     C("XINFO", "STREAM", "s", "FULL", "BOGUS", "1"), C("XINFO", "HELP"), C("XINFO", "HELP", "x"), C("XINFO"),
     C("XINFO", "BOGUS", "s"), C("XINFO", "GROUPS"), C("XINFO", "GROUPS", "s", "x"), C("XINFO", "CONSUMERS", "s"))
case("xautoclaim-errors", *fill("s", 2), C("SET", "str", "x"), C("XGROUP", "CREATE", "s", "g", "0"),
     C("XAUTOCLAIM", "s", "nog", "c", "0", "0"), C("XAUTOCLAIM", "nokey", "g", "c", "0", "0"),
     C("XAUTOCLAIM", "str", "g", "c", "0", "0"), C("XAUTOCLAIM", "s", "g", "c", "x", "0"),
     C("XAUTOCLAIM", "s", "g", "c", "-5", "0"), C("XAUTOCLAIM", "s", "g", "c", "0", "x"),
     C("XAUTOCLAIM", "s", "g", "c", "0", "+"), C("XAUTOCLAIM", "s", "g", "c", "0", "(18446744073709551615-18446744073709551615"),
     C("XAUTOCLAIM", "s", "g", "c", "0", "0", "COUNT", "0"), C("XAUTOCLAIM", "s", "g", "c", "0", "0", "COUNT", "x"),
     C("XAUTOCLAIM", "s", "g", "c", "0", "0", "COUNT", "576460752303423488"),
     C("XAUTOCLAIM", "s", "g", "c", "0", "0", "COUNT", "1000000"),
     C("XAUTOCLAIM", "s", "g", "c", "0", "0", "COUNT"), C("XAUTOCLAIM", "s", "g", "c", "0", "0", "BOGUS"))
case("xgroup-create-errors", *fill("s", 1), C("SET", "str", "x"), C("XGROUP", "CREATE", "s", "g", "$"),
     C("XGROUP", "CREATE", "s", "g", "0"), C("XGROUP", "CREATE", "nokey", "g", "$"),
     C("XGROUP", "CREATE", "str", "g", "$"), C("XGROUP", "CREATE", "s", "h", "x"),
     C("XGROUP", "CREATE", "s", "h", "-"), C("XGROUP", "CREATE", "s", "h", "0", "BOGUS"),
     C("XGROUP", "CREATE", "s", "h", "0", "ENTRIESREAD"), C("XGROUP", "CREATE", "s", "h", "0", "ENTRIESREAD", "-2"),
     C("XGROUP", "CREATE", "s", "h", "0", "ENTRIESREAD", "x"), C("XGROUP", "CREATE", "m", "g", "x", "MKSTREAM"),
     C("EXISTS", "m"), C("XGROUP", "CREATE", "m", "g", "$", "MKSTREAM", "ENTRIESREAD", "5"), C("EXISTS", "m"),
     C("XGROUP", "CREATE", "s"), C("XGROUP", "CREATE", "s", "g"), C("XGROUP", "BOGUS", "s", "g"),
     C("XGROUP", "CREATE", "s", "h", "0", "MKSTREAM", "MKSTREAM", "MKSTREAM", "MKSTREAM"),
     C("XGROUP", "CREATE", "str", "h", "0", "MKSTREAM"))
case("xgroup-other-subcommands", *fill("s", 2), C("XGROUP", "CREATE", "s", "g", "0"),
     C("XGROUP", "SETID", "s", "nog", "0"), C("XGROUP", "SETID", "nokey", "g", "0"),
     C("XGROUP", "SETID", "s", "g", "x"), C("XGROUP", "SETID", "s", "g", "$", "ENTRIESREAD"),
     C("XGROUP", "SETID", "s", "g", "$", "BOGUS", "1"), C("XGROUP", "SETID", "s", "g", "$", "ENTRIESREAD", "-3"),
     C("XGROUP", "SETID", "s", "g", "$", "ENTRIESREAD", "2"), C("XGROUP", "SETID", "s", "g", "-"),
     C("XGROUP", "CREATECONSUMER", "s", "g", "c"), C("XGROUP", "CREATECONSUMER", "s", "g", "c"),
     C("XGROUP", "CREATECONSUMER", "s", "nog", "c"), C("XGROUP", "CREATECONSUMER", "s", "g"),
     C("XGROUP", "SETID", "s", "g", "0"), C("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"),
     C("XGROUP", "DELCONSUMER", "s", "g", "c"), C("XGROUP", "DELCONSUMER", "s", "g", "c"),
     C("XPENDING", "s", "g"), C("XGROUP", "DESTROY", "s", "g"), C("XGROUP", "DESTROY", "s", "g"),
     C("XGROUP", "DESTROY", "nokey", "g"), C("XGROUP", "DESTROY", "s"), C("XGROUP", "HELP"),
     C("XGROUP", "HELP", "x"), C("XGROUP"))
case("xreadgroup-errors", *fill("s", 2), C("SET", "str", "x"), C("XGROUP", "CREATE", "s", "g", "0"),
     C("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "$"), C("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "x"),
     C("XREADGROUP", "GROUP", "nog", "c", "STREAMS", "s", ">"),
     C("XREADGROUP", "GROUP", "g", "c", "STREAMS", "nokey", ">"),
     C("XREADGROUP", "GROUP", "g", "c", "STREAMS", "str", ">"),
     C("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "str", ">"),
     C("XREADGROUP", "COUNT", "1", "STREAMS", "s", ">"), C("XREADGROUP", "GROUP", "g", "c", "s", ">"),
     C("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">", "x"),
     C("XREADGROUP", "GROUP", "g", "c", "BLOCK", "-1", "STREAMS", "s", ">"),
     C("XREADGROUP", "GROUP", "g", "c", "COUNT", "z", "STREAMS", "s", ">"),
     C("XREADGROUP", "GROUP", "g", "STREAMS", "s", ">"), C("XREADGROUP", "GROUP", "g", "c", "FOO", "STREAMS", "s", ">"),
     C("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "+"))
case("xack-xpending-xclaim-errors", *fill("s", 2), C("SET", "str", "x"), C("XGROUP", "CREATE", "s", "g", "0"),
     C("XACK", "s", "g", "x"), C("XACK", "nokey", "g", "1-1"), C("XACK", "s", "nog", "1-1"), C("XACK", "str", "g", "1"),
     C("XACK", "nokey", "g", "x"), C("XACK", "s", "nog", "x"), C("XPENDING", "s", "nog"), C("XPENDING", "nokey", "g"), C("XPENDING", "str", "g"),
     C("XPENDING", "s", "g", "-"), C("XPENDING", "s", "g", "-", "+"), C("XPENDING", "s", "g", "-", "+", "x"),
     C("XPENDING", "s", "g", "x", "+", "1"), C("XPENDING", "s", "g", "-", "x", "1"),
     C("XPENDING", "s", "g", "(18446744073709551615-18446744073709551615", "+", "1"),
     C("XPENDING", "s", "g", "IDLE", "x", "-", "+", "1"), C("XPENDING", "s", "g", "IDLE", "5", "-", "+"),
     C("XPENDING", "s", "g", "-", "+", "1", "c", "extra"),
     C("XCLAIM", "s", "nog", "c", "0", "1-1"), C("XCLAIM", "str", "g", "c", "0", "1-1"),
     C("XCLAIM", "s", "g", "c", "x", "1-1"), C("XCLAIM", "s", "g", "c", "0", "1-1", "BOGUS"),
     C("XCLAIM", "s", "g", "c", "0", "1-1", "IDLE", "x"), C("XCLAIM", "s", "g", "c", "0", "1-1", "TIME", "x"),
     C("XCLAIM", "s", "g", "c", "0", "1-1", "RETRYCOUNT", "x"), C("XCLAIM", "s", "g", "c", "0", "1-1", "LASTID", "x"),
     C("XCLAIM", "s", "g", "c", "0", "x", "1-1"), C("XCLAIM", "s", "g", "c", "0", "1-1", "IDLE"))
case("xreadgroup-served", *fill("s", 1), C("XGROUP", "CREATE", "s", "g", "$"),
     block("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"), C2("XADD", "s", "5-1", "a", "1"), READ,
     C2("XPENDING", "s", "g"))
for _proto, _pre in (("resp2", ()), ("resp3", (hello3(),))):
    case(f"{_proto}-xreadgroup-served-count-noack", *_pre, *fill("s", 1), C("XGROUP", "CREATE", "s", "g", "$"),
         block("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "NOACK", "BLOCK", "0", "STREAMS", "s", ">"),
         C2("MULTI"), C2("XADD", "s", "5-1", "a", "1"), C2("XADD", "s", "6-1", "b", "2"), C2("EXEC"), READ,
         C2("XPENDING", "s", "g"), C2("XINFO", "GROUPS", "s"))
    case(f"{_proto}-xreadgroup-served-one-of-two", *_pre, *fill("a", 1), *fill("b", 1),
         C("XGROUP", "CREATE", "a", "g", "$"), C("XGROUP", "CREATE", "b", "g", "$"),
         block("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "a", "b", ">", ">"),
         C2("XADD", "b", "5-1", "x", "y"), READ, C2("XPENDING", "b", "g"), C2("XPENDING", "a", "g"))
    case(f"{_proto}-xreadgroup-two-consumers-wait", *_pre, *fill("s", 1), C("XGROUP", "CREATE", "s", "g", "$"),
         block("XREADGROUP", "GROUP", "g", "c1", "BLOCK", "0", "STREAMS", "s", ">"),
         C2("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"), C2("XADD", "s", "7-1", "x", "y"), READ,
         C2("XPENDING", "s", "g"))
case("xreadgroup-served-with-nothing-left", *fill("s", 1), C("XGROUP", "CREATE", "s", "g", "$"),
     block("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"),
     C2("XADD", "s", "MAXLEN", "0", "5-1", "a", "1"), READ, C2("XINFO", "GROUPS", "s"),
     C2("XINFO", "CONSUMERS", "s", "g", norm=infoless))
case("xreadgroup-group-destroyed-while-blocked", *fill("s", 1), C("XGROUP", "CREATE", "s", "g", "$"),
     block("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"), C2("XGROUP", "DESTROY", "s", "g"),
     READ, C2("XINFO", "GROUPS", "s"))
GROUP_EVENTS = (C2("XADD", "s", "1-1", "a", "1"), C2("XGROUP", "CREATE", "s", "g", "0"),
                C2("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"),
                C2("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", "0"),
                C2("XREADGROUP", "GROUP", "g", "c5", "STREAMS", "s", ">"), C2("XCLAIM", "s", "g", "c3", "0", "1-1"),
                C2("XAUTOCLAIM", "s", "g", "c4", "0", "0"), C2("XACK", "s", "g", "1-1"),
                C2("XGROUP", "CREATECONSUMER", "s", "g", "c9"), C2("XGROUP", "DELCONSUMER", "s", "g", "c9"),
                C2("XGROUP", "SETID", "s", "g", "0"), C2("XGROUP", "DESTROY", "s", "g"),
                C2("XGROUP", "CREATE", "m", "g", "$", "MKSTREAM"))
OFF = C("CONFIG", "SET", "notify-keyspace-events", "")
for _classes in ("KEA", "Et", "KEtn"):
    CASES.append(Case(f"group-events-{_classes}", [C("FLUSHALL"), C("CONFIG", "SET", "notify-keyspace-events", _classes),
                                                  C("PSUBSCRIBE", "__key*__:*"), *GROUP_EVENTS, Events()], [OFF]))
case("xreadgroup-block-timeout-and-multi", *fill("s", 1), C("XGROUP", "CREATE", "s", "g", "$"),
     C("XREADGROUP", "GROUP", "g", "c", "BLOCK", "10", "STREAMS", "s", ">"), C("MULTI"),
     C("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"), C("EXEC"), C("XPENDING", "s", "g"))
for _name, _args in (("xgroup", ()), ("xreadgroup", ("GROUP", "g", "c", "STREAMS", "s")), ("xack", ("s", "g")),
                     ("xpending", ("s",)), ("xclaim", ("s", "g", "c", "0")),
                     ("xautoclaim", ("s", "g", "c", "0"))):
    arity(_name, *_args)


@pytest.mark.parametrize("seq", CASES, ids=CASES.ids())
def test_same_replies_as_redis(servers: Servers, seq: Case) -> None:  # noqa: F811
    check_case(servers, seq)


def test_kvred_survived_the_cases(servers: Servers) -> None:  # noqa: F811
    check_survived(servers)


# --- consumers waiting in XREADGROUP BLOCK while their stream goes away ----------------------------

def _group_waiter(s: Scene, *keys: str) -> Any:
    for key in keys:
        s.call("XGROUP", "CREATE", key, "g", "$", "MKSTREAM")
    return s.block("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", *keys, *[">"] * len(keys))


def _ended_by(*commands: tuple[str, ...]) -> Any:
    """A consumer waits on `s`; `commands` take the stream away: it is answered at once."""
    def scene(s: Scene) -> None:
        c = _group_waiter(s, "s")
        for command in commands:
            s.call(*command)
        s.served(c)
        s.call("EXISTS", "s")
    return scene


def _xread_waits_on(s: Scene) -> None:
    """XREAD waiters are not ended by a deletion: the stream made again serves them."""
    c1 = _group_waiter(s, "s")
    c2 = s.block("XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    s.call("DEL", "s")
    s.served(c1)
    s.silent(c2)
    s.call("SET", "s", "x")
    s.silent(c2)
    s.call("DEL", "s")
    s.call("XADD", "s", "1-1", "f", "v")
    s.served(c2)


def _one_of_two_streams(s: Scene) -> None:
    c = _group_waiter(s, "s", "t")
    s.call("DEL", "t")
    s.served(c)


def _made_again_in_multi(s: Scene) -> None:
    """Deleted and made again (with the group) in one transaction: still waiting, then
    served by the next XADD; a group destroyed and made again likewise."""
    c = _group_waiter(s, "s")
    for command in (("MULTI",), ("DEL", "s"), ("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"), ("EXEC",)):
        s.call(*command)
    s.silent(c)
    for command in (("MULTI",), ("XGROUP", "DESTROY", "s", "g"), ("XGROUP", "CREATE", "s", "g", "$"), ("EXEC",)):
        s.call(*command)
    s.silent(c)
    s.call("XADD", "s", "5-1", "f", "v")
    s.served(c)
    s.call("XPENDING", "s", "g")


def _swapdb_serves_and_ends(s: Scene) -> None:
    """SWAPDB: a list that arrives serves a BLPOP, a stream that leaves ends an XREADGROUP."""
    c1 = s.block("BLPOP", "l", "0")
    c2 = _group_waiter(s, "s")
    s.call("SELECT", "1")
    s.call("RPUSH", "l", "a", "b")
    s.call("SWAPDB", "0", "1")
    s.served(c1)
    s.served(c2)
    s.call("LRANGE", "l", "0", "-1")


def _active_expiry(s: Scene) -> None:
    c = _group_waiter(s, "s")
    s.call("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    s.call("PEXPIRE", "s", "20")
    s.served(c)  # once the active expire cycle deletes it (waited on with the read timeout)


STREAM_SCENES = {
    "del": _ended_by(("DEL", "s")),
    "unlink": _ended_by(("UNLINK", "s")),
    "overwritten-by-set": _ended_by(("SET", "s", "x")),
    "renamed-away": _ended_by(("RENAME", "s", "t")),
    "replaced-by-rename": _ended_by(("XADD", "t", "1-1", "f", "v"), ("RENAME", "t", "s")),
    "moved-away": _ended_by(("MOVE", "s", "1")),
    "flushdb": _ended_by(("FLUSHDB",)),
    "flushall": _ended_by(("FLUSHALL",)),
    "expire-in-the-past": _ended_by(("PEXPIREAT", "s", "1")),
    "group-destroyed": _ended_by(("XGROUP", "DESTROY", "s", "g")),
    "deleted-in-multi": _ended_by(("MULTI",), ("XADD", "s", "1-1", "f", "v"), ("DEL", "s"), ("EXEC",)),
    "active-expiry": _active_expiry,
    "xread-keeps-waiting": _xread_waits_on,
    "one-of-two-streams": _one_of_two_streams,
    "made-again-in-multi": _made_again_in_multi,
    "swapdb": _swapdb_serves_and_ends,
}


@pytest.mark.parametrize("name", list(STREAM_SCENES))
def test_waiting_consumer_and_its_stream(servers: Servers, name: str) -> None:  # noqa: F811
    """Redis 7.0 answers "-UNBLOCKED the stream key no longer exists" (or -NOGROUP) to
    a consumer whose stream is deleted, replaced, renamed, moved, flushed or expired."""
    servers.ensure_kvred_alive(name)
    expected = play_scene(servers.redis.port, STREAM_SCENES[name])
    assert not any(isinstance(x, str) for x in expected), expected
    actual = play_scene(servers.kvred.port, STREAM_SCENES[name])
    assert actual == expected


# --- the AOF -------------------------------------------------------------------------------------


def _state(port: int) -> list[bytes]:
    with RawClient(port, timeout=5) as c:
        out = [c.call("XRANGE", "s", "-", "+"), c.call("XPENDING", "s", "g"), c.call("XPENDING", "s", "h")]
        out += [c.call("XPENDING", "s", g, "-", "+", "100") for g in ("g", "h")]  # idle: time since the TIME logged
        return out


def test_aof_replay_and_rewrite(tmp_path: Path) -> None:
    server = start_kvred(tmp_path, appendfsync="always")
    try:
        with RawClient(server.port, timeout=5) as c:
            for i in range(1, 8):
                c.call("XADD", "s", f"{i}-1", "f", f"v{i}")
            c.call("XGROUP", "CREATE", "s", "g", "0")
            c.call("XGROUP", "CREATE", "s", "h", "$")
            c.call("XREADGROUP", "GROUP", "g", "c1", "COUNT", "3", "STREAMS", "s", ">")
            c.call("XREADGROUP", "GROUP", "g", "c2", "COUNT", "2", "STREAMS", "s", ">")
            c.call("XREADGROUP", "GROUP", "g", "c3", "NOACK", "COUNT", "1", "STREAMS", "s", ">")
            c.call("XGROUP", "CREATECONSUMER", "s", "h", "idle")
            c.call("XACK", "s", "g", "2-1")
            c.call("XCLAIM", "s", "g", "c3", "0", "4-1")
            c.call("XAUTOCLAIM", "s", "g", "c4", "0", "5-1", "COUNT", "1")
        logged = aof_commands((tmp_path / "kvred.aof").read_bytes())
        claims = [argv for argv in logged if argv[0] == b"XCLAIM"]
        assert [argv[3] for argv in claims] == [b"c1"] * 3 + [b"c2"] * 2 + [b"c3", b"c4"], claims
        assert claims[0][6] == b"TIME" and claims[0][8:] == [
            b"RETRYCOUNT", b"1", b"FORCE", b"JUSTID", b"LASTID", b"1-1"], claims[0]
        assert [b"XGROUP", b"SETID", b"s", b"g", b"6-1", b"ENTRIESREAD", b"6"] in logged
        assert [b"XGROUP", b"CREATECONSUMER", b"s", b"g", b"c3"] in logged
        with RawClient(server.port, timeout=5) as c:
            before = c.call("XPENDING", "s", "g", "-", "+", "100")
        kill_hard(server)
        server = start_kvred(tmp_path, appendfsync="always")
        with RawClient(server.port, timeout=5) as c:
            assert c.call("XPENDING", "s", "g", "-", "+", "100").count(b"\r\n") == before.count(b"\r\n")
        expected = timeless(b"".join(_state(server.port)))
        rewrite_and_wait(server)
        rewritten = aof_commands((tmp_path / "kvred.aof").read_bytes())
        assert [b"XGROUP", b"CREATE", b"s", b"h", b"7-1", b"ENTRIESREAD", b"-1"] in rewritten
        assert [b"XGROUP", b"CREATECONSUMER", b"s", b"h", b"idle"] in rewritten
        assert any(argv[:6] == [b"XCLAIM", b"s", b"g", b"c3", b"0", b"4-1"] for argv in rewritten)
        server.stop()
        server = start_kvred(tmp_path, appendfsync="always")
        assert timeless(b"".join(_state(server.port))) == expected
        with RawClient(server.port, timeout=5) as c:  # the group's last ID survived: 7-1 comes next
            assert c.call("XREADGROUP", "GROUP", "g", "c9", "STREAMS", "s", ">").startswith(b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n7-1")
    finally:
        server.stop()


# --- a consumer-group scenario (kvred only) -------------------------------------------------------

_DELIVERED = re.compile(rb"\$\d+\r\n(\d+-1)\r\n")


def _ids(reply: bytes) -> list[bytes]:
    return _DELIVERED.findall(reply)


@pytest.mark.skipif(against_redis(), reason="kvred's AOF and workers")
def test_consumer_group_scenario(tmp_path: Path) -> None:
    """Three consumers on their own connections (3 workers): one waits in XREADGROUP
    BLOCK and is served by an XADD from another, one crashes with entries pending and
    another takes them over with XAUTOCLAIM; then kill -9. After the restart every entry
    was delivered once, and is acknowledged or still pending for exactly one consumer."""
    server = start_kvred(tmp_path, appendfsync="always", workers=3)
    try:
        producer, c1, c2, c3 = (RawClient(server.port, timeout=5) for _ in range(4))
        assert producer.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM") == b"+OK\r\n"
        c1.send(encode_command("XREADGROUP", "GROUP", "g", "c1", "BLOCK", "0", "STREAMS", "s", ">"))
        deadline = time.monotonic() + 5
        while b"blocked_clients:1\r\n" not in producer.call("INFO", "clients"):
            assert time.monotonic() < deadline, "c1 never blocked"
            time.sleep(0.01)
        producer.call("XADD", "s", "1-1", "n", "1")
        served = _ids(c1.read_reply())
        assert served == [b"1-1"]
        acked = set(served)
        assert c1.call("XACK", "s", "g", *served) == b":1\r\n"
        for i in range(2, 31):
            producer.call("XADD", "s", f"{i}-1", "n", str(i))
        delivered = list(served)
        crashed = _ids(c3.call("XREADGROUP", "GROUP", "g", "c3", "COUNT", "5", "STREAMS", "s", ">"))
        delivered += crashed
        c3.close()  # crashed: its five entries stay pending
        for _ in range(3):
            for client, name in ((c1, "c1"), (c2, "c2")):
                got = _ids(client.call("XREADGROUP", "GROUP", "g", name, "COUNT", "3", "STREAMS", "s", ">"))
                delivered += got
                assert client.call("XACK", "s", "g", *got) == b":%d\r\n" % len(got)
                acked.update(got)
        claimed = c1.call("XAUTOCLAIM", "s", "g", "c1", "0", "0", "COUNT", "100")
        assert _ids(claimed) == crashed  # the crashed consumer's entries, taken over
        assert c1.call("XACK", "s", "g", *crashed) == b":5\r\n"
        acked.update(crashed)
        in_flight = _ids(c2.call("XREADGROUP", "GROUP", "g", "c2", "COUNT", "4", "STREAMS", "s", ">"))
        delivered += in_flight
        assert len(delivered) == len(set(delivered)) == 1 + 5 + 18 + 4
        for client in (producer, c1, c2):
            client.close()
        kill_hard(server)
        server = start_kvred(tmp_path, appendfsync="always", workers=3)
        with RawClient(server.port, timeout=5) as c:
            pending = c.call("XPENDING", "s", "g", "-", "+", "100")
            assert _ids(pending) == in_flight and pending.count(b"c2") == len(in_flight)
            assert not acked & set(_ids(pending))
            rest = _ids(c.call("XREADGROUP", "GROUP", "g", "c9", "STREAMS", "s", ">"))
            assert sorted(delivered + rest, key=lambda sid: int(sid.split(b"-")[0])) == [
                b"%d-1" % i for i in range(1, 31)]  # nothing lost, nothing delivered twice
            assert c.call("XINFO", "GROUPS", "s").count(b"\r\n:0\r\n") >= 1  # lag 0 once all were read
    finally:
        server.stop()
