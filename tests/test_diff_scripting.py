"""Differential tests of scripting (issue 14): EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT,
FUNCTION, FCALL, FCALL_RO against redis-server 7.0 (machinery: tests/differential.py).

Covered: Lua <-> RESP conversions both ways in RESP2 and RESP3 (redis.setresp), error
texts with their `user_script:N:` prefixes and `script: <sha>, on @user_script:N.`
suffixes, redis.call/pcall, the sandbox (globals, read-only tables, removed libraries),
math.random's sequence (rand48), the redis.* helpers, commands not allowed from scripts,
read-only scripts, shebang flags, SELECT inside a script, and the function libraries.
FUNCTION LIST is compared with one library at a time (Redis lists its libraries in hash
order)."""

from __future__ import annotations

import pytest
from differential import (  # noqa: F401  (servers: the fixture)
    C,
    Case,
    Cases,
    Servers,
    check_case,
    check_survived,
    hello_masked,
    servers,
)

CASES = Cases()
case = CASES.case


def E(body: str, *args: str) -> object:
    """EVAL body with numkeys 0 unless args are given (numkeys first)."""
    return C("EVAL", body, *(args or ("0",)))


# --- conversions Lua -> RESP ------------------------------------------------------------
case("returns", E("return 1"), E("return 3.99"), E("return -3.99"), E("return 'x'"), E("return true"),
     E("return false"), E("return"), E("return nil"), E("return {1,2,3.7,'x',nil,4}"),
     E("return {err='boom'}"), E("return {ok='fine'}"), E("return {err=''}"), E("return {err=1}"),
     E("return {ok='a\\r\\nb'}"), E("return {err='a\\r\\nb'}"), E("return 2^63"), E("return 1e300"),
     E("return 0/0"), E("return {1,{2,{3,'a'}},redis.status_reply('s')}"), E("return {redis.error_reply('x')}"))
case("resp3-types-to-resp2-client", E("return {double=3.5}"), E("return {double=0.1}"), E("return {double=1/0}"),
     E("return {double=-1/0}"), E("return {map={a=1}}"), E("return {set={a=true}}"),
     E("return {big_number='123'}"), E("return {verbatim_string={format='txt', string='hi'}}"),
     E("redis.setresp(3) return true"), E("redis.setresp(3) return false"))
case("resp3-client", C("HELLO", "3", norm=hello_masked), E("return {double=3.5}"), E("return {double=1/0}"),
     E("return {map={a=1}}"), E("return {set={a=true}}"), E("return {big_number='123'}"),
     E("return {verbatim_string={format='txt', string='hi'}}"), E("return true"), E("return false"),
     E("redis.setresp(3) return true"), E("redis.setresp(3) return false"), E("return nil"),
     C("HSET", "h", "a", "1"), E("return redis.call('hgetall', 'h')"),
     E("redis.setresp(3) return redis.call('hgetall', 'h')"), E("redis.setresp(3) return redis.call('get', 'nokey')"))

# --- conversions RESP -> Lua --------------------------------------------------------------
case("reply-to-lua", C("HSET", "h", "a", "1"), C("SET", "s", "v"), C("RPUSH", "l", "x", "y"),
     E("return redis.call('get', 'nokey') == false"), E("return type(redis.call('get', 's'))"),
     E("return redis.call('lrange', 'l', 0, -1)"), E("return redis.call('incr', 'n')"),
     E("return redis.call('set', 'x', 'y')"), E("local r = redis.call('set', 'x', 'y') return r.ok"),
     E("redis.setresp(3) local t = redis.call('hgetall','h') return t.map.a"),
     E("redis.setresp(3) return redis.call('get', 'nokey') == nil"),
     E("redis.setresp(3) local t = redis.call('smembers', 'nos') return type(t.set)"),
     E("redis.setresp(3) return redis.call('zscore', 'nz', 'm') == nil"),
     C("ZADD", "z", "1.5", "m"), E("redis.setresp(3) return redis.call('zscore', 'z', 'm').double * 2"),
     E("redis.setresp(2) return redis.call('hgetall', 'h')"))
