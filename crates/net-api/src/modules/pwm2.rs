//! `pwm2` (firmware 3.0, ESP8266): PWM from one hardware timer, each pin with its own frequency
//! and resolution, put on the virtual board's pins while started.
//!
//! As the firmware: pins are set up (and released) only while stopped; a pin's frequency is
//! `freq / fractions` Hz (`setup_pin_hz`) or one period every `sec / fractions` s
//! (`setup_pin_sec`); the timer's period is the greatest common divisor of the pins' steps in CPU
//! ticks (80 MHz), and `get_timer_data` / `get_pin_data` report those figures. The firmware's
//! own quirks stay: pin numbers 1..13 pass its check, and `release_pin` releases pin 2 whatever
//! it is given.

use std::cell::RefCell;
use std::rc::Rc;

use board::{Mode, Pull, Pwm};
use mlua::{Lua, MultiValue, Value};

use crate::devboard::DeviceBoard;
use crate::lauxlib::{Args, FwResult, arg_check, bind, fw_err, to_number};
use crate::modules::gpio::PINS;
use crate::modules::module_table;
use crate::runtime::Runtime;

/// `GPIO_PIN_NUM`, which the firmware's pin checks allow as a pin number.
const PIN_NUM: i64 = 13;
/// CPU ticks per second at 80 MHz.
const CPU_HZ: u64 = 80_000_000;
/// CPU ticks per TIMER1 tick at 80 MHz.
const TIMER_DIVISOR: u64 = 16;

#[derive(Default, Clone, Copy)]
struct PinSetup {
    duty: u32,
    resolution: u32,
    divisable: u32,
    divisor: u32,
    cpu_ticks: u32,
    multiplier: u32,
}

#[derive(Default)]
struct State {
    started: bool,
    timer_cpu_ticks: u32,
    pins: [PinSetup; 14],
}

impl State {
    fn is_setup(&self, pin: usize) -> bool {
        self.pins[pin].resolution > 0
    }

    /// `reCalculateCommonToAllPinsData`: the timer's period and each pin's multiplier.
    fn recalc(&mut self) {
        let mut gcd = 0u32;
        for p in 1..PIN_NUM as usize {
            if self.is_setup(p) {
                let t = self.pins[p].cpu_ticks;
                gcd = if gcd == 0 { t } else { gcd_of(t, gcd) };
            }
        }
        self.timer_cpu_ticks = gcd;
        for p in 1..PIN_NUM as usize {
            if self.is_setup(p) {
                self.pins[p].multiplier = self.pins[p].cpu_ticks.checked_div(gcd).unwrap_or(0);
            }
        }
    }

    /// The wave of a set-up pin.
    fn wave(&self, pin: usize) -> Pwm {
        let s = self.pins[pin];
        // One period is `resolution` steps of `cpu_ticks` each.
        let period_ns =
            u64::from(s.cpu_ticks) * u64::from(s.resolution) * 1000 / (CPU_HZ / 1_000_000);
        let period = (period_ns / 1000).max(1);
        Pwm {
            clock: (1_000_000 / period) as u32,
            duty: s.duty,
            depth: s.resolution,
            period: Some(period),
        }
    }
}

