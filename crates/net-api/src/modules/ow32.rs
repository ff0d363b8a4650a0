//! `ow` on the ESP32 (`--target esp32`): the dev-esp32 firmware's 1-Wire master on the same
//! board wire as the ESP8266 form (`ow::Wire`), so one DS18B20 part serves both targets.
//!
//! What differs from the ESP8266 module, as the dev-esp32 `ow.c` and its RMT driver have it:
//! pins are GPIO numbers checked only for `>= 0` (`invalid pin`); a bus call before any
//! `ow.setup`, or on a pin that is no GPIO, fails with `failed` (`write failed` for `select` and
//! `skip`, nothing at all for `write_bytes`); `ow.search` needs `ow.reset_search` or
//! `ow.target_search` first (`search not initialized`) and forgets the pin's search after its
//! last device; there is no alarm search and no `ow.set_timings`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use board::onewire::{Search, crc16};
use mlua::{Lua, MultiValue, Value};

use crate::devboard::DeviceBoard;
use crate::lauxlib::{Args, FwResult, arg_check, bind, fw_err, to_integer, to_number};
use crate::modules::module_table;
use crate::modules::ow::{self, Wire};
use crate::runtime::Runtime;

/// `LUAL_BUFFERSIZE`: the most `ow.read_bytes` reads at once.
const BUFFER_SIZE: i64 = 256;

/// `GPIO_IS_VALID_GPIO`: 0..39 without 20, 24 and 28..31.
fn gpio_exists(pin: u8) -> bool {
    pin < 40 && ![20, 24, 28, 29, 30, 31].contains(&pin)
}

/// What every binding shares: the board, whether the RMT channels are taken (the first
/// successful `ow.setup`), and the search of each pin that has one.
struct Ow {
    rt: Rc<Runtime>,
    db: Rc<DeviceBoard>,
    ready: Cell<bool>,
    search: RefCell<HashMap<i64, Search>>,
}

impl Ow {
    /// The wire on a GPIO (the driver takes it as a `uint8_t`), or `None` where the driver's
    /// attach fails.
    fn wire(&self, pin: i64) -> Option<Wire<'_>> {
        let gpio = pin as u8;
        (self.ready.get() && gpio_exists(gpio)).then_some(Wire {
            rt: &self.rt,
            db: &self.db,
            pin: gpio,
        })
    }

    fn wire_or(&self, pin: i64, msg: &str) -> FwResult<Wire<'_>> {
        match self.wire(pin) {
            Some(w) => Ok(w),
            None => fw_err(msg),
        }
    }
}

/// `luaL_checkint` then `luaL_argcheck(pin >= 0, ..., "invalid pin")`.
fn check_pin(a: &Args, n: usize) -> FwResult<i64> {
    let pin = i64::from(a.check_integer(n)? as i32);
    arg_check(pin >= 0, n, "invalid pin")?;
    Ok(pin)
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let db = DeviceBoard::get(rt).map_err(mlua::Error::runtime)?;
    let ow = Rc::new(Ow {
        rt: rt.clone(),
        db,
        ready: Cell::new(false),
        search: RefCell::new(HashMap::new()),
    });
    let with = |f: fn(&Lua, &Ow, &Args) -> FwResult<MultiValue>| {
        let o = ow.clone();
        bind(lua, move |lua, a| f(lua, &o, &a))
    };
    let t = module_table(
        lua,
        vec![
            ("setup", with(setup)?),
            ("reset", with(reset)?),
            ("skip", with(skip)?),
            ("select", with(select)?),
            ("write", with(write)?),
            ("write_bytes", with(write_bytes)?),
            ("read", with(read)?),
            ("read_bytes", with(read_bytes)?),
            ("depower", with(depower)?),
            ("reset_search", with(reset_search)?),
            ("target_search", with(target_search)?),
            ("search", with(search)?),
            ("crc8", with(crc8_)?),
            ("check_crc16", with(check_crc16)?),
            ("crc16", with(crc16_)?),
        ],
    )?;
    lua.globals().set("ow", t)
}

fn none() -> FwResult<MultiValue> {
    Ok(MultiValue::new())
}

fn int(v: impl Into<i64>) -> FwResult<MultiValue> {
    Ok(MultiValue::from_iter([Value::Integer(v.into())]))
}

/// `ow.setup(pin)`: the first call takes the RMT channels and fails on a pin that is no GPIO;
/// later calls only set the pin's driver, which the firmware does not check.
fn setup(_: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_pin(a, 1)?;
    if !ow.ready.get() {
        if !gpio_exists(pin as u8) {
            return fw_err("failed");
        }
        ow.ready.set(true);
    }
    none()
}

fn reset(_: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_pin(a, 1)?;
    int(ow.wire_or(pin, "failed")?.traced_reset())
}

fn skip(_: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_pin(a, 1)?;
    ow.wire_or(pin, "write failed")?.write_all(&[0xCC]);
    none()
}

