//! No script can hang the simulator: `--timeout` and the watchdog end every run, whatever the
//! script does (long C calls, self-reposting tasks, pipes nobody reads, switching hooks off).
//! Each test bounds the wall-clock time of the whole run, since a hang is the failure.

use std::process::Command;
use std::time::Duration;

use crate::support::{BIN, Flash, Ran, run_cmd};

/// Runs `script` as `init.lua` with `args`, failing if the run outlives `limit` of wall time.
fn run_bounded(script: &str, args: &[&str], limit: Duration) -> Ran {
    let flash = Flash::new(&[("init.lua", script)]);
    let mut cmd = Command::new(BIN);
    cmd.arg("run").arg(flash.file("init.lua")).args(args);
    let r = run_cmd(cmd, limit + Duration::from_secs(30));
    assert!(
        r.elapsed < limit,
        "the run took {:?}, more than {limit:?}: {r:?}",
        r.elapsed
    );
    r
}

const WATCHDOG_STATUS: i32 = 5;
/// The watchdog counts the CPU time the Lua thread gets (3.2 s), which takes far longer on a
/// loaded machine; a hang, the failure these tests catch, never ends at all.
const WATCHDOG_BOUND: Duration = Duration::from_secs(120);
const TIMEOUT_STATUS: i32 = 124;

#[test]
fn the_watchdog_stops_a_runaway_pattern_match_inside_one_call() {
    for f in ["find", "match", "gsub", "gmatch"] {
        let call = match f {
            "gsub" => "string.gsub(s, p, 'x')".to_string(),
            "gmatch" => "string.gmatch(s, p)()".to_string(),
            _ => format!("string.{f}(s, p)"),
        };
        let r = run_bounded(
            &format!(
                "local s, p = string.rep('a', 26), string.rep('a-', 26) .. 'b'\n\
                 print('start')\n\
                 print(pcall(function() return {call} end))\n"
            ),
            &[],
            WATCHDOG_BOUND,
        );
        assert_eq!(r.status, WATCHDOG_STATUS, "{f}: {r:?}");
        assert_eq!(r.stdout, "start\n", "{f}");
        assert!(r.stderr.contains("watchdog reset"), "{f}: {}", r.stderr);
    }
}

