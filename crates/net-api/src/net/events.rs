//! The callback table behind `sock:on(event, fn|nil)`, shared by every socket kind.
//!
//! Each kind declares which event names it accepts; a function stores or replaces a callback, `nil`
//! removes it, anything else is the firmware's `invalid callback function`. Callbacks are cloned
//! out before they are called (never called under a borrow), because a callback may call `on`
//! again for its own socket.

use std::ffi::c_int;

use mlua::{Function, Lua, Value};

use crate::lauxlib::{FwResult, fw_err};

#[derive(Default)]
pub struct Callbacks {
    slots: Vec<(&'static str, Function)>,
}

impl Callbacks {
    /// `on(event, value)`, with `allowed` the kind's event names.
    pub fn set(&mut self, allowed: &[&'static str], event: &str, value: Value) -> FwResult<()> {
        let Some(name) = allowed.iter().find(|n| **n == event) else {
            return fw_err("invalid callback name");
        };
        // A bad value leaves the registered callback in place, as the firmware does.
        let f = match value {
            Value::Function(f) => Some(f),
            Value::Nil => None,
            _ => return fw_err("invalid callback function"),
        };
        self.slots.retain(|(n, _)| n != name);
        self.slots.extend(f.map(|f| (*name, f)));
        Ok(())
    }

    /// Stores a callback given to another method (`connect`'s and `send`'s function argument).
    pub fn replace(&mut self, name: &'static str, f: Function) {
        self.slots.retain(|(n, _)| *n != name);
        self.slots.push((name, f));
    }

    pub fn get(&self, name: &str) -> Option<Function> {
        self.slots
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| f.clone())
    }

