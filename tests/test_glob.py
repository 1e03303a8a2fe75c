"""kvred.glob: Redis's stringmatchlen(), checked against a real redis-server.

Layers:
  * edge-case tables (case-sensitive and nocase); every expected value is also
    asserted against redis-server 7.0 (KEYS, and CONFIG GET for nocase), so the
    tables are verified, not guessed;
  * a differential test: hand-written plus hypothesis-generated patterns over
    an alphabet rich in * ? [ ] ^ - \\, compared with KEYS on a binary key set
    and with CONFIG GET (nocase) on the server's parameter names;
  * pathological inputs that must finish quickly (the old regex translation
    never finished on the first one);
  * the compile cache's bounds and the API's fast-path attributes.

Each behavioural test runs on every engine: the default (one-C-call literal
shapes and a small regex for short patterns) and the segment walker, forced,
with narrow (startswith) and wide (integer mask) segment checks.
"""

from __future__ import annotations

import random
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import redis
from conftest import ServerProcess
from hypothesis import given, settings
from hypothesis import strategies as st

import kvred.glob as glob
from kvred.glob import GlobPattern, compile_glob

MB = 1 << 20
BOUND_S = 10.0  # generous: these cases take milliseconds; the old code never finished

# name -> (REGEX_MAX_PATTERN_BYTES, NARROW_MAX_PARTS, WIDE_MAX_CLASS_GROUPS)
ENGINES = {
    "default": (glob.REGEX_MAX_PATTERN_BYTES, glob.NARROW_MAX_PARTS, glob.WIDE_MAX_CLASS_GROUPS),
    "walk-narrow": (-1, 1 << 30, glob.WIDE_MAX_CLASS_GROUPS),
    "walk-wide-grouped": (-1, 0, 1 << 30),
    "walk-wide-per-class": (-1, 0, 0),
}


@contextmanager
def engine(name: str) -> Iterator[None]:
    """Select an engine for GlobPattern objects built inside the block."""
    saved = ENGINES["default"]
    (glob.REGEX_MAX_PATTERN_BYTES, glob.NARROW_MAX_PARTS, glob.WIDE_MAX_CLASS_GROUPS) = ENGINES[name]
    try:
        yield
    finally:
        (glob.REGEX_MAX_PATTERN_BYTES, glob.NARROW_MAX_PARTS, glob.WIDE_MAX_CLASS_GROUPS) = saved


@pytest.fixture(params=list(ENGINES))
def engine_name(request: pytest.FixtureRequest) -> Iterator[str]:
    with engine(request.param):
        yield request.param


