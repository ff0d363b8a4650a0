//! `http` under `--target esp32`: the ESP32 firmware's HTTP client (`components/modules/http.c`),
//! connection objects (`http.createConnection`) with `connect`/`headers`/`data`/`complete`
//! callbacks, and the one-shot `http.get`/`post`/`put` built on them.
//!
//! The client itself is `host_backend::http32` (ESP-IDF's `esp_http_client`). These files are
//! the module's side: this one the connection object (its settings, callbacks, arg checks and the
//! `InCallback`/`AckPending` rules), `run.rs` how the client's events become callbacks and the two
//! ways a request runs. A synchronous request
//! blocks the Lua task as on the board: the engine runs on a helper thread and every callback runs
//! inside `request()`. An asynchronous one runs on the device's loop, each callback a loop job
//! that the engine waits for (a "data" callback may hold it with `http.DELAYACK` until `ack()`).
//! The ESP8266 firmware's `http` is `modules/http.rs`.
//!
//! - `http32/run.rs`: running a request (on a helper thread or on the loop) and turning the
//!   client's events into callbacks.
//! - `http32/one_shot.rs`: `http.get`, `post` and `put` on top of a connection.

use std::cell::RefCell;
use std::rc::Rc;

use host_backend::http32::{self as proto, Flow, Headers, Url};
use mlua::{AnyUserData, Function, Lua, Table, Value};
use tokio::sync::oneshot;

use crate::handle_type;
use crate::lauxlib::{Args, FwResult, arg_err, bind, binding_name, fw_err};
use crate::modules::{module_table, register_methods};
use crate::runtime::{LiveIo, Runtime};

mod one_shot;
mod run;

use one_shot::{oneshot_get, oneshot_with_body};
use run::request;

const TYPE: &str = "http.context";
/// `CALLBACK_NAME`, in the order of the context's refs.
const EVENTS: [&str; 4] = ["connect", "headers", "data", "complete"];
const CONNECT: usize = 0;
const HEADERS: usize = 1;
const DATA: usize = 2;
const COMPLETE: usize = 3;
/// `DELAY_ACK`.
const DELAY_ACK: i64 = -99;
const USER_AGENT: &str = "NodeMCU (ESP32)";
const BUSY: &str = "Cannot modify connection while a request is active";

/// `lhttp_context_t` plus the client's configuration it owns.
struct ConnState {
    id: u64,
    url: Url,
    method: usize,
    headers: Headers,
    body: Option<Vec<u8>>,
    timeout_ms: i64,
    bufsz: i64,
    max_redirects: i64,
    is_async: bool,
    cert: Option<String>,
    callbacks: [Option<Function>; 4],
    /// `perform_rtos_task`: an asynchronous request is under way.
    busy: bool,
    in_callback: bool,
    /// `AckPending` with the engine's wait to release (asynchronous requests only).
    ack: Option<oneshot::Sender<Flow>>,
    ack_pending: bool,
    should_close: bool,
    connected: bool,
    status: i32,
    /// The response headers gathered so far, newest first (the board's list).
    gathered: Vec<(String, String)>,
    live: Option<LiveIo>,
}

#[derive(Clone)]
struct Conn(Rc<RefCell<ConnState>>);
handle_type!(Conn, TYPE);

fn check(a: &Args) -> FwResult<(AnyUserData, Conn)> {
    a.check_udata::<Conn>(1, TYPE)
}

