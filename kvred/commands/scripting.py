"""Scripting commands (Redis's eval.c, functions.c): EVAL EVALSHA EVAL_RO EVALSHA_RO,
SCRIPT, FUNCTION, FCALL FCALL_RO. The machinery is kvred/scripting (engine: the Lua
state; runner: running a script against the keyspace; functions: the libraries).

Which commands a script may call, and which of them write, is read from this table's
flags (`noscript`, `write`, `may-replicate`), nowhere else.

What is logged: a script's effects, not the script (kvred/scripting/runner.py);
FUNCTION LOAD, DELETE, FLUSH and RESTORE as sent, so that replay rebuilds the libraries,
and the AOF rewrite writes a FUNCTION LOAD per library (kvred/rewrite.py).
"""

from __future__ import annotations

from .. import resp
from ..glob import compile_glob
from ..scripting import runner as scripting_runner  # a module: it imports the table too
from .base import ERR_NOT_INT, Context, command, int_arg, unknown_subcommand

__all__: list[str] = []

OK = resp.OK
ERR_NOSCRIPT = b"-NOSCRIPT No matching script. Please use EVAL.\r\n"
ERR_TOO_MANY_KEYS = b"-ERR Number of keys can't be greater than number of args\r\n"
ERR_NEGATIVE_KEYS = b"-ERR Number of keys can't be negative\r\n"

# the flags Redis 7.0 gives them; `movablekeys`: the keys are named by numkeys
_EVAL_FLAGS = "noscript stale skip-monitor no-mandatory-keys movablekeys"
_EVAL_RO_FLAGS = "readonly " + _EVAL_FLAGS


def _numkeys(argv: list[bytes], not_int: bytes) -> int | bytes:
    numkeys = int_arg(argv[2])
    if numkeys is None:
        return not_int
    if numkeys > len(argv) - 3:
        return ERR_TOO_MANY_KEYS
    if numkeys < 0:
        return ERR_NEGATIVE_KEYS
    return numkeys


def _eval(ctx: Context, argv: list[bytes], evalsha: bool, ro: bool) -> bytes:
    numkeys = _numkeys(argv, ERR_NOT_INT)
    if isinstance(numkeys, bytes):
        return numkeys
    runner = scripting_runner.runner_for(ctx)
    if evalsha:
        sha = argv[1].lower()
        found = runner.scripts.get(sha)
        if found is None:
            return ERR_NOSCRIPT
        script = found
    else:
        created = runner.create_script(argv[1])
        if isinstance(created, bytes):
            return created
        sha, script = created
    refusal = runner.check_before_run(ctx, script.flags, ro)
    if refusal is not None:
        return refusal
    read_only = ro or (script.flags is not None and "no-writes" in script.flags)
    allow_oom = script.flags is not None and "allow-oom" in script.flags
    return runner.run(ctx, runner.eval_engine, script.function, sha, argv, numkeys, read_only, is_eval=True,
                      allow_oom=allow_oom)


@command("eval", -3, _EVAL_FLAGS)
def eval_(ctx: Context, argv: list[bytes]) -> bytes:
    return _eval(ctx, argv, evalsha=False, ro=False)


@command("evalsha", -3, _EVAL_FLAGS)
def evalsha(ctx: Context, argv: list[bytes]) -> bytes:
    return _eval(ctx, argv, evalsha=True, ro=False)


@command("eval_ro", -3, _EVAL_RO_FLAGS)
def eval_ro(ctx: Context, argv: list[bytes]) -> bytes:
    return _eval(ctx, argv, evalsha=False, ro=True)


@command("evalsha_ro", -3, _EVAL_RO_FLAGS)
def evalsha_ro(ctx: Context, argv: list[bytes]) -> bytes:
    return _eval(ctx, argv, evalsha=True, ro=True)


# ---------------------------------------------------------------- SCRIPT

_SCRIPT_HELP = [
    b"SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"DEBUG (YES|SYNC|NO)",
    b"    Set the debug mode for subsequent scripts executed.",
    b"EXISTS <sha1> [<sha1> ...]",
    b"    Return information about the existence of the scripts in the script cache.",
    b"FLUSH [ASYNC|SYNC]",
    b"    Flush the Lua scripts cache. Very dangerous on replicas.",
    b"    When called without the optional mode argument, the behavior is determined by the",
    b"    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    b"    * ASYNC: Asynchronously flush the scripts cache.",
    b"    * SYNC: Synchronously flush the scripts cache.",
    b"KILL",
    b"    Kill the currently executing Lua script.",
    b"LOAD <script>",
    b"    Load a script into the scripts cache without executing it.",
    b"HELP",
    b"    Prints this help.",
]


def _help(lines: list[bytes]) -> bytes:
    return resp.array([resp.simple(line) for line in lines])


