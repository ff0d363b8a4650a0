//! Name lookups: `net.dns.*` and the lookups `connect` and `sock:dns` make.
//!
//! [`lookup`] is the one path every lookup takes. A dotted quad answers at once (the caller then runs
//! its callback synchronously, as the firmware does); a name is resolved by the host backend and
//! `done` runs later on the Lua thread. The in-flight query keeps the device alive.
//! Issue 4 replaces the resolver behind it with hickory (setdnsserver, --dns, --resolve).

use std::net::Ipv4Addr;
use std::rc::Rc;

use mlua::{Lua, Table};

use crate::lauxlib::{FwResult, fw_err};
use crate::runtime::Runtime;

/// What a lookup gives right away.
pub enum Lookup {
    /// The name was a dotted quad: the answer, to be delivered synchronously by the caller.
    Now(Ipv4Addr),
    /// The query is in flight; `done` will run with the answer (`None`: failed).
    Pending,
}

/// Starts resolving `name`. Errors are the firmware's immediate failures (`illegal argument` for
/// an empty or over-long name).
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
    let live = rt.live_io_guard();
    let sink = rt.event_sink();
    let name = name.to_string();
    tokio::task::spawn_local(async move {
        let ip = host_backend::dns::lookup_v4(&name).await;
        sink.push(Box::new(move |lua| {
            drop(live);
            done(lua, ip)
        }));
    });
    Ok(Lookup::Pending)
}

/// The `net.dns` table. Issue 4 fills it in.
pub(crate) fn table(lua: &Lua, _rt: &Rc<Runtime>) -> mlua::Result<Table> {
    lua.create_table()
}
