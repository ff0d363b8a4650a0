//! The virtual board (decisions.md §7): gpio, adc and pwm as a script sees them, the board file,
//! the `--trace` stream line for line under virtual time, `require "nodemcu-sim"`, and the
//! firmware's error texts.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{BIN, Flash, Ran, run_cmd, run_lua};

const BUTTON_AND_LED: &str = r#"
[[board.part]]
kind = "button"
pin = 3
presses = [ { at = 5000, for = 200 } ]

[[board.part]]
kind = "led"
pin = 4
"#;

/// The button's script: an interrupt on both edges lights the LED while the button is down.
const BUTTON_SCRIPT: &str = r#"
gpio.mode(3, gpio.INT, gpio.PULLUP)
gpio.mode(4, gpio.OUTPUT)
print(gpio.read(3))
gpio.trig(3, "both", function(level, when, count)
  print("trig", level, when, count)
  gpio.write(4, level == 0 and 1 or 0)
  if level == 1 then gpio.trig(3, "none") end
end)
"#;

fn trace_of(f: &Flash) -> String {
    std::fs::read_to_string(f.file("trace.jsonl")).expect("trace written")
}

#[test]
fn a_scripted_press_fires_trig_at_exactly_its_time_and_is_traced() {
    let f = Flash::new(&[
        ("init.lua", BUTTON_SCRIPT),
        ("nodemcu-sim.toml", BUTTON_AND_LED),
    ]);
    let trace = f.file("trace.jsonl");
    let r = f.run(
        "init.lua",
        &["--virtual-time", "--trace", trace.to_str().unwrap()],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "1\ntrig\t0\t5000000\t1\ntrig\t1\t5200000\t1\n");
    assert_eq!(
        trace_of(&f),
        r#"{"t":0,"pin":3,"mode":"int","pull":"up"}
{"t":0,"pin":3,"level":1,"by":"gpio"}
{"t":0,"pin":4,"mode":"output","pull":"none"}
{"t":5000000,"part":"button","state":"pressed"}
{"t":5000000,"pin":3,"level":0,"by":"button"}
{"t":5000000,"pin":4,"level":1,"by":"gpio"}
{"t":5000000,"part":"led","state":"on"}
{"t":5200000,"part":"button","state":"released"}
{"t":5200000,"pin":3,"level":1,"by":"button"}
{"t":5200000,"pin":4,"level":0,"by":"gpio"}
{"t":5200000,"part":"led","state":"off"}
"#
    );
}

#[test]
fn trace_dash_goes_to_stderr_and_nothing_extra_without_it() {
    let f = Flash::new(&[
        ("init.lua", BUTTON_SCRIPT),
        ("nodemcu-sim.toml", BUTTON_AND_LED),
    ]);
    let r = f.run("init.lua", &["--virtual-time", "--trace", "-"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("{\"t\":5000000,\"pin\":3,\"level\":0,\"by\":\"button\"}\n"),
        "{}",
        r.stderr
    );
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!((r.status, r.stderr.as_str()), (0, ""));
}

#[test]
fn the_1_5_callback_gets_only_the_level_and_2_2_all_three() {
    let script = r#"
gpio.mode(3, gpio.INT, gpio.PULLUP)
gpio.trig(3, "down", function(...) print(select('#', ...), ...) gpio.trig(3) end)
"#;
    let f = Flash::new(&[("init.lua", script), ("nodemcu-sim.toml", BUTTON_AND_LED)]);
    let r = f.run("init.lua", &["--virtual-time", "--firmware", "1.5"]);
    assert_eq!((r.status, r.stdout.as_str()), (0, "1\t0\n"), "{}", r.stderr);
    let r = f.run("init.lua", &["--virtual-time", "--firmware", "2.2"]);
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (0, "3\t0\t5000000\t1\n"),
        "{}",
        r.stderr
    );
}

