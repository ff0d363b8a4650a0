-- The simulator's own Lua helpers. This chunk runs once per device before any script and returns
-- a table to Rust; scripts never see it. Everything is captured in locals at boot, so a script that
-- replaces pcall, error or debug.traceback cannot change how the simulator reports errors.
local error, select, xpcall, pcall, unpack = error, select, xpcall, pcall, unpack or table.unpack
local traceback = debug.traceback

local H = {}

-- Raises a binding's failure as a plain value: the Rust side already put the caller's position in it.
local function check(err, ...)
  if err then error(err, 0) end
  return ...
end

function H.wrap(native)
  return function(...) return check(native(...)) end
end

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

function H.pcallx(f, ...)
  local n, args = select('#', ...), { ... }
  return xpcall(function() return f(unpack(args, 1, n)) end, with_traceback)
end

-- lua_call as net callbacks use it: the raw error value is what PANIC prints.
H.pcall = pcall

-- The console's compiler check: is this chunk incomplete (so the prompt should continue)?
function H.incomplete(msg)
  return type(msg) == 'string' and (msg:find("<eof>", 1, true) ~= nil)
end

return H
