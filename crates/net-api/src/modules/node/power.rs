//! `node`'s sleep, clock and restart family: `dsleep`, `sleep`, `dsleepMax`, `uptime`, and the
//! CPU clock, with each generation's and chip's argument rules.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use mlua::{Lua, Table, Value};

use crate::config::{Firmware, Target};
use crate::lauxlib::{Args, FwResult, arg_err, fw_err};
use crate::runtime::{ResetCause, Runtime};

/// `system_rtc_clock_cali_proc()`: the RTC clock period in µs, 12.12 fixed point (6.25 µs).
const RTC_CALI: u64 = 25_600;

/// ESP32 `esp_sleep_source_t` values (`node.wakeup`).
pub(super) const WAKEUP: [(&str, i64); 5] = [
    ("GPIO", 7),
    ("TIMER", 4),
    ("TOUCHPAD", 5),
    ("UART", 8),
    ("ULP", 6),
];

/// `node.dsleep(us[, option[, instant]])` on the ESP8266. Before 3.0 an option outside 0..4 is
/// `wrong arg range`; 3.0's checks are written so they never fire. Without a time nothing sleeps.
pub(super) fn dsleep(rt: &Runtime, a: &Args) -> FwResult<()> {
    if rt.cfg.firmware < Firmware::V3_0 && a.is_number(2) {
        let option = a.check_integer(2)? as u8;
        if option > 4 {
            return fw_err("wrong arg range");
        }
    }
    if a.is_number(1) {
        sleep_for(rt, a.check_number(1)?);
    }
    Ok(())
}

/// Goes to deep sleep for `us` µs (0: until an external reset, which here comes at once): the
/// next boot follows after that long on a real clock, and it counts toward the run's limit.
fn sleep_for(rt: &Runtime, us: f64) {
    if us >= 1.0 {
        let retained = crate::retained::Retained::of(rt);
        retained.borrow_mut().sleep = Some(Duration::from_micros(us as u64));
    }
    rt.request_reset(ResetCause::DeepSleep);
}

/// The ESP32's `node.dsleep(us | {opts})`.
pub(super) fn dsleep_esp32(rt: &Runtime, a: &Args) -> FwResult<()> {
    match a.get(1) {
        Value::Integer(_) | Value::Number(_) => {
            sleep_for(rt, a.check_number(1)?);
            Ok(())
        }
        Value::Table(_) => {
            rt.request_reset(ResetCause::DeepSleep);
            Ok(())
        }
        _ => arg_err(1, "Expected integer or table"),
    }
}

/// `node.sleep` on the ESP8266: the default builds leave light sleep out (`PMSLEEP_ENABLE`).
pub(super) fn sleep_unavailable(_: &Runtime, _: &Args) -> FwResult<()> {
    fw_err("node.sleep() is unavailable")
}

/// The ESP32's light sleep: with `us`/`secs` the device time passes and the timer wakes it;
/// otherwise the first other wake source it enables is reported at once, since nothing on the
/// host would ever raise it.
pub(super) fn sleep_esp32(rt: &Runtime, a: &Args) -> FwResult<i64> {
    let Value::Table(t) = a.get(1) else {
        return arg_err(1, format!("table expected, got {}", type_of(a, 1)));
    };
    let us: i64 = t.get::<Option<i64>>("us")?.unwrap_or(0);
    let secs: i64 = t.get::<Option<i64>>("secs")?.unwrap_or(0);
    let timed = !t.get::<Value>("us")?.is_nil() || !t.get::<Value>("secs")?.is_nil();
    if timed {
        let total = (us + secs * 1_000_000).max(0) as u64;
        rt.pass_time(Duration::from_micros(total));
        return Ok(4);
    }
    for (key, cause) in [("gpio", 7), ("touch", 5), ("ulp", 6)] {
        if t.get::<Value>(key)? == Value::Boolean(true) {
            return Ok(cause);
        }
    }
    if !t.get::<Value>("uart")?.is_nil() {
        return Ok(8);
    }
    Ok(0)
}

fn type_of(a: &Args, n: usize) -> &'static str {
    if n > a.len() {
        "no value"
    } else {
        crate::lauxlib::typename(a.arg(n))
    }
}

/// `node.dsleepMax()`: the longest deep sleep the RTC counter allows, in µs.
pub(super) fn dsleep_max() -> f64 {
    (RTC_CALI * 0x7FFF_FFFF / 0x1000) as f64
}

/// The ESP32's `node.uptime()`: microseconds since boot, and the high part that overflowed.
pub(super) fn uptime(rt: &Runtime) -> (f64, i64) {
    let us = rt.read_clock().as_micros() as u64;
    ((us & 0x1F_FFFF_FFFF_FFFF) as f64, (us >> 53) as i64)
}

/// The CPU clock: `setcpufreq` takes 160 as 160 MHz and anything else as 80, and returns what
/// the clock now is.
pub(super) struct Cpu(Cell<i64>);

impl Cpu {
    pub(super) fn new() -> Rc<Cpu> {
        Rc::new(Cpu(Cell::new(80)))
    }

    pub(super) fn set(&self, a: &Args) -> FwResult<i64> {
        let f = a.check_integer(1)?;
        self.0.set(if f == 160 { 160 } else { 80 });
        Ok(self.0.get())
    }

    pub(super) fn get(&self) -> i64 {
        self.0.get()
    }
}

/// The `node.wakeup` table of the ESP32.
pub(super) fn wakeup_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (k, v) in WAKEUP {
        t.set(k, v)?;
    }
    Ok(t)
}

/// True where the chip has the ESP8266's light sleep stub (2.2 on) rather than the ESP32's.
pub(super) fn has_dsleep_max(target: Target, fw: Firmware) -> bool {
    target != Target::Esp32 && fw >= Firmware::V2_2
}
