//! Running a connection's request: synchronously on a helper thread (the Lua task waits, and
//! each callback runs as the client reports it) or asynchronously on the device's loop (each
//! callback a loop job the client waits for), and the module's `http_event_cb`/`make_callback`:
//! the header list gathered until the first data or the end, then one "headers" call.

use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use host_backend::http32::{self as proto, Event, Events, Flow, Outcome};
use mlua::{Function, Lua, MultiValue, Value};
use tokio::sync::oneshot;

use super::{
    COMPLETE, CONNECT, Conn, ConnState, DATA, DELAY_ACK, HEADERS, check, check_idle, take_flow,
};
use crate::lauxlib::{Args, FwError, FwResult, fw_err};
use crate::runtime::Runtime;

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
pub(super) fn request(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<MultiValue> {
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
    let (began, device_began) = (Instant::now(), rt.now());
    let outcome = run_sync(lua, rt, &c, req);
    // The board's clock ran while the Lua task waited; a virtual clock that stood still catches
    // up (a real one, or a virtual one running meanwhile, already has).
    if rt.is_virtual_time() {
        let counted = rt.now().saturating_sub(device_began);
        rt.pass_time(began.elapsed().saturating_sub(counted));
    }
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
