//! The I/O side of an `mqtt.socket`: the connection to the broker (plain TCP, or TLS through the
//! `tls` module's certificate store), the session's timer on the device clock, and the loop that
//! carries out what the protocol engine (`host_backend::mqtt::Session`) asks for.
//!
//! Everything reaches the Lua thread as jobs: stream events from the connection's task, timer
//! expiries from the device's timer list. Each job carries the connection's generation, so events
//! of a connection the client has since dropped are ignored. While a connection exists the client
//! is anchored (the firmware's `self_ref`) and holds a live-I/O guard that keeps the device running.
//!
//! How a connection ends, as `mqtt.c` reports it:
//! - it never came up (refused, no answer, failed handshake): "connfail" with
//!   `CONN_FAIL_SERVER_NOT_FOUND`, nothing else;
//! - the broker closed it: "offline";
//! - it broke (reset) after coming up: "connfail" with `CONN_FAIL_SERVER_NOT_FOUND`, then "offline"
//!   (espconn reports errors through the reconnect callback, which `mqtt.c` treats as a failure);
//! - the client dropped it (refused CONNACK, timeouts, keepalive, after `close()`'s DISCONNECT):
//!   "offline" follows as a separate event, as espconn's disconnect callback does.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::{Rc, Weak};
use std::time::Duration;

use host_backend::mqtt::{Event as MqttEvent, Output, fail};
use host_backend::stream::{Close, Event};
use mlua::Lua;

use super::socket::{ClientState, Phase};
use crate::runtime::Runtime;
pub(crate) use crate::tls::dial::Link;
use crate::tls::dial::dial;

type Shared = Rc<RefCell<ClientState>>;

/// How long a legacy (2.x) auto-reconnecting client waits between attempts.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

fn upgrade(weak: &Weak<RefCell<ClientState>>, generation: u64) -> Option<Shared> {
    let s = weak.upgrade()?;
    let current = s.borrow().generation == generation;
    current.then_some(s)
}

/// The host's address is known (or not): connects, or reports `CONN_FAIL_DNS`.
pub(crate) fn resolved(
    lua: &Lua,
    rt: &Rc<Runtime>,
    s: &Shared,
    host: &str,
    ip: Option<Ipv4Addr>,
) -> mlua::Result<()> {
    let Some(ip) = ip else {
        fire_fail(lua, rt, s, fail::DNS)?;
        return disconnected(lua, rt, s);
    };
    let (generation, port, secure) = {
        let mut st = s.borrow_mut();
        st.phase = Phase::Connecting;
        (st.generation, st.port, st.secure)
    };
    let addr = SocketAddr::new(IpAddr::V4(ip), port);
    let tls = if secure {
        // The script's certificate functions run here and may close this very client.
        let config = crate::tls::client_config(lua, rt);
        if s.borrow().generation != generation {
            return Ok(());
        }
        match config {
            Ok(c) => Some((c, host_backend::tls::server_name(host, IpAddr::V4(ip)))),
            Err(why) => {
                rt.diag(&format!("mqtt: cannot connect to {host}:{port}: {why}"));
                let (r, w) = (rt.clone(), Rc::downgrade(s));
                rt.event_sink().push(Box::new(move |lua| {
                    conn_event(lua, &r, &w, generation, Event::Closed(Close::Reset))
                }));
                return Ok(());
            }
        }
    } else {
        None
    };
    let (r, w) = (rt.clone(), Rc::downgrade(s));
    let link = dial(
        rt,
        "mqtt",
        addr,
        tls,
        || {},
        move |lua, ev| conn_event(lua, &r, &w, generation, ev),
    );
    s.borrow_mut().link = Some(link);
    Ok(())
}

/// One event of the connection, on the Lua thread.
fn conn_event(
    lua: &Lua,
    rt: &Rc<Runtime>,
    weak: &Weak<RefCell<ClientState>>,
    generation: u64,
    ev: Event,
) -> mlua::Result<()> {
    let Some(s) = upgrade(weak, generation) else {
        return Ok(());
    };
    match ev {
        Event::Connected => {
            s.borrow_mut().phase = Phase::Connected;
            let out = s.borrow_mut().session.connected();
            apply(lua, rt, &s, generation, out)
        }
        Event::Data(bytes) => {
            let out = s.borrow_mut().session.received(&bytes);
            let r = apply(lua, rt, &s, generation, out);
            let link = s.borrow().link.clone();
            if let Some(link) = link {
                link.consumed();
            }
            r
        }
        Event::Sent => {
            let out = s.borrow_mut().session.sent();
            apply(lua, rt, &s, generation, out)
        }
        Event::Closed(Close::Remote) => disconnected(lua, rt, &s),
        Event::Closed(_) => {
            // A 2.x client set to reconnect just tries again, whatever broke.
            if s.borrow().reconnecting {
                return retry(rt, &s);
            }
            fire_fail(lua, rt, &s, fail::SERVER_NOT_FOUND)?;
            disconnected(lua, rt, &s)
        }
    }
}

/// Carries out the engine's outputs in order; stops if a callback ended this connection.
pub(crate) fn apply(
    lua: &Lua,
    rt: &Rc<Runtime>,
    s: &Shared,
    generation: u64,
    out: Vec<Output>,
) -> mlua::Result<()> {
    for o in out {
        if s.borrow().generation != generation {
            return Ok(());
        }
        match o {
            Output::Send(bytes) => {
                if let Some(link) = &s.borrow().link {
                    link.send(bytes);
                }
            }
            Output::Timer(d) => arm(rt, s, generation, d),
            Output::Disconnect => drop_link(rt, s),
            Output::Event(e) => event(lua, rt, s, e)?,
        }
    }
    Ok(())
}

