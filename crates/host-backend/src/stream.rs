//! One connected byte stream driven the way lwIP drives a TCP connection for the firmware.
//!
//! A [`Conn`] owns a stream (a `TcpStream`, or a TLS stream over one) inside a single local task and
//! reports what happens on it as [`Event`]s through a sink closure, in order:
//! - `Connected` once the connecting future resolves (never for [`Conn::open`], which starts open);
//! - `Data` with at most [`Options::chunk`] bytes each (the board's one-pbuf-per-callback rule);
//! - `Sent` once per [`Conn::send`], in send order, as soon as that send's last byte has been handed
//!   to the stream (written and flushed), so a script's "sent" means what the simulator promises;
//! - `Closed` with the lwIP code of why the connection ended (remote close, reset, aborted). It is
//!   the last event; nothing is reported after a local [`Conn::close`].
//!
//! Flow control is real: the task reads only when every `Data` it reported has been consumed
//! ([`Conn::consumed`]) and the connection is not held ([`Conn::hold`]), so a slow or holding script
//! stops reading from the host socket and the peer's writes stall on its full window. Bytes passed
//! to `send` and not yet handed to the stream are counted ([`Conn::queued`]) for the device's
//! send-buffer limits.
//!
//! Everything runs on the current thread (`spawn_local`): the handle and the task share plain
//! `Rc<RefCell<..>>` state, and the sink never runs while that state is borrowed, so it may call
//! back into the handle.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

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

/// What a connection reports, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Connected,
    Data(Vec<u8>),
    Sent,
    Closed(Close),
}

/// How a connection reads and how long it may stay quiet.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest `Data` event (`None`: whatever one read gave).
    pub chunk: Option<usize>,
    /// Bytes read from the host socket at once. With `hold`, this is how much may still be
    /// delivered after the script asked to stop (lwIP's receive window on a board).
    pub read_size: usize,
    /// Close with [`Close::Aborted`] after this long with no byte received or sent.
    pub idle_timeout: Option<Duration>,
    /// How long a closing connection may take to hand over what was still queued.
    pub linger: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            chunk: None,
            read_size: 64 * 1024,
            idle_timeout: None,
            linger: Duration::from_secs(10),
        }
    }
}

/// Where events go. It owns whatever must live exactly as long as the connection's task (guards
/// that keep the device running, a server's connection slot): they drop when the task ends.
pub type Sink = Box<dyn FnMut(Event)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Open,
    /// Handing over what is queued, then shutting down; reports nothing more.
    Closing,
    Done,
}

struct Shared<S> {
    stream: Option<S>,
    phase: Phase,
    /// Sends not yet completely written, oldest first; `out_off` bytes of the first are written.
    out: VecDeque<Vec<u8>>,
    out_off: usize,
    queued: usize,
    /// Sends completely written but not yet flushed (a TLS stream buffers until flushed).
    unflushed: usize,
    held: bool,
    /// `Data` events reported and not yet consumed.
    undelivered: usize,
    /// Set by the handle when it wants the task to look again.
    waker: Option<Waker>,
}

impl<S> Shared<S> {
    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
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
        let conn = Conn::new(None);
        let sh = conn.sh.clone();
        tokio::task::spawn_local(drive(sh, Some(Box::pin(connecting)), opts, sink));
        conn
    }

    /// Starts a connection on a stream that is already established (accepted by a server).
    /// Must run inside a `LocalSet`.
    pub fn open(stream: S, opts: Options, sink: Sink) -> Conn<S> {
        let conn = Conn::new(Some(stream));
        let sh = conn.sh.clone();
        tokio::task::spawn_local(drive::<S, std::future::Ready<Result<S, Close>>>(
            sh, None, opts, sink,
        ));
        conn
    }

    fn new(stream: Option<S>) -> Conn<S> {
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
                queued: 0,
                unflushed: 0,
                held: false,
                undelivered: 0,
                waker: None,
            })),
        }
    }
}

impl<S> Conn<S> {
    /// Queues `data`; a `Sent` event follows once it is all handed over. False (and nothing
    /// queued) if the connection is no longer open for sending.
    pub fn send(&self, data: Vec<u8>) -> bool {
        let mut sh = self.sh.borrow_mut();
        if !matches!(sh.phase, Phase::Connecting | Phase::Open) {
            return false;
        }
        if data.is_empty() {
            // Nothing to hand over, but the sender still expects its `Sent`.
            sh.unflushed += 1;
        } else {
            sh.queued += data.len();
            sh.out.push_back(data);
        }
        sh.wake();
        true
    }

