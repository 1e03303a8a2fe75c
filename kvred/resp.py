"""Sans-IO RESP: the request parser and the reply encoders.

Bytes go in, commands come out; nothing here touches a socket. The parser
follows redis-server 7.0's `processMultibulkBuffer` / `processInlineBuffer`
byte for byte, including its quirks (the two bytes after a bulk are skipped
unchecked, `*0` and `*-N` are ignored, an empty inline line is ignored), so a
client sees the same replies and the same protocol errors as with Redis.

Contract of `RequestParser.feed(data)`: returns every command completed by
`data` (a list of argv lists of bytes). When the input is invalid, the
commands before the fault are still returned, `error` is set to the complete
`-ERR Protocol error: ...` reply, and every later `feed` returns nothing: the
caller answers the returned commands, then the error, then closes.
"""

from __future__ import annotations

import re

__all__ = [
    "PROTO_MAX_BULK_LEN",
    "PROTO_INLINE_MAX_SIZE",
    "MULTIBULK_MAX_LEN",
    "RequestParser",
    "parse_strict_int",
    "split_inline_args",
    "encode_command",
    "simple",
    "error",
    "integer",
    "bulk",
    "array",
    "double",
    "verbatim",
    "encode_value",
    "OK",
    "PONG",
    "QUEUED",
    "NULL_BULK",
    "NULL_RESP3",
    "EMPTY_ARRAY",
]

PROTO_MAX_BULK_LEN = 512 * 1024 * 1024  # bytes; Redis's proto-max-bulk-len
PROTO_INLINE_MAX_SIZE = 64 * 1024  # bytes; an inline line or a count line longer than this is refused
MULTIBULK_MAX_LEN = 2**31 - 1  # Redis 7.0 refuses only counts above INT_MAX

# string2ll's grammar: no sign but '-', no leading zeros, no spaces.
_STRICT_INT = re.compile(rb"-?[1-9][0-9]*|0")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def parse_strict_int(text: bytes) -> int | None:
    """Redis's string2ll: the value of `text` as a signed 64-bit integer, or None."""
    if len(text) > 20 or _STRICT_INT.fullmatch(text) is None:
        return None
    value = int(text)
    if value < _INT64_MIN or value > _INT64_MAX:
        return None
    return value


def _protocol_error(what: str) -> bytes:
    return b"-ERR Protocol error: " + what.encode() + b"\r\n"


_ERR_INVALID_MULTIBULK = _protocol_error("invalid multibulk length")
_ERR_INVALID_BULK = _protocol_error("invalid bulk length")
_ERR_BIG_INLINE = _protocol_error("too big inline request")
_ERR_BIG_MBULK_COUNT = _protocol_error("too big mbulk count string")
_ERR_BIG_BULK_COUNT = _protocol_error("too big bulk count string")
_ERR_UNBALANCED = _protocol_error("unbalanced quotes in request")

_HEX_DIGITS = b"0123456789abcdefABCDEF"
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_SPACE = b" \n\r\t\v\f\x00"


def split_inline_args(line: bytes) -> list[bytes] | None:
    """Redis's sdssplitargs: split an inline line honouring quotes; None if unbalanced."""
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _SPACE:
            i += 1
        if i >= n:
            return args
        current = bytearray()
        in_double = in_single = False
        while True:
            if in_double:
                if i >= n:
                    return None
                c = line[i]
                if (
                    c == 0x5C  # backslash
                    and i + 3 < n
                    and line[i + 1] == ord("x")
                    and line[i + 2] in _HEX_DIGITS
                    and line[i + 3] in _HEX_DIGITS
                ):
                    current.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 0x5C and i + 1 < n:
                    i += 1
                    current.append(_ESCAPES.get(line[i], line[i]))
                elif c == 0x22:  # closing quote must be followed by a space or the end
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        return None
                    in_double = False
                    i += 1
                    break
                else:
                    current.append(c)
            elif in_single:
                if i >= n:
                    return None
                c = line[i]
                if c == 0x5C and i + 1 < n and line[i + 1] == 0x27:
                    i += 1
                    current.append(0x27)
                elif c == 0x27:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        return None
                    in_single = False
                    i += 1
                    break
                else:
                    current.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in _SPACE:
                    break
                if c == 0x22:
                    in_double = True
                elif c == 0x27:
                    in_single = True
                else:
                    current.append(c)
            i += 1
        args.append(bytes(current))


