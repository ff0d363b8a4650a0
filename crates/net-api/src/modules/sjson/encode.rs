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
                LUA_TNUMBER => {
                    let text = match self.numbers {
                        Numbers::LuaToString => self.lua_number(idx),
                        Numbers::Float19 => {
                            let int =
                                cfg!(feature = "lua53") && lua_isinteger(self.state, idx) != 0;
                            let x = lua_tonumber(self.state, idx);
                            if int {
                                (lua_tointeger(self.state, idx) as i64).to_string()
                            } else if !x.is_finite() {
                                "null".into()
                            } else {
                                fmt_g(x, 19)
                            }
                        }
                    };
                    self.out.extend_from_slice(text.as_bytes());
                }
                t => return Err(FwError::Msg(format!("Cannot encode type {t}"))),
            }
            Ok(())
        }
    }
}

/// A string as the firmware quotes it: control bytes and `"` escaped, nothing else.
pub fn escape(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0x08 => out.extend_from_slice(b"\\b"),
            c if c < 0x20 => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 0xf) as usize]);
            }
            c => out.push(c),
        }
    }
    out.push(b'"');
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
}
