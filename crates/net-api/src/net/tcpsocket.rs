//! `net.tcpsocket`: a TCP connection, made by `net.createConnection()` or accepted by a server.
//!
//! The handle is a thin [`TcpSocket`] around `SockState`. What lwIP calls the PCB is `Pcb`:
//! absent until `connect()` (or an accept), `Resolving` while `connect` waits for its name, `Live`
//! with a host-backend [`Conn`] from then until the connection closes. Every binding checks that
//! state exactly where `net.c` checks its PCB, so misuse raises the firmware's errors.
//!
//! The connection's task reports `host_backend::stream::Event`s; `tcpsocket/conn.rs` turns each
//! into a job on the Lua thread that runs the script's callback through `call_net` (PANIC on the
//! ESP8266), and holds the connect path through name resolution. A job carries the connection's
//! epoch: once the script closed it (or reconnected), late events of the old connection are
//! dropped, as lwIP stops calling a PCB the script has closed.
//!
//! Lifetime: while a connection, a pending connect or a DNS query exists the socket is anchored
//! (the firmware's `self_ref`); the task holds a live-I/O guard. Callbacks live in the userdata's
//! own user value ([`OnTable`]), so a closed socket whose callbacks capture it is collected.

mod conn;
mod fast;
mod legacy;

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;

use conn::{conn_sink, resolve, settle};
use host_backend::stream::{Conn, IdleTimer, Options, Payload};
use host_backend::tcp::Slot;
use legacy::legacy;
use mlua::{AnyUserData, Lua, Value};
use tokio::net::TcpStream;

use super::events::OnTable;
use crate::callback::Callee;
use crate::config::{Firmware, Target};
use crate::handle_type;
use crate::lauxlib::{Args, FwResult, arg_check, bind, bind_fast, fw_err};
use crate::modules::register_methods;
use crate::runtime::Runtime;

pub const TYPE: &str = "net.tcpsocket";
pub(crate) const EVENTS: &[&str] = &[
    "connection",
    "disconnection",
    "reconnection",
    "dns",
    "receive",
    "sent",
];

/// lwIP's `IP_DEFAULT_TTL`.
const DEFAULT_TTL: i64 = 255;
/// `TCP_SND_BUF` on the ESP8266 (2 * MSS): bytes a socket may have queued.
const ESP8266_SND_BUF: usize = 2920;
/// `TCP_SND_BUF` of the ESP32's lwIP (ESP-IDF default): the largest single `send`.
const ESP32_SND_BUF: usize = 5744;
/// lwIP's receive window on the ESP8266 (4 * MSS): what a held socket may still deliver.
const DEVICE_WINDOW: usize = 5840;

pub(crate) type TcpConn = Conn<TcpStream>;

pub(crate) struct Live {
    conn: TcpConn,
    peer: SocketAddr,
    /// For accepted sockets: the device port of the server (the host port may be mapped).
    device_port: Option<u16>,
}

pub(crate) enum Pcb {
    None,
    Resolving { port: u16 },
    Live(Live),
}

pub(crate) struct SockState {
    id: u64,
    /// Bumped whenever the connection is replaced or closed; events carry the value they were for.
    epoch: u64,
    pcb: Pcb,
    wait_dns: u32,
    held: bool,
    ttl: i64,
    /// Sends whose "sent" has not fired yet (for the consecutive-send warning).
    unsent: usize,
    /// `--firmware 1.5`: the espconn was freed when the connection ended (see `legacy.rs`).
    released: bool,
}

impl Drop for SockState {
    fn drop(&mut self) {
        // `__gc` of a socket that still has a connection: lwIP's tcp_abort.
        if let Pcb::Live(l) = &self.pcb {
            l.conn.abort();
        }
    }
}

#[derive(Clone)]
pub struct TcpSocket(pub(crate) Rc<RefCell<SockState>>);
handle_type!(TcpSocket, TYPE);

impl TcpSocket {
    fn new(rt: &Runtime) -> TcpSocket {
        TcpSocket(Rc::new(RefCell::new(SockState {
            id: rt.new_id(),
            epoch: 0,
            pcb: Pcb::None,
            wait_dns: 0,
            held: false,
            ttl: DEFAULT_TTL,
            unsent: 0,
            released: false,
        })))
    }
}

/// `net_get_udata` for a client method: anything but a `net.tcpsocket` is `invalid user data`.
fn check_sock(a: &Args) -> FwResult<(&AnyUserData, TcpSocket)> {
    match a.arg(1) {
        Value::UserData(ud) => match ud.borrow::<TcpSocket>() {
            Ok(s) => Ok((ud, s.clone())),
            Err(_) => fw_err("invalid user data"),
        },
        _ => fw_err("invalid user data"),
    }
}

