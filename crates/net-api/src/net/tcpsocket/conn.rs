//! A TCP socket's connection from the Lua side: turning the host connection's events into
//! callbacks (with the reconnection-or-disconnection choice and the anchor dropped at the end), and
//! the connect path through name resolution (`net_dns_cb`'s order: "dns", then connect).

use std::cell::RefCell;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::rc::{Rc, Weak};

use host_backend::stream::{Close, Conn, Event, Sink};
use host_backend::tcp::{self, Slot};
use mlua::Lua;
use tokio::net::TcpStream;

use super::{DEFAULT_TTL, Live, Pcb, SockState, options};
use crate::callback::Callee;
use crate::lauxlib::{FwError, FwResult};
use crate::net::dns::{Lookup, lookup};
use crate::net::events::OnTable;
use crate::runtime::{EventSink, LiveIo, Runtime};

/// Drops the anchor once nothing (connection, pending connect, DNS query) needs it.
pub(super) fn settle(rt: &Runtime, st: &RefCell<SockState>) {
    let s = st.borrow();
    if matches!(s.pcb, Pcb::None) && s.wait_dns == 0 {
        let id = s.id;
        drop(s);
        rt.unanchor(id);
    }
}

/// What a connection's task keeps until it ends: the live-I/O guard, and for accepted sockets the
/// inbound slot. Ending also wakes the loop, which may be waiting with nothing else to do and
/// must notice that this was the last thing keeping the run alive.
pub(crate) struct TaskGuard {
    live: Option<LiveIo>,
    _slot: Option<Slot>,
    events: EventSink,
}

