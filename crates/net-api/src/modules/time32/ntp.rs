//! `time.initntp`'s client: lwIP's SNTP in poll mode, as the ESP32 firmware starts it.
//!
//! One server (a name or an address, looked up through `net/dns.rs` each time). A request goes
//! out at once; the answer's transmit time sets the system clock directly (lwIP's default: no
//! round-trip correction), and the next request follows an hour later (ESP-IDF's update delay).
//! No answer within 15 s, a failed lookup or a kiss of death (stratum 0) means a retry after
//! 15 s, doubling on each failure up to 120 s. Answers are taken whenever they come while the
//! client runs, from any sender, if they are 48-byte server-mode frames (lwIP does not check the
//! origin by default). The port is 123, or `--ntp-port` for a test server.
//!
//! While a request or its lookup is out the run is held alive (and a virtual clock waits for the
//! answer); between requests the client's timers are background ones, so a script that only
//! started NTP ends once its answer came, as it could run nothing more.

use std::cell::{Cell, RefCell};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;
use std::time::Duration;

use host_backend::timers::TimerKey;
use host_backend::udp::{Datagram, Endpoint};

use crate::net::dns::{Lookup, lookup};
use crate::runtime::{Job, LiveIo, Runtime};

const NTP_PORT: u16 = 123;
/// Seconds from the NTP era (1900) to the Unix epoch.
const NTP_TO_UNIX: u32 = 2_208_988_800;
/// lwIP's `SNTP_RECV_TIMEOUT`, also its first retry delay.
const RECV_TIMEOUT: Duration = Duration::from_secs(15);
/// lwIP's `SNTP_RETRY_TIMEOUT_MAX` (ten first delays): doubling stops below it.
const RETRY_MAX: Duration = Duration::from_secs(150);
/// ESP-IDF's `SNTP_UPDATE_DELAY`.
const UPDATE_DELAY: Duration = Duration::from_secs(3600);
const FRAME: usize = 48;

#[derive(Default)]
struct Ntp {
    server: RefCell<String>,
    enabled: Cell<bool>,
    /// Which start of the client the callbacks in flight belong to; a stop makes them stale.
    run: Cell<u64>,
    ep: RefCell<Option<Endpoint>>,
    live: RefCell<Option<LiveIo>>,
    timer: Cell<Option<TimerKey>>,
    retry: Cell<Duration>,
}

fn ntp(rt: &Runtime) -> Rc<Ntp> {
    rt.state(|_| Ntp::default())
}

/// `sntp_setservername(0, server); sntp_init()`: a running client only takes the new name.
pub(super) fn init(rt: &Rc<Runtime>, server: String) {
    let st = ntp(rt);
    *st.server.borrow_mut() = server;
    if st.enabled.get() {
        return;
    }
    st.enabled.set(true);
    st.retry.set(RECV_TIMEOUT);
    request(rt);
}

pub(super) fn enabled(rt: &Runtime) -> bool {
    ntp(rt).enabled.get()
}

/// `sntp_stop`: timers off, socket closed, answers still on their way ignored.
pub(super) fn stop(rt: &Runtime) {
    let st = ntp(rt);
    st.enabled.set(false);
    st.run.set(st.run.get() + 1);
    if let Some(k) = st.timer.take() {
        rt.cancel_timer(k);
    }
    st.ep.borrow_mut().take();
    st.live.borrow_mut().take();
}

fn replace_timer(rt: &Runtime, key: TimerKey) {
    if let Some(old) = ntp(rt).timer.replace(Some(key)) {
        rt.cancel_timer(old);
    }
}

/// A timer job that runs `f` if the client is still the run that armed it.
fn if_current(rt: &Rc<Runtime>, f: impl FnOnce(&Rc<Runtime>) + 'static) -> Job {
    let (r, run) = (rt.clone(), ntp(rt).run.get());
    Box::new(move |_| {
        let st = ntp(&r);
        if st.enabled.get() && st.run.get() == run {
            f(&r);
        }
        Ok(())
    })
}

