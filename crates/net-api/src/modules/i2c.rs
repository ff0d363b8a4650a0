//! `i2c`: the ESP8266 firmware's bit-banged I2C master, on the virtual board's buses.
//!
//! `i2c.setup(id, sda, scl, speed)` picks the pins; every later call is one bus operation on the
//! board (`Board::i2c_start` .. `i2c_stop`), so the chips in the board file answer, each byte's
//! ACK comes from the chip, and every transfer is a trace line. Each byte takes its nine clocks of
//! device time at the bus speed, as the driver's busy loop does.
//!
//! Generations: 3.0 has the new driver (ten buses, `FAST`/`FASTPLUS`, the speed clamped to at
//! least 25 kHz and returned, `start` on an unconfigured bus an error); 1.5 and 2.2 have one bus
//! that always runs at 100 kHz and only `SLOW`. On the device, `stop`/`address`/`write`/`read` on
//! a bus never set up dereference a null pointer; here they talk to an empty bus (no ACK, 0xFF).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use board::{Mode, Pull};
use mlua::{Lua, MultiValue, Value};

use crate::config::Firmware;
use crate::devboard::DeviceBoard;
use crate::lauxlib::{Args, FwResult, bind, binding_name, fw_err, typename};
use crate::modules::module_table;
use crate::runtime::Runtime;

const SLOW: i64 = 100_000;
const FAST: i64 = 400_000;
const FASTPLUS: i64 = 1_000_000;
const TRANSMITTER: i64 = 0;
const RECEIVER: i64 = 1;
/// The new driver's lowest speed.
const MIN_SPEED: i64 = 25_000;
/// `NUM_GPIO` on the ESP8266.
const GPIO_PINS: u32 = 13;

/// The module's state: each bus's pins and speed once set up.
pub(crate) struct I2c {
    rt: Rc<Runtime>,
    db: Rc<DeviceBoard>,
    buses: RefCell<Vec<Option<(u8, u8, i64)>>>,
    new_driver: bool,
}

/// This boot's I2C master, shared by `i2c` and the chip modules (`bme280`) that drive the
/// bus through the firmware's platform layer.
pub(crate) fn master(rt: &Rc<Runtime>) -> mlua::Result<Rc<I2c>> {
    let slot = rt.state(|_| RefCell::new(None::<Rc<I2c>>));
    if let Some(m) = slot.borrow().clone() {
        return Ok(m);
    }
    let db = DeviceBoard::get(rt).map_err(mlua::Error::runtime)?;
    let new_driver = rt.cfg.firmware >= Firmware::V3_0;
    let m = Rc::new(I2c {
        rt: rt.clone(),
        db,
        buses: RefCell::new(vec![None; if new_driver { 10 } else { 1 }]),
        new_driver,
    });
    *slot.borrow_mut() = Some(m.clone());
    Ok(m)
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let st = master(rt)?;
    let new_driver = st.new_driver;
    let with = |f: fn(&I2c, &Lua, &Args) -> FwResult<Value>| {
        let s = st.clone();
        bind(lua, move |lua, a| f(&s, lua, &a))
    };
    let t = module_table(
        lua,
        vec![
            ("setup", with(setup)?),
            ("start", with(start)?),
            ("stop", with(stop)?),
            ("address", with(address)?),
            ("write", with(write)?),
            ("read", {
                let s = st.clone();
                bind(lua, move |lua, a| read(&s, lua, &a))?
            }),
        ],
    )?;
    if new_driver {
        t.set("FASTPLUS", FASTPLUS)?;
        t.set("FAST", FAST)?;
    }
    t.set("SLOW", SLOW)?;
    t.set("TRANSMITTER", TRANSMITTER)?;
    t.set("RECEIVER", RECEIVER)?;
    lua.globals().set("i2c", t)
}

impl I2c {
    /// `MOD_CHECK_ID(i2c, id)`.
    fn id(&self, a: &Args) -> FwResult<usize> {
        let id = a.check_integer(1)? as u32;
        if (id as usize) < self.buses.borrow().len() {
            Ok(id as usize)
        } else {
            fw_err(format!("i2c {} does not exist", id as i32))
        }
    }

