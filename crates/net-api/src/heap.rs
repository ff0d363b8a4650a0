//! The device heap. A board has tens of kilobytes; scripts that build a whole web page in one
//! string find out there. Lua's allocations are capped at the state's size after boot plus the
//! profile's free heap scaled by [`HOST_BYTES_PER_DEVICE_BYTE`] (host objects are bigger: 64-bit
//! pointers), so an allocation past it fails with Lua's own `not enough memory`, and `node.heap()`
//! reports the free part in device bytes. The cap is kept by the state's own [`Allocator`],
//! which also paces the collector by how much of the heap is left.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use mlua::{Function, Lua, Table};

use crate::runtime::Runtime;
use allocator::Allocator;

mod allocator;
mod global;

/// How many host bytes one device byte of Lua data takes (pointer-heavy objects double in size).
pub const HOST_BYTES_PER_DEVICE_BYTE: usize = 2;

/// A device's heap accounting, kept by its [`Runtime`] (checked after every callback, so it must
/// be cheap to reach) and shared with the Lua state for [`exempt`].
#[derive(Default)]
pub(crate) struct Heap {
    /// Lua memory in use when the script starts: the baseline the device heap is counted from.
    base: Cell<usize>,
    /// The allocator that enforces the limit (none on the host profile).
    alloc: Cell<Option<&'static Allocator>>,
    /// Lua memory in use above which the loop collects garbage between callbacks.
    above: Cell<usize>,
    /// The address of the main thread, which mlua must be back on whenever the loop runs.
    main: Cell<usize>,
    /// The queue of finalisers due (`guard.lua`) and the function that runs it.
    finalisers: RefCell<Option<(Table, Function)>>,
}

impl Heap {
    /// Caps the Lua state at the profile's heap, counted from what the state holds now, and hands
    /// its allocations to the [`Allocator`], which paces the collector by what is left.
    pub(crate) fn apply_limit(self: &Rc<Self>, lua: &Lua, rt: &Runtime) {
        let base = lua.used_memory();
        self.base.set(base);
        self.main.set(current_thread(lua));
        lua.set_app_data(self.clone());
        match rt.cfg.target.heap() {
            Some(heap) => {
                let limit = base + heap * HOST_BYTES_PER_DEVICE_BYTE;
                self.alloc.set(Some(Allocator::install(lua, limit)));
                self.above
                    .set(base + heap * HOST_BYTES_PER_DEVICE_BYTE * 3 / 4);
            }
            // No cap on the host profile, but the same allocator: a failed allocation is Lua's
            // `not enough memory` (mlua's own aborts the process), and mlua keeps its protected
            // paths (see `allocator.rs`).
            None => {
                Allocator::install(lua, 0);
            }
        }
    }

    /// Lua memory in use, in host bytes.
    fn used(&self, lua: &Lua) -> usize {
        match self.alloc.get() {
            Some(a) => a.used(),
            None => lua.used_memory(),
        }
    }

    /// The firmware's Lua collects garbage when an allocation would fail (its emergency GC), so a
    /// board streaming data through short-lived strings never runs out on garbage. The collector
    /// paced by the [`Allocator`] keeps up with garbage within a callback; between callbacks, the
    /// loop calls this: a full collection once three quarters of the device heap is taken, in
    /// case the incremental collector fell behind.
    ///
    /// It also runs the finalisers the collector queued ([`Heap::run_finalisers`]), and checks
    /// that mlua is back on the main thread. Every binding and callback leaves it
    /// there whatever unwinds through it, since no Lua error can jump over mlua's frames (see
    /// `allocator.rs`); if a bug ever broke that, the next callback would run on a coroutine's
    /// thread, possibly freed: the run ends as an internal error instead.
    pub(crate) fn between_callbacks(&self, lua: &Lua) {
        if current_thread(lua) != self.main.get() {
            panic!("a callback left the Lua state on a coroutine's thread");
        }
        self.run_finalisers(lua);
        if self.alloc.get().is_some() && self.used(lua) > self.above.get() {
            let _ = lua.gc_collect();
        }
    }

    /// Host bytes Lua may still allocate before the device heap is full (`None`: no cap), for
    /// bindings that build a large result off the Lua heap before handing it to Lua.
    pub(crate) fn room(&self) -> Option<usize> {
        let a = self.alloc.get()?;
        let limit = a.limit();
        (limit != 0).then(|| limit.saturating_sub(a.used()))
    }

