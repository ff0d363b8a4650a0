//! `net.udpsocket`: UDP sockets, in the current API and the 2015 one.
//!
//! A socket is a handle on [`UdpState`]. It is unbound until `listen()` (or the first `send()`,
//! which binds an ephemeral port as lwIP does); while bound it owns a host socket
//! (`host_backend::udp::Endpoint`), is anchored in the runtime (the firmware's `self_ref`), keeps
//! the run alive, and takes one of the device's UDP PCBs (4 on the ESP8266). Every datagram the host
//! receives becomes one "receive" callback `(s, data, port, ip)`, in arrival order, boundaries kept.
//! "sent" fires inside `send()`, before any send error is raised, as the firmware does.
//!
//! The 2015 object (`net.createConnection(net.UDP, 0)`) has the same methods plus `connect(port,
//! ip)`, which sets the peer that `send(data)` then sends to. It shares the type
//! name `net.udpsocket`; only its method table differs, so a current socket has no `connect`.
//!
//! Multicast membership (`net.multicastJoin`, see `iface.rs`) is the device's, not a socket's: the
//! groups live in [`UdpRegistry`] and apply to every socket bound to the wildcard address, now and
//! later, as lwIP's interface-level IGMP does.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::{Rc, Weak};

use host_backend::udp::{Datagram, Endpoint};
use mlua::{AnyUserData, Lua, MetaMethod, Table, UserData, UserDataFields, UserDataMethods, Value};

use super::dns::{Lookup, lookup};
use super::events::Callbacks;
use crate::config::Target;
use crate::lauxlib::{Args, FwError, FwResult, bind, fw_err};
use crate::modules::register_methods;
use crate::runtime::{LiveIo, Runtime};

const TYPE: &str = "net.udpsocket";
/// Registry key of the 2015 object's method table (the current table plus `connect`).
const LEGACY_METHODS: &str = "net.udpsocket/2015";
const EVENTS: &[&str] = &["dns", "receive", "sent"];
/// lwIP's `IP_DEFAULT_TTL`.
const DEFAULT_TTL: i64 = 255;
/// The largest payload of an unfragmented datagram on a 1500-byte MTU. The ESP8266's lwIP is built
/// with neither `IP_FRAG` nor `IP_REASSEMBLY`, so bigger datagrams go nowhere, in either direction.
pub const MAX_DATAGRAM: usize = 1472;
/// The 2015 firmware's limit on one `send()`.
const LEGACY_MAX_SEND: usize = 1460;

/// `MEMP_NUM_UDP_PCB`: how many UDP sockets may be bound at once.
fn max_sockets(t: Target) -> Option<usize> {
    (t == Target::Esp8266).then_some(4)
}

fn limits_datagrams(t: Target) -> bool {
    t == Target::Esp8266
}

/// The device-wide UDP state of one boot: how many PCBs are taken, the sockets, joined groups.
#[derive(Default)]
pub(crate) struct UdpRegistry {
    open: Cell<usize>,
    sockets: RefCell<Vec<Weak<RefCell<UdpState>>>>,
    /// Joined multicast groups and the host interface each was joined on.
    groups: RefCell<Vec<(Ipv4Addr, Ipv4Addr)>>,
}

fn registry(rt: &Runtime) -> Rc<UdpRegistry> {
    rt.state(|_| UdpRegistry::default())
}

/// One taken PCB; dropping it gives it back.
struct Pcb(Rc<UdpRegistry>);

impl Drop for Pcb {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get() - 1);
    }
}

/// A bound socket's host side and what the script sees of it.
struct Bound {
    ep: Endpoint,
    /// The address the script bound (0.0.0.0 unless it named one); `getaddr` reports it.
    ip: Ipv4Addr,
    /// The port `getaddr` reports: the one the script asked for, or the ephemeral one.
    port: u16,
    ttl: i64,
    _live: LiveIo,
    _pcb: Pcb,
}

pub(crate) struct UdpState {
    id: u64,
    cbs: Callbacks,
    bound: Option<Bound>,
    /// Counts binds, so datagrams a closed socket had already received never reach its next bind.
    generation: u64,
    /// The 2015 API's peer, set by `connect(port, ip)`.
    peer: Option<SocketAddrV4>,
    /// Lookups in flight (`sock:dns`, `connect` to a name); the socket stays anchored meanwhile.
    wait_dns: u32,
}

