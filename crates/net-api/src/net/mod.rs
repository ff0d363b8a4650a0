//! `net`: TCP servers and sockets, UDP sockets and DNS, bound the way the firmware binds them.
//!
//! One file per handle kind, each with the same shape: a check-self helper, thin bindings, one
//! error path.
//! - `tcpserver.rs`: `net.tcpserver` (listen, getaddr, close)
//! - `tcpsocket.rs`: `net.tcpsocket` (connect, send, on, hold, ...)
//! - `udpsocket.rs`: `net.udpsocket`
//! - `dns.rs`: `net.dns.*` and the name lookups sockets share
//! - `iface.rs`: `net.ifinfo`, `net.multicastJoin` / `multicastLeave`
//! - `ping.rs`: `net.ping` (3.0, ESP8266), against a model of the network
//! - `events.rs`: the `on(event, fn)` callback table every socket kind uses
//!
//! This file builds the module table, including the constructors of both API generations
//!, and holds what the kinds share: where a device address binds on the host.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;

use mlua::{Lua, Value};

use crate::lauxlib::{Args, FwResult, bind, fw_err};
use crate::modules::module_table;
use crate::runtime::Runtime;

pub mod dns;
pub mod events;
pub mod iface;
pub mod ping;
pub mod tcpserver;
pub mod tcpsocket;
pub mod udpsocket;

/// `net.TCP` and `net.UDP`, as the firmware numbers them.
pub const TCP: i64 = 1;
pub const UDP: i64 = 2;

/// The 2015 API's range for a TCP server's idle timeout, in seconds.
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<i64> = 1..=28_800;
pub const DEFAULT_TIMEOUT: i64 = 30;

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    tcpserver::install(lua, rt)?;
    tcpsocket::install(lua, rt)?;
    udpsocket::install(lua, rt)?;
    let r = rt.clone();
    let create_server = bind(lua, move |lua, a| create_server(lua, &r, &a))?;
    let r = rt.clone();
    let create_connection = bind(lua, move |lua, a| create_connection(lua, &r, &a))?;
    let r = rt.clone();
    let create_udp = bind(lua, move |lua, _| udpsocket::create(lua, &r, false))?;
    let net = module_table(
        lua,
        vec![
            ("createServer", create_server),
            ("createConnection", create_connection),
            ("createUDPSocket", create_udp),
        ],
    )?;
    net.set("TCP", TCP)?;
    net.set("UDP", UDP)?;
    net.set("dns", dns::table(lua, rt)?)?;
    for (name, f) in iface::functions(lua, rt)? {
        net.set(name, f)?;
    }
    if rt.cfg.target != crate::config::Target::Esp32
        && rt.cfg.firmware >= crate::config::Firmware::V3_0
    {
        let r = rt.clone();
        net.set("ping", bind(lua, move |lua, a| ping::ping(lua, &r, &a))?)?;
    }
    lua.globals().set("net", net)
}

/// `net.createServer(net.TCP[, t])`, `net.createServer(net.UDP)`, `net.createServer([t])`.
///
/// Two numbers, or one that is 1 (`net.TCP`) or 2 (`net.UDP`), are the 2015 form `(type, timeout)`;
/// one other number is the current firmware's `(timeout)`.
fn create_server(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<Value> {
    let first = if a.is_none_or_nil(1) {
        None
    } else {
        Some(a.check_integer(1)?)
    };
    let legacy_type = match first {
        Some(t @ (TCP | UDP)) => Some(t),
        Some(_) if !a.is_none_or_nil(2) => Some(first.unwrap_or(TCP)),
        _ => None,
    };
    match legacy_type {
        Some(UDP) => udpsocket::create(lua, rt, false),
        Some(TCP) => {
            let t = a.opt_integer(2, DEFAULT_TIMEOUT)?;
            if !TIMEOUT_RANGE.contains(&t) {
                return fw_err("wrong arg type");
            }
            tcpserver::create(lua, rt, t)
        }
        Some(_) => fw_err("wrong arg type"),
        None => tcpserver::create(lua, rt, first.unwrap_or(DEFAULT_TIMEOUT)),
    }
}

/// `net.createConnection()`, `net.createConnection(net.TCP, 0|1)`, `net.createConnection(net.UDP, 0)`.
fn create_connection(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<Value> {
    let kind = a.opt_integer(1, TCP)?;
    let secure = a.opt_integer(2, 0)?;
    if secure != 0 && secure != 1 {
        return fw_err("wrong arg type");
    }
    match (kind, secure) {
        (UDP, 0) => udpsocket::create(lua, rt, true),
        (UDP, _) => fw_err("wrong arg type"),
        (_, 1) => crate::tls::create(lua, rt),
        _ => tcpsocket::create(lua, rt),
    }
}

/// `connect(port[, host])`'s first two arguments, checked as the firmware does for both socket
/// kinds: a zero port is `specify port`, and the host defaults to `127.0.0.1`.
pub fn connect_target(lua: &Lua, a: &Args) -> FwResult<(u16, String)> {
    let port = a.check_integer(2)? as u16;
    if port == 0 {
        return fw_err("specify port");
    }
    let host = if a.is_string(3) {
        a.check_str(lua, 3)?
    } else {
        "127.0.0.1".to_string()
    };
    Ok((port, host))
}

/// Where a device's listening address binds on the host: 0.0.0.0 means 127.0.0.1
/// unless `--expose`, and the port goes through `--port-map` / `--port-offset`.
pub fn host_bind_addr(rt: &Runtime, ip: Ipv4Addr, port: u16) -> SocketAddr {
    let opts = &rt.cfg.net;
    let ip = if ip.is_unspecified() && !opts.expose {
        Ipv4Addr::LOCALHOST
    } else {
        ip
    };
    SocketAddr::new(IpAddr::V4(ip), opts.host_port(port))
}

/// The device's view of a host-side local address: the port the script asked for (undoing the
/// port mapping) and the address it bound (0.0.0.0 stays 0.0.0.0, as the firmware reports it).
pub fn device_port(rt: &Runtime, host_port: u16, asked: u16) -> u16 {
    if asked != 0 && rt.cfg.net.host_port(asked) == host_port {
        asked
    } else {
        host_port
    }
}

/// Parses a dotted quad as `ipaddr_aton` does (no host names).
pub fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    s.parse().ok()
}
