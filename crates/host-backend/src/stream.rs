//! One connected byte stream driven the way lwIP drives a TCP connection for the firmware.
//!
//! A [`Conn`] owns a stream (a `TcpStream`, or a TLS stream over one) inside a single local task and
//! reports what happens on it as [`Event`]s through a sink closure, in order:
//! - `Connected` once the connecting future resolves (never for [`Conn::open`], which starts open);
//! - `Data` with at most [`Options::chunk`] bytes each (the board's one-pbuf-per-callback rule);
//! - `Sent` once per [`Conn::send`], in send order, when that send is handed over (below);
//! - `Closed` with the lwIP code of why the connection ended (remote close, reset, aborted). It is
//!   the last event; nothing is reported after a local [`Conn::close`].
//!
//! **Handing over.** A send is handed over when it moves into the connection's socket buffer
//! ([`Options::buffer`] bytes, like a kernel's send buffer), from which the task writes to the
//! stream. That happens between callbacks, never during one: the event loop runs
//! [`Handover::run`] after each callback, and the task does it when the buffer drains. So
//! [`Conn::queued`] (bytes sent and not yet handed over) grows only inside a callback, or when the
//! peer stops reading and the buffer is full: exactly the firmware's send-buffer rule. Writes to
//! the stream are batched (one write for many sends) whenever the loop yields to the I/O tasks.
//!
//! **Flow control** is real: the task reads ahead from the host socket into a bounded receive
//! buffer, and reports it one window at a time: the next window only when every `Data` of the
//! previous one has been consumed ([`Conn::consumed`]) and the connection is not held
//! ([`Conn::hold`]). A slow or holding script therefore leaves the buffer full, the task stops
//! reading, and the peer's writes stall on its full window.
//!
//! Everything runs on the current thread (`spawn_local`): the handle and the task share plain
//! `Rc<RefCell<..>>` state, and the sink never runs while that state is borrowed.

mod driver;
mod idle;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::rc::Rc;
use std::task::Waker;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};

use driver::drive;
pub use idle::IdleTimer;

/// Initial size of a connection's receive buffer.
const RX_START: usize = 4096;

/// Why a connection ended, as the firmware reports it to "disconnection"/"reconnection".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// The peer closed its side normally (FIN): lwIP `ERR_OK`, 0.
    Remote,
    /// Refused or reset by the peer (RST): `ERR_RST`, -9.
    Reset,
    /// Timed out or given up on (SYN retries, idle timeout, dead peer): `ERR_ABRT`, -8.
    Aborted,
}

impl Close {
    /// The lwIP error code scripts see.
    pub fn code(self) -> i32 {
        match self {
            Close::Remote => 0,
            Close::Reset => -9,
            Close::Aborted => -8,
        }
    }

    /// How a host socket error shows on the device.
    pub fn from_io(e: &io::Error) -> Close {
        use io::ErrorKind::*;
        match e.kind() {
            ConnectionRefused | ConnectionReset | BrokenPipe | UnexpectedEof => Close::Reset,
            _ => Close::Aborted,
        }
    }
}

/// Received bytes: a reference-counted piece of the connection's receive buffer, so handing a
/// chunk to the script copies nothing until it becomes a Lua string.
pub use bytes::Bytes;

/// Bytes passed to [`Conn::send`]: owned, or held by whatever keeps them alive until they are
/// written (a large Lua string, which is then never copied).
pub enum Payload {
    Owned(Vec<u8>),
    Held(Box<dyn AsRef<[u8]>>),
}

impl std::ops::Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Payload::Owned(v) => v,
            Payload::Held(h) => (**h).as_ref(),
        }
    }
}

impl From<Vec<u8>> for Payload {
    fn from(v: Vec<u8>) -> Payload {
        Payload::Owned(v)
    }
}

/// What a connection reports, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Connected,
    Data(Bytes),
    Sent,
    Closed(Close),
}

