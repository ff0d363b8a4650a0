//! `ledc` (`--target esp32`): the ESP32's LED PWM controller, its channels' waves on the virtual
//! board's pins.
//!
//! `ledc.newChannel{...}` configures a timer (frequency, resolution in bits) and a channel (pin,
//! duty) and returns a `ledc.channel`. Channels sharing a (mode, timer) share its frequency.
//! Fades are steps of duty at device times: timers without `FADE_WAIT_DONE`, passing device time
//! inside the call with it. The firmware's methods return their last argument (they `return 1`
//! without pushing), and so do these.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use board::{Micros, Pwm};
use mlua::{Lua, MultiValue, Table, Value};

use crate::devboard::DeviceBoard;
use crate::handle_type;
use crate::lauxlib::{Args, FwError, FwResult, arg_check, arg_err, bind, binding_name, fw_err};
use crate::modules::{module_table, register_methods};
use crate::runtime::Runtime;

const TYPE: &str = "ledc.channel";
/// The APB clock the timers divide.
const APB_HZ: u64 = 80_000_000;
/// `ESP_ERR_INVALID_ARG`, `ESP_FAIL`.
const INVALID_ARG: i32 = 0x102;
const FAIL: i32 = -1;

/// The controller: timers by (mode, timer), channels by (mode, channel).
#[derive(Default)]
struct Ledc {
    timers: HashMap<(i64, i64), Timer>,
    channels: HashMap<(i64, i64), Channel>,
}

#[derive(Clone, Copy)]
struct Timer {
    freq: u32,
    bits: u32,
}

#[derive(Clone, Copy)]
struct Channel {
    timer: i64,
    gpio: u8,
    duty: u32,
    invert: bool,
    /// Stopped at an idle level, or paused: no wave.
    idle: Option<bool>,
    /// Bumped by every duty change, so a running fade's later steps know they are stale.
    generation: u64,
}

/// A channel handle: its mode and channel number.
#[derive(Clone)]
pub struct Handle {
    mode: i64,
    channel: i64,
}
handle_type!(Handle, TYPE);

type Shared = Rc<RefCell<Ledc>>;

/// What every binding works with.
struct Ctx {
    lua: Lua,
    rt: Rc<Runtime>,
    db: Rc<DeviceBoard>,
    st: Shared,
}

/// Whether `freq` Hz with `bits` of resolution can be made from the 80 MHz clock.
fn achievable(freq: u32, bits: u32) -> bool {
    (u64::from(freq) << bits) <= APB_HZ
}

impl Ledc {
    /// Puts the channel's wave (or its idle level) on its pin.
    fn publish(&self, db: &DeviceBoard, mode: i64, ch: i64) {
        let Some(c) = self.channels.get(&(mode, ch)) else {
            return;
        };
        let Some(t) = self.timers.get(&(mode, c.timer)) else {
            return;
        };
        let now = db.now();
        let mut b = db.board.borrow_mut();
        match c.idle {
            Some(level) => {
                b.set_pwm(c.gpio, None, now);
                b.write(c.gpio, level, now);
            }
            None => {
                let depth = 1u32 << t.bits;
                let duty = if c.invert {
                    depth - c.duty.min(depth)
                } else {
                    c.duty
                };
                let w = Pwm {
                    clock: t.freq,
                    duty,
                    depth,
                    period: None,
                };
                b.set_pwm(c.gpio, Some(w), now);
            }
        }
        drop(b);
        db.flush();
    }
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let db = DeviceBoard::get(rt).map_err(mlua::Error::runtime)?;
    let st: Shared = Rc::default();
    type Op = fn(&Ctx, &Args) -> FwResult<MultiValue>;
    let f = |op: Op| {
        let (r, d, s) = (rt.clone(), db.clone(), st.clone());
        bind(lua, move |lua, a| {
            let cx = Ctx {
                lua: lua.clone(),
                rt: r.clone(),
                db: d.clone(),
                st: s.clone(),
            };
            op(&cx, &a)
        })
    };
    register_methods(
        lua,
        TYPE,
        vec![
            ("getduty", f(getduty)?),
            ("setduty", f(setduty)?),
            ("getfreq", f(getfreq)?),
            ("setfreq", f(setfreq)?),
            ("stop", f(stop)?),
            ("reset", f(last_arg)?),
            ("pause", f(pause)?),
            ("resume", f(resume)?),
            ("fadewithtime", f(fade_with_time)?),
            ("fadewithstep", f(fade_with_step)?),
            ("fade", f(fade)?),
        ],
    )?;
    let t = module_table(lua, vec![("newChannel", f(new_channel)?)])?;
    let mut consts: Vec<(String, i64)> = vec![
        ("HIGH_SPEED".into(), 0),
        ("LOW_SPEED".into(), 1),
        ("TIMER_0".into(), 0),
        ("TIMER_1".into(), 1),
        ("TIMER_2".into(), 2),
        ("IDLE_LOW".into(), 0),
        ("IDLE_HIGH".into(), 1),
        ("FADE_NO_WAIT".into(), 0),
        ("FADE_WAIT_DONE".into(), 1),
        ("FADE_DECREASE".into(), 0),
        ("FADE_INCREASE".into(), 1),
    ];
    consts.extend((10..=20).map(|b| (format!("TIMER_{b}_BIT"), b)));
    consts.extend((0..8).map(|c| (format!("CHANNEL_{c}"), c)));
    for (k, v) in consts {
        t.set(k, v)?;
    }
    lua.globals().set("ledc", t)
}