    /// Drops every callback: a callback that captures its own socket forms a cycle through Rust
    /// that Lua's collector cannot see, so a finished socket lets go of them.
    pub fn clear(&mut self) {
        self.slots.clear();
    }
}

/// The same `on()` table kept in the handle's own Lua user value instead of in Rust.
///
/// A callback that captures its own socket (`c:on("sent", function() c:close() end)`) then forms a
/// cycle that Lua's collector can see and break: once the socket is closed and unanchored it is
/// collected with its callbacks, yet a socket closed and connected again keeps them, as on the
/// board (callbacks there live until `__gc`). Each name has a fixed index (see `slot`).
///
/// The user value is a table made once per handle with an array part for every slot (and a marker
/// in the last one), so storing or fetching a callback is a raw array access that can neither
/// allocate nor raise. That lets both skip mlua's protected calls, which cost a web server a sixth
/// of its work per request: two `on()` calls and four events per connection.
pub struct OnTable<'a>(pub &'a Lua, pub &'a mlua::AnyUserData);

/// Callback names and their indices (position + 1): a TCP socket's events, the one kind that
/// keeps its callbacks here.
const SLOTS: &[&str] = super::tcpsocket::EVENTS;

/// The index of the marker that tells a handle's own table from mlua's default user value.
const MARK: usize = SLOTS.len() + 1;

/// The index of a callback name.
fn slot(name: &[u8]) -> Option<usize> {
    SLOTS
        .iter()
        .position(|n| n.as_bytes() == name)
        .map(|i| i + 1)
}

/// Pushes the user value of the handle at stack index `idx` when it is a callback table of ours
/// (true); pushes nothing otherwise.
///
/// SAFETY: `idx` is a valid, absolute index; the stack has room for two more values.
unsafe fn push_own_table(state: *mut mlua::ffi::lua_State, idx: c_int) -> bool {
    use mlua::ffi;
    unsafe {
        if ffi::lua_getuservalue(state, idx) == ffi::LUA_TTABLE {
            ffi::lua_rawgeti(state, -1, MARK as _);
            let ours = ffi::lua_toboolean(state, -1) != 0;
            ffi::lua_pop(state, 1);
            if ours {
                return true;
            }
        }
        ffi::lua_pop(state, 1);
        false
    }
}

/// `sk:on(name, value)` done on the Lua stack, for the fast path (`tcpsocket/fast.rs`): stores
/// the value at index `value` (nil when absent) as callback `name` of the handle at index 1,
/// straight into its table's array part, where it can neither allocate nor raise. False, with
/// nothing changed, when `name` has no slot or the handle has no table of ours.
///
/// SAFETY: `state` is running a C function (so has room for three more values); index 1 is a
/// userdata and `value` is a valid or absent index.
pub(crate) unsafe fn store_raw(
    state: *mut mlua::ffi::lua_State,
    name: &[u8],
    value: c_int,
) -> bool {
    use mlua::ffi;
    let Some(n) = slot(name) else {
        return false;
    };
    unsafe {
        if !push_own_table(state, 1) {
            return false;
        }
        ffi::lua_pushvalue(state, value);
        ffi::lua_rawseti(state, -2, n as _);
        ffi::lua_pop(state, 1);
    }
    true
}

/// Gives new handles their tables. One C function, called under `lua_pcall` so that a failed
/// allocation comes back as an error: one protected call per handle, where making and filling the
/// table through mlua costs two (a web server makes a handle per request).
pub(crate) struct TableMaker(Function);

impl TableMaker {
    pub(crate) fn new(lua: &Lua) -> mlua::Result<TableMaker> {
        // SAFETY: `make_on_table` follows the lua_CFunction contract.
        Ok(TableMaker(unsafe { lua.create_c_function(make_on_table)? }))
    }
}

/// `make_on_table(ud)`: sets a new, marked callback table as `ud`'s user value. Only ever called
/// by [`OnTable::prepare`], with a handle (no script reaches the function: see `guard.lua`); any
/// other argument is left alone.
unsafe extern "C-unwind" fn make_on_table(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    // SAFETY: argument 1 is checked to be a full userdata; a C function has room for two values.
    unsafe {
        if ffi::lua_type(state, 1) != ffi::LUA_TUSERDATA {
            return 0;
        }
        ffi::lua_createtable(state, MARK as _, 0);
        ffi::lua_pushboolean(state, 1);
        ffi::lua_rawseti(state, -2, MARK as _);
        ffi::lua_setuservalue(state, 1);
    }
    0
}

impl OnTable<'_> {
    /// Gives a handle just made its table, so that `on()` never has to (see [`store_raw`]).
    pub(crate) fn prepare(&self, maker: &TableMaker) -> mlua::Result<()> {
        use mlua::ffi;
        self.0.exec_raw_lua(|raw| unsafe {
            let state = raw.state();
            if ffi::lua_checkstack(state, 2) == 0 {
                return Err(mlua::Error::StackError);
            }
            raw.push(&maker.0)?;
            raw.push(self.1)?;
            let status = ffi::lua_pcall(state, 1, 0, 0);
            crate::lauxlib::pcall_result(raw, status)
        })
    }