# (pattern, subject, stringmatchlen result), each checked against redis-server
# by test_case_table_agrees_with_redis.
CASES: list[tuple[bytes, bytes, bool]] = [
    # empty pattern and empty subject: only "" matches "", and '*' does not
    (b"", b"", True), (b"", b"a", False), (b"*", b"", False), (b"**", b"", False),
    (b"?", b"", False), (b"[^]", b"", False),
    # stars and runs of stars
    (b"*", b"a", True), (b"**", b"abc", True), (b"a*", b"a", True), (b"*a", b"a", True),
    (b"*a*", b"a", True), (b"a*b", b"ab", True), (b"a*b", b"a", False), (b"a*a", b"a", False),
    (b"a*a", b"aa", True), (b"a**b", b"axyzb", True), (b"*a*b*c*", b"xaybzc", True),
    (b"*a*b*c*", b"xcybza", False), (b"*ab*ba*", b"aba", False), (b"*ab*ba*", b"abba", True),
    # '?': exactly one byte, any byte
    (b"?", b"a", True), (b"?", b"ab", False), (b"?", b"\x00", True), (b"??", b"\r\n", True),
    (b"a?c", b"a\nc", True), (b"a?c", b"a\r\nc", False), (b"user:?:x", b"user:7:x", True),
    (b"user:?:x", b"user:77:x", False), (b"*?", b"a", True), (b"?*?", b"a", False),
    # classes, negation, ranges, reversed ranges
    (b"[abc]", b"b", True), (b"[abc]", b"d", False), (b"[^abc]", b"d", True), (b"[^abc]", b"a", False),
    (b"[a-c]", b"b", True), (b"[c-a]", b"b", True), (b"[c-a]", b"d", False), (b"[^c-a]", b"d", True),
    (b"[a-cx-z]", b"y", True), (b"[a-b-c]", b"-", True), (b"[a-b-c]", b"c", True),
    (b"[ab-c]", b"b", True), (b"[a^]", b"^", True), (b"[^^]", b"^", False), (b"[*?]", b"?", True),
    (b"[[]", b"[", True), (b"x[ab]y", b"xby", True), (b"x[ab]y", b"xcy", False),
    # ']' right after '[' closes the class; '[^]' is any byte
    (b"[]", b"]", False), (b"[]", b"[]", False), (b"[]a]", b"]a]", False), (b"[]a]", b"a]", False),
    (b"[^]", b"x", True), (b"[^]", b"xy", False), (b"[^]]", b"x]", True), (b"[]-a]", b"-a]", False),
    # '-' at the start or end of a class
    (b"[-]", b"-", True), (b"[-a]", b"-", True), (b"[-a]", b"a", True), (b"[^-]", b"-", False),
    (b"[--0]", b"/", True), (b"[a-]", b"-", False), (b"[a-]", b"]", True), (b"[a-]", b"^", True),
    (b"[a-]", b"a", True), (b"[ab-]", b"-", False), (b"[ab-]", b"]", True), (b"[ab-]", b"a", True),
    (b"[a-b-]", b"-", True), (b"[\\a-]", b"-", True),
    (b"[a-]]", b"]", True), (b"[a-]]", b"]]", False), (b"[a-]]x", b"ax", True),
    # unterminated classes: still a class, up to the end of the pattern
    (b"[", b"[", False), (b"[", b"a", False), (b"x[", b"x[", False), (b"x[", b"x", False),
    (b"[^", b"x", True), (b"[^", b"^", True), (b"x[^", b"xa", True), (b"[a", b"a", True),
    (b"[a", b"[a", False), (b"[ab", b"b", True), (b"[a-b", b"b", True), (b"[^a", b"b", True),
    (b"[^a", b"a", False), (b"a*[b", b"axxb", True), (b"a*[b*", b"axx*", True),
    # escapes outside and inside classes, and a trailing lone backslash
    (b"\\*", b"*", True), (b"\\*", b"a", False), (b"\\?", b"?", True), (b"\\?", b"a", False),
    (b"\\[a]", b"[a]", True), (b"\\[a]", b"a", False), (b"\\a", b"a", True), (b"\\\\", b"\\", True),
    (b"\\", b"\\", True), (b"a\\", b"a\\", True), (b"a\\", b"a", False), (b"\\**", b"*x", True),
    (b"\\**", b"x*", False), (b"*\\*", b"x*", True), (b"\\\\*", b"\\x", True),
    (b"[\\]]", b"]", True), (b"[\\\\]", b"\\", True), (b"[\\^a]", b"^", True),
    (b"[\\a-b]", b"-", True), (b"[\\a-b]", b"b", True), (b"[\\a-b]", b"\\", False),
    (b"[a-\\]", b"\\", True), (b"[a-\\]", b"]", True), (b"[a-\\]", b"b", False),
    (b"[\\", b"\\", True), (b"[a\\", b"\\", True),
    # binary subjects; ranges compare signed chars (0x80-0xff are negative)
    (b"\x00*\xff", b"\x00abc\xff", True), (b"*\r\n*", b"a\r\nb", True), (b"[\x00]", b"\x00", True),
    (b"[\x80-\xff]", b"\x90", True), (b"[\x80-\xff]", b"a", False), (b"[a-\xff]", b"\x80", False),
    (b"[a-\xff]", b"\x00", True), (b"[a-\xff]", b"\xff", True), (b"[a-\xff]", b"b", False),
    (b"[\x00-\x80]", b"\x90", True), (b"[\x00-\x80]", b"a", False), (b"[\x7f-\x80]", b"b", True),
    (b"[^a-\xff]", b"b", True), (b"[^a-\xff]", b"\x80", True),
    # more than 1000 star runs followed by pattern never match (Redis's recursion guard)
    (b"*a" * 1000, b"a" * 1000, True), (b"*a" * 1001, b"a" * 1001, False),
    (b"*a" * 1000 + b"*", b"a" * 1001, True), (b"*a" * 1001 + b"*", b"a" * 1002, False),
    (b"*?" * 10000, b"a" * 20, False),
]

