//! How a binding becomes a Lua function: a C closure over the native that runs it and the
//! binding's id, optionally with a fast path that does the common case itself.
//!
//! The closure calls the native exactly as a C function of the firmware would run its body, and
//! raises its failure with `lua_error`. The native therefore sees the closure where the script
//! called it (the caller's frame is the script's, even for a call in tail position), so error
//! positions and `bad argument` names come out as on the board, and an error's traceback is the
//! firmware's: `[C]: in function 'send'` right below the script's frame.
//!
//! For the few methods a script calls once per request or per chunk, a fast path skips the
//! native: mlua's callback machinery (a prepared error value, panic catching, a reference per
//! argument) costs a couple of thousand instructions per call. The fast path either does the
//! whole call or changes nothing, and then the native runs.

use std::ffi::{c_int, c_void};

use mlua::{Function, IntoLuaMulti, LightUserData, Lua, ffi};

use super::{Args, FwResult, bind_with};

/// A fast path: true when it did the whole call (it returns nothing), false when it changed
/// nothing and the binding is to run.
pub(crate) type FastPath = unsafe fn(*mut ffi::lua_State) -> bool;

/// The Lua function of a binding: a C closure over `native` and the binding's `id`, whose body
/// is `body` (a C function calling [`method`] with its fast path), or [`plain`].
pub(super) fn closure(
    maker: &Maker,
    body: ffi::lua_CFunction,
    native: &Function,
    id: impl mlua::IntoLua,
) -> mlua::Result<Function> {
    maker
        .0
        .call((LightUserData(body as *mut c_void), native, id))
}

/// Makes the bindings' closures: `make_method` as a Lua function, made once per state.
#[derive(Clone)]
pub(super) struct Maker(Function);

impl Maker {
    pub(super) fn new(lua: &Lua) -> mlua::Result<Maker> {
        // SAFETY: `make_method` follows the lua_CFunction contract.
        Ok(Maker(unsafe { lua.create_c_function(make_method)? }))
    }
}

/// [`bind_fast`] with a third upvalue, `context` as a light userdata, for a fast path that needs
/// the state it works on (`lua_upvalueindex(3)`). `context` must outlive the Lua state.
pub fn bind_fast_with<F, R>(
    lua: &Lua,
    f: F,
    body: ffi::lua_CFunction,
    context: *mut c_void,
) -> mlua::Result<Function>
where
    F: Fn(&Lua, Args) -> FwResult<R> + 'static,
    R: IntoLuaMulti,
{
    bind_with(lua, f, |maker, native, id| {
        maker.0.call((
            LightUserData(body as *mut c_void),
            native,
            id,
            LightUserData(context),
        ))
    })
}

/// [`bind`](super::bind) for a method whose common case `body` (a C function calling [`method`]
/// with its fast path) does without calling into mlua.
pub fn bind_fast<F, R>(lua: &Lua, f: F, body: ffi::lua_CFunction) -> mlua::Result<Function>
where
    F: Fn(&Lua, Args) -> FwResult<R> + 'static,
    R: IntoLuaMulti,
{
    bind_with(lua, f, |maker, native, id| closure(maker, body, native, id))
}

/// The body of a binding without a fast path.
pub(super) unsafe extern "C-unwind" fn plain(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: `state` is running a closure made by `closure`.
    unsafe { call_binding(state) }
}

/// `make_method(body, native, id[, context])`: the C closure of `body` over the other arguments.
/// Called under mlua's protection (it allocates). Only the simulator can call it: the function is
/// held by Rust alone (on mlua's reference thread), which no script reaches (`guard.lua` keeps
/// `debug.getregistry` from handing that thread out).
unsafe extern "C-unwind" fn make_method(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: argument 1 is the light userdata `bind_fast` made of a lua_CFunction (see above:
    // no other caller exists).
    unsafe {
        let body: ffi::lua_CFunction = std::mem::transmute(ffi::lua_touserdata(state, 1));
        let upvalues = ffi::lua_gettop(state) - 1;
        ffi::lua_pushcclosure(state, body, upvalues);
    }
    1
}

/// The body of a method made by [`bind_fast`]: runs `fast`, else the binding. A panic in `fast`
/// (a bug) must not unwind through Lua's C frames, which would leave a protected call's state
/// pointing at dead frames; it becomes a Lua error instead.
///
/// SAFETY: `state` is running the C closure `bind_fast` made.
pub(crate) unsafe fn method(state: *mut ffi::lua_State, fast: FastPath) -> c_int {
    // SAFETY: passed on from the caller.
    let done = match std::panic::catch_unwind(|| unsafe { fast(state) }) {
        Ok(done) => done,
        Err(panic) => {
            drop(panic);
            unsafe { raise(state, c"nodemcu-sim internal error in a socket method") }
        }
    };
    if done {
        return 0;
    }
    // Nothing of Rust's is alive from here on: the binding's error jumps out of this frame.
    unsafe { call_binding(state) }
}

/// Calls the native with the binding's id and this call's arguments: its `false, results...` are
/// returned, anything else is raised as it is, but for a failure of mlua's own (no memory left
/// to convert the arguments or the results), which is raised as its firmware text (see
/// [`translate`]). Lua errors may jump out of here: nothing of Rust's is alive in this frame.
unsafe fn call_binding(state: *mut ffi::lua_State) -> c_int {
    unsafe {
        let n = ffi::lua_gettop(state);
        ffi::luaL_checkstack(state, 3, c"too many arguments".as_ptr());
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_insert(state, 1);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(2));
        ffi::lua_insert(state, 2);
        if ffi::lua_pcall(state, n + 1, ffi::LUA_MULTRET, 0) != ffi::LUA_OK {
            if ffi::lua_type(state, -1) == ffi::LUA_TUSERDATA {
                translate(state);
            }
            ffi::lua_error(state);
        }
        if ffi::lua_toboolean(state, 1) != 0 {
            ffi::lua_settop(state, 1);
            ffi::lua_error(state);
        }
        (ffi::lua_gettop(state) - 1).max(0)
    }
}

