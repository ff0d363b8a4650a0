//! `adc`: the ESP8266's one analog input (A0/TOUT), read from the virtual board.
//!
//! The chip's PHY init data (byte 107, `adc.force_init_mode`) decides whether the ADC samples
//! the pin or the chip's supply; the other reading is always 65535, as on the board. The byte
//! lives with the run (`Config::adc_vdd33`), so a restart after changing it boots in the new
//! mode, as the firmware's documented idiom expects.

use std::rc::Rc;
use std::sync::atomic::Ordering;

use mlua::Lua;

use crate::devboard::DeviceBoard;
use crate::lauxlib::{FwResult, arg_check, bind, fw_err};
use crate::modules::module_table;
use crate::runtime::Runtime;

const INIT_ADC: i64 = 0x00;
const INIT_VDD33: i64 = 0xff;

/// What `readvdd33` reports in VDD33 mode: a board on a 3.3 V supply.
const VDD33_MV: i64 = 3300;

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let db = DeviceBoard::get(rt).map_err(mlua::Error::runtime)?;
    // The mode the chip booted in; force_init_mode changes only the stored byte.
    let vdd33 = rt.cfg.adc_vdd33.load(Ordering::Relaxed);
    let read = bind(lua, move |_, a| {
        let id = a.check_integer(1)? as u32;
        if id >= 1 {
            return fw_err(format!("adc {} does not exist", id as i32));
        }
        Ok(if vdd33 {
            0xFFFF
        } else {
            i64::from(db.board.borrow().adc(0))
        })
    })?;
    let readvdd33 = bind(lua, move |_, _| Ok(if vdd33 { VDD33_MV } else { 0xFFFF }))?;
    let r = rt.clone();
    let force = bind(lua, move |_, a| force_init_mode(&r, a.check_integer(1)?))?;
    let t = module_table(
        lua,
        vec![
            ("read", read),
            ("readvdd33", readvdd33),
            ("force_init_mode", force),
        ],
    )?;
    t.set("INIT_ADC", INIT_ADC)?;
    t.set("INIT_VDD33", INIT_VDD33)?;
    lua.globals().set("adc", t)
}

/// `adc.force_init_mode(mode)`: true when the stored byte changed (a restart applies it).
fn force_init_mode(rt: &Runtime, mode: i64) -> FwResult<bool> {
    let byte = mode as u8;
    arg_check(byte.wrapping_add(1) < 2, 1, "Invalid mode")?;
    let want = byte == 0xff;
    Ok(rt.cfg.adc_vdd33.swap(want, Ordering::Relaxed) != want)
}
