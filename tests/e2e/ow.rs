//! `ow` on the virtual board's 1-Wire bus: the firmware's own DS18B20 driver reading the board
//! file's temperatures, the ROM search's order, conversion time in device time, the test
//! module's temperatures, and the firmware's error texts and answers with no device.

use crate::support::{Flash, Ran};

/// Two DS18B20s on D3 with fixed ROMs (their CRCs right), one with a scheduled change at 5 s.
const TWO_SENSORS: &str = r#"
[[board.part]]
kind = "ds18b20"
pin = 3
name = "inside"
rom = "28:01:00:00:00:00:00:29"
temperature = 21.5

[[board.part]]
kind = "ds18b20"
pin = 3
name = "outside"
rom = "28:02:00:00:00:00:00:70"
temperature = -3.25
temperatures = [ { at = 5000, value = 30.0625 } ]
"#;

fn run(script: &str, args: &[&str]) -> Ran {
    let driver = include_str!("../../fixtures/lua_modules/ds18b20.lua");
    let f = Flash::new(&[
        ("init.lua", script),
        ("ds18b20.lua", driver),
        ("nodemcu-sim.toml", TWO_SENSORS),
    ]);
    let mut all = vec!["--virtual-time", "--timeout", "20000"];
    all.extend_from_slice(args);
    f.run("init.lua", &all)
}

