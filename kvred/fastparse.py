"""The workers' request parser: hiredis's C reader where it is safe, the
reference `RequestParser` everywhere else. Sans-IO, same interface.

hiredis parses RESP replies, and a client's multibulk request is one. Each
command it returns is re-encoded and must equal the bytes it came from, so
this parser accepts exactly what `RequestParser` accepts. It stays on
hiredis only while reads end on a command boundary (the common case: clients
write whole commands). Anything else goes to `RequestParser` from the first
byte concerned: a partial command (so protocol limits and errors are checked
as the bytes arrive, exactly as Redis does), inline commands, malformed
input, and every request before AUTH. Once the reference parser holds no
partial command again, the next read goes back to hiredis.

Measured on pipelined SETs (16 per read): 0.7 us per command instead of
1.9 us. tests/test_resp.py runs its whole wire table through both parsers.
"""

from __future__ import annotations

from typing import Any

from .resp import PROTO_MAX_BULK_LEN, RequestParser, encode_command

try:
    import hiredis
except ImportError:  # kvred works without it, with the reference parser only
    hiredis = None  # type: ignore[assignment]

__all__ = ["FastRequestParser", "has_large_count"]

# An aggregate header (array, set, push, map, attribute) of 10,000 elements or more:
# hiredis allocates the declared size at once (`>536870913` took 4 GB and 10 s), so input
# holding one, real or only look-alike bytes inside a value, goes to the reference parser.
# With hiredis's nesting limit of 7 this bounds its allocation to about 1 MB.
# The search runs on a copy of the input with three byte classes (aggregate type bytes
# -> `*`, digits -> `0`, anything else -> `.`): the regex [*>~%|][0-9]{5} took 9% of a
# worker's time at -P 16 (perf), this takes half as long on a 16-command read.
_COUNT_CLASSES = bytes(
    ord("*") if c in b"*>~%|" else ord("0") if c in b"0123456789" else ord(".") for c in range(256)
)


def has_large_count(data: bytes) -> bool:
    """True if `data` holds an aggregate type byte followed by five digits or more."""
    return b"*00000" in data.translate(_COUNT_CLASSES)


def _plain_inline(data: bytes) -> bool:
    """True if every line of `data` is an inline command that bytes.split() splits as
    sdssplitargs does: no quotes (escapes), no NUL (a separator there, not for split()),
    no vertical tab or form feed (separators for split(), inside a word for
    sdssplitargs), and no line that starts a multibulk."""
    return not (b'"' in data or b"'" in data or b"\x00" in data or b"\x0b" in data or b"\x0c" in data
                or b"\n*" in data)


class FastRequestParser:
    __slots__ = ("_reader", "reference", "max_bulk_len", "_unauthenticated")

    def __init__(self, max_bulk_len: int = PROTO_MAX_BULK_LEN) -> None:
        self.max_bulk_len = max_bulk_len
        self._unauthenticated = False
        self._reader: Any = hiredis.Reader() if hiredis is not None else None
        # the reference parser while it is in charge. None after a feed: hiredis is, so
        # nothing is buffered, there is no error and the client is not before AUTH
        self.reference: RequestParser | None = None if self._reader is not None else self._new_reference()

    def _new_reference(self) -> RequestParser:
        parser = RequestParser(max_bulk_len=self.max_bulk_len)
        parser.unauthenticated = self._unauthenticated
        return parser

    @property
    def unauthenticated(self) -> bool:
        return self._unauthenticated

    @unauthenticated.setter
    def unauthenticated(self, value: bool) -> None:
        # before AUTH, Redis's small request limits apply: only the reference parser checks them
        self._unauthenticated = value
        if self.reference is not None:
            self.reference.unauthenticated = value

    @property
    def error(self) -> bytes | None:
        return self.reference.error if self.reference is not None else None

    @property
    def buffered(self) -> int:
        return self.reference.buffered if self.reference is not None else 0

    @property
    def in_command(self) -> bool:
        return self.reference is not None and self.reference.in_command

    def feed(self, data: bytes) -> list[list[bytes]]:
        reference = self.reference
        if reference is None and self._unauthenticated:
            reference = self.reference = self._new_reference()
        if reference is not None:
            parsed = reference.feed(data)
            if (
                reference.error is None
                and not reference.in_command
                and not self._unauthenticated
                and self._reader is not None
            ):
                self.reference = None  # at a command boundary again: back to hiredis
            return parsed
        if data[:1] != b"*" and data[-1:] == b"\n" and _plain_inline(data):
            # whole inline lines with nothing sdssplitargs treats specially (redis-benchmark's
            # PING_INLINE, telnet/nc users): split by C, not by the reference parser's loop
            # over each byte; the wire table of tests/test_resp.py runs through both
            return [args for line in data.split(b"\n") if (args := line.split())]
        if has_large_count(data) or len(data) > self.max_bulk_len:
            # hiredis allocates a declared array up front (*2147483647 = 16 GB): large
            # counts, real or only look-alike bytes inside values, go to the reference parser.
            # So does a read longer than proto-max-bulk-len: an argument in it could be,
            # and hiredis does not check lengths (an argument longer than the limit that
            # spans reads reaches the reference parser anyway, as a partial command).
            self.reference = self._new_reference()
            return self.feed(data)
        reader = self._reader
        reader.feed(data)
        gets = reader.gets
        commands: list[list[bytes]] = []
        try:
            while True:
                item = gets()
                if type(item) is not list or not item:
                    break  # False: no complete reply left; anything else is not a command
                commands.append(item)
        except Exception:  # ProtocolError, or a RESP3 map with a list as key (TypeError)
            pass
        # The common case, a read of whole canonical commands: one join and one compare
        # for the read (P16 GETs: 340 instead of 550 ns per command).
        try:
            if b"".join(map(encode_command, commands)) == data:
                return commands
        except TypeError:  # a non-bytes argument
            pass
        # Otherwise keep the commands up to the first one that is not canonical, and the
        # reference parser takes the rest from its first byte.
        pos = 0
        good = 0
        for item in commands:
            try:
                encoded = encode_command(item)
            except TypeError:
                break
            if not data.startswith(encoded, pos):
                break
            pos += len(encoded)
            good += 1
        del commands[good:]
        self._reader = hiredis.Reader()
        self.reference = self._new_reference()
        commands += self.feed(data[pos:])
        return commands
