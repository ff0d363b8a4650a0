//! The streaming JSON tokenizer under the firmware's `sjson` (jsonsl), state for state.
//!
//! jsonsl keeps a fixed stack of levels (level 0 is the space outside any value) and reports a
//! push when a value starts and a pop when it ends; the decoder builds Lua values from those. What
//! scripts see of it is which documents it accepts, and the name of the error it stops at
//! (`JSON parse error: STRAY_TOKEN`), so the rules here are jsonsl's own, including its quirks:
//! raw bytes 0x14..0x1f pass inside strings, `\u` is not checked for hex digits, `-01` is a
//! number, and nothing after the top-level value is looked at once it has closed.
//! The tokenizer only sees bytes; positions are counted from the first byte ever fed, so a value
//! split across `feed` calls is reported with the same positions as in one piece.

/// Kinds of value on the stack (jsonsl's `JSONSL_T_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    #[default]
    None,
    String,
    HKey,
    Object,
    List,
    Special,
}

impl Kind {
    fn stringy(self) -> bool {
        matches!(self, Kind::String | Kind::HKey)
    }
}

/// `JSONSL_SPECIALf_*`: what a bare word has turned out to be so far.
pub mod special {
    pub const SIGNED: u32 = 1 << 0;
    pub const UNSIGNED: u32 = 1 << 1;
    pub const TRUE: u32 = 1 << 2;
    pub const FALSE: u32 = 1 << 3;
    pub const NULL: u32 = 1 << 4;
    pub const FLOAT: u32 = 1 << 5;
    pub const EXPONENT: u32 = 1 << 6;
    pub const ZERO: u32 = (1 << 9) | UNSIGNED;
    pub const DASH: u32 = 1 << 10;
    pub const NUMERIC: u32 = SIGNED | UNSIGNED;
}
use special::*;

/// jsonsl's error names: the firmware puts them after `JSON parse error: `.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonError {
    SpecialExpected,
    SpecialIncomplete,
    StrayToken,
    MissingToken,
    CantInsert,
    EscapeOutsideString,
    StringOutsideContainer,
    FoundNullByte,
    LevelsExceeded,
    BracketMismatch,
    HkeyExpected,
    WeirdWhitespace,
    EscapeInvalid,
    TrailingComma,
    InvalidNumber,
    ValueExpected,
}

impl JsonError {
    pub fn name(self) -> &'static str {
        match self {
            JsonError::SpecialExpected => "SPECIAL_EXPECTED",
            JsonError::SpecialIncomplete => "SPECIAL_INCOMPLETE",
            JsonError::StrayToken => "STRAY_TOKEN",
            JsonError::MissingToken => "MISSING_TOKEN",
            JsonError::CantInsert => "CANT_INSERT",
            JsonError::EscapeOutsideString => "ESCAPE_OUTSIDE_STRING",
            JsonError::StringOutsideContainer => "STRING_OUTSIDE_CONTAINER",
            JsonError::FoundNullByte => "FOUND_NULL_BYTE",
            JsonError::LevelsExceeded => "LEVELS_EXCEEDED",
            JsonError::BracketMismatch => "BRACKET_MISMATCH",
            JsonError::HkeyExpected => "HKEY_EXPECTED",
            JsonError::WeirdWhitespace => "WEIRD_WHITESPACE",
            JsonError::EscapeInvalid => "ESCAPE_INVALID",
            JsonError::TrailingComma => "TRAILING_COMMA",
            JsonError::InvalidNumber => "INVALID_NUMBER",
            JsonError::ValueExpected => "VALUE_EXPECTED",
        }
    }
}

/// One level of the stack.
#[derive(Debug, Clone, Copy, Default)]
pub struct State {
    pub kind: Kind,
    pub level: usize,
    /// Position of the value's first byte (the quote of a string).
    pub pos_begin: usize,
    /// Position of the byte that ended it (the closing quote; the byte after a number).
    pub pos_cur: usize,
    /// Children seen (keys and values both count in an object).
    nelem: usize,
    pub special_flags: u32,
    /// Escapes in a string; the length so far of a bare word.
    pub nescapes: usize,
}

/// What the tokenizer reports; an `Err` stops the feed and is handed back from it.
pub trait Handler {
    type Err;
    fn push(&mut self, st: &State) -> Result<(), Self::Err>;
    fn pop(&mut self, st: &State) -> Result<(), Self::Err>;
    fn error(&mut self, e: JsonError);
}

