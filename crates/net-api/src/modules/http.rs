//! `http`: the ESP8266 firmware's HTTP client (`http.get`, `post`, `put`, `delete`, `request`).
//!
//! The protocol lives in `host_backend::http`; this file is the firmware's `app/modules/http.c` plus
//! the bookkeeping of `httpclient.c`: one callback slot for the whole module (a new request with a
//! callback replaces the waiting one, and the first answer consumes it), the 8 KiB response buffer,
//! the 60 s timeout as a device timer armed when the connection starts, and redirects. Names
//! resolve through `net.dns` ([`crate::net::dns::lookup`]), so `--resolve` and `setdnsserver` apply.
//! `https://` goes through the device's TLS client ([`crate::tls::client_config`]). While a
//! request is in flight it keeps the device alive ([`crate::runtime::LiveIo`]). The ESP32 firmware's
//! `http` is another API (connection objects and events) and is not installed there.

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use host_backend::http::{self as proto, Event, Outcome, Target};
use host_backend::timers::TimerKey;
use mlua::{Function, Lua, Value};

use crate::config::Firmware;
use crate::lauxlib::{Args, FwError, FwResult, bind};
use crate::modules::module_table;
use crate::net::dns::{Lookup, lookup};
use crate::runtime::{LiveIo, Runtime};

/// `HTTP_STATUS_GENERIC_ERROR`: what the callback gets for every failure.
const ERROR: i32 = -1;

/// The module's single callback registry slot.
#[derive(Default)]
struct HttpState {
    callback: RefCell<Option<Function>>,
}

fn state(rt: &Runtime) -> Rc<HttpState> {
    rt.state(|_| HttpState::default())
}

/// One request as `http_raw_request` holds it.
struct Request {
    target: Target,
    method: String,
    headers: Option<Vec<u8>>,
    body: Option<Vec<u8>>,
    redirects: u32,
}

/// A request whose connection has started: what it received, its timer and its task.
struct InFlight {
    req: Request,
    buffer: RefCell<Vec<u8>>,
    finished: Cell<bool>,
    timer: Cell<Option<TimerKey>>,
    task: RefCell<Option<tokio::task::JoinHandle<()>>>,
    live: RefCell<Option<LiveIo>>,
}

/// What the callback gets besides the status: the body and the header table.
type Answer = Option<(Vec<u8>, Vec<(String, Vec<u8>)>)>;

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    // Each fixed-method binding: (name, method, index of headers, of body, of the callback).
    type Form = (&'static str, &'static str, usize, Option<usize>, usize);
    const FORMS: [Form; 4] = [
        ("post", "POST", 2, Some(3), 4),
        ("put", "PUT", 2, Some(3), 4),
        ("delete", "DELETE", 2, Some(3), 4),
        ("get", "GET", 2, None, 3),
    ];
    let r = rt.clone();
    let mut fns = vec![(
        "request",
        bind(lua, move |lua, a| {
            a.check_bytes(lua, 1)?; // The URL is checked first.
            let method = c_string(a.check_bytes(lua, 2)?.as_bytes().to_vec());
            call(
                lua,
                &r,
                &a,
                &String::from_utf8_lossy(&method),
                3,
                Some(4),
                5,
            )
        })?,
    )];
    for (name, method, h, b, cb) in FORMS {
        let r = rt.clone();
        fns.push((
            name,
            bind(lua, move |lua, a| call(lua, &r, &a, method, h, b, cb))?,
        ));
    }
    let t = module_table(lua, fns)?;
    t.set("OK", 0)?;
    t.set("ERROR", ERROR)?;
    lua.globals().set("http", t)
}

/// The common body of every binding: checks the URL, takes the optional string arguments and the
/// callback, and starts the request.
fn call(
    lua: &Lua,
    rt: &Rc<Runtime>,
    a: &Args,
    method: &str,
    headers_at: usize,
    body_at: Option<usize>,
    callback_at: usize,
) -> FwResult<()> {
    let url = c_string(a.check_bytes(lua, 1)?.as_bytes().to_vec());
    let opt = |n: usize| -> FwResult<Option<Vec<u8>>> {
        Ok(match a.is_string(n) {
            true => Some(c_string(a.check_bytes(lua, n)?.as_bytes().to_vec())),
            false => None,
        })
    };
    let headers = opt(headers_at)?;
    let body = match body_at {
        Some(n) => opt(n)?,
        None => None,
    };
    if let Value::Function(f) = a.get(callback_at) {
        *state(rt).callback.borrow_mut() = Some(f);
    }
    // A URL the firmware cannot parse ends the request silently: no callback ever runs.
    let Some(target) = proto::parse_url(&String::from_utf8_lossy(&url)) else {
        return Ok(());
    };
    let req = Request {
        target,
        method: method.to_string(),
        headers,
        body,
        redirects: 0,
    };
    if !start(lua, rt, req)? {
        deliver(lua, rt, ERROR, None, Caller::Binding)?;
    }
    Ok(())
}

