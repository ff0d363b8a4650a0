//! `i2c` under `--target esp32` (dev-esp32 `components/modules/i2c.c`, `i2c_hw_master.c`): the
//! software interface `i2c.SW` acts at once, as on the ESP8266; the hardware interfaces `i2c.HW0`
//! and `i2c.HW1` queue start/address/write/read/stop and run the queue on the board's bus at
//! `i2c.transfer(id[, fn][, to_ms])`, which returns (or passes `fn`) the bytes read (or nil) and
//! whether every checked ACK came. An address or byte not acknowledged with its ACK check on
//! ends the transfer there, as the IDF driver does. The slave forms (`i2c.slave`) are absent.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use board::{Mode, Pull};
use mlua::{Function, Lua, MultiValue, Value};

use crate::devboard::DeviceBoard;
use crate::lauxlib::{Args, FwResult, arg_check, bind, fw_err, typename};
use crate::modules::module_table;
use crate::runtime::{Priority, Runtime};

const SW: i64 = 0;
const SLOW: i64 = 100_000;
/// The IDF's default bus timeout in APB cycles, which `setup` multiplies by the stretch factor.
const TIMEOUT_CYCLES: i64 = 32_000;
const ESP32_PINS: u32 = 40;

#[derive(Clone, Debug)]
enum Op {
    Start,
    Stop,
    Byte(u8, bool),
    Read(usize),
}

#[derive(Default)]
struct Iface {
    pins: Option<(u8, u8, i64)>,
    queue: Vec<Op>,
}

struct I2c32 {
    rt: Rc<Runtime>,
    db: Rc<DeviceBoard>,
    ifaces: RefCell<[Iface; 3]>,
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let db = DeviceBoard::get(rt).map_err(mlua::Error::runtime)?;
    let st = Rc::new(I2c32 {
        rt: rt.clone(),
        db,
        ifaces: RefCell::default(),
    });
    let with = |f: fn(&Rc<I2c32>, &Lua, &Args) -> FwResult<MultiValue>| {
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
            ("read", with(read)?),
            ("transfer", with(transfer)?),
        ],
    )?;
    for (k, v) in [
        ("FASTPLUS", 1_000_000),
        ("FAST", 400_000),
        ("SLOW", SLOW),
        ("TRANSMITTER", 0),
        ("RECEIVER", 1),
        ("SW", SW),
        ("HW0", 1),
        ("HW1", 2),
    ] {
        t.set(k, v)?;
    }
    lua.globals().set("i2c", t)
}

fn none() -> FwResult<MultiValue> {
    Ok(MultiValue::new())
}

fn iface(a: &Args) -> FwResult<usize> {
    let id = a.check_integer(1)? as u32;
    arg_check(id < 3, 1, "invalid i2c interface id")?;
    Ok(id as usize)
}

impl I2c32 {
    fn bus(&self, id: usize) -> (u8, u8, i64) {
        self.ifaces.borrow()[id]
            .pins
            .unwrap_or((u8::MAX, u8::MAX, SLOW))
    }

    fn clock(&self, speed: i64, bytes: u64) {
        let us = (9_000_000 * bytes).div_ceil(speed.max(1) as u64);
        self.rt
            .pass_time_within_limit(Duration::from_micros(us.max(1)));
    }

    /// Runs one operation on the board: the ACK of a byte, the bytes of a read.
    fn run(&self, id: usize, op: &Op) -> (bool, Vec<u8>) {
        let (sda, scl, speed) = self.bus(id);
        match op {
            Op::Byte(..) => self.clock(speed, 1),
            Op::Read(n) => self.clock(speed, *n as u64),
            Op::Start | Op::Stop => {}
        }
        let t = self.db.now();
        let r = {
            let mut b = self.db.board.borrow_mut();
            match op {
                Op::Start => {
                    b.i2c_start(sda, scl, t);
                    (true, vec![])
                }
                Op::Stop => {
                    b.i2c_stop(sda, scl, t);
                    (true, vec![])
                }
                // The first byte after a start is the address byte.
                Op::Byte(v, _) => (b.i2c_byte(sda, scl, *v, t), vec![]),
                Op::Read(n) => (
                    true,
                    (0..*n)
                        .map(|i| b.i2c_read(sda, scl, i + 1 < *n, t))
                        .collect(),
                ),
            }
        };
        self.db.settle();
        r
    }