    /// Bytes passed to `send` and not yet handed to the stream.
    pub fn queued(&self) -> usize {
        self.sh.borrow().queued
    }

    /// Stops reading from the host socket (what was already read is still delivered).
    pub fn hold(&self) {
        self.sh.borrow_mut().held = true;
    }

    /// Resumes reading.
    pub fn unhold(&self) {
        let mut sh = self.sh.borrow_mut();
        sh.held = false;
        sh.wake();
    }

    pub fn is_held(&self) -> bool {
        self.sh.borrow().held
    }

    /// The script has handled one `Data` event; reading resumes when all are handled.
    pub fn consumed(&self) {
        let mut sh = self.sh.borrow_mut();
        sh.undelivered = sh.undelivered.saturating_sub(1);
        if sh.undelivered == 0 {
            sh.wake();
        }
    }

    /// Local close: no further events; what is queued is still handed over (within the linger
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

type Connecting<F> = Option<Pin<Box<F>>>;

/// The connection's task: one poll function that writes, flushes, reads and times out.
async fn drive<S, F>(
    sh: Rc<RefCell<Shared<S>>>,
    mut connecting: Connecting<F>,
    opts: Options,
    mut sink: Sink,
) where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
    F: Future<Output = Result<S, Close>>,
{
    let mut buf = vec![0u8; opts.read_size.max(1)];
    let mut idle: Option<Pin<Box<Sleep>>> =
        opts.idle_timeout.map(|d| Box::pin(tokio::time::sleep(d)));
    let mut linger: Option<Pin<Box<Sleep>>> = None;
    let mut events = Vec::new();
    poll_fn(|cx| {
        let done = {
            let mut st = sh.borrow_mut();
            step(
                &mut st,
                cx,
                &mut connecting,
                &opts,
                &mut buf,
                &mut idle,
                &mut linger,
                &mut events,
            )
        };
        for e in events.drain(..) {
            sink(e);
        }
        if done { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    // The stream (and with it the host socket) goes before the sink's guards do.
    sh.borrow_mut().stream = None;
}

/// One look at the connection; true when it is finished. Events are collected in `ev` and sent
/// after the state is released.
#[allow(clippy::too_many_arguments)]
fn step<S, F>(
    st: &mut Shared<S>,
    cx: &mut Context<'_>,
    connecting: &mut Connecting<F>,
    opts: &Options,
    buf: &mut [u8],
    idle: &mut Option<Pin<Box<Sleep>>>,
    linger: &mut Option<Pin<Box<Sleep>>>,
    ev: &mut Vec<Event>,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Future<Output = Result<S, Close>>,
{
    st.waker = Some(cx.waker().clone());
    if st.phase == Phase::Connecting {
        let Some(fut) = connecting.as_mut() else {
            st.phase = Phase::Done;
            return true;
        };
        match fut.as_mut().poll(cx) {
            Poll::Pending => return false,
            Poll::Ready(Ok(s)) => {
                *connecting = None;
                st.stream = Some(s);
                st.phase = Phase::Open;
                ev.push(Event::Connected);
                reset_idle(idle, opts);
            }
            Poll::Ready(Err(c)) => {
                *connecting = None;
                ev.push(Event::Closed(c));
                st.phase = Phase::Done;
                return true;
            }
        }
    } else if connecting.is_some() && st.phase == Phase::Done {
        // Closed locally while still connecting: never report anything.
        *connecting = None;
    }
    loop {
        if st.phase == Phase::Done || st.stream.is_none() {
            st.phase = Phase::Done;
            return true;
        }
        let reporting = st.phase == Phase::Open;
        // Hand over what was sent.
        let mut progressed = false;
        match write_out(st, cx) {
            Ok(n) => progressed |= n > 0,
            Err(c) => return fail(st, c, ev),
        }
        if progressed {
            reset_idle(idle, opts);
        }
        if st.unflushed > 0 || progressed {
            let s = st.stream.as_mut().expect("open stream");
            match Pin::new(s).poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    if reporting {
                        ev.extend((0..st.unflushed).map(|_| Event::Sent));
                    }
                    st.unflushed = 0;
                }
                Poll::Ready(Err(e)) => return fail(st, Close::from_io(&e), ev),
                Poll::Pending => {}
            }
        }
        if st.phase == Phase::Closing {
            if linger.is_none() {
                *linger = Some(Box::pin(tokio::time::sleep(opts.linger)));
            }
            if linger
                .as_mut()
                .is_some_and(|l| l.as_mut().poll(cx).is_ready())
            {
                st.phase = Phase::Done;
                continue;
            }
            if st.out.is_empty() && st.unflushed == 0 {
                let s = st.stream.as_mut().expect("open stream");
                match Pin::new(s).poll_shutdown(cx) {
                    Poll::Pending => return false,
                    Poll::Ready(_) => {
                        st.phase = Phase::Done;
                        continue;
                    }
                }
            }
            return false;
        }
        // Read, unless the script is holding or has not caught up.
        if !st.held && st.undelivered == 0 {
            let s = st.stream.as_mut().expect("open stream");
            let mut rb = ReadBuf::new(buf);
            match Pin::new(s).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let data = rb.filled();
                    if data.is_empty() {
                        ev.push(Event::Closed(Close::Remote));
                        // The peer is gone for reading; hand over what is left, then close.
                        st.phase = Phase::Closing;
                        continue;
                    }
                    let size = opts.chunk.unwrap_or(data.len()).max(1);
                    for c in data.chunks(size) {
                        ev.push(Event::Data(c.to_vec()));
                        st.undelivered += 1;
                    }
                    reset_idle(idle, opts);
                }
                Poll::Ready(Err(e)) => return fail(st, Close::from_io(&e), ev),
                Poll::Pending => {}
            }
        }
        if let Some(t) = idle.as_mut()
            && t.as_mut().poll(cx).is_ready()
        {
            ev.push(Event::Closed(Close::Aborted));
            st.phase = Phase::Closing;
            continue;
        }
        return false;
    }
}

fn reset_idle(idle: &mut Option<Pin<Box<Sleep>>>, opts: &Options) {
    if let (Some(t), Some(d)) = (idle.as_mut(), opts.idle_timeout) {
        t.as_mut().reset(Instant::now() + d);
    }
}

/// The connection failed: report it (unless closing locally) and finish.
fn fail<S>(st: &mut Shared<S>, c: Close, ev: &mut Vec<Event>) -> bool {
    if st.phase == Phase::Open {
        ev.push(Event::Closed(c));
    }
    st.phase = Phase::Done;
    st.stream = None;
    st.out.clear();
    st.queued = 0;
    true
}

/// Writes as much of the queue as the stream takes now; the number of bytes written.
fn write_out<S: AsyncWrite + Unpin>(
    st: &mut Shared<S>,
    cx: &mut Context<'_>,
) -> Result<usize, Close> {
    const MAX_SLICES: usize = 64;
    let mut total = 0;
    while !st.out.is_empty() {
        let s = st.stream.as_mut().expect("open stream");
        let res = if st.out.len() == 1 {
            Pin::new(s).poll_write(cx, &st.out[0][st.out_off..])
        } else {
            let mut slices: [IoSlice<'_>; MAX_SLICES] = [IoSlice::new(&[]); MAX_SLICES];
            let mut n = 0;
            for (i, b) in st.out.iter().take(MAX_SLICES).enumerate() {
                slices[i] = IoSlice::new(if i == 0 { &b[st.out_off..] } else { b });
                n += 1;
            }
            Pin::new(s).poll_write_vectored(cx, &slices[..n])
        };
        match res {
            Poll::Pending => break,
            Poll::Ready(Ok(0)) => return Err(Close::Reset),
            Poll::Ready(Ok(mut n)) => {
                total += n;
                st.queued -= n;
                while n > 0 {
                    let left = st.out[0].len() - st.out_off;
                    if n >= left {
                        n -= left;
                        st.out.pop_front();
                        st.out_off = 0;
                        st.unflushed += 1;
                    } else {
                        st.out_off += n;
                        n = 0;
                    }
                }
            }
            Poll::Ready(Err(e)) => return Err(Close::from_io(&e)),
        }
    }
    Ok(total)
}
