//! `net.tcpserver`: `listen([port][, ip], fn)`, `getaddr()`, `close()`.
//!
//! A listening server is anchored and holds a live-I/O guard; its accept loop runs in host-backend.
//! Each accepted connection becomes a job on the Lua thread that makes an anchored
//! `net.tcpsocket`, calls `fn(sock)`, then the socket's own "connection" callback if `fn`
//! registered one and left it open, as `net_accept_cb` does.
//!
//! The address the script asks for is the device's: it binds on the host through
//! [`super::host_bind_addr`] (loopback unless `--expose`, ports through `--port-map` and
//! `--port-offset`), and `getaddr` answers in device terms. Accepted connections idle for the
//! server's timeout are closed, as the 2015 firmware did. On the ESP8266 at most
//! five inbound connections are established at once, device-wide; a further client waits in the
//! host's backlog until one of them has closed.

use std::cell::RefCell;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::{Rc, Weak};
use std::time::Duration;

use host_backend::stream::IdleTimer;
use host_backend::tcp::{self, Server, Slots};
use mlua::{AnyUserData, Function, Lua, Value};

use super::{device_port, host_bind_addr, parse_ipv4, tcpsocket};
use crate::config::Target;
use crate::handle_type;
use crate::lauxlib::{Args, FwError, FwResult, bind, fw_err, to_integer, to_number};
use crate::modules::register_methods;
use crate::runtime::{LiveIo, Runtime};

pub const TYPE: &str = "net.tcpserver";
/// `MEMP_NUM_TCP_PCB` on the ESP8266: established inbound connections at once.
const ESP8266_MAX_INBOUND: usize = 5;

struct Listening {
    _server: Server,
    /// `fn(sock)`. Held only while listening (the server is anchored then anyway), so a function
    /// that captures its server does not keep a closed one alive.
    accept: Function,
    asked_ip: Ipv4Addr,
    /// The device port, as `getaddr` reports it (the host port may be mapped).
    port: u16,
    _live: LiveIo,
}

struct ServerState {
    id: u64,
    /// Idle timeout of accepted connections, in seconds (none if not positive).
    timeout: i64,
    listening: Option<Listening>,
    /// Bumped by every `close`, so connections accepted just before it are turned away.
    epoch: u64,
}

#[derive(Clone)]
pub struct TcpServer(Rc<RefCell<ServerState>>);
handle_type!(TcpServer, TYPE);

/// The device-wide inbound connection limit, kept with the Lua state of one boot.
struct InboundSlots(Slots);

fn check_server(a: &Args) -> FwResult<(AnyUserData, TcpServer)> {
    if let Value::UserData(ud) = a.get(1)
        && let Ok(s) = ud.borrow::<TcpServer>()
    {
        let s = s.clone();
        return Ok((ud, s));
    }
    fw_err("invalid user data")
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let limit = (rt.cfg.target == Target::Esp8266).then_some(ESP8266_MAX_INBOUND);
    lua.set_app_data(InboundSlots(Slots::new(limit)));
    let r = rt.clone();
    let listen_fn = bind(lua, move |lua, a| listen(lua, &r, &a))?;
    let r = rt.clone();
    let close_fn = bind(lua, move |_, a| close(&r, &a))?;
    let getaddr_fn = bind(lua, |lua, a| getaddr(lua, &a))?;
    register_methods(
        lua,
        TYPE,
        vec![
            ("listen", listen_fn),
            ("getaddr", getaddr_fn),
            ("close", close_fn),
        ],
    )?;
    Ok(())
}

/// `net.createServer` with an idle timeout in seconds.
pub fn create(lua: &Lua, rt: &Rc<Runtime>, timeout: i64) -> FwResult<Value> {
    let st = ServerState {
        id: rt.new_id(),
        timeout,
        listening: None,
        epoch: 0,
    };
    Ok(Value::UserData(
        lua.create_userdata(TcpServer(Rc::new(RefCell::new(st))))?,
    ))
}

