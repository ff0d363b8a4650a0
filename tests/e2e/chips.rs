//! Chips on the I2C bus read through scripts: a BME280's raw words that the datasheet's
//! compensation (done in Lua here, as drivers do) turns back into the board file's readings, a
//! reading changed by the test module, the firmware's own `lua_modules/bh1750` driver (vendored
//! in `fixtures/drivers`) reading the lux the board gives, a DS3231 that runs with device
//! time, and the firmware's `bme280` C module reading the same part over the bus.

use std::path::Path;

use crate::support::Flash;

/// The datasheet's double-precision compensation (BST-BME280-DS002 section 8.1), as a Lua
/// driver does it.
const BME280_LUA: &str = r#"
local sim = require "nodemcu-sim"
local function rd(reg, n)
  i2c.start(0) i2c.address(0, 0x76, i2c.TRANSMITTER) i2c.write(0, reg) i2c.stop(0)
  i2c.start(0) i2c.address(0, 0x76, i2c.RECEIVER)
  local s = i2c.read(0, n) i2c.stop(0)
  return s
end
local function wr(reg, v)
  i2c.start(0) i2c.address(0, 0x76, i2c.TRANSMITTER) i2c.write(0, reg, v) i2c.stop(0)
end
local function u16(s, i) return s:byte(i) + s:byte(i + 1) * 256 end
local function s16(s, i) local v = u16(s, i) if v > 32767 then v = v - 65536 end return v end
i2c.setup(0, 2, 1, i2c.FAST)
print(string.format("id 0x%02x", rd(0xD0, 1):byte(1)))
local c = rd(0x88, 24)
local T1, T2, T3 = u16(c, 1), s16(c, 3), s16(c, 5)
local P = { u16(c, 7) }
for i = 2, 9 do P[i] = s16(c, 7 + (i - 1) * 2) end
local H1 = rd(0xA1, 1):byte(1)
local h = rd(0xE1, 7)
local H2, H3 = s16(h, 1), h:byte(3)
local H4 = h:byte(4) * 16 + h:byte(5) % 16
local H5 = h:byte(6) * 16 + math.floor(h:byte(5) / 16)
local H6 = h:byte(7) if H6 > 127 then H6 = H6 - 256 end
local function measure()
  wr(0xF2, 1) wr(0xF4, 0x25)
  tmr.delay(10000)
  local d = rd(0xF7, 8)
  local adc_P = d:byte(1) * 4096 + d:byte(2) * 16 + math.floor(d:byte(3) / 16)
  local adc_T = d:byte(4) * 4096 + d:byte(5) * 16 + math.floor(d:byte(6) / 16)
  local adc_H = d:byte(7) * 256 + d:byte(8)
  local v1 = (adc_T / 16384 - T1 / 1024) * T2
  local v2 = (adc_T / 131072 - T1 / 8192) ^ 2 * T3
  local fine = v1 + v2
  local t = fine / 5120
  v1 = fine / 2 - 64000
  v2 = v1 * v1 * P[6] / 32768 + v1 * P[5] * 2
  v2 = v2 / 4 + P[4] * 65536
  v1 = (P[3] * v1 * v1 / 524288 + P[2] * v1) / 524288
  v1 = (1 + v1 / 32768) * P[1]
  local p = 1048576 - adc_P
  p = (p - v2 / 4096) * 6250 / v1
  p = p + (P[9] * p * p / 2147483648 + p * P[8] / 32768 + P[7]) / 16
  local x = fine - 76800
  x = (adc_H - (H4 * 64 + H5 / 16384 * x)) * (H2 / 65536 * (1 + H6 / 67108864 * x * (1 + H3 / 67108864 * x)))
  x = x * (1 - H1 * x / 524288)
  print(string.format("%.2f C %.2f hPa %.1f %%", t, p / 100, x))
end
measure()
sim.reading("bme280", "temperature", -12.5)
sim.reading("bme280", "pressure", 870)
measure()
print(pcall(sim.reading, "bme280", "lux", 1))
"#;

