//! `rtctime`: the RTC-backed wall clock, its calendar conversion, and deep sleep that keeps time.
//!
//! The clock counts on the device's own uptime (virtual under `--virtual-time`), so it moves with
//! `tmr.now()`. [`RtcClock`] is the firmware's time keeping reduced to what a script can observe:
//! no time until `set` (reads give 0), a rate offset in parts of 2^32, a set that would move the
//! clock backwards being slewed out instead (reads never go backwards), and a deep sleep through
//! `rtctime.dsleep` that leaves the time for the next boot (see `retained.rs`); any other reset
//! loses it. `sntp` and `cron` read and set the clock through [`clock`].

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use mlua::{Lua, Table};

use crate::config::Firmware;
use crate::lauxlib::{Args, FwResult, arg_check, bind, fw_err};
use crate::modules::module_table;
use crate::modules::time32::tz::gmtime;
use crate::retained::{Retained, SleepingClock};
use crate::runtime::{ResetCause, Runtime};

const US: u64 = 1_000_000;

/// The RTC's time keeping, in microseconds of Unix time against microseconds of uptime.
#[derive(Debug, Clone, Default)]
pub struct RtcClock {
    /// Unix time (µs) at an uptime (µs); `None` until the clock is first given time.
    base: Option<(u64, u64)>,
    /// Uptime (µs) since which the clock has had time in this boot.
    since: Option<u64>,
    /// What a backwards set still owes: reads run this far ahead and catch up 1/16 as fast.
    todoffset: u32,
    /// The microseconds part of the last time read, for the slew.
    lasttodus: u32,
    usatlastrate: u64,
    rateadjusted: u64,
    rate: i32,
}

impl RtcClock {
    /// The clock a boot starts with: none, or the one a deep sleep left.
    pub fn boot(left: Option<SleepingClock>) -> RtcClock {
        let mut c = RtcClock::default();
        if let Some(s) = left {
            c.base = Some((0, s.wake_us));
            c.since = Some(0);
            c.usatlastrate = s.wake_us;
            c.rateadjusted = s.wake_us;
            c.rate = s.rate;
        }
        c
    }

    pub fn have_time(&self) -> bool {
        self.base.is_some()
    }

    /// Uptime (µs) since which the clock has had time, if it has.
    pub fn time_since(&self) -> Option<u64> {
        self.since
    }

    pub fn rate(&self) -> i32 {
        self.rate
    }

    fn raw(&self, up: u64) -> u64 {
        match self.base {
            Some((at, unix)) => unix.wrapping_add(up.wrapping_sub(at)),
            None => 0,
        }
    }

    fn adjusted(&self, up: u64) -> u64 {
        match self.raw(up) {
            0 => 0,
            raw => raw + u64::from(self.todoffset),
        }
    }

    /// The rate offset applied since the last rebase; the firmware rebases every 1e9 µs.
    fn by_rate(&mut self, us: u64, force: bool) -> u64 {
        let off = us.wrapping_sub(self.usatlastrate) as i64 as i128;
        let scaled = (off * ((1i128 << 32) + i128::from(self.rate))) >> 32;
        let adj = (self.rateadjusted as i128 + scaled) as u64;
        if off > 1_000_000_000 || force {
            self.usatlastrate = us;
            self.rateadjusted = adj;
        }
        adj
    }

    /// `rtctime.get()`'s seconds and microseconds at uptime `up` (µs): 0, 0 without time.
    pub fn get(&mut self, up: u64) -> (u32, u32) {
        if self.base.is_none() {
            return (0, 0);
        }
        let now = self.adjusted(up);
        let mut now = self.by_rate(now, false);
        let (mut sec, mut usec) = ((now / US) as u32, (now % US) as u32);
        if self.todoffset != 0 {
            let last = self.lasttodus;
            let passed = if usec < last {
                usec + 1_000_000 - last
            } else {
                usec - last
            };
            let adjust = (passed >> 4).min(self.todoffset);
            if adjust > 0 {
                self.todoffset -= adjust;
                now -= u64::from(adjust);
                (sec, usec) = ((now / US) as u32, (now % US) as u32);
            }
        }
        self.lasttodus = usec;
        (sec, usec)
    }

