//! `nodemcu-sim`: runs NodeMCU Lua scripts on the desktop with the firmware's behaviour.
//!
//! This binary only parses the command line (`cli.rs`), builds a device configuration from it, runs
//! the device through `net-api`, and turns the outcome into an exit status (`status.rs`). The
//! console's terminal side lives in `console.rs` (line input) and `term.rs` (the interactive
//! terminal).

mod cli;
mod console;
mod expect;
mod lfs;
mod project;
mod serial;
mod status;
mod term;
mod testrun;

use clap::Parser;

/// See the dependency's note in Cargo.toml: short-lived blocks, many of them, per request.
/// (Off with the `system-alloc` feature, for memory checkers.)
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args = cli::Cli::parse();
    status::report_internal_errors();
    let run = std::panic::AssertUnwindSafe(|| match args.command {
        Some(cli::Command::Run(run)) => status::run(run),
        Some(cli::Command::Console(c)) => console::run(c),
        Some(cli::Command::Test(test)) => testrun::main(test),
        Some(cli::Command::Serial(args)) => serial::run(args),
        Some(cli::Command::Lfs(cli::LfsCommand::Build { sources, output })) => {
            match lfs::build(&sources, &output) {
                Ok(n) => {
                    println!("wrote {} ({n} modules)", output.display());
                    0
                }
                Err(e) => {
                    eprintln!("nodemcu-sim: {e}");
                    1
                }
            }
        }
        Some(cli::Command::Init(init)) => match project::init(&init.dir) {
            Ok(path) => {
                println!("wrote {}", path.display());
                0
            }
            Err(e) => {
                eprintln!("nodemcu-sim: {e}");
                status::EXIT_USAGE
            }
        },
        None => console::run(args.console),
    });
    // A panic is a bug of the simulator's: its line is on stderr already (see the hook).
    let code = std::panic::catch_unwind(run).unwrap_or(status::EXIT_INTERNAL);
    std::process::exit(code);
}
