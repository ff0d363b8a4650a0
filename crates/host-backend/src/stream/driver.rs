//! The task behind a [`Conn`](super::Conn): one poll function that connects, hands sends over,
//! writes, reads ahead, times out and closes, reporting what happened as events. It owns what only
//! the task touches (the connecting future, the timers); the rest it shares with the handle.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io::IoSlice;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::idle::IdleWatch;
use super::{Close, Event, Options, Phase, Shared};

pub(super) type Connecting<F> = Option<Pin<Box<F>>>;

/// The task's own state besides what it shares with the handle.
struct Driver<F> {
    connecting: Connecting<F>,
    opts: Options,
    /// The idle timeout's watch on this connection, from the task's first poll.
    idle: Option<IdleWatch>,
    linger: Option<Pin<Box<Sleep>>>,
}

/// The connection's task: one poll function that hands over, writes, reads and times out.
pub(super) async fn drive<S, F>(
    sh: Rc<RefCell<Shared<S>>>,
    connecting: Connecting<F>,
    opts: Options,
) where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
    F: Future<Output = Result<S, Close>>,
{
    let mut d = Driver {
        connecting,
        idle: None,
        linger: None,
        opts,
    };
    let mut events = Vec::new();
    poll_fn(|cx| {
        let (done, sink) = {
            let mut st = sh.borrow_mut();
            let done = step(&mut st, cx, &mut d, &mut events);
            (done, st.sink.clone())
        };
        if let Some(sink) = sink {
            let mut sink = sink.borrow_mut();
            for e in events.drain(..) {
                sink(e);
            }
        }
        if done { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    // The stream (and with it the host socket) goes first, then the sink's guards.
    let mut st = sh.borrow_mut();
    st.stream = None;
    st.sink = None;
}

/// One look at the connection; true when it is finished. Events are collected in `ev` and sent
/// after the state is released.
fn step<S, F>(
    st: &mut Shared<S>,
    cx: &mut Context<'_>,
    d: &mut Driver<F>,
    ev: &mut Vec<Event>,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Future<Output = Result<S, Close>>,
{
    st.waker = Some(cx.waker().clone());
    if st.phase == Phase::Connecting {
        let Some(fut) = d.connecting.as_mut() else {
            st.phase = Phase::Done;
            return true;
        };
        match fut.as_mut().poll(cx) {
            Poll::Pending => return false,
            Poll::Ready(Ok(s)) => {
                d.connecting = None;
                st.stream = Some(s);
                st.phase = Phase::Open;
                ev.push(Event::Connected);
                reset_idle(d);
            }
            Poll::Ready(Err(c)) => {
                d.connecting = None;
                ev.push(Event::Closed(c));
                st.phase = Phase::Done;
                return true;
            }
        }
    } else if d.connecting.is_some() && st.phase == Phase::Done {
        // Closed locally while still connecting: never report anything.
        d.connecting = None;
    }
    loop {
        if st.phase == Phase::Done || st.stream.is_none() {
            st.phase = Phase::Done;
            return true;
        }
        if st.phase == Phase::Open {
            let moved = st.take_into_buffer();
            ev.extend((0..moved).map(|_| Event::Sent));
        } else {
            // Closing: everything queued goes out, unreported.
            st.handed = st.out.len();
            st.handed_bytes += st.queued;
            st.queued = 0;
        }
        let written = match write_out(st, cx) {
            Ok(n) => n,
            Err(c) => return fail(st, c, ev),
        };
        if written > 0 {
            reset_idle(d);
            st.need_flush = true;
            if st.phase == Phase::Open && st.queued > 0 {
                continue; // room in the buffer again: hand over what waited for it
            }
        }
        if st.need_flush {
            let s = st.stream.as_mut().expect("open stream");
            match Pin::new(s).poll_flush(cx) {
                Poll::Ready(Ok(())) => st.need_flush = false,
                Poll::Ready(Err(e)) => return fail(st, Close::from_io(&e), ev),
                Poll::Pending => {}
            }
        }
        if st.phase == Phase::Closing {
            if st.out.is_empty() && !st.need_flush {
                let shut = match st.stream.as_mut() {
                    Some(s) if d.opts.shutdown => Pin::new(s).poll_shutdown(cx).is_ready(),
                    _ => true,
                };
                if shut {
                    st.phase = Phase::Done;
                    continue;
                }
            }
            // Still writing (or shutting down): the linger bounds how long. It is armed only
            // now, so a close with nothing left to write never touches the timer wheel (arming
            // a timer earlier than any other wakes the runtime's driver: a syscall).
            let linger = d
                .linger
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(d.opts.linger)));
            if linger.as_mut().poll(cx).is_ready() {
                st.phase = Phase::Done;
                continue;
            }
            return false;
        }
        // Read ahead, unless the script is holding or the buffer is full.
        if let Some(room) = read_room(st) {
            let Shared { stream, rx, .. } = &mut *st;
            let s = stream.as_mut().expect("open stream");
            let mut rb = ReadBuf::uninit(&mut rx.spare_capacity_mut()[..room]);
            match Pin::new(s).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    // SAFETY: `poll_read` initialised the first `n` bytes of the spare
                    // capacity (ReadBuf tracks exactly that).
                    unsafe { rx.set_len(rx.len() + n) };
                    if n == 0 {
                        st.eof = true;
                    } else {
                        // A read that filled the buffer to its cap: the peer sends faster
                        // than small buffers carry.
                        if st.rx.len() == st.rx_cap && st.rx_cap < st.read_ahead {
                            st.rx_cap = (st.rx_cap * 4).min(st.read_ahead);
                        }
                        reset_idle(d);
                    }
                    st.pump(ev);
                    continue;
                }
                Poll::Ready(Err(e)) => return fail(st, Close::from_io(&e), ev),
                Poll::Pending => {}
            }
        }
        st.pump(ev);
        if d.idle.is_none()
            && let Some(timer) = &d.opts.idle
        {
            d.idle = Some(timer.watch(cx.waker()));
        }
        if d.idle.as_ref().is_some_and(|w| w.expired(cx.waker())) {
            ev.push(Event::Closed(Close::Aborted));
            st.phase = Phase::Closing;
            continue;
        }
        return false;
    }
}

