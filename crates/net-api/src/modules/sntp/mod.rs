//! `sntp`: NTP over the host's UDP, setting `rtctime`, as the firmware's client does it.
//!
//! A sync resolves the names it was given (through `net/dns.rs`), then asks the servers in turn,
//! one request in flight at a time with a 1 s timeout, for up to 5 rounds and at most 8 requests,
//! keeping the answer with the shortest delay; the clock is then set (or, on a repeat sync that is
//! already close, its rate nudged) and the callback runs with `(sec, usec, server, info)`. When no
//! server answered, the error callback gets `(4, nil)`; when no name resolved, `(1, name)`. With
//! `autorepeat` the sync runs again every 1000 s. Resolved servers are kept for a later
//! `sntp.sync()` without servers. The port is 123, or `--ntp-port` for a test server.
//!
//! Firmware 1.5 had the first client: one server (default the anycast address 224.0.1.1), the
//! first good answer wins, `callback(sec, usec, server)` and `errcallback(code)`.
//!
//! Here: the sync itself. `packet.rs` has the NTP frame and its arithmetic, `repeat.rs` what
//! outlives a sync (autorepeat, leap seconds), `legacy.rs` the 1.5 client.

use std::cell::{Cell, RefCell};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;
use std::time::Duration;

use host_backend::timers::TimerKey;
use host_backend::udp::{Datagram, Endpoint};
use mlua::{Function, IntoLuaMulti, Lua, MultiValue, Table, Value};

use crate::config::Firmware;
use crate::lauxlib::{Args, FwResult, bind, fw_err};
use crate::modules::module_table;
use crate::modules::rtctime::{self, uptime_us};
use crate::net::dns::{Lookup, lookup};
use crate::runtime::{LiveIo, Priority, Runtime};

mod legacy;
mod packet;
mod repeat;

use legacy::{begin_legacy, legacy_done, legacy_send};
use packet::{Reply, frac16_to_us, offset_and_delay, request, us_to_frac};
use repeat::{cancel_repeat, next_midnight, set_repeat, update_offset};

const NTP_PORT: u16 = 123;
/// Seconds from the NTP era (1900) to the Unix epoch.
const NTP_TO_UNIX: u32 = 2_208_988_800;
const MAX_ATTEMPTS: u32 = 5;
const ANYCAST: Ipv4Addr = Ipv4Addr::new(224, 0, 1, 1);
const REPLY_TIMEOUT: Duration = Duration::from_secs(1);
const PLL_A: i64 = 1 << (32 - 11);
const PLL_B: i64 = 1 << (32 - 11 - 2);

/// The error callback's codes.
const DNS_ERR: i64 = 1;
const TIMEOUT_ERR: i64 = 4;

/// A server's bit in the kiss-of-death mask (the firmware's holds 32 servers).
fn kod_bit(pos: usize) -> u32 {
    1u32.checked_shl(pos as u32).unwrap_or(0)
}

/// The best answer of a sync so far.
#[derive(Debug, Clone, Copy)]
struct Best {
    server: Ipv4Addr,
    delay: i32,
    delay_frac: u32,
    root_maxerr: u32,
    root_dispersion: u32,
    root_delay: u32,
    delta: i64,
    stratum: u8,
    li: u8,
}

/// One sync in progress (the firmware's `state`).
struct SyncState {
    ep: Option<Endpoint>,
    _live: LiveIo,
    cookie: u64,
    timer: Option<TimerKey>,
    cb: Option<Function>,
    errcb: Option<Function>,
    /// Names still to look up (`None`: use the servers kept from before).
    list: Option<Vec<String>>,
    lookup_pos: usize,
    attempts: u32,
    server_pos: i32,
    kodbits: u32,
    is_on_timeout: bool,
    best: Option<Best>,
}

type Sync = Rc<RefCell<SyncState>>;

struct Repeat {
    cb: Option<Function>,
    errcb: Option<Function>,
    list: Option<Vec<String>>,
    timer: TimerKey,
}

/// The module's state for the boot: servers kept between syncs, the sync, the repeat, leap seconds.
#[derive(Default)]
struct Sntp {
    servers: RefCell<Vec<Ipv4Addr>>,
    sync: RefCell<Option<Sync>>,
    repeat: RefCell<Option<Repeat>>,
    offset: Cell<u8>,
    using_offset: Cell<bool>,
    pending_li: Cell<u8>,
    next_midnight: Cell<i32>,
    pll_increment: Cell<i32>,
}

