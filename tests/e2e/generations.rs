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

/// The workspace root, where `fixtures/` is.
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_2016_project_passes_its_tests_and_boots_with_its_project_file() {
    let mut cmd = std::process::Command::new(crate::support::BIN);
    cmd.args(["test", "fixtures/legacy"]).current_dir(root());
    let r = crate::support::run_cmd(cmd, std::time::Duration::from_secs(120));
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("3 files: 3 passed"), "{}", r.stdout);

    // `run .` boots init.lua with the project's firmware = "1.5": the station gets its address
    // 2 s after boot (the poll at 2 s still finds none: it was armed first), the static timer
    // stops polling, the server starts.
    let mut cmd = std::process::Command::new(crate::support::BIN);
    cmd.args(["run", ".", "--virtual-time", "--timeout", "12000"])
        .current_dir(root().join("fixtures/legacy"));
    let r = crate::support::run_cmd(cmd, std::time::Duration::from_secs(60));
    assert_eq!(r.status, 124, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "legacy node starting\nIP unavailable, waiting...\nIP unavailable, waiting...\n\
         wifi: got ip 127.0.0.1\nconfig done, IP is 127.0.0.1\n"
    );

    // The same project under 3.0 stops at its first removed call, with the note.
    let mut cmd = std::process::Command::new(crate::support::BIN);
    cmd.args(["run", ".", "--firmware", "3.0"])
        .current_dir(root().join("fixtures/legacy"));
    let r = crate::support::run_cmd(cmd, std::time::Duration::from_secs(60));
    assert_eq!(r.status, 1);
    assert!(
        r.stderr
            .contains("wifi.sta.config(ssid, pwd) was removed in firmware 2.1"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("try --firmware 1.5"), "{}", r.stderr);
}

#[test]
fn firmware_1_5_has_one_file_at_a_time_and_open_answers_true() {
    let script = "print(file.open('a.txt', 'w'), file.write('hello'))\n\
                  print(file.open('b.txt', 'w'), file.write('x'))\n\
                  file.close()\n\
                  print(file.open('a.txt'), file.read())\n\
                  file.close()\n";
    let r = run_lua(script, &["--firmware", "1.5"]);
    assert_eq!(
        r.stdout, "true\ttrue\ntrue\ttrue\ntrue\thello\n",
        "{}",
        r.stderr
    );
    let r = run_lua(script, &["--firmware", "2.2"]);
    assert!(
        r.stdout.starts_with("file.obj: ") || r.stdout.starts_with("userdata: "),
        "{}",
        r.stdout
    );
}

#[test]
fn uart_has_each_generations_functions_and_on_error() {
    // getconfig came with 2.x, fifodepth and its DIR_ constants with 3.0; before 3.0 a bad
    // method was a plain luaL_error, not an argument error.
    let s = "print(uart.getconfig ~= nil, uart.fifodepth ~= nil, uart.DIR_RX, uart.DIR_TX)\n\
             print(pcall(function() uart.on('rx', print) end))\n";
    let out = |fw: &str| {
        let r = run_lua(s, &["--firmware", fw]);
        assert_eq!(r.status, 0, "{}", r.stderr);
        r.stdout
    };
    assert_eq!(
        out("1.5"),
        "false\tfalse\tnil\tnil\nfalse\tinit.lua:2: method not supported\n"
    );
    assert_eq!(
        out("2.2"),
        "true\tfalse\tnil\tnil\nfalse\tinit.lua:2: method not supported\n"
    );
    assert_eq!(
        out("3.0"),
        "true\ttrue\t0\t1\nfalse\tinit.lua:2: bad argument #1 to 'on' (method not supported)\n"
    );
    let r = run_lua(
        "print(uart.fifodepth(), uart.fifodepth(1, uart.DIR_TX))
         print(pcall(function() uart.fifodepth(2) end))
         print(pcall(function() uart.fifodepth(0, 2) end))
",
        &[],
    );
    assert_eq!(
        r.stdout,
        "0\t0\n\
         false\tinit.lua:2: bad argument #1 to 'fifodepth' (Bad UART id; must be 0 or 1)\n\
         false\tinit.lua:3: bad argument #2 to 'fifodepth' (Bad direction; must be DIR_RX or DIR_TX)\n",
        "{}",
        r.stderr
    );
}