    /// `on(event, value)`, with `allowed` the kind's event names.
    pub fn set(&self, allowed: &[&'static str], event: &str, value: &Value) -> FwResult<()> {
        let Some(name) = allowed.iter().find(|n| **n == event) else {
            return fw_err("invalid callback name");
        };
        match value {
            Value::Function(_) | Value::Nil => Ok(self.store(name, value)?),
            _ => fw_err("invalid callback function"),
        }
    }

    /// Stores a callback given to another method (`connect`'s, `send`'s, `listen`'s function).
    pub fn replace(&self, name: &str, f: Function) -> mlua::Result<()> {
        self.store(name, &Value::Function(f))
    }

    fn store(&self, name: &str, value: &Value) -> mlua::Result<()> {
        let Some(n) = slot(name.as_bytes()) else {
            // A programming error (a kind accepting a name missing from SLOTS), not a script's.
            return Err(mlua::Error::runtime(format!(
                "no slot for callback '{name}'"
            )));
        };
        // Within the preallocated array part: no allocation, no error.
        let set = |raw: &mlua::state::RawLua| unsafe {
            raw.push_value(value)?;
            mlua::ffi::lua_rawseti(raw.state(), -2, n as _);
            Ok(())
        };
        if !self.with_table(set)? {
            self.make_table()?;
            self.with_table(set)?;
        }
        Ok(())
    }

    /// Pushes callback `name` onto the stack of `raw` if the handle has one (true), for a call
    /// that needs no reference to it; the stack is unchanged otherwise.
    ///
    /// SAFETY: the stack has room for three more values.
    pub(crate) unsafe fn push_callback(
        &self,
        raw: &mlua::state::RawLua,
        name: &str,
    ) -> mlua::Result<bool> {
        use mlua::ffi;
        let Some(n) = slot(name.as_bytes()) else {
            return Ok(false);
        };
        let state = raw.state();
        unsafe {
            let top = ffi::lua_gettop(state);
            raw.push(self.1)?;
            let found = push_own_table(state, top + 1) && {
                ffi::lua_rawgeti(state, -1, n as _);
                ffi::lua_type(state, -1) == ffi::LUA_TFUNCTION
            };
            if found {
                ffi::lua_replace(state, top + 1);
            }
            ffi::lua_settop(state, top + found as c_int);
            Ok(found)
        }
    }

    pub fn get(&self, name: &str) -> Option<Function> {
        let n = slot(name.as_bytes())?;
        let mut found = None;
        self.with_table(|raw| unsafe {
            mlua::ffi::lua_rawgeti(raw.state(), -1, n as _);
            found = raw.pop::<Option<Function>>()?;
            Ok(())
        })
        .ok()?;
        found
    }

    /// Runs `f` with the handle's own table on top of the stack; false (without running it) when
    /// the handle has none yet.
    fn with_table(
        &self,
        f: impl FnOnce(&mlua::state::RawLua) -> mlua::Result<()>,
    ) -> mlua::Result<bool> {
        use mlua::ffi;
        self.0.exec_raw_lua(|raw| unsafe {
            let state = raw.state();
            let top = ffi::lua_gettop(state);
            if ffi::lua_checkstack(state, 4) == 0 {
                return Err(mlua::Error::runtime("stack overflow"));
            }
            raw.push(self.1)?;
            let done = if push_own_table(state, top + 1) {
                f(raw).map(|()| true)
            } else {
                Ok(false)
            };
            ffi::lua_settop(state, top);
            done
        })
    }

    /// Gives the handle its own table: allocation, so through mlua's protected calls, once.
    fn make_table(&self) -> mlua::Result<()> {
        let t = self.0.create_table_with_capacity(MARK, 0)?;
        t.raw_set(MARK, true)?;
        self.0.exec_raw_lua(|raw| unsafe {
            let state = raw.state();
            let top = mlua::ffi::lua_gettop(state);
            if mlua::ffi::lua_checkstack(state, 3) == 0 {
                return Err(mlua::Error::runtime("stack overflow"));
            }
            raw.push(self.1)?;
            raw.push(&t)?;
            mlua::ffi::lua_setuservalue(state, -2);
            mlua::ffi::lua_settop(state, top);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The firmware's TCP socket events, written out here rather than taken from the list the
    /// slots are made of: each needs a slot of its own, inside the table's array part.
    #[test]
    fn every_socket_event_has_its_own_slot_below_the_marker() {
        let mut seen = std::collections::HashSet::new();
        for name in [
            "connection",
            "reconnection",
            "disconnection",
            "receive",
            "sent",
            "dns",
        ] {
            let n = slot(name.as_bytes()).unwrap_or_else(|| panic!("{name} has no slot"));
            assert!((1..MARK).contains(&n), "{name}: slot {n}");
            assert!(seen.insert(n), "{name} shares slot {n}");
        }
        assert_eq!(slot(b"listen"), None);
    }
}
