"""Running scripts against the keyspace (Redis's script.c): the script cache, the checks
before a script runs, redis.call's checks (scriptCall), the AOF block of a script's
effects, and the runaway-script state (busy-reply-threshold, SCRIPT KILL).

A script runs in the writer, between two other commands, like MULTI/EXEC. While it runs:
- the time is frozen (keys do not expire halfway; Redis 7.0's script time snapshot);
- redis.call runs one command through `Executor.call` (arity, WRONGTYPE, internal-error
  isolation) in the script's protocol (redis.setresp) and the script's database (SELECT
  inside a script does not change the caller's, as in Redis 7);
- each write command logs its effects as usual (`ctx.aof_feed`); afterwards, if the
  script logged more than one record, they are wrapped in MULTI ... EXEC so that replay
  applies all or nothing (Redis 7 propagates effects, not scripts). A script that only
  reads logs nothing.

Runaway scripts. The Lua count hook calls `on_hook` every 100,000 Lua instructions. Once
a script has run for `busy_reply_threshold_ms` it is "busy" (`busy`): the hook calls
`heartbeat` (set by the writer) each time, which is where the writer polls its links,
answers other clients `busy_error()`, and turns a SCRIPT KILL / FUNCTION KILL into
`request_kill(...)`. A kill fails the script with Redis's error at its next hook or line.
The hook's cost: Lua 5.1 checks the count on every instruction whether a hook is set or
not, so what the hook adds is one Python call per 100,000 instructions (~1 us, 0.01 ns
per instruction); measured on a 6e7-instruction loop, 3.5-6.4 ns per instruction with
the hook and 4.2-5.8 without (min and median of 10 runs): no difference above the noise.
"""

from __future__ import annotations

import hashlib
import logging
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lupa import lua51

from ..commands.base import NO_SUCH_COMMAND, NO_SUCH_SUBCOMMAND, ReplyTooLarge, check_command, full_name, lookup
from ..eviction import ERR_OOM, EVICT_FAIL
from ..keyspace import time_ms
from ..resp import split_inline_args
from .engine import LUA_MAX_MEMORY_BYTES, LuaEngine, Rand48
from .errors import ScriptError
from .functions import FunctionLibraries

if TYPE_CHECKING:
    from ..commands.base import Context

__all__ = ["ScriptRunner", "runner_for", "runner_of", "Script", "parse_shebang", "SHEBANG_FLAGS"]

log = logging.getLogger("kvred.writer")

DEFAULT_BUSY_REPLY_THRESHOLD_MS = 5000  # Redis's busy-reply-threshold (lua-time-limit)
FUNCTION_LOAD_TIMEOUT_S = 0.5  # Redis's: a library's code gets 500 ms to register its functions
SHEBANG_FLAGS = ("no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys")
ERR_NOTBUSY = b"-NOTBUSY No scripts in execution right now.\r\n"
ERR_UNKILLABLE = (
    b"-UNKILLABLE Sorry the script already executed write commands against the dataset. You can either "
    b"wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.\r\n"
)
BUSY_EVAL = b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
BUSY_FUNCTION = b"-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n"


class Script:
    """A script of the EVAL cache: its body, shebang flags (None: no shebang, Redis's
    "eval compat mode") and compiled function."""

    __slots__ = ("body", "flags", "function")

    def __init__(self, body: bytes, flags: frozenset[str] | None, function: Any) -> None:
        self.body = body
        self.flags = flags
        self.function = function


def parse_shebang(body: bytes) -> tuple[frozenset[str] | None, int] | bytes:
    """Redis's evalExtractShebangFlags: (flags, length of the shebang line without its
    newline), (None, 0) without a shebang, or the error reply."""
    if not body.startswith(b"#!"):
        return None, 0
    end = body.find(b"\n")
    if end < 0:
        return b"-ERR Invalid script shebang\r\n"
    parts = split_inline_args(body[:end])
    if not parts:
        return b"-ERR Invalid engine in script shebang\r\n"
    if parts[0] != b"#!lua":
        return b"-ERR Unexpected engine in script shebang: " + parts[0] + b"\r\n"
    flags: set[str] = set()
    for part in parts[1:]:
        if not part.startswith(b"flags="):
            return b"-ERR Unknown lua shebang option: " + part + b"\r\n"
        for flag in part[6:].split(b",") if part[6:] else []:
            name = flag.decode("latin-1")
            if name not in SHEBANG_FLAGS:
                return b"-ERR Unexpected flag in script shebang: " + flag + b"\r\n"
            flags.add(name)
    return frozenset(flags), end


