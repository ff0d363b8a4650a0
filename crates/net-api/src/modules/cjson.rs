//! `cjson`: the 1.5 firmware's JSON module (lua-cjson 2.1 cut down); 2.1 removed it for `sjson`.
//!
//! Only `cjson.encode(v)` and `cjson.decode(s)` exist (the firmware compiled the option setters
//! out), with lua-cjson's defaults fixed: numbers printed `%.14g`, NaN and infinities refused,
//! sparse arrays (largest index over twice the count and over 10) refused, nesting up to 1000.
//! Decoding is lua-cjson's recursive descent with its messages
//! (`Expected value but found invalid token at character 1`); JSON `null` is a NULL light
//! userdata and numbers are Lua floats, as `lua_pushnumber` made them.

use mlua::{LightUserData, Lua, Table, Value};

use crate::lauxlib::{Args, FwResult, arg_check, bind, fw_err, typename};
use crate::modules::module_table;
use crate::modules::printf::fmt_g;

const MAX_DEPTH: usize = 1000;
const SPARSE_RATIO: i64 = 2;
const SPARSE_SAFE: i64 = 10;

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

// ---- encoding

struct Enc {
    out: Vec<u8>,
}

fn cannot<T>(v: &Value, why: &str) -> FwResult<T> {
    fw_err(format!("Cannot serialise {}: {why}", typename(v)))
}

impl Enc {
    fn value(&mut self, v: &Value, depth: usize) -> FwResult<()> {
        match v {
            Value::String(s) => self.string(&s.as_bytes()),
            Value::Integer(_) | Value::Number(_) => self.number(v)?,
            Value::Boolean(b) => self
                .out
                .extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Nil => self.out.extend_from_slice(b"null"),
            Value::LightUserData(p) if p.0.is_null() => self.out.extend_from_slice(b"null"),
            Value::Table(t) => self.table(t, depth + 1)?,
            other => return cannot(other, "type not supported"),
        }
        Ok(())
    }

    fn number(&mut self, v: &Value) -> FwResult<()> {
        let x = crate::lauxlib::to_number(v).unwrap_or(0.0);
        if !x.is_finite() {
            return cannot(v, "must not be NaN or Infinity");
        }
        self.out.extend_from_slice(fmt_g(x, 14).as_bytes());
        Ok(())
    }

    fn string(&mut self, s: &[u8]) {
        self.out.push(b'"');
        for &c in s {
            match c {
                8 => self.out.extend_from_slice(b"\\b"),
                b'\t' => self.out.extend_from_slice(b"\\t"),
                b'\n' => self.out.extend_from_slice(b"\\n"),
                12 => self.out.extend_from_slice(b"\\f"),
                b'\r' => self.out.extend_from_slice(b"\\r"),
                b'"' => self.out.extend_from_slice(b"\\\""),
                b'/' => self.out.extend_from_slice(b"\\/"),
                b'\\' => self.out.extend_from_slice(b"\\\\"),
                c if c < 0x20 || c == 0x7f => {
                    self.out.extend_from_slice(format!("\\u{c:04x}").as_bytes())
                }
                c => self.out.push(c),
            }
        }
        self.out.push(b'"');
    }

    fn table(&mut self, t: &Table, depth: usize) -> FwResult<()> {
        if depth > MAX_DEPTH {
            return fw_err(format!("Cannot serialise, excessive nesting ({depth})"));
        }
        let len = array_length(t)?;
        if len > 0 {
            self.out.push(b'[');
            for i in 1..=len {
                if i > 1 {
                    self.out.push(b',');
                }
                self.value(&t.raw_get::<Value>(i)?, depth)?;
            }
            self.out.push(b']');
            return Ok(());
        }
        self.out.push(b'{');
        let mut first = true;
        for pair in t.pairs::<Value, Value>() {
            let (k, v) = pair?;
            if !first {
                self.out.push(b',');
            }
            first = false;
            match &k {
                Value::Integer(_) | Value::Number(_) => {
                    self.out.push(b'"');
                    self.number(&k)?;
                    self.out.extend_from_slice(b"\":");
                }
                Value::String(s) => {
                    self.string(&s.as_bytes());
                    self.out.push(b':');
                }
                other => return cannot(other, "table key must be a number or string"),
            }
            self.value(&v, depth)?;
        }
        self.out.push(b'}');
        Ok(())
    }
}

/// The array length if every key is an integer >= 1 and the array is not too sparse; else 0
/// (an object). An excessively sparse array is an error, as the firmware's defaults make it.
fn array_length(t: &Table) -> FwResult<i64> {
    let (mut max, mut items) = (0i64, 0i64);
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        let k = match k {
            Value::Integer(i) => i as f64,
            Value::Number(x) => x,
            _ => return Ok(-1),
        };
        if k == 0.0 || k.floor() != k || k < 1.0 {
            return Ok(-1);
        }
        max = max.max(k as i64);
        items += 1;
    }
    if max > items * SPARSE_RATIO && max > SPARSE_SAFE {
        return cannot(&Value::Table(t.clone()), "excessively sparse array");
    }
    Ok(max)
}

