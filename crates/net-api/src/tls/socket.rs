//! `tls.socket`: a TLS client connection, bound the way `tls.c` binds it.
//!
//! Life of a socket: `connect(port[, host])` anchors it and resolves the host ("dns" fires, inside
//! the call for a dotted quad); the connection is then made and the handshake run by an I/O task
//! (`link.rs`), which reports back as jobs on the Lua thread. "connection" fires after the
//! handshake; a failure fires "reconnection" with the firmware's reason string; the server closing
//! fires "disconnection" with `nil` as its only argument (`tls.c` drops its self-reference before
//! pushing it: a quirk scripts on the board live with, kept because events get the
//! current firmware's arguments). A local `close()` fires nothing. In both
//! callbacks the socket is already closed, so a script may `connect` it again from there.
//!
//! Sends follow the board: ignored while not connected, and on the ESP8266 a send made before the
//! previous one's "sent" (or before "connection") is dropped, with a warning on stderr once per
//! socket. The other profiles queue them in order.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::{Rc, Weak};

use host_backend::tls::{Failure, FailureKind};
use mlua::{AnyUserData, Function, IntoLuaMulti, Lua, Value};

use super::TlsModule;
use super::cert::CertState;
use super::link::{self, Link, LinkEvent};
use crate::config::Target;
use crate::handle_type;
use crate::lauxlib::{Args, FwError, FwResult, bind, fw_err};
use crate::modules::register_methods;
use crate::net::dns::{self, When};
use crate::net::events::Callbacks;
use crate::runtime::{LiveIo, Runtime};

const TYPE: &str = "tls.socket";
const EVENTS: &[&str] = &[
    "connection",
    "disconnection",
    "reconnection",
    "receive",
    "sent",
    "dns",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No connection (`proto.tcp == NULL` in `tls.c`).
    Idle,
    /// Waiting for the host's address.
    Resolving,
    /// The name did not resolve. The board keeps its connection block but lets go of the socket,
    /// so from then on `connect` raises "already connected" and `close` does nothing.
    DnsFailed,
    /// TCP connect and handshake in flight.
    Handshaking,
    Open,
}

struct SockState {
    id: u64,
    callbacks: Callbacks,
    phase: Phase,
    port: u16,
    ip: Option<Ipv4Addr>,
    link: Option<Link>,
    /// Sends handed to the link whose "sent" has not fired yet.
    in_flight: usize,
    /// Sends made before the handshake completed, on profiles that queue them.
    early: Vec<Vec<u8>>,
    warned_drop: bool,
    /// Bumped whenever a connection ends, so events from an earlier connection are ignored.
    generation: u64,
    live: Option<LiveIo>,
}

#[derive(Clone)]
pub struct TlsSocket(Rc<RefCell<SockState>>);
handle_type!(TlsSocket, TYPE);