#[derive(Clone)]
pub struct UdpSocket {
    st: Rc<RefCell<UdpState>>,
    legacy: bool,
}

impl UserData for UdpSocket {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", TYPE);
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Index, |lua, this, key: Value| {
            let name = if this.legacy { LEGACY_METHODS } else { TYPE };
            lua.named_registry_value::<Table>(name)?
                .raw_get::<Value>(key)
        });
    }
}

/// `net_get_udata`: not a userdata is "invalid user data"; another kind of userdata is a type error.
fn check(a: &Args) -> FwResult<(AnyUserData, UdpSocket)> {
    if !matches!(a.get(1), Value::UserData(_)) {
        return fw_err("invalid user data");
    }
    a.check_udata::<UdpSocket>(1, TYPE)
}

/// lwIP's error codes as the firmware's messages, for what the host socket reported.
fn lwip_message(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::OutOfMemory => "out of memory",
        io::ErrorKind::AddrInUse => "address in use",
        io::ErrorKind::InvalidInput
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::AddrNotAvailable => "routing problem",
        io::ErrorKind::FileTooLarge => "buffer error",
        _ if e.raw_os_error() == Some(90) => "buffer error", // EMSGSIZE
        _ => "illegal value",
    }
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let mut methods = Vec::new();
    let r = rt.clone();
    methods.push(("listen", bind(lua, move |lua, a| listen(lua, &r, &a))?));
    let r = rt.clone();
    methods.push(("close", bind(lua, move |_, a| close(&r, &a))?));
    methods.push((
        "on",
        bind(lua, |lua, a| {
            let (_, s) = check(&a)?;
            let event = a.check_str(lua, 2)?;
            s.st.borrow_mut().cbs.set(EVENTS, &event, a.get(3))
        })?,
    ));
    let r = rt.clone();
    methods.push(("send", bind(lua, move |lua, a| send(lua, &r, &a))?));
    let r = rt.clone();
    methods.push(("dns", bind(lua, move |lua, a| dns(lua, &r, &a))?));
    if rt.cfg.target != Target::Esp32 {
        methods.push(("ttl", bind(lua, |_, a| ttl(&a))?));
    }
    methods.push((
        "getaddr",
        bind(lua, |_, a| {
            let (_, s) = check(&a)?;
            let st = s.st.borrow();
            Ok(match &st.bound {
                Some(b) => (Some(b.port), Some(b.ip.to_string())),
                None => (None, None),
            })
        })?,
    ));
    let r = rt.clone();
    let connect = bind(lua, move |lua, a| connect(lua, &r, &a))?;
    register_methods(lua, TYPE, methods.clone())?;
    methods.push(("connect", connect));
    register_methods(lua, LEGACY_METHODS, methods)?;
    Ok(())
}

/// A UDP socket; `legacy` is the 2015 `net.createConnection(net.UDP, 0)` form with `connect(port, ip)`.
pub fn create(lua: &Lua, rt: &Rc<Runtime>, legacy: bool) -> FwResult<Value> {
    let st = UdpState {
        id: rt.new_id(),
        cbs: Callbacks::default(),
        bound: None,
        generation: 0,
        peer: None,
        wait_dns: 0,
    };
    let s = UdpSocket {
        st: Rc::new(RefCell::new(st)),
        legacy,
    };
    Ok(Value::UserData(lua.create_userdata(s)?))
}

/// How a socket gets its host address.
#[derive(Clone, Copy)]
enum Bind {
    /// `listen()`: the host's exposure rules (0.0.0.0 is 127.0.0.1 unless `--expose`, ports mapped).
    Listen,
    /// The automatic bind of a first `send()` or `connect()` toward this peer: loopback for a
    /// loopback peer (unless `--expose`), any host address otherwise, as any UDP client on the host
    /// binds, so the device can reach the peer.
    Toward(Option<Ipv4Addr>),
}