class _Running:
    """The script being run: what SCRIPT KILL, FUNCTION STATS and BUSY need."""

    __slots__ = ("name", "argv", "is_eval", "read_only", "dirty", "started", "busy")

    def __init__(self, name: bytes, argv: list[bytes], is_eval: bool, read_only: bool) -> None:
        self.name = name
        self.argv = argv
        self.is_eval = is_eval
        self.read_only = read_only
        self.dirty = False  # a write command was called: SCRIPT KILL can no longer stop it
        self.started = time.monotonic()
        self.busy = False  # ran past busy-reply-threshold


class ScriptRunner:
    """Scripting state of one keyspace (one writer): `runner_for(ctx)` finds it.

    For the writer (see the module docstring): `heartbeat`, `busy`, `busy_error()`,
    `request_kill(is_eval)`, `kill_requested`."""

    def __init__(self, busy_reply_threshold_ms: int = DEFAULT_BUSY_REPLY_THRESHOLD_MS,
                 max_memory: int = LUA_MAX_MEMORY_BYTES) -> None:
        self.busy_reply_threshold_ms = busy_reply_threshold_ms
        self.max_memory = max_memory
        # called from the hook, every 100k Lua instructions, while a script is busy
        self.heartbeat: Callable[[], None] | None = None
        self.kill_requested = False
        self.rand = Rand48()  # one generator for EVAL and functions, as Redis's is global
        self.scripts: dict[bytes, Script] = {}
        self._eval_engine: LuaEngine | None = None
        self.functions = FunctionLibraries(self)
        self.running: _Running | None = None
        self._ctx: Context | None = None
        self._reply_too_large = False
        self._load_deadline = 0.0
        # while a script runs: where its effects start in the AOF buffer (SHUTDOWN NOSAVE
        # during a busy script must drop aof_buf[aof_start:], as Redis never propagates them)
        self.aof_start = 0

    # ---------------------------------------------------------------- EVAL's cache

    @property
    def eval_engine(self) -> LuaEngine:
        if self._eval_engine is None:
            self._eval_engine = LuaEngine("eval", self, self.rand, self.max_memory)
        return self._eval_engine

    def create_script(self, body: bytes) -> tuple[bytes, Script] | bytes:
        """Redis's luaCreateFunction: (sha, script), cached; or the error reply."""
        sha = hashlib.sha1(body).hexdigest().encode()
        script = self.scripts.get(sha)
        if script is not None:
            return sha, script
        shebang = parse_shebang(body)
        if isinstance(shebang, bytes):
            return shebang
        flags, length = shebang
        try:
            function, error = self.eval_engine.compile(body[length:])
        except lua51.LuaMemoryError:
            self.eval_engine.collect()
            return b"-ERR Error compiling script (new function): not enough memory\r\n"
        if function is None:
            return b"-ERR Error compiling script (new function): " + _one_line(error or b"") + b"\r\n"
        script = self.scripts[sha] = Script(body, flags, function)
        return sha, script

    def flush_scripts(self) -> None:
        """SCRIPT FLUSH: as Redis, a new Lua state (globals and memory start over)."""
        self.scripts.clear()
        self._eval_engine = None

    # ---------------------------------------------------------------- running

    def check_before_run(self, ctx: Context, flags: frozenset[str] | None, ro: bool) -> bytes | None:
        """scriptPrepareForRun's refusals: a script that may write, run by *_RO or while
        the AOF is failing (only for scripts with a shebang or functions; a script without
        one is refused command by command instead)."""
        if flags is None or "no-writes" in flags:
            return None
        executor = ctx.executor  # type: ignore[attr-defined]
        if executor.refusing:
            return executor.misconf_error()  # type: ignore[no-any-return]
        # a script that may write is a denyoom command (Redis's evalGetCommandFlags), unless
        # flagged allow-oom: evict first, or refuse it whole (kvred/eviction.py)
        if "allow-oom" not in flags and ctx.config.maxmemory and executor.evictor.check([]) == EVICT_FAIL:
            return ERR_OOM
        if ro:
            return b"-ERR Can not execute a script with write flag using *_ro command.\r\n"
        return None

    def run(self, ctx: Context, engine: LuaEngine, function: Any, name: bytes, argv: list[bytes],
            numkeys: int, read_only: bool, is_eval: bool, allow_oom: bool = False) -> bytes:
        """Run a script or function for the client of `ctx`: its reply. Raises
        ReplyTooLarge (after the script ran and its effects were logged) when the reply,
        or a reply inside it, passes the client's output limit."""
        executor = ctx.executor  # type: ignore[attr-defined]
        client = ctx.client
        saved = (client.db, ctx.resp3, ctx.null)
        databases = ctx.databases
        frozen = databases.frozen_ms
        if not frozen:
            databases.frozen_ms = time_ms()  # one time for the whole script, as Redis 7.0
        # the AOF buffer's position: the executor's own list (None while loading or with
        # --appendonly no), as exec_transaction uses it
        aof_buf: list[list[bytes]] | None = executor._aof_buf
        start = self.aof_start = len(aof_buf) if aof_buf is not None else 0
        # blocking commands called by a script answer at once, as their timeout (Redis)
        may_block = getattr(ctx, "may_block", None)
        if may_block is not None:
            ctx.may_block = False  # type: ignore[attr-defined]
        self.running = _Running(name, argv, is_eval, read_only)
        self._ctx = ctx
        self._reply_too_large = False
        self.kill_requested = False
        oom_before = executor.allow_oom
        executor.allow_oom = oom_before or allow_oom  # a script flagged allow-oom: its writes are not refused
        try:
            try:
                reply = engine.run(function, argv[3:], numkeys, name, saved[1], ctx.output_limit,
                                   self.busy_reply_threshold_ms > 0)
            except lua51.LuaMemoryError:
                reply = b"-ERR Error running script " + name + b", not enough memory\r\n"
            if reply is not None and reply.startswith(b"-ERR Error running script ") and b"not enough memory" in reply:
                reply = (b"-ERR Error running script %b: not enough memory, the script passed the Lua memory "
                         b"limit (%d MB)\r\n" % (name, self.max_memory >> 20))
                engine.collect()
        finally:
            executor.allow_oom = oom_before
            running = self.running
            self.running = None
            self._ctx = None
            self.kill_requested = False
            databases.frozen_ms = frozen
            if may_block is not None:
                ctx.may_block = may_block  # type: ignore[attr-defined]
            if client.db != saved[0] or ctx.keyspace.id != saved[0]:
                ctx.select(saved[0])
            ctx.resp3, ctx.null = saved[1], saved[2]
            if aof_buf is not None and not executor.in_exec and len(aof_buf) - start > 1:
                # as EXEC: replay applies all of the script's effects or none of them
                aof_buf.insert(start, [b"MULTI"])
                aof_buf.append([b"EXEC"])
            if running is not None and running.busy:
                log.warning("Slow script %s finished after %.0f ms", name.decode(errors="replace"),
                            1000 * (time.monotonic() - running.started))
        if reply is None or self._reply_too_large:
            raise ReplyTooLarge
        return reply  # type: ignore[no-any-return]

    # ---------------------------------------------------------------- ScriptHost (called from Lua)

    def execute(self, argv: list[bytes], resp3: bool) -> bytes | ScriptError:
        """redis.call's checks (Redis's scriptCall), then the command."""
        ctx = self._ctx
        running = self.running
        if ctx is None or running is None:
            return ScriptError(b"redis.call can only be called inside a script invocation")
        cmd, problem = check_command(argv)
        if problem in (NO_SUCH_COMMAND, NO_SUCH_SUBCOMMAND):
            return ScriptError(b"Unknown Redis command called from script")
        if problem:
            return ScriptError(b"Wrong number of args calling Redis command from script")
        assert cmd is not None
        if cmd.handler is None or "noscript" in cmd.flags:
            return ScriptError(b"This Redis command is not allowed from script")
        user = ctx.client.user
        if user is not None and not user.unrestricted:
            denial = _script_acl_denial(ctx, user, cmd, argv)
            if denial is not None:
                return denial
        if running.read_only and (cmd.write or "may-replicate" in cmd.flags):
            return ScriptError(b"Write commands are not allowed from read-only scripts.")
        if cmd.write:
            running.dirty = True
        ctx.resp3 = resp3
        ctx.null = b"_\r\n" if resp3 else b"$-1\r\n"
        try:
            reply: bytes = ctx.executor.call(argv)  # type: ignore[attr-defined]
        except ReplyTooLarge:
            self._reply_too_large = True
            return ScriptError(b"reply of a command called from the script is over the client output buffer limit")
        return reply

    def command_exists(self, name: bytes) -> bool:
        return lookup(name) is not None

    def on_hook(self) -> bool:
        """Every 100k Lua instructions: True if the script must stop (killed)."""
        running = self.running
        if running is None:
            return False
        if not running.busy:
            elapsed_ms = 1000 * (time.monotonic() - running.started)
            if elapsed_ms < self.busy_reply_threshold_ms:
                return self.kill_requested
            running.busy = True
            log.warning(
                "Slow script detected: still in execution after %.0f milliseconds. You can try killing the "
                "script using the %s KILL command. Script name is: %s.",
                elapsed_ms, "SCRIPT" if running.is_eval else "FUNCTION", running.name.decode(errors="replace"))
        heartbeat = self.heartbeat
        if heartbeat is not None:
            heartbeat()
        return self.kill_requested

    def kill_message(self) -> bytes:
        running = self.running
        what = b"SCRIPT" if running is None or running.is_eval else b"FUNCTION"
        log.info("Script killed by user with %s KILL.", what.decode())
        return b"Script killed by user with " + what + b" KILL."

    def load_timed_out(self) -> bool:
        return time.monotonic() > self._load_deadline

    def register_function(self, name: bytes, callback: Any, desc: bytes | None, flags: list[bytes]) -> bytes | None:
        return self.functions.register(name, callback, desc, flags)

    # ---------------------------------------------------------------- for the writer

    @property
    def busy(self) -> bool:
        """A script has run past busy-reply-threshold: others get busy_error()."""
        return self.running is not None and self.running.busy

    def busy_error(self) -> bytes:
        running = self.running
        return BUSY_FUNCTION if running is not None and not running.is_eval else BUSY_EVAL

    def request_kill(self, is_eval: bool) -> bytes:
        """SCRIPT KILL (is_eval) or FUNCTION KILL while a script runs: the reply to send
        at once; on +OK the script fails at its next hook with Redis's kill error."""
        running = self.running
        if running is None:
            return ERR_NOTBUSY
        if running.dirty:
            return ERR_UNKILLABLE
        if is_eval and not running.is_eval:
            return BUSY_FUNCTION
        if not is_eval and running.is_eval:
            return BUSY_EVAL
        self.kill_requested = True
        return b"+OK\r\n"

    def running_elapsed_ms(self) -> int:
        running = self.running
        return 0 if running is None else int(1000 * (time.monotonic() - running.started))

    def start_load_timer(self) -> None:
        self._load_deadline = time.monotonic() + FUNCTION_LOAD_TIMEOUT_S


