//! `net.ping(domain, [count], callback_received[, callback_sent])`: ICMP echo as the 3.0
//! firmware's `net_ping.c` and the SDK's lwIP `ping.c` do it (ESP8266 only; the ESP32 port has no
//! `net.ping`, older generations had none either).
//!
//! The firmware sends one 32-byte echo a second, `count` times (0 or absent: 4). Each echo has a
//! 1 s timeout: a reply calls `callback_received(32, ip, seqno, rtt_ms)`, a timeout
//! `callback_received(0, ip, 0, -1)`. One second after the last echo, `callback_sent(ip,
//! total_count, timeout_count, total_bytes, total_time_ms)`. A name that does not resolve calls
//! `callback_received(0)` only. Sequence numbers count up across every ping of the boot from 1
//! and wrap to 0 at 0x7fff; a reply counts only while its echo is the latest one sent.
//!
//! The host cannot send ICMP without privileges in general, so the network is a model: the
//! simulated network lives on loopback (the station is 127.0.0.1, `wifi.md`), and every
//! 127.0.0.0/8 address answers after [`LOOPBACK_RTT`] of device time; any other address never
//! answers (a one-time warning on stderr says so), as a host out of reach would not.

use std::cell::Cell;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::time::Duration;

use host_backend::clock::SimTime;
use host_backend::timers::TimerKey;
use mlua::{Function, Lua, Value};

use crate::lauxlib::{Args, FwResult, binding_name, fw_err};
use crate::net::dns::{Lookup, lookup};
use crate::runtime::Runtime;

/// `PING_DATA_SIZE`: the payload of each echo, which a reply reports as its byte count.
pub const DATA_SIZE: i64 = 32;
/// `DEFAULT_PING_MAX_COUNT`.
const DEFAULT_COUNT: u32 = 4;
/// `PING_COARSE`: one echo a second.
const INTERVAL: Duration = Duration::from_millis(1000);
/// `PING_TIMEOUT_MS`.
const TIMEOUT: Duration = Duration::from_millis(1000);
/// How long a loopback host takes to answer, as a host on a quiet LAN does.
pub const LOOPBACK_RTT: Duration = Duration::from_millis(1);
/// lwIP's `ERR_ARG` and `ERR_MEM`, as `dns_gethostbyname` returns them.
const ERR_ARG: i32 = -12;
const ERR_MEM: i32 = -1;

/// The SDK's `ping_seq_num`, shared by every ping of the boot.
#[derive(Default)]
struct SeqNum(Cell<u16>);

impl SeqNum {
    fn next(&self) -> u16 {
        let mut n = self.0.get() + 1;
        if n == 0x7fff {
            n = 0;
        }
        self.0.set(n);
        n
    }
}

/// One `net.ping` in progress (the SDK's `ping_msg`).
struct Pinger {
    rt: Rc<Runtime>,
    ip: Ipv4Addr,
    received: Function,
    sent: Option<Function>,
    max_count: u32,
    sent_count: Cell<u32>,
    timeout_count: Cell<u32>,
    started: SimTime,
    sent_at: Cell<SimTime>,
    seq: Cell<u16>,
    timeout: Cell<Option<TimerKey>>,
}

/// `net.ping(domain, [count], callback_received[, callback_sent])`.
pub(crate) fn ping(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let target = a.check_str(lua, 1)?;
    let count_is_absent = a.is_function(2);
    let count = if count_is_absent {
        0
    } else {
        a.opt_integer(2, 0)?
    };
    // The firmware sets the stack top and checks the last two slots, counted from the top.
    let top = if count_is_absent { 3 } else { 4 };
    let name = binding_name(lua);
    let Value::Function(received) = a.get(top - 1) else {
        return fw_err(format!(
            "bad argument #-2 to '{name}' (no received callback specified)"
        ));
    };
    let sent = match a.get(top) {
        Value::Function(f) => Some(f),
        Value::Nil => None,
        _ => {
            return fw_err(format!(
                "bad argument #-1 to '{name}' (invalid sent callback, function expected)"
            ));
        }
    };
    if target.is_empty() || target.len() >= 256 {
        return fw_err(format!("lwip error {ERR_ARG}"));
    }
    // `ping_option.count` is a uint32: a negative count wraps, as it does on the board.
    let max_count = match count as u32 {
        0 => DEFAULT_COUNT,
        n => n,
    };
    let r = rt.clone();
    let (recv2, sent2) = (received.clone(), sent.clone());
    let started = lookup(rt, &target, move |lua, ip| {
        resolved(lua, &r, ip, recv2, sent2, max_count)
    });
    match started {
        Ok(Lookup::Now(ip)) => Ok(resolved(lua, rt, Some(ip), received, sent, max_count)?),
        Ok(Lookup::Pending) => Ok(()),
        Err(_) => fw_err(format!("lwip error {ERR_MEM}")),
    }
}