/// How connections of this device read.
fn options(rt: &Runtime, idle: Option<IdleTimer>) -> Options {
    let target = rt.cfg.target;
    Options {
        handover: Some(rt.handover.clone()),
        chunk: target.rx_chunk(),
        window: if target.is_device() {
            DEVICE_WINDOW
        } else {
            64 * 1024
        },
        read_ahead: if target.is_device() {
            64 * 1024
        } else {
            256 * 1024
        },
        // The socket buffer sends are handed over to: a host kernel's is larger than 64 KB,
        // and a stream of large sends then goes out several to a write.
        buffer: if target.is_device() {
            64 * 1024
        } else {
            256 * 1024
        },
        idle,
        shutdown: false,
        ..Options::default()
    }
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let mut methods = Vec::new();
    macro_rules! method {
        ($name:expr, $f:expr) => {{
            let r = rt.clone();
            methods.push(($name, bind(lua, move |lua, a| $f(lua, &r, &a))?));
        }};
    }
    macro_rules! method_fast {
        ($name:expr, $f:expr, $fast:expr) => {{
            let r = rt.clone();
            methods.push(($name, bind_fast(lua, move |lua, a| $f(lua, &r, &a), $fast)?));
        }};
    }
    method!("connect", connect);
    method_fast!("close", close, fast::close);
    method_fast!("on", on, fast::on);
    method_fast!("send", send, fast::send);
    method!("dns", dns);
    method!("getpeer", getpeer);
    // 1.5.4.1 had neither `getaddr` nor `ttl`.
    if !legacy(rt) {
        method!("getaddr", getaddr);
    }
    if rt.cfg.target != Target::Esp32 {
        method_fast!("hold", hold, fast::hold);
        method_fast!("unhold", unhold, fast::unhold);
        if !legacy(rt) {
            method!("ttl", ttl);
        }
    }
    register_methods(lua, TYPE, methods)?;
    Ok(())
}

/// `net.createConnection()`: a TCP client.
pub fn create(lua: &Lua, rt: &Rc<Runtime>) -> FwResult<Value> {
    Ok(Value::UserData(handle(lua, rt, TcpSocket::new(rt))?))
}

/// The Lua handle of a new socket, with its callback table.
fn handle(lua: &Lua, rt: &Runtime, sock: TcpSocket) -> mlua::Result<AnyUserData> {
    let ud = lua.create_userdata(sock)?;
    let helpers = rt.helpers.borrow();
    OnTable(lua, &ud).prepare(&crate::callback::helpers(&helpers)?.on_tables)?;
    Ok(ud)
}

/// A socket for a connection a server accepted: anchored, open, reading.
pub(crate) fn accepted(
    lua: &Lua,
    rt: &Rc<Runtime>,
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    idle: Option<IdleTimer>,
    device_port: u16,
) -> mlua::Result<(AnyUserData, TcpSocket)> {
    let sock = TcpSocket::new(rt);
    let ud = handle(lua, rt, sock.clone())?;
    let (id, epoch) = {
        let s = sock.0.borrow();
        (s.id, s.epoch)
    };
    rt.anchor(id, ud.clone());
    let sink = conn_sink(rt, &sock.0, epoch, Some(slot));
    let conn = Conn::open(stream, options(rt, idle), sink);
    sock.0.borrow_mut().pcb = Pcb::Live(Live {
        conn,
        peer,
        device_port: Some(device_port),
    });
    Ok((ud, sock))
}

/// At the end of a boot: drops every connection still open, with what it had queued, as a board's
/// connections die with it. They must go before the Lua state can: a queued large send holds the
/// state (see [`HeldString`]), and the state holds the socket, so neither would ever be freed.
pub(crate) fn abort_all(rt: &Runtime) {
    for ud in rt.all_anchored() {
        if let Ok(sock) = ud.borrow::<TcpSocket>()
            && let Pcb::Live(l) = &sock.0.borrow().pcb
        {
            l.conn.abort();
        }
    }
}

/// After the server's `fn(sock)`: the socket's "connection" callback, if it is still open.
pub(crate) fn connected(
    lua: &Lua,
    rt: &Rc<Runtime>,
    (ud, sock): &(AnyUserData, TcpSocket),
) -> mlua::Result<()> {
    if !matches!(sock.0.borrow().pcb, Pcb::Live(_)) {
        return Ok(());
    }
    rt.call_net(lua, Callee::On(&OnTable(lua, ud), "connection"), ud)
}

