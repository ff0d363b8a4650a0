-- The fuzzer's device script (fuzz.rs prepends `local SEED, CALLS = n, m`). It finds every module
-- function (the tables in _G and one level below) and every handle method (the method tables the
-- registry names) at run time, so a new module is covered without a change here, and calls them
-- with random arguments: odd numbers, strings, tables, functions that error or yield, handles of
-- every kind (also closed ones, also as `self` of another kind), from the main chunk, from inside
-- callbacks, and with the heap exhausted. Errors are expected; only the simulator's own failures
-- count (a crash, a hang, a message in Rust's words), and fuzz.rs judges those from outside.
-- Everything is drawn from one seeded generator, so a seed replays the same calls.
-- Park-Miller: every product stays below 2^53, so 5.1's doubles compute it exactly too.
local seed = SEED % 2147483646 + 1
local function rnd(n)
  seed = (seed * 16807) % 2147483647
  return seed % n + 1
end

-- What must never be called: what ends or stalls the run, or reaches outside the device.
local SKIP = {
  ["node.restart"] = true, ["node.dsleep"] = true, ["node.deepsleep"] = true,
  ["node.setonerror"] = true, ["tmr.delay"] = true, ["tmr.softwd"] = true,
  ["node.sleep"] = true, ["node.input"] = true, ["node.output"] = true,
  ["file.format"] = true, ["uart.on"] = true,
}
local LIBS = { _G = true, package = true, string = true, table = true, math = true,
  coroutine = true, debug = true, io = true, os = true, utf8 = true }

local calls = {}
for name, lib in pairs(_G) do
  if type(lib) == "table" and not LIBS[name] then
    for k, f in pairs(lib) do
      local full = name .. "." .. tostring(k)
      if type(f) == "function" and not SKIP[full] then
        calls[#calls + 1] = { full, f }
      elseif type(f) == "table" then
        for k2, f2 in pairs(f) do
          local full2 = full .. "." .. tostring(k2)
          if type(f2) == "function" and not SKIP[full2] then calls[#calls + 1] = { full2, f2 } end
        end
      end
    end
  end
end
local methods = {}
for kind, t in pairs(debug.getregistry()) do
  if type(t) == "table" and kind ~= "_LOADED" and kind ~= "FILE*" and kind ~= "_PRELOAD" then
    for k, f in pairs(t) do
      if type(f) == "function" then methods[#methods + 1] = { kind .. ":" .. tostring(k), f } end
    end
  end
end
table.sort(calls, function(a, b) return a[1] < b[1] end)
table.sort(methods, function(a, b) return a[1] < b[1] end)

local handles = {}
local values
local fuzz_calls

local function erroring() error("boom") end
local function yielding() coroutine.yield(1) end
local function callback(...)
  fuzz_calls(3)
  if rnd(4) == 1 then error("in a callback") end
end

-- A table whose metamethods call back in, for bindings that convert or index their arguments.
local reentrant = {
  __tostring = function() fuzz_calls(2) return "t" end,
  __index = function() fuzz_calls(1) end,
  __len = function() fuzz_calls(1) return 3 end,
  __call = callback,
}

values = {
  function() return setmetatable({}, reentrant) end,
  function() return nil end, function() return true end, function() return false end,
  function() return 0 end, function() return -1 end, function() return 1 end,
  function() return rnd(70000) end, function() return 2^31 end, function() return -2^31 - 1 end,
  function() return 2^53 end, function() return -2^63 end, function() return 1/0 end,
  function() return -1/0 end, function() return 0/0 end, function() return 0.5 end,
  function() return "" end, function() return "x" end, function() return string.rep("a", 1500) end,
  function() return "%" end, function() return "init.lua" end, function() return "f.txt" end,
  function() return "127.0.0.1" end, function() return "255.255.255.255" end,
  function() return "0x10" end, function() return "receive" end, function() return "sent" end,
  function() return "connection" end, function() return "r" end, function() return "w+" end,
  function() return {} end, function() return { 1, 2, 3 } end,
  function() return { ssid = "x", pwd = "y", auto = false } end,
  function() return callback end, function() return erroring end, function() return yielding end,
  function() return print end,
  function() if #handles > 0 then return handles[rnd(#handles)] end end,
  function() if #handles > 0 then return handles[rnd(#handles)] end end,
  function() if #handles > 0 then return handles[rnd(#handles)] end end,
}

local function value() return values[rnd(#values)]() end

local function args(n)
  local a = {}
  for i = 1, n do a[i] = value() end
  return a
end

-- An error's words: a binding raises a string in the firmware's words; an error value that is
-- a userdata, or mlua's or Rust's words, is the simulator's own failure showing.
local RUST = { "memory error", "runtime error", "callback error", "<traceback unavailable>",
  "error converting", "Option::unwrap", "called `", "panicked", "RuntimeError(",
  "CallbackError", "stack traceback" }
local find = string.find
local function judge(err)
  if type(err) == "userdata" then print("BAD error value: " .. tostring(err)) return end
  if type(err) ~= "string" then return end
  for _, w in ipairs(RUST) do
    if find(err, w, 1, true) then print("BAD error: " .. err) return end
  end
end

local function keep(ok, ...)
  if not ok then pcall(judge, (...)) return end
  for i = 1, select('#', ...) do
    local v = select(i, ...)
    if type(v) == "userdata" and #handles < 60 then handles[#handles + 1] = v end
  end
end

local unpack = unpack or table.unpack

local function one_call()
  local n = rnd(5) - 1
  local a = args(n)
  if #methods > 0 and rnd(2) == 1 then
    local m = methods[rnd(#methods)]
    local self = (#handles > 0 and rnd(5) > 1) and handles[rnd(#handles)] or value()
    keep(pcall(m[2], self, unpack(a, 1, n)))
  else
    local c = calls[rnd(#calls)]
    keep(pcall(c[2], unpack(a, 1, n)))
  end
end

-- Protected as a whole too: with the heap exhausted even drawing the arguments fails.
fuzz_calls = function(k)
  for _ = 1, k do pcall(one_call) end
end

-- Calls from inside a coroutine too, which a yielding argument may suspend.
local function in_coroutine()
  local co = coroutine.create(function() fuzz_calls(5) end)
  for _ = 1, 3 do coroutine.resume(co) end
end

-- With the heap full: everything allocated until allocation fails, a few calls, then freed.
-- (Not on `host`, whose heap has no limit.)
local function exhausted()
  if node.heap() > 10000000 then return end
  local hog = {}
  pcall(function() while true do hog[#hog + 1] = {} end end)
  fuzz_calls(5)
  hog = nil
  collectgarbage()
end

-- Garbage whose finaliser calls in: it runs inside whatever allocation the collector steps in,
-- the bindings' own included.
local function finaliser()
  fuzz_calls(2)
  if rnd(3) == 1 then error("in a finaliser") end
end
local function garbage_with_finaliser()
  if newproxy then
    local p = newproxy(true)
    getmetatable(p).__gc = finaliser
  else
    setmetatable({}, { __gc = finaliser })
  end
end

for i = 1, CALLS do
  local r = rnd(40)
  if r == 1 then pcall(in_coroutine)
  elseif r == 2 then pcall(exhausted)
  elseif r == 3 then pcall(collectgarbage)
  elseif r <= 6 then pcall(garbage_with_finaliser)
  else pcall(one_call) end
end
-- Whatever timers and sockets the calls left run their callbacks until the time limit.
print("fuzz done")
