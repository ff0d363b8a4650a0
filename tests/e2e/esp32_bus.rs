//! The ESP32 forms of `ow`, `ws2812` and `spi` (`--target esp32`) on the same board parts as the
//! ESP8266 forms: a DS18B20 found by search and read, strip frames, and the firmware's checks.

use crate::support::{Flash, Ran};

fn run32(script: &str, board: &str) -> Ran {
    let f = Flash::new(&[("init.lua", script), ("nodemcu-sim.toml", board)]);
    f.run(
        "init.lua",
        &["--virtual-time", "--target", "esp32", "--timeout", "20000"],
    )
}

/// Two DS18B20s on GPIO 4, their ROM CRCs right.
const TWO_SENSORS: &str = r#"
[[board.part]]
kind = "ds18b20"
pin = 4
name = "inside"
rom = "28:01:00:00:00:00:00:29"
temperature = 21.5

[[board.part]]
kind = "ds18b20"
pin = 4
name = "outside"
rom = "28:02:00:00:00:00:00:70"
temperature = -3.25
"#;

#[test]
fn esp32_ow_searches_the_ds18b20s_and_reads_a_conversion() {
    let r = run32(
        r#"
print(pcall(ow.reset, 4))
print(pcall(ow.search, 4))
ow.setup(4)
ow.reset_search(4)
repeat
  local rom = ow.search(4)
  if rom then print(("%02x"):rep(8):format(rom:byte(1, 8)), ow.crc8(rom:sub(1, 7)) == rom:byte(8)) end
until not rom
print(pcall(ow.search, 4))
ow.target_search(4, 0x10)
-- A family no device has: the search goes on to the next ROM above it, as the firmware's does.
print(("%02x"):rep(8):format(ow.search(4):byte(1, 8)))
local rom = string.char(0x28, 2, 0, 0, 0, 0, 0, 0x70)
print(ow.reset(4), ow.reset(5))
ow.select(4, rom)
ow.write(4, 0x44, 1)
local t0 = tmr.now()
repeat tmr.delay(10000) until ow.read(4) == 0xFF
print("converted", (tmr.now() - t0) >= 700000)
ow.reset(4)
ow.select(4, {0x28, 2, 0, 0, 0, 0, 0, 0x70})
ow.write(4, 0xBE)
local d = ow.read_bytes(4, 9)
print(ow.crc8(d:sub(1, 8)) == d:byte(9), (d:byte(1) + d:byte(2) * 256 - 65536) / 16)
print(ow.read_bytes(4, 0))
print(pcall(ow.setup, -1))
print(pcall(ow.write, 4, 256))
print(pcall(ow.read_bytes, 4, 257))
print(pcall(ow.target_search, 4, 300))
print(pcall(ow.reset, 20))
print(pcall(ow.skip, 20))
print(pcall(ow.select, 4, "short"))
print(pcall(ow.crc16, "ab", -1))
print(ow.set_timings, ow.crc16("123456789"))
"#,
        TWO_SENSORS,
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "false\tfailed\n\
         false\tsearch not initialized\n\
         2802000000000070\ttrue\n2801000000000029\ttrue\n\
         false\tsearch not initialized\n\
         2802000000000070\n\
         1\t0\n\
         converted\ttrue\n\
         true\t-3.25\n\
         \n\
         false\tbad argument #1 to '?' (invalid pin)\n\
         false\tbad argument #2 to '?' (invalid data)\n\
         false\tbad argument #2 to '?' (Attempt to read too many characters)\n\
         false\tbad argument #2 to '?' (wrong arg range)\n\
         false\tfailed\n\
         false\twrite failed\n\
         false\tbad argument #2 to '?' (wrong arg range)\n\
         false\tbad argument #2 to '?' (wrong arg range)\n\
         nil\t47933\n"
    );
}

/// A 3-LED strip on GPIO 18 and a 2-LED RGBW strip on GPIO 19.
const STRIPS: &str = r#"
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
"#;

