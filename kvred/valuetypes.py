"""The kinds of value a key can hold, and what the rest of the server must know of each
(Redis's object types and encodings, object.c), sans-IO.

A value is a plain Python object; its class says its type. Each value-type module
(kvred/commands/lists.py, hashes.py, sets.py, zsets.py) registers a `ValueType` for
the classes it stores, and the keyspace (TYPE, SCAN TYPE, COPY), OBJECT ENCODING and
the AOF rewrite ask the registry instead of knowing every type:

    name       TYPE's answer: b"list", b"hash", ...
    encoding   OBJECT ENCODING: the representation Redis would use for this value
               (it follows Redis's size thresholds, which the value records as it
               changes, since Redis never converts back)
    copy       COPY's duplicate, independent of the original
    rewrite    the commands that rebuild the value in an AOF rewrite, in chunks of at
               most REWRITE_ITEMS_PER_CMD items (Redis's AOF_REWRITE_ITEMS_PER_CMD);
               the TTL is written by the rewrite itself

Strings (bytes, or a bytearray once changed in place) are registered here; their
rewrite is special-cased (many keys per MSET) by kvred/rewrite.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .resp import parse_strict_int

__all__ = [
    "ValueType",
    "register_type",
    "value_type",
    "type_name",
    "copy_value",
    "STRING_TYPES",
    "REWRITE_ITEMS_PER_CMD",
]

REWRITE_ITEMS_PER_CMD = 64
STRING_TYPES = (bytes, bytearray)  # a string is bytes, or a bytearray once changed in place


@dataclass(frozen=True, slots=True)
class ValueType:
    name: bytes
    classes: tuple[type, ...]
    encoding: Callable[[Any], bytes]
    copy: Callable[[Any], Any]
    rewrite: Callable[[bytes, Any], Iterator[list[bytes]]]


_BY_CLASS: dict[type, ValueType] = {}


def register_type(kind: ValueType) -> ValueType:
    for cls in kind.classes:
        if cls in _BY_CLASS and _BY_CLASS[cls] is not kind:
            raise ValueError(f"{cls.__name__} already holds {_BY_CLASS[cls].name!r} values")
        _BY_CLASS[cls] = kind
    return kind


def value_type(value: object) -> ValueType | None:
    return _BY_CLASS.get(type(value))


def type_name(value: object) -> bytes:
    """TYPE's answer for a stored value."""
    kind = _BY_CLASS.get(type(value))
    return b"none" if kind is None else kind.name


def copy_value(value: Any) -> Any:
    """COPY's duplicate: immutable values are shared, mutable ones copied."""
    kind = _BY_CLASS.get(type(value))
    return value if kind is None else kind.copy(value)


# --- strings (t_string.c) ---------------------------------------------------------

EMBSTR_SIZE_LIMIT = 44  # Redis's OBJ_ENCODING_EMBSTR_SIZE_LIMIT


def string_as_integer(value: object) -> int | None:
    """string2l as tryObjectEncoding applies it: the integer a string encodes, if any."""
    if type(value) is not bytes or len(value) > 20:
        return None
    return parse_strict_int(value)


def _string_encoding(value: bytes | bytearray) -> bytes:
    if string_as_integer(value) is not None:
        return b"int"
    return b"embstr" if type(value) is bytes and len(value) <= EMBSTR_SIZE_LIMIT else b"raw"


def _string_copy(value: bytes | bytearray) -> bytes | bytearray:
    return bytearray(value) if type(value) is bytearray else value


def _string_rewrite(key: bytes, value: bytes | bytearray) -> Iterator[list[bytes]]:
    yield [b"SET", key, bytes(value)]


STRING = register_type(ValueType(b"string", STRING_TYPES, _string_encoding, _string_copy, _string_rewrite))