case("argument-conversion", E("redis.call('set','k',0.1) return redis.call('get','k')"),
     E("redis.call('set','k',1e20) return redis.call('get','k')"),
     E("redis.call('set','k',2^63) return redis.call('get','k')"),
     E("redis.call('set','k',-7) return redis.call('get','k')"),
     E("return redis.call('set', 'k', true)"), E("return redis.call('get', {})"), E("return redis.call()"),
     E("return redis.pcall()"), E("return redis.call(1)"), E("return redis.call('SeT', 'K', 'v')"))

# --- errors ------------------------------------------------------------------------------
case("errors", E("return 1 +"), E("error('boom')"), E("error({err='X bad'})"), E("error('a\\nb')"), E("error()"),
     E("error(42)"), E("error('x', 0)"), E("error(true)"), E("error({err=5})"),
     E("local function f() error('deep') end\nlocal x = 1\nf()"), E("local x = nil\nreturn x.y"),
     E("return string.rep()"), E("return redis.call('nosuch')"), E("return redis.pcall('nosuch')"),
     E("return redis.call('set','a')"), E("return redis.call('get')"))
case("call-pcall", C("HSET", "h", "a", "1"), E("return redis.call('incr','h')"), E("return redis.pcall('incr','h')"),
     E("local r = redis.pcall('incr','h') return r.err"), E("local ok, e = pcall(redis.call, 'incr', 'h') return e"),
     E("local ok, e = pcall(error, 'boom') return e"), E("local ok, e = pcall(error, {err='boom'}) return e"),
     E("local ok, e = pcall(function() local x = nil; return x.y end) return e"),
     E("return {pcall(redis.call, 'incr', 'cnt')}"), E("redis.call('set','a','x') return redis.call('incr','a')"),
     E("return redis.call('incr',\n'h')"), E("local x = 1\nreturn redis.call('incr', 'h')"))
