//! `sjson.decoder`: builds Lua values from the tokenizer's pushes and pops, as the firmware does.
//!
//! Tables are made when their bracket opens (so `checkpath` sees them empty, with their path) and
//! filled with `settable`, so a `metatable` option's `__newindex` sees every element as it comes.
//! Strings and numbers are made when they close, from the bytes kept since they opened: between
//! writes only the bytes from the start of the newest value on are kept, so a document fed in
//! pieces (one byte at a time, even) gives what it gives in one piece.
//! The firmware's number and escape rules are kept: numbers are read by Lua's own conversion,
//! `\uXXXX` is taken without a check of its digits and a surrogate half becomes `?`.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Function, Lua, Table, Value};

use super::build::{Builder, Key, Op, Scalar, Shape, Text};
use super::jsonsl::{Handler, JsonError, Kind, State, Tokenizer, special};
use super::store::{Item, Storer};

/// The C functions decoders call, made once per Lua state.
pub struct Fns {
    pub storer: Storer,
    pub build: Function,
    /// A finished decoder's list of steps, kept for the next one.
    pub spare_ops: RefCell<Vec<Op>>,
}

/// Lists of steps longer than this are not kept for reuse.
const SPARE_OPS_MAX: usize = 1 << 16;

/// The levels the firmware's decoder has: its `depth` option is read but never used.
pub const DEPTH: usize = 20;

pub struct Decoder {
    tok: Tokenizer,
    /// Bytes from stream position `buf_start` on.
    buf: Vec<u8>,
    buf_start: usize,
    /// The first position a later value may still need (the newest push's start).
    min_needed: usize,
    /// The decoded document (the firmware's `result[1]`).
    root: Value,
    objs: Vec<Option<Table>>,
    used: Vec<i64>,
    /// The object key waiting for its value: where its text starts, its length, its escapes.
    hkey: Option<(usize, usize, usize)>,
    null: Value,
    metatable: Option<Table>,
    /// The path of the table being made, when the metatable has `checkpath`.
    path: Option<Table>,
    fns: Rc<Fns>,
    /// Without a `metatable` option: the document is made by steps (see `build.rs`).
    build: Option<Builder>,
    pub complete: bool,
    pub error: Option<JsonError>,
}

impl Decoder {
    pub fn new(
        fns: Rc<Fns>,
        null: Value,
        metatable: Option<Table>,
        path: Option<Table>,
    ) -> Decoder {
        let build = metatable
            .is_none()
            .then(|| Builder::new(fns.spare_ops.take()));
        Decoder {
            tok: Tokenizer::new(DEPTH),
            buf: Vec::new(),
            buf_start: 0,
            min_needed: 0,
            root: Value::Nil,
            objs: vec![None; DEPTH],
            used: vec![0; DEPTH],
            hkey: None,
            null,
            metatable,
            path,
            fns,
            build,
            complete: false,
            error: None,
        }
    }

    pub fn result(&self) -> Value {
        self.root.clone()
    }

    /// Feeds one piece of the document.
    pub fn write(&mut self, lua: &Lua, bytes: &[u8]) -> mlua::Result<()> {
        // A pending key's text is kept too: keys are made when their value is stored.
        let keep = self
            .hkey
            .map_or(self.min_needed, |(at, ..)| at.min(self.min_needed));
        let discard = keep.saturating_sub(self.buf_start).min(self.buf.len());
        self.buf.drain(..discard);
        self.buf_start += discard;
        self.buf.extend_from_slice(bytes);
        let mut tok = std::mem::replace(&mut self.tok, Tokenizer::new(1));
        let r = tok.feed(bytes, &mut Feed { lua, d: self });
        self.tok = tok;
        if let Some(b) = &mut self.build {
            // What the steps store comes before what stopped the tokenizer, as it would have.
            let root = &mut self.root;
            b.flush(
                lua,
                &self.fns.build,
                &self.null,
                root,
                &self.buf,
                self.buf_start,
            )?;
            r?;
        } else {
            r?;
        }
        if self.complete {
            self.free_working_data();
        }
        Ok(())
    }

