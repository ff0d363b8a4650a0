//! `time` (`--target esp32`): the ESP32 firmware's system clock, its calendar conversions, the
//! time zone `getlocal` applies, and the SNTP client that keeps the clock set.
//!
//! The ESP32 has no `rtctime`, `sntp` or `cron`; this module stands for the first two (dev-esp32
//! has no `cron.c`, so no other module reads this clock). The system clock is `gettimeofday`: it
//! counts from 0 at power-on along the device's uptime (virtual under
//! `--virtual-time`) until `time.set` or an NTP answer steps it. Calendars go through `tz.rs`
//! (newlib's `gmtime`/`localtime_r`/`mktime`/`tzset`), NTP through `ntp.rs` (lwIP's client).
//! The clock survives resets (not power-on), as the ESP32's RTC timer keeps it.
//! Results have the firmware's types: `lua_pushinteger` everywhere but `cal2epoch`, which pushes
//! a number (a float on a Lua 5.3 build).

use std::cell::Cell;
use std::rc::{Rc, Weak};

use mlua::{Lua, Table, Value};

use crate::lauxlib::{
    Args, FwResult, arg_check, bind, binding_name, fw_err, to_integer, to_number,
};
use crate::modules::module_table;
use crate::modules::rtctime::uptime_us;
use crate::retained::Retained;
use crate::runtime::Runtime;

mod ntp;
pub(crate) mod tz;

use tz::{Tm, Zone, days_from_civil, gmtime};

const US: i64 = 1_000_000;

/// The system clock and the zone `tzset` left.
struct SysTime {
    /// Unix time minus uptime, in µs: 0 at power-on, so the clock reads seconds since then.
    offset_us: Cell<i64>,
    zone: Cell<Zone>,
    /// Where the clock is left when the boot ends, and the boot whose clock it reads then.
    retained: Option<Retained>,
    rt: Weak<Runtime>,
}

impl Drop for SysTime {
    /// The boot is over (its state is dropped): the time it ended at is kept for the next boot.
    fn drop(&mut self) {
        if let (Some(ret), Some(rt)) = (&self.retained, self.rt.upgrade()) {
            let end = rt.now().as_micros() as i64 + self.offset_us.get();
            ret.borrow_mut().system_time_us = Some(end);
        }
    }
}

fn sys(rt: &Runtime) -> Rc<SysTime> {
    // Made by `install`; this fallback is never used while the module is installed.
    rt.state(|_| SysTime {
        offset_us: Cell::new(0),
        zone: Cell::new(Zone::UTC),
        retained: None,
        rt: Weak::new(),
    })
}

/// `gettimeofday`, in µs.
fn now_us(rt: &Runtime) -> i64 {
    uptime_us(rt) as i64 + sys(rt).offset_us.get()
}

/// `settimeofday`: the clock reads `sec` s and `usec` µs now (excess µs carry into seconds).
pub(super) fn set_time(rt: &Runtime, sec: u32, usec: u32) {
    let at = i64::from(sec) * US + i64::from(usec);
    sys(rt).offset_us.set(at - uptime_us(rt) as i64);
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let retained = Retained::of(rt);
    let left = retained.borrow().system_time_us;
    rt.state(|_| SysTime {
        offset_us: Cell::new(left.map_or(0, |t| t - uptime_us(rt) as i64)),
        zone: Cell::new(Zone::UTC),
        retained: Some(retained),
        rt: Rc::downgrade(rt),
    });
    let r = rt.clone();
    let set = bind(lua, move |_, a| -> FwResult<()> {
        // `uint32_t sec = luaL_checknumber(L, 1)`: the C conversion, taken as wrapping.
        let sec = a.check_number(1)? as i64 as u32;
        let usec = match to_number(a.arg(2)) {
            Some(u) => u as i64 as u32,
            None => 0,
        };
        set_time(&r, sec, usec);
        Ok(())
    })?;
    let r = rt.clone();
    let get = bind(lua, move |_, _| {
        let now = now_us(&r);
        Ok((now.div_euclid(US), now.rem_euclid(US)))
    })?;
    let r = rt.clone();
    let getlocal = bind(lua, move |lua, _| {
        let now = now_us(&r).div_euclid(US);
        tm_table(lua, &sys(&r).zone.get().localtime(now))
    })?;
    let r = rt.clone();
    let settimezone = bind(lua, move |lua, a| -> FwResult<()> {
        let tz = a.check_str(lua, 1)?;
        sys(&r).zone.set(Zone::parse(&tz));
        Ok(())
    })?;
    let r = rt.clone();
    let initntp = bind(lua, move |lua, a| -> FwResult<()> {
        let server = if a.is_none_or_nil(1) {
            "pool.ntp.org".to_string()
        } else {
            a.check_str(lua, 1)?
        };
        ntp::init(&r, server);
        Ok(())
    })?;
    let r = rt.clone();
    let ntpenabled = bind(lua, move |_, _| Ok(ntp::enabled(&r)))?;
    let r = rt.clone();
    let ntpstop = bind(lua, move |_, _| {
        ntp::stop(&r);
        Ok(())
    })?;
    let epoch2cal = bind(lua, |lua, a| {
        // `time_t now = luaL_checkint(L, 1)`: an `int` first.
        let now = a.check_integer(1)? as i32;
        arg_check(now >= 0, 1, "wrong arg range")?;
        tm_table(lua, &gmtime(i64::from(now)))
    })?;
    let r = rt.clone();
    let cal2epoch = bind(lua, move |lua, a| cal2epoch(lua, &r, &a))?;
    let fns = vec![
        ("set", set),
        ("get", get),
        ("getlocal", getlocal),
        ("settimezone", settimezone),
        ("initntp", initntp),
        ("ntpenabled", ntpenabled),
        ("ntpstop", ntpstop),
        ("epoch2cal", epoch2cal),
        ("cal2epoch", cal2epoch),
    ];
    lua.globals().set("time", module_table(lua, fns)?)
}