    /// `i2c.transfer`'s work: the data read (if a read was queued) and the ACK outcome.
    fn execute(&self, id: usize, ops: &[Op]) -> (Option<Vec<u8>>, bool) {
        let mut data = None;
        for op in ops {
            let (ack, bytes) = self.run(id, op);
            if let Op::Read(_) = op {
                data = Some(bytes);
            }
            if let Op::Byte(_, true) = op
                && !ack
            {
                self.run(id, &Op::Stop);
                return (None, false);
            }
        }
        (data, true)
    }

    fn queue(&self, id: usize, op: Op) -> FwResult<()> {
        let mut f = self.ifaces.borrow_mut();
        if f[id].pins.is_none() {
            return fw_err("no commands scheduled");
        }
        if matches!(op, Op::Read(_)) && f[id].queue.iter().any(|o| matches!(o, Op::Read(_))) {
            return fw_err("only one read per transfer supported");
        }
        f[id].queue.push(op);
        Ok(())
    }
}

/// `i2c.setup(id, sda, scl, speed[, stretchfactor])`.
fn setup(s: &Rc<I2c32>, _: &Lua, a: &Args) -> FwResult<MultiValue> {
    let id = a.check_integer(1)? as u32;
    let sda = a.check_integer(2)? as u32;
    let scl = a.check_integer(3)? as u32;
    let speed = a.check_integer(4)? as u32;
    arg_check(id < 3, 1, "invalid i2c interface id")?;
    for p in [sda, scl] {
        if p >= ESP32_PINS {
            return fw_err(format!("gpio {} does not exist", p as i32));
        }
    }
    let ret = if id as i64 == SW {
        arg_check(
            i64::from(speed) <= SLOW,
            4,
            "i2c speed too high for i2c.SW interface",
        )?;
        i64::from(speed)
    } else {
        arg_check(
            speed <= 1_000_000,
            4,
            "i2c speed too high for i2c.HWx interfaces",
        )?;
        let stretch = if a.len() > 4 { a.check_integer(5)? } else { 1 };
        arg_check(speed > 0, 4, "invalid speed")?;
        arg_check(stretch > 0, 5, "invalid stretch factor")?;
        TIMEOUT_CYCLES * stretch
    };
    let t = s.db.now();
    {
        let mut b = s.db.board.borrow_mut();
        for p in [sda as u8, scl as u8] {
            b.set_mode(p, Mode::OpenDrain, Pull::Up, t);
            b.write(p, true, t);
        }
    }
    s.db.settle();
    let mut f = s.ifaces.borrow_mut();
    f[id as usize].pins = Some((sda as u8, scl as u8, i64::from(speed.max(1))));
    f[id as usize].queue.clear();
    Ok(MultiValue::from_iter([Value::Integer(ret)]))
}

fn start(s: &Rc<I2c32>, _: &Lua, a: &Args) -> FwResult<MultiValue> {
    let id = iface(a)?;
    if id as i64 == SW {
        if s.ifaces.borrow()[id].pins.is_none() {
            return fw_err("start command failed on i2c.SW interface");
        }
        s.run(id, &Op::Start);
        return none();
    }
    s.queue(id, Op::Start)?;
    none()
}

fn stop(s: &Rc<I2c32>, _: &Lua, a: &Args) -> FwResult<MultiValue> {
    let id = iface(a)?;
    if id as i64 == SW {
        if s.ifaces.borrow()[id].pins.is_none() {
            return fw_err("stop command failed on i2c.SW interface");
        }
        s.run(id, &Op::Stop);
        return none();
    }
    s.queue(id, Op::Stop)?;
    none()
}

/// `i2c.address(id, addr, direction[, ack_check])`: the ACK (SW), always true (HWx).
fn address(s: &Rc<I2c32>, _: &Lua, a: &Args) -> FwResult<MultiValue> {
    let id = iface(a)?;
    let addr = a.check_integer(2)?;
    arg_check(
        (0..=127).contains(&addr),
        2,
        "i2c address out of 7-bit range",
    )?;
    let dir = a.check_integer(3)?;
    arg_check(dir == 0 || dir == 1, 3, "invalid i2c address direction")?;
    let check = match a.arg(4) {
        Value::Nil => true,
        Value::Boolean(b) => *b,
        v => {
            return crate::lauxlib::arg_err(4, format!("boolean expected, got {}", typename(v)));
        }
    };
    let byte = (addr as u8) << 1 | dir as u8;
    if id as i64 == SW {
        let ack = s.run(id, &Op::Byte(byte, check)).0;
        return Ok(MultiValue::from_iter([Value::Boolean(ack)]));
    }
    s.queue(id, Op::Byte(byte, check))?;
    Ok(MultiValue::from_iter([Value::Boolean(true)]))
}

