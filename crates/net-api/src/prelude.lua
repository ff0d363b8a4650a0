-- The simulator's own Lua helpers. This chunk runs once per device before any script and returns
-- a table to Rust; scripts never see it. Everything is captured in locals at boot, so a script that
-- replaces pcall, error or debug.traceback cannot change how the simulator reports errors.
local error, select, xpcall, pcall, unpack = error, select, xpcall, pcall, unpack or table.unpack
local traceback = debug.traceback

local H = {}

-- luaL_pcallx: a protected call whose error becomes debug.traceback(err, 2), as the firmware's
-- handler makes it before posting it to node.setonerror's function.
-- Level 3, not the firmware's 2: mlua's xpcall runs this handler from a C function of its own.
-- The frames below the callback (the closure, xpcall, this file) are the simulator's, not the
-- script's, so they are cut off: the trace ends where the firmware's does.
local function with_traceback(e)
  local tb = traceback(e, 3)
  if type(tb) ~= 'string' then return tb end
  local cut = tb:find("\n\t[C]: in function 'xpcall'\n\t[sim]:", 1, true)
  if cut then
    tb = tb:sub(1, cut - 1):gsub("\n\t%(tail call%): %?$", ""):gsub("\n\t%(%.%.%.tail calls%.%.%.%)$", "")
  end
  return tb
end

-- Lua 5.1's xpcall passes no arguments, so they travel through upvalues read (and cleared) as the
-- call starts; a nested pcallx inside f cannot disturb them. Up to four arguments, which covers
-- every callback the firmware makes, this allocates nothing per call.
local cf, cn, c1, c2, c3, c4
local function call_saved()
  local f, n, a, b, c, d = cf, cn, c1, c2, c3, c4
  cf, c1, c2, c3, c4 = nil, nil, nil, nil, nil
  if n == 0 then return f()
  elseif n == 1 then return f(a)
  elseif n == 2 then return f(a, b)
  elseif n == 3 then return f(a, b, c)
  else return f(a, b, c, d) end
end

function H.pcallx(f, ...)
  local n = select('#', ...)
  if n <= 4 then
    cf, cn, c1, c2, c3, c4 = f, n, ...
    return xpcall(call_saved, with_traceback)
  end
  local args = { ... }
  return xpcall(function() return f(unpack(args, 1, n)) end, with_traceback)
end

-- The message handler of a callback the loop calls with lua_pcall: the firmware's traceback from the
-- function that raised the error (level 1 is this handler).
function H.traceback(e)
  local tb = traceback(e, 2)
  return tb
end

-- Raises its argument as it is: how an error outside a script's callback takes the same path.
function H.raise(m) error(m, 0) end

-- lua_call as net callbacks use it: the raw error value is what PANIC prints.
H.pcall = pcall

-- The console's compiler check: is this chunk incomplete (so the prompt should continue)?
function H.incomplete(msg)
  return type(msg) == 'string' and (msg:find("<eof>", 1, true) ~= nil)
end

return H
