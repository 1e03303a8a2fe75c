"""The `struct` library Redis loads into Lua (Roberto Ierusalimschy's struct 0.2):
pack, unpack and size of binary records.

Formats: `<` `>` `!`[n] (endianness, alignment), `x` (a pad byte), `b` `B` `h` `H` `l`
`L` `T` `i[n]` `I[n]` (integers; l/L/T are 8 bytes, i/I default to 4), `f` `d`
(floats), `s` (a zero-terminated string), `c[n]` (n characters; `c0` in unpack takes
its length from the number before it), spaces ignored.
"""

from __future__ import annotations

import struct as pystruct
from collections.abc import Iterator
from typing import Any

from .errors import ScriptError

__all__ = ["make_library"]

MAXINTSIZE = 32
_SIZES = {"b": 1, "B": 1, "h": 2, "H": 2, "l": 8, "L": 8, "T": 8, "f": 4, "d": 8, "x": 1}


def _error(text: str) -> ScriptError:
    return ScriptError(text.encode(), "runtime")


def _options(fmt: bytes) -> list[tuple[str, int]]:
    """(option, size) for each item of `fmt`; endianness/alignment as ('<', 0) etc."""
    out = []
    text = fmt.decode("latin-1")
    i = 0
    while i < len(text):
        opt = text[i]
        i += 1
        number = ""
        while i < len(text) and text[i].isdigit():
            number += text[i]
            i += 1
        if opt == " ":
            continue
        if opt in "<>=":
            out.append((opt, 0))
        elif opt == "!":
            out.append(("!", int(number) if number else 8))
        elif opt in _SIZES:
            out.append((opt, _SIZES[opt]))
        elif opt in "iI":
            size = int(number) if number else 4
            if size > MAXINTSIZE:
                raise _error(f"integral size {size} is larger than limit of {MAXINTSIZE}")
            out.append((opt, size))
        elif opt == "c":
            out.append(("c", int(number) if number else 1))
        elif opt == "s":
            out.append(("s", 0))
        else:
            raise _error(f"invalid format option '{opt}'")
    return out


def _items(fmt: bytes) -> Iterator[tuple[str, int, bool, int]]:
    """(option, size, little-endian, maximum alignment) for each value or padding item."""
    little, max_align = True, 1
    for opt, size in _options(fmt):
        if opt in "<>=":
            little = opt != ">"
        elif opt == "!":
            max_align = size
        else:
            yield opt, size, little, max_align


def _align(pos: int, size: int, max_align: int) -> int:
    align = min(size, max_align)
    if align <= 1 or align & (align - 1):
        return 0
    return (align - pos % align) % align


def make_library(lua: Any) -> Any:
    def pack(fmt: Any = None, *args: Any) -> bytes:
        if type(fmt) is not bytes:
            raise _error("bad argument #1 to 'pack' (string expected, got no value)")
        out, index = bytearray(), 0
        for opt, size, little, max_align in _items(fmt):
            if opt in "bBhHlLTiIfd":
                out += b"\0" * _align(len(out), size, max_align)
            if opt == "x":
                out += b"\0"
                continue
            value = args[index] if index < len(args) else None
            index += 1
            if opt in "bBhHlLTiI":
                if not isinstance(value, (int, float)):
                    raise _error(f"bad argument #{index + 1} to 'pack' (number expected, got {'no value' if value is None else 'string'})")
                number = int(value) & ((1 << (8 * size)) - 1)
                out += number.to_bytes(size, "little" if little else "big")
            elif opt in "fd":
                out += pystruct.pack(("<" if little else ">") + opt, float(value or 0))
            else:
                data: bytes | None = value if type(value) is bytes else (
                    b"%.14g" % value if isinstance(value, (int, float)) else None)
                if data is None:
                    raise _error(f"bad argument #{index + 1} to 'pack' (string expected, got no value)")
                if opt == "c":
                    if size == 0:
                        size = len(data)
                    if len(data) < size:
                        raise _error(f"bad argument #{index + 1} to 'pack' (string too short)")
                    out += data[:size]
                else:
                    out += data + b"\0"
        return bytes(out)

    def unpack(fmt: Any = None, data: Any = None, start: Any = 1) -> tuple[Any, ...]:
        if type(fmt) is not bytes or type(data) is not bytes:
            raise _error("bad argument #1 to 'unpack' (string expected, got no value)")
        pos = int(start) - 1
        values: list[Any] = []
        for opt, size, little, max_align in _items(fmt):
            if opt in "bBhHlLTiIfd":
                pos += _align(pos, size, max_align)
            if opt == "x":
                pos += 1
                continue
            if opt == "s":
                end = data.find(b"\0", pos)
                if end < 0:
                    raise _error("unfinished string in data")
                values.append(data[pos:end])
                pos = end + 1
                continue
            if opt == "c" and size == 0:
                if not values or type(values[-1]) not in (int, float):
                    raise _error("format `c0' needs a previous size")
                size = int(values.pop())
            if pos + size > len(data):
                raise _error("bad argument #2 to 'unpack' (data string too short)")
            chunk = data[pos : pos + size]
            pos += size
            if opt in "bBhHlLTiI":
                values.append(int.from_bytes(chunk, "little" if little else "big", signed=opt in "bhliT" and opt != "T"))
            elif opt in "fd":
                values.append(pystruct.unpack(("<" if little else ">") + opt, chunk)[0])
            else:
                values.append(chunk)
        return (*values, pos + 1)

    def size(fmt: Any = None) -> int:
        if type(fmt) is not bytes:
            raise _error("bad argument #1 to 'size' (string expected, got no value)")
        total, max_align = 0, 1
        for opt, width in _options(fmt):
            if opt == "!":
                max_align = width
            elif opt in "sc" and (opt == "s" or width == 0):
                raise _error("options 'c0' - 's' have undefined sizes")
            elif opt not in "<>=":
                if opt in "bBhHlLTiIfd":
                    total += _align(total, width, max_align)
                total += width
        return total

    return lua.table_from({b"pack": pack, b"unpack": unpack, b"size": size})