pub struct Tokenizer {
    stack: Vec<State>,
    level: usize,
    pos: usize,
    can_insert: bool,
    expecting: u8,
    tok_last: u8,
    in_escape: bool,
}

/// How one byte continues after the first classification (jsonsl's jump labels).
enum Go {
    Quote,
    Escape,
    Structural,
    SpecialBegin,
}

/// The step ended with an error (reported) or a handler failure.
enum Stop<E> {
    Error,
    Handler(E),
}

fn is_special_end(c: u8) -> bool {
    matches!(
        c,
        b'\t' | b'\n' | b'\r' | b' ' | b'"' | b',' | b':' | b'[' | b'\\' | b']' | b'{' | b'}'
    )
}

#[inline]
fn is_whitespace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

fn is_allowed_escape(c: u8) -> bool {
    matches!(
        c,
        b'"' | b'/' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' | b'u'
    )
}

/// Bytes a string passes without a look (note: 0x14..0x1f are among them).
#[inline]
fn is_simple_char(c: u8) -> bool {
    !(c < 0x14 || c == b'"' || c == b'\\')
}

fn extract_special(c: u8) -> u32 {
    match c {
        b'-' => DASH,
        b'0' => ZERO,
        b'1'..=b'9' => UNSIGNED,
        b'f' => FALSE,
        b'n' => NULL,
        b't' => TRUE,
        _ => 0,
    }
}

impl Tokenizer {
    pub fn new(levels: usize) -> Tokenizer {
        let stack = (0..levels)
            .map(|level| State {
                level,
                ..State::default()
            })
            .collect();
        Tokenizer {
            stack,
            level: 0,
            pos: 0,
            can_insert: true,
            expecting: 0,
            tok_last: 0,
            in_escape: false,
        }
    }

    /// Position of the next byte to be fed.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Feeds bytes; stops at the first error (reported to the handler) or handler failure.
    pub fn feed<H: Handler>(&mut self, bytes: &[u8], h: &mut H) -> Result<(), H::Err> {
        let mut i = 0;
        while i < bytes.len() {
            // Runs that change no state are skipped in one go: plain string content, the digits
            // of a plain integer (as jsonsl's own fast paths do), and whitespace between values.
            let st = &self.stack[self.level];
            let rest = &bytes[i..];
            let run = match st.kind {
                Kind::String | Kind::HKey if !self.in_escape => {
                    rest.iter().position(|&c| !is_simple_char(c))
                }
                Kind::Special if st.special_flags == UNSIGNED || st.special_flags == SIGNED => {
                    rest.iter().position(|c| !c.is_ascii_digit())
                }
                Kind::Object | Kind::List | Kind::None => {
                    rest.iter().position(|&c| !is_whitespace(c))
                }
                _ => Some(0),
            };
            let Some(run) = run else {
                self.pos += rest.len();
                break;
            };
            self.pos += run;
            i += run;
            match self.byte(bytes[i], h) {
                Ok(()) => {}
                Err(Stop::Error) => return Ok(()),
                Err(Stop::Handler(e)) => return Err(e),
            }
            self.pos += 1;
            i += 1;
        }
        Ok(())
    }

    fn fail<E>(&mut self, h: &mut impl Handler, e: JsonError) -> Result<(), Stop<E>> {
        h.error(e);
        Err(Stop::Error)
    }

    #[inline]
    fn stack_push<H: Handler>(&mut self, h: &mut H) -> Result<(), Stop<H::Err>> {
        if self.level >= self.stack.len() - 1 {
            return self.fail(h, JsonError::LevelsExceeded);
        }
        self.level += 1;
        self.stack[self.level].pos_begin = self.pos;
        Ok(())
    }

    #[inline]
    fn callback_push<H: Handler>(&mut self, h: &mut H) -> Result<(), Stop<H::Err>> {
        h.push(&self.stack[self.level]).map_err(Stop::Handler)
    }

    /// Ends the string or bare word on top of the stack.
    #[inline]
    fn callback_and_pop<H: Handler>(&mut self, h: &mut H) -> Result<(), Stop<H::Err>> {
        let pos = self.pos;
        let st = &mut self.stack[self.level];
        st.pos_cur = pos;
        h.pop(st).map_err(Stop::Handler)?;
        self.stack[self.level].nescapes = 0;
        self.level -= 1;
        self.stack[self.level].pos_cur = pos;
        Ok(())
    }

