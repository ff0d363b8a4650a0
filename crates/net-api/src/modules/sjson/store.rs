//! `t[k] = v` for the decoder, at the cost of one protected call at most.
//!
//! Used when a `metatable` option makes every table's stores visible (otherwise `build.rs`
//! makes the whole document in one call). Through mlua each store on a device profile (where an
//! allocation may fail) makes a C closure and a protected call, and each string becomes a
//! reference first. Here a store is one `lua_pcall` of one C function, made once per Lua state,
//! which makes the key and value strings itself from bytes handed over in a thread-local, so a
//! failed allocation is `not enough memory` as everywhere else. On the host profile nothing can
//! fail short of the process running out, so the store is made directly, as mlua itself does
//! there.

use std::cell::Cell;
use std::ffi::c_int;

use mlua::{Function, Lua, Table, Value, ffi};

/// A key or value: bytes to make a string of, or a value that is pushed as it is.
pub enum Item<'a> {
    Bytes(&'a [u8]),
    Value(Value),
}

type Pending = [(*const u8, usize); 2];
const NONE: Pending = [(std::ptr::null(), 0); 2];

thread_local! {
    /// The key and value bytes `store_c` makes strings of (a null pointer: on the stack).
    static PENDING: Cell<Pending> = const { Cell::new(NONE) };
}

pub struct Storer {
    f: Function,
    collect: Function,
    new_table: Function,
    protect: bool,
}

impl Storer {
    pub fn new(lua: &Lua, protect: bool) -> mlua::Result<Storer> {
        // SAFETY: `store_c` follows the lua_CFunction contract (see there).
        let f = unsafe { lua.create_c_function(store_c)? };
        // SAFETY: as `store_c`.
        let collect = unsafe { lua.create_c_function(collect_c)? };
        // SAFETY: as `store_c`.
        let new_table = unsafe { lua.create_c_function(new_table_c)? };
        Ok(Storer {
            f,
            collect,
            new_table,
            protect,
        })
    }

    /// A new empty table, made under one protected call where allocations may fail.
    pub fn new_table(&self, lua: &Lua) -> mlua::Result<Table> {
        if !self.protect {
            return lua.create_table();
        }
        lua.exec_raw_lua(|raw| unsafe {
            let state = raw.state();
            if ffi::lua_checkstack(state, 2) == 0 {
                return Err(mlua::Error::StackError);
            }
            raw.push(&self.new_table)?;
            let status = ffi::lua_pcall(state, 0, 1, 0);
            crate::lauxlib::pcall_result(raw, status)?;
            raw.pop::<Table>()
        })
    }

    /// A full collection, made without allocating (the heap may be exhausted): the board's
    /// emergency collection. A finaliser's error is ignored, as a collection's is on the board.
    pub fn collect(&self, lua: &Lua) {
        let _ = lua.exec_raw_lua(|raw| unsafe {
            let state = raw.state();
            if ffi::lua_checkstack(state, 2) == 0 {
                return Err(mlua::Error::StackError);
            }
            raw.push(&self.collect)?;
            let status = ffi::lua_pcall(state, 0, 0, 0);
            crate::lauxlib::pcall_result(raw, status)
        });
    }

    /// `rawset(t, key, val)`.
    pub fn set(&self, lua: &Lua, t: &Table, key: Item, val: Item) -> mlua::Result<()> {
        lua.exec_raw_lua(|raw| unsafe {
            let state = raw.state();
            if ffi::lua_checkstack(state, 6) == 0 {
                return Err(mlua::Error::StackError);
            }
            let base = ffi::lua_gettop(state);
            if !self.protect {
                raw.push(t)?;
                for item in [key, val] {
                    match item {
                        Item::Bytes(b) => {
                            ffi::lua_pushlstring(state, b.as_ptr().cast(), b.len());
                        }
                        Item::Value(v) => raw.push(v)?,
                    }
                }
                ffi::lua_rawset(state, -3);
                ffi::lua_settop(state, base);
                return Ok(());
            }
            raw.push(&self.f)?;
            raw.push(t)?;
            let mut pending = NONE;
            let mut nargs = 1;
            for (n, item) in [key, val].into_iter().enumerate() {
                match item {
                    Item::Bytes(b) => pending[n] = (b.as_ptr(), b.len()),
                    Item::Value(v) => {
                        raw.push(v)?;
                        nargs += 1;
                    }
                }
            }
            // SAFETY: the bytes outlive the call that reads them, and are unset before anything
            // else can run.
            PENDING.with(|p| p.set(pending));
            let status = ffi::lua_pcall(state, nargs, 0, 0);
            PENDING.with(|p| p.set(NONE));
            crate::lauxlib::pcall_result(raw, status)
        })
    }
}

/// `store_c(t, [k], [v])`: `t[k] = v` raw, with a key or value missing from the arguments made
/// from the pending bytes. Called any other way (it is never reachable from a script) it stores
/// what it is given, or nothing.
unsafe extern "C-unwind" fn store_c(state: *mut ffi::lua_State) -> c_int {
    let pending = PENDING.with(|p| p.get());
    // SAFETY: `Storer::set` made room on the stack and set the bytes from live slices.
    unsafe {
        if ffi::lua_type(state, 1) != ffi::LUA_TTABLE {
            return 0;
        }
        let mut arg = 2;
        for (ptr, len) in pending {
            if ptr.is_null() {
                ffi::lua_pushvalue(state, arg);
                arg += 1;
            } else {
                ffi::lua_pushlstring(state, ptr.cast(), len);
            }
        }
        if ffi::lua_type(state, -2) == ffi::LUA_TNIL {
            return 0;
        }
        ffi::lua_rawset(state, 1);
    }
    0
}

/// `collect_c()`: a full garbage collection.
unsafe extern "C-unwind" fn collect_c(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called under `lua_pcall`, where a finaliser's error is caught.
    unsafe { ffi::lua_gc(state, ffi::LUA_GCCOLLECT, 0) };
    0
}

/// `new_table_c()`: a new empty table.
unsafe extern "C-unwind" fn new_table_c(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called under `lua_pcall`, which catches a failed allocation.
    unsafe { ffi::lua_createtable(state, 0, 0) };
    1
}
