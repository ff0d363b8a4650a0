//! `gpio` on the ESP32 (`--target esp32`): the dev-esp32 firmware's table-driven API on the
//! virtual board. Pins are GPIO numbers; errors are what the ESP-IDF calls return, turned into
//! the firmware's `invalid argument`. `gpio.trig` callbacks get `(pin, level)`, and an edge while
//! one is queued is lost, as the firmware's ISR disables the pin until its callback ran.

use std::cell::RefCell;
use std::rc::Rc;

use board::{Mode, Pull};
use mlua::{Lua, Table, Value};

use crate::devboard::{DeviceBoard, TrigKind};
use crate::lauxlib::{Args, FwError, FwResult, arg_check, bind, fw_err};
use crate::modules::module_table;
use crate::runtime::Runtime;

const IN: i64 = 1;
const OUT: i64 = 2;
const IN_OUT: i64 = 3;
const PULL_UP: i64 = 1;
const PULL_DOWN: i64 = 2;

/// `GPIO_IS_VALID_GPIO`: 0..39 without 20, 24 and 28..31.
fn valid(pin: i64) -> bool {
    (0..40).contains(&pin) && ![20, 24, 28, 29, 30, 31].contains(&pin)
}

/// `GPIO_IS_VALID_OUTPUT_GPIO`: GPIO34..39 are inputs only.
fn valid_output(pin: i64) -> bool {
    valid(pin) && pin < 34
}

fn invalid<T>() -> FwResult<T> {
    fw_err("invalid argument")
}

/// Pins configured as outputs without their input enabled read 0, as the chip's input register.
struct Inputs(RefCell<[bool; 40]>);

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let db = DeviceBoard::get(rt).map_err(mlua::Error::runtime)?;
    let inputs: Rc<Inputs> = rt.state(|_| Inputs(RefCell::new([true; 40])));
    let (d, i) = (db.clone(), inputs.clone());
    let config = bind(lua, move |lua, a| config(lua, &d, &i, &a))?;
    let (d, i) = (db.clone(), inputs.clone());
    let read = bind(lua, move |_, a| {
        let pin = a.check_integer(1)?;
        if !valid(pin) {
            return invalid();
        }
        let level = d.board.borrow().read(pin as u8, d.now());
        Ok(if i.0.borrow()[pin as usize] {
            i64::from(level)
        } else {
            0
        })
    })?;
    let d = db.clone();
    let write = bind(lua, move |_, a| {
        let pin = a.check_integer(1)?;
        let level = a.check_integer(2)?;
        if !valid_output(pin) {
            return invalid();
        }
        d.write(pin as u8, level != 0);
        Ok(())
    })?;
    let d = db.clone();
    let trig = bind(lua, move |_, a| trig(&d, &a))?;
    let wakeup = bind(lua, |_, a| {
        let pin = a.check_integer(1)?;
        let kind = a.opt_integer(2, 0)?;
        if !valid(pin) || !(0..=5).contains(&kind) {
            return invalid();
        }
        Ok(())
    })?;
    let set_drive = bind(lua, |_, a| {
        let pin = a.check_integer(1)?;
        let strength = a.check_integer(2)?;
        arg_check(
            (0..4).contains(&strength),
            2,
            "pad strength must be between gpio.DRIVE_0 and gpio.DRIVE_3",
        )?;
        if !valid_output(pin) {
            return invalid();
        }
        Ok(())
    })?;
    let t = module_table(
        lua,
        vec![
            ("config", config),
            ("read", read),
            ("trig", trig),
            ("wakeup", wakeup),
            ("write", write),
            ("set_drive", set_drive),
        ],
    )?;
    set_constants(&t)?;
    lua.globals().set("gpio", t)
}

