//! `nodemcu-sim test` and the test flags of `run` (issue 7): statuses, the human, TAP and JUnit
//! reports compared line by line, the built-in NTest against the firmware NTest's behaviour, a
//! framework shipped on the flash, virtual time over an hour of timers, and files that crash, hang
//! or reset without stopping the others.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{BIN, Flash, Ran, run_cmd};

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

const SUITE_HUMAN: &str = "\
FAIL fixtures/testrunner/suite/NTest_restart.lua (1 test; T)
  RESET    restarts the board
             the device reset: node.restart()
  device output:
FAIL fixtures/testrunner/suite/NTest_suite.lua (9 tests; T)
  ok       passes (2 checks)
  FAIL     fails a check
             NTest_suite.lua:11: sum: different numbers expected 4 vs. 5
  FAIL     fails a check without a message
             NTest_suite.lua:16: check failed
  ERROR    raises an error
             NTest_suite.lua:21: lua error
  ok       async passes (1 check)
  FAIL     async fails in a timer
             NTest_suite.lua:33: should have failed: Expected to fail with Error containing \"boom\"
  ERROR    async raises in a timer
             NTest_suite.lua:40: timer <error> & \"quotes\"
  ok       coroutine passes (1 check)
  FAIL     coroutine fails
             NTest_suite.lua:53: posted at HIGH: different numbers expected 1 vs. 2
  device output:
FAIL fixtures/testrunner/suite/NTest_timeout.lua (3 tests; T)
  ok       passes first (1 check)
  TIMEOUT  never finishes
             still running when the simulated time limit (5000 ms) was reached
  NOT RUN  never runs
  device output:
FAIL fixtures/testrunner/suite/broken_test.lua (no NTest tests; T)
  ERROR    (file)
             error in the main chunk: broken_test.lua:3: broken on purpose
  device output:
PASS fixtures/testrunner/suite/plain_test.lua (no NTest tests; T)

test result: FAILED. 5 files: 1 passed, 4 failed. 13 tests: 4 passed, 4 failed, 2 errored, 1 timed out, 1 reset, 1 not run. T
";

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

const SUITE_TAP: &str = "\
TAP version 13
not ok 1 - fixtures/testrunner/suite/NTest_restart.lua: restarts the board
  ---
  severity: reset
  message: \"the device reset: node.restart()\"
  ...
ok 2 - fixtures/testrunner/suite/NTest_suite.lua: passes
not ok 3 - fixtures/testrunner/suite/NTest_suite.lua: fails a check
  ---
  severity: fail
  message: \"NTest_suite.lua:11: sum: different numbers expected 4 vs. 5\"
  at: \"NTest_suite.lua:11\"
  ...
not ok 4 - fixtures/testrunner/suite/NTest_suite.lua: fails a check without a message
  ---
  severity: fail
  message: \"NTest_suite.lua:16: check failed\"
  at: \"NTest_suite.lua:16\"
  ...
not ok 5 - fixtures/testrunner/suite/NTest_suite.lua: raises an error
  ---
  severity: error
  message: \"NTest_suite.lua:21: lua error\"
  ...
ok 6 - fixtures/testrunner/suite/NTest_suite.lua: async passes
not ok 7 - fixtures/testrunner/suite/NTest_suite.lua: async fails in a timer
  ---
  severity: fail
  message: \"NTest_suite.lua:33: should have failed: Expected to fail with Error containing \\\"boom\\\"\"
  at: \"NTest_suite.lua:33\"
  ...
not ok 8 - fixtures/testrunner/suite/NTest_suite.lua: async raises in a timer
  ---
  severity: error
  message: \"NTest_suite.lua:40: timer <error> & \\\"quotes\\\"\"
  ...
ok 9 - fixtures/testrunner/suite/NTest_suite.lua: coroutine passes
not ok 10 - fixtures/testrunner/suite/NTest_suite.lua: coroutine fails
  ---
  severity: fail
  message: \"NTest_suite.lua:53: posted at HIGH: different numbers expected 1 vs. 2\"
  at: \"NTest_suite.lua:53\"
  ...
ok 11 - fixtures/testrunner/suite/NTest_timeout.lua: passes first
not ok 12 - fixtures/testrunner/suite/NTest_timeout.lua: never finishes
  ---
  severity: timeout
  message: \"still running when the simulated time limit (5000 ms) was reached\"
  ...
