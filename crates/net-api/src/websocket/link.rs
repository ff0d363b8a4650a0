//! The I/O side of a `websocket.client`: the connection to the server (plain TCP, or TLS through
//! the `tls` module's certificate store for `wss://`), the client's one timer on the device clock,
//! and the loop that carries out what the protocol engine (`host_backend::websocket::Session`)
//! asks for.
//!
//! How a connection ends, as `websocketclient.c` reports it to "close" (its `knownFailureCode`,
//! -99 when none is known):
//! - the name did not resolve: -5; no upgrade within 10 s: -18;
//! - refused, reset or given up: lwIP's error less 100 (-109 for a refusal or a reset, -108 for
//!   an abort), -128 for a failed TLS handshake (`ESPCONN_HANDSHAKE`);
//! - the upgrade refused (not `101`): -17, or without the right key: -7;
//! - a close frame from the server (also the answer to `close()`): echoed, then -6. The board
//!   reports -6 once its echo is sent and -99 if the server's FIN wins that race; here the end of
//!   a connection whose close frame was answered is always -6;
//! - the server hanging up without a close frame, or `close()` with no answer in 5 s: -99;
//! - two pings in a row unanswered (one each 30 s of silence): -19.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::{Rc, Weak};
use std::time::Duration;

use host_backend::stream::{Close, Event};
use host_backend::websocket::{
    CONNECT_TIMEOUT_MS, FORCE_CLOSE_TIMEOUT_MS, Output, PING_INTERVAL_MS, status,
};
use mlua::Lua;

use super::client::{CLOSED, CONNECTING, ClientState, OPEN};
use crate::runtime::Runtime;
pub(crate) use crate::tls::dial::Link;
use crate::tls::dial::dial;

type Shared = Rc<RefCell<ClientState>>;

/// `ESPCONN_HANDSHAKE`: the error a failed TLS handshake reports.
const ESPCONN_HANDSHAKE: i32 = -28;
/// The status when the heap has no room for a received message's Lua string.
const NO_MEMORY_PAYLOAD: i32 = -13;

fn ping_interval() -> Duration {
    Duration::from_millis(PING_INTERVAL_MS)
}

fn upgrade(weak: &Weak<RefCell<ClientState>>, generation: u64) -> Option<Shared> {
    let s = weak.upgrade()?;
    let current = s.borrow().generation == generation;
    current.then_some(s)
}

