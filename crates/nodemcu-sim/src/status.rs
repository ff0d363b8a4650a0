//! From command-line arguments to a device run, and from its outcome to an exit status.
//!
//! Exit statuses (also in the README):
//! 0 finished; 1 error in the main chunk (syntax or runtime) or bad setup; 2 usage error;
//! 3 reset by the default error handler; 4 PANIC in a net callback; 5 watchdog (runaway Lua or
//! `tmr.softwd`); 6 `node.restart()` or `node.dsleep()`; 124 time limit reached.
//! 7: the output did not meet `--expect-output`/`--expect-text`/`--fail-text` (`expect.rs`).
//! 70: an internal error of the simulator (a bug: a Rust panic), with a `nodemcu-sim: internal
//! error: ...` line on stderr.

use std::path::{Path, PathBuf};

use net_api::{Config, Firmware, OnReset, Outcome, ResetCause, Target};

use crate::cli::{DeviceArgs, FirmwareArg, OnResetArg, RunArgs, TargetArg};
use crate::project::Project;

pub const EXIT_MAIN_ERROR: i32 = 1;
/// A bad command line or project file.
pub const EXIT_USAGE: i32 = 2;
/// A bug of the simulator's (a Rust panic): BSD's `EX_SOFTWARE`.
pub const EXIT_INTERNAL: i32 = 70;

/// Makes a panic (a bug of the simulator's, wherever it happens) print one line on stderr in the
/// simulator's voice instead of Rust's panic report; the run then ends with [`EXIT_INTERNAL`].
/// The watchdog's unwinding (`WatchdogBite`) is no panic of this kind: `resume_unwind` does not
/// call the hook.
pub fn report_internal_errors() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("panic");
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "nodemcu-sim: internal error: {msg}{at} (a bug in the simulator; please report it)"
        );
    }));
}

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

/// A device configuration: the defaults, then the project file (`project.rs`), then the flags
/// given on the command line. `Err` is a bad or missing project file, already naming it.
pub fn config(dev: &DeviceArgs, root: PathBuf, script: Option<String>) -> Result<Config, String> {
    let project = match crate::project::find(&root, dev.config.as_deref())? {
        Some(path) => crate::project::load(&path)?,
        None => Project::default(),
    };
    let mut cfg = Config::new(root);
    cfg.script = script;
    cfg.flash_explicit = dev.flash.is_some();
    let lfs = match &dev.lfs[..] {
        [] => project.lfs.clone().unwrap_or_default(),
        given => given.to_vec(),
    };
    apply_project(&mut cfg, project);
    apply_flags(&mut cfg, dev);
    if !lfs.is_empty() {
        let image = crate::lfs::image(&lfs).map_err(|e| format!("lfs: {e}"))?;
        *cfg.lfs.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::sync::Arc::new(image));
    }
    Ok(cfg)
}

fn apply_project(cfg: &mut Config, p: Project) {
    use crate::project::{FirmwareName, OnResetName, TargetName};
    if let Some(f) = p.firmware {
        cfg.firmware = match f {
            FirmwareName::V1_5 => Firmware::V1_5,
            FirmwareName::V2_2 => Firmware::V2_2,
            FirmwareName::V3_0 => Firmware::V3_0,
        };
    }
    if let Some(t) = p.target {
        cfg.target = match t {
            TargetName::Esp8266 => Target::Esp8266,
            TargetName::Esp32 => Target::Esp32,
            TargetName::Host => Target::Host,
        };
    }
    if let Some(s) = p.flash_size {
        cfg.flash_size = s.0;
    }
    if let Some(r) = p.on_reset {
        cfg.on_reset = match r {
            OnResetName::Exit => OnReset::Exit,
            OnResetName::Restart => OnReset::Restart,
        };
    }
    cfg.virtual_time = p.virtual_time.unwrap_or(false);
    let net = &mut cfg.net;
    net.expose = p.expose.unwrap_or(false);
    net.port_map = p.port_map.unwrap_or_default().into_iter().collect();
    net.port_offset = p.port_offset.unwrap_or(0);
    net.dns = p.dns;
    net.dns_port = p.dns_port;
    net.resolve = p.resolve.unwrap_or_default().into_iter().collect();
    net.tls_webpki_roots = p.tls_roots.is_some();
}

/// Flags override the project: a switch given turns its setting on, a valued flag replaces it,
/// and `--port-map` / `--resolve` entries replace the project's entry for the same port or name.
fn apply_flags(cfg: &mut Config, dev: &DeviceArgs) {
    if let Some(s) = dev.flash_size {
        cfg.flash_size = s;
    }
    if let Some(t) = dev.target {
        cfg.target = match t {
            TargetArg::Esp8266 => Target::Esp8266,
            TargetArg::Esp32 => Target::Esp32,
            TargetArg::Host => Target::Host,
        };
    }
    if let Some(f) = dev.firmware {
        cfg.firmware = match f {
            FirmwareArg::V1_5 => Firmware::V1_5,
            FirmwareArg::V2_2 => Firmware::V2_2,
            FirmwareArg::V3_0 => Firmware::V3_0,
        };
    }
    if let Some(r) = dev.on_reset {
        cfg.on_reset = match r {
            OnResetArg::Exit => OnReset::Exit,
            OnResetArg::Restart => OnReset::Restart,
        };
    }
    cfg.virtual_time |= dev.virtual_time;
    let net = &mut cfg.net;
    net.expose |= dev.expose;
    for &(d, h) in &dev.port_map {
        net.port_map.retain(|(pd, _)| *pd != d);
        net.port_map.push((d, h));
    }
    if dev.port_offset != 0 {
        net.port_offset = dev.port_offset;
    }
    net.dns = dev.dns.or(net.dns);
    net.dns_port = dev.dns_port.or(net.dns_port);
    for (name, ip) in &dev.resolve {
        net.resolve.retain(|(n, _)| n != name);
        net.resolve.push((name.clone(), *ip));
    }
    net.tls_webpki_roots |= dev.tls_roots.is_some();
}

/// Sends standard input to the device's UART as it arrives, until it ends.
fn uart_from_stdin(handle: net_api::ConsoleHandle) {
    use std::io::Read;
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stdin.read(&mut buf) {
        if n == 0 || !handle.send_bytes(buf[..n].to_vec()) {
            break;
        }
    }
    handle.close(false);
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
    let mut cfg = match config(&args.device, root, script) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nodemcu-sim: {e}");
            return EXIT_USAGE;
        }
    };
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
    // Standard input is the UART: what arrives reaches a uart.on("data") receiver.
    let (console, handle) = net_api::console::channel(net_api::ConsoleBoot::UartOnly, false);
    std::thread::spawn(move || uart_from_stdin(handle));
    let outcome = net_api::run_console(cfg, console);
    match &expect {
        Some(x) if outcome == Outcome::TimedOut && x.timeout_is_the_end() => x.judge(0),
        Some(x) => x.judge(report(&outcome)),
        None => report(&outcome),
    }
}
