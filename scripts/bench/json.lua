-- JSON decode/encode timing, for scripts/bench-sjson.sh: the same code under lua5.1 with
-- lua-cjson and under nodemcu-sim with sjson. Usage: <lua> json.lua RECORDS ITERATIONS
-- (nodemcu-sim has no arg: it reads bench-args.lua). Prints "<bytes> <decode us> <encode us>".
local records, iterations
if arg then
  records, iterations = tonumber(arg[1]), tonumber(arg[2])
else
  records, iterations = dofile("bench-args.lua")
end
local json = sjson or require("cjson")
local clock = (os and os.clock) or function() return tmr.now() / 1e6 end

-- A deterministic document: records of strings, integers, floats, booleans and nested tables.
local list = {}
for i = 1, records do
  list[i] = {
    id = i,
    name = "item-" .. i,
    value = i * 1.25,
    active = i % 2 == 0,
    tags = {"alpha", "beta", "gamma"},
    pos = {x = i % 97, y = -(i % 13), label = "p" .. (i % 7)},
  }
end
local text = json.encode({items = list, count = records})

local t0 = clock()
for _ = 1, iterations do json.decode(text) end
local t1 = clock()
local doc = json.decode(text)
local t2 = clock()
for _ = 1, iterations do json.encode(doc) end
local t3 = clock()
print(#text, math.floor((t1 - t0) / iterations * 1e6), math.floor((t3 - t2) / iterations * 1e6))
