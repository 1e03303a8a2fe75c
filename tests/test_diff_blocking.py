"""Tests of the blocking commands (issue 13): BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN
BZPOPMAX BZMPOP, and CLIENT UNBLOCK.

1. Differential cases (machinery: tests/differential.py): the same bytes to redis-server 7.0
   and to kvred, the same replies back. A blocked client is the case's first connection:
   `Silent(...)` sends the blocking command, a `C2(...)` push from the second connection
   serves it, `Raw(b"", 1)` reads the served reply.
2. Several blocked clients at once, run as the same scenario on both servers with raw
   clients, compared reply by reply.
3. The AOF (kvred only): a served blocked client is logged as its non-blocking effect and
   a restart replays it to the same data.
4. Fairness (kvred only, several workers): blocked clients are served in the order they
   blocked; a disconnected one is forgotten.

Waits for a client to be blocked poll `INFO clients` (blocked_clients) with a deadline."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from aoftools import aof_commands
from conftest import ServerProcess, against_redis, start_kvred
from differential import (  # noqa: F401  (servers: the fixture)
    C2,
    C,
    Case,
    Cases,
    Raw,
    Servers,
    Silent,
    check_case,
    check_survived,
    hello_masked,
    servers,
)
from rawclient import RawClient, encode_command

CASES = Cases()
case, arity = CASES.case, CASES.arity

BLOCK_WAIT_S = 5.0
READ = Raw(b"", 1)  # the served reply of the blocked first connection


def block(*args: str) -> Silent:
    """The first connection sends a blocking command that must not be answered yet."""
    return Silent(encode_command(*args))


def hello3() -> Any:
    return C("HELLO", "3", norm=hello_masked)


# --- immediate paths: a non-empty key is served at once -------------------------------------

for _proto, _pre in (("resp2", ()), ("resp3", (hello3(),))):
    case(f"{_proto}-blpop-immediate", *_pre, C("RPUSH", "l", "a", "b", "c"), C("BLPOP", "l", "0"),
         C("BRPOP", "l", "0"), C("LRANGE", "l", "0", "-1"), C("BLPOP", "l", "0"), C("EXISTS", "l"))
    case(f"{_proto}-blpop-first-nonempty-key", *_pre, C("RPUSH", "b", "1"), C("RPUSH", "c", "2"),
         C("BLPOP", "a", "b", "c", "0"), C("BRPOP", "a", "b", "c", "1"), C("BLPOP", "c", "c", "0.5"))
    case(f"{_proto}-blmove-immediate", *_pre, C("RPUSH", "s", "1", "2", "3"),
         C("BLMOVE", "s", "d", "LEFT", "RIGHT", "0"), C("BLMOVE", "s", "d", "right", "left", "0"),
         C("BRPOPLPUSH", "s", "d", "0"), C("LRANGE", "d", "0", "-1"), C("EXISTS", "s"))
    case(f"{_proto}-blmove-same-list", *_pre, C("RPUSH", "l", "a", "b", "c"),
         C("BLMOVE", "l", "l", "LEFT", "RIGHT", "0"), C("BRPOPLPUSH", "l", "l", "0"), C("LRANGE", "l", "0", "-1"))
    case(f"{_proto}-blmpop-immediate", *_pre, C("RPUSH", "b", "1", "2", "3"),
         C("BLMPOP", "0", "2", "a", "b", "LEFT"), C("BLMPOP", "0", "2", "a", "b", "RIGHT", "COUNT", "5"),
         C("EXISTS", "b"))
    case(f"{_proto}-bzpop-immediate", *_pre, C("ZADD", "z", "1", "a", "2.5", "b", "3", "c", "-4e-3", "d"),
         C("BZPOPMIN", "z", "0"), C("BZPOPMAX", "nozset", "z", "0"), C("BZPOPMIN", "z", "0"),
         C("ZRANGE", "z", "0", "-1", "WITHSCORES"))
    case(f"{_proto}-bzmpop-immediate", *_pre, C("ZADD", "z", "1", "a", "2", "b", "3", "c"),
         C("BZMPOP", "0", "2", "x", "z", "MIN"), C("BZMPOP", "0", "1", "z", "MAX", "COUNT", "10"),
         C("EXISTS", "z"))
    case(f"{_proto}-timeouts-null", *_pre, C("BLPOP", "l", "0.05"), C("BRPOP", "l", "a", "0.01"),
         C("BLMOVE", "l", "d", "LEFT", "LEFT", "0.05"), C("BRPOPLPUSH", "l", "d", "0.05"),
         C("BLMPOP", "0.05", "1", "l", "LEFT"), C("BZPOPMIN", "z", "0.05"), C("BZPOPMAX", "z", "0.05"),
         C("BZMPOP", "0.05", "1", "z", "MAX"), C("EXISTS", "d"))
    case(f"{_proto}-inside-multi-null-at-once", *_pre, C("MULTI"), C("BLPOP", "l", "0"), C("BRPOP", "l", "0"),
         C("BLMOVE", "l", "d", "LEFT", "LEFT", "0"), C("BRPOPLPUSH", "l", "d", "0"),
         C("BLMPOP", "0", "1", "l", "LEFT"), C("BZPOPMIN", "z", "0"), C("BZPOPMAX", "z", "0"),
         C("BZMPOP", "0", "1", "z", "MIN"), C("EXEC"))
    case(f"{_proto}-served-blpop", *_pre, block("BLPOP", "l", "0"), C2("RPUSH", "l", "a", "b"), READ,
         C2("LRANGE", "l", "0", "-1"))
    case(f"{_proto}-served-bzpopmin", *_pre, block("BZPOPMIN", "z", "0"), C2("ZADD", "z", "1.5", "m", "9", "n"),
         READ, C2("ZRANGE", "z", "0", "-1"))
    case(f"{_proto}-served-bzmpop", *_pre, block("BZMPOP", "0", "2", "y", "z", "MAX", "COUNT", "2"),
         C2("ZADD", "z", "1", "a", "2", "b", "3", "c"), READ, C2("ZRANGE", "z", "0", "-1"))
    case(f"{_proto}-served-blmpop", *_pre, block("BLMPOP", "0", "2", "a", "b", "RIGHT", "COUNT", "2"),
         C2("RPUSH", "b", "1", "2", "3"), READ, C2("LRANGE", "b", "0", "-1"))
    case(f"{_proto}-served-blmove", *_pre, block("BLMOVE", "s", "d", "RIGHT", "LEFT", "0"),
         C2("RPUSH", "s", "x", "y"), READ, C2("LRANGE", "s", "0", "-1"), C2("LRANGE", "d", "0", "-1"))

# --- WRONGTYPE -----------------------------------------------------------------------------

case("wrongtype", C("SET", "s", "x"), C("ZADD", "z", "1", "a"), C("RPUSH", "l", "a", "b", "c"),
     C("BLPOP", "s", "0"), C("BRPOP", "nokey", "s", "0"), C("BLPOP", "l", "s", "0"), C("BLPOP", "z", "0"),
     C("BLMOVE", "s", "d", "LEFT", "LEFT", "0"), C("BLMOVE", "l", "s", "LEFT", "LEFT", "0"),
     C("BRPOPLPUSH", "l", "z", "0"), C("BLMPOP", "0", "2", "nokey", "s", "LEFT"),
     C("BZPOPMIN", "l", "0"), C("BZPOPMAX", "s", "0"), C("BZMPOP", "0", "2", "nokey", "l", "MIN"),
     C("LRANGE", "l", "0", "-1"))
case("wrongtype-on-blocked-destination", C("SET", "d", "x"), block("BLMOVE", "s", "d", "LEFT", "LEFT", "0"),
     C2("RPUSH", "s", "a"), Raw(b"", 1), C2("LRANGE", "s", "0", "-1"))
case("key-becomes-wrong-type-while-blocked", block("BLPOP", "k", "0"), C2("SET", "k", "x"),
     Silent(b""), C2("DEL", "k"), C2("RPUSH", "k", "a"), READ)

# --- timeouts ----------------------------------------------------------------------------------

BAD_TIMEOUTS = ("abc", "-1", "1e30", "inf", "+inf", "-inf", "nan", "", "1 ", "1e309", "9223372036854775807",
                "9223372036854776", "-9223372036854775", " 5")
for _t in BAD_TIMEOUTS:
    case(f"timeout-{_t or 'empty'}", C("BLPOP", "l", _t), C("BRPOP", "l", _t),
         C("BLMOVE", "l", "d", "LEFT", "LEFT", _t), C("BRPOPLPUSH", "l", "d", _t), C("BLMPOP", _t, "1", "l", "LEFT"),
         C("BZPOPMIN", "z", _t), C("BZPOPMAX", "z", _t), C("BZMPOP", _t, "1", "z", "MIN"))
# accepted by Redis: the client blocks until served
for _t in ("-0.001", "-0.0001", "0x10", "99999999999999", "1.5e12", "1e3", "9223372036854775", "9.2e15"):
    case(f"timeout-accepted-{_t.strip()}", block("BLPOP", "l", _t), C2("RPUSH", "l", "a"), READ,
         block("BZPOPMIN", "z", _t), C2("ZADD", "z", "1", "m"), READ)
case("timeout-errors-with-data-present", C("RPUSH", "l", "a"), C("ZADD", "z", "1", "a"),
     C("BLPOP", "l", "-1"), C("BZPOPMIN", "z", "abc"), C("BLMOVE", "l", "d", "LEFT", "LEFT", "nan"),
     C("LLEN", "l"), C("ZCARD", "z"))
case("timeout-forms-accepted", C("RPUSH", "l", "a", "b", "c", "d", "e"), C("BLPOP", "l", "0.0"),
     C("BLPOP", "l", "1e-3"), C("BLPOP", "l", "+1"), C("BLPOP", "l", "00"), C("BLPOP", "l", "-0"))

# --- served by a push from the second connection ----------------------------------------------------

case("served-rpush-reply-counts-before-pop", block("BRPOP", "l", "0"), C2("RPUSH", "l", "a", "b", "c"), READ,
     C2("LRANGE", "l", "0", "-1"))
case("served-lpush", block("BLPOP", "x", "l", "0"), C2("LPUSH", "l", "a", "b"), READ, C2("LLEN", "l"))
case("served-by-lmove-and-linsert", C("RPUSH", "src", "1"), block("BLPOP", "l", "0"),
     C2("LMOVE", "src", "l", "LEFT", "LEFT"), READ, C2("EXISTS", "src", "l"))
case("served-brpoplpush", block("BRPOPLPUSH", "s", "d", "0"), C2("RPUSH", "s", "x", "y"), READ,
     C2("LRANGE", "d", "0", "-1"), C2("LRANGE", "s", "0", "-1"))
case("served-blmove-chain", block("BLMOVE", "s", "s", "LEFT", "RIGHT", "0"), C2("RPUSH", "s", "a", "b"), READ,
     C2("LRANGE", "s", "0", "-1"))
case("served-bzpopmax-inf", block("BZPOPMAX", "z", "0"), C2("ZADD", "z", "-inf", "lo", "inf", "hi", "0", "mid"),
     READ, C2("ZRANGE", "z", "0", "-1", "WITHSCORES"))
case("served-bzpopmin-float-scores", block("BZPOPMIN", "z", "0"), C2("ZADD", "z", "0.1", "a", "1e-7", "b"),
     READ, C("BZPOPMIN", "z", "0"), C("ZADD", "z", "-inf", "n", "3.14159265358979", "pi"),
     C("BZPOPMIN", "z", "0"), C("BZPOPMAX", "z", "0"))
case("served-by-zincrby-and-zunionstore", C("ZADD", "src", "2", "a"), block("BZPOPMIN", "z", "0"),
     C2("ZINCRBY", "z", "1.5", "m"), READ, Silent(encode_command("BZPOPMAX", "u", "0")),
     C2("ZUNIONSTORE", "u", "1", "src"), READ)
case("served-after-timeout-not-served", Raw(encode_command("BLPOP", "l", "0.05")), C2("RPUSH", "l", "a"),
     C("LLEN", "l"))
case("push-popped-in-same-multi-does-not-serve", block("BLPOP", "l", "0"), C2("MULTI"), C2("RPUSH", "l", "a"),
     C2("LPOP", "l"), C2("EXEC"), Silent(b""), C2("RPUSH", "l", "b"), READ)
case("push-in-multi-serves-after-exec", block("BLPOP", "l", "0"), C2("MULTI"), C2("RPUSH", "l", "a", "b"),
     C2("LLEN", "l"), C2("EXEC"), READ, C2("LRANGE", "l", "0", "-1"))
case("push-other-db-does-not-serve", block("BLPOP", "l", "0"), C2("SELECT", "1"), C2("RPUSH", "l", "a"),
     Silent(b""), C2("SELECT", "0"), C2("RPUSH", "l", "b"), READ, C2("SELECT", "1"), C2("LLEN", "l"))
case("blocked-in-db1", C("SELECT", "1"), block("BLPOP", "l", "0"), C2("RPUSH", "l", "a"), Silent(b""),
     C2("SELECT", "1"), C2("RPUSH", "l", "b"), READ)
case("pipelined-after-blocked-waits", Silent(encode_command("BLPOP", "l", "0") + encode_command("PING")
                                             + encode_command("LLEN", "l")),
     C2("RPUSH", "l", "a", "b"), Raw(b"", 3))
case("pipelined-two-blocking", Silent(encode_command("BLPOP", "l", "0") + encode_command("LLEN", "l")
                                      + encode_command("BLPOP", "l", "0")),
     C2("RPUSH", "l", "a"), Raw(b"", 2), Silent(b""), C2("RPUSH", "l", "b", "c"), READ, C2("LRANGE", "l", "0", "-1"))
case("pipelined-after-timeout", Raw(encode_command("BLPOP", "l", "0.05") + encode_command("PING"), 2))
case("blmpop-served-count-limits", block("BLMPOP", "0", "1", "l", "LEFT", "COUNT", "10"),
     C2("RPUSH", "l", "a", "b", "c"), READ, C2("EXISTS", "l"))
case("bzmpop-served-min", block("BZMPOP", "0", "1", "z", "MIN"), C2("ZADD", "z", "2", "b", "1", "a"), READ)
case("resp3-served-bzpopmin", hello3(), block("BZPOPMIN", "a", "z", "0"), C2("ZADD", "z", "inf", "m"), READ)
case("resp3-served-blmove", hello3(), block("BLMOVE", "s", "d", "LEFT", "LEFT", "0"), C2("RPUSH", "s", "v"),
     READ)
case("resp3-timeout-blmove-bzmpop", hello3(), C("BLMOVE", "s", "d", "LEFT", "LEFT", "0.01"),
     C("BRPOPLPUSH", "s", "d", "0.01"), C("BZMPOP", "0.01", "1", "z", "MIN"), C("BLMPOP", "0.01", "1", "l", "LEFT"))

# --- BLMPOP / BZMPOP argument errors ------------------------------------------------------------

for _cmd, _where in (("BLMPOP", ("LEFT", "RIGHT")), ("BZMPOP", ("MIN", "MAX"))):
    w = _where[0]
    case(f"{_cmd.lower()}-arg-errors", C("RPUSH", "l", "a"), C("ZADD", "z", "1", "a"),
         C(_cmd, "0", "0", "l", w), C(_cmd, "0", "-1", "l", w), C(_cmd, "0", "x", "l", w),
         C(_cmd, "0", "2", "l", w), C(_cmd, "0", "3", "l", "z", w), C(_cmd, "0", "1", "l", "UP"),
         C(_cmd, "0", "1", "l", w, "COUNT"), C(_cmd, "0", "1", "l", w, "COUNT", "0"),
         C(_cmd, "0", "1", "l", w, "COUNT", "-1"), C(_cmd, "0", "1", "l", w, "COUNT", "x"),
         C(_cmd, "0", "1", "l", w, "COUNT", "1", "COUNT", "2"), C(_cmd, "0", "1", "l", w, "LIMIT", "1"),
         C(_cmd, "0", "1", "l", w, "extra"), C(_cmd, "0", "99999999999", "l", w),
         C(_cmd, "0", "1", "l", w.lower(), "count", "1"), C(_cmd, "bad", "1", "l", w), C(_cmd, "0", "1"),
         C("LLEN", "l"), C("ZCARD", "z"))
case("blmpop-count", C("RPUSH", "l", *"abcdef"), C("BLMPOP", "0", "1", "l", "LEFT", "COUNT", "2"),
     C("BLMPOP", "0", "1", "l", "RIGHT", "COUNT", "1"), C("BLMPOP", "0", "1", "l", "LEFT", "COUNT", "100"),
     C("EXISTS", "l"))
case("bzmpop-count", C("ZADD", "z", "1", "a", "2", "b", "3", "c", "inf", "d"),
     C("BZMPOP", "0", "1", "z", "MAX", "COUNT", "2"), C("BZMPOP", "0", "1", "z", "MIN", "COUNT", "100"),
     C("EXISTS", "z"))
case("blmove-arg-errors", C("BLMOVE", "a", "b", "UP", "LEFT", "0"), C("BLMOVE", "a", "b", "LEFT", "DOWN", "0"),
     C("BLMOVE", "a", "b", "LEFT", "LEFT", "x"), C("BLMOVE", "a", "b", "LEFT", "UP", "x"))

# --- CLIENT UNBLOCK argument errors -------------------------------------------------------------

case("client-unblock-errors", C("CLIENT", "UNBLOCK"), C("CLIENT", "UNBLOCK", "x"),
     C("CLIENT", "UNBLOCK", "999999", "BAD"), C("CLIENT", "UNBLOCK", "999999"),
     C("CLIENT", "UNBLOCK", "999999", "ERROR"), C("CLIENT", "UNBLOCK", "999999", "timeout"),
     C("CLIENT", "UNBLOCK", "1", "ERROR", "x"))

# --- arity ---------------------------------------------------------------------------------------

for _args in ((), ("l",)):
    for _name in ("BLPOP", "BRPOP", "BZPOPMIN", "BZPOPMAX", "BRPOPLPUSH"):
        arity(_name, *_args)
arity("BRPOPLPUSH", "a", "b")
arity("BRPOPLPUSH", "a", "b", "0", "x")
arity("BLMOVE", "a", "b", "LEFT", "LEFT")
arity("BLMOVE", "a", "b", "LEFT", "LEFT", "0", "x")
arity("BLMPOP", "0", "1", "l")
arity("BLMPOP")
arity("BZMPOP", "0", "1", "z")
arity("BZMPOP")


@pytest.mark.parametrize("seq", CASES, ids=CASES.ids())
def test_same_replies_as_redis(servers: Servers, seq: Case) -> None:  # noqa: F811
    check_case(servers, seq)


def test_kvred_survived_the_cases(servers: Servers) -> None:  # noqa: F811
    check_survived(servers)


# --- 2. several blocked clients: the same scenario on both servers -------------------------------


def blocked_clients(port: int) -> int:
    with RawClient(port, timeout=5) as c:
        info = c.call("INFO", "clients")
    match = re.search(rb"blocked_clients:(\d+)", info)
    assert match, info
    return int(match[1])


def wait_blocked(port: int, count: int) -> None:
    """Poll INFO clients until exactly `count` clients are blocked (bounded)."""
    deadline = time.monotonic() + BLOCK_WAIT_S
    while (now := blocked_clients(port)) != count:
        assert time.monotonic() < deadline, f"blocked_clients stayed {now}, wanted {count}"
        time.sleep(0.01)


class Scene:
    """One scenario's clients on one server; `out` collects every reply, in order."""

    def __init__(self, port: int):
        self.port = port
        self.main = RawClient(port, timeout=READ_TIMEOUT)
        self.clients: list[RawClient] = []
        self.out: list[Any] = [self.main.call("FLUSHALL")]
        self.blocked = 0

    def block(self, *args: str) -> RawClient:
        """A new client sends a blocking command; wait until the server counts it."""
        c = RawClient(self.port, timeout=READ_TIMEOUT)
        self.clients.append(c)
        c.send(encode_command(*args))
        self.blocked += 1
        wait_blocked(self.port, self.blocked)
        return c

    def served(self, c: RawClient) -> None:
        self.out.append(c.read_reply())
        self.blocked -= 1

    def silent(self, c: RawClient) -> None:
        self.out.append(("silent?", c.read_available(0.1)))

    def call(self, *args: str) -> None:
        self.out.append(self.main.call(*args))

    def close(self) -> None:
        for c in [self.main, *self.clients]:
            c.close()