    /// The bus's pins and speed; an unconfigured bus is pins nothing sits on.
    fn bus(&self, id: usize) -> (u8, u8, i64) {
        self.buses.borrow()[id].unwrap_or((u8::MAX, u8::MAX, SLOW))
    }

    /// A byte's nine clocks at the bus speed.
    fn clock_byte(&self, speed: i64) {
        let us = (9_000_000 + speed - 1) / speed.max(1);
        self.rt
            .pass_time_within_limit(Duration::from_micros(us as u64));
    }

    fn now(&self) -> board::Micros {
        self.db.now()
    }

    /// The driver makes both pins open-drain outputs, released high, with the pull-ups on.
    /// Whether either line stays low.
    fn release_pins(&self, sda: u8, scl: u8) -> bool {
        let t = self.now();
        {
            let mut b = self.db.board.borrow_mut();
            for p in [sda, scl] {
                b.set_mode(p, Mode::OpenDrain, Pull::Up, t);
                b.write(p, true, t);
            }
        }
        self.db.settle();
        let b = self.db.board.borrow();
        b.read(scl, t) == 0 || b.read(sda, t) == 0
    }

    /// The old driver's `platform_i2c_setup(id, sda, scl, SLOW)`, as a C module that takes its
    /// own pins calls it (1.5's `bme280.init`): a pin beyond the GPIOs leaves the bus as it was.
    pub(crate) fn platform_setup(&self, id: usize, sda: u8, scl: u8) {
        if u32::from(sda) >= GPIO_PINS || u32::from(scl) >= GPIO_PINS {
            return;
        }
        self.release_pins(sda, scl);
        if let Some(bus) = self.buses.borrow_mut().get_mut(id) {
            *bus = Some((sda, scl, SLOW));
        }
    }

    /// `platform_i2c_send_start`.
    pub(crate) fn start(&self, id: usize) {
        let (sda, scl, _) = self.bus(id);
        let t = self.now();
        self.db.board.borrow_mut().i2c_start(sda, scl, t);
        self.db.settle();
    }

    /// `platform_i2c_send_stop`.
    pub(crate) fn stop(&self, id: usize) {
        let (sda, scl, _) = self.bus(id);
        let t = self.now();
        self.db.board.borrow_mut().i2c_stop(sda, scl, t);
        self.db.settle();
    }

    /// `platform_i2c_send_address`: the ACK.
    pub(crate) fn address(&self, id: usize, addr: u8, read: bool) -> bool {
        let (sda, scl, speed) = self.bus(id);
        self.clock_byte(speed);
        let t = self.now();
        let ack = self
            .db
            .board
            .borrow_mut()
            .i2c_address(sda, scl, addr, read, t);
        self.db.settle();
        ack
    }

    /// `platform_i2c_recv_byte`.
    pub(crate) fn recv(&self, id: usize, ack: bool) -> u8 {
        let (sda, scl, speed) = self.bus(id);
        self.clock_byte(speed);
        let t = self.now();
        let b = self.db.board.borrow_mut().i2c_read(sda, scl, ack, t);
        self.db.settle();
        b
    }

    /// `platform_i2c_send_byte`: the ACK.
    pub(crate) fn send(&self, id: usize, byte: u8) -> bool {
        let (sda, scl, speed) = self.bus(id);
        self.clock_byte(speed);
        let t = self.now();
        let ack = self.db.board.borrow_mut().i2c_write(sda, scl, byte, t);
        self.db.settle();
        ack
    }
}

fn gpio_id(a: &Args, n: usize) -> FwResult<u8> {
    let pin = a.check_integer(n)? as u32;
    if pin < GPIO_PINS {
        Ok(pin as u8)
    } else {
        fw_err(format!("gpio {} does not exist", pin as i32))
    }
}

/// `i2c.setup(id, sda, scl, speed)`: the speed the bus runs at.
fn setup(s: &I2c, _: &Lua, a: &Args) -> FwResult<Value> {
    // luaL_checkinteger on all three before MOD_CHECK_ID on each.
    for n in 1..=3 {
        a.check_integer(n)?;
    }
    let id = s.id(a)?;
    let (sda, scl) = (gpio_id(a, 2)?, gpio_id(a, 3)?);
    if sda == 0 {
        return fw_err(if s.new_driver {
            "i2c SDA on D0 is not supported"
        } else {
            "no i2c for D0"
        });
    }
    let speed = a.check_integer(4)? as i32;
    if speed <= 0 {
        return fw_err("wrong arg range");
    }
    let speed = if s.new_driver {
        i64::from(speed).max(MIN_SPEED)
    } else {
        SLOW
    };
    let stuck = s.release_pins(sda, scl);
    if s.new_driver && stuck {
        return fw_err(format!("failed to initialize i2c {id}"));
    }
    s.buses.borrow_mut()[id] = Some((sda, scl, speed));
    Ok(Value::Integer(speed))
}

