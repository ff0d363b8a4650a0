//! The callback table behind `sock:on(event, fn|nil)`, shared by every socket kind.
//!
//! Each kind declares which event names it accepts; a function stores or replaces a callback, `nil`
//! removes it, anything else is the firmware's `invalid callback function`. Callbacks are cloned
//! out before they are called (never called under a borrow), because a callback may call `on`
//! again for its own socket.

use mlua::{Function, Value};

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
        self.slots.retain(|(n, _)| n != name);
        match value {
            Value::Function(f) => self.slots.push((name, f)),
            Value::Nil => {}
            _ => return fw_err("invalid callback function"),
        }
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
/// board (callbacks there live until `__gc`). The user value is a table keyed by small integers
/// (see [`slot`]), so looking a callback up on every event allocates nothing.
pub struct OnTable<'a>(pub &'a mlua::AnyUserData);

/// Callback names with a fixed integer slot; other names are stored under their string.
const SLOTS: &[&str] = &[
    "connection",
    "disconnection",
    "reconnection",
    "dns",
    "receive",
    "sent",
    "accept",
];

/// The key a callback name is stored under.
fn slot(name: &str) -> Value {
    match SLOTS.iter().position(|n| *n == name) {
        Some(i) => Value::Integer(i as i64 + 1),
        None => Value::Nil,
    }
}

impl OnTable<'_> {
    /// `on(event, value)`, with `allowed` the kind's event names.
    pub fn set(&self, allowed: &[&'static str], event: &str, value: Value) -> FwResult<()> {
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
        self.store(name, Value::Function(f))
    }

    fn store(&self, name: &str, value: Value) -> mlua::Result<()> {
        let t = match self.0.user_value::<Option<mlua::Table>>()? {
            Some(t) => t,
            None => {
                let t = self.0.weak_lua().upgrade().create_table()?;
                self.0.set_user_value(&t)?;
                t
            }
        };
        match slot(name) {
            Value::Nil => t.raw_set(name, value),
            k => t.raw_set(k, value),
        }
    }

    pub fn get(&self, name: &str) -> Option<Function> {
        OnTable::get_in(&self.table()?, name)
    }

    /// The table behind this handle's callbacks, once one was set. It never changes afterwards,
    /// so a busy handle may keep it for its lookups (see [`OnTable::get_in`]) while it is anchored.
    pub fn table(&self) -> Option<mlua::Table> {
        self.0.user_value::<Option<mlua::Table>>().ok()?
    }

    /// A callback from a table returned by [`OnTable::table`].
    pub fn get_in(t: &mlua::Table, name: &str) -> Option<Function> {
        match slot(name) {
            Value::Nil => t.raw_get(name).ok()?,
            k => t.raw_get(k).ok()?,
        }
    }
}