fn sntp(rt: &Runtime) -> Rc<Sntp> {
    rt.state(|_| Sntp::default())
}

fn legacy(rt: &Runtime) -> bool {
    rt.cfg.firmware == Firmware::V1_5
}

/// The time the client stamps and compares with: rtctime's, or uptime while it has none.
fn timeofday(rt: &Runtime) -> (u32, u32) {
    let up = uptime_us(rt);
    match rtctime::clock(rt).0.borrow_mut().get(up) {
        (0, _) => ((up / 1_000_000) as u32, (up % 1_000_000) as u32),
        tv => tv,
    }
}

fn ntp_stamp(rt: &Runtime, sec: u32, usec: u32) -> u64 {
    let s = sec
        .wrapping_sub(u32::from(sntp(rt).offset.get()))
        .wrapping_add(NTP_TO_UNIX);
    (u64::from(s) << 32) | u64::from(us_to_frac(usec))
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let r = rt.clone();
    let mut fns = vec![("sync", bind(lua, move |lua, a| sync(lua, &r, &a))?)];
    if !legacy(rt) {
        let r = rt.clone();
        let setoffset = bind(lua, move |_, a| {
            let st = sntp(&r);
            st.offset.set(a.check_integer(1)? as u8);
            let (sec, _) = rtctime::clock(&r).0.borrow_mut().get(uptime_us(&r));
            if sec != 0 {
                st.next_midnight.set(next_midnight(&st, sec as i32));
            }
            st.using_offset.set(true);
            Ok(())
        })?;
        let r = rt.clone();
        let getoffset = bind(lua, move |_, _| {
            update_offset(&r);
            Ok(i64::from(sntp(&r).offset.get()))
        })?;
        fns.push(("setoffset", setoffset));
        fns.push(("getoffset", getoffset));
    }
    lua.globals().set("sntp", module_table(lua, fns)?)
}

/// The function argument `n`, if it is one (the firmware keeps any value and fails calling it).
fn opt_function(a: &Args, n: usize) -> Option<Function> {
    match a.get(n) {
        Value::Function(f) => Some(f),
        _ => None,
    }
}

/// The names a sync is to look up: its argument, the kept servers (`None`), or the pool.
fn server_names(lua: &Lua, rt: &Runtime, a: &Args) -> FwResult<Option<Vec<String>>> {
    let st = sntp(rt);
    if a.is_none_or_nil(1) {
        if !st.servers.borrow().is_empty() {
            return Ok(None);
        }
        return Ok(Some(if legacy(rt) {
            vec![ANYCAST.to_string()]
        } else {
            (0..4)
                .map(|i| format!("{i}.nodemcu.pool.ntp.org"))
                .collect()
        }));
    }
    let names = match a.get(1) {
        Value::Table(t) if !legacy(rt) => table_names(lua, &t)?,
        _ => {
            let name = a.check_str(lua, 1)?;
            if name.len() > 128 {
                return fw_err("need <128 hostname");
            }
            vec![name]
        }
    };
    st.servers.borrow_mut().clear();
    Ok(Some(names))
}

/// A list's names. The firmware reads each as it looks it up (`luaL_checklstring` on the stack
/// top, hence `#-1`); an empty list fails on its missing first entry.
fn table_names(lua: &Lua, t: &Table) -> FwResult<Vec<String>> {
    let mut names = Vec::new();
    for i in 1..=t.raw_len().max(1) {
        let v: Value = t.raw_get(i)?;
        match v {
            Value::String(_) | Value::Integer(_) | Value::Number(_) => {
                let s = lua.coerce_string(v)?.map(|s| s.to_string_lossy());
                names.push(s.unwrap_or_default());
            }
            other => {
                return fw_err(format!(
                    "bad argument #-1 to 'sync' (string expected, got {})",
                    crate::lauxlib::typename(&other)
                ));
            }
        }
    }
    Ok(names)
}

/// `sntp.sync([server | {servers}], [callback], [errcallback], [autorepeat])`.
fn sync(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let st = sntp(rt);
    if !legacy(rt) {
        cancel_repeat(rt);
    }
    if st.sync.borrow().is_some() {
        return fw_err("sync in progress");
    }
    let (cb, errcb) = (opt_function(a, 2), opt_function(a, 3));
    let list = server_names(lua, rt, a)?;
    start(rt, cb.clone(), errcb.clone(), list.clone(), false);
    if legacy(rt) {
        return begin_legacy(rt);
    }
    st.pll_increment.set(rtctime::clock(rt).0.borrow().rate());
    lookups(lua, rt)?;
    if !a.is_none_or_nil(4) {
        set_repeat(rt, cb, errcb, list);
    }
    Ok(())
}