// ---- decoding

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Num(f64),
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    /// An error, with lua-cjson's description.
    Error(&'static str),
}

impl Tok {
    fn name(&self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str(_) => "T_STRING",
            Tok::Num(_) => "T_NUMBER",
            Tok::Bool(_) => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(e) => e,
        }
    }
}

struct Dec<'a> {
    lua: &'a Lua,
    /// The text up to its first zero byte (lua-cjson reads a C string).
    s: &'a [u8],
    ptr: usize,
    depth: usize,
}

impl Dec<'_> {
    fn at(&self, i: usize) -> u8 {
        self.s.get(i).copied().unwrap_or(0)
    }

    /// The next token and the index it starts at.
    fn token(&mut self) -> (Tok, usize) {
        while matches!(self.at(self.ptr), b' ' | b'\t' | b'\n' | b'\r') {
            self.ptr += 1;
        }
        let start = self.ptr;
        let c = self.at(start);
        let single = match c {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b',' => Some(Tok::Comma),
            b':' => Some(Tok::Colon),
            0 => return (Tok::End, start),
            _ => None,
        };
        if let Some(t) = single {
            self.ptr += 1;
            return (t, start);
        }
        let rest = &self.s[start..];
        let tok = match c {
            b'"' => self.string(),
            b'-' | b'0'..=b'9' => self.number(),
            _ if rest.starts_with(b"true") => self.word(4, Tok::Bool(true)),
            _ if rest.starts_with(b"false") => self.word(5, Tok::Bool(false)),
            _ if rest.starts_with(b"null") => self.word(4, Tok::Null),
            b'+' => self.number(),
            b'i' | b'I' | b'n' | b'N' if is_inf_or_nan(rest) => self.number(),
            _ => Tok::Error("invalid token"),
        };
        let at = if let Tok::Error(_) = tok {
            self.ptr
        } else {
            start
        };
        (tok, at)
    }

    fn word(&mut self, n: usize, t: Tok) -> Tok {
        self.ptr += n;
        t
    }

    /// The firmware's `strtod`: sign, digits with one point, an exponent; no inf, nan or hex.
    fn number(&mut self) -> Tok {
        let s = &self.s[self.ptr..];
        let mut i = usize::from(matches!(s.first(), Some(b'-' | b'+')));
        let digits_from = i;
        let mut point = false;
        let mut digits = 0;
        while let Some(&c) = s.get(i) {
            if c.is_ascii_digit() {
                digits += 1;
            } else if c == b'.' && !point {
                point = true;
            } else {
                break;
            }
            i += 1;
        }
        if digits == 0 {
            return Tok::Error("invalid number");
        }
        let mantissa = &s[digits_from..i];
        let mut exp: i64 = 0;
        if matches!(s.get(i), Some(b'e' | b'E')) {
            i += 1;
            let neg = s.get(i) == Some(&b'-');
            if matches!(s.get(i), Some(b'-' | b'+')) {
                i += 1;
            }
            while let Some(d) = s.get(i).filter(|c| c.is_ascii_digit()) {
                exp = (exp * 10 + (d - b'0') as i64).min(100_000);
                i += 1;
            }
            if neg {
                exp = -exp;
            }
        }
        let text = format!("{}e{exp}", String::from_utf8_lossy(mantissa));
        let x: f64 = text.parse().unwrap_or(0.0);
        self.ptr += i;
        Tok::Num(if s.first() == Some(&b'-') { -x } else { x })
    }

    fn string(&mut self) -> Tok {
        self.ptr += 1;
        let mut out = Vec::new();
        loop {
            let c = self.at(self.ptr);
            match c {
                b'"' => break,
                0 => return Tok::Error("unexpected end of string"),
                b'\\' => {
                    let e = match self.at(self.ptr + 1) {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 8,
                        b't' => b'\t',
                        b'n' => b'\n',
                        b'f' => 12,
                        b'r' => b'\r',
                        b'u' => match self.unicode(&mut out) {
                            Some(()) => continue,
                            None => return Tok::Error("invalid unicode escape code"),
                        },
                        _ => return Tok::Error("invalid escape code"),
                    };
                    out.push(e);
                    self.ptr += 2;
                }
                c => {
                    out.push(c);
                    self.ptr += 1;
                }
            }
        }
        self.ptr += 1;
        Tok::Str(out)
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        (0..4).try_fold(0u32, |acc, k| {
            Some(acc << 4 | (self.at(at + k) as char).to_digit(16)?)
        })
    }

    /// `\uXXXX` (a surrogate pair takes two) as UTF-8.
    fn unicode(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let mut cp = self.hex4(self.ptr + 2)?;
        let mut len = 6;
        if cp & 0xF800 == 0xD800 {
            if cp & 0x400 != 0 {
                return None;
            }
            if self.at(self.ptr + 6) != b'\\' || self.at(self.ptr + 7) != b'u' {
                return None;
            }
            let low = self.hex4(self.ptr + 8)?;
            if low & 0xFC00 != 0xDC00 {
                return None;
            }
            cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        let ch = char::from_u32(cp)?;
        let mut b = [0; 4];
        out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
        self.ptr += len;
        Some(())
    }

    fn expected<T>(&self, what: &str, tok: &(Tok, usize)) -> FwResult<T> {
        fw_err(format!(
            "Expected {what} but found {} at character {}",
            tok.0.name(),
            tok.1 + 1
        ))
    }

    fn descend(&mut self) -> FwResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return fw_err(format!(
                "Found too many nested data structures ({}) at character {}",
                self.depth, self.ptr
            ));
        }
        Ok(())
    }

    fn value(&mut self, tok: (Tok, usize)) -> FwResult<Value> {
        Ok(match tok.0 {
            Tok::Str(s) => Value::String(self.lua.create_string(s)?),
            Tok::Num(x) => Value::Number(x),
            Tok::Bool(b) => Value::Boolean(b),
            Tok::Null => null(),
            Tok::ObjBegin => self.object()?,
            Tok::ArrBegin => self.array()?,
            _ => return self.expected("value", &tok),
        })
    }

    fn object(&mut self) -> FwResult<Value> {
        self.descend()?;
        let t = self.lua.create_table()?;
        let mut tok = self.token();
        if tok.0 == Tok::ObjEnd {
            self.depth -= 1;
            return Ok(Value::Table(t));
        }
        loop {
            let Tok::Str(key) = &tok.0 else {
                return self.expected("object key string", &tok);
            };
            let key = self.lua.create_string(key)?;
            let colon = self.token();
            if colon.0 != Tok::Colon {
                return self.expected("colon", &colon);
            }
            let v = self.token();
            let v = self.value(v)?;
            t.raw_set(key, v)?;
            let next = self.token();
            match next.0 {
                Tok::ObjEnd => {
                    self.depth -= 1;
                    return Ok(Value::Table(t));
                }
                Tok::Comma => tok = self.token(),
                _ => return self.expected("comma or object end", &next),
            }
        }
    }

    fn array(&mut self) -> FwResult<Value> {
        self.descend()?;
        let t = self.lua.create_table()?;
        let mut tok = self.token();
        if tok.0 == Tok::ArrEnd {
            self.depth -= 1;
            return Ok(Value::Table(t));
        }
        for i in 1.. {
            let v = self.value(tok)?;
            t.raw_set(i, v)?;
            let next = self.token();
            match next.0 {
                Tok::ArrEnd => break,
                Tok::Comma => tok = self.token(),
                _ => return self.expected("comma or array end", &next),
            }
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }
}