READ_TIMEOUT = 2.0


def _two_served_by_three(s: Scene) -> None:
    c1, c2 = s.block("BLPOP", "l", "0"), s.block("BLPOP", "l", "0")
    s.call("RPUSH", "l", "a", "b", "c")
    s.served(c1)
    s.served(c2)
    s.call("LRANGE", "l", "0", "-1")


def _three_blocked_two_pushed(s: Scene) -> None:
    c1, c2, c3 = (s.block("BRPOP", "l", "0") for _ in range(3))
    s.call("LPUSH", "l", "a", "b")
    s.served(c1)
    s.served(c2)
    s.silent(c3)
    s.call("LLEN", "l")
    s.call("RPUSH", "l", "x")
    s.served(c3)


def _blmove_chain(s: Scene) -> None:
    c1 = s.block("BLMOVE", "a", "b", "LEFT", "RIGHT", "0")
    c2 = s.block("BLPOP", "b", "0")
    s.call("RPUSH", "a", "x")
    s.served(c1)
    s.served(c2)
    s.call("EXISTS", "a", "b")


def _two_keys_in_multi(s: Scene) -> None:
    c1 = s.block("BLPOP", "a", "b", "0")
    c2 = s.block("BLPOP", "a", "0")
    for cmd in (("MULTI",), ("RPUSH", "b", "1"), ("RPUSH", "a", "2"), ("EXEC",)):
        s.call(*cmd)
    s.served(c1)
    s.served(c2)
    s.call("EXISTS", "a", "b")


