"""Pure tests of the test harness's RESP reply framing (no sockets)."""

from __future__ import annotations

import pytest
from rawclient import ReplyIncomplete, encode_command, parse_reply, reply_end

# (raw reply, parsed tree). Covers every RESP2 and RESP3 type byte.
REPLIES = [
    (b"+OK\r\n", ("+", b"OK")),
    (b"-ERR x y\r\n", ("-", b"ERR x y")),
    (b":-12\r\n", (":", -12)),
    (b"$3\r\na\r\n\r\n", ("$", b"a\r\n")),
    (b"$0\r\n\r\n", ("$", b"")),
    (b"$-1\r\n", ("$", None)),
    (b"*-1\r\n", ("*", None)),
    (b"*0\r\n", ("*", [])),
    (b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n", ("*", [("$", b"a"), ("*", [(":", 1)])])),
    (b"_\r\n", ("_", None)),
    (b",1.5\r\n", (",", b"1.5")),
    (b"#t\r\n", ("#", b"t")),
    (b"(12345678901234567890\r\n", ("(", 12345678901234567890)),
    (b"=7\r\ntxt:abc\r\n", ("=", b"txt:abc")),
    (b"!5\r\nERR x\r\n", ("!", b"ERR x")),
    (b"%1\r\n$1\r\nk\r\n_\r\n", ("%", [(("$", b"k"), ("_", None))])),
    (b"~2\r\n:1\r\n:2\r\n", ("~", [(":", 1), (":", 2)])),
    (b">2\r\n$7\r\nmessage\r\n$1\r\nx\r\n", (">", [("$", b"message"), ("$", b"x")])),
    (b"|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n",
     ("|", ([(("+", b"ttl"), (":", 3))], ("$", b"v")))),
]


@pytest.mark.parametrize("raw,tree", REPLIES, ids=[r[:12].decode("latin-1") for r, _ in REPLIES])
def test_reply_framing(raw: bytes, tree: object) -> None:
    assert reply_end(raw) == len(raw)
    assert reply_end(raw + b"+NEXT\r\n") == len(raw)
    assert parse_reply(raw) == tree
    for cut in range(len(raw)):
        with pytest.raises(ReplyIncomplete):
            reply_end(raw[:cut])


def test_not_resp() -> None:
    with pytest.raises(ValueError):
        reply_end(b"?x\r\n")


def test_encode_command() -> None:
    assert encode_command("SET", b"k\x00", 5) == b"*3\r\n$3\r\nSET\r\n$2\r\nk\x00\r\n$1\r\n5\r\n"
