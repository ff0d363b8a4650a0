//! `gpio.pulse`: the ESP8266 firmware's pulse trains (`gpio_pulse.c`), on the virtual board.
//!
//! `gpio.pulse.build` turns a table of steps into a pulser; `:start` runs it on device timers,
//! each step setting its pins on the board (traced as `gpio` writes) and waiting its delay, with
//! `loop`/`count` jumps and `min`/`max` steps that absorb lateness and `:adjust` offsets as the
//! firmware does. Only one pulser runs at a time (the firmware has one hardware timer for it);
//! the end is reported by a LOW task calling the callback with `:getstate`'s four values.
//! Like the firmware, the clock it reasons in is `system_get_time` cut to 31 bits.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use host_backend::timers::TimerKey;
use mlua::{Function, Lua, MultiValue, Table, Value};

use crate::devboard::{DeviceBoard, micros};
use crate::handle_type;
use crate::lauxlib::{Args, FwError, FwResult, bind, fw_err};
use crate::modules::gpio::PINS;
use crate::modules::{module_table, register_methods};
use crate::runtime::{Priority, Runtime};

const TYPE: &str = "gpio.pulse";
/// `DELAY_LIMIT`: the longest step, in µs.
const DELAY_LIMIT: i64 = 64_000_000;
/// The most steps a pulser may have.
const MAX_ENTRIES: usize = 100;
/// Steps shorter than this run at once, without a timer (as the firmware's loop does).
const MIN_TIMED: i32 = 3;
/// Back-to-back untimed steps taken in one go before yielding to the loop: on the board such a
/// run would spin until the watchdog; here 1 µs passes per batch, so a time limit can end it.
const MAX_UNTIMED: u32 = 1_000;

/// One step: pins to set and clear (NodeMCU pin bits), its delay and range, its loop.
#[derive(Clone, Copy)]
struct Entry {
    set: u32,
    clr: u32,
    delay: i32,
    min: i32,
    max: i32,
    count: u32,
    count_left: u32,
    jump: u16,
}

impl Default for Entry {
    fn default() -> Self {
        Entry {
            set: 0,
            clr: 0,
            delay: 0,
            min: -1,
            max: -1,
            count: 0,
            count_left: 0,
            jump: 0,
        }
    }
}

#[derive(Default)]
struct PulseState {
    entries: Vec<Entry>,
    steps: u32,
    entry_pos: usize,
    active_pos: usize,
    /// `None`: run on; `Some(None)`: stop at the next step; `Some(Some(i))`: stop entering step i.
    stop_pos: Option<Option<usize>>,
    expected_end: u32,
    /// Never reset by `:start`, as in the firmware.
    desired_end: u32,
    next_adjust: i32,
    callback: Option<Function>,
}

#[derive(Clone)]
pub struct Pulser(Rc<RefCell<PulseState>>);
handle_type!(Pulser, TYPE);

/// The one running pulser and its armed timer.
#[derive(Default)]
struct Active {
    pulser: Option<Pulser>,
    timer: Option<TimerKey>,
}

fn active(rt: &Runtime) -> Rc<RefCell<Active>> {
    rt.state(|_| RefCell::new(Active::default()))
}

fn is_active(rt: &Runtime, p: &Pulser) -> bool {
    active(rt)
        .borrow()
        .pulser
        .as_ref()
        .is_some_and(|a| Rc::ptr_eq(&a.0, &p.0))
}

/// The `gpio.pulse` table, with the pulser methods registered.
pub(crate) fn module(lua: &Lua, rt: &Rc<Runtime>, db: &Rc<DeviceBoard>) -> mlua::Result<Table> {
    let build_fn = bind(lua, |_, a| build(&a))?;
    let r = rt.clone();
    let getstate = bind(lua, move |_, a| Ok(state(&r, &check(&a)?)))?;
    let (r, d) = (rt.clone(), db.clone());
    let start_fn = bind(lua, move |_, a| start(&r, &d, &a))?;
    let r = rt.clone();
    let stop_fn = bind(lua, move |_, a| stop(&r, &a))?;
    let r = rt.clone();
    let cancel_fn = bind(lua, move |_, a| cancel(&r, &a))?;
    let r = rt.clone();
    let adjust_fn = bind(lua, move |_, a| adjust(&r, &a))?;
    let update_fn = bind(lua, |_, a| update(&a))?;
    register_methods(
        lua,
        TYPE,
        vec![
            ("getstate", getstate),
            ("stop", stop_fn),
            ("cancel", cancel_fn),
            ("start", start_fn),
            ("adjust", adjust_fn),
            ("update", update_fn),
        ],
    )?;
    module_table(lua, vec![("build", build_fn)])
}

fn check(a: &Args) -> FwResult<Pulser> {
    Ok(a.check_udata::<Pulser>(1, TYPE)?.1)
}

