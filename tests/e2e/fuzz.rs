//! The fuzzer: seeded device scripts (`fuzz.lua`) making random calls of every module function
//! and handle method, run through the binary on every target. A run fails on a crash (a signal or
//! an internal error), a hang (the wall-clock limit) or a message in Rust's words rather than the
//! firmware's; the seed is printed so that the failure replays (the calls the main chunk makes
//! replay exactly; the callbacks run in real time, so how many run before the limit may vary). CI runs a few scripts per target;
//! `NODEMCU_SIM_FUZZ_RUNS=N` runs N (and `NODEMCU_SIM_FUZZ_SEED=S` starts at seed S).

use std::process::Command;
use std::time::Duration;

use crate::support::{BIN, Flash, run_cmd};

const SCRIPT: &str = include_str!("fuzz.lua");
/// Random calls per script (callbacks make more).
const CALLS: u32 = 300;
/// What a simulator's message must never contain: Rust's words, not the firmware's.
const FORBIDDEN: &[&str] = &[
    "Option::unwrap",
    "called `",
    "panicked",
    "RuntimeError(",
    "CallbackError",
    "internal error",
    "RUST_BACKTRACE",
    "BAD error", // fuzz.lua's verdict on an error a call raised
];
/// Seeds that found bugs (the reproductions of the issue's own reports are in `safety.rs`):
/// 30289, a finaliser calling a binding inside mlua's protected call on 5.1 (an abort); 60110, a
/// callback with no heap left to call it with (an internal error); 100300, mlua's error value
/// reaching `pcall` when a metamethod of mlua's ran short of heap; 20004, `struct.unpack` with the
/// most negative start (an overflow).
const REGRESSIONS: &[(&str, u64)] = &[
    ("esp8266", 30289),
    ("esp8266", 60110),
    ("esp8266", 100300),
    ("host", 20004),
];
/// Exit statuses a script may end with: finished, main-chunk error, the resets, the time limit.
const ENDINGS: &[i32] = &[0, 1, 3, 4, 5, 6, 124];

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs the script of `seed` on `target`: `Err` says what went wrong.
fn fuzz_one(target: &str, seed: u64) -> Result<(), String> {
    let script =
        format!("local SEED, CALLS = {seed}, {CALLS}\nnode.setonerror(function() end)\n{SCRIPT}");
    let flash = Flash::new(&[("init.lua", &script), ("f.txt", "hello\n")]);
    let mut cmd = Command::new(BIN);
    // Real time, so that the time limit also ends a script whose tasks never stop (a pipe reader
    // that never drains its pipe is posted again and again, as on a board). A closed port on
    // loopback for DNS: a name resolves to an error at once, offline.
    cmd.arg("run")
        .arg(flash.file("init.lua"))
        .args(["--target", target, "--timeout", "1500"])
        .args(["--dns", "127.0.0.1", "--dns-port", "9"]);
    let r = run_cmd(cmd, Duration::from_secs(60));
    let tail: String = {
        let chars: Vec<char> = r.stderr.chars().collect();
        chars[chars.len().saturating_sub(600)..].iter().collect()
    };
    if !ENDINGS.contains(&r.status) {
        return Err(format!(
            "exit status {} (a signal is -1); stderr: {tail}",
            r.status
        ));
    }
    for text in [&r.stdout, &r.stderr] {
        if let Some(bad) = FORBIDDEN.iter().find(|f| text.contains(*f)) {
            let at = text.find(bad).unwrap_or(0);
            let around: String = text[at.saturating_sub(200)..].chars().take(400).collect();
            return Err(format!("`{bad}` in the output: {around}"));
        }
    }
    if r.status == 0 && !r.stdout.contains("fuzz done") {
        return Err("the script did not get to its end".into());
    }
    Ok(())
}

#[test]
fn random_calls_of_every_function_never_crash_hang_or_speak_rust() {
    let runs = env_number("NODEMCU_SIM_FUZZ_RUNS", 3);
    let first = env_number("NODEMCU_SIM_FUZZ_SEED", 1);
    let mut failures = Vec::new();
    for &(target, seed) in REGRESSIONS {
        if let Err(e) = fuzz_one(target, seed) {
            failures.push(format!("--target {target} seed {seed} (a regression): {e}"));
        }
    }
    for target in ["esp8266", "esp32", "host"] {
        for seed in first..first + runs {
            if let Err(e) = fuzz_one(target, seed) {
                failures.push(format!(
                    "--target {target} seed {seed}: {e} (replay: NODEMCU_SIM_FUZZ_SEED={seed} NODEMCU_SIM_FUZZ_RUNS=1)"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
