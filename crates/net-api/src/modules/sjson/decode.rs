//! `sjson.decoder`: builds Lua values from the tokenizer's pushes and pops, as the firmware does.
//!
//! Tables are made when their bracket opens (so `checkpath` sees them empty, with their path) and
//! filled with `settable`, so a `metatable` option's `__newindex` sees every element as it comes.
//! Strings and numbers are made when they close, from the bytes kept since they opened: between
//! writes only the bytes from the start of the newest value on are kept, so a document fed in
//! pieces (one byte at a time, even) gives what it gives in one piece.
//! The firmware's number and escape rules are kept: numbers are read by Lua's own conversion,
//! `\uXXXX` is taken without a check of its digits and a surrogate half becomes `?`.

use mlua::{Lua, Table, Value};

use super::jsonsl::{Handler, JsonError, Kind, State, Tokenizer, special};

/// The levels the firmware's decoder has: its `depth` option is read but never used.
pub const DEPTH: usize = 20;

/// Where a new value goes: the result slot, or a table of an outer level.
enum Parent {
    Root,
    Table(Table),
}

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
    hkey: Option<Value>,
    null: Value,
    metatable: Option<Table>,
    /// The path of the table being made, when the metatable has `checkpath`.
    path: Option<Table>,
    pub complete: bool,
    pub error: Option<JsonError>,
}

impl Decoder {
    pub fn new(null: Value, metatable: Option<Table>, path: Option<Table>) -> Decoder {
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
            complete: false,
            error: None,
        }
    }

    pub fn result(&self) -> Value {
        self.root.clone()
    }

    /// Feeds one piece of the document.
    pub fn write(&mut self, lua: &Lua, bytes: &[u8]) -> mlua::Result<()> {
        let discard = self
            .min_needed
            .saturating_sub(self.buf_start)
            .min(self.buf.len());
        self.buf.drain(..discard);
        self.buf_start += discard;
        self.buf.extend_from_slice(bytes);
        let mut tok = std::mem::replace(&mut self.tok, Tokenizer::new(1));
        let r = tok.feed(bytes, &mut Feed { lua, d: self });
        self.tok = tok;
        if self.complete {
            self.free_working_data();
        }
        r
    }

    /// What the firmware lets go of once the document is complete.
    fn free_working_data(&mut self) {
        self.buf = Vec::new();
        self.objs.iter_mut().for_each(|o| *o = None);
        self.hkey = None;
        self.metatable = None;
        self.path = None;
    }

    /// The bytes of a value from its start, as far as the stream has come.
    fn bytes_from(&self, pos: usize) -> &[u8] {
        self.buf
            .get(pos.saturating_sub(self.buf_start)..)
            .unwrap_or(&[])
    }

    fn parent(&self, level: usize) -> Parent {
        match (level, self.objs.get(level.wrapping_sub(1))) {
            (1, _) | (_, None | Some(None)) => Parent::Root,
            (_, Some(Some(t))) => Parent::Table(t.clone()),
        }
    }

    /// The key of the next value at `level`: the pending object key, or the next list index.
    fn next_key(&mut self, level: usize) -> Value {
        if let Some(k) = self.hkey.take() {
            return k;
        }
        if level == 1 {
            return Value::Integer(1);
        }
        let n = &mut self.used[level - 1];
        *n += 1;
        Value::Integer(*n)
    }

    fn settable(&mut self, parent: Parent, key: Value, v: Value) -> mlua::Result<()> {
        match parent {
            Parent::Root => {
                self.root = v;
                Ok(())
            }
            // Fresh tables have no metatable unless the option gave one: then settable it is.
            Parent::Table(t) if self.metatable.is_some() => t.set(key, v),
            Parent::Table(t) => t.raw_set(key, v),
        }
    }
}

struct Feed<'a> {
    lua: &'a Lua,
    d: &'a mut Decoder,
}

impl Feed<'_> {
    fn new_table(&mut self, st: &State) -> mlua::Result<()> {
        let t = self.lua.create_table()?;
        if let Some(mt) = &self.d.metatable {
            t.set_metatable(Some(mt.clone()))?;
        }
        self.d.objs[st.level] = Some(t.clone());
        self.d.used[st.level] = 0;
        let parent = self.d.parent(st.level);
        let key = self.d.next_key(st.level);
        let mut want = true;
        if let Some(path) = self.d.path.clone() {
            if st.level > 1 {
                path.raw_set(st.level as i64 - 1, key.clone())?;
            }
            want = self.checkpath(&t, &path)?;
        }
        if want {
            self.d.settable(parent, key, Value::Table(t))?;
        }
        Ok(())
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

    fn string(&self, st: &State) -> mlua::Result<Value> {
        let bytes = self.d.bytes_from(st.pos_begin + 1);
        let len = st.pos_cur - st.pos_begin - 1;
        Ok(Value::String(self.lua.create_string(unescape(bytes, len))?))
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
    if cfg!(feature = "lua53")
        && !text.contains(['.', 'e', 'E'])
        && let Ok(i) = text.parse::<i64>()
    {
        return Some(Value::Integer(i));
    }
    match crate::lauxlib::parse_number(text) {
        Some(x) => Some(Value::Number(x)),
        // Lua 5.1's lua_tonumber gives 0 for what it cannot read.
        None if !cfg!(feature = "lua53") => Some(Value::Number(0.0)),
        None => None,
    }
}

/// The firmware's string unescaping: `len` bytes of content, escapes decoded; a `\u` near the end
/// reads on past the content, as the firmware's does (past the buffer it reads zeros).
pub fn unescape(bytes: &[u8], len: usize) -> Vec<u8> {
    let at = |i: usize| bytes.get(i).copied().unwrap_or(0);
    let mut out = Vec::with_capacity(len);
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
                    utf8(&mut out, cp);
                    i += 1;
                    continue;
                }
                other => other,
            };
        }
        out.push(c);
        i += 1;
    }
    out
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

    fn push(&mut self, st: &State) -> mlua::Result<()> {
        if matches!(st.kind, Kind::List | Kind::Object) {
            self.new_table(st)?;
        }
        self.d.min_needed = st.pos_begin;
        Ok(())
    }

    fn pop(&mut self, st: &State) -> mlua::Result<()> {
        match st.kind {
            Kind::HKey => self.d.hkey = Some(self.string(st)?),
            Kind::String => {
                let parent = self.d.parent(st.level);
                let key = self.d.next_key(st.level);
                let v = self.string(st)?;
                self.d.settable(parent, key, v)?;
            }
            Kind::Special => {
                let f = st.special_flags;
                let v = if f & special::TRUE != 0 {
                    Value::Boolean(true)
                } else if f & special::FALSE != 0 {
                    Value::Boolean(false)
                } else if f & special::NULL != 0 {
                    self.d.null.clone()
                } else {
                    self.number(st)?
                };
                let parent = self.d.parent(st.level);
                let key = self.d.next_key(st.level);
                self.d.settable(parent, key, v)?;
            }
            Kind::Object | Kind::List => {
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
    fn escapes_decode_as_the_firmware_does() {
        let s = br#"a\"b\\c\/d\n\u0041\u00e9\ud83d"#;
        assert_eq!(unescape(s, s.len()), "a\"b\\c/d\nA\u{e9}?".as_bytes());
    }
}