/// Binds the socket: `ip:port` as the script sees it, on the host as `how` says.
fn open(
    rt: &Rc<Runtime>,
    ud: &AnyUserData,
    s: &UdpSocket,
    ip: Ipv4Addr,
    port: u16,
    how: Bind,
) -> FwResult<()> {
    let reg = registry(rt);
    if max_sockets(rt.cfg.target).is_some_and(|m| reg.open.get() >= m) {
        return fw_err("cannot allocate PCB");
    }
    let host = match how {
        Bind::Listen => super::host_bind_addr(rt, ip, port),
        Bind::Toward(Some(peer)) if peer.is_loopback() && !rt.cfg.net.expose => {
            std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
        }
        Bind::Toward(_) => std::net::SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
    };
    let std::net::SocketAddr::V4(host) = host else {
        return fw_err("illegal value");
    };
    let generation = s.st.borrow().generation + 1;
    let on_datagram = receiver(rt, &s.st, generation);
    let ep = match Endpoint::bind(host, on_datagram.clone()) {
        Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {
            // lwIP binds any address; the host only its own. Listen on loopback instead.
            rt.warn_once(
                &format!("udp-bind-{ip}"),
                &format!(
                    "the host has no address {ip}; UDP sockets bound to it listen on 127.0.0.1"
                ),
            );
            Endpoint::bind(
                SocketAddrV4::new(Ipv4Addr::LOCALHOST, host.port()),
                on_datagram,
            )
        }
        other => other,
    };
    let ep = ep.map_err(|e| {
        if e.kind() != io::ErrorKind::AddrInUse {
            rt.diag(&format!("cannot bind UDP {host} on the host: {e}"));
        }
        FwError::Msg("address in use".into())
    })?;
    let _ = ep.set_ttl(DEFAULT_TTL as u32);
    if ip.is_unspecified() {
        for (group, iface) in reg.groups.borrow().iter() {
            if let Err(e) = ep.join_group(*group, *iface) {
                rt.diag(&format!(
                    "cannot join multicast group {group} on the host: {e}"
                ));
            }
        }
    }
    let port = super::device_port(rt, ep.local_addr().port(), port);
    reg.open.set(reg.open.get() + 1);
    let bound = Bound {
        ep,
        ip,
        port,
        ttl: DEFAULT_TTL,
        _live: rt.live_io_guard(),
        _pcb: Pcb(reg.clone()),
    };
    {
        let mut st = s.st.borrow_mut();
        st.bound = Some(bound);
        st.generation = generation;
        rt.anchor(st.id, ud.clone());
    }
    let mut sockets = reg.sockets.borrow_mut();
    sockets.retain(|w| w.strong_count() > 0 && !w.ptr_eq(&Rc::downgrade(&s.st)));
    sockets.push(Rc::downgrade(&s.st));
    Ok(())
}

/// What the host socket's reader does with a datagram: queue its "receive" for the Lua thread.
fn receiver(
    rt: &Rc<Runtime>,
    st: &Rc<RefCell<UdpState>>,
    generation: u64,
) -> impl Fn(Datagram) + Clone + 'static {
    let (sink, rt, st) = (rt.event_sink(), Rc::downgrade(rt), Rc::downgrade(st));
    move |d: Datagram| {
        let (rt, st) = (rt.clone(), st.clone());
        sink.push(Box::new(move |lua| match (rt.upgrade(), st.upgrade()) {
            (Some(rt), Some(st)) => deliver(lua, &rt, &st, generation, d),
            _ => Ok(()),
        }));
    }
}

fn deliver(
    lua: &Lua,
    rt: &Rc<Runtime>,
    st: &Rc<RefCell<UdpState>>,
    generation: u64,
    d: Datagram,
) -> mlua::Result<()> {
    let (id, cb) = {
        let s = st.borrow();
        if s.generation != generation || s.bound.is_none() {
            return Ok(());
        }
        (s.id, s.cbs.get("receive"))
    };
    if limits_datagrams(rt.cfg.target) && d.data.len() > MAX_DATAGRAM {
        rt.warn_once(
            "udp-rx-too-big",
            &format!(
                "dropped a {}-byte datagram: an ESP8266 receives at most {MAX_DATAGRAM} bytes per datagram (no IP reassembly)",
                d.data.len()
            ),
        );
        return Ok(());
    }
    let (Some(cb), Some(ud)) = (cb, rt.anchored(id)) else {
        return Ok(());
    };
    let data = lua.create_string(&d.data)?;
    rt.call_net(lua, &cb, (ud, data, d.from.port(), d.from.ip().to_string()))
}

