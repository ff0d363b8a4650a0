//! `gpio`: the ESP8266 firmware's digital pins, on the virtual board (`devboard/`).
//!
//! Pins are the NodeMCU index numbers (0 = D0 = GPIO16 .. 12), as the firmware numbers them.
//! `gpio.write` is the one binding scripts call in tight loops, so it has a fast path
//! (`write_fast`) that does the whole call in C-ABI Rust without entering mlua. `gpio.trig`
//! callbacks are queued by the board's events (`DeviceBoard::flush`) at the device time of the
//! edge, with the generation's arguments. `gpio.pulse` (2.2 on, where the firmware has
//! `gpio_pulse.c`) is in `gpio_pulse.rs`.

use std::ffi::{c_int, c_void};
use std::rc::Rc;
use std::time::Duration;

use board::{Mode, Pull};
use mlua::{Function, Lua, Table, Value, ffi};

use crate::devboard::{DeviceBoard, TrigKind, micros};
use crate::lauxlib::{Args, FwResult, arg_check, arg_err, bind, bind_fast_with, fw_err, method};
use crate::modules::module_table;
use crate::runtime::{Priority, Runtime};

/// `GPIO_PIN_NUM` on the ESP8266.
pub const PINS: u32 = 13;

const INPUT: i64 = 0;
const OUTPUT: i64 = 1;
const INT: i64 = 2;
const OPENDRAIN: i64 = 3;
const FLOAT: i64 = 0;
const PULLUP: i64 = 1;

/// `serout`'s `DELAY_TABLE_MAX_LEN`.
const DELAY_TABLE_MAX: usize = 256;

/// Arguments are C `unsigned`: a negative pin is a huge one.
fn unsigned(a: &Args, n: usize) -> FwResult<u32> {
    Ok(a.check_integer(n)? as u32)
}

/// `MOD_CHECK_ID(gpio, pin)`; the message prints the id with `%d`.
fn check_id(pin: u32) -> FwResult<u8> {
    if pin < PINS {
        Ok(pin as u8)
    } else {
        fw_err(format!("gpio {} does not exist", pin as i32))
    }
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let db = DeviceBoard::get(rt).map_err(mlua::Error::runtime)?;
    // The fast path reads the board through its closure's third upvalue; the Lua state keeps
    // a reference so the pointer outlives every call.
    let ptr = Rc::as_ptr(&db) as *mut c_void;
    lua.set_app_data(FastBoard(db.clone()));
    let d = db.clone();
    let write = bind_fast_with(lua, move |_, a| write(&d, &a), write_body, ptr)?;
    let (r, d) = (rt.clone(), db.clone());
    let mode = bind(lua, move |_, a| mode(&r, &d, &a))?;
    let d = db.clone();
    let read = bind(lua, move |_, a| {
        let pin = check_id(unsigned(&a, 1)?)?;
        Ok(i64::from(d.board.borrow().read(pin, d.now())))
    })?;
    let d = db.clone();
    let trig = bind(lua, move |lua, a| trig(lua, &d, &a))?;
    let (r, d) = (rt.clone(), db.clone());
    let serout = bind(lua, move |_, a| serout(&r, &d, &a))?;
    let t = module_table(
        lua,
        vec![
            ("mode", mode),
            ("read", read),
            ("write", write),
            ("serout", serout),
            ("trig", trig),
        ],
    )?;
    set_constants(&t)?;
    if rt.cfg.firmware >= crate::config::Firmware::V2_2 {
        t.set("pulse", super::gpio_pulse::module(lua, rt, &db)?)?;
    }
    lua.globals().set("gpio", t)
}

fn set_constants(t: &Table) -> mlua::Result<()> {
    for (k, v) in [
        ("INT", INT),
        ("OUTPUT", OUTPUT),
        ("OPENDRAIN", OPENDRAIN),
        ("INPUT", INPUT),
        ("HIGH", 1),
        ("LOW", 0),
        ("FLOAT", FLOAT),
        ("PULLUP", PULLUP),
    ] {
        t.set(k, v)?;
    }
    Ok(())
}