/// `i2c.write(id, data...[, ack_check])`: the bytes written (SW: up to the first NACK).
fn write(s: &Rc<I2c32>, lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    let id = iface(a)?;
    let mut last = a.len();
    let mut check = true;
    if let Value::Boolean(b) = a.arg(last) {
        check = *b;
        last -= 1;
    }
    if last < 2 {
        return fw_err("not enough or wrong arg types for i2c.write");
    }
    let mut wrote = 0i64;
    // One byte: false when the SW interface stops at a NACK.
    let send = |v: u8| -> FwResult<bool> {
        if id as i64 == SW {
            Ok(s.run(id, &Op::Byte(v, check)).0 || !check)
        } else {
            s.queue(id, Op::Byte(v, check))?;
            Ok(true)
        }
    };
    for n in 2..=last {
        match a.arg(n) {
            Value::Integer(_) | Value::Number(_) => {
                let v = a.check_integer(n)?;
                if !(0..=255).contains(&v) {
                    return fw_err("numeric value for i2c.write does not fit in 1 byte");
                }
                if !send(v as u8)? {
                    break;
                }
                wrote += 1;
            }
            Value::Table(t) => {
                let len = t.raw_len();
                let mut i = 0;
                while i < len {
                    let v = Args(MultiValue::from_iter([t.raw_get::<Value>(i + 1)?]))
                        .check_integer(1)?;
                    if !(0..=255).contains(&v) {
                        return fw_err("table value for i2c.write does not fit in 1 byte");
                    }
                    if !send(v as u8)? {
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
                let bytes = a.check_bytes(lua, n)?.as_bytes().to_vec();
                let mut i = 0;
                while i < bytes.len() && send(bytes[i])? {
                    i += 1;
                }
                wrote += i as i64;
                if i < bytes.len() {
                    break;
                }
            }
        }
    }
    Ok(MultiValue::from_iter([Value::Integer(wrote)]))
}

/// `i2c.read(id, n)`: the bytes (SW), nothing (HWx: `transfer` returns them).
fn read(s: &Rc<I2c32>, lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    let id = iface(a)?;
    let size = a.check_integer(2)? as u32;
    arg_check(size > 0, 2, "i2c read size of 0 is invalid")?;
    if size > 1 << 20 {
        return fw_err("out of memory");
    }
    if id as i64 == SW {
        let bytes = s.run(id, &Op::Read(size as usize)).1;
        return Ok(MultiValue::from_iter([Value::String(
            lua.create_string(&bytes)?,
        )]));
    }
    s.queue(id, Op::Read(size as usize))?;
    none()
}

/// `i2c.transfer(id[, fn][, to_ms])`: runs the queue; `(data or nil, ack)`, or later to `fn`.
fn transfer(s: &Rc<I2c32>, lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    let id = a.check_integer(1)? as u32;
    arg_check((1..3).contains(&id), 1, "invalid hardware id")?;
    let id = id as usize;
    if s.ifaces.borrow()[id].pins.is_none() {
        return fw_err("no commands scheduled");
    }
    let cb: Option<Function> = match a.arg(2) {
        Value::Function(f) => Some(f.clone()),
        _ => None,
    };
    let ops = std::mem::take(&mut s.ifaces.borrow_mut()[id].queue);
    let result = |lua: &Lua, (data, ack): (Option<Vec<u8>>, bool)| -> mlua::Result<MultiValue> {
        let d = match data {
            Some(d) if ack => Value::String(lua.create_string(&d)?),
            _ => Value::Nil,
        };
        Ok(MultiValue::from_iter([d, Value::Boolean(ack)]))
    };
    let Some(cb) = cb else {
        let r = s.execute(id, &ops);
        return Ok(result(lua, r)?);
    };
    // The transfer task runs the queue and posts the callback to the Lua task.
    let me = s.clone();
    s.rt.post_internal(
        Priority::Medium,
        Box::new(move |lua| {
            let r = me.execute(id, &ops);
            let args = result(lua, r)?;
            me.rt.call_protected(lua, &cb, args)
        }),
    );
    none()
}
