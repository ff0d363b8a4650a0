//! `tmr`: the device's software timers, uptime counters and watchdogs.
//!
//! A `tmr.timer` is a handle on [`TimerState`]. While it is started it is anchored in the runtime,
//! so a timer nobody references still fires (the firmware's `self_ref`); single and semi alarms drop
//! the anchor when they fire, auto alarms keep it. Repeating timers re-arm from their previous
//! deadline, so an hour of one-second alarms is exactly 3600 callbacks.
//!
//! Firmware before 3.0 also had seven static timers, driven by id through the module functions
//! (`tmr.alarm(0, 1000, tmr.ALARM_AUTO, f)`); each of those functions took a timer object in place
//! of the id too. Under `--firmware 1.5` and `2.2` the static timers are a pool of ordinary timers
//! whose callback gets the id instead of the object; under 3.0 the names are gone (with a note).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use host_backend::timers::TimerKey;
use mlua::{AnyUserData, Function, Lua, Value};

use crate::config::Firmware;
use crate::handle_type;
use crate::lauxlib::{Args, FwResult, arg_check, arg_err, bind, fw_err};
use crate::modules::{module_table, note_removed, register_methods};
use crate::runtime::{Removed, ResetCause, Runtime};

const TYPE: &str = "tmr.timer";
const MAX_INTERVAL: i64 = 6_870_947;
/// The interval's range error: 3.0 spells the limit in hex, older firmware in decimal.
fn range_msg(fw: Firmware) -> &'static str {
    if fw < Firmware::V3_0 {
        "Range: 1-6870947"
    } else {
        "Range: 1-0x68D7A3"
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Single = 0,
    Auto = 1,
    Semi = 2,
}

/// The static timers of firmware before 3.0 (`NUM_TMR`).
const NUM_STATIC: i64 = 7;

/// The static API's names, which 3.0 removed.
const STATIC_NAMES: [&str; 7] = [
    "register",
    "alarm",
    "start",
    "stop",
    "unregister",
    "interval",
    "state",
];

static REMOVED_IN_3: [(&str, Removed); 7] = {
    const R: Removed = Removed {
        removed_in: "3.0",
        why: "static timers",
        newest: Firmware::V2_2,
    };
    [
        (STATIC_NAMES[0], R),
        (STATIC_NAMES[1], R),
        (STATIC_NAMES[2], R),
        (STATIC_NAMES[3], R),
        (STATIC_NAMES[4], R),
        (STATIC_NAMES[5], R),
        (STATIC_NAMES[6], R),
    ]
};

#[derive(Default)]
struct TimerState {
    id: u64,
    /// The static timer's index, passed to its callback instead of a timer object.
    static_id: Option<i64>,
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

fn check_interval(rt: &Runtime, a: &Args, n: usize) -> FwResult<u64> {
    let ms = a.check_integer(n)?;
    arg_check(ms > 0 && ms <= MAX_INTERVAL, n, range_msg(rt.cfg.firmware))?;
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
        let (id, static_id, mode, cb) = {
            let mut st = self.0.borrow_mut();
            st.armed = None;
            let cb = st.callback.clone();
            if st.mode == Some(Mode::Single) {
                st.callback = None;
                st.mode = None;
            }
            (st.id, st.static_id, st.mode, cb)
        };
        let ud = rt.anchored(id);
        if mode == Some(Mode::Auto) {
            self.arm(rt, deadline);
        } else {
            rt.unanchor(id);
        }
        match (cb, static_id, ud) {
            (Some(cb), Some(n), _) => rt.call_protected(lua, &cb, n),
            (Some(cb), None, Some(ud)) => rt.call_protected(lua, &cb, ud),
            _ => Ok(()),
        }
    }
}

/// How a timer function finds its timer in argument 1: a method's self, or (static API) an id.
type Resolve = Rc<dyn Fn(&Args) -> FwResult<(Option<AnyUserData>, Timer)>>;

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let methods: Resolve = Rc::new(|a| check_timer(a).map(|(ud, t)| (Some(ud), t)));
    register_methods(lua, TYPE, timer_functions(lua, rt, &methods)?)?;
    let t = module(lua, rt)?;
    if rt.cfg.firmware < Firmware::V3_0 {
        let pool: Rc<[Timer]> = (0..NUM_STATIC)
            .map(|n| {
                Timer(Rc::new(RefCell::new(TimerState {
                    id: rt.new_id(),
                    static_id: Some(n),
                    ..Default::default()
                })))
            })
            .collect();
        let by_id: Resolve = Rc::new(move |a| static_timer(&pool, a));
        for (name, f) in timer_functions(lua, rt, &by_id)? {
            t.set(name, f)?;
        }
    } else {
        note_removed(lua, rt, &t, "tmr.", &REMOVED_IN_3)?;
    }
    lua.globals().set("tmr", t)
}