/// Makes the sync state; its socket is bound at the first request.
fn start(
    rt: &Rc<Runtime>,
    cb: Option<Function>,
    errcb: Option<Function>,
    list: Option<Vec<String>>,
    is_on_timeout: bool,
) {
    let s = SyncState {
        ep: None,
        _live: rt.live_io_guard(),
        cookie: 0,
        timer: None,
        cb,
        errcb,
        list,
        lookup_pos: 0,
        attempts: 0,
        server_pos: -1,
        kodbits: 0,
        is_on_timeout,
        best: None,
    };
    *sntp(rt).sync.borrow_mut() = Some(Rc::new(RefCell::new(s)));
}

fn current(rt: &Runtime) -> Option<Sync> {
    sntp(rt).sync.borrow().clone()
}

/// Ends the sync: its socket closes, its timer stops.
fn cleanup(rt: &Runtime) -> Option<Sync> {
    let s = sntp(rt).sync.borrow_mut().take()?;
    if let Some(k) = s.borrow_mut().timer.take() {
        rt.cancel_timer(k);
    }
    s.borrow_mut().ep = None;
    Some(s)
}

/// Looks the names up in turn (addresses at once, names through DNS), then starts asking.
fn lookups(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    loop {
        let Some(s) = current(rt) else { return Ok(()) };
        let next = {
            let mut st = s.borrow_mut();
            match &st.list {
                None => None,
                Some(list) if st.lookup_pos >= list.len() => None,
                Some(list) => {
                    let name = list[st.lookup_pos].clone();
                    st.lookup_pos += 1;
                    Some(name)
                }
            }
        };
        let Some(name) = next else {
            if sntp(rt).servers.borrow().is_empty() && s.borrow().list.is_some() {
                let first = s.borrow().list.as_ref().and_then(|l| l.first().cloned());
                return handle_error(lua, rt, DNS_ERR, first);
            }
            send(rt);
            return Ok(());
        };
        let (r, s2) = (rt.clone(), s.clone());
        let found = move |_: &Lua, ip: Option<Ipv4Addr>| {
            if current(&r).is_some_and(|c| Rc::ptr_eq(&c, &s2)) {
                sntp(&r).servers.borrow_mut().extend(ip);
                let rr = r.clone();
                r.post_internal(Priority::Low, Box::new(move |lua| lookups(lua, &rr)));
            }
            Ok(())
        };
        match lookup(rt, &name, found) {
            Ok(Lookup::Now(ip)) => sntp(rt).servers.borrow_mut().push(ip),
            Ok(Lookup::Pending) => return Ok(()),
            Err(_) => return handle_error(lua, rt, DNS_ERR, Some(name)),
        }
    }
}

/// Sends the next request, or ends the sync when the rounds are used up.
fn send(rt: &Rc<Runtime>) {
    let Some(s) = current(rt) else { return };
    let servers = sntp(rt).servers.borrow().clone();
    let n = servers.len() as u32;
    let server = {
        let mut st = s.borrow_mut();
        loop {
            st.server_pos += 1;
            if st.server_pos as u32 >= n {
                st.server_pos = 0;
                st.attempts += 1;
            }
            if st.attempts >= MAX_ATTEMPTS || st.attempts * n >= 8 {
                drop(st);
                let r = rt.clone();
                rt.post_internal(Priority::High, Box::new(move |lua| handle_result(lua, &r)));
                return;
            }
            let pos = st.server_pos as usize;
            if !servers[pos].is_unspecified() && st.kodbits & kod_bit(pos) == 0 {
                break servers[pos];
            }
        }
    };
    let (sec, usec) = timeofday(rt);
    let cookie = ntp_stamp(rt, sec, usec);
    transmit(rt, &s, server, cookie);
    arm_timeout(rt, &s);
}

