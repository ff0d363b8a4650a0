//! The library calls other than pattern matching (`strlib.rs`) that can run for a long time inside
//! one C call, made to look at the watchdog as they go: `string.rep`, `table.sort` without a
//! comparator, and (5.3) `table.move`.
//!
//! An instruction hook never runs inside a C function, so before this `string.rep("", 2^53)` on
//! the 5.3 build, `table.move({}, 1, 2^50, 2)`, or a sort whose every comparison is a long string
//! compare ran for minutes past the watchdog and `--timeout`; on a board the watchdog resets
//! the chip. The other long calls are bounded by the memory they fill (`table.concat`,
//! `string.format`, `unpack`) or call Lua code, where the hook runs (a sort's comparator,
//! metamethods).
//!
//! - `string.rep` is written here: the arguments and errors of the build's Lua version, the
//!   result built off the Lua heap, checked against the room the device heap has left before
//!   anything is allocated (a failure is `not enough memory`, as Lua's own buffer would end).
//!   The string is made as received data is (`StringMaker`): nothing but the string is allocated,
//!   so a heap filled with `rep` in a loop fills to its last small block, as on a board.
//!   Copies of an empty string (with an empty separator) give the empty string at once, where the
//!   C loop would spin through every count.
//! - `table.sort` with no comparator is Lua's own sort given a C comparator that compares as Lua's
//!   default does (`<`, metamethods included) and looks at the watchdog every few thousand
//!   comparisons. It is called in the same C frame, so argument errors and positions are Lua's.
//! - `table.move` (5.3) moves in the same order as Lua's, looking at the watchdog as it goes; Lua's
//!   own function checks the arguments first (with an empty range), so every message is its own.
//!
//! The C functions here reach the watchdog through a binding kept in the registry (a Lua call, so
//! that its reset unwinds as Lua errors do; nothing of Rust's is alive in these frames).

use std::cell::Cell;
use std::ffi::{CStr, c_int};
use std::rc::Rc;
use std::sync::OnceLock;

use mlua::ffi;
use mlua::{Function, Lua, LuaString, Table};

use crate::heap::Room;
use crate::lauxlib::{Args, FwError, FwResult, bind, fw_err};
use crate::runtime::Runtime;

const LUA53: bool = cfg!(feature = "lua53");

/// The registry entry of the binding that checks the watchdog (hidden from `debug.getregistry`
/// by its prefix, as every entry of the simulator's).
const TICK_KEY: &CStr = c"nodemcu-sim.watchdog.tick";
/// A registry slot used once at boot to reach the C functions of Lua's library.
const TMP_KEY: &str = "nodemcu-sim.longcalls.tmp";

/// Comparisons (or moved elements) between two looks at the watchdog.
const TICK_EVERY: u32 = 4096;
/// Bytes of `string.rep`'s result built between two looks at the watchdog.
const REP_TICK_BYTES: usize = 1 << 20;
/// `table.move` ranges shorter than this are left to Lua's own function.
#[cfg(feature = "lua53")]
const MOVE_DIRECT: i64 = 1 << 16;

/// Lua's own C functions, the same in every state of the process.
static REAL_SORT: OnceLock<ffi::lua_CFunction> = OnceLock::new();
static REAL_MOVE: OnceLock<ffi::lua_CFunction> = OnceLock::new();

thread_local! {
    /// Counts calls between two looks at the watchdog (one Lua state per thread).
    static COUNT: Cell<u32> = const { Cell::new(0) };
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let weak = Rc::downgrade(rt);
    let tick = bind(lua, move |_, _| {
        if let Some(rt) = weak.upgrade() {
            crate::watchdog::check(&rt);
        }
        Ok(())
    })?;
    lua.set_named_registry_value(TICK_KEY.to_str().unwrap_or_default(), tick)?;

    let string: Table = lua.globals().get("string")?;
    let r = rt.clone();
    string.set("rep", bind(lua, move |lua, a| rep(lua, &r, &a))?)?;

    let table: Table = lua.globals().get("table")?;
    if let Some(real) = c_function_of(lua, table.get("sort")?)? {
        let _ = REAL_SORT.set(real);
        // SAFETY: `sort_c` follows the lua_CFunction contract.
        table.set("sort", unsafe { lua.create_c_function(sort_c) }?)?;
    }
    if LUA53
        && let Some(f) = table.get::<Option<Function>>("move")?
        && let Some(real) = c_function_of(lua, f)?
    {
        let _ = REAL_MOVE.set(real);
        // SAFETY: `move_c` follows the lua_CFunction contract.
        table.set("move", unsafe { lua.create_c_function(move_c) }?)?;
    }
    Ok(())
}

