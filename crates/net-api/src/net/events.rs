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
/// board (callbacks there live until `__gc`). Each name has a fixed user-value index (see `slot`).
///
/// The callbacks are the user values themselves, not entries of a table held in user value 1: mlua
/// already keeps a handle's user values in a table of their own, so a second table cost one table
/// creation and a protected `raw_set` per `on()`, and one more lookup per event (about 4,000
/// instructions of a one-request-per-connection web server's ~70,000 per request).
pub struct OnTable<'a>(pub &'a mlua::AnyUserData);

/// Callback names and their user-value indices (position + 1). Every name a socket kind accepts
/// must be listed here.
const SLOTS: &[&str] = &[
    "connection",
    "disconnection",
    "reconnection",
    "dns",
    "receive",
    "sent",
    "accept",
];

/// The user-value index of a callback name.
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
        let Some(n) = slot(name) else {
            // A programming error (a kind accepting a name missing from SLOTS), not a script's.
            return Err(mlua::Error::runtime(format!(
                "no slot for callback '{name}'"
            )));
        };
        self.0.set_nth_user_value(n, value)
    }

    pub fn get(&self, name: &str) -> Option<Function> {
        self.0.nth_user_value(slot(name)?).ok()?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_socket_event_has_a_slot() {
        for name in crate::net::tcpsocket::EVENTS {
            assert!(slot(name).is_some(), "{name}");
        }
    }
}
