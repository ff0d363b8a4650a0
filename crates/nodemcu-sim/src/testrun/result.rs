//! What happened to one test file: its tests and their statuses, built from the child's record and
//! how the child process ended. Every report format (`report.rs`, `junit.rs`) reads this.
//!
//! A test's status comes from its NTest events. A file that stops abnormally (PANIC, reset, time-out,
//! crash) charges it to the test that was running, if any; tests still queued are "not run"; a
//! problem outside every test (an error in the main chunk, a reset after the last test) belongs to
//! the file itself.

use std::path::PathBuf;
use std::time::Duration;

use net_api::ntest::Event;

use super::record::{Ending, Line};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Pass,
    NotRun,
    Fail,
    Error,
    Timeout,
    Panic,
    Reset,
    Crash,
}

impl Status {
    /// The word the human report shows.
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "ok",
            Status::NotRun => "NOT RUN",
            Status::Fail => "FAIL",
            Status::Error => "ERROR",
            Status::Timeout => "TIMEOUT",
            Status::Panic => "PANIC",
            Status::Reset => "RESET",
            Status::Crash => "CRASH",
        }
    }

    /// Lower-case, for TAP's `severity` and JUnit's `type`.
    pub fn key(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::NotRun => "not-run",
            Status::Fail => "fail",
            Status::Error => "error",
            Status::Timeout => "timeout",
            Status::Panic => "panic",
            Status::Reset => "reset",
            Status::Crash => "crash",
        }
    }
}

/// One thing that went wrong: where (when known), what, and the rest (a traceback, a reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub at: Option<String>,
    pub message: String,
    pub detail: Option<String>,
    /// Lines after the message (a traceback), for the reports that have room.
    pub trace: Option<String>,
}

impl Problem {
    fn new(message: impl Into<String>) -> Problem {
        Problem {
            at: None,
            message: message.into(),
            detail: None,
            trace: None,
        }
    }

    /// One line: `file:line: message: detail`, without repeating a position the message starts with.
    pub fn headline(&self) -> String {
        let mut s = match &self.at {
            // A check without a message of its own: the firmware reports just the position.
            Some(at) if self.message == *at && self.detail.is_none() => {
                format!("{at}: check failed")
            }
            Some(at) if self.message == *at || self.message.starts_with(&format!("{at}:")) => {
                self.message.clone()
            }
            Some(at) => format!("{at}: {}", self.message),
            None => self.message.clone(),
        };
        if let Some(d) = &self.detail {
            s.push_str(": ");
            s.push_str(d);
        }
        s
    }

    /// The headline's first line, for one-line reports (tracebacks stay in the device output).
    pub fn summary(&self) -> String {
        self.headline().lines().next().unwrap_or("").to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Queued,
    Running,
    Done,
}

#[derive(Debug, Clone)]
pub struct TestCase {
    pub run: String,
    pub name: String,
    pub status: Status,
    /// Checks (`ok`, `nok`, `fail`) that passed.
    pub checks: usize,
    pub problems: Vec<Problem>,
    pub wall: Duration,
    pub sim: Duration,
    phase: Phase,
    began: (Duration, Duration),
}

impl TestCase {
    /// A test announced (or first heard of) at `began`, not run yet.
    fn queued(run: String, name: String, began: (Duration, Duration)) -> TestCase {
        TestCase {
            run,
            name,
            status: Status::NotRun,
            checks: 0,
            problems: Vec::new(),
            wall: Duration::ZERO,
            sim: Duration::ZERO,
            phase: Phase::Queued,
            began,
        }
    }
}

/// How the child process ended, from the runner's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The child wrote its record's end line.
    Recorded,
    /// The child ran past the wall-clock budget and was stopped.
    WallTimeout,
    /// The child died without recording an end (exit status or signal, and the tail of its stderr).
    Crashed(String),
}

#[derive(Debug, Clone)]
pub struct FileResult {
    /// The path as the report shows it.
    pub path: PathBuf,
    pub tests: Vec<TestCase>,
    /// A problem that belongs to no test, with the status it gives the file.
    pub problem: Option<(Status, Problem)>,
    /// The device's UART output.
    pub output: Vec<u8>,
    /// The simulator's messages, and anything the child printed outside the device.
    pub diag: Vec<String>,
    pub wall: Duration,
    /// Device time at the end (`None` when the child was stopped before it could say).
    pub sim: Option<Duration>,
}