fn check_idle(c: &Conn) -> FwResult<()> {
    let st = c.0.borrow();
    if st.busy || st.in_callback {
        return fw_err(BUSY);
    }
    Ok(())
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let mut methods = Vec::new();
    let r = rt.clone();
    methods.push(("request", bind(lua, move |lua, a| request(lua, &r, &a))?));
    methods.push(("on", bind(lua, |lua, a| on(lua, &a))?));
    methods.push(("setmethod", bind(lua, |_, a| setmethod(&a))?));
    methods.push(("setheader", bind(lua, |lua, a| setheader(lua, &a))?));
    methods.push(("seturl", bind(lua, |lua, a| seturl(lua, &a))?));
    methods.push(("setbody", bind(lua, |lua, a| setbody(lua, &a))?));
    methods.push(("close", bind(lua, |_, a| close(&a))?));
    methods.push(("ack", bind(lua, |_, a| ack(&a))?));
    register_methods(lua, TYPE, methods)?;

    let r = rt.clone();
    let create = bind(lua, move |lua, a| {
        let (ud, _) = create_connection(lua, &r, &a)?;
        Ok(ud)
    })?;
    let r = rt.clone();
    let get = bind(lua, move |lua, a| oneshot_get(lua, &r, &a))?;
    let r = rt.clone();
    let post = bind(lua, move |lua, a| oneshot_with_body(lua, &r, &a, 1))?;
    let r = rt.clone();
    let put = bind(lua, move |lua, a| oneshot_with_body(lua, &r, &a, 2))?;
    let t = module_table(
        lua,
        vec![
            ("createConnection", create),
            ("get", get),
            ("post", post),
            ("put", put),
        ],
    )?;
    for (name, v) in [
        ("GET", 0),
        ("POST", 1),
        ("PUT", 2),
        ("DELETE", 4),
        ("HEAD", 5),
        ("DELAYACK", DELAY_ACK),
        ("ACKNOW", 0),
    ] {
        t.set(name, v)?;
    }
    lua.globals().set("http", t)
}

/// `opt_get`: a field of the options table of the given type, or nil.
fn opt(lua: &Lua, opts: Option<&Table>, name: &str, want: &str) -> FwResult<Value> {
    let Some(t) = opts else {
        return Ok(Value::Nil);
    };
    let v: Value = t.get(name)?;
    let got = crate::lauxlib::typename(&v);
    if matches!(v, Value::Nil) || got == want {
        return Ok(v);
    }
    fw_err(format!(
        "bad option {name} to '{}' ({want} expected, got {got})",
        binding_name(lua)
    ))
}

fn opt_int(lua: &Lua, opts: Option<&Table>, name: &str, default: i64) -> FwResult<i64> {
    Ok(match opt(lua, opts, name, "number")? {
        Value::Integer(i) => i,
        Value::Number(x) => x as i64,
        _ => default,
    })
}