/// `opt_checkint_range`: an optional number field of the options table, in a range.
fn opt_range(lua: &Lua, t: &Table, name: &str, default: i64, min: i64, max: i64) -> FwResult<i64> {
    let v = match t.get::<Value>(name)? {
        Value::Nil => default,
        Value::Integer(i) => i,
        Value::Number(x) => x as i64,
        other => {
            let got = crate::lauxlib::typename(&other);
            return opt_error(lua, name, &format!("number expected, got {got}"));
        }
    };
    if !(min..=max).contains(&v) {
        return opt_error(lua, name, &format!("must be in range {min}-{max}"));
    }
    Ok(v)
}

fn opt_error<T>(lua: &Lua, name: &str, msg: &str) -> FwResult<T> {
    fw_err(format!(
        "bad option {name} to '{}' ({msg})",
        binding_name(lua)
    ))
}

fn new_channel(cx: &Ctx, a: &Args) -> FwResult<MultiValue> {
    let lua = &cx.lua;
    let db = &cx.db;
    let st = &cx.st;
    let Value::Table(t) = a.get(1) else {
        let got = if a.is_empty() {
            "no value"
        } else {
            crate::lauxlib::typename(a.arg(1))
        };
        return arg_err(1, format!("table expected, got {got}"));
    };
    let bits = opt_range(lua, &t, "bits", 13, 0, 20)?;
    let freq = opt_range(lua, &t, "frequency", -1, 1, 40_000_000)?;
    let mode = opt_range(lua, &t, "mode", -1, 0, 1)?;
    let timer = opt_range(lua, &t, "timer", -1, 0, 3)?;
    let channel = opt_range(lua, &t, "channel", -1, 0, 7)?;
    let duty = opt_range(lua, &t, "duty", -1, 0, 1 << 20)?;
    let gpio = opt_range(lua, &t, "gpio", -1, 0, 39)?;
    let invert = match t.get::<Value>("invert")? {
        Value::Nil => false,
        Value::Boolean(b) => b,
        other => {
            let got = crate::lauxlib::typename(&other);
            return opt_error(lua, "invert", &format!("boolean expected, got {got}"));
        }
    };
    if !achievable(freq as u32, bits as u32) {
        return fw_err(format!("timer configuration failed code {FAIL}"));
    }
    if gpio >= 34 || duty > (1 << bits) {
        return fw_err(format!("channel configuration failed code {INVALID_ARG}"));
    }
    let mut s = st.borrow_mut();
    s.timers.insert(
        (mode, timer),
        Timer {
            freq: freq as u32,
            bits: bits as u32,
        },
    );
    let generation = s
        .channels
        .get(&(mode, channel))
        .map_or(0, |c| c.generation + 1);
    s.channels.insert(
        (mode, channel),
        Channel {
            timer,
            gpio: gpio as u8,
            duty: duty as u32,
            invert,
            idle: None,
            generation,
        },
    );
    // Every channel on this timer takes its (new) frequency.
    let on_timer: Vec<i64> = s
        .channels
        .iter()
        .filter(|((m, _), c)| *m == mode && c.timer == timer)
        .map(|((_, ch), _)| *ch)
        .collect();
    for ch in on_timer {
        s.publish(db, mode, ch);
    }
    drop(s);
    let ud = lua.create_userdata(Handle { mode, channel })?;
    Ok(MultiValue::from_iter([Value::UserData(ud)]))
}

/// The handle and its channel's state.
fn channel(a: &Args, st: &Shared) -> FwResult<(Handle, Channel, Timer)> {
    let (_, h) = a.check_udata::<Handle>(1, TYPE)?;
    let s = st.borrow();
    let c = s.channels.get(&(h.mode, h.channel)).copied();
    let t = c.and_then(|c| s.timers.get(&(h.mode, c.timer)).copied());
    match (c, t) {
        (Some(c), Some(t)) => Ok((h, c, t)),
        _ => fw_err("channel is not configured"),
    }
}