/// `i2c.start(id)`.
fn start(s: &I2c, _: &Lua, a: &Args) -> FwResult<Value> {
    let id = s.id(a)?;
    if s.new_driver && s.buses.borrow()[id].is_none() {
        return fw_err(format!("i2c {id} is not configured"));
    }
    s.start(id);
    Ok(Value::Nil)
}

/// `i2c.stop(id)`.
fn stop(s: &I2c, _: &Lua, a: &Args) -> FwResult<Value> {
    let id = s.id(a)?;
    s.stop(id);
    Ok(Value::Nil)
}

/// `i2c.address(id, address, direction)`: true when a chip acknowledged.
fn address(s: &I2c, _: &Lua, a: &Args) -> FwResult<Value> {
    a.check_integer(1)?;
    let addr = a.check_integer(2)? as i32;
    let dir = a.check_integer(3)? as i32;
    let id = s.id(a)?;
    if !(0..=127).contains(&addr) {
        return fw_err("wrong arg range");
    }
    let ack = s.address(id, addr as u8, i64::from(dir) != TRANSMITTER);
    Ok(Value::Boolean(ack))
}

/// `i2c.write(id, data...)`: numbers, tables of numbers, strings; the count of bytes the chip
/// acknowledged, stopping at the first it did not.
fn write(s: &I2c, lua: &Lua, a: &Args) -> FwResult<Value> {
    let id = s.id(a)?;
    if a.len() < 2 {
        return fw_err("wrong arg type");
    }
    let mut wrote = 0i64;
    for n in 2..=a.len() {
        match a.arg(n) {
            Value::Integer(_) | Value::Number(_) => {
                let v = a.check_integer(n)? as i32;
                if !(0..=255).contains(&v) {
                    return fw_err("wrong arg range");
                }
                if !s.send(id, v as u8) {
                    break;
                }
                wrote += 1;
            }
            Value::Table(t) => {
                let len = t.raw_len();
                let mut i = 0;
                while i < len {
                    let v = t.raw_get::<Value>(i + 1)?;
                    let v = match Args(vec![v.clone()].into()).check_integer(1) {
                        Ok(v) => v as i32,
                        Err(_) => {
                            // luaL_checkinteger(L, -1) on the table's element.
                            return fw_err(format!(
                                "bad argument #-1 to '{}' (number expected, got {})",
                                binding_name(lua),
                                typename(&v)
                            ));
                        }
                    };
                    if !(0..=255).contains(&v) {
                        return fw_err("wrong arg range");
                    }
                    if !s.send(id, v as u8) {
                        break;
                    }
                    i += 1;
                }
                wrote += i as i64;
                if i < len {
                    break;
                }
            }
            _ => {
                let bytes = a.check_bytes(lua, n)?;
                let bytes = bytes.as_bytes();
                let mut i = 0;
                while i < bytes.len() && s.send(id, bytes[i]) {
                    i += 1;
                }
                wrote += i as i64;
                if i < bytes.len() {
                    break;
                }
            }
        }
    }
    Ok(Value::Integer(wrote))
}

/// `i2c.read(id, n)`: `n` bytes, each acknowledged but the last; no value at all for 0.
fn read(s: &I2c, lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    a.check_integer(1)?;
    let size = a.check_integer(2)? as u32;
    let id = s.id(a)?;
    if size == 0 {
        return Ok(MultiValue::new());
    }
    // The device's luaL_Buffer would run out of heap long before.
    if size > 1 << 20 {
        return fw_err("not enough memory");
    }
    let out: Vec<u8> = (0..size).map(|i| s.recv(id, i < size - 1)).collect();
    Ok(MultiValue::from_vec(vec![Value::String(
        lua.create_string(&out)?,
    )]))
}