/// Hands one request to the host; a failure is left to the timeout, as the firmware does.
fn transmit(rt: &Rc<Runtime>, s: &Sync, server: Ipv4Addr, cookie: u64) {
    let mut st = s.borrow_mut();
    st.cookie = cookie;
    if st.ep.is_none() {
        let local = if server.is_loopback() && !rt.cfg.net.expose {
            Ipv4Addr::LOCALHOST
        } else {
            Ipv4Addr::UNSPECIFIED
        };
        st.ep = Endpoint::bind(SocketAddrV4::new(local, 0), receiver(rt, s)).ok();
    }
    let port = rt.cfg.net.ntp_port.unwrap_or(NTP_PORT);
    if let Some(ep) = &st.ep {
        let _ = ep.send_to(&request(cookie), SocketAddrV4::new(server, port));
    }
}

fn arm_timeout(rt: &Rc<Runtime>, s: &Sync) {
    let (r, s2) = (rt.clone(), s.clone());
    let key = rt.arm_timer(
        REPLY_TIMEOUT,
        Box::new(move |lua| {
            s2.borrow_mut().timer = None;
            if current(&r).is_some_and(|c| Rc::ptr_eq(&c, &s2)) {
                on_timeout(lua, &r);
            }
            Ok(())
        }),
    );
    if let Some(old) = s.borrow_mut().timer.replace(key) {
        rt.cancel_timer(old);
    }
}

fn on_timeout(lua: &Lua, rt: &Rc<Runtime>) {
    if !legacy(rt) {
        return send(rt);
    }
    let attempts = current(rt).map_or(0, |s| s.borrow().attempts);
    if attempts >= MAX_ATTEMPTS {
        let _ = handle_error(lua, rt, TIMEOUT_ERR, None);
    } else {
        legacy_send(rt);
    }
}

/// Delivers the socket's datagrams to the Lua thread, for this sync only.
fn receiver(rt: &Rc<Runtime>, s: &Sync) -> impl Fn(Datagram) + 'static {
    let (sink, r, s) = (rt.event_sink(), Rc::downgrade(rt), Rc::downgrade(s));
    move |d: Datagram| {
        let (r, s) = (r.clone(), s.clone());
        sink.push(Box::new(move |lua| {
            if let (Some(rt), Some(s)) = (r.upgrade(), s.upgrade())
                && current(&rt).is_some_and(|c| Rc::ptr_eq(&c, &s))
            {
                on_recv(lua, &rt, &s, &d)?;
            }
            Ok(())
        }));
    }
}

/// An answer: checked against the request, recorded, and the next request sent.
fn on_recv(lua: &Lua, rt: &Rc<Runtime>, s: &Sync, d: &Datagram) -> mlua::Result<()> {
    let (sec, usec) = timeofday(rt);
    let Some(reply) = Reply::parse(&d.data) else {
        return Ok(());
    };
    let from = *d.from.ip();
    let st = sntp(rt);
    let pos = s.borrow().server_pos.max(0) as usize;
    let expected = st.servers.borrow().get(pos).copied();
    if expected != Some(ANYCAST) && expected != Some(from) {
        return Ok(());
    }
    if reply.origin != s.borrow().cookie {
        return Ok(());
    }
    if reply.li == 3 {
        // Not synchronised; "DENY" is a kiss of death: twice and the server is dropped.
        if &reply.refid == b"DENY" && !legacy(rt) {
            let mut sst = s.borrow_mut();
            if sst.kodbits & kod_bit(pos) != 0 {
                if let Some(s) = st.servers.borrow_mut().get_mut(pos) {
                    *s = Ipv4Addr::UNSPECIFIED;
                }
            } else {
                sst.kodbits |= kod_bit(pos);
            }
        }
        return Ok(());
    }
    {
        let mut sst = s.borrow_mut();
        sst.kodbits &= !kod_bit(pos);
        if let Some(k) = sst.timer.take() {
            rt.cancel_timer(k);
        }
    }
    if reply.li != 0 {
        st.pending_li.set(reply.li);
    }
    update_offset(rt);
    let dest = ntp_stamp(rt, sec, usec);
    let (delta, delay_frac) = offset_and_delay(&reply, dest);
    if legacy(rt) {
        *st.servers.borrow_mut() = vec![from];
        return legacy_done(lua, rt, from, delta);
    }
    record(s, from, delta, delay_frac, &reply);
    send(rt);
    Ok(())
}

