//! `tcs34725`: the firmware's C module for the TCS34725 colour sensor (2.2 on, ESP8266), talking
//! to the board's `tcs34725` part over I2C bus 0 with the firmware's transfers: every register
//! access is its own start/command/stop, then a start and a one-byte read.
//!
//! `setup` checks the id (0x44); `enable(fn)` powers the chip on and, 30 ms later, enables the
//! ADC, sets 2.4 ms integration and 60× gain and calls `fn`; `raw` reads clear, red, green, blue;
//! `setGain`, `setIntegrationTime`, `disable` as in the firmware.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use mlua::{Function, Lua, MultiValue, Value};

use crate::lauxlib::{Args, FwResult, bind, fw_err};
use crate::modules::i2c::{I2c, master};
use crate::modules::module_table;
use crate::runtime::Runtime;

const ADDRESS: u8 = 0x29;
const COMMAND: u8 = 0x80;
const ENABLE: u8 = 0x00;
const PON: u8 = 0x01;
const AEN: u8 = 0x02;
const ATIME: u8 = 0x01;
const CONTROL: u8 = 0x0f;
const ID: u8 = 0x12;
const CDATAL: u8 = 0x14;
/// The firmware's wait between power-on and enabling the ADC, in ms.
const EN_DELAY: u64 = 30;

struct Tcs {
    rt: Rc<Runtime>,
    bus: Rc<I2c>,
    initialised: Cell<bool>,
    callback: RefCell<Option<Function>>,
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let t = Rc::new(Tcs {
        rt: rt.clone(),
        bus: master(rt)?,
        initialised: Cell::new(false),
        callback: RefCell::new(None),
    });
    let with = |f: fn(&Rc<Tcs>, &Args) -> FwResult<MultiValue>| {
        let t = t.clone();
        bind(lua, move |_, a| f(&t, &a))
    };
    let m = module_table(
        lua,
        vec![
            ("setup", with(setup)?),
            ("enable", with(enable)?),
            ("disable", with(disable)?),
            ("raw", with(raw)?),
            ("setGain", with(set_gain)?),
            ("setIntegrationTime", with(set_integration_time)?),
        ],
    )?;
    lua.globals().set("tcs34725", m)
}

impl Tcs {
    fn write8(&self, reg: u8, v: u8) {
        let b = &self.bus;
        b.start(0);
        b.address(0, ADDRESS, false);
        b.send(0, COMMAND | reg);
        b.send(0, v);
        b.stop(0);
    }

    fn read8(&self, reg: u8) -> u8 {
        let b = &self.bus;
        b.start(0);
        b.address(0, ADDRESS, false);
        b.send(0, COMMAND | reg);
        b.stop(0);
        b.start(0);
        b.address(0, ADDRESS, true);
        let v = b.recv(0, false);
        b.stop(0);
        v
    }

    fn read16(&self, reg: u8) -> i64 {
        let lo = self.read8(reg);
        let hi = self.read8(reg + 1);
        i64::from(hi) << 8 | i64::from(lo)
    }

    fn integration_time(&self, it: u8) -> FwResult<()> {
        if !self.initialised.get() {
            check_id(self)?;
        }
        self.write8(ATIME, it);
        Ok(())
    }

    fn gain(&self, g: u8) -> FwResult<()> {
        if !self.initialised.get() {
            return fw_err("TCS34725 not initialised.");
        }
        self.write8(CONTROL, g);
        Ok(())
    }
}

fn check_id(t: &Tcs) -> FwResult<()> {
    if t.read8(ID) != 0x44 {
        return fw_err("No TCS34725 found.");
    }
    Ok(())
}

fn setup(t: &Rc<Tcs>, _: &Args) -> FwResult<MultiValue> {
    check_id(t)?;
    Ok(MultiValue::from_iter([Value::Integer(1)]))
}

fn enable(t: &Rc<Tcs>, a: &Args) -> FwResult<MultiValue> {
    let Value::Function(f) = a.get(1) else {
        return fw_err("Enable argument must be a function.");
    };
    *t.callback.borrow_mut() = Some(f);
    t.write8(ENABLE, PON);
    let me = Rc::downgrade(t);
    t.rt.arm_timer(
        Duration::from_millis(EN_DELAY),
        Box::new(move |lua| {
            let Some(t) = me.upgrade() else {
                return Ok(());
            };
            t.write8(ENABLE, PON | AEN);
            t.initialised.set(true);
            // The firmware ignores these results here, as it does an error they raise.
            let _ = t.integration_time(0xff);
            let _ = t.gain(0x03);
            let cb = t.callback.borrow_mut().take();
            if let Some(cb) = cb {
                t.rt.call_protected(lua, &cb, ())?;
            }
            Ok(())
        }),
    );
    Ok(MultiValue::new())
}

fn disable(t: &Rc<Tcs>, _: &Args) -> FwResult<MultiValue> {
    let reg = t.read8(ENABLE);
    t.write8(ENABLE, reg & !(PON | AEN));
    t.initialised.set(false);
    Ok(MultiValue::new())
}

fn raw(t: &Rc<Tcs>, _: &Args) -> FwResult<MultiValue> {
    if !t.initialised.get() {
        return fw_err("TCS34725 not initialised.");
    }
    let v: Vec<Value> = (0..4)
        .map(|i| Value::Integer(t.read16(CDATAL + 2 * i)))
        .collect();
    Ok(v.into_iter().collect())
}

fn set_gain(t: &Rc<Tcs>, a: &Args) -> FwResult<MultiValue> {
    let g = a.check_integer(1)?;
    t.gain(g as u8)?;
    Ok(MultiValue::new())
}

fn set_integration_time(t: &Rc<Tcs>, a: &Args) -> FwResult<MultiValue> {
    let it = a.check_integer(1)?;
    t.integration_time(it as u8)?;
    Ok(MultiValue::new())
}
