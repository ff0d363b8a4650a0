-- nodemcu-sim's built-in NTest: a test framework for device scripts with the API and the terminal
-- output of the firmware's tests/NTest, so test files written for it run unchanged. `require "NTest"`
-- gets this chunk when the flash holds no NTest.lua of its own (see ntest.rs).
--
-- The chunk is called with a table of private helpers from the simulator:
--   where(level)  "file:line" of the Lua function `level` frames above the caller of `where`
--   report(...)   hands every event to the test runner (`nodemcu-sim test`); a no-op elsewhere
--   setonerror(f) node.setonerror, present in every generation
-- Everything the framework needs from the standard library is captured here, at load time, so a
-- test that replaces `pcall`, `print` or `coroutine.resume` cannot confuse the framework itself.
local host = ...
local where, report = host.where, host.report
-- node.setonerror, kept even where the generation lacks it (before 3.0), to catch callback errors.
local setonerror = host.setonerror or function() end
local type, tostring, pcall, error, select, pairs, ipairs, setmetatable =
  type, tostring, pcall, error, select, pairs, ipairs, setmetatable
local unpack = unpack or table.unpack
local co_create, co_resume, co_yield, co_status =
  coroutine.create, coroutine.resume, coroutine.yield, coroutine.status
local dump, find, match = string.dump, string.find, string.match
local remove = table.remove
local collectgarbage = collectgarbage

-- A failed check raises this to leave the test body; it is never reported as an exception.
local ABORT = "NTest: a check failed, the test stops here"

local function is_abort(err)
  return type(err) == "string" and find(err, ABORT, 1, true) ~= nil
end

-- Error texts are shown with the position's directories cut off, as the firmware's NTest does.
-- (Flash names are flat, so this only matters for chunks named after a host path.)
local function short(err)
  err = tostring(err)
  local place, rest = match(err, "^([^:\n]*)(:.*)$")
  if place and find(place, "[/\\]") then
    return match(place, "[^/\\]*$") .. rest
  end
  return err
end

-- The default output handler: the firmware NTest's terminal format, line for line.
local function terminal(event, test, msg, errmsg)
  local detail = errmsg and (": " .. errmsg) or ""
  if event == "start" then
    print("######## started " .. test .. " tests")
  elseif event == "finish" then
    print("######## finished " .. test .. " tests")
  elseif event == "pass" then
    print("  pass " .. test .. ": " .. msg)
  elseif event == "fail" or event == "except" then
    print(" ==>  " .. event .. " " .. test .. ": " .. msg .. detail)
  else
    print(event .. " " .. test)
  end
end

-- eq(a, b): true, or a table whose `msg` says where the values part (ok/nok show it).
local function unequal(why)
  return { msg = why }
end

local function same_code(f, g)
  local okf, df = pcall(dump, f)
  local okg, dg = pcall(dump, g)
  if okf and okg then return df == dg end
  return f == g -- C functions cannot be dumped; only identity is left
end

local function deep(a, b, seen)
  local ta, tb = type(a), type(b)
  if ta ~= tb then
    return unequal("type 1 is " .. ta .. ", type 2 is " .. tb)
  end
  if ta == "function" then
    return same_code(a, b) or unequal("functions differ")
  end
  if a == b then return true end
  if ta ~= "table" then
    return unequal("different " .. ta .. "s expected " .. tostring(a) .. " vs. " .. tostring(b))
  end
  -- A pair of tables already being compared further up counts as equal (cycles end here).
  seen[a] = seen[a] or {}
  if seen[a][b] then return true end
  seen[a][b] = true
  for k, v in pairs(a) do
    local w = b[k]
    if w == nil then
      return unequal("key " .. tostring(k) .. "only contained in left part")
    end
    local r = deep(v, w, seen)
    if r ~= true then return r end
  end
  for k in pairs(b) do
    if a[k] == nil then
      return unequal("key " .. tostring(k) .. "only contained in right part")
    end
  end
  return true
end

local function eq(a, b)
  return deep(a, b, {})
end

-- spy([f]): a callable that records each call's arguments in `.called` and each error of `f` in
-- `.errors` (indexed like `.called`), and otherwise returns what `f` returns.
local function pack(...)
  return { n = select("#", ...), ... }
end

