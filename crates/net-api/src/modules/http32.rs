//! `http` under `--target esp32`: the ESP32 firmware's HTTP client (`components/modules/http.c`),
//! connection objects (`http.createConnection`) with `connect`/`headers`/`data`/`complete`
//! callbacks, and the one-shot `http.get`/`post`/`put` built on them.
//!
//! The client itself is `host_backend::http32` (ESP-IDF's `esp_http_client`). This file is the
//! module's side: the connection's settings and callbacks, how the client's events become
//! callbacks (the header list gathered until the first data or the end, then one "headers" call),
//! the `InCallback`/`AckPending` rules, and the two ways a request runs. A synchronous request
//! blocks the Lua task as on the board: the engine runs on a helper thread and every callback runs
//! inside `request()`. An asynchronous one runs on the device's loop, each callback a loop job
//! that the engine waits for (a "data" callback may hold it with `http.DELAYACK` until `ack()`).
//! The ESP8266 firmware's `http` is `modules/http.rs`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use host_backend::http32::{self as proto, Event, Events, Flow, Headers, Outcome, Url};
use mlua::{AnyUserData, Function, Lua, MultiValue, Table, Value};
use tokio::sync::oneshot;

use crate::handle_type;
use crate::lauxlib::{Args, FwError, FwResult, arg_check, arg_err, bind, binding_name, fw_err};
use crate::modules::{module_table, register_methods};
use crate::runtime::{LiveIo, Runtime};

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

/// The engine's settings for the connection as it stands.
fn prepare(lua: &Lua, rt: &Rc<Runtime>, st: &ConnState) -> FwResult<proto::Request> {
    let secure = st.url.scheme.eq_ignore_ascii_case("https");
    let tls = match (secure, &st.cert) {
        (false, _) => None,
        (true, Some(pem)) => Some(cert_config(pem)?),
        (true, None) => crate::tls::client_config(lua, rt).ok(),
    };
    let net = &rt.cfg.net;
    let dns = host_backend::dns::DnsOptions {
        server: net.dns,
        port: net.dns_port.unwrap_or(host_backend::dns::DNS_PORT),
        pins: net.resolve.clone(),
        budget: host_backend::dns::Budget::REAL,
    };
    Ok(proto::Request {
        url: st.url.clone(),
        method: st.method,
        headers: st.headers.clone(),
        body: st.body.clone(),
        timeout: Duration::from_millis(u64::try_from(st.timeout_ms).unwrap_or(0).max(1)),
        bufsz: usize::try_from(st.bufsz).unwrap_or(0).max(1),
        max_redirects: match st.max_redirects {
            n if n > 0 => u32::try_from(n).unwrap_or(u32::MAX),
            _ => 10,
        },
        follow: st.max_redirects != 0,
        tls,
        dns,
    })
}

/// The `cert` option: the server's chain must lead to one of these PEM certificates. Text with
/// none in it leaves nothing to trust, so every handshake fails, as on the board.
fn cert_config(pem: &str) -> FwResult<std::sync::Arc<host_backend::tls::ClientConfig>> {
    use host_backend::tls::{CaStore, ClientSetup, client_config, pem::parse_certs};
    let certs = parse_certs(pem.as_bytes()).unwrap_or_default();
    let setup = |certs| ClientSetup {
        verify: Some(CaStore::Certs(certs)),
        identity: None,
        tls12_only: false,
    };
    client_config(&setup(certs))
        .or_else(|_| client_config(&setup(Vec::new())))
        .map_err(|e| FwError::Msg(e.to_string()))
}

/// `context_seterr`.
fn seterr(st: &mut ConnState, err: i32) {
    if err > 0 && err <= i32::from(i16::MAX) {
        st.status = -err;
    } else if err != 0 {
        st.status = -1;
    }
}

