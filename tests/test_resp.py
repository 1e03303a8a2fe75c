"""Pure tests of kvred.resp's request parser: no sockets, no processes.

One table of wire cases (WIRE.md section 5, plus the sdssplitargs/string2ll
details it relies on) is fed whole, one byte at a time, split in two at every
offset, and with a partial next command appended; every way must give the
same commands, the same protocol error and the same query buffer. Expected
values are redis-server 7.0.15's behaviour; the oracle comparison against the
real server lives in another test file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kvred.fastparse import FastRequestParser
from kvred.resp import (
    PROTO_INLINE_MAX_SIZE,
    RequestParser,
    encode_command,
    parse_strict_int,
    split_inline_args,
)

Argv = list[bytes]
Case = tuple[str, bytes, list[Argv], bytes | None]
HYPOTHESIS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Written out here, not imported: the test must not share the parser's typos.
INLINE_LIMIT = 64 * 1024
assert PROTO_INLINE_MAX_SIZE == INLINE_LIMIT


def _proto(what: bytes) -> bytes:
    return b"-ERR Protocol error: " + what + b"\r\n"


INVALID_MBULK = _proto(b"invalid multibulk length")
INVALID_BULK = _proto(b"invalid bulk length")
UNBALANCED = _proto(b"unbalanced quotes in request")
BIG_INLINE = _proto(b"too big inline request")
BIG_MBULK_COUNT = _proto(b"too big mbulk count string")
BIG_BULK_COUNT = _proto(b"too big bulk count string")
TOO_BIG = (BIG_INLINE, BIG_MBULK_COUNT, BIG_BULK_COUNT)


def expected_dollar(got: bytes) -> bytes:
    # Redis formats the byte with %c, then maps CR and LF to spaces
    # (addReplyErrorFormat), so the reply stays one line.
    return _proto(b"expected '$', got '" + got + b"'")


def mbulk(*args: bytes) -> bytes:
    """Canonical multibulk, written independently of kvred.resp.encode_command."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


PING = mbulk(b"PING")
BIG_ARG = bytes(range(256)) * 160  # 40 KB: above Redis's 32 KB "big argument" path
MANY = [[b"SET", b"key:%d" % i, b"v%d" % i] if i % 3 else [b"GET", b"key:%d" % (i - 1)]
        for i in range(300)]
MANY_INPUT = b"".join(mbulk(*a) if i % 2 else b" ".join(a) + b"\r\n" for i, a in enumerate(MANY))

