//! `mdns`: the firmware's mDNS responder (`app/modules/mdns.c` over `app/net/nodemcu_mdns.c`),
//! answering real queries on the host's UDP.
//!
//! `mdns.register(hostname[, attributes])` needs an address (the station's, or the soft AP's in
//! SOFTAP mode: `No network connection` before), replaces any running responder, and announces
//! the service at once and every 280 s (the service type every twelfth time). `mdns.close()`
//! stops it. The answers themselves are in `answer.rs`.
//!
//! On the host the responder listens where a device's UDP socket on port 5353 would: 127.0.0.1
//! (every interface with `--expose`), its port through `--port-map` / `--port-offset` since 5353
//! is often taken by the host's own responder, joined to 224.0.0.251 on that interface. A query
//! from the mDNS port without the QU bit is answered to the group; any other (a legacy unicast
//! query, or one with QU) to its sender. Queries are answered as they arrive, without the Lua
//! thread, as lwIP answers them on the board; the responder keeps no run alive by itself.

use std::cell::{Cell, RefCell};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::{Rc, Weak};
use std::time::Duration;

use hickory_proto::op::Message;
use host_backend::timers::TimerKey;
use host_backend::udp::{Datagram, Endpoint};
use mlua::{Lua, Value};

use crate::lauxlib::{Args, FwResult, arg_err, bind, binding_name, fw_err, typename};
use crate::modules::module_table;
use crate::modules::wifi::service_ip;
use crate::runtime::Runtime;

mod answer;

use answer::{Delivery, Info, Names};

/// `DNS_MDNS_PORT` and the group mDNS lives on.
pub const MDNS_PORT: u16 = 5353;
const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
/// The responder's re-announcement period (`os_timer_arm(&mdns_timer, 1000 * 280, 1)`).
const ANNOUNCE: Duration = Duration::from_secs(280);
/// `txt_data[10]`: attributes past the tenth are not read.
const MAX_TXT: usize = 10;
/// `DNS_MSG_SIZE`, and the smallest packet that can hold a question.
const MAX_QUERY: usize = 512;
const MIN_QUERY: usize = 12 + 4 + 10;

/// The running responder.
struct Responder {
    rt: Weak<Runtime>,
    info: Info,
    names: Names,
    ep: RefCell<Option<Endpoint>>,
    /// Where multicast answers go: the group on the responder's host port.
    group: SocketAddrV4,
    announce: Cell<Option<TimerKey>>,
    /// `reg_counter`: the service type goes out with every twelfth announcement.
    reg_counter: Cell<u8>,
}

/// The boot's responder, if one runs.
#[derive(Default)]
struct Slot(RefCell<Option<Rc<Responder>>>);

fn slot(rt: &Runtime) -> Rc<Slot> {
    rt.state(|_| Slot::default())
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let r = rt.clone();
    let register = bind(lua, move |lua, a| register(lua, &r, &a))?;
    let r = rt.clone();
    let close = bind(lua, move |_, _| {
        close(&r);
        Ok(())
    })?;
    let t = module_table(lua, vec![("register", register), ("close", close)])?;
    lua.globals().set("mdns", t)
}

/// `luaL_argerror` at a stack index counted from the top, as the firmware checks table entries.
fn top_arg_err<T>(lua: &Lua, n: i32, expected: &str, got: &Value) -> FwResult<T> {
    let name = binding_name(lua);
    fw_err(format!(
        "bad argument #{n} to '{name}' ({expected} expected, got {})",
        typename(got)
    ))
}

/// `luaL_checkstring` on a value: strings, and numbers in their string form.
fn check_string(lua: &Lua, v: &Value, n: i32) -> FwResult<Vec<u8>> {
    match v {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Integer(_) | Value::Number(_) => match lua.coerce_string(v.clone())? {
            Some(s) => Ok(s.as_bytes().to_vec()),
            None => top_arg_err(lua, n, "string", v),
        },
        _ => top_arg_err(lua, n, "string", v),
    }
}

/// `mdns.register(hostname[, attributes])`.
fn register(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let host = a.check_bytes(lua, 1)?.as_bytes().to_vec();
    let mut info = Info {
        host_name: host.clone(),
        host_desc: host,
        service_name: b"http".to_vec(),
        port: 80,
        txt: Vec::new(),
    };
    if a.len() >= 2 {
        let Value::Table(t) = a.get(2) else {
            return arg_err(2, format!("table expected, got {}", typename(a.arg(2))));
        };
        for pair in t.pairs::<Value, Value>() {
            if info.txt.len() >= MAX_TXT {
                break;
            }
            let (k, v) = pair?;
            let Value::String(key) = &k else {
                return top_arg_err(lua, -2, "string", &k);
            };
            match &*key.as_bytes() {
                b"port" => {
                    let port = crate::lauxlib::to_number(&v)
                        .and_then(crate::lauxlib::to_integer)
                        .map_or_else(|| top_arg_err(lua, -1, "number", &v), Ok)?;
                    // `service_port` is a uint16: larger numbers keep their low bits.
                    info.port = port as u16;
                }
                b"service" => info.service_name = check_string(lua, &v, -1)?,
                b"description" => info.host_desc = check_string(lua, &v, -1)?,
                other => {
                    let mut entry = other.to_vec();
                    entry.push(b'=');
                    entry.extend_from_slice(&check_string(lua, &v, -1)?);
                    info.txt.push(entry);
                }
            }
        }
    }
    if service_ip(rt).is_none() {
        return fw_err("No network connection");
    }
    close(rt);
    match start(rt, info) {
        Some(r) => {
            *slot(rt).0.borrow_mut() = Some(r.clone());
            r.reg_counter.set(99);
            announce(&r);
            Ok(())
        }
        None => fw_err("Unable to start mDns daemon"),
    }
}

