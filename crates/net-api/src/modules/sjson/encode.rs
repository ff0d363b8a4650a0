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
        let mut g = Gen {
            lua,
            null: self.null.as_ref(),
            numbers: self.numbers,
            out: Vec::new(),
        };
        g.table(&root, size, 0)?;
        self.text = Some((g.out, 0));
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
            Value::Number(x) if cfg!(feature = "lua53") && x.fract() != 0.0 => 0,
            Value::Number(x) => x as i64 as i32,
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

struct Gen<'a> {
    lua: &'a Lua,
    null: Option<&'a Value>,
    numbers: Numbers,
    out: Vec<u8>,
}

impl Gen<'_> {
    fn table(&mut self, t: &Table, size: i16, level: usize) -> FwResult<()> {
        if size >= 0 {
            if size > MAX_ARRAY {
                return Err(FwError::Lua(mlua::Error::MemoryError(String::new())));
            }
            self.out.push(b'[');
            for i in 1..=size as i64 {
                if i > 1 {
                    self.out.push(b',');
                }
                let v = t.raw_get::<Value>(i)?;
                self.value(v, level)?;
            }
            self.out.push(b']');
            return Ok(());
        }
        let mut first = true;
        for pair in t.pairs::<Value, Value>() {
            let (k, v) = pair?;
            self.out.push(if first { b'{' } else { b',' });
            first = false;
            let k = match k {
                n @ (Value::Integer(_) | Value::Number(_)) => self
                    .lua
                    .coerce_string(n)?
                    .map(Value::String)
                    .unwrap_or(Value::Nil),
                k => k,
            };
            self.scalar(&k)?;
            self.out.push(b':');
            self.value(v, level)?;
        }
        self.out.push(b'}');
        Ok(())
    }

    /// An element or member value: functions are called for their value, tables nest.
    fn value(&mut self, mut v: Value, level: usize) -> FwResult<()> {
        for _ in 0..10 {
            let Value::Function(f) = &v else { break };
            v = f.call::<Value>(()).map_err(|e| super::raise(self.lua, e))?;
        }
        if let Value::Table(t) = &v {
            if level + 1 >= DEPTH {
                return Err(FwError::Msg("encoder stack overflow".into()));
            }
            let size = table_size(t)?;
            return self.table(t, size, level + 1);
        }
        self.scalar(&v)
    }

    fn scalar(&mut self, v: &Value) -> FwResult<()> {
        match v {
            Value::String(_) if self.null.is_some_and(|n| n == v) => {
                self.out.extend_from_slice(b"null")
            }
            Value::String(s) => escape(&mut self.out, &s.as_bytes()),
            Value::Nil | Value::LightUserData(_) => self.out.extend_from_slice(b"null"),
            Value::Boolean(b) => self
                .out
                .extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Integer(_) | Value::Number(_) => self.number(v)?,
            other => {
                return Err(FwError::Msg(format!(
                    "Cannot encode type {}",
                    type_num(other)
                )));
            }
        }
        Ok(())
    }

    fn number(&mut self, v: &Value) -> FwResult<()> {
        let text = match (self.numbers, v) {
            (Numbers::LuaToString, v) => {
                let s = self.lua.coerce_string(v.clone())?;
                s.map(|s| s.to_string_lossy()).unwrap_or_default()
            }
            (Numbers::Float19, Value::Integer(i)) if cfg!(feature = "lua53") => i.to_string(),
            (Numbers::Float19, v) => {
                let x = crate::lauxlib::to_number(v).unwrap_or(0.0);
                if !x.is_finite() {
                    "null".into()
                } else {
                    fmt_g(x, 19)
                }
            }
        };
        self.out.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

/// `lua_type`'s number, which the firmware's error message gives.
fn type_num(v: &Value) -> i32 {
    match v {
        Value::Table(_) => 5,
        Value::Function(_) => 6,
        Value::UserData(_) => 7,
        Value::Thread(_) => 8,
        _ => 7,
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