ok 13 - fixtures/testrunner/suite/NTest_timeout.lua: never runs # SKIP not run: the device stopped before this test began
not ok 14 - fixtures/testrunner/suite/broken_test.lua
  ---
  severity: error
  message: \"error in the main chunk: broken_test.lua:3: broken on purpose\"
  ...
ok 15 - fixtures/testrunner/suite/plain_test.lua
1..15
";

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
    let points: String = r
        .stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(points, SUITE_TAP, "{}", r.stdout);
    assert!(
        r.stdout.contains("\n# ######## started suite tests\n"),
        "{}",
        r.stdout
    );
}

const SUITE_JUNIT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nodemcu-sim test" tests="15" failures="4" errors="5" skipped="1" time="T">
  <testsuite name="fixtures/testrunner/suite/NTest_restart.lua" tests="1" failures="0" errors="1" skipped="0" time="T">
    <properties>
      <property name="simulated-time" value="T"/>
    </properties>
    <testcase name="restarts the board" classname="fixtures.testrunner.suite.NTest_restart" file="fixtures/testrunner/suite/NTest_restart.lua" time="T">
      <error message="the device reset: node.restart()" type="reset">the device reset: node.restart()</error>
    </testcase>
    <system-out>######## started restart tests
</system-out>
    <system-err></system-err>
  </testsuite>
  <testsuite name="fixtures/testrunner/suite/NTest_suite.lua" tests="9" failures="4" errors="2" skipped="0" time="T">
    <properties>
      <property name="simulated-time" value="T"/>
    </properties>
    <testcase name="passes" classname="fixtures.testrunner.suite.NTest_suite" file="fixtures/testrunner/suite/NTest_suite.lua" time="T"/>
    <testcase name="fails a check" classname="fixtures.testrunner.suite.NTest_suite" file="fixtures/testrunner/suite/NTest_suite.lua" time="T">
      <failure message="NTest_suite.lua:11: sum: different numbers expected 4 vs. 5" type="fail">NTest_suite.lua:11: sum: different numbers expected 4 vs. 5</failure>
    </testcase>
    <testcase name="fails a check without a message" classname="fixtures.testrunner.suite.NTest_suite" file="fixtures/testrunner/suite/NTest_suite.lua" time="T">
      <failure message="NTest_suite.lua:16: check failed" type="fail">NTest_suite.lua:16: check failed</failure>
    </testcase>
    <testcase name="raises an error" classname="fixtures.testrunner.suite.NTest_suite" file="fixtures/testrunner/suite/NTest_suite.lua" time="T">
      <error message="NTest_suite.lua:21: lua error" type="error">NTest_suite.lua:21: lua error</error>
    </testcase>
    <testcase name="async passes" classname="fixtures.testrunner.suite.NTest_suite" file="fixtures/testrunner/suite/NTest_suite.lua" time="T"/>
    <testcase name="async fails in a timer" classname="fixtures.testrunner.suite.NTest_suite" file="fixtures/testrunner/suite/NTest_suite.lua" time="T">
      <failure message="NTest_suite.lua:33: should have failed: Expected to fail with Error containing &quot;boom&quot;" type="fail">NTest_suite.lua:33: should have failed: Expected to fail with Error containing &quot;boom&quot;</failure>
    </testcase>
    <testcase name="async raises in a timer" classname="fixtures.testrunner.suite.NTest_suite" file="fixtures/testrunner/suite/NTest_suite.lua" time="T">
      <error message="NTest_suite.lua:40: timer &lt;error&gt; &amp; &quot;quotes&quot;" type="error">NTest_suite.lua:40: timer &lt;error&gt; &amp; &quot;quotes&quot;
    </testcase>
    <testcase name="coroutine passes" classname="fixtures.testrunner.suite.NTest_suite" file="fixtures/testrunner/suite/NTest_suite.lua" time="T"/>
    <testcase name="coroutine fails" classname="fixtures.testrunner.suite.NTest_suite" file="fixtures/testrunner/suite/NTest_suite.lua" time="T">
      <failure message="NTest_suite.lua:53: posted at HIGH: different numbers expected 1 vs. 2" type="fail">NTest_suite.lua:53: posted at HIGH: different numbers expected 1 vs. 2</failure>
    </testcase>
    <system-out>######## started suite tests