/// `system_get_time() & 0x7FFFFFFF`.
fn now31(rt: &Runtime) -> u32 {
    (micros(rt) as u32) & 0x7fff_ffff
}

/// A 31-bit clock difference as a signed number.
fn signed31(x: u32) -> i32 {
    (((x & 0x7fff_ffff) << 1) as i32) >> 1
}

/// `:getstate`'s four values: position (nil when done), steps, µs to the next step, now.
fn state(rt: &Runtime, p: &Pulser) -> MultiValue {
    let st = p.0.borrow();
    let now = now31(rt);
    let pos = if st.active_pos >= st.entries.len() {
        Value::Nil
    } else {
        Value::Integer(st.active_pos as i64 + 1)
    };
    MultiValue::from_iter([
        pos,
        Value::Integer(i64::from(st.steps)),
        Value::Integer(i64::from(signed31(st.expected_end.wrapping_sub(now)))),
        Value::Integer(i64::from(now)),
    ])
}

/// `gpio.pulse.build(table)`.
fn build(a: &Args) -> FwResult<Pulser> {
    let t = match a.arg(1) {
        Value::Table(t) => t.clone(),
        _ => return table_expected(a),
    };
    let size = t.raw_len();
    if size > MAX_ENTRIES {
        return fw_err(format!(
            "table is too large: {size} entries is more than {MAX_ENTRIES}"
        ));
    }
    let mut entries = Vec::with_capacity(size);
    for i in 1..=size {
        let mut e = Entry::default();
        fill_entry(&t.raw_get::<Value>(i)?, &mut e, "build")?;
        entries.push(e);
    }
    Ok(Pulser(Rc::new(RefCell::new(PulseState {
        entries,
        ..Default::default()
    }))))
}

/// `luaL_checktype(L, 1, LUA_TTABLE)`'s error.
fn table_expected<T>(a: &Args) -> FwResult<T> {
    let got = if a.is_empty() {
        "no value"
    } else {
        crate::lauxlib::typename(a.arg(1))
    };
    crate::lauxlib::arg_err(1, format!("table expected, got {got}"))
}

/// `luaL_checkint` on a stack slot below the arguments: the message names index `idx`.
fn check_int(v: &Value, idx: i32, fname: &str) -> FwResult<i32> {
    let one = Args(MultiValue::from_iter([v.clone()]));
    match one.check_integer(1) {
        Ok(x) => Ok(x as i32),
        Err(FwError::Arg(_, m)) => Err(FwError::Msg(format!(
            "bad argument #{idx} to '{fname}' ({m})"
        ))),
        Err(e) => Err(e),
    }
}

fn check_delay(v: &Value, fname: &str, what: &str) -> FwResult<i32> {
    let d = check_int(v, -1, fname)?;
    if !(0..=DELAY_LIMIT).contains(&i64::from(d)) {
        return fw_err(format!(
            "{what} of {d} must be in the range 0 .. {DELAY_LIMIT} microseconds"
        ));
    }
    Ok(d)
}

/// One step's table into `e` (on top of what `e` holds, as `:update` relies on).
fn fill_entry(v: &Value, e: &mut Entry, fname: &str) -> FwResult<()> {
    let Value::Table(t) = v else {
        return fw_err("All entries must be tables");
    };
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        match &k {
            Value::Integer(_) | Value::Number(_) => {
                let pin = check_int(&k, -2, fname)?;
                let level = check_int(&v, -1, fname)?;
                if pin < 0 || pin >= PINS as i32 {
                    return fw_err(format!(
                        "pin number {pin} must be in range 0 .. {}",
                        PINS - 1
                    ));
                }
                if level != 0 {
                    e.set |= 1 << pin;
                } else {
                    e.clr |= 1 << pin;
                }
            }
            Value::String(s) => match s.as_bytes().as_ref() {
                b"delay" => e.delay = check_delay(&v, fname, "delay")?,
                b"min" => e.min = check_delay(&v, fname, "delay minimum")?,
                b"max" => e.max = check_delay(&v, fname, "delay maximum")?,
                b"count" => e.count = check_int(&v, -1, fname)? as u32,
                b"loop" => e.jump = check_int(&v, -1, fname)? as u16,
                other => {
                    return fw_err(format!(
                        "Unrecognized key found: {}",
                        String::from_utf8_lossy(other)
                    ));
                }
            },
            other => {
                return fw_err(format!(
                    "bad argument #-2 to '{fname}' (string expected, got {})",
                    crate::lauxlib::typename(other)
                ));
            }
        }
    }
    if e.min != -1 || e.max != -1 {
        if e.min == -1 {
            e.min = 0;
        }
        if e.min > e.delay || e.max < e.delay {
            return fw_err(format!("Delay of {} must be between min and max", e.delay));
        }
    }
    Ok(())
}

