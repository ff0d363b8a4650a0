-- Benchmark program (luv): the same hello web server. Prints the port it listens on.
local uv = require("luv")
local resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n" ..
  "Connection: close\r\n\r\nHello, world!\n"
local server = uv.new_tcp()
server:bind("127.0.0.1", 0)
server:listen(128, function()
  local c = uv.new_tcp()
  server:accept(c)
  c:read_start(function(err, data)
    if data then
      c:read_stop()
      c:write(resp, function() c:close() end)
    else
      c:close()
    end
  end)
end)
print("port", server:getsockname().port)
io.stdout:flush()
uv.run()
