//! `nodemcu-sim run`'s checks on a plain script's output, for projects that test without a framework:
//! `--expect-output FILE` (exactly these bytes), `--expect-text TEXT` (contains), `--fail-text TEXT`
//! (must not contain). What is checked is the device's serial output: `print`, `uart.write`, and what
//! the firmware itself prints there (error tracebacks, the boot banner after a reset).
//!
//! A run that reaches `--timeout` normally ends with status 124; with `--expect-output` or
//! `--expect-text` it ends there and the expectations decide, so a script that runs forever (a blink
//! loop, a server) can be checked after a fixed stretch of device time.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use net_api::Sinks;

use crate::cli::RunArgs;

/// The exit status of a run whose output did not meet its expectations.
pub const EXIT_EXPECTATION: i32 = 7;

pub struct Expect {
    output: Option<(PathBuf, Vec<u8>)>,
    texts: Vec<String>,
    fail_texts: Vec<String>,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Expect {
    /// The checks the flags ask for, or `None` when there are none. Reads `--expect-output` up front,
    /// so a missing file is reported before the device boots.
    pub fn from_args(args: &RunArgs) -> Result<Option<Expect>, String> {
        if args.expect_output.is_none() && args.expect_text.is_empty() && args.fail_text.is_empty()
        {
            return Ok(None);
        }
        let output = match &args.expect_output {
            Some(p) => Some((
                p.clone(),
                std::fs::read(p).map_err(|e| format!("--expect-output {}: {e}", p.display()))?,
            )),
            None => None,
        };
        Ok(Some(Expect {
            output,
            texts: args.expect_text.clone(),
            fail_texts: args.fail_text.clone(),
            seen: Arc::default(),
        }))
    }

    /// Keeps a copy of everything the device writes to its UART, still passing it on.
    pub fn tee(&self, sinks: &mut Sinks) {
        let (inner, seen) = (sinks.uart.clone(), self.seen.clone());
        sinks.uart = Arc::new(move |b| {
            seen.lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(b);
            inner(b);
        });
    }

    /// True when reaching `--timeout` is how the run is meant to end: output is expected.
    pub fn timeout_is_the_end(&self) -> bool {
        self.output.is_some() || !self.texts.is_empty()
    }

    /// The run's exit status once the output is judged: a run that failed keeps its own status.
    pub fn judge(&self, status: i32) -> i32 {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let problems = self.problems(&seen);
        for p in &problems {
            eprintln!("nodemcu-sim: {p}");
        }
        match (status, problems.is_empty()) {
            (0, true) => 0,
            (0, false) => EXIT_EXPECTATION,
            (failed, _) => failed,
        }
    }

    fn problems(&self, seen: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(seen);
        let mut out = Vec::new();
        for t in &self.fail_texts {
            if text.contains(t.as_str()) {
                out.push(format!("output contains the --fail-text {t:?}"));
            }
        }
        for t in &self.texts {
            if !text.contains(t.as_str()) {
                out.push(format!("output does not contain the --expect-text {t:?}"));
            }
        }
        if let Some((path, want)) = &self.output
            && want != seen
        {
            out.push(format!(
                "output differs from {}: {}",
                path.display(),
                first_difference(want, seen)
            ));
        }
        out
    }
}

/// Where two outputs part, by line, in a form a person can act on.
fn first_difference(want: &[u8], got: &[u8]) -> String {
    let (w, g) = (
        String::from_utf8_lossy(want).into_owned(),
        String::from_utf8_lossy(got).into_owned(),
    );
    let (wl, gl): (Vec<&str>, Vec<&str>) = (w.split('\n').collect(), g.split('\n').collect());
    for i in 0..wl.len().max(gl.len()) {
        match (wl.get(i), gl.get(i)) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(a), Some(b)) => {
                return format!("line {}: expected {a:?}, got {b:?}", i + 1);
            }
            (Some(a), None) => return format!("line {}: expected {a:?}, got nothing", i + 1),
            (None, Some(b)) => return format!("line {}: unexpected {b:?}", i + 1),
            (None, None) => break,
        }
    }
    format!("{} bytes expected, {} printed", want.len(), got.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_located_by_line() {
        assert_eq!(
            first_difference(b"a\nb\n", b"a\nc\n"),
            "line 2: expected \"b\", got \"c\""
        );
        assert_eq!(
            first_difference(b"a\n", b"a\nmore\n"),
            "line 2: expected \"\", got \"more\""
        );
        assert_eq!(
            first_difference(b"a\nb", b"a\n"),
            "line 2: expected \"b\", got \"\""
        );
    }
}