fn check(a: &Args) -> FwResult<(AnyUserData, TlsSocket)> {
    a.check_udata::<TlsSocket>(1, TYPE)
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let r = rt.clone();
    let connect_fn = bind(lua, move |lua, a| connect(lua, &r, &a))?;
    let r = rt.clone();
    let close_fn = bind(lua, move |_, a| {
        let (_, s) = check(&a)?;
        if matches!(
            s.phase(),
            Phase::Resolving | Phase::Handshaking | Phase::Open
        ) {
            // Dropping the link closes the connection, quietly.
            drop(s.end(&r));
        }
        Ok(())
    })?;
    let on = bind(lua, |lua, a| {
        let (_, s) = check(&a)?;
        let event = a.check_str(lua, 2)?;
        let set = s.0.borrow_mut().callbacks.set(EVENTS, &event, a.get(3));
        match set {
            // tls.c words an unknown event differently from net.c.
            Err(FwError::Msg(m)) if m == "invalid callback name" => fw_err("invalid method"),
            other => other,
        }
    })?;
    let r = rt.clone();
    let send_fn = bind(lua, move |lua, a| send(lua, &r, &a))?;
    let hold = bind(lua, |_, a| {
        let (_, s) = check(&a)?;
        if let Some(l) = &s.0.borrow().link {
            l.hold(true);
        }
        Ok(())
    })?;
    let unhold = bind(lua, |_, a| {
        let (_, s) = check(&a)?;
        if let Some(l) = &s.0.borrow().link {
            l.hold(false);
        }
        Ok(())
    })?;
    let getpeer = bind(lua, |lua, a| {
        let (_, s) = check(&a)?;
        let st = s.0.borrow();
        if st.phase == Phase::Idle || st.port == 0 {
            return Ok((Value::Nil, Value::Nil));
        }
        // Before the name resolves the board still has the port, and a zero address.
        let ip = st.ip.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string();
        Ok((
            Value::String(lua.create_string(ip)?),
            Value::Integer(st.port as i64),
        ))
    })?;
    register_methods(
        lua,
        TYPE,
        vec![
            ("connect", connect_fn),
            ("close", close_fn),
            ("on", on),
            ("send", send_fn),
            ("hold", hold),
            ("unhold", unhold),
            ("getpeer", getpeer),
        ],
    )?;
    Ok(())
}

pub(crate) fn create(lua: &Lua, rt: &Rc<Runtime>) -> FwResult<Value> {
    let st = SockState {
        id: rt.new_id(),
        callbacks: Callbacks::default(),
        phase: Phase::Idle,
        port: 0,
        ip: None,
        link: None,
        in_flight: 0,
        early: Vec::new(),
        warned_drop: false,
        generation: 0,
        live: None,
    };
    let ud = lua.create_userdata(TlsSocket(Rc::new(RefCell::new(st))))?;
    Ok(Value::UserData(ud))
}

impl TlsSocket {
    fn phase(&self) -> Phase {
        self.0.borrow().phase
    }

    /// Ends the current connection without a callback: the socket is idle and unanchored again.
    /// Returns the link so the caller can close it outside the borrow.
    fn end(&self, rt: &Runtime) -> Option<Link> {
        let mut st = self.0.borrow_mut();
        st.phase = Phase::Idle;
        st.generation += 1;
        st.in_flight = 0;
        st.early.clear();
        st.live = None;
        rt.unanchor(st.id);
        st.link.take()
    }

    /// The socket's userdata and a callback, if the socket is still anchored (the firmware fires
    /// nothing once its self-reference is gone).
    fn target(&self, rt: &Runtime, event: &str) -> Option<(AnyUserData, Function)> {
        let st = self.0.borrow();
        let ud = rt.anchored(st.id)?;
        let f = st.callbacks.get(event)?;
        Some((ud, f))
    }
}

/// Calls a callback: unprotected-style (`call_net`) from an event, or re-raising into the binding
/// that is running (`call_sync`) when it fires inside `connect`.
fn fire(
    lua: &Lua,
    rt: &Rc<Runtime>,
    f: &Function,
    args: impl IntoLuaMulti,
    sync: bool,
) -> FwResult<()> {
    if sync {
        rt.call_sync(lua, f, args)
    } else {
        Ok(rt.call_net(lua, f, args)?)
    }
}

/// `sck:connect(port[, host])`.
fn connect(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let (ud, s) = check(a)?;
    if s.phase() != Phase::Idle {
        return fw_err("already connected");
    }
    // `u16 port = luaL_checkinteger(...)`: the board keeps the low 16 bits.
    let port = a.check_integer(2)? as u16;
    let host = if a.is_string(3) {
        a.check_str(lua, 3)?
    } else {
        "127.0.0.1".to_string()
    };
    if port == 0 {
        return fw_err("invalid port");
    }
    let generation = {
        let mut st = s.0.borrow_mut();
        st.phase = Phase::Resolving;
        st.port = port;
        st.ip = None;
        st.live = Some(rt.live_io_guard());
        rt.anchor(st.id, ud);
        st.generation
    };
    let weak = Rc::downgrade(&s.0);
    let r = rt.clone();
    // An empty or over-long name fails at once on the board, through the dns callback.
    dns::resolve_then(lua, rt, &host.clone(), move |lua, ip, when| {
        resolved(lua, &r, &weak, generation, &host, ip, when == When::Now)
    })
}