def _zsets(s: Scene) -> None:
    c1 = s.block("BZPOPMIN", "z", "0")
    c2 = s.block("BZPOPMAX", "z", "0")
    c3 = s.block("BZMPOP", "0", "1", "z", "MIN", "COUNT", "5")
    s.call("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d")
    s.served(c1)
    s.served(c2)
    s.served(c3)
    s.call("EXISTS", "z")


def _blmpop_count(s: Scene) -> None:
    c1 = s.block("BLMPOP", "0", "1", "l", "LEFT", "COUNT", "2")
    c2 = s.block("BLPOP", "l", "0")
    c3 = s.block("BRPOPLPUSH", "l", "d", "0")
    s.call("RPUSH", "l", "1", "2", "3")
    s.served(c1)
    s.served(c2)
    s.silent(c3)
    s.call("RPUSH", "l", "4")
    s.served(c3)
    s.call("LRANGE", "d", "0", "-1")


def _disconnected_is_forgotten(s: Scene) -> None:
    c1 = s.block("BLPOP", "l", "0")
    c2 = s.block("BLPOP", "l", "0")
    c1.close()
    s.blocked -= 1
    wait_blocked(s.port, 1)
    s.call("RPUSH", "l", "a", "b")
    s.served(c2)
    s.call("LRANGE", "l", "0", "-1")
    c3 = s.block("BZPOPMIN", "z", "0")
    c3.close()
    s.blocked -= 1
    wait_blocked(s.port, 0)
    s.call("ZADD", "z", "1", "m")
    s.call("ZCARD", "z")


