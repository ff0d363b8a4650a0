//! The dev kits' own resistors and buttons (decisions.md §7): `board = "nodemcu-devkit"` and
//! `"esp32-devkitc"`, a `resistor` to a rail as a pull-up or pull-down part, `[board] ready`
//! with `[[board.press]]`, and the errors a bad rail name gives.

use crate::support::{Flash, run_lua};

const READ_D3: &str = "gpio.mode(3, gpio.INPUT)\nprint(gpio.read(3))\n";

#[test]
fn d3_reads_1_on_the_nodemcu_devkit_and_floats_low_without_it() {
    let f = Flash::new(&[
        ("init.lua", READ_D3),
        ("nodemcu-sim.toml", "board = \"nodemcu-devkit\"\n"),
    ]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(
        (r.status, r.stdout.as_str(), r.stderr.as_str()),
        (0, "1\n", "")
    );
    let r = run_lua(READ_D3, &["--virtual-time"]);
    assert_eq!(
        (r.status, r.stdout.as_str(), r.stderr.as_str()),
        (0, "0\n", "")
    );
}

#[test]
fn the_devkit_pins_read_their_resistors_and_its_leds_light_when_driven_low() {
    let script = r#"
for _, p in ipairs({0, 3, 4, 8, 1}) do gpio.mode(p, gpio.INPUT) end
print(gpio.read(0), gpio.read(3), gpio.read(4), gpio.read(8), gpio.read(1))
local sim = require "nodemcu-sim"
gpio.mode(4, gpio.OUTPUT) gpio.write(4, gpio.LOW)
print(sim.part("led-d4"), sim.part("led-d0"))
"#;
    let f = Flash::new(&[
        ("init.lua", script),
        ("nodemcu-sim.toml", "board = \"nodemcu-devkit\"\n"),
    ]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(
        (r.status, r.stdout.as_str(), r.stderr.as_str()),
        (0, "1\t1\t1\t0\t0\non\toff\n", "")
    );
}

const TRIG_DOWN: &str = r#"
gpio.mode(3, gpio.INT)
print(gpio.read(3))
gpio.trig(3, "down", function(level, when, count)
  print("down", level, when, count, gpio.read(3))
  gpio.trig(3, "none")
end)
"#;

#[test]
fn a_scheduled_flash_press_fires_trig_down_at_its_time() {
    let f = Flash::new(&[
        ("init.lua", TRIG_DOWN),
        (
            "nodemcu-sim.toml",
            "[board]\nready = \"nodemcu-devkit\"\n\n[[board.press]]\npart = \"flash\"\n\
             at = 5000\nfor = 200\n",
        ),
    ]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(
        (r.status, r.stdout.as_str(), r.stderr.as_str()),
        (0, "1\ndown\t0\t5000000\t1\t0\n", "")
    );
}

#[test]
fn the_test_module_presses_the_flash_button_by_name_or_pin() {
    let script = r#"
local sim = require "nodemcu-sim"
gpio.mode(3, gpio.INT)
gpio.trig(3, "both", function(level, when) print(level, when) end)
tmr.create():alarm(1000, tmr.ALARM_SINGLE, function() sim.press("flash", 50) end)
tmr.create():alarm(2000, tmr.ALARM_SINGLE, function() sim.press(3) end)
tmr.create():alarm(2010, tmr.ALARM_SINGLE, function()
  print(sim.part("flash")) sim.release(3) gpio.trig(3, "none")
end)
"#;
    let f = Flash::new(&[
        ("init.lua", script),
        ("nodemcu-sim.toml", "board = \"nodemcu-devkit\"\n"),
    ]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(
        (r.status, r.stdout.as_str(), r.stderr.as_str()),
        (0, "0\t1000000\n1\t1050000\n0\t2000000\npressed\n", "")
    );
}

#[test]
fn a_pull_up_resistor_part_gives_a_button_real_edges_without_a_conflict() {
    let script = r#"
gpio.mode(3, gpio.INT)
print(gpio.read(3))
gpio.trig(3, "both", function(level, when, count)
  print(level, when, count)
  if level == 1 then gpio.trig(3, "none") end
end)
"#;
    let f = Flash::new(&[
        ("init.lua", script),
        (
            "nodemcu-sim.toml",
            "[[board.part]]\nkind = \"resistor\"\npins = [3, \"vcc\"]\nohms = 10000\n\n\
             [[board.part]]\nkind = \"button\"\npin = 3\npresses = [ { at = 5000, for = 200 } ]\n",
        ),
    ]);
    let trace = f.file("trace.jsonl");
    let r = f.run(
        "init.lua",
        &["--virtual-time", "--trace", trace.to_str().unwrap()],
    );
    assert_eq!(
        (r.status, r.stdout.as_str(), r.stderr.as_str()),
        (0, "1\n0\t5000000\t1\n1\t5200000\t1\n", "")
    );
    let trace = std::fs::read_to_string(trace).expect("trace");
    assert!(!trace.contains("conflict"), "{trace}");
    assert!(
        trace.contains(r#"{"t":5000000,"pin":3,"level":0,"by":"button"}"#),
        "{trace}"
    );
}

#[test]
fn a_pull_down_part_holds_d8_low_against_the_chip_pull_up_and_an_output_beats_it() {
    let script = r#"
gpio.mode(8, gpio.INPUT, gpio.PULLUP)
print(gpio.read(8))
gpio.mode(7, gpio.OUTPUT) gpio.write(7, gpio.HIGH)
print(gpio.read(8))
"#;
    let f = Flash::new(&[
        ("init.lua", script),
        (
            "nodemcu-sim.toml",
            "[[board.part]]\nkind = \"resistor\"\npins = [8, \"gnd\"]\nohms = 10000\n\n\
             [[board.part]]\nkind = \"resistor\"\npins = [7, 8]\nohms = 1000\n",
        ),
    ]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(
        (r.status, r.stdout.as_str(), r.stderr.as_str()),
        (0, "0\n1\n", "")
    );
}

#[test]
fn a_bad_resistor_end_names_the_file_line_and_key() {
    let f = Flash::new(&[
        ("init.lua", "print(1)\n"),
        (
            "nodemcu-sim.toml",
            "firmware = \"3.0\"\n\n[[board.part]]\nkind = \"resistor\"\npins = [3, \"vdd2\"]\n",
        ),
    ]);
    let r = f.run("init.lua", &[]);
    assert_eq!((r.status, r.stdout.as_str()), (2, ""), "{}", r.stderr);
    assert!(r.stderr.contains("nodemcu-sim.toml"), "{}", r.stderr);
    assert!(r.stderr.contains("line 3"), "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "`pins`: unknown end `vdd2`, expected a pin number, \"vcc\" (\"3v3\") or \"gnd\" (\"ground\")"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn a_press_of_no_button_and_a_kit_of_the_other_chip_are_errors_naming_the_file() {
    let f = Flash::new(&[
        ("init.lua", "print(1)\n"),
        (
            "nodemcu-sim.toml",
            "[board]\nready = \"nodemcu-devkit\"\n[[board.press]]\npart = \"boot\"\nat = 1\nfor = 1\n",
        ),
    ]);
    let r = f.run("init.lua", &[]);
    assert_eq!(r.status, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("nodemcu-sim.toml: board press 1: no button named \"boot\""),
        "{}",
        r.stderr
    );
    let f = Flash::new(&[
        ("init.lua", "print(1)\n"),
        ("nodemcu-sim.toml", "board = \"nodemcu-devkit\"\n"),
    ]);
    let r = f.run("init.lua", &["--target", "esp32"]);
    assert_eq!(r.status, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "nodemcu-sim.toml: the ready board \"nodemcu-devkit\" is an ESP8266 board, not an ESP32 one"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn the_esp32_devkitc_boot_button_pulls_gpio0_up_and_presses_low() {
    let script = r#"
gpio.config({gpio = 0, dir = gpio.IN})
print(gpio.read(0))
gpio.trig(0, gpio.INTR_DOWN, function(pin, level) 
  -- The callback gets no time on the ESP32: the clock in ms says when it ran.
  print("down", pin, level, math.floor(tmr.now() / 1000))
end)
"#;
    let f = Flash::new(&[
        ("init.lua", script),
        (
            "nodemcu-sim.toml",
            "[board]\nready = \"esp32-devkitc\"\n[[board.press]]\npart = \"boot\"\nat = 3000\nfor = 100\n",
        ),
    ]);
    let r = f.run("init.lua", &["--target", "esp32", "--virtual-time"]);
    assert_eq!(
        (r.status, r.stdout.as_str(), r.stderr.as_str()),
        (0, "1\ndown\t0\t0\t3000\n", "")
    );
}
