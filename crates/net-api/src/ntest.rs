//! The built-in NTest: what `require "NTest"` loads when the flash holds no `NTest.lua`.
//!
//! The framework itself is Lua (`ntest.lua`), with the API and terminal output of the firmware's
//! NTest, so test files written for the board run unchanged. This file gives it the two things Lua
//! on a device cannot do: name the `file:line` of a caller (the firmware's 5.1 build has no
//! `debug.getinfo`), and hand every test event to an observer. `nodemcu-sim test` installs the
//! observer ([`observe`]) to learn each test's outcome whatever output handler the test file sets;
//! under `nodemcu-sim run` there is none and the events only reach the output handler.

use std::rc::Rc;

use mlua::{Function, Lua, MultiValue, Value};

/// One event of an NTest run, as the framework reports it to its output handler, plus where the
/// check that produced it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The run's name: `require "NTest"("this")`.
    pub run: String,
    /// `start`, `queue` (a test was added), `begin`, `pass`, `fail`, `except`, `end`, `finish`.
    pub kind: String,
    /// The test's name (the run's name for `start` and `finish`).
    pub test: String,
    pub msg: Option<String>,
    pub errmsg: Option<String>,
    /// `file:line` of the `ok`/`nok`/`fail` call behind a `pass` or `fail`.
    pub at: Option<String>,
}

/// What [`observe`] installs.
pub type ObserverFn = dyn Fn(&Lua, &Event);

struct Observer(Rc<ObserverFn>);

/// Sends every NTest event of this Lua state to `f`, before the output handler sees it.
pub fn observe(lua: &Lua, f: impl Fn(&Lua, &Event) + 'static) {
    lua.set_app_data(Observer(Rc::new(f)));
}

/// The loader `require` calls for `NTest` when the flash has none: it runs the built-in chunk.
pub(crate) fn loader(lua: &Lua) -> mlua::Result<Function> {
    // On a board NTest is too big for RAM and lives in LFS; its code costs the test no heap here.
    let f = lua.create_function(|lua, _: MultiValue| {
        crate::heap::exempt(lua, || {
            let chunk = lua
                .load(include_str!("ntest.lua"))
                .set_name("@NTest.lua")
                .into_function()?;
            let host = lua.create_table()?;
            for (name, f) in [
                ("where", lua.create_function(where_)?),
                ("report", lua.create_function(report)?),
            ] {
                crate::lauxlib::keep_alive(lua, &f);
                host.set(name, f)?;
            }
            if let Some(rt) = lua
                .app_data_ref::<Rc<crate::runtime::Runtime>>()
                .map(|r| r.clone())
            {
                let f = crate::modules::node::setonerror(lua, &rt)?;
                crate::lauxlib::keep_alive(lua, &f);
                host.set("setonerror", f)?;
            }
            chunk.call::<Value>(host)
        })
    })?;
    crate::lauxlib::keep_alive(lua, &f);
    Ok(f)
}

/// `where(level)`: "file:line" of the function `level` frames above the caller, skipping frames
/// that have no line (C functions, tail calls), with the chunk name's directories cut off.
fn where_(lua: &Lua, level: usize) -> mlua::Result<Option<String>> {
    // Frame 0 is this function, 1 its caller.
    for frame in level + 1..level + 8 {
        let found = lua.inspect_stack(frame, |d| {
            let src = d.source().short_src.map(|s| s.into_owned());
            match (src, d.current_line()) {
                (Some(src), Some(line)) if line > 0 => {
                    let file = src.rsplit(['/', '\\']).next().unwrap_or(&src).to_string();
                    Some(format!("{file}:{line}"))
                }
                _ => None,
            }
        });
        match found {
            None => return Ok(None), // past the top of the stack
            Some(Some(at)) => return Ok(Some(at)),
            Some(None) => continue,
        }
    }
    Ok(None)
}

/// `report(run, kind, test, msg, errmsg, at)`.
fn report(lua: &Lua, args: MultiValue) -> mlua::Result<()> {
    let Some(observer) = lua.app_data_ref::<Observer>().map(|o| o.0.clone()) else {
        return Ok(());
    };
    let text = |i: usize| -> Option<String> {
        match args.get(i) {
            None | Some(Value::Nil) => None,
            Some(v) => lua
                .coerce_string(v.clone())
                .ok()
                .flatten()
                .map(|s| s.to_string_lossy())
                .or_else(|| v.to_string().ok()),
        }
    };
    let event = Event {
        run: text(0).unwrap_or_default(),
        kind: text(1).unwrap_or_default(),
        test: text(2).unwrap_or_default(),
        msg: text(3),
        errmsg: text(4),
        at: text(5),
    };
    observer(lua, &event);
    Ok(())
}