/// `sk:connect(port[, ip|host][, fn])`.
fn connect(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let (ud, sock) = check_sock(a)?;
    if sock.0.borrow().released {
        return Ok(());
    }
    if !matches!(sock.0.borrow().pcb, Pcb::None) {
        return fw_err("already connected");
    }
    let (port, host) = super::connect_target(lua, a)?;
    if a.len() > 3 {
        arg_check(a.is_function(4), 4, "not a function")?;
        OnTable(lua, ud).replace("connection", a.check_function(4)?)?;
    }
    {
        let mut s = sock.0.borrow_mut();
        s.epoch += 1;
        s.pcb = Pcb::Resolving { port };
        s.unsent = 0;
        rt.anchor(s.id, ud.clone());
    }
    resolve(lua, rt, &sock.0, &host, true)
}

/// `sk:close()`: no callback fires; `not connected` when there is nothing to close.
/// Under `--firmware 1.5`, "disconnection" follows and nothing to close is no error.
fn close(_: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let (_, sock) = check_sock(a)?;
    close_sock(rt, &sock)
}

/// `close`'s work: a failure changes nothing (see [`send_bytes`]).
fn close_sock(rt: &Rc<Runtime>, sock: &TcpSocket) -> FwResult<()> {
    let closed_live = {
        let mut s = sock.0.borrow_mut();
        let live = match std::mem::replace(&mut s.pcb, Pcb::None) {
            Pcb::None if legacy(rt) => return Ok(()),
            Pcb::None => return fw_err("not connected"),
            Pcb::Resolving { .. } => false,
            Pcb::Live(l) => {
                l.conn.close();
                true
            }
        };
        s.epoch += 1;
        s.unsent = 0;
        live
    };
    if closed_live && legacy(rt) {
        legacy::close_task(rt, &sock.0);
    } else {
        settle(rt, &sock.0);
    }
    Ok(())
}

/// `sk:on(event, fn|nil)`.
fn on(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let (ud, _) = check_sock(a)?;
    let event = a.check_str(lua, 2)?;
    if legacy(rt) {
        legacy::check_on(&event, a)?;
    }
    OnTable(lua, ud).set(EVENTS, &event, a.arg(3))
}

/// `sk:send(data[, fn])`: queued in order; "sent" fires once it is handed to the host socket.
fn send(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let (ud, sock) = check_sock(a)?;
    if sock.0.borrow().released {
        return Ok(());
    }
    let converted;
    let string = match a.arg(2) {
        Value::String(s) => s,
        _ => {
            converted = a.check_bytes(lua, 2)?;
            &converted
        }
    };
    let data = string.as_bytes();
    if legacy(rt) {
        // espconn_sent refuses, without a word, what it cannot send.
        if data.len() > legacy::MAX_SEND {
            return fw_err("need <1460 payload");
        }
        if data.is_empty() || !matches!(sock.0.borrow().pcb, Pcb::Live(_)) {
            return Ok(());
        }
    }
    if data.is_empty() {
        return fw_err("no data to send");
    }
    if let Value::Function(f) = a.get(3) {
        OnTable(lua, ud).replace("sent", f)?;
    }
    send_bytes(rt, &sock, data.len(), || payload(lua, string, &data))
}

/// `send`'s work once it has `len` bytes to send: the board's limits, then the queue. A failure
/// changes nothing, so the fast path (`fast.rs`) can leave it to the binding to raise.
fn send_bytes(
    rt: &Runtime,
    sock: &TcpSocket,
    len: usize,
    payload: impl FnOnce() -> Payload,
) -> FwResult<()> {
    let mut s = sock.0.borrow_mut();
    let id = s.id;
    let Pcb::Live(l) = &s.pcb else {
        return fw_err("not connected");
    };
    let conn = l.conn.clone();
    if legacy(rt) && len > legacy::MAX_SEND {
        return fw_err("need <1460 payload");
    }
    match rt.cfg.target {
        Target::Esp8266 if conn.queued() + len > ESP8266_SND_BUF => {
            return fw_err("out of memory");
        }
        Target::Esp32 if len > ESP32_SND_BUF => return fw_err("buffer error"),
        _ => {}
    }
    // Only the 2016 firmware dropped such sends; from 2017 on the firmware queues them too.
    if rt.cfg.target == Target::Esp8266 && rt.cfg.firmware == Firmware::V1_5 && s.unsent > 0 {
        rt.warn_once(
            &format!("tcp-consecutive-send-{id}"),
            "net.tcpsocket: send() called again before the previous send's \"sent\" event; \
             firmware before 2017 silently dropped such sends (queued here, in order, as later \
             firmware does)",
        );
    }
    // A connection that just ended on the host side: its "disconnection" is on its way, and
    // lwIP would still have accepted the bytes.
    if conn.send(payload()) {
        s.unsent += 1;
    }
    Ok(())
}