    #[inline(always)]
    fn byte<H: Handler>(&mut self, c: u8, h: &mut H) -> Result<(), Stop<H::Err>> {
        let kind = self.stack[self.level].kind;
        let go = if kind.stringy() {
            if self.in_escape {
                self.in_escape = false;
                if !is_allowed_escape(c) {
                    return self.fail(h, JsonError::EscapeInvalid);
                }
                return Ok(());
            }
            match c {
                b'"' => Go::Quote,
                b'\\' => Go::Escape,
                c if is_simple_char(c) => return Ok(()),
                _ => return self.fail(h, JsonError::WeirdWhitespace),
            }
        } else if kind == Kind::Special {
            match self.special(c, h)? {
                Some(go) => go,
                None => return Ok(()),
            }
        } else if is_whitespace(c) {
            return Ok(());
        } else if extract_special(c) != 0 {
            Go::SpecialBegin
        } else if c == b'"' {
            Go::Quote
        } else if c == b'\\' {
            Go::Escape
        } else {
            Go::Structural
        };
        match go {
            Go::Quote => self.quote(kind, h),
            Go::Escape => {
                if !self.stack[self.level].kind.stringy() {
                    return self.fail(h, JsonError::EscapeOutsideString);
                }
                self.stack[self.level].nescapes += 1;
                self.in_escape = true;
                Ok(())
            }
            Go::Structural => self.structural(c, h),
            Go::SpecialBegin => self.special_begin(c, h),
        }
    }

    /// A byte inside a bare word (number, true, false, null). `None`: consumed.
    #[inline]
    fn special<H: Handler>(&mut self, c: u8, h: &mut H) -> Result<Option<Go>, Stop<H::Err>> {
        let flags = self.stack[self.level].special_flags;
        let numeric_step = if flags == UNSIGNED || flags == SIGNED {
            if c.is_ascii_digit() {
                return Ok(None);
            }
            true
        } else if flags == DASH {
            if !c.is_ascii_digit() {
                self.fail(h, JsonError::InvalidNumber)?;
            }
            self.stack[self.level].special_flags = if c == b'0' { ZERO | SIGNED } else { SIGNED };
            return Ok(None);
        } else if flags == ZERO {
            if c.is_ascii_digit() {
                self.fail(h, JsonError::InvalidNumber)?;
            }
            self.stack[self.level].special_flags = UNSIGNED;
            true
        } else {
            flags & NUMERIC != 0
        };
        if numeric_step {
            let flags = self.stack[self.level].special_flags;
            let (flag, last) = match c {
                b'0'..=b'9' => (0, b'1'),
                b'.' => (FLOAT, b'.'),
                b'e' | b'E' => (EXPONENT, b'e'),
                b'-' | b'+' => {
                    if self.tok_last != b'e' {
                        self.fail(h, JsonError::InvalidNumber)?;
                    }
                    (0, b'-')
                }
                c if is_special_end(c) => (0, 0),
                _ => return self.fail(h, JsonError::InvalidNumber).map(|_| None),
            };
            if last != 0 {
                if flags & flag != 0 {
                    self.fail(h, JsonError::InvalidNumber)?;
                }
                self.stack[self.level].special_flags |= flag;
                self.tok_last = last;
                return Ok(None);
            }
        } else if !is_special_end(c) {
            let pos = self.pos;
            let st = &mut self.stack[self.level];
            st.nescapes += 1;
            let word: &[u8] = match st.special_flags {
                TRUE => b"true",
                FALSE => b"false",
                NULL => b"null",
                _ => return Ok(None),
            };
            let expected = word.get(pos - st.pos_begin).copied().unwrap_or(0);
            if expected != c {
                self.fail(h, JsonError::SpecialExpected)?;
            }
            return Ok(None);
        }
        self.special_pop(h)?;
        self.expecting = b',';
        if is_whitespace(c) {
            return Ok(None);
        }
        Ok(Some(Go::Structural))
    }

    /// A bare word ended: check it is complete and report it.
    #[inline]
    fn special_pop<H: Handler>(&mut self, h: &mut H) -> Result<(), Stop<H::Err>> {
        self.can_insert = false;
        let st = &mut self.stack[self.level];
        let flags = st.special_flags;
        let len = st.nescapes;
        if flags == UNSIGNED || flags == SIGNED {
        } else if flags == ZERO || flags == ZERO | SIGNED {
            st.special_flags = UNSIGNED;
        } else if flags == DASH {
            return self.fail(h, JsonError::InvalidNumber);
        } else if flags & NUMERIC != 0 {
            if self.tok_last != b'1' {
                return self.fail(h, JsonError::InvalidNumber);
            }
        } else if (flags == TRUE && len != 4)
            || (flags == FALSE && len != 5)
            || (flags == NULL && len != 4)
        {
            return self.fail(h, JsonError::SpecialIncomplete);
        }
        self.callback_and_pop(h)?;
        self.expecting = 0;
        self.tok_last = 0;
        Ok(())
    }

