//! How Lua callbacks are called, and what an error inside one does.
//!
//! The firmware has three ways, and scripts can tell them apart:
//! - `luaL_pcallx` (tmr, node.task, wifi, uart): the error becomes a traceback string handed to
//!   `node.setonerror`'s function in a HIGH priority task; the default handler prints it and
//!   restarts the board two seconds later. The ESP8266 firmware before 3.0 used `lua_call` there
//!   too, so under `--firmware 1.5 | 2.2` such an error is a PANIC, as below.
//! - `lua_call` from the network stack (net, tls): unprotected. On the ESP8266 the error reaches the
//!   panic function: `PANIC: unprotected error in call to Lua API (msg)` and a reset. The ESP32 port
//!   protects these calls, so there (and on `host`) they go the `pcallx` way.
//! - Inside a binding (a dotted-quad `dns` callback, UDP "sent"): the error unwinds through the
//!   binding to the script that called it, as any Lua error would.

use std::rc::Rc;
use std::time::Duration;

use mlua::{Function, IntoLuaMulti, Lua, Value, ffi};

use crate::lauxlib::{FwError, FwResult};
use crate::net::events::OnTable;
use crate::runtime::{Priority, ResetCause, Runtime};

/// What a callback call calls: a function, or a socket's callback by name, fetched straight
/// onto the Lua stack from its table (no reference is made for it). A socket without that
/// callback is not called.
#[derive(Clone, Copy)]
pub enum Callee<'a> {
    Function(&'a Function),
    On(&'a OnTable<'a>, &'a str),
}

impl<'a> From<&'a Function> for Callee<'a> {
    fn from(f: &'a Function) -> Self {
        Callee::Function(f)
    }
}

/// The boot's helpers. They are set before any script runs, so this fails only for a bug; a
/// failure is an error, never a panic.
pub(crate) fn helpers(
    h: &Option<crate::runtime::Helpers>,
) -> mlua::Result<&crate::runtime::Helpers> {
    h.as_ref()
        .ok_or_else(|| mlua::Error::runtime("the device has not finished booting"))
}

/// The firmware's default error handler restarts the board this long after printing.
const DEFAULT_ONERROR_DELAY: Duration = Duration::from_millis(2000);