fn set_constants(t: &Table) -> mlua::Result<()> {
    for (k, v) in [
        ("OUT", OUT),
        ("IN", IN),
        ("IN_OUT", IN_OUT),
        ("FLOATING", 0),
        ("PULL_UP", PULL_UP),
        ("PULL_DOWN", PULL_DOWN),
        ("PULL_UP_DOWN", PULL_UP | PULL_DOWN),
        ("INTR_NONE", 0),
        ("INTR_UP", 1),
        ("INTR_DOWN", 2),
        ("INTR_UP_DOWN", 3),
        ("INTR_LOW", 4),
        ("INTR_HIGH", 5),
        ("DRIVE_0", 0),
        ("DRIVE_1", 1),
        ("DRIVE_2", 2),
        ("DRIVE_DEFAULT", 2),
        ("DRIVE_3", 3),
    ] {
        t.set(k, v)?;
    }
    Ok(())
}

/// A field of a config table, checked as the firmware's `luaL_checkinteger(L, -1)` does.
fn field_int(lua: &Lua, t: &Table, key: &str, default: Option<i64>) -> FwResult<i64> {
    let v: Value = t.get(key)?;
    let args = Args(mlua::MultiValue::from_iter([v]));
    let r = match default {
        Some(d) => args.opt_integer(1, d),
        None => args.check_integer(1),
    };
    let _ = lua;
    r.map_err(|e| match e {
        FwError::Arg(_, m) => FwError::Msg(format!("bad argument #-1 to 'config' ({m})")),
        e => e,
    })
}

/// `gpio.config({gpio = n | {n, ...}, dir = ..., opendrain = 0|1, pull = ...}, ...)`.
fn config(lua: &Lua, db: &DeviceBoard, inputs: &Inputs, a: &Args) -> FwResult<()> {
    for n in 1..=a.len() {
        let Value::Table(t) = a.get(n) else {
            let got = crate::lauxlib::typename(a.arg(n));
            return Err(FwError::Arg(n, format!("table expected, got {got}")));
        };
        let dir = field_int(lua, &t, "dir", None)?;
        let opendrain = field_int(lua, &t, "opendrain", Some(0))? != 0 && dir & OUT != 0;
        let pulls = field_int(lua, &t, "pull", Some(0))?;
        let pins: Vec<i64> = match t.get::<Value>("gpio")? {
            Value::Integer(p) => vec![p],
            Value::Number(p) => vec![p as i64],
            Value::Table(list) => list
                .pairs::<Value, Value>()
                .filter_map(|kv| kv.ok())
                .map(|(_, v)| crate::lauxlib::to_number(&v).unwrap_or(0.0) as i64)
                .collect(),
            _ => return fw_err("missing/bad 'gpio' field"),
        };
        let ok = pins.iter().all(|p| {
            if dir & OUT != 0 {
                valid_output(*p)
            } else {
                valid(*p)
            }
        });
        if !ok || !(0..=7).contains(&dir) {
            return invalid();
        }
        let mode = match (dir & OUT != 0, opendrain) {
            (false, _) => Mode::Input,
            (true, false) => Mode::Output,
            (true, true) => Mode::OpenDrain,
        };
        let pull = match pulls & 3 {
            1 => Pull::Up,
            2 => Pull::Down,
            3 => Pull::UpDown,
            _ => Pull::None,
        };
        for p in pins {
            inputs.0.borrow_mut()[p as usize] = dir & IN != 0;
            db.board
                .borrow_mut()
                .set_mode(p as u8, mode, pull, db.now());
            db.flush();
        }
    }
    Ok(())
}

/// `gpio.trig(pin[, type[, fn]])`.
fn trig(db: &DeviceBoard, a: &Args) -> FwResult<()> {
    let pin = a.check_integer(1)?;
    let kind = a.opt_integer(2, 0)?;
    let callback = match a.arg(3) {
        Value::Nil => None,
        Value::Function(f) => Some(f.clone()),
        v => {
            return Err(FwError::Arg(
                3,
                format!("function expected, got {}", crate::lauxlib::typename(v)),
            ));
        }
    };
    if !(0..40).contains(&pin) {
        return fw_err("invalid gpio");
    }
    if !valid(pin) || !(0..=5).contains(&kind) {
        return invalid();
    }
    let kind = match kind {
        1 => TrigKind::Up,
        2 => TrigKind::Down,
        3 => TrigKind::Both,
        4 => TrigKind::Low,
        5 => TrigKind::High,
        _ => TrigKind::None,
    };
    db.set_trig(pin as u8, kind, callback);
    Ok(())
}