    #[inline]
    fn quote<H: Handler>(&mut self, kind: Kind, h: &mut H) -> Result<(), Stop<H::Err>> {
        self.can_insert = false;
        match kind {
            Kind::String | Kind::HKey => self.callback_and_pop(h),
            Kind::Object => {
                let st = &mut self.stack[self.level];
                st.nelem += 1;
                let new_kind = if !(st.nelem - 1).is_multiple_of(2) {
                    if self.tok_last != b':' {
                        return self.fail(h, JsonError::MissingToken);
                    }
                    self.expecting = b',';
                    Kind::String
                } else {
                    if self.expecting != b'"' {
                        return self.fail(h, JsonError::StrayToken);
                    }
                    self.expecting = b':';
                    Kind::HKey
                };
                self.tok_last = 0;
                self.stack_push(h)?;
                self.stack[self.level].kind = new_kind;
                self.callback_push(h)
            }
            Kind::List => {
                self.stack[self.level].nelem += 1;
                self.stack_push(h)?;
                self.stack[self.level].kind = Kind::String;
                self.expecting = b',';
                self.tok_last = 0;
                self.callback_push(h)
            }
            Kind::Special => self.fail(h, JsonError::StrayToken),
            Kind::None => self.fail(h, JsonError::StringOutsideContainer),
        }
    }

    #[inline]
    fn structural<H: Handler>(&mut self, c: u8, h: &mut H) -> Result<(), Stop<H::Err>> {
        match c {
            b':' => {
                if self.expecting != c {
                    return self.fail(h, JsonError::StrayToken);
                }
                self.tok_last = b':';
                self.can_insert = true;
                self.expecting = b'"';
                Ok(())
            }
            b',' => {
                if self.expecting != c {
                    return self.fail(h, JsonError::StrayToken);
                }
                if self.stack[self.level].kind != Kind::Object {
                    self.can_insert = true;
                }
                self.tok_last = b',';
                self.expecting = b'"';
                Ok(())
            }
            b'{' | b'[' => {
                if !self.can_insert {
                    return self.fail(h, JsonError::CantInsert);
                }
                self.ensure_hval(h)?;
                self.stack[self.level].nelem += 1;
                self.stack_push(h)?;
                let st = &mut self.stack[self.level];
                st.kind = if c == b'{' { Kind::Object } else { Kind::List };
                st.nelem = 0;
                self.can_insert = true;
                if c == b'{' {
                    self.expecting = b'"';
                }
                self.callback_push(h)?;
                self.tok_last = 0;
                Ok(())
            }
            b'}' | b']' => self.close(c, h),
            _ => self.special_begin(c, h),
        }
    }

    #[inline]
    fn close<H: Handler>(&mut self, c: u8, h: &mut H) -> Result<(), Stop<H::Err>> {
        if self.tok_last == b',' {
            return self.fail(h, JsonError::TrailingComma);
        }
        self.can_insert = false;
        // jsonsl leaves the level before it checks what it closes.
        let closing = self.level;
        self.level = self.level.wrapping_sub(1);
        self.expecting = b',';
        self.tok_last = 0;
        let st = self.stack[closing];
        if c == b']' {
            if st.kind != Kind::List {
                return self.fail(h, JsonError::BracketMismatch);
            }
        } else if st.kind != Kind::Object {
            return self.fail(h, JsonError::BracketMismatch);
        } else if st.nelem != 0 && !st.nelem.is_multiple_of(2) {
            return self.fail(h, JsonError::ValueExpected);
        }
        h.pop(&st).map_err(Stop::Handler)?;
        self.stack[self.level].pos_cur = self.pos;
        Ok(())
    }

    /// A value may not stand where an object wants a key.
    #[inline]
    fn ensure_hval<H: Handler>(&mut self, h: &mut H) -> Result<(), Stop<H::Err>> {
        let st = &self.stack[self.level];
        if st.nelem.is_multiple_of(2) && st.kind == Kind::Object {
            return self.fail(h, JsonError::HkeyExpected);
        }
        Ok(())
    }

