//! `rtcmem`: the 128 user words of RTC memory, which keep their values through every reset of a
//! run (restarts, errors, watchdog, deep sleep) as on a board, and start as noise at power-on
//! (see `retained.rs`).

use std::rc::Rc;

use mlua::{Lua, Value};

use crate::config::Firmware;
use crate::lauxlib::{Args, FwResult, arg_check, bind, to_integer, to_number};
use crate::modules::module_table;
use crate::retained::{RTC_USER_WORDS, Retained};
use crate::runtime::Runtime;

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let old = rt.cfg.firmware == Firmware::V1_5;
    let mem = Retained::of(rt);
    let m = mem.clone();
    let read32 = bind(lua, move |_, a| read32(&m, &a, old))?;
    let write32 = bind(lua, move |_, a| write32(&mem, &a))?;
    let t = module_table(lua, vec![("read32", read32), ("write32", write32)])?;
    lua.globals().set("rtcmem", t)
}

/// `lua_tointeger`: 0 for what is not a number.
fn tointeger(v: &Value) -> i64 {
    to_number(v).and_then(to_integer).unwrap_or(0)
}

/// `rtcmem.read32(idx[, num])`: the words that exist of `num` from `idx` (none out of range).
fn read32(mem: &Retained, a: &Args, old: bool) -> FwResult<mlua::Variadic<i64>> {
    let idx = a.check_integer(1)? as i32;
    let n = match (old, a.len()) {
        (true, _) if a.is_number(2) => tointeger(a.arg(2)),
        (true, _) | (false, 0 | 1) => 1,
        (false, _) => tointeger(a.arg(2)),
    };
    let st = mem.borrow();
    let first = usize::try_from(idx).unwrap_or(RTC_USER_WORDS);
    let n = usize::try_from(n).unwrap_or(0);
    Ok(st
        .rtcmem
        .iter()
        .skip(first)
        .take(n)
        .map(|w| i64::from(*w as i32))
        .collect())
}

/// `rtcmem.write32(idx, val, ...)`: `RTC mem would overrun` past the last word.
fn write32(mem: &Retained, a: &Args) -> FwResult<()> {
    // The firmware's index is a C int.
    let idx = i64::from(a.check_integer(1)? as i32);
    let vals = a.len().saturating_sub(1);
    arg_check(
        idx + vals as i64 <= RTC_USER_WORDS as i64,
        1,
        "RTC mem would overrun",
    )?;
    let mut st = mem.borrow_mut();
    for (i, v) in a.0.iter().skip(1).enumerate() {
        // Below the first user word lies the system's RTC memory: out of a script's reach here.
        if let Ok(slot) = usize::try_from(idx + i as i64) {
            st.rtcmem[slot] = tointeger(v) as u32;
        }
    }
    Ok(())
}
