//! Name lookups: `net.dns.*` and the lookups `connect` and `sock:dns` make.
//!
//! [`lookup`] is the one path every lookup takes. A dotted quad answers at once (the caller then runs
//! its callback synchronously, as the firmware does); a name goes to the boot's resolver
//! (`host_backend::dns::Resolver`: the host's configuration until `setdnsserver`, then the servers
//! the script set, with `--dns`, `--dns-port` and `--resolve` applied) and `done` runs later on the
//! Lua thread, with the address or `None`. Each query in flight takes one of lwIP's DNS table
//! entries (4 on the ESP8266: a fifth is `out of memory`) and keeps the device alive.

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;

use host_backend::dns::{Budget, DNS_PORT, DnsOptions, Resolver};
use mlua::{Function, Lua, Table, Value};

use crate::config::Target;
use crate::lauxlib::{Args, FwError, FwResult, bind, fw_err};
use crate::modules::module_table;
use crate::runtime::Runtime;

/// What a lookup gives right away.
pub enum Lookup {
    /// The name was a dotted quad: the answer, to be delivered synchronously by the caller.
    Now(Ipv4Addr),
    /// The query is in flight; `done` will run with the answer (`None`: failed).
    Pending,
}

/// lwIP's `DNS_MAX_SERVERS`.
const MAX_SERVERS: i64 = 2;

/// The boot's resolver and its table of queries in flight.
struct DnsState {
    resolver: RefCell<Resolver>,
    in_flight: Cell<usize>,
}

fn state(rt: &Runtime) -> Rc<DnsState> {
    rt.state(|rt| {
        let net = &rt.cfg.net;
        let opts = DnsOptions {
            server: net.dns,
            port: net.dns_port.unwrap_or(DNS_PORT),
            pins: net.resolve.clone(),
            budget: if rt.is_virtual_time() {
                Budget::QUICK
            } else {
                Budget::REAL
            },
        };
        DnsState {
            resolver: RefCell::new(Resolver::new(opts)),
            in_flight: Cell::new(0),
        }
    })
}

/// `DNS_TABLE_SIZE`: how many names may be in flight at once.
fn table_size(target: Target) -> Option<usize> {
    (target == Target::Esp8266).then_some(4)
}

/// Starts resolving `name`. Errors are the firmware's immediate failures: `illegal argument` for
/// an empty or over-long name, `out of memory` when the DNS table is full.
pub fn lookup(
    rt: &Rc<Runtime>,
    name: &str,
    done: impl FnOnce(&Lua, Option<Ipv4Addr>) -> mlua::Result<()> + 'static,
) -> FwResult<Lookup> {
    if name.is_empty() || name.len() >= 256 {
        return fw_err("illegal argument");
    }
    if let Some(ip) = super::parse_ipv4(name) {
        return Ok(Lookup::Now(ip));
    }
    let st = state(rt);
    if table_size(rt.cfg.target).is_some_and(|max| st.in_flight.get() >= max) {
        return fw_err("out of memory");
    }
    st.in_flight.set(st.in_flight.get() + 1);
    let answer = st.resolver.borrow_mut().lookup_v4(name);
    let live = rt.live_io_guard();
    let sink = rt.event_sink();
    tokio::task::spawn_local(async move {
        let ip = answer.await;
        sink.push(Box::new(move |lua| {
            drop(live);
            st.in_flight.set(st.in_flight.get() - 1);
            done(lua, ip)
        }));
    });
    Ok(Lookup::Pending)
}

/// When a [`resolve_then`] continuation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Inside the call that asked: a dotted quad, or a name the resolver refused at once. The
    /// firmware runs its DNS callback synchronously then, so script callbacks raise into the caller.
    Now,
    /// Later, as a job on the Lua thread, once the resolver answered.
    Later,
}

