//! `nodemcu-sim test` and the test flags of `run`: statuses, the human, TAP and JUnit
//! reports compared line by line, the built-in NTest against the firmware NTest's behaviour, a
//! framework shipped on the flash, virtual time over an hour of timers, and files that crash, hang
//! or reset without stopping the others.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{BIN, Flash, Ran, run_cmd};

mod expected;
use expected::{SUITE_HUMAN, SUITE_JUNIT, SUITE_TAP, assert_well_formed, mask_attr};

/// The workspace root, where `fixtures/` is; reports name files relative to the current directory.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `nodemcu-sim <args>` from the workspace root.
fn sim(args: &[&str]) -> Ran {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(root());
    run_cmd(cmd, Duration::from_secs(120))
}

/// A human report with its times (which vary from run to run) replaced by `T`.
fn mask_times(report: &str) -> String {
    let mut out = String::new();
    for line in report.lines() {
        let masked =
            if (line.starts_with("PASS ") || line.starts_with("FAIL ")) && line.ends_with(')') {
                match line.rfind("; ") {
                    Some(i) => format!("{}; T)", &line[..i]),
                    None => line.to_string(),
                }
            } else if line.starts_with("test result: ") {
                match line.rfind(". ") {
                    Some(i) => format!("{}. T", &line[..i]),
                    None => line.to_string(),
                }
            } else {
                line.to_string()
            };
        out.push_str(&masked);
        out.push('\n');
    }
    out
}