/// `connection:request()`.
fn request(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<MultiValue> {
    let (ud, c) = check(a)?;
    check_idle(&c)?;
    let (req, is_async, id) = {
        let mut st = c.0.borrow_mut();
        // The client sets `Content-Length` in its header list, where it stays for later requests.
        let len = st.body.as_ref().map_or(0, Vec::len).to_string();
        st.headers.set("Content-Length", Some(&len));
        (prepare(lua, rt, &st)?, st.is_async, st.id)
    };
    // The context owns itself for the duration of the request.
    rt.anchor(id, ud);
    if is_async {
        start_async(rt, &c, req);
        return Ok(MultiValue::new());
    }
    let began = Instant::now();
    let outcome = run_sync(lua, rt, &c, req);
    rt.pass_time(began.elapsed());
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            rt.unanchor(id);
            return Err(e);
        }
    };
    let (status, connected) = {
        let mut st = c.0.borrow_mut();
        seterr(&mut st, outcome.err);
        st.connected = st.connected && outcome.connected;
        (st.status, st.connected)
    };
    let done = complete(lua, rt, &c);
    rt.unanchor(id);
    done?;
    Ok(MultiValue::from_iter([
        Value::Integer(status.into()),
        Value::Boolean(connected),
    ]))
}

/// What the engine thread sends the Lua task.
enum Msg {
    Event(Event, oneshot::Sender<Flow>),
    Done(Outcome),
}

struct ThreadEvents(mpsc::Sender<Msg>);

impl Events for ThreadEvents {
    async fn event(&mut self, ev: Event) -> Flow {
        let (tx, rx) = oneshot::channel();
        if self.0.send(Msg::Event(ev, tx)).is_err() {
            return Flow::Close;
        }
        rx.await.unwrap_or(Flow::Close)
    }
}

/// A synchronous request: the engine on its own thread, every callback run here as it comes.
fn run_sync(lua: &Lua, rt: &Rc<Runtime>, c: &Conn, req: proto::Request) -> FwResult<Outcome> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("http32".into())
        .spawn(move || {
            let outcome = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(io) => io.block_on(proto::perform(req, &mut ThreadEvents(tx.clone()))),
                Err(_) => Outcome {
                    err: proto::ERR_CONNECT,
                    connected: false,
                },
            };
            let _ = tx.send(Msg::Done(outcome));
        });
    if spawned.is_err() {
        return fw_err("cannot create rtos task");
    }
    loop {
        match rx.recv() {
            Ok(Msg::Event(ev, reply)) => {
                let (flow, delayed) = handle(lua, rt, c, ev)?;
                if delayed {
                    return fw_err(
                        "Cannot delay acknowledgment of a callback when using synchronous callbacks",
                    );
                }
                let _ = reply.send(flow);
            }
            Ok(Msg::Done(outcome)) => return Ok(outcome),
            Err(_) => {
                return Ok(Outcome {
                    err: proto::ESP_FAIL,
                    connected: false,
                });
            }
        }
    }
}

/// Engine events queued as loop jobs; the engine waits for each to be acknowledged.
struct LoopEvents {
    rt: Rc<Runtime>,
    c: Conn,
}

impl Events for LoopEvents {
    async fn event(&mut self, ev: Event) -> Flow {
        let (tx, rx) = oneshot::channel();
        let (r, c) = (self.rt.clone(), self.c.clone());
        self.rt.event_sink().push(Box::new(move |lua| {
            c.0.borrow_mut().ack_pending = true;
            let (flow, delayed) = match handle(lua, &r, &c, ev) {
                Ok(x) => x,
                Err(e) => return Err(loop_error(e)),
            };
            let mut st = c.0.borrow_mut();
            if delayed {
                st.ack = Some(tx);
            } else {
                st.ack_pending = false;
                let _ = tx.send(flow);
            }
            Ok(())
        }));
        rx.await.unwrap_or(Flow::Close)
    }
}

fn start_async(rt: &Rc<Runtime>, c: &Conn, req: proto::Request) {
    {
        let mut st = c.0.borrow_mut();
        st.busy = true;
        st.live = Some(rt.live_io_guard());
    }
    let (r, conn) = (rt.clone(), c.clone());
    tokio::task::spawn_local(async move {
        let mut events = LoopEvents {
            rt: r.clone(),
            c: conn.clone(),
        };
        let outcome = proto::perform(req, &mut events).await;
        let (r2, c2) = (r.clone(), conn.clone());
        r.event_sink().push(Box::new(move |lua| {
            let id = {
                let mut st = c2.0.borrow_mut();
                st.busy = false;
                st.live = None;
                seterr(&mut st, outcome.err);
                st.connected = st.connected && outcome.connected;
                st.id
            };
            let done = complete(lua, &r2, &c2);
            r2.unanchor(id);
            done.map_err(loop_error)
        }));
    });
}

