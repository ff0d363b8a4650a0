//! Which binary chunks a script may load. Lua does not verify bytecode (5.1's check misses cases,
//! 5.3 has none), so a mutated or hand-made binary chunk can read and write any memory. Only
//! chunks this simulator made itself are loaded:
//! - what `string.dump` returned during this boot (a keyed hash of each is kept, with a key of
//!   this process's, so a script cannot forge one), for `load`/`loadstring`;
//! - `.lc` files written by `node.compile`, for `loadfile`, `dofile` and `require`: the
//!   bytecode is followed by a seal (a marker and a hash of the bytecode) that those check and
//!   strip. The seal guards against corrupt and mutated files, not against a script that
//!   recomputes it on purpose (its hash is public).
//!
//! Anything else that starts like bytecode fails as Lua's own loader refuses a binary chunk in
//! text mode: `attempt to load a binary chunk (mode is 't')`.

use std::cell::RefCell;
use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

use mlua::Lua;
use mlua::chunk::ChunkMode;

/// What follows the bytecode in a `.lc` file, before the hash.
const SEAL: &[u8] = b"\0nodemcu-sim lc\0";
/// The first byte of every binary chunk (`LUA_SIGNATURE`).
const BINARY: u8 = 0x1b;

/// The chunks `string.dump` made during this boot, by keyed hash.
#[derive(Default)]
pub(crate) struct Dumped {
    keys: RandomState,
    made: RefCell<HashSet<u64>>,
}

/// Starts the boot's record of dumped chunks.
pub(crate) fn install(lua: &Lua) {
    lua.set_app_data(Dumped::default());
}

/// Notes a chunk `string.dump` made.
pub(crate) fn record(lua: &Lua, bytes: &[u8]) {
    if let Some(d) = lua.app_data_ref::<Dumped>() {
        let h = d.keys.hash_one(bytes);
        d.made.borrow_mut().insert(h);
    }
}

/// May `load`/`loadstring` take these bytes? Text always; bytecode only as `string.dump` made it.
pub(crate) fn loadable(lua: &Lua, bytes: &[u8]) -> bool {
    if bytes.first() != Some(&BINARY) {
        return true;
    }
    lua.app_data_ref::<Dumped>()
        .is_some_and(|d| d.made.borrow().contains(&d.keys.hash_one(bytes)))
}

/// A `.lc` file's contents: the bytecode followed by its seal.
pub(crate) fn seal(mut code: Vec<u8>) -> Vec<u8> {
    let h = fnv(&code);
    code.extend_from_slice(SEAL);
    code.extend_from_slice(&h.to_le_bytes());
    code
}

/// How to load a flash file's contents: a sealed `.lc` loads its bytecode; anything else loads
/// as text (so bytecode without a seal is refused by Lua's loader).
pub(crate) fn flash_chunk(bytes: &[u8]) -> (&[u8], ChunkMode) {
    if bytes.first() == Some(&BINARY)
        && let Some(code) = unseal(bytes)
    {
        return (code, ChunkMode::Binary);
    }
    (bytes, ChunkMode::Text)
}

/// The bytecode of a sealed chunk whose hash matches.
fn unseal(bytes: &[u8]) -> Option<&[u8]> {
    let tail = SEAL.len() + 8;
    let split = bytes.len().checked_sub(tail)?;
    let (code, rest) = bytes.split_at(split);
    let (mark, hash) = rest.split_at(SEAL.len());
    (mark == SEAL && hash == fnv(code).to_le_bytes()).then_some(code)
}

/// FNV-1a, 64 bits: stable across builds, so a `.lc` outlives the process that wrote it.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_chunk_loads_its_bytecode_and_a_changed_byte_breaks_the_seal() {
        let code = b"\x1bLua\x51\0bytecode".to_vec();
        let sealed = seal(code.clone());
        assert_eq!(flash_chunk(&sealed), (&code[..], ChunkMode::Binary));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            if i == 0 {
                continue; // no longer starts like bytecode: text
            }
            assert_eq!(flash_chunk(&bad).1, ChunkMode::Text, "byte {i}");
        }
        assert_eq!(flash_chunk(&code).1, ChunkMode::Text);
        assert_eq!(flash_chunk(b"print(1)").1, ChunkMode::Text);
    }
}
