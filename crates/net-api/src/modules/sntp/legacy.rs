//! Firmware 1.5's client: one server (the anycast address unless named), looked up once, a request
//! a second until the first good answer, `callback(sec, usec, server)` and `errcallback(code)`.

use std::net::Ipv4Addr;
use std::rc::Rc;

use mlua::Lua;

use super::{
    DNS_ERR, arm_timeout, call, cleanup, corrected, current, handle_error, ntp_stamp, sntp,
    timeofday, transmit,
};
use crate::lauxlib::{FwResult, fw_err};
use crate::modules::rtctime;
use crate::net::dns::{Lookup, lookup};
use crate::runtime::Runtime;

/// 1.5: one server, looked up once, then a request a second until the first good answer.
pub(super) fn begin_legacy(rt: &Rc<Runtime>) -> FwResult<()> {
    let Some(s) = current(rt) else { return Ok(()) };
    let name = s.borrow().list.as_ref().and_then(|l| l.first().cloned());
    let Some(name) = name else {
        legacy_send(rt);
        return Ok(());
    };
    let (r, s2) = (rt.clone(), s.clone());
    let found = move |lua: &Lua, ip: Option<Ipv4Addr>| {
        if !current(&r).is_some_and(|c| Rc::ptr_eq(&c, &s2)) {
            return Ok(());
        }
        match ip {
            Some(ip) => {
                *sntp(&r).servers.borrow_mut() = vec![ip];
                legacy_send(&r);
                Ok(())
            }
            None => handle_error(lua, &r, DNS_ERR, None),
        }
    };
    match lookup(rt, &name, found) {
        Ok(Lookup::Now(ip)) => {
            *sntp(rt).servers.borrow_mut() = vec![ip];
            legacy_send(rt);
            Ok(())
        }
        Ok(Lookup::Pending) => Ok(()),
        Err(_) => {
            cleanup(rt);
            fw_err("bad hostname")
        }
    }
}

pub(super) fn legacy_send(rt: &Rc<Runtime>) {
    let Some(s) = current(rt) else { return };
    let Some(server) = sntp(rt).servers.borrow().first().copied() else {
        return;
    };
    s.borrow_mut().attempts += 1;
    let (sec, usec) = timeofday(rt);
    transmit(rt, &s, server, ntp_stamp(rt, sec, usec));
    arm_timeout(rt, &s);
}

pub(super) fn legacy_done(
    lua: &Lua,
    rt: &Rc<Runtime>,
    from: Ipv4Addr,
    delta: i64,
) -> mlua::Result<()> {
    let tv = corrected(rt, delta);
    let up = rt.now().as_micros() as u64;
    rtctime::clock(rt).0.borrow_mut().set(up, tv.0, tv.1);
    let s = cleanup(rt);
    match s.and_then(|s| s.borrow().cb.clone()) {
        Some(cb) => call(
            lua,
            rt,
            &cb,
            (i64::from(tv.0), i64::from(tv.1), from.to_string()),
        ),
        None => Ok(()),
    }
}
