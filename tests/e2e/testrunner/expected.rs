//! What the suite under `fixtures/testrunner/suite` must report, in each format, and the helpers
//! that compare XML.

pub const SUITE_HUMAN: &str = "\
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

pub const SUITE_TAP: &str = "\
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

pub const SUITE_JUNIT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
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
pub fn mask_attr(xml: &str, name: &str) -> String {
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
pub fn assert_well_formed(xml: &str) {
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