    /// Lets go of everything after running out of memory, and collects it: the decoder cannot
    /// be used again.
    pub fn abandon(&mut self, lua: &Lua) {
        self.free_working_data();
        self.root = Value::Nil;
        self.error = Some(JsonError::CantInsert);
        self.fns.storer.collect(lua);
    }

    /// What the firmware lets go of once the document is complete.
    fn free_working_data(&mut self) {
        self.buf = Vec::new();
        self.objs.iter_mut().for_each(|o| *o = None);
        self.hkey = None;
        self.metatable = None;
        self.path = None;
        if let Some(b) = self.build.take() {
            let ops = b.into_ops();
            if ops.capacity() <= SPARE_OPS_MAX {
                *self.fns.spare_ops.borrow_mut() = ops;
            }
        }
    }

    /// The bytes of a value from its start, as far as the stream has come.
    fn bytes_from(&self, pos: usize) -> &[u8] {
        self.buf
            .get(pos.saturating_sub(self.buf_start)..)
            .unwrap_or(&[])
    }

    /// Uses up the key of the next value at `level`: the pending object key, or the next index.
    fn take_key(&mut self, level: usize) -> Val {
        match self.hkey.take() {
            Some((at, len, esc)) => Val::Text(at, len, esc),
            None if level == 1 => Val::Other(Value::Integer(1)),
            None => {
                let n = &mut self.used[level - 1];
                *n += 1;
                Val::Other(Value::Integer(*n))
            }
        }
    }

    /// Writes down the step that makes a value at `level` (see `build.rs`); false: the document
    /// is made the slow way.
    fn step(&mut self, level: usize, make: impl FnOnce(Key) -> Op) -> bool {
        if self.build.is_none() {
            return false;
        }
        let key = match self.take_key(level) {
            Val::Text(at, len, esc) => Key::Text(Text { at, len, esc }),
            Val::Other(Value::Integer(n)) => Key::Index(n),
            Val::Other(_) => Key::Index(0),
        };
        if let Some(b) = &mut self.build {
            b.push(make(key));
        }
        true
    }

    /// Stores `v` in the parent of a value at `level`, under the pending key or the next index.
    fn store(&mut self, lua: &Lua, level: usize, v: Val) -> mlua::Result<()> {
        let key = self.take_key(level);
        let buf = Buffered(&self.buf, self.buf_start);
        let t = match self.objs.get(level.wrapping_sub(1)) {
            Some(Some(t)) if level > 1 => t,
            _ => {
                self.root = buf.resolve(v).value(lua)?;
                return Ok(());
            }
        };
        let (key, v) = (buf.resolve(key), buf.resolve(v));
        // Fresh tables have no metatable unless the option gave one: then settable it is.
        if self.metatable.is_some() {
            t.set(key.value(lua)?, v.value(lua)?)
        } else {
            self.fns.storer.set(lua, t, key.item(), v.item())
        }
    }
}

/// The kept bytes and the stream position of the first.
struct Buffered<'a>(&'a [u8], usize);

impl<'a> Buffered<'a> {
    fn resolve(&self, v: Val) -> Resolved<'a> {
        match v {
            Val::Text(at, len, esc) => {
                let bytes = self.0.get(at.saturating_sub(self.1)..).unwrap_or(&[]);
                if esc == 0 {
                    Resolved::Borrowed(&bytes[..len.min(bytes.len())])
                } else {
                    Resolved::Owned(unescape(bytes, len))
                }
            }
            Val::Other(v) => Resolved::Value(v),
        }
    }
}

/// A key or value by where its text is (start, length, escapes), or made already.
enum Val {
    Text(usize, usize, usize),
    Other(Value),
}

/// A key or value ready to store: a string's bytes, or a value.
enum Resolved<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
    Value(Value),
}

impl Resolved<'_> {
    fn value(self, lua: &Lua) -> mlua::Result<Value> {
        match self {
            Resolved::Borrowed(b) => Ok(Value::String(lua.create_string(b)?)),
            Resolved::Owned(b) => Ok(Value::String(lua.create_string(b)?)),
            Resolved::Value(v) => Ok(v),
        }
    }

    fn item(&self) -> Item<'_> {
        match self {
            Resolved::Borrowed(b) => Item::Bytes(b),
            Resolved::Owned(b) => Item::Bytes(b),
            Resolved::Value(v) => Item::Value(v.clone()),
        }
    }
}

