"""Lua scripting and functions (Redis 7.0's eval.c, function_lua.c, script.c, script_lua.c).

Layout:
    engine.py       one Lua 5.1 state (lupa): sandbox, the redis.* API, calls into Lua
    libs/resp.lua   Lua <-> RESP conversions; libs/sandbox.lua: globals, error handler, entry points
    runner.py       running a script against the keyspace: checks, AOF block, BUSY/KILL state
    functions.py    FUNCTION's libraries (load, delete, dump/restore)
    cjson.py cmsgpack.py luastruct.py bitop.py   the libraries Redis loads into Lua
The commands are in kvred/commands/scripting.py.
"""

__all__: list[str] = []