/// The host's address is known (or not): "dns", then the connection.
fn resolved(
    lua: &Lua,
    rt: &Rc<Runtime>,
    weak: &Weak<RefCell<SockState>>,
    generation: u64,
    host: &str,
    ip: Option<Ipv4Addr>,
    sync: bool,
) -> FwResult<()> {
    let Some(s) = weak.upgrade().map(TlsSocket) else {
        return Ok(());
    };
    {
        let st = s.0.borrow();
        if st.generation != generation || st.phase != Phase::Resolving {
            return Ok(());
        }
    }
    let target = s.target(rt, "dns");
    let Some(ip) = ip else {
        // The board lets the socket go without any event but "dns"; a run that ends quietly
        // would leave the user guessing, so the simulator says why.
        rt.diag(&format!(
            "tls: {host} did not resolve; the socket is dropped (as on the board, only a \"dns\" callback hears of it)"
        ));
        {
            let mut st = s.0.borrow_mut();
            st.phase = Phase::DnsFailed;
            st.live = None;
        }
        let r = match &target {
            Some((ud, f)) => fire(lua, rt, f, (ud.clone(), Value::Nil), sync),
            None => Ok(()),
        };
        rt.unanchor(s.0.borrow().id);
        return r;
    };
    s.0.borrow_mut().ip = Some(ip);
    if let Some((ud, f)) = target {
        fire(lua, rt, &f, (ud, ip.to_string()), sync)?;
    }
    {
        let st = s.0.borrow();
        if st.generation != generation || st.phase != Phase::Resolving {
            return Ok(()); // closed from inside the dns callback
        }
    }
    start(lua, rt, &s, host, ip);
    Ok(())
}

/// Builds the TLS client for this connection (calling the script's certificate functions) and
/// hands the connection to the I/O side.
fn start(lua: &Lua, rt: &Rc<Runtime>, s: &TlsSocket, host: &str, ip: Ipv4Addr) {
    let Some(certs) = lua.app_data_ref::<TlsModule>().map(|m| m.certs.clone()) else {
        return; // tls is not installed: no socket of its kind exists
    };
    let (generation, port) = {
        let mut st = s.0.borrow_mut();
        st.phase = Phase::Handshaking;
        (st.generation, st.port)
    };
    let weak = Rc::downgrade(&s.0);
    let r = rt.clone();
    let deliver = move |lua: &Lua, ev: LinkEvent| event(lua, &r, &weak, generation, ev);
    let addr = SocketAddr::new(IpAddr::V4(ip), port);
    // The script's certificate functions run here and may close (or reconnect) this very socket.
    let setup = CertState::client_setup(&certs, lua, rt.cfg.target);
    if s.0.borrow().generation != generation {
        return;
    }
    let unverified = certs.borrow().unverified();
    match setup
        .and_then(|setup| host_backend::tls::client_config(&setup).map_err(|e| e.to_string()))
    {
        Err(why) => {
            rt.diag(&format!("tls: cannot connect to {host}:{port}: {why}"));
            let failure = Failure {
                kind: FailureKind::Handshake,
                detail: why,
            };
            rt.event_sink().push(Box::new(move |lua| {
                deliver(lua, LinkEvent::Failed(failure))
            }));
        }
        Ok(config) => {
            if unverified {
                rt.warn_once(
                    "tls-unverified",
                    "TLS connection made without certificate verification (the device default); \
                     call tls.cert.verify(...) to check the server's certificate",
                );
            }
            let name = host_backend::tls::server_name(host, IpAddr::V4(ip));
            let link = link::open(rt, addr, name, config, deliver);
            s.0.borrow_mut().link = Some(link);
        }
    }
}