/// The firmware copies its strings with `strdup`: everything from a NUL on is lost.
fn c_string(mut bytes: Vec<u8>) -> Vec<u8> {
    let len = proto::c_str(&bytes).len();
    bytes.truncate(len);
    bytes
}

/// `http_raw_request`: resolves the host, then connects. `false`: the request failed at once (a
/// name the resolver refuses: empty, too long, the DNS table full), and the caller answers `-1`.
fn start(lua: &Lua, rt: &Rc<Runtime>, req: Request) -> mlua::Result<bool> {
    let host = req.target.host.clone();
    let r = rt.clone();
    let pending = Rc::new(RefCell::new(Some(req)));
    let later = pending.clone();
    let answer = lookup(rt, &host, move |lua, ip| {
        let Some(req) = later.borrow_mut().take() else {
            return Ok(());
        };
        match ip {
            Some(ip) if connect(lua, &r, req, ip)? => Ok(()),
            _ => deliver_on_loop(lua, &r, ERROR, None),
        }
    });
    match answer {
        Ok(Lookup::Now(ip)) => match pending.borrow_mut().take() {
            Some(req) => connect(lua, rt, req, ip),
            None => Ok(true),
        },
        Ok(Lookup::Pending) => Ok(true),
        Err(_) => Ok(false),
    }
}

/// Starts the exchange with `ip` and arms the firmware's timeout on the device clock. An
/// `https://` request gets the device's TLS client (`tls.cert.verify`, `tls.cert.auth`); when that
/// cannot be set up the request fails (`false`: the caller answers `-1`) as a failed handshake would.
fn connect(lua: &Lua, rt: &Rc<Runtime>, req: Request, ip: Ipv4Addr) -> mlua::Result<bool> {
    let addr = SocketAddr::new(IpAddr::V4(ip), req.target.port);
    let tls = match req.target.secure {
        false => None,
        true => match crate::tls::client_config(lua, rt) {
            Ok(config) => Some(proto::Tls {
                config,
                name: host_backend::tls::server_name(&req.target.host, IpAddr::V4(ip)),
            }),
            Err(why) => {
                rt.diag(&format!("http: cannot connect to {addr}: {why}"));
                return Ok(false);
            }
        },
    };
    let head = proto::request_head(
        &req.target,
        &req.method,
        req.headers.as_deref(),
        req.body.as_deref(),
    );
    let body = req.body.clone();
    let fl = Rc::new(InFlight {
        req,
        buffer: RefCell::default(),
        finished: Cell::new(false),
        timer: Cell::new(None),
        task: RefCell::default(),
        live: RefCell::new(Some(rt.live_io_guard())),
    });
    let (r, f) = (rt.clone(), fl.clone());
    let timeout = Duration::from_millis(proto::TIMEOUT_MS);
    fl.timer.set(Some(
        rt.arm_timer(timeout, Box::new(move |lua| conclude(lua, &r, &f))),
    ));
    let (r, f, sink) = (rt.clone(), fl.clone(), rt.event_sink());
    let report = move |ev: Event| {
        let (r, f) = (r.clone(), f.clone());
        sink.push(Box::new(move |lua| match ev {
            Event::Data(bytes) => receive(lua, &r, &f, &bytes),
            Event::Closed | Event::Failed => conclude(lua, &r, &f),
        }));
    };
    let task = tokio::task::spawn_local(proto::exchange(addr, tls, head, body, report));
    *fl.task.borrow_mut() = Some(task);
    Ok(true)
}

