//! Shared helpers: a temporary flash directory, running the binary with a hard time limit, and the
//! captured outcome.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_nodemcu-sim");

/// What a finished run printed and returned.
#[derive(Debug)]
pub struct Ran {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// A flash directory with files in it.
pub struct Flash {
    pub dir: tempfile::TempDir,
}

impl Flash {
    pub fn new(files: &[(&str, &str)]) -> Flash {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body).expect("write fixture");
        }
        Flash { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `nodemcu-sim run <flash>/<script> <args>`.
    pub fn run(&self, script: &str, args: &[&str]) -> Ran {
        let mut cmd = Command::new(BIN);
        cmd.arg("run").arg(self.file(script)).args(args);
        run_cmd(cmd, Duration::from_secs(60))
    }
}

/// Runs `script` as `init.lua` in a fresh flash with `args`.
pub fn run_lua(script: &str, args: &[&str]) -> Ran {
    Flash::new(&[("init.lua", script)]).run("init.lua", args)
}

/// Runs a command to completion, killing it (and failing the test) if it outlives `limit`.
pub fn run_cmd(mut cmd: Command, limit: Duration) -> Ran {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn nodemcu-sim");
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let status = wait(&mut child, limit);
    Ran {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        elapsed: start.elapsed(),
    }
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Waits for `child`, killing it after `limit`.
pub fn wait(child: &mut Child, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s.code().unwrap_or(-1);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("nodemcu-sim did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
