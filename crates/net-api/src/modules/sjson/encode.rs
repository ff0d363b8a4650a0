//! `sjson.encoder`: a Lua table to JSON text, with the firmware's rules.
//!
//! The firmware's encoder walks the table on its first `read` and makes the whole text in one
//! piece (its chunk loop has no size check), then hands it out `size` bytes at a time; so does
//! this one. Its rules, kept here: a table is an array when every key is a positive integer (the
//! largest key is its length, holes are `null`, `{}` is `[]`); other keys become strings with
//! Lua's `tostring`, in the order `next` gives; a function value is called (up to ten times) and
//! its result encoded; only control bytes and `"` are escaped (`\u00xx`, or `\n` and friends),
//! never `\` or `/`; light userdata and nil are `null`, and a string equal to the `null` option.
//! 3.0 prints floats with `%.19g` (Lua 5.3 integers as integers) and infinities and NaN as
//! `null`; 2.2 printed numbers with Lua's `tostring`.

use std::ffi::c_int;

use mlua::{Lua, Table, Value};

use super::decode::DEPTH;
use crate::lauxlib::{FwError, FwResult};
use crate::modules::printf::fmt_g;

/// How numbers are printed, which changed between generations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbers {
    /// 2.2: `lua_tostring`.
    LuaToString,
    /// 3.0: `%.19g` for floats, integers as integers, non-finite as `null`.
    Float19,
}

pub struct Encoder {
    /// The table still to encode (taken by the first read), with its length as first measured.
    root: Option<(Table, i16)>,
    null: Option<Value>,
    numbers: Numbers,
    /// The text made, and how much of it has been read.
    text: Option<(Vec<u8>, usize)>,
}

/// The firmware keeps an array's position in a 16-bit counter that counts two steps per
/// element: past this length it never reaches the end, and the board runs out of memory.
const MAX_ARRAY: i16 = 16383;

impl Encoder {
    pub fn new(root: Table, null: Option<Value>, numbers: Numbers) -> FwResult<Self> {
        let size = table_size(&root)?;
        Ok(Encoder {
            root: Some((root, size)),
            null,
            numbers,
            text: None,
        })
    }

    /// `encoder:read(size)`: up to `size` bytes, or `None` once everything has been read.
    pub fn read(&mut self, lua: &Lua, mut size: usize) -> FwResult<Option<Vec<u8>>> {
        let mut out = Vec::new();
        loop {
            if let Some((text, offset)) = &mut self.text {
                let n = (text.len() - *offset).min(size);
                out.extend_from_slice(&text[*offset..*offset + n]);
                *offset += n;
                size -= n;
                if *offset == text.len() {
                    self.text = None;
                }
            }
            if size > 0 {
                self.make_text(lua)?;
            }
            if size == 0 || self.text.is_none() {
                break;
            }
        }
        Ok((!out.is_empty()).then_some(out))
    }

    fn make_text(&mut self, lua: &Lua) -> FwResult<()> {
        let Some((root, size)) = self.root.take() else {
            return Ok(());
        };
        let (numbers, null) = (self.numbers, self.null.clone());
        let text = lua.exec_raw_lua(|raw| unsafe {
            let state = raw.state();
            if mlua::ffi::lua_checkstack(state, 4) == 0 {
                return Err(mlua::Error::StackError);
            }
            let base = mlua::ffi::lua_gettop(state);
            raw.push(&root)?;
            let null = match &null {
                Some(v) => {
                    raw.push(v)?;
                    Some(base + 2)
                }
                None => None,
            };
            let mut g = Gen {
                state,
                raw,
                null,
                numbers,
                out: Vec::new(),
            };
            let r = g.table(base + 1, size, 0);
            mlua::ffi::lua_settop(state, base);
            Ok(r.map(|()| g.out))
        })??;
        self.text = Some((text, 0));
        Ok(())
    }
}

