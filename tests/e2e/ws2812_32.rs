//! The ESP32's own `ws2812.buffer` (`--target esp32`, dev-esp32 `ws2812.c`): its constants,
//! methods, arithmetic and error texts, which differ from the ESP8266's `pixbuf`, a buffer
//! reaching a strip through `ws2812.write`, and the examples of dev-esp32's `ws2812.md`.

use crate::support::{Flash, Ran};

fn run32(script: &str, board: &str, timeout: &str) -> Ran {
    let f = Flash::new(&[("init.lua", script), ("nodemcu-sim.toml", board)]);
    f.run(
        "init.lua",
        &["--virtual-time", "--target", "esp32", "--timeout", timeout],
    )
}

/// The expected output, one line each; a line starting with `#` is of numbers the firmware
/// pushes with `lua_pushnumber`, which a 5.3 build prints as floats (`3.0`).
fn lines(expected: &[&str]) -> String {
    let mut out = String::new();
    for l in expected {
        match l.strip_prefix('#') {
            Some(nums) if cfg!(feature = "lua53") => {
                let v: Vec<String> = nums.split('\t').map(|n| format!("{n}.0")).collect();
                out.push_str(&v.join("\t"));
            }
            Some(nums) => out.push_str(nums),
            None => out.push_str(l),
        }
        out.push('\n');
    }
    out
}

