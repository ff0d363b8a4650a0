//! `require "nodemcu-sim"`: the simulator's own Lua module, through which a test drives the
//! virtual board's inputs and reads its outputs. It is never a global, so a firmware script sees
//! it only when it asks for it (decisions.md §7); `require` finds it after the flash, as it
//! finds the built-in NTest.
//!
//! Inputs: `press(sel[, ms])`, `release(sel)`, `switch(sel, on)`, `adc(value[, channel])`,
//! `volts(v[, channel])`, where `sel` is a pin number or a part's name. Outputs: `level(pin)`,
//! `history(pin)` (`{ {t = µs, level = n}, ... }`), `pwm(pin)` (`{clock = Hz, duty = n}` or nil),
//! `mode(pin)`, `part(name)` (its state and value). Sensors and strips (`simwire.rs`):
//! `temperature(name, °C)`, `humidity(name, %)`, `rom(name)`, `frames(name)`, `led(name, i)`, `matrix(name)`.
//! The buses' side (`reading`, `i2c`) is in `simbus.rs`. Changes made here happen at the device time
//! of the call, and scheduled ones (`press(3, 200)`) at theirs, exactly as the board file's.

use std::rc::Rc;

use board::{Change, Kind};
use mlua::{Function, Lua, MultiValue, Value};

use crate::devboard::DeviceBoard;
use crate::lauxlib::{Args, FwResult, arg_check, bind, fw_err};
use crate::modules::module_table;
use crate::runtime::Runtime;