/// `[number,] callback` from argument 2: the number (if there) and the callback.
fn number_then_callback(a: &Args) -> FwResult<(Option<i64>, Function)> {
    let (n, at) = if matches!(a.arg(2), Value::Integer(_) | Value::Number(_)) {
        (Some(a.check_integer(2)?), 3)
    } else {
        (None, 2)
    };
    match a.arg(at) {
        Value::Function(f) => Ok((n, f.clone())),
        _ => fw_err("missing callback"),
    }
}

/// `pulser:start([adjust,] callback)`.
fn start(rt: &Rc<Runtime>, db: &Rc<DeviceBoard>, a: &Args) -> FwResult<()> {
    let p = check(a)?;
    if active(rt).borrow().pulser.is_some() {
        return fw_err("pulse operation already in progress");
    }
    let (adjust, cb) = number_then_callback(a)?;
    {
        let mut st = p.0.borrow_mut();
        st.callback = Some(cb);
        for e in &mut st.entries {
            e.count_left = 0;
        }
        st.entry_pos = 0;
        st.active_pos = 0;
        st.steps = 0;
        st.stop_pos = None;
        st.next_adjust = adjust.unwrap_or(0) as i32;
        st.expected_end = now31(rt);
    }
    let a = active(rt);
    a.borrow_mut().pulser = Some(p.clone());
    timeout(rt, db);
    Ok(())
}

/// The timer's interrupt: take steps until one has a delay worth a timer, then arm it.
fn timeout(rt: &Rc<Runtime>, db: &Rc<DeviceBoard>) {
    let slot = active(rt);
    let Some(p) = slot.borrow().pulser.clone() else {
        return;
    };
    slot.borrow_mut().timer = None;
    let now = micros(rt) as u32;
    let mut untimed = 0;
    let delay = loop {
        let mut st = p.0.borrow_mut();
        st.active_pos = st.entry_pos;
        st.steps = st.steps.wrapping_add(1);
        let pos = st.entry_pos;
        if pos >= st.entries.len() {
            drop(st);
            finish(rt);
            return;
        }
        let e = st.entries[pos];
        drop(st);
        set_pins(db, &e);
        let mut st = p.0.borrow_mut();
        if matches!(st.stop_pos, Some(None)) || st.stop_pos == Some(Some(pos)) {
            drop(st);
            finish(rt);
            return;
        }
        st.entry_pos = next_pos(&mut st.entries[pos], pos);
        let (delay, offset) = step_delay(&mut st, &e, now);
        st.desired_end = st
            .desired_end
            .wrapping_add(delay as u32)
            .wrapping_add(offset as u32);
        st.expected_end = (micros(rt) as u32).wrapping_add(delay as u32);
        untimed += 1;
        if delay >= MIN_TIMED {
            break delay;
        }
        if untimed >= MAX_UNTIMED {
            break delay.max(1);
        }
    };
    let (r, d) = (rt.clone(), db.clone());
    let key = rt.arm_timer(
        Duration::from_micros(delay as u64),
        Box::new(move |_| {
            timeout(&r, &d);
            Ok(())
        }),
    );
    slot.borrow_mut().timer = Some(key);
}

/// The step after `pos`: the loop target while its count lasts, else the next one.
fn next_pos(e: &mut Entry, pos: usize) -> usize {
    if e.jump == 0 {
        return pos + 1;
    }
    if e.count_left == 0 {
        e.count_left = e.count.wrapping_add(1);
    }
    e.count_left = e.count_left.wrapping_sub(1);
    if e.count_left >= 1 {
        usize::from(e.jump) - 1
    } else {
        pos + 1
    }
}

/// The step's delay, stretched or shrunk within `min`..`max` by lateness and the pending
/// adjustment (what does not fit carries to the next adjustable step); and the lateness.
fn step_delay(st: &mut PulseState, e: &Entry, now: u32) -> (i32, i32) {
    if e.min == -1 {
        return (e.delay, 0);
    }
    let offset = std::mem::take(&mut st.next_adjust);
    let late = signed31(now.wrapping_sub(st.desired_end));
    let delay = e.delay.wrapping_sub(late).wrapping_add(offset);
    if delay < e.min {
        st.next_adjust = (e.delay - e.min).wrapping_add(offset);
        (e.min, late)
    } else if delay > e.max {
        st.next_adjust = (e.delay - e.max).wrapping_add(offset);
        (e.max, late)
    } else {
        (delay, late)
    }
}

/// The step's pins on the board: the set ones, then the cleared ones, as the firmware's
/// register writes order them.
fn set_pins(db: &DeviceBoard, e: &Entry) {
    for pin in 0..PINS as u8 {
        if e.set & (1 << pin) != 0 {
            db.write(pin, true);
        }
    }
    for pin in 0..PINS as u8 {
        if e.clr & (1 << pin) != 0 {
            db.write(pin, false);
        }
    }
}

