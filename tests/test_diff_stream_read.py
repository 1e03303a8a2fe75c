"""Differential tests of XREAD (issue 15): the same bytes to redis-server 7.0 and to
kvred (machinery: tests/differential.py), RESP2 and RESP3 (a map), with COUNT, `$`,
explicit and incomplete IDs and Redis's errors; and XREAD BLOCK, which waits as
tests/test_diff_blocking.py's commands do: the case's first connection sends it
(`Silent`), an XADD from the second connection (`C2`) serves it, `Raw(b"", 1)` reads the
served reply."""

from __future__ import annotations

import pytest
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
    servers,
)
from rawclient import encode_command
from test_diff_blocking import READ, block, hello3
from test_diff_streams import fill

CASES = Cases()
case, arity = CASES.case, CASES.arity

NOT_YET = Silent(b"")  # the blocked first connection is still waiting


for _proto, _pre in (("resp2", ()), ("resp3", (hello3(),))):
    case(f"{_proto}-xread-ids", *_pre, *fill("s", 5), C("XREAD", "STREAMS", "s", "0"),
         C("XREAD", "STREAMS", "s", "0-0"), C("XREAD", "STREAMS", "s", "2"), C("XREAD", "STREAMS", "s", "2-1"),
         C("XREAD", "STREAMS", "s", "2-0"), C("XREAD", "STREAMS", "s", "5-1"), C("XREAD", "STREAMS", "s", "5"),
         C("XREAD", "STREAMS", "s", "99"), C("XREAD", "STREAMS", "s", "$"),
         C("XREAD", "STREAMS", "s", "18446744073709551615-18446744073709551615"))
    case(f"{_proto}-xread-count", *_pre, *fill("s", 5), C("XREAD", "COUNT", "2", "STREAMS", "s", "0"),
         C("XREAD", "count", "0", "STREAMS", "s", "3"), C("XREAD", "COUNT", "-7", "STREAMS", "s", "3"),
         C("XREAD", "COUNT", "5", "COUNT", "1", "streams", "s", "0"), C("XREAD", "COUNT", "1", "STREAMS", "s", "$"))
    case(f"{_proto}-xread-several-keys", *_pre, *fill("a", 3), *fill("b", 2, 7),
         C("XREAD", "STREAMS", "a", "b", "0", "0"), C("XREAD", "COUNT", "1", "STREAMS", "b", "nokey", "a", "0", "0", "2"),
         C("XREAD", "STREAMS", "a", "b", "$", "7"), C("XREAD", "STREAMS", "a", "a", "1", "2"),
         C("XREAD", "STREAMS", "nokey", "a", "$", "$"), C("XREAD", "STREAMS", "nokey", "0"))
    case(f"{_proto}-xread-empty-stream", *_pre, C("XADD", "e", "MAXLEN", "0", "3-1", "a", "1"),
         C("XREAD", "STREAMS", "e", "0"), C("XREAD", "STREAMS", "e", "$"), C("XLEN", "e"))
    case(f"{_proto}-xread-block-timeout", *_pre, *fill("s", 2), C("XREAD", "BLOCK", "10", "STREAMS", "s", "$"),
         C("XREAD", "BLOCK", "10", "STREAMS", "nokey", "s", "0", "2-1"),
         C("XREAD", "BLOCK", "0", "BLOCK", "10", "STREAMS", "s", "$"),
         C("XREAD", "BLOCK", "0", "STREAMS", "s", "1-1"))
    case(f"{_proto}-xread-in-multi", *_pre, *fill("s", 2), C("MULTI"), C("XREAD", "BLOCK", "0", "STREAMS", "s", "$"),
         C("XREAD", "BLOCK", "0", "STREAMS", "s", "1"), C("EXEC"))
    case(f"{_proto}-served-xread-dollar", *_pre, *fill("s", 2), block("XREAD", "BLOCK", "0", "STREAMS", "s", "$"),
         C2("XADD", "s", "9-1", "x", "y"), READ, C2("XADD", "s", "10-1", "x", "y"), NOT_YET)
    case(f"{_proto}-served-xread-new-key", *_pre, block("XREAD", "BLOCK", "0", "STREAMS", "k", "$"),
         C2("XADD", "k", "NOMKSTREAM", "1-1", "a", "1"), NOT_YET, C2("XADD", "k", "2-1", "a", "1"), READ)
    case(f"{_proto}-served-xread-one-of-several", *_pre, *fill("a", 1), *fill("b", 1),
         block("XREAD", "COUNT", "5", "BLOCK", "0", "STREAMS", "a", "b", "nokey", "$", "$", "$"),
         C2("XADD", "b", "8-1", "f", "v"), READ, C2("XADD", "a", "8-1", "f", "v"))
    case(f"{_proto}-served-xread-explicit-id", *_pre, *fill("s", 3),
         block("XREAD", "BLOCK", "0", "STREAMS", "s", "9"), C2("XADD", "s", "5-1", "a", "1"), NOT_YET,
         C2("XADD", "s", "9-0", "a", "1"), NOT_YET, C2("XADD", "s", "9-1", "b", "2"), READ)
    case(f"{_proto}-served-xread-count", *_pre, C("XADD", "s", "1-1", "a", "1"),
         block("XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", "$"),
         C2("MULTI"), C2("XADD", "s", "2-1", "b", "2"), C2("XADD", "s", "3-1", "c", "3"), C2("EXEC"), READ)
    case(f"{_proto}-served-xread-no-count-all", *_pre, C("XADD", "s", "1-1", "a", "1"),
         block("XREAD", "BLOCK", "0", "STREAMS", "s", "$"),
         C2("MULTI"), C2("XADD", "s", "2-1", "b", "2"), C2("XADD", "s", "3-1", "c", "3"), C2("EXEC"), READ)