#[test]
fn edges_before_the_callback_runs_are_counted_in_one_call() {
    // Pin 1 drives pin 2 through a wire; three edges in one callback make one trig call.
    let script = r#"
gpio.mode(2, gpio.INT)
gpio.mode(1, gpio.OUTPUT)
gpio.trig(2, "both", function(level, when, count) print(level, when, count) end)
tmr.create():alarm(10, tmr.ALARM_SINGLE, function()
  gpio.write(1, 1) gpio.write(1, 0) gpio.write(1, 1)
  tmr.create():alarm(10, tmr.ALARM_SINGLE, function() gpio.write(1, 0) gpio.trig(2, "none") end)
end)
"#;
    let f = Flash::new(&[
        ("init.lua", script),
        (
            "nodemcu-sim.toml",
            "[[board.part]]\nkind = \"wire\"\npins = [1, 2]\n",
        ),
    ]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (0, "1\t10000\t3\n"),
        "{}",
        r.stderr
    );
}

#[test]
fn firmware_errors_for_bad_pins_modes_and_levels() {
    let script = r#"
local function try(f, ...) local ok, e = pcall(f, ...) print(e) end
try(function() gpio.mode(13, gpio.OUTPUT) end)
try(function() gpio.mode(0, gpio.INT) end)
try(function() gpio.mode(1, 7) end)
try(function() gpio.write(13, 1) end)
try(function() gpio.write(1, 2) end)
try(function() gpio.read(-1) end)
try(function() gpio.trig(0, "up", print) end)
try(function() gpio.trig(1, "sideways", print) end)
try(function() gpio.trig(1, "up") end)
try(function() gpio.serout(1, 3, {10}) end)
try(function() pwm.setup(0, 100, 10) end)
try(function() pwm.setup(13, 100, 10) end)
try(function() pwm.setup(1, 0, 10) end)
try(function() pwm.setup(1, 100, 1024) end)
try(function() pwm.start(2) end)
try(function() adc.read(1) end)
try(function() adc.force_init_mode(7) end)
"#;
    let r = run_lua(script, &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "init.lua:3: bad argument #1 to 'mode' (Invalid pin)
init.lua:4: bad argument #1 to 'mode' (Invalid pin)
init.lua:5: bad argument #2 to 'mode' (wrong arg type)
init.lua:6: gpio 13 does not exist
init.lua:7: bad argument #2 to 'write' (wrong level type)
init.lua:8: gpio -1 does not exist
init.lua:9: bad argument #1 to 'trig' (Invalid interrupt pin)
init.lua:10: bad argument #2 to 'trig' (invalid option 'sideways')
init.lua:11: bad argument #3 to 'trig' (invalid callback type)
init.lua:12: bad argument #2 to 'serout' (Wrong level type)
init.lua:13: no pwm for D0
init.lua:14: pwm 13 does not exist
init.lua:15: wrong arg range
init.lua:16: wrong arg range
init.lua:17: Unable to start PWM output
init.lua:18: adc 1 does not exist
init.lua:19: bad argument #1 to 'force_init_mode' (Invalid mode)
"
    );
}

#[test]
fn pins_resolve_like_wires_and_a_conflict_is_reported_once() {
    let script = r#"
gpio.mode(2, gpio.INPUT, gpio.PULLUP)
print(gpio.read(2), gpio.read(5))
gpio.mode(1, gpio.OUTPUT) gpio.write(1, 0)
print(gpio.read(2))
gpio.mode(2, gpio.OUTPUT) gpio.write(2, 1)
gpio.write(1, 1) gpio.write(1, 0)
print(gpio.read(1), gpio.read(2))
"#;
    let f = Flash::new(&[
        ("init.lua", script),
        (
            "nodemcu-sim.toml",
            "[[board.part]]\nkind = \"wire\"\npins = [1, 2]\n",
        ),
    ]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (0, "1\t0\n0\n0\t0\n"),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.stderr,
        "nodemcu-sim: board: conflict on pins 1, 2: pin 1 low against pin 2 high (reading low)\n"
    );
}