/// `sv:listen([port][, ip], fn)`.
fn listen(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let (ud, srv) = check_server(a)?;
    if srv.0.borrow().listening.is_some() {
        return fw_err("already listening");
    }
    let mut n = 2;
    let mut port = 0u16;
    if let Some(x) = to_number(&a.get(n)) {
        port = to_integer(x).unwrap_or(0) as u16;
        n += 1;
    }
    let mut ip = "0.0.0.0".to_string();
    if a.is_string(n) {
        ip = a.check_str(lua, n)?;
        n += 1;
    }
    let Some(ip) = parse_ipv4(&ip) else {
        return fw_err("invalid IP address");
    };
    let Value::Function(accept) = a.get(n) else {
        return fw_err("need callback");
    };
    let addr = host_bind_addr(rt, ip, port);
    let listener = tcp::listen(addr).map_err(|e| bind_error(rt, &e, addr, port))?;
    let slots = lua
        .app_data_ref::<InboundSlots>()
        .map(|s| s.0.clone())
        .unwrap_or_default();
    let (id, epoch, timeout) = {
        let s = srv.0.borrow();
        (s.id, s.epoch, s.timeout)
    };
    let local = listener
        .local_addr()
        .map_err(|_| FwError::Msg("unknown error".into()))?;
    let dev_port = device_port(rt, local.port(), port);
    let events = rt.event_sink();
    let (r, s) = (Rc::downgrade(rt), Rc::downgrade(&srv.0));
    let idle = (timeout > 0).then(|| IdleTimer::new(Duration::from_secs(timeout as u64)));
    let server = Server::start(listener, slots, move |stream, peer, slot| {
        let (r, s, idle) = (r.clone(), s.clone(), idle.clone());
        events.push(Box::new(move |lua| {
            accepted(lua, &r, &s, epoch, (stream, peer, slot), idle, dev_port)
        }));
    })
    .map_err(|_| FwError::Msg("unknown error".into()))?;
    srv.0.borrow_mut().listening = Some(Listening {
        _server: server,
        accept,
        asked_ip: ip,
        port: dev_port,
        _live: rt.live_io_guard(),
    });
    rt.anchor(id, ud);
    Ok(())
}

/// A host bind failure in the firmware's words, with the host's reason on the diagnostic channel.
fn bind_error(rt: &Runtime, e: &io::Error, addr: SocketAddr, port: u16) -> FwError {
    let hint = match e.kind() {
        io::ErrorKind::PermissionDenied => format!(
            " (the host needs privileges for port {}: try --port-map {port}=8080 or --port-offset 10000)",
            addr.port()
        ),
        _ => String::new(),
    };
    rt.diag(&format!("cannot listen on {addr}: {e}{hint}"));
    match e.kind() {
        io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied => {
            FwError::Msg("address in use".into())
        }
        _ => FwError::Msg("unknown error".into()),
    }
}

type Accepted = (tokio::net::TcpStream, SocketAddr, tcp::Slot);

/// One accepted connection, on the Lua thread: the socket, `fn(sock)`, then "connection".
fn accepted(
    lua: &Lua,
    rt: &Weak<Runtime>,
    srv: &Weak<RefCell<ServerState>>,
    epoch: u64,
    (stream, peer, slot): Accepted,
    idle: Option<IdleTimer>,
    dev_port: u16,
) -> mlua::Result<()> {
    let (Some(rt), Some(srv)) = (rt.upgrade(), srv.upgrade()) else {
        return Ok(());
    };
    let f = {
        let s = srv.borrow();
        match &s.listening {
            Some(l) if s.epoch == epoch => l.accept.clone(),
            _ => return Ok(()), // closed meanwhile: lwIP aborts the new connection
        }
    };
    let sock = tcpsocket::accepted(lua, &rt, stream, peer, slot, idle, dev_port)?;
    rt.call_net(lua, &f, &sock.0)?;
    if rt.take_reset().is_some() {
        return Ok(());
    }
    tcpsocket::connected(lua, &rt, &sock)
}

/// `sv:close()`: stops listening; accepted connections stay open.
///
/// Closing a server that is not listening does nothing: the seed API's own example creates a
/// server and closes it straight away (`sv = net.createServer(net.TCP, 30); sv:close()`), and
/// 2015 scripts must run unmodified. The current firmware would raise
/// `not connected` here; the rule that `close()` on a closed handle raises is about sockets, which keep it.
fn close(rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let (_, srv) = check_server(a)?;
    let mut s = srv.0.borrow_mut();
    if s.listening.take().is_none() {
        return Ok(());
    }
    s.epoch += 1;
    rt.unanchor(s.id);
    Ok(())
}

/// `sv:getaddr()`: `port, ip` as the device sees them, or `nil, nil` when not listening.
fn getaddr(lua: &Lua, a: &Args) -> FwResult<(Value, Value)> {
    let (_, srv) = check_server(a)?;
    let s = srv.0.borrow();
    Ok(match &s.listening {
        Some(l) => (
            Value::Integer(l.port as i64),
            Value::String(lua.create_string(l.asked_ip.to_string())?),
        ),
        None => (Value::Nil, Value::Nil),
    })
}