    /// Lua memory the script has taken since boot, in device bytes: what `collectgarbage("count")`
    /// reports (in KB) and `node.heap()` subtracts from the profile's heap.
    pub(crate) fn used_device(&self, lua: &Lua) -> usize {
        self.used(lua).saturating_sub(self.base.get()) / HOST_BYTES_PER_DEVICE_BYTE
    }

    /// Takes `guard.lua`'s queue of finalisers and the function that runs it.
    pub(crate) fn set_finalisers(&self, pending: Table, run: Function) {
        *self.finalisers.borrow_mut() = Some((pending, run));
    }

    /// Runs the finalisers the collector queued (5.1's `newproxy` objects, see `guard.lua`), as
    /// a task would run: an error goes to `node.setonerror`'s function.
    pub(crate) fn run_finalisers(&self, lua: &Lua) {
        let run = match &*self.finalisers.borrow() {
            Some((pending, run)) if pending.raw_len() > 0 => run.clone(),
            _ => return,
        };
        let Some(rt) = lua.app_data_ref::<Rc<Runtime>>().map(|rt| rt.clone()) else {
            return;
        };
        rt.feed_watchdog();
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.call_protected(lua, &run, ())
        }));
        if let Err(p) = ran {
            crate::event_loop::stop_unwinding(&rt, p);
        }
    }

    /// `node.heap()`: free bytes, in device bytes.
    pub(crate) fn free(&self, lua: &Lua, rt: &Runtime) -> i64 {
        let used = self.used_device(lua);
        match rt.cfg.target.heap() {
            Some(heap) => heap.saturating_sub(used) as i64,
            None => (i32::MAX as usize).saturating_sub(used) as i64,
        }
    }

    /// Moves the baseline and the collection mark up by `grown` bytes that the device does not
    /// pay for (the allocator's limit is moved by [`exempt`]).
    fn exempt_grown(&self, grown: usize) {
        self.base.set(self.base.get() + grown);
        if self.alloc.get().is_some() {
            self.above.set(self.above.get() + grown);
        }
    }
}

/// The room a binding has for a result it builds off the Lua heap before handing it to Lua (the
/// whole result is then one Lua string): past it, Lua's `not enough memory`, before anything that
/// large is built. The first time it runs short it collects garbage and looks again, as the
/// firmware's emergency collector would before failing an allocation.
pub(crate) struct Room<'a> {
    lua: &'a Lua,
    heap: &'a Heap,
    left: Cell<usize>,
    collected: Cell<bool>,
}

impl<'a> Room<'a> {
    pub(crate) fn new(lua: &'a Lua, heap: &'a Heap) -> Self {
        Room {
            lua,
            heap,
            left: Cell::new(heap.room().unwrap_or(usize::MAX)),
            collected: Cell::new(false),
        }
    }

    /// True when a result of `len` bytes fits.
    pub(crate) fn fits(&self, len: usize) -> bool {
        if len <= self.left.get() {
            return true;
        }
        if self.collected.replace(true) {
            return false;
        }
        let _ = self.lua.gc_collect();
        self.left.set(self.heap.room().unwrap_or(usize::MAX));
        len <= self.left.get()
    }
}

/// The address of the thread mlua runs Lua on (the main thread outside callbacks).
fn current_thread(lua: &Lua) -> usize {
    lua.exec_raw_lua(|raw| raw.state() as usize)
}

/// Runs `load` with its allocations kept off the device heap: what a board keeps in flash (LFS),
/// such as the built-in NTest, costs a script none of its RAM.
pub(crate) fn exempt<R>(lua: &Lua, load: impl FnOnce() -> mlua::Result<R>) -> mlua::Result<R> {
    let heap = lua.app_data_ref::<Rc<Heap>>().map(|h| (*h).clone());
    let alloc = heap.as_ref().and_then(|h| h.alloc.get());
    lua.gc_collect()?;
    let before = lua.used_memory();
    let limit = alloc.map(|a| a.limit());
    if let Some(a) = alloc {
        a.set_limit(0); // no limit while loading
    }
    let r = load();
    let _ = lua.gc_collect();
    let grown = lua.used_memory().saturating_sub(before);
    if let Some(heap) = heap {
        heap.exempt_grown(grown);
    }
    if let (Some(a), Some(limit)) = (alloc, limit) {
        a.set_limit(if limit == 0 { 0 } else { limit + grown });
    }
    r
}
