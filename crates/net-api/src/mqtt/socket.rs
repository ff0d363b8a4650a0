//! `mqtt.socket`: the client `mqtt.Client()` makes, bound the way `mqtt.c` binds it.
//!
//! The bindings here read arguments with the firmware's own cursor rules (an optional argument is
//! taken only if it has the right type, so a `nil` in the middle shifts the rest) and raise its
//! exact errors; the protocol is `host_backend::mqtt::Session` and the connection `link.rs`.
//!
//! Generations: under 3.0 `connect(host[, port[, secure]][, conn_cb[, fail_cb]])`; under 2.2 and
//! 1.5 `connect(host, port, secure, autoreconnect, conn_cb[, fail_cb])`, a shorter `on()` list,
//! `close()` that returns a boolean and fires no "offline", and clean sessions by default.

use std::cell::RefCell;
use std::net::Ipv4Addr;
use std::rc::{Rc, Weak};

use host_backend::mqtt::codec::{self, ConnectInfo, Will};
use host_backend::mqtt::{QoS, Session};
use host_backend::timers::TimerKey;
use mlua::{AnyUserData, Lua, MultiValue, Value};

use super::link::{self, Link};
use crate::config::{Firmware, Target};
use crate::handle_type;
use crate::lauxlib::{Args, FwError, FwResult, arg_check, arg_err, bind, fw_err, typename};
use crate::modules::node::CHIP_ID;
use crate::modules::register_methods;
use crate::net::dns;
use crate::net::events::Callbacks;
use crate::runtime::{LiveIo, Runtime};

pub(crate) const TYPE: &str = "mqtt.socket";

const EVENTS_3_0: &[&str] = &[
    "connect", "connfail", "offline", "message", "overflow", "puback", "suback", "unsuback",
];
const EVENTS_2_2: &[&str] = &["connect", "offline", "message", "overflow"];
const EVENTS_1_5: &[&str] = &["connect", "offline", "message"];

/// `MQTT_DEFAULT_KEEPALIVE`.
const DEFAULT_KEEPALIVE: i64 = 60;
/// `DEFAULT_MAX_MESSAGE_LENGTH`.
const DEFAULT_MAX_MESSAGE_LENGTH: usize = 1024;
/// `MQTT_BUF_SIZE`: the board builds each outgoing packet in a buffer this big.
const BUF_SIZE: usize = 1460;
/// The default broker port.
const PORT: u16 = 1883;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Idle,
    Resolving,
    /// TCP connect (and TLS handshake) in flight.
    Connecting,
    /// The connection is up (the firmware's `connected`), whatever the MQTT state.
    Connected,
    /// The client dropped the connection; "offline" is on its way.
    Closing,
}

pub(crate) struct ClientState {
    pub id: u64,
    pub callbacks: Callbacks,
    pub session: Session,
    pub phase: Phase,
    /// Bumped whenever a connection ends, so its late events are ignored.
    pub generation: u64,
    pub link: Option<Link>,
    pub timer: Option<TimerKey>,
    pub live: Option<LiveIo>,
    pub host: String,
    pub ip: Option<Ipv4Addr>,
    pub port: u16,
    pub secure: bool,
    /// Legacy auto-reconnect asked for (`1`); `reconnecting` is when it is in force.
    pub autoreconnect: bool,
    pub reconnecting: bool,
    pub firmware: Firmware,
}

impl ClientState {
    /// The CONNACK accepted: a 2.2 client that asked for auto-reconnect now has it.
    pub fn on_connack(&mut self) {
        if self.autoreconnect {
            self.reconnecting = true;
        }
    }
}

#[derive(Clone)]
pub struct Client(Rc<RefCell<ClientState>>);
handle_type!(Client, TYPE);

fn check(a: &Args) -> FwResult<(AnyUserData, Client)> {
    a.check_udata::<Client>(1, TYPE)
}