def _client_unblock(s: Scene) -> None:
    c1 = RawClient(s.port, timeout=READ_TIMEOUT)
    s.clients.append(c1)
    id1 = c1.call("CLIENT", "ID")[1:-2].decode()
    s.call("CLIENT", "UNBLOCK", id1)  # not blocked: 0
    c1.send(encode_command("BLPOP", "l", "0"))
    s.blocked += 1
    wait_blocked(s.port, 1)
    s.call("CLIENT", "UNBLOCK", id1)
    s.served(c1)
    c1.send(encode_command("BZPOPMIN", "z", "0"))
    s.blocked += 1
    wait_blocked(s.port, 1)
    s.call("CLIENT", "UNBLOCK", id1, "ERROR")
    s.served(c1)
    c1.send(encode_command("BLMOVE", "a", "b", "LEFT", "LEFT", "0"))
    s.blocked += 1
    wait_blocked(s.port, 1)
    s.call("CLIENT", "UNBLOCK", id1, "TIMEOUT")
    s.served(c1)
    s.call("CLIENT", "UNBLOCK", id1)
    s.out.append(c1.call("PING"))


def _served_then_pipelined(s: Scene) -> None:
    c1 = RawClient(s.port, timeout=READ_TIMEOUT)
    s.clients.append(c1)
    c1.send(encode_command("BLPOP", "l", "0") + encode_command("LLEN", "l") + encode_command("BLPOP", "l", "0"))
    s.blocked += 1
    wait_blocked(s.port, 1)
    s.call("RPUSH", "l", "a")
    s.served(c1)
    s.out.append(c1.read_reply())
    wait_blocked(s.port, 1)
    s.call("RPUSH", "l", "b", "c")
    s.served(c1)
    s.call("LRANGE", "l", "0", "-1")


