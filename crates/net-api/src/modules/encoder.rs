//! `encoder`: base64 and hex conversion of Lua strings (all three generations).
//!
//! Encoding is the standard alphabet with `=` padding and lower-case hex. Decoding checks what
//! the firmware checks and no more: a base64 string must be a multiple of four long, with
//! alphabet characters before its padding (bits left over in the last character are ignored);
//! a hex string must be of even length with hex digits of either case. Anything else is
//! `Invalid base64 string` / `Invalid hex string`. The empty string converts to itself.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use mlua::Lua;

use crate::lauxlib::{Args, FwResult, bind, fw_err};
use crate::modules::module_table;

/// The firmware's decoder ignores leftover bits and takes padding as it comes.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub fn to_base64(msg: &[u8]) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .encode(msg)
        .into_bytes()
}

pub fn from_base64(enc: &[u8]) -> FwResult<Vec<u8>> {
    const BAD: &str = "Invalid base64 string";
    let n = enc.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    if !n.is_multiple_of(4) {
        return fw_err(BAD);
    }
    let pad = match (enc[n - 2], enc[n - 1]) {
        (_, c) if c != b'=' => 0,
        (b'=', _) => 2,
        _ => 1,
    };
    let alphabet = |c: &u8| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/';
    if !enc[..n - pad].iter().all(alphabet) {
        return fw_err(BAD);
    }
    match LENIENT.decode(enc) {
        Ok(v) => Ok(v),
        Err(_) => fw_err(BAD),
    }
}

pub fn to_hex(msg: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    msg.iter()
        .flat_map(|b| [HEX[(b >> 4) as usize], HEX[(b & 15) as usize]])
        .collect()
}

pub fn from_hex(msg: &[u8]) -> FwResult<Vec<u8>> {
    if !msg.len().is_multiple_of(2) {
        return fw_err("Invalid hex string");
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    msg.chunks(2)
        .map(|p| match (digit(p[0]), digit(p[1])) {
            (Some(h), Some(l)) => Ok(h << 4 | l),
            _ => fw_err("Invalid hex string"),
        })
        .collect()
}

fn convert(lua: &Lua, f: fn(&[u8]) -> FwResult<Vec<u8>>) -> mlua::Result<mlua::Function> {
    bind(lua, move |lua, a: Args| {
        let s = a.check_bytes(lua, 1)?;
        let out = f(&s.as_bytes())?;
        Ok(lua.create_string(out)?)
    })
}

pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let t = module_table(
        lua,
        vec![
            ("fromBase64", convert(lua, from_base64)?),
            ("toBase64", convert(lua, |m| Ok(to_base64(m)))?),
            ("fromHex", convert(lua, from_hex)?),
            ("toHex", convert(lua, |m| Ok(to_hex(m)))?),
        ],
    )?;
    lua.globals().set("encoder", t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lauxlib::FwError;

    fn msg<T: std::fmt::Debug>(r: FwResult<T>) -> String {
        match r {
            Err(FwError::Msg(m)) => m,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn base64_round_trips_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(to_base64(plain.as_bytes()), enc.as_bytes());
            assert_eq!(from_base64(enc.as_bytes()).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn bad_base64_is_the_firmwares_error() {
        for bad in ["Zg=", "Zm9", "Z===", "Zg=a", "Z!==", "===="] {
            assert_eq!(
                msg(from_base64(bad.as_bytes())),
                "Invalid base64 string",
                "{bad}"
            );
        }
        // Leftover bits in the last character are ignored, as on the board.
        assert_eq!(from_base64(b"Zh==").unwrap(), b"f");
    }

    #[test]
    fn hex_both_ways() {
        assert_eq!(to_hex(b"\x00\xffAz"), b"00ff417a");
        assert_eq!(from_hex(b"00FFab").unwrap(), b"\x00\xff\xab");
        assert_eq!(msg(from_hex(b"abc")), "Invalid hex string");
        assert_eq!(msg(from_hex(b"zz")), "Invalid hex string");
    }
}