    /// `rtctime_settimeofday`: the time is `sec`.`usec` at uptime `up`; the rate is kept.
    pub fn set(&mut self, up: u64, sec: u32, usec: u32) {
        let rate = self.rate;
        let esp = self.adjusted(up);
        let esp = self.by_rate(esp, true);
        let mut ntp = u64::from(sec) * US + u64::from(usec);
        let diff = esp as i64 - ntp as i64;
        if self.base.is_none() {
            self.since = Some(up);
        }
        self.base = Some((up, ntp));
        self.usatlastrate = ntp;
        self.rateadjusted = ntp;
        self.rate = 0;
        // Going backwards is not allowed: reads stay ahead and slew down to the new time.
        self.todoffset = if diff > 0 && sec != 0 {
            let d = diff.min(u32::MAX as i64) as u32;
            ntp += u64::from(d);
            d
        } else {
            0
        };
        self.lasttodus = (ntp % US) as u32;
        self.set_rate(up, rate);
    }

    pub fn set_rate(&mut self, up: u64, rate: i32) {
        let now = self.adjusted(up);
        self.by_rate(now, true);
        self.rate = rate;
    }

    /// `rtctime.adjust_delta(us)`: an uptime interval in wall-clock microseconds.
    pub fn adjust_delta(&self, us: u32) -> i64 {
        let d = us as i32 as i64 as u64;
        let f = (1u64 << 32).wrapping_add(self.rate as i64 as u64);
        (d.wrapping_mul(f) >> 32) as i32 as i64
    }

    /// What the clock leaves for the boot after a deep sleep of `us` starting at uptime `up`,
    /// and how long the sleep really lasts (the slew still owed is slept off).
    pub fn sleep(&mut self, up: u64, us: u32) -> (Option<SleepingClock>, u64) {
        let us = u64::from(us.wrapping_add(self.todoffset));
        let left = self.base.map(|_| SleepingClock {
            wake_us: self.raw(up) + us,
            rate: self.rate,
        });
        (left, us)
    }

    /// The unix time (µs) at uptime `up` as the slew-free reads see it (for `dsleep_aligned`).
    pub fn now_us(&self, up: u64) -> u64 {
        self.adjusted(up)
    }
}

/// One boot's RTC clock, shared by `rtctime`, `sntp` and `cron`.
pub struct Clock(pub RefCell<RtcClock>);

/// The boot's clock (made, from what a deep sleep left, on first use).
pub fn clock(rt: &Runtime) -> Rc<Clock> {
    rt.state(|rt| {
        let left = Retained::of(rt).borrow_mut().clock.take();
        Clock(RefCell::new(RtcClock::boot(left)))
    })
}

/// The device uptime in microseconds, as a script reads it.
pub fn uptime_us(rt: &Runtime) -> u64 {
    rt.read_clock().as_micros() as u64
}

/// The calendar fields of a Unix time, as `rtctime.epoch2cal` gives them (all 1-based but
/// hour/min/sec; `wday` 1 is Sunday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cal {
    pub year: i32,
    pub mon: i32,
    pub day: i32,
    pub hour: i32,
    pub min: i32,
    pub sec: i32,
    pub yday: i32,
    pub wday: i32,
}