/// An error outside any callback's protection, in a loop job (the board's task): the loop's own.
fn loop_error(e: FwError) -> mlua::Error {
    match e {
        FwError::Lua(e) => e,
        FwError::Msg(m) | FwError::Arg(_, m) => mlua::Error::runtime(m),
        FwError::Raise(_) => mlua::Error::runtime("http: an error escaped a callback"),
    }
}

/// `http_event_cb` and `make_callback` for one engine event: the answer for the engine, and
/// whether the callback asked to delay it.
fn handle(lua: &Lua, rt: &Rc<Runtime>, c: &Conn, ev: Event) -> FwResult<(Flow, bool)> {
    let mut delayed = false;
    match ev {
        Event::Connected => {
            c.0.borrow_mut().connected = true;
            callback(lua, rt, c, CONNECT, Vec::new())?;
        }
        Event::Header(name, value) => c.0.borrow_mut().gathered.insert(0, (name, value)),
        Event::Data(status, bytes) => {
            fire_headers(lua, rt, c, status)?;
            let code = c.0.borrow().status;
            let args = vec![
                Value::Integer(code.into()),
                Value::String(lua.create_string(&bytes)?),
            ];
            delayed = callback(lua, rt, c, DATA, args)? == Some(DELAY_ACK);
        }
        Event::Finish(status) => fire_headers(lua, rt, c, status)?,
        Event::Disconnected => c.0.borrow_mut().connected = false,
    }
    let flow = take_flow(&mut c.0.borrow_mut());
    Ok((flow, delayed))
}

/// The gathered headers, if any, as one "headers" call: names lower-cased, and where a name came
/// twice the first one wins (the list is walked newest first).
fn fire_headers(lua: &Lua, rt: &Rc<Runtime>, c: &Conn, status: i32) -> FwResult<()> {
    let list = {
        let mut st = c.0.borrow_mut();
        if st.gathered.is_empty() {
            return Ok(());
        }
        st.status = status;
        std::mem::take(&mut st.gathered)
    };
    let t = lua.create_table()?;
    for (name, value) in list {
        t.set(name.to_lowercase(), value)?;
    }
    callback(
        lua,
        rt,
        c,
        HEADERS,
        vec![Value::Integer(status.into()), Value::Table(t)],
    )?;
    Ok(())
}

fn complete(lua: &Lua, rt: &Rc<Runtime>, c: &Conn) -> FwResult<()> {
    let (status, connected) = {
        let st = c.0.borrow();
        (st.status, st.connected)
    };
    callback(
        lua,
        rt,
        c,
        COMPLETE,
        vec![Value::Integer(status.into()), Value::Boolean(connected)],
    )?;
    Ok(())
}

/// Calls a callback the `luaL_pcallx` way (an error is reported, not raised) and gives its first
/// result when that is an integer.
fn callback(
    lua: &Lua,
    rt: &Rc<Runtime>,
    c: &Conn,
    which: usize,
    args: Vec<Value>,
) -> FwResult<Option<i64>> {
    let Some(f) = c.0.borrow().callbacks[which].clone() else {
        return Ok(None);
    };
    // Only a "data" callback's result matters (`http.DELAYACK`); the others are called directly.
    let first = lua.create_table()?;
    let (callee, all) = if which == DATA {
        let mut all = vec![Value::Table(first.clone()), Value::Function(f)];
        all.extend(args);
        (data_runner(lua)?, all)
    } else {
        (f, args)
    };
    // The complete callback is not "in a callback": the connection may be reused from it.
    if which != COMPLETE {
        c.0.borrow_mut().in_callback = true;
    }
    let result = rt.call_protected(lua, &callee, MultiValue::from_iter(all));
    c.0.borrow_mut().in_callback = false;
    result?;
    Ok(match first.get::<Value>(1)? {
        Value::Integer(i) => Some(i),
        Value::Number(x) if x.fract() == 0.0 => Some(x as i64),
        _ => None,
    })
}

/// A Lua function that calls a "data" callback and keeps its first result in a box, made once.
fn data_runner(lua: &Lua) -> mlua::Result<Function> {
    const KEY: &str = "http32.data_runner";
    if let Ok(f) = lua.named_registry_value::<Function>(KEY) {
        return Ok(f);
    }
    let f = lua
        .load("local box, f = ...; box[1] = f(select(3, ...))")
        .set_name("=http")
        .into_function()?;
    lua.set_named_registry_value(KEY, f.clone())?;
    Ok(f)
}