</system-out>
    <system-err></system-err>
  </testsuite>
  <testsuite name="fixtures/testrunner/suite/NTest_timeout.lua" tests="3" failures="0" errors="1" skipped="1" time="T">
    <properties>
      <property name="simulated-time" value="T"/>
    </properties>
    <testcase name="passes first" classname="fixtures.testrunner.suite.NTest_timeout" file="fixtures/testrunner/suite/NTest_timeout.lua" time="T"/>
    <testcase name="never finishes" classname="fixtures.testrunner.suite.NTest_timeout" file="fixtures/testrunner/suite/NTest_timeout.lua" time="T">
      <error message="still running when the simulated time limit (5000 ms) was reached" type="timeout">still running when the simulated time limit (5000 ms) was reached</error>
    </testcase>
    <testcase name="never runs" classname="fixtures.testrunner.suite.NTest_timeout" file="fixtures/testrunner/suite/NTest_timeout.lua" time="T">
      <skipped message="not run: the device stopped before this test began"/>
    </testcase>
    <system-out>######## started timeout tests
</system-out>
    <system-err></system-err>
  </testsuite>
  <testsuite name="fixtures/testrunner/suite/broken_test.lua" tests="1" failures="0" errors="1" skipped="0" time="T">
    <properties>
      <property name="simulated-time" value="T"/>
    </properties>
    <testcase name="fixtures/testrunner/suite/broken_test.lua" classname="fixtures.testrunner.suite.broken_test" file="fixtures/testrunner/suite/broken_test.lua" time="T">
      <error message="error in the main chunk: broken_test.lua:3: broken on purpose" type="error">error in the main chunk: broken_test.lua:3: broken on purpose
    </testcase>
    <system-out>before
</system-out>
    <system-err></system-err>
  </testsuite>
  <testsuite name="fixtures/testrunner/suite/plain_test.lua" tests="1" failures="0" errors="0" skipped="0" time="T">
    <properties>
      <property name="simulated-time" value="T"/>
    </properties>
    <testcase name="fixtures/testrunner/suite/plain_test.lua" classname="fixtures.testrunner.suite.plain_test" file="fixtures/testrunner/suite/plain_test.lua" time="T"/>
    <system-out>plain done at	0
</system-out>
    <system-err></system-err>
  </testsuite>
</testsuites>
"#;

/// Replaces the value of every `name="..."` attribute with `T`.
fn mask_attr(xml: &str, name: &str) -> String {
    let key = format!("{name}=\"");
    let mut out = String::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&key) {
        out.push_str(&rest[..i + key.len()]);
        rest = &rest[i + key.len()..];
        let end = rest.find('"').expect("closing quote");
        out.push('T');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Checks the document is well formed: every element closed in order, `&` only in the five
/// entities, no `<` in text. (Small on purpose: the report's markup is plain.)
fn assert_well_formed(xml: &str) {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .expect("XML declaration");
    let mut open: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(lt) = rest.find('<') {
        check_text(&rest[..lt]);
        let gt = rest[lt..].find('>').expect("tag closed") + lt;
        let tag = &rest[lt + 1..gt];
        check_text(
            tag.split_once(' ')
                .map_or("", |(_, attrs)| attrs)
                .replace('"', "")
                .as_str(),
        );
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop().as_deref(), Some(name), "mismatched </{name}>");
        } else if !tag.ends_with('/') {
            open.push(tag.split(' ').next().unwrap().to_string());
        }
        rest = &rest[gt + 1..];
    }
    assert!(open.is_empty(), "unclosed: {open:?}");

    fn check_text(t: &str) {
        for (i, _) in t.match_indices('&') {
            let ent = &t[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| ent.starts_with(e)),
                "bare & in {t:?}"
            );
        }
        assert!(!t.contains('<'), "< in text {t:?}");
    }
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
    // The sample project's tests are written as for the firmware's NTest (`local N = ...`).
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
         PASS fixtures/project/request_test.lua (no NTest tests; T)\n\
         \n\
         test result: ok. 3 files: 3 passed, 0 failed. 7 tests: 7 passed. T\n"
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
    let points: String = r
        .stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
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
         1..3\n",
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