#[test]
fn the_firmware_ds18b20_driver_reads_the_board_file_temperatures() {
    let r = run(
        r#"
local t = require("ds18b20")
local function show(temps)
  local keys = {}
  for addr in pairs(temps) do keys[#keys + 1] = addr end
  table.sort(keys)
  for _, addr in ipairs(keys) do print(("%02x"):rep(8):format(addr:byte(1, 8)), temps[addr]) end
end
t:read_temp(function(temps)
  show(temps)
  tmr.create():alarm(5000, tmr.ALARM_SINGLE, function() t:read_temp(show, 3, t.C) end)
end, 3, t.C)
"#,
        &[],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "2801000000000029\t21.5\n2802000000000070\t-3.25\n\
         2801000000000029\t21.5\n2802000000000070\t30.0625\n"
    );
}

#[test]
fn search_enumerates_devices_in_rom_order_and_a_conversion_takes_750_ms() {
    let r = run(
        r#"
local sim = require("nodemcu-sim")
ow.setup(3)
ow.reset_search(3)
repeat
  local rom = ow.search(3)
  if rom then print(("%02x"):rep(8):format(rom:byte(1, 8)), ow.crc8(rom:sub(1, 7)) == rom:byte(8)) end
until not rom
print(sim.rom("outside") == string.char(0x28, 2, 0, 0, 0, 0, 0, 0x70))
local function scratch()
  ow.reset(3)
  ow.select(3, sim.rom("inside"))
  ow.write(3, 0xBE, 1)
  local d = ow.read_bytes(3, 9)
  return ("%02x"):rep(9):format(d:byte(1, 9))
end
print(ow.reset(3))
ow.skip(3)
ow.write(3, 0x44, 1)
local start = tmr.now()
print(ow.read(3))
-- Still converting: the power-on value, 85 °C.
print(scratch())
sim.temperature("inside", 25)
tmr.create():alarm(750, tmr.ALARM_SINGLE, function()
  print(tmr.now() - start >= 750000, scratch())
end)
"#,
        &[],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    // Bit 0 of byte 1 decides: 0x02 (a zero there) comes first. 25 °C is 0x0190.
    assert_eq!(
        r.stdout,
        "2802000000000070\ttrue\n2801000000000029\ttrue\ntrue\n1\n0\n\
         50054b467fff0c101c\ntrue\t90014b467fff101092\n"
    );
}

#[test]
fn bad_arguments_and_missing_devices_give_the_firmware_results() {
    let r = run(
        r#"
local function try(f, ...) print(select(2, pcall(f, ...))) end
try(ow.setup, 0)
try(ow.setup, 13)
try(ow.reset, -1)
try(ow.write, 3, 256)
try(ow.read_bytes, 3, 257)
try(ow.select, 3, "short")
try(ow.select, 3, {1, 2, 3})
try(ow.select, 3, {1, 2, 3, 4, 5, 6, 7, 300})
try(ow.target_search, 3, 256)
try(ow.crc16, "a", 65536)
try(ow.crc8, ("x"):rep(256))
try(ow.read)
-- Nothing on D4: no presence pulse, reads of all ones, no device found.
print(ow.reset(4), ow.read(4), ow.search(4), ow.read_bytes(3, 0))
print(ow.crc8("\2\28\184\1\0\0\0"), ow.crc16("123456789"), ow.check_crc16("123456789", 0xC2, 0x44),
  ow.check_crc16("123456789", 0, 0))
"#,
        &[],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "no 1-wire for D0\now 13 does not exist\now -1 does not exist\nwrong arg range\n\
         bad argument #2 to '?' (Attempt to read too many characters)\nwrong arg range\n\
         wrong arg range\nwrong arg range\nwrong arg range\nwrong arg range\nwrong arg range\n\
         bad argument #1 to '?' (number expected, got no value)\n\
         0\t255\tnil\n162\t47933\ttrue\tfalse\n"
    );
}

#[test]
fn the_trace_has_a_line_per_reset_per_calls_bytes_and_per_search() {
    let script = r#"
ow.setup(3)
print(ow.reset(4))
ow.reset(3) ow.skip(3) ow.write(3, 0x44, 1)
tmr.create():alarm(750, tmr.ALARM_SINGLE, function()
  ow.reset(3)
  ow.select(3, "\40\1\0\0\0\0\0\41")
  ow.write_bytes(3, "\190")
  local s = ow.read_bytes(3, 9)
  print(s:byte(1, 2))
  ow.reset_search(3)
  ow.target_search(3, 0x28)
  print(ow.search(3) ~= nil)
end)
"#;
    let driver = include_str!("../../fixtures/lua_modules/ds18b20.lua");
    let f = Flash::new(&[
        ("init.lua", script),
        ("ds18b20.lua", driver),
        ("nodemcu-sim.toml", TWO_SENSORS),
    ]);
    let trace = f.file("trace.jsonl");
    let r = f.run(
        "init.lua",
        &["--virtual-time", "--trace", trace.to_str().unwrap()],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "0\n88\t1\ntrue\n");
    let lines: Vec<String> = std::fs::read_to_string(&trace)
        .expect("trace")
        .lines()
        .filter(|l| l.contains("\"ow\""))
        .map(String::from)
        .collect();
    // A reset with nobody there; the conversion's skip and 0x44, each its own call; 750 ms on,
    // the select with its ROM, the read of the scratchpad (21.5 °C: 0x0158), and a search (its
    // reset, then what it found: the 0 branch first, so the ROM ending 02 before 01).
    assert_eq!(
        lines,
        [
            r#"{"t":0,"ow":4,"reset":true,"presence":false}"#,
            r#"{"t":960,"ow":3,"reset":true,"presence":true}"#,
            r#"{"t":1920,"ow":3,"write":[204]}"#,
            r#"{"t":2428,"ow":3,"write":[68]}"#,
            r#"{"t":752962,"ow":3,"reset":true,"presence":true}"#,
            r#"{"t":753922,"ow":3,"write":[85,40,1,0,0,0,0,0,41]}"#,
            r#"{"t":758832,"ow":3,"write":[190]}"#,
            r#"{"t":759314,"ow":3,"read":[88,1,75,70,127,255,8,16,249]}"#,
            r#"{"t":763994,"ow":3,"reset":true,"presence":true}"#,
            r#"{"t":763994,"ow":3,"search":"2802000000000070"}"#,
        ]
    );
}

#[test]
fn the_esp32_ow_traces_the_same_lines() {
    // The same conversion, read and search under --target esp32: one line per reset, per call's
    // bytes and per search, as on the ESP8266 (device times left out: the drivers differ).
    let script = r#"
ow.setup(3)
ow.reset(3) ow.skip(3) ow.write(3, 0x44, 1)
tmr.create():alarm(750, tmr.ALARM_SINGLE, function()
  ow.reset(3)
  ow.select(3, "\40\1\0\0\0\0\0\41")
  ow.write_bytes(3, "\190")
  print(ow.read_bytes(3, 9):byte(1, 2))
  ow.reset_search(3)
  print(ow.search(3) ~= nil)
end)
"#;
    let f = Flash::new(&[("init.lua", script), ("nodemcu-sim.toml", TWO_SENSORS)]);
    let trace = f.file("trace.jsonl");
    let r = f.run(
        "init.lua",
        &[
            "--target",
            "esp32",
            "--virtual-time",
            "--trace",
            trace.to_str().unwrap(),
        ],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "88\t1\ntrue\n");
    let lines: Vec<String> = std::fs::read_to_string(&trace)
        .expect("trace")
        .lines()
        .filter(|l| l.contains("\"ow\""))
        .map(|l| l.split_once(',').map_or(l, |(_, rest)| rest).to_string())
        .collect();
    assert_eq!(
        lines,
        [
            r#""ow":3,"reset":true,"presence":true}"#,
            r#""ow":3,"write":[204]}"#,
            r#""ow":3,"write":[68]}"#,
            r#""ow":3,"reset":true,"presence":true}"#,
            r#""ow":3,"write":[85,40,1,0,0,0,0,0,41]}"#,
            r#""ow":3,"write":[190]}"#,
            r#""ow":3,"read":[88,1,75,70,127,255,8,16,249]}"#,
            r#""ow":3,"reset":true,"presence":true}"#,
            r#""ow":3,"search":"2802000000000070"}"#,
        ]
    );
}