/// Reads smaller than this wait for the unread bytes to be reported first (see [`read_room`]).
const MIN_READ: usize = 1024;

/// How many bytes the next read may take into the receive buffer, if it is to read at all.
/// Reads go into the buffer's free space. Unread bytes are never moved: a buffer without space
/// is replaced only once everything in it was reported (making room while reported chunks still
/// share it would copy what is unread, for a stream most of what it carries).
fn read_room<S>(st: &mut Shared<S>) -> Option<usize> {
    if st.held || st.eof || st.rx.len() >= st.rx_cap {
        return None;
    }
    if st.rx.capacity() - st.rx.len() < MIN_READ {
        if !st.rx.is_empty() {
            return None; // reporting the last of it wakes the task
        }
        // Takes the buffer back once every reported chunk of it is gone, else a new one.
        st.rx.reserve(st.rx_cap);
    }
    Some((st.rx.capacity() - st.rx.len()).min(st.rx_cap - st.rx.len()))
}

fn reset_idle<F>(d: &mut Driver<F>) {
    if let Some(w) = &d.idle {
        w.touch();
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
    st.handed = 0;
    st.handed_bytes = 0;
    st.queued = 0;
    true
}

/// Writes as much of the handed-over sends as the stream takes now; the number of bytes written.
fn write_out<S: AsyncWrite + Unpin>(
    st: &mut Shared<S>,
    cx: &mut Context<'_>,
) -> Result<usize, Close> {
    const MAX_SLICES: usize = 64;
    let mut total = 0;
    loop {
        while st.handed > 0 && st.out[0].len() == st.out_off {
            st.out.pop_front();
            st.out_off = 0;
            st.handed -= 1;
        }
        if st.handed == 0 {
            return Ok(total);
        }
        let s = st.stream.as_mut().expect("open stream");
        let res = if st.handed == 1 {
            Pin::new(s).poll_write(cx, &st.out[0][st.out_off..])
        } else {
            let mut slices: [IoSlice<'_>; MAX_SLICES] = [IoSlice::new(&[]); MAX_SLICES];
            let n = st.handed.min(MAX_SLICES);
            for (i, b) in st.out.iter().take(n).enumerate() {
                slices[i] = IoSlice::new(if i == 0 { &b[st.out_off..] } else { b });
            }
            Pin::new(s).poll_write_vectored(cx, &slices[..n])
        };
        match res {
            Poll::Pending => return Ok(total),
            Poll::Ready(Ok(0)) => return Err(Close::Reset),
            Poll::Ready(Ok(mut n)) => {
                total += n;
                st.handed_bytes -= n;
                while n > 0 {
                    let left = st.out[0].len() - st.out_off;
                    if n >= left {
                        n -= left;
                        st.out.pop_front();
                        st.out_off = 0;
                        st.handed -= 1;
                    } else {
                        st.out_off += n;
                        n = 0;
                    }
                }
            }
            Poll::Ready(Err(e)) => return Err(Close::from_io(&e)),
        }
    }
}