/// `udp:listen([port][, ip])`.
fn listen(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let (ud, s) = check(a)?;
    if s.st.borrow().bound.is_some() {
        return fw_err("already listening");
    }
    let mut n = 2;
    let mut port = 0u16;
    if a.is_number(n) {
        // uint16_t in the firmware: out-of-range numbers wrap.
        port = a.check_integer(n)? as u16;
        n += 1;
    }
    let mut ip = Ipv4Addr::UNSPECIFIED;
    if a.is_string(n) {
        ip = match super::parse_ipv4(&a.check_str(lua, n)?) {
            Some(ip) => ip,
            None => return fw_err("invalid IP address"),
        };
    }
    open(rt, &ud, &s, ip, port, Bind::Listen)
}

/// `udp:close()`: no callback fires; the socket can listen or send again later.
fn close(rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let (_, s) = check(a)?;
    let (bound, id, waiting) = {
        let mut st = s.st.borrow_mut();
        (st.bound.take(), st.id, st.wait_dns > 0)
    };
    let Some(bound) = bound else {
        return fw_err("not connected");
    };
    drop(bound);
    if !waiting {
        rt.unanchor(id);
    }
    Ok(())
}

/// `udp:send(port, ip, data[, fn])`, and on the 2015 object `send(data[, fn])` to its peer.
fn send(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let (ud, s) = check(a)?;
    let legacy_form = s.legacy && a.len() <= 3;
    let (dest, data_arg) = if legacy_form {
        (None, 2)
    } else {
        let port = a.check_integer(2)? as u16;
        if port == 0 {
            return fw_err("need port");
        }
        let ip = a.check_str(lua, 3)?;
        match super::parse_ipv4(&ip) {
            Some(ip) => (Some(SocketAddrV4::new(ip, port)), 4),
            None => return fw_err("invalid IP address"),
        }
    };
    let data = a.check_bytes(lua, data_arg)?;
    let data = data.as_bytes();
    if data.is_empty() {
        return fw_err("no data to send");
    }
    if legacy_form && rt.cfg.target.is_device() && data.len() > LEGACY_MAX_SEND {
        return fw_err("need <1460 payload");
    }
    if let Value::Function(f) = a.get(data_arg + 1) {
        s.st.borrow_mut().cbs.replace("sent", f);
    }
    let dest = match dest.or(s.st.borrow().peer) {
        Some(d) => d,
        None => return fw_err("not connected"),
    };
    if s.st.borrow().bound.is_none() {
        open(
            rt,
            &ud,
            &s,
            Ipv4Addr::UNSPECIFIED,
            0,
            Bind::Toward(Some(*dest.ip())),
        )?;
    }
    let result = if limits_datagrams(rt.cfg.target) && data.len() > MAX_DATAGRAM {
        rt.warn_once(
            "udp-tx-too-big",
            &format!(
                "a {}-byte datagram was not sent: an ESP8266 sends at most {MAX_DATAGRAM} bytes per datagram (no IP fragmentation)",
                data.len()
            ),
        );
        Ok(())
    } else {
        let st = s.st.borrow();
        match st.bound.as_ref() {
            Some(b) => b.ep.send_to(&data, dest),
            None => Err(io::Error::from(io::ErrorKind::NotConnected)),
        }
    };
    if let Err(e) = &result
        && e.kind() == io::ErrorKind::InvalidInput
    {
        rt.warn_once(
            "udp-send-confined",
            "a UDP socket bound to 127.0.0.1 can only reach this host; run with --expose to reach other hosts",
        );
    }
    let sent = s.st.borrow().cbs.get("sent");
    if let Some(cb) = sent {
        rt.call_sync(lua, &cb, ud)?;
    }
    result.map_err(|e| FwError::Msg(lwip_message(&e).into()))
}

/// `udp:ttl([n])`: get, or set and return `n`; lwIP stores it in a byte.
fn ttl(a: &Args) -> FwResult<i64> {
    let (_, s) = check(a)?;
    let n = a.opt_integer(2, -1)?;
    let mut st = s.st.borrow_mut();
    let Some(b) = st.bound.as_mut() else {
        return fw_err("socket is not open/bound yet");
    };
    if n == -1 {
        return Ok(b.ttl);
    }
    b.ttl = n & 0xFF;
    // The host refuses a TTL of 0; the device would send datagrams that die at the first hop.
    if b.ttl > 0 {
        let _ = b.ep.set_ttl(b.ttl as u32);
    }
    Ok(n)
}

/// Ends one lookup the socket was waiting for; an unbound socket with none left lets go.
fn dns_finished(rt: &Runtime, st: &Rc<RefCell<UdpState>>) {
    let mut s = st.borrow_mut();
    s.wait_dns = s.wait_dns.saturating_sub(1);
    if s.bound.is_none() && s.wait_dns == 0 {
        rt.unanchor(s.id);
    }
}