#[test]
fn pwm_keeps_one_clock_for_all_channels_and_the_duty_it_was_given() {
    let script = r#"
local sim = require "nodemcu-sim"
print(pwm.setup(1, 500, 512), pwm.getduty(1), sim.pwm(1).duty)
pwm.start(1)
print(sim.pwm(1).clock, sim.pwm(1).duty)
print(pwm.setup(2, 100, 10), pwm.getclock(1), pwm.setclock(2, 70000), sim.pwm(1).clock)
pwm.stop(1)
print(pwm.getduty(1), sim.pwm(1).duty, pwm.setduty(1, -1))
for p = 3, 6 do pwm.setup(p, 100, 0) end
print(pcall(pwm.setup, 7, 100, 0))
gpio.mode(1, gpio.OUTPUT)
print(sim.pwm(1), pwm.getclock(1), pwm.getduty(1))
"#;
    let r = run_lua(script, &[]);
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (
            0,
            "500\t512\t0\n500\t512\n100\t100\t1000\t1000\n512\t0\t1023\nfalse\ttoo many pwms.\nnil\t0\t0\n"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn adc_reads_the_board_and_force_init_mode_survives_a_restart() {
    let script = r#"
print(adc.read(0), adc.readvdd33())
if adc.force_init_mode(adc.INIT_VDD33) then node.restart() return end
print(adc.force_init_mode(adc.INIT_VDD33))
"#;
    let f = Flash::new(&[
        ("init.lua", script),
        (
            "nodemcu-sim.toml",
            "[[board.part]]\nkind = \"voltage\"\npin = 0\nvolts = 0.25\n",
        ),
    ]);
    let r = f.run("init.lua", &["--on-reset", "restart"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let out: Vec<&str> = r.stdout.lines().filter(|l| !l.is_empty()).collect();
    // Boot 1 in ADC mode, then a restart (its banner), then boot 2 in VDD33 mode.
    assert_eq!(out.len(), 4, "{}", r.stdout);
    assert_eq!(
        (out[0], out[2], out[3]),
        ("256\t65535", "65535\t3300", "false")
    );
}

#[test]
fn a_board_schedule_alone_keeps_nothing_alive() {
    // A press at 5 s with no interrupt waiting for it: the run ends at once, in real time too.
    let r = Flash::new(&[
        (
            "init.lua",
            "gpio.mode(3, gpio.INPUT, gpio.PULLUP) print(gpio.read(3))\n",
        ),
        ("nodemcu-sim.toml", BUTTON_AND_LED),
    ])
    .run("init.lua", &[]);
    assert_eq!((r.status, r.stdout.as_str()), (0, "1\n"), "{}", r.stderr);
    assert!(r.elapsed < Duration::from_secs(4), "{:?}", r.elapsed);
}

#[test]
fn a_square_wave_drives_trig_at_its_frequency() {
    let script = r#"
local n = 0
gpio.mode(2, gpio.INT)
gpio.trig(2, "up", function(level, when)
  n = n + 1
  if n == 5 then print(level, when) gpio.trig(2, "none") end
end)
"#;
    let f = Flash::new(&[
        ("init.lua", script),
        (
            "nodemcu-sim.toml",
            "[[board.part]]\nkind = \"signal\"\npin = 2\nhz = 1000\nfrom = 10\n",
        ),
    ]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (0, "1\t14000\n"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_test_module_is_not_a_global_and_checks_its_arguments() {
    let script = r#"
print(rawget(_G, "sim"), package.loaded["nodemcu-sim"])
local sim = require "nodemcu-sim"
print(pcall(sim.press, 3))
print(select(2, pcall(function() sim.level(40) end)))
gpio.mode(5, gpio.OPENDRAIN) gpio.write(5, 0)
print(sim.level(5), sim.mode(5), #sim.history(5))
"#;
    let r = run_lua(script, &[]);
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (
            0,
            "nil\tnil\nfalse\tno button or switch on pin 3\ninit.lua:5: bad argument #1 to 'level' (no such pin)\n0\topendrain\t0\n"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn the_esp32_gpio_is_table_configured_and_its_trig_gets_pin_and_level() {
    let script = r#"
local function try(f) local ok, e = pcall(f) print(e) end
gpio.config({gpio = {4, 5}, dir = gpio.IN, pull = gpio.PULL_UP}, {gpio = 18, dir = gpio.OUT})
gpio.write(18, 1)
print(gpio.read(4), gpio.read(5), gpio.read(18))
gpio.config({gpio = 18, dir = gpio.IN_OUT, pull = gpio.PULL_DOWN})
print(gpio.read(18))
try(function() gpio.write(34, 1) end)
try(function() gpio.trig(40, gpio.INTR_UP, print) end)
try(function() gpio.config({gpio = 1}) end)
try(function() gpio.config({dir = gpio.IN}) end)
print(pwm, pwm2, gpio.mode)
gpio.trig(4, gpio.INTR_DOWN, function(...) print(...) gpio.trig(4, gpio.INTR_NONE) end)
"#;
    let f = Flash::new(&[
        ("init.lua", script),
        (
            "nodemcu-sim.toml",
            "[[board.part]]\nkind = \"button\"\npin = 4\npresses = [ { at = 5000, for = 200 } ]\n",
        ),
    ]);
    let r = f.run("init.lua", &["--virtual-time", "--target", "esp32"]);
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (
            0,
            "1\t1\t0\n1\ninit.lua:8: invalid argument\ninit.lua:9: invalid gpio\n\
             init.lua:10: bad argument #-1 to 'config' (number expected, got nil)\n\
             init.lua:11: missing/bad 'gpio' field\nnil\tnil\tnil\n4\t0\n"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn serout_toggles_at_its_delays_blocking_and_on_timers() {
    let script = r#"
local sim = require "nodemcu-sim"
gpio.mode(1, gpio.OUTPUT)
gpio.serout(1, gpio.HIGH, {30, 70}, 2)
local h = {}
for _, e in ipairs(sim.history(1)) do h[#h + 1] = e.t .. ":" .. e.level end
print(table.concat(h, " "))
gpio.serout(1, gpio.LOW, {5000, 10000}, 1, function()
  local e = sim.history(1)
  print("done", e[#e].t, e[#e].level)
end)
print("started")
"#;
    let r = run_lua(script, &["--virtual-time"]);
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (0, "0:1 30:0 100:1 130:0\nstarted\ndone\t5200\t1\n"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_blocking_serout_longer_than_the_watchdog_resets_the_device() {
    // A repeat count of 0 wraps to 2^32 - 1 in the firmware: 4 billion cycles, blocking.
    let script = "gpio.mode(1, gpio.OUTPUT)\nprint(pcall(gpio.serout, 1, 1, {1000, 1000}, 0))\n";
    let r = run_lua(script, &["--virtual-time"]);
    assert_eq!((r.status, r.stdout.as_str()), (5, ""), "{}", r.stderr);
    assert!(r.stderr.contains("watchdog reset"), "{}", r.stderr);
}

#[test]
fn a_level_trigger_fires_again_while_the_level_holds() {
    let script = r#"
local sim = require "nodemcu-sim"
gpio.mode(2, gpio.INT, gpio.PULLUP)
local n = 0
gpio.trig(2, "low", function(level, when)
  n = n + 1
  print(level, when)
  if n == 3 then gpio.trig(2, "none") end
end)
tmr.create():alarm(50, tmr.ALARM_SINGLE, function() sim.press("button") end)
"#;
    let f = Flash::new(&[
        ("init.lua", script),
        (
            "nodemcu-sim.toml",
            "[[board.part]]\nkind = \"button\"\npin = 2\n",
        ),
    ]);
    let r = f.run("init.lua", &["--virtual-time"]);
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (0, "0\t50000\n0\t50100\n0\t50200\n"),
        "{}",
        r.stderr
    );
}

#[test]
fn pwm2_gives_each_pin_its_frequency_and_reports_the_timer() {
    let script = r#"
local sim = require "nodemcu-sim"
local function try(f) local ok, e = pcall(f) print(e) end
try(function() pwm2.setup_pin_hz(0, 100, 10, 5) end)
try(function() pwm2.setup_pin_hz(1, 100, 10, 11) end)
pwm2.setup_pin_hz(1, 250, 100, 25)
pwm2.setup_pin_sec(2, 2, 10, 5)
print(pwm2.get_timer_data())
print(pwm2.get_pin_data(1))
print(pwm2.start(), sim.pwm(1).clock, sim.pwm(1).duty)
try(function() pwm2.setup_pin_hz(3, 100, 10, 5) end)
try(function() pwm2.set_duty(3, 1) end)
pwm2.set_duty(1, 50)
print(sim.pwm(1).duty)
pwm2.stop()
print(sim.pwm(1), sim.mode(1), sim.level(1))
"#;
    let r = run_lua(script, &["--virtual-time"]);
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (
            0,
            "init.lua:4: bad argument #1 to 'setup_pin_hz' (invalid pin number)
init.lua:5: bad argument #4 to 'setup_pin_hz' (invalid duty)
false\t3200\t200
1\t25\t100\t1\t250\t3200\t1
true\t250\t25
init.lua:11: pwm2 : already started, stop it before setting up pins.
init.lua:12: bad argument #2 to 'set_duty' (invalid duty)
50
nil\tinput\t1
"
        ),
        "{}",
        r.stderr
    );
    // 2.2 had no pwm2.
    let r = run_lua("print(pwm2, pwm ~= nil)\n", &["--firmware", "2.2"]);
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (0, "nil\ttrue\n"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_esp32_adc_reads_adc1_channels_at_its_width() {
    let script = r#"
local function try(f) local ok, e = pcall(f) print(e) end
adc.setup(adc.ADC1, 3, adc.ATTEN_11db)
print(adc.read(adc.ADC1, 3), adc.read(adc.ADC1, 0))
adc.setwidth(adc.ADC1, 10)
print(adc.read(adc.ADC1, 3))
try(function() adc.read(2, 0) end)
try(function() adc.read(adc.ADC1, 8) end)
try(function() adc.setwidth(adc.ADC1, 13) end)
try(function() adc.setup(adc.ADC1, 0, 4) end)
try(function() adc.read_hall_sensor() end)
print(adc.readvdd33, adc.force_init_mode)
"#;
    let f = Flash::new(&[
        ("init.lua", script),
        (
            "nodemcu-sim.toml",
            "[[board.part]]\nkind = \"potentiometer\"\npin = 3\nvalues = [ { at = 0, value = 512 } ]\n",
        ),
    ]);
    let r = f.run("init.lua", &["--target", "esp32"]);
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (
            0,
            "2048\t0\n512\ninit.lua:7: adc 2 does not exist\ninit.lua:8: channel 8 does not exist in ADC1\n\
             init.lua:9: adc_set_width failed\ninit.lua:10: adc_setup failed\n\
             init.lua:11: ADC hall sensor no longer supported in IDF, sorry\nnil\tnil\n"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn ledc_channels_put_their_waves_on_the_esp32_board() {
    let script = r#"
local sim = require "nodemcu-sim"
local function try(f) local ok, e = pcall(f) print(e) end
local ch = ledc.newChannel({gpio = 18, bits = ledc.TIMER_10_BIT, mode = ledc.HIGH_SPEED,
  timer = ledc.TIMER_0, channel = ledc.CHANNEL_0, frequency = 1000, duty = 512})
print(ch:getduty(), ch:getfreq(), sim.pwm(18).clock, sim.pwm(18).duty)
print(ch:setduty(256), sim.pwm(18).duty, ch:setfreq(5000), sim.pwm(18).clock)
try(function() ledc.newChannel({gpio = 18, bits = 10, mode = 0, timer = 0, channel = 0}) end)
try(function() ledc.newChannel({gpio = 18, bits = 20, mode = 0, timer = 0, channel = 0,
  frequency = 1000, duty = 0}) end)
try(function() ch:setduty(5000) end)
try(function() ch:stop(2) end)
ch:stop(ledc.IDLE_HIGH) print(sim.pwm(18), sim.level(18))
ch:resume() print(sim.pwm(18).duty)
ch:fadewithtime(1024, 1000, ledc.FADE_WAIT_DONE) print(ch:getduty(), tmr.now())
ch:fadewithstep(0, 256, 10) print(ch:getduty())
tmr.create():alarm(100, tmr.ALARM_SINGLE, function() print(ch:getduty(), sim.pwm(18).duty) end)
"#;
    let r = run_lua(script, &["--virtual-time", "--target", "esp32"]);
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (
            0,
            "512\t1000\t1000\t512\n256\t256\t5000\t5000
init.lua:8: bad option frequency to 'newChannel' (must be in range 1-40000000)
init.lua:9: timer configuration failed code -1
init.lua:11: set duty failed, code 258
init.lua:12: calling 'stop' on bad self (Invalid idle level)
nil\t1\n256\n1024\t1000001\n1024\n0\t0\n"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn bad_board_descriptions_name_the_file_line_and_key() {
    let f = Flash::new(&[
        ("init.lua", "print(1)\n"),
        (
            "nodemcu-sim.toml",
            "firmware = \"3.0\"\n\n[[board.part]]\nkind = \"led\"\npin = 4\ncolour = \"red\"\n",
        ),
    ]);
    let r = f.run("init.lua", &[]);
    assert_eq!(r.status, 2, "{}", r.stderr);
    assert!(r.stderr.contains("nodemcu-sim.toml"), "{}", r.stderr);
    assert!(r.stderr.contains("line 3"), "{}", r.stderr);
    assert!(r.stderr.contains("unknown field `colour`"), "{}", r.stderr);
    let f = Flash::new(&[
        ("init.lua", "print(1)\n"),
        (
            "nodemcu-sim.toml",
            "[[board.part]]\nkind = \"led\"\npin = 13\n",
        ),
    ]);
    let r = f.run("init.lua", &[]);
    assert_eq!(r.status, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "nodemcu-sim.toml: board part 1 (led): pin 13 does not exist on the esp8266 (pins 0..12)"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn the_board_fixtures_pass_under_nodemcu_sim_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = dir.path().join("trace.jsonl");
    std::fs::write(&trace, "stale line\n").expect("write");
    let mut cmd = Command::new(BIN);
    cmd.args(["test", "fixtures/board", "--trace"])
        .arg(&trace)
        .current_dir(root);
    let r: Ran = run_cmd(cmd, Duration::from_secs(120));
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("test result: ok. 4 files: 4 passed, 0 failed. 11 tests: 11 passed."),
        "{}",
        r.stdout
    );
    // Both files' devices appended to the one trace, which the run emptied first.
    let lines = std::fs::read_to_string(&trace).expect("trace");
    assert!(!lines.contains("stale"), "not emptied");
    assert!(lines.contains(r#""part":"knob","state":"value","value":1000}"#));
    assert!(lines.contains(r#""pin":4,"level":1,"by":"gpio"}"#));
    // The strip's first frame: LED 1 red (G, R, B), the other seven dark.
    assert!(lines.contains(&format!(
        r#""strip":"strip","frame":"00ff00{}"}}"#,
        "000000".repeat(7)
    )));
    // The weather station's BME280 answered on the I2C bus at 0x76.
    assert!(lines.contains(r#""i2c":118,"#), "no BME280 transfer");
    assert!(
        lines
            .lines()
            .all(|l| l.starts_with("{\"t\":") && l.ends_with('}'))
    );
}
