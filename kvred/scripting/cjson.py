"""The `cjson` library Redis loads into Lua (lua-cjson 2.1): encode and decode JSON.

As lua-cjson: numbers print with `%.14g`; a table whose keys are all positive integers
is an array (too sparse an array is an error), any other table an object, an empty
table `{}`; `/` is escaped; JSON null decodes to `cjson.null`; NaN and infinity cannot
be encoded. Errors are Lua errors at the script's line, with lua-cjson's texts.
"""

from __future__ import annotations

import json
import math
from typing import Any

from lupa import lua51

from .errors import ScriptError

__all__ = ["make_library"]

MAX_DEPTH = 1000  # lua-cjson's default encode/decode nesting limit
SPARSE_RATIO, SPARSE_SAFE = 2, 10  # lua-cjson's encode_sparse_array defaults

_ESCAPES = {i: b"\\u%04x" % i for i in range(32)}
_ESCAPES.update({8: b"\\b", 9: b"\\t", 10: b"\\n", 12: b"\\f", 13: b"\\r", 34: b'\\"', 47: b"\\/", 92: b"\\\\", 127: b"\\u007f"})
_ESCAPE_TABLE = [_ESCAPES.get(i, bytes([i])) for i in range(256)]
_NEEDS_ESCAPE = bytes(sorted(_ESCAPES))


def _escape(text: bytes) -> bytes:
    if not text.translate(None, _NEEDS_ESCAPE) == text:
        text = b"".join(_ESCAPE_TABLE[c] for c in text)
    return b'"' + text + b'"'


def _number(value: float) -> bytes:
    if value != value or value in (math.inf, -math.inf):
        raise ScriptError(b"Cannot serialise number: must not be NaN or Inf", "runtime")
    return b"%.14g" % value


class _Encoder:
    def __init__(self, is_null: Any) -> None:
        self.is_null = is_null

    def encode(self, value: Any, depth: int) -> bytes:
        kind = type(value)
        if kind is bytes:
            return _escape(value)
        if kind is bool:
            return b"true" if value else b"false"
        if kind is int or kind is float:
            return _number(value)
        if value is None:
            return b"null"
        lua_type = lua51.lua_type(value)
        if lua_type == "table":
            return self.table(value, depth + 1)
        if lua_type == "userdata" and self.is_null(value):
            return b"null"
        raise ScriptError(b"Cannot serialise %s: type not supported" % (lua_type or "userdata").encode(), "runtime")

    def table(self, table: Any, depth: int) -> bytes:
        if depth > MAX_DEPTH:
            raise ScriptError(b"Cannot serialise, excessive nesting (%d)" % depth, "runtime")
        items = list(table.items())
        length = self.array_length(items)
        if length > 0:
            values = dict(items)
            return b"[" + b",".join(self.encode(values.get(i), depth) for i in range(1, length + 1)) + b"]"
        parts = []
        for key, value in items:
            if type(key) is bytes:
                name = key
            elif type(key) in (int, float):
                name = _number(key)
            else:
                raise ScriptError(b"Cannot serialise table: table key must be a number or string", "runtime")
            parts.append(_escape(name) + b":" + self.encode(value, depth))
        return b"{" + b",".join(parts) + b"}"

    @staticmethod
    def array_length(items: list[tuple[Any, Any]]) -> int:
        """lua-cjson's lua_array_length: -1 unless every key is a positive integer."""
        highest = 0
        for key, _value in items:
            if type(key) not in (int, float) or key < 1 or key != math.floor(key):
                return -1
            highest = max(highest, int(key))
        if highest > SPARSE_SAFE and highest > len(items) * SPARSE_RATIO:
            raise ScriptError(b"Cannot serialise table: excessively sparse array", "runtime")
        return highest


def _to_bytes(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def make_library(lua: Any) -> Any:
    null = lua.eval(b"newproxy(false)")
    is_null = lua.eval(b"function(null) return function(v) return v == null end end")(null)
    encoder = _Encoder(is_null)

    def to_lua(value: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise ScriptError(b"Found too many nested data structures (%d) at character 1" % depth, "runtime")
        if isinstance(value, str):
            return _to_bytes(value)
        if isinstance(value, list):
            return lua.table_from([to_lua(v, depth + 1) for v in value])
        if isinstance(value, dict):
            return lua.table_from({_to_bytes(k): to_lua(v, depth + 1) for k, v in value.items()})
        if value is None:
            return null
        return value

    def encode(*args: Any) -> bytes:
        if len(args) != 1:
            raise ScriptError(b"expected 1 argument", "runtime")
        return encoder.encode(args[0], 0)

    def decode(*args: Any) -> Any:
        if len(args) != 1:
            raise ScriptError(b"expected 1 argument", "runtime")
        text = args[0]
        if type(text) in (int, float):
            text = b"%.14g" % text
        if type(text) is not bytes:
            raise ScriptError(b"bad argument #1 to 'decode' (string expected, got %s)"
                              % (lua51.lua_type(text) or ("nil" if text is None else "boolean")).encode(), "runtime")
        try:
            value = json.loads(text.decode("utf-8", "surrogateescape"), parse_int=float)
        except json.JSONDecodeError as exc:
            raise ScriptError(b"Expected value but found invalid token at character %d" % (exc.pos + 1), "runtime") from None
        except RecursionError:
            raise ScriptError(b"Found too many nested data structures at character 1", "runtime") from None
        return to_lua(value, 0)

    def setting(default: Any) -> Any:
        def configure(*args: Any) -> Any:
            return default

        return configure

    return lua.table_from(
        {
            b"encode": encode,
            b"decode": decode,
            b"null": null,
            b"encode_sparse_array": setting((False, SPARSE_RATIO, SPARSE_SAFE)),
            b"encode_max_depth": setting(MAX_DEPTH),
            b"decode_max_depth": setting(MAX_DEPTH),
            b"encode_number_precision": setting(14),
            b"encode_keep_buffer": setting(True),
            b"encode_invalid_numbers": setting(False),
            b"decode_invalid_numbers": setting(True),
            b"_NAME": b"cjson",
            b"_VERSION": b"2.1.0",
        }
    )