fn arm(rt: &Rc<Runtime>, s: &Shared, generation: u64, d: Duration) {
    let (r, w) = (rt.clone(), Rc::downgrade(s));
    let key = rt.arm_timer(
        d,
        Box::new(move |lua| {
            let Some(s) = upgrade(&w, generation) else {
                return Ok(());
            };
            s.borrow_mut().timer = None;
            let out = s.borrow_mut().session.timer();
            apply(lua, &r, &s, generation, out)
        }),
    );
    if let Some(old) = s.borrow_mut().timer.replace(key) {
        rt.cancel_timer(old);
    }
}

/// The client drops its connection; the "offline" of an established one follows as an event.
fn drop_link(rt: &Rc<Runtime>, s: &Shared) {
    let (link, generation) = {
        let mut st = s.borrow_mut();
        if st.phase == Phase::Closing {
            return;
        }
        st.phase = match st.phase {
            Phase::Connected => Phase::Closing,
            other => other,
        };
        (st.link.take(), st.generation)
    };
    if let Some(link) = link {
        link.close();
    }
    let (r, w) = (rt.clone(), Rc::downgrade(s));
    rt.event_sink()
        .push(Box::new(move |lua| match upgrade(&w, generation) {
            Some(s) => disconnected(lua, &r, &s),
            None => Ok(()),
        }));
}

/// Ends the connection (`mqtt_socket_disconnected`): everything queued is dropped, the client lets
/// go of itself, and "offline" fires if the connection had come up. A legacy client set to
/// reconnect starts again instead of letting go.
pub(crate) fn disconnected(lua: &Lua, rt: &Rc<Runtime>, s: &Shared) -> mlua::Result<()> {
    let was_up = matches!(s.borrow().phase, Phase::Connected | Phase::Closing);
    let reconnect = s.borrow().reconnecting;
    let (link, timer) = {
        let mut st = s.borrow_mut();
        st.generation += 1;
        st.session.reset();
        st.phase = Phase::Idle;
        (st.link.take(), st.timer.take())
    };
    if let Some(link) = link {
        link.close();
    }
    if let Some(t) = timer {
        rt.cancel_timer(t);
    }
    let id = s.borrow().id;
    let ud = if reconnect {
        rt.anchored(id)
    } else {
        s.borrow_mut().live = None;
        rt.unanchor(id)
    };
    let f = s.borrow().callbacks.get("offline");
    if let (true, Some(f), Some(ud)) = (was_up, f, ud) {
        rt.call_net(lua, &f, ud)?;
    }
    // The offline callback may have closed the client for good (or connected it again).
    let (again, idle) = {
        let st = s.borrow();
        (st.reconnecting, st.phase == Phase::Idle)
    };
    if reconnect && again && idle {
        return retry(rt, s);
    }
    if reconnect && idle {
        s.borrow_mut().live = None;
        rt.unanchor(id);
    }
    Ok(())
}

/// A legacy auto-reconnecting client tries again after a pause.
fn retry(rt: &Rc<Runtime>, s: &Shared) -> mlua::Result<()> {
    let (generation, link, timer) = {
        let mut st = s.borrow_mut();
        st.generation += 1;
        st.session.reset();
        st.phase = Phase::Resolving;
        (st.generation, st.link.take(), st.timer.take())
    };
    if let Some(link) = link {
        link.close();
    }
    if let Some(t) = timer {
        rt.cancel_timer(t);
    }
    let (r, w) = (rt.clone(), Rc::downgrade(s));
    let key = rt.arm_timer(
        RECONNECT_PAUSE,
        Box::new(move |lua| {
            let Some(s) = upgrade(&w, generation) else {
                return Ok(());
            };
            s.borrow_mut().timer = None;
            let (host, ip) = {
                let st = s.borrow();
                (st.host.clone(), st.ip)
            };
            resolved(lua, &r, &s, &host, ip)
        }),
    );
    s.borrow_mut().timer = Some(key);
    Ok(())
}

fn fire_fail(lua: &Lua, rt: &Rc<Runtime>, s: &Shared, code: i32) -> mlua::Result<()> {
    event(lua, rt, s, MqttEvent::ConnFail(code))
}

/// Calls the script's callback for an engine event, with the firmware's arguments, if the client
/// is still anchored (the board fires nothing once its self-reference is gone).
fn event(lua: &Lua, rt: &Rc<Runtime>, s: &Shared, e: MqttEvent) -> mlua::Result<()> {
    let name = match &e {
        MqttEvent::Connect => "connect",
        MqttEvent::ConnFail(_) => "connfail",
        MqttEvent::Message(..) => "message",
        MqttEvent::Overflow(..) => "overflow",
        MqttEvent::PubAck => "puback",
        MqttEvent::SubAck => "suback",
        MqttEvent::UnsubAck => "unsuback",
    };
    if let MqttEvent::Connect = e {
        s.borrow_mut().on_connack();
    }
    let (f, ud) = {
        let st = s.borrow();
        (st.callbacks.get(name), rt.anchored(st.id))
    };
    let (Some(f), Some(ud)) = (f, ud) else {
        return Ok(());
    };
    match e {
        MqttEvent::ConnFail(code) => rt.call_net(lua, &f, (ud, code)),
        MqttEvent::Message(topic, data) | MqttEvent::Overflow(topic, data) => {
            let topic = lua.create_string(topic)?;
            match data {
                Some(d) => rt.call_net(lua, &f, (ud, topic, lua.create_string(&d)?)),
                None => rt.call_net(lua, &f, (ud, topic)),
            }
        }
        _ => rt.call_net(lua, &f, ud),
    }
}
