//! `cron`: entries that run a callback in the minutes their mask names, on `rtctime`'s clock (UTC).
//!
//! The mask is the firmware's five fields (minute, hour, day of month, month, day of week) with
//! only `*`, `*/step` and comma lists of numbers: no ranges, no names. The firmware polls every
//! second until rtctime has time, then wakes at each minute boundary of the RTC time and runs the
//! entries matching that minute. Here the same timer runs only while entries are scheduled (an idle
//! cron must not keep a run alive), picking up the phase the firmware's timer would have had, so
//! under `--virtual-time` a day of entries takes milliseconds.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use host_backend::timers::TimerKey;
use mlua::{AnyUserData, Function, Lua};

use crate::config::Firmware;
use crate::handle_type;
use crate::lauxlib::{Args, FwResult, bind, fw_err};
use crate::modules::rtctime::{self, epoch2cal};
use crate::modules::{module_table, register_methods};
use crate::runtime::Runtime;

const TYPE: &str = "cron.entry";

/// A parsed mask: bit `n` of a field is its `n`th value from the field's minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Desc {
    pub min: u64,
    pub hour: u32,
    pub dom: u32,
    pub mon: u16,
    pub dow: u8,
}

/// The byte at `i` as C sees the string: 0 past the end.
fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

/// `strtol(s + pos, &end, 10)` with the chip's 32-bit `long`: the value and where it stopped
/// (`pos` itself when there are no digits).
fn strtol(s: &[u8], pos: usize) -> (i32, usize) {
    let mut i = pos;
    while matches!(at(s, i), b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
        i += 1;
    }
    let neg = at(s, i) == b'-';
    if matches!(at(s, i), b'-' | b'+') {
        i += 1;
    }
    let start = i;
    let mut v: i64 = 0;
    while at(s, i).is_ascii_digit() {
        v = (v * 10 + i64::from(at(s, i) - b'0')).min(1 << 32);
        i += 1;
    }
    if i == start {
        return (0, pos);
    }
    let v = if neg { -v } else { v };
    (v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32, i)
}

/// One field from `pos`: its bits and where it ended.
fn parse_part(s: &[u8], mut pos: usize, min: u32, max: u32) -> Result<(u64, usize), String> {
    while matches!(at(s, pos), b' ' | b'\t') {
        pos += 1;
    }
    let mut bits = 0u64;
    if at(s, pos) == b'*' {
        let mut each = 1u32;
        let mut end = pos + 1;
        if at(s, pos + 1) == b'/' {
            let (v, e) = strtol(s, pos + 2);
            (each, end) = (v as u32, e);
            if each == 0 || each >= max - min {
                return Err(format!("invalid spec (each {})", each as i32));
            }
        }
        for i in 0..=(max - min) {
            if i % each == 0 {
                bits |= 1 << i;
            }
        }
        return Ok((bits, end));
    }
    loop {
        let (v, end) = strtol(s, pos);
        let val = v as u32;
        if val < min || val > max {
            return Err(format!(
                "invalid spec (val {} out of range {min}..{max})",
                val as i32
            ));
        }
        bits |= 1 << (val - min);
        if at(s, end) != b',' {
            return Ok((bits, end));
        }
        pos = end + 1;
    }
}

/// Parses a mask as the firmware does; the error is its message.
pub fn parse(spec: &[u8]) -> Result<Desc, String> {
    // C sees the string up to its first NUL.
    let s = spec.split(|b| *b == 0).next().unwrap_or_default();
    let sep = |pos: usize| -> Result<usize, String> {
        if matches!(at(s, pos), b' ' | b'\t') {
            Ok(pos + 1)
        } else {
            Err(format!("invalid spec (separator @{pos})"))
        }
    };
    let (min, pos) = parse_part(s, 0, 0, 59)?;
    let (hour, pos) = parse_part(s, sep(pos)?, 0, 23)?;
    let (dom, pos) = parse_part(s, sep(pos)?, 1, 31)?;
    let (mon, pos) = parse_part(s, sep(pos)?, 1, 12)?;
    let (dow, mut pos) = parse_part(s, sep(pos)?, 0, 6)?;
    while matches!(at(s, pos), b' ' | b'\t') {
        pos += 1;
    }
    if pos < s.len() {
        return Err(format!("invalid spec (trailing @{pos})"));
    }
    Ok(Desc {
        min,
        hour: hour as u32,
        dom: dom as u32,
        mon: mon as u16,
        dow: dow as u8,
    })
}

impl Desc {
    /// True when the entry runs in this minute (month 1-12, day 1-31, weekday 0-6 from Sunday).
    pub fn matches(&self, mon: i32, day: i32, wday: i32, hour: i32, min: i32) -> bool {
        self.mon & (1 << (mon - 1)) != 0
            && self.dom & (1 << (day - 1)) != 0
            && self.dow & (1 << wday) != 0
            && self.hour & (1 << hour) != 0
            && self.min & (1 << min) != 0
    }
}

