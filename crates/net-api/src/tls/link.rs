//! The I/O side of a `tls.socket`: TCP connect (`host_backend::tcp`), the handshake
//! (`host_backend::tls`), then the shared stream driver (`host_backend::stream::Conn`) carrying the
//! TLS stream exactly as it carries a plain TCP one: bounded receive chunks, real back-pressure,
//! one "sent" per send once handed over, `hold`/`unhold`.
//!
//! It holds no Lua values: it reports [`LinkEvent`]s as jobs on the Lua thread through the
//! socket's `deliver` function, and the socket drives it through a [`Link`]. Dropping the `Link`
//! (local close, or the socket collected) closes the connection quietly.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use host_backend::stream::{Bytes, Close, Conn, Event, Options, Sink};
use host_backend::tls::{ClientConfig, ClientStream, Failure, FailureKind, ServerName};
use mlua::Lua;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::runtime::{EventSink, Runtime};

type Stream = ClientStream<TcpStream>;
type Deliver = Rc<dyn Fn(&Lua, LinkEvent) -> mlua::Result<()>>;

/// A server that accepts the TCP connection but never finishes the handshake is given up on after
/// this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// What happened on the connection, in order.
pub(crate) enum LinkEvent {
    /// The handshake completed; the text says with what (protocol, cipher suite) for `setDebug`.
    Connected(String),
    /// Decrypted bytes, at most one receive chunk of the profile.
    Received(Bytes),
    /// One `send`'s bytes were handed to the host socket.
    Sent,
    /// The connection could not be made, or broke.
    Failed(Failure),
    /// The server closed the connection.
    Closed,
}

enum State {
    Connecting(JoinHandle<()>),
    Open(Conn<Stream>),
    Done,
}

/// The socket's handle on its connection. Dropping it closes the connection without events.
pub(crate) struct Link(Rc<RefCell<State>>);

impl Link {
    /// Hands `data` to the connection; a `Sent` follows once it is written.
    pub fn send(&self, data: Vec<u8>) {
        if let State::Open(c) = &*self.0.borrow() {
            c.send(data);
        }
    }

    pub fn hold(&self, on: bool) {
        if let State::Open(c) = &*self.0.borrow() {
            if on { c.hold() } else { c.unhold() }
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        match std::mem::replace(&mut *self.0.borrow_mut(), State::Done) {
            State::Connecting(task) => task.abort(),
            State::Open(conn) => conn.close(),
            State::Done => {}
        }
    }
}

/// Connects to `addr` and runs the handshake for `name`. Events go through `deliver`, one job each.
pub(crate) fn open(
    rt: &Rc<Runtime>,
    addr: SocketAddr,
    name: ServerName<'static>,
    config: Arc<ClientConfig>,
    deliver: impl Fn(&Lua, LinkEvent) -> mlua::Result<()> + 'static,
) -> Link {
    let deliver: Deliver = Rc::new(deliver);
    let state = Rc::new(RefCell::new(State::Done));
    let sink = rt.event_sink();
    let chunk = rt.cfg.target.rx_chunk();
    let opts = Options {
        chunk,
        // What may still arrive after `hold`: lwIP's receive window on a board.
        window: chunk.map_or(64 * 1024, |c| 4 * c),
        ..Options::default()
    };
    let weak = Rc::downgrade(&state);
    let task = tokio::task::spawn_local(async move {
        let stream = match connect(addr, name, config).await {
            Ok(s) => s,
            Err(f) => return push(&sink, &deliver, LinkEvent::Failed(f)),
        };
        let Some(state) = weak.upgrade() else {
            return;
        };
        let info = describe(addr, &stream);
        let conn = Conn::open(stream, opts, conn_sink(&sink, &deliver, &weak));
        *state.borrow_mut() = State::Open(conn);
        push(&sink, &deliver, LinkEvent::Connected(info));
    });
    *state.borrow_mut() = State::Connecting(task);
    Link(state)
}

async fn connect(
    addr: SocketAddr,
    name: ServerName<'static>,
    config: Arc<ClientConfig>,
) -> Result<Stream, Failure> {
    let tcp = host_backend::tcp::connect(addr)
        .await
        .map_err(|c| match c {
            Close::Reset => Failure {
                kind: FailureKind::Reset,
                detail: format!("{addr} refused the connection"),
            },
            _ => Failure {
                kind: FailureKind::Aborted,
                detail: format!("no answer from {addr}"),
            },
        })?;
    let handshake = host_backend::tls::handshake(config, name, tcp);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(f)) => Err(Failure {
            detail: format!("handshake with {addr} failed: {}", f.detail),
            ..f
        }),
        Err(_) => Err(Failure {
            kind: FailureKind::Timeout,
            detail: format!("{addr} did not complete the handshake"),
        }),
    }
}

fn describe(addr: SocketAddr, stream: &Stream) -> String {
    let (_, c) = stream.0.get_ref();
    let version = c
        .protocol_version()
        .map_or_else(|| "?".to_string(), |v| format!("{v:?}"));
    let suite = c
        .negotiated_cipher_suite()
        .map_or_else(|| "?".to_string(), |s| format!("{:?}", s.suite()));
    format!("connected to {addr} with {version}, {suite}")
}

fn push(sink: &EventSink, deliver: &Deliver, ev: LinkEvent) {
    let d = deliver.clone();
    sink.push(Box::new(move |lua| d(lua, ev)));
}

/// Where the stream driver's events go: each becomes a job; a receive chunk counts as consumed once
/// its job has run, which is what lets the driver read on (the board's window reopening).
fn conn_sink(sink: &EventSink, deliver: &Deliver, state: &Weak<RefCell<State>>) -> Sink {
    let (sink, deliver, state) = (sink.clone(), deliver.clone(), state.clone());
    Box::new(move |ev| match ev {
        Event::Connected => {}
        Event::Data(bytes) => {
            let (d, st) = (deliver.clone(), state.clone());
            sink.push(Box::new(move |lua| {
                let r = d(lua, LinkEvent::Received(bytes));
                if let Some(st) = st.upgrade()
                    && let State::Open(c) = &*st.borrow()
                {
                    c.consumed();
                }
                r
            }));
        }
        Event::Sent => push(&sink, &deliver, LinkEvent::Sent),
        Event::Closed(Close::Remote) => push(&sink, &deliver, LinkEvent::Closed),
        Event::Closed(c) => {
            let (kind, what) = match c {
                Close::Reset => (FailureKind::Reset, "reset by the server"),
                _ => (FailureKind::Aborted, "aborted"),
            };
            let f = Failure {
                kind,
                detail: format!("connection {what}"),
            };
            push(&sink, &deliver, LinkEvent::Failed(f));
        }
    })
}