/// The "look up the host, then connect" step every client module takes (`tls`, `mqtt`,
/// `websocket`): resolves `host` and runs `then` once with the address, or `None` when the name
/// did not resolve or was refused (empty, over-long, the DNS table full), as `dns_gethostbyname`'s
/// callback gets a NULL address in all those cases. Firmware errors `then` returns from a later run
/// have no caller to raise into and are dropped; Lua errors go on to the event loop.
pub fn resolve_then<F>(lua: &Lua, rt: &Rc<Runtime>, host: &str, then: F) -> FwResult<()>
where
    F: FnOnce(&Lua, Option<Ipv4Addr>, When) -> FwResult<()> + 'static,
{
    let once = Rc::new(RefCell::new(Some(then)));
    let later = once.clone();
    let answer = lookup(rt, host, move |lua, ip| {
        let Some(then) = later.borrow_mut().take() else {
            return Ok(());
        };
        match then(lua, ip, When::Later) {
            Err(FwError::Lua(e)) => Err(e),
            _ => Ok(()),
        }
    });
    let ip = match answer {
        Ok(Lookup::Pending) => return Ok(()),
        Ok(Lookup::Now(ip)) => Some(ip),
        Err(_) => None,
    };
    let then = once.borrow_mut().take();
    match then {
        Some(then) => then(lua, ip, When::Now),
        None => Ok(()),
    }
}

/// The `net.dns` table.
pub(crate) fn table(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<Table> {
    let r = rt.clone();
    let resolve = bind(lua, move |lua, a| resolve(lua, &r, &a))?;
    let r = rt.clone();
    let setdnsserver = bind(lua, move |lua, a| {
        let server = a.check_bytes(lua, 1)?;
        // ipaddr_addr: 255.255.255.255 is its failure value, 0.0.0.0 means "no server".
        let ip = match std::str::from_utf8(&server.as_bytes()).ok() {
            Some(s) if s.len() <= 16 => super::parse_ipv4(s),
            _ => None,
        };
        let ip = match ip {
            Some(ip) if !ip.is_unspecified() && !ip.is_broadcast() => ip,
            _ => return fw_err("invalid dns server ip"),
        };
        let idx = check_index(&a, 2)?;
        // A negative index is a u8 above the table in lwIP: silently ignored.
        if let Ok(idx) = usize::try_from(idx) {
            state(&r)
                .resolver
                .borrow_mut()
                .set_server(idx, IpAddr::V4(ip));
        }
        Ok(())
    })?;
    let r = rt.clone();
    let getdnsserver = bind(lua, move |_, a| {
        let idx = check_index(&a, 1)?;
        let ip = usize::try_from(idx)
            .ok()
            .and_then(|i| state(&r).resolver.borrow().server(i));
        Ok(ip.map(|ip| ip.to_string()))
    })?;
    module_table(
        lua,
        vec![
            ("resolve", resolve),
            ("setdnsserver", setdnsserver),
            ("getdnsserver", getdnsserver),
        ],
    )
}

/// `luaL_optint(n, 0)` checked against `DNS_MAX_SERVERS`.
fn check_index(a: &Args, n: usize) -> FwResult<i64> {
    let idx = a.opt_integer(n, 0)?;
    if idx >= MAX_SERVERS {
        return fw_err(format!("server index out of range [0-{}]", MAX_SERVERS - 1));
    }
    Ok(idx)
}

/// `net.dns.resolve(host, fn)`: `fn(nil, ip|nil)`, or `fn(ip|nil)` on the ESP32.
fn resolve(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let host = a.check_str(lua, 1)?;
    let f = a.check_function(2)?;
    let one_arg = rt.cfg.target == Target::Esp32;
    let args = move |lua: &Lua, ip: Option<Ipv4Addr>| -> mlua::Result<mlua::MultiValue> {
        let ip = match ip {
            Some(ip) => Value::String(lua.create_string(ip.to_string())?),
            None => Value::Nil,
        };
        Ok(if one_arg {
            mlua::MultiValue::from_iter([ip])
        } else {
            mlua::MultiValue::from_iter([Value::Nil, ip])
        })
    };
    let (r, cb): (Rc<Runtime>, Function) = (rt.clone(), f.clone());
    match lookup(rt, &host, move |lua, ip| {
        let argv = args(lua, ip)?;
        r.call_net(lua, &cb, argv)
    })? {
        Lookup::Now(ip) => rt.call_sync(lua, &f, args(lua, Some(ip))?),
        Lookup::Pending => Ok(()),
    }
}
