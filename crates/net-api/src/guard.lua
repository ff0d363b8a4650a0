-- The guards of the `debug` library and of the chunk loaders, run once per device before any
-- script (stdlib.rs), with the two bindings of `chunks.rs` as arguments.
--
-- `debug`: what a script can reach through it stops at the simulator's own objects. Its functions hand out whatever a frame, an upvalue or the registry holds, and in
-- this simulator that includes the C functions and userdata of the Rust bindings (mlua's): a
-- userdata finaliser called with the wrong object, or a C function's upvalue swapped, reads memory
-- as the wrong type and crashes the process. So, on every target, for the functions the profile
-- has (stdlib.rs trims them first):
-- - getregistry returns a copy of the registry's named entries (_LOADED, the handle kinds' method
--   tables), not the registry, whose other entries are the simulator's (mlua's metatables, its
--   reference thread);
-- - getmetatable of a userdata honours `__metatable` (as getmetatable does: a handle's is false),
--   setmetatable, setfenv/setuservalue refuse a userdata whose metatable is protected that way,
--   and getfenv/getuservalue give it none;
-- - getupvalue, setupvalue, upvaluejoin see no upvalues in C functions nor in these wrappers;
-- - getlocal and setlocal see no locals in the frame of a C function nor of these wrappers, and
--   getinfo gives no `func` for a C function's frame.
-- Finalisers (5.1): a `newproxy` object's `__gc` runs between callbacks, not inside the
-- collector. mlua's protected calls on 5.1 keep their helper functions in two registry slots that
-- a collector step can come between the writing and the reading of; a finaliser calling a binding
-- there overwrites them, and the interrupted call then runs another's code. So the collector only
-- queues the object, and the loop runs the queue (heap.rs). The proxy's metatable as the script
-- sees it is a stand-in whose fields other than `__gc` are copied to the real one.
--
-- Loaders: `load`, `loadstring` take a binary chunk only when `string.dump` made it during this
-- boot (`chunks.rs`); anything else that starts like bytecode is refused as Lua 5.3 refuses a
-- binary chunk in text mode. (`loadfile`, `dofile` and `require` check in Rust.)
--
-- Everything is captured in upvalues at boot and no global is read later, so replacing a global
-- changes nothing here. Levels are passed on one deeper (this wrapper's frame); no call here is a
-- tail call, which would drop that frame.
local loadable, record = ...
local debug, type, next, tonumber, getmetatable, rawget, error, select, sub, byte, gsub, pcall =
  debug, type, next, tonumber, getmetatable, rawget, error, select, string.sub, string.byte,
  string.gsub, pcall
local _G, string, is_51, setmetatable, rawset, remove =
  _G, string, _VERSION == "Lua 5.1", setmetatable, rawset, table.remove
local getinfo, real_getmetatable = debug.getinfo, debug.getmetatable

-- The wrappers and their helpers: their upvalues (the real functions) and their frames (which
-- hold what the real functions return) are the simulator's too.
local own = setmetatable({}, { __mode = "k" })

local function is_own(f)
  return own[f] ~= nil
end

-- Is this userdata's metatable protected (a `__metatable` field, as every handle's has)?
local function protected(v)
  local mt = real_getmetatable and real_getmetatable(v)
  return type(v) == "userdata" and type(mt) == "table" and rawget(mt, "__metatable") ~= nil
end

-- Is the function at `level` of `thread` (nil: this one; levels as the caller counts them) one
-- whose frame is closed to scripts?
local function closed_frame(thread, level)
  local n = tonumber(level)
  if not n or not getinfo then return false end
  local info
  if thread then info = getinfo(thread, n, "Sf") else info = getinfo(n + 2, "Sf") end
  local closed = info ~= nil and (info.what == "C" or is_own(info.func))
  return closed
end

local function closed_function(f)
  return type(f) == "function" and (is_own(f) or getinfo(f, "S").what == "C")
end

for _, f in next, { is_own, protected, closed_frame, closed_function } do own[f] = true end

-- Replaces `lib[name]` (when the profile has it) by what `make` makes of it.
local function wrap_in(lib, name, make)
  local real = lib[name]
  if real == nil then return end
  local f = make(real)
  own[f] = true
  lib[name] = f
end

local function wrap(name, make)
  wrap_in(debug, name, make)
end

wrap("getregistry", function(getregistry)
  return function()
    local reg, view = getregistry(), {}
    for k, v in next, reg do
      local t = type(v)
      if type(k) == "string" and sub(k, 1, 12) ~= "nodemcu-sim." and k ~= "_LOADLIB"
          and t ~= "userdata" and t ~= "thread" then
        view[k] = v
      end
    end
    return view
  end
end)

wrap("getmetatable", function(getmeta)
  return function(v)
    local mt
    if type(v) == "userdata" then mt = getmetatable(v) else mt = getmeta(v) end
    return mt
  end
end)

wrap("setmetatable", function(setmeta)
  return function(v, mt)
    if protected(v) then error("cannot change a protected metatable", 0) end
    local r = setmeta(v, mt)
    return r
  end
end)

for _, name in next, { "getfenv", "getuservalue" } do
  wrap(name, function(get)
    return function(v)
      if protected(v) then return nil end
      local r = get(v)
      return r
    end
  end)
end

for _, name in next, { "setfenv", "setuservalue" } do
  wrap(name, function(set)
    return function(v, t)
      if protected(v) then error("cannot change a protected userdata", 0) end
      local r = set(v, t)
      return r
    end
  end)
end

wrap("getupvalue", function(getupvalue)
  return function(f, n)
    if closed_function(f) then return end
    local name, value = getupvalue(f, n)
    return name, value
  end
end)

wrap("setupvalue", function(setupvalue)
  return function(f, n, v)
    if closed_function(f) then return end
    local name = setupvalue(f, n, v)
    return name
  end
end)

wrap("upvaluejoin", function(upvaluejoin)
  return function(f1, n1, f2, n2)
    if is_own(f1) or is_own(f2) then error("cannot join an upvalue of the simulator's", 0) end
    upvaluejoin(f1, n1, f2, n2)
  end
end)

-- `[thread,] level, ...`: the thread (or nil), the level and the rest.
local function split(a, b, ...)
  if type(a) == "thread" then return a, b, ... end
  return nil, a, b, ...
end

-- The level the real function is to get: one deeper on this thread's stack (this wrapper's frame).
local function deeper(thread, level)
  local n = tonumber(level)
  if thread or not n then return level end
  return n + 1