impl Runtime {
    /// Calls `f(args)` the `luaL_pcallx` way. The ESP8266 firmware before 3.0 had no
    /// `luaL_pcallx` (nor `node.setonerror`): its tmr, task and event callbacks were `lua_call`s,
    /// so an error there is a PANIC, as in a net callback (unless the built-in NTest set a handler
    /// of its own, to report the failing test).
    pub fn call_protected<'a>(
        self: &Rc<Self>,
        lua: &Lua,
        f: impl Into<Callee<'a>>,
        args: impl IntoLuaMulti,
    ) -> mlua::Result<()> {
        if self.cfg.firmware < crate::config::Firmware::V3_0
            && self.cfg.target.net_errors_panic()
            && self.onerror.borrow().is_none()
        {
            if let Err(v) = self.call_raw(lua, f, args)? {
                self.panic(&v);
            }
            return Ok(());
        }
        let res = {
            let helpers = self.helpers.borrow();
            let handler = &self::helpers(&helpers)?.traceback;
            pcall(lua, Some(handler), f, args)
        };
        match res {
            Ok(Ok(())) => {}
            Ok(Err(err)) => self.report_error(err),
            Err(e) => self.report_error(Value::String(
                lua.create_string(crate::lauxlib::lua_error_text(&e))?,
            )),
        }
        Ok(())
    }

    /// Calls a net or tls callback: a PANIC on the ESP8266, the `pcallx` way elsewhere.
    pub fn call_net<'a>(
        self: &Rc<Self>,
        lua: &Lua,
        f: impl Into<Callee<'a>>,
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

    /// Calls a net callback with `(ud, data)`, `data` made a Lua string on the way (see
    /// [`crate::lauxlib::StringMaker`]): a PANIC on the ESP8266 when there is no heap for it,
    /// as for an error in the callback.
    pub fn call_received<'a>(
        self: &Rc<Self>,
        lua: &Lua,
        f: impl Into<Callee<'a>>,
        ud: &mlua::AnyUserData,
        data: &[u8],
    ) -> mlua::Result<()> {
        let r = {
            let helpers = self.helpers.borrow();
            let arg = self::helpers(&helpers)?.strings.arg(data);
            self.call_net(lua, f, (ud, arg))
        };
        match r {
            Err(e @ mlua::Error::MemoryError(_)) => self.raise_net(lua, &e),
            r => r,
        }
    }

    /// An error outside the script's callback (no heap for the received data) takes the path of
    /// one inside it: a PANIC on the ESP8266. The raising function was made at boot, and the
    /// message is Lua's own memory error text, which every state holds: nothing is allocated.
    pub fn raise_net(self: &Rc<Self>, lua: &Lua, e: &mlua::Error) -> mlua::Result<()> {
        let (raise, msg) = {
            let helpers = self.helpers.borrow();
            let h = self::helpers(&helpers)?;
            let text = crate::lauxlib::lua_error_text(e);
            (h.raise.clone(), h.strings.make(lua, text.as_bytes())?)
        };
        self.call_net(lua, &raise, msg)
    }

    /// Calls `f(args)` from inside a binding; an error is re-raised to the binding's caller.
    pub fn call_sync(&self, lua: &Lua, f: &Function, args: impl IntoLuaMulti) -> FwResult<()> {
        match self.call_raw(lua, f, args)? {
            Ok(()) => Ok(()),
            // mlua's own error (a C stack overflow met in a binding further in) is raised as
            // the message Lua gives, not as a userdata no script can read.
            Err(Value::Error(e)) => Err(FwError::Lua(*e)),
            Err(v) => Err(FwError::Raise(v)),
        }
    }

    /// `pcall(f, args)`: the raw error value on failure.
    fn call_raw<'a>(
        &self,
        lua: &Lua,
        f: impl Into<Callee<'a>>,
        args: impl IntoLuaMulti,
    ) -> mlua::Result<Result<(), Value>> {
        pcall(lua, None, f, args)
    }

    /// The ESP8266 panic function: the message, then a reset.
    fn panic(&self, err: &Value) {
        // lua_tostring of a table or function is NULL, which the panic function prints as such.
        let msg = crate::lauxlib::error_value_text(err).unwrap_or_else(|| "(null)".into());
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

/// `lua_pcall(f, args)` with an optional message handler, straight on the Lua stack: every
/// callback takes this path, so it makes no argument or result vectors and no closures (mlua's
/// `Function::call` and its `xpcall` make both). The raw error value on failure. A Rust panic
/// raised inside (the watchdog's bite) comes out of `pop_value` and keeps unwinding.
pub(crate) fn pcall<'a>(
    lua: &Lua,
    handler: Option<&Function>,
    f: impl Into<Callee<'a>>,
    args: impl IntoLuaMulti,
) -> mlua::Result<Result<(), Value>> {
    let f = f.into();
    lua.exec_raw_lua(|raw| {
        let state = raw.state();
        // SAFETY: the stack is checked before pushing, and restored whichever way this returns.
        unsafe {
            let _top = RestoreTop::new(state);
            // The handler, the function, and room for arguments whose push does not check
            // (a single value, or one that mlua pushes through a protected call of its own).
            if ffi::lua_checkstack(state, 8) == 0 {
                return Err(mlua::Error::StackError);
            }
            let base = ffi::lua_gettop(state);
            match f {
                Callee::Function(f) => raw.push(f)?,
                Callee::On(on, name) => {
                    if !on.push_callback(raw, name)? {
                        return Ok(Ok(()));
                    }
                }
            }
            // The handler goes below the function, once there is one to call.
            let errfunc = match handler {
                Some(h) => {
                    raw.push(h)?;
                    ffi::lua_insert(state, base + 1);
                    base + 1
                }
                None => 0,
            };
            let nargs = args.push_into_stack_multi(raw)?;
            if ffi::lua_pcall(state, nargs, 0, errfunc) == ffi::LUA_OK {
                Ok(Ok(()))
            } else {
                Ok(Err(raw.pop_value()))
            }
        }
    })
}

/// Puts the Lua stack back to its height at creation when dropped, also while unwinding.
struct RestoreTop(*mut ffi::lua_State, std::ffi::c_int);

impl RestoreTop {
    /// SAFETY: `state` must stay valid for the guard's life.
    unsafe fn new(state: *mut ffi::lua_State) -> Self {
        RestoreTop(state, unsafe { ffi::lua_gettop(state) })
    }
}

impl Drop for RestoreTop {
    fn drop(&mut self) {
        // SAFETY: the state outlives the guard (see `new`); lowering the top never fails.
        unsafe { ffi::lua_settop(self.0, self.1) }
    }
}