class RequestParser:
    """Incremental parser of client requests (RESP2 multibulk and inline)."""

    __slots__ = ("_buf", "_argv", "_args_left", "_bulk_len", "_consumed", "error", "max_bulk_len", "strict")

    def __init__(self, max_bulk_len: int = PROTO_MAX_BULK_LEN, strict: bool = False) -> None:
        self._buf = bytearray()
        self._argv: list[bytes] = []  # arguments of the multibulk being read
        self._args_left = 0  # arguments still expected; 0 = at a command boundary
        self._bulk_len = -1  # length of the bulk being read; -1 = its `$` line not read yet
        self._consumed = 0  # where the unparsed tail starts once a step needs more input
        self.error: bytes | None = None  # the protocol error reply, once input went bad
        self.max_bulk_len = max_bulk_len
        # strict: multibulk only, count >= 1 (the AOF's canonical form, as Redis's loader wants)
        self.strict = strict

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete command (the query buffer)."""
        return len(self._buf)

    @property
    def in_command(self) -> bool:
        """True when part of a command has been read (a torn tail, at end of input)."""
        return bool(self._buf) or self._args_left > 0

    def feed(self, data: bytes) -> list[list[bytes]]:
        if self.error is not None:
            return []
        buf = self._buf
        buf += data
        commands: list[list[bytes]] = []
        pos = 0
        end = len(buf)
        while pos < end:
            if self._args_left == 0:
                if buf[pos] == 0x2A:  # '*'
                    step = self._read_count
                elif self.strict:
                    self._fail(_protocol_error(f"expected '*', got '{chr(buf[pos])}'"))
                    break
                else:
                    step = self._read_inline
                nxt = step(buf, pos, end, commands)
                if nxt < 0:
                    break
                pos = nxt
                if self._args_left == 0:
                    continue
            nxt = self._read_bulks(buf, pos, end)
            if nxt < 0:
                break
            pos = nxt
            commands.append(self._argv)
            self._argv = []
        else:
            self._consumed = pos
        if self.error is not None:
            self._buf = bytearray()
        else:
            del buf[: self._consumed]
        return commands

    def _read_bulks(self, buf: bytearray, pos: int, end: int) -> int:
        """Read the remaining `$len CRLF data CRLF` arguments of a multibulk."""
        argv = self._argv
        while self._args_left:
            if self._bulk_len < 0:
                nl = buf.find(b"\r", pos)
                if nl < 0:
                    if end - pos > PROTO_INLINE_MAX_SIZE:
                        return self._fail(_ERR_BIG_BULK_COUNT)
                    return self._need_more(pos)
                if nl + 1 >= end:  # the LF after the CR has not arrived yet
                    return self._need_more(pos)
                if buf[pos] != 0x24:  # '$'
                    return self._fail(_protocol_error(f"expected '$', got '{chr(buf[pos])}'"))
                size = parse_strict_int(bytes(buf[pos + 1 : nl]))
                if size is None or size < 0 or size > self.max_bulk_len:
                    return self._fail(_ERR_INVALID_BULK)
                self._bulk_len = size
                pos = nl + 2
            size = self._bulk_len
            if end - pos < size + 2:
                return self._need_more(pos)
            argv.append(bytes(buf[pos : pos + size]))
            pos += size + 2  # the two bytes after the data are skipped unchecked, as Redis does
            self._bulk_len = -1
            self._args_left -= 1
        return pos

    def _fail(self, reply: bytes) -> int:
        self.error = reply
        return -1

    def _read_count(self, buf: bytearray, pos: int, end: int, commands: list[list[bytes]]) -> int:
        nl = buf.find(b"\r", pos)
        if nl < 0:
            if end - pos > PROTO_INLINE_MAX_SIZE:
                return self._fail(_ERR_BIG_MBULK_COUNT)
            return self._need_more(pos)
        if nl + 1 >= end:
            return self._need_more(pos)
        count = parse_strict_int(bytes(buf[pos + 1 : nl]))
        if count is None or count > MULTIBULK_MAX_LEN or (self.strict and count < 1):
            return self._fail(_ERR_INVALID_MULTIBULK)
        if count > 0:
            self._args_left = count
        return nl + 2  # `*0` and `*-N` are ignored, as Redis does

    def _read_inline(self, buf: bytearray, pos: int, end: int, commands: list[list[bytes]]) -> int:
        nl = buf.find(b"\n", pos)
        if nl < 0:
            if end - pos > PROTO_INLINE_MAX_SIZE:
                return self._fail(_ERR_BIG_INLINE)
            return self._need_more(pos)
        line_end = nl - 1 if nl > pos and buf[nl - 1] == 0x0D else nl
        args = split_inline_args(bytes(buf[pos:line_end]))
        if args is None:
            return self._fail(_ERR_UNBALANCED)
        if args:
            commands.append(args)
        return nl + 1

    def _need_more(self, pos: int) -> int:
        self._consumed = pos
        return -1


# ---------------------------------------------------------------- replies
# Encoders are pure functions from Python values to RESP bytes. The few types
# that differ between RESP2 and RESP3 take a `resp3` flag.

OK = b"+OK\r\n"
PONG = b"+PONG\r\n"
QUEUED = b"+QUEUED\r\n"
NULL_BULK = b"$-1\r\n"
NULL_RESP3 = b"_\r\n"
EMPTY_ARRAY = b"*0\r\n"


def simple(text: bytes) -> bytes:
    return b"+" + text + b"\r\n"


def error(text: str) -> bytes:
    return b"-" + text.encode() + b"\r\n"


def integer(value: int) -> bytes:
    return b":%d\r\n" % value


def bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


def array(items: list[bytes]) -> bytes:
    """An array whose items are already-encoded replies."""
    return b"*%d\r\n" % len(items) + b"".join(items)


def double(value: bytes, resp3: bool) -> bytes:
    return b"," + value + b"\r\n" if resp3 else bulk(value)


def verbatim(text: bytes, resp3: bool) -> bytes:
    """INFO's reply: a verbatim string in RESP3, a bulk string in RESP2."""
    if resp3:
        return b"=%d\r\ntxt:%b\r\n" % (len(text) + 4, text)
    return bulk(text)


def encode_value(value: object, resp3: bool) -> bytes:
    """Encode a plain Python value: bytes/str → bulk, int → integer, None → null,
    list → array, dict → map (RESP3) or flat array (RESP2)."""
    if isinstance(value, bytes):
        return bulk(value)
    if isinstance(value, str):
        return bulk(value.encode())
    if isinstance(value, bool):
        return integer(int(value))
    if isinstance(value, int):
        return integer(value)
    if value is None:
        return NULL_RESP3 if resp3 else NULL_BULK
    if isinstance(value, list):
        return b"*%d\r\n" % len(value) + b"".join(encode_value(v, resp3) for v in value)
    if isinstance(value, dict):
        head = b"%%%d\r\n" % len(value) if resp3 else b"*%d\r\n" % (2 * len(value))
        return head + b"".join(encode_value(k, resp3) + encode_value(v, resp3) for k, v in value.items())
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode_command(argv: list[bytes]) -> bytes:
    """A command as canonical RESP multibulk (what the AOF and clients write)."""
    parts = [b"*%d\r\n" % len(argv)]
    for arg in argv:
        parts.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(parts)