/// `net_ping_raw`: starts the echoes, or reports a name that did not resolve with a 0 count.
fn resolved(
    lua: &Lua,
    rt: &Rc<Runtime>,
    ip: Option<Ipv4Addr>,
    received: Function,
    sent: Option<Function>,
    max_count: u32,
) -> mlua::Result<()> {
    let ip = match ip {
        Some(ip) if !ip.is_broadcast() => ip,
        _ => return rt.call_protected(lua, &received, 0),
    };
    if !ip.is_loopback() {
        rt.warn_once(
            "net.ping",
            &format!(
                "net.ping: only loopback addresses (127.0.0.0/8, where the simulated network \
                 lives) answer pings; {ip} will time out"
            ),
        );
    }
    let p = Rc::new(Pinger {
        rt: rt.clone(),
        ip,
        received,
        sent,
        max_count,
        sent_count: Cell::new(max_count),
        timeout_count: Cell::new(0),
        started: rt.now(),
        sent_at: Cell::new(rt.now()),
        seq: Cell::new(0),
        timeout: Cell::new(None),
    });
    send(&p);
    Ok(())
}

/// `ping_send` with its two timers: the echo's timeout, then the next tick.
fn send(p: &Rc<Pinger>) {
    let rt = &p.rt;
    let seq = rt.state(|_| SeqNum::default()).next();
    p.seq.set(seq);
    p.sent_at.set(rt.now());
    if p.ip.is_loopback() {
        let q = p.clone();
        rt.arm_timer(LOOPBACK_RTT, Box::new(move |lua| reply(lua, &q, seq)));
    }
    let q = p.clone();
    let key = rt.arm_timer(
        TIMEOUT,
        Box::new(move |lua| {
            q.timeout.set(None);
            q.timeout_count.set(q.timeout_count.get() + 1);
            let ip = q.ip.to_string();
            q.rt.call_protected(lua, &q.received, (0, ip, 0, -1))
        }),
    );
    p.timeout.set(Some(key));
    let q = p.clone();
    rt.arm_timer(INTERVAL, Box::new(move |lua| tick(lua, &q)));
}

/// `ping_recv`: the reply to echo `seq`, if it is still the one the SDK waits for.
fn reply(lua: &Lua, p: &Rc<Pinger>, seq: u16) -> mlua::Result<()> {
    let current = p.rt.state(|_| SeqNum::default()).0.get();
    if seq != current || p.seq.get() != seq {
        return Ok(());
    }
    let Some(key) = p.timeout.take() else {
        return Ok(());
    };
    p.rt.cancel_timer(key);
    let rtt = (p.rt.now().saturating_sub(p.sent_at.get())).as_millis() as i64;
    let ip = p.ip.to_string();
    p.rt.call_protected(lua, &p.received, (DATA_SIZE, ip, i64::from(seq), rtt))
}

/// `ping_coarse_tmr`: the next echo, or the summary after the last one.
fn tick(lua: &Lua, p: &Rc<Pinger>) -> mlua::Result<()> {
    let left = p.sent_count.get().wrapping_sub(1);
    p.sent_count.set(left);
    if left != 0 {
        send(p);
        return Ok(());
    }
    let Some(sent) = &p.sent else {
        return Ok(());
    };
    let total_time = p.rt.now().saturating_sub(p.started).as_millis() as i64;
    let answered = p.max_count.wrapping_sub(p.timeout_count.get());
    let total_bytes = (DATA_SIZE as u32).wrapping_mul(answered);
    let args = (
        p.ip.to_string(),
        i64::from(p.max_count),
        i64::from(p.timeout_count.get()),
        i64::from(total_bytes),
        total_time,
    );
    p.rt.call_protected(lua, sent, args)
}