def _one_line(text: bytes) -> bytes:
    return text.replace(b"\r", b" ").replace(b"\n", b" ")


_runners: weakref.WeakKeyDictionary[Any, ScriptRunner] = weakref.WeakKeyDictionary()


def runner_for(ctx: Context) -> ScriptRunner:
    """The scripting state of ctx's keyspace (one per `Databases`, so the AOF rewrite,
    which has only the databases, finds the function libraries too)."""
    runner = _runners.get(ctx.databases)
    if runner is None:
        threshold = getattr(ctx.config, "busy_reply_threshold", DEFAULT_BUSY_REPLY_THRESHOLD_MS)
        runner = _runners[ctx.databases] = ScriptRunner(threshold)
    return runner


def runner_of(databases: Any) -> ScriptRunner | None:
    """The runner of `databases`, if scripting was used (the AOF rewrite's question)."""
    return _runners.get(databases)



_SCRIPT_ACL_ERRORS = {
    "command": b"The user executing the script can't run this command or subcommand",
    "key": b"The user executing the script can't access at least one of the keys mentioned in the command arguments",
    "channel": b"The user executing the script can't publish to the channel mentioned in the command",
}


def _script_acl_denial(ctx: Any, user: Any, cmd: Any, argv: list[bytes]) -> ScriptError | None:
    """Redis's scriptVerifyACL: redis.call's own texts, logged with context lua."""
    denied = user.check_command(full_name(cmd, argv), argv)
    if denied is None:
        return None
    ctx.executor.acl_log(denied[0], "lua", denied[1], user.name, ctx.client)
    return ScriptError(_SCRIPT_ACL_ERRORS[denied[0]])
