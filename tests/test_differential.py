"""Differential tests: the same bytes to redis-server 7.0 and to kvred, same replies back.

Each case is a sequence of steps run on a fresh connection to each server; it
starts with FLUSHALL so cases are independent. A step's result is the raw
reply bytes, except where a step says how it normalises a value that
legitimately differs between the two servers (ids, versions, ports, dirs, key
order of KEYS/SCAN, RANDOMKEY among several keys). Everything else must be
byte-identical. A failure lists every differing step: expected (redis) vs
actual (kvred).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import ServerProcess, answers_ping, start_kvred
from rawclient import RawClient, encode_command, parse_reply

# Redis answers in microseconds; a short bound keeps a hanging kvred from
# stalling the whole module.
READ_TIMEOUT_S = 1.5
# How long a "the server keeps waiting for more bytes" check listens for
# nothing to arrive. Only used where no later command can prove the silence.
SILENCE_S = 0.2


class Ctx:
    """One side of a case: a server and the current connection to it."""

    def __init__(self, server: ServerProcess):
        self.server = server
        self.client = RawClient(server.port, timeout=READ_TIMEOUT_S)

    def reconnect(self) -> None:
        self.client.close()
        self.client = RawClient(self.server.port, timeout=READ_TIMEOUT_S)

    def close(self) -> None:
        self.client.close()


# --- steps -------------------------------------------------------------------

Norm = Callable[[bytes], Any]


@dataclass
class Cmd:
    """Send one multibulk command; the result is its reply (optionally normalised)."""

    args: tuple[bytes | str | int, ...]
    norm: Norm | None = None

    def run(self, ctx: Ctx) -> Any:
        raw = ctx.client.call(*self.args)
        return self.norm(raw) if self.norm else raw

    def label(self) -> str:
        text = " ".join(a if isinstance(a, str) else repr(a) for a in self.args)
        return text if len(text) < 100 else text[:97] + "..."


def C(*args: bytes | str | int, norm: Norm | None = None) -> Cmd:
    return Cmd(args, norm)


@dataclass
class Raw:
    """Send raw bytes, then read `replies` complete replies."""

    data: bytes
    replies: int = 1
    norm: Norm | None = None

    def run(self, ctx: Ctx) -> Any:
        ctx.client.send(self.data)
        replies = [ctx.client.read_reply() for _ in range(self.replies)]
        return [self.norm(r) for r in replies] if self.norm else replies

    def label(self) -> str:
        return f"raw {self.data[:80]!r} ({self.replies} replies)"


@dataclass
class RawClose:
    """Send raw bytes (maybe none), then read everything until the server closes."""

    data: bytes

    def run(self, ctx: Ctx) -> Any:
        if self.data:
            ctx.client.send(self.data)
        return ctx.client.read_until_close(READ_TIMEOUT_S)

    def label(self) -> str:
        return f"raw {self.data[:80]!r} until close"


@dataclass
class Silent:
    """Send raw bytes that must get no reply yet and must not close the connection."""

    data: bytes

    def run(self, ctx: Ctx) -> Any:
        ctx.client.send(self.data)
        return ctx.client.read_available(SILENCE_S), ctx.client.eof

    def label(self) -> str:
        return f"raw {self.data[:80]!r} (expect silence)"


@dataclass
class Closed:
    """The server closes the connection (result: True) or keeps it open (False)."""

    def run(self, ctx: Ctx) -> Any:
        return ctx.client.is_closed(READ_TIMEOUT_S)

    def label(self) -> str:
        return "connection closed?"


@dataclass
class Reconnect:
    def run(self, ctx: Ctx) -> Any:
        ctx.reconnect()
        return None

    def label(self) -> str:
        return "reconnect"


@dataclass
class ScanAll:
    """Iterate SCAN from cursor 0 to 0 with `extra` options; result: sorted key set.

    Why normalised: SCAN's order and page sizes depend on the hash table layout.
    Each page must still be a 2-element array of a bulk cursor and an array.
    """

    extra: tuple[str, ...] = ()
    max_calls: int = 10_000

    def run(self, ctx: Ctx) -> Any:
        cursor = b"0"
        keys: set[bytes] = set()
        for _ in range(self.max_calls):
            raw = ctx.client.call("SCAN", cursor, *self.extra)
            node = parse_reply(raw)
            if (node[0] != "*" or len(node[1]) != 2 or node[1][0][0] != "$"
                    or node[1][1][0] != "*"):
                return ("unexpected page", raw)
            cursor = node[1][0][1]
            for kind, key in node[1][1][1]:
                if kind != "$":
                    return ("unexpected key type", raw)
                keys.add(key)
            if cursor == b"0":
                return ("keys", sorted(keys))
        return ("SCAN did not finish", len(keys))

    def label(self) -> str:
        return "SCAN to completion " + " ".join(self.extra)


@dataclass
class Case:
    id: str
    steps: list[Any] = field(default_factory=list)


# --- normalisers ---------------------------------------------------------------


def sorted_keys(raw: bytes) -> Any:
    """KEYS: same array of bulk strings, compared in sorted order (hash order differs)."""
    node = parse_reply(raw)
    if node[0] != "*":
        return raw
    return ("* sorted", sorted(node[1]))


def one_of(*keys: str) -> Norm:
    """RANDOMKEY among several keys: which one is random; it must be one of them."""
    wanted = {k.encode() for k in keys}

    def norm(raw: bytes) -> Any:
        node = parse_reply(raw)
        if node[0] == "$" and node[1] in wanted:
            return "<a bulk string naming one of the keys>"
        return raw

    return norm


def integer(raw: bytes) -> Any:
    """COMMAND COUNT: the count differs (kvred has fewer commands); it must be an integer."""
    return "<integer reply>" if re.fullmatch(rb":\d+\r\n", raw) else raw


_HELLO_ID = re.compile(rb"(\$2\r\nid\r\n):\d+\r\n")
_HELLO_VERSION = re.compile(rb"(\$7\r\nversion\r\n)\$\d+\r\n[^\r\n]*\r\n")


def hello_masked(raw: bytes) -> Any:
    """HELLO: the client id and the server version differ; mask only those values."""
    raw = _HELLO_ID.sub(rb"\1<ID>", raw)
    return _HELLO_VERSION.sub(rb"\1<VERSION>", raw)


def config_keys(raw: bytes) -> Any:
    """CONFIG GET: values such as port and dir differ, so compare the reply type
    and the sorted parameter names only (RESP2 flat array or RESP3 map)."""
    node = parse_reply(raw)
    if node[0] == "*":
        items = node[1]
        return ("*", len(items) % 2, sorted(items[0::2]))
    if node[0] == "%":
        return ("%", sorted(k for k, _ in node[1]))
    return raw


# --- the cases -----------------------------------------------------------------

CASES: list[Case] = []


def case(id: str, *steps: Any) -> None:
    CASES.append(Case(id, [C("FLUSHALL"), *steps]))


def arity(name: str, *args: str) -> None:
    """One wrong-arity command; the text names the command in lowercase."""
    case(f"arity-{name.lower()}-{len(args)}args", C(name, *args))


# PING / ECHO
case("ping", C("PING"), C("PING", "hello"), C("PING", ""), C("PING", b"\x00\xff\r\n"),
     C("ping"), C("PiNg", "x"))
case("ping-arity", C("PING", "a", "b"), C("PING", "a", "b", "c"))
case("echo", C("ECHO", "hello"), C("ECHO", ""), C("ECHO", b"a\r\nb\x00\xff"), C("echo", "x"))
case("echo-arity", C("ECHO"), C("ECHO", "a", "b"))

# GET / SET
case("get-set-basic", C("GET", "k"), C("SET", "k", "v"), C("GET", "k"), C("SET", "k", "v2"),
     C("GET", "k"), C("SET", "k", ""), C("GET", "k"), C("SET", "", "empty-key"), C("GET", ""))
case("get-set-binary", C("SET", b"k\x00\xff", b"\x00\r\n\xff$-1\r\n"), C("GET", b"k\x00\xff"),
     C("GET", b"k\x00"), C("SET", "sp ace", "a b"), C("GET", "sp ace"))
case("get-set-big-value", C("SET", "big", b"x" * 200_000), C("GET", "big"), C("STRLEN", "big"))
case("set-nx", C("SET", "k", "v", "NX"), C("SET", "k", "v2", "NX"), C("GET", "k"),
     C("set", "k2", "v", "nx"), C("GET", "k2"))
case("set-xx", C("SET", "k", "v", "XX"), C("GET", "k"), C("SET", "k", "v"),
     C("SET", "k", "v2", "XX"), C("GET", "k"), C("SET", "k", "v3", "xX"), C("GET", "k"))
case("set-get", C("SET", "k", "v", "GET"), C("GET", "k"), C("SET", "k", "v2", "GET"),
     C("GET", "k"), C("SET", "k", "v3", "get"))
case("set-nx-get", C("SET", "k", "v", "NX", "GET"), C("GET", "k"),
     C("SET", "k", "v2", "NX", "GET"), C("GET", "k"), C("SET", "k", "v2", "GET", "NX"))
case("set-xx-get", C("SET", "k", "v", "XX", "GET"), C("EXISTS", "k"), C("SET", "k", "v"),
     C("SET", "k", "v2", "XX", "GET"), C("GET", "k"), C("SET", "k", "v3", "GET", "XX"),
     C("GET", "k"))
case("set-repeated-options", C("SET", "k", "v", "NX", "NX"), C("SET", "k", "v2", "XX", "XX"),
     C("SET", "k", "v3", "GET", "GET"), C("GET", "k"))
case("set-syntax-errors", C("SET", "k", "v", "XX", "NX"), C("SET", "k", "v", "NX", "XX"),
     C("SET", "k", "v", "NX", "GET", "XX"), C("SET", "k", "v", "BADOPT"),
     C("SET", "k", "v", "NX", "BADOPT"), C("SET", "k", "v", ""), C("EXISTS", "k"))
case("get-set-arity", C("GET"), C("GET", "a", "b"), C("SET"), C("SET", "k"), C("GeT"))

# DEL / EXISTS / UNLINK / TOUCH
case("del", C("MSET", "a", "1", "b", "2", "c", "3"), C("DEL", "a", "b", "missing"),
     C("DEL", "c", "c", "c"), C("DEL", "missing"), C("EXISTS", "a", "b", "c"), C("DEL"))
case("exists", C("SET", "a", "1"), C("EXISTS", "a"), C("EXISTS", "a", "a", "a"),
     C("EXISTS", "a", "missing", "a"), C("EXISTS", "missing"), C("EXISTS"))
case("unlink", C("MSET", "a", "1", "b", "2"), C("UNLINK", "a", "b", "b", "x"),
     C("UNLINK", "a"), C("EXISTS", "a", "b"), C("UNLINK"))
case("touch", C("MSET", "a", "1", "b", "2"), C("TOUCH", "a"), C("TOUCH", "a", "a", "b", "x"),
     C("TOUCH", "x"), C("TOUCH"))

# MGET / MSET / MSETNX
case("mget", C("MSET", "a", "1", "b", ""), C("MGET", "a", "b", "missing", "a"),
     C("MGET", "missing"), C("MGET"))
case("mset", C("MSET", "a", "1", "b", "2"), C("MGET", "a", "b"), C("MSET", "a", "x", "a", "y"),
     C("GET", "a"), C("MSET", "a"), C("MSET", "a", "1", "b"), C("MSET"), C("GET", "b"))
case("msetnx", C("MSETNX", "a", "1", "b", "2"), C("MSETNX", "b", "x", "c", "3"),
     C("MGET", "a", "b", "c"), C("MSETNX", "c", "1", "c", "2"), C("GET", "c"),
     C("MSETNX", "a"), C("MSETNX", "a", "1", "b"), C("MSETNX"))

# lowercase names as twemproxy sends them, mixed case, pipelined in one write
case("lowercase-twemproxy", C("mset", "a", "1", "b", "2", "c", "3", "d", "4"),
     C("mget", "a", "b", "nokey"), C("del", "a", "b", "nokey"), C("exists", "a", "c"),
     C("MgEt", "c", "d"))
case("pipelined-one-write",
     Raw(encode_command("mset", "a", "1", "b", "2") + encode_command("mget", "a", "b", "x")
         + encode_command("del", "a", "b") + encode_command("GET", "a") * 50
         + encode_command("PING"), replies=54))

# SETNX / GETSET / GETDEL / APPEND / STRLEN
case("setnx", C("SETNX", "k", "v"), C("SETNX", "k", "v2"), C("GET", "k"),
     C("SETNX", "k"), C("SETNX", "k", "v", "x"))
case("getset", C("GETSET", "k", "v"), C("GETSET", "k", "v2"), C("GET", "k"),
     C("GETSET", "k"), C("GETSET", "k", "v", "x"))
case("getdel", C("SET", "k", "v"), C("GETDEL", "k"), C("EXISTS", "k"), C("GETDEL", "k"),
     C("GETDEL"), C("GETDEL", "a", "b"))
case("append", C("APPEND", "k", "ab"), C("APPEND", "k", "cd"), C("APPEND", "k", ""),
     C("GET", "k"), C("APPEND", "e", ""), C("EXISTS", "e"), C("GET", "e"),
     C("APPEND", "k"), C("APPEND", "k", "a", "b"))
case("strlen", C("STRLEN", "missing"), C("SET", "k", "hello"), C("STRLEN", "k"),
     C("SET", "k", b"\x00\xff"), C("STRLEN", "k"), C("STRLEN"), C("STRLEN", "a", "b"))

# INCR family
case("incr-decr", C("INCR", "n"), C("INCR", "n"), C("DECR", "n"), C("DECR", "m"),
     C("GET", "n"), C("GET", "m"), C("SET", "n", "10"), C("INCR", "n"), C("SET", "n", "-5"),
     C("DECR", "n"), C("GET", "n"))
case("incrby-decrby", C("INCRBY", "n", "5"), C("INCRBY", "n", "-7"), C("DECRBY", "n", "3"),
     C("DECRBY", "n", "-10"), C("GET", "n"), C("INCRBY", "n", "0"))
case("incr-not-integer", C("SET", "s", "abc"), C("INCR", "s"), C("DECR", "s"),
     C("INCRBY", "s", "1"), C("SET", "f", "1.5"), C("INCR", "f"), C("SET", "e", ""),
     C("INCR", "e"), C("SET", "sp", " 5"), C("INCR", "sp"), C("SET", "sp", "5 "), C("INCR", "sp"),
     C("SET", "z", "01"), C("INCR", "z"), C("SET", "p", "+1"), C("INCR", "p"),
     C("SET", "big", "9223372036854775808"), C("INCR", "big"), C("GET", "s"))
case("incrby-bad-increment", C("INCRBY", "n", "xyz"), C("INCRBY", "n", "1.5"),
     C("INCRBY", "n", ""), C("INCRBY", "n", "+1"), C("INCRBY", "n", "01"),
     C("INCRBY", "n", " 1"), C("INCRBY", "n", "9223372036854775808"),
     C("DECRBY", "n", "abc"), C("EXISTS", "n"))
case("incr-overflow", C("SET", "n", "9223372036854775807"), C("INCR", "n"), C("INCRBY", "n", "1"),
     C("GET", "n"), C("SET", "m", "-9223372036854775808"), C("DECR", "m"),
     C("DECRBY", "m", "1"), C("INCRBY", "m", "-1"), C("GET", "m"),
     C("SET", "z", "0"), C("DECRBY", "z", "-9223372036854775808"),
     C("INCRBY", "z", "-9223372036854775808"), C("GET", "z"))
case("incr-arity", C("INCR"), C("INCR", "a", "b"), C("DECR"), C("INCRBY", "a"),
     C("INCRBY", "a", "1", "2"), C("DECRBY", "a"))

# INCRBYFLOAT: Redis computes in long double and prints with %.17Lg-style trimming.
case("incrbyfloat", C("SET", "f", "10.5"), C("INCRBYFLOAT", "f", "0.1"), C("GET", "f"),
     C("INCRBYFLOAT", "g", "0.1"), C("INCRBYFLOAT", "h", "1e3"), C("INCRBYFLOAT", "h", "-5"),
     C("SET", "i", "3.0"), C("INCRBYFLOAT", "i", "0"), C("GET", "i"),
     C("SET", "j", "10"), C("INCRBYFLOAT", "j", "0.5"), C("INCRBYFLOAT", "j", "-10.5"))
case("incrbyfloat-precision", C("INCRBYFLOAT", "a", "0.1"), C("INCRBYFLOAT", "a", "0.2"),
     C("INCRBYFLOAT", "b", "1e20"), C("INCRBYFLOAT", "c", "-0.0"),
     C("INCRBYFLOAT", "d", "5.0e3"), C("INCRBYFLOAT", "e", "1.5E-3"),
     C("INCRBYFLOAT", "f", "3"), C("INCRBYFLOAT", "f", "0.14159265358979"))
case("incrbyfloat-errors", C("INCRBYFLOAT", "f", "abc"), C("INCRBYFLOAT", "f", ""),
     C("INCRBYFLOAT", "f", "1.5x"), C("INCRBYFLOAT", "f", " 1"), C("SET", "s", "abc"),
     C("INCRBYFLOAT", "s", "1"), C("INCRBYFLOAT", "g", "nan"), C("INCRBYFLOAT", "g", "inf"),
     C("INCRBYFLOAT", "g", "-inf"), C("INCRBYFLOAT", "f"), C("INCRBYFLOAT", "f", "1", "2"),
     C("EXISTS", "f", "g"))
# Beyond the range of a C double, but inside a long double's.
case("incrbyfloat-long-double-range", C("SET", "b", "1e400"), C("INCRBYFLOAT", "b", "1"),
     C("SET", "m", "1e308"), C("INCRBYFLOAT", "m", "1e308"), C("GET", "m"),
     C("INCRBYFLOAT", "s", "1e4932"), C("INCRBYFLOAT", "s", "1e4932"), C("GET", "s"))

# GETRANGE / SETRANGE
case("getrange", C("SET", "k", "Hello World"), C("GETRANGE", "k", "0", "4"),
     C("GETRANGE", "k", "-5", "-1"), C("GETRANGE", "k", "0", "-1"), C("GETRANGE", "k", "6", "100"),
     C("GETRANGE", "k", "100", "200"), C("GETRANGE", "k", "5", "3"), C("GETRANGE", "k", "-100", "2"),
     C("GETRANGE", "k", "-100", "-50"), C("GETRANGE", "k", "0", "-100"),
     C("GETRANGE", "k", "-1", "-1"), C("GETRANGE", "k", "-1", "-5"), C("GETRANGE", "k", "3", "3"),
     C("GETRANGE", "missing", "0", "-1"), C("SET", "e", ""), C("GETRANGE", "e", "0", "-1"),
     C("GETRANGE", "e", "-1", "0"))
case("getrange-errors", C("SET", "k", "abc"), C("GETRANGE", "k", "a", "1"),
     C("GETRANGE", "k", "0", "b"), C("GETRANGE", "k", "0", "99999999999999999999"),
     C("GETRANGE", "k", "0"), C("GETRANGE", "k", "0", "1", "2"))
case("setrange", C("SET", "k", "Hello World"), C("SETRANGE", "k", "6", "Redis"), C("GET", "k"),
     C("SETRANGE", "k", "20", "!"), C("GET", "k"), C("SETRANGE", "p", "3", "x"), C("GET", "p"),
     C("SETRANGE", "k", "0", ""), C("SETRANGE", "k", "100", ""), C("STRLEN", "k"),
     C("SETRANGE", "m", "0", ""), C("SETRANGE", "m", "5", ""), C("EXISTS", "m"),
     C("SETRANGE", "q", "0", "abc"), C("GET", "q"))
case("setrange-errors", C("SET", "k", "abc"), C("SETRANGE", "k", "-1", "x"),
     C("SETRANGE", "k", "abc", "x"), C("SETRANGE", "k", "536870912", "x"),
     C("SETRANGE", "k", "536870911", "xy"), C("SETRANGE", "n", "-1", ""),
     C("SETRANGE", "k", "0"), C("SETRANGE", "k", "0", "a", "b"), C("GET", "k"))

# TYPE / DBSIZE / FLUSHDB / FLUSHALL
case("type", C("SET", "k", "v"), C("TYPE", "k"), C("TYPE", "missing"), C("TYPE"),
     C("TYPE", "a", "b"))
case("dbsize", C("DBSIZE"), C("MSET", "a", "1", "b", "2"), C("DBSIZE"), C("DEL", "a"),
     C("DBSIZE"), C("DBSIZE", "x"))
case("flushdb", C("MSET", "a", "1", "b", "2"), C("FLUSHDB"), C("DBSIZE"), C("SET", "a", "1"),
     C("FLUSHDB", "ASYNC"), C("DBSIZE"), C("SET", "a", "1"), C("FLUSHDB", "sync"), C("DBSIZE"),
     C("FLUSHDB", "BAD"), C("FLUSHDB", "ASYNC", "SYNC"))
case("flushall", C("MSET", "a", "1", "b", "2"), C("FLUSHALL"), C("DBSIZE"), C("SET", "a", "1"),
     C("FLUSHALL", "ASYNC"), C("DBSIZE"), C("FLUSHALL", "SYNC"), C("FLUSHALL", "BAD"),
     C("FLUSHALL", "SYNC", "ASYNC"))

# KEYS: reply order follows the hash table, so compare sorted (sorted_keys).
KEY_SET = ["a", "b", "ab", "abc", "a*", "a?", "a\\b", "h[e]llo", "hello", "hallo", "hxllo",
           "hllo", "heeello", "foo:1", "foo:2", "foo:10", "bar", "A", "Z", "-", "]", "^"]


def keys_case(id: str, *patterns: str) -> None:
    mset: list[str] = []
    for k in KEY_SET:
        mset += [k, "v"]
    case(id, C("MSET", *mset), *(C("KEYS", p, norm=sorted_keys) for p in patterns))


keys_case("keys-star-question", "*", "a*", "*b*", "?", "??", "h?llo", "h*llo", "*o", "A*",
          "nomatch*", "", "foo:*", "foo:?")
keys_case("keys-brackets", "h[ae]llo", "h[^e]llo", "h[a-f]llo", "h[a-z]llo", "[ab]", "[^ab]",
          "h[z-a]llo", "foo:[0-9]", "foo:[^1]*", "h[!e]llo", "[a-]", "[]]", "[^]")
keys_case("keys-escapes", "a\\*", "a\\?", "h\\[e\\]llo", "a\\\\b", "\\a", "h\\ello", "a\\")
keys_case("keys-edge-patterns", "h[ello", "[", "[^", "*[", "a[", "\\", "**", "*?*", "[[]",
          "[\\]]", "h[e-]llo")
case("keys-empty-db", C("KEYS", "*"), C("KEYS"), C("KEYS", "a", "b"))

# SCAN: iterate to completion, compare the sorted key set (ScanAll).
SCAN_KEYS: list[str] = []
for i in range(120):
    SCAN_KEYS += [f"key:{i}", "v"]
for i in range(30):
    SCAN_KEYS += [f"other:{i}", "v"]
case("scan-empty-db", C("SCAN", "0"), ScanAll(), ScanAll(("MATCH", "*")))
case("scan", C("MSET", *SCAN_KEYS), ScanAll(), ScanAll(("COUNT", "5")),
     ScanAll(("MATCH", "key:1*")), ScanAll(("MATCH", "other:*", "COUNT", "1000")),
     ScanAll(("count", "1", "match", "key:?")), ScanAll(("MATCH", "nomatch*")),
     ScanAll(("COUNT", "3", "COUNT", "100")))
case("scan-errors", C("SET", "k", "v"), C("SCAN", "abc"), C("SCAN", "1x"), C("SCAN", " 1"),
     C("SCAN", ""), C("SCAN", "18446744073709551616"), C("SCAN", "0", "COUNT", "0"),
     C("SCAN", "0", "COUNT", "-1"), C("SCAN", "0", "COUNT", "abc"), C("SCAN", "0", "COUNT"),
     C("SCAN", "0", "MATCH"), C("SCAN", "0", "FOO", "bar"), C("SCAN", "0", "FOO"),
     C("SCAN", "abc", "COUNT", "abc"), C("SCAN"))

# RENAME / RENAMENX / RANDOMKEY
case("rename", C("RENAME", "missing", "x"), C("SET", "a", "1"), C("RENAME", "a", "b"),
     C("MGET", "a", "b"), C("RENAME", "b", "b"), C("GET", "b"), C("SET", "c", "2"),
     C("RENAME", "b", "c"), C("MGET", "b", "c"), C("DBSIZE"), C("RENAME", "a"),
     C("RENAME", "a", "b", "c"))
case("renamenx", C("RENAMENX", "missing", "x"), C("MSET", "a", "1", "b", "2"),
     C("RENAMENX", "a", "b"), C("MGET", "a", "b"), C("RENAMENX", "a", "c"), C("MGET", "a", "c"),
     C("RENAMENX", "c", "c"), C("RENAMENX", "missing", "missing"), C("RENAMENX", "a"))
case("randomkey", C("RANDOMKEY"), C("SET", "only", "v"), C("RANDOMKEY"), C("RANDOMKEY"),
     C("MSET", "a", "1", "b", "2"), C("RANDOMKEY", norm=one_of("only", "a", "b")),
     C("FLUSHDB"), C("RANDOMKEY"), C("RANDOMKEY", "x"))

# SELECT
case("select", C("SELECT", "0"), C("SET", "k", "db0"), C("SELECT", "1"), C("GET", "k"),
     C("SET", "k", "db1"), C("DBSIZE"), C("SELECT", "0"), C("GET", "k"), C("SELECT", "1"),
     C("FLUSHDB"), C("SELECT", "0"), C("GET", "k"), C("SELECT", "15"), C("DBSIZE"))
case("select-flushall-all-dbs", C("SELECT", "1"), C("SET", "k", "v"), C("SELECT", "0"),
     C("FLUSHALL"), C("SELECT", "1"), C("DBSIZE"))
case("select-errors", C("SELECT", "abc"), C("SELECT", "16"), C("SELECT", "-1"),
     C("SELECT", "1.5"), C("SELECT", ""), C("SELECT", "99999999999999999999"), C("SELECT"),
     C("SELECT", "0", "1"))

# Unknown commands, truncation rules of WIRE.md section 5
case("unknown-command", C("FOO", "a", "b"), C("FOO"), C("fOo", "Bar"),
     C("FOO", "a b", "c'd"), C("FOO", b"a\r\nb"), C("FOO", b"a\nb\rc"), C(""),
     C("", "x"), C("GET-", "x"))
case("unknown-command-truncation", C("FOO", *["y" * 30] * 6), C("X" * 200, "a"),
     C("FOO", "z" * 200), C("FOO", "a" * 127, "b"), C("FOO", "a" * 128, "b"),
     C("FOO", "a" * 126, "bcd", "e"), C("FOO", *["w"] * 100))
case("unknown-command-inline", Raw(b"FOO a b c d e f\r\n"), Raw(b'FOO "a\\r\\nb"\r\n'),
     Raw(b"fOo\r\n"))

# Wrong arity texts: one case per command.
for _name, _args in [
    ("GET", ()), ("GET", ("a", "b")), ("SET", ("k",)), ("DEL", ()), ("EXISTS", ()),
    ("MGET", ()), ("MSET", ("a",)), ("MSET", ("a", "1", "b")), ("SETNX", ("k",)),
    ("GETSET", ("k",)), ("GETDEL", ()), ("APPEND", ("k",)), ("STRLEN", ()), ("INCR", ()),
    ("DECR", ()), ("INCRBY", ("k",)), ("DECRBY", ("k",)), ("INCRBYFLOAT", ("k",)),
    ("GETRANGE", ("k", "0")), ("SETRANGE", ("k", "0")), ("MSETNX", ("a",)), ("TYPE", ()),
    ("DBSIZE", ("x",)), ("KEYS", ()), ("SCAN", ()), ("RENAME", ("a",)), ("RENAMENX", ("a",)),
    ("UNLINK", ()), ("TOUCH", ()), ("RANDOMKEY", ("x",)), ("SELECT", ()), ("ECHO", ()),
    ("PING", ("a", "b")), ("MULTI", ("x",)), ("EXEC", ("x",)), ("DISCARD", ("x",)),
    ("CONFIG", ()), ("mGeT", ()),
]:
    arity(_name, *_args)

# MULTI / EXEC / DISCARD
case("multi-exec", C("MULTI"), C("SET", "a", "1"), C("INCR", "a"), C("GET", "a"),
     C("GET", "missing"), C("PING"), C("EXEC"), C("GET", "a"))
case("multi-exec-empty", C("MULTI"), C("EXEC"))
case("multi-discard", C("SET", "a", "0"), C("MULTI"), C("SET", "a", "1"), C("DISCARD"),
     C("GET", "a"), C("DISCARD"), C("EXEC"))
case("multi-nested", C("MULTI"), C("MULTI"), C("SET", "a", "1"), C("EXEC"), C("GET", "a"))
case("exec-discard-without-multi", C("EXEC"), C("DISCARD"), C("exec"))
case("multi-unknown-command-execabort", C("MULTI"), C("SET", "a", "1"), C("FOO"),
     C("SET", "b", "2"), C("EXEC"), C("EXISTS", "a", "b"), C("EXEC"))
case("multi-arity-execabort", C("MULTI"), C("GET"), C("SET", "a", "1"), C("EXEC"),
     C("EXISTS", "a"), C("MULTI"), C("SET", "a", "1"), C("EXEC"))
case("multi-error-then-discard", C("MULTI"), C("FOO"), C("DISCARD"), C("MULTI"), C("PING"),
     C("EXEC"))
case("multi-runtime-error", C("SET", "s", "abc"), C("MULTI"), C("INCR", "s"),
     C("SET", "x", "1"), C("SET", "y", "v", "XX", "NX"), C("INCRBYFLOAT", "s", "1"),
     C("RENAME", "nokey", "z"), C("GET", "x"), C("EXEC"), C("GET", "x"))
case("multi-pipelined-like-redis-py",
     Raw(encode_command("MULTI")
         + b"".join(encode_command("SET", f"k{i}", f"v{i}") for i in range(100))
         + encode_command("EXEC"), replies=102),
     C("GET", "k99"), C("DBSIZE"))
case("multi-lowercase", C("multi"), C("set", "a", "1"), C("get", "a"), C("exec"))

# CONFIG GET: port and dir values differ between the two servers (config_keys);
# save and appendonly are what redis-benchmark reads, compared byte for byte.
case("config-get-save", C("CONFIG", "GET", "save"), C("config", "get", "SAVE"))
case("config-get-appendonly", C("CONFIG", "GET", "appendonly", norm=config_keys))
case("config-get-port", C("CONFIG", "GET", "port", norm=config_keys))
case("config-get-glob", C("CONFIG", "GET", "app*", norm=config_keys))
case("config-get-several", C("CONFIG", "GET", "save", "appendonly", norm=config_keys))
case("config-get-nosuch", C("CONFIG", "GET", "nosuchparam"))
case("config-errors", C("CONFIG"), C("CONFIG", "GET"), C("CONFIG", "FOO"))
# client bytes echoed inside an error stay on one line (CR/LF become spaces), as Redis does
case("errors-quote-crlf-on-one-line", C("CONFIG", "SET", "a\r\nb", "x"), C("HELLO", "3", "x\r\n:1"),
     C("FOO\r\nBAR", "a\nb"), C("CLIENT", "NO\r\nSUCH"))
case("config-redis-benchmark-startup",
     Raw(encode_command("CONFIG", "GET", "save") + encode_command("CONFIG", "GET", "appendonly"),
         replies=2, norm=config_keys))

# COMMAND COUNT: kvred implements fewer commands than Redis; only the type matters.
case("command-count", C("COMMAND", "COUNT", norm=integer))

# QUIT
case("quit", C("SET", "k", "v"), C("QUIT"), Closed())
case("quit-with-arg", C("QUIT", "x"), Closed())
case("quit-pipelined", Raw(encode_command("PING") + encode_command("QUIT")
                           + encode_command("PING")), RawClose(b""))

# HELLO: the id and version fields differ (hello_masked).
case("hello-2", C("HELLO", "2", norm=hello_masked), C("GET", "missing"))
case("hello-no-version", C("HELLO", norm=hello_masked))
case("hello-3", C("HELLO", "3", norm=hello_masked), C("HELLO", norm=hello_masked),
     C("HELLO", "2", norm=hello_masked), C("GET", "missing"))
case("hello-errors", C("HELLO", "4"), C("HELLO", "1"), C("HELLO", "0"), C("HELLO", "abc"),
     C("HELLO", "-1"), C("HELLO", "3", "FOO"), C("GET", "missing"))

# RESP3 reply types after HELLO 3 (WIRE.md section 6)
case("resp3-nulls", C("HELLO", "3", norm=hello_masked), C("GET", "missing"),
     C("SET", "k", "v"), C("MGET", "k", "missing"), C("SET", "k", "v2", "NX"),
     C("SET", "k", "v2", "NX", "GET"), C("SET", "n", "v", "XX"), C("SET", "n", "v", "GET"),
     C("GETDEL", "missing"), C("GETSET", "missing2", "x"), C("GETRANGE", "missing", "0", "1"))
case("resp3-other-replies", C("HELLO", "3", norm=hello_masked), C("PING"), C("PING", "x"),
     C("ECHO", "x"), C("SET", "k", "1"), C("INCR", "k"), C("INCRBYFLOAT", "k", "0.5"),
     C("EXISTS", "k"), C("TYPE", "k"), C("DBSIZE"), C("APPEND", "k", "x"), C("INCR", "k"),
     C("FOO", "bar"), C("GET"), C("KEYS", "*"), C("SCAN", "0"), C("RANDOMKEY"))
case("resp3-empty-db", C("HELLO", "3", norm=hello_masked), C("RANDOMKEY"), C("KEYS", "*"),
     C("SCAN", "0"), C("MGET", "a", "b"))
case("resp3-multi", C("HELLO", "3", norm=hello_masked), C("MULTI"), C("GET", "missing"),
     C("SET", "k", "v"), C("SET", "k", "v", "NX"), C("EXEC"), C("EXEC"))
case("resp3-config-get", C("HELLO", "3", norm=hello_masked), C("CONFIG", "GET", "save"),
     C("CONFIG", "GET", "appendonly", norm=config_keys), C("CONFIG", "GET", "nosuch"))
case("resp3-back-to-resp2", C("HELLO", "3", norm=hello_masked),
     C("HELLO", "2", norm=hello_masked), C("GET", "missing"), C("CONFIG", "GET", "save"))

# Inline commands and empty lines (WIRE.md section 5). A "no reply" is proven by
# the next reply being the PING's +PONG.
case("inline-basic", Raw(b"PING\r\n"), Raw(b"PING\n"), Raw(b"ECHO hello\r\n"),
     Raw(b"SET k v\r\nGET k\r\n", replies=2), Raw(b"  GET   k  \r\n"), Raw(b"get k\n"))
case("inline-empty-lines", Raw(b"\r\nPING\r\n"), Raw(b"\nPING\r\n"), Raw(b"   \r\nPING\r\n"),
     Raw(b"\r\n\r\nPING\r\n"), Raw(b"\t\r\nPING\r\n"))
case("inline-quotes", Raw(b"SET \"a b\" 'c d'\r\n"), Raw(b"GET \"a b\"\r\n"),
     Raw(b'ECHO "x\\x41\\n\\t\\"y"\r\n'), Raw(b"ECHO 'it\\'s'\r\n"), Raw(b'ECHO ""\r\n'),
     Raw(b"ECHO ''\r\n"), Raw(b'ECHO "\\\\"\r\n'), Raw(b"ECHO 'a\\nb'\r\n"))
case("inline-dollar-is-a-command", Raw(b"$x\r\n"), Raw(b"+PING\r\n"))
case("inline-unbalanced-quotes", Raw(b"PING\r\n"), RawClose(b'SET "a b\r\nPING\r\n'))
case("inline-unbalanced-single-quote", RawClose(b"ECHO 'abc\r\n"))
case("inline-quote-not-followed-by-space", RawClose(b'ECHO "foo"bar\r\n'))
case("inline-too-big", RawClose(b"a" * 70_000))

# Multibulk protocol errors: reply, then close (WIRE.md section 5).
case("proto-invalid-multibulk-length-abc", RawClose(b"*abc\r\n"))
case("proto-invalid-multibulk-length-empty", RawClose(b"*\r\n"))
case("proto-invalid-multibulk-length-leading-zero", RawClose(b"*01\r\n"))
case("proto-invalid-multibulk-length-int-max", RawClose(b"*2147483648\r\n"))
case("proto-expected-dollar", RawClose(b"*2\r\n$3\r\nGET\r\ngarbage\r\n"))
case("proto-expected-dollar-first-arg", RawClose(b"*1\r\n:1\r\n"))
case("proto-bulk-length-huge", RawClose(b"*2\r\n$3\r\nGET\r\n$999999999999\r\n"))
case("proto-bulk-length-over-limit", RawClose(b"*2\r\n$3\r\nGET\r\n$536870913\r\n"))
case("proto-bulk-length-minus-one", RawClose(b"*2\r\n$3\r\nGET\r\n$-1\r\n"))
case("proto-bulk-length-abc", RawClose(b"*2\r\n$3\r\nGET\r\n$abc\r\n"))
case("proto-bulk-length-empty", RawClose(b"*2\r\n$3\r\nGET\r\n$\r\n"))
case("proto-bulk-length-plus", RawClose(b"*2\r\n$3\r\nGET\r\n$+4\r\n"))
case("proto-too-big-mbulk-count", RawClose(b"*" + b"1" * 70_000))
case("proto-earlier-commands-answered-first",
     RawClose(b"PING\r\nPING\r\n*abc\r\n*1\r\n$4\r\nPING\r\n"))
case("proto-later-commands-not-executed",
     RawClose(encode_command("SET", "x", "1") + b"*2\r\n$3\r\nGET\r\nzz\r\n"
              + encode_command("SET", "y", "2")),
     Reconnect(), C("EXISTS", "x"), C("EXISTS", "y"))
case("proto-incomplete-line-then-crlf", Silent(b"*2\r\n$3\r\nGET\r\nx"), RawClose(b"\r\n"))
case("proto-lf-only-multibulk", Silent(b"*1\n$4\nPING\n"), RawClose(b"\r\n"))
case("proto-zero-and-negative-counts-ignored", Raw(b"*0\r\nPING\r\n"),
     Raw(b"*-1\r\nPING\r\n"), Raw(b"*-5\r\n*1\r\n$4\r\nPING\r\n"), Raw(b"*0\r\n*0\r\n*1\r\n$4\r\nPING\r\n"))
case("proto-bulk-trailing-bytes-unchecked", Raw(b"*1\r\n$4\r\nPINGxx"), Raw(b"PING\r\n"))
case("proto-bulk-extra-bytes", Raw(b"*2\r\n$4\r\nECHO\r\n$2\r\nabc\r\n"), Raw(b"PING\r\n"))
case("proto-split-across-writes", Silent(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhel"),
     Raw(b"lo\r\n"), C("GET", "k"))
case("proto-bulk-at-limit-waits", Silent(b"*2\r\n$3\r\nGET\r\n$536870912\r\n"))
case("proto-large-count-waits", Silent(b"*1048577\r\n"))


# Arguments that once gave "-ERR internal error" (Python's int-string digit limit) or
# answered in another order than Redis checks them.
_DIGITS_4400 = "9" * 4400
case("huge-exponents-incrbyfloat", C("INCRBYFLOAT", "f", "1e" + _DIGITS_4400),
     C("INCRBYFLOAT", "f", "1e-" + _DIGITS_4400), C("INCRBYFLOAT", "f", "1e+" + _DIGITS_4400),
     C("INCRBYFLOAT", "f", "0x1p" + _DIGITS_4400), C("INCRBYFLOAT", "f", "0x1p-" + _DIGITS_4400),
     C("INCRBYFLOAT", "f", "1.5e00000000000000000000000000000000001"), C("GET", "f"),
     C("INCRBYFLOAT", "z", "0e" + _DIGITS_4400), C("GET", "z"))
case("scan-cursor-edges", C("SET", "k", "v"), C("SCAN", _DIGITS_4400), C("SCAN", "18446744073709551616"),
     C("SCAN", "00000000000000000000000000000000"), C("SCAN", b"\x00"), C("SCAN", b"0\x00junk"),
     C("SCAN", " 0"), C("SCAN", "0 "), C("SCAN", "-"), C("SCAN", "+0"))
case("select-ranges", C("SELECT", "9223372036854775807"), C("SELECT", "2147483648"),
     C("SELECT", "-2147483649"), C("SELECT", "9223372036854775808"), C("SELECT", "abc"),
     C("SELECT", "-1"), C("SELECT", "0"))
case("set-options-before-values", C("SET", "k", "v", "EX", "junk", "extra"), C("SET", "k", "v", "EX", "junk"),
     C("SET", "k", "v", "PX", "0", "NX", "XX"), C("SET", "k", "v", "EX", "10", "PX", "10"),
     C("SET", "k", "v", "KEEPTTL", "EX", "1"), C("SET", "k", "v", "EX"), C("SET", "k", "v", "PERSIST"),
     C("SET", "k", "v", "EX", "0"), C("SET", "k", "v", "PXAT", "-5"), C("SET", "k", "v", "EX", "9223372036854775"),
     C("EXISTS", "k"), C("SET", "k", "v", b"NX\x00junk"), C("GET", "k"))


# --- the test ------------------------------------------------------------------


class Servers:
    """The oracle and kvred. A kvred that dies during a case (which that case
    reports) is restarted before the next one, so one crash does not fail
    every later case; the crashes are counted and reported at the end."""

    def __init__(self, redis_server: ServerProcess, kvred: ServerProcess):
        self.redis = redis_server
        self.kvred = kvred
        self.crashes: list[str] = []

    def ensure_kvred_alive(self, case_id: str) -> None:
        proc = self.kvred.proc
        if proc is not None and proc.poll() is None and answers_ping(self.kvred.port, 1.0):
            return
        code = self.kvred.stop()
        self.crashes.append(f"kvred was down (exit code {code}) after the case before "
                            f"{case_id!r}")
        self.kvred = start_kvred(self.kvred.dir)


@pytest.fixture(scope="module")
def servers(redis_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Servers]:
    pair = Servers(redis_server, start_kvred(tmp_path_factory.mktemp("kvred")))
    try:
        yield pair
    finally:
        pair.kvred.stop()


def _run_step(step: Any, ctx: Ctx) -> tuple[Any, bool]:
    """(result, ok). A timeout or an unexpected close ends the case on that side."""
    try:
        return step.run(ctx), True
    except TimeoutError as e:
        return f"<timeout after {READ_TIMEOUT_S} s: {e}>", False
    except (ConnectionError, OSError, ValueError) as e:
        return f"<{type(e).__name__}: {e}>", False


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


@pytest.mark.parametrize("seq", CASES, ids=[c.id for c in CASES])
def test_same_replies_as_redis(servers: Servers, seq: Case) -> None:
    servers.ensure_kvred_alive(seq.id)
    redis_side, kvred_side = Ctx(servers.redis), Ctx(servers.kvred)
    mismatches = []
    try:
        for index, step in enumerate(seq.steps):
            expected, redis_ok = _run_step(step, redis_side)
            assert redis_ok, f"the oracle failed at step {index} {step.label()}: {expected}"
            actual, kvred_ok = _run_step(step, kvred_side)
            if expected != actual:
                mismatches.append(f"step {index} [{step.label()}]\n"
                                  f"    redis: {_short(expected)}\n"
                                  f"    kvred: {_short(actual)}")
            if not kvred_ok:
                break
    finally:
        redis_side.close()
        kvred_side.close()
    assert not mismatches, f"{len(mismatches)} differing step(s):\n" + "\n".join(mismatches)


def test_kvred_survived_the_cases(servers: Servers) -> None:
    """Runs after the cases: no input above may crash a kvred process."""
    servers.ensure_kvred_alive("(end of module)")
    log = servers.kvred.log_path.read_text(errors="replace")
    assert not servers.crashes, "\n".join(servers.crashes) + "\n--- log tail ---\n" + log[-4000:]
    assert "Traceback" not in log, log[-4000:]
