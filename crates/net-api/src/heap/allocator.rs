//! The Lua state's allocator, on every profile: on a device it caps the heap and paces the
//! collector from the one place that sees every allocation; on `host` it has no cap. On every
//! profile a failed allocation returns null, which Lua raises as `not enough memory` (mlua's own
//! allocator aborts the process instead).
//!
//! A board's Lua 5.1 has an emergency collector: when an allocation fails, it collects and tries
//! again, so a script never runs out of memory on garbage. Stock Lua 5.1 has none, and the
//! incremental collector's two knobs (pause: when a cycle starts; step multiplier: how fast it
//! runs) are fixed numbers. Fixed numbers must be set for the worst case (a script keeping most of
//! the heap live while it makes garbage), and then cost a streaming script a third of its time.
//! So the allocator sets them from the free heap as memory moves: with room to spare, cycles start
//! late and run slowly; as the heap fills, cycles start at once and run ever faster, until, near
//! the limit, each step is almost a full collection: the emergency collector, spread out.
//!
//! Setting a knob is a field store inside `lua_gc`, with no allocation and no collection, so it is
//! safe from inside an allocation. mlua's own allocator cannot be wrapped (mlua recognises its
//! state by the function's address), so this one replaces it once the device has booted and does
//! mlua's accounting itself; mlua then treats the state as one whose memory it does not manage and
//! takes its protected paths for every allocation (a `lua_pcall` around each API call that can
//! raise), which is what a capped heap needs, and what any state running scripts needs: without
//! them an error raised inside an mlua call (a failed allocation, or a script's `__gc` erroring
//! in the collector step that the allocation ran) jumps straight over mlua's Rust frames, skipping
//! the guard that puts mlua's current thread back, so the loop would go on running callbacks on
//! a coroutine's thread, and on freed memory once that coroutine is collected.

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::ffi::c_void;
use std::ptr;

use mlua::Lua;
use mlua::ffi;

use super::global::GlobalState;

/// The pacing is recomputed when memory in use crosses a multiple of this many bytes.
const PACE_GRAIN_SHIFT: u32 = 10;
/// The allocator's state, handed to Lua as the allocator's user data.
pub(crate) struct Allocator {
    /// The main state, for the collector's setters (they only reach the global state).
    state: *mut ffi::lua_State,
    used: Cell<usize>,
    /// 0: no limit (the host profile, and a device while loading what a board keeps in flash).
    limit: Cell<usize>,
    /// `used >> PACE_GRAIN_SHIFT` when the pacing was last set.
    grain: Cell<usize>,
    /// Lua 5.1's string table, whose resizes after boot are not counted (`global.rs`).
    global: Cell<Option<&'static GlobalState>>,
}

impl Allocator {
    /// Replaces the state's allocator, carrying over what is in use now. The state's memory is
    /// counted here from then on; `Lua::used_memory` reads Lua's own count, which agrees.
    ///
    /// The allocator lives as long as the process: Lua frees its last blocks through it when the
    /// state closes, after everything the simulator owns is gone.
    pub(crate) fn install(lua: &Lua, limit: usize) -> &'static Allocator {
        // While mlua's allocator is still in place, give it a limit: mlua then chooses its
        // protected paths, which it keeps once it no longer sees its own allocator.
        let _ = lua.set_memory_limit(limit.max(1));
        let used = lua.used_memory();
        lua.exec_raw_lua(|raw| {
            let state = raw.state();
            let a: &'static Allocator = Box::leak(Box::new(Allocator {
                state,
                used: Cell::new(used),
                limit: Cell::new(limit),
                grain: Cell::new(usize::MAX),
                global: Cell::new(None),
            }));
            let ud = a as *const Allocator as *mut c_void;
            // SAFETY: `a` outlives the state (leaked) and `allocate` matches Lua's allocator
            // contract; blocks made by mlua's allocator use the same layout, so either frees them.
            unsafe { ffi::lua_setallocf(state, allocate, ud) };
            // SAFETY: the allocator of this live state was just set to `allocate` with `ud`.
            let strings =
                unsafe { GlobalState::find(state, allocate as *const () as usize, ud as usize) };
            a.global.set(strings.map(|t| &*Box::leak(Box::new(t))));
            a.pace(used);
            a
        })
    }

    pub(crate) fn used(&self) -> usize {
        self.used.get()
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit.get()
    }

    pub(crate) fn set_limit(&self, limit: usize) {
        self.limit.set(limit);
        self.grain.set(usize::MAX);
        self.pace(self.used.get());
    }

    /// Sets the collector's pause and step multiplier for `used` bytes in use.
    fn pace(&self, used: usize) {
        let grain = used >> PACE_GRAIN_SHIFT;
        if grain == self.grain.get() {
            return;
        }
        self.grain.set(grain);
        let limit = self.limit.get();
        if limit == 0 {
            return;
        }
        let used = used.max(1);
        let free = limit.saturating_sub(used).max(1);
        let (pause, stepmul) = knobs(used, free);
        if let Some(t) = self.global.get() {
            t.start_cycle_by(used + free * 3 / 4);
        }
        // SAFETY: both calls only store a field of the global state.
        unsafe {
            ffi::lua_gc(self.state, ffi::LUA_GCSETPAUSE, pause as i32);
            ffi::lua_gc(self.state, ffi::LUA_GCSETSTEPMUL, stepmul as i32);
        }
    }
}

