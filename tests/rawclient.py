"""A tiny RESP client over a raw socket, for tests that assert exact wire bytes.

Unlike redis-py, it never interprets a reply: `read_reply()` returns the raw
bytes of exactly one complete RESP2/RESP3 reply, so tests can compare the bytes
of two servers. `parse_reply()` turns such bytes into a tagged tree when a test
must normalise a reply (sort KEYS, mask the HELLO id, ...).

Every socket operation is bounded by a timeout (5 s by default).
"""

from __future__ import annotations

import socket
import time
from typing import Any, Self

__all__ = [
    "RawClient",
    "ReplyIncomplete",
    "encode_command",
    "parse_reply",
    "reply_end",
]

DEFAULT_TIMEOUT_S = 5.0
RECV_CHUNK_BYTES = 65536

# RESP type bytes, grouped by how their extent is found.
_LINE_TYPES = b"+-:_,#("  # one CRLF-terminated line
_BULK_TYPES = b"$=!"  # <len>\r\n<len bytes>\r\n, or -1 for null ($ only)
_ARRAY_TYPES = b"*~>"  # <count>\r\n then count replies, or -1 for null
_PAIR_TYPES = b"%|"  # <count>\r\n then 2*count replies


class ReplyIncomplete(Exception):
    """The buffer does not yet hold one complete reply."""


def encode_command(*args: bytes | str | int) -> bytes:
    """Encode a command as a RESP multibulk request."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


def _line(buf: bytes, pos: int) -> tuple[bytes, int]:
    """Return the line starting at `pos` (without CRLF) and the index after it."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise ReplyIncomplete
    return buf[pos:end], end + 2


def reply_end(buf: bytes, pos: int = 0) -> int:
    """Return the index just past the complete reply starting at `pos`.

    Raises ReplyIncomplete if more bytes are needed and ValueError if the bytes
    are not RESP.
    """
    if pos >= len(buf):
        raise ReplyIncomplete
    kind = buf[pos]
    header, nxt = _line(buf, pos + 1)
    if kind in _LINE_TYPES:
        return nxt
    if kind in _BULK_TYPES:
        length = int(header)
        if length < 0:
            return nxt
        if len(buf) < nxt + length + 2:
            raise ReplyIncomplete
        return nxt + length + 2
    if kind in _ARRAY_TYPES or kind in _PAIR_TYPES:
        count = int(header)
        if count < 0:
            return nxt
        if kind in _PAIR_TYPES:
            count *= 2
        for _ in range(count):
            nxt = reply_end(buf, nxt)
        if kind == ord("|"):
            # An attribute is metadata placed in front of the real reply.
            nxt = reply_end(buf, nxt)
        return nxt
    raise ValueError(f"not a RESP type byte {bytes([kind])!r} at {pos} in {buf[:200]!r}")


def _parse(buf: bytes, pos: int) -> tuple[Any, int]:
    kind = chr(buf[pos])
    header, nxt = _line(buf, pos + 1)
    if kind in "+-":
        return (kind, header), nxt
    if kind in ":(":
        return (kind, int(header)), nxt
    if kind == "_":
        return ("_", None), nxt
    if kind in ",#":
        return (kind, header), nxt
    if kind in "$=!":
        length = int(header)
        if length < 0:
            return (kind, None), nxt
        return (kind, buf[nxt : nxt + length]), nxt + length + 2
    if kind in "*~>":
        count = int(header)
        if count < 0:
            return (kind, None), nxt
        items = []
        for _ in range(count):
            item, nxt = _parse(buf, nxt)
            items.append(item)
        return (kind, items), nxt
    if kind in "%|":
        pairs = []
        for _ in range(int(header)):
            key, nxt = _parse(buf, nxt)
            value, nxt = _parse(buf, nxt)
            pairs.append((key, value))
        if kind == "|":
            reply, nxt = _parse(buf, nxt)
            return ("|", (pairs, reply)), nxt
        return ("%", pairs), nxt
    raise ValueError(f"not a RESP type byte {kind!r}")


def parse_reply(raw: bytes) -> Any:
    """Parse exactly one reply into a tagged tree: (type_char, payload).

    Payloads: bytes for + - $ = ! , #; int for : (; None for _ and nulls;
    a list of nodes for * ~ >; a list of (key, value) node pairs for %.
    """
    node, end = _parse(raw, 0)
    if end != len(raw):
        raise ValueError(f"trailing bytes after reply: {raw[end:]!r}")
    return node


class RawClient:
    """One TCP connection; sends bytes, returns raw reply bytes."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = DEFAULT_TIMEOUT_S):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False  # the peer closed (FIN or RST)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv(self, timeout: float) -> bytes:
        """One recv bounded by `timeout`; b'' means closed. Raises TimeoutError."""
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(RECV_CHUNK_BYTES)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.eof = True
        return chunk

    def read_reply(self, timeout: float | None = None) -> bytes:
        """Return the exact bytes of ONE complete reply.

        Raises TimeoutError if it does not arrive in time, and ConnectionError
        if the server closes the connection first.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                end = reply_end(self.buf)
            except ReplyIncomplete:
                pass
            else:
                reply, self.buf = self.buf[:end], self.buf[end:]
                return reply
            if self.eof:
                raise ConnectionError(f"connection closed; partial reply {self.buf[:200]!r}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no complete reply; have {self.buf[:200]!r}")
            self.buf += self._recv(remaining)

    def call(self, *args: bytes | str | int) -> bytes:
        """Send one multibulk command and return its raw reply bytes."""
        self.send(encode_command(*args))
        return self.read_reply()

    def read_until_close(self, timeout: float | None = None) -> tuple[bytes, bool]:
        """Read everything until the server closes, or the timeout passes.

        Returns (bytes received, closed?). Buffered bytes are included.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                self.buf += self._recv(remaining)
            except TimeoutError:
                break
        data, self.buf = self.buf, b""
        return data, self.eof

    def read_available(self, timeout: float) -> bytes:
        """Return whatever arrives within `timeout` (for "no reply" checks)."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                self.buf += self._recv(remaining)
            except TimeoutError:
                break
        data, self.buf = self.buf, b""
        return data

    def is_closed(self, timeout: float = 2.0) -> bool:
        """True if the server closes the connection within `timeout`.

        Data that arrives meanwhile is kept in the buffer for read_reply().
        """
        deadline = time.monotonic() + timeout
        while not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                self.buf += self._recv(remaining)
            except TimeoutError:
                return False
        return True

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
