"""Differential tests: the same bytes to redis-server 7.0 and to kvred, same replies back.

Each case is a sequence of steps run on a fresh connection to each server; it
starts with FLUSHALL so cases are independent. A step's result is the raw
reply bytes, except where a step says how it normalises a value that
legitimately differs between the two servers (ids, versions, ports, dirs, key
order of KEYS/SCAN, RANDOMKEY among several keys). Everything else must be
byte-identical. A failure lists every differing step: expected (redis) vs
actual (kvred).

The machinery (steps, normalisers, the servers fixture) is tests/differential.py; the
value types have their own files (tests/test_diff_*.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ServerProcess, against_redis, free_port, require_tool, start_kvred
from differential import (  # noqa: F401  (servers: the fixture)
    C2,
    C,
    Case,
    Cases,
    Closed,
    Cmd,
    Raw,
    RawClose,
    Reconnect,
    ScanAll,
    Servers,
    ShutdownInMulti,
    Silent,
    _compare,
    check_case,
    check_survived,
    config_keys,
    hello_masked,
    idle_time,
    info_fields,
    info_keyspace,
    int_range,
    integer,
    one_of,
    servers,
    sorted_keys,
)
from rawclient import RawClient, encode_command

# --- the cases -----------------------------------------------------------------

CASES = Cases()
case, lazy_case, arity = CASES.case, CASES.lazy_case, CASES.arity


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
# GET's reply header is looked up below 1024 bytes and formatted from there; APPEND and
# SETRANGE leave a mutable value behind
case("get-header-sizes", C("SET", "a", b"y" * 1023), C("GET", "a"), C("SET", "b", b"y" * 1024), C("GET", "b"),
     C("SET", "c", b"y" * 1025), C("GET", "c"), C("APPEND", "d", "x"), C("APPEND", "d", b"\x00y"), C("GET", "d"),
     C("SETRANGE", "e", "1020", "abcdef"), C("GET", "e"), C("APPEND", "a", "z"), C("GET", "a"))
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


# --- the keyspace (#11): TTLs, databases, OBJECT, WATCH ------------------------------
# Time-dependent replies are exact: absolute times far in the future for EXPIRETIME and
# PEXPIRETIME, relative TTLs of 100 s or more for TTL (it rounds to the same second for
# half a second), a range only for PTTL. Keys that expire: the active cycle off
# (lazy_case), a TTL of 10 ms (25 ms where a command must still meet the key alive), then
# DEBUG SLEEP 0.05.
T_2100 = "4102444800"  # 2100-01-01T00:00:00Z, in seconds
T_EARLIER, T_LATER = "4102444700", "4102444900"
MS_2100 = "4102444800123"
PTTL_100S = int_range(99_000, 100_000)

# TTL / PTTL / EXPIRETIME / PEXPIRETIME / PERSIST: -2 no key, -1 no TTL
case("ttl-family-basic", C("SET", "k", "v"), C("TTL", "k"), C("PTTL", "k"), C("EXPIRETIME", "k"),
     C("PEXPIRETIME", "k"), C("PERSIST", "k"), C("EXPIRE", "k", "100"), C("TTL", "k"),
     C("PTTL", "k", norm=PTTL_100S), C("PERSIST", "k"), C("TTL", "k"), C("PERSIST", "k"),
     C("PEXPIRE", "k", "100000"), C("TTL", "k"), C("SET", "k", "v2"), C("TTL", "k"),
     C("TTL", "missing"), C("PTTL", "missing"), C("EXPIRETIME", "missing"),
     C("PEXPIRETIME", "missing"), C("PERSIST", "missing"), C("ttl", "k"), C("pErSiSt", "k"))
case("ttl-family-absolute", C("SET", "k", "v"), C("EXPIREAT", "k", T_2100), C("EXPIRETIME", "k"),
     C("PEXPIRETIME", "k"), C("PEXPIREAT", "k", MS_2100), C("EXPIRETIME", "k"), C("PEXPIRETIME", "k"),
     C("PEXPIREAT", "k", "4102444800499"), C("EXPIRETIME", "k"),
     C("PEXPIREAT", "k", "4102444800500"), C("EXPIRETIME", "k"),
     C("PEXPIREAT", "k", "9223372036854775807"), C("EXPIRETIME", "k"), C("PEXPIRETIME", "k"),
     C("TTL", "k", norm=int_range(9223370000000000, 9223372036854776)),
     C("EXPIREAT", "k", "9223372036854775"), C("PEXPIRETIME", "k"), C("EXPIRETIME", "k"),
     C("PERSIST", "k"), C("EXPIRETIME", "k"), C("PEXPIRETIME", "k"))
case("ttl-family-relative", C("SET", "k", "v"), C("EXPIRE", "k", "100"), C("TTL", "k"),
     C("EXPIRE", "k", "1000"), C("TTL", "k"), C("PEXPIRE", "k", "100000"), C("TTL", "k"),
     C("PTTL", "k", norm=PTTL_100S), C("PEXPIRE", "k", "200400"), C("TTL", "k"),
     C("EXPIRE", "k", "9223372036854"), C("TTL", "k", norm=int_range(9223372036853, 9223372036854)))
case("ttl-family-arity", C("TTL"), C("TTL", "a", "b"), C("PTTL"), C("PTTL", "a", "b"),
     C("EXPIRETIME"), C("EXPIRETIME", "a", "b"), C("PEXPIRETIME"), C("PEXPIRETIME", "a", "b"),
     C("PERSIST"), C("PERSIST", "a", "b"), C("EXPIRE"), C("EXPIRE", "k"), C("PEXPIRE", "k"),
     C("EXPIREAT", "k"), C("PEXPIREAT", "k"), C("PEXPIREAT"))

# EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT: bad times, overflow, the past, missing keys
case("expire-not-integer", C("SET", "k", "v"), C("EXPIRE", "k", "abc"), C("EXPIRE", "k", "1.5"),
     C("EXPIRE", "k", ""), C("EXPIRE", "k", " 1"), C("EXPIRE", "k", "1 "), C("EXPIRE", "k", "+1"),
     C("EXPIRE", "k", "01"), C("EXPIRE", "k", "9223372036854775808"), C("PEXPIRE", "k", "1e3"),
     C("EXPIREAT", "k", "x"), C("PEXPIREAT", "k", "-9223372036854775809"),
     C("EXPIRE", "missing", "abc"), C("TTL", "k"))
case("expire-overflow", C("MSET", "a", "1", "b", "1", "c", "1", "d", "1"),
     C("EXPIRE", "a", "9223372036854775807"), C("EXPIRE", "a", "9223372036854776"),
     C("EXPIRE", "a", "9223372036854775"), C("EXPIRE", "a", "-9223372036854776"),
     C("EXPIRE", "a", "-9223372036854775808"), C("PEXPIRE", "a", "9223372036854775807"),
     C("PEXPIRE", "a", "9223372036854000000"), C("EXPIREAT", "a", "9223372036854776"),
     C("EXPIREAT", "a", "-9223372036854776"), C("EXPIREAT", "a", "9223372036854775807"),
     C("expire", "a", "9223372036854775807"), C("PeXpIrE", "a", "9223372036854775807"),
     C("EXPIRE", "missing", "9223372036854775807"), C("TTL", "a"),
     C("EXPIRE", "b", "-9223372036854775"), C("PEXPIRE", "c", "-9223372036854775808"),
     C("EXPIREAT", "d", "-9223372036854775"), C("EXISTS", "a", "b", "c", "d"),
     C("SET", "e", "1"), C("PEXPIREAT", "e", "-9223372036854775808"), C("EXISTS", "e"))
case("expire-past-deletes", C("MSET", "a", "1", "b", "1", "c", "1", "d", "1", "e", "1", "f", "1"),
     C("CONFIG", "RESETSTAT"), C("EXPIRE", "a", "0"), C("EXPIRE", "b", "-1"), C("PEXPIRE", "c", "-100"),
     C("EXPIREAT", "d", "1"), C("PEXPIREAT", "e", "0"), C("PEXPIREAT", "f", "1000"),
     C("EXISTS", "a", "b", "c", "d", "e", "f"), C("DBSIZE"), C("TTL", "a"),
     C("INFO", "stats", norm=info_fields("expired_keys")),
     C("EXPIRE", "a", "-1"), C("PEXPIREAT", "missing", "1"), C("EXPIREAT", "missing", T_2100),
     C("PEXPIREAT", "missing", MS_2100), C("PEXPIRE", "missing", "100"), C("EXISTS", "missing"))

# NX | XX | GT | LT: every combination on a key without and with a TTL (no TTL counts
# as an infinite one for GT and LT)
case("expire-nx-xx", C("SET", "k", "v"), C("EXPIREAT", "k", T_2100, "XX"), C("TTL", "k"),
     C("EXPIREAT", "k", T_2100, "NX"), C("EXPIRETIME", "k"), C("EXPIREAT", "k", T_LATER, "NX"),
     C("EXPIRETIME", "k"), C("EXPIREAT", "k", T_LATER, "XX"), C("EXPIRETIME", "k"),
     C("PEXPIREAT", "k", MS_2100, "xx"), C("PEXPIRETIME", "k"), C("PERSIST", "k"),
     C("EXPIRE", "k", "100", "nX"), C("TTL", "k"), C("EXPIRE", "k", "200", "NX"), C("TTL", "k"),
     C("PEXPIRE", "k", "200000", "Xx"), C("TTL", "k"), C("EXPIRE", "k", "300", "NX", "NX"),
     C("EXPIRE", "k", "300", "XX", "XX"), C("TTL", "k"), C("EXPIRE", "missing", "100", "NX"),
     C("EXPIRE", "missing", "100", "XX"), C("EXISTS", "missing"))
case("expire-gt-lt", C("SET", "k", "v"), C("EXPIREAT", "k", T_2100, "GT"), C("TTL", "k"),
     C("EXPIREAT", "k", T_2100, "LT"), C("EXPIRETIME", "k"), C("EXPIREAT", "k", T_LATER, "LT"),
     C("EXPIREAT", "k", T_2100, "LT"), C("EXPIREAT", "k", T_EARLIER, "lt"), C("EXPIRETIME", "k"),
     C("EXPIREAT", "k", T_EARLIER, "GT"), C("EXPIREAT", "k", T_2100, "gt"), C("EXPIRETIME", "k"),
     C("EXPIREAT", "k", T_EARLIER, "GT"), C("EXPIRETIME", "k"),
     C("PEXPIREAT", "k", MS_2100, "GT", "GT"), C("PEXPIRETIME", "k"),
     C("PEXPIREAT", "k", "4102444800000", "LT", "LT"), C("PEXPIRETIME", "k"),
     C("EXPIRE", "k", "100", "LT"), C("TTL", "k"), C("EXPIRE", "k", "200", "LT"),
     C("EXPIRE", "k", "200", "GT"), C("TTL", "k"), C("PEXPIRE", "k", "150000", "GT"), C("TTL", "k"),
     C("EXPIRE", "k", "-1", "GT"), C("EXISTS", "k"), C("EXPIRE", "k", "-1", "LT"), C("EXISTS", "k"),
     C("EXPIRE", "missing", "100", "GT"), C("EXPIRE", "missing", "100", "LT"))
case("expire-xx-with-gt-lt", C("SET", "k", "v"), C("EXPIREAT", "k", T_2100, "XX", "GT"),
     C("EXPIREAT", "k", T_2100, "XX", "LT"), C("EXPIREAT", "k", T_2100, "LT", "XX"), C("TTL", "k"),
     C("EXPIREAT", "k", T_2100), C("EXPIREAT", "k", T_LATER, "XX", "GT"), C("EXPIRETIME", "k"),
     C("EXPIREAT", "k", T_2100, "GT", "XX"), C("EXPIREAT", "k", T_EARLIER, "XX", "LT"),
     C("EXPIRETIME", "k"), C("EXPIREAT", "k", T_LATER, "XX", "LT"), C("EXPIRETIME", "k"),
     C("SET", "k", "v"), C("EXPIRE", "k", "-1", "XX", "LT"), C("EXISTS", "k"))
case("expire-options-incompatible", C("SET", "k", "v"), C("EXPIRE", "k", "100", "NX", "XX"),
     C("EXPIRE", "k", "100", "XX", "NX"), C("EXPIRE", "k", "100", "NX", "GT"),
     C("EXPIRE", "k", "100", "LT", "NX"), C("EXPIRE", "k", "100", "GT", "LT"),
     C("EXPIRE", "k", "100", "lt", "gt"), C("EXPIRE", "k", "100", "XX", "GT", "LT"),
     C("EXPIRE", "k", "100", "NX", "GT", "LT"), C("PEXPIRE", "k", "100", "GT", "LT", "NX"),
     C("EXPIREAT", "k", T_2100, "NX", "NX", "XX"), C("PEXPIREAT", "k", MS_2100, "GT", "NX"),
     C("EXPIRE", "missing", "100", "NX", "XX"), C("TTL", "k"))
case("expire-options-unsupported", C("SET", "k", "v"), C("EXPIRE", "k", "100", "FOO"),
     C("EXPIRE", "k", "100", ""), C("EXPIRE", "k", "100", "NXX"), C("EXPIRE", "k", "100", "NX", "foo"),
     C("EXPIRE", "k", "100", "NX", "XX", "foo"), C("EXPIRE", "k", "100", "foo", "NX", "XX"),
     C("EXPIRE", "k", "abc", "FOO"), C("EXPIRE", "k", "abc", "NX", "XX"), C("EXPIRE", "k", "abc", "NX"),
     C("PEXPIREAT", "k", "100", "a b"), C("EXPIRE", "k", "100", b"FOO\x00BAR"),
     C("EXPIRE", "k", "100", b"NX\x00junk"), C("TTL", "k"), C("EXPIRE", "k", "100", "XX"), C("TTL", "k"),
     C("EXPIRE", "k", "100", "a\r\nb"))

# SET with a TTL: EX | PX | EXAT | PXAT | KEEPTTL, with NX | XX | GET
case("set-ttl-options", C("SET", "k", "v", "EX", "100"), C("TTL", "k"),
     C("SET", "k", "v", "PX", "100000"), C("TTL", "k"), C("PTTL", "k", norm=PTTL_100S),
     C("SET", "k", "v", "EXAT", T_2100), C("EXPIRETIME", "k"), C("SET", "k", "v", "PXAT", MS_2100),
     C("PEXPIRETIME", "k"), C("SET", "k", "v2", "KEEPTTL"), C("PEXPIRETIME", "k"), C("GET", "k"),
     C("SET", "k", "v3"), C("TTL", "k"), C("SET", "k", "v", "KEEPTTL"), C("TTL", "k"),
     C("SET", "n", "v", "keepttl"), C("TTL", "n"), C("set", "k", "v", "ex", "100"), C("TTL", "k"),
     C("SET", "k", "v", "Px", "100000", "pX", "200000"), C("TTL", "k"),
     C("SET", "k", "v", "EX", "1", "EX", "100"), C("TTL", "k"),
     C("SET", "k", "v", "KEEPTTL", "KEEPTTL"), C("TTL", "k"),
     C("SET", "k", "v", "EXAT", "9223372036854775"), C("PEXPIRETIME", "k"),
     C("SET", "k", "v", "PXAT", "9223372036854775807"), C("PEXPIRETIME", "k"))
case("set-ttl-with-nx-xx-get", C("SET", "k", "v", "EX", "100", "NX"), C("TTL", "k"),
     C("SET", "k", "v2", "EX", "200", "NX"), C("TTL", "k"), C("GET", "k"),
     C("SET", "k", "v3", "XX", "PX", "200000"), C("TTL", "k"), C("GET", "k"),
     C("SET", "m", "v", "XX", "EX", "100"), C("EXISTS", "m"),
     C("SET", "k", "v4", "GET", "EXAT", T_2100), C("EXPIRETIME", "k"),
     C("SET", "k", "v5", "KEEPTTL", "XX", "GET"), C("EXPIRETIME", "k"),
     C("SET", "k", "v6", "NX", "GET", "PXAT", MS_2100), C("PEXPIRETIME", "k"),
     C("SET", "g", "v", "NX", "GET", "PXAT", MS_2100), C("PEXPIRETIME", "g"),
     C("SET", "h", "v", "XX", "GET", "EX", "100"), C("EXISTS", "h"),
     C("SET", "k", "v7", "GET", "EX", "100", "XX"), C("TTL", "k"), C("GET", "k"),
     C("SET", "k", "v8", "GET", "KEEPTTL"), C("TTL", "k"), C("SET", "k", "v9", "GET"), C("TTL", "k"))
case("set-ttl-errors", C("SET", "k", "v", "EX", "0"), C("SET", "k", "v", "EX", "-1"),
     C("SET", "k", "v", "PX", "0"), C("SET", "k", "v", "EXAT", "0"), C("SET", "k", "v", "PXAT", "-1"),
     C("SET", "k", "v", "EX", "abc"), C("SET", "k", "v", "PX", "1.5"), C("SET", "k", "v", "EX", ""),
     C("SET", "k", "v", "EX", "9223372036854775"), C("SET", "k", "v", "EX", "9223372036854776"),
     C("SET", "k", "v", "PX", "9223372036854775807"), C("SET", "k", "v", "EXAT", "9223372036854776"),
     C("SET", "k", "v", "EX", "100", "PX", "100"), C("SET", "k", "v", "EX", "100", "EXAT", T_2100),
     C("SET", "k", "v", "PXAT", MS_2100, "EXAT", T_2100), C("SET", "k", "v", "KEEPTTL", "EX", "100"),
     C("SET", "k", "v", "PX", "100", "KEEPTTL"), C("SET", "k", "v", "KEEPTTL", "PXAT", MS_2100),
     C("SET", "k", "v", "EX"), C("SET", "k", "v", "PX"), C("SET", "k", "v", "NX", "EX"),
     C("SET", "k", "v", "EX", "100", "PERSIST"), C("SET", "k", "v", "PERSIST"),
     C("SET", "k", "v", "EX", "100", "NX", "XX"), C("SET", "k", "v", "NX", "XX", "EX", "abc"),
     C("SET", "k", "v", "EX", "abc", "NX", "XX"), C("EXISTS", "k"), C("SET", "k", "v"),
     C("SET", "k", "v2", "NX", "EX", "0"), C("SET", "k", "v2", "XX", "EX", "abc"), C("GET", "k"),
     C("SET", "k", "v", "EX", "100", "GET", "FOO"), C("TTL", "k"))
case("set-past-exat", C("SET", "k", "v", "EXAT", "1"), C("GET", "k"), C("EXISTS", "k"),
     C("SET", "k", "v", "PXAT", "1"), C("TTL", "k"), C("SET", "k", "v"),
     C("SET", "k", "v2", "XX", "GET", "PXAT", "1"), C("GET", "k"), C("DBSIZE"))

# SETEX / PSETEX
case("setex-psetex", C("SETEX", "k", "100", "v"), C("TTL", "k"), C("GET", "k"),
     C("PSETEX", "k", "100000", "v2"), C("TTL", "k"), C("PTTL", "k", norm=PTTL_100S), C("GET", "k"),
     C("SET", "n", "v", "EXAT", T_2100), C("SETEX", "n", "1000", "w"), C("TTL", "n"),
     C("setex", "k", "200", "v3"), C("TTL", "k"), C("psetex", "k", "300000", "v3"), C("TTL", "k"))
case("setex-psetex-errors", C("SETEX", "k", "0", "v"), C("SETEX", "k", "-1", "v"),
     C("SETEX", "k", "abc", "v"), C("SETEX", "k", "1.5", "v"), C("SETEX", "k", "", "v"),
     C("SETEX", "k", "9223372036854775", "v"), C("SETEX", "k", "9223372036854776", "v"),
     C("PSETEX", "k", "0", "v"), C("PSETEX", "k", "-5", "v"), C("PSETEX", "k", "abc", "v"),
     C("PSETEX", "k", "9223372036854775807", "v"), C("SeTeX", "k", "0", "v"), C("PsEtEx", "k", "0", "v"),
     C("EXISTS", "k"), C("SET", "k", "old"), C("SETEX", "k", "0", "new"), C("GET", "k"), C("TTL", "k"),
     C("SETEX", "k", "100"), C("SETEX", "k"), C("SETEX", "k", "100", "v", "x"), C("PSETEX", "k", "100"),
     C("PSETEX", "k", "100", "v", "x"))

# GETEX
case("getex", C("SET", "k", "v"), C("GETEX", "k"), C("TTL", "k"), C("GETEX", "k", "EX", "100"),
     C("TTL", "k"), C("GETEX", "k", "PX", "200000"), C("TTL", "k"), C("GETEX", "k", "EXAT", T_2100),
     C("EXPIRETIME", "k"), C("GETEX", "k", "PXAT", MS_2100), C("PEXPIRETIME", "k"), C("GETEX", "k"),
     C("PEXPIRETIME", "k"), C("GETEX", "k", "PERSIST"), C("TTL", "k"), C("GETEX", "k", "PERSIST"),
     C("getex", "k", "ex", "100"), C("TTL", "k"), C("GETEX", "k", "PeRsIsT"), C("TTL", "k"),
     C("GETEX", "k", "EX", "1", "EX", "100"), C("TTL", "k"), C("GETEX", "k", "PERSIST", "PERSIST"),
     C("TTL", "k"), C("GETEX", "k", "PXAT", "9223372036854775807"), C("PEXPIRETIME", "k"))
case("getex-missing-key", C("GETEX", "missing"), C("GETEX", "missing", "EX", "0"),
     C("GETEX", "missing", "EX", "abc"), C("GETEX", "missing", "PX", "-1"),
     C("GETEX", "missing", "EXAT", "9223372036854776"), C("GETEX", "missing", "PERSIST"),
     C("GETEX", "missing", "FOO"), C("GETEX", "missing", "EX"), C("GETEX", "missing", "EX", "1", "PX", "1"),
     C("EXISTS", "missing"))
case("getex-errors", C("SET", "k", "v"), C("GETEX", "k", "EX", "0"), C("GETEX", "k", "EX", "-1"),
     C("GETEX", "k", "PX", "0"), C("GETEX", "k", "EXAT", "0"), C("GETEX", "k", "PXAT", "-1"),
     C("GETEX", "k", "EX", "abc"), C("GETEX", "k", "EX", "9223372036854775"),
     C("GETEX", "k", "EX", "9223372036854776"), C("GETEX", "k", "PX", "9223372036854775807"),
     C("GETEX", "k", "EX"), C("GETEX", "k", "EX", "100", "PX", "100"),
     C("GETEX", "k", "EX", "100", "PERSIST"), C("GETEX", "k", "PERSIST", "EXAT", T_2100),
     C("GETEX", "k", "KEEPTTL"), C("GETEX", "k", "NX"), C("GETEX", "k", "XX"), C("GETEX", "k", "GET"),
     C("GETEX", "k", "FOO"), C("GETEX", "k", "EX", "100", "FOO"), C("GETEX", "k", "EX", "abc", "PX", "1"),
     C("TTL", "k"), C("GETEX"), C("GET", "k"))
case("getex-past-absolute-deletes", C("MSET", "a", "1", "b", "2", "c", "3"),
     C("GETEX", "a", "EXAT", "1"), C("EXISTS", "a"), C("GETEX", "b", "PXAT", "1000"),
     C("EXISTS", "b"), C("GETEX", "a", "EXAT", "1"), C("SET", "c", "3", "EX", "100"),
     C("GETEX", "c", "PERSIST"), C("TTL", "c"), C("DBSIZE"))

# Keys that expire, removed lazily by whichever command meets them first. DBSIZE counts
# an expired key until something deletes it (KEYS skips it but, in Redis 7.0, leaves it).
_EXPIRING = ("a", "b", "c", "d", "e", "f", "g", "h")


def _expire_soon(*keys: str) -> list[Cmd]:
    steps = [C("MSET", *[arg for key in keys for arg in (key, "v")])]
    steps += [C("PEXPIRE", key, "10") for key in keys]
    return [*steps, C("DEBUG", "SLEEP", "0.05")]


lazy_case("lazy-expiry-reads", C("SET", "live", "v"), C("CONFIG", "RESETSTAT"), *_expire_soon(*_EXPIRING),
          C("DBSIZE"), C("GET", "a"), C("DBSIZE"), C("EXISTS", "b"), C("DBSIZE"), C("TTL", "c"),
          C("PTTL", "d"), C("EXPIRETIME", "e"), C("TYPE", "f"), C("DBSIZE"),
          C("INFO", "keyspace", norm=info_keyspace), C("KEYS", "*", norm=sorted_keys), C("DBSIZE"),
          C("KEYS", "g"), C("DBSIZE"), C("STRLEN", "g"), C("MGET", "h", "live"), C("DBSIZE"),
          C("INFO", "stats", norm=info_fields("expired_keys")), C("INFO", "keyspace", norm=info_keyspace))
lazy_case("lazy-expiry-more-reads", *_expire_soon(*_EXPIRING), C("GETRANGE", "a", "0", "-1"),
          C("OBJECT", "ENCODING", "b"), C("TOUCH", "c", "d"), C("PEXPIRETIME", "e"),
          C("GETEX", "f"), C("DBSIZE"), C("EXISTS", "g", "g"), C("DBSIZE"), C("OBJECT", "REFCOUNT", "h"),
          C("DBSIZE"))
lazy_case("lazy-expiry-writes", C("CONFIG", "RESETSTAT"), *_expire_soon(*_EXPIRING),
          C("SET", "a", "new", "KEEPTTL"), C("TTL", "a"), C("APPEND", "b", "x"), C("GET", "b"),
          C("TTL", "b"), C("INCR", "c"), C("TTL", "c"), C("SETNX", "d", "x"), C("SET", "e", "x", "XX"),
          C("EXISTS", "e"), C("SET", "e", "x", "NX", "GET"), C("GETSET", "f", "x"), C("GETDEL", "g"),
          C("SETRANGE", "h", "2", "x"), C("GET", "h"), C("DBSIZE"),
          C("INFO", "stats", norm=info_fields("expired_keys")))
lazy_case("lazy-expiry-key-commands", *_expire_soon(*_EXPIRING), C("DEL", "a", "b"), C("UNLINK", "c"),
          C("EXPIRE", "d", "100"), C("PERSIST", "e"), C("RENAME", "f", "x"), C("RENAMENX", "g", "y"),
          C("MOVE", "h", "1"), C("DBSIZE"), C("SELECT", "1"), C("DBSIZE"),
          C("SELECT", "0"), *_expire_soon("p", "q"), C("COPY", "p", "z"), C("COPY", "q", "z", "DB", "2"),
          C("DBSIZE"), C("SET", "src", "v"), C("COPY", "src", "x"), C("GET", "x"))
lazy_case("lazy-expiry-destinations", C("MSET", "s1", "v", "s2", "v", "s3", "v", "s4", "v"), C("SELECT", "1"),
          *_expire_soon("s4"), C("SELECT", "0"), *_expire_soon(*_EXPIRING), C("CONFIG", "RESETSTAT"),
          C("RENAME", "s1", "a"), C("RENAMENX", "s2", "b"), C("COPY", "s3", "c"), C("MOVE", "s4", "1"),
          C("MGET", "a", "b", "c", "s4"), C("TTL", "a"), C("SELECT", "1"), C("GET", "s4"), C("SELECT", "0"),
          C("INFO", "stats", norm=info_fields("expired_keys")), C("DBSIZE"))
lazy_case("lazy-expiry-scan", C("SET", "live", "v"), *_expire_soon(*_EXPIRING), C("DBSIZE"),
          ScanAll(), C("DBSIZE"), *_expire_soon("m1", "m2"), ScanAll(("MATCH", "m*", "COUNT", "1")),
          C("DBSIZE"), *_expire_soon("t1"), ScanAll(("TYPE", "string")), C("DBSIZE"), C("KEYS", "*"))
# SCAN deletes an expired key only if it passed MATCH and TYPE; TYPE looks the key up first,
# which deletes it, so TYPE none returns the expired keys.
lazy_case("lazy-expiry-scan-filters", C("SET", "live", "v"), *_expire_soon(*_EXPIRING),
          ScanAll(("MATCH", "nomatch*")), C("DBSIZE"), ScanAll(("MATCH", "[a-c]", "COUNT", "2")), C("DBSIZE"),
          ScanAll(("MATCH", "[d-e]", "TYPE", "list")), C("DBSIZE"), ScanAll(("TYPE", "none", "MATCH", "[f-g]")),
          C("DBSIZE"), ScanAll(("TYPE", "none")), C("DBSIZE"))
lazy_case("lazy-expiry-randomkey", *_expire_soon("a", "b", "c"), C("DBSIZE"), C("RANDOMKEY"),
          C("DBSIZE"), C("SET", "live", "v"), *_expire_soon("d", "e"), C("RANDOMKEY"), C("RANDOMKEY"))
lazy_case("lazy-expiry-ttl-on-set-overwrite", C("SET", "k", "v", "PX", "10"),
          C("SET", "k", "v2", "PX", "100000"), C("DEBUG", "SLEEP", "0.05"), C("GET", "k"),
          C("TTL", "k"), C("SET", "j", "v", "PX", "25"), C("SET", "j", "v2"), C("DEBUG", "SLEEP", "0.05"),
          C("GET", "j"), C("TTL", "j"), C("SET", "i", "v", "PX", "25"), C("PERSIST", "i"),
          C("DEBUG", "SLEEP", "0.05"), C("GET", "i"), C("SET", "h", "v", "PX", "25"),
          C("GETEX", "h", "PERSIST"), C("DEBUG", "SLEEP", "0.05"), C("GET", "h"),
          C("SET", "g", "5", "PX", "25"), C("INCR", "g"), C("DEBUG", "SLEEP", "0.05"), C("GET", "g"))
case("debug-arguments", C("DEBUG"), C("DEBUG", "SET-ACTIVE-EXPIRE"), C("DEBUG", "SET-ACTIVE-EXPIRE", "1", "2"),
     C("DEBUG", "SLEEP"), C("DEBUG", "sleep", "0", "1"), C("DEBUG", "SLEEP", "0"), C("DEBUG", "SLEEP", "abc"),
     C("DEBUG", "FOO"), C("debug", "foo", "bar"), C("DEBUG", "a\r\nb"), C("DEBUG", "x" * 200),
     C("DEBUG", "set-active-expire", "1"))

# COPY
case("copy", C("SET", "a", "v"), C("COPY", "a", "b"), C("GET", "b"), C("COPY", "a", "b"),
     C("SET", "a", "v2"), C("COPY", "a", "b", "REPLACE"), C("GET", "b"), C("COPY", "missing", "b"),
     C("COPY", "missing", "b", "REPLACE"), C("GET", "b"), C("COPY", "a", "a"),
     C("COPY", "a", "a", "REPLACE"), C("COPY", "a", "a", "DB", "0"), C("COPY", "a", "a", "DB", "1"),
     C("SELECT", "1"), C("GET", "a"), C("SELECT", "0"), C("COPY", "a", "c", "db", "2", "replace"),
     C("COPY", "a", "c", "DB", "2"), C("COPY", "a", "c", "REPLACE", "DB", "2"),
     C("COPY", "a", "c", "REPLACE", "REPLACE"), C("COPY", "a", "d", "DB", "3", "DB", "4"),
     C("SELECT", "4"), C("GET", "d"), C("SELECT", "3"), C("GET", "d"), C("SELECT", "2"), C("GET", "c"),
     C("SELECT", "0"), C("DBSIZE"), C("APPEND", "a", "x"), C("COPY", "a", "e"), C("APPEND", "e", "y"),
     C("MGET", "a", "e"))
case("copy-ttl", C("SET", "a", "v", "EXAT", T_2100), C("COPY", "a", "b"), C("EXPIRETIME", "b"),
     C("COPY", "a", "c", "DB", "1"), C("SELECT", "1"), C("EXPIRETIME", "c"), C("SELECT", "0"),
     C("SET", "n", "v"), C("SET", "t", "v", "PXAT", MS_2100), C("COPY", "n", "t", "REPLACE"),
     C("TTL", "t"), C("COPY", "a", "t", "REPLACE"), C("PEXPIRETIME", "t"))
case("copy-errors", C("SET", "a", "v"), C("COPY", "a", "b", "DB", "16"), C("COPY", "a", "b", "DB", "-1"),
     C("COPY", "a", "b", "DB", "abc"), C("COPY", "a", "b", "DB", "1.5"), C("COPY", "a", "b", "DB", ""),
     C("COPY", "a", "b", "DB", "9223372036854775808"), C("COPY", "a", "b", "DB", "2147483648"),
     C("COPY", "a", "b", "DB"), C("COPY", "a", "b", "FOO"), C("COPY", "a", "b", "REPLACE", "FOO"),
     C("COPY", "a", "b", "DB", "16", "FOO"), C("COPY", "a", "b", "FOO", "DB", "16"),
     C("COPY", "missing", "b", "DB", "16"), C("COPY", "a", "a", "DB", "16"),
     C("COPY", "a", "a", "FOO"), C("COPY", "a"), C("COPY"), C("EXISTS", "b"))

# RENAME / RENAMENX / MOVE carry the TTL
case("rename-ttl", C("SET", "a", "v", "EXAT", T_2100), C("RENAME", "a", "b"), C("EXPIRETIME", "b"),
     C("EXISTS", "a"), C("SET", "c", "v", "PXAT", MS_2100), C("RENAME", "b", "c"),
     C("EXPIRETIME", "c"), C("SET", "n", "v"), C("RENAME", "n", "c"), C("TTL", "c"),
     C("SET", "d", "v", "EX", "100"), C("RENAME", "d", "d"), C("TTL", "d"),
     C("RENAMENX", "d", "e"), C("TTL", "e"), C("SET", "f", "v", "PXAT", MS_2100),
     C("RENAMENX", "f", "e"), C("PEXPIRETIME", "f"), C("TTL", "e"), C("RENAMENX", "f", "g"),
     C("PEXPIRETIME", "g"))
case("move", C("SET", "a", "v"), C("MOVE", "a", "1"), C("EXISTS", "a"), C("SELECT", "1"),
     C("GET", "a"), C("MOVE", "a", "1"), C("MOVE", "a", "0"), C("SELECT", "0"), C("GET", "a"),
     C("SET", "b", "v0"), C("SELECT", "2"), C("SET", "b", "v2"), C("MOVE", "b", "0"), C("GET", "b"),
     C("SELECT", "0"), C("GET", "b"), C("MOVE", "missing", "1"), C("MOVE", "b", "15"),
     C("SELECT", "15"), C("GET", "b"), C("move", "b", "3"))
case("move-ttl", C("SET", "a", "v", "EXAT", T_2100), C("MOVE", "a", "1"), C("SELECT", "1"),
     C("EXPIRETIME", "a"), C("SET", "b", "v"), C("MOVE", "b", "0"), C("SELECT", "0"), C("TTL", "b"),
     C("INFO", "keyspace", norm=info_keyspace))
case("move-errors", C("SET", "a", "v"), C("MOVE", "a", "0"), C("MOVE", "missing", "0"),
     C("MOVE", "a", "16"), C("MOVE", "a", "-1"), C("MOVE", "a", "abc"), C("MOVE", "a", ""),
     C("MOVE", "a", "1.5"), C("MOVE", "a", "2147483648"), C("MOVE", "a", "-2147483649"),
     C("MOVE", "a", "9223372036854775808"), C("MOVE", "missing", "16"), C("MOVE", "a"),
     C("MOVE", "a", "1", "2"), C("MOVE"), C("GET", "a"))

# SELECT / SWAPDB / FLUSHDB / FLUSHALL / DBSIZE / RANDOMKEY / TOUCH / TYPE
case("select-more", C("SELECT", "15"), C("SELECT", "16"), C("SELECT", " 1"), C("SELECT", "1 "),
     C("SELECT", "+1"), C("SELECT", "01"), C("SELECT", "0x1"), C("SELECT", "-0"), C("SELECT", "1e1"),
     C("select", "2"), C("SET", "k", "2"), C("SELECT", "3"), C("GET", "k"), C("SELECT", "2"), C("GET", "k"),
     Reconnect(), C("GET", "k"))
case("select-in-multi", C("MULTI"), C("SELECT", "1"), C("SET", "k", "db1"), C("SELECT", "16"),
     C("SET", "j", "v"), C("EXEC"), C("GET", "k"), C("GET", "j"), C("SELECT", "0"), C("GET", "k"))
case("swapdb", C("SET", "a", "db0"), C("SELECT", "1"), C("SET", "a", "db1"), C("SET", "b", "v", "EXAT", T_2100),
     C("SWAPDB", "0", "1"), C("GET", "a"), C("GET", "b"), C("DBSIZE"), C("SELECT", "0"), C("GET", "a"),
     C("EXPIRETIME", "b"), C("DBSIZE"), C("SWAPDB", "1", "0"), C("GET", "a"), C("SWAPDB", "0", "0"),
     C("GET", "a"), C("SWAPDB", "0", "15"), C("DBSIZE"), C("SELECT", "15"), C("DBSIZE"),
     C("INFO", "keyspace", norm=info_keyspace))
case("swapdb-errors", C("SWAPDB", "0", "16"), C("SWAPDB", "16", "0"), C("SWAPDB", "-1", "0"),
     C("SWAPDB", "0", "-1"), C("SWAPDB", "abc", "0"), C("SWAPDB", "0", "abc"), C("SWAPDB", "abc", "abc"),
     C("SWAPDB", "", "1"), C("SWAPDB", "1.5", "1"), C("SWAPDB", "2147483648", "0"),
     C("SWAPDB", "0", "2147483648"), C("SWAPDB", "16", "abc"), C("SWAPDB", "16", "16"),
     C("SWAPDB", "9223372036854775808", "0"), C("SWAPDB", "0"), C("SWAPDB", "0", "1", "2"), C("SWAPDB"),
     C("swapdb", "1", "1"))
case("flush-databases", C("SET", "a", "v", "EX", "100"), C("SELECT", "1"), C("SET", "b", "v"),
     C("SELECT", "2"), C("SET", "c", "v"), C("SELECT", "1"), C("FLUSHDB"), C("DBSIZE"), C("SELECT", "0"),
     C("DBSIZE"), C("TTL", "a"), C("INFO", "keyspace", norm=info_keyspace), C("FLUSHDB", "async"),
     C("SELECT", "2"), C("DBSIZE"), C("FLUSHALL", "Sync"), C("DBSIZE"), C("SET", "d", "v"),
     C("FLUSHALL", "aSyNc"), C("INFO", "keyspace", norm=info_keyspace), C("FLUSHDB", "ASYNC", "ASYNC"),
     C("FLUSHDB", "SYNC", "x"), C("FLUSHALL", "x"), C("FLUSHALL", ""), C("FLUSHDB", "async", "sync"))
case("dbsize-per-database", C("MSET", "a", "1", "b", "2"), C("SELECT", "1"), C("DBSIZE"), C("SET", "a", "1"),
     C("DBSIZE"), C("SELECT", "2"), C("SET", "x", "1", "EX", "100"), C("DBSIZE"), C("SELECT", "0"),
     C("DBSIZE"), C("INFO", "keyspace", norm=info_keyspace), C("SELECT", "15"), C("DBSIZE"))
case("randomkey-databases", C("SET", "only", "v"), C("RANDOMKEY"), C("SELECT", "1"), C("RANDOMKEY"),
     C("SET", "other", "v", "EX", "100"), C("RANDOMKEY"), C("SELECT", "0"), C("RANDOMKEY"))
case("touch-type", C("SET", "s", "v"), C("SET", "i", "123"), C("SET", "t", "v", "EX", "100"),
     C("TOUCH", "s", "i", "t", "missing"), C("TYPE", "s"), C("TYPE", "i"), C("TYPE", "t"),
     C("TYPE", "missing"), C("type", "s"), C("APPEND", "s", "x"), C("TYPE", "s"), C("SELECT", "1"),
     C("TOUCH", "s"), C("TYPE", "s"))

# OBJECT ENCODING | REFCOUNT | IDLETIME | FREQ | HELP. Left out because kvred cannot tell
# how a value was stored: MSET and INCRBYFLOAT (Redis does not int-encode their values),
# and the REFCOUNT of a COPY of a small integer (Redis's copy is not the shared object).
_ENCODING_VALUES = ["0", "1", "9999", "10000", "-1", "12345678901234567890", "9223372036854775807",
                    "-9223372036854775808", "9223372036854775808", "18446744073709551615", "01", "+1",
                    " 1", "1 ", "-0", "1.5", "", "a", "x" * 44, "x" * 45, "1" * 21, b"\x00\xff"]


def _encoding_steps(value: str | bytes) -> list[Cmd]:
    return [C("SET", "k", value), C("OBJECT", "ENCODING", "k"), C("OBJECT", "REFCOUNT", "k")]


case("object-encoding-set", *[step for value in _ENCODING_VALUES for step in _encoding_steps(value)])
case("object-encoding-other-setters", C("SETNX", "a", "123"), C("OBJECT", "ENCODING", "a"),
     C("GETSET", "b", "5"), C("GETSET", "b", "123456"), C("OBJECT", "ENCODING", "b"),
     C("OBJECT", "REFCOUNT", "b"), C("SETEX", "c", "100", "42"), C("OBJECT", "ENCODING", "c"),
     C("PSETEX", "d", "100000", "x" * 45), C("OBJECT", "ENCODING", "d"),
     C("SET", "e", "77", "EX", "100"), C("OBJECT", "ENCODING", "e"), C("OBJECT", "REFCOUNT", "e"),
     C("SET", "f", "hello", "GET"), C("OBJECT", "ENCODING", "f"), C("COPY", "e", "g"),
     C("OBJECT", "ENCODING", "g"), C("RENAME", "f", "h"), C("OBJECT", "ENCODING", "h"))
case("object-encoding-after-changes", C("SET", "k", "123"), C("APPEND", "k", ""), C("OBJECT", "ENCODING", "k"),
     C("OBJECT", "REFCOUNT", "k"), C("SET", "k", "abc"), C("APPEND", "k", "d"), C("OBJECT", "ENCODING", "k"),
     C("APPEND", "n", "123"), C("OBJECT", "ENCODING", "n"), C("APPEND", "m", "abc"),
     C("OBJECT", "ENCODING", "m"), C("SETRANGE", "r", "0", "12"), C("OBJECT", "ENCODING", "r"),
     C("SET", "s", "abc"), C("SETRANGE", "s", "0", "x"), C("OBJECT", "ENCODING", "s"),
     C("SET", "u", "abc"), C("SETRANGE", "u", "1", ""), C("OBJECT", "ENCODING", "u"),
     C("INCR", "i"), C("OBJECT", "ENCODING", "i"), C("OBJECT", "REFCOUNT", "i"), C("INCRBY", "i", "20000"),
     C("OBJECT", "ENCODING", "i"), C("OBJECT", "REFCOUNT", "i"), C("APPEND", "i", "1"),
     C("OBJECT", "ENCODING", "i"), C("INCR", "i"), C("OBJECT", "ENCODING", "i"), C("DECRBY", "i", "200011"),
     C("OBJECT", "ENCODING", "i"), C("OBJECT", "REFCOUNT", "i"), C("SET", "j", "9223372036854775806"),
     C("INCR", "j"), C("OBJECT", "ENCODING", "j"), C("SET", "e", "x" * 40), C("APPEND", "e", "y" * 10),
     C("OBJECT", "ENCODING", "e"), C("GETDEL", "e"), C("OBJECT", "ENCODING", "e"))
case("object-other-subcommands", C("SET", "k", "v"), C("OBJECT", "IDLETIME", "k", norm=idle_time),
     C("OBJECT", "FREQ", "k"), C("OBJECT", "REFCOUNT", "k"), C("OBJECT", "ENCODING", "missing"),
     C("OBJECT", "REFCOUNT", "missing"), C("OBJECT", "IDLETIME", "missing"), C("OBJECT", "FREQ", "missing"),
     C("object", "encoding", "k"), C("OBJECT", "EnCoDiNg", "k"), C("OBJECT", "HELP"), C("object", "help"))
# Redis rejects an unknown OBJECT subcommand or a subcommand's wrong arity when MULTI
# queues it, which aborts the transaction (the command table knows the subcommands).
case("object-errors-in-multi", C("SET", "k", "v"), C("MULTI"), C("OBJECT", "FOO"),
               C("OBJECT", "ENCODING"), C("OBJECT", "HELP", "x"), C("DEL", "k"), C("EXEC"), C("EXISTS", "k"))
case("object-errors", C("SET", "k", "v"), C("OBJECT"), C("OBJECT", "ENCODING"), C("OBJECT", "ENCODING", "k", "x"),
     C("OBJECT", "REFCOUNT"), C("OBJECT", "IDLETIME", "a", "b"), C("OBJECT", "FREQ"),
     C("OBJECT", "HELP", "x"), C("OBJECT", "FOO"), C("OBJECT", "FOO", "k"), C("OBJECT", "foo", "k", "x"),
     C("OBJECT", ""), C("OBJECT", "a\r\nb"), C("OBJECT", "y" * 200), C("object", "Bar"))

# WATCH / UNWATCH / MULTI / EXEC / DISCARD. C2 is another client: its changes fail the
# first client's EXEC with a null array.
def watch_case(id: str, *steps: Any) -> None:
    """WATCH k, the steps (a change by someone, or none), then MULTI PING EXEC."""
    case(id, C("WATCH", "k"), *steps, C("MULTI"), C("PING"), C("EXEC"), C("EXEC"))


watch_case("watch-other-client-set", C2("SET", "k", "v"))
watch_case("watch-other-client-set-same-value", C("SET", "k", "v"), C("UNWATCH"), C("WATCH", "k"),
           C2("SET", "k", "v"))
watch_case("watch-other-client-del", C2("SET", "k", "v"), C("UNWATCH"), C("WATCH", "k"), C2("DEL", "k"))
watch_case("watch-other-client-expire", C2("SET", "k", "v"), C("UNWATCH"), C("WATCH", "k"),
           C2("EXPIRE", "k", "100"))
watch_case("watch-other-client-expire-past", C2("SET", "k", "v"), C("UNWATCH"), C("WATCH", "k"),
           C2("EXPIRE", "k", "-1"))
watch_case("watch-other-client-persist-nothing", C2("SET", "k", "v"), C("UNWATCH"), C("WATCH", "k"),
           C2("PERSIST", "k"), C2("EXPIRE", "missing", "1"))
watch_case("watch-other-client-persist", C2("SET", "k", "v", "EX", "100"), C("UNWATCH"), C("WATCH", "k"),
           C2("PERSIST", "k"))
watch_case("watch-other-client-incr-append", C2("INCR", "k"))
watch_case("watch-other-client-no-change", C2("SET", "k", "v"), C("UNWATCH"), C("WATCH", "k"),
           C2("GET", "k"), C2("SET", "k", "v2", "NX"), C2("DEL", "missing"), C2("EXISTS", "k"), C2("TTL", "k"),
           C2("SETRANGE", "k", "0", ""), C2("GETEX", "k"), C2("RENAMENX", "k", "k"))
watch_case("watch-unwatched-key-changed", C2("SET", "other", "v"), C2("DEL", "other"))
watch_case("watch-own-change", C("SET", "k", "v"))
watch_case("watch-key-of-the-database-at-watch-time", C("SELECT", "1"), C2("SET", "k", "v"))
watch_case("watch-key-in-other-database-changed", C2("SELECT", "1"), C2("SET", "k", "v"))
watch_case("watch-flushdb", C2("SET", "k", "v"), C("UNWATCH"), C("WATCH", "k"), C2("FLUSHDB"))
watch_case("watch-flushdb-key-missing", C2("SET", "other", "v"), C2("FLUSHDB"))
watch_case("watch-flushdb-other-database", C2("SET", "k", "v"), C("UNWATCH"), C("WATCH", "k"),
           C2("SELECT", "1"), C2("FLUSHDB"))
watch_case("watch-flushall", C2("SET", "k", "v"), C("UNWATCH"), C("WATCH", "k"), C2("SELECT", "3"),
           C2("FLUSHALL"))
watch_case("watch-flushall-key-missing", C2("FLUSHALL"))
watch_case("watch-swapdb-key-here", C2("SET", "k", "v"), C("UNWATCH"), C("WATCH", "k"), C2("SWAPDB", "0", "1"))
watch_case("watch-swapdb-key-there", C2("SELECT", "1"), C2("SET", "k", "v"), C2("SWAPDB", "1", "0"))
watch_case("watch-swapdb-key-nowhere", C2("SELECT", "1"), C2("SET", "other", "v"), C2("SWAPDB", "1", "0"))
watch_case("watch-swapdb-other-databases", C2("SET", "k", "v"), C("UNWATCH"), C("WATCH", "k"),
           C2("SWAPDB", "1", "2"), C2("SWAPDB", "3", "3"))
watch_case("watch-rename-source", C2("SET", "k", "v"), C("UNWATCH"), C("WATCH", "k"), C2("RENAME", "k", "x"))
watch_case("watch-rename-destination", C2("SET", "src", "v"), C2("RENAME", "src", "k"))
watch_case("watch-move", C2("SET", "k", "v"), C("UNWATCH"), C("WATCH", "k"), C2("MOVE", "k", "1"))
case("watch-move-into-watched-db", C2("SET", "k", "v"), C("SELECT", "1"), C("WATCH", "k"),
     C2("MOVE", "k", "1"), C("MULTI"), C("GET", "k"), C("EXEC"))
watch_case("watch-copy-destination", C2("SET", "src", "v"), C2("COPY", "src", "k"))
watch_case("watch-copy-other-db", C2("SET", "src", "v"), C2("COPY", "src", "k", "DB", "1"))
watch_case("watch-getex-persist", C2("SET", "k", "v", "EX", "100"), C("UNWATCH"), C("WATCH", "k"),
           C2("GETEX", "k", "PERSIST"))
lazy_case("watch-expired-after-watch", C("SET", "k", "v", "PX", "25"), C("WATCH", "k"),
          C("DEBUG", "SLEEP", "0.05"), C("MULTI"), C("GET", "k"), C("EXEC"), C("EXISTS", "k"))
lazy_case("watch-expired-after-watch-deleted-by-other", C("SET", "k", "v", "PX", "25"), C("WATCH", "k"),
          C("DEBUG", "SLEEP", "0.05"), C2("GET", "k"), C("MULTI"), C("PING"), C("EXEC"))
lazy_case("watch-expired-before-watch", C("SET", "k", "v", "PX", "10"), C("DEBUG", "SLEEP", "0.05"),
          C("WATCH", "k"), C("MULTI"), C("GET", "k"), C("EXEC"), C("EXISTS", "k"))
lazy_case("watch-expired-before-watch-deleted-by-other", C("SET", "k", "v", "PX", "10"),
          C("DEBUG", "SLEEP", "0.05"), C("WATCH", "k"), C2("EXISTS", "k"), C("MULTI"), C("PING"), C("EXEC"))
lazy_case("watch-expired-before-watch-then-set", C("SET", "k", "v", "PX", "10"),
          C("DEBUG", "SLEEP", "0.05"), C("WATCH", "k"), C2("SET", "k", "new"), C("MULTI"), C("PING"),
          C("EXEC"))
lazy_case("watch-expired-before-watch-flushdb", C("SET", "k", "v", "PX", "10"), C("SET", "j", "v"),
          C("DEBUG", "SLEEP", "0.05"), C("WATCH", "k"), C2("FLUSHDB"), C("MULTI"), C("PING"), C("EXEC"))
lazy_case("watch-expired-before-watch-swapdb", C("SET", "k", "v", "PX", "10"),
          C("DEBUG", "SLEEP", "0.05"), C("WATCH", "k"), C2("SWAPDB", "0", "1"), C("MULTI"), C("PING"),
          C("EXEC"))
lazy_case("watch-expired-before-watch-swapdb-live-key", C("SET", "k", "v", "PX", "10"),
          C2("SELECT", "1"), C2("SET", "k", "live"), C("DEBUG", "SLEEP", "0.05"), C("WATCH", "k"),
          C2("SWAPDB", "0", "1"), C("MULTI"), C("GET", "k"), C("EXEC"))
lazy_case("watch-expired-before-watch-swapdb-expired-key", C("SET", "k", "v", "PX", "10"),
          C2("SELECT", "1"), C2("SET", "k", "other", "PX", "10"), C("DEBUG", "SLEEP", "0.05"),
          C("WATCH", "k"), C2("SWAPDB", "0", "1"), C("MULTI"), C("GET", "k"), C("EXEC"))
lazy_case("watch-swapdb-brings-expired-key", C2("SELECT", "1"), C2("SET", "k", "v", "PX", "10"),
          C("DEBUG", "SLEEP", "0.05"), C("WATCH", "k"), C2("SWAPDB", "0", "1"), C("MULTI"), C("PING"),
          C("EXEC"))
case("watch-inside-multi", C("MULTI"), C("WATCH", "k"), C("SET", "k", "1"), C("EXEC"), C("GET", "k"),
     C("MULTI"), C("WATCH"), C("EXEC"))
case("watch-unwatch", C("WATCH", "k"), C("UNWATCH"), C2("SET", "k", "v"), C("MULTI"), C("GET", "k"),
     C("EXEC"), C("UNWATCH"), C("UNWATCH", "x"), C("unwatch"))
case("watch-discard-unwatches", C("WATCH", "k"), C("MULTI"), C("DISCARD"), C2("SET", "k", "v"),
     C("MULTI"), C("GET", "k"), C("EXEC"))
case("watch-exec-unwatches", C("WATCH", "k"), C("MULTI"), C("EXEC"), C2("SET", "k", "v"), C("MULTI"),
     C("PING"), C("EXEC"))
case("watch-failed-exec-unwatches", C("WATCH", "k"), C2("SET", "k", "v"), C("MULTI"), C("EXEC"),
     C2("SET", "k", "v2"), C("MULTI"), C("GET", "k"), C("EXEC"))
case("watch-execabort-unwatches", C("WATCH", "k"), C("MULTI"), C("FOO"), C("EXEC"), C2("SET", "k", "v"),
     C("MULTI"), C("GET", "k"), C("EXEC"))
case("watch-reset-unwatches", C("SELECT", "2"), C("WATCH", "k"), C("RESET"), C("SELECT", "2"),
     C2("SELECT", "2"), C2("SET", "k", "v"), C("MULTI"), C("GET", "k"), C("EXEC"))
case("watch-several-keys", C("WATCH", "a", "b", "c", "a"), C2("SET", "c", "v"), C("MULTI"), C("PING"),
     C("EXEC"), C("WATCH", "a"), C("WATCH", "b"), C2("SET", "a", "v"), C("MULTI"), C("PING"), C("EXEC"))
case("watch-arity", C("WATCH"), C("UNWATCH", "a"), C("watch"))
case("reset", C("SELECT", "2"), C("SET", "k", "v"), C("MULTI"), C("SET", "j", "v"), C("RESET"), C("EXEC"),
               C("DBSIZE"), C("SELECT", "2"), C("DBSIZE"), C("RESET", "x"))
# SHUTDOWN is refused inside MULTI (no-multi); ShutdownInMulti never lets it run.
case("multi-shutdown-refused", C("SET", "k", "v"), C("MULTI"), ShutdownInMulti(), C("EXEC"),
     C("GET", "k"), C("MULTI"), ShutdownInMulti(("NOSAVE",)), C("DISCARD"), C("MULTI"),
     ShutdownInMulti(("ABORT",)), C("EXEC"), C("MULTI"), ShutdownInMulti(("bad", "args")), C("EXEC"))

# SCAN TYPE / MATCH / COUNT, KEYS on several databases
case("scan-type", C("MSET", *SCAN_KEYS[:40]), C("SET", "t", "v", "EX", "100"),
     ScanAll(("TYPE", "string")), ScanAll(("TYPE", "STRING")), ScanAll(("TYPE", "list")),
     ScanAll(("TYPE", "none")), ScanAll(("TYPE", "foo")), ScanAll(("type", "String", "COUNT", "3")),
     ScanAll(("MATCH", "key:1*", "TYPE", "string")), ScanAll(("TYPE", "list", "MATCH", "*")),
     ScanAll(("TYPE", "string", "TYPE", "list")), ScanAll(("TYPE", "list", "TYPE", "string")),
     ScanAll(("TYPE", b"string\x00junk")), C("SCAN", "0", "TYPE"), C("SCAN", "0", "TYPE", "string", "COUNT"),
     C("SCAN", "0", "TYPE", "string", "FOO", "x"))
case("scan-keys-databases", C("MSET", *SCAN_KEYS[:20]), C("SELECT", "1"), C("MSET", "x", "1", "key:0", "2"),
     ScanAll(), ScanAll(("MATCH", "key:*")), C("KEYS", "*", norm=sorted_keys), C("SELECT", "2"),
     ScanAll(), C("KEYS", "*"), C("SELECT", "0"), ScanAll(("COUNT", "1000")),
     C("KEYS", "key:?", norm=sorted_keys), C("SWAPDB", "0", "1"), C("KEYS", "*", norm=sorted_keys))

# keyspace_hits / keyspace_misses: which lookups count (reads do, writes and NOTOUCH ones do not)
_HITS = C("INFO", "stats", norm=info_fields("keyspace_hits", "keyspace_misses"))
case("keyspace-hits-misses", C("SET", "k", "v"), C("SET", "n", "5"), C("CONFIG", "RESETSTAT"), _HITS,
     C("GET", "k"), C("GET", "missing"), _HITS, C("EXISTS", "k", "missing"), C("TYPE", "k"), C("TTL", "k"),
     C("PTTL", "missing"), C("EXPIRETIME", "k"), C("OBJECT", "ENCODING", "k"), _HITS, C("TOUCH", "k", "missing"),
     C("STRLEN", "k"), C("GETRANGE", "k", "0", "1"), C("MGET", "k", "missing"), _HITS, C("COPY", "k", "c"),
     C("COPY", "missing", "c2"), C("COPY", "k", "c", "DB", "1"), _HITS, C("RENAME", "c", "d"), C("MOVE", "d", "2"),
     C("EXPIRE", "k", "100"), C("PERSIST", "k"), C("PERSIST", "missing"), _HITS, C("GETEX", "k"),
     C("GETEX", "missing", "PERSIST"), C("GETDEL", "missing"), C("GETSET", "k", "v"), C("SET", "k", "v", "GET"),
     _HITS, C("INCR", "n"), C("APPEND", "k", "x"), C("SETRANGE", "k", "0", "y"), C("SETNX", "k", "z"),
     C("SET", "k", "v", "NX"), C("SET", "k", "v", "XX"), C("MSETNX", "k", "1"), _HITS, ScanAll(("TYPE", "string")),
     C("KEYS", "*", norm=sorted_keys), C("RANDOMKEY", norm=one_of("k", "n")), C("DBSIZE"), _HITS,
     C("WATCH", "k"), C("UNWATCH"), C("DEL", "k", "missing"), _HITS)

# RESP3: nulls and the failed EXEC's null
case("resp3-keyspace", C("HELLO", "3", norm=hello_masked), C("GETEX", "missing"),
     C("GETEX", "missing", "EX", "abc"), C("OBJECT", "ENCODING", "missing"), C("OBJECT", "IDLETIME", "missing"),
     C("SET", "k", "12", "EX", "100"), C("TTL", "k"), C("OBJECT", "ENCODING", "k"), C("OBJECT", "HELP"),
     C("COPY", "k", "c", "DB", "3"), C("SELECT", "3"), C("RANDOMKEY"), C("SELECT", "4"), C("RANDOMKEY"),
     C("SCAN", "0", "TYPE", "string"), C("SELECT", "0"), C("WATCH", "k"), C2("DEL", "k"), C("MULTI"),
     C("GET", "k"), C("EXEC"), C("INFO", "keyspace", norm=info_keyspace), C("PERSIST", "c"))

# INFO keyspace and INFO stats
case("info-keyspace", C("INFO", "keyspace"), C("SET", "a", "v"), C("INFO", "keyspace"),
     C("SET", "b", "v", "EXAT", T_2100), C("SELECT", "5"), C("SET", "c", "v"),
     C("INFO", "keyspace", norm=info_keyspace), C("PERSIST", "b"), C("SELECT", "0"), C("PERSIST", "b"),
     C("INFO", "keyspace", norm=info_keyspace), C("DEL", "a", "b"), C("INFO", "KEYSPACE"))


# CLIENT REPLY: OFF drops every reply until ON (which answers), SKIP drops the next one;
# pipelined, so that a dropped reply would show as an extra one before the next
def _pipeline(*commands: tuple[str, ...]) -> bytes:
    return b"".join(encode_command(*argv) for argv in commands)


case("client-reply-off-on",
     Raw(_pipeline(("CLIENT", "REPLY", "OFF"), ("SET", "a", "1"), ("GET", "a"), ("PING",), ("INCR", "n"),
                   ("MULTI",), ("INCR", "n"), ("EXEC",), ("CLIENT", "REPLY", "ON"), ("GET", "n")), 2))
case("client-reply-skip",
     Raw(_pipeline(("CLIENT", "REPLY", "SKIP"), ("SET", "b", "2"), ("GET", "b"), ("CLIENT", "REPLY", "SKIP"),
                   ("PING",), ("ECHO", "x"), ("CLIENT", "REPLY", "SKIP"), ("CLIENT", "REPLY", "SKIP"),
                   ("GET", "b"), ("GET", "b")), 3))
case("client-reply-off-then-skip",
     Raw(_pipeline(("CLIENT", "REPLY", "OFF"), ("CLIENT", "REPLY", "SKIP"), ("SET", "c", "1"),
                   ("CLIENT", "REPLY", "ON"), ("GET", "c")), 2))
case("client-help", C("CLIENT", "HELP"), C("CLIENT", "NO-TOUCH", "on"), C("CLIENT", "NO-EVICT", "maybe"),
     C("CLIENT", "NO-EVICT", "on"), C("CLIENT", "GETREDIR"))
case("client-kill-errors", C("CLIENT", "KILL", "1.2.3.4:5"), C("CLIENT", "KILL", "ADDR", "1.2.3.4:5"),
     C("CLIENT", "KILL", "TYPE", "pubsub"), C("CLIENT", "KILL", "TYPE", "bogus"), C("CLIENT", "KILL", "SKIPME", "maybe"),
     C("CLIENT", "KILL", "ID", "abc"), C("CLIENT", "KILL", "ID", "0"), C("CLIENT", "KILL", "ID", "99999999"),
     C("CLIENT", "KILL", "USER", "nobody"), C("CLIENT", "KILL", "BOGUS", "x"), C("CLIENT", "KILL", "ADDR"),
     C("CLIENT", "KILL", "MAXAGE", "x"), C("CLIENT", "KILL", "LADDR", "1.2.3.4:5", "SKIPME", "no"),
     C("CLIENT", "LIST", "TYPE", "bogus"), C("CLIENT", "LIST", "ID", "x"), C("CLIENT", "LIST", "ID", "0"),
     C("CLIENT", "LIST", "BOGUS"), C("CLIENT", "PAUSE", "x"), C("CLIENT", "PAUSE", "-1"),
     C("CLIENT", "PAUSE", "10", "bogus"), C("CLIENT", "UNPAUSE"))
case("client-reply-errors", C("CLIENT", "REPLY", "MAYBE"), C("CLIENT", "REPLY"), C("CLIENT", "REPLY", "ON", "x"))
case("client-reply-unknown-command-silent",
     Raw(_pipeline(("CLIENT", "REPLY", "OFF"), ("NOSUCH",), ("GET",), ("CLIENT", "REPLY", "ON"), ("PING",)), 2))



# --- the test ------------------------------------------------------------------


@pytest.mark.parametrize("seq", CASES, ids=CASES.ids())
def test_same_replies_as_redis(servers: Servers, seq: Case) -> None:  # noqa: F811
    check_case(servers, seq)


def test_kvred_survived_the_cases(servers: Servers) -> None:  # noqa: F811
    """Runs after the cases: no input above may crash a kvred process."""
    check_survived(servers)


def _start_redis_without_debug(workdir: Path, name: str) -> ServerProcess:
    port = free_port()
    argv = [require_tool("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--enable-debug-command", "no", "--dir", str(workdir)]
    return ServerProcess(name, argv, port, workdir).start()


@pytest.fixture(scope="module")
def debug_disabled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """A pair with --enable-debug-command no (the shared pair has DEBUG on: the TTL cases need it)."""
    redis_server = _start_redis_without_debug(tmp_path_factory.mktemp("redis"), "redis-server")
    try:
        if against_redis():
            kvred = _start_redis_without_debug(tmp_path_factory.mktemp("kvred"), "kvred-as-redis")
        else:
            kvred = start_kvred(tmp_path_factory.mktemp("kvred"), enable_debug_command="no")
        try:
            yield redis_server, kvred
        finally:
            kvred.stop()
    finally:
        redis_server.stop()


def test_debug_refused_unless_enabled(debug_disabled: tuple[ServerProcess, ServerProcess]) -> None:
    """Refused with Redis's text, before its subcommand or arguments are looked at."""
    mismatches = _compare(*debug_disabled, [
        C("FLUSHALL"), C("DEBUG", "SLEEP", "0"), C("DEBUG", "SET-ACTIVE-EXPIRE", "0"), C("debug", "help"),
        C("DEBUG", "FOO"), C("DEBUG", "SLEEP"), C("DEBUG"), C("PING")])
    assert not mismatches, f"{len(mismatches)} differing step(s):\n" + "\n".join(mismatches)


def test_debug_refused_inside_multi(debug_disabled: tuple[ServerProcess, ServerProcess]) -> None:
    mismatches = _compare(*debug_disabled, [
        C("FLUSHALL"), C("MULTI"), C("DEBUG", "SLEEP", "0"), C("SET", "k", "v"), C("EXEC"), C("EXISTS", "k")])
    assert not mismatches, f"{len(mismatches)} differing step(s):\n" + "\n".join(mismatches)


@pytest.mark.skipif(against_redis(), reason="a kvred setting")
def test_idletime_needs_tracking(kvred_module: ServerProcess) -> None:
    """kvred records key access times only with --track-key-access yes (they cost
    throughput); without it OBJECT IDLETIME says so instead of answering a number."""
    with RawClient(kvred_module.port) as c:
        assert c.call("SET", "k", "v") == b"+OK\r\n"
        assert c.call("OBJECT", "IDLETIME", "k").startswith(b"-ERR Idle time not tracked")
        assert c.call("OBJECT", "IDLETIME", "missing") == b"$-1\r\n"
        assert c.call("CONFIG", "GET", "track-key-access") == b"*2\r\n$16\r\ntrack-key-access\r\n$2\r\nno\r\n"