#[test]
fn a_bme280_gives_back_the_board_files_readings_through_the_datasheet_math() {
    let board = "[[board.part]]\nkind = \"bme280\"\ntemperature = 23.45\nhumidity = 41.5\npressure = 1002.3\n";
    let f = Flash::new(&[("init.lua", BME280_LUA), ("nodemcu-sim.toml", board)]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "id 0x60\n23.45 C 1002.30 hPa 41.5 %\n-12.50 C 870.00 hPa 41.5 %\n\
         false\tthis part has no reading \"lux\" (it has temperature, humidity, pressure)\n"
    );
}

#[test]
fn the_firmwares_bh1750_driver_reads_the_scheduled_lux() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let driver = std::fs::read_to_string(root.join("fixtures/drivers/bh1750.lua")).expect("driver");
    let board = "[[board.part]]\nkind = \"bh1750\"\nlux = 250\nreadings = [ { at = 1000, lux = 1234.5 } ]\n";
    let script = r#"
local bh1750 = require "bh1750"
bh1750.init(2, 1)
bh1750.read()
print(string.format("%.3f", bh1750.getlux()))
tmr.create():alarm(1000, tmr.ALARM_SINGLE, function()
  bh1750.read()
  print(string.format("%.3f", bh1750.getlux()))
end)
"#;
    let f = Flash::new(&[
        ("init.lua", script),
        ("bh1750.lua", &driver),
        ("nodemcu-sim.toml", board),
    ]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    // 250 lx is 300 counts: the driver's 300*1000/12 (lux × 100); 1234.5 lx is 1481 counts.
    // (Printed with a format: 5.3 prints the driver's float division as 25000.0.)
    assert_eq!(r.stdout, "25000.000\n123416.667\n");
}

#[test]
fn a_ds3231_runs_from_its_start_time_and_can_be_set() {
    let board = "[[board.part]]\nkind = \"ds3231\"\nstart = \"2026-12-31 23:59:58\"\n";
    let script = r#"
i2c.setup(0, 2, 1, i2c.SLOW)
local function now()
  i2c.start(0) i2c.address(0, 0x68, i2c.TRANSMITTER) i2c.write(0, 0) i2c.stop(0)
  i2c.start(0) i2c.address(0, 0x68, i2c.RECEIVER)
  local s = i2c.read(0, 7) i2c.stop(0)
  local out = {}
  for i = 1, 7 do out[i] = string.format("%02x", s:byte(i)) end
  return table.concat(out, " ")
end
print(now())
tmr.create():alarm(3000, tmr.ALARM_SINGLE, function()
  print(now())
  i2c.start(0) i2c.address(0, 0x68, i2c.TRANSMITTER)
  i2c.write(0, 0, 0x30, 0x15, 0x12, 0x02, 0x29, 0x02, 0x28) i2c.stop(0)
  print(now())
end)
"#;
    let f = Flash::new(&[("init.lua", script), ("nodemcu-sim.toml", board)]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "58 59 23 05 31 12 26\n01 00 00 06 01 01 27\n30 15 12 02 29 02 28\n"
    );
}

