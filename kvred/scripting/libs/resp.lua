-- Lua <-> RESP conversions, as Redis 7.0's script_lua.c does them (redisProtocolToLuaType,
-- luaReplyToRedisReply, luaPushErrorBuff). Loaded once per Lua state by engine.py; returns
-- a table of functions. Runs in C's number formatting (string.format is C's printf), so
-- integers truncate and doubles print exactly as redis-server's do ("-nan", "1e+20").

local type, tonumber, tostring, rawget, next = type, tonumber, tostring, rawget, next
local sub, find, byte, format, gsub = string.sub, string.find, string.byte, string.format, string.gsub
local concat = table.concat

local M = {}

-- luaPushErrorBuff: "-CODE msg" or "msg" (code ERR) -> {err = "CODE msg"}, CR/LF trimmed
-- from both ends as sdstrim does.
function M.error_table(text)
  local code, msg
  if byte(text, 1) == 45 then -- '-'
    local space = find(text, ' ', 1, true)
    if space then
      code, msg = sub(text, 2, space - 1), sub(text, space + 1)
    else
      code, msg = 'ERR', sub(text, 2)
    end
  else
    code, msg = 'ERR', text
  end
  msg = gsub(gsub(msg, '^[\r\n]+', ''), '[\r\n]+$', '')
  return {err = code .. ' ' .. msg}
end
local error_table = M.error_table

-- A command's reply (RESP2 or RESP3 bytes, as the script's protocol asked) -> Lua value.
local parse
parse = function(s, pos)
  local kind = byte(s, pos)
  local eol = find(s, '\r\n', pos, true)
  local line = sub(s, pos + 1, eol - 1)
  local after = eol + 2
  if kind == 36 then -- '$' bulk
    local n = tonumber(line)
    if n < 0 then return false, after end
    return sub(s, after, after + n - 1), after + n + 2
  elseif kind == 58 then -- ':' integer
    return tonumber(line), after
  elseif kind == 43 then -- '+' status
    return {ok = line}, after
  elseif kind == 45 then -- '-' error
    local t = error_table('-' .. line)
    t.ignore_error_stats_update = true
    return t, after
  elseif kind == 42 or kind == 62 then -- '*' array, '>' push
    local n = tonumber(line)
    if n < 0 then return false, after end
    local t = {}
    for i = 1, n do
      t[i], after = parse(s, after)
    end
    return t, after
  elseif kind == 37 then -- '%' map
    local map = {}
    for _ = 1, tonumber(line) do
      local k, v
      k, after = parse(s, after)
      v, after = parse(s, after)
      map[k] = v
    end
    return {map = map}, after
  elseif kind == 126 then -- '~' set
    local set = {}
    for _ = 1, tonumber(line) do
      local k
      k, after = parse(s, after)
      set[k] = true
    end
    return {set = set}, after
  elseif kind == 95 then -- '_' null
    return nil, after
  elseif kind == 35 then -- '#' boolean
    return line == 't', after
  elseif kind == 44 then -- ',' double
    return {double = tonumber(line)}, after
  elseif kind == 40 then -- '(' big number
    return {big_number = line}, after
  elseif kind == 61 then -- '=' verbatim string: "fmt:" then the text
    local n = tonumber(line)
    local body = sub(s, after, after + n - 1)
    return {verbatim_string = {format = sub(body, 1, 3), string = sub(body, 5)}}, after + n + 2
  elseif kind == 124 then -- '|' attribute: skipped, the value follows
    for _ = 1, 2 * tonumber(line) do
      local _v
      _v, after = parse(s, after)
    end
    return parse(s, after)
  end
  error('kvred: unexpected reply byte ' .. tostring(kind))
end

function M.parse_reply(s)
  local value = parse(s, 1)
  return value
end

-- Lua value -> the caller's reply. `script_resp` is what redis.setresp() chose (booleans
-- depend on it), `client3` the caller's protocol. Stops once the reply passes `limit`
-- bytes: returns nil then (the caller drops the client, as for any oversized reply).
local function one_line(s)
  return (gsub(s, '[\r\n]', ' '))
end

local full_to_resp

