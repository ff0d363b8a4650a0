//! The `i2c` module on the virtual board's bus: ACK/NACK from the chips in the board file, the
//! firmware's argument errors per generation, the `--trace` lines of transfers, and the firmware's
//! own hardware-rig tests (`fixtures/test-harness`, vendored) on `board = "test-harness"`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{BIN, Flash, Ran, run_cmd};

const MCP: &str = r#"
[[board.part]]
kind = "mcp23017"
address = 0x20

[[board.part]]
kind = "led"
pin = 108
"#;

#[test]
fn a_missing_address_is_nacked_and_a_present_chip_acks_every_byte() {
    let script = r#"
print(i2c.setup(0, 2, 1, i2c.SLOW), i2c.setup(1, 2, 1, 10))
i2c.start(0)
print(i2c.address(0, 0x21, i2c.TRANSMITTER), i2c.write(0, 1, 2))
i2c.stop(0)
i2c.start(0)
print(i2c.address(0, 0x21, i2c.RECEIVER), i2c.read(0, 2):byte(1, -1))
i2c.stop(0)
i2c.start(0)
print(i2c.address(0, 0x20, i2c.TRANSMITTER), i2c.write(0, 0x01, {0x00}, "\0\1"))
i2c.stop(0)
print(select('#', i2c.read(0, 0)))
-- GPB0 drives the LED once it is an output latched high.
i2c.start(0) i2c.address(0, 0x20, i2c.TRANSMITTER) i2c.write(0, 0x15, 0x01) i2c.stop(0)
print(require("nodemcu-sim").part("led"))
"#;
    let f = Flash::new(&[("init.lua", script), ("nodemcu-sim.toml", MCP)]);
    let trace = f.file("trace.jsonl");
    let r = f.run(
        "init.lua",
        &["--virtual-time", "--trace", trace.to_str().unwrap()],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "100000\t25000\nfalse\t0\nfalse\t255\t255\ntrue\t4\n0\non\n"
    );
    let lines: Vec<String> = std::fs::read_to_string(&trace)
        .expect("trace")
        .lines()
        .filter(|l| l.contains("\"i2c\""))
        .map(|l| l.split_once(',').expect("t").1.to_string())
        .collect();
    assert_eq!(
        lines,
        [
            // The first byte is clocked out, and nobody acknowledges it: write stops there.
            r#""i2c":33,"write":[1],"ack":[0,0],"bus":[2,1]}"#,
            r#""i2c":33,"read":[255,255],"ack":[0,1,0],"bus":[2,1]}"#,
            r#""i2c":32,"write":[1,0,0,1],"ack":[1,1,1,1,1],"bus":[2,1]}"#,
            r#""i2c":32,"write":[21,1],"ack":[1,1,1],"bus":[2,1]}"#,
        ]
    );
}