/// The lines of a report that are not device output (`  | ...` in the human report).
fn without_device_output(report: &str) -> String {
    report
        .lines()
        .filter(|l| !l.starts_with("  | "))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn suite_reports_every_status_with_file_and_line() {
    let r = sim(&["test", "fixtures/testrunner/suite", "--timeout", "5000"]);
    assert_eq!(r.status, 1, "{r:?}");
    assert_eq!(
        without_device_output(&mask_times(&r.stdout)),
        SUITE_HUMAN,
        "{}",
        r.stdout
    );
    // Failing files show what the device printed, the firmware NTest's terminal format included.
    for line in [
        "  | ######## started suite tests",
        "  |  ==>  fail fails a check: sum: different numbers expected 4 vs. 5",
        "  |  ==>  except raises an error: NTest_suite.lua:21: lua error",
        "  | ######## finished suite tests",
        "  | before",
    ] {
        assert!(
            r.stdout.lines().any(|l| l == line),
            "{line:?} missing:\n{}",
            r.stdout
        );
    }
    // A passing file's output is not shown unless asked for.
    assert!(!r.stdout.contains("plain done at"), "{}", r.stdout);
    let shown = sim(&[
        "test",
        "fixtures/testrunner/suite/plain_test.lua",
        "--show-output",
    ]);
    assert!(
        shown.stdout.contains("  | plain done at\t0\n"),
        "{}",
        shown.stdout
    );
}

#[test]
fn suite_as_tap_version_13() {
    let r = sim(&[
        "test",
        "fixtures/testrunner/suite",
        "--timeout",
        "5000",
        "--format",
        "tap",
    ]);
    assert_eq!(r.status, 1, "{r:?}");
    // Device output of failing files comes as TAP comments; everything else is compared exactly.
    let points = tap_points(&r.stdout);
    assert_eq!(points, SUITE_TAP, "{}", r.stdout);
    assert!(
        r.stdout.contains("\n# ######## started suite tests\n"),
        "{}",
        r.stdout
    );
}

#[test]
fn suite_as_junit_xml() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("junit.xml");
    let r = sim(&[
        "test",
        "fixtures/testrunner/suite",
        "--timeout",
        "5000",
        "--junit",
        report.to_str().unwrap(),
    ]);
    assert_eq!(r.status, 1, "{r:?}");
    let xml = std::fs::read_to_string(&report).unwrap();
    assert_well_formed(&xml);
    // Markup lines are compared exactly; the text inside (tracebacks, device output) is not.
    let masked = mask_attr(&mask_attr(&xml, "time"), "value");
    let markup: String = masked
        .lines()
        .filter(|l| l.trim_start().starts_with('<'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(markup, SUITE_JUNIT, "{xml}");
    // The error's text keeps the traceback; device output and exceptions are in the suite's text.
    assert!(
        xml.contains("timer &lt;error&gt; &amp; &quot;quotes&quot;\nstack traceback:\n"),
        "{xml}"
    );
    assert!(xml.contains(" ==&gt;  fail fails a check: sum:"), "{xml}");
}

#[test]
fn an_hour_of_timers_takes_well_under_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("junit.xml");
    let r = sim(&[
        "test",
        "fixtures/testrunner/hour",
        "--junit",
        report.to_str().unwrap(),
    ]);
    assert_eq!(r.status, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("  ok       3600 ticks and the hour alarm, in order (2 checks)\n"),
        "{}",
        r.stdout
    );
    let xml = std::fs::read_to_string(&report).unwrap();
    // The simulated hour, as the report gives it.
    let attr = |prefix: &str| -> f64 {
        let i = xml.find(prefix).expect(prefix) + prefix.len();
        xml[i..i + xml[i..].find('"').unwrap()].parse().unwrap()
    };
    // The file's own wall time (its testsuite element), without the runner's start-up.
    let suite_line = xml
        .lines()
        .find(|l| l.contains("<testsuite name="))
        .expect("a testsuite");
    let t = suite_line.rfind("time=\"").unwrap() + 6;
    let wall: f64 = suite_line[t..t + suite_line[t..].find('"').unwrap()]
        .parse()
        .unwrap();
    assert!(wall < 1.0, "an hour of timers took {wall} s of wall time");
    assert!(attr("name=\"simulated-time\" value=\"") >= 3600.0, "{xml}");
    assert!(r.elapsed < Duration::from_secs(20), "{:?}", r.elapsed);
}

#[test]
fn firmware_style_test_files_run_unmodified() {
    // The sample project's tests are written as for the firmware's NTest (`local N = ...`); one of
    // them starts the project's web server and fetches its page over TCP from the same device.
    let r = sim(&["test", "fixtures/project"]);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        mask_times(&r.stdout),
        "PASS fixtures/project/NTest_page.lua (2 tests; T)\n\
         \x20 ok       escapes what HTML would read as markup (2 checks)\n\
         \x20 ok       renders readings and their average (4 checks)\n\
         PASS fixtures/project/NTest_sensorlog.lua (5 tests; T)\n\
         \x20 ok       keeps the last readings and averages them (4 checks)\n\
         \x20 ok       refuses readings that are not numbers (2 checks)\n\
         \x20 ok       samples on a timer (2 checks)\n\
         \x20 ok       an hour of samples takes no time with virtual time (3 checks)\n\
         \x20 ok       samples, step by step (4 checks)\n\
         PASS fixtures/project/NTest_webserver.lua (1 test; T)\n\
         \x20 ok       serves the sensor page (8 checks)\n\
         PASS fixtures/project/request_test.lua (no NTest tests; T)\n\
         \n\
         test result: ok. 4 files: 4 passed, 0 failed. 8 tests: 8 passed. T\n"
    );
    // Under `run`, the built-in NTest prints the firmware's terminal format, line for line.
    let run = sim(&["run", "fixtures/project/NTest_page.lua"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "######## started page tests\n\
         begin escapes what HTML would read as markup\n\
         \x20 pass escapes what HTML would read as markup: NTest_page.lua:7\n\
         \x20 pass escapes what HTML would read as markup: numbers become text\n\
         end escapes what HTML would read as markup\n\
         begin renders readings and their average\n\
         \x20 pass renders readings and their average: title escaped\n\
         \x20 pass renders readings and their average: readings listed\n\
         \x20 pass renders readings and their average: average shown\n\
         \x20 pass renders readings and their average: no readings yet\n\
         end renders readings and their average\n\
         ######## finished page tests\n"
    );
}

/// The firmware NTest's self-test checks, in a file of our own: messages, positions, eq, spy, fail,
/// and an output handler set through `N.outputhandler`.
const NTEST_BEHAVIOUR: &str = r#"local N = ...
N = (N or require "NTest")("behaviour")
local seen = {}
N.outputhandler = function(e, test, msg, err)
  seen[#seen + 1] = table.concat({ e, test, tostring(msg), tostring(err) }, "|")
end
N.test("t1", function()
  ok(1 == 1)
  nok(eq({ a = 1 }, { a = 2 }), "tables differ")
end)
N.test("t2", function()
  fail(function() error("my error") end, "different error")
end)
N.test("t3", function()
  local f = spy(function(a, b) return a + b end)
  ok(eq(f(1, 2), 3), "spy returns")
  f("x")
  ok(eq(#f.called, 2) and f.errors[2] ~= nil and f.errors[1] == nil, "spy records")
  ok(eq(eq(1, "1").msg, "type 1 is number, type 2 is string"), "type message")
  ok(eq(eq({ 1 }, { 2 }).msg, "different numbers expected 1 vs. 2"), "value message")
  ok(eq(eq({ a = 1 }, {}).msg, "key aonly contained in left part"), "key message")
  ok(eq(function() end, function() end), "functions by code")
end)
N.testasync("t4", function(done)
  tmr.create():alarm(5, tmr.ALARM_SINGLE, function() error("in timer") end)
end)
N.testco("t5", function(getCB, waitCB)
  node.task.post(node.task.MEDIUM_PRIORITY, getCB("cb"))
  local name, prio = waitCB()
  ok(eq({ name, prio }, { "cb", 1 }), "resumed")
  error("co error")
end)
N.test("report", function()
  for _, s in ipairs(seen) do print((s:gsub("\n.*", ""))) end
end)
"#;

#[test]
fn built_in_ntest_messages_positions_and_handlers_match_the_firmwares() {
    let flash = Flash::new(&[("NTest_behaviour.lua", NTEST_BEHAVIOUR)]);
    let r = flash.run("NTest_behaviour.lua", &[]);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "start|behaviour|nil|nil\n\
         begin|t1|nil|nil\n\
         pass|t1|NTest_behaviour.lua:8|nil\n\
         pass|t1|tables differ|nil\n\
         end|t1|nil|nil\n\
         begin|t2|nil|nil\n\
         fail|t2|NTest_behaviour.lua:12|expected errormessage \"NTest_behaviour.lua:12: my error\" to contain \"different error\"\n\
         end|t2|nil|nil\n\
         begin|t3|nil|nil\n\
         pass|t3|spy returns|nil\n\
         pass|t3|spy records|nil\n\
         pass|t3|type message|nil\n\
         pass|t3|value message|nil\n\
         pass|t3|key message|nil\n\
         pass|t3|functions by code|nil\n\
         end|t3|nil|nil\n\
         begin|t4|nil|nil\n\
         except|t4|NTest_behaviour.lua:25: in timer\n\
         end|t4|nil|nil\n\
         begin|t5|nil|nil\n\
         pass|t5|resumed|nil\n\
         except|t5|NTest_behaviour.lua:31: co error|nil\n\
         end|t5|nil|nil\n\
         begin|report|nil|nil\n"
    );
    // The asynchronous exception arrives through node.setonerror with its traceback.
    let with_trace = flash.run("NTest_behaviour.lua", &["--virtual-time"]);
    assert_eq!(with_trace.stdout, r.stdout);
}

#[test]
fn built_in_ntest_costs_no_device_heap_and_a_flash_ntest_wins() {
    let r = crate::support::run_lua(
        "collectgarbage() local before = node.heap()\n\
         local N = require 'NTest'\n\
         collectgarbage() print(type(N), node.heap() >= before - 512)\n",
        &[],
    );
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (0, "function\ttrue\n"),
        "{r:?}"
    );
    let own = Flash::new(&[
        (
            "NTest.lua",
            "return function(name) print('own NTest for ' .. name) return {} end",
        ),
        ("init.lua", "local N = require 'NTest' ('x')\n"),
    ]);
    assert_eq!(own.run("init.lua", &[]).stdout, "own NTest for x\n");
}

#[test]
fn names_a_flash_ntest_relies_on_exist_on_both_lua_builds() {
    // The firmware's 5.3 build keeps these 5.1 names (docs/lua53.md); NTest's spy calls unpack.
    let r = crate::support::run_lua(
        "print(type(unpack), type(loadstring), package.loaders == package.searchers or package.searchers == nil)\n\
         print(loadstring('return 3')(), unpack({ 1, 2 }))\n",
        &[],
    );
    assert_eq!(r.stdout, "function\tfunction\ttrue\n3\t1\t2\n", "{r:?}");
}

#[test]
fn a_framework_shipped_on_the_flash_is_used_and_its_results_read_back() {
    let r = sim(&["test", "fixtures/testrunner/own-ntest"]);
    assert_eq!(r.status, 1, "{r:?}");
    assert_eq!(
        without_device_output(&mask_times(&r.stdout)),
        "FAIL fixtures/testrunner/own-ntest/NTest_own.lua (5 tests; T)\n\
         \x20 FAIL     sync checks and a check without a message (4 checks)\n\
         \x20            NTest_own.lua:9: check failed\n\
         \x20 ERROR    an error in a timer callback reaches node.setonerror\n\
         \x20            NTest_own.lua:14: timer went wrong (with traceback)\n\
         \x20 ok       a coroutine resumed by timers and tasks (2 checks)\n\
         \x20 ok       posted tasks run by priority\n\
         \x20 ok       a task queued before this test ran first (1 check)\n\
         \x20 device output:\n\
         \n\
         test result: FAILED. 1 file: 0 passed, 1 failed. 5 tests: 3 passed, 1 failed, 1 errored. T\n"
    );
}

#[test]
fn a_file_that_ends_the_process_is_a_crash_and_the_others_still_run() {
    let r = sim(&[
        "test",
        "fixtures/testrunner/crash",
        "--target",
        "host",
        "-j",
        "1",
    ]);
    assert_eq!(r.status, 1, "{r:?}");
    assert_eq!(
        without_device_output(&mask_times(&r.stdout)),
        "FAIL fixtures/testrunner/crash/NTest_exit.lua (1 test; T)\n\
         \x20 CRASH    leaves the process\n\
         \x20            the simulator stopped without finishing the file: exit status: 3\n\
         \x20 device output:\n\
         PASS fixtures/testrunner/crash/NTest_fine.lua (1 test; T)\n\
         \x20 ok       passes (1 check)\n\
         \n\
         test result: FAILED. 2 files: 1 passed, 1 failed. 2 tests: 1 passed, 1 crashed. T\n"
    );
}

#[test]
fn a_panic_in_a_net_callback_is_reported_as_such_and_the_other_files_run() {
    // -j 1: one file after the other, in name order, so the other file starts after the panic.
    let r = sim(&[
        "test",
        "fixtures/testrunner/panic",
        "-j",
        "1",
        "--format",
        "tap",
    ]);
    assert_eq!(r.status, 1, "{r:?}");
    let points = tap_points(&r.stdout);
    assert_eq!(
        points,
        "TAP version 13\n\
         not ok 1 - fixtures/testrunner/panic/NTest_panic.lua: a receive callback raises\n\
         \x20 ---\n\
         \x20 severity: panic\n\
         \x20 message: \"PANIC: unprotected error in call to Lua API (NTest_panic.lua:10: handler bug on boom)\"\n\
         \x20 ...\n\
         ok 2 - fixtures/testrunner/panic/NTest_panic.lua: never runs on the ESP8266 # SKIP not run: the device stopped before this test began\n\
         ok 3 - fixtures/testrunner/panic/NTest_still_running.lua: passes\n\
         not ok 4 - fixtures/testrunner/panic/NTest_tcp_panic.lua: a server's receive callback raises\n\
         \x20 ---\n\
         \x20 severity: panic\n\
         \x20 message: \"PANIC: unprotected error in call to Lua API (NTest_tcp_panic.lua:8: handler bug on GET / HTTP/1.1\\r\\n\\r\\n)\"\n\
         \x20 ...\n\
         1..4\n",
        "{}",
        r.stdout
    );
    // The ESP32 protects net callbacks: the same error is an exception, and the next test runs.
    let esp32 = sim(&[
        "test",
        "fixtures/testrunner/panic/NTest_panic.lua",
        "--target",
        "esp32",
    ]);
    assert_eq!(esp32.status, 1, "{esp32:?}");
    assert!(
        without_device_output(&mask_times(&esp32.stdout)).starts_with(
            "FAIL fixtures/testrunner/panic/NTest_panic.lua (2 tests; T)\n\
             \x20 ERROR    a receive callback raises\n\
             \x20            NTest_panic.lua:10: handler bug on boom\n\
             \x20 ok       never runs on the ESP8266 (1 check)\n"
        ),
        "{}",
        esp32.stdout
    );
}

#[test]
fn a_file_past_its_wall_clock_budget_is_stopped_and_the_run_goes_on() {
    let r = sim(&[
        "test",
        "fixtures/testrunner/suite/NTest_timeout.lua",
        "fixtures/testrunner/suite/plain_test.lua",
        "--real-time",
        "--wall-timeout",
        "1",
    ]);
    assert_eq!(r.status, 1, "{r:?}");
    let out = without_device_output(&mask_times(&r.stdout));
    assert!(
        out.starts_with(
            "FAIL fixtures/testrunner/suite/NTest_timeout.lua (3 tests; T)\n\
             \x20 ok       passes first (1 check)\n\
             \x20 TIMEOUT  never finishes\n\
             \x20            still running when the wall-clock limit (1 s) was reached; stopped\n\
             \x20 NOT RUN  never runs\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("PASS fixtures/testrunner/suite/plain_test.lua"),
        "{out}"
    );
    assert!(r.elapsed < Duration::from_secs(30), "{:?}", r.elapsed);
}

#[test]
fn usage_errors_have_status_2() {
    let empty = tempfile::tempdir().unwrap();
    let none = sim(&["test", empty.path().to_str().unwrap()]);
    assert_eq!(none.status, 2, "{none:?}");
    assert!(
        none.stderr
            .contains("no test files (NTest_*.lua, *_test.lua) found"),
        "{none:?}"
    );
    let missing = sim(&["test", "fixtures/no-such-dir"]);
    assert_eq!(missing.status, 2, "{missing:?}");
    let flash = sim(&["test", "fixtures/project", "--flash", "fixtures"]);
    assert_eq!(flash.status, 2, "{flash:?}");
}

#[test]
fn run_checks_plain_script_output() {
    let flash = Flash::new(&[
        (
            "blink.lua",
            "local n = 0\ntmr.create():alarm(1000, tmr.ALARM_AUTO, function() n = n + 1 print('blink', n) end)\n",
        ),
        ("once.lua", "print('hello')\nprint('world')\n"),
        ("want.txt", "hello\nworld\n"),
        ("wrong.txt", "hello\nthere\n"),
    ]);
    let want = flash.file("want.txt");
    let wrong = flash.file("wrong.txt");
    let ok = flash.run("once.lua", &["--expect-output", want.to_str().unwrap()]);
    assert_eq!(ok.status, 0, "{ok:?}");
    let bad = flash.run("once.lua", &["--expect-output", wrong.to_str().unwrap()]);
    assert_eq!(bad.status, 7, "{bad:?}");
    assert!(
        bad.stderr
            .contains("line 2: expected \"there\", got \"world\""),
        "{}",
        bad.stderr
    );
    let texts = flash.run(
        "once.lua",
        &["--expect-text", "world", "--fail-text", "error"],
    );
    assert_eq!(texts.status, 0, "{texts:?}");
    let failed = flash.run("once.lua", &["--fail-text", "hello"]);
    assert_eq!(failed.status, 7, "{failed:?}");
    assert!(
        failed.stderr.contains("--fail-text \"hello\""),
        "{}",
        failed.stderr
    );
    // A script that runs forever: --timeout ends it; with expected text that decides, else 124.
    let args = ["--virtual-time", "--timeout", "10500"];
    let blink = flash.run(
        "blink.lua",
        &[&args[..], &["--expect-text", "blink\t10\n"]].concat(),
    );
    assert_eq!(blink.status, 0, "{blink:?}");
    assert!(blink.stdout.ends_with("blink\t10\n"), "{}", blink.stdout);
    let short = flash.run(
        "blink.lua",
        &[&args[..], &["--expect-text", "blink\t11\n"]].concat(),
    );
    assert_eq!(short.status, 7, "{short:?}");
    let plain = flash.run("blink.lua", &args);
    assert_eq!(plain.status, 124, "{plain:?}");
}

/// A TAP report without its comment lines (device output of failing files): the test points.
fn tap_points(stdout: &str) -> String {
    stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}