/// `http_receive_callback`: appends to the buffer, which with its NUL must stay within
/// `BUFFER_SIZE_MAX` and be allocated anew from the device heap each time; past either limit the
/// response is discarded and the connection closed (`-1`).
fn receive(lua: &Lua, rt: &Rc<Runtime>, fl: &Rc<InFlight>, bytes: &[u8]) -> mlua::Result<()> {
    if fl.finished.get() {
        return Ok(());
    }
    let free = rt.heap.free(lua, rt);
    let overflow = {
        let mut buf = fl.buffer.borrow_mut();
        let new_size = buf.len() + bytes.len() + 1;
        if new_size > proto::BUFFER_SIZE_MAX || free < new_size as i64 {
            buf.clear();
            true
        } else {
            buf.extend_from_slice(bytes);
            false
        }
    };
    if overflow {
        return conclude(lua, rt, fl);
    }
    Ok(())
}

/// `http_disconnect_callback`: the connection is over (closed, refused, timed out or cut short);
/// judges what arrived and answers, or follows a redirect.
fn conclude(lua: &Lua, rt: &Rc<Runtime>, fl: &Rc<InFlight>) -> mlua::Result<()> {
    if fl.finished.replace(true) {
        return Ok(());
    }
    if let Some(key) = fl.timer.take() {
        rt.cancel_timer(key);
    }
    if let Some(task) = fl.task.borrow_mut().take() {
        task.abort();
    }
    drop(fl.live.borrow_mut().take());
    let buf = std::mem::take(&mut *fl.buffer.borrow_mut());
    let req = &fl.req;
    match proto::evaluate(&buf, req.redirects) {
        Outcome::Failed => deliver_on_loop(lua, rt, ERROR, None),
        Outcome::Done {
            status,
            body,
            headers,
        } => deliver_on_loop(lua, rt, status, Some((body, headers))),
        // The firmware freed the script's headers and body once sent: the next hop goes without.
        Outcome::Redirect(location) => {
            let Some(target) = proto::redirect_target(&req.target, &location) else {
                return Ok(());
            };
            let next = Request {
                target,
                method: req.method.clone(),
                headers: None,
                body: None,
                redirects: req.redirects + 1,
            };
            match start(lua, rt, next)? {
                true => Ok(()),
                false => deliver_on_loop(lua, rt, ERROR, None),
            }
        }
    }
}

/// Where the callback runs from: the event loop, or inside the script's own `http.get` call (a
/// request that failed at once).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Caller {
    Loop,
    Binding,
}

/// [`deliver`] from the event loop, where every error is the loop's own.
fn deliver_on_loop(lua: &Lua, rt: &Rc<Runtime>, status: i32, answer: Answer) -> mlua::Result<()> {
    match deliver(lua, rt, status, answer, Caller::Loop) {
        Ok(()) => Ok(()),
        Err(FwError::Lua(e)) => Err(e),
        Err(_) => Err(mlua::Error::runtime("http: an error escaped the callback")),
    }
}

/// Runs the waiting callback, if any, with what the firmware's generation passes: `(code, body)` in
/// 1.5, `(code, body, headers)` later; before 3.0 the body is a C string (cut at a NUL). Before 3.0
/// the call was a plain `lua_call`: an error in it is a PANIC from the loop, and inside the script's
/// own call it reaches that call's caller.
fn deliver(
    lua: &Lua,
    rt: &Rc<Runtime>,
    status: i32,
    answer: Answer,
    caller: Caller,
) -> FwResult<()> {
    let st = state(rt);
    let fw = rt.cfg.firmware;
    // 1.5 released the slot after the call, so a request the callback starts loses its callback.
    let cb = if fw == Firmware::V1_5 {
        st.callback.borrow().clone()
    } else {
        st.callback.borrow_mut().take()
    };
    let Some(cb) = cb else {
        return Ok(());
    };
    let mut args = vec![Value::Integer(status.into())];
    match answer {
        Some((body, headers)) => {
            let body = if fw < Firmware::V3_0 {
                proto::c_str(&body)
            } else {
                &body[..]
            };
            args.push(Value::String(lua.create_string(body)?));
            if fw > Firmware::V1_5 {
                let t = lua.create_table()?;
                for (name, value) in headers {
                    t.set(name, lua.create_string(value)?)?;
                }
                args.push(Value::Table(t));
            }
        }
        None => {
            args.push(Value::Nil);
            if fw > Firmware::V1_5 {
                args.push(Value::Nil);
            }
        }
    }
    let args = mlua::MultiValue::from_iter(args);
    if caller == Caller::Binding && fw < Firmware::V3_0 {
        rt.call_sync(lua, &cb, args)?;
    } else {
        rt.call_protected(lua, &cb, args)?;
    }
    if fw == Firmware::V1_5 {
        *st.callback.borrow_mut() = None;
    }
    Ok(())
}