/// The registry key of the translator (see [`install_translator`]).
static TRANSLATOR: u8 = 0;

/// Registers the function [`translate`] calls: an mlua error value becomes its text (an mlua
/// panic, the watchdog's, goes on as it is: reading it resumes it, and mlua wraps it again).
pub(super) fn install_translator(lua: &Lua) -> mlua::Result<()> {
    let f = lua.create_function(|lua, v: mlua::Value| {
        Ok(match v {
            mlua::Value::Error(e) => {
                mlua::Value::String(lua.create_string(super::lua_error_text(&e))?)
            }
            v => v,
        })
    })?;
    lua.exec_raw_lua(|raw| unsafe {
        let state = raw.state();
        if ffi::lua_checkstack(state, 2) == 0 {
            return Err(mlua::Error::StackError);
        }
        ffi::lua_pushlightuserdata(state, &TRANSLATOR as *const u8 as *mut c_void);
        raw.push(&f)?;
        ffi::lua_rawset(state, ffi::LUA_REGISTRYINDEX);
        Ok(())
    })
}

/// The scripts' `pcall` (in place of mlua's, which lets a panic through too): an error value of
/// mlua's own (a failure inside one of its functions, short of heap) is returned as its text, as
/// every other error reaches a script. A panic (the watchdog's bite) goes on: the translator
/// reads it, which resumes it, and mlua raises it again from there.
pub(crate) unsafe extern "C-unwind" fn pcall(state: *mut ffi::lua_State) -> c_int {
    unsafe {
        ffi::luaL_checkany(state, 1);
        let status = ffi::lua_pcall(state, ffi::lua_gettop(state) - 1, ffi::LUA_MULTRET, 0);
        if status == ffi::LUA_OK {
            // The results may fill the frame to its last slot (`rtcmem.read32(0, 40)`): room
            // for the status first, or the push overruns the stack.
            ffi::luaL_checkstack(state, 1, c"too many results".as_ptr());
            ffi::lua_pushboolean(state, 1);
            ffi::lua_insert(state, 1);
            return ffi::lua_gettop(state);
        }
        if ffi::lua_type(state, -1) == ffi::LUA_TUSERDATA
            && ffi::lua_checkstack(state, 2) != 0
            && translate(state) == ffi::LUA_ERRRUN
            && ffi::lua_type(state, -1) == ffi::LUA_TUSERDATA
        {
            ffi::lua_error(state); // a panic, wrapped again
        }
        ffi::lua_pushboolean(state, 0);
        ffi::lua_insert(state, -2);
        2
    }
}

/// Replaces the error value on top of the stack (a userdata) by what the translator makes of
/// it, and returns the status of that call. Short of memory to run it, by Lua's `not enough memory` (the native's own failure then
/// was most likely the same; an mlua panic that it hid would be the watchdog's, which bites
/// again at its next check).
///
/// SAFETY: the stack has room for two more values.
unsafe fn translate(state: *mut ffi::lua_State) -> c_int {
    unsafe {
        ffi::lua_pushlightuserdata(state, &TRANSLATOR as *const u8 as *mut c_void);
        ffi::lua_rawget(state, ffi::LUA_REGISTRYINDEX);
        if ffi::lua_type(state, -1) != ffi::LUA_TFUNCTION {
            ffi::lua_pop(state, 1);
            return ffi::LUA_OK;
        }
        ffi::lua_pushvalue(state, -2);
        // Whatever the status: the text, a panic wrapped again, or Lua's memory error message
        // (a string every state keeps, so nothing is allocated for it).
        let status = ffi::lua_pcall(state, 1, 1, 0);
        ffi::lua_remove(state, -2);
        status
    }
}

unsafe fn raise(state: *mut ffi::lua_State, msg: &std::ffi::CStr) -> ! {
    unsafe {
        ffi::lua_pushstring(state, msg.as_ptr());
        ffi::lua_error(state)
    }
}