impl FileResult {
    /// Builds the result from the record's lines and the way the child ended.
    pub fn build(
        path: PathBuf,
        lines: Vec<Line>,
        exit: Exit,
        limits: (u64, f64),
        wall: Duration,
    ) -> FileResult {
        let mut r = FileResult {
            path,
            tests: Vec::new(),
            problem: None,
            output: Vec::new(),
            diag: Vec::new(),
            wall,
            sim: None,
        };
        let mut ending = None;
        for line in lines {
            match line {
                Line::Out(b) => r.output.extend_from_slice(&b),
                Line::Diag(d) => r.diag.push(d),
                Line::Event { sim, wall, ev } => r.event(sim, wall, ev),
                Line::End { sim, ending: e } => {
                    r.sim = Some(sim);
                    ending = Some(e);
                }
            }
        }
        if r.tests.is_empty() {
            // No events: the flash has its own NTest.lua; read its terminal output back.
            for ev in terminal_events(&String::from_utf8_lossy(&r.output)) {
                r.event(Duration::ZERO, Duration::ZERO, ev);
            }
        }
        let (status, problem) = match (exit, ending) {
            (Exit::WallTimeout, _) => (
                Status::Timeout,
                Problem::new(format!(
                    "still running when the wall-clock limit ({} s) was reached; stopped",
                    fmt_secs(limits.1)
                )),
            ),
            (Exit::Crashed(why), _) => (
                Status::Crash,
                Problem {
                    detail: Some(why).filter(|w| !w.is_empty()),
                    ..Problem::new("the simulator stopped without finishing the file")
                },
            ),
            (Exit::Recorded, None) => (
                Status::Crash,
                Problem::new("the record of the run has no end"),
            ),
            (Exit::Recorded, Some(Ending::Finished)) => {
                r.finish_idle();
                return r;
            }
            (Exit::Recorded, Some(Ending::TimedOut)) => (
                Status::Timeout,
                Problem::new(format!(
                    "still running when the simulated time limit ({} ms) was reached",
                    limits.0
                )),
            ),
            (Exit::Recorded, Some(Ending::MainError(m))) => {
                let mut lines = m.splitn(2, '\n');
                let first = lines.next().unwrap_or("").to_string();
                (
                    Status::Error,
                    Problem {
                        trace: lines.next().map(str::to_string),
                        ..Problem::new(format!("error in the main chunk: {first}"))
                    },
                )
            }
            (Exit::Recorded, Some(Ending::Reset(cause, describe))) => {
                let panic = r
                    .diag
                    .iter()
                    .rev()
                    .find(|d| d.starts_with("PANIC:"))
                    .cloned();
                match (cause.as_str(), panic) {
                    ("Panic", Some(p)) => (Status::Panic, Problem::new(p)),
                    ("Panic", None) => (Status::Panic, Problem::new(describe)),
                    _ => (
                        Status::Reset,
                        Problem::new(format!("the device reset: {describe}")),
                    ),
                }
            }
        };
        r.stop_abnormally(status, problem);
        r
    }

    fn event(&mut self, sim: Duration, wall: Duration, ev: Event) {
        let kind = ev.kind.as_str();
        if kind == "queue" {
            self.tests
                .push(TestCase::queued(ev.run, ev.test, (sim, wall)));
            return;
        }
        if matches!(kind, "start" | "finish") {
            return;
        }
        // The test the event names: the running one by that name, else the last one (a stray
        // callback's failure arrives after its test ended).
        let idx = match kind {
            "begin" => self
                .tests
                .iter()
                .position(|t| t.phase == Phase::Queued && t.name == ev.test && t.run == ev.run),
            _ => self
                .tests
                .iter()
                .rposition(|t| t.phase == Phase::Running && t.name == ev.test)
                .or_else(|| self.tests.iter().rposition(|t| t.name == ev.test)),
        };
        let idx = idx.unwrap_or_else(|| {
            let t = TestCase::queued(ev.run.clone(), ev.test.clone(), (sim, wall));
            self.tests.push(t);
            self.tests.len() - 1
        });
        let t = &mut self.tests[idx];
        match kind {
            "begin" => {
                t.phase = Phase::Running;
                t.began = (sim, wall);
            }
            "pass" => t.checks += 1,
            "fail" => {
                t.problems.push(Problem {
                    at: ev.at,
                    detail: ev.errmsg,
                    ..Problem::new(ev.msg.unwrap_or_default())
                });
                t.status = t.status.max(Status::Fail);
            }
            "except" => {
                let msg = ev.msg.unwrap_or_default();
                let mut parts = msg.splitn(2, '\n');
                let first = parts.next().unwrap_or("");
                t.problems.push(Problem {
                    trace: parts.next().map(str::to_string),
                    ..Problem::new(first)
                });
                t.status = t.status.max(Status::Error);
            }
            "end" => {
                t.phase = Phase::Done;
                t.sim = sim.saturating_sub(t.began.0);
                t.wall = wall.saturating_sub(t.began.1);
                if t.problems.is_empty() {
                    t.status = Status::Pass;
                }
            }
            _ => {}
        }
    }

