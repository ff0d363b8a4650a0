-- Benchmark program (nodemcu-sim): the device-style hello web server. One response per
-- connection: answer the first "receive", close from "sent". Run with --port-map 80=0.
local resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n" ..
  "Connection: close\r\n\r\nHello, world!\n"
local sv = net.createServer(net.TCP, 30)
sv:listen(80, function(c)
  c:on("receive", function(s) s:send(resp) end)
  c:on("sent", function(s) s:close() end)
end)
print("port", (sv:getaddr()))
