"""AOF reading: the hiredis fast path must accept, refuse and cut exactly what the
strict pure-Python parser does (the same cases run through both readers)."""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

import pytest

from kvred import replay
from kvred.resp import encode_command

SET_A = encode_command([b"SET", b"a", b"1"])
SET_B = encode_command([b"SET", b"b", b"22"])
MULTI = encode_command([b"MULTI"])
EXEC = encode_command([b"EXEC"])
INCR = encode_command([b"INCR", b"n"])
BIG = encode_command([b"SET", b"big", bytes(range(256)) * 600])  # crosses the 64 KB feed size



def _header_across_feeds(header: bytes, before_boundary: int) -> bytes:
    """SET_A, a padding SET, then `header` starting `before_boundary` bytes before the
    reader's first 64 KB feed boundary: only the two feeds together show the header."""
    start = replay.HIREDIS_FEED_BYTES - before_boundary
    size = start - len(SET_A) - len(encode_command([b"SET", b"pad", b""]))
    pad = encode_command([b"SET", b"pad", b"x" * size])
    while len(SET_A) + len(pad) > start:  # the length's digits count too
        size -= 1
        pad = encode_command([b"SET", b"pad", b"x" * size])
    assert len(SET_A) + len(pad) == start
    return SET_A + pad + header + b"$3\r\nSET\r\n"


FILES = {
    "empty": b"",
    "valid": SET_A + SET_B + MULTI + INCR + INCR + EXEC + BIG + SET_B,
    "torn-last": SET_A + SET_B[:-3],
    "torn-multi": SET_A + MULTI + INCR,
    "garbage-middle": SET_A + b"garbage\r\n" + SET_B,
    "unknown-command": SET_A + encode_command([b"NOSUCH", b"x"]) + SET_B,
    "bad-arity": SET_A + encode_command([b"GET"]) + SET_B,
    "bad-bulk-length": SET_A + b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvv\r\n" + SET_B,
    "leading-zero": SET_A + b"*1\r\n$04\r\nPING\r\n" + SET_B,
    "count-cr-without-lf": SET_A + b"*1\rX$4\r\nPING\r\n" + SET_B,
    "reply-not-command": SET_A + b":5\r\n" + SET_B,
    "empty-multibulk": SET_A + b"*0\r\n" + SET_B,
    "exec-without-multi": SET_A + EXEC + SET_B,
    "nested-multi": SET_A + MULTI + MULTI + EXEC,
    "inline": SET_A + b"SET c 3\r\n",
    "huge-count": SET_A + b"*2147483647\r\n$3\r\nSET\r\n",
    # hiredis would allocate the declared 536,870,913 elements (4 GB) if it got the header
    "huge-count-across-feeds": _header_across_feeds(b"*536870913\r\n", 4),
}


@pytest.fixture(params=["hiredis", "python"])
def reader_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "python":
        monkeypatch.setattr(replay, "hiredis", None)  # the reference reader, as without hiredis
    else:
        assert replay.hiredis is not None, "hiredis is a dependency: install it"
    return str(request.param)


def scan(path: Path) -> tuple[replay.AofScan, list[list[bytes]]]:
    applied: list[list[bytes]] = []
    result = replay.scan_aof(str(path), lambda handler, argv: applied.append(argv))
    return result, applied


def reference(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[replay.AofScan, list[list[bytes]]]:
    with monkeypatch.context() as m:
        m.setattr(replay, "hiredis", None)
        return scan(path)


@pytest.mark.parametrize("name", sorted(FILES))
def test_both_readers_agree(name: str, reader_kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "kvred.aof"
    path.write_bytes(FILES[name])
    got = scan(path)
    assert got == reference(path, monkeypatch)


def test_expected_verdicts(tmp_path: Path) -> None:
    path = tmp_path / "kvred.aof"
    verdicts = {}
    for name, content in FILES.items():
        path.write_bytes(content)
        result, _ = scan(path)
        verdicts[name] = ("torn" if result.torn_tail else "error" if result.error else "ok", result.valid_up_to)
    assert verdicts["valid"] == ("ok", len(FILES["valid"]))
    assert verdicts["empty"] == ("ok", 0)
    assert verdicts["torn-last"] == ("torn", len(SET_A))
    assert verdicts["torn-multi"] == ("torn", len(SET_A))
    for name in ("garbage-middle", "unknown-command", "bad-arity", "bad-bulk-length", "leading-zero",
                 "reply-not-command", "empty-multibulk", "exec-without-multi", "inline"):
        assert verdicts[name] == ("error", len(SET_A)), name


def test_random_cuts_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every prefix of a valid file (a torn write at any byte) reads the same both ways."""
    content = FILES["valid"]
    path = tmp_path / "kvred.aof"
    rng = random.Random(7)
    cuts = sorted(set(rng.sample(range(len(content)), 150)) | {0, len(content)})
    for cut in cuts:
        path.write_bytes(content[:cut])
        assert scan(path) == reference(path, monkeypatch), cut


def test_huge_count_cut_by_a_feed_boundary_is_never_allocated(tmp_path: Path) -> None:
    # hiredis allocates a declared array before reading its elements (and a 4 GB list
    # of NULLs takes 10 s to free): the check must see the header across the two feeds
    path = tmp_path / "kvred.aof"
    path.write_bytes(FILES["huge-count-across-feeds"])
    tracemalloc.start()
    try:
        result, applied = scan(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * 1024 * 1024
    assert (result.torn_tail, len(applied)) == (True, 2)
