//! `websocket.client`: the handle `websocket.createClient()` makes, bound the way `websocket.c`
//! binds it: `on`, `config`, `connect`, `send`, `close`, with its error texts (a trailing newline
//! included, as the firmware writes them).
//!
//! The handle keeps the firmware's `connectionState`: 0 new, 1 resolving, 2 connecting, 3 connected
//! (from the TCP connection on, so a send before the upgrade goes out), 4 closed. A client in state
//! 0 or 4 may connect again and keeps its callbacks and headers.

use std::cell::RefCell;
use std::hash::{BuildHasher, RandomState};
use std::rc::Rc;

use host_backend::timers::TimerKey;
use host_backend::websocket::{self as proto, OPCODE_CLOSE, OPCODE_TEXT, Session, Target};
use mlua::{AnyUserData, Lua, Value};

use super::link::{self, Link};
use crate::handle_type;
use crate::lauxlib::{Args, FwResult, arg_err, bind, fw_err, typename};
use crate::modules::register_methods;
use crate::net::dns;
use crate::net::events::Callbacks;
use crate::runtime::{LiveIo, Runtime};

pub(crate) const TYPE: &str = "websocket.client";
const EVENTS: &[&str] = &["connection", "receive", "close"];

/// `connectionState`.
pub(crate) const IDLE: u8 = 0;
pub(crate) const RESOLVING: u8 = 1;
pub(crate) const CONNECTING: u8 = 2;
pub(crate) const OPEN: u8 = 3;
pub(crate) const CLOSED: u8 = 4;

pub(crate) struct ClientState {
    pub id: u64,
    pub callbacks: Callbacks,
    pub state: u8,
    /// Bumped whenever a connection ends, so its late events are ignored.
    pub generation: u64,
    pub session: Session,
    pub target: Option<Target>,
    /// `config({headers = ...})`, in the order the table gave them.
    pub headers: Vec<(String, String)>,
    pub link: Option<Link>,
    /// The one timer the firmware has per client: connect timeout, then pings, then the forced close.
    pub timer: Option<TimerKey>,
    pub live: Option<LiveIo>,
    /// `knownFailureCode`: the status "close" gets (0: none known, reported as -99).
    pub known: i32,
    /// `close()` armed its forced close: data no longer restarts the ping timer.
    pub force_close: bool,
    /// The self-reference of this connection was released by the "close" callback it was made
    /// in (see `link::fire_close`): callbacks get `nil` for the client.
    pub ref_lost: bool,
}

#[derive(Clone)]
pub struct Client(pub(crate) Rc<RefCell<ClientState>>);
handle_type!(Client, TYPE);

fn check(a: &Args) -> FwResult<(AnyUserData, Client)> {
    a.check_udata::<Client>(1, TYPE)
}

/// A fresh seed for the key and masks of one connection (the board's `os_random`).
fn seed() -> u64 {
    RandomState::new().hash_one(0u8)
}

pub(crate) fn create(lua: &Lua, rt: &Rc<Runtime>) -> FwResult<Value> {
    let st = ClientState {
        id: rt.new_id(),
        callbacks: Callbacks::default(),
        state: IDLE,
        generation: 0,
        session: Session::new(seed()),
        target: None,
        headers: Vec::new(),
        link: None,
        timer: None,
        live: None,
        known: 0,
        force_close: false,
        ref_lost: false,
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
    let send_fn = bind(lua, |lua, a| send(lua, &a))?;
    let on_fn = bind(lua, |lua, a| on(lua, &a))?;
    let config_fn = bind(lua, |lua, a| config(lua, &a))?;
    register_methods(
        lua,
        TYPE,
        vec![
            ("on", on_fn),
            ("config", config_fn),
            ("connect", connect_fn),
            ("send", send_fn),
            ("close", close_fn),
        ],
    )?;
    Ok(())
}

/// `on(event, fn|nil)`: `luaL_checkoption`, then the function.
fn on(lua: &Lua, a: &Args) -> FwResult<()> {
    let (_, c) = check(a)?;
    let event = a.check_str(lua, 2)?;
    let Some(name) = EVENTS.iter().find(|n| **n == event) else {
        return arg_err(2, format!("invalid option '{event}'"));
    };
    let f = a.get(3);
    if !matches!(f, Value::Function(_) | Value::Nil) {
        return arg_err(3, "function or nil");
    }
    c.0.borrow_mut().callbacks.set(EVENTS, name, f)
}

/// `config({headers = {...}})`: the headers replace any set before; other keys are ignored.
fn config(lua: &Lua, a: &Args) -> FwResult<()> {
    let (_, c) = check(a)?;
    let Value::Table(params) = a.get(2) else {
        let got = if a.len() < 2 {
            "no value"
        } else {
            typename(a.arg(2))
        };
        return arg_err(2, format!("table expected, got {got}"));
    };
    let Value::Table(headers) = params.get::<Value>("headers")? else {
        return Ok(());
    };
    let mut list = Vec::new();
    for pair in headers.pairs::<Value, Value>() {
        let (k, v) = pair?;
        // `lua_tostring`: strings and numbers; the board has no answer for anything else.
        let text = |v: Value| -> mlua::Result<Option<String>> {
            Ok(lua
                .coerce_string(v)?
                .map(|s| c_text(&s.as_bytes()).to_string()))
        };
        match (text(k)?, text(v)?) {
            (Some(k), Some(v)) => list.push((k, v)),
            _ => return fw_err("header names and values must be strings or numbers"),
        }
    }
    c.0.borrow_mut().headers = list;
    Ok(())
}

/// Text up to a NUL: what the firmware's C strings keep.
fn c_text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end])
}

