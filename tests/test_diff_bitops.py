"""Differential tests of the bitmap commands (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
BITFIELD, BITFIELD_RO) and LCS against redis-server 7.0, plus their AOF round trips.

The machinery is tests/differential.py.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from aoftools import aof_commands, kill_hard, rewrite_and_wait
from conftest import ServerProcess, against_redis, start_kvred
from differential import (  # noqa: F401  (servers: the fixture)
    C2,
    C,
    Case,
    Cases,
    Cmd,
    Servers,
    check_case,
    check_survived,
    hello_masked,
    int_range,
    servers,
)
from rawclient import RawClient

CASES = Cases()
case, arity = CASES.case, CASES.arity

MS_2100 = "4102444800123"
T_2100 = "4102444800"
BIG_OFFSET = "4294967296"  # 2**32: byte 512 MB, one past proto-max-bulk-len

# --- SETBIT / GETBIT -----------------------------------------------------------------

case("setbit-basic", C("SETBIT", "k", "7", "1"), C("GET", "k"), C("GETBIT", "k", "7"), C("GETBIT", "k", "6"),
     C("SETBIT", "k", "7", "0"), C("GET", "k"), C("SETBIT", "k", "0", "1"), C("GET", "k"), C("STRLEN", "k"),
     C("SETBIT", "k", "100", "1"), C("STRLEN", "k"), C("GET", "k"), C("GETBIT", "k", "100"),
     C("GETBIT", "k", "101"), C("GETBIT", "k", "1000000"), C("GETBIT", "missing", "0"),
     C("GETBIT", "missing", "99999999"), C("TYPE", "k"), C("setbit", "k", "1", "1"), C("GET", "k"))
case("setbit-on-set-values", C("SET", "s", "foobar"), C("SETBIT", "s", "7", "1"), C("GET", "s"),
     C("GETBIT", "s", "1"), C("GETBIT", "s", "2"), C("SET", "n", "123"), C("GETBIT", "n", "2"),
     C("GETBIT", "n", "3"), C("SETBIT", "n", "6", "1"), C("GET", "n"), C("OBJECT", "ENCODING", "n"),
     C("APPEND", "n", "xyz"), C("SETBIT", "n", "47", "1"), C("GET", "n"), C("INCR", "n"))
case("setbit-encoding", C("SET", "a", "x"), C("OBJECT", "ENCODING", "a"), C("SETBIT", "a", "0", "0"),
     C("OBJECT", "ENCODING", "a"), C("SET", "b", "12"), C("OBJECT", "ENCODING", "b"), C("GETBIT", "b", "0"),
     C("OBJECT", "ENCODING", "b"), C("SETBIT", "b", "0", "0"), C("OBJECT", "ENCODING", "b"), C("GET", "b"),
     C("SETBIT", "c", "3", "1"), C("OBJECT", "ENCODING", "c"), C("SETBIT", "d", "3", "0"),
     C("OBJECT", "ENCODING", "d"), C("GET", "d"), C("EXISTS", "d"), C("TYPE", "d"))
case("setbit-errors", C("SETBIT", "k", "-1", "1"), C("SETBIT", "k", "x", "1"), C("SETBIT", "k", "1.5", "1"),
     C("SETBIT", "k", BIG_OFFSET, "1"), C("SETBIT", "k", "0", "2"), C("SETBIT", "k", "0", "-1"),
     C("SETBIT", "k", "0", "x"), C("SETBIT", "k", "0", ""), C("SETBIT", "k", "", "1"),
     C("SETBIT", "k", "99999999999999999999", "1"), C("SETBIT", "k", "01", "1"), C("SETBIT", "k", " 1", "1"),
     C("EXISTS", "k"), C("GETBIT", "k", "-1"), C("GETBIT", "k", BIG_OFFSET), C("GETBIT", "k", "x"),
     C("SETBIT", "k", "0", "1"), C("SETBIT", "k", "x", "0"), C("GET", "k"))
case("setbit-wrongtype", C("RPUSH", "l", "a"), C("SETBIT", "l", "0", "1"), C("GETBIT", "l", "0"),
     C("GETBIT", "l", "x"), C("SETBIT", "l", "x", "1"), C("SETBIT", "l", "0", "5"), C("LRANGE", "l", "0", "-1"),
     C("SETBIT", "b", "0", "1"), C("LPUSH", "b", "x"), C("LLEN", "b"), C("SADD", "st", "m"),
     C("SETBIT", "st", "0", "1"), C("GETBIT", "st", "0"), C("BITCOUNT", "st"), C("BITPOS", "st", "0"),
     C("BITOP", "OR", "d", "b", "st"), C("BITFIELD", "st", "GET", "u8", "0"), C("LCS", "st", "b"),
     C("SADD", "b", "m"), C("SMEMBERS", "st"), C("GET", "b"))
arity("SETBIT", "k", "0")
arity("SETBIT", "k", "0", "1", "2")
arity("GETBIT", "k")
arity("GETBIT", "k", "0", "1")
case("setbit-ttl-kept", C("SET", "k", "v", "PXAT", MS_2100), C("SETBIT", "k", "0", "1"), C("PEXPIRETIME", "k"),
     C("SETBIT", "k", "200", "1"), C("PEXPIRETIME", "k"), C("SETBIT", "k", "200", "1"), C("PEXPIRETIME", "k"),
     C("SET", "t", "v", "EX", "1000"), C("SETBIT", "t", "1", "0"),
     C("PTTL", "t", norm=int_range(990_000, 1_000_000)))
case("setbit-watch", C("SET", "k", "a"), C("WATCH", "k"), C2("SETBIT", "k", "1", "1"), C("MULTI"), C("GET", "k"),
     C("EXEC"), C("WATCH", "k"), C2("SETBIT", "k", "1", "1"), C("MULTI"), C("GET", "k"), C("EXEC"),
     C("WATCH", "k"), C2("SETBIT", "k", "0", "0"), C("MULTI"), C("GET", "k"), C("EXEC"),
     C("WATCH", "k"), C2("SETBIT", "k", "16", "0"), C("MULTI"), C("GET", "k"), C("EXEC"),
     C("WATCH", "n"), C2("SETBIT", "n", "5", "0"), C("MULTI"), C("GET", "n"), C("EXEC"),
     C("WATCH", "k"), C2("GETBIT", "k", "1"), C2("BITCOUNT", "k"), C("MULTI"), C("GET", "k"), C("EXEC"))
case("setbit-multi", C("MULTI"), C("SETBIT", "k", "1", "1"), C("SETBIT", "k", "x", "1"), C("GETBIT", "k", "1"),
     C("BITCOUNT", "k"), C("EXEC"), C("MULTI"), C("SETBIT", "k"), C("EXEC"))
case("setbit-append-interplay", C("SETBIT", "k", "1", "1"), C("APPEND", "k", "bc"), C("GET", "k"),
     C("SETBIT", "k", "31", "1"), C("GET", "k"), C("SETRANGE", "k", "1", "zz"), C("GET", "k"),
     C("GETRANGE", "k", "0", "1"), C("BITCOUNT", "k"), C("STRLEN", "k"), C("SET", "k", "v"), C("GETBIT", "k", "1"),
     C("GETDEL", "k"), C("SETBIT", "k", "9", "1"), C("COPY", "k", "k2"), C("SETBIT", "k2", "0", "1"), C("GET", "k"),
     C("GET", "k2"), C("RENAME", "k2", "k3"), C("GET", "k3"))

# --- BITCOUNT -----------------------------------------------------------------------

case("bitcount-basic", C("SET", "s", "foobar"), C("BITCOUNT", "s"), C("BITCOUNT", "s", "0", "0"),
     C("BITCOUNT", "s", "1", "1"), C("BITCOUNT", "s", "1", "-1"), C("BITCOUNT", "s", "-2", "-1"),
     C("BITCOUNT", "s", "-100", "100"), C("BITCOUNT", "s", "4", "2"), C("BITCOUNT", "s", "-1", "-2"),
     C("BITCOUNT", "s", "6", "10"), C("BITCOUNT", "s", "100", "200"), C("BITCOUNT", "s", "-100", "-50"),
     C("BITCOUNT", "missing"), C("BITCOUNT", "missing", "0", "-1"), C("BITCOUNT", "s", "0", "-1", "BYTE"),
     C("BITCOUNT", "s", "0", "-1", "byte"))
case("bitcount-bit-mode", C("SET", "s", "foobar"), C("BITCOUNT", "s", "5", "30", "BIT"),
     C("BITCOUNT", "s", "0", "0", "BIT"), C("BITCOUNT", "s", "1", "1", "bit"), C("BITCOUNT", "s", "1", "2", "BIT"),
     C("BITCOUNT", "s", "-1", "-1", "BIT"), C("BITCOUNT", "s", "-8", "-1", "BIT"),
     C("BITCOUNT", "s", "3", "12", "BIT"), C("BITCOUNT", "s", "7", "8", "BIT"), C("BITCOUNT", "s", "0", "47", "BIT"),
     C("BITCOUNT", "s", "0", "1000", "BIT"), C("BITCOUNT", "s", "47", "47", "BIT"),
     C("BITCOUNT", "s", "48", "100", "BIT"), C("BITCOUNT", "s", "10", "9", "BIT"),
     C("BITCOUNT", "s", "-100", "5", "BIT"), C("BITCOUNT", "s", "-3", "-5", "BIT"))
case("bitcount-errors", C("SET", "s", "foobar"), C("BITCOUNT", "s", "0"), C("BITCOUNT", "s", "x", "1"),
     C("BITCOUNT", "s", "0", "x"), C("BITCOUNT", "s", "0", "1", "BITS"), C("BITCOUNT", "s", "0", "1", "BIT", "x"),
     C("BITCOUNT", "s", "-1", "-2", "BITS"), C("BITCOUNT", "missing", "0"), C("BITCOUNT", "missing", "x", "y"),
     C("BITCOUNT", "missing", "0", "1", "junk"), C("RPUSH", "l", "a"), C("BITCOUNT", "l"),
     C("BITCOUNT", "l", "x"), C("BITCOUNT", "s", "1.5", "2"), C("BITCOUNT", "s", "99999999999999999999", "1"))
arity("BITCOUNT")
case("bitcount-empty-and-int", C("SET", "e", ""), C("BITCOUNT", "e"), C("BITCOUNT", "e", "0", "-1"),
     C("BITCOUNT", "e", "0", "0", "BIT"), C("SET", "n", "12345"), C("BITCOUNT", "n"), C("BITCOUNT", "n", "1", "2"),
     C("BITCOUNT", "n", "9", "30", "BIT"))
case("bitcount-large", C("SETRANGE", "big", "300000", b"\xff\x01"), C("SETBIT", "big", "7", "1"),
     C("SETBIT", "big", "1000000", "1"), C("BITCOUNT", "big"), C("BITCOUNT", "big", "1", "-1"),
     C("BITCOUNT", "big", "8", "2400000", "BIT"), C("BITCOUNT", "big", "65536", "300000"),
     C("BITCOUNT", "big", "65535", "-1"), C("BITCOUNT", "big", "7", "1000000", "BIT"))

# --- BITPOS -------------------------------------------------------------------------

case("bitpos-basic", C("SET", "s", b"\xff\xf0\x00"), C("BITPOS", "s", "0"), C("BITPOS", "s", "1"),
     C("SET", "z", b"\x00\x0f\x00"), C("BITPOS", "z", "1"), C("BITPOS", "z", "0"), C("BITPOS", "z", "1", "2"),
     C("BITPOS", "z", "1", "1"), C("BITPOS", "z", "1", "0", "0"), C("BITPOS", "z", "0", "1", "1"),
     C("SET", "o", b"\xff\xff\xff"), C("BITPOS", "o", "0"), C("BITPOS", "o", "0", "0"), C("BITPOS", "o", "0", "1"),
     C("BITPOS", "o", "0", "0", "-1"), C("BITPOS", "o", "0", "0", "1"), C("BITPOS", "o", "1", "-1"),
     C("BITPOS", "o", "0", "-1", "-1", "BYTE"), C("BITPOS", "o", "0", "5", "10"), C("BITPOS", "o", "1", "5", "10"),
     C("BITPOS", "o", "0", "2", "1"), C("BITPOS", "o", "0", "-1", "-2"), C("BITPOS", "o", "0", "100"))
case("bitpos-missing-empty", C("BITPOS", "missing", "0"), C("BITPOS", "missing", "1"),
     C("BITPOS", "missing", "0", "5", "10"), C("BITPOS", "missing", "1", "x"),
     C("BITPOS", "missing", "0", "1", "2", "x"), C("SET", "e", ""), C("BITPOS", "e", "0"), C("BITPOS", "e", "1"),
     C("BITPOS", "e", "0", "0"), C("BITPOS", "e", "0", "0", "-1"), C("BITPOS", "e", "0", "0", "-1", "BIT"),
     C("SET", "zero", b"\x00\x00"), C("BITPOS", "zero", "1"), C("BITPOS", "zero", "0"),
     C("BITPOS", "zero", "1", "0", "-1", "BIT"))
case("bitpos-bit-mode", C("SET", "s", b"\x00\xff\x00"), C("BITPOS", "s", "1", "7", "15", "BIT"),
     C("BITPOS", "s", "1", "9", "-1", "BIT"), C("BITPOS", "s", "1", "16", "-1", "BIT"),
     C("BITPOS", "s", "0", "8", "15", "BIT"), C("BITPOS", "s", "0", "8", "16", "BIT"),
     C("BITPOS", "s", "0", "9", "12", "BIT"), C("BITPOS", "s", "0", "8", "-1", "BIT"),
     C("BITPOS", "s", "0", "3", "5", "bit"), C("BITPOS", "s", "1", "3", "5", "BIT"),
     C("BITPOS", "s", "1", "-10", "-1", "BIT"), C("BITPOS", "s", "0", "-10", "-9", "BIT"),
     C("SET", "o", b"\xff\xff"), C("BITPOS", "o", "0", "3", "12", "BIT"), C("BITPOS", "o", "0", "3", "100", "BIT"),
     C("BITPOS", "o", "1", "3", "2", "BIT"), C("BITPOS", "o", "0", "15", "15", "BIT"),
     C("BITPOS", "o", "0", "5", "-1", "BYTE"), C("BITPOS", "s", "1", "0", "0", "BYTE"),
     C("BITPOS", "s", "1", "1", "1", "BYTE"), C("BITPOS", "s", "0", "1", "1", "BYTE"),
     C("BITPOS", "o", "0", "3", "bit"), C("BITPOS", "o", "0", "3", "-1", "bit"))
case("bitpos-errors", C("SET", "s", "abc"), C("BITPOS", "s", "2"), C("BITPOS", "s", "-1"), C("BITPOS", "s", "x"),
     C("BITPOS", "s", "1", "x"), C("BITPOS", "s", "1", "0", "x"), C("BITPOS", "s", "1", "0", "1", "BITS"),
     C("BITPOS", "s", "1", "0", "x", "BITS"), C("BITPOS", "s", "1", "x", "1", "BITS"),
     C("BITPOS", "s", "1", "0", "1", "BIT", "extra"), C("BITPOS", "missing", "2"), C("BITPOS", "missing", "x"),
     C("RPUSH", "l", "a"), C("BITPOS", "l", "1"), C("BITPOS", "l", "2"), C("BITPOS", "l", "1", "x"))
arity("BITPOS", "k")
case("bitpos-large", C("SETRANGE", "big", "200000", b"\x01"), C("BITPOS", "big", "1"), C("BITPOS", "big", "0"),
     C("BITPOS", "big", "1", "70000"), C("BITPOS", "big", "1", "0", "199999"),
     C("BITPOS", "big", "1", "1500000", "-1", "BIT"), C("SETRANGE", "ones", "0", b"\xff" * 150000),
     C("BITPOS", "ones", "0"), C("BITPOS", "ones", "0", "0", "-1"), C("BITPOS", "ones", "1", "100000"),
     C("SETBIT", "ones", "1000001", "0"), C("BITPOS", "ones", "0"),
     C("BITPOS", "ones", "0", "1000002", "-1", "BIT"))

# --- BITOP --------------------------------------------------------------------------

case("bitop-basic", C("SET", "a", "foobar"), C("SET", "b", "abcdef"), C("SET", "c", "xy"),
     C("BITOP", "AND", "d", "a", "b"), C("GET", "d"), C("BITOP", "OR", "d", "a", "b", "c"), C("GET", "d"),
     C("BITOP", "XOR", "d", "a", "c"), C("GET", "d"), C("BITOP", "NOT", "d", "a"), C("GET", "d"),
     C("BITOP", "and", "d", "a", "c"), C("GET", "d"), C("BITOP", "AND", "d", "a", "missing"), C("GET", "d"),
     C("BITOP", "or", "d", "missing", "c"), C("GET", "d"), C("BITOP", "xor", "d", "a"), C("GET", "d"),
     C("BITOP", "Not", "d", "c"), C("GET", "d"), C("BITOP", "OR", "a", "a", "b"), C("GET", "a"),
     C("TYPE", "d"), C("OBJECT", "ENCODING", "d"), C("SET", "n1", "1"), C("BITOP", "AND", "n", "n1", "n1"),
     C("GET", "n"), C("OBJECT", "ENCODING", "n"), C("BITOP", "NOT", "e", "missing"), C("EXISTS", "e"),
     C("SET", "long", "x" * 60), C("BITOP", "OR", "lo", "long"), C("OBJECT", "ENCODING", "lo"))
case("bitop-empty-deletes", C("SET", "d", "old"), C("BITOP", "AND", "d", "m1", "m2"), C("EXISTS", "d"),
     C("RPUSH", "l", "x"), C("BITOP", "OR", "l", "nothing"), C("EXISTS", "l"), C("SET", "e", ""),
     C("SET", "d2", "v"), C("BITOP", "XOR", "d2", "e", "e"), C("EXISTS", "d2"), C("BITOP", "NOT", "d3", "e"),
     C("EXISTS", "d3"), C("RPUSH", "l2", "x"), C("SET", "s", "ab"), C("BITOP", "OR", "l2", "s"), C("TYPE", "l2"),
     C("GET", "l2"))
case("bitop-errors", C("SET", "a", "x"), C("BITOP", "NAND", "d", "a"), C("BITOP", "NOT", "d", "a", "a"),
     C("BITOP", "NOTX", "d", "a"), C("BITOP", "", "d", "a"), C("RPUSH", "l", "x"),
     C("BITOP", "AND", "d", "a", "l"), C("BITOP", "NOT", "d", "l"), C("BITOP", "NOT", "d", "l", "a"),
     C("BITOP", "FOO", "d", "l"), C("EXISTS", "d"), C("SET", "d", "keep"), C("BITOP", "OR", "d", "l"),
     C("GET", "d"), C("BITOP", "NOT", "d"))
arity("BITOP", "AND", "d")
arity("BITOP", "AND")
case("bitop-ttl-and-watch", C("SET", "d", "v", "PXAT", MS_2100), C("SET", "a", "x"), C("BITOP", "OR", "d", "a"),
     C("PTTL", "d"), C("GET", "d"), C("WATCH", "d"), C2("BITOP", "AND", "d", "a", "a"), C("MULTI"), C("GET", "d"),
     C("EXEC"), C("WATCH", "z"), C2("BITOP", "AND", "z", "m1"), C("MULTI"), C("GET", "z"), C("EXEC"),
     C("WATCH", "d"), C2("BITOP", "AND", "d", "m1"), C("MULTI"), C("GET", "d"), C("EXEC"))
case("bitop-large", C("SETRANGE", "a", "100000", b"\xf0\x0f"), C("SETBIT", "a", "3", "1"),
     C("SETRANGE", "b", "50000", b"\xff"), C("BITOP", "OR", "o", "a", "b"), C("BITCOUNT", "o"), C("STRLEN", "o"),
     C("BITPOS", "o", "1", "10"), C("BITOP", "AND", "x", "a", "b"), C("BITCOUNT", "x"),
     C("BITOP", "NOT", "n", "a"), C("BITCOUNT", "n"), C("BITOP", "XOR", "y", "a", "n"), C("BITCOUNT", "y"),
     C("BITPOS", "y", "0"))
case("bitop-across-chunks", C("SETRANGE", "a", "1500000", b"\x0f\xf0"), C("SETRANGE", "b", "1048570", "abcdefghijkl"),
     C("SETRANGE", "c", "2097150", b"\xff\xff\xff"), C("BITOP", "XOR", "x", "a", "b", "c"), C("STRLEN", "x"),
     C("BITCOUNT", "x"), C("GETRANGE", "x", "1048570", "1048582"), C("GETRANGE", "x", "1500000", "1500001"),
     C("GETRANGE", "x", "2097150", "-1"), C("BITOP", "OR", "o", "b", "a"), C("BITCOUNT", "o"),
     C("BITOP", "AND", "n", "a", "b", "c"), C("BITCOUNT", "n"), C("BITOP", "NOT", "t", "c"), C("BITCOUNT", "t"),
     C("BITPOS", "t", "0"), C("BITPOS", "x", "1", "1048576"), C("BITPOS", "x", "1", "1048580"),
     C("BITCOUNT", "x", "8388500", "16777215", "BIT"))
case("bitop-multi", C("SET", "a", "ab"), C("MULTI"), C("BITOP", "NOT", "d", "a"), C("GET", "d"),
     C("BITOP", "NOT", "d", "a", "b"), C("EXEC"))

# --- BITFIELD -----------------------------------------------------------------------

case("bitfield-get", C("SET", "s", "foobar"), C("BITFIELD", "s", "GET", "u8", "0"),
     C("BITFIELD", "s", "GET", "i8", "0", "GET", "u4", "4", "GET", "i4", "4", "GET", "u1", "47", "GET", "i1", "1"),
     C("BITFIELD", "s", "GET", "u63", "0"), C("BITFIELD", "s", "GET", "i64", "0"),
     C("BITFIELD", "s", "GET", "i64", "3"), C("BITFIELD", "s", "GET", "u16", "40"),
     C("BITFIELD", "s", "GET", "i16", "100"), C("BITFIELD", "s", "get", "U8", "#1"),
     C("BITFIELD", "s", "GET", "I8", "#5", "GET", "u8", "#6"), C("BITFIELD", "missing", "GET", "u8", "0"),
     C("BITFIELD", "missing"), C("BITFIELD", "s"), C("BITFIELD", "s", "OVERFLOW", "SAT"),
     C("BITFIELD_RO", "s", "GET", "u8", "0", "GET", "i5", "3"), C("BITFIELD_RO", "s"), C("EXISTS", "missing"),
     C("SET", "ff", b"\xff" * 9), C("BITFIELD", "ff", "GET", "i64", "0", "GET", "i64", "7"),
     C("BITFIELD", "ff", "GET", "u63", "9", "GET", "i3", "70", "GET", "u3", "70"))
case("bitfield-set", C("BITFIELD", "k", "SET", "u8", "0", "255", "GET", "u8", "0"), C("GET", "k"),
     C("BITFIELD", "k", "SET", "i8", "0", "-1", "SET", "u4", "4", "3"), C("GET", "k"),
     C("BITFIELD", "k", "SET", "i64", "8", "-9223372036854775808", "GET", "i64", "8"), C("STRLEN", "k"),
     C("BITFIELD", "k", "SET", "u63", "3", "9223372036854775807"), C("GET", "k"),
     C("BITFIELD", "k", "SET", "u2", "#10", "3", "GET", "u2", "#10", "GET", "u8", "16"), C("GET", "k"),
     C("BITFIELD", "k", "set", "u8", "200", "7"), C("STRLEN", "k"), C("BITFIELD", "j", "SET", "i5", "13", "-3"),
     C("GET", "j"), C("OBJECT", "ENCODING", "j"), C("BITFIELD", "k", "SET", "u8", "0", "256"),
     C("BITFIELD", "k", "SET", "i8", "0", "128", "GET", "i8", "0"), C("BITFIELD", "k", "SET", "u8", "0", "-1"),
     C("GET", "k"), C("SET", "e", "ab"), C("BITFIELD", "e", "SET", "u8", "0", "97"), C("OBJECT", "ENCODING", "e"))
case("bitfield-incrby-wrap", C("BITFIELD", "k", "INCRBY", "u2", "100", "1", "INCRBY", "u2", "100", "1"),
     C("BITFIELD", "k", "INCRBY", "u2", "100", "1", "INCRBY", "u2", "100", "1", "INCRBY", "u2", "100", "1"),
     C("BITFIELD", "k", "INCRBY", "i5", "100", "1"), C("BITFIELD", "k", "INCRBY", "i5", "0", "15"),
     C("BITFIELD", "k", "INCRBY", "i5", "0", "1"), C("BITFIELD", "k", "INCRBY", "i5", "0", "-100"),
     C("BITFIELD", "k", "INCRBY", "u8", "8", "-1"), C("BITFIELD", "k", "INCRBY", "u8", "8", "1000"),
     C("BITFIELD", "k", "INCRBY", "i64", "16", "9223372036854775807", "INCRBY", "i64", "16", "1"),
     C("BITFIELD", "k", "INCRBY", "i64", "16", "-1", "INCRBY", "i64", "16", "-9223372036854775808"),
     C("BITFIELD", "k", "INCRBY", "u63", "80", "9223372036854775807", "INCRBY", "u63", "80", "2"),
     C("BITFIELD", "k", "INCRBY", "u63", "80", "-9223372036854775808"), C("GET", "k"))
case("bitfield-overflow-sat-fail", C("BITFIELD", "k", "OVERFLOW", "SAT", "INCRBY", "u2", "0", "5"),
     C("BITFIELD", "k", "OVERFLOW", "SAT", "INCRBY", "u2", "0", "-5"),
     C("BITFIELD", "k", "OVERFLOW", "sat", "INCRBY", "i8", "8", "200", "INCRBY", "i8", "8", "-1000"),
     C("BITFIELD", "k", "OVERFLOW", "SAT", "SET", "i8", "8", "300", "SET", "i8", "8", "-300", "GET", "i8", "8"),
     C("BITFIELD", "k", "OVERFLOW", "SAT", "SET", "u8", "8", "-1", "GET", "u8", "8"),
     C("BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u2", "16", "4", "GET", "u2", "16"),
     C("BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u2", "16", "3", "INCRBY", "u2", "16", "1"),
     C("BITFIELD", "k", "OVERFLOW", "fail", "SET", "i4", "20", "8", "SET", "i4", "20", "-8", "SET", "u4", "24", "-1"),
     C("BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "1", "OVERFLOW", "WRAP", "INCRBY", "u2", "16", "1",
       "OVERFLOW", "SAT", "INCRBY", "i64", "32", "-9223372036854775808", "INCRBY", "i64", "32", "-5"),
     C("BITFIELD", "k", "OVERFLOW", "SAT", "INCRBY", "i64", "32", "9223372036854775807",
       "INCRBY", "i64", "32", "9223372036854775807", "INCRBY", "i64", "32", "1"),
     C("GET", "k"), C("BITFIELD", "n", "OVERFLOW", "FAIL", "SET", "u2", "50", "9"), C("EXISTS", "n"), C("GET", "n"),
     C("BITFIELD", "k", "OVERFLOW", "SAT", "SET", "u63", "0", "-1", "GET", "u63", "0"))
case("bitfield-errors", C("SET", "s", "x"), C("BITFIELD", "s", "GET", "u64", "0"),
     C("BITFIELD", "s", "GET", "i65", "0"), C("BITFIELD", "s", "GET", "i0", "0"), C("BITFIELD", "s", "GET", "u0", "0"),
     C("BITFIELD", "s", "GET", "x8", "0"), C("BITFIELD", "s", "GET", "", "0"), C("BITFIELD", "s", "GET", "u", "0"),
     C("BITFIELD", "s", "GET", "u-1", "0"), C("BITFIELD", "s", "GET", "u08", "0"),
     C("BITFIELD", "s", "GET", "u8", "-1"), C("BITFIELD", "s", "GET", "u8", "x"),
     C("BITFIELD", "s", "GET", "u8", "#-1"), C("BITFIELD", "s", "GET", "u8", "#x"),
     C("BITFIELD", "s", "GET", "u8", "#"), C("BITFIELD", "s", "GET", "u8", BIG_OFFSET),
     C("BITFIELD", "s", "GET", "u8", "#536870912"), C("BITFIELD", "s", "GET", "u8", "#2305843009213693953"),
     C("BITFIELD", "s", "GET", "u8", "#2305843009213693952"), C("BITFIELD", "s", "GET", "i64", "#9223372036854775807"), C("BITFIELD", "s", "GET", "u8"), C("BITFIELD", "s", "GET"),
     C("BITFIELD", "s", "SET", "u8", "0"), C("BITFIELD", "s", "SET", "u8", "0", "x"),
     C("BITFIELD", "s", "INCRBY", "u8", "0", "1.5"), C("BITFIELD", "s", "INCRBY", "u8", "0"),
     C("BITFIELD", "s", "OVERFLOW"), C("BITFIELD", "s", "OVERFLOW", "X"),
     C("BITFIELD", "s", "OVERFLOW", "X", "GET", "u8", "0"), C("BITFIELD", "s", "FOO", "u8", "0"),
     C("BITFIELD", "s", "GET", "u8", "0", "FOO"), C("BITFIELD", "s", "SET", "u8", "0", "1", "GET", "u64", "0"),
     C("BITFIELD", "s", "SET", "u8", "0", "99", "GET", "u8", "0", "SET"), C("GET", "s"),
     C("BITFIELD", "s", "GET", "u8", "0", "OVERFLOW", "WRAP", "OVERFLOW", "bad"),
     C("BITFIELD_RO", "s", "SET", "u8", "0", "1"), C("BITFIELD_RO", "s", "INCRBY", "u8", "0", "1"),
     C("BITFIELD_RO", "s", "GET", "u8", "0", "SET", "u8", "0", "x"), C("BITFIELD_RO", "s", "OVERFLOW", "SAT"),
     C("BITFIELD_RO", "s", "GET", "u64", "0"), C("GET", "s"))
case("bitfield-wrongtype", C("RPUSH", "l", "a"), C("BITFIELD", "l", "GET", "u8", "0"),
     C("BITFIELD", "l", "SET", "u8", "0", "1"), C("BITFIELD", "l"), C("BITFIELD", "l", "GET", "u64", "0"),
     C("BITFIELD_RO", "l", "GET", "u8", "0"), C("BITFIELD_RO", "l", "SET", "u8", "0", "1"), C("BITFIELD_RO", "l"),
     C("LRANGE", "l", "0", "-1"))
arity("BITFIELD")
arity("BITFIELD_RO")
case("bitfield-ttl-watch", C("SET", "k", "v", "PXAT", MS_2100), C("BITFIELD", "k", "SET", "u8", "100", "1"),
     C("PEXPIRETIME", "k"), C("WATCH", "k"), C2("BITFIELD", "k", "GET", "u8", "0"), C("MULTI"), C("GET", "k"),
     C("EXEC"), C("WATCH", "k"), C2("BITFIELD", "k", "SET", "u8", "0", "118"), C("MULTI"), C("STRLEN", "k"),
     C("EXEC"), C("WATCH", "k"), C2("BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "9"), C("MULTI"),
     C("STRLEN", "k"), C("EXEC"), C("WATCH", "k"), C2("BITFIELD_RO", "k", "GET", "u8", "0"), C("MULTI"),
     C("STRLEN", "k"), C("EXEC"), C("WATCH", "k"), C2("BITFIELD", "k", "SET", "u2", "200", "0"), C("MULTI"),
     C("STRLEN", "k"), C("EXEC"), C("WATCH", "k"), C2("BITFIELD", "k", "OVERFLOW", "FAIL", "SET", "u2", "300", "9"),
     C("MULTI"), C("STRLEN", "k"), C("EXEC"), C("PEXPIRETIME", "k"), C("OBJECT", "ENCODING", "k"))
case("bitfield-resp3", C("HELLO", "3", norm=hello_masked),
     C("BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "9", "GET", "u2", "0", "SET", "i8", "8", "-3"),
     C("BITFIELD_RO", "k", "GET", "i8", "8"), C("BITFIELD", "k"), C("BITCOUNT", "k"), C("BITPOS", "k", "1"),
     C("GETBIT", "k", "8"))
case("bitfield-multi", C("MULTI"), C("BITFIELD", "k", "SET", "u8", "0", "65"),
     C("BITFIELD", "k", "GET", "u99", "0"), C("BITFIELD_RO", "k", "GET", "u8", "0"), C("GET", "k"), C("EXEC"),
     C("MULTI"), C("BITFIELD_RO"), C("EXEC"))

# --- LCS ----------------------------------------------------------------------------

case("lcs-basic", C("MSET", "a", "ohmytext", "b", "mynewtext"), C("LCS", "a", "b"), C("LCS", "a", "b", "LEN"),
     C("LCS", "b", "a"), C("LCS", "a", "missing"), C("LCS", "missing", "a", "LEN"), C("LCS", "m1", "m2"),
     C("LCS", "a", "a"), C("SET", "n1", "12345"), C("SET", "n2", "2468"), C("LCS", "n1", "n2"),
     C("LCS", "a", "b", "len"), C("LCS", "a", "b", "LEN", "LEN"))
case("lcs-idx", C("MSET", "a", "ohmytext", "b", "mynewtext"), C("LCS", "a", "b", "IDX"),
     C("LCS", "a", "b", "IDX", "MINMATCHLEN", "4"), C("LCS", "a", "b", "IDX", "WITHMATCHLEN"),
     C("LCS", "a", "b", "IDX", "MINMATCHLEN", "2", "WITHMATCHLEN"),
     C("LCS", "a", "b", "idx", "minmatchlen", "-5"), C("LCS", "a", "b", "IDX", "MINMATCHLEN", "100"),
     C("LCS", "m1", "m2", "IDX"), C("LCS", "a", "m2", "IDX"), C("LCS", "a", "a", "IDX", "WITHMATCHLEN"),
     C("LCS", "a", "b", "WITHMATCHLEN"), C("LCS", "a", "b", "MINMATCHLEN", "1"),
     C("MSET", "x", "abcXdefYghi", "y", "zabcdefghiz"), C("LCS", "x", "y", "IDX", "WITHMATCHLEN"),
     C("LCS", "y", "x", "IDX"), C("LCS", "x", "y"))
case("lcs-resp3", C("HELLO", "3", norm=hello_masked), C("MSET", "a", "ohmytext", "b", "mynewtext"),
     C("LCS", "a", "b", "IDX", "WITHMATCHLEN"), C("LCS", "a", "b", "IDX", "MINMATCHLEN", "50"), C("LCS", "a", "b"),
     C("LCS", "a", "b", "LEN"), C("LCS", "m", "n", "IDX"))
case("lcs-errors", C("MSET", "a", "abc", "b", "bcd"), C("LCS", "a", "b", "IDX", "LEN"), C("LCS", "a", "b", "FOO"),
     C("LCS", "a", "b", "MINMATCHLEN"), C("LCS", "a", "b", "MINMATCHLEN", "x"),
     C("LCS", "a", "b", "MINMATCHLEN", "1.5"), C("RPUSH", "l", "x"), C("LCS", "a", "l"), C("LCS", "l", "a"),
     C("LCS", "l", "missing", "FOO"), C("LCS", "missing", "l", "IDX", "LEN"), C("LCS", "missing", "m2", "FOO"),
     C("LCS", "a", "b", "LEN", "IDX"))
arity("LCS", "a")
arity("LCS")
case("lcs-binary-and-longer", C("SET", "a", b"\x00\xff\r\n" * 300 + b"tail"),
     C("SET", "b", b"\r\n\x00" * 250 + b"tal"), C("LCS", "a", "b", "LEN"), C("LCS", "a", "b"),
     C("LCS", "a", "b", "IDX", "MINMATCHLEN", "3", "WITHMATCHLEN"),
     C("SET", "c", "ACCGGTCGAGTGCGCGGAAGCCGGCCGAA" * 20), C("SET", "d", "GTCGTTCGGAATGCCGTTGCTCTGTAAA" * 20),
     C("LCS", "c", "d", "LEN"), C("LCS", "c", "d"), C("LCS", "c", "d", "IDX", "MINMATCHLEN", "5"))
case("lcs-multi", C("MSET", "a", "abcd", "b", "xbd"), C("MULTI"), C("LCS", "a", "b"),
     C("LCS", "a", "b", "IDX", "LEN"), C("LCS", "a"), C("EXEC"))

def _random_steps(seed: int, count: int) -> list[Cmd]:
    """Random bitmap commands over a few small keys (seeded: the same steps every run),
    each followed by nothing else: every reply is compared, and GETs show the data."""
    rng = random.Random(seed)
    keys = ["a", "b", "c"]
    steps: list[Cmd] = []

    def index() -> str:
        return str(rng.randint(-12, 12))

    for _ in range(count):
        key = rng.choice(keys)
        kind = rng.randrange(9)
        if kind == 0:
            steps.append(C("SETBIT", key, str(rng.randint(0, 90)), str(rng.randint(0, 1))))
        elif kind == 1:
            steps.append(C("BITCOUNT", key, index(), index(), *rng.choice([(), ("BIT",), ("BYTE",)])))
        elif kind == 2:
            extra = rng.choice([(), (index(),), (index(), index()), (index(), index(), "BIT")])
            steps.append(C("BITPOS", key, str(rng.randint(0, 1)), *extra))
        elif kind == 3:
            steps.append(C("BITOP", rng.choice(["AND", "OR", "XOR"]), key, *rng.sample(keys, rng.randint(1, 3))))
        elif kind == 4:
            steps.append(C("BITOP", "NOT", key, rng.choice(keys)))
        elif kind in (5, 6):
            args: list[str] = []
            for _op in range(rng.randint(1, 4)):
                sub = rng.choice(["GET", "SET", "INCRBY", "OVERFLOW"])
                if sub == "OVERFLOW":
                    args += [sub, rng.choice(["WRAP", "SAT", "FAIL"])]
                    continue
                signed = rng.random() < 0.5
                bits = rng.randint(1, 64 if signed else 63)
                offset = rng.choice([str(rng.randint(0, 100)), f"#{rng.randint(0, 5)}"])
                args += [sub, ("i" if signed else "u") + str(bits), offset]
                if sub != "GET":
                    args.append(str(rng.randint(-(2**bits), 2**bits)))
            steps.append(C("BITFIELD", key, *args))
        elif kind == 7:
            steps.append(C("GET", key))
        else:
            steps.append(C("LCS", key, rng.choice(keys), *rng.choice([(), ("IDX", "WITHMATCHLEN"), ("LEN",)])))
    return steps


for _seed in range(4):
    case(f"random-bitmaps-{_seed}", *_random_steps(_seed, 300))

# --- the bitmap family seen as strings ------------------------------------------------

case("bitmaps-are-strings", C("SETBIT", "k", "5", "1"), C("TYPE", "k"), C("OBJECT", "ENCODING", "k"),
     C("SCAN", "0", "TYPE", "string"), C("GETRANGE", "k", "0", "-1"), C("MGET", "k", "missing"),
     C("BITOP", "NOT", "n", "k"), C("TYPE", "n"), C("STRLEN", "n"), C("INCRBYFLOAT", "n", "1"), C("DEL", "k", "n"),
     C("EXISTS", "k"))


# --- the tests ----------------------------------------------------------------------


@pytest.mark.parametrize("seq", CASES, ids=CASES.ids())
def test_same_replies_as_redis(servers: Servers, seq: Case) -> None:  # noqa: F811
    check_case(servers, seq)


def test_kvred_survived_the_cases(servers: Servers) -> None:  # noqa: F811
    check_survived(servers)


# --- AOF ----------------------------------------------------------------------------

WRITES: list[list[str]] = [
    ["SET", "s", "foobar", "PXAT", MS_2100],
    ["SETBIT", "s", "7", "1"],
    ["SETBIT", "s", "7", "1"],  # no change: not logged
    ["SETBIT", "b", "1000", "1"],
    ["SETBIT", "b", "3", "0"],
    ["SET", "t", "v", "EXAT", T_2100],
    ["BITFIELD", "t", "SET", "u8", "#3", "200", "INCRBY", "i5", "2", "7", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "9"],
    ["BITFIELD", "t", "GET", "u8", "0"],  # GETs only: not logged
    ["BITFIELD", "f", "OVERFLOW", "FAIL", "SET", "u2", "30", "9"],  # creates f, changes nothing
    ["BITOP", "XOR", "x", "s", "b"],
    ["BITOP", "NOT", "n", "s"],
    ["SET", "gone", "v", "PXAT", MS_2100],
    ["BITOP", "AND", "gone", "nothing"],
    ["SETBIT", "e", "0", "0"],
]
READS: list[list[str]] = [
    ["GET", "s"], ["GET", "b"], ["GET", "t"], ["GET", "x"], ["GET", "n"], ["GET", "e"], ["GET", "f"],
    ["EXISTS", "gone"], ["PEXPIRETIME", "s"], ["PEXPIRETIME", "t"], ["PEXPIRETIME", "b"], ["BITCOUNT", "x"],
    ["DBSIZE"], ["OBJECT", "ENCODING", "s"], ["TYPE", "b"],
]


def _reads(server: ServerProcess) -> list[bytes]:
    with RawClient(server.port) as c:
        return [c.call(*cmd) for cmd in READS]


@pytest.mark.skipif(against_redis(), reason="kvred's AOF file")
def test_aof_replay_and_rewrite(tmp_path: Path) -> None:
    server = start_kvred(tmp_path)
    try:
        with RawClient(server.port) as c:
            for cmd in WRITES:
                assert not c.call(*cmd).startswith(b"-"), cmd
        before = _reads(server)
        assert before[6] == b"$4\r\n\x00\x00\x00\x00\r\n" and before[7] == b":0\r\n"
        logged = aof_commands((tmp_path / "kvred.aof").read_bytes())
        assert [b"BITFIELD", b"t", b"GET", b"u8", b"0"] not in logged
        assert sum(cmd[:2] == [b"SETBIT", b"s"] for cmd in logged) == 1
        kill_hard(server)
        server = start_kvred(tmp_path)
        assert _reads(server) == before
        rewrite_and_wait(server)
        rewritten = aof_commands((tmp_path / "kvred.aof").read_bytes())
        assert all(len(cmd) <= 65 for cmd in rewritten), rewritten  # the name and 64 items
        assert not any(cmd[0] in (b"SETBIT", b"BITFIELD", b"BITOP") for cmd in rewritten)
        kill_hard(server)
        server = start_kvred(tmp_path)
        # the same, but a short string rebuilt by SET is embstr again (as in Redis after a restart)
        after = _reads(server)
        assert after[-2] == b"$6\r\nembstr\r\n"
        assert after[:-2] + after[-1:] == before[:-2] + before[-1:]
    finally:
        server.stop()


@pytest.mark.skipif(against_redis(), reason="a kvred setting")
def test_offset_limit_follows_proto_max_bulk_len(tmp_path: Path) -> None:
    """The largest bit offset is the last bit of proto-max-bulk-len bytes (here 1 MB, so
    the boundary can be written without allocating 512 MB), and LCS's table is bounded
    by it too."""
    server = start_kvred(tmp_path, proto_max_bulk_len=1024 * 1024, appendonly="no")
    try:
        with RawClient(server.port) as c:
            last = 1024 * 1024 * 8 - 1
            assert c.call("SETBIT", "k", str(last), "1") == b":0\r\n"
            assert c.call("STRLEN", "k") == b":1048576\r\n"
            assert c.call("SETBIT", "k", str(last + 1), "1") == b"-ERR bit offset is not an integer or out of range\r\n"
            assert c.call("BITFIELD", "k", "GET", "u8", "#1048576").startswith(b"-ERR bit offset")
            assert c.call("BITFIELD", "k", "SET", "u8", "#1048575", "255") == b"*1\r\n:1\r\n"
            assert c.call("BITPOS", "k", "1") == b":8388600\r\n"
            assert c.call("BITCOUNT", "k") == b":8\r\n"
            assert c.call("BITOP", "NOT", "n", "k") == b":1048576\r\n"
            assert c.call("BITCOUNT", "n") == b":8388600\r\n"
            assert c.call("BITPOS", "n", "0") == b":8388600\r\n"
            c.call("SET", "a", "x" * 500)
            assert c.call("LCS", "a", "a", "LEN") == b":500\r\n"
            c.call("SET", "a", "x" * 600)
            assert c.call("LCS", "a", "a", "LEN") == (
                b"-ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len\r\n")
    finally:
        server.stop()