struct Feed<'a> {
    lua: &'a Lua,
    d: &'a mut Decoder,
}

impl Feed<'_> {
    fn new_table(&mut self, st: &State) -> mlua::Result<()> {
        let shape = if st.kind == Kind::List {
            Shape::List(0)
        } else {
            Shape::Object
        };
        if self.d.step(st.level, |k| Op::Open(k, shape)) {
            self.d.used[st.level] = 0;
            return Ok(());
        }
        let t = self.d.fns.storer.new_table(self.lua)?;
        if let Some(mt) = &self.d.metatable {
            t.set_metatable(Some(mt.clone()))?;
        }
        self.d.objs[st.level] = Some(t.clone());
        self.d.used[st.level] = 0;
        let mut want = true;
        if let Some(path) = self.d.path.clone() {
            if st.level > 1 {
                // The path holds the key the table will get, made now as the firmware makes it.
                let key = self.peek_key(st.level)?;
                path.raw_set(st.level as i64 - 1, key)?;
            }
            want = self.checkpath(&t, &path)?;
        }
        if want {
            self.d
                .store(self.lua, st.level, Val::Other(Value::Table(t)))?;
        } else {
            // Not stored, but the key (or index) is used up all the same.
            self.d.take_key(st.level);
        }
        Ok(())
    }

    /// The key the next value at `level` will get, without using it up.
    fn peek_key(&self, level: usize) -> mlua::Result<Value> {
        match self.d.hkey {
            Some((at, len, esc)) => Buffered(&self.d.buf, self.d.buf_start)
                .resolve(Val::Text(at, len, esc))
                .value(self.lua),
            None if level == 1 => Ok(Value::Integer(1)),
            None => Ok(Value::Integer(self.d.used[level - 1] + 1)),
        }
    }

    /// `metatable.checkpath(table, path)`: false keeps the new table out of its parent.
    fn checkpath(&self, t: &Table, path: &Table) -> mlua::Result<bool> {
        let Some(mt) = &self.d.metatable else {
            return Ok(true);
        };
        match mt.get::<Value>("checkpath")? {
            Value::Nil => Ok(true),
            Value::Function(f) => {
                let r: Value = f.call((t.clone(), path.clone()))?;
                Ok(!matches!(r, Value::Nil | Value::Boolean(false)))
            }
            other => Err(mlua::Error::runtime(format!(
                "attempt to call a {} value",
                crate::lauxlib::typename(&other)
            ))),
        }
    }

    /// The common numbers (short integers, short decimals) straight from their bytes.
    #[inline]
    fn number_fast(&self, st: &State) -> Option<Scalar> {
        let bytes = self.d.bytes_from(st.pos_begin);
        let text = bytes.get(..st.pos_cur.checked_sub(st.pos_begin)?)?;
        let (neg, digits) = match text {
            [b'-', rest @ ..] => (true, rest),
            _ => (false, text),
        };
        if !digits.is_empty() && digits.len() <= 15 && digits.iter().all(u8::is_ascii_digit) {
            let v = digits
                .iter()
                .fold(0i64, |a, &c| a * 10 + i64::from(c - b'0'));
            let v = if neg { -v } else { v };
            if cfg!(feature = "lua53") {
                return Some(Scalar::Integer(v));
            }
            // `-0` is a float zero with its sign: the slow way.
            return (v != 0 || !neg).then_some(Scalar::Number(v as f64));
        }
        short_decimal(text).map(Scalar::Number)
    }

    fn number(&self, st: &State) -> mlua::Result<Value> {
        let bytes = self.d.bytes_from(st.pos_begin);
        let text = &bytes[..(st.pos_cur - st.pos_begin).min(bytes.len())];
        let text = std::str::from_utf8(text).unwrap_or("");
        number(text).ok_or_else(|| mlua::Error::runtime("Invalid number"))
    }
}