/// `connect(url)`: the client anchors itself before it even reads the URL; a URL it refuses
/// fires "close" with its status inside the call.
fn connect(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let (ud, c) = check(a)?;
    let state = c.0.borrow().state;
    if state != IDLE && state != CLOSED {
        return fw_err("Websocket already connecting or connected.\n");
    }
    {
        let mut st = c.0.borrow_mut();
        st.state = IDLE;
        st.ref_lost = false;
        rt.anchor(st.id, ud);
    }
    let url = c_text(&a.check_bytes(lua, 2)?.as_bytes()).into_owned();
    let target = match proto::parse_url(&url) {
        Ok(t) => t,
        Err(code) => return Ok(link::fire_close(lua, rt, &c.0, code)?),
    };
    let generation = {
        let mut st = c.0.borrow_mut();
        st.state = RESOLVING;
        st.generation += 1;
        st.session = Session::new(seed());
        st.known = 0;
        st.force_close = false;
        st.target = Some(target.clone());
        st.live = Some(rt.live_io_guard());
        st.generation
    };
    let weak = Rc::downgrade(&c.0);
    let r = rt.clone();
    dns::resolve_then(lua, rt, &target.host, move |lua, ip, _| {
        let Some(s) = weak.upgrade() else {
            return Ok(());
        };
        {
            let st = s.borrow();
            if st.generation != generation || st.state != RESOLVING {
                return Ok(());
            }
        }
        Ok(link::resolved(lua, &r, &s, ip)?)
    })
}

/// `send(message[, opcode])`: the opcode is read only when there are exactly three arguments.
fn send(lua: &Lua, a: &Args) -> FwResult<()> {
    let (_, c) = check(a)?;
    if c.0.borrow().state != OPEN {
        return fw_err("Websocket isn't connected.\n");
    }
    let msg = a.check_bytes(lua, 2)?;
    let opcode = if a.len() == 3 {
        a.check_integer(3)?
    } else {
        i64::from(OPCODE_TEXT)
    };
    let mut st = c.0.borrow_mut();
    if let Some(frame) = st.session.frame(opcode, &msg.as_bytes())
        && let Some(l) = &st.link
    {
        l.send(frame);
    }
    Ok(())
}

/// `close()`: while resolving the connection just ends; otherwise a close frame goes out and the
/// connection is dropped if the server has not answered within the forced-close timeout.
fn close(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let (_, c) = check(a)?;
    let state = c.0.borrow().state;
    if state == IDLE || state == CLOSED {
        return Ok(());
    }
    c.0.borrow_mut().known = 0;
    if state == RESOLVING {
        return Ok(link::disconnected(lua, rt, &c.0)?);
    }
    {
        let mut st = c.0.borrow_mut();
        if let Some(frame) = st.session.frame(i64::from(OPCODE_CLOSE), &[])
            && let Some(l) = &st.link
        {
            l.send(frame);
        }
    }
    link::arm_force_close(rt, &c.0);
    Ok(())
}
