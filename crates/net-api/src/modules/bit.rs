//! `bit`: the firmware's 32-bit bitwise operations (Lua 5.1 has no operators for them).

use mlua::Lua;

use crate::lauxlib::{Args, FwResult, bind};
use crate::modules::module_table;

fn arg(a: &Args, n: usize) -> FwResult<u32> {
    Ok(a.check_integer(n)? as u32)
}

/// Results are signed 32-bit, as the firmware returns them.
fn out(x: u32) -> i64 {
    x as i32 as i64
}

fn fold(a: &Args, f: fn(u32, u32) -> u32) -> FwResult<i64> {
    let mut acc = arg(a, 1)?;
    for n in 2..=a.len() {
        acc = f(acc, arg(a, n)?);
    }
    Ok(out(acc))
}

pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let t = module_table(
        lua,
        vec![
            ("bnot", bind(lua, |_, a| Ok(out(!arg(&a, 1)?)))?),
            ("band", bind(lua, |_, a| fold(&a, |x, y| x & y))?),
            ("bor", bind(lua, |_, a| fold(&a, |x, y| x | y))?),
            ("bxor", bind(lua, |_, a| fold(&a, |x, y| x ^ y))?),
            (
                "lshift",
                bind(lua, |_, a| {
                    Ok(out(arg(&a, 1)?.checked_shl(arg(&a, 2)?).unwrap_or(0)))
                })?,
            ),
            (
                "rshift",
                bind(lua, |_, a| {
                    Ok(out(arg(&a, 1)?.checked_shr(arg(&a, 2)?).unwrap_or(0)))
                })?,
            ),
            (
                "arshift",
                bind(lua, |_, a| {
                    Ok(((arg(&a, 1)? as i32) >> arg(&a, 2)?.min(31)) as i64)
                })?,
            ),
            (
                "bit",
                bind(lua, |_, a| {
                    Ok(out(1u32.checked_shl(arg(&a, 1)?).unwrap_or(0)))
                })?,
            ),
            (
                "set",
                bind(lua, |_, a| {
                    let mut v = arg(&a, 1)?;
                    for n in 2..=a.len() {
                        v |= 1u32.checked_shl(arg(&a, n)?).unwrap_or(0);
                    }
                    Ok(out(v))
                })?,
            ),
            (
                "clear",
                bind(lua, |_, a| {
                    let mut v = arg(&a, 1)?;
                    for n in 2..=a.len() {
                        v &= !1u32.checked_shl(arg(&a, n)?).unwrap_or(0);
                    }
                    Ok(out(v))
                })?,
            ),
            (
                "isset",
                bind(lua, |_, a| {
                    Ok(arg(&a, 1)? & 1u32.checked_shl(arg(&a, 2)?).unwrap_or(0) != 0)
                })?,
            ),
            (
                "isclear",
                bind(lua, |_, a| {
                    Ok(arg(&a, 1)? & 1u32.checked_shl(arg(&a, 2)?).unwrap_or(0) == 0)
                })?,
            ),
        ],
    )?;
    lua.globals().set("bit", t)
}