fn is_inf_or_nan(s: &[u8]) -> bool {
    let head: Vec<u8> = s.iter().take(3).map(u8::to_ascii_lowercase).collect();
    head == b"inf" || head == b"nan"
}

fn encode(lua: &Lua, a: &Args) -> FwResult<mlua::LuaString> {
    arg_check(a.len() == 1, 1, "expected 1 argument")?;
    let mut e = Enc { out: Vec::new() };
    e.value(a.arg(1), 0)?;
    Ok(lua.create_string(e.out)?)
}

fn decode(lua: &Lua, a: &Args) -> FwResult<Value> {
    arg_check(a.len() == 1, 1, "expected 1 argument")?;
    let s = a.check_bytes(lua, 1)?;
    let s = s.as_bytes();
    if s.len() >= 2 && (s[0] == 0 || s[1] == 0) {
        return fw_err("JSON parser does not support UTF-16 or UTF-32");
    }
    let text = s.split(|&c| c == 0).next().unwrap_or(&[]);
    let mut d = Dec {
        lua,
        s: text,
        ptr: 0,
        depth: 0,
    };
    let first = d.token();
    let v = d.value(first)?;
    let end = d.token();
    if end.0 != Tok::End {
        return d.expected("the end", &end);
    }
    Ok(v)
}

pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let t = module_table(
        lua,
        vec![
            ("encode", bind(lua, |lua, a| encode(lua, &a))?),
            ("decode", bind(lua, |lua, a| decode(lua, &a))?),
        ],
    )?;
    lua.globals().set("cjson", t)
}