case("xread-served-with-nothing-left", *fill("s", 1), block("XREAD", "BLOCK", "0", "STREAMS", "s", "$"),
     C2("XADD", "s", "MAXLEN", "0", "5-1", "a", "1"), READ, C2("XLEN", "s"))
case("xread-key-becomes-wrong-type-while-blocked", block("XREAD", "BLOCK", "0", "STREAMS", "k", "$"),
     C2("SET", "k", "x"), NOT_YET, C2("DEL", "k"), C2("XADD", "k", "1-1", "a", "1"), READ)
case("xread-served-then-next-command", *fill("s", 1),
     Silent(encode_command("XREAD", "BLOCK", "0", "STREAMS", "s", "$") + encode_command("XLEN", "s")),
     C2("XADD", "s", "2-1", "a", "1"), Raw(b"", 2))
case("xread-errors", *fill("s", 2), C("SET", "str", "x"), C("XREAD", "STREAMS", "s", "t", "0"),
     C("XREAD", "STREAMS", "s", "streams", "0"), C("XREAD", "COUNT", "x", "STREAMS", "s", "0"),
     C("XREAD", "COUNT", "99999999999999999999", "STREAMS", "s", "0"),
     C("XREAD", "BLOCK", "-1", "STREAMS", "s", "0"), C("XREAD", "BLOCK", "1.5", "STREAMS", "s", "0"),
     C("XREAD", "BLOCK", "abc", "STREAMS", "s", "0"), C("XREAD", "BLOCK", "9223372036854775808", "STREAMS", "s", "0"),
     C("XREAD", "STREAMS", "s", "abc"), C("XREAD", "STREAMS", "s", "+"), C("XREAD", "STREAMS", "s", "-"),
     C("XREAD", "STREAMS", "s", "1-x"), C("XREAD", "STREAMS", "s", "(1"), C("XREAD", "STREAMS", "s", "1-*"),
     C("XREAD", "foo", "STREAMS", "s", "0"), C("XREAD", "COUNT", "1", "s", "0"), C("XREAD", "COUNT", "1", "BLOCK", "0"),
     C("XREAD", "GROUP", "g", "c", "STREAMS", "s", "0"), C("XREAD", "NOACK", "STREAMS", "s", "0"),
     C("XREAD", "STREAMS", "s", ">"), C("XREAD", "STREAMS", "str", "0"), C("XREAD", "STREAMS", "str", "x"),
     C("XREAD", "STREAMS", "s", "str", "x", "0"), C("XREAD", "STREAMS", "s", "str", "0", "x"),
     C("XREAD", "STREAMS", "nokey", "str", "$", "$"), C("XREAD", "BLOCK", "x", "GROUP", "STREAMS", "s", "0"),
     C("XREAD", "COUNT", "1", "STREAMS"), C("xread", "streams", "s", "$", "s"))
case("xread-in-scripts", *fill("s", 2),
     C("EVAL", "return redis.pcall('xread', 'BLOCK', '0', 'STREAMS', 's', '0')", "0"),
     C("EVAL", "return redis.pcall('XrEaD', 'BLOCK', '10', 'STREAMS', 's', '$')", "0"),
     C("EVAL", "return redis.pcall('XREAD', 'COUNT', '1', 'STREAMS', KEYS[1], '0')", "1", "s"),
     C("EVAL", "return redis.pcall('XREAD', 'STREAMS', KEYS[1], '$')", "1", "s"))
arity("XREAD")
arity("XREAD", "STREAMS")
arity("XREAD", "STREAMS", "s")


@pytest.mark.parametrize("seq", CASES, ids=CASES.ids())
def test_same_replies_as_redis(servers: Servers, seq: Case) -> None:  # noqa: F811
    check_case(servers, seq)


def test_kvred_survived_the_cases(servers: Servers) -> None:  # noqa: F811
    check_survived(servers)