/// Keeps the board the fast path points at alive as long as the Lua state.
struct FastBoard(#[allow(dead_code)] Rc<DeviceBoard>);

/// `gpio.mode(pin, mode[, pullup])`.
fn mode(rt: &Rc<Runtime>, db: &DeviceBoard, a: &Args) -> FwResult<()> {
    let pin = unsigned(a, 1)?;
    let mode = a.check_integer(2)?;
    let pullup = a.opt_integer(3, FLOAT)?;
    arg_check(pin < PINS && (mode != INT || pin > 0), 1, "Invalid pin")?;
    arg_check(
        matches!(mode, INPUT | OUTPUT | OPENDRAIN | INT),
        2,
        "wrong arg type",
    )?;
    let pin = pin as u8;
    if mode != INT {
        db.clear_trig(pin);
    }
    // D0 (GPIO16) is input or push-pull output only, with no pull-up.
    let m = match (pin, mode) {
        (0, INPUT) => Mode::Input,
        (0, _) => Mode::Output,
        (_, INPUT) => Mode::Input,
        (_, OUTPUT) => Mode::Output,
        (_, OPENDRAIN) => Mode::OpenDrain,
        _ => Mode::Interrupt,
    };
    if pin != 0 {
        crate::modules::pwm::release(rt, pin); // the firmware closes a PWM output first
    }
    db.board.borrow_mut().set_mode(
        pin,
        m,
        if pullup != FLOAT {
            Pull::Up
        } else {
            Pull::None
        },
        db.now(),
    );
    db.flush();
    Ok(())
}

/// `gpio.write(pin, level)`: the binding behind the fast path, for everything it declines.
fn write(db: &DeviceBoard, a: &Args) -> FwResult<()> {
    let pin = unsigned(a, 1)?;
    let level = unsigned(a, 2)?;
    let pin = check_id(pin)?;
    arg_check(level <= 1, 2, "wrong level type")?;
    db.write(pin, level == 1);
    Ok(())
}

unsafe extern "C-unwind" fn write_body(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as the C closure `bind_fast_with` made.
    unsafe { method(state, write_fast) }
}

/// `gpio.write(pin, level)` with two whole numbers in range: done here. Anything else (a
/// string to convert, a bad pin or level) goes to the binding, which has the firmware's errors.
unsafe fn write_fast(state: *mut ffi::lua_State) -> bool {
    unsafe {
        if ffi::lua_gettop(state) != 2
            || ffi::lua_type(state, 1) != ffi::LUA_TNUMBER
            || ffi::lua_type(state, 2) != ffi::LUA_TNUMBER
        {
            return false;
        }
        let (pin, level) = (ffi::lua_tonumber(state, 1), ffi::lua_tonumber(state, 2));
        let whole = |x: f64| x.fract() == 0.0;
        if !(whole(pin)
            && whole(level)
            && (0.0..13.0).contains(&pin)
            && (level == 0.0 || level == 1.0))
        {
            return false;
        }
        let db = ffi::lua_touserdata(state, ffi::lua_upvalueindex(3)) as *const DeviceBoard;
        if db.is_null() {
            return false;
        }
        // SAFETY: the pointer is the board `install` kept alive in the state's app data.
        (*db).write(pin as u8, level == 1.0);
        true
    }
}

/// `gpio.trig(pin[, type[, callback]])`.
fn trig(lua: &Lua, db: &DeviceBoard, a: &Args) -> FwResult<()> {
    let pin = unsigned(a, 1)?;
    arg_check(pin < PINS && pin > 0, 1, "Invalid interrupt pin")?;
    let kind = match a.arg(2) {
        Value::Nil => TrigKind::None,
        Value::String(s) => match s.as_bytes().as_ref() {
            b"none" => TrigKind::None,
            b"up" => TrigKind::Up,
            b"down" => TrigKind::Down,
            b"both" => TrigKind::Both,
            b"low" => TrigKind::Low,
            b"high" => TrigKind::High,
            other => {
                let o = String::from_utf8_lossy(other).into_owned();
                return arg_err(2, format!("invalid option '{o}'"));
            }
        },
        Value::Integer(_) | Value::Number(_) => {
            return arg_err(2, format!("invalid option '{}'", a.check_str(lua, 2)?));
        }
        v => {
            return arg_err(
                2,
                format!("string expected, got {}", crate::lauxlib::typename(v)),
            );
        }
    };
    let pin = pin as u8;
    let callback = match a.arg(3) {
        Value::Function(f) => Some(f.clone()),
        _ if kind == TrigKind::None => None,
        _ if a.len() == 2 && db.has_trig(pin) => None, // keeps the old callback
        _ => {
            db.set_trig(pin, TrigKind::None, None);
            return arg_err(3, "invalid callback type");
        }
    };
    db.set_trig(pin, kind, callback);
    Ok(())
}

/// The `serout` run: the pin, the level to set next, the delays, the repeats left.
struct Serout {
    pin: u8,
    level: bool,
    delays: Vec<u32>,
    repeats: u32,
}

/// `gpio.serout(pin, start_level, delay_times[, repeat_num[, callback]])`.
fn serout(rt: &Rc<Runtime>, db: &Rc<DeviceBoard>, a: &Args) -> FwResult<()> {
    let pin = unsigned(a, 1)?;
    let level = unsigned(a, 2)?;
    let repeats = (a.opt_integer(4, 1)? as u32).wrapping_sub(1);
    let asynchronous = !a.is_none_or_nil(5);
    let callback = match a.arg(5) {
        Value::Function(f) => Some(f.clone()),
        _ => None,
    };
    arg_check(pin < PINS, 1, "Invalid pin")?;
    arg_check(level <= 1, 2, "Wrong level type")?;
    let delays = match a.arg(3) {
        Value::Table(t) if (t.raw_len()) < DELAY_TABLE_MAX => t.clone(),
        _ => return arg_err(3, "Invalid delay_times"),
    };
    let mut table = Vec::with_capacity(delays.raw_len());
    for i in 1..=delays.raw_len() {
        let v = Args(mlua::MultiValue::from_iter([delays.raw_get::<Value>(i)?]));
        // The firmware checks each entry at stack index -1.
        match v.check_integer(1) {
            Ok(d) => table.push(d as u32),
            Err(crate::lauxlib::FwError::Arg(_, m)) => {
                return Err(crate::lauxlib::FwError::Msg(format!(
                    "bad argument #-1 to 'serout' ({m})"
                )));
            }
            Err(e) => return Err(e),
        }
    }
    let run = Serout {
        pin: pin as u8,
        level: level == 1,
        delays: table,
        repeats,
    };
    if asynchronous {
        serout_step(rt, db, run, 0, callback);
    } else {
        serout_sync(rt, db, run);
    }
    Ok(())
}

/// The blocking form: each toggle at its device time, the clock passing as on the board. A
/// run blocking longer than the watchdog allows resets the device, as on the board (where
/// nothing feeds the watchdog while it runs).
fn serout_sync(rt: &Runtime, db: &DeviceBoard, mut run: Serout) {
    let mut blocked = Duration::ZERO;
    loop {
        for &d in &run.delays {
            db.board.borrow_mut().write(run.pin, run.level, micros(rt));
            db.flush();
            run.level = !run.level;
            let d = Duration::from_micros(u64::from(d));
            rt.pass_time(d);
            blocked += d;
            if blocked > crate::runtime::WATCHDOG {
                // Unwinds as the watchdog hook does: the script gets no chance to go on.
                std::panic::resume_unwind(Box::new(crate::runtime::WatchdogBite));
            }
        }
        if run.repeats == 0 {
            break;
        }
        run.repeats -= 1;
    }
}

/// The timer-driven form: one step per device timer, then the callback as a LOW task.
fn serout_step(
    rt: &Rc<Runtime>,
    db: &Rc<DeviceBoard>,
    mut run: Serout,
    index: usize,
    callback: Option<Function>,
) {
    if index >= run.delays.len() {
        if let Some(cb) = callback {
            let r = rt.clone();
            rt.post_internal(
                Priority::Low,
                Box::new(move |lua| r.call_protected(lua, &cb, ())),
            );
        }
        return;
    }
    db.board.borrow_mut().write(run.pin, run.level, micros(rt));
    db.flush();
    run.level = !run.level;
    let delay = Duration::from_micros(u64::from(run.delays[index]));
    let mut next = index + 1;
    if run.repeats > 0 && next >= run.delays.len() {
        next = 0;
        run.repeats -= 1;
    }
    let (r, d) = (rt.clone(), db.clone());
    rt.arm_timer(
        delay,
        Box::new(move |_| {
            serout_step(&r, &d, run, next, callback);
            Ok(())
        }),
    );
}
