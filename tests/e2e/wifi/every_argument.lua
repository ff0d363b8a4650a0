-- Calls every wifi function with every kind of argument: the simulator must only ever raise Lua errors.
local vals = {nil, true, false, 0, -1, 1, 3, 99, 1e10, 0/0, "", "x", "aa:bb:cc:dd:ee:ff", "192.168.1.1", ("x"):rep(70), {}, {ssid = "a", pwd = "password1", bssid = "zz:zz:zz:zz:zz:zz", ip = "1.2.3.4", netmask = "x", gateway = "y", start = "10.0.0.1", channel = 0, max = 1, auth = 9, country = "xx", start_ch = 20, policy = 1, scan_method = "bad", hidden = 2}, print}
local n = 0
local function walk(t, name, depth)
  for k, v in pairs(t) do
    if type(v) == "function" and k ~= "restart" then
      for i = 1, #vals + 1 do
        for j = 1, #vals + 1, 3 do
          pcall(v, vals[i], vals[j], vals[(i + j) % #vals + 1])
          n = n + 1
        end
      end
    elseif type(v) == "table" and depth < 2 then
      walk(v, name .. "." .. tostring(k), depth + 1)
    end
  end
end
walk(wifi, "wifi", 0)
print("calls", n)
tmr.create():alarm(3000, tmr.ALARM_SINGLE, function() print("still alive") end)
