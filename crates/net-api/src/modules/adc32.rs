//! `adc` on the ESP32 (`--target esp32`): ADC1's channels 0..7, read from the virtual board's ADC
//! parts at the width set with `adc.setwidth` (12 bits at boot). A part's value is a fraction of
//! full scale (1024 = full scale, as on the ESP8266's 10-bit ADC), whatever the attenuation.

use std::cell::Cell;
use std::rc::Rc;

use mlua::Lua;

use crate::devboard::DeviceBoard;
use crate::lauxlib::{Args, FwResult, bind, fw_err};
use crate::modules::module_table;
use crate::runtime::Runtime;

/// `MOD_CHECK_ID(adc, id)`: only ADC1 (the id passes through a `uint8_t`).
fn check_id(a: &Args) -> FwResult<u8> {
    let id = a.check_integer(1)?;
    if id as u8 != 1 {
        return fw_err(format!("adc {} does not exist", id as i32));
    }
    Ok(1)
}

/// `platform_adc_channel_exists`: channels 0..7 of ADC1.
fn check_channel(a: &Args) -> FwResult<u8> {
    let ch = a.check_integer(2)?;
    if (ch as u8) >= 8 {
        return fw_err(format!("channel {} does not exist in ADC1", ch as i32));
    }
    Ok(ch as u8)
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let db = DeviceBoard::get(rt).map_err(mlua::Error::runtime)?;
    let width = Rc::new(Cell::new(12u32));
    let w = width.clone();
    let setwidth = bind(lua, move |_, a| {
        check_id(&a)?;
        let bits = a.check_integer(2)?;
        if !(9..=12).contains(&bits) {
            return fw_err("adc_set_width failed");
        }
        w.set(bits as u32);
        Ok(())
    })?;
    let setup = bind(lua, |_, a| {
        check_id(&a)?;
        check_channel(&a)?;
        let atten = a.check_integer(3)?;
        if !(0..=3).contains(&atten) {
            return fw_err("adc_setup failed");
        }
        Ok(())
    })?;
    let read = bind(lua, move |_, a| {
        check_id(&a)?;
        let ch = check_channel(&a)?;
        let raw = u64::from(db.board.borrow().adc(ch));
        let full = (1u64 << width.get()) - 1;
        Ok(((raw * full + 512) / u64::from(board::ADC_MAX)).min(full) as i64)
    })?;
    let hall = bind(lua, |_, _| -> FwResult<()> {
        fw_err("ADC hall sensor no longer supported in IDF, sorry")
    })?;
    let t = module_table(
        lua,
        vec![
            ("setwidth", setwidth),
            ("setup", setup),
            ("read", read),
            ("read_hall_sensor", hall),
        ],
    )?;
    for (k, v) in [
        ("ATTEN_0db", 0),
        ("ATTEN_2_5db", 1),
        ("ATTEN_6db", 2),
        ("ATTEN_11db", 3),
        ("ADC1", 1),
    ] {
        t.set(k, v)?;
    }
    lua.globals().set("adc", t)
}
