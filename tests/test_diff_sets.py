"""Differential tests of the set commands (kvred/commands/sets.py) against redis-server
7.0, plus the AOF (restart after SIGKILL, BGREWRITEAOF round trip) of sets.

Replies whose order Redis leaves to its hash table (hashtable-encoded sets) are
compared as sorted multisets (`unordered`); intset replies are compared byte for byte,
their order (ascending) included. Random replies (SPOP, SRANDMEMBER) are checked for
shape, size, membership and distinctness (`randoms`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aoftools import aof_commands, kill_hard, rewrite_and_wait
from conftest import start_kvred
from differential import (  # noqa: F401  (servers: the fixture)
    C2,
    C,
    Case,
    Cases,
    ScanAll,
    Servers,
    check_case,
    check_survived,
    hello_masked,
    servers,
)
from rawclient import RawClient, parse_reply

CASES = Cases()
case, lazy_case, arity = CASES.case, CASES.lazy_case, CASES.arity
FAR_PXAT = "32503680000000"  # year 3000


# --- normalisers -----------------------------------------------------------------


def unordered(raw: bytes) -> Any:
    """An array/set of bulk strings from a hashtable set: compared in sorted order."""
    node = parse_reply(raw)
    if node[0] not in "*~" or node[1] is None:
        return raw
    return (node[0], "sorted", sorted(repr(item) for item in node[1]))


def randoms(universe: list[str] | str, count: int, distinct: bool = True) -> Any:
    """A random pick: `count` bulk strings from `universe` (distinct unless repeats are
    allowed); the reply type byte is kept, the picks masked."""
    if isinstance(universe, str):
        universe = universe.split()
    allowed = {u.encode() for u in universe}

    def norm(raw: bytes) -> Any:
        node = parse_reply(raw)
        if node[0] == "$":
            return "<one member>" if node[1] in allowed else raw
        if node[0] not in "*~" or node[1] is None or len(node[1]) != count:
            return raw
        picks = [item[1] for item in node[1]]
        if any(item[0] != "$" for item in node[1]) or not set(picks) <= allowed:
            return raw
        if distinct and len(set(picks)) != len(picks):
            return raw
        return (node[0], f"<{count} members>")

    return norm


def ascending(raw: bytes) -> Any:
    """Random members of an intset popped in bulk: masked, but they must be ascending."""
    node = parse_reply(raw)
    if node[0] not in "*~" or node[1] is None:
        return raw
    values = [int(item[1]) for item in node[1]]
    return (node[0], len(values), values == sorted(values))


@dataclass
class SScanAll:
    """SSCAN from cursor 0 to 0: the members seen (sorted), each page well formed."""

    key: str
    extra: tuple[str, ...] = ()

    def run(self, ctx: Any) -> Any:
        cursor = b"0"
        seen: list[bytes] = []
        for _ in range(10_000):
            raw = ctx.client.call("SSCAN", self.key, cursor, *self.extra)
            node = parse_reply(raw)
            if node[0] != "*" or len(node[1]) != 2 or node[1][0][0] != "$" or node[1][1][0] != "*":
                return ("unexpected page", raw)
            cursor = node[1][0][1]
            seen.extend(item[1] for item in node[1][1][1])
            if cursor == b"0":
                return ("members", sorted(set(seen)), len(seen) == len(set(seen)))
        return "SSCAN did not finish"

    def label(self) -> str:
        return f"SSCAN {self.key} to completion {' '.join(self.extra)}"


def many(prefix: str, n: int, start: int = 0) -> list[str]:
    return [f"{prefix}{i}" for i in range(start, start + n)]


def ints(n: int, start: int = 0) -> list[str]:
    return [str(i) for i in range(start, start + n)]


INTS_600 = ints(600)
INTS_512 = ints(512)

# --- SADD / SREM / SISMEMBER / SMISMEMBER / SMEMBERS / SCARD ----------------------

case("sadd-basic", C("SADD", "s", "a", "b", "c"), C("SADD", "s", "a", "d"), C("SADD", "s", "a"),
     C("SCARD", "s"), C("SMEMBERS", "s", norm=unordered), C("TYPE", "s"), C("EXISTS", "s"),
     C("OBJECT", "ENCODING", "s"))
case("sadd-duplicates-in-one-call", C("SADD", "s", "x", "x", "y", "x"), C("SCARD", "s"),
     C("SADD", "n", "1", "1", "2"), C("SMEMBERS", "n"))
case("sadd-binary", C("SADD", "s", b"\x00\xff", b"a\r\nb", b"", b"-"),
     C("SISMEMBER", "s", b""), C("SISMEMBER", "s", b"a\r\nb"), C("SMEMBERS", "s", norm=unordered),
     C("SADD", b"k\x00", "1"), C("SMEMBERS", b"k\x00"))
case("smembers-intset-ascending", C("SADD", "s", "10", "-3", "7", "0", "-100", "9223372036854775807",
                                     "-9223372036854775808", "2"),
     C("SMEMBERS", "s"), C("OBJECT", "ENCODING", "s"), C("SADD", "s", "5"), C("SMEMBERS", "s"))
case("intset-what-counts-as-integer",
     *[step for i, m in enumerate(["007", "+1", "-0", " 1", "1 ", "9223372036854775808",
                                   "-9223372036854775809", "1.0", "0x1", "", "12345678901234567890"])
       for step in (C("SADD", f"k{i}", m), C("OBJECT", "ENCODING", f"k{i}"))],
     C("SADD", "ok", "0", "-1", "123"), C("OBJECT", "ENCODING", "ok"))
case("intset-to-hashtable-by-member", C("SADD", "s", "1", "2", "3"), C("OBJECT", "ENCODING", "s"),
     C("SADD", "s", "x"), C("OBJECT", "ENCODING", "s"), C("SREM", "s", "x"),
     C("OBJECT", "ENCODING", "s"), C("SMEMBERS", "s", norm=unordered), C("SADD", "s", "4"),
     C("OBJECT", "ENCODING", "s"))
case("intset-threshold-512", C("SADD", "s", *INTS_512), C("OBJECT", "ENCODING", "s"), C("SCARD", "s"),
     C("SADD", "s", "100"), C("OBJECT", "ENCODING", "s"), C("SADD", "s", "512"),
     C("OBJECT", "ENCODING", "s"), C("SREM", "s", "512", "0", "1"), C("OBJECT", "ENCODING", "s"),
     C("SCARD", "s"), C("SADD", "big", *INTS_600), C("OBJECT", "ENCODING", "big"),
     C("SMEMBERS", "big", norm=unordered))
# (set-max-intset-entries is not settable by CONFIG SET in kvred yet: no threshold-config case)
case("srem-basic", C("SADD", "s", "a", "b", "c"), C("SREM", "s", "a", "x"), C("SREM", "s", "x"),
     C("SCARD", "s"), C("SREM", "s", "b", "c", "b"), C("EXISTS", "s"), C("TYPE", "s"),
     C("SREM", "s", "a"), C("SREM", "nokey", "a"))
case("srem-intset", C("SADD", "s", "3", "1", "2"), C("SREM", "s", "2"), C("SMEMBERS", "s"),
     C("OBJECT", "ENCODING", "s"), C("SREM", "s", "1", "3"), C("EXISTS", "s"))
case("sismember-smismember", C("SADD", "s", "a", "1"), C("SISMEMBER", "s", "a"),
     C("SISMEMBER", "s", "b"), C("SISMEMBER", "s", "1"), C("SISMEMBER", "nokey", "a"),
     C("SMISMEMBER", "s", "a", "b", "1", "a"), C("SMISMEMBER", "nokey", "a", "b"),
     C("SMISMEMBER", "s", "zz"))
case("scard-smembers-missing", C("SCARD", "nokey"), C("SMEMBERS", "nokey"))
case("set-wrongtype", C("SET", "str", "x"),
     C("SADD", "str", "a"), C("SREM", "str", "a"), C("SISMEMBER", "str", "a"),
     C("SMISMEMBER", "str", "a"), C("SCARD", "str"), C("SMEMBERS", "str"), C("SPOP", "str"),
     C("SPOP", "str", "1"), C("SPOP", "str", "0"), C("SRANDMEMBER", "str"), C("SRANDMEMBER", "str", "2"),
     C("SSCAN", "str", "0"), C("SSCAN", "str", "0", "COUNT", "0"), C("GET", "str"))
case("other-commands-on-a-set", C("SADD", "s", "a"), C("GET", "s"), C("INCR", "s"), C("APPEND", "s", "x"),
     C("STRLEN", "s"), C("GETRANGE", "s", "0", "1"), C("MGET", "s", "nokey"), C("SMEMBERS", "s"))
for name, args in [("SADD", ["s"]), ("SADD", []), ("SREM", ["s"]), ("SISMEMBER", ["s"]),
                   ("SISMEMBER", ["s", "a", "b"]), ("SMISMEMBER", ["s"]), ("SCARD", []), ("SCARD", ["a", "b"]),
                   ("SMEMBERS", []), ("SMEMBERS", ["a", "b"]), ("SPOP", []), ("SRANDMEMBER", []),
                   ("SMOVE", ["a", "b"]), ("SMOVE", ["a", "b", "c", "d"]), ("SINTER", []), ("SINTERCARD", ["1"]),
                   ("SINTERSTORE", ["d"]), ("SUNION", []), ("SUNIONSTORE", ["d"]), ("SDIFF", []),
                   ("SDIFFSTORE", ["d"]), ("SSCAN", ["s"])]:
    arity(name, *args)

# --- SPOP / SRANDMEMBER -----------------------------------------------------------

case("spop-one", C("SADD", "s", "a", "b", "c"), C("SPOP", "s", norm=randoms("a b c", 1)),
     C("SCARD", "s"), C("SPOP", "s", norm=randoms("a b c", 1)), C("SPOP", "s", norm=randoms("a b c", 1)),
     C("EXISTS", "s"), C("SPOP", "s"), C("SPOP", "nokey"))
case("spop-intset", C("SADD", "s", "5"), C("SPOP", "s"), C("EXISTS", "s"), C("SADD", "s", "-1", "2"),
     C("SPOP", "s", norm=randoms("-1 2", 1)), C("OBJECT", "ENCODING", "s"))
case("spop-count-errors", C("SADD", "s", "a"), C("SPOP", "s", "-1"), C("SPOP", "s", "x"),
     C("SPOP", "s", "1", "2"), C("SPOP", "nokey", "-1"), C("SPOP", "nokey", "x"),
     C("SPOP", "s", "9223372036854775808"), C("SPOP", "s", ""), C("SPOP", "s", "01"), C("SCARD", "s"))
case("spop-count-zero-missing", C("SADD", "s", "a"), C("SPOP", "s", "0"), C("SPOP", "nokey", "0"),
     C("SPOP", "nokey", "5"), C("SCARD", "s"))
case("spop-count-whole-set", C("SADD", "s", "3", "1", "2"), C("SPOP", "s", "3"), C("EXISTS", "s"),
     C("SADD", "s", "3", "1", "2"), C("SPOP", "s", "9223372036854775807"), C("EXISTS", "s"),
     C("SADD", "h", "a", "b"), C("SPOP", "h", "10", norm=unordered), C("EXISTS", "h"))
case("spop-count-few", C("SADD", "s", *many("m", 20)), C("SPOP", "s", "3", norm=randoms(many("m", 20), 3)),
     C("SCARD", "s"), C("SADD", "i", *ints(20)),
     C("SPOP", "i", "2", norm=randoms(ints(20), 2)), C("SCARD", "i"),
     C("OBJECT", "ENCODING", "i"))
case("spop-count-most-intset", C("SADD", "s", *ints(10)),
     C("SPOP", "s", "9", norm=ascending), C("SCARD", "s"), C("OBJECT", "ENCODING", "s"))
case("spop-count-most-back-to-intset", C("SADD", "s", *INTS_600), C("OBJECT", "ENCODING", "s"),
     C("SPOP", "s", "590", norm=randoms(INTS_600, 590)), C("SCARD", "s"), C("OBJECT", "ENCODING", "s"),
     C("SADD", "t", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j"),
     C("SPOP", "t", "9", norm=randoms("a b c d e f g h i j", 9)), C("OBJECT", "ENCODING", "t"))
case("spop-count-most-stays-hashtable", C("SADD", "s", *INTS_600, "x"),
     C("SPOP", "s", "10", norm=randoms([*INTS_600, "x"], 10)), C("OBJECT", "ENCODING", "s"),
     C("SADD", "big", *ints(2000)),
     C("SPOP", "big", "1400", norm=randoms(ints(2000), 1400)),
     C("SCARD", "big"), C("OBJECT", "ENCODING", "big"))
case("spop-count-resp3", C("HELLO", "3", norm=hello_masked), C("SADD", "s", "1", "2", "3"),
     C("SPOP", "s", "0"), C("SPOP", "nokey", "2"), C("SPOP", "s", "1", norm=randoms("1 2 3", 1)),
     C("SPOP", "s", "5", norm=randoms("1 2 3", 2)), C("SPOP", "s"),
     C("SADD", "h", "a", "b", "c", "d", "e", "f", "g"),
     C("SPOP", "h", "6", norm=randoms("a b c d e f g", 6)))
case("srandmember-one", C("SADD", "s", "a", "b"), C("SRANDMEMBER", "s", norm=randoms("a b", 1)),
     C("SRANDMEMBER", "nokey"), C("SCARD", "s"), C("SADD", "i", "5"), C("SRANDMEMBER", "i"))
case("srandmember-count", C("SADD", "s", *many("m", 30)),
     C("SRANDMEMBER", "s", "5", norm=randoms(many("m", 30), 5)),
     C("SRANDMEMBER", "s", "20", norm=randoms(many("m", 30), 20)),
     C("SRANDMEMBER", "s", "30", norm=unordered), C("SRANDMEMBER", "s", "100", norm=unordered),
     C("SRANDMEMBER", "s", "-5", norm=randoms(many("m", 30), 5, distinct=False)),
     C("SRANDMEMBER", "s", "-100", norm=randoms(many("m", 30), 100, distinct=False)),
     C("SRANDMEMBER", "s", "0"), C("SCARD", "s"))
case("srandmember-count-intset", C("SADD", "s", "3", "1", "2", "-7"), C("SRANDMEMBER", "s", "4"),
     C("SRANDMEMBER", "s", "9223372036854775807"), C("SRANDMEMBER", "s", "2", norm=randoms("3 1 2 -7", 2)),
     C("SRANDMEMBER", "s", "-3", norm=randoms("3 1 2 -7", 3, distinct=False)), C("SADD", "one", "x"),
     C("SRANDMEMBER", "one", "-4"))
case("srandmember-errors", C("SADD", "s", "a"), C("SRANDMEMBER", "s", "x"), C("SRANDMEMBER", "s", "1", "2"),
     C("SRANDMEMBER", "nokey", "x"), C("SRANDMEMBER", "nokey", "3"), C("SRANDMEMBER", "nokey", "-3"),
     C("SRANDMEMBER", "s", "-9223372036854775808"), C("SRANDMEMBER", "s", "9223372036854775808"),
     C("SRANDMEMBER", "s", "-0"), C("SRANDMEMBER", "s", ""), C("SRANDMEMBER", "nokey", "-9223372036854775808"))
case("srandmember-resp3", C("HELLO", "3", norm=hello_masked), C("SADD", "s", "1", "2"),
     C("SRANDMEMBER", "s", "5"), C("SRANDMEMBER", "s", "1", norm=randoms("1 2", 1)),
     C("SRANDMEMBER", "nokey", "2"), C("SRANDMEMBER", "nokey"), C("SRANDMEMBER", "s", "0"),
     C("SRANDMEMBER", "s", "-3", norm=randoms("1 2", 3, distinct=False)),
     C("SMEMBERS", "s"), C("SMEMBERS", "nokey"), C("SMISMEMBER", "s", "1", "3"))

# --- SMOVE ------------------------------------------------------------------------

case("smove-basic", C("SADD", "a", "x", "y"), C("SMOVE", "a", "b", "x"), C("SMEMBERS", "a"),
     C("SMEMBERS", "b"), C("SMOVE", "a", "b", "nope"), C("SADD", "b", "y"), C("SMOVE", "a", "b", "y"),
     C("EXISTS", "a"), C("SMEMBERS", "b", norm=unordered), C("SMOVE", "nokey", "b", "x"))
case("smove-same-key", C("SADD", "a", "x"), C("SMOVE", "a", "a", "x"), C("SMOVE", "a", "a", "z"),
     C("SMEMBERS", "a"))
case("smove-wrongtype", C("SADD", "a", "1", "2"), C("SET", "str", "v"), C("SMOVE", "a", "str", "1"),
     C("SMOVE", "a", "str", "9"), C("SMOVE", "str", "a", "1"), C("SMOVE", "nokey", "str", "1"),
     C("SMOVE", "str", "nokey", "1"), C("SMEMBERS", "a"), C("GET", "str"))
case("smove-encodings", C("SADD", "a", "1", "x"), C("SADD", "b", "5"), C("SMOVE", "a", "b", "x"),
     C("OBJECT", "ENCODING", "b"), C("OBJECT", "ENCODING", "a"), C("SMOVE", "a", "c", "1"),
     C("OBJECT", "ENCODING", "c"), C("SADD", "d", *INTS_512), C("SADD", "e", "999"),
     C("SMOVE", "e", "d", "999"), C("OBJECT", "ENCODING", "d"))
case("smove-ttl", C("SADD", "a", "x", "y"), C("PEXPIREAT", "a", FAR_PXAT), C("SADD", "b", "z"),
     C("PEXPIREAT", "b", FAR_PXAT), C("SMOVE", "a", "b", "x"), C("PEXPIRETIME", "a"), C("PEXPIRETIME", "b"))

# --- SINTER / SINTERCARD / SINTERSTORE ----------------------------------------------

case("sinter-basic", C("SADD", "a", "x", "y", "z"), C("SADD", "b", "y", "z", "w"), C("SADD", "c", "z", "y", "q"),
     C("SINTER", "a", "b", "c", norm=unordered), C("SINTER", "a", norm=unordered), C("SINTER", "a", "nokey"),
     C("SINTER", "nokey", "a"), C("SINTER", "nokey"), C("SINTER", "a", "a", norm=unordered))
case("sinter-intset-order", C("SADD", "a", "5", "3", "1", "9"), C("SADD", "b", "9", "1", "5", "7", "x", "3"),
     C("SINTER", "a", "b"), C("SINTER", "b", "a"), C("SADD", "c", "1", "9", "100", "5", "3", "11"),
     C("SINTER", "c", "a"), C("SINTER", "a"))
case("sinter-wrongtype", C("SADD", "s", "a"), C("SET", "str", "x"), C("SINTER", "s", "str"),
     C("SINTER", "str", "s"), C("SINTER", "nokey", "str"), C("SINTER", "str", "nokey"))
case("sintercard", C("SADD", "a", "1", "2", "3", "x"), C("SADD", "b", "2", "3", "x", "y"),
     C("SINTERCARD", "2", "a", "b"), C("SINTERCARD", "1", "a"), C("SINTERCARD", "2", "a", "nokey"),
     C("SINTERCARD", "2", "a", "b", "LIMIT", "2"), C("SINTERCARD", "2", "a", "b", "limit", "0"),
     C("SINTERCARD", "2", "a", "b", "LIMIT", "10"), C("SINTERCARD", "1", "a", "LIMIT", "1", "LIMIT", "3"),
     C("SINTERCARD", "1", "nokey"), C("SINTERCARD", "2", "a", "a"))
case("sintercard-errors", C("SADD", "s", "1", "2", "3"), C("SET", "str", "x"), C("SINTERCARD", "0", "s"),
     C("SINTERCARD", "-1", "s"), C("SINTERCARD", "x", "s"), C("SINTERCARD", "2", "s"),
     C("SINTERCARD", "1", "s", "LIMIT"), C("SINTERCARD", "1", "s", "LIMIT", "-1"),
     C("SINTERCARD", "1", "s", "LIMIT", "x"), C("SINTERCARD", "1", "s", "foo", "1"),
     C("SINTERCARD", "1", "s", "s"), C("SINTERCARD", "1", "str"), C("SINTERCARD", "2", "s", "str"),
     C("SINTERCARD", "2", "nokey", "str"), C("SINTERCARD", "2", "str", "nokey"),
     C("SINTERCARD", "1", "s", "LIMIT", "2", "foo"), C("SINTERCARD", "9223372036854775808", "s"),
     C("SINTERCARD", "2147483648", "s"), C("SINTERCARD", "2", "s", "str", "LIMIT", "x"),
     C("SINTERCARD", "2", "s", "str", "LIMIT"))
case("sinterstore", C("SADD", "a", "1", "2", "3"), C("SADD", "b", "2", "3", "4"),
     C("SINTERSTORE", "d", "a", "b"), C("SMEMBERS", "d"), C("OBJECT", "ENCODING", "d"),
     C("SINTERSTORE", "d", "a", "nokey"), C("EXISTS", "d"), C("SINTERSTORE", "d", "nokey"),
     C("SET", "d", "str"), C("SINTERSTORE", "d", "a"), C("TYPE", "d"), C("SMEMBERS", "d"),
     C("SINTERSTORE", "a", "a", "b"), C("SMEMBERS", "a"))
case("sinterstore-encoding", C("SADD", "a", "1", "x", "2"), C("SADD", "b", "1", "2", "x", "y"),
     C("SINTERSTORE", "d", "a", "b"), C("OBJECT", "ENCODING", "d"), C("SREM", "b", "x"),
     C("SINTERSTORE", "d", "a", "b"), C("OBJECT", "ENCODING", "d"), C("SMEMBERS", "d"))
case("sinterstore-wrongtype-keeps-dst", C("SADD", "a", "1"), C("SET", "str", "x"), C("SET", "d", "keep"),
     C("SINTERSTORE", "d", "a", "str"), C("SINTERSTORE", "d", "nokey", "str"), C("GET", "d"))
case("store-drops-ttl", C("SADD", "a", "1", "2"), C("SADD", "d", "9"), C("PEXPIREAT", "d", FAR_PXAT),
     C("SINTERSTORE", "d", "a"), C("PTTL", "d"), C("SADD", "e", "1"), C("PEXPIREAT", "e", FAR_PXAT),
     C("SUNIONSTORE", "e", "a"), C("PTTL", "e"), C("SET", "f", "x", "PXAT", FAR_PXAT),
     C("SDIFFSTORE", "f", "a"), C("PTTL", "f"), C("TYPE", "f"))

# --- SUNION / SDIFF and their STORE ---------------------------------------------------

case("sunion", C("SADD", "a", "3", "1"), C("SADD", "b", "2", "1", "10"), C("SUNION", "a", "b"),
     C("SUNION", "a", "nokey", "b"), C("SUNION", "nokey"), C("SADD", "h", "x", "1"),
     C("SUNION", "a", "h", norm=unordered), C("SUNION", "a"))
case("sunion-over-512", C("SADD", "a", *ints(300)), C("SADD", "b", *ints(300, 300)),
     C("SUNIONSTORE", "d", "a", "b"), C("OBJECT", "ENCODING", "d"), C("SUNION", "a", "b", norm=unordered),
     C("SUNIONSTORE", "e", "a", "a"), C("OBJECT", "ENCODING", "e"), C("SMEMBERS", "e"))
case("sunionstore", C("SADD", "a", "x"), C("SADD", "b", "y"), C("SUNIONSTORE", "d", "a", "b"),
     C("SMEMBERS", "d", norm=unordered), C("OBJECT", "ENCODING", "d"), C("SUNIONSTORE", "d", "nokey"),
     C("EXISTS", "d"), C("SUNIONSTORE", "d", "nokey", "nokey2"), C("SUNIONSTORE", "a", "a", "b"),
     C("SCARD", "a"), C("SET", "str", "v"), C("SUNIONSTORE", "d", "a", "str"), C("SUNIONSTORE", "str", "a"),
     C("TYPE", "str"))
case("sdiff", C("SADD", "a", "1", "2", "3", "4"), C("SADD", "b", "2"), C("SADD", "c", "3", "9"),
     C("SDIFF", "a", "b", "c"), C("SDIFF", "a"), C("SDIFF", "a", "nokey"), C("SDIFF", "nokey", "a"),
     C("SDIFF", "a", "a"), C("SDIFF", "b", "a"), C("SADD", "h", "x", "1", "y"), C("SDIFF", "h", "a", norm=unordered),
     C("SDIFF", "a", "h"))
case("hashtable-of-integers-recomputed", C("SADD", "s", "x", *ints(20, 5)), C("SREM", "s", "x"),
     C("OBJECT", "ENCODING", "s"), C("SUNION", "s"), C("SDIFF", "s"), C("SUNIONSTORE", "u", "s"),
     C("OBJECT", "ENCODING", "u"), C("SMEMBERS", "s", norm=unordered), C("SINTER", "s", norm=unordered),
     C("SRANDMEMBER", "s", "100", norm=unordered), C("SPOP", "s", "100"), C("EXISTS", "s"))
case("sdiffstore-encoding-algorithms",
     # a large first set, small others: Redis's algorithm 2 (the result keeps the first set's encoding)
     C("SADD", "big", *ints(20), "x"), C("SADD", "small", "x"),
     C("SDIFFSTORE", "d", "big", "small"), C("OBJECT", "ENCODING", "d"), C("SCARD", "d"),
     # small first set, large others: algorithm 1 (the result's own encoding)
     C("SADD", "f", "1", "x"), C("SADD", "g", *many("g", 10), "x"),
     C("SDIFFSTORE", "d2", "f", "g"), C("OBJECT", "ENCODING", "d2"), C("SMEMBERS", "d2"),
     C("SDIFF", "f", "g"), C("SDIFF", "big", "small", norm=unordered))
case("sdiffstore", C("SADD", "a", "x", "y"), C("SADD", "b", "y"), C("SDIFFSTORE", "d", "a", "b"),
     C("SMEMBERS", "d"), C("SDIFFSTORE", "d", "a", "a"), C("EXISTS", "d"), C("SDIFFSTORE", "d", "nokey", "a"),
     C("SET", "str", "v"), C("SDIFFSTORE", "d", "a", "str"), C("SDIFFSTORE", "d", "str", "a"),
     C("SDIFFSTORE", "d", "nokey", "str"), C("SDIFFSTORE", "a", "a", "b"), C("SMEMBERS", "a"))
case("algebra-resp3", C("HELLO", "3", norm=hello_masked), C("SADD", "a", "1", "2"), C("SADD", "b", "2", "3"),
     C("SINTER", "a", "b"), C("SUNION", "a", "b"), C("SDIFF", "a", "b"), C("SINTER", "a", "nokey"),
     C("SUNION", "nokey"), C("SDIFF", "nokey"), C("SINTERCARD", "2", "a", "b"), C("SINTERSTORE", "d", "a", "b"))

# --- SSCAN --------------------------------------------------------------------------

case("sscan-intset", C("SADD", "s", "30", "-2", "7", "1000"), C("SSCAN", "s", "0"),
     C("SSCAN", "s", "0", "COUNT", "1"), C("SSCAN", "s", "0", "MATCH", "*0*"), C("SSCAN", "s", "0", "MATCH", "x"),
     C("SSCAN", "s", "0", "count", "2", "match", "-*"), C("SSCAN", "nokey", "0"))
case("sscan-hashtable", C("SADD", "s", *many("m", 100)), SScanAll("s"), SScanAll("s", ("COUNT", "7")),
     SScanAll("s", ("MATCH", "m1*")), SScanAll("s", ("COUNT", "1000")))
case("sscan-big-intset-is-hashtable", C("SADD", "s", *INTS_600), SScanAll("s", ("COUNT", "50")))
case("sscan-errors", C("SADD", "s", "a"), C("SET", "str", "x"), C("SSCAN", "s", "x"), C("SSCAN", "nokey", "x"),
     C("SSCAN", "str", "x"), C("SSCAN", "s", "0", "COUNT", "0"), C("SSCAN", "s", "0", "COUNT", "x"),
     C("SSCAN", "s", "0", "MATCH"), C("SSCAN", "s", "0", "foo", "bar"), C("SSCAN", "nokey", "0", "COUNT", "0"),
     C("SSCAN", "str", "0", "COUNT", "0"), C("SSCAN", "s", "18446744073709551616"))
case("sscan-resp3", C("HELLO", "3", norm=hello_masked), C("SADD", "s", "2", "1"), C("SSCAN", "s", "0"),
     C("SSCAN", "nokey", "0"))

# --- keyspace commands with sets ------------------------------------------------------

case("keyspace-commands", C("SADD", "s", "1", "2"), C("SADD", "h", "a"), C("TYPE", "s"), C("TYPE", "h"),
     C("EXISTS", "s", "h", "nokey"), C("RENAME", "s", "s2"), C("SMEMBERS", "s2"), C("EXISTS", "s"),
     C("COPY", "h", "h2"), C("SADD", "h2", "b"), C("SMEMBERS", "h"), C("SCARD", "h2"),
     C("OBJECT", "ENCODING", "h2"), C("COPY", "s2", "s3"), C("OBJECT", "ENCODING", "s3"), C("SMEMBERS", "s3"),
     C("SADD", "s3", "z"), C("OBJECT", "ENCODING", "s2"), C("OBJECT", "ENCODING", "s3"),
     C("DEL", "s2", "h"), C("EXISTS", "s2", "h"), C("SET", "str", "x"),
     ScanAll(("TYPE", "set")), ScanAll(("TYPE", "string")), C("RENAME", "h2", "str"), C("TYPE", "str"))
case("copy-keeps-hashtable-state", C("SADD", "s", "1", "x"), C("SREM", "s", "x"), C("COPY", "s", "t"),
     C("OBJECT", "ENCODING", "t"), C("SMEMBERS", "t", norm=unordered), C("COPY", "s", "t", "REPLACE"),
     C("SADD", "t", "2"), C("SCARD", "s"), C("SCARD", "t"))
case("ttl-kept-by-changes", C("SADD", "s", "a", "b", "c", "d", "e", "f"), C("PEXPIREAT", "s", FAR_PXAT),
     C("SADD", "s", "g"), C("PEXPIRETIME", "s"), C("SREM", "s", "a"), C("PEXPIRETIME", "s"),
     C("SPOP", "s", norm=randoms("b c d e f g", 1)), C("PEXPIRETIME", "s"),
     C("SPOP", "s", "4", norm=randoms("b c d e f g", 4)), C("PEXPIRETIME", "s"), C("SADD", "i", *INTS_600),
     C("PEXPIREAT", "i", FAR_PXAT), C("SPOP", "i", "590", norm=randoms(INTS_600, 590)),
     C("PEXPIRETIME", "i"), C("OBJECT", "ENCODING", "i"))
lazy_case("expired-set", C("SADD", "s", "a"), C("PEXPIRE", "s", "1"), C("DEBUG", "SLEEP", "0.01"),
          C("SCARD", "s"), C("SADD", "s", "b"), C("SMEMBERS", "s"), C("PTTL", "s"))

# --- WATCH and MULTI ------------------------------------------------------------------

case("watch-broken-by-sadd", C("SADD", "s", "a"), C("WATCH", "s"), C2("SADD", "s", "b"), C("MULTI"),
     C("SCARD", "s"), C("EXEC"))
case("watch-not-broken-by-noops", C("SADD", "s", "a"), C("WATCH", "s", "d"), C2("SADD", "s", "a"),
     C2("SREM", "s", "zz"), C2("SMOVE", "s", "x", "zz"), C2("SMOVE", "s", "s", "a"), C2("SPOP", "s", "0"),
     C2("SRANDMEMBER", "s"), C2("SINTERSTORE", "d", "nokey"), C2("SUNIONSTORE", "d", "nokey"),
     C2("SDIFFSTORE", "d", "s", "s"), C("MULTI"), C("SCARD", "s"), C("EXEC"))
case("watch-broken-by-srem", C("SADD", "s", "a", "b"), C("WATCH", "s"), C2("SREM", "s", "a"), C("MULTI"),
     C("SCARD", "s"), C("EXEC"))
case("watch-broken-by-spop", C("SADD", "s", "a", "b"), C("WATCH", "s"), C2("SPOP", "s", norm=randoms("a b", 1)),
     C("MULTI"), C("SCARD", "s"), C("EXEC"))
case("watch-broken-by-smove-dst", C("SADD", "a", "x"), C("WATCH", "b"), C2("SMOVE", "a", "b", "x"), C("MULTI"),
     C("SCARD", "b"), C("EXEC"))
case("watch-broken-by-store", C("SADD", "a", "x"), C("WATCH", "d"), C2("SUNIONSTORE", "d", "a"), C("MULTI"),
     C("SCARD", "d"), C("EXEC"), C("WATCH", "d"), C2("SINTERSTORE", "d", "nokey"), C("MULTI"), C("EXISTS", "d"),
     C("EXEC"))
case("multi-exec", C("MULTI"), C("SADD", "s", "3", "1", "2"), C("SREM", "s", "2"), C("SMEMBERS", "s"),
     C("SISMEMBER", "s", "1"), C("SPOP", "s", "5"), C("SPOP", "s", "x"), C("SINTERCARD", "0", "s"),
     C("SADD", "s"), C("EXEC"), C("EXISTS", "s"))


# --- the tests ------------------------------------------------------------------------


@pytest.mark.parametrize("seq", CASES, ids=CASES.ids())
def test_same_replies_as_redis(servers: Servers, seq: Case) -> None:  # noqa: F811
    check_case(servers, seq)


def test_kvred_survived_the_cases(servers: Servers) -> None:  # noqa: F811
    check_survived(servers)


def test_srandmember_huge_negative_count_is_bounded(tmp_path: Path) -> None:
    """Redis builds a reply of 2^63 members (it hangs); kvred stops at the output limit,
    drops the client, and keeps serving the others."""
    server = start_kvred(tmp_path, client_output_buffer_limit="1mb", appendonly="no")
    try:
        with RawClient(server.port) as client:
            assert client.call("SADD", "huge-neg", "a", "b") == b":2\r\n"
            client.send(b"*3\r\n$11\r\nSRANDMEMBER\r\n$8\r\nhuge-neg\r\n$20\r\n-9223372036854775807\r\n")
            assert client.is_closed(10.0)
        with RawClient(server.port) as client:
            assert client.call("SCARD", "huge-neg") == b":2\r\n"
    finally:
        server.stop()


def test_random_picks_cover_the_set(servers: Servers) -> None:  # noqa: F811
    """SRANDMEMBER and SPOP pick every member eventually, including members added after
    the first pick and none removed since."""
    with RawClient(servers.kvred.port) as client:
        client.call("DEL", "cover")
        client.call("SADD", "cover", *many("c", 50))
        seen: set[bytes] = set()
        for _ in range(400):
            seen.add(parse_reply(client.call("SRANDMEMBER", "cover"))[1])
        assert seen == {m.encode() for m in many("c", 50)}
        client.call("SADD", "cover", "late")
        client.call("SREM", "cover", *many("c", 40))
        seen = set()
        for _ in range(300):
            seen.add(parse_reply(client.call("SRANDMEMBER", "cover"))[1])
        assert seen == {m.encode() for m in [*many("c", 10, 40), "late"]}
        popped = [parse_reply(client.call("SPOP", "cover"))[1] for _ in range(11)]
        assert sorted(popped) == sorted(seen)
        assert client.call("EXISTS", "cover") == b":0\r\n"


# --- AOF ------------------------------------------------------------------------------


def _snapshot(port: int) -> dict[str, Any]:
    """Every set's members, encoding and TTL (read commands only)."""
    state: dict[str, Any] = {}
    with RawClient(port) as client:
        keys = parse_reply(client.call("KEYS", "*"))[1]
        for _kind, key in keys:
            members = sorted(item[1] for item in parse_reply(client.call("SMEMBERS", key))[1])
            state[key.decode()] = (members, client.call("OBJECT", "ENCODING", key),
                                   client.call("PEXPIRETIME", key))
    return state