fn gcd_of(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `lua_tointeger`: 0 for anything that is not a number.
fn to_int(a: &Args, n: usize) -> i64 {
    to_number(a.arg(n)).map_or(0, |x| x as i64)
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let db = DeviceBoard::get(rt).map_err(mlua::Error::runtime)?;
    let st: Rc<RefCell<State>> = Rc::default();
    let f = |op: fn(&DeviceBoard, &RefCell<State>, &Args) -> FwResult<MultiValue>| {
        let (d, s) = (db.clone(), st.clone());
        bind(lua, move |_, a| op(&d, &s, &a))
    };
    let t = module_table(
        lua,
        vec![
            ("setup_pin_hz", f(|d, s, a| setup(d, s, a, true))?),
            ("setup_pin_sec", f(|d, s, a| setup(d, s, a, false))?),
            ("release_pin", f(release_pin)?),
            ("start", f(start)?),
            ("stop", f(stop)?),
            ("set_duty", f(set_duty)?),
            ("get_timer_data", f(get_timer_data)?),
            ("get_pin_data", f(get_pin_data)?),
        ],
    )?;
    lua.globals().set("pwm2", t)
}

fn ints(v: impl IntoIterator<Item = i64>) -> MultiValue {
    v.into_iter().map(Value::Integer).collect()
}

fn setup(db: &DeviceBoard, st: &RefCell<State>, a: &Args, hz: bool) -> FwResult<MultiValue> {
    if st.borrow().started {
        return fw_err("pwm2 : already started, stop it before setting up pins.");
    }
    let (pin, freq, resolution, duty) = (to_int(a, 1), to_int(a, 2), to_int(a, 3), to_int(a, 4));
    let fractions = a.opt_integer(5, 1)?;
    arg_check(pin > 0 && pin <= PIN_NUM, 1, "invalid pin number")?;
    arg_check(freq > 0, 2, "invalid frequency")?;
    arg_check(resolution > 0, 3, "invalid frequency resolution")?;
    arg_check(duty >= 0 && duty <= resolution, 4, "invalid duty")?;
    arg_check(fractions > 0, 5, "invalid frequency fractions")?;
    let (divisable, divisor) = if hz {
        (fractions, freq)
    } else {
        (freq, fractions)
    };
    let steps = (divisor as u64).saturating_mul(resolution as u64);
    let ticks = (CPU_HZ / steps).saturating_mul(divisable as u64);
    let mut s = st.borrow_mut();
    s.pins[pin as usize] = PinSetup {
        duty: duty as u32,
        resolution: resolution as u32,
        divisable: divisable as u32,
        divisor: divisor as u32,
        cpu_ticks: ticks as u32,
        multiplier: 0,
    };
    s.recalc();
    let _ = db;
    Ok(MultiValue::new())
}

/// The pins an argument list names, until the first nil (`luaL_optinteger(L, n, -1)`).
fn pin_args(a: &Args, step: usize) -> FwResult<Vec<(usize, i64)>> {
    let mut out = Vec::new();
    let mut pos = 1;
    loop {
        let pin = a.opt_integer(pos, -1)?;
        if pin == -1 {
            return Ok(out);
        }
        arg_check(pin > 0 && pin <= PIN_NUM, pos, "invalid pin number")?;
        out.push((pos, pin));
        pos += step;
    }
}

fn set_duty(db: &DeviceBoard, st: &RefCell<State>, a: &Args) -> FwResult<MultiValue> {
    let mut pos = 1;
    loop {
        let pin = a.opt_integer(pos, -1)?;
        if pin == -1 {
            break;
        }
        arg_check(pin > 0 && pin <= PIN_NUM, pos, "invalid pin number")?;
        pos += 1;
        let duty = a.opt_integer(pos, -1)?;
        let resolution = st.borrow().pins[pin as usize].resolution;
        arg_check(
            duty >= 0 && duty <= i64::from(resolution),
            pos,
            "invalid duty",
        )?;
        if !st.borrow().is_setup(pin as usize) {
            return fw_err(format!("pwm2 : pin={pin} is not setup yet"));
        }
        st.borrow_mut().pins[pin as usize].duty = duty as u32;
        pos += 1;
        let s = st.borrow();
        if s.started && (pin as u32) < PINS {
            let t = db.now();
            db.board
                .borrow_mut()
                .set_pwm(pin as u8, Some(s.wave(pin as usize)), t);
            db.flush();
        }
    }
    Ok(MultiValue::new())
}

fn release_pin(_: &DeviceBoard, st: &RefCell<State>, a: &Args) -> FwResult<MultiValue> {
    if st.borrow().started {
        return fw_err("pwm2 : pwm is started, stop it first.");
    }
    for _ in pin_args(a, 1)? {
        // The firmware passes 2, not the pin it checked.
        st.borrow_mut().pins[2].resolution = 0;
    }
    Ok(MultiValue::new())
}

fn start(db: &DeviceBoard, st: &RefCell<State>, _: &Args) -> FwResult<MultiValue> {
    let mut s = st.borrow_mut();
    if !s.started {
        s.started = true;
        let t = db.now();
        let mut b = db.board.borrow_mut();
        for p in (1..PINS as usize).filter(|p| s.is_setup(*p)) {
            b.set_mode(p as u8, Mode::Output, Pull::Up, t);
            b.set_pwm(p as u8, Some(s.wave(p)), t);
        }
        drop(b);
        db.flush();
    }
    Ok(MultiValue::from_iter([Value::Boolean(true)]))
}

/// `stop()`: the pins stop being outputs (their pull-ups stay on).
fn stop(db: &DeviceBoard, st: &RefCell<State>, _: &Args) -> FwResult<MultiValue> {
    let mut s = st.borrow_mut();
    if s.started {
        s.started = false;
        let t = db.now();
        let mut b = db.board.borrow_mut();
        for p in (1..PINS as usize).filter(|p| s.is_setup(*p)) {
            b.set_mode(p as u8, Mode::Input, Pull::Up, t);
        }
        drop(b);
        db.flush();
    }
    Ok(MultiValue::new())
}

fn get_timer_data(_: &DeviceBoard, st: &RefCell<State>, _: &Args) -> FwResult<MultiValue> {
    let s = st.borrow();
    let mut out = MultiValue::new();
    out.push_back(Value::Boolean(s.started));
    out.push_back(Value::Integer(i64::from(s.timer_cpu_ticks)));
    out.push_back(Value::Integer(
        (u64::from(s.timer_cpu_ticks) / TIMER_DIVISOR) as i64,
    ));
    Ok(out)
}

fn get_pin_data(_: &DeviceBoard, st: &RefCell<State>, a: &Args) -> FwResult<MultiValue> {
    let pin = i64::from(a.check_integer(1)? as u8);
    arg_check(pin > 0 && pin <= PIN_NUM, 1, "invalid pin number")?;
    let s = st.borrow();
    let p = s.pins[pin as usize];
    Ok(ints([
        i64::from(s.is_setup(pin as usize)),
        i64::from(p.duty),
        i64::from(p.resolution),
        i64::from(p.divisable),
        i64::from(p.divisor),
        i64::from(p.cpu_ticks),
        i64::from(p.multiplier),
    ]))
}
