//! `nodemcu-sim`: runs NodeMCU Lua scripts on the desktop with the firmware's behaviour.
//!
//! This binary only parses the command line (`cli.rs`), builds a device configuration from it, runs
//! the device through `net-api`, and turns the outcome into an exit status (`status.rs`).

mod cli;
mod status;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    let code = match args.command {
        cli::Command::Run(run) => status::run(run),
    };
    std::process::exit(code);
}
