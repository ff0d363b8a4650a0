//! `gpio.pulse` (the firmware's `gpio_pulse.c`): pulse trains on the virtual board at exact
//! device times under `--virtual-time`, the callback's and `:getstate`'s values, `:stop`,
//! `:cancel`, `:adjust` with `min`/`max`, `:update`, the generations that have it, and the
//! firmware's error texts.

use crate::support::{Ran, run_lua};

/// A `hist(pin)` helper: the pin's level changes as `t:level`.
const HIST: &str = r#"
local sim = require "nodemcu-sim"
local function hist(pin)
  local h = {}
  for _, e in ipairs(sim.history(pin)) do h[#h + 1] = e.t .. ":" .. e.level end
  return table.concat(h, " ")
end
"#;

/// Runs `body` after [`HIST`] under virtual time, with `extra` arguments.
fn run_timed(body: &str, extra: &[&str]) -> Ran {
    let args: Vec<&str> = ["--virtual-time"].iter().chain(extra).copied().collect();
    run_lua(&format!("{HIST}{body}"), &args)
}

/// The run ended normally and printed exactly `out`.
fn expect(r: &Ran, out: &str) {
    assert_eq!((r.status, r.stdout.as_str()), (0, out), "{}", r.stderr);
}

#[test]
fn a_pulse_train_sets_its_pins_at_exact_times_and_loops_count_plus_one_times() {
    let r = run_timed(
        r#"
gpio.mode(1, gpio.OUTPUT); gpio.mode(2, gpio.OUTPUT)
local p = gpio.pulse.build({
  { [1] = gpio.HIGH, [2] = gpio.LOW, delay = 250 },
  { [1] = gpio.LOW, [2] = gpio.HIGH, delay = 750, loop = 1, count = 2 },
  { [2] = gpio.LOW, delay = 100 },
})
print(p:getstate())
print(p:start(function(...)
  print("done", ...)
  print(hist(1))
  print(hist(2))
end))
print(p:getstate())
"#,
        &["--trace", "-"],
    );
    expect(
        &r,
        "1\t0\t0\t0\n\n1\t1\t250\t0\n\
             done\tnil\t8\t-20\t3120\n\
             0:1 250:0 1000:1 1250:0 2000:1 2250:0\n\
             250:1 1000:0 1250:1 2000:0 2250:1 3000:0\n",
    );
    // Each step's pins are gpio writes in the trace: set ones first, then cleared ones.
    assert!(
        r.stderr.contains(
            "{\"t\":1250,\"pin\":2,\"level\":1,\"by\":\"gpio\"}\n\
             {\"t\":1250,\"pin\":1,\"level\":0,\"by\":\"gpio\"}\n"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn stop_at_a_position_ends_on_entering_it_and_calls_back_with_the_state() {
    let r = run_timed(
        r##"
gpio.mode(1, gpio.OUTPUT)
local p = gpio.pulse.build({
  { [1] = gpio.HIGH, delay = 100000 },
  { [1] = gpio.LOW, delay = 100000, loop = 1, count = 10 },
})
p:start(function() print("replaced") end)
tmr.create():alarm(250, tmr.ALARM_SINGLE, function()
  print("at 250ms", p:getstate())
  print(p:stop(2, function(...)
    print("stopped", ...)
    print(hist(1))
    print(select("#", p:stop(print)), select("#", p:cancel()), select("#", p:adjust(1)))
  end))
end)
"##,
        &[],
    );
    expect(
        &r,
        "at 250ms\t1\t3\t50000\t250000\ntrue\n\
             stopped\t2\t4\t-20\t300020\n\
             0:1 100000:0 200000:1 300000:0\n0\t0\t0\n",
    );
}

#[test]
fn stop_without_a_position_ends_at_the_next_step() {
    let r = run_timed(
        r#"
gpio.mode(1, gpio.OUTPUT)
local p = gpio.pulse.build({
  { [1] = gpio.HIGH, delay = 3000 },
  { [1] = gpio.LOW, delay = 3000, loop = 1, count = 100 },
})
p:start(function() end)
tmr.create():alarm(4, tmr.ALARM_SINGLE, function()
  p:stop(function(...) print("stopped", ...); print(hist(1)) end)
end)
"#,
        &[],
    );
    expect(&r, "stopped\t1\t3\t-20\t6020\n0:1 3000:0 6000:1\n");
}

#[test]
fn adjust_stretches_min_max_steps_and_carries_what_does_not_fit() {
    // start(900): the first step wants 1900 µs, max is 1500, so 400 carries to its next turn.
    // The second run starts 20 µs after the first one's end and takes them off its first step;
    // the update makes step 2 last 2000 µs.
    let r = run_timed(
        r#"
gpio.mode(1, gpio.OUTPUT)
local p = gpio.pulse.build({
  { [1] = gpio.HIGH, delay = 1000, min = 500, max = 1500 },
  { [1] = gpio.LOW, delay = 1000, loop = 1, count = 1 },
})
p:start(900, function(...)
  print("done", ...)
  print(hist(1))
  p:update(2, { delay = 2000 })
  p:start(function(...)
    print("again", ...)
    print(hist(1))
  end)
end)
"#,
        &[],
    );
    expect(
        &r,
        "done\tnil\t5\t-20\t4920\n0:1 1500:0 2500:1 3900:0\n\
             again\tnil\t5\t-20\t10920\n\
             0:1 1500:0 2500:1 3900:0 4920:1 5900:0 7900:1 8900:0\n",
    );
}

#[test]
fn cancel_stops_at_once_without_the_callback_and_adjust_returns_the_state() {
    let r = run_timed(
        r#"
gpio.mode(1, gpio.OUTPUT)
local q = gpio.pulse.build({ { [1] = 1, delay = 10 }, { [1] = 0, delay = 5000 } })
q:start(function() print("never") end)
tmr.create():alarm(2, tmr.ALARM_SINGLE, function()
  print("adjust", q:adjust(5))
  print("cancel", q:cancel())
  print(q:getstate())
  print(hist(1))
end)
"#,
        &[],
    );
    expect(
        &r,
        "adjust\t2\t2\t3010\t2000\ncancel\t2\t2\t3010\t2000\n2\t2\t3010\t2000\n0:1 10:0\n",
    );
}

#[test]
fn pulse_is_there_from_2_2_on_the_esp8266_only() {
    let script = "print(type(gpio.pulse), gpio.pulse and type(gpio.pulse.build))\n";
    for (args, out) in [
        (&["--firmware", "1.5"][..], "nil\tnil\n"),
        (&["--firmware", "2.2"][..], "table\tfunction\n"),
        (&[][..], "table\tfunction\n"),
        (&["--target", "esp32"][..], "nil\tnil\n"),
    ] {
        let r = run_lua(script, args);
        assert_eq!(
            (r.status, r.stdout.as_str()),
            (0, out),
            "{args:?}: {}",
            r.stderr
        );
    }
}

#[test]
fn bad_tables_and_calls_get_the_firmware_errors() {
    let script = r#"
local function try(f)
  local ok, e = pcall(f)
  print(ok, (tostring(e):gsub("^init.lua:%d+: ", "")))
end
local b = gpio.pulse.build
try(function() return b({ 1 }) end)
try(function() return b({ { [13] = 1 } }) end)
try(function() return b({ { [-1] = 1 } }) end)
try(function() return b({ { [1] = "x" } }) end)
try(function() return b({ { delay = -1 } }) end)
try(function() return b({ { delay = 64000001 } }) end)
try(function() return b({ { delay = 10, min = -5 } }) end)
try(function() return b({ { delay = 10, max = 64000001 } }) end)
try(function() return b({ { delay = 100, min = 200, max = 300 } }) end)
try(function() return b({ { delay = 100, min = 50 } }) end)
try(function() return b({ { delay = 100, foo = 1 } }) end)
try(function() return b({ { [true] = 1 } }) end)
local big = {}
for i = 1, 101 do big[i] = {} end
try(function() return b(big) end)
local p = b({ { [1] = 1, delay = 10 }, { [1] = 0, delay = 10 } })
try(function() return p:start() end)
try(function() return p:start(5) end)
try(function() return p:update(3, {}) end)
try(function() return p:update(1, 7) end)
p:start(function() end)
try(function() return p:start(function() end) end)
try(function() return p:stop(3, function() end) end)
try(function() return p:stop(1) end)
"#;
    let r = run_timed(script, &[]);
    expect(
        &r,
        "false\tAll entries must be tables\n\
             false\tpin number 13 must be in range 0 .. 12\n\
             false\tpin number -1 must be in range 0 .. 12\n\
             false\tbad argument #-1 to 'build' (number expected, got string)\n\
             false\tdelay of -1 must be in the range 0 .. 64000000 microseconds\n\
             false\tdelay of 64000001 must be in the range 0 .. 64000000 microseconds\n\
             false\tdelay minimum of -5 must be in the range 0 .. 64000000 microseconds\n\
             false\tdelay maximum of 64000001 must be in the range 0 .. 64000000 microseconds\n\
             false\tDelay of 100 must be between min and max\n\
             false\tDelay of 100 must be between min and max\n\
             false\tUnrecognized key found: foo\n\
             false\tbad argument #-2 to 'build' (string expected, got boolean)\n\
             false\ttable is too large: 101 entries is more than 100\n\
             false\tmissing callback\n\
             false\tmissing callback\n\
             false\tentry number must be in range 1 .. 2\n\
             false\tAll entries must be tables\n\
             false\tpulse operation already in progress\n\
             false\tbad stop position: 3 (valid range 1 - 2)\n\
             false\tmissing callback\n",
    );
}

#[test]
fn a_loop_of_steps_without_delay_lets_device_time_pass_so_a_timeout_ends_it() {
    let script = r#"
gpio.mode(1, gpio.OUTPUT)
local p = gpio.pulse.build({ { [1] = 1 }, { [1] = 0, loop = 1, count = 4000000000 } })
p:start(function() print("end") end)
"#;
    let r = run_timed(script, &["--timeout", "1"]);
    assert_eq!((r.status, r.stdout.as_str()), (124, ""), "{}", r.stderr);
    assert!(r.stderr.contains("time limit reached"), "{}", r.stderr);
}