/// `mdns.close()` (and the first step of every `register`).
fn close(rt: &Runtime) {
    if let Some(r) = slot(rt).0.borrow_mut().take() {
        if let Some(key) = r.announce.take() {
            rt.cancel_timer(key);
        }
        r.ep.borrow_mut().take();
    }
}

/// Binds the responder's socket and joins the group; `None` (with the reason on stderr) when
/// the host refuses.
fn start(rt: &Rc<Runtime>, info: Info) -> Option<Rc<Responder>> {
    let Some(names) = info.names() else {
        rt.diag("mdns: the names cannot be carried by DNS (an empty or over-long label)");
        return None;
    };
    let std::net::SocketAddr::V4(host) =
        crate::net::host_bind_addr(rt, Ipv4Addr::UNSPECIFIED, MDNS_PORT)
    else {
        return None;
    };
    let r = Rc::new(Responder {
        rt: Rc::downgrade(rt),
        info,
        names,
        ep: RefCell::new(None),
        group: SocketAddrV4::new(GROUP, host.port()),
        announce: Cell::new(None),
        reg_counter: Cell::new(0),
    });
    let weak = Rc::downgrade(&r);
    let ep = Endpoint::bind(host, move |d| {
        if let Some(r) = weak.upgrade() {
            on_query(&r, &d);
        }
    });
    let ep = match ep {
        Ok(ep) => ep,
        Err(e) => {
            rt.diag(&format!(
                "mdns: cannot bind UDP {host} on the host ({e}); give the responder a free port \
                 with --port-map {MDNS_PORT}=PORT"
            ));
            return None;
        }
    };
    let iface = if host.ip().is_unspecified() {
        Ipv4Addr::UNSPECIFIED
    } else {
        *host.ip()
    };
    if let Err(e) = ep.join_group(GROUP, iface) {
        rt.warn_once(
            "mdns-join",
            &format!("mdns: cannot join {GROUP} on the host ({e}); only unicast queries reach it"),
        );
    }
    *r.ep.borrow_mut() = Some(ep);
    Some(r)
}

impl Responder {
    /// The address the A record gives: the interface's, read when the answer is made.
    fn ip(&self) -> Ipv4Addr {
        self.rt
            .upgrade()
            .and_then(|rt| service_ip(&rt))
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    fn send(&self, m: &Message, to: SocketAddrV4) {
        let Ok(bytes) = m.to_vec() else { return };
        if let Some(ep) = self.ep.borrow().as_ref() {
            // A full host queue drops the answer, as a full lwIP queue would.
            let _ = ep.send_to(&bytes, to);
        }
    }
}

/// `mdns_reg`: the unsolicited service block, the service type every twelfth time, then the
/// next announcement.
fn announce(r: &Rc<Responder>) {
    let ip = r.ip();
    r.send(
        &answer::service(&r.info, &r.names, ip, 0, Delivery::Multicast),
        r.group,
    );
    let n = r.reg_counter.get();
    r.reg_counter.set(n.wrapping_add(1));
    if n > 10 {
        r.send(
            &answer::service_type(&r.names, 0, Delivery::Multicast),
            r.group,
        );
        r.reg_counter.set(0);
    }
    rearm(r);
}

/// Every multicast service block pushes the next announcement 280 s away, as the firmware's
/// re-arm of its one timer does. The timer belongs to the simulated world: it alone keeps no
/// run alive.
fn rearm(r: &Rc<Responder>) {
    let Some(rt) = r.rt.upgrade() else { return };
    if let Some(key) = r.announce.take() {
        rt.cancel_timer(key);
    }
    let weak = Rc::downgrade(r);
    let key = rt.arm_background_at(
        rt.now() + ANNOUNCE,
        Box::new(move |_| {
            if let Some(r) = weak.upgrade() {
                r.announce.set(None);
                announce(&r);
            }
            Ok(())
        }),
    );
    r.announce.set(Some(key));
}

/// `mdns_recv`: each question of a query, answered in turn.
fn on_query(r: &Rc<Responder>, d: &Datagram) {
    if !(MIN_QUERY..=MAX_QUERY).contains(&d.data.len()) {
        return;
    }
    let Ok(msg) = Message::from_vec(&d.data) else {
        return;
    };
    let id = msg.metadata.id;
    let from_mdns_port = d.from.port() == MDNS_PORT || d.from.port() == r.group.port();
    let mut how = Delivery::Unicast;
    let ip = r.ip();
    for q in &msg.queries {
        // Once one question asks for a multicast answer, the rest of the packet's answers go
        // there too (the firmware clears the sender's address for good).
        if from_mdns_port && u16::from(q.query_class) & 0x8000 == 0 {
            how = Delivery::Multicast;
        }
        let Some(reply) = answer::answer(&r.info, &r.names, ip, id, &q.name, q.query_type, how)
        else {
            continue;
        };
        match how {
            Delivery::Unicast => r.send(&reply, d.from),
            Delivery::Multicast => {
                r.send(&reply, r.group);
                if reply.answers.len() == 4 {
                    rearm(r);
                }
            }
        }
    }
}
