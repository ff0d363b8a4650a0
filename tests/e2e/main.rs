//! End-to-end tests: they drive the built `nodemcu-sim` binary as a user would, with device scripts
//! written to a temporary flash directory, and assert on exact output, exit status and bytes seen by
//! real peers on loopback.

mod support;

mod board;
mod board_pulse;
mod cli;
mod console;
mod data;
mod decisions;
mod dns;
mod errors;
mod file;
mod fuzz;
mod generations;
mod hangs;
mod http;
mod http32;
mod http_fixtures;
mod lfs;
mod mqtt;
mod node;
mod project;
mod readme;
mod runtime;
mod safety;
mod selftest;
mod serial;
mod tcp;
mod testrunner;
mod time;
mod tls;
mod tools;
mod udp;
mod websocket;
mod wifi;
