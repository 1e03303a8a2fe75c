"""The `cmsgpack` library Redis loads into Lua (lua-cmsgpack 0.4): MessagePack.

pack(...) encodes each argument and concatenates them: integral numbers as the
smallest integer type, others as float32 when that is exact, else float64; strings as
fixstr/str8/str16/str32; a table whose keys are 1..n as an array, any other as a map;
nesting past 16 levels as nil. unpack(s) returns every value in s; unpack_one and
unpack_limit return the offset after what they read first.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from lupa import lua51

from .errors import ScriptError

__all__ = ["make_library"]

MAX_NESTING = 16  # LUACMSGPACK_MAX_NESTING: deeper tables are packed as nil


def _pack_int(n: int) -> bytes:
    if n >= 0:
        if n <= 127:
            return bytes([n])
        for code, fmt, top in ((0xCC, ">B", 0xFF), (0xCD, ">H", 0xFFFF), (0xCE, ">I", 0xFFFFFFFF)):
            if n <= top:
                return bytes([code]) + struct.pack(fmt, n)
        return b"\xcf" + struct.pack(">Q", n & 0xFFFFFFFFFFFFFFFF)
    if n >= -32:
        return struct.pack(">b", n)
    for code, fmt, low in ((0xD0, ">b", -128), (0xD1, ">h", -32768), (0xD2, ">i", -(2**31))):
        if n >= low:
            return bytes([code]) + struct.pack(fmt, n)
    return b"\xd3" + struct.pack(">q", max(n, -(2**63)))


def _pack_number(n: float) -> bytes:
    if n == n and n not in (math.inf, -math.inf) and n == math.floor(n) and -(2**63) <= n < 2**64:
        return _pack_int(int(n))
    as_float = struct.unpack(">f", struct.pack(">f", n))[0] if abs(n) < 3.5e38 or n != n else None
    if as_float is not None and (as_float == n or n != n):
        return b"\xca" + struct.pack(">f", n)
    return b"\xcb" + struct.pack(">d", n)


def _pack_bytes(data: bytes) -> bytes:
    size = len(data)
    if size < 32:
        head = bytes([0xA0 | size])
    elif size <= 0xFF:
        head = b"\xd9" + bytes([size])
    elif size <= 0xFFFF:
        head = b"\xda" + struct.pack(">H", size)
    else:
        head = b"\xdb" + struct.pack(">I", size)
    return head + data


def _pack(value: Any, level: int) -> bytes:
    kind = type(value)
    if kind is bytes:
        return _pack_bytes(value)
    if kind is bool:
        return b"\xc3" if value else b"\xc2"
    if kind is int or kind is float:
        return _pack_number(value)
    if lua51.lua_type(value) == "table" and level < MAX_NESTING:
        items = list(value.items())
        count = len(items)
        if all(type(k) in (int, float) for k, _ in items) and sorted(k for k, _ in items) == list(range(1, count + 1)):
            head = bytes([0x90 | count]) if count < 16 else (b"\xdc" + struct.pack(">H", count) if count <= 0xFFFF else b"\xdd" + struct.pack(">I", count))
            by_key = dict(items)
            return head + b"".join(_pack(by_key[i], level + 1) for i in range(1, count + 1))
        head = bytes([0x80 | count]) if count < 16 else (b"\xde" + struct.pack(">H", count) if count <= 0xFFFF else b"\xdf" + struct.pack(">I", count))
        return head + b"".join(_pack(k, level + 1) + _pack(v, level + 1) for k, v in items)
    return b"\xc0"


class _Reader:
    def __init__(self, lua: Any, data: bytes, pos: int = 0) -> None:
        self.lua = lua
        self.data = data
        self.pos = pos

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ScriptError(b"Missing bytes in input.", "runtime")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def number(self, fmt: str, size: int) -> Any:
        return struct.unpack(fmt, self.take(size))[0]

    def value(self) -> Any:
        code = self.take(1)[0]
        if code <= 0x7F:
            return code
        if code >= 0xE0:
            return code - 256
        if 0xA0 <= code <= 0xBF:
            return self.take(code & 0x1F)
        if 0x90 <= code <= 0x9F:
            return self.array(code & 0x0F)
        if 0x80 <= code <= 0x8F:
            return self.map(code & 0x0F)
        fixed = {0xC0: None, 0xC2: False, 0xC3: True}
        if code in fixed:
            return fixed[code]
        numbers = {0xCA: (">f", 4), 0xCB: (">d", 8), 0xCC: (">B", 1), 0xCD: (">H", 2), 0xCE: (">I", 4),
                   0xCF: (">Q", 8), 0xD0: (">b", 1), 0xD1: (">h", 2), 0xD2: (">i", 4), 0xD3: (">q", 8)}
        if code in numbers:
            value = self.number(*numbers[code])
            return float(value) if abs(value) >= 2**53 else value
        sizes = {0xC4: (">B", 1), 0xC5: (">H", 2), 0xC6: (">I", 4), 0xD9: (">B", 1), 0xDA: (">H", 2), 0xDB: (">I", 4)}
        if code in sizes:
            return self.take(self.number(*sizes[code]))
        if code in (0xDC, 0xDD):
            return self.array(self.number(">H", 2) if code == 0xDC else self.number(">I", 4))
        if code in (0xDE, 0xDF):
            return self.map(self.number(">H", 2) if code == 0xDE else self.number(">I", 4))
        raise ScriptError(b"Bad data format in input.", "runtime")

    def array(self, count: int) -> Any:
        table = self.lua.table()
        for i in range(1, count + 1):
            item = self.value()
            if item is not None:
                table[i] = item
        return table

    def map(self, count: int) -> Any:
        table = self.lua.table()
        for _ in range(count):
            key, item = self.value(), self.value()
            if key is not None and item is not None:
                table[key] = item
        return table


def make_library(lua: Any) -> Any:
    def pack(*args: Any) -> bytes:
        if not args:
            raise ScriptError(b"MessagePack pack needs input.", "runtime")
        return b"".join(_pack(a, 0) for a in args)

    def unpack_some(data: Any, limit: int, offset: int) -> tuple[Any, ...]:
        if type(data) is not bytes:
            raise ScriptError(b"bad argument #1 to 'unpack' (string expected, got %s)" % (lua51.lua_type(data) or "nil").encode(), "runtime")
        reader = _Reader(lua, data, offset)
        values: list[Any] = []
        while reader.pos < len(data) and (limit <= 0 or len(values) < limit):
            values.append(reader.value())
        return reader.pos, values  # type: ignore[return-value]

    def unpack(*args: Any) -> tuple[Any, ...]:
        _pos, values = unpack_some(args[0] if args else None, 0, 0)
        return tuple(values)  # type: ignore[arg-type]

    def unpack_limit(data: Any = None, limit: Any = 0, offset: Any = 0) -> tuple[Any, ...]:
        pos, values = unpack_some(data, int(limit or 0), int(offset or 0))
        return (-1 if pos >= len(data) else pos, *values)  # type: ignore[misc]

    def unpack_one(data: Any = None, offset: Any = 0) -> tuple[Any, ...]:
        return unpack_limit(data, 1, offset)

    return lua.table_from(
        {b"pack": pack, b"unpack": unpack, b"unpack_one": unpack_one, b"unpack_limit": unpack_limit,
         b"_NAME": b"cmsgpack", b"_VERSION": b"lua-cmsgpack 0.4.0"}
    )