/// `ow.select(pin, rom)`: the ROM as an 8-byte string or a table of 8 numbers.
fn select(lua: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_pin(a, 1)?;
    let mut rom = [0u8; 8];
    match a.arg(2) {
        Value::Table(t) => {
            arg_check(t.raw_len() == 8, 2, "wrong arg range")?;
            for (i, b) in rom.iter_mut().enumerate() {
                let v: Value = t.raw_get(i + 1)?;
                let Some(n) = to_number(&v).and_then(to_integer) else {
                    // `luaL_checkinteger(L, -1)` on the element: the argument number is -1.
                    return fw_err(format!(
                        "bad argument #-1 to '{}' (number expected, got {})",
                        crate::lauxlib::binding_name(lua),
                        crate::lauxlib::typename(&v)
                    ));
                };
                if n as i32 > 255 {
                    return fw_err("wrong arg range");
                }
                *b = n as u8;
            }
        }
        _ => {
            let s = a.check_bytes(lua, 2)?;
            let s = s.as_bytes();
            arg_check(s.len() == 8, 2, "wrong arg range")?;
            rom.copy_from_slice(&s);
        }
    }
    let mut command = [0x55; 9];
    command[1..].copy_from_slice(&rom);
    ow.wire_or(pin, "write failed")?.write_all(&command);
    none()
}

/// `ow.write(pin, v[, power])`: the power flag keeps the line driven for a parasite device,
/// which the board does not need, but it must be a number when given.
fn write(_: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_pin(a, 1)?;
    let v = a.check_integer(2)? as i32;
    arg_check((0..256).contains(&v), 2, "invalid data")?;
    a.opt_integer(3, 0)?;
    ow.wire_or(pin, "failed")?.write_all(&[v as u8]);
    none()
}

/// `ow.write_bytes(pin, buf[, power])`: the firmware ignores the driver's answer here.
fn write_bytes(lua: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_pin(a, 1)?;
    let s = a.check_bytes(lua, 2)?;
    a.opt_integer(3, 0)?;
    if let Some(mut w) = ow.wire(pin) {
        // The driver's count is 16 bits.
        let s = s.as_bytes();
        let n = s.len() & 0xFFFF;
        w.write_all(&s[..n]);
    }
    none()
}

fn read(_: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_pin(a, 1)?;
    int(ow.wire_or(pin, "failed")?.read_all(1)[0])
}

/// `ow.read_bytes(pin, size)`: nothing at all for 0, at most `LUAL_BUFFERSIZE`.
fn read_bytes(lua: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_pin(a, 1)?;
    let size = i64::from(a.check_integer(2)? as i32);
    if size == 0 {
        return none();
    }
    arg_check(
        size <= BUFFER_SIZE,
        2,
        "Attempt to read too many characters",
    )?;
    // A negative size reaches the driver as a huge 16-bit count; it gives up at once.
    if size < 0 {
        return fw_err("failed");
    }
    let bytes = ow.wire_or(pin, "failed")?.read_all(size as u32);
    Ok(MultiValue::from_iter([Value::String(
        lua.create_string(&bytes)?,
    )]))
}

fn depower(_: &Lua, _: &Ow, a: &Args) -> FwResult<MultiValue> {
    check_pin(a, 1)?;
    none()
}

/// `ow.reset_search(pin)`: a fresh search for the pin, without touching the bus.
fn reset_search(_: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_pin(a, 1)?;
    ow.search.borrow_mut().insert(pin, Search::default());
    none()
}

fn target_search(_: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_pin(a, 1)?;
    let code = a.check_integer(2)? as i32;
    arg_check((0..256).contains(&code), 2, "wrong arg range")?;
    let mut s = Search::default();
    s.target(code as u8);
    ow.search.borrow_mut().insert(pin, s);
    none()
}

/// `ow.search(pin)`: the next device's ROM as an 8-byte string, or nil, after which the pin
/// has no search until the next `reset_search`.
fn search(lua: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_pin(a, 1)?;
    let Some(mut state) = ow.search.borrow().get(&pin).cloned() else {
        return fw_err("search not initialized");
    };
    // A bus the driver cannot attach answers no presence: the search ends.
    let found = match ow.wire(pin) {
        Some(mut w) => w.traced_search(&mut state, false),
        None => None,
    };
    let mut table = ow.search.borrow_mut();
    Ok(MultiValue::from_iter([match found {
        Some(rom) => {
            table.insert(pin, state);
            Value::String(lua.create_string(rom)?)
        }
        None => {
            table.remove(&pin);
            Value::Nil
        }
    }]))
}

fn crc8_(lua: &Lua, _: &Ow, a: &Args) -> FwResult<MultiValue> {
    ow::crc8_binding(lua, a)
}

fn check_crc16(lua: &Lua, _: &Ow, a: &Args) -> FwResult<MultiValue> {
    ow::check_crc16_binding(lua, a)
}

/// `ow.crc16(buf[, crc])`: the ESP32 form checks its arguments with `luaL_argcheck`.
fn crc16_(lua: &Lua, _: &Ow, a: &Args) -> FwResult<MultiValue> {
    let s = a.check_bytes(lua, 1)?;
    let s = s.as_bytes();
    arg_check(s.len() <= 65535, 1, "wrong arg range")?;
    let crc = to_number(a.arg(2)).and_then(to_integer).unwrap_or(0) as i32;
    arg_check((0..=65535).contains(&crc), 2, "wrong arg range")?;
    int(crc16(&s, crc as u16))
}