/// An event from the I/O side, on the Lua thread.
fn event(
    lua: &Lua,
    rt: &Rc<Runtime>,
    weak: &Weak<RefCell<SockState>>,
    generation: u64,
    ev: LinkEvent,
) -> mlua::Result<()> {
    let Some(s) = weak.upgrade().map(TlsSocket) else {
        return Ok(());
    };
    if s.0.borrow().generation != generation {
        return Ok(());
    }
    match ev {
        LinkEvent::Connected(info) => {
            let debug = lua
                .app_data_ref::<TlsModule>()
                .is_some_and(|m| m.certs.borrow().debug > 0);
            if debug {
                rt.diag(&format!("tls: {info}"));
            }
            let early = {
                let mut st = s.0.borrow_mut();
                st.phase = Phase::Open;
                std::mem::take(&mut st.early)
            };
            for data in early {
                hand_over(&s, data);
            }
            if let Some((ud, f)) = s.target(rt, "connection") {
                rt.call_net(lua, &f, ud)?;
            }
        }
        LinkEvent::Received(data) => {
            if let Some((ud, f)) = s.target(rt, "receive") {
                rt.call_received(lua, &f, &ud, &data)?;
            }
        }
        LinkEvent::Sent => {
            {
                let mut st = s.0.borrow_mut();
                st.in_flight = st.in_flight.saturating_sub(1);
            }
            if let Some((ud, f)) = s.target(rt, "sent") {
                rt.call_net(lua, &f, ud)?;
            }
        }
        LinkEvent::Failed(failure) => {
            rt.diag(&format!("tls: {}", failure.detail));
            // tls.c fetches the socket before it lets go of it, then calls.
            let target = s.target(rt, "reconnection");
            drop(s.end(rt));
            if let Some((ud, f)) = target {
                rt.call_net(lua, &f, (ud, failure.kind.reason()))?;
            }
        }
        LinkEvent::Closed => {
            let f = s.target(rt, "disconnection").map(|(_, f)| f);
            drop(s.end(rt));
            if let Some(f) = f {
                rt.call_net(lua, &f, Value::Nil)?;
            }
        }
    }
    Ok(())
}

fn hand_over(s: &TlsSocket, data: Vec<u8>) {
    let mut st = s.0.borrow_mut();
    if let Some(link) = &st.link {
        link.send(data);
        st.in_flight += 1;
    }
}

/// `sck:send(data)`.
fn send(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let (_, s) = check(a)?;
    let data = a.check_bytes(lua, 2)?;
    let mut bytes = data.as_bytes().to_vec();
    let target = rt.cfg.target;
    let (phase, in_flight) = {
        let st = s.0.borrow();
        (st.phase, st.in_flight)
    };
    if matches!(phase, Phase::Idle | Phase::DnsFailed) {
        return Ok(());
    }
    if target == Target::Esp8266 && bytes.len() > u16::MAX as usize {
        // espconn_secure_send takes a u16 length.
        rt.warn_once(
            "tls-send-u16",
            "tls socket send() of 64 KiB or more: the board keeps only the length modulo 65536",
        );
        bytes.truncate(bytes.len() & 0xFFFF);
    }
    if bytes.is_empty() {
        return Ok(());
    }
    let busy = phase != Phase::Open || in_flight > 0;
    match (busy, target) {
        (false, _) => hand_over(&s, bytes),
        (true, Target::Esp8266) => {
            let mut st = s.0.borrow_mut();
            if !st.warned_drop {
                st.warned_drop = true;
                rt.diag(
                    "warning: tls socket send() dropped: the previous send has not had its \
                     \"sent\" yet (or \"connection\" has not fired), and the board drops such \
                     sends; send the next piece from the \"sent\" callback",
                );
            }
        }
        (true, _) if phase == Phase::Open => hand_over(&s, bytes),
        (true, _) => s.0.borrow_mut().early.push(bytes),
    }
    Ok(())
}
