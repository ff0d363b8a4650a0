//! The reports on stdout, printed file by file as results come in (in file order).
//!
//! Human: a line per file (`PASS`/`FAIL`, tests, simulated and wall time), a line per test, each
//! problem as `file:line: message`, the device output of files that failed, and totals.
//! TAP version 13: a test point per test (`path: test name`), a YAML block per failure, the plan
//! at the end; a problem outside every test is a test point named after the file.

use std::io::Write;
use std::time::Duration;

use super::result::{FileResult, Problem, Status, TestCase, count, fmt_secs};
use crate::cli::FormatArg;

pub struct Printer {
    format: FormatArg,
    show_output: bool,
    tap_number: usize,
}

impl Printer {
    pub fn new(format: FormatArg, show_output: bool) -> Printer {
        if format == FormatArg::Tap {
            emit("TAP version 13\n");
        }
        Printer {
            format,
            show_output,
            tap_number: 0,
        }
    }

    pub fn file(&mut self, r: &FileResult) {
        let text = match self.format {
            FormatArg::Human => human_file(r, self.show_output),
            FormatArg::Tap => self.tap_file(r),
        };
        emit(&text);
    }

    pub fn finish(&mut self, all: &[FileResult], wall: Duration) {
        let text = match self.format {
            FormatArg::Human => human_totals(all, wall),
            FormatArg::Tap => format!("1..{}\n", self.tap_number),
        };
        emit(&text);
    }

    fn tap_file(&mut self, r: &FileResult) -> String {
        let mut s = String::new();
        let path = r.path.display().to_string();
        for t in &r.tests {
            self.tap_number += 1;
            let name = tap_escape(&format!("{path}: {}", t.name));
            match t.status {
                Status::Pass => s += &format!("ok {} - {name}\n", self.tap_number),
                Status::NotRun => {
                    s += &format!(
                        "ok {} - {name} # SKIP not run: the device stopped before this test began\n",
                        self.tap_number
                    )
                }
                st => s += &tap_failure(self.tap_number, &name, st, &t.problems),
            }
        }
        match &r.problem {
            Some((st, p)) => {
                self.tap_number += 1;
                s += &tap_failure(
                    self.tap_number,
                    &tap_escape(&path),
                    *st,
                    std::slice::from_ref(p),
                );
            }
            None if r.tests.is_empty() => {
                self.tap_number += 1;
                s += &format!("ok {} - {}\n", self.tap_number, tap_escape(&path));
            }
            None => {}
        }
        if self.show_output || !r.passed() {
            for line in output_lines(r) {
                s += &format!("# {line}\n");
            }
        }
        s
    }
}

fn emit(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// How totals name a status: `3 passed`, `1 timed out`.
fn counted(status: Status) -> &'static str {
    match status {
        Status::Pass => "passed",
        Status::NotRun => "not run",
        Status::Fail => "failed",
        Status::Error => "errored",
        Status::Timeout => "timed out",
        Status::Panic => "panicked",
        Status::Reset => "reset",
        Status::Crash => "crashed",
    }
}

fn times(r: &FileResult) -> String {
    match r.sim {
        Some(sim) => format!(
            "{} s simulated, {} ms",
            fmt_secs(sim.as_secs_f64()),
            r.wall.as_millis()
        ),
        None => format!("{} ms", r.wall.as_millis()),
    }
}

fn human_file(r: &FileResult, show_output: bool) -> String {
    let verdict = if r.passed() { "PASS" } else { "FAIL" };
    let what = if r.tests.is_empty() {
        "no NTest tests".to_string()
    } else {
        plural(r.tests.len(), "test", "tests")
    };
    let mut s = format!("{verdict} {} ({what}; {})\n", r.path.display(), times(r));
    for t in &r.tests {
        s += &human_test(t);
    }
    if let Some((st, p)) = &r.problem {
        s += &format!("  {:<8} (file)\n", st.word());
        s += &human_problem(p);
    }
    if show_output || !r.passed() {
        let lines = output_lines(r);
        if !lines.is_empty() {
            s += "  device output:\n";
            // A failing file's last lines say most; --show-output (or --junit) has them all.
            let skip = if show_output {
                0
            } else {
                lines.len().saturating_sub(FAILED_OUTPUT_LINES)
            };
            if skip > 0 {
                s += &format!("  | ... {skip} earlier lines (--show-output shows them)\n");
            }
            for l in &lines[skip..] {
                s += &format!("  | {l}\n");
            }
        }
    }
    s
}

/// How much of a failing file's device output the human report shows.
const FAILED_OUTPUT_LINES: usize = 100;

fn human_test(t: &TestCase) -> String {
    let checks = match t.checks {
        0 => String::new(),
        n => format!(" ({})", plural(n, "check", "checks")),
    };
    let mut s = format!("  {:<8} {}{checks}\n", t.status.word(), t.name);
    for p in &t.problems {
        s += &human_problem(p);
    }
    s
}

fn human_problem(p: &Problem) -> String {
    format!("             {}\n", p.summary())
}

/// The device's output, then the simulator's messages, as lines.
fn output_lines(r: &FileResult) -> Vec<String> {
    let out = String::from_utf8_lossy(&r.output);
    let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
    for d in &r.diag {
        lines.extend(d.lines().map(|l| format!("nodemcu-sim: {l}")));
    }
    lines
}

fn human_totals(all: &[FileResult], wall: Duration) -> String {
    let passed_files = all.iter().filter(|r| r.passed()).count();
    let ok = passed_files == all.len();
    let tests = count(all.iter().flat_map(|r| r.tests.iter().map(|t| t.status)));
    let n_tests: usize = tests.iter().map(|(_, n)| n).sum();
    let mut parts: Vec<String> = tests
        .iter()
        .map(|(st, n)| format!("{n} {}", counted(*st)))
        .collect();
    if parts.is_empty() {
        parts.push("0 passed".into());
    }
    format!(
        "\ntest result: {}. {}: {} passed, {} failed. {}: {}. {} s\n",
        if ok { "ok" } else { "FAILED" },
        plural(all.len(), "file", "files"),
        passed_files,
        all.len() - passed_files,
        plural(n_tests, "test", "tests"),
        parts.join(", "),
        fmt_secs(wall.as_secs_f64()),
    )
}

/// A `not ok` test point with a YAML block saying what went wrong.
fn tap_failure(n: usize, name: &str, st: Status, problems: &[Problem]) -> String {
    let message: Vec<String> = problems.iter().map(Problem::headline).collect();
    let mut s = format!(
        "not ok {n} - {name}\n  ---\n  severity: {}\n  message: {}\n",
        st.key(),
        yaml_quote(&message.join("\n"))
    );
    if let Some(at) = problems.iter().find_map(|p| p.at.as_ref()) {
        s += &format!("  at: {}\n", yaml_quote(at));
    }
    s += "  ...\n";
    s
}

/// A TAP description: `#` would start a directive, so it is escaped, and so is the escape.
fn tap_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('#', "\\#")
        .replace(['\n', '\r'], " ")
}

/// A YAML double-quoted scalar.
fn yaml_quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            '\r' => q.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => q.push_str(&format!("\\x{:02x}", c as u32)),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_descriptions_and_yaml_are_escaped() {
        assert_eq!(tap_escape("a # b\\c\nd"), "a \\# b\\\\c d");
        assert_eq!(
            yaml_quote("x \"y\"\n\t\u{1}\\"),
            "\"x \\\"y\\\"\\n\\t\\x01\\\\\""
        );
    }
}
