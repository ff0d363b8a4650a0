-- JSON decode/encode work for scripts/bench-sjson.sh: the same code under lua5.1 with lua-cjson
-- and under nodemcu-sim with sjson. Usage: <lua> json.lua RECORDS ITERATIONS MODE (MODE is
-- "decode" or "encode"; nodemcu-sim has no arg: it reads bench-args.lua). Prints the document's
-- size. It times nothing itself: the script runs it with ITERATIONS and with 0 and takes the
-- difference of the whole process's CPU time, so both sides are measured the same way.
local records, iterations, mode
if arg then
  records, iterations, mode = tonumber(arg[1]), tonumber(arg[2]), arg[3]
else
  records, iterations, mode = dofile("bench-args.lua")
end
local json = sjson or require("cjson")

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
local doc = json.decode(text)

if mode == "decode" then
  for _ = 1, iterations do json.decode(text) end
else
  for _ = 1, iterations do json.encode(doc) end
end
print(#text)
