//! `nodemcu-sim` / `nodemcu-sim console` / `run -i`: a device with its serial console open.
//!
//! The device runs on this (the main) thread; its input comes from another one. At a terminal
//! (stdin and stdout both terminals) that thread is the line editor of `term.rs`. Otherwise
//! stdin is read line by line, each line sent when the device waits at its prompt (as a person
//! types), and the device prints its own prompts, so a tool or a test can drive the console
//! through a pipe and get the same transcript every time; the end of the input closes the
//! console (`--exit-on-eof`: the run ends once the lines have run).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use net_api::{Config, ConsoleBoot, ConsoleHandle};

use crate::cli::ConsoleArgs;
use crate::status;

/// `nodemcu-sim console` (and `nodemcu-sim` alone): the flash is `--flash` or the current directory.
pub fn run(args: ConsoleArgs) -> i32 {
    let root = args
        .device
        .flash
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    let cfg = match status::config(&args.device, root, None) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nodemcu-sim: {e}");
            return status::EXIT_USAGE;
        }
    };
    let boot = ConsoleBoot::Boot {
        run_init: !args.no_init,
    };
    open(cfg, boot, args.exit_on_eof)
}

/// Runs the device with the console open and returns the run's exit status.
pub fn open(mut cfg: Config, boot: ConsoleBoot, exit_on_eof: bool) -> i32 {
    if std::io::stdin().is_terminal()
        && std::io::stdout().is_terminal()
        && let Some(tty) = crate::term::Tty::new()
    {
        let (console, handle) = net_api::console::channel(boot, true);
        tty.route_output(&mut cfg);
        let session = tty.spawn(handle);
        let outcome = net_api::run_console(cfg, console); // dropping it tells the editor
        session.finish();
        return status::report(&outcome);
    }
    let (console, handle) = net_api::console::channel(boot, false);
    std::thread::spawn(move || read_lines(handle, exit_on_eof));
    let outcome = net_api::run_console(cfg, console);
    status::report(&outcome)
}

/// Sends stdin to the device line by line (bytes as they are: Lua source need not be UTF-8), each
/// once the device waits at a prompt.
fn read_lines(handle: ConsoleHandle, exit_on_eof: bool) {
    let mut stdin = std::io::stdin().lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        match stdin.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if handle.wait_prompt().is_none() || !handle.send_line(line.clone()) {
                    return;
                }
            }
        }
    }
    handle.close(exit_on_eof);
}
