//! End-to-end tests: they drive the built `nodemcu-sim` binary as a user would, with device scripts
//! written to a temporary flash directory, and assert on exact output, exit status and bytes seen by
//! real peers on loopback.

mod support;

mod cli;
mod console;
mod decisions;
mod dns;
mod errors;
mod file;
mod hangs;
mod readme;
mod runtime;
mod tcp;
mod testrunner;
mod tls;
mod udp;
