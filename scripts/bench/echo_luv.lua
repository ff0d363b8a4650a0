-- Benchmark program (luv): echo every chunk back. Prints the port it listens on.
local uv = require("luv")
local server = uv.new_tcp()
server:bind("127.0.0.1", 0)
server:listen(128, function()
  local c = uv.new_tcp()
  server:accept(c)
  c:read_start(function(err, data)
    if data then c:write(data) else c:close() end
  end)
end)
print("port", server:getsockname().port)
io.stdout:flush()
uv.run()
