-- Benchmark program (nodemcu-sim, host profile): echo every chunk back, as the luv and Node.js
-- programs do. (On the esp8266 profile the benchmark runs fixtures/net/echo.lua instead, which
-- keeps within the board's send buffer.) Run with --port-map 7=0.
local sv = net.createServer(net.TCP, 30)
sv:listen(7, function(c)
  c:on("receive", function(s, d) s:send(d) end)
end)
print("echo server listening on port", (sv:getaddr()))
