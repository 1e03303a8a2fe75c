"""One Lua 5.1 state for scripts (Redis's `lctx.lua` for EVAL, and a second one for
functions, as Redis 7.0 keeps them apart): the sandbox, the redis.* API, and the calls
into Lua that the runner makes.

Lua is lupa's `lua51`, the same Lua 5.1 that redis-server embeds, so the language is
Redis's to the byte (integer truncation, `%.17g`, error texts such as "attempt to
index local 'x' (a nil value)"). The Lua half lives in libs/resp.lua (RESP <-> Lua
values) and libs/sandbox.lua (globals, read-only tables, error handler, entry points).

Sandbox, beyond what sandbox.lua hides: the runtime registers no `python.eval` and no
builtins, `python` is removed from the globals and package.loaded, and every attribute
access to a Python object from Lua is refused (`attribute_filter`), so the Python
callables handed to Lua can only be called. They never let an exception other than
ScriptError escape; everything a script can make them do is in `ScriptHost`.

Memory: the state's allocator stops at `LUA_MAX_MEMORY_BYTES`; past it Lua raises "not
enough memory", which fails the script (Redis has no such bound; its scripts share
maxmemory, which kvred does not have).
"""

from __future__ import annotations

import hashlib
import logging
import math
from importlib import resources
from typing import Any, Protocol

from lupa import lua51

from . import bitop, cjson, cmsgpack, luastruct
from .errors import ScriptError

__all__ = ["LuaEngine", "ScriptError", "ScriptHost", "Rand48", "REDIS_VERSION", "LUA_MAX_MEMORY_BYTES"]

log = logging.getLogger("kvred.writer")

REDIS_VERSION = "7.0.15"
REDIS_VERSION_NUM = (7 << 16) | (0 << 8) | 15
LUA_MAX_MEMORY_BYTES = 256 * 1024 * 1024
_LOG_LEVELS = (logging.DEBUG, logging.INFO, logging.INFO, logging.WARNING)  # LOG_DEBUG..LOG_WARNING


class ScriptHost(Protocol):
    """What a Lua state needs from the server (kvred/scripting/runner.py)."""

    def execute(self, argv: list[bytes], resp3: bool) -> bytes | ScriptError: ...

    def command_exists(self, name: bytes) -> bool: ...

    def on_hook(self) -> bool: ...

    def kill_message(self) -> bytes: ...

    def load_timed_out(self) -> bool: ...

    def register_function(self, name: bytes, callback: Any, desc: bytes | None, flags: list[bytes]) -> bytes | None: ...


class Rand48:
    """Redis's redisLrand48/redisSrand48 (rand.c, drand48's generator): math.random gives
    the same numbers as redis-server's. One state for the server, as Redis's is global."""

    A, C, MASK = 0x5DEECE66D, 0xB, (1 << 48) - 1

    def __init__(self) -> None:
        self.x = 0x1234ABCD330E

    def next(self) -> int:
        self.x = (self.A * self.x + self.C) & self.MASK
        return self.x >> 17

    def seed(self, value: int) -> None:
        self.x = ((value & 0xFFFFFFFF) << 16) | 0x330E


def _deny_attributes(obj: object, name: str, is_setting: bool) -> str:
    raise AttributeError("not allowed")


def _arg_bytes(value: Any) -> bytes | None:
    """A redis.call argument as Redis 7.0 reads it: strings as they are, numbers in
    `%.17g`; None for anything else (an error)."""
    kind = type(value)
    if kind is bytes:
        return value  # type: ignore[no-any-return]
    if kind is int or kind is float:
        if value != value:  # NaN: C prints the sign (0/0 is negative on x86)
            return b"-nan" if math.copysign(1.0, value) < 0 else b"nan"
        return b"%.17g" % value
    return None


def _lua_int(value: Any) -> int | None:
    """luaL_checkint: a number, or a string that is one, truncated as C's (int) cast."""
    if type(value) is bytes:
        try:
            value = float(value)
        except ValueError:
            return None
    if type(value) not in (int, float) or value != value:
        return None if type(value) not in (int, float) else -(2**31)
    number = int(value)
    return number if -(2**31) <= number < 2**31 else -(2**31)


def _lua_typename(args: tuple[Any, ...], index: int) -> str:
    if index >= len(args):
        return "no value"
    value = args[index]
    if value is None:
        return "nil"
    if type(value) is bool:
        return "boolean"
    if type(value) is bytes:
        return "string"
    if type(value) in (int, float):
        return "number"
    return lua51.lua_type(value) or "userdata"


