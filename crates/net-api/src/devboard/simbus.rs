//! The test module's side of the board's buses: `reading(name, quantity, value)` sets what a
//! chip measures from now on (`reading("bme280", "temperature", 30)`), and `i2c()` gives the I2C
//! transfers so far, oldest first, each `{t = µs, address = n, write = "bytes" or read =
//! "bytes", ack = {1, 1, 0, ...}}` (`ack` as in the trace: the address byte's first).

use mlua::{Lua, MultiValue, Value};

use super::DeviceBoard;
use crate::lauxlib::{Args, FwResult, fw_err};

/// `reading(name, quantity, value)`.
pub(super) fn reading(lua: &Lua, db: &DeviceBoard, a: &Args) -> FwResult<MultiValue> {
    let name = a.check_str(lua, 1)?;
    let quantity = a.check_str(lua, 2)?;
    let value = a.check_number(3)?;
    let t = db.now();
    let mut b = db.board.borrow_mut();
    let Some(chip) = b.chip_named(&name) else {
        return fw_err(format!("no chip named '{name}'"));
    };
    let Some(r) = chip.readings() else {
        return fw_err(format!("'{name}' has no readings"));
    };
    r.set(&quantity, value, t).or_else(fw_err)?;
    Ok(MultiValue::new())
}

/// `i2c()`: the transfers so far.
pub(super) fn i2c(lua: &Lua, db: &DeviceBoard, _: &Args) -> FwResult<MultiValue> {
    let out = lua.create_table()?;
    for (i, tr) in db.board.borrow().i2c_log().enumerate() {
        let e = lua.create_table()?;
        e.set("t", tr.t as i64)?;
        e.set("address", i64::from(tr.address))?;
        e.set(
            if tr.read { "read" } else { "write" },
            lua.create_string(&tr.bytes)?,
        )?;
        e.set(
            "ack",
            lua.create_sequence_from(tr.ack.iter().map(|a| i64::from(*a)))?,
        )?;
        out.raw_set(i + 1, e)?;
    }
    Ok(MultiValue::from_iter([Value::Table(out)]))
}