/// How a connection reads, buffers and times out.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest `Data` event (`None`: a whole window at once).
    pub chunk: Option<usize>,
    /// Bytes delivered between two looks at `hold`: the next window's `Data` events are reported
    /// only when the previous window has been consumed and the connection is not held. With
    /// `hold`, this is how much may still be delivered after the script asked to stop (lwIP's
    /// receive window on a board).
    pub window: usize,
    /// Bytes read ahead from the host socket into the connection's receive buffer.
    pub read_ahead: usize,
    /// The socket buffer sends are handed over to (a send larger than it is taken when it is empty).
    pub buffer: usize,
    /// Close with [`Close::Aborted`] after the timer's timeout with no byte received or written.
    pub idle: Option<IdleTimer>,
    /// How long a closing connection may take to write what was still queued.
    pub linger: Duration,
    /// Shut the stream down before dropping it. A TLS stream needs it (close_notify); a plain
    /// TCP socket sends its FIN on close anyway, so it can skip the extra call.
    pub shutdown: bool,
    /// Where sends wait to be handed over after the running callback (`None`: the task hands them
    /// over whenever it runs).
    pub handover: Option<Handover>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            chunk: None,
            window: 64 * 1024,
            read_ahead: 64 * 1024,
            buffer: 64 * 1024,
            idle: None,
            linger: Duration::from_secs(10),
            shutdown: true,
            handover: None,
        }
    }
}

/// Where events go. It owns whatever must live exactly as long as the connection's task (guards
/// that keep the device running, a server's connection slot): they drop when the task ends.
pub type Sink = Box<dyn FnMut(Event)>;

/// Connections with sends made during the running callback, handed over when it returns.
/// One per device; the event loop calls [`Handover::run`] after every callback.
#[derive(Clone, Default)]
pub struct Handover(Rc<RefCell<Vec<Rc<dyn HandOver>>>>);

impl std::fmt::Debug for Handover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Handover({} waiting)", self.0.borrow().len())
    }
}

impl Handover {
    /// Hands over every send made since the last run (reporting their `Sent` events).
    pub fn run(&self) {
        loop {
            let waiting = std::mem::take(&mut *self.0.borrow_mut());
            if waiting.is_empty() {
                return;
            }
            for c in waiting {
                c.hand_over();
            }
        }
    }
}

trait HandOver {
    fn hand_over(&self);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Open,
    /// Writing what is queued, then shutting down; reports nothing more.
    Closing,
    Done,
}

struct Shared<S> {
    stream: Option<S>,
    phase: Phase,
    /// Sends not yet completely written, oldest first; `out_off` bytes of the first are written.
    out: VecDeque<Payload>,
    out_off: usize,
    /// How many sends at the front of `out` are handed over, and their unwritten bytes.
    handed: usize,
    handed_bytes: usize,
    /// Bytes of the sends not handed over yet.
    queued: usize,
    buffer: usize,
    need_flush: bool,
    held: bool,
    /// `Data` events reported and not yet consumed.
    undelivered: usize,
    /// Receive buffer: bytes read and not yet reported. Reported bytes are split off its front
    /// without a copy. It holds at most `rx_cap` bytes, which starts small (most connections
    /// carry a request and a response) and grows to `read_ahead` when reads keep filling it;
    /// reads go straight into the spare capacity, never zeroed.
    rx: BytesMut,
    rx_cap: usize,
    read_ahead: usize,
    /// The peer closed its side; reported once the buffer is drained.
    eof: bool,
    window: usize,
    chunk: Option<usize>,
    /// Registered with the handover list and not yet run.
    listed: bool,
    handover: Option<Handover>,
    sink: Option<Rc<RefCell<Sink>>>,
    waker: Option<Waker>,
}