end
own[split], own[deeper] = true, true

wrap("getlocal", function(getlocal)
  return function(...)
    local thread, level, n = split(...)
    if type(level) ~= "function" and closed_frame(thread, level) then return nil end
    local name, value
    if thread then name, value = getlocal(thread, level, n)
    elseif type(level) == "function" then name, value = getlocal(level, n)
    else name, value = getlocal(deeper(nil, level), n) end
    return name, value
  end
end)

wrap("setlocal", function(setlocal)
  return function(...)
    local thread, level, n, v = split(...)
    if closed_frame(thread, level) then return nil end
    local name
    if thread then name = setlocal(thread, level, n, v)
    else name = setlocal(deeper(nil, level), n, v) end
    return name
  end
end)

wrap("getinfo", function(getinfo)
  return function(...)
    local thread, level, options = split(...)
    local info, kind
    if thread then
      info = getinfo(thread, level, options)
      if type(level) ~= "function" then kind = getinfo(thread, level, "S") end
    else
      level = deeper(nil, level)
      if options == nil then info = getinfo(level) else info = getinfo(level, options) end
      if type(level) ~= "function" then kind = getinfo(level, "S") end
    end
    if type(info) == "table" and type(kind) == "table" and kind.what == "C" then
      info.func = nil
    end
    return info
  end
end)

-- Finalisers (see the top).
local pending = {}
-- The stand-ins made so far: a proxy made from another shares its metatable, stand-in and all.
local shadows = setmetatable({}, { __mode = "k" })