/// A number's text as the build's Lua reads it (5.3 keeps integers integers).
fn number(text: &str) -> Option<Value> {
    // Integers are read as integers (5.1's float of one is exact below 2^53; `-0` is a float).
    if let Some(i) = plain_integer(text.as_bytes()) {
        if cfg!(feature = "lua53") {
            return Some(Value::Integer(i));
        }
        if i != 0 && i.unsigned_abs() < 1 << 53 {
            return Some(Value::Number(i as f64));
        }
    }
    if let Some(x) = short_decimal(text.as_bytes()) {
        return Some(Value::Number(x));
    }
    match crate::lauxlib::parse_number(text) {
        Some(x) => Some(Value::Number(x)),
        // Lua 5.1's lua_tonumber gives 0 for what it cannot read.
        None if !cfg!(feature = "lua53") => Some(Value::Number(0.0)),
        None => None,
    }
}

/// An optional `-` and digits, as an integer (most of a document's numbers: no float parse).
fn plain_integer(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return text_integer(b);
    }
    let v = digits
        .iter()
        .fold(0i64, |a, &c| a * 10 + i64::from(c - b'0'));
    Some(if neg { -v } else { v })
}

/// `-ddd.ddd` with at most 15 digits in all: the digits as an integer and one division by a power
/// of ten, both exact, so the quotient is the correctly rounded value strtod gives.
fn short_decimal(b: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (neg, body) = match b {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, b),
    };
    let dot = body.iter().position(|&c| c == b'.')?;
    let (int, frac) = (&body[..dot], &body[dot + 1..]);
    if int.is_empty()
        || frac.is_empty()
        || int.len() + frac.len() > 15
        || !int.iter().chain(frac).all(u8::is_ascii_digit)
    {
        return None;
    }
    let m = int
        .iter()
        .chain(frac)
        .fold(0u64, |a, &c| a * 10 + u64::from(c - b'0'));
    let x = m as f64 / POW10[frac.len()];
    Some(if neg { -x } else { x })
}

/// Longer integers, the slow way.
fn text_integer(b: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(b).ok()?;
    if text.contains(['.', 'e', 'E']) {
        return None;
    }
    text.parse::<i64>().ok()
}

/// The firmware's string unescaping: `len` bytes of content, escapes decoded; a `\u` near the end
/// reads on past the content, as the firmware's does (past the buffer it reads zeros).
pub fn unescape(bytes: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    unescape_into(&mut out, bytes, len);
    out
}

/// `unescape`, onto the end of `out`.
pub fn unescape_into(out: &mut Vec<u8>, bytes: &[u8], len: usize) {
    let at = |i: usize| bytes.get(i).copied().unwrap_or(0);
    let mut i = 0;
    while i < len {
        let mut c = at(i);
        if c == b'\\' {
            i += 1;
            c = match at(i) {
                b'b' => 8,
                b'f' => 12,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'u' => {
                    let mut cp = 0u32;
                    for _ in 0..4 {
                        i += 1;
                        cp = (cp << 4) + fromhex(at(i));
                    }
                    utf8(out, cp);
                    i += 1;
                    continue;
                }
                other => other,
            };
        }
        out.push(c);
        i += 1;
    }
}

fn fromhex(c: u8) -> u32 {
    if c <= b'9' {
        (c & 0xf) as u32
    } else {
        (c.wrapping_sub(b'A').wrapping_add(10) & 0xf) as u32
    }
}

/// A code point as UTF-8; a lone surrogate half (each `\u` is taken alone) becomes `?`.
fn utf8(out: &mut Vec<u8>, c: u32) {
    match char::from_u32(c) {
        Some(ch) => {
            let mut b = [0; 4];
            out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
        }
        None => out.push(b'?'),
    }
}