    #[inline]
    fn special_begin<H: Handler>(&mut self, c: u8, h: &mut H) -> Result<(), Stop<H::Err>> {
        if self.stack[self.level].kind == Kind::Special {
            return Ok(());
        }
        let flags = extract_special(c);
        if flags == 0 {
            let e = match c {
                0 => JsonError::FoundNullByte,
                c if c < 0x20 => JsonError::WeirdWhitespace,
                _ => JsonError::SpecialExpected,
            };
            return self.fail(h, e);
        }
        self.ensure_hval(h)?;
        self.stack[self.level].nelem += 1;
        if !self.can_insert {
            return self.fail(h, JsonError::CantInsert);
        }
        self.stack_push(h)?;
        let st = &mut self.stack[self.level];
        st.kind = Kind::Special;
        st.special_flags = flags;
        st.nescapes = 1;
        self.tok_last = if flags == UNSIGNED { b'1' } else { b'-' };
        self.callback_push(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records events as text, to compare a whole feed with a byte-by-byte one.
    #[derive(Default)]
    struct Log(Vec<String>, Option<JsonError>);

    impl Handler for Log {
        type Err = ();
        fn push(&mut self, st: &State) -> Result<(), ()> {
            self.0
                .push(format!("+{:?}{}@{}", st.kind, st.level, st.pos_begin));
            Ok(())
        }
        fn pop(&mut self, st: &State) -> Result<(), ()> {
            self.0
                .push(format!("-{:?}{}@{}", st.kind, st.level, st.pos_cur));
            Ok(())
        }
        fn error(&mut self, e: JsonError) {
            self.1 = Some(e);
        }
    }

    fn run(doc: &str) -> Log {
        let mut log = Log::default();
        Tokenizer::new(20).feed(doc.as_bytes(), &mut log).unwrap();
        log
    }

    fn err(doc: &str) -> Option<&'static str> {
        run(doc).1.map(JsonError::name)
    }

    #[test]
    fn errors_are_jsonsls() {
        assert_eq!(err("[1,]"), Some("TRAILING_COMMA"));
        assert_eq!(err("{\"a\" 1}"), Some("CANT_INSERT"));
        assert_eq!(err("{1:2}"), Some("HKEY_EXPECTED"));
        assert_eq!(err("{\"a\":}"), Some("VALUE_EXPECTED"));
        assert_eq!(err("[tru]"), Some("SPECIAL_INCOMPLETE"));
        assert_eq!(err("[trux]"), Some("SPECIAL_EXPECTED"));
        assert_eq!(err("[01]"), Some("INVALID_NUMBER"));
        assert_eq!(err("[1.]"), Some("INVALID_NUMBER"));
        assert_eq!(err("[1}"), Some("BRACKET_MISMATCH"));
        assert_eq!(err("\"x\""), Some("STRING_OUTSIDE_CONTAINER"));
        assert_eq!(err("[\"a\nb\"]"), Some("WEIRD_WHITESPACE"));
        assert_eq!(err("[\"\\x\"]"), Some("ESCAPE_INVALID"));
        assert_eq!(err("[1 2]"), Some("CANT_INSERT"));
        assert_eq!(err("{\"a\":1 \"b\":2}"), Some("STRAY_TOKEN"));
        assert_eq!(err("x"), Some("SPECIAL_EXPECTED"));
        assert_eq!(err("[-01, \"\x15\"]"), None);
        assert_eq!(err("[1.25e10, -0.5E-3, 2e+07]"), None);
        assert_eq!(err("[1.2.3]"), Some("INVALID_NUMBER"));
        assert_eq!(err("[1.5e]"), Some("INVALID_NUMBER"));
        assert_eq!(err("[1.5e3-1]"), Some("INVALID_NUMBER"));
        assert_eq!(err("[1e5e]"), Some("INVALID_NUMBER"));
        assert_eq!(err(&"[".repeat(20)), Some("LEVELS_EXCEEDED"));
        assert_eq!(err(&"[".repeat(19)), None);
    }

    #[test]
    fn byte_by_byte_is_the_same_as_one_piece() {
        let doc = r#" {"a": [1, -2.5e+3, true, false, null, "x\"y\u0041"], "b": {}} "#;
        let whole = run(doc);
        let mut log = Log::default();
        let mut t = Tokenizer::new(20);
        for b in doc.as_bytes() {
            t.feed(std::slice::from_ref(b), &mut log).unwrap();
        }
        assert_eq!(whole.0, log.0);
        assert!(whole.1.is_none() && log.1.is_none());
    }
}