CASES: list[Case] = [
    # -- multibulk
    ("mbulk-ping", PING, [[b"PING"]], None),
    ("mbulk-set", mbulk(b"SET", b"k", b"hello"), [[b"SET", b"k", b"hello"]], None),
    ("mbulk-binary-crlf-nul", b"*3\r\n$3\r\nSET\r\n$4\r\nk\r\n\x00\r\n$6\r\n\x00\r\n\r\n\xff\r\n",
     [[b"SET", b"k\r\n\x00", b"\x00\r\n\r\n\xff"]], None),
    ("mbulk-zero-length-args", b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$0\r\n\r\n", [[b"SET", b"", b""]], None),
    ("mbulk-big-arg", mbulk(b"ECHO", BIG_ARG), [[b"ECHO", BIG_ARG]], None),
    ("mbulk-lf-only-waits", b"*1\n$4\nPING\n", [], None),
    ("mbulk-lf-only-then-crlf", b"*1\n$4\nPING\n\r\n", [], INVALID_MBULK),
    ("mbulk-lf-only-then-command", b"*1\n$4\nPING\n" + PING, [], INVALID_MBULK),
    ("mbulk-lf-only-bulk-line", b"*1\r\n$4\nPING\n\r\n", [], INVALID_BULK),
    ("mbulk-count-cr-waits", b"*1\r", [], None),
    ("mbulk-arg-missing-waits", b"*2\r\n$4\r\nECHO\r\n", [], None),
    ("mbulk-bulk-data-partial-waits", b"*1\r\n$4\r\nPIN", [], None),
    ("mbulk-bulk-crlf-partial-waits", b"*1\r\n$4\r\nPING\r", [], None),
    # -- inline
    ("inline-ping", b"PING\r\n", [[b"PING"]], None),
    ("inline-args", b"SET k v\r\n", [[b"SET", b"k", b"v"]], None),
    ("inline-spaces-tabs", b"  SET \t k   v \t \r\n", [[b"SET", b"k", b"v"]], None),
    ("inline-lf-only", b"PING\n", [[b"PING"]], None),
    ("inline-lf-only-several", b"ECHO hi\nPING\n", [[b"ECHO", b"hi"], [b"PING"]], None),
    ("inline-cr-inside-line", b"ECHO\rhi\r\n", [[b"ECHO", b"hi"]], None),
    ("inline-dollar-line", b"$x\r\n", [[b"$x"]], None),
    ("inline-high-bytes", b"ECHO \xc3\xa9\xff\xa0\x85\r\n", [[b"ECHO", b"\xc3\xa9\xff\xa0\x85"]], None),
    # sdssplitargs ends a bare token only at ' ' \n \r \t; \v and \f are kept...
    ("inline-vt-ff-inside-token", b"ECHO a\x0bb\x0cc\r\n", [[b"ECHO", b"a\x0bb\x0cc"]], None),
    # ...but isspace() skips them between tokens.
    ("inline-vt-ff-between-tokens", b"\x0b\x0cPING \x0b\x0c\r\n", [[b"PING"]], None),
    ("inline-star-inside", b"KEYS *\r\nKEYS a*\r\n", [[b"KEYS", b"*"], [b"KEYS", b"a*"]], None),
    ("inline-then-multibulk", b"PING\r\n*1\r\n$4\r\nPING\r\nECHO x\n", [[b"PING"], [b"PING"], [b"ECHO", b"x"]], None),
    ("inline-empty-lines", b"\r\n\n  \r\nPING\r\n\r\n", [[b"PING"]], None),
    ("inline-nul-between", b"ECHO\x00a\x00\r\n", [[b"ECHO", b"a"]], None),
    ("inline-pipelined", b"PING\r\n" * 16 + b"SET k v\r\nGET k\r\n",
     [[b"PING"]] * 16 + [[b"SET", b"k", b"v"], [b"GET", b"k"]], None),
    ("inline-no-newline-waits", b"PING", [], None),
    ("inline-cr-no-lf-waits", b"PING\r", [], None),
    # -- quoted inline arguments
    ("inline-quotes", b"SET \"a b\" 'c d'\r\n", [[b"SET", b"a b", b"c d"]], None),
    ("inline-dq-escapes", rb'SET "1\n2\r3\t4\x41\x4a\x4A5\"6\\7\b\a\q" ' + rb"'it\'s \n'" + b"\r\n",
     [[b"SET", b'1\n2\r3\t4AJJ5"6\\7\x08\x07q', b"it's \\n"]], None),
    ("inline-dq-bad-hex", rb'ECHO "\x4g\xZZ\x"' + b"\r\n", [[b"ECHO", b"x4gxZZx"]], None),
    ("inline-dq-crlf-escapes", rb'ECHO "a\r\nb"' + b"\r\n", [[b"ECHO", b"a\r\nb"]], None),
    ("inline-empty-quotes", b"SET \"\" ''\r\n", [[b"SET", b"", b""]], None),
    ("inline-quote-inside-token", b'ECHO a"b c"\r\n', [[b"ECHO", b"ab c"]], None),
    ("inline-closing-quote-then-tab", b"SET \"k\"\t'v'\x0b\r\n", [[b"SET", b"k", b"v"]], None),
    ("inline-unbalanced-dq", b'SET "a b\r\n', [], UNBALANCED),
    ("inline-unbalanced-sq", b"SET 'a b\r\n", [], UNBALANCED),
    ("inline-unbalanced-escaped-dq", rb'ECHO "a\"' + b"\r\n", [], UNBALANCED),
    ("inline-unbalanced-escaped-sq", rb"ECHO 'a\'" + b"\r\n", [], UNBALANCED),
    ("inline-dq-then-char", b'ECHO "a"b\r\n', [], UNBALANCED),
    ("inline-sq-then-char", b"ECHO 'a'b\r\n", [], UNBALANCED),
    ("inline-dq-then-dq", b'ECHO "a""b"\r\n', [], UNBALANCED),
    # -- empty inline lines are skipped silently
    ("empty-crlf", b"\r\n", [], None),
    ("empty-lf", b"\n", [], None),
    ("empty-spaces", b"   \r\n", [], None),
    ("empty-tabs-lf", b" \t \n", [], None),
    ("empty-lines-then-ping", b"\r\n\r\nPING\r\n", [[b"PING"]], None),
    # -- multibulk count line
    ("count-zero-ignored", b"*0\r\n" + PING, [[b"PING"]], None),
    ("count-minus-one-ignored", b"*-1\r\n" + PING, [[b"PING"]], None),
    ("count-minus-five-ignored", b"*-5\r\nPING\r\n", [[b"PING"]], None),
    ("count-int64-min-ignored", b"*-9223372036854775808\r\n" + PING, [[b"PING"]], None),
    ("count-below-int64-min", b"*-9223372036854775809\r\n", [], INVALID_MBULK),
    ("count-abc", b"*abc\r\n", [], INVALID_MBULK),
    ("count-empty", b"*\r\n", [], INVALID_MBULK),
    ("count-leading-zero", b"*01\r\n", [], INVALID_MBULK),
    ("count-plus", b"*+1\r\n", [], INVALID_MBULK),
    ("count-minus-zero", b"*-0\r\n", [], INVALID_MBULK),
    ("count-trailing-space", b"*1 \r\n", [], INVALID_MBULK),
    ("count-over-int-max", b"*2147483648\r\n", [], INVALID_MBULK),
    ("count-int-max-waits", b"*2147483647\r\n", [], None),
    ("count-1048577-waits", b"*1048577\r\n$4\r\nPING\r\n", [], None),
    ("count-1073741824-waits", b"*1073741824\r\n", [], None),
    # -- bulk length line
    ("bulk-len-minus-one", b"*1\r\n$-1\r\n", [], INVALID_BULK),
    ("bulk-len-abc", b"*1\r\n$abc\r\n", [], INVALID_BULK),
    ("bulk-len-empty", b"*1\r\n$\r\n", [], INVALID_BULK),
    ("bulk-len-plus", b"*1\r\n$+4\r\nPING\r\n", [], INVALID_BULK),
    ("bulk-len-leading-zero", b"*1\r\n$04\r\nPING\r\n", [], INVALID_BULK),
    ("bulk-len-minus-zero", b"*1\r\n$-0\r\n", [], INVALID_BULK),
    ("bulk-len-trailing-space", b"*1\r\n$4 \r\nPING\r\n", [], INVALID_BULK),
    ("bulk-len-huge", b"*2\r\n$3\r\nGET\r\n$999999999999\r\n", [], INVALID_BULK),
    ("bulk-len-over-proto-max", b"*2\r\n$3\r\nGET\r\n$536870913\r\n", [], INVALID_BULK),
    ("bulk-len-proto-max-waits", b"*2\r\n$3\r\nGET\r\n$536870912\r\n", [], None),
    # -- expected '$'
    ("expected-dollar-got-g", b"*2\r\n$3\r\nGET\r\ngarbage\r\n", [], expected_dollar(b"g")),
    ("expected-dollar-line-incomplete-waits", b"*2\r\n$3\r\nGET\r\nx", [], None),
    ("expected-dollar-cr-incomplete-waits", b"*2\r\n$3\r\nGET\r\nx\r", [], None),
    ("expected-dollar-got-x", b"*2\r\n$3\r\nGET\r\nx\r\n", [], expected_dollar(b"x")),
    ("expected-dollar-got-star", b"*2\r\n$4\r\nECHO\r\n" + PING, [], expected_dollar(b"*")),
    ("expected-dollar-got-cr", b"*2\r\n$4\r\nECHO\r\n\r\n", [], expected_dollar(b" ")),
    ("expected-dollar-got-lf", b"*2\r\n$4\r\nECHO\r\n\n\r\n", [], expected_dollar(b" ")),
    ("expected-dollar-got-0xff", b"*2\r\n$4\r\nECHO\r\n\xff\r\n", [], expected_dollar(b"\xff")),
    # -- quirks: bytes after a bulk and the LF after a CR are not checked
    ("quirk-pingxx", b"*1\r\n$4\r\nPINGxx", [[b"PING"]], None),
    ("quirk-pingxx-then-inline", b"*1\r\n$4\r\nPINGxxPING\r\n", [[b"PING"], [b"PING"]], None),
    ("quirk-bulk-too-long", b"*2\r\n$4\r\nECHO\r\n$2\r\nabc\r\n", [[b"ECHO", b"ab"]], None),
    ("quirk-bulk-too-long-inline-rest", b"*2\r\n$4\r\nECHO\r\n$2\r\nabcde\r\n",
     [[b"ECHO", b"ab"], [b"e"]], None),
    ("quirk-count-cr-not-lf", b"*1\rX$4\r\nPING\r\n", [[b"PING"]], None),
    ("quirk-bulk-len-cr-not-lf", b"*1\r\n$4\rXPING\r\n", [[b"PING"]], None),
    # -- NUL bytes are data to kvred (Redis's C string search stops at NUL and waits
    #    for more input; kvred answers at once with the error the line deserves)
    ("nul-in-inline-separates", b"ECHO a\x00b\r\nPING\r\n", [[b"ECHO", b"a", b"b"], [b"PING"]], None),
    ("nul-in-count", b"*1\x00\r\n" + PING, [], INVALID_MBULK),
    ("nul-in-bulk-len", b"*1\r\n$\x004\r\nPING\r\n", [], INVALID_BULK),
    ("nul-instead-of-dollar", b"*2\r\n$4\r\nECHO\r\n\x00\r\n", [], b"-ERR Protocol error: expected '$', got '\x00'\r\n"),
    # -- 64 KB limits on a line with no terminator (strictly more than 64 KB remaining)
    ("inline-64k-waits", b"x" * INLINE_LIMIT, [], None),
    ("inline-too-big", b"x" * (INLINE_LIMIT + 1), [], BIG_INLINE),
    ("inline-too-big-after-command", b"PING\r\n" + b"x" * (INLINE_LIMIT + 1), [[b"PING"]], BIG_INLINE),
    ("count-64k-waits", b"*" + b"1" * (INLINE_LIMIT - 1), [], None),
    ("count-too-big", b"*" + b"1" * INLINE_LIMIT, [], BIG_MBULK_COUNT),
    ("bulk-count-64k-waits", b"*1\r\n$" + b"1" * (INLINE_LIMIT - 1), [], None),
    ("bulk-count-too-big", b"*1\r\n$" + b"1" * INLINE_LIMIT, [], BIG_BULK_COUNT),
    ("bulk-count-too-big-no-dollar", b"*1\r\n" + b"x" * (INLINE_LIMIT + 1), [], BIG_BULK_COUNT),
    # -- commands before an error are returned, commands after it are not
    ("error-after-inline", b"PING\r\nPING\r\n*abc\r\n" + PING, [[b"PING"], [b"PING"]], INVALID_MBULK),
    ("error-after-mbulk", PING + b'ECHO "x\r\n' + PING, [[b"PING"]], UNBALANCED),
    ("error-in-second-mbulk", PING + b"*2\r\n$4\r\nECHO\r\n$-1\r\n" + PING, [[b"PING"]], INVALID_BULK),
    # -- a whole canonical command, then one hiredis accepts that is not canonical: the
    #    workers' parser must hand the second to the reference parser from its first byte
    ("canonical-then-unchecked-crlf", PING + b"*1\r\n$4\r\nPINGxx", [[b"PING"], [b"PING"]], None),
    ("canonical-then-simple-string-arg", PING + b"*1\r\n+PING\r\n", [[b"PING"]], expected_dollar(b"+")),
    ("canonical-then-integer-arg", PING + b"*2\r\n$4\r\nECHO\r\n:5\r\n", [[b"PING"]], expected_dollar(b":")),
    ("canonical-then-resp3-set-header", PING + b"~1\r\n" + PING, [[b"PING"], [b"~1"], [b"PING"]], None),
    # -- many commands in one buffer, inline and multibulk mixed
    ("many-commands", MANY_INPUT, MANY, None),
    ("many-pings-then-error", PING * 100 + b"*01\r\n" + PING, [[b"PING"]] * 100, INVALID_MBULK),
]

# After these the parser is mid-command (a line or a bulk still incomplete), so
# appended bytes would belong to that command: they are not fed with a tail.
WAITING = {case[0] for case in CASES if case[0].endswith("-waits")}

SPLIT_MAX_LEN = 200  # cases shorter than this are also split in two at every offset
MBULK_TAIL = b"*2\r\n$4\r\nECHO\r\n$4\r\nta"
INLINE_TAIL = b"ECHO ta"  # no CR or LF: it cannot end an oversized line
TAIL_REST, TAIL_COMMAND = b"il\r\n", [b"ECHO", b"tail"]


def _params(cases: Iterable[Case]) -> list[object]:
    return [pytest.param(data, commands, err, case_id in WAITING, id=case_id)
            for case_id, data, commands, err in cases]


def _tail_params() -> list[object]:
    params: list[object] = []
    for case_id, data, commands, err in CASES:
        if case_id in WAITING:
            continue
        params.append(pytest.param(data + INLINE_TAIL, commands, err, id=f"{case_id}+inline"))
        if err not in TOO_BIG:  # a line end in the tail would end the oversized line
            params.append(pytest.param(data + MBULK_TAIL, commands, err, id=f"{case_id}+mbulk"))
    return params


# Every parser test runs on the reference parser and on the workers' hiredis-backed
# parser: both must give the same commands, errors and query-buffer sizes.
PARSERS = {"reference": RequestParser, "hiredis": FastRequestParser}
make_parser: Callable[[], RequestParser | FastRequestParser] = RequestParser


@pytest.fixture(autouse=True, params=sorted(PARSERS))
def parser_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    global make_parser
    make_parser = PARSERS[request.param]
    yield request.param
    make_parser = RequestParser


def feed_all(chunks: Iterable[bytes]) -> tuple[list[Argv], RequestParser | FastRequestParser]:
    parser = make_parser()
    commands: list[Argv] = []
    for chunk in chunks:
        commands += parser.feed(chunk)
    return commands, parser


def check_final(parser: RequestParser | FastRequestParser, err: bytes | None, waiting: bool) -> None:
    """The state after a case: closed after an error, an empty query buffer after
    complete commands. (A waiting parser may hold nothing either: the arguments
    already read are no longer part of the query buffer, as in Redis.)"""
    if err is not None:
        assert parser.buffered == 0
        assert parser.feed(PING) == []  # nothing is parsed after a protocol error
        assert parser.error == err
    elif not waiting:
        assert parser.buffered == 0


def test_table_ids_are_unique() -> None:
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(("data", "commands", "err", "waiting"), _params(CASES))
def test_fed_whole(data: bytes, commands: list[Argv], err: bytes | None, waiting: bool) -> None:
    got, parser = feed_all([data])
    assert (got, parser.error) == (commands, err)
    check_final(parser, err, waiting)


@pytest.mark.parametrize(("data", "commands", "err", "waiting"), _params(CASES))
def test_fed_byte_by_byte(data: bytes, commands: list[Argv], err: bytes | None,
                          waiting: bool) -> None:
    got, parser = feed_all(data[i : i + 1] for i in range(len(data)))
    assert (got, parser.error) == (commands, err)
    check_final(parser, err, waiting)
    assert parser.buffered == feed_all([data])[1].buffered


@pytest.mark.parametrize(("data", "commands", "err", "waiting"),
                         _params(c for c in CASES if len(c[1]) < SPLIT_MAX_LEN))
def test_split_at_every_offset(data: bytes, commands: list[Argv], err: bytes | None,
                               waiting: bool) -> None:
    buffered = feed_all([data])[1].buffered
    for offset in range(1, len(data)):
        got, parser = feed_all([data[:offset], data[offset:]])
        assert (got, parser.error, parser.buffered) == (commands, err, buffered), offset


@pytest.mark.parametrize(("data", "commands", "err"), _tail_params())
def test_with_partial_next_command(data: bytes, commands: list[Argv], err: bytes | None) -> None:
    tail = INLINE_TAIL if data.endswith(INLINE_TAIL) else MBULK_TAIL
    parser = make_parser()
    assert (parser.feed(data), parser.error) == (commands, err)
    if err is None:  # the tail waits, whole, in the query buffer...
        tail_only = make_parser()
        assert tail_only.feed(tail) == []
        assert parser.buffered == tail_only.buffered
        assert parser.feed(TAIL_REST) == [TAIL_COMMAND]  # ...until its remainder arrives
        assert parser.buffered == 0
    else:
        assert parser.feed(TAIL_REST) == []
        assert (parser.error, parser.buffered) == (err, 0)


# ---------------------------------------------------------------- split_inline_args

# proto-max-bulk-len on both parsers. Issue: the hiredis path took a whole command from
# one read without checking its arguments' lengths (a 2,000-byte SET under a 1 KB limit).
SMALL_BULK_LIMIT = 16
BULK_LIMIT_CASES: list[Case] = [
    ("at-the-limit", mbulk(b"SET", b"k", b"v" * 16), [[b"SET", b"k", b"v" * 16]], None),
    ("over-the-limit", mbulk(b"SET", b"k", b"v" * 17), [], INVALID_BULK),
    ("over-after-good-commands", mbulk(b"PING") + mbulk(b"SET", b"k", b"v" * 17) + mbulk(b"PING"),
     [[b"PING"]], INVALID_BULK),
    ("over-in-the-command-name", mbulk(b"x" * 17), [], INVALID_BULK),
    ("inline-is-not-bulk", b"SET k " + b"v" * 40 + b"\r\n", [[b"SET", b"k", b"v" * 40]], None),
]


@pytest.mark.parametrize(("data", "commands", "err"), [pytest.param(d, c, e, id=i) for i, d, c, e in BULK_LIMIT_CASES])
def test_proto_max_bulk_len_on_every_path(data: bytes, commands: list[Argv], err: bytes | None) -> None:
    for chunks in ([data], [data[i : i + 1] for i in range(len(data))]):
        parser = make_parser()
        parser.max_bulk_len = SMALL_BULK_LIMIT
        if isinstance(parser, FastRequestParser):
            parser = FastRequestParser(max_bulk_len=SMALL_BULK_LIMIT)
        got: list[Argv] = []
        for chunk in chunks:
            got += parser.feed(chunk)
        assert (got, parser.error) == (commands, err)


@pytest.mark.parametrize(("line", "args"), [
    (b"", []),
    (b"   \t ", []),
    (b"\x0b\x0c \r\n", []),
    (b"a", [b"a"]),
    (b"  a  b\tc\r\nd  ", [b"a", b"b", b"c", b"d"]),
    (b"a\x0bb c\x0cd", [b"a\x0bb", b"c\x0cd"]),  # \v, \f end no bare token...
    (b"\x0b\x0ca \x0bb", [b"a", b"b"]),  # ...but are skipped between tokens
    (b"\xff\xfe \x80", [b"\xff\xfe", b"\x80"]),
    (b'""', [b""]),
    (b"''", [b""]),
    (b'"a b" \'c d\'', [b"a b", b"c d"]),
    (rb'"\n\r\t\b\a"', [b"\n\r\t\x08\x07"]),
    (rb'"\x41\x4a\x4A\x00\xff"', [b"AJJ\x00\xff"]),
    (rb'"\x4" "\x4g" "\xg1" "\X41" "\x"', [b"x4", b"x4g", b"xg1", b"X41", b"x"]),
    (rb'"\"\\\q\'"', [b'"\\q\'']),
    (rb"'it\'s'", [b"it's"]),
    (rb"'\n\x41\"'", [rb"\n\x41\""]),  # single quotes: only \' is an escape
    (b"a\"b c\"", [b"ab c"]),
    (b"a'b c'", [b"ab c"]),
    (b'"a"\tb', [b"a", b"b"]),
    (b'"a"\x0bb', [b"a", b"b"]),  # isspace() after a closing quote
    (b"'a' b", [b"a", b"b"]),
    (b'"a b', None),
    (b"'a b", None),
    (rb'"a\"', None),
    (rb'"a\\\"', None),
    (b'"a\\', None),
    (rb"'a\'", None),
    (rb"'a\\'", None),  # \\ is not an escape in single quotes: \' is
    (b'"a"b', None),
    (b"'a'b", None),
    (b'"a""b"', None),
    (b"'a''b'", None),
    (b'x "a"b', None),
])
def test_split_inline_args(line: bytes, args: list[bytes] | None) -> None:
    assert split_inline_args(line) == args


# ---------------------------------------------------------------- parse_strict_int

@pytest.mark.parametrize(("text", "value"), [
    (b"0", 0),
    (b"1", 1),
    (b"-1", -1),
    (b"1234567890", 1234567890),
    (b"9223372036854775807", 2**63 - 1),
    (b"-9223372036854775808", -(2**63)),
    (b"9223372036854775808", None),
    (b"-9223372036854775809", None),
    (b"18446744073709551616", None),
    (b"99999999999999999999", None),
    (b"00000000000000000001", None),
    (b"-0", None),
    (b"00", None),
    (b"01", None),
    (b"-01", None),
    (b"+1", None),
    (b"+0", None),
    (b"", None),
    (b"-", None),
    (b" 1", None),
    (b"1 ", None),
    (b"1\n", None),
    (b"1\r", None),
    (b"1a", None),
    (b"1_000", None),
    (b"1.0", None),
    (b"0x1", None),
    (b"--1", None),
    (b"\xd9\xa1", None),  # ARABIC-INDIC DIGIT ONE
])
def test_parse_strict_int(text: bytes, value: int | None) -> None:
    assert parse_strict_int(text) == value


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
@HYPOTHESIS
def test_parse_strict_int_accepts_canonical_int64(value: int) -> None:
    assert parse_strict_int(str(value).encode()) == value


@given(st.one_of(st.binary(max_size=24),
                 st.text(alphabet="0123456789+- ", max_size=22).map(str.encode)))
@HYPOTHESIS
def test_parse_strict_int_accepts_only_canonical_text(text: bytes) -> None:
    value = parse_strict_int(text)
    assert value is None or (-(2**63) <= value < 2**63 and str(value).encode() == text)


# ---------------------------------------------------------------- properties

# Pieces that reach the parser's branches far more often than uniform bytes do.
RESP_PIECES = st.sampled_from([
    b"*", b"$", b"\r\n", b"\r", b"\n", b"0", b"1", b"2", b"3", b"-1", b"-", b"+", b"a",
    b"PING", b" ", b"\t", b"\x0b", b'"', b"'", b"\\", b"\\x4", b"\x00", b"\xff",
    b"*1\r\n", b"*2\r\n", b"$0\r\n", b"$1\r\n", b"$3\r\n",
])
# Lines of multibulk headers and payloads with right, wrong or missing line ends.
RESP_LINES = st.lists(
    st.tuples(st.sampled_from([b"*", b"$", b""]),
              st.one_of(st.sampled_from([b"0", b"1", b"2", b"3", b"-1", b"", b"PING"]),
                        st.binary(max_size=4)),
              st.sampled_from([b"\r\n", b"\r\n", b"\n", b"\r", b""])).map(b"".join),
    max_size=15).map(b"".join)
WIRE_BYTES = st.one_of(
    st.binary(max_size=300),
    st.lists(st.one_of(RESP_PIECES, st.binary(max_size=4)), max_size=60).map(b"".join),
    RESP_LINES,
)
KNOWN_ERRORS = {INVALID_MBULK, INVALID_BULK, UNBALANCED, BIG_INLINE, BIG_MBULK_COUNT, BIG_BULK_COUNT}
# %c prints exactly one byte; CR and LF become spaces.
EXPECTED_DOLLAR = re.compile(rb"-ERR Protocol error: expected '\$', got '[^\r\n]'\r\n", re.DOTALL)
ARGVS = st.lists(st.lists(st.binary(max_size=40), max_size=6), max_size=8)
CUTS = st.lists(st.integers(min_value=0), max_size=12)  # cut offsets, taken modulo len + 1


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    return [data[a:b] for a, b in pairwise(bounds)]


def hex_quoted(args: list[bytes]) -> bytes:
    """An inline line quoting every byte of every argument as \\xHH."""
    return b" ".join(b'"' + b"".join(b"\\x%02x" % c for c in arg) + b'"' for arg in args)


@given(WIRE_BYTES, CUTS)
@example(b"*1\r\n\r\n", [])  # a CR where '$' was expected: the reply must stay one line
@example(b"*1\r\n\xff\r\n", [])  # a byte >= 0x80: %c copies the byte, it does not UTF-8 encode it
@HYPOTHESIS
def test_any_bytes_never_raise(data: bytes, cuts: list[int]) -> None:
    commands, parser = feed_all([data])
    assert isinstance(commands, list)
    for argv in commands:
        assert isinstance(argv, list) and argv  # an empty command is never returned
        assert all(type(arg) is bytes for arg in argv)
    if parser.error is not None:
        assert parser.error in KNOWN_ERRORS or EXPECTED_DOLLAR.fullmatch(parser.error)
        assert parser.buffered == 0
        assert parser.feed(PING) == []
    else:
        assert 0 <= parser.buffered <= len(data)
    # Below the 64 KB limits, how the bytes are cut never changes the outcome.
    chunked, chunked_parser = feed_all(cut(data, cuts))
    assert (chunked, chunked_parser.error, chunked_parser.buffered) == (
        commands, parser.error, parser.buffered)


@given(ARGVS, CUTS)
@HYPOTHESIS
def test_encode_command_round_trips(argvs: list[Argv], cuts: list[int]) -> None:
    wire = b"".join(encode_command(argv) for argv in argvs)
    assert wire == b"".join(mbulk(*argv) for argv in argvs)
    expected = [argv for argv in argvs if argv]  # `*0` is ignored
    for chunks in ([wire], cut(wire, cuts)):
        commands, parser = feed_all(chunks)
        assert (commands, parser.error, parser.buffered) == (expected, None, 0)


# encode_command looks up the `$<n>` header of arguments below 1 KB and formats the others
@given(st.lists(st.one_of(st.binary(max_size=8), st.binary(min_size=1020, max_size=1030)), max_size=4))
@HYPOTHESIS
def test_encode_command_short_and_long_arguments(argv: Argv) -> None:
    assert encode_command(argv) == mbulk(*argv)


@pytest.mark.parametrize("argv", [[b"GET", 5], [b"GET", None], [b"GET", [b"x"]], [b"SET", b"k", 1.5],
                                  [b"SET", b"k", "text"], [b"MSET", b"a", b"b", b"c", 7]])
def test_encode_command_rejects_what_is_not_bytes(argv: list[object]) -> None:
    # the workers' canonical check relies on it: hiredis returns ints, None or lists for
    # RESP types a client must not send inside a request
    with pytest.raises(TypeError):
        encode_command(argv)  # type: ignore[arg-type]


@given(st.lists(st.one_of(
    st.lists(st.binary(max_size=30), min_size=1, max_size=5).map(lambda a: (a, encode_command(a))),
    st.lists(st.binary(max_size=12), min_size=1, max_size=5).map(lambda a: (a, hex_quoted(a) + b"\r\n")),
), max_size=10), CUTS)
@HYPOTHESIS
def test_concatenated_commands_in_random_chunks(commands: list[tuple[Argv, bytes]],
                                                cuts: list[int]) -> None:
    wire = b"".join(encoded for argv, encoded in commands)
    got, parser = feed_all(cut(wire, cuts))
    assert (got, parser.error, parser.buffered) == ([argv for argv, encoded in commands], None, 0)


@given(st.lists(st.binary(max_size=20), max_size=8))
@HYPOTHESIS
def test_hex_quoted_args_round_trip(args: list[bytes]) -> None:
    assert split_inline_args(hex_quoted(args)) == args