#[test]
fn the_firmwares_ds3231_driver_reads_and_sets_the_clock() {
    // The driver starts with `require("bit")` and `require("i2c")`: built-in modules, which the
    // firmware's `require` answers before it looks on the flash.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let driver = std::fs::read_to_string(root.join("fixtures/drivers/ds3231.lua")).expect("driver");
    let board = "[[board.part]]\nkind = \"ds3231\"\nstart = \"2026-12-31 23:59:58\"\n";
    let script = r#"
i2c.setup(0, 2, 1, i2c.SLOW)
local ds3231 = require("ds3231")
local function show(...)
  local t = {}
  for i, v in ipairs({...}) do t[i] = string.format("%d", v) end
  print(table.concat(t, " "))
end
show(ds3231.getTime())
tmr.create():alarm(3000, tmr.ALARM_SINGLE, function()
  show(ds3231.getTime())
  ds3231.setTime(30, 15, 12, 2, 29, 2, 28)
  show(ds3231.getTime())
end)
"#;
    let f = Flash::new(&[
        ("init.lua", script),
        ("ds3231.lua", &driver),
        ("nodemcu-sim.toml", board),
    ]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    // second minute hour day date month year
    assert_eq!(
        r.stdout,
        "58 59 23 5 31 12 26\n1 0 0 6 1 1 27\n30 15 12 2 29 2 28\n"
    );
}

#[test]
fn require_answers_with_a_built_in_module_unless_the_flash_has_one_of_the_name() {
    // 5.1's require also takes any global table of the name, 5.3's only the modules the
    // firmware was built with. A flash file wins (a board built without that C module).
    let script = r#"
print(require("bit") == bit, require("i2c") == i2c, require("string") == string)
print(require("bme280"))
cfg = { x = 1 }
print(pcall(require, "cfg"))
"#;
    let f = Flash::new(&[
        ("init.lua", script),
        ("bme280.lua", "return 'the flash file'"),
    ]);
    let r = f.run("init.lua", &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let cfg = if cfg!(feature = "lua53") {
        "false\tmodule 'cfg' not found:"
    } else {
        "true\ttable: "
    };
    let want = format!("true\ttrue\ttrue\nthe flash file\n{cfg}");
    assert!(r.stdout.starts_with(&want), "{}", r.stdout);
}

#[test]
fn the_bme280_c_module_reads_the_part_over_the_bus() {
    let board = "[[board.part]]\nkind = \"bme280\"\naddress = 0x77\ntemperature = 23.45\nhumidity = 41.5\npressure = 1002.3\n";
    let script = r#"
print(bme280.setup())
i2c.setup(0, 2, 1, i2c.SLOW)
print(bme280.setup())
print(bme280.read())
tmr.create():alarm(200, tmr.ALARM_SINGLE, function()
  local T, P, H, QNH = bme280.read(300)
  print(T, P, H, QNH)
  print(bme280.temp())
  print(bme280.baro())
  print(bme280.humi())
  print(bme280.dewpoint(H, T), bme280.altitude(P, QNH), bme280.qfe2qnh(P, 300))
  print(pcall(function() return bme280.altitude(1) end))
  require("nodemcu-sim").reading("bme280", "temperature", 30)
  bme280.startreadout(0, function() print(bme280.temp()) end)
end)
"#;
    let f = Flash::new(&[("init.lua", script), ("nodemcu-sim.toml", board)]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let note = "Warning, deprecated API! bme280. It will be removed soon. Use bme280math and \
                bme280 Lua module instead. See documentation for details.\n";
    // No chip answers on an unconfigured bus; in normal mode the first measurement is not done
    // at once; H is the compensation's %RH/1024 step in the module's per-mille.
    assert_eq!(
        r.stdout,
        format!(
            "{note}\n{note}2\n\n2345\t1002300\t41504\t1038717\n2345\t120040\n1002300\t2345\n\
             41504\t2345\n964\t30000\t1038717\nfalse\tinit.lua:13: wrong arg range\n3000\t153586\n"
        )
    );
}

/// 1.5.4.1's `bme280`: `init(sda, scl, ...)` sets up bus 0 itself and writes the registers (the
/// config register with its one-bit-low standby and filter fields), no `setup` or `read`.
#[test]
fn the_bme280_c_module_under_1_5_is_init_with_its_own_pins() {
    let board = "[[board.part]]\nkind = \"bme280\"\naddress = 0x77\ntemperature = 23.45\nhumidity = 41.5\npressure = 1002.3\n";
    let script = r#"
print(type(bme280.init), type(bme280.setup), type(bme280.read), type(bme280.startreadout))
print(pcall(bme280.init))
print(pcall(bme280.init, 2, "x"))
print(bme280.init(5, 6))
print(bme280.init(2, 1))
local function reg(r)
  i2c.start(0) i2c.address(0, 0x77, i2c.TRANSMITTER) i2c.write(0, r) i2c.stop(0)
  i2c.start(0) i2c.address(0, 0x77, i2c.RECEIVER) local v = i2c.read(0, 1) i2c.stop(0)
  return string.format("%02x", v:byte())
end
print(reg(0xf5), reg(0xf4), reg(0xf2))
tmr.alarm(0, 300, 0, function()
  print(bme280.temp())
  print(bme280.baro())
  print(bme280.humi())
  print(bme280.init(2, 1, 1, 2, 3, 1, 0, 0), reg(0xf5), reg(0xf4), reg(0xf2))
  require("nodemcu-sim").reading("bme280", "temperature", 30)
  bme280.startreadout(0, function() print("ready", bme280.temp()) end)
end)
"#;
    let f = Flash::new(&[("init.lua", script), ("nodemcu-sim.toml", board)]);
    let r = f.run("init.lua", &["--virtual-time", "--firmware", "1.5"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    // No chip on GPIO 5/6; 0x78 is t_sb 7 << 4 | filter 4 << 1, 0xB7 16x/16x normal mode.
    assert_eq!(
        r.stdout,
        "function\tnil\tnil\tfunction\nfalse\twrong arg range\nfalse\twrong arg range\n\n2\n\
         78\tb7\t05\n2345\t120040\n1002300\t2345\n41504\t2345\n2\t00\t29\t03\n\
         ready\t3000\t153586\n"
    );
    // 2.2.1: `setup` and `read`, no `init`, and no deprecation note (3.0 added it).
    let script = r#"
print(type(bme280.init), type(bme280.setup), type(bme280.read))
i2c.setup(0, 2, 1, i2c.SLOW)
print(bme280.setup())
tmr.alarm(0, 200, 0, function() print(bme280.read()) end)
"#;
    let f = Flash::new(&[("init.lua", script), ("nodemcu-sim.toml", board)]);
    let r = f.run("init.lua", &["--virtual-time", "--firmware", "2.2"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "nil\tfunction\tfunction\n2\n2345\t1002300\t41504\n"
    );
    let r = f.run("init.lua", &["--virtual-time", "--firmware", "3.0"]);
    assert!(
        r.stdout
            .starts_with("nil\tfunction\tfunction\nWarning, deprecated API! bme280."),
        "{}",
        r.stdout
    );
}

#[test]
fn the_tcs34725_c_module_reads_the_colour_the_part_sees() {
    let board = "[[board.part]]\nkind = \"tcs34725\"\nred = 200\ngreen = 100\nblue = 10\n";
    let script = r#"
print(pcall(function() return tcs34725.raw() end))
i2c.setup(0, 2, 1, i2c.FAST)
print(tcs34725.setup())
tcs34725.enable(function()
  print("enabled")
  tmr.create():alarm(5, tmr.ALARM_SINGLE, function()
    print(tcs34725.raw())
    tcs34725.setGain(0)
    tcs34725.setIntegrationTime(0xF6)
    tmr.create():alarm(30, tmr.ALARM_SINGLE, function()
      print(tcs34725.raw())
      require("nodemcu-sim").reading("tcs34725", "red", 0)
      tmr.create():alarm(30, tmr.ALARM_SINGLE, function()
        print(tcs34725.raw())
        tcs34725.disable()
        print(pcall(function() return tcs34725.raw() end))
      end)
    end)
  end)
end)
"#;
    let f = Flash::new(&[("init.lua", script), ("nodemcu-sim.toml", board)]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    // 60× gain for one 2.4 ms cycle saturates at 1024 counts; 1× for 10 cycles counts
    // value × 10 / 4 (clear: the sum).
    assert_eq!(
        r.stdout,
        "false\tinit.lua:2: TCS34725 not initialised.\n1\nenabled\n1024\t1024\t1024\t150\n\
         775\t500\t250\t25\n275\t0\t250\t25\nfalse\tinit.lua:17: TCS34725 not initialised.\n"
    );
    let f = Flash::new(&[(
        "init.lua",
        "i2c.setup(0, 2, 1, i2c.SLOW) print(pcall(function() return tcs34725.setup() end))",
    )]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(r.stdout, "false\tinit.lua:1: No TCS34725 found.\n");
    // 1.5 has no tcs34725 module (5.1 and 5.3 word the error differently).
    let r = f.run("init.lua", &["--virtual-time", "--firmware", "1.5"]);
    assert!(
        r.stdout.contains("global 'tcs34725'") && r.stdout.contains("nil value"),
        "{}",
        r.stdout
    );
}

#[test]
fn the_firmwares_mcp23017_driver_drives_and_reads_expander_pins() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let driver =
        std::fs::read_to_string(root.join("fixtures/drivers/mcp23017.lua")).expect("driver");
    // GPA0 (pin 100) lights an LED; GPB3 (pin 111) is pulled high through a resistor from D3
    // until a button pulls it to ground at 1 s (the other port B inputs float: they read 0).
    let board = r#"
[[board.part]]
kind = "mcp23017"
address = 0x21

[[board.part]]
kind = "led"
pin = 100

[[board.part]]
kind = "button"
pin = 111
presses = [ { at = 1000, for = 500 } ]

[[board.part]]
kind = "resistor"
pins = [111, 3]
"#;
    let script = r#"
local sim = require "nodemcu-sim"
i2c.setup(0, 2, 1, i2c.FAST)
print(pcall(require("mcp23017"), 0x20, 0))
local mcp = require("mcp23017")(0x21, 0)
gpio.mode(3, gpio.OUTPUT)
gpio.write(3, 1)
mcp:setMode(mcp.GPA, 0, mcp.OUTPUT)
mcp:setPin(mcp.GPA, 0, mcp.HIGH)
print(sim.part("led"), mcp:getPinState(mcp.GPB, 3))
tmr.create():alarm(1200, tmr.ALARM_SINGLE, function()
  print(mcp:getPinState(mcp.GPB, 3), string.format("%02x", mcp:readGPIO(mcp.GPB)))
  mcp:setPin(mcp.GPA, 0, mcp.LOW)
  print(sim.part("led"), sim.level(100), sim.mode(100), sim.level(111))
end)
"#;
    let f = Flash::new(&[
        ("init.lua", script),
        ("mcp23017.lua", &driver),
        ("nodemcu-sim.toml", board),
    ]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "false\tmcp23017.lua:148: MCP23017 device on 0x20 not found\non\ttrue\nfalse\t00\n\
         off\t0\toutput\t0\n"
    );
}

#[test]
fn the_firmwares_bme280_lua_driver_reads_the_part_through_bme280_math() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let driver = std::fs::read_to_string(root.join("fixtures/drivers/bme280.lua")).expect("driver");
    let board = "[[board.part]]\nkind = \"bme280\"\ntemperature = 23.45\nhumidity = 41.5\npressure = 1002.3\n";
    let script = r#"
i2c.setup(0, 2, 1, i2c.SLOW)
local s = require("bme280").setup(0)
tmr.create():alarm(200, tmr.ALARM_SINGLE, function()
  local T, P, H, QNH = s:read(300)
  print(T, P, H, string.format("%.3f", QNH))
  print(string.format("%.2f %.2f", s:dewpoint(H, T), s:altitude(P, QNH)))
  require("nodemcu-sim").reading("bme280", "humidity", 80)
  s:startreadout(function(T, P, H) print(T, P, H) end)
end)
"#;
    let f = Flash::new(&[
        ("init.lua", script),
        ("bme280.lua", &driver),
        ("nodemcu-sim.toml", board),
    ]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "23.45\t1002.3\t41.504\t1038.717\n9.64 300.00\n23.45\t1002.3\t80.004\n"
    );
}

#[test]
fn a_tcs34725_over_a_strip_led_reads_the_colour_the_strip_shows() {
    // The sensor sits over the second LED of the strip; the script lights it and reads it.
    let board = "[[board.part]]\nkind = \"ws2812\"\nname = \"strip\"\npin = 4\nleds = 3\n\
                 [[board.part]]\nkind = \"tcs34725\"\nover = \"strip:1\"\n";
    let script = r#"
ws2812.init()
i2c.setup(0, 2, 1, i2c.FAST)
tcs34725.setup()
tcs34725.enable(function()
  tcs34725.setGain(0)
  tcs34725.setIntegrationTime(0xF6)
  ws2812.write(string.char(0, 0, 0, 0, 200, 0, 0, 0, 0)) -- GRB: the second LED red
  tmr.create():alarm(30, tmr.ALARM_SINGLE, function()
    print(tcs34725.raw())
    ws2812.write(string.char(0, 0, 0, 100, 0, 20, 0, 0, 0))
    tmr.create():alarm(30, tmr.ALARM_SINGLE, function() print(tcs34725.raw()) end)
  end)
end)
"#;
    let f = Flash::new(&[("init.lua", script), ("nodemcu-sim.toml", board)]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    // 1× gain for 10 cycles counts value × 10 / 4; clear is the sum of the three.
    assert_eq!(r.stdout, "500\t500\t0\t0\n300\t0\t250\t50\n");
}