@command("script", -2, "noscript", subcommands={"load": 3, "exists": -3, "flush": -2, "kill": 2, "help": 2, "debug": 3})
def script(ctx: Context, argv: list[bytes]) -> bytes:
    sub = argv[1].lower()
    runner = scripting_runner.runner_for(ctx)
    if sub == b"load":
        created = runner.create_script(argv[2])
        return created if isinstance(created, bytes) else resp.bulk(created[0])
    if sub == b"exists":
        return resp.array([b":1\r\n" if sha.lower() in runner.scripts else b":0\r\n" for sha in argv[2:]])
    if sub == b"flush":
        if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() not in (b"sync", b"async")):
            return b"-ERR SCRIPT FLUSH only support SYNC|ASYNC option\r\n"
        runner.flush_scripts()
        return OK
    if sub == b"kill":
        # a script runs inside the writer: by the time this runs, none is running (the
        # writer answers a SCRIPT KILL that arrives during a script with request_kill)
        return runner.request_kill(is_eval=True)
    if sub == b"help":
        return _help(_SCRIPT_HELP)
    if sub == b"debug":
        if argv[2].lower() == b"no":
            return OK
        return b"-ERR SCRIPT DEBUG (the Lua debugger) is not supported by kvred\r\n"
    return unknown_subcommand(argv[1], "script")


# ---------------------------------------------------------------- FUNCTION and FCALL

_FUNCTION_HELP = [
    b"FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"LOAD [REPLACE] <FUNCTION CODE>",
    b"    Create a new library with the given library name and code.",
    b"DELETE <LIBRARY NAME>",
    b"    Delete the given library.",
    b"LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    b"    Return general information on all the libraries:",
    b"    * Library name",
    b"    * The engine used to run the Library",
    b"    * Library description",
    b"    * Functions list",
    b"    * Library code (if WITHCODE is given)",
    b"    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    b"STATS",
    b"    Return information about the current function running:",
    b"    * Function name",
    b"    * Command used to run the function",
    b"    * Duration in MS that the function is running",
    b"    If no function is running, return nil",
    b"    In addition, returns a list of available engines.",
    b"KILL",
    b"    Kill the current running function.",
    b"FLUSH [ASYNC|SYNC]",
    b"    Delete all the libraries.",
    b"    When called without the optional mode argument, the behavior is determined by the",
    b"    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    b"    * ASYNC: Asynchronously flush the libraries.",
    b"    * SYNC: Synchronously flush the libraries.",
    b"DUMP",
    b"    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    b"RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    b"    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    b"    control how to handle existing libraries (default APPEND):",
    b"    * FLUSH: delete all existing libraries.",
    b"    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    b"    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    b"      libraries with the new libraries (notice that even on this option there is a chance of failure",
    b"      in case of functions name collision with another library).",
    b"HELP",
    b"    Prints this help.",
]

_FUNCTION_WRITES = {b"load", b"delete", b"flush", b"restore"}


def _map(pairs: list[tuple[bytes, bytes]], resp3: bool) -> bytes:
    head = b"%%%d\r\n" % len(pairs) if resp3 else b"*%d\r\n" % (2 * len(pairs))
    return head + b"".join(resp.bulk(k) + v for k, v in pairs)


def _function_list(ctx: Context, argv: list[bytes]) -> bytes:
    with_code = False
    pattern = None
    i = 2
    while i < len(argv):
        arg = argv[i]
        if not with_code and arg.lower() == b"withcode":
            with_code = True
        elif pattern is None and arg.lower() == b"libraryname":
            if i >= len(argv) - 1:
                return b"-ERR library name argument was not given\r\n"
            i += 1
            pattern = argv[i]
        else:
            return b"-ERR Unknown argument " + arg.replace(b"\r", b" ").replace(b"\n", b" ") + b"\r\n"
        i += 1
    match = compile_glob(pattern, nocase=True).match if pattern is not None else None
    resp3 = ctx.resp3
    out = []
    for library in scripting_runner.runner_for(ctx).functions.libraries.values():
        if match is not None and not match(library.name):
            continue
        functions = []
        for function in library.functions.values():
            flags = [b"+" + f + b"\r\n" for f in function.flags]
            functions.append(_map([
                (b"name", resp.bulk(function.name)),
                (b"description", resp.bulk(function.description) if function.description is not None else ctx.null),
                (b"flags", (b"~%d\r\n" if resp3 else b"*%d\r\n") % len(flags) + b"".join(flags)),
            ], resp3))
        fields = [(b"library_name", resp.bulk(library.name)), (b"engine", resp.bulk(b"LUA")),
                  (b"functions", resp.array(functions))]
        if with_code:
            fields.append((b"library_code", resp.bulk(library.code)))
        out.append(_map(fields, resp3))
    return resp.array(out)