    /// The device had nothing left to run: a test still running can never end.
    fn finish_idle(&mut self) {
        for t in self.tests.iter_mut().filter(|t| t.phase == Phase::Running) {
            t.problems.push(Problem::new(
                "the test never ended: nothing was left to run (done() never called, or the callback it waits for never came)",
            ));
            t.status = t.status.max(Status::Error);
        }
    }

    /// Charges an abnormal stop to the running test, or to the file.
    fn stop_abnormally(&mut self, status: Status, problem: Problem) {
        match self.tests.iter_mut().find(|t| t.phase == Phase::Running) {
            Some(t) => {
                t.problems.push(problem);
                t.status = t.status.max(status);
            }
            None => self.problem = Some((status, problem)),
        }
    }

    pub fn passed(&self) -> bool {
        self.problem.is_none() && self.tests.iter().all(|t| t.status == Status::Pass)
    }
}

/// The events behind the firmware NTest's terminal output (`######## started`, `begin`, `  pass`,
/// ` ==>  fail`, ` ==>  except`, `end`), for a framework the simulator cannot observe directly.
/// Lines outside a run are the test file's own output and are left alone.
fn terminal_events(output: &str) -> Vec<Event> {
    let mut events = Vec::new();
    let mut run: Option<String> = None;
    let mut current: Option<String> = None;
    let mut known: Vec<String> = Vec::new();
    let event = |run: &str, kind: &str, test: &str, msg: Option<&str>| Event {
        run: run.to_string(),
        kind: kind.to_string(),
        test: test.to_string(),
        msg: msg.map(str::to_string),
        errmsg: None,
        at: None,
    };
    for line in output.lines() {
        if let Some(name) = line
            .strip_prefix("######## started ")
            .and_then(|r| r.strip_suffix(" tests"))
        {
            run = Some(name.to_string());
            continue;
        }
        let Some(r) = run.as_deref() else { continue };
        if line.starts_with("######## finished ") {
            run = None;
        } else if let Some(t) = line.strip_prefix("begin ") {
            events.push(event(r, "queue", t, None));
            events.push(event(r, "begin", t, None));
            known.push(t.to_string());
            current = Some(t.to_string());
        } else if let Some(t) = line.strip_prefix("end ")
            && current.as_deref() == Some(t)
        {
            events.push(event(r, "end", t, None));
            current = None;
        } else if let Some((kind, rest)) = [
            ("pass", "  pass "),
            ("fail", " ==>  fail "),
            ("except", " ==>  except "),
        ]
        .iter()
        .find_map(|(k, p)| line.strip_prefix(p).map(|rest| (*k, rest)))
        {
            // "<test>: <message>": the running test's name first, then any other test seen.
            let name = current
                .iter()
                .chain(known.iter().rev())
                .find(|t| rest.starts_with(&format!("{t}: ")))
                .cloned()
                .or_else(|| rest.split_once(": ").map(|(t, _)| t.to_string()));
            if let Some(t) = name {
                let msg = &rest[t.len() + 2..];
                let mut ev = event(r, kind, &t, Some(msg));
                // A check without a message of its own is reported as just its position.
                if kind == "fail" && is_position(msg) {
                    ev.at = Some(msg.to_string());
                }
                events.push(ev);
            }
        }
    }
    events
}

/// `name.lua:12`.
fn is_position(s: &str) -> bool {
    s.rsplit_once(':').is_some_and(|(file, line)| {
        !file.is_empty()
            && !file.contains(' ')
            && !line.is_empty()
            && line.bytes().all(|b| b.is_ascii_digit())
    })
}

pub fn count(statuses: impl Iterator<Item = Status>) -> Vec<(Status, usize)> {
    let mut v: Vec<(Status, usize)> = Vec::new();
    for s in statuses {
        match v.iter_mut().find(|(k, _)| *k == s) {
            Some((_, n)) => *n += 1,
            None => v.push((s, 1)),
        }
    }
    // Passed first, not run last, problems in between.
    v.sort_by_key(|(s, _)| {
        if *s == Status::NotRun {
            Status::Crash as u8 + 1
        } else {
            *s as u8
        }
    });
    v
}

/// Seconds with up to three decimals and no trailing zeros: `60`, `0.5`, `3600.25`.
pub fn fmt_secs(s: f64) -> String {
    let t = format!("{s:.3}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}
