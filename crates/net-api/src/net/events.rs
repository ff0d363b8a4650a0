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