// ---- one-shot requests ----

/// The body and headers a one-shot request gathers.
#[derive(Default)]
struct Gathered {
    headers: Option<Table>,
    body: Vec<u8>,
}

/// `http.get(url[, options][, callback])`.
fn oneshot_get(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<MultiValue> {
    a.check_str(lua, 1)?;
    let (opts, cb, cb_at) = if a.is_function(2) {
        (Value::Nil, a.get(2), 3)
    } else {
        (a.get(2), a.get(3), 3)
    };
    oneshot(lua, rt, a.get(1), 0, opts, None, cb, cb_at)
}

/// `http.post(url, options, body[, callback])` and `http.put`.
fn oneshot_with_body(lua: &Lua, rt: &Rc<Runtime>, a: &Args, method: i64) -> FwResult<MultiValue> {
    a.check_str(lua, 1)?;
    let opts = a.get(2);
    arg_check(
        matches!(opts, Value::Nil | Value::Table(_)),
        2,
        "options must be nil or a table",
    )?;
    let body = a.check_bytes(lua, 3)?.as_bytes().to_vec();
    oneshot(lua, rt, a.get(1), method, opts, Some(body), a.get(4), 4)
}

#[allow(clippy::too_many_arguments)]
fn oneshot(
    lua: &Lua,
    rt: &Rc<Runtime>,
    url: Value,
    method: i64,
    opts: Value,
    body: Option<Vec<u8>>,
    cb: Value,
    cb_at: usize,
) -> FwResult<MultiValue> {
    let opts = match opts {
        Value::Nil => lua.create_table()?,
        Value::Table(t) => t,
        _ => return arg_err(2, "options must be nil or a table"),
    };
    let is_async = matches!(cb, Value::Function(_));
    arg_check(
        matches!(cb, Value::Nil) || is_async,
        cb_at,
        "callback must be nil or a function",
    )?;
    // The one-shot forms write `async` into the script's own options table.
    opts.set("async", is_async)?;
    let args = Args(MultiValue::from_iter([
        url,
        Value::Integer(method),
        Value::Table(opts),
    ]));
    let (ud, c) = create_connection(lua, rt, &args)?;
    if let Some(body) = body {
        let mut st = c.0.borrow_mut();
        if st.headers.get("Content-Type").is_none() {
            st.headers
                .set("Content-Type", Some("application/x-www-form-urlencoded"));
        }
        st.body = Some(body);
    }
    c.0.borrow_mut().headers.set("Connection", Some("close"));
    let gathered = Rc::new(RefCell::new(Gathered::default()));
    let g = gathered.clone();
    let on_headers = lua.create_function(move |_, (_code, h): (Value, Table)| {
        g.borrow_mut().headers = Some(h);
        Ok(())
    })?;
    let g = gathered.clone();
    let on_data = lua.create_function(move |_, (_code, d): (Value, mlua::LuaString)| {
        g.borrow_mut().body.extend_from_slice(&d.as_bytes());
        Ok(())
    })?;
    let g = gathered.clone();
    let user_cb = match cb {
        Value::Function(f) => Some(f),
        _ => None,
    };
    let on_complete = lua.create_function(move |lua, (code, _): (Value, Value)| {
        let Some(f) = &user_cb else {
            return Ok(());
        };
        let g = g.borrow();
        let body = lua.create_string(&g.body)?;
        let headers = g.headers.clone().map_or(Value::Nil, Value::Table);
        f.call::<()>((code, body, headers))
    })?;
    {
        let mut st = c.0.borrow_mut();
        st.callbacks[HEADERS] = Some(on_headers);
        st.callbacks[DATA] = Some(on_data);
        st.callbacks[COMPLETE] = Some(on_complete);
    }
    let req_args = Args(MultiValue::from_iter([Value::UserData(ud)]));
    request(lua, rt, &req_args)?;
    if is_async {
        return Ok(MultiValue::new());
    }
    let status = c.0.borrow().status;
    let g = gathered.borrow();
    Ok(MultiValue::from_iter([
        Value::Integer(status.into()),
        Value::String(lua.create_string(&g.body)?),
        g.headers.clone().map_or(Value::Nil, Value::Table),
    ]))
}