/// The firmware's array test: the largest key if all keys are positive integers, else -1,
/// kept in a 16-bit field as the firmware keeps it.
fn table_size(t: &Table) -> FwResult<i16> {
    let mut max: i32 = 0;
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        let val = match k {
            Value::Integer(i) => i as i32,
            Value::Number(x) => key_int(x),
            _ => return Ok(-1),
        };
        if val > max {
            max = val;
        } else if val <= 0 {
            return Ok(-1);
        }
    }
    Ok(max as i16)
}

/// `lua_tointeger` of a numeric key, as the firmware's `int` takes it: 5.1 truncates, 5.3 gives
/// 0 for a fraction.
fn key_int(x: f64) -> i32 {
    if cfg!(feature = "lua53") && x.fract() != 0.0 {
        0
    } else {
        x as i64 as i32
    }
}

/// Lua's `tostring` of a number (`LUA_NUMBER_FMT`; 5.3 marks integral floats with `.0`).
fn lua_number_text(int: Option<i64>, x: f64) -> String {
    if let Some(i) = int {
        return i.to_string();
    }
    let mut s = fmt_g(x, 14);
    if cfg!(feature = "lua53") && s.bytes().all(|c| c == b'-' || c.is_ascii_digit()) {
        s.push_str(".0");
    }
    s
}

/// The text walk, on the Lua stack directly: reading a table, its keys and its strings
/// allocates nothing, so nothing here can raise; a function value runs under `lua_pcall`.
struct Gen<'a> {
    state: *mut mlua::ffi::lua_State,
    raw: &'a mlua::state::RawLua,
    /// Stack index of the `null` option's value, if it has one.
    null: Option<c_int>,
    numbers: Numbers,
    out: Vec<u8>,
}

