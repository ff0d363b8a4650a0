//! The device heap. A board has tens of kilobytes; scripts that build a whole web page in one
//! string find out there. Lua's allocations are capped at the state's size after boot plus the
//! profile's free heap scaled by [`HOST_BYTES_PER_DEVICE_BYTE`] (host objects are bigger: 64-bit
//! pointers), so an allocation past it fails with Lua's own `not enough memory`, and `node.heap()`
//! reports the free part in device bytes.

use mlua::Lua;
use mlua::prelude::{LuaGcIncParams, LuaGcMode};

use crate::runtime::Runtime;

/// How many host bytes one device byte of Lua data takes (pointer-heavy objects double in size).
pub const HOST_BYTES_PER_DEVICE_BYTE: usize = 2;

/// Lua memory in use when the script starts: the baseline that the device heap is counted from.
struct Baseline(usize);

/// Lua memory in use above which the loop collects garbage between callbacks.
struct CollectAbove(usize);

pub(crate) fn apply_limit(lua: &Lua, rt: &Runtime) {
    let base = lua.used_memory();
    lua.set_app_data(Baseline(base));
    if let Some(heap) = rt.cfg.target.heap() {
        let _ = lua.set_memory_limit(base + heap * HOST_BYTES_PER_DEVICE_BYTE);
        // The board's module tables live in flash, the simulator's in the Lua heap, so the default
        // pause (wait for memory to double) would start a collection only past the device's limit
        // once the modules weigh more than the headroom, and garbage would run a script out of
        // memory. Collect continuously, and fast enough that the overshoot stays a fraction.
        lua.gc_set_mode(LuaGcMode::Incremental(
            LuaGcIncParams::default().pause(100).step_multiplier(400),
        ));
        lua.set_app_data(CollectAbove(
            base + heap * HOST_BYTES_PER_DEVICE_BYTE * 3 / 4,
        ));
    }
}

/// The firmware's Lua collects garbage when an allocation would fail (its emergency GC), so a
/// board streaming data through short-lived strings never runs out on garbage. Lua 5.1 here has no
/// emergency collection and its incremental collector can lag behind such a stream, so the loop
/// calls this between callbacks: a full collection once three quarters of the device heap is
/// taken. (Within a callback, the always-running incremental collector set in `apply_limit` keeps
/// up with garbage instead.)
pub(crate) fn between_callbacks(lua: &Lua) {
    let above = lua.app_data_ref::<CollectAbove>().map(|c| c.0);
    if let Some(above) = above
        && lua.used_memory() > above
    {
        let _ = lua.gc_collect();
    }
}

/// `node.heap()`: free bytes, in device bytes.
pub fn free(lua: &Lua, rt: &Runtime) -> i64 {
    let base = lua.app_data_ref::<Baseline>().map(|b| b.0).unwrap_or(0);
    let used = lua.used_memory().saturating_sub(base) / HOST_BYTES_PER_DEVICE_BYTE;
    match rt.cfg.target.heap() {
        Some(heap) => heap.saturating_sub(used) as i64,
        None => (i32::MAX as usize).saturating_sub(used) as i64,
    }
}

/// Runs `load` with its allocations kept off the device heap: what a board keeps in flash (LFS),
/// such as the built-in NTest, costs a script none of its RAM.
pub(crate) fn exempt<R>(lua: &Lua, load: impl FnOnce() -> mlua::Result<R>) -> mlua::Result<R> {
    lua.gc_collect()?;
    let before = lua.used_memory();
    let limit = lua.set_memory_limit(0)?; // 0: no limit while loading
    let r = load();
    let _ = lua.gc_collect();
    let grown = lua.used_memory().saturating_sub(before);
    if let Some(mut b) = lua.app_data_mut::<Baseline>() {
        b.0 += grown;
    }
    lua.set_memory_limit(if limit == 0 { 0 } else { limit + grown })?;
    r
}
