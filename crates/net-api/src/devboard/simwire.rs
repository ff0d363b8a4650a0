//! The test module's side of the sensor and strip parts (`require "nodemcu-sim"`): set what a
//! DS18B20 or DHT measures from now on, read a 1-Wire device's ROM code, and read a WS2812
//! strip's frames (`frames(name)`) and an LED's colour (`led(name, i)`), and what a MAX7219
//! chain shows (`matrix(name)`).
//!
//! `temperature(name, °C)` and `humidity(name, %)` take effect at the device time of the call:
//! a DS18B20 whose conversion ends later reports the new value, as the chip would.
//! `rom(name)` is the part's ROM code as an 8-byte string, as `ow.search` returns it.

use board::Kind;
use mlua::{Lua, MultiValue, Value};

use crate::devboard::DeviceBoard;
use crate::lauxlib::{Args, FwResult, fw_err};

/// `temperature(name, value)`.
pub(super) fn temperature(lua: &Lua, db: &DeviceBoard, a: &Args) -> FwResult<MultiValue> {
    let name = a.check_str(lua, 1)?;
    let v = a.check_number(2)?;
    let t = db.now();
    let mut b = db.board.borrow_mut();
    match b.sensor_mut(&name) {
        Some(s) => s.set_temperature(t, v).or_else(fw_err)?,
        None => return fw_err(format!("no sensor named '{name}'")),
    }
    Ok(MultiValue::new())
}

/// `humidity(name, value)`.
pub(super) fn humidity(lua: &Lua, db: &DeviceBoard, a: &Args) -> FwResult<MultiValue> {
    let name = a.check_str(lua, 1)?;
    let v = a.check_number(2)?;
    let t = db.now();
    let mut b = db.board.borrow_mut();
    match b.sensor_mut(&name) {
        Some(s) => s.set_humidity(t, v).or_else(fw_err)?,
        None => return fw_err(format!("no sensor named '{name}'")),
    }
    Ok(MultiValue::new())
}

/// `rom(name)`: the 1-Wire part's ROM code.
pub(super) fn rom(lua: &Lua, db: &DeviceBoard, a: &Args) -> FwResult<MultiValue> {
    let name = a.check_str(lua, 1)?;
    let b = db.board.borrow();
    let rom = b.part_named(&name).and_then(|i| match &b.parts()[i].kind {
        Kind::Ds18b20(d) => Some(d.rom),
        _ => None,
    });
    match rom {
        Some(r) => Ok(MultiValue::from_iter([Value::String(
            lua.create_string(r)?,
        )])),
        None => fw_err(format!("no 1-Wire device named '{name}'")),
    }
}

/// The strip named `name`, or the firmware-style error.
fn with_strip<R>(
    db: &DeviceBoard,
    name: &str,
    f: impl FnOnce(&board::strip::Strip) -> FwResult<R>,
) -> FwResult<R> {
    let b = db.board.borrow();
    match b.strip(name) {
        Some(s) => f(s),
        None => fw_err(format!("no strip named '{name}'")),
    }
}

/// `frames(name)`: every frame the strip received, oldest first: `{ {t = µs, data = bytes}, ... }`.
pub(super) fn frames(lua: &Lua, db: &DeviceBoard, a: &Args) -> FwResult<MultiValue> {
    let name = a.check_str(lua, 1)?;
    with_strip(db, &name, |s| {
        let out = lua.create_table()?;
        for (i, (t, data)) in s.frames().enumerate() {
            let e = lua.create_table()?;
            e.set("t", *t as i64)?;
            e.set("data", lua.create_string(data)?)?;
            out.raw_set(i + 1, e)?;
        }
        Ok(MultiValue::from_iter([Value::Table(out)]))
    })
}

/// `led(name, i)`: LED `i`'s (1-based) colour now as red, green, blue (and white on RGBW).
pub(super) fn led(lua: &Lua, db: &DeviceBoard, a: &Args) -> FwResult<MultiValue> {
    let name = a.check_str(lua, 1)?;
    let i = a.check_integer(2)?;
    with_strip(db, &name, |s| {
        let Some(rgbw) = usize::try_from(i - 1).ok().and_then(|i| s.rgb(i)) else {
            return crate::lauxlib::arg_err(2, "no such LED");
        };
        let n = s.channels;
        Ok(rgbw[..n]
            .iter()
            .map(|v| Value::Integer(i64::from(*v)))
            .collect())
    })
}

/// `matrix(name)`: what each chip of a MAX7219 chain shows now, from the chip on DIN: `{ {r1,
/// ..., r8}, ... }`, each row (digit) the segments lit as a byte (shutdown dark, display test
/// all lit, Code B decoded).
pub(super) fn matrix(lua: &Lua, db: &DeviceBoard, a: &Args) -> FwResult<MultiValue> {
    let name = a.check_str(lua, 1)?;
    let b = db.board.borrow();
    let Some(m) = b.max7219(&name) else {
        return fw_err(format!("no max7219 named '{name}'"));
    };
    let out = lua.create_table()?;
    for (i, c) in m.chips.iter().enumerate() {
        let rows = lua.create_sequence_from(c.rows().map(i64::from))?;
        out.raw_set(i + 1, rows)?;
    }
    Ok(MultiValue::from_iter([Value::Table(out)]))
}
