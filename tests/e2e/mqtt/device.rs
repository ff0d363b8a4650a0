//! A device run in the background whose printed lines a test reads as they come, for tests that
//! act on the broker while the device runs (kill it, freeze it, publish to it).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::{BIN, Flash};

const LONG: Duration = Duration::from_secs(20);

/// A device running in the background, whose printed lines the test reads as they come.
pub struct Device {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    _flash: Flash,
}

impl Device {
    pub fn start(script: &str, args: &[&str]) -> Device {
        let flash = Flash::new(&[("init.lua", script)]);
        let mut child = Command::new(BIN)
            .arg("run")
            .arg(flash.file("init.lua"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Device {
            child,
            lines: rx,
            seen: Vec::new(),
            _flash: flash,
        }
    }

    /// Waits for a printed line equal to `want`; the lines before it are kept in `seen`.
    pub fn expect(&mut self, want: &str) {
        let deadline = Instant::now() + LONG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let done = l == want;
                    self.seen.push(l);
                    if done {
                        return;
                    }
                }
                Err(_) => panic!("device never printed {want:?}; it printed {:?}", self.seen),
            }
        }
    }

    /// The rest of the output once the device has finished by itself.
    pub fn finish(mut self) -> Vec<String> {
        crate::support::wait(&mut self.child, LONG);
        self.seen.extend(self.lines.try_iter());
        std::mem::take(&mut self.seen)
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
