//! How Lua callbacks are called, and what an error inside one does.
//!
//! The firmware has three ways, and scripts can tell them apart:
//! - `luaL_pcallx` (tmr, node.task, wifi, uart): the error becomes a traceback string handed to
//!   `node.setonerror`'s function in a HIGH priority task; the default handler prints it and
//!   restarts the board two seconds later.
//! - `lua_call` from the network stack (net, tls): unprotected. On the ESP8266 the error reaches the
//!   panic function: `PANIC: unprotected error in call to Lua API (msg)` and a reset. The ESP32 port
//!   protects these calls, so there (and on `host`) they go the `pcallx` way.
//! - Inside a binding (a dotted-quad `dns` callback, UDP "sent"): the error unwinds through the
//!   binding to the script that called it, as any Lua error would.

use std::rc::Rc;
use std::time::Duration;

use mlua::{Function, IntoLuaMulti, Lua, Value};

use crate::lauxlib::{FwError, FwResult};
use crate::runtime::{Priority, ResetCause, Runtime};

/// The firmware's default error handler restarts the board this long after printing.
const DEFAULT_ONERROR_DELAY: Duration = Duration::from_millis(2000);

impl Runtime {
    /// Calls `f(args)` the `luaL_pcallx` way.
    pub fn call_protected(
        self: &Rc<Self>,
        lua: &Lua,
        f: &Function,
        args: impl IntoLuaMulti,
    ) -> mlua::Result<()> {
        // `(f, args)` goes onto the Lua stack directly, and only the first two results come
        // back: no argument or result vectors on this path, which every callback takes.
        let res = {
            let helpers = self.helpers.borrow();
            let pcallx = &helpers.as_ref().expect("prelude loaded").pcallx;
            pcallx.call::<(bool, Value)>((f, args))
        };
        match res {
            Ok((false, err)) => self.report_error(err),
            Ok(_) => {}
            Err(e) => self.report_error(Value::String(
                lua.create_string(crate::lauxlib::lua_error_text(&e))?,
            )),
        }
        Ok(())
    }

    /// Calls a net or tls callback: a PANIC on the ESP8266, the `pcallx` way elsewhere.
    pub fn call_net(
        self: &Rc<Self>,
        lua: &Lua,
        f: &Function,
        args: impl IntoLuaMulti,
    ) -> mlua::Result<()> {
        if !self.cfg.target.net_errors_panic() {
            return self.call_protected(lua, f, args);
        }
        if let Err(v) = self.call_raw(lua, f, args)? {
            self.panic(&v);
        }
        Ok(())
    }

    /// Calls `f(args)` from inside a binding; an error is re-raised to the binding's caller.
    pub fn call_sync(&self, lua: &Lua, f: &Function, args: impl IntoLuaMulti) -> FwResult<()> {
        match self.call_raw(lua, f, args)? {
            Ok(()) => Ok(()),
            Err(v) => Err(FwError::Raise(v)),
        }
    }

    /// `pcall(f, args)`: the raw error value on failure.
    fn call_raw(
        &self,
        _lua: &Lua,
        f: &Function,
        args: impl IntoLuaMulti,
    ) -> mlua::Result<Result<(), Value>> {
        let (ok, err) = {
            let helpers = self.helpers.borrow();
            let pcall = &helpers.as_ref().expect("prelude loaded").pcall;
            pcall.call::<(bool, Value)>((f, args))?
        };
        Ok(if ok { Ok(()) } else { Err(err) })
    }

    /// The ESP8266 panic function: the message, then a reset.
    fn panic(&self, err: &Value) {
        let msg = match err {
            Value::String(s) => s.to_string_lossy(),
            Value::Integer(i) => i.to_string(),
            Value::Number(n) => n.to_string(),
            _ => "(null)".to_string(),
        };
        self.diag(&format!(
            "PANIC: unprotected error in call to Lua API ({msg})"
        ));
        self.request_reset(ResetCause::Panic);
    }

    /// Hands an error to `node.setonerror`'s function in a HIGH priority task, as the firmware does.
    pub fn report_error(self: &Rc<Self>, err: Value) {
        let rt = self.clone();
        self.post_internal(
            Priority::High,
            Box::new(move |lua| {
                let handler = rt.onerror.borrow().clone();
                match handler {
                    Some(f) => match rt.call_raw(lua, &f, err)? {
                        Ok(()) => Ok(()),
                        Err(e) => rt.default_onerror(lua, e),
                    },
                    None => rt.default_onerror(lua, err),
                }
            }),
        );
    }

    /// `node.c`'s default handler: print the message, restart the board 2 s later.
    fn default_onerror(self: &Rc<Self>, lua: &Lua, err: Value) -> mlua::Result<()> {
        let text = lua
            .coerce_string(err)?
            .map(|s| s.to_string_lossy())
            .unwrap_or_else(|| "(error object)".into());
        self.uart(format!("{text}\n").as_bytes());
        let rt = Rc::downgrade(self);
        self.arm_timer(
            DEFAULT_ONERROR_DELAY,
            Box::new(move |_| {
                if let Some(rt) = rt.upgrade() {
                    rt.request_reset(ResetCause::Error);
                }
                Ok(())
            }),
        );
        Ok(())
    }
}