def _function_stats(ctx: Context) -> bytes:
    runner = scripting_runner.runner_for(ctx)
    libraries = runner.functions
    running = runner.running
    if running is None:
        script_info = ctx.null
    else:
        script_info = _map([(b"name", resp.bulk(running.name)),
                            (b"command", resp.array([resp.bulk(a) for a in running.argv])),
                            (b"duration_ms", resp.integer(runner.running_elapsed_ms()))], ctx.resp3)
    engine = _map([(b"libraries_count", resp.integer(len(libraries.libraries))),
                   (b"functions_count", resp.integer(len(libraries.functions)))], ctx.resp3)
    return _map([(b"running_script", script_info), (b"engines", _map([(b"LUA", engine)], ctx.resp3))], ctx.resp3)


def _function_restore(ctx: Context, argv: list[bytes]) -> bytes:
    policy = argv[3].lower() if len(argv) > 3 else b"append"
    if len(argv) > 4 or policy not in (b"flush", b"append", b"replace"):
        return b"-ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.\r\n"
    libraries = scripting_runner.runner_for(ctx).functions
    codes = libraries.parse_dump(argv[2])
    if codes is None:
        return b"-ERR DUMP payload version or checksum are wrong\r\n"
    if policy == b"flush":
        libraries.flush()
    for code in codes:
        _name, error = libraries.load(code, replace=policy == b"replace")
        if error is not None:
            return b"-ERR " + error + b"\r\n"
    return OK


@command("function", -2, "noscript", subcommands={
    "load": -3, "delete": 3, "flush": -2, "list": -2, "stats": 2, "dump": 2, "restore": -3, "kill": 2, "help": 2})
def function(ctx: Context, argv: list[bytes]) -> bytes:
    sub = argv[1].lower()
    if sub in _FUNCTION_WRITES and ctx.executor.refusing:  # type: ignore[attr-defined]
        return ctx.executor.misconf_error()  # type: ignore[attr-defined,no-any-return]
    libraries = scripting_runner.runner_for(ctx).functions
    if sub == b"load":
        replace = len(argv) == 4 and argv[2].lower() == b"replace"
        if len(argv) > 4 or (len(argv) == 4 and not replace):
            return b"-ERR Unknown option given: " + argv[2] + b"\r\n"
        name, error = libraries.load(argv[-1], replace)
        if error is not None:
            return b"-ERR " + error.replace(b"\r", b" ").replace(b"\n", b" ") + b"\r\n"
        ctx.aof_feed(argv)
        return resp.bulk(name)  # type: ignore[arg-type]
    if sub == b"delete":
        if not libraries.delete(argv[2]):
            return b"-ERR Library not found\r\n"
        ctx.aof_feed(argv)
        return OK
    if sub == b"flush":
        if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() not in (b"sync", b"async")):
            return b"-ERR FUNCTION FLUSH only supports SYNC|ASYNC option\r\n"
        libraries.flush()
        ctx.aof_feed(argv)
        return OK
    if sub == b"list":
        return _function_list(ctx, argv)
    if sub == b"stats":
        return _function_stats(ctx)
    if sub == b"dump":
        return resp.bulk(libraries.dump())
    if sub == b"restore":
        reply = _function_restore(ctx, argv)
        if reply == OK:
            ctx.aof_feed(argv)
        return reply
    if sub == b"kill":
        return scripting_runner.runner_for(ctx).request_kill(is_eval=False)
    if sub == b"help":
        return _help(_FUNCTION_HELP)
    return unknown_subcommand(argv[1], "function")


def _fcall(ctx: Context, argv: list[bytes], ro: bool) -> bytes:
    runner = scripting_runner.runner_for(ctx)
    found = runner.functions.find(argv[1])
    if found is None:
        return b"-ERR Function not found\r\n"
    numkeys = _numkeys(argv, b"-ERR Bad number of keys provided\r\n")
    if isinstance(numkeys, bytes):
        return numkeys
    flags = frozenset(f.decode() for f in found.flags)
    refusal = runner.check_before_run(ctx, flags, ro)
    if refusal is not None:
        return refusal
    read_only = ro or "no-writes" in flags
    return runner.run(ctx, runner.functions.engine, found.callback, found.name, argv, numkeys, read_only,
                      is_eval=False, allow_oom="allow-oom" in flags)


@command("fcall", -3, _EVAL_FLAGS)
def fcall(ctx: Context, argv: list[bytes]) -> bytes:
    return _fcall(ctx, argv, ro=False)


@command("fcall_ro", -3, _EVAL_RO_FLAGS)
def fcall_ro(ctx: Context, argv: list[bytes]) -> bytes:
    return _fcall(ctx, argv, ro=True)
