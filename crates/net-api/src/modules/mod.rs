//! The firmware's C modules, one file each, and the shape every handle type shares.
//!
//! A handle type (`tmr.timer`, `net.tcpsocket`, ...) is a thin Rust handle around shared state. Its
//! methods are firmware-style bindings collected in a table kept in the registry under the
//! firmware's metatable name, which is also the name argument errors use
//! (`calling 'send' on bad self (net.tcpsocket expected, got userdata)`).

use std::rc::Rc;

use mlua::{Function, Lua, Table, Value};

use crate::runtime::{Removed, ResetCause, Runtime};

pub mod bit;
pub mod file;
pub mod lfs;
pub mod node;
pub mod pipe;
pub mod tmr;
pub mod uart;
pub mod wifi;

/// Implements `mlua::UserData` for a handle type whose methods live in the registry under `$name`.
#[macro_export]
macro_rules! handle_type {
    ($ty:ty, $name:expr) => {
        impl mlua::UserData for $ty {
            fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
                fields.add_meta_field_with("__index", |lua| {
                    lua.named_registry_value::<mlua::Table>($name)
                });
                fields.add_meta_field("__name", $name);
            }
        }
    };
}

/// Stores a handle type's method table under its metatable name; call before creating handles.
pub fn register_methods(
    lua: &Lua,
    name: &str,
    methods: Vec<(&str, Function)>,
) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (k, f) in methods {
        t.set(k, f)?;
    }
    lua.set_named_registry_value(name, t.clone())?;
    Ok(t)
}

/// A module table from `(name, function)` pairs.
pub fn module_table(lua: &Lua, fns: Vec<(&str, Function)>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (k, f) in fns {
        t.set(k, f)?;
    }
    Ok(t)
}

/// Makes `table` (a module, or `_G` with `prefix` "") answer reads of names the running generation
/// lacks but an older one had: the read still gives nil, so the script gets the firmware's own
/// error (`attempt to call field 'alarm' (a nil value)`), and the first read of each name puts a
/// note on stderr naming the removal and the `--firmware` that has it. Only misses pay for this.
pub fn note_removed(
    lua: &Lua,
    rt: &Rc<Runtime>,
    table: &Table,
    prefix: &'static str,
    removed: &'static [(&'static str, Removed)],
) -> mlua::Result<()> {
    if removed.is_empty() {
        return Ok(());
    }
    let rt = Rc::downgrade(rt);
    // A binding like any other: its failures (short of heap) read as the firmware's.
    let index = crate::lauxlib::bind(lua, move |_, a| {
        if let (Value::String(k), Some(rt)) = (a.arg(2), rt.upgrade())
            && let Some((name, r)) = removed.iter().find(|(n, _)| k.as_bytes() == n.as_bytes())
        {
            rt.note_removed(&format!("{prefix}{name}"), r);
        }
        Ok(Value::Nil)
    })?;
    let mt = lua.create_table()?;
    mt.set("__index", index)?;
    table.set_metatable(Some(mt))?;
    Ok(())
}

/// Installs every module as a global of a freshly booted device.
pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>, reset: Option<ResetCause>) -> mlua::Result<()> {
    tmr::install(lua, rt)?;
    node::install(lua, rt, reset)?;
    lfs::install(lua, rt)?;
    wifi::install(lua, rt)?;
    uart::install(lua, rt)?;
    bit::install(lua)?;
    pipe::install(lua, rt)?;
    file::install(lua, rt)?;
    crate::net::install(lua, rt)?;
    crate::tls::install(lua, rt)?;
    Ok(())
}