/// `mqtt.Client([clientid][, keepalive][, user][, pass][, cleansession][, max_message_length])`.
pub(crate) fn client(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<Value> {
    let fw = rt.cfg.firmware;
    let mut n = 1;
    let client_id = if a.is_string(n) {
        n += 1;
        a.check_str(lua, n - 1)?
    } else {
        format!("NodeMCU_{CHIP_ID:x}")
    };
    let mut keepalive = 0;
    if a.is_number(n) {
        keepalive = a.check_integer(n)?;
        n += 1;
    }
    if keepalive == 0 {
        keepalive = DEFAULT_KEEPALIVE;
    }
    let text = |n: &mut usize| -> FwResult<String> {
        if a.is_string(*n) {
            *n += 1;
            Ok(String::from_utf8_lossy(&a.check_bytes(lua, *n - 1)?.as_bytes()).into_owned())
        } else {
            Ok(String::new())
        }
    };
    let username = text(&mut n)?;
    let password = text(&mut n)?;
    // 3.0 zeroes its flags, so a clean session is off unless asked for; 2.x defaulted to 1.
    let mut clean_session = fw < Firmware::V3_0;
    if a.is_number(n) {
        clean_session = a.check_integer(n)? != 0;
        n += 1;
    }
    let mut max_len = 0;
    if fw >= Firmware::V2_2 && a.is_number(n) {
        max_len = a.check_integer(n)? as u16 as usize;
    }
    if max_len == 0 {
        max_len = DEFAULT_MAX_MESSAGE_LENGTH;
    }
    let info = ConnectInfo {
        client_id,
        keepalive: keepalive as u16,
        username,
        password,
        clean_session,
        will: None,
    };
    let max_out = (rt.cfg.target != Target::Host).then_some(BUF_SIZE);
    let st = ClientState {
        id: rt.new_id(),
        callbacks: Callbacks::default(),
        session: Session::new(info, max_len, max_out),
        phase: Phase::Idle,
        generation: 0,
        link: None,
        timer: None,
        live: None,
        host: String::new(),
        ip: None,
        port: PORT,
        secure: false,
        autoreconnect: false,
        reconnecting: false,
        firmware: fw,
    };
    Ok(Value::UserData(
        lua.create_userdata(Client(Rc::new(RefCell::new(st))))?,
    ))
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let r = rt.clone();
    let connect_fn = bind(lua, move |lua, a| connect(lua, &r, &a))?;
    let r = rt.clone();
    let close_fn = bind(lua, move |lua, a| close(lua, &r, &a))?;
    let r = rt.clone();
    let publish_fn = bind(lua, move |lua, a| publish(lua, &r, &a))?;
    let r = rt.clone();
    let subscribe_fn = bind(lua, move |lua, a| subscribe(lua, &r, &a, true))?;
    let r = rt.clone();
    let unsubscribe_fn = bind(lua, move |lua, a| subscribe(lua, &r, &a, false))?;
    let lwt_fn = bind(lua, |lua, a| lwt(lua, &a))?;
    let on_fn = bind(lua, |lua, a| on(lua, &a))?;
    register_methods(
        lua,
        TYPE,
        vec![
            ("connect", connect_fn),
            ("close", close_fn),
            ("publish", publish_fn),
            ("subscribe", subscribe_fn),
            ("unsubscribe", unsubscribe_fn),
            ("lwt", lwt_fn),
            ("on", on_fn),
        ],
    )?;
    Ok(())
}

/// `on(event, fn)`: the function is checked first, then the name, as `mqtt.c` does.
fn on(lua: &Lua, a: &Args) -> FwResult<()> {
    let (_, c) = check(a)?;
    let fw = c.0.borrow().firmware;
    if fw >= Firmware::V3_0 {
        let f = a.check_function(3)?;
        let event = a.check_str(lua, 2)?;
        let Some(name) = EVENTS_3_0.iter().find(|n| **n == event) else {
            return arg_err(2, format!("invalid option '{event}'"));
        };
        c.0.borrow_mut().callbacks.replace(name, f);
        return Ok(());
    }
    let event = a.check_str(lua, 2)?;
    let f = a.check_function(3)?;
    let events = if fw >= Firmware::V2_2 {
        EVENTS_2_2
    } else {
        EVENTS_1_5
    };
    match events.iter().find(|n| **n == event) {
        Some(name) => {
            c.0.borrow_mut().callbacks.replace(name, f);
            Ok(())
        }
        None => fw_err("method not supported"),
    }
}

/// `lwt(topic, message[, qos[, retain]])`: kept for the next CONNECT.
fn lwt(lua: &Lua, a: &Args) -> FwResult<()> {
    let (_, c) = check(a)?;
    arg_check(a.is_string(2), 2, "need lwt topic")?;
    arg_check(a.is_string(3), 3, "need lwt message")?;
    let topic = a.check_str(lua, 2)?;
    let message = a.check_bytes(lua, 3)?.as_bytes().to_vec();
    let mut n = 4;
    let mut qos = 0;
    let mut retain = false;
    if a.is_number(n) {
        qos = (a.check_number(n)? as i64 & 3) as u8;
        n += 1;
    }
    if a.is_number(n) {
        retain = a.check_number(n)? as i64 != 0;
    }
    let mut st = c.0.borrow_mut();
    st.session.info_mut().will = (!topic.is_empty()).then_some(Will {
        topic,
        message,
        qos,
        retain,
    });
    Ok(())
}

/// `connect(...)`: the current or the legacy form, by generation.
fn connect(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<Value> {
    let (ud, c) = check(a)?;
    if c.0.borrow().phase != Phase::Idle {
        return fw_err("already connected");
    }
    let host = a.check_str(lua, 2)?;
    let mut n = 3;
    let mut port = PORT;
    if a.is_number(n) {
        port = a.check_number(n)? as i64 as u16;
        n += 1;
    }
    let legacy = rt.cfg.firmware < Firmware::V3_0;
    let (secure, autoreconnect) = if legacy {
        legacy_flags(rt, a, &mut n)?
    } else {
        (secure_flag(rt, a, &mut n)?, false)
    };
    if !legacy
        && matches!(
            a.arg(n),
            Value::Integer(_) | Value::Number(_) | Value::Boolean(_)
        )
        && a.is_function(n + 1)
    {
        rt.warn_once(
            "mqtt-2x-connect",
            "mqtt connect(host, port, secure, autoreconnect, cb) is the 2.x form; under firmware \
             3.0 its callback is the failure callback and autoreconnect is gone: try --firmware 2.2",
        );
    }
    {
        let mut st = c.0.borrow_mut();
        if let Value::Function(f) = a.get(n) {
            st.callbacks.replace("connect", f);
        }
        if let Value::Function(f) = a.get(n + 1) {
            st.callbacks.replace("connfail", f);
        }
        st.phase = Phase::Resolving;
        st.host = host.clone();
        st.ip = None;
        st.port = port;
        st.secure = secure;
        st.autoreconnect = autoreconnect && rt.cfg.firmware >= Firmware::V2_2;
        st.reconnecting = autoreconnect && rt.cfg.firmware < Firmware::V2_2;
        st.live = Some(rt.live_io_guard());
        rt.anchor(st.id, ud);
    }
    let generation = c.0.borrow().generation;
    let weak = Rc::downgrade(&c.0);
    let r = rt.clone();
    dns::resolve_then(lua, rt, &host.clone(), move |lua, ip, _| {
        Ok(resolved(lua, &r, &weak, generation, &host, ip)?)
    })?;
    Ok(if legacy {
        Value::Boolean(true)
    } else {
        Value::Nil
    })
}

fn resolved(
    lua: &Lua,
    rt: &Rc<Runtime>,
    weak: &Weak<RefCell<ClientState>>,
    generation: u64,
    host: &str,
    ip: Option<Ipv4Addr>,
) -> mlua::Result<()> {
    let Some(s) = weak.upgrade() else {
        return Ok(());
    };
    if s.borrow().generation != generation || s.borrow().phase != Phase::Resolving {
        return Ok(());
    }
    s.borrow_mut().ip = ip;
    link::resolved(lua, rt, &s, host, ip)
}

/// 3.0's `secure`: a boolean, or (deprecated) a number.
fn secure_flag(rt: &Runtime, a: &Args, n: &mut usize) -> FwResult<bool> {
    let secure = match a.arg(*n) {
        Value::Boolean(b) => *b,
        _ if a.is_number(*n) => {
            rt.deprecation_note("mqtt.connect secure parameter as integer", "in the future");
            a.check_number(*n)? as i64 != 0
        }
        _ => return Ok(false),
    };
    *n += 1;
    Ok(secure)
}

/// 2.x and 1.5: `secure` and `autoreconnect` as numbers, anything but 0 or 1 meaning 0.
fn legacy_flags(rt: &Runtime, a: &Args, n: &mut usize) -> FwResult<(bool, bool)> {
    let flag = |n: &mut usize| -> FwResult<i64> {
        if !a.is_number(*n) {
            return Ok(0);
        }
        *n += 1;
        Ok(a.check_number(*n - 1)? as i64)
    };
    let secure = flag(n)? == 1;
    let auto = flag(n)?;
    if auto == 1 && rt.cfg.firmware >= Firmware::V2_2 {
        rt.deprecation_note("autoreconnect == 1 is deprecated", "in the next version");
    }
    Ok((secure, auto == 1))
}

/// `close()`: 3.0 queues a DISCONNECT and "offline" follows; 2.x drops the connection at once,
/// quietly, and says whether it could.
fn close(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<MultiValue> {
    let (_, c) = check(a)?;
    let (phase, generation, fw) = {
        let st = c.0.borrow();
        (st.phase, st.generation, st.firmware)
    };
    if fw >= Firmware::V3_0 {
        if phase == Phase::Connected {
            let out = c.0.borrow_mut().session.close();
            link::apply(lua, rt, &c.0, generation, out)?;
        }
        return Ok(MultiValue::new());
    }
    {
        let mut st = c.0.borrow_mut();
        st.autoreconnect = false;
        st.reconnecting = false;
    }
    if phase == Phase::Idle {
        return Ok(MultiValue::from_vec(vec![Value::Boolean(false)]));
    }
    {
        let mut st = c.0.borrow_mut();
        if phase == Phase::Connected
            && let Some(link) = &st.link
        {
            link.send(codec::disconnect());
        }
        st.phase = Phase::Idle;
    }
    link::disconnected(lua, rt, &c.0)?;
    Ok(MultiValue::from_vec(vec![Value::Boolean(
        phase == Phase::Connected,
    )]))
}

fn connected(c: &Client) -> FwResult<u64> {
    let st = c.0.borrow();
    if st.phase != Phase::Connected {
        return fw_err("not connected");
    }
    Ok(st.generation)
}

fn qos_of(n: i64) -> Option<QoS> {
    codec::qos((n & 0xFF) as u8)
}

fn utf8(bytes: &[u8]) -> Option<String> {
    String::from_utf8(bytes.to_vec()).ok()
}

/// `publish(topic, payload, qos, retain[, fn])`: true if queued.
fn publish(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<bool> {
    let (_, c) = check(a)?;
    let generation = connected(&c)?;
    let topic = a.check_bytes(lua, 2)?;
    let payload = a.check_bytes(lua, 3)?;
    let qos = a.check_integer(4)?;
    let retain = a.check_integer(5)? & 0xFF != 0;
    if let Value::Function(f) = a.get(6) {
        c.0.borrow_mut().callbacks.replace("puback", f);
    }
    let (Some(topic), Some(qos)) = (utf8(&topic.as_bytes()), qos_of(qos)) else {
        return Ok(false);
    };
    let (ok, out) =
        c.0.borrow_mut()
            .session
            .publish(&topic, &payload.as_bytes(), qos, retain);
    link::apply(lua, rt, &c.0, generation, out)?;
    Ok(ok)
}

/// `subscribe(topic, qos[, fn])` / `subscribe({topic = qos, ...}[, fn])`, and `unsubscribe` in
/// the same two forms (`sub` false).
fn subscribe(lua: &Lua, rt: &Rc<Runtime>, a: &Args, sub: bool) -> FwResult<bool> {
    let (_, c) = check(a)?;
    let generation = connected(&c)?;
    let what = if sub {
        "subscriptions"
    } else {
        "unsubscriptions"
    };
    let (filters, cb) = match a.get(2) {
        Value::Table(t) => {
            let mut filters = Vec::new();
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair?;
                filters.push((table_key(lua, &k, sub)?, table_qos(&v, sub)?));
            }
            if filters.is_empty() {
                return fw_err("no topics found");
            }
            (filters, 3)
        }
        _ => {
            let topic = a.check_bytes(lua, 2)?.as_bytes().to_vec();
            let qos = if sub { a.check_integer(3)? } else { 0 };
            (vec![(topic, qos)], if sub { 4 } else { 3 })
        }
    };
    if let Value::Function(f) = a.get(cb) {
        let name = if sub { "suback" } else { "unsuback" };
        c.0.borrow_mut().callbacks.replace(name, f);
    }
    let table = matches!(a.arg(2), Value::Table(_));
    let mut parts = Vec::new();
    for (topic, qos) in filters {
        match (utf8(&topic), qos_of(qos)) {
            (Some(t), Some(q)) => parts.push((t, q)),
            _ => return Ok(false),
        }
    }
    let (ok, out) = {
        let mut st = c.0.borrow_mut();
        if sub {
            st.session.subscribe(&parts)
        } else {
            let topics: Vec<String> = parts.into_iter().map(|(t, _)| t).collect();
            st.session.unsubscribe(&topics)
        }
    };
    if table && !ok {
        return fw_err(format!("buffer overflow, can't enqueue all {what}"));
    }
    link::apply(lua, rt, &c.0, generation, out)?;
    Ok(ok)
}

/// A topic key of the table form (`luaL_checkstring(L, -2)`: the board's error counts from the
/// top of the stack, less one for `self`).
fn table_key(lua: &Lua, k: &Value, sub: bool) -> FwResult<Vec<u8>> {
    match k {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        v @ (Value::Integer(_) | Value::Number(_)) => Ok(lua
            .coerce_string(v.clone())?
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default()),
        other => Err(FwError::Msg(format!(
            "bad argument #-3 to '{}' (string expected, got {})",
            if sub { "subscribe" } else { "unsubscribe" },
            typename(other)
        ))),
    }
}

/// A QoS value of the table form (`luaL_checkinteger(L, -1)`); unsubscribe ignores the values.
fn table_qos(v: &Value, sub: bool) -> FwResult<i64> {
    if !sub {
        return Ok(0);
    }
    match crate::lauxlib::to_number(v) {
        Some(x) => Ok(x as i64),
        None => Err(FwError::Msg(format!(
            "bad argument #-2 to 'subscribe' (number expected, got {})",
            typename(v)
        ))),
    }
}