#[test]
fn esp32_ws2812_has_the_firmwares_constants_and_buffer_kind() {
    let r = run32(
        r##"
print(ws2812.FADE_IN, ws2812.FADE_OUT, ws2812.SHIFT_LOGICAL, ws2812.SHIFT_CIRCULAR)
local b = ws2812.newBuffer(2, 3)
print(b, type(b))
-- No pixbuf methods, no `==` by contents; the metatable is its own __index; no __len.
print(b.channels, b.map, b.fadeI, b.mix4I5, b.powerI, pixbuf)
print(b.__index == b.__index.__index, type(b.__concat), type(b.__tostring), b.__len)
print(b:sub(1) == b:sub(1), pcall(function() return #b end) == false)
-- Methods return nothing (pixbuf's return the buffer).
print(select("#", b:fill(1, 2, 3)), select("#", b:fade(2)), select("#", b:set(1, 0, 0, 0)),
      select("#", b:shift(1)), select("#", b:replace("")), select("#", b:mix(256, b)))
-- The colour count is a uint8_t in the firmware: 256 colours per LED are none.
local z = ws2812.newBuffer(2, 256)
print(z, z:size(), #z:dump())
print(pcall(ws2812.newBuffer, 0, 3))
print(pcall(ws2812.newBuffer, 3, -1))
print(pcall(ws2812.newBuffer, "x", 3))
print(pcall(ws2812.newBuffer, 3))
print(pcall(ws2812.newBuffer, 100000, 100))
-- A buffer's bytes are on the heap while it lives: a second 150 kB one does not fit.
collectgarbage() collectgarbage()
local h = node.heap()
local big = ws2812.newBuffer(15000, 10)
print(h - node.heap() > 140000, pcall(ws2812.newBuffer, 10000, 15))
big = nil collectgarbage() collectgarbage()
print(h - node.heap() < 1000, ws2812.newBuffer(10000, 15):size() == 10000)
"##,
        "",
        "2000",
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        lines(&[
            "1\t0\t0\t1",
            "[(0,0,0),(0,0,0)]\tuserdata",
            "nil\tnil\tnil\tnil\tnil\tnil",
            "true\tfunction\tfunction\tnil",
            "false\ttrue",
            "0\t0\t0\t0\t0\t0",
            "[(),()]\t#2\t0",
            "false\tbad argument #1 to '?' (should be a positive integer)",
            "false\tbad argument #2 to '?' (should be a positive integer)",
            "false\tbad argument #1 to '?' (number expected, got string)",
            "false\tbad argument #2 to '?' (number expected, got no value)",
            "false\tnot enough memory",
            "true\tfalse\tnot enough memory",
            "true\ttrue",
        ])
        .replace(
            "\t#2\t",
            if cfg!(feature = "lua53") {
                "\t2.0\t"
            } else {
                "\t2\t"
            }
        )
    );
}

#[test]
fn esp32_ws2812_buffer_fill_fade_shift_mix_and_power_do_the_firmwares_arithmetic() {
    let r = run32(
        r##"
local b = ws2812.newBuffer(4, 3)
b:fill(10, 100, 300, 99)    -- 300 is stored as 44; the extra value is ignored
print(b)
b:fade(2) print(b:get(1))
b:fade(3, ws2812.FADE_IN) print(b:get(2))   -- 66 * 3 = 198; 50 * 3 past 255 is 255
b:fade(2, 7) print(b:get(3))                -- any direction but FADE_OUT multiplies
b:fade(2, 0) print(b:get(4))                -- 0 is FADE_OUT
print(pcall(b.fade, b, 0))
print(pcall(b.fade, b, -1, "x"))
print(pcall(b.fill, b, 1, 2))
print(pcall(function() b:fill(1, 2) end))
local s = ws2812.newBuffer(5, 1)
for i = 1, 5 do s:set(i, i) end
s:shift(2) print(s)
s:shift(-1, ws2812.SHIFT_CIRCULAR) print(s)
s:shift(1, ws2812.SHIFT_CIRCULAR, 2, 4) print(s)
s:shift(-1, 5, -3) print(s)                 -- any mode but SHIFT_LOGICAL rotates
s:shift(-2, 0, 2) print(s)
print(pcall(s.shift, s, 5))
print(pcall(s.shift, s, -2, 0, 4, 5))
print(pcall(s.shift, s, 0, 0, 5, 4))
print(pcall(s.shift, s, 1, "c"))
local m1, m2, out = ws2812.newBuffer(2, 2), ws2812.newBuffer(2, 2), ws2812.newBuffer(2, 2)
m1:set(1, 255, 100) m1:set(2, 3, 0)
m2:set(1, 10, 200) m2:set(2, 255, 255)
out:mix(128, m1, 128, m2) print(out)        -- each product shifted down by 8, no rounding
out:mix(-256, m1, 512, m2) print(out)
out:mix(-1, m1, 256, m2) print(out)         -- -255 >> 8 is -1
out:mix() print(out)
out:mix(256, m1, 7) print(out)
print(pcall(out.mix, out, 256, ws2812.newBuffer(3, 2)))
print(pcall(out.mix, out, 256, ws2812.newBuffer(2, 1)))
print(pcall(out.mix, out, "x", m1))
print(pcall(out.mix, out, 1, "s"))
m2:mix(192, m2) print(m2)
print(m1:power(), ws2812.newBuffer(3, 3):power())
"##,
        "",
        "2000",
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        lines(&[
            "[(10,100,44),(10,100,44),(10,100,44),(10,100,44)]",
            "#5\t50\t22",
            "#15\t150\t66",
            "#30\t255\t132",
            "#15\t127\t66",
            "false\tbad argument #2 to '?' (fade value should be a strict positive number)",
            "false\tbad argument #3 to '?' (number expected, got string)",
            "false\tbad argument #4 to '?' (number expected, got no value)",
            "false\tinit.lua:12: bad argument #3 to 'fill' (number expected, got no value)",
            "[(0),(0),(1),(2),(3)]",
            "[(0),(1),(2),(3),(0)]",
            "[(0),(3),(1),(2),(0)]",
            "[(0),(3),(2),(0),(1)]",
            "[(0),(0),(1),(0),(0)]",
            "false\tbad argument #2 to '?' (shifting more elements than buffer size)",
            "false\tbad argument #2 to '?' (shifting more elements than buffer size)",
            "false\tbad argument #2 to '?' (shifting more elements than buffer size)",
            "false\tbad argument #3 to '?' (number expected, got string)",
            "[(132,150),(128,127)]",
            "[(0,255),(255,255)]",
            "[(9,199),(254,255)]",
            "[(0,0),(0,0)]",
            "[(255,100),(3,0)]",
            "false\tbad argument #3 to '?' (Buffer not same shape)",
            "false\tbad argument #3 to '?' (Buffer not same shape)",
            "false\tbad argument #2 to '?' (number expected, got string)",
            "false\tbad argument #3 to '?' (ws2812.buffer expected, got string)",
            "[(7,150),(191,191)]",
            "#358\t0",
        ])
    );
}

#[test]
fn esp32_ws2812_buffer_get_set_replace_sub_concat_and_dump_follow_the_firmware() {
    let r = run32(
        r##"
local g = ws2812.newBuffer(3, 3)
g:set(1, {1, "2", 3.9})       -- lua_tonumber, then a C cast
g:set(2, {7})                 -- missing entries are 0
g:set(3, "abc")
print(g)
g:set(2, "xyzw") print(g)     -- a string need not be whole LEDs
print(pcall(g.set, g, 3, "abcd"))
print(pcall(g.set, g, 4, 1, 2, 3))
print(pcall(g.set, g, 0, 1, 2, 3))
print(pcall(g.set, g, 1, 9, "x"))
print(g:get(1))               -- the colour before the bad one was set
g:set(1, 256 + 5, -1, 2, 99)  -- bytes of the integers; the extra value is ignored
print(g:get(1))
print(pcall(g.get, g, 4))
print(pcall(g.get, g))
print(select("#", g:get(1)))
print(g:size(), ws2812.newBuffer(7, 1):size())
local r = ws2812.newBuffer(4, 2)
r:replace(string.char(1, 2, 3, 4, 5)) print(r)   -- whole LEDs of the string
local src = ws2812.newBuffer(2, 2) src:fill(9, 8)
r:replace(src, -2) print(r)
print(pcall(r.replace, r, src, 4))
print(pcall(r.replace, r, ws2812.newBuffer(1, 3)))
print(pcall(r.replace, r, 12))
print(pcall(r.replace, r, "ab", "x"))
print(pcall(r.replace, r, "ab", -9))
print(pcall(r.replace, r, "", 5))
print(pcall(r.replace, r, "", 6))
local s2 = r:sub(2, 3) print(s2)
print(r:sub(-1), r:sub(3, 2), r:sub(-10, 1), r:sub(2, 99))
print(r:sub(3, 2):size())
print(pcall(r.sub, r))
print(s2 .. r:sub(1, 1))
print(pcall(s2.__concat, s2, ws2812.newBuffer(1, 3)))
print(pcall(s2.__concat, s2, "x"))
print(pcall(function() return "x" .. s2 end))
print(s2.__tostring(s2), tostring(ws2812.newBuffer(1, 1)))
print(r:dump() == string.char(1, 2, 3, 4, 9, 8, 9, 8), #r:dump())
print(pcall(r.dump, "x"))
"##,
        "",
        "2000",
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        lines(&[
            "[(1,2,3),(7,0,0),(97,98,99)]",
            "[(1,2,3),(120,121,122),(119,98,99)]",
            "false\tstring size will exceed strip length",
            "false\tbad argument #2 to '?' (index out of range)",
            "false\tbad argument #2 to '?' (index out of range)",
            "false\tbad argument #4 to '?' (number expected, got string)",
            "#9\t2\t3",
            "#5\t255\t2",
            "false\tbad argument #2 to '?' (index out of range)",
            "false\tbad argument #2 to '?' (number expected, got no value)",
            "3",
            "#3\t7",
            "[(1,2),(3,4),(0,0),(0,0)]",
            "[(1,2),(3,4),(9,8),(9,8)]",
            "false\tbad argument #2 to '?' (Does not fit into destination)",
            "false\tbad argument #2 to '?' (Buffers have different colors)",
            "false\tbad argument #2 to '?' (ws2812.buffer expected, got number)",
            "false\tbad argument #3 to '?' (number expected, got string)",
            "false\tbad argument #2 to '?' (Does not fit into destination)",
            "true",
            "false\tbad argument #2 to '?' (Does not fit into destination)",
            "[(3,4),(9,8)]",
            "[(9,8)]\t[]\t[(1,2)]\t[(3,4),(9,8),(9,8)]",
            "#0",
            "false\tbad argument #2 to '?' (number expected, got no value)",
            "[(3,4),(9,8),(1,2)]",
            "false\tbad argument #1 to '?' (Can only concatenate buffers with same colors)",
            "false\tbad argument #2 to '?' (ws2812.buffer expected, got string)",
            concat_error(),
            "[(3,4),(9,8)]\t[(0)]",
            "true\t8",
            "false\tbad argument #1 to '?' (ws2812.buffer expected, got string)",
        ])
    );
}

/// `"x" .. buffer`: the metamethod's first argument is the string. Lua 5.3 names a metamethod
/// by its event; 5.1 does not name it.
fn concat_error() -> &'static str {
    if cfg!(feature = "lua53") {
        "false\tinit.lua:37: bad argument #1 to '__concat' (ws2812.buffer expected, got string)"
    } else {
        "false\tinit.lua:37: bad argument #1 to '?' (ws2812.buffer expected, got string)"
    }
}

/// A 3-LED strip on GPIO 18 and a 2-LED RGBW strip on GPIO 19.
const STRIPS: &str = r##"
[[board.part]]
kind = "ws2812"
name = "main"
pin = 18
leds = 3

[[board.part]]
kind = "ws2812"
name = "second"
pin = 19
leds = 2
channels = 4
"##;

#[test]
fn esp32_ws2812_write_sends_a_buffers_bytes_to_its_strip() {
    let r = run32(
        r##"
local sim = require("nodemcu-sim")
local b = ws2812.newBuffer(3, 3)
b:fill(1, 2, 3)
b:set(2, 0, 255, 0)
local w = ws2812.newBuffer(2, 4)
w:set(2, {9, 8, 7, 6})
ws2812.write({pin = 18, data = b}, {pin = 19, data = w})
b:shift(1, ws2812.SHIFT_CIRCULAR)
ws2812.write({pin = 18, data = b:sub(1, 2) .. b:sub(3)})
for _, e in ipairs(sim.frames("main")) do print(("%02x"):rep(#e.data):format(e.data:byte(1, -1))) end
print(sim.led("main", 1)); print(sim.led("main", 2)); print(sim.led("second", 2))
print(pcall(ws2812.write, {pin = 18, data = tmr.create()}))
print(pcall(function() ws2812.write({pin = 18, data = tmr.create()}) end))
"##,
        STRIPS,
        "2000",
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "01020300ff00010203\n\
         01020301020300ff00\n\
         2\t1\t3\n\
         2\t1\t3\n\
         8\t9\t7\t6\n\
         false\tbad argument #-1 to '?' (ws2812.buffer expected, got userdata)\n\
         false\tinit.lua:14: bad argument #-1 to 'write' (ws2812.buffer expected, got userdata)\n"
    );
}

#[test]
fn esp32_ws2812_documentation_examples_run_as_on_the_firmware() {
    let board = r##"
[[board.part]]
kind = "ws2812"
name = "strip"
pin = 4
leds = 300
channels = 4
"##;
    let r = run32(
        r##"
local sim = require("nodemcu-sim")
-- ws2812.write: the second example has no `data` field.
ws2812.write({pin = 4, data = string.char(255, 0, 0, 255, 0, 0)})
print(pcall(ws2812.write, {pin = 4, string.char(0, 0, 0, 255, 0, 0, 0, 255)}))
ws2812.write({pin = 8, reset = 800, t0h = 3, t0l = 9, t1h = 6, t1l = 6, data = string.char(1, 0, 0)})
-- get
buffer = ws2812.newBuffer(32, 4)
print(buffer:get(1))
-- set
buffer = ws2812.newBuffer(32, 3)
buffer:set(1, 255, 0, 0)
print(buffer:get(1))
buffer = ws2812.newBuffer(32, 4)
buffer:set(1, {0, 0, 0, 255})
print(buffer:get(1))
buffer = ws2812.newBuffer(32, 3)
buffer:set(1, string.char(255, 0, 0))
print(buffer:get(1))
-- fill, dump
buffer:fill(0, 0, 0)
local s = buffer:dump()
print(#s, s == string.char(0):rep(96))
-- replace (the third line calls `sub` with the number as its buffer)
local anotherbuffer = ws2812.newBuffer(32, 3)
anotherbuffer:fill(1, 2, 3)
buffer:replace(anotherbuffer:dump())
print(buffer:get(32))
anotherbuffer:fill(4, 5, 6)
buffer:replace(anotherbuffer)
print(buffer:get(1))
print(pcall(function() newbuffer = buffer.sub(1) end))
-- mix
local buffer1, buffer2 = ws2812.newBuffer(32, 3), ws2812.newBuffer(32, 3)
buffer1:fill(200, 100, 0) buffer2:fill(0, 100, 200)
local crossmix = 64
buffer:mix(256 - crossmix, buffer1, crossmix, buffer2)
print(buffer:get(1))
buffer:mix(192, buffer)
print(buffer:get(1))
-- power
buffer = ws2812.newBuffer(100, 1)
buffer:fill(255)
local psu_current_ma = 1000
local led_current_ma = 20
local led_sum = psu_current_ma * 255 / led_current_ma

local p = buffer:power()
if p > led_sum then
  buffer:mix(256 * led_sum / p, buffer) -- power is now limited
end
print(p, buffer:power())
-- fade
buffer:fade(2)
print(buffer:get(1))
buffer:fade(2, ws2812.FADE_IN)
print(buffer:get(1))
-- shift
buffer = ws2812.newBuffer(5, 1)
buffer:set(1, 7)
buffer:shift(3)
print(buffer)
-- sub
buffer = ws2812.newBuffer(32, 3)
buffer:set(10, 1, 2, 3)
b = buffer:sub(1,10)
print(b:size(), b:get(10))
-- __concat
local buffer1, buffer2 = ws2812.newBuffer(1, 4), ws2812.newBuffer(1, 4)
buffer1:fill(1, 2, 3, 4) buffer2:fill(5, 6, 7, 8)
ws2812.write({pin = 4, data = buffer1 .. buffer2})
print(sim.led("strip", 1)); print(sim.led("strip", 2))
-- The led chaser, on the RGBW strip: two steps of it.
tmr.create():alarm(120, tmr.ALARM_SINGLE, function()
  local fr = sim.frames("strip")
  print(#fr, #fr[#fr].data)
  print(sim.led("strip", 2)); print(sim.led("strip", 3)); print(sim.led("strip", 4))
end)
local i, buffer = 0, ws2812.newBuffer(300, 4); buffer:fill(0, 0, 0, 0); tmr.create():alarm(50, 1, function()
  i = i + 1
  buffer:fade(2)
  buffer:set(i % buffer:size() + 1, 0, 0, 0, 255)
  ws2812.write({pin = 4, data = buffer})
end)
"##,
        board,
        "130",
    );
    // The chaser runs until the timeout stops the run.
    assert_eq!(r.status, 124, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        lines(&[
            "false\tbad argument #1 to '?' (ws2812.buffer or string expected)",
            "#0\t0\t0\t0",
            "#255\t0\t0",
            "#0\t0\t0\t255",
            "#255\t0\t0",
            "96\ttrue",
            "#1\t2\t3",
            "#4\t5\t6",
            "false\tinit.lua:32: bad argument #1 to 'sub' (ws2812.buffer expected, got number)",
            "#150\t100\t50",
            "#112\t75\t37",
            "#25500\t12700",
            "#63",
            "#126",
            "[(0),(0),(0),(7),(0)]",
            "#10\t1\t2\t3",
            "2\t1\t3\t4",
            "6\t5\t7\t8",
            "4\t1200",
            "0\t0\t0\t127",
            "0\t0\t0\t255",
            "0\t0\t0\t0",
        ])
    );
}
