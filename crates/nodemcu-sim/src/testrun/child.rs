//! The child side of `nodemcu-sim test`: one test file on one fresh device, in its own process.
//!
//! The runner starts this binary again with the same arguments and two environment variables naming
//! the test file and the record to write. A process per file is what isolates best: a file that
//! hangs is killed at its wall-clock limit, and one that crashes the simulator (a bug, an abort in
//! C code) costs only its own result.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use net_api::{Device, Outcome, Sinks, ntest};

use super::record::{Ending, Line, Recorder};
use crate::cli::TestArgs;

/// Names the test file a child runs (absolute path).
pub const CHILD_ENV: &str = "NODEMCU_SIM_TEST_FILE";
/// Names the record file a child writes.
pub const RECORD_ENV: &str = "NODEMCU_SIM_TEST_RECORD";

/// The file and record a child was started for, if this process is one.
pub fn from_env() -> Option<(PathBuf, PathBuf)> {
    Some((
        std::env::var_os(CHILD_ENV)?.into(),
        std::env::var_os(RECORD_ENV)?.into(),
    ))
}

/// Runs one test file and records what happens. The exit status only says whether the record could
/// be written; the runner judges the file from the record.
pub fn run(args: &TestArgs, file: &Path, record: &Path) -> i32 {
    let rec = match Recorder::create(record) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nodemcu-sim: record {}: {e}", record.display());
            return 1;
        }
    };
    let (root, name) = match (file.parent(), file.file_name()) {
        (Some(root), Some(name)) => (root.to_path_buf(), name.to_string_lossy().into_owned()),
        _ => {
            rec.write(&Line::End {
                sim: Duration::ZERO,
                ending: Ending::MainError(format!("cannot open {}", file.display())),
            });
            return 0;
        }
    };
    let mut cfg = match crate::status::config(&args.device, root, Some(name.clone())) {
        Ok(c) => c,
        Err(e) => {
            rec.write(&Line::End {
                sim: Duration::ZERO,
                ending: Ending::MainError(e),
            });
            return 0;
        }
    };
    // A reset fails a test file whatever the project says (the runner refuses the flag).
    cfg.on_reset = net_api::OnReset::Exit;
    cfg.virtual_time = !args.real_time;
    cfg.time_limit_ms = Some(args.timeout);
    let (out, diag) = (rec.clone(), rec.clone());
    cfg.sinks = Sinks {
        uart: Arc::new(move |b| out.write(&Line::Out(b.to_vec()))),
        diag: Arc::new(move |m| diag.write(&Line::Diag(m.to_string()))),
    };
    let (outcome, sim) = run_device(cfg, &name, &rec);
    rec.write(&Line::End {
        sim,
        ending: Ending::from_outcome(&outcome),
    });
    0
}

/// Boots the device, watches its NTest runs, runs the file as the main chunk, then the event loop.
fn run_device(cfg: net_api::Config, name: &str, rec: &Recorder) -> (Outcome, Duration) {
    let tokio_rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return (
                Outcome::MainError(format!("cannot start: {e}")),
                Duration::ZERO,
            );
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&tokio_rt, async {
        let device = match Device::boot(cfg, None) {
            Ok(d) => d,
            Err(e) => return (Outcome::MainError(e), Duration::ZERO),
        };
        let started = Instant::now();
        let rt = Rc::downgrade(&device.rt);
        let open_runs = Cell::new(0i64);
        let rec = rec.clone();
        ntest::observe(&device.lua, move |_, ev| {
            let Some(rt) = rt.upgrade() else { return };
            rec.write(&Line::Event {
                sim: rt.now(),
                wall: started.elapsed(),
                ev: ev.clone(),
            });
            match ev.kind.as_str() {
                "start" => open_runs.set(open_runs.get() + 1),
                // Every run has reported its last test: the file is done, whatever timers are left.
                "finish" => {
                    open_runs.set(open_runs.get() - 1);
                    if open_runs.get() <= 0 {
                        rt.request_stop();
                    }
                }
                _ => {}
            }
        });
        let outcome = match device.run_file(name) {
            Err(msg) => Outcome::MainError(msg),
            Ok(()) => device.run_loop().await,
        };
        (outcome, device.rt.now())
    })
}