/// The C function behind `f` when it is a plain one (no upvalues), as Lua's library functions are.
fn c_function_of(lua: &Lua, f: Function) -> mlua::Result<Option<ffi::lua_CFunction>> {
    lua.set_named_registry_value(TMP_KEY, f)?;
    let key = c"nodemcu-sim.longcalls.tmp";
    let found = lua.exec_raw_lua(|raw| {
        let state = raw.state();
        // SAFETY: a registry read and two stack slots; nothing here raises.
        unsafe {
            ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, key.as_ptr());
            let plain =
                ffi::lua_iscfunction(state, -1) != 0 && ffi::lua_getupvalue(state, -1, 1).is_null();
            let f = if plain {
                ffi::lua_tocfunction(state, -1)
            } else {
                None
            };
            ffi::lua_pop(state, 1);
            f
        }
    });
    lua.unset_named_registry_value(TMP_KEY)?;
    Ok(found)
}

/// Counts one unit of work and, every [`TICK_EVERY`], calls the watchdog's binding, which unwinds
/// as a Lua error when the watchdog has expired.
///
/// # Safety
/// `state` is a running C function's state with a free stack slot.
unsafe fn tick(state: *mut ffi::lua_State) {
    let due = COUNT.with(|c| {
        let n = c.get() + 1;
        c.set(if n >= TICK_EVERY { 0 } else { n });
        n >= TICK_EVERY
    });
    if due {
        // SAFETY: per the caller's contract.
        unsafe {
            ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, TICK_KEY.as_ptr());
            ffi::lua_call(state, 0, 0);
        }
    }
}

/// `table.sort(t [, comp])`: with no comparator, Lua's sort with [`less_than_c`] as one.
unsafe extern "C-unwind" fn sort_c(state: *mut ffi::lua_State) -> c_int {
    let Some(real) = REAL_SORT.get() else {
        return 0;
    };
    // SAFETY: called by Lua as a C function; the stack has LUA_MINSTACK free slots.
    unsafe {
        // With no argument at all, Lua's sort reports it (`got no value`) as it is.
        if ffi::lua_gettop(state) >= 1 && ffi::lua_isnoneornil(state, 2) != 0 {
            ffi::lua_settop(state, 1);
            ffi::lua_pushcfunction(state, less_than_c);
        }
        real(state)
    }
}

/// `a < b` as Lua's sort compares without a comparator (metamethods and errors included).
unsafe extern "C-unwind" fn less_than_c(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua's sort with two arguments.
    unsafe {
        tick(state);
        #[cfg(feature = "lua53")]
        let less = ffi::lua_compare(state, 1, 2, ffi::LUA_OPLT);
        #[cfg(not(feature = "lua53"))]
        let less = ffi::lua_lessthan(state, 1, 2);
        ffi::lua_pushboolean(state, less);
        1
    }
}