/// The function `require` runs: it returns the module table.
pub(crate) fn loader(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<Function> {
    let table = module(lua, rt)?;
    lua.create_function(move |_, _: MultiValue| Ok(table.clone()))
}

fn module(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<mlua::Table> {
    let db = DeviceBoard::get(rt).map_err(mlua::Error::runtime)?;
    let with = |f: fn(&Lua, &DeviceBoard, &Args) -> FwResult<MultiValue>| {
        let d = db.clone();
        bind(lua, move |lua, a| f(lua, &d, &a))
    };
    module_table(
        lua,
        vec![
            ("press", with(press)?),
            ("release", with(release)?),
            ("switch", with(switch)?),
            ("adc", with(adc)?),
            ("volts", with(volts)?),
            ("level", with(level)?),
            ("history", with(history)?),
            ("pwm", with(pwm)?),
            ("mode", with(mode)?),
            ("part", with(part)?),
            ("temperature", with(super::simwire::temperature)?),
            ("humidity", with(super::simwire::humidity)?),
            ("rom", with(super::simwire::rom)?),
            ("frames", with(super::simwire::frames)?),
            ("led", with(super::simwire::led)?),
            ("matrix", with(super::simwire::matrix)?),
            ("reading", with(super::simbus::reading)?),
            ("i2c", with(super::simbus::i2c)?),
        ],
    )
}

fn none() -> FwResult<MultiValue> {
    Ok(MultiValue::new())
}

/// A pin argument in the board's range.
fn pin(db: &DeviceBoard, a: &Args, n: usize) -> FwResult<u8> {
    let p = a.check_integer(n)?;
    // The chip's pins and an expander's (MCP23017 pins are board pins too).
    let ok = u8::try_from(p).is_ok_and(|p| db.board.borrow().is_pin(p));
    arg_check(ok, n, "no such pin")?;
    Ok(p as u8)
}

/// The button or switch `sel` names: a pin number or a part's name.
fn contact(lua: &Lua, db: &DeviceBoard, a: &Args) -> FwResult<usize> {
    let b = db.board.borrow();
    let is_contact = |k: &Kind| matches!(k, Kind::Contact { .. });
    let found = match a.arg(1) {
        Value::String(_) => {
            let name = a.check_str(lua, 1)?;
            b.part_named(&name)
                .filter(|i| is_contact(&b.parts()[*i].kind))
                .ok_or_else(|| format!("no button or switch named '{name}'"))
        }
        _ => {
            drop(b);
            let p = pin(db, a, 1)?;
            let b = db.board.borrow();
            b.part_on(p, is_contact)
                .ok_or_else(|| format!("no button or switch on pin {p}"))
        }
    };
    found.or_else(fw_err)
}

/// Closes or opens a contact now.
fn set_contact(db: &DeviceBoard, i: usize, closed: bool) {
    let t = db.now();
    db.board.borrow_mut().set_part(i, Change::Close(closed), t);
    db.settle();
}

/// `press(sel[, ms])`: closes the contact, and opens it again `ms` later if given.
fn press(lua: &Lua, db: &DeviceBoard, a: &Args) -> FwResult<MultiValue> {
    let i = contact(lua, db, a)?;
    let hold = if a.is_none_or_nil(2) {
        None
    } else {
        let ms = a.check_integer(2)?;
        arg_check(ms >= 0, 2, "negative duration")?;
        Some(ms as u64)
    };
    set_contact(db, i, true);
    if let Some(ms) = hold {
        let at = db.now() + ms * 1000;
        db.board.borrow_mut().schedule(i, at, Change::Close(false));
        db.settle();
    }
    none()
}

fn release(lua: &Lua, db: &DeviceBoard, a: &Args) -> FwResult<MultiValue> {
    let i = contact(lua, db, a)?;
    set_contact(db, i, false);
    none()
}

/// `switch(sel, on)`.
fn switch(lua: &Lua, db: &DeviceBoard, a: &Args) -> FwResult<MultiValue> {
    let i = contact(lua, db, a)?;
    let on = match a.arg(2) {
        Value::Boolean(b) => *b,
        _ => return crate::lauxlib::arg_err(2, "boolean expected"),
    };
    set_contact(db, i, on);
    none()
}

/// `adc(value[, channel])`: the raw reading (0..1024).
fn adc(_: &Lua, db: &DeviceBoard, a: &Args) -> FwResult<MultiValue> {
    let v = a.check_integer(1)?;
    arg_check(
        (0..=i64::from(board::ADC_MAX)).contains(&v),
        1,
        "value out of range 0..1024",
    )?;
    set_adc(db, a, v as u16)
}

/// `volts(v[, channel])`: the voltage at the chip's ADC pin (0..1 V).
fn volts(_: &Lua, db: &DeviceBoard, a: &Args) -> FwResult<MultiValue> {
    let v = a.check_number(1)?;
    arg_check((0.0..=1.0).contains(&v), 1, "volts out of range 0..1")?;
    set_adc(db, a, board::volts_to_raw(v))
}

fn set_adc(db: &DeviceBoard, a: &Args, raw: u16) -> FwResult<MultiValue> {
    let channel = a.opt_integer(2, 0)?;
    let count = db.board.borrow().chip().adc_channels();
    arg_check(
        (0..i64::from(count)).contains(&channel),
        2,
        "no such ADC channel",
    )?;
    let t = db.now();
    db.board.borrow_mut().set_adc(channel as u8, raw, t);
    db.settle();
    none()
}

fn level(_: &Lua, db: &DeviceBoard, a: &Args) -> FwResult<MultiValue> {
    let p = pin(db, a, 1)?;
    let l = db.board.borrow().read(p, db.now());
    Ok(MultiValue::from_iter([Value::Integer(i64::from(l))]))
}

/// `history(pin)`: the pin's level changes since boot, oldest first.
fn history(lua: &Lua, db: &DeviceBoard, a: &Args) -> FwResult<MultiValue> {
    let p = pin(db, a, 1)?;
    let out = lua.create_table()?;
    for (i, (t, l)) in db.board.borrow().history(p).enumerate() {
        let e = lua.create_table()?;
        e.set("t", t as i64)?;
        e.set("level", i64::from(l))?;
        out.raw_set(i + 1, e)?;
    }
    Ok(MultiValue::from_iter([Value::Table(out)]))
}

fn pwm(lua: &Lua, db: &DeviceBoard, a: &Args) -> FwResult<MultiValue> {
    let p = pin(db, a, 1)?;
    let Some(w) = db.board.borrow().pwm(p) else {
        return Ok(MultiValue::from_iter([Value::Nil]));
    };
    let t = lua.create_table()?;
    t.set("clock", i64::from(w.clock))?;
    t.set("duty", i64::from(w.duty))?;
    Ok(MultiValue::from_iter([Value::Table(t)]))
}

fn mode(lua: &Lua, db: &DeviceBoard, a: &Args) -> FwResult<MultiValue> {
    let p = pin(db, a, 1)?;
    let m = db.board.borrow().mode(p).name();
    Ok(MultiValue::from_iter([Value::String(
        lua.create_string(m)?,
    )]))
}

/// `part(name)`: the part's state (`"on"`, `"pressed"`, ...) and its value if it has one.
fn part(lua: &Lua, db: &DeviceBoard, a: &Args) -> FwResult<MultiValue> {
    let name = a.check_str(lua, 1)?;
    let b = db.board.borrow();
    let Some(i) = b.part_named(&name) else {
        return fw_err(format!("no part named '{name}'"));
    };
    let (state, value) = b.parts()[i].state();
    let mut out = vec![Value::String(lua.create_string(state)?)];
    if let Some(v) = value {
        out.push(Value::Integer(i64::from(v)));
    }
    Ok(MultiValue::from_iter(out))
}