/// The pause and step multiplier for `used` bytes in use and `free` left.
#[cfg(not(feature = "lua53"))]
fn knobs(used: usize, free: usize) -> (usize, usize) {
    /// Step multiplier per unit of `used / free`: how fast a cycle runs for the heap left. A cycle
    /// starts once garbage has taken three quarters of what is free, so it must finish before the
    /// garbage made during it fills the last quarter: three times the rate measured for a start
    /// at half. Each cycle marks everything the simulator booted, which a board keeps in flash,
    /// so fewer, faster cycles cost less (decoding JSON on `esp8266`: 14% less time).
    const STEPMUL_PER_FILL: usize = 450;
    const STEPMUL_MIN: usize = 100;
    /// Near the limit: every step of the collector is close to a full cycle.
    const STEPMUL_MAX: usize = 5000;
    /// The latest a cycle starts: once memory has doubled since the last one ended (Lua's default).
    const PAUSE_MAX: usize = 200;
    // The next cycle starts once garbage has taken three quarters of what is free when this one
    // ends (`start_cycle_by` keeps to that as live data grows).
    let pause = (100 + 75 * free / used).min(PAUSE_MAX);
    let stepmul = (STEPMUL_PER_FILL * used / free).clamp(STEPMUL_MIN, STEPMUL_MAX);
    (pause, stepmul)
}

/// Lua 5.3 has the emergency collector that 5.1 lacks, and counts a step's work in other units:
/// it keeps the fixed pacing it was measured with (a cycle as soon as the last one ends, at four
/// times the allocation rate).
#[cfg(feature = "lua53")]
fn knobs(_used: usize, _free: usize) -> (usize, usize) {
    (100, 400)
}

/// The layout of a Lua block of `size` bytes; `None` past what the host can address.
fn layout(size: usize) -> Option<Layout> {
    // mlua's allocator uses this alignment too, so blocks it made can be freed or grown here.
    Layout::from_size_align(size, ffi::SYS_MIN_ALIGN).ok()
}

/// Lua's allocator function: free (`nsize == 0`), allocate (`ptr` null) or resize. A null result
/// for a growing request is Lua's `not enough memory`.
unsafe extern "C" fn allocate(
    ud: *mut c_void,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    // SAFETY: `ud` is the leaked `Allocator` given to `lua_setallocf`.
    let a = unsafe { &*(ud as *const Allocator) };
    // Lua 5.3 passes an object kind as `osize` for new blocks; only a real block has a size.
    let old = if ptr.is_null() { 0 } else { osize };
    // The string table's resizes are not the device's (see `global.rs`): uncounted, unlimited.
    let strings = a.global.get();
    if nsize == 0 {
        // A block that exists was allocated with a valid layout, so `layout` gives it back.
        if !ptr.is_null()
            && let Some(l) = layout(old)
        {
            let uncounted = strings.is_some_and(|t| t.is_table(ptr));
            // SAFETY: `ptr` was allocated with this size and alignment.
            unsafe { alloc::dealloc(ptr as *mut u8, l) };
            if !uncounted {
                a.used.set(a.used.get().saturating_sub(old));
            }
        }
        return ptr::null_mut();
    }
    if ptr.is_null()
        && strings.is_some_and(|t| t.is_resize(nsize))
        && let Some(l) = layout(nsize)
    {
        // SAFETY: `nsize` is non-zero.
        return unsafe { alloc::alloc(l) } as *mut c_void;
    }
    let (Some(new_layout), Some(old_layout)) = (layout(nsize), layout(old)) else {
        return ptr::null_mut();
    };
    let used = a.used.get().saturating_sub(old) + nsize;
    let limit = a.limit.get();
    if nsize > old && limit != 0 && used > limit {
        return ptr::null_mut();
    }
    // SAFETY: `nsize` is non-zero; a resized block was allocated with `old` bytes.
    let p = unsafe {
        if ptr.is_null() {
            alloc::alloc(new_layout)
        } else {
            alloc::realloc(ptr as *mut u8, old_layout, nsize)
        }
    };
    if p.is_null() {
        return ptr::null_mut(); // the host is out of memory: Lua raises it
    }
    a.used.set(used);
    a.pace(used);
    p as *mut c_void
}
