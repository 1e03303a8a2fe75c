"""Differential tests for SORT and SORT_RO (kvred/commands/sort.py) against redis-server.

Sets in hash-table order are only sorted (or STOREd, which sorts them): SORT ... BY
nosort of a large set returns its hashing order, which differs between servers, so
those cases compare the reply as a sorted multiset."""

from __future__ import annotations

from typing import Any

import pytest
from differential import C, Case, Cases, Servers, check_case, check_survived, hello_masked, servers  # noqa: F401
from rawclient import parse_reply

CASES = Cases()
case, arity = CASES.case, CASES.arity


def as_multiset(raw: bytes) -> Any:
    node = parse_reply(raw)
    return ("* as multiset", sorted(node[1])) if node[0] == "*" else raw


NUMS = ("RPUSH", "n", "3", "1", "2", "10", "-5", "2.5", "1e2", "0x10", " 7")
WEIGHTS = ("MSET", "w_3", "30", "w_1", "10", "w_2", "-20", "w_10", "x", "o_3", "c", "o_1", "a", "o_2", "b")

case("sort-numeric", C(*NUMS[:7]), C("SORT", "n"), C("SORT", "n", "DESC"), C("SORT", "n", "ASC"),
     C("SORT_RO", "n"), C("SORT", "n", "ALPHA"), C("SORT", "n", "ALPHA", "DESC"))
case("sort-strtod-forms", C(*NUMS), C("SORT", "n"), C("SORT", "n", "DESC"),
     C("RPUSH", "bad", "1", "two", "3"), C("SORT", "bad"), C("SORT", "bad", "ALPHA"),
     C("RPUSH", "t", "1 ", "2"), C("SORT", "t"), C("RPUSH", "big", "1e400", "1"), C("SORT", "big"),
     C("RPUSH", "tiny", "1e-400", "1"), C("SORT", "tiny"), C("RPUSH", "nan", "nan", "1"), C("SORT", "nan"))
# On its own connection: redis-server does not clear errno before strtod, so right after an
# out-of-range weight (1e400 above) even "inf" is refused there until errno changes.
case("sort-infinities", C("RPUSH", "inf", "inf", "-inf", "Infinity", "0"), C("SORT", "inf"),
     C("SORT", "inf", "DESC"))
case("sort-ties-and-equal-scores", C("RPUSH", "e", "1.0", "1", "01", "b", "a"), C("SORT", "e", "ALPHA"),
     C("RPUSH", "f", "1.0", "1", "01", "1e0"), C("SORT", "f"), C("SORT", "f", "DESC"))
case("sort-limit", C(*NUMS[:7]), C("SORT", "n", "LIMIT", "0", "2"), C("SORT", "n", "LIMIT", "2", "2"),
     C("SORT", "n", "LIMIT", "-1", "2"), C("SORT", "n", "LIMIT", "1", "-1"), C("SORT", "n", "LIMIT", "10", "2"),
     C("SORT", "n", "LIMIT", "4", "100"), C("SORT", "n", "LIMIT", "0", "0"), C("SORT", "n", "LIMIT", "x", "1"),
     C("SORT", "n", "LIMIT", "1"), C("SORT", "n", "DESC", "LIMIT", "1", "2"))
case("sort-by-and-get", C("RPUSH", "ids", "3", "1", "2"), C(*WEIGHTS),
     C("HSET", "h_1", "f", "5", "name", "one"), C("HSET", "h_2", "f", "1", "name", "two"),
     C("HSET", "h_3", "f", "3"),
     C("SORT", "ids", "BY", "w_*"), C("SORT", "ids", "BY", "w_*", "DESC"), C("SORT", "ids", "BY", "o_*", "ALPHA"),
     C("SORT", "ids", "BY", "missing_*"), C("SORT", "ids", "BY", "missing_*", "ALPHA"),
     C("SORT", "ids", "BY", "h_*->f"), C("SORT", "ids", "GET", "o_*"), C("SORT", "ids", "GET", "#", "GET", "o_*"),
     C("SORT", "ids", "GET", "h_*->name"), C("SORT", "ids", "GET", "h_*->"), C("SORT", "ids", "GET", "nostar"),
     C("SORT", "ids", "BY", "w_*", "GET", "#", "GET", "h_*->f", "LIMIT", "1", "5"),
     C("RPUSH", "ids10", "10", "1"), C("SORT", "ids10", "BY", "w_*"),
     C("SORT", "ids", "GET", "ids"), C("SORT", "ids", "BY", "ids*"))
