//! From command-line arguments to a device run, and from its outcome to an exit status.
//!
//! Exit statuses (also in the README):
//! 0 finished; 1 error in the main chunk (syntax or runtime) or bad setup; 2 usage error;
//! 3 reset by the default error handler; 4 PANIC in a net callback; 5 watchdog (runaway Lua or
//! `tmr.softwd`); 6 `node.restart()` or `node.dsleep()`; 124 time limit reached.
//! 7: the output did not meet `--expect-output`/`--expect-text`/`--fail-text` (`expect.rs`).

use std::path::{Path, PathBuf};

use net_api::{Config, Firmware, NetOptions, OnReset, Outcome, ResetCause, Target};

use crate::cli::{DeviceArgs, FirmwareArg, OnResetArg, RunArgs, TargetArg};

pub const EXIT_MAIN_ERROR: i32 = 1;

/// The exit status for how a run ended.
pub fn exit_code(o: &Outcome) -> i32 {
    match o {
        Outcome::Finished => 0,
        Outcome::MainError(_) => EXIT_MAIN_ERROR,
        Outcome::Reset(ResetCause::Error) => 3,
        Outcome::Reset(ResetCause::Panic) => 4,
        Outcome::Reset(ResetCause::Watchdog | ResetCause::SoftWatchdog) => 5,
        Outcome::Reset(ResetCause::Restart | ResetCause::DeepSleep) => 6,
        Outcome::TimedOut => 124,
    }
}

/// Splits the SCRIPT argument into a flash root and the flash name to run.
fn locate(script: &Path, flash: Option<&PathBuf>) -> Result<(PathBuf, Option<String>), String> {
    if script.is_dir() {
        return Ok((flash.cloned().unwrap_or_else(|| script.to_path_buf()), None));
    }
    if !script.is_file() {
        return Err(format!("cannot open {}", script.display()));
    }
    let root = match flash {
        Some(f) => f.clone(),
        None => script
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let (root_abs, script_abs) = (
        root.canonicalize()
            .map_err(|e| format!("{}: {e}", root.display()))?,
        script.canonicalize().map_err(|e| e.to_string())?,
    );
    let name = script_abs.strip_prefix(&root_abs).map_err(|_| {
        format!(
            "{} is not inside the flash directory {}",
            script.display(),
            root.display()
        )
    })?;
    Ok((root, Some(name.to_string_lossy().into_owned())))
}

/// A device configuration from the shared device flags.
pub fn config(dev: &DeviceArgs, root: PathBuf, script: Option<String>) -> Config {
    let mut cfg = Config::new(root);
    cfg.script = script;
    cfg.flash_explicit = dev.flash.is_some();
    cfg.flash_size = dev.flash_size;
    cfg.target = match dev.target {
        TargetArg::Esp8266 => Target::Esp8266,
        TargetArg::Esp32 => Target::Esp32,
        TargetArg::Host => Target::Host,
    };
    cfg.firmware = match dev.firmware {
        FirmwareArg::V1_5 => Firmware::V1_5,
        FirmwareArg::V2_2 => Firmware::V2_2,
        FirmwareArg::V3_0 => Firmware::V3_0,
    };
    cfg.virtual_time = dev.virtual_time;
    cfg.on_reset = match dev.on_reset {
        OnResetArg::Exit => OnReset::Exit,
        OnResetArg::Restart => OnReset::Restart,
    };
    cfg.net = NetOptions {
        expose: dev.expose,
        port_map: dev.port_map.clone(),
        port_offset: dev.port_offset,
        dns: dev.dns,
        resolve: dev.resolve.clone(),
        dns_port: dev.dns_port,
        ntp_port: dev.ntp_port,
        tls_webpki_roots: dev.tls_roots.is_some(),
    };
    cfg
}

/// Reports how the run ended on stderr (the script's own output is on stdout) and returns the status.
pub fn report(o: &Outcome) -> i32 {
    match o {
        Outcome::MainError(msg) => eprintln!("nodemcu-sim: {msg}"),
        Outcome::Reset(cause) => eprintln!("nodemcu-sim: device reset: {}", cause.describe()),
        Outcome::TimedOut => eprintln!("nodemcu-sim: time limit reached"),
        Outcome::Finished => {}
    }
    exit_code(o)
}

/// `nodemcu-sim run`.
pub fn run(args: RunArgs) -> i32 {
    let (root, script) = match locate(&args.script, args.device.flash.as_ref()) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("nodemcu-sim: {e}");
            return EXIT_MAIN_ERROR;
        }
    };
    let mut cfg = config(&args.device, root, script);
    cfg.forever = args.forever;
    if args.interactive {
        return crate::console::open(cfg, net_api::ConsoleBoot::AfterScript, args.exit_on_eof);
    }
    cfg.time_limit_ms = args.timeout;
    let expect = match crate::expect::Expect::from_args(&args) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("nodemcu-sim: {e}");
            return EXIT_MAIN_ERROR;
        }
    };
    if let Some(x) = &expect {
        x.tee(&mut cfg.sinks);
    }
    let outcome = net_api::run(cfg);
    match &expect {
        Some(x) if outcome == Outcome::TimedOut && x.timeout_is_the_end() => x.judge(0),
        Some(x) => x.judge(report(&outcome)),
        None => report(&outcome),
    }
}
