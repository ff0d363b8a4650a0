//! The record a test file's child process leaves for the runner: one line per thing that happened
//! (device output, a simulator message, an NTest event, how the run ended), appended to a file as it
//! happens. A file survives what a pipe would not: a child killed at its wall-clock limit still
//! leaves everything it recorded up to then, and nothing the script writes to the real stdout (the
//! `host` profile has `io`) can get mixed into it.
//!
//! Format: tab-separated fields; `\`, tab, newline and carriage return escaped with a backslash;
//! optional fields are `-` (nil) or `+` followed by the text.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use net_api::Outcome;
use net_api::ntest::Event;

/// One line of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Bytes the device wrote to its UART.
    Out(Vec<u8>),
    /// A message from the simulator itself (warnings, PANIC, resets).
    Diag(String),
    /// An NTest event, at a device time and a wall time since boot.
    Event {
        sim: Duration,
        wall: Duration,
        ev: Event,
    },
    /// How the run ended, at a device time.
    End { sim: Duration, ending: Ending },
}

/// How a child's device run ended, as the record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Finished,
    MainError(String),
    /// The reset cause's name (`Panic`, `Error`, `Watchdog`, ...) and its description.
    Reset(String, String),
    TimedOut,
}

impl Ending {
    pub fn from_outcome(o: &Outcome) -> Ending {
        match o {
            Outcome::Finished => Ending::Finished,
            Outcome::MainError(m) => Ending::MainError(m.clone()),
            Outcome::Reset(c) => Ending::Reset(format!("{c:?}"), c.describe().to_string()),
            Outcome::TimedOut => Ending::TimedOut,
        }
    }
}

fn escape(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut it = field.iter();
    while let Some(&b) = it.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match it.next() {
            Some(b't') => out.push(b'\t'),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(&other) => out.push(other),
            None => {}
        }
    }
    out
}

fn text(field: &[u8]) -> String {
    String::from_utf8_lossy(&unescape(field)).into_owned()
}

fn opt(out: &mut Vec<u8>, v: &Option<String>) {
    match v {
        None => out.push(b'-'),
        Some(s) => {
            out.push(b'+');
            escape(out, s.as_bytes());
        }
    }
}

fn parse_opt(field: &[u8]) -> Option<Option<String>> {
    match field.first()? {
        b'-' => Some(None),
        b'+' => Some(Some(text(&field[1..]))),
        _ => None,
    }
}

impl Line {
    pub fn encode(&self) -> Vec<u8> {
        let mut o = Vec::new();
        match self {
            Line::Out(b) => {
                o.extend_from_slice(b"out\t");
                escape(&mut o, b);
            }
            Line::Diag(m) => {
                o.extend_from_slice(b"diag\t");
                escape(&mut o, m.as_bytes());
            }
            Line::Event { sim, wall, ev } => {
                o.extend_from_slice(
                    format!("ev\t{}\t{}\t", sim.as_micros(), wall.as_micros()).as_bytes(),
                );
                for f in [&ev.run, &ev.kind, &ev.test] {
                    escape(&mut o, f.as_bytes());
                    o.push(b'\t');
                }
                opt(&mut o, &ev.msg);
                o.push(b'\t');
                opt(&mut o, &ev.errmsg);
                o.push(b'\t');
                opt(&mut o, &ev.at);
            }
            Line::End { sim, ending } => {
                o.extend_from_slice(format!("end\t{}\t", sim.as_micros()).as_bytes());
                let (kind, detail) = match ending {
                    Ending::Finished => ("finished".to_string(), String::new()),
                    Ending::MainError(m) => ("main-error".to_string(), m.clone()),
                    Ending::Reset(c, d) => (format!("reset:{c}"), d.clone()),
                    Ending::TimedOut => ("timed-out".to_string(), String::new()),
                };
                o.extend_from_slice(kind.as_bytes());
                o.push(b'\t');
                escape(&mut o, detail.as_bytes());
            }
        }
        o.push(b'\n');
        o
    }

    /// One line of a record (without its newline); `None` for a line cut short or not understood.
    pub fn decode(line: &[u8]) -> Option<Line> {
        let f: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
        let micros = |i: usize| -> Option<Duration> {
            let s = std::str::from_utf8(f.get(i)?).ok()?;
            Some(Duration::from_micros(s.parse().ok()?))
        };
        match (f[0], f.len()) {
            (b"out", 2) => Some(Line::Out(unescape(f[1]))),
            (b"diag", 2) => Some(Line::Diag(text(f[1]))),
            (b"ev", 9) => Some(Line::Event {
                sim: micros(1)?,
                wall: micros(2)?,
                ev: Event {
                    run: text(f[3]),
                    kind: text(f[4]),
                    test: text(f[5]),
                    msg: parse_opt(f[6])?,
                    errmsg: parse_opt(f[7])?,
                    at: parse_opt(f[8])?,
                },
            }),
            (b"end", 4) => {
                let detail = text(f[3]);
                let ending = match f[2] {
                    b"finished" => Ending::Finished,
                    b"main-error" => Ending::MainError(detail),
                    b"timed-out" => Ending::TimedOut,
                    k => {
                        let cause = std::str::from_utf8(k.strip_prefix(b"reset:")?).ok()?;
                        Ending::Reset(cause.to_string(), detail)
                    }
                };
                Some(Line::End {
                    sim: micros(1)?,
                    ending,
                })
            }
            _ => None,
        }
    }
}

/// Every complete line of a record, in order.
pub fn parse(bytes: &[u8]) -> Vec<Line> {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(Line::decode)
        .collect()
}

/// The child's side: appends lines to the record file, each with a single unbuffered write so that
/// everything written before a kill is there.
#[derive(Clone)]
pub struct Recorder(Arc<Mutex<File>>);

impl Recorder {
    pub fn create(path: &Path) -> std::io::Result<Recorder> {
        Ok(Recorder(Arc::new(Mutex::new(File::create(path)?))))
    }

    pub fn write(&self, line: &Line) {
        let mut f = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = f.write_all(&line.encode());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_whatever_their_bytes() {
        let lines = [
            Line::Out(b"a\tb\\n\nc\r\xff\n".to_vec()),
            Line::Diag("PANIC: x\ty".into()),
            Line::Event {
                sim: Duration::from_micros(12),
                wall: Duration::from_micros(34),
                ev: Event {
                    run: "r".into(),
                    kind: "fail".into(),
                    test: "t\n2".into(),
                    msg: Some("-".into()),
                    errmsg: None,
                    at: Some("x.lua:3".into()),
                },
            },
            Line::End {
                sim: Duration::from_secs(3600),
                ending: Ending::Reset("Panic".into(), "PANIC\nmore".into()),
            },
            Line::End {
                sim: Duration::ZERO,
                ending: Ending::MainError(String::new()),
            },
        ];
        let mut bytes = Vec::new();
        for l in &lines {
            bytes.extend(l.encode());
        }
        assert_eq!(parse(&bytes), lines);
    }

    #[test]
    fn a_line_cut_short_is_dropped() {
        let mut bytes = Line::Diag("whole".into()).encode();
        bytes.extend_from_slice(b"ev\t1\t2\trun");
        assert_eq!(parse(&bytes), vec![Line::Diag("whole".into())]);
    }
}