SCENES: dict[str, Callable[[Scene], None]] = {
    "two-blocked-push-of-three": _two_served_by_three,
    "three-blocked-push-of-two": _three_blocked_two_pushed,
    "blmove-chain-serves-next": _blmove_chain,
    "two-keys-pushed-in-multi": _two_keys_in_multi,
    "zsets-three-clients": _zsets,
    "blmpop-count-then-others": _blmpop_count,
    "disconnected-is-forgotten": _disconnected_is_forgotten,
    "client-unblock": _client_unblock,
    "blocked-again-in-pipeline": _served_then_pipelined,
}


def play_scene(port: int, scene: Callable[[Scene], None]) -> list[Any]:
    s = Scene(port)
    try:
        scene(s)
    except (TimeoutError, ConnectionError, AssertionError) as e:
        s.out.append(f"<{type(e).__name__}: {e}>")
    finally:
        s.close()
    return s.out


@pytest.mark.parametrize("name", list(SCENES))
def test_several_blocked_clients(servers: Servers, name: str) -> None:  # noqa: F811
    expected = play_scene(servers.redis.port, SCENES[name])
    assert not any(isinstance(x, str) for x in expected), expected
    servers.ensure_kvred_alive(name)
    actual = play_scene(servers.kvred.port, SCENES[name])
    assert actual == expected