/// The firmware's table of a `struct tm`, fields in its order.
fn tm_table(lua: &Lua, t: &Tm) -> FwResult<Table> {
    let tbl = lua.create_table()?;
    for (k, v) in [
        ("yday", t.yday),
        ("wday", t.wday),
        ("year", t.year),
        ("mon", t.mon),
        ("day", t.day),
        ("hour", t.hour),
        ("min", t.min),
        ("sec", t.sec),
        ("dst", t.dst),
    ] {
        tbl.set(k, v)?;
    }
    Ok(tbl)
}

/// `luaL_optinteger(L, -1, def)` on a field just fetched: its errors name argument #-1.
fn opt_field(lua: &Lua, t: &Table, key: &str, def: i64) -> FwResult<i64> {
    let v: Value = t.get(key)?;
    if v.is_nil() {
        return Ok(def);
    }
    let bad = |msg: &str| -> FwResult<i64> {
        fw_err(format!(
            "bad argument #-1 to '{}' ({msg})",
            binding_name(lua)
        ))
    };
    match to_number(&v) {
        Some(x) => match to_integer(x) {
            Some(i) => Ok(i),
            None => bad("number has no integer representation"),
        },
        None => bad(&format!(
            "number expected, got {}",
            crate::lauxlib::typename(&v)
        )),
    }
}

/// `time.cal2epoch(calendar)`: `mktime` in the zone set, fields defaulting to 1900-01-00 00:00:00.
fn cal2epoch(lua: &Lua, rt: &Runtime, a: &Args) -> FwResult<f64> {
    let Value::Table(t) = a.get(1) else {
        let got = if a.is_empty() {
            "no value"
        } else {
            crate::lauxlib::typename(a.arg(1))
        };
        return crate::lauxlib::arg_err(1, format!("table expected, got {got}"));
    };
    // Each field goes through a C `int`, as `struct tm` holds it.
    let year = (opt_field(lua, &t, "year", 1900)? - 1900) as i32;
    let mon = (opt_field(lua, &t, "mon", 1)? - 1) as i32;
    let day = opt_field(lua, &t, "day", 0)? as i32;
    let hour = opt_field(lua, &t, "hour", 0)? as i32;
    let min = opt_field(lua, &t, "min", 0)? as i32;
    let sec = opt_field(lua, &t, "sec", 0)? as i32;
    // Months out of range carry into years, the rest into days, as `mktime` normalises.
    let y = 1900 + i64::from(year) + i64::from(mon).div_euclid(12);
    let m = i64::from(mon).rem_euclid(12) + 1;
    let local = (days_from_civil(y, m, 1) + i64::from(day) - 1) * 86_400
        + i64::from(hour) * 3_600
        + i64::from(min) * 60
        + i64::from(sec);
    let norm_year = gmtime(local).year;
    if !(-10_000..=10_000).contains(&(norm_year - 1900)) {
        return Ok(-1.0);
    }
    Ok(sys(rt).zone.get().mktime(local, norm_year) as f64)
}