#[test]
fn bad_arguments_give_the_firmwares_errors_per_generation() {
    let script = r#"
local function try(f, ...) print((select(2, pcall(function(...) return f(...) end, ...)))) end
try(i2c.setup, 10, 2, 1, i2c.SLOW)
try(i2c.setup, 0, 13, 1, i2c.SLOW)
try(i2c.setup, 0, 0, 1, i2c.SLOW)
try(i2c.setup, 0, 2, 1, 0)
try(i2c.start, 1)
try(i2c.setup, "x", 2, 1, 1)
i2c.setup(0, 2, 1, i2c.FAST)
try(i2c.address, 0, 128, i2c.TRANSMITTER)
try(i2c.write, 0)
try(i2c.write, 0, 256)
try(i2c.write, 0, {1, "a"}) -- nobody acknowledges 1: write stops before "a"
print(i2c.FAST, i2c.FASTPLUS, i2c.SLOW, i2c.TRANSMITTER, i2c.RECEIVER)
"#;
    let f = Flash::new(&[("init.lua", script)]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "init.lua:2: i2c 10 does not exist\n\
         init.lua:2: gpio 13 does not exist\n\
         init.lua:2: i2c SDA on D0 is not supported\n\
         init.lua:2: wrong arg range\n\
         init.lua:2: i2c 1 is not configured\n\
         init.lua:2: bad argument #1 to 'f' (number expected, got string)\n\
         init.lua:2: wrong arg range\n\
         init.lua:2: wrong arg type\n\
         init.lua:2: wrong arg range\n\
         0\n\
         400000\t1000000\t100000\t0\t1\n"
    );
    let old = r#"
print(pcall(function() return i2c.setup(1, 2, 1, 1) end))
print(pcall(function() return i2c.setup(0, 0, 1, 1) end))
print(i2c.setup(0, 2, 1, 400000), i2c.FAST)
"#;
    let f = Flash::new(&[("init.lua", old)]);
    let r = f.run("init.lua", &["--virtual-time", "--firmware", "2.2"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "false\tinit.lua:2: i2c 1 does not exist\n\
         false\tinit.lua:3: no i2c for D0\n\
         100000\tnil\n"
    );
}

#[test]
fn a_bus_held_low_fails_setup() {
    let board = "[[board.part]]\nkind = \"switch\"\npin = 1\non = true\n";
    let f = Flash::new(&[
        (
            "init.lua",
            "print(pcall(function() return i2c.setup(0, 2, 1, i2c.SLOW) end))",
        ),
        ("nodemcu-sim.toml", board),
    ]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(r.stdout, "false\tinit.lua:1: failed to initialize i2c 0\n");
}

#[test]
fn the_test_module_reads_the_bus_log() {
    let script = r#"
local sim = require "nodemcu-sim"
i2c.setup(0, 2, 1, i2c.FAST)
i2c.start(0) i2c.address(0, 0x20, i2c.TRANSMITTER) i2c.write(0, 0x00) i2c.stop(0)
i2c.start(0) i2c.address(0, 0x20, i2c.RECEIVER) i2c.read(0, 2) i2c.stop(0)
for _, e in ipairs(sim.i2c()) do
  print(e.address, e.write and #e.write, e.read and #e.read, table.concat(e.ack, ","))
end
"#;
    let f = Flash::new(&[("init.lua", script), ("nodemcu-sim.toml", MCP)]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "32\t1\tnil\t1,1\n32\tnil\t2\t1,1,0\n");
}

#[test]
fn the_firmwares_gpio_and_adc_env_tests_pass_on_the_test_harness() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut cmd = Command::new(BIN);
    cmd.args(["test", "fixtures/test-harness"])
        .current_dir(root);
    let r: Ran = run_cmd(cmd, Duration::from_secs(120));
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("test result: ok. 2 files: 2 passed, 0 failed. 16 tests: 16 passed."),
        "{}",
        r.stdout
    );
}

#[test]
fn the_esp32_software_and_queued_hardware_interfaces_reach_the_same_chip() {
    let board = "[[board.part]]\nkind = \"bme280\"\nsda = 23\nscl = 22\naddress = 0x77\n";
    let script = r#"print(pcall(function() return i2c.start(i2c.HW1) end))
print(i2c.setup(i2c.SW, 23, 22, i2c.SLOW), i2c.setup(i2c.HW1, 23, 22, i2c.FAST), i2c.setup(i2c.HW0, 23, 22, i2c.FAST, 2))
i2c.start(i2c.SW)
print(i2c.address(i2c.SW, 0x76, i2c.TRANSMITTER), i2c.write(i2c.SW, 0xD0))
i2c.start(i2c.SW)
print(i2c.address(i2c.SW, 0x77, i2c.TRANSMITTER), i2c.write(i2c.SW, 0xD0))
i2c.start(i2c.SW)
print(i2c.address(i2c.SW, 0x77, i2c.RECEIVER), i2c.read(i2c.SW, 1):byte())
i2c.stop(i2c.SW)
local function id(addr, cb)
  i2c.start(i2c.HW1)
  i2c.address(i2c.HW1, addr, i2c.TRANSMITTER)
  i2c.write(i2c.HW1, 0xD0)
  i2c.start(i2c.HW1)
  i2c.address(i2c.HW1, addr, i2c.RECEIVER)
  i2c.read(i2c.HW1, 1)
  i2c.stop(i2c.HW1)
  return i2c.transfer(i2c.HW1, cb)
end
local d, ack = id(0x77) print(d:byte(), ack)
print(id(0x76))
print(id(0x77, function(d, ack) print("cb", d:byte(), ack) end))
print(pcall(function() i2c.read(i2c.HW1, 1) return i2c.read(i2c.HW1, 1) end))
print(pcall(function() return i2c.setup(i2c.SW, 23, 22, i2c.FAST) end))
print(pcall(function() return i2c.address(i2c.HW1, 128, 0) end))
print(pcall(function() return i2c.read(i2c.SW, 0) end))
print(pcall(function() return i2c.write(i2c.SW, 256) end))
print(pcall(function() return i2c.write(i2c.SW) end))
print("end")
"#;
    let f = Flash::new(&[("init.lua", script), ("nodemcu-sim.toml", board)]);
    let r = f.run("init.lua", &["--virtual-time", "--target", "esp32"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    // SW acts at once; HWx runs its queue at transfer: (data, true), or (nil, false) at the
    // first unacknowledged byte; with a callback, after the running code.
    assert_eq!(
        r.stdout,
        "false\tinit.lua:1: no commands scheduled\n100000\t32000\t64000\nfalse\t0\ntrue\t1\n\
         true\t96\n96\ttrue\nnil\tfalse\n\n\
         false\tinit.lua:23: only one read per transfer supported\n\
         false\tinit.lua:24: bad argument #4 to 'setup' (i2c speed too high for i2c.SW interface)\n\
         false\tinit.lua:25: bad argument #2 to 'address' (i2c address out of 7-bit range)\n\
         false\tinit.lua:26: bad argument #2 to 'read' (i2c read size of 0 is invalid)\n\
         false\tinit.lua:27: numeric value for i2c.write does not fit in 1 byte\n\
         false\tinit.lua:28: not enough or wrong arg types for i2c.write\nend\ncb\t96\ttrue\n"
    );
}

#[test]
fn the_rigs_second_device_has_its_strip_dht_and_two_ds18b20s() {
    // DUT 1 of the firmware's rig: three WS2812s on D4, a DHT on D6, two DS18B20s on D5.
    let script = r#"
local status, t, h = dht.read(6)
print(status, string.format("%d %d", t, h))
ow.setup(5)
ow.reset_search(5)
local n = 0
while ow.search(5) do n = n + 1 end
print("ds18b20s", n)
ws2812.init()
ws2812.write(string.char(1, 2, 3, 4, 5, 6, 7, 8, 9))
print(require("nodemcu-sim").led("ws2812", 3))
"#;
    let f = Flash::new(&[
        ("init.lua", script),
        ("nodemcu-sim.toml", "board = \"test-harness-dut1\"\n"),
    ]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "0\t20 50\nds18b20s\t2\n8\t7\t9\n");
}
