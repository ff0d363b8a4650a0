//! `tmr`: the device's software timers, uptime counters and watchdogs.
//!
//! A `tmr.timer` is a handle on [`TimerState`]. While it is started it is anchored in the runtime,
//! so a timer nobody references still fires (the firmware's `self_ref`); single and semi alarms drop
//! the anchor when they fire, auto alarms keep it. Repeating timers re-arm from their previous
//! deadline, so an hour of one-second alarms is exactly 3600 callbacks.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use host_backend::timers::TimerKey;
use mlua::{AnyUserData, Function, Lua, Value};

use crate::handle_type;
use crate::lauxlib::{Args, FwResult, arg_check, bind, fw_err};
use crate::modules::{module_table, register_methods};
use crate::runtime::{ResetCause, Runtime};

const TYPE: &str = "tmr.timer";
const MAX_INTERVAL: i64 = 6_870_947;
const RANGE_MSG: &str = "Range: 1-0x68D7A3";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Single = 0,
    Auto = 1,
    Semi = 2,
}

#[derive(Default)]
struct TimerState {
    id: u64,
    interval_ms: u64,
    mode: Option<Mode>,
    callback: Option<Function>,
    armed: Option<TimerKey>,
}

#[derive(Clone)]
pub struct Timer(Rc<RefCell<TimerState>>);
handle_type!(Timer, TYPE);

fn check_timer(a: &Args) -> FwResult<(AnyUserData, Timer)> {
    a.check_udata::<Timer>(1, TYPE)
}

fn check_interval(a: &Args, n: usize) -> FwResult<u64> {
    let ms = a.check_integer(n)?;
    arg_check(ms > 0 && ms <= MAX_INTERVAL, n, RANGE_MSG)?;
    Ok(ms as u64)
}

impl Timer {
    fn running(&self) -> bool {
        self.0.borrow().armed.is_some()
    }

    fn disarm(&self, rt: &Runtime) {
        if let Some(k) = self.0.borrow_mut().armed.take() {
            rt.cancel_timer(k);
        }
    }

    /// Arms the timer `interval` after `from` (now, or the previous deadline for auto alarms).
    fn arm(&self, rt: &Rc<Runtime>, from: Duration) {
        let interval = Duration::from_millis(self.0.borrow().interval_ms);
        let (t, r) = (self.clone(), rt.clone());
        let key = rt.arm_timer_at(
            from + interval,
            Box::new(move |lua| t.fire(lua, &r, from + interval)),
        );
        self.0.borrow_mut().armed = Some(key);
    }

    fn fire(&self, lua: &Lua, rt: &Rc<Runtime>, deadline: Duration) -> mlua::Result<()> {
        let (id, mode, cb) = {
            let mut st = self.0.borrow_mut();
            st.armed = None;
            let cb = st.callback.clone();
            if st.mode == Some(Mode::Single) {
                st.callback = None;
                st.mode = None;
            }
            (st.id, st.mode, cb)
        };
        let ud = rt.anchored(id);
        if mode == Some(Mode::Auto) {
            self.arm(rt, deadline);
        } else {
            rt.unanchor(id);
        }
        match (cb, ud) {
            (Some(cb), Some(ud)) => rt.call_protected(lua, &cb, ud),
            _ => Ok(()),
        }
    }
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let r = rt.clone();
    let register_fn = bind(lua, move |_, a| register(&r, &a))?;
    let r = rt.clone();
    let start_fn = bind(lua, move |_, a| start(&r, &a))?;
    let r = rt.clone();
    let alarm = bind(lua, move |_, a| {
        register(&r, &a)?;
        start(&r, &Args(a.0.iter().take(1).cloned().collect()))
    })?;
    let r = rt.clone();
    let stop = bind(lua, move |_, a| {
        let (_, t) = check_timer(&a)?;
        r.unanchor(t.0.borrow().id);
        let was = t.running();
        t.disarm(&r);
        Ok(was)
    })?;
    let r = rt.clone();
    let unregister = bind(lua, move |_, a| {
        let (_, t) = check_timer(&a)?;
        r.unanchor(t.0.borrow().id);
        t.disarm(&r);
        let mut st = t.0.borrow_mut();
        st.callback = None;
        st.mode = None;
        Ok(())
    })?;
    let r = rt.clone();
    let interval = bind(lua, move |_, a| {
        let (_, t) = check_timer(&a)?;
        let ms = check_interval(&a, 2)?;
        if t.0.borrow().mode.is_some() {
            t.0.borrow_mut().interval_ms = ms;
            if t.running() {
                t.disarm(&r);
                t.arm(&r, r.now());
            }
        }
        Ok(())
    })?;
    let state = bind(lua, |_, a| {
        let (_, t) = check_timer(&a)?;
        let st = t.0.borrow();
        Ok(match st.mode {
            None => mlua::Variadic::from_iter([Value::Nil]),
            Some(m) => mlua::Variadic::from_iter([
                Value::Boolean(st.armed.is_some()),
                Value::Integer(m as i64),
            ]),
        })
    })?;
    register_methods(
        lua,
        TYPE,
        vec![
            ("register", register_fn),
            ("alarm", alarm),
            ("start", start_fn),
            ("stop", stop),
            ("unregister", unregister),
            ("interval", interval),
            ("state", state),
        ],
    )?;
    lua.globals().set("tmr", module(lua, rt)?)
}