# --- 3. the AOF: served blocked clients are logged as their effect -------------------------------

AOF_KEYS = {"l": "list", "s": "list", "d": "list", "z": "zset", "m": "list", "q": "list", "y": "zset"}


def _dump(port: int) -> dict[str, bytes]:
    with RawClient(port, timeout=5) as c:
        out = {}
        for key, kind in AOF_KEYS.items():
            out[key] = (c.call("LRANGE", key, "0", "-1") if kind == "list"
                        else c.call("ZRANGE", key, "0", "-1", "WITHSCORES"))
        return out


def _serve(port: int, blocking: tuple[str, ...], push: tuple[str, ...]) -> bytes:
    """One client blocks, another pushes; the served reply."""
    with RawClient(port, timeout=5) as c, RawClient(port, timeout=5) as pusher:
        c.send(encode_command(*blocking))
        wait_blocked(port, 1)
        assert pusher.call(*push)[:1] == b":"
        reply = c.read_reply()
        wait_blocked(port, 0)
        return reply


@pytest.mark.skipif(against_redis(), reason="kvred's AOF file")
def test_aof_logs_what_served_clients_popped(tmp_path: Path) -> None:
    server = start_kvred(tmp_path, appendfsync="always")
    try:
        served = [
            _serve(server.port, ("BLPOP", "l", "0"), ("RPUSH", "l", "a", "b")),
            _serve(server.port, ("BLMOVE", "s", "d", "RIGHT", "LEFT", "0"), ("RPUSH", "s", "x", "y")),
            _serve(server.port, ("BZPOPMIN", "z", "0"), ("ZADD", "z", "1.5", "m1", "2", "m2")),
            _serve(server.port, ("BLMPOP", "0", "1", "m", "RIGHT", "COUNT", "2"), ("RPUSH", "m", "1", "2", "3")),
            _serve(server.port, ("BRPOPLPUSH", "q", "d", "0"), ("RPUSH", "q", "p")),
            _serve(server.port, ("BZMPOP", "0", "1", "y", "MAX", "COUNT", "2"), ("ZADD", "y", "1", "a", "2", "b", "3", "c")),
        ]
        assert served == [
            b"*2\r\n$1\r\nl\r\n$1\r\na\r\n",
            b"$1\r\ny\r\n",
            b"*3\r\n$1\r\nz\r\n$2\r\nm1\r\n$3\r\n1.5\r\n",
            b"*2\r\n$1\r\nm\r\n*2\r\n$1\r\n3\r\n$1\r\n2\r\n",
            b"$1\r\np\r\n",
            b"*2\r\n$1\r\ny\r\n*2\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n",
        ]
        expected = _dump(server.port)
        assert expected == {
            "l": b"*1\r\n$1\r\nb\r\n", "s": b"*1\r\n$1\r\nx\r\n", "d": b"*2\r\n$1\r\np\r\n$1\r\ny\r\n",
            "z": b"*2\r\n$2\r\nm2\r\n$1\r\n2\r\n", "m": b"*1\r\n$1\r\n1\r\n", "q": b"*0\r\n",
            "y": b"*2\r\n$1\r\na\r\n$1\r\n1\r\n",
        }
        logged = aof_commands((tmp_path / "kvred.aof").read_bytes())
        names = [argv[0].upper() for argv in logged]
        assert not [n for n in names if n.startswith((b"BL", b"BR", b"BZ"))], logged
        effects = [[a.upper() if i == 0 else a for i, a in enumerate(argv)] for argv in logged]
        for wanted in ([b"LPOP", b"l"], [b"LMOVE", b"s", b"d"], [b"ZPOPMIN", b"z"], [b"RPOP", b"m"],
                       [b"ZPOPMAX", b"y"]):
            assert any(argv[: len(wanted)] == wanted for argv in effects), (wanted, logged)
        assert any(argv[:3] in ([b"LMOVE", b"q", b"d"], [b"RPOPLPUSH", b"q", b"d"]) for argv in effects), logged
        server.stop()
        server = start_kvred(tmp_path, appendfsync="always")
        assert _dump(server.port) == expected
    finally:
        server.stop()


