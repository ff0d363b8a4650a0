//! End-to-end tests: they drive the built `nodemcu-sim` binary as a user would, with device scripts
//! written to a temporary flash directory, and assert on exact output, exit status and bytes seen by
//! real peers on loopback.

mod support;

mod console;
mod decisions;
mod dns;
mod file;
mod fuzz;
mod generations;
mod lfs;
mod project;
mod runtime;
mod safety;
mod serial;
mod tcp;
mod testrunner;
mod tls;
mod udp;
