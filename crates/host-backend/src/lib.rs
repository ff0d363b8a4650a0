//! The device's hardware and network stack, as seen from the host.
//!
//! A NodeMCU board has a clock, a flash file system and lwIP. This crate gives the simulator the same
//! three things on a desktop: [`clock::Clock`] (real or virtual time), [`timers::TimerQueue`] (the
//! device's software timers, ordered the way the SDK fires them), [`flash::Flash`] (a host directory
//! that looks like SPIFFS and cannot be escaped; [`flash_file::FlashFile`] is one open file on it, with
//! SPIFFS's positions and modes), and the socket layers built on tokio, with the protocol engines
//! the firmware's client modules run over them ([`mqtt`], [`http`], [`http32`] (the ESP32
//! firmware's `esp_http_client`), [`websocket`]).
//!
//! Nothing here knows about Lua. The Lua binding crate (`net-api`) drives these types from its single
//! event-loop thread, and the socket tasks report back through plain Rust callbacks, so every piece can
//! be tested with ordinary Rust tests.

pub mod clock;
pub mod dns;
pub mod flash;
pub mod flash_file;
pub mod http;
pub mod http32;
pub mod mqtt;
pub mod stream;
pub mod tcp;
pub mod timers;
pub mod tls;
pub mod udp;
pub mod websocket;