/// `rtctime_gmtime` for a stamp from 0 to `u32::MAX` (year 2106; the firmware's own stops at
/// 2038): the C library's calendar, which `time` (ESP32) uses too.
pub fn epoch2cal(stamp: i64) -> Cal {
    let t = gmtime(stamp.clamp(0, i64::from(u32::MAX)));
    // Every field fits: the years end at 2106.
    let field = |v: i64| v as i32;
    Cal {
        year: field(t.year),
        mon: field(t.mon),
        day: field(t.day),
        hour: field(t.hour),
        min: field(t.min),
        sec: field(t.sec),
        yday: field(t.yday),
        wday: field(t.wday),
    }
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let old = rt.cfg.firmware == Firmware::V1_5;
    let r = rt.clone();
    let set = bind(lua, move |_, a| set(&r, &a, old))?;
    let r = rt.clone();
    let get = bind(lua, move |_, _| {
        let up = uptime_us(&r);
        let c = clock(&r);
        let mut c = c.0.borrow_mut();
        let (sec, usec) = c.get(up);
        let mut vals = vec![i64::from(sec), i64::from(usec)];
        if !old {
            vals.push(i64::from(c.rate()));
        }
        Ok(mlua::Variadic::from_iter(vals))
    })?;
    let r = rt.clone();
    let dsleep = bind(lua, move |_, a| -> FwResult<()> {
        let us = a.check_integer(1)? as u32;
        sleep_option(&a, 2)?;
        deep_sleep(&r, us)
    })?;
    let r = rt.clone();
    let dsleep_aligned = bind(lua, move |_, a| -> FwResult<()> {
        let c = clock(&r);
        if !c.0.borrow().have_time() {
            return fw_err("time not available, unable to align");
        }
        let align = u64::from(a.check_integer(1)? as u32);
        let min = u64::from(a.check_integer(2)? as u32);
        sleep_option(&a, 3)?;
        let now = c.0.borrow().now_us(uptime_us(&r));
        let mut then = now + min;
        if align != 0 {
            then += align - 1;
            then -= then % align;
        }
        deep_sleep(&r, (then - now) as u32)
    })?;
    let epoch = bind(lua, |lua, a| {
        let stamp = a.check_integer(1)? as i32;
        arg_check(stamp >= 0, 1, "wrong arg range")?;
        cal_table(lua, &epoch2cal(i64::from(stamp)))
    })?;
    let mut fns = vec![
        ("set", set),
        ("get", get),
        ("dsleep", dsleep),
        ("dsleep_aligned", dsleep_aligned),
        ("epoch2cal", epoch),
    ];
    if !old {
        let r = rt.clone();
        let adjust = bind(lua, move |_, a| {
            let us = a.check_integer(1)? as u32;
            Ok(clock(&r).0.borrow().adjust_delta(us))
        })?;
        fns.push(("adjust_delta", adjust));
    }
    // The clock is made now, so a deep sleep's time is picked up at boot, not at first use.
    clock(rt);
    lua.globals().set("rtctime", module_table(lua, fns)?)
}

/// `rtctime.set([sec[, usec[, rate]]])`; 1.5 needs `sec` and has no rate.
fn set(rt: &Runtime, a: &Args, old: bool) -> FwResult<()> {
    let up = rt.now().as_micros() as u64;
    let c = clock(rt);
    if old || a.is_number(1) {
        let sec = a.check_integer(1)? as u32;
        let usec = if a.is_number(2) {
            a.check_integer(2)? as u32
        } else {
            0
        };
        c.0.borrow_mut().set(up, sec, usec);
    }
    if !old && a.is_number(3) {
        let rate = a.check_integer(3)? as i32;
        c.0.borrow_mut().set_rate(up, rate);
    }
    Ok(())
}

/// The firmware's sleep option check: 0..4 or `unknown sleep option`.
fn sleep_option(a: &Args, n: usize) -> FwResult<()> {
    if a.is_number(n) && a.check_integer(n)? as u32 > 4 {
        return fw_err("unknown sleep option");
    }
    Ok(())
}

/// What unwinds out of `rtctime.dsleep`, which never returns: like the watchdog's bite, Lua's
/// `pcall` cannot catch it, and the loop (or the main chunk's runner) takes it as the end of the
/// callback; the reset it requested then happens.
pub(crate) struct DeepSleepNow;

/// Goes to deep sleep for `us`: the clock and RTC memory are left for the boot after it.
fn deep_sleep(rt: &Runtime, us: u32) -> ! {
    let up = rt.now().as_micros() as u64;
    let (left, slept) = clock(rt).0.borrow_mut().sleep(up, us);
    {
        let retained = Retained::of(rt);
        let mut st = retained.borrow_mut();
        st.clock = left;
        st.sleep = Some(Duration::from_micros(slept));
    }
    rt.request_reset(ResetCause::DeepSleep);
    std::panic::resume_unwind(Box::new(DeepSleepNow))
}