case("sort-by-constant-keeps-list-order", C("RPUSH", "l", "c", "a", "b", "d"), C("SORT", "l", "BY", "nosort"),
     C("SORT", "l", "BY", "nosort", "DESC"), C("SORT", "l", "BY", "nosort", "LIMIT", "1", "2"),
     C("SORT", "l", "BY", "nosort", "DESC", "LIMIT", "1", "2"), C("SORT", "l", "BY", "nosort", "LIMIT", "3", "9"))
case("sort-sets", C("SADD", "s", "5", "3", "9", "1"), C("SORT", "s"), C("SORT", "s", "DESC"),
     C("SORT", "s", "BY", "nosort"), C("SORT", "s", "BY", "nosort", "STORE", "d"), C("LRANGE", "d", "0", "-1"),
     C("SADD", "w", "b", "a", "c"), C("SORT", "w", "ALPHA"), C("SORT", "w"),
     C("SORT", "w", "BY", "nosort", norm=as_multiset), C("SORT", "w", "BY", "nosort", "STORE", "d2"),
     C("LRANGE", "d2", "0", "-1"))
case("sort-zsets", C("ZADD", "z", "1", "c", "2", "a", "3", "b"), C("SORT", "z", "ALPHA"),
     C("SORT", "z", "BY", "nosort"), C("SORT", "z", "BY", "nosort", "DESC"),
     C("SORT", "z", "BY", "nosort", "LIMIT", "1", "1"), C("SORT", "z", "BY", "nosort", "DESC", "LIMIT", "1", "5"),
     C("SORT", "z"))
case("sort-store", C(*NUMS[:7]), C("SET", "dst", "was a string"), C("EXPIRE", "dst", "1000"),
     C("SORT", "n", "STORE", "dst"), C("TYPE", "dst"), C("TTL", "dst"), C("LRANGE", "dst", "0", "-1"),
     C("SORT", "n", "GET", "nothing_*", "STORE", "dst"), C("LRANGE", "dst", "0", "-1"),
     C("SORT", "nokey", "STORE", "dst"), C("EXISTS", "dst"), C("SORT", "nokey", "STORE", "dst"),
     C("SORT_RO", "n", "STORE", "dst"), C("SORT", "n", "LIMIT", "0", "0", "STORE", "n"), C("EXISTS", "n"))
case("sort-errors", C("SET", "str", "x"), C("SORT", "str"), C("SORT_RO", "str"), C("SORT", "nokey"),
     C("RPUSH", "l", "1"), C("SORT", "l", "BOGUS"), C("SORT", "l", "BY"), C("SORT", "l", "GET"),
     C("SORT", "l", "STORE"), C("SORT", "l", "LIMIT", "0"), C("SORT", "l", "ALPHA", "ALPHA", "DESC", "ASC"),
     C("HSET", "h", "f", "v"), C("SORT", "h"))
case("sort-resp3", C("HELLO", "3", norm=hello_masked), C("RPUSH", "ids", "2", "1"), C("SORT", "ids"),
     C("SORT", "ids", "GET", "missing_*"), C("SORT", "ids", "STORE", "d"))
case("sort-in-multi", C("RPUSH", "l", "2", "1"), C("MULTI"), C("SORT", "l", "STORE", "d"), C("LRANGE", "d", "0", "-1"),
     C("EXEC"))
arity("SORT")
arity("SORT_RO")


@pytest.mark.parametrize("seq", CASES, ids=CASES.ids())
def test_same_replies_as_redis(servers: Servers, seq: Case) -> None:  # noqa: F811
    check_case(servers, seq)


def test_kvred_survived_the_cases(servers: Servers) -> None:  # noqa: F811
    check_survived(servers)