/// What the firmware's methods return: their last argument.
fn last(a: &Args) -> MultiValue {
    MultiValue::from_iter([a.get(a.len().max(1))])
}

fn last_arg(cx: &Ctx, a: &Args) -> FwResult<MultiValue> {
    let st = &cx.st;
    channel(a, st)?;
    Ok(last(a))
}

fn getduty(cx: &Ctx, a: &Args) -> FwResult<MultiValue> {
    let st = &cx.st;
    let (_, c, _) = channel(a, st)?;
    Ok(MultiValue::from_iter([Value::Integer(i64::from(c.duty))]))
}

/// Sets a channel's duty now; `fade` says whether a fade's step does it (a direct set stops any
/// fade in progress).
fn set_duty_now(db: &DeviceBoard, st: &Shared, h: &Handle, duty: u32, fade: Option<u64>) {
    let mut s = st.borrow_mut();
    let Some(c) = s.channels.get_mut(&(h.mode, h.channel)) else {
        return;
    };
    match fade {
        Some(g) if g != c.generation => return,
        Some(_) => {}
        None => c.generation += 1,
    }
    c.duty = duty;
    s.publish(db, h.mode, h.channel);
}

fn setduty(cx: &Ctx, a: &Args) -> FwResult<MultiValue> {
    let db = &cx.db;
    let st = &cx.st;
    let (h, _, t) = channel(a, st)?;
    let duty = a.check_integer(2)?;
    if !(0..=1 << t.bits).contains(&duty) {
        return fw_err(format!("set duty failed, code {INVALID_ARG}"));
    }
    set_duty_now(db, st, &h, duty as u32, None);
    Ok(last(a))
}

fn getfreq(cx: &Ctx, a: &Args) -> FwResult<MultiValue> {
    let st = &cx.st;
    let (_, _, t) = channel(a, st)?;
    Ok(MultiValue::from_iter([Value::Integer(i64::from(t.freq))]))
}

fn setfreq(cx: &Ctx, a: &Args) -> FwResult<MultiValue> {
    let db = &cx.db;
    let st = &cx.st;
    let (h, c, t) = channel(a, st)?;
    let freq = a.check_integer(2)?;
    if freq <= 0 || !achievable(freq as u32, t.bits) {
        return fw_err(format!("set freq failed, code {FAIL}"));
    }
    let mut s = st.borrow_mut();
    if let Some(t) = s.timers.get_mut(&(h.mode, c.timer)) {
        t.freq = freq as u32;
    }
    let on_timer: Vec<i64> = s
        .channels
        .iter()
        .filter(|((m, _), ch)| *m == h.mode && ch.timer == c.timer)
        .map(|((_, ch), _)| *ch)
        .collect();
    for ch in on_timer {
        s.publish(db, h.mode, ch);
    }
    Ok(last(a))
}

/// `stop(idle)`: the pin holds the idle level (the firmware checks it as argument 1).
fn stop(cx: &Ctx, a: &Args) -> FwResult<MultiValue> {
    let db = &cx.db;
    let st = &cx.st;
    let (h, _, _) = channel(a, st)?;
    let idle = a.check_integer(2)?;
    arg_check((0..=1).contains(&idle), 1, "Invalid idle level")?;
    set_idle(db, st, &h, Some(idle == 1));
    Ok(last(a))
}

fn set_idle(db: &DeviceBoard, st: &Shared, h: &Handle, idle: Option<bool>) {
    let mut s = st.borrow_mut();
    if let Some(c) = s.channels.get_mut(&(h.mode, h.channel)) {
        c.idle = idle;
    }
    s.publish(db, h.mode, h.channel);
}

/// `pause()`: the wave stops where it is.
fn pause(cx: &Ctx, a: &Args) -> FwResult<MultiValue> {
    let db = &cx.db;
    let st = &cx.st;
    let (h, c, _) = channel(a, st)?;
    let level = db.board.borrow().read(c.gpio, db.now()) == 1;
    set_idle(db, st, &h, Some(level));
    Ok(last(a))
}

fn resume(cx: &Ctx, a: &Args) -> FwResult<MultiValue> {
    let db = &cx.db;
    let st = &cx.st;
    let (h, _, _) = channel(a, st)?;
    set_idle(db, st, &h, None);
    Ok(last(a))
}

/// The optional `wait` argument at `n`.
fn wait_arg(a: &Args, n: usize) -> FwResult<bool> {
    let w = a.opt_integer(n, 0)?;
    arg_check(w == 0 || w == 1, n, "Invalid wait")?;
    Ok(w == 1)
}