/// Argument 1 of the static API: a timer object, or the index of a static timer.
fn static_timer(pool: &[Timer], a: &Args) -> FwResult<(Option<AnyUserData>, Timer)> {
    match a.get(1) {
        Value::UserData(_) => check_timer(a).map(|(ud, t)| (Some(ud), t)),
        v if crate::lauxlib::to_number(&v).is_some() => {
            let n = a.check_integer(1)?;
            match usize::try_from(n).ok().and_then(|i| pool.get(i)) {
                Some(t) => Ok((None, t.clone())),
                None => arg_err(1, "invalid timer index"),
            }
        }
        _ => arg_err(1, "timer object or numerical ID expected"),
    }
}

/// The seven timer functions, finding their timer with `resolve`: the object methods, and
/// before 3.0 also the module's static functions.
fn timer_functions<'a>(
    lua: &Lua,
    rt: &Rc<Runtime>,
    resolve: &Resolve,
) -> mlua::Result<Vec<(&'a str, Function)>> {
    let (r, get) = (rt.clone(), resolve.clone());
    let register_fn = bind(lua, move |_, a| register(&r, &get(&a)?.1, &a))?;
    let (r, get) = (rt.clone(), resolve.clone());
    let start_fn = bind(lua, move |_, a| start(&r, get(&a)?, &a))?;
    let (r, get) = (rt.clone(), resolve.clone());
    let alarm = bind(lua, move |_, a| {
        let (ud, t) = get(&a)?;
        register(&r, &t, &a)?;
        start(&r, (ud, t), &Args(a.0.iter().take(1).cloned().collect()))
    })?;
    let (r, get) = (rt.clone(), resolve.clone());
    let stop = bind(lua, move |_, a| {
        let (_, t) = get(&a)?;
        r.unanchor(t.0.borrow().id);
        let was = t.running();
        t.disarm(&r);
        Ok(was)
    })?;
    let (r, get) = (rt.clone(), resolve.clone());
    let unregister = bind(lua, move |_, a| {
        let (_, t) = get(&a)?;
        r.unanchor(t.0.borrow().id);
        t.disarm(&r);
        let mut st = t.0.borrow_mut();
        st.callback = None;
        st.mode = None;
        Ok(())
    })?;
    let (r, get) = (rt.clone(), resolve.clone());
    let interval = bind(lua, move |_, a| {
        let (_, t) = get(&a)?;
        let ms = check_interval(&r, &a, 2)?;
        if t.0.borrow().mode.is_some() {
            t.0.borrow_mut().interval_ms = ms;
            if t.running() {
                t.disarm(&r);
                t.arm(&r, r.now());
            }
        }
        Ok(())
    })?;
    let get = resolve.clone();
    let state = bind(lua, move |_, a| {
        let (_, t) = get(&a)?;
        let st = t.0.borrow();
        Ok(match st.mode {
            None => mlua::Variadic::from_iter([Value::Nil]),
            Some(m) => mlua::Variadic::from_iter([
                Value::Boolean(st.armed.is_some()),
                Value::Integer(m as i64),
            ]),
        })
    })?;
    let fns = [
        register_fn,
        alarm,
        start_fn,
        stop,
        unregister,
        interval,
        state,
    ];
    Ok(STATIC_NAMES.into_iter().zip(fns).collect())
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
            ("delay", delay),
            ("wdclr", wdclr),
            ("softwd", softwd),
        ],
    )?;
    // The cycle counter came with 3.0.
    if rt.cfg.firmware >= Firmware::V3_0 {
        t.set("ccount", ccount)?;
    }
    t.set("ALARM_SINGLE", Mode::Single as i64)?;
    t.set("ALARM_AUTO", Mode::Auto as i64)?;
    t.set("ALARM_SEMI", Mode::Semi as i64)?;
    Ok(t)
}

/// `t:register(ms, mode, fn)`: sets the alarm up without starting it.
fn register(rt: &Rc<Runtime>, t: &Timer, a: &Args) -> FwResult<()> {
    let ms = check_interval(rt, a, 2)?;
    let mode = match a.check_integer(3)? {
        0 => Mode::Single,
        1 => Mode::Auto,
        2 => Mode::Semi,
        _ => return arg_err(3, "Invalid mode"),
    };
    arg_check(a.is_function(4), 4, "Must be function")?;
    t.disarm(rt);
    let mut st = t.0.borrow_mut();
    st.callback = Some(a.check_function(4)?);
    st.mode = Some(mode);
    st.interval_ms = ms;
    Ok(())
}

/// `t:start([restart])`: false when already running (unless `restart`, new in 3.0) or not
/// registered. A started timer object is anchored so it fires though nothing references it; a
/// static timer lives in the module's pool and needs no anchor.
fn start(rt: &Rc<Runtime>, (ud, t): (Option<AnyUserData>, Timer), a: &Args) -> FwResult<bool> {
    let restart = match a.get(2) {
        _ if rt.cfg.firmware < Firmware::V3_0 => false,
        Value::Nil => false,
        Value::Boolean(b) => b,
        _ => return arg_err(2, "boolean expected"),
    };
    if let Some(ud) = ud {
        rt.anchor(t.0.borrow().id, ud);
    }
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