# --- 4. fairness: first blocked, first served, across workers -------------------------------------


OPEN: list[RawClient] = []  # the fairness tests' clients, closed by the fixture


@pytest.fixture
def fair_kvred(kvred_factory: Callable[..., ServerProcess]) -> Iterator[ServerProcess]:
    server = kvred_factory(workers=3, appendonly="no")
    yield server
    while OPEN:
        OPEN.pop().close()
    server.stop()


def _worker_of(server: ServerProcess, clients: list[RawClient]) -> list[int | None]:
    """The pid of the kvred process that holds each client's connection."""
    owner: dict[int, int] = {}
    for proc in [psutil.Process(server.pid), *server.capture_tree()]:
        try:
            for conn in proc.net_connections(kind="tcp"):
                if conn.laddr and conn.laddr.port == server.port and conn.raddr:
                    owner[conn.raddr.port] = proc.pid
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return [owner.get(c.sock.getsockname()[1]) for c in clients]


def _spread_clients(server: ServerProcess, count: int) -> list[RawClient]:
    """`count` connections that are held by at least two different workers, ordered so
    that consecutive clients alternate between workers where possible."""
    pool = [RawClient(server.port, timeout=READ_TIMEOUT) for _ in range(4 * count)]
    OPEN.extend(pool)
    for c in pool:
        assert c.call("PING") == b"+PONG\r\n"  # accepted by its worker
    by_worker: dict[int | None, list[RawClient]] = {}
    for c, pid in zip(pool, _worker_of(server, pool), strict=True):
        by_worker.setdefault(pid, []).append(c)
    assert None not in by_worker, by_worker.keys()
    assert len(by_worker) >= 2 or against_redis(), by_worker.keys()  # redis-server: one process
    chosen: list[RawClient] = []
    while len(chosen) < count:
        for group in by_worker.values():
            if group and len(chosen) < count:
                chosen.append(group.pop(0))
    for c in pool:
        if c not in chosen:
            c.close()
    assert len(set(_worker_of(server, chosen))) >= 2 or against_redis()
    return chosen


