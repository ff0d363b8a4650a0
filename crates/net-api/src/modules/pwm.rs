//! `pwm`: the ESP8266's software PWM, its waves put on the virtual board's pins.
//!
//! As the SDK driver has it: at most six channels, one frequency shared by all of them (1..1000
//! Hz; a new clock retunes every channel), duty 0..1023. `setup` leaves the output at duty 0
//! until `start`; `stop` outputs 0 but keeps the duty `getduty` reports; `close` frees the
//! channel. Values pass through the driver's C integer types, so out-of-range inputs come back
//! as the board returns them (a clock of 70000 is a `uint16` 4464, then clamped to 1000).

use std::cell::RefCell;
use std::rc::Rc;

use board::Pwm;
use mlua::Lua;

use crate::devboard::DeviceBoard;
use crate::lauxlib::{Args, FwResult, bind, fw_err};
use crate::modules::gpio::PINS;
use crate::modules::module_table;
use crate::runtime::Runtime;

/// `PWM_CHANNEL`: the driver's channel slots.
const CHANNELS: usize = 6;
/// `PWM_DEPTH`.
const DEPTH: u32 = 1023;
/// `PWM_FREQ_MAX`.
const FREQ_MAX: u32 = 1000;

/// The driver's state: the shared frequency, and per channel its pin, the duty it outputs and
/// the duty the module remembers (`pwms_duty`).
struct Channels {
    freq: u32,
    slots: Vec<Channel>,
}

#[derive(Clone, Copy)]
struct Channel {
    pin: u8,
    out: u32,
    duty: u32,
}

fn channels(rt: &Runtime) -> Rc<RefCell<Channels>> {
    rt.state(|_| {
        RefCell::new(Channels {
            freq: 500, // pwm_init(500)
            slots: Vec::new(),
        })
    })
}

/// `pwm_set_freq`: the `uint16_t` cast, then the clamp.
fn driver_freq(f: i64) -> u32 {
    u32::from(f as u16).clamp(1, FREQ_MAX)
}

/// `pwm_set_duty(DUTY(d))`: the macro's unsigned arithmetic, the `uint16_t` cast, the clamp.
fn driver_duty(d: i64) -> u32 {
    let scaled = (d as u32).wrapping_mul(DEPTH) / DEPTH;
    u32::from(scaled as u16).min(DEPTH)
}

/// `MOD_CHECK_ID(pwm, id)`: pins 1..12.
fn check_id(a: &Args) -> FwResult<u8> {
    let id = a.check_integer(1)? as u32;
    if id == 0 || id >= PINS {
        return fw_err(format!("pwm {} does not exist", id as i32));
    }
    Ok(id as u8)
}

impl Channels {
    fn find(&self, pin: u8) -> Option<usize> {
        self.slots.iter().position(|c| c.pin == pin)
    }

    /// Puts every channel's wave on the board (the frequency is shared).
    fn publish(&self, db: &DeviceBoard) {
        let t = db.now();
        let mut b = db.board.borrow_mut();
        for c in &self.slots {
            let w = Pwm {
                clock: self.freq,
                duty: c.out,
                depth: DEPTH,
                period: None,
            };
            b.set_pwm(c.pin, Some(w), t);
        }
        drop(b);
        db.flush();
    }
}

/// Frees the pin's channel, if it has one (`gpio.mode` does this before reconfiguring a pin).
pub(crate) fn release(rt: &Rc<Runtime>, pin: u8) {
    let ch = channels(rt);
    let Some(i) = ch.borrow().find(pin) else {
        return;
    };
    ch.borrow_mut().slots.remove(i);
    if let Ok(db) = DeviceBoard::get(rt) {
        let t = db.now();
        db.board.borrow_mut().set_pwm(pin, None, t);
        db.flush();
    }
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let db = DeviceBoard::get(rt).map_err(mlua::Error::runtime)?;
    let ch = channels(rt);
    let f = |op: fn(&Rc<Runtime>, &DeviceBoard, &RefCell<Channels>, &Args) -> FwResult<i64>| {
        let (r, d, c) = (rt.clone(), db.clone(), ch.clone());
        bind(lua, move |_, a| op(&r, &d, &c, &a))
    };
    let unit = |op: fn(&Rc<Runtime>, &DeviceBoard, &RefCell<Channels>, &Args) -> FwResult<()>| {
        let (r, d, c) = (rt.clone(), db.clone(), ch.clone());
        bind(lua, move |_, a| op(&r, &d, &c, &a))
    };
    let t = module_table(
        lua,
        vec![
            ("setup", f(setup)?),
            ("close", unit(close)?),
            ("start", unit(start)?),
            ("stop", unit(stop)?),
            ("setclock", f(setclock)?),
            ("getclock", f(getclock)?),
            ("setduty", f(setduty)?),
            ("getduty", f(getduty)?),
        ],
    )?;
    lua.globals().set("pwm", t)
}