#[test]
fn esp32_ws2812_writes_each_table_to_its_strip_in_one_go() {
    let r = run32(
        r#"
local sim = require("nodemcu-sim")
local b = ws2812.newBuffer(3, 3)
b:fill(0, 255, 0)
b:set(3, 10, 20, 30)
ws2812.write({pin = 18, data = b}, nil, {pin = 19, data = string.char(1, 2, 3, 4, 5, 6, 7, 8)})
-- The write takes the wire's time: here 9 bytes, 24 ones and 48 zeros: 24 x 1.4 us + 48 x 1.1 us
-- + the 51.2 us reset (the next frame's delta; the first write's is its longer strip's).
ws2812.write({pin = 18, data = string.char(255, 0, 0):rep(3)})
ws2812.write({pin = 18, data = string.char(0, 0, 255), t0h = 2, t1l = 9, reset = 0})
local fr = sim.frames("main")
for i, e in ipairs(fr) do print(i > 1 and e.t - fr[i - 1].t or 0, ("%02x"):rep(#e.data):format(e.data:byte(1, -1))) end
print(sim.led("main", 1)); print(sim.led("main", 3)); print(sim.led("second", 2))
print(ws2812.FADE_IN, ws2812.FADE_OUT, ws2812.SHIFT_LOGICAL, ws2812.SHIFT_CIRCULAR, ws2812.init)
print(pcall(ws2812.write, "ab"))
print(pcall(ws2812.write, {data = "x"}))
print(pcall(ws2812.write, nil, {pin = 18, data = "x", reset = "r"}))
print(pcall(ws2812.write, {pin = 18, data = "x", reset = 65535}))
print(pcall(ws2812.write, {pin = 18, data = "x", t0h = 0}))
print(pcall(ws2812.write, {pin = 18, data = "x", t1l = 32768}))
print(pcall(ws2812.write, {pin = 18, data = 5}))
print(pcall(ws2812.write, {pin = 34, data = "x"}))
local t = {}
for i = 1, 9 do t[i] = {pin = 18, data = "x"} end
print(pcall(ws2812.write, (unpack or table.unpack)(t)))
print(pcall(ws2812.newBuffer, 0, 3))
"#,
        STRIPS,
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "0\t00ff0000ff000a141e\n\
         137\tff0000ff0000ff0000\n\
         138\t0000ff\n\
         0\t0\t255\n\
         0\t255\t0\n\
         6\t5\t7\t8\n\
         1\t0\t0\t1\tnil\n\
         false\tbad argument #1 to '?' (table expected, got string)\n\
         false\tbad argument #1 to '?' (invalid pin)\n\
         false\tbad argument #2 to '?' (invalid reset)\n\
         false\tbad argument #1 to '?' (reset must be 0<=reset<=65534)\n\
         false\tbad argument #1 to '?' (t0h must be 1<=t0h<=32767)\n\
         false\tbad argument #1 to '?' (t1l must be 1<=t1l<=32767)\n\
         false\tbad argument #1 to '?' (ws2812.buffer or string expected)\n\
         false\tsending failed\n\
         false\tbad argument #9 to '?' (can't set up chain)\n\
         false\tbad argument #1 to '?' (should be a positive integer)\n"
    );
}

#[test]
fn esp32_spi_device_transfers_through_a_loopback_wire_and_is_traced() {
    let board = "[[board.part]]\nkind = \"wire\"\npins = [23, 19]\n";
    let script = r#"
print(spi.SPI, spi.HSPI, spi.VSPI, spi.SPI1, spi.SPI2, spi.SPI3)
local bus = spi.master(spi.HSPI, {sclk = 18, mosi = 23, miso = 19})
local dev = bus:device({cs = 5, mode = 0, freq = 1000000})
print(dev:transfer("\161\178"):byte(1, -1))
local t0 = tmr.now()
print(dev:transfer({cmd = 0, txdata = "\1\2\3\4\5\6", rxlen = 6}):byte(1, -1))
local us = tmr.now() - t0   -- 48 bits at 1 MHz
print(us >= 48 and us < 52)
local cmd = bus:device({cs = 4, mode = 3, freq = 8000000, command_bits = 8, address_bits = 16})
print(cmd:transfer({cmd = 0x9F, addr = 0x1234, txdata = "\255", rxlen = 1}):byte(1, -1))
local lsb = bus:device({cs = 2, mode = 0, freq = 1000000, tx_lsb_first = true})
print(lsb:transfer("\1"):byte())
print(#dev:transfer({txdata = "ab"}))
print(pcall(dev.transfer, dev, {txdata = "a", rxlen = 2}))
print(pcall(dev.transfer, dev, {txdata = "a", mode = "dio"}))
print(#dev:transfer(("x"):rep(4092)))
print(pcall(dev.transfer, dev, ("x"):rep(4093)))
print(pcall(dev.transfer, dev, {txdata = "a", mode = "oct"}))
print(pcall(dev.transfer, dev, 5))
print(pcall(bus.device, bus, {cs = 15, mode = 0, freq = 1000}))   -- a fourth device
print(pcall(bus.device, bus, {cs = 15, freq = 1000}))
print(pcall(bus.device, bus, {cs = 15, mode = 0, freq = 90000000}))
print(pcall(bus.device, bus, {cs = 15, mode = "0", freq = 1}))
print(pcall(spi.master, spi.HSPI, {sclk = 14}))
print(pcall(spi.master, spi.VSPI, {sclk = 14}))
print(pcall(spi.master, spi.SPI1, {}, 3))
lsb:remove()
print(pcall(lsb.transfer, lsb, "x"))
cmd:remove() dev:remove()
bus:close()
print(pcall(bus.device, bus, {mode = 0, freq = 1}))
local again = spi.master(spi.HSPI, {sclk = 18, mosi = 23, miso = 22})
-- MISO now on a pin nothing drives: the bits read are zeros.
local d = again:device({mode = 0, freq = 1000000, cs = 5})
print(d:transfer("\1"):byte())
"#;
    let f = Flash::new(&[("init.lua", script), ("nodemcu-sim.toml", board)]);
    let trace = f.file("trace.jsonl");
    let r = f.run(
        "init.lua",
        &[
            "--virtual-time",
            "--target",
            "esp32",
            "--trace",
            trace.to_str().unwrap(),
        ],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "0\t1\t2\t0\t1\t2\n\
         161\t178\n\
         1\t2\t3\t4\t5\t6\n\
         true\n\
         255\n\
         128\n\
         0\n\
         false\ttransfer failed\n\
         false\ttransfer failed\n\
         4092\n\
         false\ttransfer failed\n\
         false\tbad argument #-1 to '?' (invalid option 'oct')\n\
         false\tbad argument #2 to '?' (string or table expected)\n\
         false\tfailed to add device\n\
         false\tbad option mode to '?' (must be in range 0-3)\n\
         false\tbad option freq to '?' (must be in range 0-80000000)\n\
         false\tbad option mode to '?' (number expected, got string)\n\
         false\tbus init failed\n\
         false\tbad argument #1 to '?' (invalid host)\n\
         false\tbad argument #3 to '?' (out of range)\n\
         false\tbad argument #1 to '?' (no device)\n\
         false\tbad argument #1 to '?' (no active bus host)\n\
         0\n"
    );
    let lines: Vec<String> = std::fs::read_to_string(&trace)
        .expect("trace")
        .lines()
        .filter(|l| l.contains("\"spi\""))
        .map(|l| l.split_once(',').expect("t").1.to_string())
        .collect();
    assert_eq!(lines[0], r#""spi":5,"mosi":[161,178],"miso":[161,178]}"#);
    // Command 0x9F and address 0x1234 go out before the data byte.
    assert_eq!(
        lines[2],
        r#""spi":4,"mosi":[159,18,52,255],"miso":[159,18,52,255]}"#
    );
}
