-- The Lua side of a kvred scripting state (engine.py loads it once per Lua state, with
-- debug still available, as chunk '=[kvred]'). It builds what scripts see, as Redis 7.0's
-- script_lua.c / eval.c / function_lua.c do:
--   * the globals: Lua's base functions Redis keeps, the libraries, `redis`; reading a
--     missing global and creating one are errors with Redis's texts. Library tables are
--     read-only proxies ("Attempt to modify a readonly table"); Redis's patched Lua marks
--     tables read-only, stock Lua 5.1 (lupa's) needs the proxy.
--   * redis.call/pcall and the rest of the API, on the Python callbacks in `py`;
--   * the error handler that turns any error into {err=..., source=..., line=...};
--   * the entry points engine.py calls: compile, run, load a function library.
-- debug, os, io, package, require, loadfile, dofile, print and lupa's `python` are not
-- reachable from scripts. Errors raised here point at the script's line, not ours: the
-- error handler skips this chunk's frames.
local py, resp, mode, version, version_num = ...

local dbg = debug
local type, tostring, tonumber, select, error = type, tostring, tonumber, select, error
local rawget, rawset, next, setmetatable, getmetatable = rawget, rawset, next, setmetatable, getmetatable
local unpack, xpcall, pcall, setfenv, loadstring = unpack, xpcall, pcall, setfenv, loadstring
local format, sub, floor, ceil = string.format, string.sub, math.floor, math.ceil
local error_table, parse_reply, to_resp, error_reply = resp.error_table, resp.parse_reply, resp.to_resp, resp.error_reply
local lua_error_value
local INTERNAL = '=[kvred]'
local HOOK_INSTRUCTIONS = 100000  -- Redis's count hook period (luaCallFunction)

local function raise(text) error(error_table(text)) end

-- read-only tables --------------------------------------------------------------------
local readonly = setmetatable({}, {__mode = 'k'}) -- proxy -> the table it shows
local function readonly_error() error('Attempt to modify a readonly table', 2) end
local function protect(real)
  local proxy = setmetatable({}, {__index = real, __newindex = readonly_error, __metatable = {}})
  readonly[proxy] = real
  return proxy
end

local function nonexistent_global(t, name)
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end
local function missing_field_table(t)
  return setmetatable(t, {__index = nonexistent_global, __newindex = readonly_error, __metatable = {}})
end

-- the redis API ------------------------------------------------------------------------
-- Everything that can raise an error is a Python callable: to Lua a C function, so that
-- `return redis.call(...)` (a tail call) keeps the script's frame, whose line the error
-- reply names, as Redis's C functions keep it. Their errors reach Lua as Python exception
-- objects; the error handler and pcall turn them into Redis's error tables (py.unwrap_error).
local api = {}
for name, f in next, py.api do api[name] = f end

local function single_field(field, ...)
  if select('#', ...) ~= 1 or type((...)) ~= 'string' then
    return error_table('wrong number or type of arguments')
  end
  local s = ...
  if field == 'err' then
    return error_table(sub(s, 1, 1) == '-' and s or '-' .. s)
  end
  return {ok = s}
end
api.error_reply = function(...) return single_field('err', ...) end
api.status_reply = function(...) return single_field('ok', ...) end
api.REPL_NONE, api.REPL_AOF, api.REPL_SLAVE, api.REPL_REPLICA, api.REPL_ALL = 0, 1, 2, 2, 3
api.LOG_DEBUG, api.LOG_VERBOSE, api.LOG_NOTICE, api.LOG_WARNING = 0, 1, 2, 3
api.REDIS_VERSION, api.REDIS_VERSION_NUM = version, version_num
local redis_log = api.log
if mode == 'eval' then
  api.breakpoint = function() return false end
  api.debug = function() end
  api.replicate_commands = function() return true end
end

local math_real = {}
for k, v in next, math do math_real[k] = v end
math_real.random, math_real.randomseed = py.random, py.randomseed

-- a Python exception raised by the API -> Redis's error value
lua_error_value = function(e, where)
  local text, kind = py.unwrap_error(e)
  if kind == 'table' then
    local t = error_table(text)
    t.ignore_error_stats_update = true
    return t
  elseif kind == 'reply' then
    return parse_reply(text)
  end
  -- a Lua-style runtime error of a C function ("bad argument #1 to 'random' ...")
  if where then return where .. text end
  return text
end

-- pcall as Redis's: an error table with an `err` string gives that string ------------
local function after_pcall(ok, ...)
  if ok then return true, ... end
  local e = ...
  if type(e) == 'userdata' then e = lua_error_value(e) end
  if type(e) == 'table' then
    local msg = rawget(e, 'err')
    if type(msg) == 'string' or type(msg) == 'number' then return false, msg end
  end
  return false, e
end
local function redis_pcall(f, ...) return after_pcall(pcall(f, ...)) end
local function redis_xpcall(f, handler)
  return xpcall(f, function(e)
    if type(e) == 'userdata' then e = lua_error_value(e) end
    return handler(e)
  end)
end

-- the globals scripts see ------------------------------------------------------------
local visible = {}
local function is_readonly(t) return readonly[t] ~= nil or t == visible end
local function safe_rawset(t, k, v)
  if is_readonly(t) then error('Attempt to modify a readonly table', 0) end
  return rawset(t, k, v)
end
local function safe_setmetatable(t, mt)
  if is_readonly(t) then error('Attempt to modify a readonly table', 0) end
  return setmetatable(t, mt)
end
local function safe_rawget(t, k) return rawget(readonly[t] or t, k) end

local base = {
  'assert', 'collectgarbage', 'error', 'gcinfo', 'getmetatable', 'ipairs', 'next', 'rawequal', 'select', 'tonumber', 'tostring', 'type',
  'unpack', '_VERSION',
}
local libraries = {string = string, table = table, coroutine = coroutine, math = math_real}
for name, lib in next, py.libraries do libraries[name] = lib end

local function error_handler(err)
  -- Redis's: the frame that raised (its caller if that was a C function); kvred's own
  -- wrappers (this chunk) are skipped so that the position is the script's.
  local level = 2
  local i = dbg.getinfo(level, 'nSl')
  if i and i.what == 'C' then
    level = level + 1
    i = dbg.getinfo(level, 'nSl')
  end
  while i and (i.source == INTERNAL or i.what == 'C' or i.what == 'tail') do
    level = level + 1
    i = dbg.getinfo(level, 'nSl')
  end
  if type(err) == 'userdata' then
    err = lua_error_value(err, i and (i.short_src .. ':' .. i.currentline .. ': '))
  end
  if type(err) ~= 'table' then
    err = {err = 'ERR ' .. tostring(err)}
  end
  if i and not readonly[err] then
    rawset(err, 'source', i.source)
    rawset(err, 'line', i.currentline)
  end
  return err
end

local thread_env -- what chunks compiled by scripts (loadstring, load) see: the scripts' globals
local function with_env(f, err)
  if f then setfenv(f, thread_env) end
  return f, err
end
local raw_load = load
local function safe_loadstring(s, chunkname) return with_env(loadstring(s, chunkname)) end
local function safe_load(f, chunkname) return with_env(raw_load(f, chunkname)) end

local function fill_globals(g, redis_table)
  for _, name in next, base do g[name] = _G[name] end
  g.loadstring, g.load = safe_loadstring, safe_load
  g.rawget, g.rawset, g.setmetatable, g.pcall, g.xpcall = safe_rawget, safe_rawset, safe_setmetatable, redis_pcall, redis_xpcall
  g.pairs = py.pairs -- Python (a C function to Lua): its argument error names the script's line
  for name, lib in next, libraries do g[name] = protect(lib) end
  g.redis = protect(redis_table)
end
fill_globals(visible, api)
if mode == 'eval' then visible.__redis__err__handler = error_handler end
missing_field_table(visible)
-- what scripts see as their globals: an empty read-only proxy of `visible`, so that no
-- script can change what the next one sees
local G = protect(visible)
rawset(visible, "_G", G)
-- the string metatable is shared with scripts' strings: keep it out of their reach
getmetatable('').__metatable = {}

-- the script timeout / SCRIPT KILL hook ---------------------------------------------
local kill_error
local function raise_kill_unless_internal()
  local where = dbg.getinfo(2, 'S')
  if where and where.source ~= INTERNAL then error(error_table(kill_error)) end
end
local function count_hook()
  if py.hook() and kill_error == nil then
    kill_error = py.kill_message()
    -- from now on every line fails, so that a pcall in the script cannot keep it alive
    dbg.sethook(raise_kill_unless_internal, 'l')
    raise_kill_unless_internal()
  end
end

local function finish(ok, result, name, client3, limit)
  dbg.sethook()
  kill_error = nil
  if not ok then return error_reply(result, name) end
  return to_resp(result, py.script_resp, client3, limit)
end

local function start(use_hook)
  kill_error = nil
  if use_hook then dbg.sethook(count_hook, '', HOOK_INSTRUCTIONS) end
end

local entry = {}

if mode == 'eval' then
  -- EVAL: the body (without its shebang line) -> function, or nil and Lua's message
  entry.compile = function(body)
    local f, err = loadstring(body, '@user_script')
    if f == nil then return false, err end
    setfenv(f, G)
    return f, false
  end
  thread_env = G
  entry.run = function(f, name, client3, limit, use_hook, numkeys, ...)
    local keys, argv = {}, {...}
    for i = 1, numkeys do keys[i] = argv[i] end
    if numkeys > 0 then argv = {select(numkeys + 1, ...)} end
    rawset(visible, 'KEYS', keys)
    rawset(visible, 'ARGV', argv)
    start(use_hook)
    local ok, result = xpcall(f, error_handler)
    return finish(ok, result, name, client3, limit)
  end
else
  -- functions: library code runs with only redis.register_function/log and versions
  -- visible; the functions it registers run with the full API, as in Redis 7.0.
  local env_meta = {__newindex = readonly_error, __metatable = {}}
  local env = setmetatable({}, env_meta)
  env_meta.__index = visible
  thread_env = env
  local load_api = {log = redis_log, REDIS_VERSION = version, REDIS_VERSION_NUM = version_num,
    LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3}
  local flag_names = {['no-writes'] = true, ['allow-oom'] = true, ['allow-stale'] = true,
    ['no-cluster'] = true, ['allow-cross-slot-keys'] = true}
  local function read_named(t)
    if type(t) ~= 'table' then
      raise('calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).')
    end
    local name, desc, callback, flags
    for k, v in next, t do
      if type(k) ~= 'string' and type(k) ~= 'number' then
        raise('named argument key given to redis.register_function is not a string')
      end
      local key = string.lower(tostring(k))
      if key == 'function_name' then
        if type(v) ~= 'string' and type(v) ~= 'number' then
          raise('function_name argument given to redis.register_function must be a string')
        end
        name = tostring(v)
      elseif key == 'description' then
        if type(v) ~= 'string' and type(v) ~= 'number' then
          raise('description argument given to redis.register_function must be a string')
        end
        desc = tostring(v)
      elseif key == 'callback' then
        if type(v) ~= 'function' then
          raise('callback argument given to redis.register_function must be a function')
        end
        callback = v
      elseif key == 'flags' then
        if type(v) ~= 'table' then
          raise('flags argument to redis.register_function must be a table representing function flags')
        end
        flags = {}
        local j = 1
        while v[j] ~= nil do
          local flag = v[j]
          if type(flag) ~= 'string' and type(flag) ~= 'number' then raise('unknown flag given') end
          flag = string.lower(tostring(flag))
          if not flag_names[flag] then raise('unknown flag given') end
          flags[#flags + 1] = flag
          j = j + 1
        end
      else
        raise('unknown argument given to redis.register_function')
      end
    end
    if name == nil then raise('redis.register_function must get a function name argument') end
    if callback == nil then raise('redis.register_function must get a callback argument') end
    return name, callback, desc, flags or {}
  end
  load_api.register_function = function(...)
    local argc = select('#', ...)
    local name, callback, desc, flags
    if argc < 1 or argc > 2 then
      raise('wrong number of arguments to redis.register_function')
    elseif argc == 1 then
      name, callback, desc, flags = read_named((...))
    else
      name, callback = ...
      if type(name) ~= 'string' and type(name) ~= 'number' then
        raise('first argument to redis.register_function must be a string')
      end
      name = tostring(name)
      if type(callback) ~= 'function' then
        raise('second argument to redis.register_function must be a function')
      end
      flags = {}
    end
    local problem = py.register(name, callback, desc, flags)
    if problem ~= nil then raise(problem) end
  end
  local load_globals = missing_field_table({redis = protect(missing_field_table(load_api))})

  -- FUNCTION LOAD: run the library's code; nil, or the error text FUNCTION LOAD answers
  entry.load = function(code, timeout_hook)
    local f, err = loadstring(code, '@user_function')
    if f == nil then return 'Error compiling function: ' .. tostring(err) end
    setfenv(f, env)
    env_meta.__index = load_globals
    if timeout_hook then
      dbg.sethook(function()
        if py.load_timed_out() then
          dbg.sethook(function() error(error_table('FUNCTION LOAD timeout')) end, 'l')
          error(error_table('FUNCTION LOAD timeout'))
        end
      end, '', HOOK_INSTRUCTIONS)
    end
    local ok, result = pcall(f)
    dbg.sethook()
    env_meta.__index = visible
    if ok then return nil end
    if type(result) == 'userdata' then result = lua_error_value(result) end
    if type(result) == 'table' then
      local msg = rawget(result, 'err')
      result = (type(msg) == 'string' or type(msg) == 'number') and tostring(msg) or 'ERR unknown error'
    else
      result = 'ERR ' .. tostring(result)
    end
    return 'Error registering functions: ' .. result
  end
  entry.run = function(f, name, client3, limit, use_hook, numkeys, ...)
    local keys, argv = {}, {...}
    for i = 1, numkeys do keys[i] = argv[i] end
    if numkeys > 0 then argv = {select(numkeys + 1, ...)} end
    start(use_hook)
    local ok, result = xpcall(function() return f(keys, argv) end, error_handler)
    return finish(ok, result, name, client3, limit)
  end
end

entry.collect = function() collectgarbage('collect') end
-- pairs() for scripts: a read-only table's contents without handing out the table itself
entry.pairs_of = function(t)
  local real = readonly[t]
  if real == nil then return next, t, nil end
  return function(_, k) return next(real, k) end, t, nil
end
entry.parse_reply = parse_reply
entry.error_table = error_table
return entry