struct EntryState {
    desc: Desc,
    cb: Function,
}

#[derive(Clone)]
pub struct Entry(Rc<RefCell<EntryState>>);
handle_type!(Entry, TYPE);

/// The boot's scheduled entries and the minute timer.
#[derive(Default)]
struct Cron {
    list: RefCell<Vec<(Entry, AnyUserData)>>,
    timer: RefCell<Option<TimerKey>>,
}

fn cron(rt: &Runtime) -> Rc<Cron> {
    rt.state(|_| Cron::default())
}

fn check_mask(lua: &Lua, a: &Args, n: usize) -> FwResult<Desc> {
    let mask = a.check_bytes(lua, n)?;
    parse(&mask.as_bytes()).or_else(fw_err)
}

fn check_entry(a: &Args) -> FwResult<(AnyUserData, Entry)> {
    a.check_udata::<Entry>(1, TYPE)
}

fn position(list: &[(Entry, AnyUserData)], e: &Entry) -> Option<usize> {
    list.iter().position(|(x, _)| Rc::ptr_eq(&x.0, &e.0))
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let r = rt.clone();
    let schedule_entry = bind(lua, move |lua, a| {
        let (ud, e) = check_entry(&a)?;
        e.0.borrow_mut().desc = check_mask(lua, &a, 2)?;
        let c = cron(&r);
        if position(&c.list.borrow(), &e).is_none() {
            c.list.borrow_mut().push((e, ud));
        }
        tick_soon(&r);
        Ok(())
    })?;
    let handler = bind(lua, |_, a| {
        let (_, e) = check_entry(&a)?;
        e.0.borrow_mut().cb = a.check_function(2)?;
        Ok(())
    })?;
    let r = rt.clone();
    let unschedule = bind(lua, move |_, a| {
        let (_, e) = check_entry(&a)?;
        let c = cron(&r);
        let i = position(&c.list.borrow(), &e);
        if let Some(i) = i {
            c.list.borrow_mut().remove(i);
        }
        idle_if_empty(&r);
        Ok(())
    })?;
    register_methods(
        lua,
        TYPE,
        vec![
            ("schedule", schedule_entry),
            ("handler", handler),
            ("unschedule", unschedule),
        ],
    )?;
    let r = rt.clone();
    let schedule = bind(lua, move |lua, a| {
        a.check_bytes(lua, 1)?;
        let cb = a.check_function(2)?;
        let desc = check_mask(lua, &a, 1)?;
        let e = Entry(Rc::new(RefCell::new(EntryState { desc, cb })));
        let ud = lua.create_userdata(e.clone())?;
        cron(&r).list.borrow_mut().push((e, ud.clone()));
        tick_soon(&r);
        Ok(ud)
    })?;
    let r = rt.clone();
    let reset = bind(lua, move |_, _| {
        let old = std::mem::take(&mut *cron(&r).list.borrow_mut());
        drop(old);
        idle_if_empty(&r);
        Ok(())
    })?;
    let t = module_table(lua, vec![("schedule", schedule), ("reset", reset)])?;
    lua.globals().set("cron", t)
}

/// Arms the minute timer if it is not running, where the firmware's always-running one would
/// fire next: each whole second of uptime until the clock has time (and the first second after
/// it gets it), then each minute boundary of the RTC time.
fn tick_soon(rt: &Rc<Runtime>) {
    let c = cron(rt);
    if c.timer.borrow().is_some() {
        return;
    }
    let now = rt.now();
    let second = Duration::from_secs(1);
    let next_second = Duration::from_secs(now.as_secs() + 1);
    let since = rtctime::clock(rt).0.borrow().time_since();
    let at = match since {
        None => next_second,
        Some(u) => {
            let first = Duration::from_secs(u.div_ceil(1_000_000)).max(second);
            if now < first {
                first
            } else {
                let up = now.as_micros() as u64;
                let (sec, usec) = rtctime::clock(rt).0.borrow_mut().get(up);
                now + Duration::from_millis(to_next_minute(sec, usec))
            }
        }
    };
    arm(rt, at);
}

/// With no entries left the timer stops, so nothing keeps the run alive; `tick_soon` picks the
/// phase up again.
fn idle_if_empty(rt: &Runtime) {
    let c = cron(rt);
    if c.list.borrow().is_empty()
        && let Some(k) = c.timer.borrow_mut().take()
    {
        rt.cancel_timer(k);
    }
}

/// Milliseconds from an RTC time to its next minute boundary, as the firmware counts them.
fn to_next_minute(sec: u32, usec: u32) -> u64 {
    60_000 - u64::from(sec % 60) * 1000 - u64::from(usec / 1000)
}

fn arm(rt: &Rc<Runtime>, at: Duration) {
    let r = rt.clone();
    let key = rt.arm_timer_at(at, Box::new(move |lua| tick(lua, &r)));
    *cron(rt).timer.borrow_mut() = Some(key);
}