impl Gen<'_> {
    /// Encodes the table at stack index `idx` (absolute).
    unsafe fn table(&mut self, idx: c_int, size: i16, level: usize) -> FwResult<()> {
        use mlua::ffi::*;
        unsafe {
            if lua_checkstack(self.state, 6) == 0 {
                return Err(FwError::Lua(mlua::Error::StackError));
            }
            if size >= 0 {
                if size > MAX_ARRAY {
                    return Err(FwError::Lua(mlua::Error::MemoryError(String::new())));
                }
                self.out.push(b'[');
                for i in 1..=size as i64 {
                    if i > 1 {
                        self.out.push(b',');
                    }
                    lua_rawgeti(self.state, idx, i as _);
                    let r = self.value(lua_gettop(self.state), level);
                    lua_pop(self.state, 1);
                    r?;
                }
                self.out.push(b']');
                return Ok(());
            }
            let mut first = true;
            lua_pushnil(self.state);
            while lua_next(self.state, idx) != 0 {
                self.out.push(if first { b'{' } else { b',' });
                first = false;
                let top = lua_gettop(self.state);
                let r = self.key(top - 1).and_then(|()| {
                    self.out.push(b':');
                    self.value(top, level)
                });
                if r.is_err() {
                    lua_settop(self.state, idx);
                    return r;
                }
                lua_settop(self.state, top - 1);
            }
            self.out.push(b'}');
            Ok(())
        }
    }

    /// The firmware's array test on the table at `idx`.
    unsafe fn size(&mut self, idx: c_int) -> i16 {
        use mlua::ffi::*;
        let mut max: i32 = 0;
        unsafe {
            lua_pushnil(self.state);
            while lua_next(self.state, idx) != 0 {
                lua_pop(self.state, 1);
                if lua_type(self.state, -1) != LUA_TNUMBER {
                    lua_pop(self.state, 1);
                    return -1;
                }
                let val = key_int(lua_tonumber(self.state, -1));
                if val > max {
                    max = val;
                } else if val <= 0 {
                    lua_pop(self.state, 1);
                    return -1;
                }
            }
        }
        max as i16
    }

    /// A key: numbers as Lua prints them, then as any scalar.
    unsafe fn key(&mut self, idx: c_int) -> FwResult<()> {
        unsafe {
            if mlua::ffi::lua_type(self.state, idx) == mlua::ffi::LUA_TNUMBER {
                let text = self.lua_number(idx);
                escape(&mut self.out, text.as_bytes());
                return Ok(());
            }
            self.scalar(idx)
        }
    }

    unsafe fn lua_number(&self, idx: c_int) -> String {
        use mlua::ffi::*;
        unsafe {
            let int = (cfg!(feature = "lua53") && lua_isinteger(self.state, idx) != 0)
                .then(|| lua_tointeger(self.state, idx) as i64);
            lua_number_text(int, lua_tonumber(self.state, idx))
        }
    }

    /// An element or member value at `idx`: functions are called for their value, tables nest.
    unsafe fn value(&mut self, mut idx: c_int, level: usize) -> FwResult<()> {
        use mlua::ffi::*;
        unsafe {
            let base = lua_gettop(self.state);
            let r = (|| {
                for _ in 0..10 {
                    if lua_type(self.state, idx) != LUA_TFUNCTION {
                        break;
                    }
                    lua_pushvalue(self.state, idx);
                    let status = lua_pcall(self.state, 0, 1, 0);
                    if status != LUA_OK {
                        let e = self.raw.pop_value();
                        return Err(match status {
                            LUA_ERRMEM => FwError::Lua(mlua::Error::MemoryError(String::new())),
                            _ => FwError::Raise(e),
                        });
                    }
                    idx = lua_gettop(self.state);
                }
                if lua_type(self.state, idx) == LUA_TTABLE {
                    if level + 1 >= DEPTH {
                        return Err(FwError::Msg("encoder stack overflow".into()));
                    }
                    let size = self.size(idx);
                    return self.table(idx, size, level + 1);
                }
                self.scalar(idx)
            })();
            lua_settop(self.state, base);
            r
        }
    }

    unsafe fn scalar(&mut self, idx: c_int) -> FwResult<()> {
        use mlua::ffi::*;
        unsafe {
            let t = lua_type(self.state, idx);
            let is_null = t == LUA_TSTRING
                && self
                    .null
                    .is_some_and(|n| lua_rawequal(self.state, idx, n) != 0);
            match t {
                _ if is_null => self.out.extend_from_slice(b"null"),
                LUA_TSTRING => {
                    let mut len = 0;
                    let p = lua_tolstring(self.state, idx, &mut len);
                    escape(
                        &mut self.out,
                        std::slice::from_raw_parts(p as *const u8, len),
                    );
                }
                LUA_TNIL | LUA_TLIGHTUSERDATA => self.out.extend_from_slice(b"null"),
                LUA_TBOOLEAN => {
                    self.out
                        .extend_from_slice(if lua_toboolean(self.state, idx) != 0 {
                            b"true"
                        } else {
                            b"false"
                        })
                }
                LUA_TNUMBER => match self.numbers {
                    Numbers::LuaToString => {
                        let text = self.lua_number(idx);
                        self.out.extend_from_slice(text.as_bytes());
                    }
                    Numbers::Float19 => {
                        let int = cfg!(feature = "lua53") && lua_isinteger(self.state, idx) != 0;
                        let x = lua_tonumber(self.state, idx);
                        if int {
                            push_int(&mut self.out, lua_tointeger(self.state, idx) as i64);
                        } else if !x.is_finite() {
                            self.out.extend_from_slice(b"null");
                        } else if !push_short_decimal(&mut self.out, x) {
                            self.out.extend_from_slice(fmt_g(x, 19).as_bytes());
                        }
                    }
                },
                t => return Err(FwError::Msg(format!("Cannot encode type {t}"))),
            }
            Ok(())
        }
    }
}

/// Whether a byte is written escaped: control bytes and `"`.
fn needs_escape(c: u8) -> bool {
    c < 0x20 || c == b'"'
}