impl<S> Shared<S> {
    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Reports the next window of received data, or the remote close once all of it was reported,
    /// if the script has consumed the previous window and is not holding.
    fn pump(&mut self, ev: &mut Vec<Event>) {
        if self.phase != Phase::Open || self.undelivered > 0 {
            return;
        }
        if !self.rx.is_empty() {
            if self.held {
                return;
            }
            let n = self.window.min(self.rx.len());
            let mut window = self.rx.split_to(n).freeze();
            let chunk = self.chunk.unwrap_or(n).max(1);
            while !window.is_empty() {
                ev.push(Event::Data(window.split_to(chunk.min(window.len()))));
                self.undelivered += 1;
            }
            // Room in the buffer: the task may read again.
            self.wake();
        } else if self.eof {
            ev.push(Event::Closed(Close::Remote));
            // The peer is gone for reading; write what is left, then close.
            self.phase = Phase::Closing;
            self.wake();
        }
    }

    /// Moves whole sends into the socket buffer while it has room; how many moved.
    fn take_into_buffer(&mut self) -> usize {
        let mut moved = 0;
        while let Some(next) = self.out.get(self.handed) {
            // Only handed-over sends are ever written, so this one is still whole.
            let len = next.len();
            if self.handed_bytes > 0 && self.handed_bytes + len > self.buffer {
                break;
            }
            self.handed += 1;
            self.handed_bytes += len;
            self.queued -= len;
            moved += 1;
        }
        moved
    }
}

/// The script side's handle on one connection. Cheap to clone.
pub struct Conn<S> {
    sh: Rc<RefCell<Shared<S>>>,
}

impl<S> Clone for Conn<S> {
    fn clone(&self) -> Self {
        Conn {
            sh: self.sh.clone(),
        }
    }
}

// On the shared state itself, so that listing a connection costs an `Rc` clone, not an allocation.
impl<S: 'static> HandOver for RefCell<Shared<S>> {
    fn hand_over(&self) {
        let (moved, sink) = {
            let mut sh = self.borrow_mut();
            sh.listed = false;
            if sh.phase != Phase::Open {
                return;
            }
            let moved = sh.take_into_buffer();
            if moved > 0 {
                sh.wake();
            }
            (moved, sh.sink.clone())
        };
        if let Some(sink) = sink {
            let mut sink = sink.borrow_mut();
            for _ in 0..moved {
                sink(Event::Sent);
            }
        }
    }
}

impl<S> Conn<S>
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    /// Starts a connection whose stream is still being made (connect, TLS handshake). Sends made
    /// before it is up are queued and go out once it is, as lwIP allows writes in SYN_SENT.
    /// Reports `Connected`, or `Closed` if `connecting` fails. Must run inside a `LocalSet`.
    pub fn connect<F>(connecting: F, opts: Options, sink: Sink) -> Conn<S>
    where
        F: Future<Output = Result<S, Close>> + 'static,
    {
        let conn = Conn::new(None, &opts, sink);
        let sh = conn.sh.clone();
        tokio::task::spawn_local(drive(sh, Some(Box::pin(connecting)), opts));
        conn
    }

    /// Starts a connection on a stream that is already established (accepted by a server).
    /// Must run inside a `LocalSet`.
    pub fn open(stream: S, opts: Options, sink: Sink) -> Conn<S> {
        let conn = Conn::new(Some(stream), &opts, sink);
        let sh = conn.sh.clone();
        tokio::task::spawn_local(drive::<S, std::future::Ready<Result<S, Close>>>(
            sh, None, opts,
        ));
        conn
    }

    fn new(stream: Option<S>, opts: &Options, sink: Sink) -> Conn<S> {
        let phase = if stream.is_some() {
            Phase::Open
        } else {
            Phase::Connecting
        };
        Conn {
            sh: Rc::new(RefCell::new(Shared {
                stream,
                phase,
                out: VecDeque::new(),
                out_off: 0,
                handed: 0,
                handed_bytes: 0,
                queued: 0,
                buffer: opts.buffer.max(1),
                need_flush: false,
                held: false,
                undelivered: 0,
                rx: BytesMut::new(),
                rx_cap: opts.read_ahead.clamp(1, RX_START),
                read_ahead: opts.read_ahead.max(1),
                eof: false,
                window: opts.window.max(1),
                chunk: opts.chunk,
                listed: false,
                handover: opts.handover.clone(),
                sink: Some(Rc::new(RefCell::new(sink))),
                waker: None,
            })),
        }
    }

    /// Queues `data`; a `Sent` event follows once it is handed over. False (and nothing queued)
    /// if the connection is no longer open for sending.
    pub fn send(&self, data: impl Into<Payload>) -> bool {
        let data = data.into();
        let mut sh = self.sh.borrow_mut();
        if !matches!(sh.phase, Phase::Connecting | Phase::Open) {
            return false;
        }
        sh.queued += data.len();
        sh.out.push_back(data);
        match sh.handover.clone() {
            Some(h) if !sh.listed => {
                sh.listed = true;
                h.0.borrow_mut().push(self.sh.clone());
            }
            Some(_) => {}
            None => sh.wake(),
        }
        true
    }
}

