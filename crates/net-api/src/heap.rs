//! The device heap. A board has tens of kilobytes; scripts that build a whole web page in one
//! string find out there. Lua's allocations are capped at the state's size after boot plus the
//! profile's free heap scaled by [`HOST_BYTES_PER_DEVICE_BYTE`] (host objects are bigger: 64-bit
//! pointers), so an allocation past it fails with Lua's own `not enough memory`, and `node.heap()`
//! reports the free part in device bytes.

use std::cell::Cell;
use std::rc::Rc;

use mlua::Lua;
use mlua::prelude::{LuaGcIncParams, LuaGcMode};

use crate::runtime::Runtime;

/// How many host bytes one device byte of Lua data takes (pointer-heavy objects double in size).
pub const HOST_BYTES_PER_DEVICE_BYTE: usize = 2;

/// A device's heap accounting, kept by its [`Runtime`] (checked after every callback, so it must
/// be cheap to reach) and shared with the Lua state for [`exempt`].
#[derive(Default)]
pub(crate) struct Heap {
    /// Lua memory in use when the script starts: the baseline the device heap is counted from.
    base: Cell<usize>,
    /// The Lua memory limit (0: none, the host profile).
    limit: Cell<usize>,
    /// Lua memory in use above which the loop collects garbage between callbacks.
    above: Cell<usize>,
}

impl Heap {
    /// Caps the Lua state at the profile's heap, counted from what the state holds now.
    pub(crate) fn apply_limit(self: &Rc<Self>, lua: &Lua, rt: &Runtime) {
        let base = lua.used_memory();
        self.base.set(base);
        lua.set_app_data(self.clone());
        if let Some(heap) = rt.cfg.target.heap() {
            let limit = base + heap * HOST_BYTES_PER_DEVICE_BYTE;
            let _ = lua.set_memory_limit(limit);
            self.limit.set(limit);
            self.above
                .set(base + heap * HOST_BYTES_PER_DEVICE_BYTE * 3 / 4);
            // The board's module tables live in flash, the simulator's in the Lua heap, so the
            // default pause (start a cycle once memory doubles) would start one only past the
            // device's limit. And the board has an emergency collector that Lua 5.1 lacks, so a
            // script may make garbage without bound inside one callback: a cycle must start as
            // soon as the last one ends (pause 100), and finish while memory grows by at most a
            // quarter of what is live (step multiplier 400). Cycles started later in the headroom
            // streamed a third faster, but ran a script that kept half the heap live out of
            // memory in a loop that a board finishes.
            lua.gc_set_mode(LuaGcMode::Incremental(
                LuaGcIncParams::default().pause(100).step_multiplier(400),
            ));
        }
    }

    /// The firmware's Lua collects garbage when an allocation would fail (its emergency GC), so a
    /// board streaming data through short-lived strings never runs out on garbage. The collector
    /// set by [`Heap::apply_limit`] keeps up with garbage within a callback; between callbacks, the
    /// loop calls this: a full collection once three quarters of the device heap is taken, in
    /// case the incremental collector fell behind.
    pub(crate) fn between_callbacks(&self, lua: &Lua) {
        if self.limit.get() != 0 && lua.used_memory() > self.above.get() {
            let _ = lua.gc_collect();
        }
    }

    /// `node.heap()`: free bytes, in device bytes.
    pub(crate) fn free(&self, lua: &Lua, rt: &Runtime) -> i64 {
        let used = lua.used_memory().saturating_sub(self.base.get()) / HOST_BYTES_PER_DEVICE_BYTE;
        match rt.cfg.target.heap() {
            Some(heap) => heap.saturating_sub(used) as i64,
            None => (i32::MAX as usize).saturating_sub(used) as i64,
        }
    }

    /// Moves the baseline and the limits up by `grown` bytes that the device does not pay for.
    fn exempt_grown(&self, grown: usize) {
        self.base.set(self.base.get() + grown);
        if self.limit.get() != 0 {
            self.limit.set(self.limit.get() + grown);
            self.above.set(self.above.get() + grown);
        }
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
    let heap = lua.app_data_ref::<Rc<Heap>>().map(|h| (*h).clone());
    if let Some(heap) = heap {
        heap.exempt_grown(grown);
    }
    lua.set_memory_limit(if limit == 0 { 0 } else { limit + grown })?;
    r
}