/// Starts a lookup for this socket: `then` runs with the address, then the "dns" callback
/// `(s, ip|nil)` (inside the call for a dotted quad).
fn socket_lookup(
    lua: &Lua,
    rt: &Rc<Runtime>,
    ud: &AnyUserData,
    s: &UdpSocket,
    name: &str,
    then: impl Fn(&UdpSocket, Ipv4Addr) + 'static,
) -> FwResult<()> {
    let id = {
        let mut st = s.st.borrow_mut();
        st.wait_dns += 1;
        st.id
    };
    rt.anchor(id, ud.clone());
    let (r, sock) = (rt.clone(), s.clone());
    let answer = move |lua: &Lua, ip: Option<Ipv4Addr>, sync: bool| -> FwResult<()> {
        // The peer is set first, so the "dns" callback may already send to it.
        if let Some(ip) = ip {
            then(&sock, ip);
        }
        let cb = sock.st.borrow().cbs.get("dns");
        let ip_value = match ip {
            Some(ip) => Value::String(lua.create_string(ip.to_string())?),
            None => Value::Nil,
        };
        let outcome = match (cb, r.anchored(id)) {
            (Some(cb), Some(ud)) if sync => r.call_sync(lua, &cb, (ud, ip_value)),
            (Some(cb), Some(ud)) => Ok(r.call_net(lua, &cb, (ud, ip_value))?),
            _ => Ok(()),
        };
        dns_finished(&r, &sock.st);
        outcome
    };
    let answer = Rc::new(answer);
    let later = answer.clone();
    match lookup(rt, name, move |lua, ip| match later(lua, ip, false) {
        Ok(()) => Ok(()),
        Err(FwError::Lua(e)) => Err(e),
        Err(_) => Ok(()),
    }) {
        Ok(Lookup::Now(ip)) => answer(lua, Some(ip), true),
        Ok(Lookup::Pending) => Ok(()),
        Err(e) => {
            dns_finished(rt, &s.st);
            Err(e)
        }
    }
}

/// `udp:dns(domain[, fn])`.
fn dns(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let (ud, s) = check(a)?;
    let domain = a.check_str(lua, 2)?;
    if let Value::Function(f) = a.get(3) {
        s.st.borrow_mut().cbs.replace("dns", f);
    }
    if s.st.borrow().cbs.get("dns").is_none() {
        return fw_err("no callback specified");
    }
    socket_lookup(lua, rt, &ud, &s, &domain, |_, _| {})
}

/// `sk:connect(port, ip|name)` on the 2015 object: binds an ephemeral port if needed and sets the
/// peer `send(data)` goes to (after the lookup, for a name).
fn connect(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let (ud, s) = check(a)?;
    let (port, host) = super::connect_target(lua, a)?;
    if s.st.borrow().bound.is_none() {
        let peer = super::parse_ipv4(&host);
        open(rt, &ud, &s, Ipv4Addr::UNSPECIFIED, 0, Bind::Toward(peer))?;
    }
    socket_lookup(lua, rt, &ud, &s, &host, move |s, ip| {
        s.st.borrow_mut().peer = Some(SocketAddrV4::new(ip, port));
    })
}

/// Applies a multicast join or leave to every socket bound to the wildcard address, and remembers
/// it for sockets bound later. The first host error, if any, is returned for a diagnostic.
pub(crate) fn multicast(
    rt: &Runtime,
    join: bool,
    group: Ipv4Addr,
    iface: Ipv4Addr,
) -> io::Result<()> {
    let reg = registry(rt);
    {
        let mut groups = reg.groups.borrow_mut();
        groups.retain(|(g, _)| *g != group);
        if join {
            groups.push((group, iface));
        }
    }
    let sockets: Vec<_> = reg
        .sockets
        .borrow()
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    let mut first_err = Ok(());
    for st in sockets {
        let st = st.borrow();
        let Some(b) = st.bound.as_ref().filter(|b| b.ip.is_unspecified()) else {
            continue;
        };
        let r = if join {
            b.ep.join_group(group, iface)
        } else {
            b.ep.leave_group(group, iface)
        };
        if first_err.is_ok() {
            first_err = r;
        }
    }
    first_err
}