local function spy(f)
  return setmetatable({}, {
    __call = function(self, ...)
      local calls = self.called or {}
      self.called = calls
      calls[#calls + 1] = { ... }
      if not f then return end
      local r = pack(pcall(f, ...))
      if r[1] then return unpack(r, 2, r.n) end
      self.errors = self.errors or {}
      self.errors[#calls] = r[2]
    end,
  })
end

local HELPERS = { "ok", "nok", "fail", "eq", "spy" }

-- What every run shares unless the run sets its own: `N.env`, `N.outputhandler`.
local defaults = { env = _G, outputhandler = terminal }
defaults.__index = defaults

return function(runname)
  local N = setmetatable({}, defaults)
  local queue = {} -- tests waiting to run; queue[1] is the one running
  local started = false
  local co_owner -- the testco test whose callbacks may resume its coroutine

  local function emit(handler, event, test, msg, errmsg, at)
    report(runname, event, test, msg, errmsg, at)
    handler(event, test, msg, errmsg)
  end

  -- One test at a time, each in its own LOW priority task, as on the board.
  local function advance()
    if queue[1] then
      node.task.post(node.task.LOW_PRIORITY, function() queue[1].run() end)
    else
      emit(N.outputhandler, "finish", runname)
    end
  end

  local function add(name, body, async)
    if not started then
      started = true
      emit(N.outputhandler, "start", runname)
    end
    report(runname, "queue", name)
    local test = {}

    function test.run()
      local handler, env = N.outputhandler, N.env
      local saved = {}
      for _, k in ipairs(HELPERS) do saved[k] = env[k] end
      local over = false

      -- Ends the test: reports `err` unless a failed check already did, puts the environment
      -- back, and queues the next test. Only the first call ends it.
      local function finish(err)
        if err and not is_abort(err) then emit(handler, "except", name, short(err)) end
        if over then return end
        over = true
        setonerror()
        for _, k in ipairs(HELPERS) do env[k] = saved[k] end
        emit(handler, "end", name)
        remove(queue, 1)
        collectgarbage()
        advance()
      end

      local function check(passed, msg, errmsg, at)
        if passed then
          emit(handler, "pass", name, msg, nil, at)
        else
          emit(handler, "fail", name, msg, errmsg, at)
          error(ABORT, 0)
        end
      end

      local function asserter(negate)
        return function(cond, msg)
          local at = where(1)
          local errmsg
          if type(cond) == "table" and cond.msg then
            errmsg, cond = cond.msg, false
          end
          if negate then cond = not cond end
          check(cond, msg or at, errmsg, at)
        end
      end

      env.eq, env.spy = eq, spy
      env.ok, env.nok = asserter(false), asserter(true)
      env.fail = function(fn, expected, msg)
        local at = where(1)
        msg = msg or at
        local raised, err = pcall(fn)
        if raised then
          local why = "Expected to fail with Error"
          if expected then why = why .. ' containing "' .. expected .. '"' end
          check(false, msg, why, at)
        elseif expected and not find(tostring(err), expected) then
          check(false, msg, 'expected errormessage "' .. short(err) .. '" to contain "' .. expected .. '"', at)
        else
          check(true, msg, nil, at)
        end
      end

      emit(handler, "begin", name)
      -- Errors in callbacks the test armed (timers, tasks) end it, as exceptions.
      setonerror(finish)
      local okay, err = pcall(body, async and finish or nil)
      if not okay then
        finish(err == nil and "nil" or err)
      elseif not async then
        finish()
      end
    end

    queue[#queue + 1] = test
    if #queue == 1 then advance() end
  end

  function N.test(name, body) add(name, body, false) end

  function N.testasync(name, body) add(name, body, true) end

  -- testco: the body runs in a coroutine; getCB(name) makes a callback that resumes it with
  -- (name, ...), and waitCB() suspends the body until one of them is called.
  function N.testco(name, body)
    add(name, function(done)
      local owner = {}
      local co
      co_owner = owner
      local function settle(resumed, err)
        if not resumed then
          co_owner = nil
          done(err)
        elseif co_status(co) == "dead" then
          co_owner = nil
          done()
        end
      end
      local function getCB(cbname)
        return function(...)
          if co_owner ~= owner then
            emit(N.outputhandler, "fail", name,
              "Found stray Callback '" .. tostring(cbname) .. "' from test '" .. name .. "'")
            return
          end
          settle(co_resume(co, cbname, ...))
        end
      end
      local function waitCB() return co_yield() end
      co = co_create(function() body(getCB, waitCB) end)
      settle(co_resume(co))
    end, true)
  end

  -- The older interface: report(handler[, env]); nil leaves a setting as it is.
  function N.report(handler, env)
    N.outputhandler = handler or N.outputhandler
    N.env = env or N.env
  end

  return N
end