/// `table.move(a1, f, e, t [, a2])` (5.3): short or invalid ranges go to Lua's own function as
/// they are; a long valid range is moved here, in Lua's order, after Lua's function has checked
/// the arguments on an empty range.
#[cfg(feature = "lua53")]
unsafe extern "C-unwind" fn move_c(state: *mut ffi::lua_State) -> c_int {
    let Some(real) = REAL_MOVE.get() else {
        return 0;
    };
    // SAFETY: called by Lua as a C function; the stack has LUA_MINSTACK free slots.
    unsafe {
        if ffi::lua_gettop(state) < 4 {
            return real(state);
        }
        let int = |i| {
            let mut isnum = 0;
            let v = ffi::lua_tointegerx(state, i, &mut isnum);
            (isnum != 0).then_some(v)
        };
        let (Some(f), Some(e), Some(t)) = (int(2), int(3), int(4)) else {
            return real(state);
        };
        // Lua's own range checks, on which it would raise: left to it.
        let n = match e.checked_sub(f) {
            Some(d) if d >= MOVE_DIRECT && f > i64::MIN && (f > 0 || e < i64::MAX + f) => d + 1,
            _ => return real(state),
        };
        if t > i64::MAX - n + 1 {
            return real(state);
        }
        let tt = if ffi::lua_isnoneornil(state, 5) == 0 {
            5
        } else {
            1
        };
        // Lua's checks of the tables, on an empty range: it returns the destination.
        ffi::lua_pushinteger(state, f - 1);
        ffi::lua_replace(state, 3);
        real(state);
        ffi::lua_settop(state, 5);
        let forward =
            t > e || t <= f || (tt != 1 && ffi::lua_compare(state, 1, tt, ffi::LUA_OPEQ) == 0);
        let mut step = |i: i64| {
            ffi::lua_geti(state, 1, f + i);
            ffi::lua_seti(state, tt, t + i);
            tick(state);
        };
        if forward {
            (0..n).for_each(&mut step);
        } else {
            (0..n).rev().for_each(&mut step);
        }
        ffi::lua_pushvalue(state, tt);
        1
    }
}

#[cfg(not(feature = "lua53"))]
unsafe extern "C-unwind" fn move_c(_: *mut ffi::lua_State) -> c_int {
    0
}

/// `string.rep(s, n)` (5.3: `string.rep(s, n [, sep])`).
fn rep(lua: &Lua, rt: &Runtime, a: &Args) -> FwResult<LuaString> {
    let s = a.check_bytes(lua, 1)?;
    let n = if LUA53 {
        a.check_integer(2)?
    } else {
        // `luaL_checkint`: the C int the integer converts to.
        i64::from(a.check_integer(2)? as i32)
    };
    let sep = if LUA53 && !a.is_none_or_nil(3) {
        Some(a.check_bytes(lua, 3)?)
    } else {
        None
    };
    let (s, sep) = (s.as_bytes(), sep.as_ref().map(|s| s.as_bytes()));
    let sep: &[u8] = sep.as_deref().unwrap_or(b"");
    if n <= 0 {
        return Ok(make_string(lua, rt, b"")?);
    }
    let unit = s.len() + sep.len();
    if LUA53 && unit as u64 > i32::MAX as u64 / n as u64 {
        return fw_err("resulting string too large");
    }
    if unit == 0 {
        return Ok(make_string(lua, rt, b"")?);
    }
    let total = (s.len() as u128) * (n as u128) + (sep.len() as u128) * (n as u128 - 1);
    let out_of_memory = || FwError::Lua(mlua::Error::MemoryError(String::new()));
    let total = usize::try_from(total).map_err(|_| out_of_memory())?;
    if !Room::new(lua, &rt.heap).fits(total) {
        return Err(out_of_memory());
    }
    let mut out = Vec::new();
    out.try_reserve_exact(total).map_err(|_| out_of_memory())?;
    // `s sep s sep ... s`: one `s sep`, doubled by copying what is built, then the last `s`.
    out.extend_from_slice(&s);
    out.extend_from_slice(sep);
    let units = total - s.len();
    while out.len() < units {
        let more = out.len().min(units - out.len()).min(REP_TICK_BYTES);
        out.extend_from_within(..more);
        crate::watchdog::check(rt);
    }
    out.truncate(units);
    out.extend_from_slice(&s);
    Ok(make_string(lua, rt, &out)?)
}

/// A result string, made as received data is (`StringMaker`): nothing is allocated but the
/// string (mlua's own protected path allocates helper closures first).
pub(crate) fn make_string(lua: &Lua, rt: &Runtime, bytes: &[u8]) -> mlua::Result<LuaString> {
    match rt.helpers.try_borrow().as_deref() {
        Ok(Some(h)) => h.strings.make(lua, bytes),
        _ => lua.create_string(bytes),
    }
}
