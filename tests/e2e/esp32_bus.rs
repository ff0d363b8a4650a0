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