/// Runs a fade: `steps` of (µs after now, duty). With `wait` the call passes the device time
/// itself; without, each step is a device timer.
fn run_fade(
    rt: &Rc<Runtime>,
    db: &Rc<DeviceBoard>,
    st: &Shared,
    h: &Handle,
    steps: Vec<(Micros, u32)>,
    wait: bool,
) {
    let generation = {
        let mut s = st.borrow_mut();
        let Some(c) = s.channels.get_mut(&(h.mode, h.channel)) else {
            return;
        };
        c.generation += 1;
        c.generation
    };
    let mut passed = 0;
    for (at, duty) in steps {
        if wait {
            rt.pass_time(Duration::from_micros(at - passed));
            passed = at;
            set_duty_now(db, st, h, duty, Some(generation));
        } else {
            let (d, s, h) = (db.clone(), st.clone(), h.clone());
            rt.arm_timer(
                Duration::from_micros(at),
                Box::new(move |_| {
                    set_duty_now(&d, &s, &h, duty, Some(generation));
                    Ok(())
                }),
            );
        }
    }
}

/// Steps from `from` to `target` by `scale`, one every `every` µs.
fn stepped(from: u32, target: u32, scale: u32, every: Micros) -> Vec<(Micros, u32)> {
    let mut out = Vec::new();
    let (mut d, mut at) = (from, 0);
    let scale = scale.max(1);
    while d != target && out.len() < 100_000 {
        d = if target > d {
            d.saturating_add(scale).min(target)
        } else {
            d.saturating_sub(scale).max(target)
        };
        at += every;
        out.push((at, d));
    }
    out
}

fn fade_with_time(cx: &Ctx, a: &Args) -> FwResult<MultiValue> {
    let rt = &cx.rt;
    let db = &cx.db;
    let st = &cx.st;
    let (h, c, t) = channel(a, st)?;
    let target = a.check_integer(2)?;
    let ms = a.check_integer(3)?;
    let wait = wait_arg(a, 4)?;
    if !(0..=1 << t.bits).contains(&target) || ms < 0 {
        return fw_err(format!("set fade failed, code {INVALID_ARG}"));
    }
    // One step per period of the wave, spread evenly over the time.
    let period = 1_000_000 / Micros::from(t.freq.max(1));
    let total = (ms as Micros).saturating_mul(1000);
    let diff = (target - i64::from(c.duty)).unsigned_abs() as u32;
    let steps = (total / period.max(1)).clamp(1, u64::from(diff.max(1))) as u32;
    let every = total / u64::from(steps);
    let scale = diff.div_ceil(steps);
    let mut steps = stepped(c.duty, target as u32, scale, every);
    if let Some(end) = steps.last_mut() {
        end.0 = total; // the fade ends at its time, whatever the rounding of the steps
    }
    run_fade(rt, db, st, &h, steps, wait);
    Ok(last(a))
}

fn fade_with_step(cx: &Ctx, a: &Args) -> FwResult<MultiValue> {
    let rt = &cx.rt;
    let db = &cx.db;
    let st = &cx.st;
    let (h, c, t) = channel(a, st)?;
    let target = a.check_integer(2)?;
    let scale = a.check_integer(3)?;
    let cycles = a.check_integer(4)?;
    let wait = wait_arg(a, 5)?;
    if !(0..=1 << t.bits).contains(&target) || scale <= 0 || cycles <= 0 {
        return fw_err(format!("set fade failed, code {INVALID_ARG}"));
    }
    let every = (cycles as Micros).saturating_mul(1_000_000) / Micros::from(t.freq.max(1));
    let steps = stepped(c.duty, target as u32, scale as u32, every);
    run_fade(rt, db, st, &h, steps, wait);
    Ok(last(a))
}

fn fade(cx: &Ctx, a: &Args) -> FwResult<MultiValue> {
    let rt = &cx.rt;
    let db = &cx.db;
    let st = &cx.st;
    let (h, _, t) = channel(a, st)?;
    let duty = a.check_integer(2)?;
    let direction = a.check_integer(3)?;
    arg_check(direction == 0 || direction == 1, 3, "Invalid direction")?;
    let scale = a.check_integer(4)?;
    let cycles = a.check_integer(5)?;
    let count = a.check_integer(6)?;
    let wait = wait_arg(a, 7)?;
    let max = 1i64 << t.bits;
    if !(0..=max).contains(&duty) || scale < 0 || cycles <= 0 || count < 0 {
        return Err(FwError::Msg(format!("set fade failed, code {INVALID_ARG}")));
    }
    let every = (cycles as Micros).saturating_mul(1_000_000) / Micros::from(t.freq.max(1));
    let sign = if direction == 1 { 1 } else { -1 };
    let steps = (1..=count.min(100_000))
        .map(|i| {
            let d = (duty + sign * scale * i).clamp(0, max) as u32;
            (every.saturating_mul(i as Micros), d)
        })
        .collect();
    set_duty_now(db, st, &h, duty as u32, None);
    run_fade(rt, db, st, &h, steps, wait);
    Ok(last(a))
}
