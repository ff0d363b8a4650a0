//! The fast paths of `sk:on(event, fn)`, `sk:send(data)`, `sk:close()`, `sk:hold()` and
//! `sk:unhold()`: these methods are C closures made by `lauxlib::bind_fast`, which run the fast
//! path here and call the binding only when it declines.
//!
//! A web server calls the first three once or twice per request, a flow-controlled stream the last
//! two once every few chunks, and through mlua each call costs about two thousand instructions.
//! A fast path either does the whole call and returns true, or touches nothing and returns false.
//! It declines anything unusual (a callback argument, a number to convert, a large string, a call
//! from a coroutine, any error the firmware raises), so every error, and its message, stays the
//! binding's.

use std::ffi::c_int;
use std::rc::Rc;

use mlua::{FromLua, Lua, UserDataRef, ffi};

use super::{HOLD_FROM, TcpSocket, close_sock, legacy, send_bytes, set_hold};
use crate::lauxlib::method;
use crate::net::events::store_raw;
use crate::runtime::Runtime;

/// `sk:send(data)`: itself for a string of 1 byte to [`HOLD_FROM`] on a connected socket.
pub(super) unsafe extern "C-unwind" fn send(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as a C function, with its arguments on `state`'s stack.
    unsafe { method(state, try_send) }
}

/// `sk:close()`: itself for a socket with a connection (or a pending one).
pub(super) unsafe extern "C-unwind" fn close(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as for `send`.
    unsafe { method(state, try_close) }
}

/// `sk:on(event[, fn])`: itself when `fn` is a function, nil or absent and `event` one of a TCP
/// socket's. Nothing of mlua's is touched: the callback table is found through the handle's
/// user value and marked as ours (see `events.rs`), which only TCP sockets have.
pub(super) unsafe extern "C-unwind" fn on(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as for `send`.
    unsafe { method(state, try_on) }
}

unsafe fn try_on(state: *mut ffi::lua_State) -> bool {
    unsafe {
        let top = ffi::lua_gettop(state);
        if !(2..=3).contains(&top)
            || ffi::lua_type(state, 1) != ffi::LUA_TUSERDATA
            || ffi::lua_type(state, 2) != ffi::LUA_TSTRING
            || !matches!(
                ffi::lua_type(state, 3),
                ffi::LUA_TNONE | ffi::LUA_TNIL | ffi::LUA_TFUNCTION
            )
        {
            return false;
        }
        // 1.5.4.1 takes only a function: its error is the binding's.
        if ffi::lua_type(state, 3) != ffi::LUA_TFUNCTION
            && runtime(Lua::get_or_init_from_ptr(state)).is_none_or(|rt| legacy(&rt))
        {
            return false;
        }
        let mut len = 0;
        let ptr = ffi::lua_tolstring(state, 2, &mut len);
        let name = std::slice::from_raw_parts(ptr.cast::<u8>(), len);
        store_raw(state, name, 3)
    }
}

/// `sk:hold()`: itself for any socket (a socket without a connection has nothing to hold).
pub(super) unsafe extern "C-unwind" fn hold(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as for `send`.
    unsafe { method(state, |state| held(state, true)) }
}

/// `sk:unhold()`: as `hold`.
pub(super) unsafe extern "C-unwind" fn unhold(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as for `send`.
    unsafe { method(state, |state| held(state, false)) }
}

unsafe fn held(state: *mut ffi::lua_State, held: bool) -> bool {
    unsafe {
        if ffi::lua_gettop(state) != 1 {
            return false;
        }
        let Some(sock) = socket_at(Lua::get_or_init_from_ptr(state), state) else {
            return false;
        };
        set_hold(&sock, held);
        true
    }
}

unsafe fn try_send(state: *mut ffi::lua_State) -> bool {
    unsafe {
        if ffi::lua_gettop(state) != 2 || ffi::lua_type(state, 2) != ffi::LUA_TSTRING {
            return false;
        }
        let mut len = 0;
        // A string already: no conversion, nothing allocated. The bytes stay put while the
        // string is on the stack, which it is until this function returns.
        let ptr = ffi::lua_tolstring(state, 2, &mut len);
        if len == 0 || len >= HOLD_FROM {
            return false;
        }
        let data = std::slice::from_raw_parts(ptr.cast::<u8>(), len);
        let lua = Lua::get_or_init_from_ptr(state);
        let Some(sock) = socket_at(lua, state) else {
            return false;
        };
        let Some(rt) = runtime(lua) else {
            return false;
        };
        send_bytes(&rt, &sock, data.len(), || data.to_vec().into()).is_ok()
    }
}

unsafe fn try_close(state: *mut ffi::lua_State) -> bool {
    unsafe {
        if ffi::lua_gettop(state) != 1 {
            return false;
        }
        let lua = Lua::get_or_init_from_ptr(state);
        let Some(sock) = socket_at(lua, state) else {
            return false;
        };
        let Some(rt) = runtime(lua) else {
            return false;
        };
        close_sock(&rt, &sock).is_ok()
    }
}

/// The device's runtime (a clone: nothing is left borrowed from mlua while the socket changes).
fn runtime(lua: &Lua) -> Option<Rc<Runtime>> {
    lua.app_data_ref::<Rc<Runtime>>().map(|rt| rt.clone())
}

/// The `net.tcpsocket` at stack index 1 of `state`, checked by mlua as the binding's is. Only
/// on the thread mlua reads from (the loop's): a coroutine's call goes to the binding.
unsafe fn socket_at(lua: &Lua, state: *mut ffi::lua_State) -> Option<TcpSocket> {
    unsafe {
        if ffi::lua_type(state, 1) != ffi::LUA_TUSERDATA {
            return None;
        }
        lua.exec_raw_lua(|raw| {
            if raw.state() != state {
                return None;
            }
            // Borrowed where it lies: no reference is made for it.
            UserDataRef::<TcpSocket>::from_stack(1, raw)
                .ok()
                .map(|s| (*s).clone())
        })
    }
}
