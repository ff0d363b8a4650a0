//! The NodeMCU Lua runtime: the firmware's modules bound to Lua, and the device's event loop.
//!
//! A [`config::Config`] says what device to boot; [`device::run`] boots it, runs its script and its
//! event loop, and returns the [`Outcome`]. Inside, one Lua state lives on one thread: the I/O tasks
//! of `host-backend` deliver events as jobs to the [`runtime::Runtime`], and the loop in
//! `event_loop.rs` runs them one at a time, as the board's single task context does.
//!
//! Modules live in `modules/` (one file each: tmr, node, wifi, uart, bit, ...) and `net/` (one file
//! per handle kind); the client protocols with a handle kind of their own have a folder each
//! (`tls/`, `mqtt/`, `websocket/`: the handle's methods, and the link that carries out what the
//! protocol engine in `host-backend` asks for). Each binding is a Rust function that checks its
//! arguments with [`lauxlib::Args`] and fails with the firmware's message ([`lauxlib::FwError`]).

pub mod callback;
mod chunks;
pub mod config;
pub mod console;
pub mod devboard;
pub mod device;
mod event_loop;
pub mod heap;
pub mod lauxlib;
mod longcalls;
pub mod modules;
pub mod mqtt;
pub mod net;
pub mod ntest;
pub mod persist;
pub mod retained;
pub mod runtime;
mod stdlib;
mod strlib;
pub mod tls;
mod watchdog;
pub mod websocket;

pub use config::{Config, Firmware, NetOptions, OnReset, Sinks, Target, TraceSink};
pub use console::{Console, ConsoleBoot, ConsoleHandle, Prompt};
pub use device::run_console;
pub use device::{Device, banner, run};
pub use event_loop::Outcome;
/// The project file's name, which the device's flash does not show.
pub use host_backend::flash::PROJECT_FILE;
pub use runtime::{Removed, ResetCause};