/// The timer: runs the entries of the RTC's current minute and re-arms for the next.
fn tick(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let c = cron(rt);
    c.timer.borrow_mut().take();
    if c.list.borrow().is_empty() {
        return Ok(());
    }
    let now = rt.now();
    let (sec, usec) = rtctime::clock(rt)
        .0
        .borrow_mut()
        .get(now.as_micros() as u64);
    if sec == 0 {
        arm(rt, now + Duration::from_secs(1));
        return Ok(());
    }
    let mut t = u64::from(sec);
    let mut diff = to_next_minute(sec, usec);
    if sec % 60 == 59 {
        t += 1;
        diff += 60_000;
    }
    arm(rt, now + Duration::from_millis(diff));
    let cal = epoch2cal(t as i64);
    // By index, as the firmware walks its list: a callback may change it under the walk.
    let mut i = 0;
    loop {
        let item = c.list.borrow().get(i).cloned();
        let Some((e, ud)) = item else { break };
        i += 1;
        let (desc, cb) = {
            let st = e.0.borrow();
            (st.desc, st.cb.clone())
        };
        if !desc.matches(cal.mon, cal.day, cal.wday - 1, cal.hour, cal.min) {
            continue;
        }
        if rt.cfg.firmware >= Firmware::V3_0 {
            rt.call_protected(lua, &cb, ud)?;
        } else {
            rt.call_net(lua, &cb, ud)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(spec: &str) -> Desc {
        parse(spec.as_bytes()).unwrap_or_else(|e| panic!("{spec}: {e}"))
    }

    fn err(spec: &str) -> String {
        parse(spec.as_bytes()).expect_err(spec)
    }

    #[test]
    fn stars_steps_and_lists() {
        let all = bits("* * * * *");
        assert_eq!(all.min, (1 << 60) - 1);
        assert_eq!(all.hour, (1 << 24) - 1);
        assert_eq!(all.dom, (1 << 31) - 1);
        assert_eq!(all.mon, (1 << 12) - 1);
        assert_eq!(all.dow, (1 << 7) - 1);
        let d = bits("*/15 */6 1,15 */2 0,6");
        assert_eq!(d.min, 1 | 1 << 15 | 1 << 30 | 1 << 45);
        assert_eq!(d.hour, 1 | 1 << 6 | 1 << 12 | 1 << 18);
        assert_eq!(d.dom, 1 | 1 << 14);
        // Steps count from the field's minimum: months 1, 3, 5, ...
        assert_eq!(d.mon, 0b0101_0101_0101);
        assert_eq!(d.dow, 1 | 1 << 6);
        assert_eq!(bits("0 12 * * *").hour, 1 << 12);
    }

    #[test]
    fn whitespace_is_spaces_or_tabs_anywhere_between_fields() {
        assert_eq!(bits("  5\t\t12  *  *  *  "), bits("5 12 * * *"));
        assert_eq!(bits("1, 2 * * * *").min, 0b110);
        assert_eq!(bits("+7 * * * *").min, 1 << 7);
    }

    #[test]
    fn the_firmware_messages() {
        assert_eq!(err(""), "invalid spec (separator @0)");
        assert_eq!(err("* * * *"), "invalid spec (separator @7)");
        assert_eq!(err("1-5 * * * *"), "invalid spec (separator @1)");
        assert_eq!(
            err("60 * * * *"),
            "invalid spec (val 60 out of range 0..59)"
        );
        assert_eq!(err("* * 0 * *"), "invalid spec (val 0 out of range 1..31)");
        assert_eq!(
            err("-1 * * * *"),
            "invalid spec (val -1 out of range 0..59)"
        );
        assert_eq!(err("* * * * 7"), "invalid spec (val 7 out of range 0..6)");
        assert_eq!(err("*/0 * * * *"), "invalid spec (each 0)");
        assert_eq!(err("*/59 * * * *"), "invalid spec (each 59)");
        assert_eq!(err("* * * * */6"), "invalid spec (each 6)");
        assert_eq!(err("* * * * * *"), "invalid spec (trailing @10)");
        assert_eq!(err("*5 * * * *"), "invalid spec (separator @1)");
        assert_eq!(err("mon * * * *"), "invalid spec (separator @0)");
        assert_eq!(
            err("99999999999 * * * *"),
            "invalid spec (val 2147483647 out of range 0..59)"
        );
    }

    #[test]
    fn a_minute_matches_when_every_field_does() {
        let d = bits("0 12 * * 1");
        assert!(d.matches(1, 5, 1, 12, 0));
        assert!(!d.matches(1, 5, 2, 12, 0));
        assert!(!d.matches(1, 5, 1, 12, 1));
        assert_eq!(to_next_minute(1_767_225_601, 0), 59_000);
        assert_eq!(to_next_minute(1_767_225_600, 999_999), 59_001);
    }
}