/// A string as the firmware quotes it: control bytes and `"` escaped, nothing else. Runs of
/// bytes that need nothing are copied whole.
pub fn escape(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut rest = s;
    while let Some(at) = rest.iter().position(|&c| needs_escape(c)) {
        out.extend_from_slice(&rest[..at]);
        match rest[at] {
            b'"' => out.extend_from_slice(b"\\\""),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0x08 => out.extend_from_slice(b"\\b"),
            c => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 0xf) as usize]);
            }
        }
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// An integer in decimal, without an allocation.
fn push_int(out: &mut Vec<u8>, i: i64) {
    let mut digits = [0u8; 20];
    let mut n = i.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// `%.19g` of a finite float whose exact value is a decimal with at most four places and fewer
/// than 16 digits (integers, halves, quarters, cents...), written straight from its digits:
/// `%.19g` prints such a value exactly, in the fixed form, with no trailing zeros. `false`
/// (nothing written) for any other value, which goes to the general formatter.
fn push_short_decimal(out: &mut Vec<u8>, x: f64) -> bool {
    const EXACT: f64 = 9007199254740992.0; // 2^53
    if x == 0.0 {
        out.extend_from_slice(if x.is_sign_negative() { b"-0" } else { b"0" });
        return true;
    }
    // x = m / 10^k exactly iff x * 2^k is an integer z (scaling by 2^k is exact) and then
    // m = z * 5^k, computed exactly while it stays below 2^53.
    let mut pow2 = 1.0;
    let mut pow5 = 1.0;
    for k in 0..=4u32 {
        let z = x * pow2;
        if z.fract() == 0.0 {
            let m = z * pow5;
            if m.abs() >= EXACT || z.abs() >= EXACT {
                return false;
            }
            let m = m as i64;
            if k == 0 {
                push_int(out, m);
                return true;
            }
            let scale = 10i64.pow(k);
            let (int, mut frac) = (
                m.unsigned_abs() / scale as u64,
                m.unsigned_abs() % scale as u64,
            );
            if m < 0 {
                out.push(b'-');
            }
            push_int(out, int as i64);
            out.push(b'.');
            // Leading zeros of the fraction are kept, trailing ones dropped.
            let mut places = k;
            while frac % 10 == 0 {
                frac /= 10;
                places -= 1;
            }
            let mut digits = [b'0'; 4];
            for d in digits[..places as usize].iter_mut().rev() {
                *d = b'0' + (frac % 10) as u8;
                frac /= 10;
            }
            out.extend_from_slice(&digits[..places as usize]);
            return true;
        }
        pow2 *= 2.0;
        pow5 *= 5.0;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_only_control_bytes_and_quotes() {
        let mut out = Vec::new();
        escape(&mut out, b"a\"b\\c/d\n\x01\x1f\x7f");
        assert_eq!(out, b"\"a\\\"b\\c/d\\n\\u0001\\u001f\x7f\"");
    }

    /// The short-decimal path prints what `%.19g` prints, and declines what it cannot.
    #[test]
    fn short_decimals_are_printed_as_g19() {
        let cases: &[f64] = &[
            0.0,
            -0.0,
            1.0,
            -1.0,
            1.25,
            -2.5,
            0.75,
            1.0625,
            0.0001,
            0.0625,
            123456.5,
            -98765.4375,
            1e15,
            4503599627370495.5,
            9007199254740991.0,
            9007199254740992.0,
            1e20,
            0.1,
            0.3,
            1.0 / 3.0,
            1e-5,
            2.0f64.powi(-14),
            12.34,
            7.3219,
        ];
        for &x in cases {
            let mut out = Vec::new();
            if super::push_short_decimal(&mut out, x) {
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    crate::modules::printf::fmt_g(x, 19),
                    "{x}"
                );
            }
        }
        for i in -3000..3000 {
            let x = i as f64 * 1.25;
            let mut out = Vec::new();
            assert!(super::push_short_decimal(&mut out, x));
            assert_eq!(
                String::from_utf8(out).unwrap(),
                crate::modules::printf::fmt_g(x, 19)
            );
        }
    }
}
