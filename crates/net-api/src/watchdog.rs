//! The device's watchdog, and why a script cannot switch it off.
//!
//! A board's watchdog is hardware: whatever the script does, a loop that never returns to the
//! event loop resets the chip. Here it is an instruction hook (every [`CHECK_EVERY`] instructions)
//! that asks the runtime whether Lua has run too long since the loop last fed it, and unwinds with
//! [`WatchdogBite`] when it has.
//!
//! Lua keeps one hook per thread, so a script's `debug.sethook` (present on the host target and in
//! the 5.3 build) would replace it, and `debug.sethook() while true do end` would run forever.
//! So `debug.sethook`/`debug.gethook` are wrapped: the script's hook is remembered and called
//! from the simulator's own hook for the events it asked for, and the watchdog hook stays
//! installed. `gethook` reports the script's hook, as if it were the only one.
//!
//! Work done inside one C call never reaches an instruction hook; the long ones a script can
//! start (pattern matching, `tmr.delay`) check the watchdog themselves (`strlib.rs`, `tmr.rs`).

use std::cell::{Cell, RefCell};
use std::panic::resume_unwind;
use std::rc::{Rc, Weak};

use mlua::debug::DebugEvent;
use mlua::{Function, HookTriggers, Lua, Table, Value, VmState};

use crate::lauxlib::{FwResult, arg_err, bind};
use crate::runtime::{Runtime, WatchdogBite};

/// Instructions between two looks at the watchdog.
const CHECK_EVERY: u32 = 10_000;

/// A hook the script set with `debug.sethook`.
#[derive(Clone)]
struct ScriptHook {
    f: Function,
    mask: String,
    count: u32,
}

/// The script's hook, shared by the wrappers and the simulator's hook.
type Shared = Rc<RefCell<Option<ScriptHook>>>;

/// Installs the watchdog hook and, where the script has them, the `debug.sethook`/`gethook`
/// wrappers that keep it installed.
pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let shared: Shared = Rc::default();
    set_hook(lua, rt, &shared)?;
    let Ok(debug) = lua.globals().get::<Table>("debug") else {
        return Ok(());
    };
    if debug.get::<Value>("sethook")?.is_function() {
        let (rt, hooks) = (Rc::downgrade(rt), shared.clone());
        debug.set(
            "sethook",
            bind(lua, move |lua, a| sethook(lua, &rt, &hooks, a))?,
        )?;
    }
    if debug.get::<Value>("gethook")?.is_function() {
        let hooks = shared.clone();
        debug.set(
            "gethook",
            bind(lua, move |_, _| {
                Ok(match hooks.borrow().clone() {
                    Some(h) => (Value::Function(h.f), h.mask, h.count),
                    None => (Value::Nil, String::new(), 0),
                })
            })?,
        )?;
    }
    Ok(())
}

/// Panics with [`WatchdogBite`] when the watchdog has expired: for code that runs long inside one
/// call, where no instruction hook can look.
pub(crate) fn check(rt: &Runtime) {
    if rt.watchdog_expired() {
        resume_unwind(Box::new(WatchdogBite));
    }
}

/// `debug.sethook([thread,] [f, mask [, count]])`. A thread argument is accepted and the hook
/// applies to every thread: the simulator's hook is global.
fn sethook(lua: &Lua, rt: &Weak<Runtime>, hooks: &Shared, a: crate::lauxlib::Args) -> FwResult<()> {
    let first = if matches!(a.get(1), Value::Thread(_)) {
        2
    } else {
        1
    };
    let new = match a.get(first) {
        Value::Nil => None,
        Value::Function(f) => {
            let mask = a.check_str(lua, first + 1)?;
            let count = match a.get(first + 2) {
                Value::Nil => 0,
                _ => a.check_integer(first + 2)?.clamp(0, u32::MAX as i64) as u32,
            };
            (!mask.is_empty() || count > 0).then_some(ScriptHook { f, mask, count })
        }
        _ => return arg_err(first, "function expected"),
    };
    *hooks.borrow_mut() = new;
    if let Some(rt) = rt.upgrade() {
        set_hook(lua, &rt, hooks)?;
    }
    Ok(())
}

/// (Re)installs the simulator's hook with the triggers the watchdog and the script's hook need.
fn set_hook(lua: &Lua, rt: &Rc<Runtime>, hooks: &Shared) -> mlua::Result<()> {
    let script = hooks.borrow().clone();
    let mut triggers = HookTriggers::new();
    let mut step = CHECK_EVERY;
    if let Some(h) = &script {
        triggers.on_calls = h.mask.contains('c');
        triggers.on_returns = h.mask.contains('r');
        triggers.every_line = h.mask.contains('l');
        if h.count > 0 {
            step = count_step(h.count);
        }
    }
    triggers.every_nth_instruction = Some(step);
    let rt = Rc::downgrade(rt);
    let counted = Cell::new(0u64);
    lua.set_global_hook(triggers, move |_, debug| {
        let event = debug.event();
        if matches!(event, DebugEvent::Count)
            && let Some(rt) = rt.upgrade()
        {
            check(&rt);
        }
        let Some(h) = &script else {
            return Ok(VmState::Continue);
        };
        let (name, line) = match event {
            DebugEvent::Count => {
                if h.count == 0 {
                    return Ok(VmState::Continue);
                }
                counted.set(counted.get() + u64::from(step));
                if counted.get() < u64::from(h.count) {
                    return Ok(VmState::Continue);
                }
                counted.set(0);
                ("count", None)
            }
            DebugEvent::Line => ("line", debug.current_line()),
            DebugEvent::Call => ("call", None),
            DebugEvent::Ret => ("return", None),
            DebugEvent::TailCall if cfg!(feature = "lua53") => ("tail call", None),
            DebugEvent::TailCall => ("tail return", None),
            DebugEvent::Unknown(_) => return Ok(VmState::Continue),
        };
        h.f.call::<()>((name, line))?;
        Ok(VmState::Continue)
    })
}

/// The instruction count the hook runs at for a script's count hook of `count`: a divisor of it
/// no larger than [`CHECK_EVERY`], so the script's hook still fires exactly every `count`.
fn count_step(count: u32) -> u32 {
    let mut parts = count.div_ceil(CHECK_EVERY);
    while !count.is_multiple_of(parts) {
        parts += 1;
    }
    count / parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_step_divides_the_scripts_count_and_keeps_the_watchdog_looking() {
        assert_eq!(count_step(100), 100);
        assert_eq!(count_step(10_000), 10_000);
        assert_eq!(count_step(30_000), 10_000);
        assert_eq!(count_step(25_000), 6_250);
        assert_eq!(count_step(10_007), 1); // a prime above the step
    }
}