fn cal_table(lua: &Lua, c: &Cal) -> FwResult<Table> {
    let t = lua.create_table()?;
    for (k, v) in [
        ("yday", c.yday),
        ("wday", c.wday),
        ("year", c.year),
        ("mon", c.mon),
        ("day", c.day),
        ("hour", c.hour),
        ("min", c.min),
        ("sec", c.sec),
    ] {
        t.set(k, v)?;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal(stamp: i64) -> (i32, i32, i32, i32, i32, i32, i32, i32) {
        let c = epoch2cal(stamp);
        (c.year, c.mon, c.day, c.hour, c.min, c.sec, c.yday, c.wday)
    }

    #[test]
    fn epoch2cal_matches_the_calendar() {
        assert_eq!(cal(0), (1970, 1, 1, 0, 0, 0, 1, 5)); // a Thursday
        assert_eq!(cal(1_436_430_589), (2015, 7, 9, 8, 29, 49, 190, 5));
        assert_eq!(cal(951_782_400), (2000, 2, 29, 0, 0, 0, 60, 3)); // leap century
        assert_eq!(cal(951_868_800), (2000, 3, 1, 0, 0, 0, 61, 4));
        assert_eq!(cal(1_709_164_799), (2024, 2, 28, 23, 59, 59, 59, 4));
        assert_eq!(cal(1_709_251_199), (2024, 2, 29, 23, 59, 59, 60, 5));
        assert_eq!(cal(1_735_689_599), (2024, 12, 31, 23, 59, 59, 366, 3));
        assert_eq!(cal(i32::MAX.into()), (2038, 1, 19, 3, 14, 7, 19, 3));
        assert_eq!(cal(u32::MAX.into()), (2106, 2, 7, 6, 28, 15, 38, 1));
    }

    #[test]
    fn epoch2cal_agrees_with_a_day_count_over_decades() {
        // Every midnight from 1970 to 2037 lands on day 1 of the next date, hour 0.
        let mut prev = cal(0);
        for d in 1..(68 * 365) {
            let c = cal(d * 86_400);
            assert_eq!((c.3, c.4, c.5), (0, 0, 0));
            assert_eq!(c.7, (prev.7 % 7) + 1, "weekday after {prev:?}");
            if c.2 != 1 {
                assert_eq!((c.0, c.1, c.2), (prev.0, prev.1, prev.2 + 1));
            }
            prev = c;
        }
    }

    #[test]
    fn the_clock_reads_zero_until_set_then_follows_uptime() {
        let mut c = RtcClock::default();
        assert_eq!(c.get(5_000_000), (0, 0));
        c.set(5_000_000, 1_000, 250);
        assert_eq!(c.get(5_000_000), (1_000, 250));
        assert_eq!(c.get(7_500_000), (1_002, 500_250));
    }

    #[test]
    fn a_backwards_set_is_slewed_and_reads_never_go_back() {
        let mut c = RtcClock::default();
        c.set(0, 2_000, 0);
        c.set(0, 1_999, 0);
        // Still reads the old time, then loses 1/16 of each microsecond that passes.
        assert_eq!(c.get(0), (2_000, 0));
        assert_eq!(c.get(160_000), (2_000, 150_000));
        let mut last = (0, 0);
        for step in 1..200 {
            let now = c.get(160_000 + step * 100_000);
            assert!(now >= last);
            last = now;
        }
    }

    #[test]
    fn the_rate_scales_elapsed_time_and_survives_a_set() {
        let mut c = RtcClock::default();
        c.set_rate(0, 4295 * 1000); // about 1000 ppm fast
        c.set(0, 100, 0);
        assert_eq!(c.rate(), 4_295_000);
        assert_eq!(c.get(1_000_000), (101, 1_000));
        assert_eq!(c.adjust_delta(1_000_000), 1_001_000);
    }

    #[test]
    fn adjust_delta_uses_the_rate() {
        let mut c = RtcClock::default();
        c.set_rate(0, 1 << 22); // 2^22 / 2^32: about 977 ppm
        assert_eq!(c.adjust_delta(1_000_000), 1_000_976);
    }

    #[test]
    fn deep_sleep_leaves_the_time_of_waking() {
        let mut c = RtcClock::default();
        c.set(0, 1_000, 0);
        let (left, slept) = c.sleep(2_000_000, 5_000_000);
        assert_eq!(slept, 5_000_000);
        let left = left.expect("time kept");
        assert_eq!(left.wake_us, 1_007_000_000);
        let mut woke = RtcClock::boot(Some(left));
        assert_eq!(woke.get(0), (1_007, 0));
        assert_eq!(RtcClock::default().sleep(0, 7).0, None);
    }
}