fn record(s: &Sync, from: Ipv4Addr, delta: i64, delay_frac: u32, r: &Reply) {
    let delay = r.root_delay.wrapping_mul(2).wrapping_add(delay_frac) as i32;
    let mut st = s.borrow_mut();
    if st.best.is_none_or(|b| delay < b.delay) {
        st.best = Some(Best {
            server: from,
            delay,
            delay_frac,
            root_maxerr: r.root_dispersion.wrapping_add(r.root_delay / 2),
            root_dispersion: r.root_dispersion,
            root_delay: r.root_delay,
            delta,
            stratum: r.stratum,
            li: r.li,
        });
    }
}

/// The time `delta` (32.32 seconds) from now.
fn corrected(rt: &Runtime, delta: i64) -> (u32, u32) {
    let (sec, usec) = timeofday(rt);
    let mut sec = sec.wrapping_add((delta >> 32) as i32 as u32);
    let mut usec = usec.wrapping_add(((1_000_000 * (delta & 0xffff_ffff)) >> 32) as u32);
    while usec >= 1_000_000 {
        usec -= 1_000_000;
        sec = sec.wrapping_add(1);
    }
    (sec, usec)
}

/// The end of the rounds: set the clock from the best answer, or report the timeout.
fn handle_result(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let Some(s) = current(rt) else { return Ok(()) };
    let (best, on_timeout) = {
        let st = s.borrow();
        (st.best, st.is_on_timeout)
    };
    let Some(best) = best else {
        sntp(rt).servers.borrow_mut().clear();
        return handle_error(lua, rt, TIMEOUT_ERR, None);
    };
    let tv = corrected(rt, best.delta);
    let up = rt.now().as_micros() as u64;
    let window = (200_000i64 << 32) / 1_000_000;
    if on_timeout && best.delta > -window && best.delta < window {
        // Close already: steer the rate instead of stepping the clock.
        let st = sntp(rt);
        let f = ((best.delta * PLL_A) >> 32) as i32 + st.pll_increment.get();
        st.pll_increment
            .set(st.pll_increment.get() + ((best.delta * PLL_B) >> 32) as i32);
        rtctime::clock(rt).0.borrow_mut().set_rate(up, f);
    } else {
        rtctime::clock(rt).0.borrow_mut().set(up, tv.0, tv.1);
    }
    let s = cleanup(rt);
    let Some(cb) = s.and_then(|s| s.borrow().cb.clone()) else {
        return Ok(());
    };
    let info = info_table(lua, rt, &best)?;
    let args = (
        i64::from(tv.0),
        i64::from(tv.1),
        best.server.to_string(),
        info,
    );
    call(lua, rt, &cb, args)
}

fn info_table(lua: &Lua, rt: &Runtime, b: &Best) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let d40 = (b.delta >> 40) as i32;
    if d40 != 0 && d40 != -1 {
        t.set("offset_s", (b.delta >> 32) as i32)?;
    } else {
        t.set("offset_us", (b.delta * 1_000_000) >> 32)?;
    }
    if b.delay_frac > 0 {
        t.set("delay_us", frac16_to_us(b.delay_frac))?;
    }
    t.set("root_delay_us", frac16_to_us(b.root_delay))?;
    t.set("root_dispersion_us", frac16_to_us(b.root_dispersion))?;
    t.set(
        "root_maxerr_us",
        frac16_to_us(b.root_maxerr.wrapping_add(b.delay_frac / 2)),
    )?;
    t.set("stratum", b.stratum)?;
    t.set("leap", b.li)?;
    t.set("pending_leap", sntp(rt).pending_li.get())?;
    Ok(t)
}

/// Ends the sync with an error: `errcallback(code, text)` (1.5: `errcallback(code)`).
fn handle_error(lua: &Lua, rt: &Rc<Runtime>, code: i64, text: Option<String>) -> mlua::Result<()> {
    let Some(s) = cleanup(rt) else { return Ok(()) };
    let Some(f) = s.borrow().errcb.clone() else {
        return Ok(());
    };
    let args = if legacy(rt) {
        code.into_lua_multi(lua)?
    } else {
        (code, text).into_lua_multi(lua)?
    };
    call(lua, rt, &f, args)
}

/// 3.0 protects the callbacks; older firmware called them bare (a PANIC on the ESP8266).
fn call(lua: &Lua, rt: &Rc<Runtime>, f: &Function, args: impl IntoLuaMulti) -> mlua::Result<()> {
    let args: MultiValue = args.into_lua_multi(lua)?;
    if rt.cfg.firmware >= Firmware::V3_0 {
        rt.call_protected(lua, f, args)
    } else {
        rt.call_net(lua, f, args)
    }
}