impl TaskGuard {
    pub(crate) fn new(rt: &Rc<Runtime>, slot: Option<Slot>) -> TaskGuard {
        TaskGuard {
            live: Some(rt.live_io_guard()),
            _slot: slot,
            events: rt.event_sink(),
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.live.take();
        self.events.push(Box::new(|_| Ok(())));
    }
}

/// Where a connection's events go: jobs on the Lua thread. The sink owns the task's guard.
pub(super) fn conn_sink(
    rt: &Rc<Runtime>,
    st: &Rc<RefCell<SockState>>,
    epoch: u64,
    slot: Option<Slot>,
) -> Sink {
    let guard = TaskGuard::new(rt, slot);
    let (rt, st) = (Rc::downgrade(rt), Rc::downgrade(st));
    Box::new(move |ev| {
        let (rt, st): (Weak<Runtime>, Weak<RefCell<SockState>>) = (rt.clone(), st.clone());
        guard
            .events
            .push(Box::new(move |lua| match (rt.upgrade(), st.upgrade()) {
                (Some(rt), Some(st)) => on_event(lua, &rt, &st, epoch, ev),
                _ => Ok(()),
            }));
    })
}

fn on_event(
    lua: &Lua,
    rt: &Rc<Runtime>,
    st: &Rc<RefCell<SockState>>,
    epoch: u64,
    ev: Event,
) -> mlua::Result<()> {
    let (id, conn) = {
        let s = st.borrow();
        if s.epoch != epoch {
            return Ok(());
        }
        let conn = match &s.pcb {
            Pcb::Live(l) => Some(l.conn.clone()),
            _ => None,
        };
        (s.id, conn)
    };
    let Some(ud) = rt.anchored(id) else {
        return Ok(());
    };
    let on = OnTable(lua, &ud);
    let cb = |name: &str| on.get(name);
    match ev {
        Event::Connected => {
            let ttl = st.borrow().ttl;
            if ttl != DEFAULT_TTL
                && let Some(c) = &conn
            {
                c.with_stream(|s| s.set_ttl(ttl as u32));
            }
            rt.call_net(lua, Callee::On(&on, "connection"), &ud)
        }
        Event::Data(d) => {
            let r = rt.call_received(lua, Callee::On(&on, "receive"), &ud, &d);
            if let Some(c) = conn {
                c.consumed();
            }
            r
        }
        Event::Sent => {
            {
                let mut s = st.borrow_mut();
                s.unsent = s.unsent.saturating_sub(1);
            }
            rt.call_net(lua, Callee::On(&on, "sent"), &ud)
        }
        Event::Closed(_) if super::legacy(rt) => {
            {
                let mut s = st.borrow_mut();
                s.pcb = Pcb::None;
                s.epoch += 1;
                s.unsent = 0;
            }
            super::legacy::disconnected(lua, rt, st, &ud)
        }
        Event::Closed(c) => {
            {
                let mut s = st.borrow_mut();
                s.pcb = Pcb::None;
                s.epoch += 1;
                s.unsent = 0;
            }
            let err = c.code();
            let cb = if err != 0 {
                cb("reconnection").or_else(|| cb("disconnection"))
            } else {
                cb("disconnection")
            };
            let r = match cb {
                Some(f) => rt.call_net(lua, &f, (ud.clone(), err)),
                None => Ok(()),
            };
            settle(rt, st);
            r
        }
    }
}

/// Starts connecting to `addr` (`None`: the name did not resolve, which lwIP still "connects" to
/// 255.255.255.255 and which ends in an abort).
fn start_connect(rt: &Rc<Runtime>, st: &Rc<RefCell<SockState>>, ip: Option<Ipv4Addr>, port: u16) {
    let epoch = st.borrow().epoch;
    let addr = SocketAddr::new(IpAddr::V4(ip.unwrap_or(Ipv4Addr::BROADCAST)), port);
    let connecting: Pin<Box<dyn Future<Output = Result<TcpStream, Close>>>> = match ip {
        Some(_) => Box::pin(tcp::connect(addr)),
        None => Box::pin(std::future::ready(Err(Close::Aborted))),
    };
    let sink = conn_sink(rt, st, epoch, None);
    let conn = Conn::connect(connecting, options(rt, None), sink);
    let mut s = st.borrow_mut();
    if s.held {
        conn.hold();
    }
    s.pcb = Pcb::Live(Live {
        conn,
        peer: addr,
        device_port: None,
    });
}

/// A name lookup finished (inside the call for a dotted quad: `sync`). Fires "dns", then connects
/// if a `connect()` is waiting, as `net_dns_cb` does. Under 1.5 a `connect`'s own lookup
/// (`for_connect`) fires no "dns", and a name that does not resolve ends the connect silently:
/// 1.5.4.1's `socket_dns_found` retries, then gives up without calling the script.
fn dns_done(
    lua: &Lua,
    rt: &Rc<Runtime>,
    st: &Rc<RefCell<SockState>>,
    ip: Option<Ipv4Addr>,
    sync: bool,
    for_connect: bool,
) -> FwResult<()> {
    let legacy_connect = for_connect && super::legacy(rt);
    let id = {
        let mut s = st.borrow_mut();
        s.wait_dns = s.wait_dns.saturating_sub(1);
        s.id
    };
    let mut outcome = Ok(());
    if !legacy_connect
        && let Some(ud) = rt.anchored(id)
        && let Some(f) = OnTable(lua, &ud).get("dns")
    {
        let ip = ip.map(|i| i.to_string());
        outcome = if sync {
            rt.call_sync(lua, &f, (ud.clone(), ip))
        } else {
            rt.call_net(lua, &f, (ud.clone(), ip))
                .map_err(FwError::from)
        };
    }
    let waiting = match st.borrow().pcb {
        Pcb::Resolving { port } => Some(port),
        _ => None,
    };
    match (waiting, &outcome) {
        (Some(_), Ok(())) if legacy_connect && ip.is_none() => {
            st.borrow_mut().pcb = Pcb::None;
            settle(rt, st);
        }
        (Some(port), Ok(())) => start_connect(rt, st, ip, port),
        (Some(_), Err(_)) => {
            st.borrow_mut().pcb = Pcb::None;
            settle(rt, st);
        }
        (None, _) => settle(rt, st),
    }
    outcome
}

/// Starts a lookup for `connect` (`for_connect`) or `dns`; the socket is anchored (by the
/// caller) meanwhile.
pub(super) fn resolve(
    lua: &Lua,
    rt: &Rc<Runtime>,
    st: &Rc<RefCell<SockState>>,
    name: &str,
    for_connect: bool,
) -> FwResult<()> {
    st.borrow_mut().wait_dns += 1;
    let (r, s) = (Rc::downgrade(rt), Rc::downgrade(st));
    let started = lookup(rt, name, move |lua, ip| match (r.upgrade(), s.upgrade()) {
        (Some(rt), Some(st)) => {
            dns_done(lua, &rt, &st, ip, false, for_connect).map_err(|e| match e {
                FwError::Lua(e) => e,
                other => mlua::Error::runtime(format!("{other:?}")),
            })
        }
        _ => Ok(()),
    });
    match started {
        Ok(Lookup::Now(ip)) => dns_done(lua, rt, st, Some(ip), true, for_connect),
        Ok(Lookup::Pending) => Ok(()),
        Err(e) => {
            {
                let mut s = st.borrow_mut();
                s.wait_dns -= 1;
                if matches!(s.pcb, Pcb::Resolving { .. }) {
                    s.pcb = Pcb::None;
                }
            }
            settle(rt, st);
            Err(e)
        }
    }
}