fn module(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<mlua::Table> {
    let r = rt.clone();
    let create = bind(lua, move |lua, _| {
        let st = TimerState {
            id: r.new_id(),
            ..Default::default()
        };
        Ok(lua.create_userdata(Timer(Rc::new(RefCell::new(st))))?)
    })?;
    let r = rt.clone();
    let now = bind(lua, move |_, _| {
        Ok((r.read_clock().as_micros() as u64 & 0x7FFF_FFFF) as i64)
    })?;
    let r = rt.clone();
    let time = bind(lua, move |_, _| Ok(r.read_clock().as_secs() as i64))?;
    let r = rt.clone();
    let ccount = bind(lua, move |_, _| {
        Ok((r.read_clock().as_micros() as u64).wrapping_mul(80) as u32 as i64)
    })?;
    let r = rt.clone();
    let delay = bind(lua, move |_, a| {
        let us = a.check_integer(1)?;
        if us <= 0 {
            return fw_err("wrong arg range");
        }
        r.pass_time(Duration::from_micros(us as u64));
        Ok(())
    })?;
    let r = rt.clone();
    let wdclr = bind(lua, move |_, _| {
        r.feed_watchdog();
        Ok(())
    })?;
    let softwd = softwd(lua, rt)?;
    let t = module_table(
        lua,
        vec![
            ("create", create),
            ("now", now),
            ("time", time),
            ("ccount", ccount),
            ("delay", delay),
            ("wdclr", wdclr),
            ("softwd", softwd),
        ],
    )?;
    t.set("ALARM_SINGLE", Mode::Single as i64)?;
    t.set("ALARM_AUTO", Mode::Auto as i64)?;
    t.set("ALARM_SEMI", Mode::Semi as i64)?;
    if rt.cfg.firmware >= crate::config::Firmware::V2_2 {
        // 2.2 and 3.0 keep these names (with TIMER_SUSPEND_ENABLE) only to say they are gone.
        for name in ["suspend_all", "resume_all"] {
            t.set(name, bind(lua, |_, _| fw_err::<()>(SUSPEND_REMOVED))?)?;
        }
    }
    Ok(t)
}

/// What `tmr.suspend_all()` and `tmr.resume_all()` raise since 2.2.
const SUSPEND_REMOVED: &str =
    "This feature has been removed, we apologize for any inconvenience this may have caused.";

/// `t:register(ms, mode, fn)`: sets the alarm up without starting it.
fn register(rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    let (_, t) = check_timer(a)?;
    let ms = check_interval(a, 2)?;
    let mode = match a.check_integer(3)? {
        0 => Mode::Single,
        1 => Mode::Auto,
        2 => Mode::Semi,
        _ => return crate::lauxlib::arg_err(3, "Invalid mode"),
    };
    arg_check(a.is_function(4), 4, "Must be function")?;
    t.disarm(rt);
    let mut st = t.0.borrow_mut();
    st.callback = Some(a.check_function(4)?);
    st.mode = Some(mode);
    st.interval_ms = ms;
    Ok(())
}

/// `t:start([restart])`: false when already running (unless `restart`) or not registered.
fn start(rt: &Rc<Runtime>, a: &Args) -> FwResult<bool> {
    let (ud, t) = check_timer(a)?;
    let restart = match a.get(2) {
        Value::Nil => false,
        Value::Boolean(b) => b,
        _ => return crate::lauxlib::arg_err(2, "boolean expected"),
    };
    let id = t.0.borrow().id;
    rt.anchor(id, ud);
    if t.0.borrow().mode.is_none() || (t.running() && !restart) {
        return Ok(false);
    }
    t.disarm(rt);
    t.arm(rt, rt.now());
    Ok(true)
}

/// `tmr.softwd(s)`: restart the device unless called again within `s` seconds; negative disables.
fn softwd(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<Function> {
    let armed: Rc<RefCell<Option<TimerKey>>> = Rc::default();
    let rt = rt.clone();
    bind(lua, move |_, a| {
        let s = a.check_integer(1)?;
        if let Some(k) = armed.borrow_mut().take() {
            rt.cancel_timer(k);
        }
        if s > 0 {
            let weak = Rc::downgrade(&rt);
            let key = rt.arm_timer(
                Duration::from_secs(s as u64),
                Box::new(move |_| {
                    if let Some(rt) = weak.upgrade() {
                        rt.request_reset(ResetCause::SoftWatchdog);
                    }
                    Ok(())
                }),
            );
            *armed.borrow_mut() = Some(key);
        }
        Ok(())
    })
}
