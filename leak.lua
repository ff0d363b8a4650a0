local n = 0
local function one()
  local sk = net.createConnection()
  sk:on("receive", function(s, d)
    n = n + 1
    sk:close()
    if n % 1000 == 0 then collectgarbage() collectgarbage() print("lua kb", n, collectgarbage("count")) end
    if n < 12000 then one() end
  end)
  sk:connect(17100, "127.0.0.1")
end
one()