-- `script_resp` may be a callable that tells it (asked only when a table or boolean is converted)
function M.to_resp(value, script_resp, client3, limit)
  -- the common replies without building the converter (a third of a short EVALSHA's time)
  local t = type(value)
  if t == 'number' then
    return format(':%d\r\n', value)
  elseif t == 'string' then
    if #value + 32 <= limit then return '$' .. #value .. '\r\n' .. value .. '\r\n' end
  elseif t == 'nil' then
    return client3 and '_\r\n' or '$-1\r\n'
  elseif t == 'table' then
    -- a status or error table (what redis.call('SET', ...) returns) reads the same under
    -- either setresp: no need to ask Python which one the script chose
    local field = rawget(value, 'err')
    if type(field) == 'string' then return '-' .. one_line(field) .. '\r\n' end
    if field == nil then
      field = rawget(value, 'ok')
      if type(field) == 'string' then return '+' .. one_line(field) .. '\r\n' end
    end
  end
  if type(script_resp) ~= 'number' then script_resp = script_resp() end
  return full_to_resp(value, script_resp, client3, limit)
end

full_to_resp = function(value, script_resp, client3, limit)
  local out, n, size = {}, 0, 0
  local null = client3 and '_\r\n' or '$-1\r\n'
  local emit = function(piece)
    n = n + 1
    out[n] = piece
    size = size + #piece
    if size > limit then error(M) end -- M: the "too large" marker, caught below
  end
  local function bulk(s)
    emit('$' .. #s .. '\r\n')
    emit(s)
    emit('\r\n')
  end
  local convert
  convert = function(v)
    local t = type(v)
    if t == 'string' then
      bulk(v)
    elseif t == 'number' then
      emit(format(':%d\r\n', v))
    elseif t == 'boolean' then
      if script_resp == 2 then
        emit(v and ':1\r\n' or null)
      elseif client3 then
        emit(v and '#t\r\n' or '#f\r\n')
      else
        emit(v and ':1\r\n' or ':0\r\n')
      end
    elseif t == 'table' then
      local field = rawget(v, 'err')
      if type(field) == 'string' then
        emit('-' .. one_line(field) .. '\r\n')
        return
      end
      field = rawget(v, 'ok')
      if type(field) == 'string' then
        emit('+' .. one_line(field) .. '\r\n')
        return
      end
      field = rawget(v, 'double')
      if type(field) == 'number' then
        if field == 1 / 0 or field == -1 / 0 then
          local text = field > 0 and 'inf' or '-inf'
          if client3 then emit(',' .. text .. '\r\n') else bulk(text) end
        elseif client3 then
          emit(format(',%.17g\r\n', field))
        else
          bulk(format('%.17g', field))
        end
        return
      end
      field = rawget(v, 'big_number')
      if type(field) == 'string' then
        field = one_line(field)
        if client3 then emit('(' .. field .. '\r\n') else bulk(field) end
        return
      end
      field = rawget(v, 'verbatim_string')
      if type(field) == 'table' then
        local fmt, text = rawget(field, 'format'), rawget(field, 'string')
        if type(fmt) == 'string' and type(text) == 'string' then
          if client3 then
            emit('=' .. (#text + 4) .. '\r\n' .. sub(fmt .. '   ', 1, 3) .. ':')
            emit(text)
            emit('\r\n')
          else
            bulk(text)
          end
          return
        end
      end
      field = rawget(v, 'map')
      if type(field) == 'table' then
        local head = n + 1
        emit('')
        local count = 0
        for k, item in next, field do
          convert(k)
          convert(item)
          count = count + 1
        end
        out[head] = client3 and ('%' .. count .. '\r\n') or ('*' .. 2 * count .. '\r\n')
        return
      end
      field = rawget(v, 'set')
      if type(field) == 'table' then
        local head = n + 1
        emit('')
        local count = 0
        for k in next, field do
          convert(k)
          count = count + 1
        end
        out[head] = (client3 and '~' or '*') .. count .. '\r\n'
        return
      end
      local head = n + 1
      emit('')
      local j = 1
      while true do
        local item = rawget(v, j)
        if item == nil then break end
        convert(item)
        j = j + 1
      end
      out[head] = '*' .. (j - 1) .. '\r\n'
    else
      emit(null)
    end
  end
  local ok, err = pcall(convert, value)
  if not ok then
    if err == M then return nil end
    return '-ERR reached lua stack limit\r\n' -- a table that contains itself, or nests too deep
  end
  return concat(out)
end

-- The reply for a script that failed: the error table the error handler made (message,
-- and where: " script: <name>, on @user_script:<line>."), or a bare string for what the
-- handler never saw (Lua's "not enough memory").
function M.error_reply(e, name)
  if type(e) ~= 'table' then
    local msg = type(e) == 'string' and e or 'execution failure'
    return '-ERR Error running script ' .. name .. ', ' .. one_line(sub(msg, 1, 100)) .. ' \r\n'
  end
  local msg = rawget(e, 'err')
  local text = type(msg) == 'string' and msg or (type(msg) == 'number' and tostring(msg)) or 'ERR unknown error'
  local source, line = rawget(e, 'source'), rawget(e, 'line')
  if source ~= nil and line ~= nil then
    text = text .. ' script: ' .. name .. ', on ' .. tostring(source) .. ':' .. tostring(line) .. '.'
  end
  return '-' .. one_line(text) .. '\r\n'
end

return M