# (pattern, config name, stringmatchlen(..., nocase=1)), checked against CONFIG GET.
# Every pattern holds one of "*?[" so that CONFIG GET matches instead of looking up.
NOCASE_CASES: list[tuple[bytes, bytes, bool]] = [
    (b"MAXMEM*", b"maxmemory", True), (b"?AXMEMORY", b"maxmemory", True),
    (b"[M]axmemory", b"maxmemory", True), (b"[^M]axmemory", b"maxmemory", False),
    (b"[^m]AXMEMORY", b"maxmemory", False), (b"[A-Z]axmemory", b"maxmemory", True),
    (b"[A-z]axmemory", b"maxmemory", True), (b"[z-A]axmemory", b"maxmemory", True),
    # bounds are lowered after the swap, so these ranges are empty
    (b"[Z-a]axmemory", b"maxmemory", False), (b"[a-Z]axmemory", b"maxmemory", False),
    # an escaped byte in a class is compared case-sensitively
    (b"[\\M]axmemory", b"maxmemory", False), (b"[\\m]axmemory", b"maxmemory", True),
    (b"[^\\M]axmemory", b"maxmemory", True), (b"max\\Memory*", b"maxmemory", True),
    (b"*-POLICY", b"maxmemory-policy", True), (b"*[_]CPULIST", b"bio_cpulist", True),
]