/// Sends at least this large are written from the Lua string itself rather than from a copy.
const HOLD_FROM: usize = 16 * 1024;

/// What `send` hands to the connection: a copy of a small string, the string itself if large.
fn payload(lua: &Lua, string: &mlua::LuaString, bytes: &[u8]) -> Payload {
    if bytes.len() < HOLD_FROM {
        return bytes.to_vec().into();
    }
    Payload::Held(Box::new(HeldString {
        ptr: bytes.as_ptr(),
        len: bytes.len(),
        _keep: string.clone(),
        _state: lua.clone(),
    }))
}

/// A Lua string held by the connection until it is written. Lua never moves a string's bytes
/// and never frees them while a reference holds the string, so they can be read without the
/// state's lock, from the connection's task. The state itself is held too: a connection may
/// still be writing after its device reset (fields drop in order: the string, then the state).
struct HeldString {
    ptr: *const u8,
    len: usize,
    _keep: mlua::LuaString,
    _state: Lua,
}

impl AsRef<[u8]> for HeldString {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `_keep` keeps the string, and so these bytes, alive and unmoved (see above).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// `sk:hold()`: stop reading, so the peer's writes stall once the window is full.
fn hold(_: &Lua, _: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let (_, sock) = check_sock(a)?;
    set_hold(&sock, true);
    Ok(())
}

/// `sk:unhold()`.
fn unhold(_: &Lua, _: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let (_, sock) = check_sock(a)?;
    set_hold(&sock, false);
    Ok(())
}

/// `hold`'s and `unhold`'s work (nothing on a socket without a connection).
fn set_hold(sock: &TcpSocket, held: bool) {
    let mut s = sock.0.borrow_mut();
    if let Pcb::Live(l) = &s.pcb {
        if held {
            l.conn.hold();
        } else {
            l.conn.unhold();
        }
        s.held = held;
    }
}

/// `sk:dns(domain[, fn])`: the "dns" callback gets `(sk, ip|nil)`.
fn dns(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let (ud, sock) = check_sock(a)?;
    if sock.0.borrow().released {
        return Ok(());
    }
    let domain = a.check_str(lua, 2)?;
    let on = OnTable(lua, ud);
    if let Value::Function(f) = a.get(3) {
        on.replace("dns", f)?;
    }
    if on.get("dns").is_none() {
        return fw_err("no callback specified");
    }
    rt.anchor(sock.0.borrow().id, ud.clone());
    resolve(lua, rt, &sock.0, &domain, false)
}

/// `sk:ttl([n])`: the IP TTL, read or set.
fn ttl(_: &Lua, _: &Rc<Runtime>, a: &Args) -> FwResult<i64> {
    let (_, sock) = check_sock(a)?;
    let mut s = sock.0.borrow_mut();
    if matches!(s.pcb, Pcb::None) {
        return fw_err("socket is not open/bound yet");
    }
    let n = a.opt_integer(2, -1)?;
    if n == -1 {
        return Ok(s.ttl);
    }
    s.ttl = n;
    if let Pcb::Live(l) = &s.pcb {
        l.conn
            .with_stream(|st| st.set_ttl((n as u32).clamp(1, 255)));
    }
    Ok(n)
}

/// `sk:getpeer()`: `port, ip` of the remote end, or `nil, nil` (`ip, port` under 1.5).
fn getpeer(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<(Value, Value)> {
    let (_, sock) = check_sock(a)?;
    let s = sock.0.borrow();
    let (port, ip) = match &s.pcb {
        Pcb::None => return Ok((Value::Nil, Value::Nil)),
        Pcb::Resolving { port } => (*port, IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        Pcb::Live(l) => (l.peer.port(), l.peer.ip()),
    };
    let port = Value::Integer(port as i64);
    let ip = Value::String(lua.create_string(ip.to_string())?);
    Ok(if legacy(rt) { (ip, port) } else { (port, ip) })
}

/// `sk:getaddr()`: `port, ip` of the local end once bound, or `nil, nil`.
fn getaddr(lua: &Lua, _: &Rc<Runtime>, a: &Args) -> FwResult<(Value, Value)> {
    let (_, sock) = check_sock(a)?;
    let s = sock.0.borrow();
    let Pcb::Live(l) = &s.pcb else {
        return Ok((Value::Nil, Value::Nil));
    };
    let Some(Ok(local)) = l.conn.with_stream(|st| st.local_addr()) else {
        return Ok((Value::Nil, Value::Nil));
    };
    let port = l.device_port.unwrap_or(local.port());
    Ok((
        Value::Integer(port as i64),
        Value::String(lua.create_string(local.ip().to_string())?),
    ))
}
