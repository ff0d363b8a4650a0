//! `nodemcu-sim test`: finds the test files under the given paths and runs each on a fresh device
//! with virtual time, several at once, then reports (human or TAP on stdout, JUnit XML to a file).
//!
//! - `child.rs`: one file in its own process (this binary, started again), writing a record
//! - `record.rs`: the record's line format
//! - `result.rs`: from a record to tests and statuses
//! - `report.rs` (human, TAP) and `junit.rs`: the reports
//!
//! Exit statuses: 0 every file passed; 1 a test failed or raised an error, or a file panicked,
//! reset, timed out or crashed; 2 a usage error (no test files, a path that does not exist, an option
//! that makes no sense here, a report that cannot be written).

mod child;
mod junit;
mod record;
mod report;
mod result;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::cli::{OnResetArg, TestArgs};
use result::{Exit, FileResult};

pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// A test file: where it is, and how reports name it.
struct TestFile {
    abs: PathBuf,
    shown: PathBuf,
}

pub fn main(args: TestArgs) -> i32 {
    if let Some((file, record)) = child::from_env() {
        return child::run(&args, &file, &record);
    }
    if args.device.flash.is_some() {
        return usage("--flash does not apply to test: each file's flash is its own directory");
    }
    if args.device.on_reset == Some(OnResetArg::Restart) {
        return usage("--on-reset restart does not apply to test: a reset fails the file");
    }
    if !(args.wall_timeout.is_finite() && args.wall_timeout > 0.0 && args.wall_timeout < 1e9) {
        return usage("--wall-timeout must be a positive number of seconds");
    }
    let files = match discover(&args.paths) {
        Ok(f) if f.is_empty() => {
            return usage("no test files (NTest_*.lua, *_test.lua) found");
        }
        Ok(f) => f,
        Err(e) => return usage(&e),
    };
    let started = Instant::now();
    let mut printer = report::Printer::new(args.format, args.show_output);
    let results = run_all(&args, &files, |r| printer.file(r));
    let wall = started.elapsed();
    printer.finish(&results, wall);
    if let Some(path) = &args.junit
        && let Err(e) = std::fs::write(path, junit::render(&results, wall))
    {
        eprintln!("nodemcu-sim: --junit {}: {e}", path.display());
        return EXIT_USAGE;
    }
    if results.iter().all(FileResult::passed) {
        0
    } else {
        EXIT_FAILED
    }
}

fn usage(msg: &str) -> i32 {
    eprintln!("nodemcu-sim: {msg}");
    EXIT_USAGE
}

/// Is this a test file by its name?
fn is_test_name(name: &str) -> bool {
    (name.starts_with("NTest_") || name.ends_with("_test.lua")) && name.ends_with(".lua")
}

/// Test files under the paths (a file named on the command line counts whatever its name), sorted,
/// each once. Hidden directories are skipped, and symbolic links to directories are not followed.
fn discover(paths: &[PathBuf]) -> Result<Vec<TestFile>, String> {
    let default = [PathBuf::from(".")];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.is_file() {
            found.push(p.clone());
        } else {
            walk(p, &mut found).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    let mut files: Vec<TestFile> = Vec::new();
    for p in found {
        let abs = p
            .canonicalize()
            .map_err(|e| format!("{}: {e}", p.display()))?;
        let shown = abs
            .strip_prefix(&cwd)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| p.clone());
        if !files.iter().any(|f| f.abs == abs) {
            files.push(TestFile { abs, shown });
        }
    }
    files.sort_by(|a, b| a.shown.cmp(&b.shown));
    Ok(files)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type()?;
        if kind.is_dir() && !name.starts_with('.') {
            walk(&entry.path(), found)?;
        } else if !kind.is_dir() && is_test_name(&name) && entry.path().is_file() {
            found.push(entry.path());
        }
    }
    Ok(())
}

/// Runs every file, `--jobs` at a time, handing each result to `done` in file order as soon as it
/// and all before it are in.
fn run_all(
    args: &TestArgs,
    files: &[TestFile],
    mut done: impl FnMut(&FileResult),
) -> Vec<FileResult> {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, files.len().max(1));
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel();
    let mut slots: Vec<Option<FileResult>> = (0..files.len()).map(|_| None).collect();
    let mut printed = 0;
    std::thread::scope(|s| {
        for _ in 0..jobs {
            let (tx, next) = (tx.clone(), &next);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(f) = files.get(i) else { break };
                    if tx.send((i, run_one(args, f))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (i, r) in rx {
            slots[i] = Some(r);
            while let Some(Some(r)) = slots.get(printed) {
                done(r);
                printed += 1;
            }
        }
    });
    slots.into_iter().flatten().collect()
}

static RECORDS: AtomicUsize = AtomicUsize::new(0);

/// Runs one file in a child process within the wall-clock budget and reads back its record.
fn run_one(args: &TestArgs, f: &TestFile) -> FileResult {
    let record = std::env::temp_dir().join(format!(
        "nodemcu-sim-{}-{}.record",
        std::process::id(),
        RECORDS.fetch_add(1, Ordering::SeqCst)
    ));
    let started = Instant::now();
    let limits = (args.timeout, args.wall_timeout);
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return crashed(f, format!("cannot find this program: {e}"), limits),
    };
    let child = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(child::CHILD_ENV, &f.abs)
        .env(child::RECORD_ENV, &record)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return crashed(f, format!("cannot start a child process: {e}"), limits),
    };
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let deadline = Duration::from_secs_f64(args.wall_timeout);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if started.elapsed() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => break None,
        }
    };
    let (stdout, stderr) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    let bytes = std::fs::read(&record).unwrap_or_default();
    let _ = std::fs::remove_file(&record);
    let lines = record::parse(&bytes);
    let ended = lines.iter().any(|l| matches!(l, record::Line::End { .. }));
    let exit = match status {
        None => Exit::WallTimeout,
        Some(_) if ended => Exit::Recorded,
        Some(st) => Exit::Crashed(format!("{st}{}", tail(&stderr))),
    };
    let mut r = FileResult::build(f.shown.clone(), lines, exit, limits, started.elapsed());
    // What the child printed outside the device (a host-profile script's io.write, a Rust panic).
    for (what, text) in [("stdout", stdout), ("stderr", stderr)] {
        if !text.trim().is_empty() {
            r.diag.push(format!(
                "{what} of the simulator process:\n{}",
                text.trim_end()
            ));
        }
    }
    r
}

fn crashed(f: &TestFile, why: String, limits: (u64, f64)) -> FileResult {
    FileResult::build(
        f.shown.clone(),
        Vec::new(),
        Exit::Crashed(why),
        limits,
        Duration::ZERO,
    )
}

/// The last lines of a dying child's stderr, for the report.
fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    let keep = &lines[lines.len().saturating_sub(5)..];
    if keep.is_empty() {
        String::new()
    } else {
        format!(": {}", keep.join(" | "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_files_are_named_like_the_firmwares_or_with_a_test_suffix() {
        for yes in ["NTest_tmr.lua", "app_test.lua", "NTest_.lua"] {
            assert!(is_test_name(yes), "{yes}");
        }
        for no in [
            "NTest.lua",
            "init.lua",
            "NTest_x.lc",
            "test.lua",
            "app_test.lc",
        ] {
            assert!(!is_test_name(no), "{no}");
        }
    }
}
