//! Two fields of Lua 5.1's global state the allocator reaches: the string table, kept out of the
//! device heap's count once the device has booted, and the collector's next start.
//!
//! On a board the firmware's own strings (module and function names) live in flash, so the RAM
//! string table holds only the script's strings and stays small. Here every name the simulator
//! registers is in the RAM table, which is therefore several times bigger, and it doubles as a
//! whole: with the heap nearly full, a few hundred new strings asked for a 64 KB block that the
//! board would never need. So the table counts at its size after boot (part of the baseline
//! the heap is measured from), and its later resizes are neither limited nor counted.
//!
//! The allocator recognises a resize from the table's own fields in the global state: Lua 5.1
//! grows it (`luaS_resize`) the moment `nuse` passes `size`, allocating `2 * size` slots, and the
//! collector shrinks it to `size / 2` when `nuse < size / 4`; the old table is freed while
//! `strt.hash` still points at it. The layout of `lua_State` and `global_State` is Lua 5.1.5's
//! (the crate pins the vendored Lua through mlua's exact version); [`GlobalState::find`] checks it
//! against values it knows (the allocator and its user data stored in the global state) and
//! gives up, leaving the table counted as any block, if they do not match.

use std::ffi::c_void;

use mlua::ffi;

/// A view of Lua 5.1's `global_State`: `strt`, the string table, and the collector's threshold.
pub(super) struct GlobalState {
    g: *const u8,
}

/// `lua_State.l_G`: after `next` (8), `tt`, `marked`, `status` (padded to 8), `top`, `base`.
const L_G: usize = 32;
/// `global_State`: `strt` { `hash` (8), `nuse` (4), `size` (4) }, then `frealloc` and `ud`.
const STRT_HASH: usize = 0;
const STRT_NUSE: usize = 8;
const STRT_SIZE: usize = 12;
const FREALLOC: usize = 16;
const UD: usize = 24;
/// Then `currentwhite`, `gcstate` (33), `sweepstrgc`, six list heads, the `Mbuffer` (three words),
/// then `GCthreshold` (112), `totalbytes`, `estimate`, `gcdept`, `gcpause` (144), `gcstepmul`.
const GCSTATE: usize = 33;
const GCTHRESHOLD: usize = 112;
const GCPAUSE: usize = 144;
/// `gcstate` between two cycles.
const GCSPAUSE: u8 = 0;
/// A Lua 5.1 `TString *` slot.
const SLOT: usize = std::mem::size_of::<*const c_void>();

impl GlobalState {
    /// The string table of `state`, once `lua_setallocf(state, f, ud)` has run; `None` if the
    /// global state does not look like Lua 5.1.5's.
    ///
    /// # Safety
    /// `state` is a live Lua 5.1 state whose allocator was just set to `f` with `ud`.
    pub(super) unsafe fn find(state: *mut ffi::lua_State, f: usize, ud: usize) -> Option<Self> {
        if cfg!(feature = "lua53") || SLOT != 8 {
            return None;
        }
        // SAFETY: `l_G` is the fifth word-aligned field of a live `lua_State`, and the global
        // state's first 32 bytes are the string table and the allocator (checked below).
        unsafe {
            let g = *(state as *const u8).add(L_G).cast::<*const u8>();
            if g.is_null()
                || *g.add(FREALLOC).cast::<usize>() != f
                || *g.add(UD).cast::<usize>() != ud
            {
                return None;
            }
            let t = GlobalState { g };
            let size = t.size();
            // The collector's fields: the pause read back as `lua_gc` sets it.
            let pause = ffi::lua_gc(state, ffi::LUA_GCSETPAUSE, 173);
            let seen = *g.add(GCPAUSE).cast::<i32>();
            ffi::lua_gc(state, ffi::LUA_GCSETPAUSE, pause);
            (seen == 173 && size >= 32 && size.is_power_of_two() && !t.hash().is_null())
                .then_some(t)
        }
    }

    fn hash(&self) -> *mut c_void {
        // SAFETY: `g` is the live global state `find` checked.
        unsafe { *self.g.add(STRT_HASH).cast::<*mut c_void>() }
    }

    fn nuse(&self) -> usize {
        // SAFETY: as in `hash`.
        unsafe { *self.g.add(STRT_NUSE).cast::<u32>() as usize }
    }

    fn size(&self) -> usize {
        // SAFETY: as in `hash`.
        unsafe { *self.g.add(STRT_SIZE).cast::<i32>() as usize }
    }

    /// A new block of `nsize` bytes is the table's next size: doubled the moment `nuse` passed
    /// `size`, or halved by the collector.
    pub(super) fn is_resize(&self, nsize: usize) -> bool {
        let (size, nuse) = (self.size(), self.nuse());
        (nsize == 2 * size * SLOT && nuse > size) || (2 * nsize == size * SLOT && nuse < size / 4)
    }

    /// Between two cycles, brings the start of the next one forward to `at` bytes in use, if it
    /// was due later. The pause sets when a cycle starts only as the last one ends; a heap that
    /// was nearly empty then (a pause of 200) would otherwise let garbage fill all of a heap that
    /// has since filled with live data before the collector starts again.
    pub(super) fn start_cycle_by(&self, at: usize) {
        // SAFETY: as in `hash`; Lua reads the threshold only at its own safe points, and a lower
        // one only starts the collector's next step sooner.
        unsafe {
            if *self.g.add(GCSTATE) == GCSPAUSE {
                let t = self.g.add(GCTHRESHOLD).cast_mut().cast::<usize>();
                if *t > at {
                    *t = at;
                }
            }
        }
    }

    /// `ptr` is the table being replaced (freed while `strt.hash` still points at it).
    pub(super) fn is_table(&self, ptr: *mut c_void) -> bool {
        !ptr.is_null() && ptr == self.hash()
    }
}
