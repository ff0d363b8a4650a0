//! Firmware generations (`--firmware`): each has its release's API, and under 3.0 what an older
//! release had gets the firmware's error plus one note naming the flag that runs it.

use crate::support::run_lua;

/// The static timer API as 1.5.4.1 and 2.2.1 had it: ids 0-6, the id passed to the callback,
/// start/stop answering whether they changed anything, state as (running, mode) or nil.
const STATIC_TIMERS: &str = r#"
local n = 0
print(tmr.alarm(0, 100, tmr.ALARM_AUTO, function(id)
  n = n + 1
  print("tick", id, n, math.floor(tmr.now() / 1000))
  if n == 3 then
    print("stop", tmr.stop(id), tmr.stop(id))
    print("state", tmr.state(0))
    tmr.unregister(0)
    print("state", tmr.state(0))
  end
end))
print("state", tmr.state(0))
print("start again", tmr.start(0))
print(tmr.register(2, 50, tmr.ALARM_SEMI, function(id) print("semi", id, tmr.state(id)) end))
print("semi start", tmr.start(2))
print(pcall(tmr.alarm, 7, 100, 0, print))
print(pcall(tmr.stop, -1))
print(pcall(tmr.start, "x"))
print(pcall(tmr.register, 1, 0, 0, print))
print(pcall(tmr.register, 1, 10, 5, print))
print(pcall(tmr.register, 1, 10, 0, 42))
print("unregistered", tmr.start(1), tmr.stop(1), tmr.state(1))
"#;

fn static_timers_expected(range: &str) -> String {
    format!(
        "true\n\
         state\ttrue\t1\n\
         start again\tfalse\n\
         \n\
         semi start\ttrue\n\
         false\tbad argument #1 to '?' (invalid timer index)\n\
         false\tbad argument #1 to '?' (invalid timer index)\n\
         false\tbad argument #1 to '?' (timer object or numerical ID expected)\n\
         false\tbad argument #2 to '?' ({range})\n\
         false\tbad argument #3 to '?' (Invalid mode)\n\
         false\tbad argument #4 to '?' (Must be function)\n\
         unregistered\tfalse\tfalse\tnil\n\
         semi\t2\tfalse\t2\n\
         tick\t0\t1\t100\n\
         tick\t0\t2\t200\n\
         tick\t0\t3\t300\n\
         stop\ttrue\tfalse\n\
         state\tfalse\t1\n\
         state\tnil\n"
    )
}

#[test]
fn static_timers_under_2_2_and_1_5() {
    for fw in ["2.2", "1.5"] {
        let r = run_lua(STATIC_TIMERS, &["--firmware", fw, "--virtual-time"]);
        assert_eq!(r.status, 0, "{fw}: {}", r.stderr);
        assert_eq!(r.stdout, static_timers_expected("Range: 1-6870947"), "{fw}");
        assert_eq!(r.stderr, "", "{fw}: no note where the API exists");
    }
}

#[test]
fn static_functions_take_timer_objects_too_before_3_0() {
    let script = r#"
local t = tmr.create()
tmr.register(t, 10, tmr.ALARM_SINGLE, function(x) print("fired with the object", x == t) end)
print(tmr.state(t))
print(tmr.start(t), t:state())
"#;
    let r = run_lua(script, &["--firmware", "2.2", "--virtual-time"]);
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (0, "false\t0\ntrue\ttrue\t0\nfired with the object\ttrue\n"),
        "{}",
        r.stderr
    );
}

#[test]
fn under_3_0_a_static_call_gets_the_firmwares_error_and_one_note() {
    let script = "print(tmr.alarm == nil, tmr.stop == nil, tmr.alarm == nil)\n\
                  tmr.alarm(0, 1000, tmr.ALARM_AUTO, function() end)\n";
    let r = run_lua(script, &[]);
    assert_eq!(r.status, 1);
    assert_eq!(r.stdout, "true\ttrue\ttrue\n");
    let notes: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("was removed"))
        .collect();
    assert_eq!(
        notes,
        [
            "nodemcu-sim: tmr.alarm was removed in firmware 3.0 (static timers); this script may be written for 2.x: try --firmware 2.2",
            "nodemcu-sim: tmr.stop was removed in firmware 3.0 (static timers); this script may be written for 2.x: try --firmware 2.2",
        ]
    );
    let error = if cfg!(feature = "lua53") {
        "init.lua:2: attempt to call a nil value (field 'alarm')"
    } else {
        "init.lua:2: attempt to call field 'alarm' (a nil value)"
    };
    assert!(r.stderr.contains(error), "{}", r.stderr);
}

#[test]
fn what_each_generation_lacks_is_nil() {
    let script = "print(tmr.ccount ~= nil, file.stat ~= nil, file.getcontents ~= nil, \
                  file.putcontents ~= nil, tmr.create ~= nil)\n";
    for (fw, want) in [
        ("1.5", "false\tfalse\tfalse\tfalse\ttrue\n"),
        ("2.2", "false\ttrue\tfalse\tfalse\ttrue\n"),
        ("3.0", "true\ttrue\ttrue\ttrue\ttrue\n"),
    ] {
        let r = run_lua(script, &["--firmware", fw]);
        assert_eq!(
            (r.status, r.stdout.as_str()),
            (0, want),
            "{fw}: {}",
            r.stderr
        );
    }
}

#[test]
fn start_takes_restart_only_from_3_0() {
    let script = r#"
local t = tmr.create()
t:register(100, tmr.ALARM_SINGLE, function() print("fired", math.floor(tmr.now() / 1000)) end)
t:start()
tmr.create():alarm(50, tmr.ALARM_SINGLE, function() print("restart", t:start(true)) end)
"#;
    let r = run_lua(script, &["--virtual-time"]);
    assert_eq!(r.stdout, "restart\ttrue\nfired\t150\n", "{}", r.stderr);
    let r = run_lua(script, &["--virtual-time", "--firmware", "2.2"]);
    assert_eq!(r.stdout, "restart\tfalse\nfired\t100\n", "{}", r.stderr);
}

#[test]
fn the_banner_is_the_generations() {
    let script = "if file.open('booted', 'r') then file.close() file.remove('booted') return end\n\
                  file.open('booted', 'w') file.write('x') file.close() node.restart()\n";
    for (fw, version, sdk) in [
        ("1.5", "NodeMCU 1.5.4.1 ", " on SDK 1.5.4.1(39cb9a32)\n"),
        ("2.2", "NodeMCU 2.2.1.0 ", " on SDK 2.2.1(6ab97e9)\n"),
        ("3.0", "NodeMCU 3.0.0.0 ", " on SDK 3.0.1\n"),
    ] {
        let r = run_lua(script, &["--firmware", fw, "--on-reset", "restart"]);
        assert_eq!(r.status, 0, "{fw}: {}", r.stderr);
        let banner = r.stdout.lines().nth(1).unwrap_or_default().to_string() + "\n";
        assert!(banner.starts_with(version), "{fw}: {banner:?}");
        assert!(banner.ends_with(sdk), "{fw}: {banner:?}");
        assert!(banner.contains(" powered by Lua 5."), "{fw}: {banner:?}");
    }
}