def _block_in_order(server: ServerProcess, count: int, *args: str) -> list[RawClient]:
    clients = _spread_clients(server, count)
    for i, c in enumerate(clients):
        c.send(encode_command(*args))
        wait_blocked(server.port, i + 1)
    return clients


def _elem(key: str, value: str) -> bytes:
    return b"*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key.encode(), len(value), value.encode())


def test_fairness_one_push_at_a_time(fair_kvred: ServerProcess) -> None:
    port = fair_kvred.port
    clients = _block_in_order(fair_kvred, 5, "BLPOP", "l", "0")
    with RawClient(port, timeout=5) as pusher:
        for i, c in enumerate(clients):
            assert pusher.call("RPUSH", "l", f"v{i}") == b":1\r\n"
            assert c.read_reply() == _elem("l", f"v{i}"), f"client {i}"
            for later in clients[i + 1:]:
                assert later.read_available(0.02) == b""
            wait_blocked(port, 4 - i)
        assert pusher.call("LLEN", "l") == b":0\r\n"


def test_fairness_push_of_three_wakes_three_of_five(fair_kvred: ServerProcess) -> None:
    port = fair_kvred.port
    clients = _block_in_order(fair_kvred, 5, "BRPOP", "l", "0")
    with RawClient(port, timeout=5) as pusher:
        assert pusher.call("RPUSH", "l", "a", "b", "c") == b":3\r\n"
        # BRPOP: each served client pops the tail of what is left
        assert [c.read_reply() for c in clients[:3]] == [_elem("l", v) for v in "cba"]
        wait_blocked(port, 2)
        assert [c.read_available(0.05) for c in clients[3:]] == [b"", b""]
        assert pusher.call("LLEN", "l") == b":0\r\n"
        assert pusher.call("LPUSH", "l", "d", "e") == b":2\r\n"
        assert [c.read_reply() for c in clients[3:]] == [_elem("l", "d"), _elem("l", "e")]
        wait_blocked(port, 0)


def test_fairness_disconnected_client_is_forgotten(fair_kvred: ServerProcess) -> None:
    port = fair_kvred.port
    clients = _block_in_order(fair_kvred, 5, "BLPOP", "l", "0")
    clients[0].close()
    clients[2].close()
    wait_blocked(port, 3)
    with RawClient(port, timeout=5) as pusher:
        assert pusher.call("RPUSH", "l", "a") == b":1\r\n"
        assert clients[1].read_reply() == _elem("l", "a")
        assert pusher.call("RPUSH", "l", "b") == b":1\r\n"
        assert clients[3].read_reply() == _elem("l", "b")
        wait_blocked(port, 1)
        clients[4].close()
        wait_blocked(port, 0)
        assert pusher.call("RPUSH", "l", "c") == b":1\r\n"
        assert pusher.call("LLEN", "l") == b":1\r\n"  # nothing popped for a closed client
        assert pusher.call("LRANGE", "l", "0", "-1") == b"*1\r\n$1\r\nc\r\n"


def test_fairness_client_unblock(fair_kvred: ServerProcess) -> None:
    port = fair_kvred.port
    clients = _spread_clients(fair_kvred, 3)
    ids = [c.call("CLIENT", "ID")[1:-2].decode() for c in clients]
    for i, c in enumerate(clients):
        c.send(encode_command("BLPOP", "l", "0"))
        wait_blocked(port, i + 1)
    with RawClient(port, timeout=5) as control:
        assert control.call("CLIENT", "UNBLOCK", ids[0]) == b":1\r\n"
        assert clients[0].read_reply() == b"*-1\r\n"
        assert control.call("CLIENT", "UNBLOCK", ids[1], "ERROR") == b":1\r\n"
        assert clients[1].read_reply() == b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
        assert control.call("CLIENT", "UNBLOCK", ids[1]) == b":0\r\n"
        wait_blocked(port, 1)
        assert control.call("RPUSH", "l", "x") == b":1\r\n"
        assert clients[2].read_reply() == _elem("l", "x")
        assert [c.call("PING") for c in clients] == [b"+PONG\r\n"] * 3


def test_wait_command(servers: Servers) -> None:  # noqa: F811
    """WAIT answers 0 at once (no replicas), as Redis does."""
    replies = []
    for server in (servers.redis, servers.kvred):
        with RawClient(server.port, timeout=5) as c:
            replies.append([c.call("WAIT", "0", "0"), c.call("WAIT", "1", "10"), c.call("WAIT", "x", "0"),
                            c.call("WAIT", "0", "-1"), c.call("WAIT", "0")])
    assert replies[1] == replies[0]