/// The run is over: the LOW task calls the running pulser's callback with its state.
fn finish(rt: &Rc<Runtime>) {
    let r = rt.clone();
    rt.post_internal(
        Priority::Low,
        Box::new(move |lua| {
            let slot = active(&r);
            let Some(p) = slot.borrow_mut().pulser.take() else {
                return Ok(());
            };
            let args = state(&r, &p);
            let cb = p.0.borrow().callback.clone();
            match cb {
                Some(cb) => r.call_protected(lua, &cb, args),
                None => Ok(()),
            }
        }),
    );
}

/// `pulser:stop([position,] callback)`: true, or nothing when this pulser is not running.
fn stop(rt: &Runtime, a: &Args) -> FwResult<MultiValue> {
    let p = check(a)?;
    if !is_active(rt, &p) {
        return Ok(MultiValue::new());
    }
    let n = p.0.borrow().entries.len() as i64;
    let (pos, cb) = match a.arg(2) {
        Value::Integer(_) | Value::Number(_) => {
            let pos = a.check_integer(2)? as i32;
            if pos != -2 && (pos < 1 || i64::from(pos) > n) {
                return fw_err(format!("bad stop position: {pos} (valid range 1 - {n})"));
            }
            let (_, cb) = number_then_callback(a)?;
            (
                if pos == -2 {
                    None
                } else {
                    Some(pos as usize - 1)
                },
                cb,
            )
        }
        _ => (None, number_then_callback(a)?.1),
    };
    let mut st = p.0.borrow_mut();
    st.callback = Some(cb);
    st.stop_pos = Some(pos);
    Ok(MultiValue::from_iter([Value::Boolean(true)]))
}

/// `pulser:cancel()`: stops at once, no callback; the state, or nothing when not running.
fn cancel(rt: &Runtime, a: &Args) -> FwResult<MultiValue> {
    let p = check(a)?;
    if !is_active(rt, &p) {
        return Ok(MultiValue::new());
    }
    let slot = active(rt);
    if let Some(k) = slot.borrow_mut().timer.take() {
        rt.cancel_timer(k);
    }
    let s = state(rt, &p);
    slot.borrow_mut().pulser = None;
    Ok(s)
}

/// `pulser:adjust(offset)`: the offset for the next adjustable step; the state.
fn adjust(rt: &Runtime, a: &Args) -> FwResult<MultiValue> {
    let p = check(a)?;
    if !is_active(rt, &p) {
        return Ok(MultiValue::new());
    }
    let offset = a.check_integer(2)? as i32;
    p.0.borrow_mut().next_adjust = offset;
    Ok(state(rt, &p))
}

/// `pulser:update(entry, table)`: the step's table merged over what it had.
fn update(a: &Args) -> FwResult<()> {
    let p = check(a)?;
    let pos = a.check_integer(2)? as i32;
    let n = p.0.borrow().entries.len();
    if pos < 1 || pos as usize > n {
        return fw_err(format!("entry number must be in range 1 .. {n}"));
    }
    let mut e = p.0.borrow().entries[pos as usize - 1];
    fill_entry(a.arg(3), &mut e, "update")?;
    p.0.borrow_mut().entries[pos as usize - 1] = e;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_jumps_back_count_times_then_goes_on_and_rearms() {
        let mut e = Entry {
            jump: 1,
            count: 2,
            ..Entry::default()
        };
        let seq: Vec<usize> = (0..4).map(|_| next_pos(&mut e, 3)).collect();
        assert_eq!(seq, [0, 0, 4, 0]);
    }

    #[test]
    fn lateness_and_offsets_beyond_the_range_carry_to_the_next_step() {
        let e = Entry {
            delay: 1000,
            min: 500,
            max: 1500,
            ..Entry::default()
        };
        let mut st = PulseState {
            next_adjust: 900,
            ..Default::default()
        };
        assert_eq!(step_delay(&mut st, &e, 0), (1500, 0));
        assert_eq!(st.next_adjust, 400);
        st.desired_end = 1000;
        // 700 µs late with 400 to add: 1000 - 700 + 400 = 700, within the range.
        assert_eq!(step_delay(&mut st, &e, 1700), (700, 700));
        assert_eq!(st.next_adjust, 0);
        // A fixed step ignores both.
        st.next_adjust = 5;
        let fixed = Entry {
            delay: 10,
            ..Entry::default()
        };
        assert_eq!(step_delay(&mut st, &fixed, 99), (10, 0));
        assert_eq!(st.next_adjust, 5);
    }

    #[test]
    fn the_31_bit_clock_difference_is_signed() {
        assert_eq!(signed31(5u32.wrapping_sub(7)), -2);
        assert_eq!(signed31(0x3fff_ffff), 0x3fff_ffff);
    }
}