local function queue(p)
  local shadow = getmetatable(p)
  local f = type(shadow) == "table" and shadow.__gc
  if f then
    pending[#pending + 1] = f
    pending[#pending + 1] = p
  end
end

-- Runs the queued finalisers; the first error is raised once all have run.
local function run_pending()
  local first
  while pending[1] ~= nil do
    local f, p = pending[1], pending[2]
    remove(pending, 1)
    remove(pending, 1)
    local ok, e = pcall(f, p)
    if not ok and first == nil then first = e end
  end
  if first ~= nil then error(first, 0) end
end
own[queue], own[run_pending] = true, true

if is_51 then
  wrap_in(_G, "newproxy", function(newproxy)
    return function(...)
      local ok, p = pcall(newproxy, ...)
      if not ok then error("bad argument #1 to 'newproxy' (boolean or proxy expected)", 2) end
      local mt = getmetatable(p)
      if type(mt) ~= "table" or shadows[mt] then return p end
      -- The stand-in stays empty: what is stored in it is kept in `fields` (and copied).
      local shadow, fields = {}, {}
      local function copy(_, k, v)
        rawset(fields, k, v)
        if k ~= "__gc" and k ~= "__metatable" then rawset(mt, k, v) end
      end
      own[copy] = true
      setmetatable(shadow, { __index = fields, __newindex = copy, __metatable = false })
      shadows[shadow] = true
      rawset(mt, "__gc", queue)
      rawset(mt, "__metatable", shadow)
      return p
    end
  end)
end

-- The chunk loaders. An error raised by a C function gets its caller's position, which would be
-- this file's: so the argument checks the real functions make are made here first, raised at the
-- script's line, with the firmware's words.
local REFUSED = "attempt to load a binary chunk (mode is 't')"

local function binary(s)
  return type(s) == "string" and byte(s, 1) == 27
end

local function refused(s)
  return binary(s) and not loadable(s)
end

-- luaL_checkstring / luaL_optstring / luaL_checktype(function) of argument `n` of `fname`, with
-- `count` arguments given.
local function check(fname, n, v, count, expected, optional)
  local t = type(v)
  if t == expected or (expected == "string" and t == "number") or (optional and v == nil) then
    return
  end
  local got = n > count and "no value" or t
  error("bad argument #" .. n .. " to '" .. fname .. "' (" .. expected .. " expected, got " .. got .. ")", 3)
end
own[binary], own[refused], own[check] = true, true, true

wrap_in(string, "dump", function(dump)
  return function(...)
    check("dump", 1, (...), select('#', ...), "function")
    local ok, chunk = pcall(dump, ...)
    if not ok then error(chunk, 2) end
    record(chunk)
    return chunk
  end
end)

if is_51 then
  wrap_in(_G, "loadstring", function(loadstring)
    return function(...)
      local s, name = ...
      check("loadstring", 1, s, select('#', ...), "string")
      check("loadstring", 2, name, select('#', ...), "string", true)
      if refused(s) then return nil, REFUSED end
      local f, e = loadstring(s, name)
      return f, e
    end
  end)

  -- With a reader, its first piece tells text from bytecode; bytecode through a reader is never
  -- one `string.dump` made as a whole, so it is refused.
  wrap_in(_G, "load", function(load)
    return function(...)
      local reader, name = ...
      check("load", 1, reader, select('#', ...), "function")
      check("load", 2, name, select('#', ...), "string", true)
      local ok, first = pcall(reader)
      if not ok then return nil, first end
      if binary(first) then return nil, REFUSED end
      local started = false
      local f, e = load(function()
        if started then return reader() end
        started = true
        return first
      end, name)
      return f, e
    end
  end)
else
  -- 5.3: the mode argument does it; a chunk `string.dump` made keeps the caller's mode.
  wrap_in(_G, "load", function(load)
    return function(...)
      local chunk, name, mode, env = ...
      local n = select('#', ...)
      if type(chunk) ~= "string" and type(chunk) ~= "number" then
        check("load", 1, chunk, n, "function")
      end
      check("load", 2, name, n, "string", true)
      check("load", 3, mode, n, "string", true)
      if not (binary(chunk) and loadable(chunk)) then
        if mode == nil then mode = "t" else mode = gsub(mode, "b", "") end
      end
      local f, e
      if n >= 4 then f, e = load(chunk, name, mode, env) else f, e = load(chunk, name, mode) end
      return f, e
    end
  end)
end

return pending, run_pending