case("numkeys", E("return 1", "-1"), E("return 1", "3", "a"), E("return 1", "x"),
     E("return KEYS[1]..ARGV[1]..#KEYS..#ARGV", "1", "a", "b", "c"), E("return {KEYS, ARGV}", "2", "a", "b", "c"),
     C("EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "-1"), C("FCALL", "nosuchfn", "x"),
     C("EVAL", "return 1"), C("EVALSHA", "x"))

# --- sandbox -------------------------------------------------------------------------------
case("sandbox", E("x = 1"), E("return y"), E("string.foo = 1"), E("redis.call = nil"), E("rawset(_G, 'x', 1)"),
     E("setmetatable(_G, nil) return 1"), E("local f = function() y = 1 end f() return 1"),
     E("return _G.x"), E("return rawget(_G, 'x')"), E("return _VERSION"),
     E("return {os, io}"), E("return type(loadfile)"), E("return type(dofile)"), E("return type(require)"),
     E("return type(package)"), E("return type(debug)"), E("return type(print)"), E("return type(setfenv)"),
     E("return type(getfenv)"), E("return type(newproxy)"), E("return type(module)"), E("return type(python)"),
     E("return type(loadstring)..type(load)..type(gcinfo)..type(coroutine)..type(collectgarbage)"),
     E("return type(cjson)..type(cmsgpack)..type(struct)..type(bit)"),
     E("return loadstring('return 1')()"), E("return loadstring('x = 5')()"),
     E("local t = {} for k,v in pairs(redis) do t[#t+1] = k end table.sort(t) return t"),
     E("local t = {} for k,v in pairs(math) do t[#t+1] = k end table.sort(t) return t"),
     E("return pairs(nil)"))
case("random", E("math.randomseed(1) return {math.random(100), math.random(100), math.random(1000000), "
                 "tostring(math.random()), math.random(5,10)}"),
     E("math.randomseed(-7) return {math.random(3), math.random(2, 4)}"), E("return math.randomseed(1)"),
     E("return math.random(0)"), E("return math.random(1,2,3)"), E("return math.random(5, 1)"))
case("helpers", E("return redis.sha1hex('')"), E("return redis.sha1hex('abc')"), E("return redis.sha1hex()"),
     E("return redis.REDIS_VERSION .. ' ' .. redis.REDIS_VERSION_NUM"),
     E("return redis.error_reply('My err')"), E("return redis.error_reply('-My err')"),
     E("return redis.status_reply('fine')"), E("return redis.error_reply(1)"), E("return redis.status_reply()"),
     E("return redis.setresp(3)"), E("return redis.setresp(4)"), E("return redis.setresp()"),
     E("return redis.log(redis.LOG_WARNING, 'from a script')"), E("return redis.log(redis.LOG_WARNING)"),
     E("return redis.log(99, 'x')"), E("return redis.log('x', 'y')"),
     E("return {redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING}"),
     E("return {redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL}"),
     E("return redis.set_repl(redis.REPL_ALL)"), E("return redis.set_repl(99)"), E("return redis.set_repl()"),
     E("return redis.breakpoint()"), E("return redis.debug('x')"), E("return redis.replicate_commands()"),
     E("return redis.acl_check_cmd('get', 'x')"), E("return redis.acl_check_cmd('nosuch')"))
case("libraries", E("return cjson.encode({1,2,{a=3}})"), E("return cjson.encode({})"),
     E("return cjson.encode('a/b\"c')"), E("return cjson.decode('[1,2,{\"a\":3}]')[3].a"),
     E("return cjson.encode(cjson.decode('{\"k\":null}'))"), E("return cjson.encode({[1]=1,[20]=2})"),
     E("return bit.band(7, 3)"), E("return {bit.bor(1, 2, 4), bit.bxor(5, 3), bit.bnot(0), bit.lshift(1, 31)}"),
     E("return {bit.tohex(255), bit.tohex(-1, 4), bit.tohex(255, -2), bit.arshift(-256, 4), bit.rshift(-256, 28)}"),
     E("return {bit.tobit(2^32 + 5), bit.rol(1, 33), bit.ror(1, 1), bit.bswap(0x12345678)}"),
     E("return struct.pack('>I2', 258)"), E("return {struct.unpack('<i2', struct.pack('<i2', -2))}"),
     E("return struct.size('>iIhd')"), E("return cmsgpack.pack({1,2,3})"), E("return cmsgpack.pack('abc', 300, -5)"),
     E("return {cmsgpack.unpack(cmsgpack.pack({1,2,'x'}, 7))}"))

# --- commands from scripts ---------------------------------------------------------------------
_NOT_ALLOWED = ["subscribe x", "eval 'return 1' 0", "multi", "exec", "hello 3", "auth x", "client id", "watch x",
                "script load 'return 1'", "function list", "fcall x 0", "shutdown", "debug sleep 0",
                "config get port", "bgrewriteaof", "quit", "reset"]
case("not-allowed", *[E(f"return redis.call({', '.join(repr(p) for p in c.split(' '))})") for c in _NOT_ALLOWED])
case("allowed", C("SET", "k", "v"), E("return redis.call('ping')"), E("return redis.call('echo', 'e')"),
     E("return redis.call('object', 'encoding', 'k')"), E("return redis.call('object', 'nosuch', 'k')"),
     E("return redis.call('object')"), E("return redis.call('flushall')"), E("return redis.call('exists', 'k')"))
# blocking commands: BLPOP and friends are refused (noscript in Redis 7.0); BLMPOP and
# BZMPOP run and answer at once, their timeout's reply when there is nothing to pop
case("blocking-from-scripts", E("return redis.call('blpop', 'nol', 0)"), E("return redis.call('brpop', 'nol', 0)"),
     E("return redis.call('blmove', 'a', 'b', 'LEFT', 'LEFT', 0)"), E("return redis.call('bzpopmin', 'z', 0)"),
     E("return redis.call('blmpop', 0, 1, 'nol', 'LEFT')"), E("return redis.call('bzmpop', 0, 1, 'noz', 'MIN')"),
     C("RPUSH", "l", "x"), E("return redis.call('blmpop', 0, 1, 'l', 'LEFT')"),
     E("return redis.call('publish', 'ch', 'm')"), C("EVAL_RO", "return redis.call('publish', 'ch', 'm')", "0"))
case("read-only", E("return redis.call('set','k','v')"), C("EVAL_RO", "return redis.call('set','k','v')", "0"),
     C("EVAL_RO", "return redis.call('get','k')", "0"),
     E("#!lua flags=no-writes\nreturn redis.call('set','k','v')"), E("#!lua flags=no-writes\nreturn 1"),
     C("EVAL_RO", "#!lua\nreturn 1", "0"), C("EVAL_RO", "#!lua flags=no-writes\nreturn redis.call('get', 'k')", "0"),
     C("EVAL_RO", "return redis.call('del','k')", "0"))
case("shebang", E("#!lua flags=bogus\nreturn 1"), E("#!lua name=x\nreturn 1"), E("#!lua\nreturn redis.call('ping')"),
     E("#!lua flags=allow-oom,no-writes,allow-stale,no-cluster,allow-cross-slot-keys\nreturn 1"),
     E("#!luax\nreturn 1"), E("#!lua flags=\nreturn 1"), E("#!lua  flags=no-writes  \nreturn 1"),
     E("#!lua flags=no-writes"), E("#!lua\nerror('line two')"))
case("select-inside", C("SELECT", "3"), E("redis.call('select', 5) redis.call('set','indb5','x') return redis.call('dbsize')"),
     C("DBSIZE"), C("SELECT", "5"), C("GET", "indb5"), E("return redis.call('select', 99)"), C("SELECT", "0"))
case("time-frozen", C("SET", "t", "v", "PX", "1"),
     E("local n = 0 for i = 1, 200000 do n = n + 1 end return redis.call('exists', 't') >= 0"))

# --- the script cache --------------------------------------------------------------------------------
case("script-cache", C("SCRIPT", "FLUSH"), C("SCRIPT", "LOAD", "return 1"),
     C("SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "x"),
     C("EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"),
     C("EVALSHA", "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB", "0"),
     C("EVALSHA_RO", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"),
     C("EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"), C("EVALSHA", "abc", "0"),
     C("SCRIPT", "LOAD", "return 1 +"), C("SCRIPT", "FLUSH", "ASYNC"), C("SCRIPT", "FLUSH", "SYNC"),
     C("SCRIPT", "FLUSH", "FOO"), C("SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"),
     C("EVAL", "return 2", "0"), C("SCRIPT", "EXISTS", "7f923f79fe76194c868d7e1d0820de36700eb649"),
     C("SCRIPT", "KILL"), C("SCRIPT", "HELP"), C("SCRIPT", "FOO"), C("SCRIPT"), C("SCRIPT", "LOAD"))
case("in-multi", C("MULTI"), E("return redis.call('incr', 'm')"), E("return redis.call('incr', 'm')"), C("EXEC"))

# --- functions -------------------------------------------------------------------------------------
LIB = "#!lua name=mylib\nredis.register_function('f1', function(keys, args) return {keys[1], args[1]} end)"
LIB2 = ("#!lua name=lib2\nredis.register_function{function_name='f2', callback=function(keys, args) "
        "return redis.call('set', keys[1], 'v') end, flags={'no-writes'}, description='desc'}")
LIB6 = ("#!lua name=lib6\nredis.register_function('e1', function(keys, args) error('boom') end)\n"
        "redis.register_function('e2', function(keys, args) return redis.call('incr', 'hh') end)\n"
        "redis.register_function('e3', function(keys, args) local t = {} for k in pairs(redis) do t[#t+1]=k end "
        "table.sort(t) return t end)")
LOAD_ERRORS = ["#!lua name=lib4\nreturn 1", "#!lua name=lib4\nx = 1", "#!lua name=lib4\nlocal a = y",
               "#!lua name=lib4\nredis.call('ping')", "#!lua name=lib4\nredis.register_function('a b', function() end)",
               "#!lua name=lib4\nredis.register_function('ab')", "#!lua name=lib4\nredis.register_function('ab', 1)",
               "#!lua name=lib4\nredis.register_function{function_name='ab', callback=function() end, flags={'bogus'}}",
               "#!lua name=lib4\nredis.register_function{function_name='ab', callback=function() end, bogus=1}",
               "#!lua name=lib4\nredis.register_function{function_name='ab'}", "#!lua name=lib4\n",
               "#!lua\nredis.register_function('q', function() end)",
               "#!lua name=a-b\nredis.register_function('q', function() end)",
               "#!lua name=x foo=bar\nredis.register_function('q', function() end)",
               "#!luax name=x\nredis.register_function('q', function() end)",
               "redis.register_function('q', function() end)",
               "#!lua name=lib4\nredis.register_function('q', function() end",
               "#!lua name=lib4\nlocal t = {} for k in pairs(redis) do t[#t+1]=k end"]
FLUSH = C("FUNCTION", "FLUSH")
case("functions", FLUSH, C("FUNCTION", "LOAD", LIB), C("FCALL", "f1", "1", "k", "a"), C("FCALL", "F1", "1", "k", "a"),
     C("FCALL_RO", "f1", "0"), C("FCALL", "nosuch", "0"), C("FCALL", "f1", "5"), C("FCALL", "f1", "-1"),
     C("FUNCTION", "LOAD", LIB), C("FUNCTION", "LIST"), C("FUNCTION", "LIST", "WITHCODE"),
     C("FUNCTION", "LOAD", "REPLACE", LIB.replace("keys[1], args[1]", "1")), C("FCALL", "f1", "0"),
     C("FUNCTION", "LOAD", "#!lua name=lib3\nredis.register_function('f1', function() return 1 end)"),
     C("FUNCTION", "STATS"), C("FUNCTION", "DELETE", "mylib"), C("FUNCTION", "DELETE", "mylib"),
     C("FUNCTION", "LIST"), C("FUNCTION", "STATS"), FLUSH)
case("functions-flags", FLUSH, C("FUNCTION", "LOAD", LIB2), C("FCALL", "f2", "1", "k"), C("FCALL_RO", "f2", "1", "k"),
     C("FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "lib*"), C("FUNCTION", "LIST", "LIBRARYNAME", "nomatch"),
     C("FUNCTION", "LIST", "LIBRARYNAME"), C("FUNCTION", "LIST", "BOGUS"), C("HELLO", "3", norm=hello_masked),
     C("FUNCTION", "LIST"), C("FUNCTION", "STATS"), FLUSH)
case("functions-errors", FLUSH, *[C("FUNCTION", "LOAD", code) for code in LOAD_ERRORS], C("FUNCTION", "LIST"), FLUSH)
case("functions-runtime", FLUSH, C("FUNCTION", "LOAD", LIB6), C("HSET", "hh", "a", "1"), C("FCALL", "e1", "0"),
     C("FCALL", "e2", "0"), C("FCALL", "e3", "0"), FLUSH)
case("function-misc", FLUSH, C("FUNCTION", "KILL"), C("FUNCTION", "FLUSH", "BAD"), C("FUNCTION", "FLUSH", "ASYNC"),
     C("FUNCTION", "HELP"), C("FUNCTION", "RESTORE", "xx"), C("FUNCTION", "RESTORE", "xx", "BAD"),
     C("FUNCTION", "FOO"), C("FUNCTION"), C("FUNCTION", "LOAD"), C("FCALL", "x"))


@pytest.mark.parametrize("seq", CASES, ids=CASES.ids())
def test_same_replies_as_redis(servers: Servers, seq: Case) -> None:  # noqa: F811
    check_case(servers, seq)


def test_kvred_survived_the_cases(servers: Servers) -> None:  # noqa: F811
    check_survived(servers)