impl Handler for Feed<'_> {
    type Err = mlua::Error;

    #[inline]
    fn push(&mut self, st: &State) -> mlua::Result<()> {
        if matches!(st.kind, Kind::List | Kind::Object) {
            self.new_table(st)?;
        }
        self.d.min_needed = st.pos_begin;
        Ok(())
    }

    #[inline]
    fn pop(&mut self, st: &State) -> mlua::Result<()> {
        match st.kind {
            Kind::HKey => {
                self.d.hkey = Some((st.pos_begin + 1, st.pos_cur - st.pos_begin - 1, st.nescapes))
            }
            Kind::String => {
                let text = Text {
                    at: st.pos_begin + 1,
                    len: st.pos_cur - st.pos_begin - 1,
                    esc: st.nescapes,
                };
                if self.d.step(st.level, |k| Op::Set(k, Scalar::Text(text))) {
                    return Ok(());
                }
                let v = Val::Text(st.pos_begin + 1, st.pos_cur - st.pos_begin - 1, st.nescapes);
                self.d.store(self.lua, st.level, v)?;
            }
            Kind::Special => {
                let f = st.special_flags;
                if self.d.build.is_some() {
                    let v = if f & special::TRUE != 0 {
                        Scalar::Bool(true)
                    } else if f & special::FALSE != 0 {
                        Scalar::Bool(false)
                    } else if f & special::NULL != 0 {
                        Scalar::Null
                    } else {
                        match self.number_fast(st) {
                            Some(v) => v,
                            None => match self.number(st)? {
                                Value::Integer(i) => Scalar::Integer(i),
                                Value::Number(x) => Scalar::Number(x),
                                _ => Scalar::Number(0.0),
                            },
                        }
                    };
                    self.d.step(st.level, |k| Op::Set(k, v));
                    return Ok(());
                }
                let v = if f & special::TRUE != 0 {
                    Value::Boolean(true)
                } else if f & special::FALSE != 0 {
                    Value::Boolean(false)
                } else if f & special::NULL != 0 {
                    self.d.null.clone()
                } else {
                    self.number(st)?
                };
                self.d.store(self.lua, st.level, Val::Other(v))?;
            }
            Kind::Object | Kind::List => {
                if let Some(b) = &mut self.d.build {
                    b.push(Op::Close);
                }
                self.d.objs[st.level] = None;
                if let Some(path) = &self.d.path {
                    path.raw_set(st.level as i64, Value::Nil)?;
                }
                if st.level == 1 {
                    self.d.complete = true;
                }
            }
            Kind::None => {}
        }
        Ok(())
    }

    fn error(&mut self, e: JsonError) {
        if !self.d.complete {
            self.d.error = Some(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_lua_reads_them() {
        let n = |t: &str| match number(t) {
            Some(Value::Integer(i)) => i as f64,
            Some(Value::Number(x)) => x,
            _ => f64::NAN,
        };
        assert_eq!(n("-01"), -1.0);
        assert_eq!(n("12345678901"), 12345678901.0);
        assert_eq!(n("2.5e1"), 25.0);
        assert_eq!(n("-999999999999999999"), -999999999999999999.0);
        assert_eq!(n("9223372036854775807"), 9223372036854775807.0);
        assert_eq!(n("123456789012345678901"), 123456789012345678901.0);
        assert!(n("-0").is_sign_negative() || cfg!(feature = "lua53"));
    }

    #[test]
    fn short_decimals_read_as_strtod_reads_them() {
        for text in [
            "2.5",
            "-0.5",
            "0.1",
            "1.25",
            "123456789.012345",
            "-99999.99999",
            "0.000001",
            "3.14159",
            "-0.0",
            "7.0",
            "1234567890.12345",
        ] {
            assert_eq!(
                super::short_decimal(text.as_bytes()).map(f64::to_bits),
                Some(text.parse::<f64>().unwrap().to_bits()),
                "{text}"
            );
        }
        for text in [
            "1.",
            ".5",
            "1e5",
            "1.5e3",
            "1234567890.123456",
            "-",
            "1.2.3",
        ] {
            assert_eq!(super::short_decimal(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn escapes_decode_as_the_firmware_does() {
        let s = br#"a\"b\\c\/d\n\u0041\u00e9\ud83d"#;
        assert_eq!(unescape(s, s.len()), "a\"b\\c/d\nA\u{e9}?".as_bytes());
    }
}