/// `sntp_request`: look the server up, then send.
fn request(rt: &Rc<Runtime>) {
    let st = ntp(rt);
    if let Some(k) = st.timer.take() {
        rt.cancel_timer(k);
    }
    let name = st.server.borrow().clone();
    let (r, run) = (rt.clone(), st.run.get());
    let found = move |_: &mlua::Lua, ip: Option<Ipv4Addr>| {
        let st = ntp(&r);
        if st.enabled.get() && st.run.get() == run {
            st.live.borrow_mut().take();
            match ip {
                Some(ip) => send(&r, ip),
                None => retry(&r),
            }
        }
        Ok(())
    };
    match lookup(rt, &name, found) {
        Ok(Lookup::Now(ip)) => send(rt, ip),
        Ok(Lookup::Pending) => *st.live.borrow_mut() = Some(rt.live_io_guard()),
        Err(_) => retry(rt),
    }
}

/// One request to `server`, and the receive timeout after which the client retries.
fn send(rt: &Rc<Runtime>, server: Ipv4Addr) {
    let st = ntp(rt);
    if st.ep.borrow().is_none() {
        let local = if server.is_loopback() && !rt.cfg.net.expose {
            Ipv4Addr::LOCALHOST
        } else {
            Ipv4Addr::UNSPECIFIED
        };
        *st.ep.borrow_mut() = Endpoint::bind(SocketAddrV4::new(local, 0), receiver(rt)).ok();
    }
    let port = rt.cfg.net.ntp_port.unwrap_or(NTP_PORT);
    if let Some(ep) = st.ep.borrow().as_ref() {
        // A failed send is left to the receive timeout, as lwIP does.
        let _ = ep.send_to(&request_frame(), SocketAddrV4::new(server, port));
    }
    *st.live.borrow_mut() = Some(rt.live_io_guard());
    let later = if_current(rt, |r| {
        ntp(r).timer.set(None);
        retry(r);
    });
    replace_timer(rt, rt.arm_timer(RECV_TIMEOUT, later));
}

/// `sntp_retry`: the next request after the retry delay, which doubles up to its cap.
fn retry(rt: &Rc<Runtime>) {
    let st = ntp(rt);
    st.live.borrow_mut().take();
    let delay = st.retry.get();
    if delay * 2 <= RETRY_MAX {
        st.retry.set(delay * 2);
    }
    schedule(rt, delay);
}

fn schedule(rt: &Rc<Runtime>, after: Duration) {
    let later = if_current(rt, request);
    let key = rt.arm_background_at(rt.now() + after, later);
    replace_timer(rt, key);
}

/// lwIP's request: version 4, client mode, every other field zero.
fn request_frame() -> [u8; FRAME] {
    let mut p = [0u8; FRAME];
    p[0] = (4 << 3) | 3;
    p
}

fn receiver(rt: &Rc<Runtime>) -> impl Fn(Datagram) + 'static {
    let (sink, r, run) = (rt.event_sink(), Rc::downgrade(rt), ntp(rt).run.get());
    move |d: Datagram| {
        let r = r.clone();
        sink.push(Box::new(move |_| {
            if let Some(rt) = r.upgrade()
                && ntp(&rt).enabled.get()
                && ntp(&rt).run.get() == run
            {
                on_recv(&rt, &d.data);
            }
            Ok(())
        }));
    }
}

/// What lwIP's `sntp_recv` makes of a datagram.
fn on_recv(rt: &Rc<Runtime>, b: &[u8]) {
    if b.len() != FRAME || b[0] & 7 != 4 {
        return;
    }
    if b[1] == 0 {
        // A kiss of death: with one server, lwIP tries it again after the retry delay.
        return retry(rt);
    }
    let sec = u32::from_be_bytes([b[40], b[41], b[42], b[43]]);
    let frac = u32::from_be_bytes([b[44], b[45], b[46], b[47]]);
    let usec = ((u64::from(frac) * 1_000_000) >> 32) as u32;
    super::set_time(rt, sec.wrapping_sub(NTP_TO_UNIX), usec);
    let st = ntp(rt);
    st.live.borrow_mut().take();
    st.retry.set(RECV_TIMEOUT);
    schedule(rt, UPDATE_DELAY);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_a_bare_version_4_client_frame() {
        let p = request_frame();
        assert_eq!(p[0], 0x23);
        assert!(p[1..].iter().all(|b| *b == 0));
    }
}