/// The host's address is known (or not): connects under the connect timeout, or ends with -5.
pub(crate) fn resolved(
    lua: &Lua,
    rt: &Rc<Runtime>,
    s: &Shared,
    ip: Option<Ipv4Addr>,
) -> mlua::Result<()> {
    let Some(ip) = ip else {
        s.borrow_mut().known = status::DNS;
        return disconnected(lua, rt, s);
    };
    let (generation, target) = {
        let mut st = s.borrow_mut();
        st.state = CONNECTING;
        (st.generation, st.target.clone())
    };
    let Some(target) = target else {
        return Ok(());
    };
    arm(
        rt,
        s,
        generation,
        Duration::from_millis(CONNECT_TIMEOUT_MS),
        |lua, rt, s| {
            s.borrow_mut().known = status::CONNECT_TIMEOUT;
            disconnected(lua, rt, s)
        },
    );
    let addr = SocketAddr::new(IpAddr::V4(ip), target.port);
    let host = target.host.clone();
    let tls = if target.secure {
        // The script's certificate functions run here and may close this very client.
        let config = crate::tls::client_config(lua, rt);
        if s.borrow().generation != generation {
            return Ok(());
        }
        match config {
            Ok(c) => Some((c, host_backend::tls::server_name(&host, IpAddr::V4(ip)))),
            Err(why) => {
                rt.diag(&format!(
                    "websocket: cannot connect to {host}:{}: {why}",
                    target.port
                ));
                s.borrow_mut().known = ESPCONN_HANDSHAKE + status::CONN_ERROR_BASE;
                return disconnected(lua, rt, s);
            }
        }
    } else {
        None
    };
    let (w, sink) = (Rc::downgrade(s), rt.event_sink());
    // The connection's own end (a reset) follows this job and keeps its status.
    let failed = move || {
        sink.push(Box::new(move |_| {
            if let Some(s) = upgrade(&w, generation) {
                s.borrow_mut().known = ESPCONN_HANDSHAKE + status::CONN_ERROR_BASE;
            }
            Ok(())
        }));
    };
    let (r, weak) = (rt.clone(), Rc::downgrade(s));
    let link = dial(rt, "websocket", addr, tls, failed, move |lua, ev| {
        conn_event(lua, &r, &weak, generation, ev)
    });
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
            let request = {
                let mut st = s.borrow_mut();
                st.state = OPEN;
                let st = &mut *st;
                match &st.target {
                    Some(t) => st.session.connected(t, &st.headers),
                    None => return Ok(()),
                }
            };
            if let Some(l) = &s.borrow().link {
                l.send(request);
            }
            Ok(())
        }
        Event::Data(bytes) => {
            let room = rt
                .cfg
                .target
                .heap()
                .map(|_| usize::try_from(rt.heap.free(lua, rt)).unwrap_or(0));
            let out = {
                let mut st = s.borrow_mut();
                st.session.set_room(room);
                st.session.received(&bytes)
            };
            let r = apply(lua, rt, &s, generation, out);
            if let Some(link) = upgrade(weak, generation).and_then(|s| s.borrow().link.clone()) {
                link.consumed();
            }
            r
        }
        // The echo of the server's close frame is on its way: the board hangs up now.
        Event::Sent if s.borrow().session.closing() => disconnected(lua, rt, &s),
        Event::Sent => Ok(()),
        Event::Closed(why) => {
            {
                // `error_callback` puts the connection's error over any known status, except
                // that a failed handshake was already reported as such and an answered close
                // frame ends with -6 whatever the server does next.
                let mut st = s.borrow_mut();
                let handshake = ESPCONN_HANDSHAKE + status::CONN_ERROR_BASE;
                if why != Close::Remote && !st.session.closing() && st.known != handshake {
                    st.known = why.code() + status::CONN_ERROR_BASE;
                }
            }
            disconnected(lua, rt, &s)
        }
    }
}

/// Carries out the engine's outputs in order; stops if a callback ended this connection.
fn apply(
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
            Output::Connected => {
                arm_ping(rt, s, generation);
                fire(lua, rt, s, "connection", ())?;
            }
            Output::Alive => {
                // Data re-arms the client's one timer for 30 s, whatever it was counting: after
                // `close()` that is the forced close, which the board then leaves for 30 s.
                if closing_requested(s) {
                    arm(rt, s, generation, ping_interval(), disconnected);
                } else {
                    arm_ping(rt, s, generation);
                }
            }
            Output::Message(data, opcode) => {
                let msg = match lua.create_string(&data) {
                    Ok(m) => m,
                    // The board's payload allocation failing (`calloc` of the message): -13.
                    Err(mlua::Error::MemoryError(_)) => {
                        s.borrow_mut().known = NO_MEMORY_PAYLOAD;
                        return disconnected(lua, rt, s);
                    }
                    Err(e) => return Err(e),
                };
                fire(lua, rt, s, "receive", (msg, i64::from(opcode)))?;
            }
            Output::Close(code) => {
                s.borrow_mut().known = code;
                return disconnected(lua, rt, s);
            }
        }
    }
    if s.borrow().generation == generation && s.borrow().session.closing() {
        // A close frame came: the board's state is "closed" from here (sends are refused).
        let mut st = s.borrow_mut();
        st.state = CLOSED;
        st.known = status::SERVER_CLOSED;
    }
    Ok(())
}

/// Whether `close()` armed its forced close (the timer then belongs to it).
fn closing_requested(s: &Shared) -> bool {
    s.borrow().force_close
}