def _fill(port: int) -> None:
    with RawClient(port) as client:
        client.call("SADD", "ints", *ints(100))
        client.call("SADD", "words", *many("w", 300))
        client.call("PEXPIREAT", "words", FAR_PXAT)
        client.call("SADD", "big", *INTS_600)
        client.call("SREM", "big", "5", "6")
        client.call("SPOP", "ints")
        client.call("SPOP", "ints", "3")
        client.call("SPOP", "words", "280")
        client.call("SADD", "gone", "x")
        client.call("SPOP", "gone", "5")
        client.call("SMOVE", "ints", "moved", "50")
        client.call("SADD", "a", "1", "2", "x")
        client.call("SADD", "b", "2", "x", "y")
        client.call("SINTERSTORE", "inter", "a", "b")
        client.call("SUNIONSTORE", "union", "a", "b")
        client.call("SDIFFSTORE", "diff", "a", "b")
        client.call("PEXPIREAT", "union", FAR_PXAT)
        client.call("SADD", "tmp", "1")
        client.call("SDIFFSTORE", "tmp", "nokey")


def test_aof_restart_after_sigkill(tmp_path: Path) -> None:
    server = start_kvred(tmp_path, appendfsync="always")
    try:
        _fill(server.port)
        before = _snapshot(server.port)
        assert set(before) == {"ints", "words", "big", "a", "b", "inter", "union", "diff"} | (
            {"moved"} if b"50" in before.get("moved", ([],))[0] else set())
    finally:
        kill_hard(server)
    server = start_kvred(tmp_path, appendfsync="always")
    try:
        assert _snapshot(server.port) == before
    finally:
        server.stop()


def test_aof_rewrite_round_trip(tmp_path: Path) -> None:
    server = start_kvred(tmp_path, appendfsync="always")
    try:
        _fill(server.port)
        before = _snapshot(server.port)
        rewrite_and_wait(server)
    finally:
        server.stop()
    commands = aof_commands((tmp_path / "kvred.aof").read_bytes())
    sadds = [cmd for cmd in commands if cmd[0].upper() == b"SADD"]
    assert len(sadds) > len({cmd[1] for cmd in sadds})  # the big sets took several commands
    assert all(len(cmd) - 2 <= 64 for cmd in sadds)
    assert not any(cmd[0].upper() in (b"SPOP", b"SREM", b"SMOVE") for cmd in commands)
    server = start_kvred(tmp_path, appendfsync="always")
    try:
        # a rewrite rebuilds each set by SADD: the encodings follow the members, as in Redis
        after = _snapshot(server.port)
        assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}
        assert {k: v[2] for k, v in after.items()} == {k: v[2] for k, v in before.items()}
    finally:
        server.stop()