#[test]
fn the_time_limit_counts_every_boot_of_a_device_that_keeps_restarting() {
    // Each boot restarts a second in: five boots reach the 5 s limit (the limit was per boot,
    // and such a run never ended). A device that restarts at once still costs each boot a
    // board's boot time, so it stops too.
    let restart_later = "print('boot', tmr.now() < 1000000)\n\
         tmr.create():alarm(1000, tmr.ALARM_SINGLE, function() node.restart() end)\n";
    let restart_now = "print('boot')\nnode.restart()\n";
    for virtual_time in [true, false] {
        let mut args = vec!["--on-reset", "restart", "--timeout", "5000"];
        if virtual_time {
            args.push("--virtual-time");
        }
        let r = run_bounded(restart_later, &args, Duration::from_secs(60));
        assert_eq!(r.status, TIMEOUT_STATUS, "{r:?}");
        assert_eq!(
            r.stdout.matches("boot\ttrue\n").count(),
            5,
            "virtual {virtual_time}"
        );
        assert!(!r.stdout.contains("false"), "{}", r.stdout);
        assert_eq!(r.stderr.matches("booting again").count(), 4, "{}", r.stderr);
    }
    let r = run_bounded(
        restart_now,
        &[
            "--on-reset",
            "restart",
            "--virtual-time",
            "--timeout",
            "5000",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(r.status, TIMEOUT_STATUS, "{r:?}");
    assert_eq!(r.stdout.matches("boot\n").count(), 50, "{}", r.stdout);
}

#[test]
fn a_deep_sleep_counts_toward_the_time_limit_and_ends_at_it() {
    // Two seconds of sleep per boot: three boots fit in 5 s of device time.
    let r = run_bounded(
        "print('boot')\nnode.dsleep(2000000)\n",
        &[
            "--on-reset",
            "restart",
            "--virtual-time",
            "--timeout",
            "5000",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(r.status, TIMEOUT_STATUS, "{r:?}");
    assert_eq!(r.stdout.matches("boot\n").count(), 3, "{}", r.stdout);
    // On a real clock a minute's sleep is cut short at the limit.
    let r = run_bounded(
        "print('boot')\nnode.dsleep(60000000)\n",
        &["--on-reset", "restart", "--timeout", "1500"],
        Duration::from_secs(30),
    );
    assert_eq!(r.status, TIMEOUT_STATUS, "{r:?}");
    assert_eq!(r.stdout.matches("boot\n").count(), 1, "{}", r.stdout);
}

#[test]
fn a_task_that_reposts_itself_lets_virtual_time_reach_timers_and_the_limit() {
    let r = run_bounded(
        "local n = 0\n\
         local function f() n = n + 1 node.task.post(f) end f()\n\
         tmr.create():alarm(100, tmr.ALARM_SINGLE, function() print('fired', n > 0) end)\n",
        &["--virtual-time", "--timeout", "2000"],
        Duration::from_secs(60),
    );
    assert_eq!(r.status, TIMEOUT_STATUS, "{r:?}");
    assert_eq!(r.stdout, "fired\ttrue\n");
    assert!(r.stderr.contains("time limit reached"), "{}", r.stderr);
}

#[test]
fn a_script_cannot_switch_the_watchdog_off_with_debug_sethook() {
    let r = run_bounded(
        "print(debug.gethook())\n\
         debug.sethook()\n\
         while true do end\n",
        &["--target", "host"],
        WATCHDOG_BOUND,
    );
    assert_eq!(r.status, WATCHDOG_STATUS, "{r:?}");
    assert_eq!(r.stdout, "nil\t\t0\n");
    assert!(r.stderr.contains("watchdog reset"), "{}", r.stderr);
}

#[test]
fn a_scripts_own_hooks_still_run_beside_the_watchdog() {
    let r = run_bounded(
        "local lines, counts = 0, 0\n\
         local function h(ev, line) if ev == 'line' then lines = lines + 1 else counts = counts + 1 end end\n\
         debug.sethook(h, 'l')\n\
         local f, mask, count = debug.gethook()\n\
         print(f == h, mask, count)\n\
         for i = 1, 100000 do local x = i end\n\
         debug.sethook(h, '', 1000)\n\
         for i = 1, 100000 do local x = i end\n\
         debug.sethook()\n\
         print(lines > 100000, counts > 150)\n\
         while true do end\n",
        &["--target", "host"],
        WATCHDOG_BOUND,
    );
    assert_eq!(r.status, WATCHDOG_STATUS, "{r:?}");
    assert_eq!(r.stdout, "true\tl\t0\ntrue\ttrue\n");
}

#[test]
fn an_output_reader_that_never_reads_runs_once_and_the_run_ends() {
    let r = run_bounded(
        "local calls = 0\n\
         node.output(function(p) calls = calls + 1 end, 0)\n\
         print('x')\n\
         node.output()\n\
         tmr.create():alarm(50, tmr.ALARM_SINGLE, function() print('calls', calls) end)\n",
        &["--virtual-time", "--timeout", "5000"],
        Duration::from_secs(60),
    );
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(r.stdout, "calls\t1\n");
}

#[test]
fn a_pipe_reader_returning_nothing_is_not_reposted_while_data_is_left() {
    let r = run_bounded(
        "local n = 0\n\
         local p = pipe.create(function(p) n = n + 1 end)\n\
         p:write('x')\n\
         tmr.create():alarm(50, tmr.ALARM_SINGLE, function() print(n, p:nrec()) end)\n",
        &["--virtual-time", "--timeout", "5000"],
        Duration::from_secs(60),
    );
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(r.stdout, "1\t1\n");
}

#[test]
fn tmr_delay_refuses_what_does_not_fit_32_bits_and_stops_at_the_time_limit() {
    for time in [&[][..], &["--virtual-time"][..]] {
        let mut args = vec!["--timeout", "1500"];
        args.extend_from_slice(time);
        let r = run_bounded(
            "print(pcall(function() tmr.delay(2^31) end))\n\
             print('before')\n\
             tmr.delay(2^31 - 1)\n\
             print('after')\n",
            &args,
            Duration::from_secs(60),
        );
        assert_eq!(r.status, TIMEOUT_STATUS, "{r:?}");
        assert_eq!(
            r.stdout, "false\tinit.lua:1: bad argument #1 to 'delay' (wrong arg range)\nbefore\n",
            "{args:?}"
        );
    }
}

#[test]
fn the_watchdog_stops_a_sort_whose_comparisons_run_inside_one_call() {
    // Every comparison of the same 4 MB string runs through it: minutes of `strcmp` inside
    // Lua's sort with no comparator, where no instruction hook runs.
    let r = run_bounded(
        "local s = ('a'):rep(4e6) local t = {} for i = 1, 20000 do t[i] = s end\n\
         print('start')\n\
         print(pcall(table.sort, t))\n",
        &["--target", "host"],
        WATCHDOG_BOUND,
    );
    assert_eq!(r.status, WATCHDOG_STATUS, "{r:?}");
    assert_eq!(r.stdout, "start\n");
    assert!(r.stderr.contains("watchdog reset"), "{}", r.stderr);
}

#[test]
fn string_rep_of_nothing_ends_at_once_and_a_huge_one_fails_on_the_heap() {
    // Lua's C loop would spin through every one of the 2^31 - 1 copies of nothing.
    let r = run_bounded(
        "print(#string.rep('', 2^31 - 1))\n\
         print(pcall(string.rep, 'x', 2^31 - 1))\n\
         print(('ab'):rep(3), ('ab'):rep(0), ('ab'):rep(-2), string.rep(5, 2))\n",
        &["--timeout", "2000"],
        Duration::from_secs(60),
    );
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout, "0\nfalse\tnot enough memory\nababab\t\t\t55\n",
        "{}",
        r.stderr
    );
}

#[test]
fn sort_without_a_comparator_still_compares_as_lua_does() {
    let r = run_bounded(
        "local t = {5, 3, 1, 4, 2} table.sort(t) print(table.concat(t, ','))\n\
         t = {'b', 'a', 'c'} table.sort(t, nil) print(table.concat(t, ','))\n\
         local mt = {__lt = function(a, b) return a.v < b.v end}\n\
         t = {} for i = 1, 10 do t[i] = setmetatable({v = i * 7 % 10}, mt) end\n\
         table.sort(t) print(t[1].v, t[10].v)\n\
         print(pcall(table.sort, {1, {}}))\n\
         print(pcall(function() table.sort(nil) end))\n",
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "1,2,3,4,5\na,b,c\n0\t9\nfalse\tattempt to compare table with number\n\
         false\tinit.lua:7: bad argument #1 to 'sort' (table expected, got nil)\n",
        "{}",
        r.stderr
    );
}

#[cfg(feature = "lua53")]
#[test]
fn the_watchdog_stops_a_long_table_move_and_string_rep() {
    for call in ["table.move({}, 1, 2^50, 2)", "string.rep('', 2^53, '')"] {
        let r = run_bounded(
            &format!("print('start')\nprint(pcall(function() return {call} end))\n"),
            &[],
            WATCHDOG_BOUND,
        );
        if call.starts_with("string") {
            assert_eq!(r.stdout, "start\ntrue\t\n", "{call}: {r:?}");
            continue;
        }
        assert_eq!(r.status, WATCHDOG_STATUS, "{call}: {r:?}");
        assert_eq!(r.stdout, "start\n", "{call}");
        assert!(r.stderr.contains("watchdog reset"), "{call}: {}", r.stderr);
    }
    // Lua's order and checks are kept.
    let r = run_bounded(
        "local big = {} for i = 1, 100000 do big[i] = i end\n\
         table.move(big, 1, 99999, 2) print(big[1], big[2], big[100000], #big)\n\
         big = {} for i = 1, 100000 do big[i] = i end\n\
         table.move(big, 2, 100000, 1) print(big[1], big[99999], big[100000])\n\
         print(pcall(table.move, 5, 1, 70000, 2))\n\
         print(pcall(table.move, {}, 1, 70000, math.maxinteger))\n",
        &["--target", "host"],
        Duration::from_secs(60),
    );
    assert_eq!(
        r.stdout,
        "1\t1\t99999\t100000\n2\t100000\t100000\n\
         false\tbad argument #1 to 'table.move' (table expected, got number)\n\
         false\tbad argument #4 to 'table.move' (destination wrap around)\n",
        "{r:?}"
    );
}