/// `http.createConnection([url[, method]][, options])`.
fn create_connection(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<(AnyUserData, Conn)> {
    let url = match a.is_none_or_nil(1) {
        true => None,
        false => Some(a.check_str(lua, 1)?),
    };
    let (method, opts_at) = if a.is_number(2) {
        let m = a.check_integer(2)?;
        if !(0..proto::METHODS.len() as i64).contains(&m) {
            return fw_err(format!("Bad HTTP method {m}"));
        }
        (m as usize, 3)
    } else {
        (0, 2)
    };
    let opts = match a.get(opts_at) {
        Value::Table(t) => Some(t),
        _ => None,
    };
    let timeout_ms = opt_int(lua, opts.as_ref(), "timeout", 10_000)?;
    let bufsz = opt_int(lua, opts.as_ref(), "bufsz", 512)?;
    let max_redirects = opt_int(lua, opts.as_ref(), "max_redirects", -1)?;
    let is_async = matches!(
        opt(lua, opts.as_ref(), "async", "boolean")?,
        Value::Boolean(true)
    );
    let cert = match opt(lua, opts.as_ref(), "cert", "string")? {
        Value::String(s) => Some(s.to_string_lossy().to_string()),
        _ => None,
    };
    // `esp_http_client_init` needs a URL it can parse, with a host.
    let Some(url) = url
        .as_deref()
        .and_then(|u| proto::set_url(None, u))
        .filter(|u| !u.host.is_empty())
    else {
        return fw_err("esp_http_client_init failed");
    };
    let mut headers = Headers::for_url(&url);
    headers.set("User-Agent", Some(USER_AGENT));
    if let Some(t) = &opts
        && let Value::Table(h) = t.get::<Value>("headers")?
    {
        for pair in h.pairs::<Value, Value>() {
            if let (Value::String(k), Value::String(v)) = pair? {
                headers.set(&k.to_string_lossy(), Some(&v.to_string_lossy()));
            }
        }
    }
    let st = ConnState {
        id: rt.new_id(),
        url,
        method,
        headers,
        body: None,
        timeout_ms,
        bufsz,
        max_redirects,
        is_async,
        cert,
        callbacks: Default::default(),
        busy: false,
        in_callback: false,
        ack: None,
        ack_pending: false,
        should_close: false,
        connected: false,
        status: 0,
        gathered: Vec::new(),
        live: None,
    };
    let c = Conn(Rc::new(RefCell::new(st)));
    let ud = lua.create_userdata(c.clone())?;
    Ok((ud, c))
}

/// `connection:on(event, fn)`: returns the connection, for chained calls.
fn on(lua: &Lua, a: &Args) -> FwResult<AnyUserData> {
    let (ud, c) = check(a)?;
    let name = a.check_str(lua, 2)?;
    let Some(i) = EVENTS.iter().position(|e| *e == name) else {
        return arg_err(2, format!("invalid option '{name}'"));
    };
    c.0.borrow_mut().callbacks[i] = match a.get(3) {
        Value::Function(f) => Some(f),
        _ => None,
    };
    Ok(ud)
}

fn setmethod(a: &Args) -> FwResult<()> {
    let (_, c) = check(a)?;
    check_idle(&c)?;
    let m = a.check_integer(2)?;
    if !(0..proto::METHODS.len() as i64).contains(&m) {
        return fw_err(format!("Bad HTTP method {m}"));
    }
    c.0.borrow_mut().method = m as usize;
    Ok(())
}

fn setheader(lua: &Lua, a: &Args) -> FwResult<()> {
    let (_, c) = check(a)?;
    check_idle(&c)?;
    let name = a.check_str(lua, 2)?;
    let value = match a.is_none_or_nil(3) {
        true => None,
        false => Some(a.check_str(lua, 3)?),
    };
    c.0.borrow_mut().headers.set(&name, value.as_deref());
    Ok(())
}

/// `seturl(url)`: `esp_http_client_set_url`, which also renames `Host` when the host changes.
fn seturl(lua: &Lua, a: &Args) -> FwResult<()> {
    let (_, c) = check(a)?;
    check_idle(&c)?;
    let url = a.check_str(lua, 2)?;
    let mut st = c.0.borrow_mut();
    let Some(next) = proto::set_url(Some(&st.url), &url) else {
        // ESP_ERR_INVALID_ARG.
        return fw_err("esp_http_client_set_url returned 258");
    };
    if !next.host.eq_ignore_ascii_case(&st.url.host) {
        st.headers.set("Host", Some(&next.host));
    }
    st.url = next;
    Ok(())
}

/// `setbody([data])`: `esp_http_client_set_post_field`, which adds a form `Content-Type` unless
/// one is set, and removes it when the body goes.
fn setbody(lua: &Lua, a: &Args) -> FwResult<()> {
    let (_, c) = check(a)?;
    check_idle(&c)?;
    let data = match a.is_none_or_nil(2) {
        true => None,
        false => Some(a.check_bytes(lua, 2)?.as_bytes().to_vec()),
    };
    let mut st = c.0.borrow_mut();
    match &data {
        Some(_) if st.headers.get("Content-Type").is_none() => st
            .headers
            .set("Content-Type", Some("application/x-www-form-urlencoded")),
        Some(_) => {}
        None => st.headers.set("Content-Type", None),
    }
    st.body = data;
    Ok(())
}

fn close(a: &Args) -> FwResult<()> {
    let (_, c) = check(a)?;
    let mut st = c.0.borrow_mut();
    if st.busy {
        if st.in_callback || st.ack_pending {
            st.should_close = true;
        } else {
            return fw_err(
                "Cannot close an ongoing async request outside of a callback or pending ack",
            );
        }
    } else if st.in_callback {
        // A synchronous request: the client closes at once.
        st.should_close = true;
    } else {
        st.connected = false;
    }
    Ok(())
}

fn ack(a: &Args) -> FwResult<()> {
    let (_, c) = check(a)?;
    let mut st = c.0.borrow_mut();
    if !st.ack_pending {
        return fw_err("No asynchronous callback pending");
    }
    if st.in_callback {
        return fw_err("Cannot call ack() from within the callback itself");
    }
    st.ack_pending = false;
    let flow = take_flow(&mut st);
    if let Some(tx) = st.ack.take() {
        let _ = tx.send(flow);
    }
    Ok(())
}

/// What the engine is told once a callback is acknowledged: close if the script asked to.
fn take_flow(st: &mut ConnState) -> Flow {
    match std::mem::take(&mut st.should_close) {
        true => Flow::Close,
        false => Flow::Continue,
    }
}
