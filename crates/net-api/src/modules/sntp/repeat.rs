//! What outlives one sync: `autorepeat` (a new sync every 1000 s of device time, with the
//! callbacks of the call that asked for it) and the leap-second offset of `sntp.setoffset`.

use std::rc::Rc;
use std::time::Duration;

use host_backend::timers::TimerKey;
use mlua::{Function, Lua};

use super::{Repeat, Sntp, lookups, sntp, start};
use crate::modules::rtctime::{self, uptime_us};
use crate::runtime::Runtime;

/// How often `autorepeat` syncs.
const REPEAT: Duration = Duration::from_secs(1000);

pub(super) fn set_repeat(
    rt: &Rc<Runtime>,
    cb: Option<Function>,
    errcb: Option<Function>,
    list: Option<Vec<String>>,
) {
    let r = rt.clone();
    let timer = arm_repeat(&r, rt.now() + REPEAT);
    *sntp(rt).repeat.borrow_mut() = Some(Repeat {
        cb,
        errcb,
        list,
        timer,
    });
}

pub(super) fn arm_repeat(rt: &Rc<Runtime>, at: Duration) -> TimerKey {
    let r = rt.clone();
    rt.arm_timer_at(
        at,
        Box::new(move |lua| {
            let st = sntp(&r);
            if st.repeat.borrow().is_none() {
                return Ok(());
            }
            let next = arm_repeat(&r, at + REPEAT);
            if let Some(rep) = st.repeat.borrow_mut().as_mut() {
                rep.timer = next;
            }
            on_long_timeout(lua, &r);
            Ok(())
        }),
    )
}

pub(super) fn cancel_repeat(rt: &Runtime) {
    if let Some(rep) = sntp(rt).repeat.borrow_mut().take() {
        rt.cancel_timer(rep.timer);
    }
}

/// The repeat: a new sync unless one is still running, with the kept servers if any.
pub(super) fn on_long_timeout(lua: &Lua, rt: &Rc<Runtime>) {
    let st = sntp(rt);
    if st.sync.borrow().is_some() {
        return;
    }
    let (cb, errcb, list) = match st.repeat.borrow().as_ref() {
        Some(r) => (r.cb.clone(), r.errcb.clone(), r.list.clone()),
        None => return,
    };
    let list = if st.servers.borrow().is_empty() {
        list
    } else {
        None
    };
    start(rt, cb, errcb, list, true);
    if let Err(e) = lookups(lua, rt) {
        rt.diag(&format!("sntp: {}", crate::lauxlib::lua_error_text(&e)));
    }
}

// ---- leap seconds (sntp.setoffset) ----

pub(super) fn next_midnight(st: &Sntp, now: i32) -> i32 {
    let off = i32::from(st.offset.get());
    now.wrapping_add(86_400)
        .wrapping_sub(off)
        .wrapping_sub(now.wrapping_sub(off) % 86_400)
}

/// Applies a pending leap second once the first midnight (UTC) of a month has passed.
pub(super) fn update_offset(rt: &Runtime) {
    let st = sntp(rt);
    if st.pending_li.get() == 0 || !st.using_offset.get() {
        return;
    }
    let (sec, _) = rtctime::clock(rt).0.borrow_mut().get(uptime_us(rt));
    let now = sec as i32;
    let off = i32::from(st.offset.get());
    if st.next_midnight.get() < 100_000 {
        st.next_midnight.set(next_midnight(&st, now));
        return;
    }
    if now.wrapping_sub(off) < st.next_midnight.get() {
        return;
    }
    st.next_midnight.set(next_midnight(&st, now));
    // Day of the month from the days since 1 March of year 0 (the civil-from-days method).
    let mut day =
        i64::from(now.wrapping_sub(off)) / 86_400 + 1970 * 365 + 1970 / 4 - 19 + 4 - 31 - 28;
    let century = (4 * day + 3) / 146_097;
    day -= century * 146_097 / 4;
    let year = (4 * day + 3) / 1461;
    day -= year * 1461 / 4;
    let month = (5 * day + 2) / 153;
    day -= (153 * month + 2) / 5;
    if day == 0 {
        let o = st.offset.get();
        st.offset.set(if st.pending_li.get() == 1 {
            o.wrapping_add(1)
        } else {
            o.wrapping_sub(1)
        });
    }
    st.pending_li.set(0);
}
