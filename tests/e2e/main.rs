//! End-to-end tests: they drive the built `nodemcu-sim` binary as a user would, with device scripts
//! written to a temporary flash directory, and assert on exact output, exit status and bytes seen by
//! real peers on loopback.

mod support;

mod board;
mod board_pulse;
mod chips;
mod cli;
mod console;
mod data;
mod decisions;
mod devkit;
mod dht;
mod dns;
mod enduser_setup;
mod errors;
mod esp32_bus;
mod file;
mod fuzz;
mod generations;
mod hangs;
mod http;
mod http32;
mod http_fixtures;
mod i2c;
mod lfs;
mod max7219;
mod mdns;
mod mqtt;
mod node;
mod ow;
mod ping;
mod portal_browser;
mod project;
mod readme;
mod runtime;
mod safety;
mod selftest;
mod serial;
mod spi;
mod tcp;
mod testrunner;
mod time;
mod time32;
mod tls;
mod tools;
mod udp;
mod websocket;
mod wifi;
mod ws2812;
mod ws2812_32;