class LuaEngine:
    """A Lua state in `mode` "eval" (EVAL's scripts) or "function" (FUNCTION's libraries)."""

    def __init__(self, mode: str, host: ScriptHost, rand: Rand48, max_memory: int = LUA_MAX_MEMORY_BYTES) -> None:
        self.mode = mode
        self.host = host
        self.rand = rand
        self.script_resp3 = False  # redis.setresp(): every run starts in RESP2
        lua = lua51.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=True,
            attribute_filter=_deny_attributes,
            max_memory=max_memory,
        )
        self.lua = lua
        lua.execute(b"python = nil; package.loaded.python = nil")
        chunk = lua.eval(b"function(code, name) return assert(loadstring(code, name)) end")
        resp = chunk(_lib_source("resp.lua"), b"=[kvred]")()
        libraries = lua.table_from(
            {
                b"bit": lua.table_from(bitop.functions()),
                b"cjson": cjson.make_library(lua),
                b"cmsgpack": cmsgpack.make_library(lua),
                b"struct": luastruct.make_library(lua),
            }
        )
        api = {
            b"call": self._call,
            b"pcall": self._pcall,
            b"setresp": self._setresp,
            b"sha1hex": self._sha1hex,
            b"set_repl": self._set_repl,
            b"log": self._log,
            b"acl_check_cmd": self._acl_check_cmd,
        }
        py = lua.table_from(
            {
                b"api": lua.table_from(api),
                b"libraries": libraries,
                b"random": self._random,
                b"randomseed": self._randomseed,
                b"unwrap_error": self._unwrap_error,
                b"script_resp": lambda: 3 if self.script_resp3 else 2,
                b"hook": host.on_hook,
                b"kill_message": host.kill_message,
                b"load_timed_out": host.load_timed_out,
                b"register": self._register,
                b"pairs": self._pairs,
            }
        )
        self.entry = chunk(_lib_source("sandbox.lua"), b"=[kvred]")(
            py, resp, mode.encode(), REDIS_VERSION.encode(), REDIS_VERSION_NUM
        )
        self._parse_reply = self.entry.parse_reply
        self._pairs_of = self.entry.pairs_of

    # ---------------------------------------------------------------- entry points

    def compile(self, body: bytes) -> tuple[Any, bytes | None]:
        """EVAL's script body (its shebang line blanked) -> (function, None), or (None, Lua's error)."""
        function, error = self.entry.compile(body)
        return (function or None), (error or None)

    def run(self, function: Any, argv: list[bytes], numkeys: int, name: bytes, client3: bool, limit: int,
            hook: bool) -> bytes | None:
        """Run a script or a function on KEYS = argv[:numkeys], ARGV = the rest: its reply,
        or None if it passed `limit` bytes."""
        self.script_resp3 = False
        reply: bytes | None = self.entry.run(function, name, client3, limit, hook, numkeys, *argv)
        return reply

    def load_library(self, code: bytes, timeout: bool) -> bytes | None:
        """FUNCTION LOAD: run the library's code (its functions register themselves
        through host.register_function); None, or the error text."""
        error: bytes | None = self.entry.load(code, timeout)
        return error

    def collect(self) -> None:
        self.entry.collect()

    def memory_used(self) -> int:
        return int(self.lua.get_memory_used() or 0)

    # ---------------------------------------------------------------- the redis.* API

    def _command(self, args: tuple[Any, ...]) -> bytes | ScriptError:
        if not args:
            return ScriptError(b"Please specify at least one argument for this redis lib call")
        argv = []
        for value in args:
            arg = _arg_bytes(value)
            if arg is None:
                return ScriptError(b"Lua redis lib command arguments must be strings or integers")
            argv.append(arg)
        return self.host.execute(argv, self.script_resp3)

    def _call(self, *args: Any) -> Any:
        reply = self._command(args)
        if type(reply) is ScriptError:
            raise reply
        if reply[:1] == b"-":  # type: ignore[index]
            raise ScriptError(reply, "reply")  # type: ignore[arg-type]
        return self._parse_reply(reply)

    def _pcall(self, *args: Any) -> Any:
        reply = self._command(args)
        if type(reply) is ScriptError:
            table = self.entry.error_table(reply.text)
            table[b"ignore_error_stats_update"] = True
            return table
        return self._parse_reply(reply)

    def _setresp(self, *args: Any) -> None:
        if len(args) != 1:
            raise ScriptError(b"redis.setresp() requires one argument.")
        version = _lua_int(args[0]) if type(args[0]) in (int, float, bytes) else 0
        if version not in (2, 3):
            raise ScriptError(b"RESP version must be 2 or 3.")
        self.script_resp3 = version == 3

    def _sha1hex(self, *args: Any) -> bytes:
        if len(args) != 1:
            raise ScriptError(b"wrong number of arguments")
        data = _arg_bytes(args[0]) if type(args[0]) is bytes else _tostring_number(args[0])
        return hashlib.sha1(data or b"").hexdigest().encode()

    def _set_repl(self, *args: Any) -> None:
        if len(args) != 1:
            raise ScriptError(b"redis.set_repl() requires two arguments.")
        flags = _lua_int(args[0]) if type(args[0]) in (int, float, bytes) else 0
        if flags is None or not 0 <= flags <= 3:
            raise ScriptError(b"Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.")
        # accepted: kvred logs a script's effects to the AOF whatever it asks (no replicas)

    def _log(self, *args: Any) -> None:
        if len(args) < 2:
            raise ScriptError(b"redis.log() requires two arguments or more.")
        level = _lua_int(args[0]) if type(args[0]) in (int, float, bytes) else None
        if level is None or (type(args[0]) is bytes and _lua_int(args[0]) is None):
            raise ScriptError(b"First argument must be a number (log level).")
        if not 0 <= level <= 3:
            raise ScriptError(b"Invalid debug level.")
        parts = [_tostring_number(a) if type(a) in (int, float) else a for a in args[1:] if type(a) in (bytes, int, float)]
        log.log(_LOG_LEVELS[level], "%s", b" ".join(parts).decode(errors="replace"))

    def _acl_check_cmd(self, *args: Any) -> bool:
        reply = self._command_name(args)
        if not self.host.command_exists(reply):
            raise ScriptError(b"Invalid command passed to redis.acl_check_cmd()")
        return True  # one user, allowed everything

    def _command_name(self, args: tuple[Any, ...]) -> bytes:
        if not args:
            raise ScriptError(b"Please specify at least one argument for this redis lib call")
        names = [_arg_bytes(a) for a in args]
        if any(n is None for n in names):
            raise ScriptError(b"Lua redis lib command arguments must be strings or integers")
        return names[0]  # type: ignore[return-value]

    def _random(self, *args: Any) -> float:
        r = (self.rand.next() % 0x7FFFFFFF) / 0x7FFFFFFF
        if not args:
            return r
        if len(args) > 2:
            raise ScriptError(b"wrong number of arguments", "runtime")
        bounds = []
        for index in range(len(args)):
            value = _lua_int(args[index])
            if value is None:
                raise ScriptError(
                    b"bad argument #%d to 'random' (number expected, got %s)"
                    % (index + 1, _lua_typename(args, index).encode()),
                    "runtime",
                )
            bounds.append(value)
        if len(bounds) == 1:
            if bounds[0] < 1:
                raise ScriptError(b"bad argument #1 to 'random' (interval is empty)", "runtime")
            return float(math.floor(r * bounds[0]) + 1)
        low, high = bounds
        if low > high:
            raise ScriptError(b"bad argument #2 to 'random' (interval is empty)", "runtime")
        return float(math.floor(r * (high - low + 1)) + low)

    def _randomseed(self, *args: Any) -> None:
        seed = _lua_int(args[0]) if args else None
        if seed is None:
            raise ScriptError(
                b"bad argument #1 to 'randomseed' (number expected, got %s)" % _lua_typename(args, 0).encode(),
                "runtime",
            )
        self.rand.seed(seed)

    def _pairs(self, *args: Any) -> tuple[Any, Any, None]:
        if not args or lua51.lua_type(args[0]) != "table":
            got = "no value" if not args else _lua_typename(args, 0)
            raise ScriptError(b"bad argument #1 to 'pairs' (table expected, got %s)" % got.encode(), "runtime")
        iterator, table, start = self._pairs_of(args[0])
        return iterator, table, start

    def _unwrap_error(self, error: Any) -> tuple[bytes, bytes]:
        if isinstance(error, ScriptError):
            return error.text, error.kind.encode()
        log.error("unexpected error raised into a script: %r", error)
        return b"internal error", b"table"

    def _register(self, name: bytes, callback: Any, desc: bytes | None, flags: Any) -> bytes | None:
        flag_list = [flags[i] for i in range(1, len(flags) + 1)]
        return self.host.register_function(name, callback, desc, flag_list)


def _tostring_number(value: Any) -> bytes:
    """Lua's tostring of a number (`%.14g`)."""
    if type(value) is bytes:
        return value  # type: ignore[no-any-return]
    if type(value) not in (int, float):
        return b""
    if value != value:
        return b"-nan" if math.copysign(1.0, value) < 0 else b"nan"
    if value in (math.inf, -math.inf):
        return b"inf" if value > 0 else b"-inf"
    return b"%.14g" % value


def _lib_source(name: str) -> bytes:
    return resources.files(__package__).joinpath("libs").joinpath(name).read_bytes()
