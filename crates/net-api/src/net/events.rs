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

/// The same `on()` table kept in the handle's own Lua user values instead of in Rust.
///
/// A callback that captures its own socket (`c:on("sent", function() c:close() end)`) then forms a
/// cycle that Lua's collector can see and break: once the socket is closed and unanchored it is
/// collected with its callbacks, yet a socket closed and connected again keeps them, as on the
/// board (callbacks there live until `__gc`). The table is the handle's first user value, made by
/// the first `on()`; each name has a fixed integer slot in it (see `slot`).
pub struct OnTable<'a>(pub &'a mlua::AnyUserData);

/// Callback names with a fixed integer key; other names are stored under their string.
const SLOTS: &[&str] = &[
    "connection",
    "disconnection",
    "reconnection",
    "dns",
    "receive",
    "sent",
    "accept",
];

/// The integer key of a callback name, if it has one.
fn slot(name: &str) -> Option<usize> {
    SLOTS.iter().position(|n| *n == name).map(|i| i + 1)
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
        let t = match self.table()? {
            Some(t) => t,
            None => {
                let t = self.0.weak_lua().upgrade().create_table()?;
                self.0.set_nth_user_value(1, &t)?;
                t
            }
        };
        match slot(name) {
            Some(n) => t.raw_set(n, value),
            None => t.raw_set(name, value),
        }
    }

    pub fn get(&self, name: &str) -> Option<Function> {
        let t = self.table().ok()??;
        match slot(name) {
            Some(n) => t.raw_get(n).ok()?,
            None => t.raw_get(name).ok()?,
        }
    }

    /// The handle's callback table (user value 1), once a callback was stored.
    fn table(&self) -> mlua::Result<Option<mlua::Table>> {
        self.0.nth_user_value(1)
    }
}
