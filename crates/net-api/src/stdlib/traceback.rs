//! `debug.traceback` as a script sees it: Lua's own, minus one frame of the simulator's.
//!
//! The device's `xpcall` is mlua's: it keeps Rust panics (the watchdog's bite) from being caught,
//! by running the script's message handler from a C function of its own. Lua's traceback would
//! list that function as a `[C]: ?` line above `[C]: in function 'error'`, which a board never
//! shows. The replacement calls Lua's traceback and leaves out that line, and its own; with an
//! explicit level it only adds its own frame to the count. Everything else is Lua's.

use std::ffi::c_int;
use std::sync::atomic::{AtomicUsize, Ordering};

use mlua::{Function, Lua, Table, ffi};

/// Lua's own `debug.traceback`, kept in the registry.
const ORIGINAL: &std::ffi::CStr = c"nodemcu-sim.traceback";
const ORIGINAL_KEY: &str = "nodemcu-sim.traceback";

/// The C function mlua's `xpcall` runs a message handler from (0: none seen).
static MSGH: AtomicUsize = AtomicUsize::new(0);

/// Replaces `debug.traceback` (where the profile has one) with the version above.
pub(super) fn install(lua: &Lua) -> mlua::Result<()> {
    let Some(debug) = lua.globals().get::<Option<Table>>("debug")? else {
        return Ok(());
    };
    let Some(original) = debug.get::<Option<Function>>("traceback")? else {
        return Ok(());
    };
    lua.set_named_registry_value(ORIGINAL_KEY, original)?;
    find_msgh(lua)?;
    // SAFETY: `traceback_c` follows the lua_CFunction contract.
    debug.set("traceback", unsafe { lua.create_c_function(traceback_c)? })
}

/// Learns which C function mlua's `xpcall` calls handlers from: a handler that looks one level
/// up, where `error` is the level above that only if something stands in between.
fn find_msgh(lua: &Lua) -> mlua::Result<()> {
    // SAFETY: `probe` follows the lua_CFunction contract.
    let probe = unsafe { lua.create_c_function(probe)? };
    let g = lua.globals();
    let xpcall: Function = g.get("xpcall")?;
    let error: Function = g.get("error")?;
    lua.load("local xp, err, p = ... xp(function() err('probe') end, p)")
        .call::<()>((xpcall, error, probe))
}

/// The C function running at stack `level` of `state`, if any.
unsafe fn cfunction_at(state: *mut ffi::lua_State, level: c_int) -> usize {
    // SAFETY: `ar` is filled by lua_getstack before lua_getinfo reads it; the function pushed
    // by getinfo is popped again.
    unsafe {
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        if ffi::lua_getstack(state, level, &mut ar) == 0 {
            return 0;
        }
        if ffi::lua_getinfo(state, c"f".as_ptr(), &mut ar) == 0 {
            return 0;
        }
        let f = ffi::lua_tocfunction(state, -1).map_or(0, |f| f as usize);
        ffi::lua_pop(state, 1);
        f
    }
}

/// The probe handler: level 1 is whatever called it, level 2 the function that raised.
unsafe extern "C-unwind" fn probe(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as a message handler, with the error value as its argument.
    unsafe {
        let (caller, above) = (cfunction_at(state, 1), cfunction_at(state, 2));
        ffi::lua_getglobal(state, c"error".as_ptr());
        let error = ffi::lua_tocfunction(state, -1).map_or(0, |f| f as usize);
        ffi::lua_pop(state, 1);
        if caller != 0 && caller != error && above == error {
            MSGH.store(caller, Ordering::Relaxed);
        }
        1
    }
}

/// `debug.traceback([thread,] [msg [, level]])`.
unsafe extern "C-unwind" fn traceback_c(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as a C function; the stack is checked before pushing. Lua errors
    // jump out of here with nothing of Rust's alive.
    unsafe {
        let n = ffi::lua_gettop(state);
        ffi::luaL_checkstack(state, 4, c"traceback".as_ptr());
        let msgh = MSGH.load(Ordering::Relaxed);
        let under_msgh = msgh != 0 && cfunction_at(state, 1) == msgh;
        ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, ORIGINAL.as_ptr());
        ffi::lua_insert(state, 1);
        if n >= 1 && ffi::lua_type(state, 2) == ffi::LUA_TTHREAD {
            ffi::lua_call(state, n, 1);
            return 1;
        }
        if n >= 2 && ffi::lua_isnumber(state, 3) != 0 {
            let level = ffi::lua_tointeger(state, 3);
            ffi::lua_pushinteger(state, level + 1);
            ffi::lua_replace(state, 3);
            ffi::lua_call(state, n, 1);
            return 1;
        }
        ffi::lua_call(state, n, 1);
        if ffi::lua_type(state, -1) != ffi::LUA_TSTRING {
            return 1;
        }
        let mut len = 0usize;
        let p = ffi::lua_tolstring(state, -1, &mut len);
        let text = std::slice::from_raw_parts(p as *const u8, len);
        let (body, cut) = frames_cut(text, 1 + usize::from(under_msgh));
        // The two kept pieces are joined by Lua, from the string still on the stack: a memory
        // error may jump out of these calls, so no Rust value that owns memory is alive here.
        ffi::lua_pushlstring(state, p, body);
        ffi::lua_pushlstring(state, p.add(cut), len - cut);
        ffi::lua_concat(state, 2);
        1
    }
}

/// The traceback `text` without its first `skip` frame lines: `text[..body]` and `text[cut..]`
/// are what is kept, as `(body, cut)`.
fn frames_cut(text: &[u8], skip: usize) -> (usize, usize) {
    const HEAD: &[u8] = b"stack traceback:";
    let Some(at) = text.windows(HEAD.len()).position(|w| w == HEAD) else {
        return (text.len(), text.len());
    };
    let body = at + HEAD.len();
    let mut cut = body;
    for _ in 0..skip {
        if !text[cut..].starts_with(b"\n\t") {
            break;
        }
        cut = match text[cut + 1..].windows(2).position(|w| w == b"\n\t") {
            Some(i) => cut + 1 + i,
            None => text.len(),
        };
    }
    (body, cut)
}

#[cfg(test)]
fn drop_frames(text: &[u8], skip: usize) -> Vec<u8> {
    let (body, cut) = frames_cut(text, skip);
    [&text[..body], &text[cut..]].concat()
}

#[cfg(test)]
mod tests {
    use super::drop_frames;

    #[test]
    fn frames_are_dropped_from_the_top() {
        let t = b"m\nstack traceback:\n\t[C]: ?\n\t[C]: ?\n\t[C]: in function 'error'\n\tx.lua:1: in main chunk";
        assert_eq!(
            drop_frames(t, 2),
            b"m\nstack traceback:\n\t[C]: in function 'error'\n\tx.lua:1: in main chunk"
        );
        assert_eq!(
            drop_frames(b"stack traceback:\n\t[C]: ?", 1),
            b"stack traceback:"
        );
        assert_eq!(drop_frames(b"no trace", 1), b"no trace");
        // More frames asked away than there are: all of them go, and nothing reads past the end.
        assert_eq!(
            drop_frames(b"stack traceback:\n\t[C]: ?", 2),
            b"stack traceback:"
        );
    }
}