/// `pwm.setup(pin, clock, duty)`: the clock the driver took.
fn setup(rt: &Rc<Runtime>, db: &DeviceBoard, ch: &RefCell<Channels>, a: &Args) -> FwResult<i64> {
    if a.check_integer(1)? == 0 {
        return fw_err("no pwm for D0");
    }
    let pin = check_id(a)?;
    let freq = a.check_integer(2)?;
    if freq as i32 <= 0 {
        return fw_err("wrong arg range");
    }
    let duty = a.check_integer(3)? as u32;
    if duty > DEPTH {
        return fw_err("wrong arg range");
    }
    // platform_pwm_setup makes the pin a plain output first, closing its channel.
    release(rt, pin);
    let mut c = ch.borrow_mut();
    if c.slots.len() >= CHANNELS {
        return fw_err("too many pwms.");
    }
    c.slots.push(Channel { pin, out: 0, duty });
    c.freq = driver_freq(freq);
    c.publish(db);
    Ok(i64::from(c.freq))
}

fn close(_: &Rc<Runtime>, db: &DeviceBoard, ch: &RefCell<Channels>, a: &Args) -> FwResult<()> {
    let pin = check_id(a)?;
    let i = ch.borrow().find(pin);
    if let Some(i) = i {
        ch.borrow_mut().slots.remove(i);
        let t = db.now();
        db.board.borrow_mut().set_pwm(pin, None, t);
        db.flush();
    }
    Ok(())
}

fn start(_: &Rc<Runtime>, db: &DeviceBoard, ch: &RefCell<Channels>, a: &Args) -> FwResult<()> {
    let pin = check_id(a)?;
    let mut c = ch.borrow_mut();
    let Some(i) = c.find(pin) else {
        return fw_err("Unable to start PWM output");
    };
    c.slots[i].out = driver_duty(i64::from(c.slots[i].duty));
    c.publish(db);
    Ok(())
}

fn stop(_: &Rc<Runtime>, db: &DeviceBoard, ch: &RefCell<Channels>, a: &Args) -> FwResult<()> {
    let pin = check_id(a)?;
    let mut c = ch.borrow_mut();
    if let Some(i) = c.find(pin) {
        c.slots[i].out = 0;
        c.publish(db);
    }
    Ok(())
}

fn setclock(_: &Rc<Runtime>, db: &DeviceBoard, ch: &RefCell<Channels>, a: &Args) -> FwResult<i64> {
    let pin = check_id(a)?;
    let clk = a.check_integer(2)?;
    if clk as i32 <= 0 {
        return fw_err("wrong arg range");
    }
    let mut c = ch.borrow_mut();
    if c.find(pin).is_none() {
        return Ok(0);
    }
    c.freq = driver_freq(clk);
    c.publish(db);
    Ok(i64::from(c.freq))
}

fn getclock(_: &Rc<Runtime>, _: &DeviceBoard, ch: &RefCell<Channels>, a: &Args) -> FwResult<i64> {
    let pin = check_id(a)?;
    let c = ch.borrow();
    Ok(c.find(pin).map_or(0, |_| i64::from(c.freq)))
}

fn setduty(_: &Rc<Runtime>, db: &DeviceBoard, ch: &RefCell<Channels>, a: &Args) -> FwResult<i64> {
    let pin = check_id(a)?;
    let duty = a.check_integer(2)?;
    if duty as i32 > DEPTH as i32 {
        return fw_err("wrong arg range");
    }
    let mut c = ch.borrow_mut();
    let Some(i) = c.find(pin) else {
        return Ok(0);
    };
    let d = driver_duty(duty);
    c.slots[i].out = d;
    c.slots[i].duty = d;
    c.publish(db);
    Ok(i64::from(d))
}

fn getduty(_: &Rc<Runtime>, _: &DeviceBoard, ch: &RefCell<Channels>, a: &Args) -> FwResult<i64> {
    let pin = check_id(a)?;
    let c = ch.borrow();
    Ok(c.find(pin).map_or(0, |i| i64::from(c.slots[i].duty)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_pass_through_the_drivers_c_types() {
        assert_eq!(driver_freq(70_000), 1000);
        assert_eq!(driver_freq(65_536), 1);
        assert_eq!(driver_freq(100), 100);
        assert_eq!(driver_duty(-1), 1023);
        assert_eq!(driver_duty(512), 512);
    }
}
