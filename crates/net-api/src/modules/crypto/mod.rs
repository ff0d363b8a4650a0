//! `crypto`: hashes, HMACs, AES and the XOR mask, as the firmware's `crypto` module has them.
//!
//! `hash`, `new_hash` (a `crypto.hash` object with `update`/`finalize`), `hmac`, `new_hmac`,
//! `fhash` (a flash file's hash), `sha1`, `mask`, `encrypt` and `decrypt`. 1.5 and 2.2 also had
//! `toHex` and `toBase64` (3.0 moved them to `encoder`), and 1.5's `mask` repeated only the
//! first four bytes of the mask. Mechanisms are in `digest.rs` and `cipher.rs`.

mod cipher;
mod digest;

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Function, Lua};

use crate::config::Firmware;
use crate::handle_type;
use crate::lauxlib::{Args, FwResult, bind, fw_err};
use crate::modules::{module_table, note_removed, register_methods};
use crate::runtime::{Removed, Runtime};
use cipher::Cipher;
use digest::{Mech, Stream};

const TYPE: &str = "crypto.hash";

#[derive(Clone)]
pub struct Hash(Rc<RefCell<Box<dyn Stream>>>);
handle_type!(Hash, TYPE);

const REMOVED: &[(&str, Removed)] = &[
    (
        "toHex",
        Removed {
            removed_in: "3.0",
            why: "use encoder.toHex",
            newest: Firmware::V2_2,
        },
    ),
    (
        "toBase64",
        Removed {
            removed_in: "3.0",
            why: "use encoder.toBase64",
            newest: Firmware::V2_2,
        },
    ),
];

fn mech(lua: &Lua, a: &Args) -> FwResult<Mech> {
    match Mech::by_name(&a.check_str(lua, 1)?) {
        Some(m) => Ok(m),
        None => fw_err("unknown hash mech"),
    }
}

fn bytes(lua: &Lua, a: &Args, n: usize) -> FwResult<Vec<u8>> {
    Ok(a.check_bytes(lua, n)?.as_bytes().to_vec())
}

fn string(lua: &Lua, b: &[u8]) -> FwResult<mlua::LuaString> {
    Ok(lua.create_string(b)?)
}

fn new_hash(lua: &Lua, a: &Args, keyed: bool) -> FwResult<mlua::AnyUserData> {
    let m = mech(lua, a)?;
    let key = if keyed { Some(bytes(lua, a, 2)?) } else { None };
    Ok(lua.create_userdata(Hash(Rc::new(RefCell::new(m.start(key.as_deref())))))?)
}

fn encdec(lua: &Lua, a: &Args, encrypt: bool) -> FwResult<mlua::LuaString> {
    let name = a.check_str(lua, 1)?;
    let Some(c) = Cipher::by_name(&name) else {
        return fw_err(format!("unknown cipher: {name}"));
    };
    let key = bytes(lua, a, 2)?;
    let data = bytes(lua, a, 3)?;
    let iv = if a.is_none_or_nil(4) {
        Vec::new()
    } else {
        bytes(lua, a, 4)?
    };
    match c.run(encrypt, &key, &data, &iv) {
        Some(out) => string(lua, &out),
        None => fw_err("crypto op failed"),
    }
}

/// `mask(msg, mask)`: XOR with the mask repeated. 1.5 took the mask four bytes at a time
/// whatever its length (past its end it read the string's terminating zero, then zeros here).
fn mask(msg: &[u8], mask: &[u8], fw: Firmware) -> FwResult<Vec<u8>> {
    if fw == Firmware::V1_5 {
        let m = |i: usize| mask.get(i % 4).copied().unwrap_or(0);
        return Ok(msg.iter().enumerate().map(|(i, b)| b ^ m(i)).collect());
    }
    if mask.is_empty() {
        return fw_err("invalid argument: mask");
    }
    Ok(msg
        .iter()
        .zip(mask.iter().cycle())
        .map(|(b, m)| b ^ m)
        .collect())
}

/// 1.5 and 2.2's `crypto.toHex`/`toBase64`: exactly one argument, then the encoder's function.
fn old_encoder(lua: &Lua, name: &'static str, f: fn(&[u8]) -> Vec<u8>) -> mlua::Result<Function> {
    bind(lua, move |lua, a| {
        if a.len() != 1 {
            return fw_err(format!("{name} must have one argument"));
        }
        string(lua, &f(&bytes(lua, &a, 1)?))
    })
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let fw = rt.cfg.firmware;
    register_methods(
        lua,
        TYPE,
        vec![
            (
                "update",
                bind(lua, |lua, a| {
                    let (_, h) = a.check_udata::<Hash>(1, TYPE)?;
                    let data = bytes(lua, &a, 2)?;
                    h.0.borrow_mut().update(&data);
                    Ok(())
                })?,
            ),
            (
                "finalize",
                bind(lua, |lua, a| {
                    let (_, h) = a.check_udata::<Hash>(1, TYPE)?;
                    let d = h.0.borrow().finalize();
                    string(lua, &d)
                })?,
            ),
        ],
    )?;
    let r = rt.clone();
    let mut fns = vec![
        (
            "sha1",
            bind(lua, |lua, a| {
                string(lua, &Mech::Sha1.digest(None, &bytes(lua, &a, 1)?))
            })?,
        ),
        (
            "mask",
            bind(lua, move |lua, a| {
                let (m, k) = (bytes(lua, &a, 1)?, bytes(lua, &a, 2)?);
                string(lua, &mask(&m, &k, fw)?)
            })?,
        ),
        (
            "hash",
            bind(lua, |lua, a| {
                let m = mech(lua, &a)?;
                string(lua, &m.digest(None, &bytes(lua, &a, 2)?))
            })?,
        ),
        (
            "fhash",
            bind(lua, move |lua, a| {
                let m = mech(lua, &a)?;
                let name = a.check_str(lua, 2)?;
                match r.flash.read(&name) {
                    Some(data) => string(lua, &m.digest(None, &data)),
                    None => fw_err("file does not exist"),
                }
            })?,
        ),
        ("new_hash", bind(lua, |lua, a| new_hash(lua, &a, false))?),
        (
            "hmac",
            bind(lua, |lua, a| {
                let m = mech(lua, &a)?;
                let data = bytes(lua, &a, 2)?;
                let key = bytes(lua, &a, 3)?;
                string(lua, &m.digest(Some(&key), &data))
            })?,
        ),
        ("new_hmac", bind(lua, |lua, a| new_hash(lua, &a, true))?),
        ("encrypt", bind(lua, |lua, a| encdec(lua, &a, true))?),
        ("decrypt", bind(lua, |lua, a| encdec(lua, &a, false))?),
    ];
    if fw < Firmware::V3_0 {
        use crate::modules::encoder::{to_base64, to_hex};
        fns.push(("toHex", old_encoder(lua, "toHex", to_hex)?));
        fns.push(("toBase64", old_encoder(lua, "toBase64", to_base64)?));
    }
    let t = module_table(lua, fns)?;
    if fw >= Firmware::V3_0 {
        note_removed(lua, rt, &t, "crypto.", REMOVED)?;
    }
    lua.globals().set("crypto", t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_by_generation() {
        assert_eq!(
            mask(b"abcdef", b"\x01\x02", Firmware::V3_0).unwrap(),
            b"``bfdd"
        );
        // 1.5: mask[i % 4], the string's zero terminator and nothing after it.
        assert_eq!(
            mask(b"abcdef", b"\x01\x02", Firmware::V1_5).unwrap(),
            b"``cddd"
        );
        assert!(mask(b"ab", b"", Firmware::V2_2).is_err());
    }
}