fn arm_ping(rt: &Rc<Runtime>, s: &Shared, generation: u64) {
    arm(rt, s, generation, ping_interval(), move |lua, rt, s| {
        let out = s.borrow_mut().session.ping_due();
        let ended = out.iter().any(|o| matches!(o, Output::Close(_)));
        apply(lua, rt, s, generation, out)?;
        if !ended && s.borrow().generation == generation {
            arm_ping(rt, s, generation);
        }
        Ok(())
    });
}

/// `close()` on a connection: it is dropped if still up after the forced-close timeout.
pub(crate) fn arm_force_close(rt: &Rc<Runtime>, s: &Shared) {
    let generation = {
        let mut st = s.borrow_mut();
        st.force_close = true;
        st.generation
    };
    arm(
        rt,
        s,
        generation,
        Duration::from_millis(FORCE_CLOSE_TIMEOUT_MS),
        disconnected,
    );
}

/// Arms the client's one timer (replacing whatever it was counting) for this connection.
fn arm(
    rt: &Rc<Runtime>,
    s: &Shared,
    generation: u64,
    d: Duration,
    then: impl FnOnce(&Lua, &Rc<Runtime>, &Shared) -> mlua::Result<()> + 'static,
) {
    let (r, w) = (rt.clone(), Rc::downgrade(s));
    let key = rt.arm_timer(
        d,
        Box::new(move |lua| {
            let Some(s) = upgrade(&w, generation) else {
                return Ok(());
            };
            s.borrow_mut().timer = None;
            then(lua, &r, &s)
        }),
    );
    if let Some(old) = s.borrow_mut().timer.replace(key) {
        rt.cancel_timer(old);
    }
}

/// Ends the connection (`disconnect_callback`): the link and timer go, the state is 4, and
/// "close" fires with the known status (or -99), after which the client lets go of itself.
pub(crate) fn disconnected(lua: &Lua, rt: &Rc<Runtime>, s: &Shared) -> mlua::Result<()> {
    let (link, timer, known) = {
        let mut st = s.borrow_mut();
        st.generation += 1;
        st.state = CLOSED;
        st.force_close = false;
        st.session.shut();
        st.live = None;
        (st.link.take(), st.timer.take(), st.known)
    };
    if let Some(link) = link {
        link.close();
    }
    if let Some(t) = timer {
        rt.cancel_timer(t);
    }
    let code = if known != 0 { known } else { status::UNKNOWN };
    fire_close(lua, rt, s, code)
}

/// `onCloseCallback`: "close" with `(ws, status)`, then the self-reference goes. A script that
/// connects again from inside the callback loses the new connection's self-reference to that
/// release, as on the board: its callbacks then get `nil` for the client (the simulator keeps the
/// client alive meanwhile, where the board's collector could take it).
pub(crate) fn fire_close(lua: &Lua, rt: &Rc<Runtime>, s: &Shared, code: i32) -> mlua::Result<()> {
    let generation = s.borrow().generation;
    let r = fire(lua, rt, s, "close", i64::from(code));
    let mut st = s.borrow_mut();
    if st.generation != generation && st.state != CLOSED {
        st.ref_lost = true;
    } else {
        rt.unanchor(st.id);
    }
    r
}

/// Calls the script's callback, if set, with the client first (`nil` once its self-reference is
/// gone, as `lua_rawgeti` of `LUA_NOREF` gives).
fn fire(
    lua: &Lua,
    rt: &Rc<Runtime>,
    s: &Shared,
    name: &str,
    args: impl mlua::IntoLuaMulti,
) -> mlua::Result<()> {
    let (f, ud) = {
        let st = s.borrow();
        let ud = if st.ref_lost {
            None
        } else {
            rt.anchored(st.id)
        };
        (st.callbacks.get(name), ud)
    };
    let Some(f) = f else {
        return Ok(());
    };
    let mut argv = args.into_lua_multi(lua)?;
    argv.push_front(ud.map_or(mlua::Value::Nil, mlua::Value::UserData));
    rt.call_protected(lua, &f, argv)
}