def bounded(fn: Callable[[], object], seconds: float = BOUND_S) -> object:
    """fn(), failing the test if it has not returned within `seconds`."""
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(fn()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"did not finish within {seconds} s"
    return result[0]


def as_bytes(name: bytes | str) -> bytes:
    return name.encode() if isinstance(name, str) else name


# ---------------------------------------------------------------- pure unit tests


@pytest.mark.parametrize(("pattern", "subject", "expected"), CASES,
                         ids=[repr(p[:24]) + " ~ " + repr(s[:16]) for p, s, _ in CASES])
def test_cases(engine_name: str, pattern: bytes, subject: bytes, expected: bool) -> None:
    compiled = GlobPattern(pattern)
    assert compiled.match(subject) is expected
    assert compiled.select([subject]) == ([subject] if expected else [])


@pytest.mark.parametrize(("pattern", "subject", "expected"), NOCASE_CASES,
                         ids=[repr(p) for p, _, _ in NOCASE_CASES])
def test_nocase_cases(engine_name: str, pattern: bytes, subject: bytes, expected: bool) -> None:
    assert GlobPattern(pattern, nocase=True).match(subject) is expected


def test_nocase_folds_ascii_letters_only(engine_name: str) -> None:
    assert GlobPattern(b"a*Z", nocase=True).match(b"Ayz")
    assert GlobPattern(b"[a-c]?", nocase=True).match(b"B\xc9")
    # Redis sets only LC_COLLATE, so tolower() runs in the C locale and leaves
    # bytes >= 0x80 alone. Not checked against the server: no nocase command
    # (CONFIG GET, COMMAND LIST FILTERBY PATTERN) matches non-ASCII names.
    assert not GlobPattern(b"\xc9*", nocase=True).match(b"\xe9")
    # case-sensitive by default
    assert not GlobPattern(b"A*").match(b"abc")


def test_literal_and_matches_everything() -> None:
    assert compile_glob(b"user:1").literal == b"user:1"
    assert compile_glob(b"a\\*b\\?\\[").literal == b"a*b?["
    assert compile_glob(b"").literal == b""
    assert compile_glob(b"a\\").literal == b"a\\"
    for pattern in (b"a*", b"a?", b"[a]", b"*"):
        assert compile_glob(pattern).literal is None
    assert compile_glob(b"user:1", nocase=True).literal is None
    assert compile_glob(b"*").matches_everything
    # '**' matches every key but the empty one, so KEYS must not skip matching
    assert not compile_glob(b"**").matches_everything
    assert not compile_glob(b"*").match(b"") and compile_glob(b"*").match(b"x")


def test_compile_cache_is_bounded_by_pattern_bytes() -> None:
    short = b"user:*:" + b"x" * (glob.CACHE_MAX_PATTERN_BYTES - 7)
    long = short + b"x"
    assert compile_glob(short) is compile_glob(short)
    assert compile_glob(short, nocase=True) is not compile_glob(short)
    assert compile_glob(long) is not compile_glob(long)
    assert glob._compile_cached.cache_info().maxsize == glob.CACHE_MAX_ENTRIES


ALPHABET_TABLE = bytes.maketrans(bytes(range(256)), b"abcdefgh[]-?\\^\x00\xff" * 16)


def test_large_distinct_patterns_leave_no_memory_behind() -> None:
    """The old lru_cache kept 40 distinct 256 KB patterns at about 200 MB."""
    rng = random.Random(3)
    keys = [b"user:%d" % i for i in range(100)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(40):
            body = rng.randbytes(256 * 1024).translate(ALPHABET_TABLE)
            pattern = b"%d:" % i + body[:1000] + b"*" + body[1000:]
            compiled = compile_glob(pattern)
            compiled.select(keys)
            if i < 3:  # also build the lazily materialized parts (slow under tracemalloc)
                compiled.match(b"x" * 300_000)
        del compiled
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 4 * MB


# ---------------------------------------------------------------- pathological inputs


PATHOLOGICAL = [
    ("20 stars vs 40 bytes", b"a*" * 20 + b"b", b"a" * 40, False),
    ("20 stars vs 100 KB", b"a*" * 20 + b"b", b"a" * 100_000, False),
    ("1000 star runs vs 100 KB", b"*a" * 1000 + b"b", b"a" * 100_000, False),
    ("10,000 *? pairs", b"*?" * 10_000, b"a" * 20_000, False),
    ("1 MB literal, equal", b"k" * MB, b"k" * MB, True),
    ("1 MB literal, last byte differs", b"k" * MB, b"k" * (MB - 1) + b"x", False),
    ("1 MB literal then star", b"k" * MB + b"*", b"k" * MB + b"tail", True),
    ("1 MB infix", b"*" + b"k" * MB + b"*", b"x" + b"k" * MB + b"y", True),
    ("1 MB suffix", b"*" + b"k" * MB, b"xy" + b"k" * (MB - 1), False),
    ("1 MB prefix and suffix", b"k" * MB + b"*" + b"j" * MB, b"k" * MB + b"j" * MB, True),
    ("1 MB class, member", b"[" + b"abc" * (MB // 3) + b"]", b"c", True),
    ("1 MB class, not a member", b"[" + b"abc" * (MB // 3) + b"]", b"d", False),
    ("1 MB class of ranges", b"[" + b"a-c0-9" * (MB // 6) + b"]", b"5", True),
    ("1 MB dense ?x", b"?x" * (MB // 2), b"ax" * (MB // 2), True),
    ("1 MB dense classes", b"[ab]" * (MB // 4), b"ab" * (MB // 8), True),
    ("1 MB dense classes, one byte off", b"[ab]" * (MB // 4), b"ab" * (MB // 8 - 1) + b"ac", False),
]


@pytest.mark.parametrize(("pattern", "subject", "expected"), [case[1:] for case in PATHOLOGICAL],
                         ids=[case[0] for case in PATHOLOGICAL])
def test_pathological_inputs_finish(engine_name: str, pattern: bytes, subject: bytes,
                                    expected: bool) -> None:
    def run() -> tuple[bool, bool]:
        compiled = GlobPattern(pattern)
        return compiled.match(subject), compiled.match(b"user:1234")

    assert bounded(run) == (expected, False)


# ---------------------------------------------------------------- against redis-server


@pytest.fixture(scope="module")
def oracle(redis_server: ServerProcess) -> Iterator[redis.Redis]:
    client = redis.Redis(port=redis_server.port, socket_timeout=10)
    try:
        yield client
    finally:
        client.close()


def load_keys(client: redis.Redis, keys: list[bytes]) -> None:
    client.flushall()
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.set(key, b"1")
    pipe.execute()


def keys_like_redis(compiled: GlobPattern, keys: list[bytes]) -> list[bytes]:
    """What KEYS returns when built on GlobPattern, as kvred is meant to use it."""
    return sorted(keys if compiled.matches_everything else compiled.select(keys))


def test_case_table_agrees_with_redis(oracle: redis.Redis) -> None:
    subjects = sorted({subject for _, subject, _ in CASES})
    load_keys(oracle, subjects)
    for pattern, subject, expected in CASES:
        if pattern == b"*":
            continue  # KEYS skips matching for exactly '*' (see test_keys_star_special_case)
        assert (subject in oracle.keys(pattern)) is expected, (pattern, subject)


def test_keys_star_special_case(oracle: redis.Redis) -> None:
    load_keys(oracle, [b"", b"a"])
    assert sorted(oracle.keys(b"*")) == [b"", b"a"]
    assert sorted(oracle.keys(b"**")) == [b"a"]
    for pattern in (b"*", b"**"):
        assert keys_like_redis(compile_glob(pattern), [b"", b"a"]) == sorted(oracle.keys(pattern))


def test_nocase_table_agrees_with_config_get(oracle: redis.Redis) -> None:
    for pattern, name, expected in NOCASE_CASES:
        found = {as_bytes(key) for key in oracle.config_get(pattern)}
        assert (name in found) is expected, (pattern, name)


KEY_ALPHABET = b"ab*?[]^-\\A\x00\x80\xff\n"
PATTERN_ALPHABET = b"*?[]^-\\abA\x80\xff"


SENTINEL = b"glob-differential-keys"  # present only while the differential key set is loaded


def differential_keys() -> list[bytes]:
    rng = random.Random(20240229)
    keys = {bytes(rng.choice(KEY_ALPHABET) for _ in range(rng.randint(1, 8))) for _ in range(400)}
    keys |= {b"", b"a", b"ab", b"aaaa", b"\x00", b"\xff\x80", b"a" * 40, b"-]^\\", b"[a]", SENTINEL}
    return sorted(keys)


HAND_PATTERNS = sorted({pattern for pattern, _, _ in CASES if len(pattern) < 100}) + [
    b"*[a-]*", b"*[^a-]*", b"[\\", b"*\\", b"?\\", b"[]]*", b"[^]]*", b"*[*]*", b"*\\[*",
    b"[\x80-\xff]*", b"*[\xff-\x80]", b"[-\\]]*", b"a*a*a*a*a*a*a*a*a*a*b", b"*?*?*?a",
]


def assert_keys_agree(client: redis.Redis, keys: list[bytes], pattern: bytes) -> None:
    expected = sorted(client.keys(pattern))
    for name in ENGINES:
        with engine(name):
            assert keys_like_redis(GlobPattern(pattern), keys) == expected, (name, pattern)


@pytest.fixture(scope="module")
def differential(oracle: redis.Redis) -> tuple[redis.Redis, list[bytes]]:
    keys = differential_keys()
    load_keys(oracle, keys)
    return oracle, keys


def test_hand_patterns_agree_with_keys(differential: tuple[redis.Redis, list[bytes]]) -> None:
    client, keys = differential
    if not client.exists(SENTINEL):
        load_keys(client, keys)
    for pattern in HAND_PATTERNS:
        assert_keys_agree(client, keys, pattern)


@settings(max_examples=600, derandomize=True, deadline=None, database=None)
@given(pattern=st.lists(st.sampled_from(PATTERN_ALPHABET), max_size=12).map(bytes))
def test_generated_patterns_agree_with_keys(differential: tuple[redis.Redis, list[bytes]],
                                            pattern: bytes) -> None:
    client, keys = differential
    if not client.exists(SENTINEL):  # another test loaded its own keys
        load_keys(client, keys)
    assert_keys_agree(client, keys, pattern)


NOCASE_ALPHABET = b"*?[]^-\\amxyzeMAXYZ_\xe9"


@pytest.fixture(scope="module")
def config_names(oracle: redis.Redis) -> list[bytes]:
    names = sorted(as_bytes(name) for name in oracle.config_get(b"*"))
    assert b"maxmemory" in names
    return names


@settings(max_examples=400, derandomize=True, deadline=None, database=None)
@given(pattern=st.lists(st.sampled_from(NOCASE_ALPHABET), min_size=1, max_size=10).map(bytes)
       .filter(lambda p: any(c in p for c in b"*?[")))
def test_generated_nocase_patterns_agree_with_config_get(
        oracle: redis.Redis, config_names: list[bytes], pattern: bytes) -> None:
    # CONFIG GET matches with stringmatch(pattern, name, nocase=1) when the
    # pattern holds one of "*?[" (otherwise it looks the name up directly).
    expected = sorted(as_bytes(name) for name in oracle.config_get(pattern))
    for name in ENGINES:
        with engine(name):
            compiled = GlobPattern(pattern, nocase=True)
            assert sorted(compiled.select(config_names)) == expected, (name, pattern)