impl<S> Conn<S> {
    /// Bytes passed to `send` and not yet handed over.
    pub fn queued(&self) -> usize {
        self.sh.borrow().queued
    }

    /// Stops reading from the host socket (what was already read is still delivered).
    pub fn hold(&self) {
        self.sh.borrow_mut().held = true;
    }

    /// Resumes reading, and reports what was read meanwhile.
    pub fn unhold(&self) {
        let mut ev = Vec::new();
        let sink = {
            let mut sh = self.sh.borrow_mut();
            sh.held = false;
            sh.wake();
            sh.pump(&mut ev);
            sh.sink.clone()
        };
        emit(sink, ev);
    }

    pub fn is_held(&self) -> bool {
        self.sh.borrow().held
    }

    /// The script has handled one `Data` event. When the whole window is handled, the next one
    /// is reported right away (no trip through the I/O task), unless the connection is held.
    pub fn consumed(&self) {
        let mut ev = Vec::new();
        let sink = {
            let mut sh = self.sh.borrow_mut();
            sh.undelivered = sh.undelivered.saturating_sub(1);
            sh.pump(&mut ev);
            sh.sink.clone()
        };
        emit(sink, ev);
    }

    /// Local close: no further events; what is queued is still written (within the linger
    /// time), then the stream is shut down and dropped.
    pub fn close(&self) {
        let mut sh = self.sh.borrow_mut();
        sh.phase = match sh.phase {
            Phase::Connecting | Phase::Done => Phase::Done,
            Phase::Open | Phase::Closing => Phase::Closing,
        };
        sh.wake();
    }

    /// Drops the connection at once, discarding what is queued.
    pub fn abort(&self) {
        let mut sh = self.sh.borrow_mut();
        sh.phase = Phase::Done;
        sh.out.clear();
        sh.queued = 0;
        sh.stream = None;
        sh.wake();
    }

    /// True until the connection has closed (or been closed) and can take no more sends.
    pub fn is_open(&self) -> bool {
        matches!(self.sh.borrow().phase, Phase::Connecting | Phase::Open)
    }

    /// True once the stream is established and until it closes.
    pub fn is_established(&self) -> bool {
        let sh = self.sh.borrow();
        sh.phase == Phase::Open && sh.stream.is_some()
    }

    /// Runs `f` on the stream, if there is one (socket options, addresses).
    pub fn with_stream<R>(&self, f: impl FnOnce(&S) -> R) -> Option<R> {
        self.sh.borrow().stream.as_ref().map(f)
    }
}

/// Reports events outside any borrow of the shared state.
fn emit(sink: Option<Rc<RefCell<Sink>>>, ev: Vec<Event>) {
    if let (Some(sink), false) = (sink, ev.is_empty()) {
        let mut sink = sink.borrow_mut();
        for e in ev {
            sink(e);
        }
    }
}
