"""FUNCTION's libraries (Redis 7.0's functions.c): load, delete, flush, dump/restore, list.

A library is the code FUNCTION LOAD was given; running it registers its functions
(redis.register_function, through the runner). Functions are found by name without
regard to case, as Redis's dictionary does; library names are case-sensitive.

DUMP payload (kvred's own format; Redis's is an RDB fragment): b"KVFN" + version byte 1 +
for each library a 4-byte big-endian length and its code, then the CRC-32 of all that,
4 bytes big-endian. RESTORE checks the magic, version and CRC (else Redis's "DUMP
payload version or checksum are wrong") and loads each library's code as FUNCTION LOAD.
"""

from __future__ import annotations

import re
import struct
import zlib
from typing import TYPE_CHECKING, Any

from ..resp import split_inline_args

if TYPE_CHECKING:
    from .runner import ScriptRunner

__all__ = ["FunctionLibraries", "Library", "Function"]

DUMP_MAGIC = b"KVFN\x01"
_NAME = re.compile(rb"[A-Za-z0-9_]+")
ERR_NAME = b"Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"


class Function:
    __slots__ = ("name", "callback", "description", "flags", "library")

    def __init__(self, name: bytes, callback: Any, description: bytes | None, flags: list[bytes], library: Library):
        self.name = name
        self.callback = callback
        self.description = description
        self.flags = flags
        self.library = library


class Library:
    __slots__ = ("name", "code", "functions")

    def __init__(self, name: bytes, code: bytes) -> None:
        self.name = name
        self.code = code
        self.functions: dict[bytes, Function] = {}  # lowercase name -> function


def parse_metadata(code: bytes) -> tuple[bytes, bytes, int] | bytes:
    """Redis's functionExtractLibMetaData: (engine, name, shebang length) or the error."""
    if not code.startswith(b"#!"):
        return b"Missing library metadata"
    end = code.find(b"\n")
    if end < 0:
        return b"Invalid library metadata"
    parts = split_inline_args(code[:end])
    if not parts:
        return b"Invalid library metadata"
    name = None
    for part in parts[1:]:
        if part[:5].lower() == b"name=":
            if name is not None:
                return b"Invalid metadata value, name argument was given multiple times"
            name = part[5:]
            continue
        return b"Invalid metadata value given: " + part
    if name is None:
        return b"Library name was not given"
    return parts[0][2:], name, end


class FunctionLibraries:
    def __init__(self, runner: ScriptRunner) -> None:
        self.runner = runner
        self.libraries: dict[bytes, Library] = {}
        self.functions: dict[bytes, Function] = {}  # lowercase name -> function
        self._engine: Any = None
        self._loading: Library | None = None  # the library whose code is running

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from .engine import LuaEngine

            self._engine = LuaEngine("function", self.runner, self.runner.rand, self.runner.max_memory)
        return self._engine

    def find(self, name: bytes) -> Function | None:
        return self.functions.get(name.lower())

    def register(self, name: bytes, callback: Any, desc: bytes | None, flags: list[bytes]) -> bytes | None:
        """redis.register_function during a load: None, or the error text."""
        library = self._loading
        if library is None:
            return b"redis.register_function can only be called on FUNCTION LOAD command"
        if _NAME.fullmatch(name) is None:
            return ERR_NAME
        if name.lower() in library.functions:
            return b"Function already exists in the library"
        library.functions[name.lower()] = Function(name, callback, desc, flags, library)
        return None

    def load(self, code: bytes, replace: bool) -> tuple[bytes, None] | tuple[None, bytes]:
        """FUNCTION LOAD: (library name, None) or (None, error text)."""
        metadata = parse_metadata(code)
        if isinstance(metadata, bytes):
            return None, metadata
        engine_name, name, length = metadata
        if _NAME.fullmatch(name) is None:
            return None, ERR_NAME
        if engine_name.upper() != b"LUA":
            return None, b"Engine '" + engine_name + b"' not found"
        old = self.libraries.get(name)
        if old is not None and not replace:
            return None, b"Library '" + name + b"' already exists"
        library = Library(name, code)
        self._loading = library
        self.runner.start_load_timer()
        try:
            error = self.engine.load_library(code[length:], True)
        finally:
            self._loading = None
        if error is not None:
            return None, error
        if not library.functions:
            return None, b"No functions registered"
        for key, function in library.functions.items():
            existing = self.functions.get(key)
            if existing is not None and existing.library is not old:
                return None, b"Function " + function.name + b" already exists"
        if old is not None:
            self._unlink(old)
        self.libraries[name] = library
        self.functions.update(library.functions)
        return name, None

    def _unlink(self, library: Library) -> None:
        del self.libraries[library.name]
        for key in library.functions:
            self.functions.pop(key, None)

    def delete(self, name: bytes) -> bool:
        library = self.libraries.get(name)
        if library is None:
            return False
        self._unlink(library)
        return True

    def flush(self) -> None:
        self.libraries.clear()
        self.functions.clear()
        self._engine = None  # as Redis: a new Lua state

    def dump(self) -> bytes:
        body = DUMP_MAGIC + b"".join(struct.pack(">I", len(lib.code)) + lib.code for lib in self.libraries.values())
        return body + struct.pack(">I", zlib.crc32(body))

    @staticmethod
    def parse_dump(payload: bytes) -> list[bytes] | None:
        if len(payload) < len(DUMP_MAGIC) + 4 or not payload.startswith(DUMP_MAGIC):
            return None
        body, crc = payload[:-4], payload[-4:]
        if struct.pack(">I", zlib.crc32(body)) != crc:
            return None
        codes = []
        pos = len(DUMP_MAGIC)
        while pos < len(body):
            if pos + 4 > len(body):
                return None
            (size,) = struct.unpack(">I", body[pos : pos + 4])
            codes.append(body[pos + 4 : pos + 4 + size])
            pos += 4 + size
        return codes if pos == len(body) else None
