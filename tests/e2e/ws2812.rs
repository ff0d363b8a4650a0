//! `ws2812`, `pixbuf`, `ws2812_effects` and `color_utils` on the virtual board: frames reaching
//! strip parts byte for byte at their device times (and in the trace), the firmware's own NTest
//! files for them, and the firmware's error texts.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{BIN, Flash, run_cmd};

const STRIPS: &str = r#"
[[board.part]]
kind = "ws2812"
name = "main"
pin = 4
leds = 3

[[board.part]]
kind = "ws2812"
name = "second"
pin = 10
leds = 2
channels = 4
"#;

#[test]
fn frames_reach_the_strips_at_their_times_and_are_traced() {
    let f = Flash::new(&[
        (
            "init.lua",
            r#"
local sim = require("nodemcu-sim")
ws2812.write(string.char(1, 2, 3))      -- before init: UART1 is not on GPIO2 yet
print(#sim.frames("main"))
ws2812.init(ws2812.MODE_DUAL)
local b = pixbuf.newBuffer(3, 3):fill(0, 255, 0)
b:set(3, 10, 20, 30)
ws2812.write(b, string.char(1, 2, 3, 4, 5, 6, 7, 8))
tmr.create():alarm(100, tmr.ALARM_SINGLE, function()
  ws2812.write(string.char(0, 0, 255))   -- only the first LED changes
  local fr = sim.frames("main")
  for _, e in ipairs(fr) do print(e.t, ("%02x"):rep(#e.data):format(e.data:byte(1, -1))) end
  print(sim.led("main", 1)); print(sim.led("main", 3)); print(sim.led("second", 2))
  -- (Lua 5.3 names the test module's function in the message, 5.1 does not.)
  print(select(2, pcall(sim.led, "main", 4)):match("%(no such LED%)"))
  print(pcall(ws2812.init, 2))
  print(pcall(ws2812.write, 5))
  print(pcall(ws2812.write, pixbuf.newBuffer(1, 2)))
  print(pcall(ws2812.write, "", {}))
end)
"#,
        ),
        ("nodemcu-sim.toml", STRIPS),
    ]);
    let trace = f.file("trace.jsonl");
    let r = f.run(
        "init.lua",
        &[
            "--virtual-time",
            "--timeout",
            "5000",
            "--trace",
            trace.to_str().unwrap(),
        ],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    let out: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(out[0], "0");
    // Two frames, the second 100 ms after the first ended (9 bytes, 90 µs on the wire).
    let t1: u64 = out[1].split('\t').next().unwrap().parse().unwrap();
    assert_eq!(out[1], format!("{t1}\t00ff0000ff000a141e"));
    assert_eq!(out[2], format!("{}\t0000ff", t1 + 90 + 100_000));
    assert_eq!(
        &out[3..],
        [
            // LED 1 blue now (G 0, R 0, B 255); LED 3 as the buffer set it; the RGBW strip's
            // second LED from bytes 5..8 of the second stream.
            "0\t0\t255",
            "20\t10\t30",
            "6\t5\t7\t8",
            "(no such LED)",
            "false\tbad argument #1 to '?' (ws2812.SINGLE or ws2812.DUAL expected)",
            "false\tbad argument #1 to '?' (pixbuf or string expected)",
            "false\tbad argument #1 to '?' (Bad pixbuf format)",
            "false\tbad argument #2 to '?' (pixbuf or string expected)",
        ]
    );
    let lines = std::fs::read_to_string(&trace).expect("trace");
    assert!(
        lines.contains(&format!(
            "{{\"t\":{t1},\"strip\":\"main\",\"frame\":\"00ff0000ff000a141e\"}}\n"
        )),
        "{lines}"
    );
    assert!(
        lines.contains(&format!(
            "{{\"t\":{t1},\"strip\":\"second\",\"frame\":\"0102030405060708\"}}\n"
        )),
        "{lines}"
    );
    // init makes GPIO2 an output driven low before UART1 takes it.
    assert!(lines.contains("\"pin\":4,\"mode\":\"output\",\"pull\":\"none\"}"));
}

#[test]
fn the_firmware_pixbuf_ws2812_and_effects_tests_pass_unmodified() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut cmd = Command::new(BIN);
    cmd.args(["test", "fixtures/firmware-tests"])
        .current_dir(root);
    let r = run_cmd(cmd, Duration::from_secs(120));
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("test result: ok. 3 files: 3 passed, 0 failed. 32 tests: 32 passed."),
        "{}",
        r.stdout
    );
}

#[test]
fn color_utils_and_effects_give_the_firmware_values_and_errors() {
    let f = Flash::new(&[
        (
            "init.lua",
            r#"
print(color_utils.hsv2grb(30, 128, 200))
print(color_utils.hsv2grbw(0, 128, 200))
print(color_utils.colorWheel(120))
print(color_utils.grb2hsv(0, 255, 0))
print(pcall(color_utils.hsv2grb, 361, 0, 0))
print(pcall(color_utils.grb2hsv, 5, 5, 5))
print(pcall(ws2812_effects.set_mode, "static"))
local b = pixbuf.newBuffer(4, 3)
ws2812_effects.init(b)
ws2812_effects.set_color(0, 255, 0)
ws2812_effects.set_brightness(255)
print(ws2812_effects.get_speed(), ws2812_effects.get_delay())
print(pcall(ws2812_effects.set_mode, "sparkle"))
ws2812_effects.set_mode("static")
print(b)
ws2812_effects.set_mode("gradient_rgb", string.char(0, 0, 0, 0, 255, 0))
print(b)
print(pcall(ws2812_effects.set_delay, 5))
"#,
        ),
        ("nodemcu-sim.toml", STRIPS),
    ]);
    let r = f.run("init.lua", &["--virtual-time", "--timeout", "2000"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "149\t200\t99\n\
         0\t101\t0\t99\n\
         0\t255\t0\n\
         0\t255\t255\n\
         false\tbad argument #1 to '?' (should be a 0-360)\n\
         false\tbad argument #1 to '?' (greyscale value cannot be converted to hsv)\n\
         false\tbad argument #1 to '?' (please call init() first)\n\
         Warning, deprecated API! ws2812_effects. It will be removed soon; please see \
         https://github.com/nodemcu/nodemcu-firmware/issues/3122. See documentation for details.\n\
         150\t100\n\
         false\tbad argument #1 to '?' (invalid option 'sparkle')\n\
         [(0,255,0),(0,255,0),(0,255,0),(0,255,0)]\n\
         [(0,0,0),(0,85,0),(0,170,0),(0,255,0)]\n\
         false\tbad argument #1 to '?' (must be equal / larger than 10)\n"
    );
}

#[test]
fn only_the_3_0_effects_module_prints_its_deprecation_note() {
    // 2.2.1's ws2812_effects has no note; 3.0's prints it on the UART at every init.
    let script = "ws2812.init() ws2812_effects.init(ws2812.newBuffer(3, 3)) print('ok')";
    let r = crate::support::run_lua(script, &["--firmware", "2.2"]);
    assert_eq!(r.stdout, "ok\n", "{}", r.stderr);
    let r = crate::support::run_lua(script, &[]);
    assert!(
        r.stdout
            .starts_with("Warning, deprecated API! ws2812_effects.")
            && r.stdout.ends_with("\nok\n"),
        "{}",
        r.stdout
    );
}

#[test]
fn edge_cases_where_the_firmware_would_write_outside_a_buffer_are_errors_or_no_ops() {
    let r = crate::support::run_lua(
        r#"
local e = pixbuf.newBuffer(4, 3):sub(4, 3)
print(e:size(), tostring(e))
print(pcall(e.replace, e, string.char(1, 2, 3)))
print(pcall(e.shift, e, 1))
ws2812.init()
ws2812_effects.init(e)
for _, m in ipairs({ "larson_scanner", "color_wipe", "random_dot", "rainbow_cycle" }) do
  ws2812_effects.set_mode(m)
end
ws2812_effects.set_mode("gradient_rgb", string.char(1, 2, 3, 4, 5, 6))
print(tostring(e))
"#,
        &["--virtual-time", "--timeout", "1000"],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    let out: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(out[0], "0\t[]");
    assert_eq!(
        out[1],
        "false\tbad argument #2 to '?' (does not fit into destination)"
    );
    assert_eq!(
        out[2],
        "false\tbad argument #4 to '?' (start position must be >= 1)"
    );
    assert_eq!(out.last(), Some(&"[]"));
}

#[test]
fn the_most_negative_index_or_shift_is_an_argument_error() {
    // The fuzzer's finds: `- 1` and `* channels` on them overflowed.
    let r = crate::support::run_lua(
        "local b = pixbuf.newBuffer(3, 3)\n\
         print(pcall(b.get, b, -2^63))\n\
         print(pcall(b.shift, b, -2^63))\n\
         print(pcall(b.shift, b, 2^62))\n",
        &[],
    );
    assert_eq!(
        r.stdout,
        "false\tbad argument #2 to '?' (index out of range)\n\
         false\tbad argument #2 to '?' (shifting more elements than buffer size)\n\
         false\tbad argument #2 to '?' (shifting more elements than buffer size)\n",
        "{}",
        r.stderr
    );
}
