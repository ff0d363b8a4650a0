//! Lua's pattern matcher (`lstrlib.c`'s `match` and its helpers), over bytes, with a step count.
//!
//! Lua's own matcher backtracks without limit: `("a"):rep(26):find(("a-"):rep(26) .. "b")` runs
//! for minutes inside one C call, where no instruction hook (so no watchdog) can ever look. This
//! port behaves exactly as the C matcher of the build's Lua version (5.1 or 5.3), and calls
//! `tick` every [`TICK_EVERY`] steps so that the caller can stop a runaway match the way a
//! board's watchdog stops a runaway loop.
//!
//! Recursion is bounded by [`MAX_DEPTH`] on both versions (Lua 5.3's `MAXCCALLS`; 5.1 recursed
//! on the C stack until it overflowed), with 5.3's message "pattern too complex".

/// Steps (pattern items tried) between two calls of the tick.
pub const TICK_EVERY: u32 = 1 << 16;
/// Nested matches allowed (Lua 5.3's `MAXCCALLS`).
const MAX_DEPTH: u32 = 200;
/// `LUA_MAXCAPTURES`.
pub const MAX_CAPTURES: usize = 32;
const ESC: u8 = b'%';
/// The characters that make a pattern more than a plain string.
pub const SPECIALS: &[u8] = b"^$*+?.([%-";

const UNFINISHED: isize = -1;
const POSITION: isize = -2;

const LUA53: bool = cfg!(feature = "lua53");

/// What a matcher fails with: the message `luaL_error` would raise.
pub type PatResult<T> = Result<T, String>;

/// One capture's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture<'a> {
    Str(&'a [u8]),
    /// A position capture `()`: 1-based.
    Pos(usize),
}

/// A match in progress (`MatchState`).
pub struct Matcher<'a, 't> {
    pub src: &'a [u8],
    pat: &'a [u8],
    depth: u32,
    level: usize,
    caps: [(usize, isize); MAX_CAPTURES],
    steps: u32,
    tick: &'t dyn Fn(),
}

impl<'a, 't> Matcher<'a, 't> {
    /// A matcher of `pat` (without its anchor) over `src`. Lua 5.1 patterns end at a zero byte.
    pub fn new(src: &'a [u8], pat: &'a [u8], tick: &'t dyn Fn()) -> Self {
        let pat = if LUA53 {
            pat
        } else {
            pat.split(|&b| b == 0).next().unwrap_or(pat)
        };
        Matcher {
            src,
            pat,
            depth: MAX_DEPTH,
            level: 0,
            caps: [(0, 0); MAX_CAPTURES],
            steps: 0,
            tick,
        }
    }

    /// Tries to match at `s`: the end of the match, or `None`.
    pub fn try_at(&mut self, s: usize) -> PatResult<Option<usize>> {
        self.level = 0;
        self.depth = MAX_DEPTH;
        self.do_match(s, 0)
    }

    /// How many values a match pushes: its captures, or the whole match when there are none.
    pub fn nresults(&self, whole: bool) -> usize {
        if self.level == 0 && whole {
            1
        } else {
            self.level
        }
    }

    /// Capture `i` of the match `s..e` (`push_onecapture`).
    pub fn capture(&self, i: usize, s: usize, e: usize) -> PatResult<Capture<'a>> {
        if i >= self.level {
            return if i == 0 {
                Ok(Capture::Str(&self.src[s..e]))
            } else {
                Err(bad_index(i as i64 + 1))
            };
        }
        let (init, len) = self.caps[i];
        match len {
            UNFINISHED => Err("unfinished capture".into()),
            POSITION => Ok(Capture::Pos(init + 1)),
            len => Ok(Capture::Str(&self.src[init..init + len as usize])),
        }
    }

    fn step(&mut self) {
        self.steps = self.steps.wrapping_add(1);
        if self.steps.is_multiple_of(TICK_EVERY) {
            (self.tick)();
        }
    }

    fn byte(&self, p: usize) -> u8 {
        self.pat.get(p).copied().unwrap_or(0)
    }

    fn check_capture(&self, c: u8) -> PatResult<usize> {
        let l = c as i64 - b'1' as i64;
        if l < 0 || l as usize >= self.level || self.caps[l as usize].1 == UNFINISHED {
            return Err(bad_index(l + 1));
        }
        Ok(l as usize)
    }

    fn capture_to_close(&self) -> PatResult<usize> {
        (0..self.level)
            .rev()
            .find(|&l| self.caps[l].1 == UNFINISHED)
            .ok_or_else(|| "invalid pattern capture".to_string())
    }

    /// The end of the single-character class at `p`.
    fn class_end(&self, mut p: usize) -> PatResult<usize> {
        let c = self.byte(p);
        p += 1;
        match c {
            ESC => {
                if p >= self.pat.len() {
                    return Err("malformed pattern (ends with '%')".into());
                }
                Ok(p + 1)
            }
            b'[' => {
                if self.byte(p) == b'^' {
                    p += 1;
                }
                loop {
                    if p >= self.pat.len() {
                        return Err("malformed pattern (missing ']')".into());
                    }
                    let c = self.pat[p];
                    p += 1;
                    if c == ESC && p < self.pat.len() {
                        p += 1;
                    }
                    if self.byte(p) == b']' && p < self.pat.len() {
                        return Ok(p + 1);
                    }
                }
            }
            _ => Ok(p),
        }
    }

    fn bracket_class(&self, c: u8, mut p: usize, ec: usize) -> bool {
        let mut sig = true;
        if self.byte(p + 1) == b'^' {
            sig = false;
            p += 1;
        }
        loop {
            p += 1;
            if p >= ec {
                return !sig;
            }
            let pc = self.pat[p];
            if pc == ESC {
                p += 1;
                if class_matches(c, self.byte(p)) {
                    return sig;
                }
            } else if self.byte(p + 1) == b'-' && p + 2 < ec {
                p += 2;
                if pc <= c && c <= self.pat[p] {
                    return sig;
                }
            } else if pc == c {
                return sig;
            }
        }
    }

    fn single(&mut self, s: usize, p: usize, ep: usize) -> bool {
        self.step();
        let Some(&c) = self.src.get(s) else {
            return false;
        };
        match self.pat[p] {
            b'.' => true,
            ESC => class_matches(c, self.byte(p + 1)),
            b'[' => self.bracket_class(c, p, ep - 1),
            pc => pc == c,
        }
    }

    fn balance(&self, s: usize, p: usize) -> PatResult<Option<usize>> {
        if p + 1 >= self.pat.len() {
            return Err(if LUA53 {
                "malformed pattern (missing arguments to '%b')".into()
            } else {
                "unbalanced pattern".into()
            });
        }
        let (b, e) = (self.pat[p], self.pat[p + 1]);
        if self.src.get(s) != Some(&b) {
            return Ok(None);
        }
        let mut cont = 1;
        for (i, &c) in self.src.iter().enumerate().skip(s + 1) {
            if c == e {
                cont -= 1;
                if cont == 0 {
                    return Ok(Some(i + 1));
                }
            } else if c == b {
                cont += 1;
            }
        }
        Ok(None)
    }

    fn max_expand(&mut self, s: usize, p: usize, ep: usize) -> PatResult<Option<usize>> {
        let mut i = 0;
        while self.single(s + i, p, ep) {
            i += 1;
        }
        loop {
            if let Some(r) = self.do_match(s + i, ep + 1)? {
                return Ok(Some(r));
            }
            if i == 0 {
                return Ok(None);
            }
            i -= 1;
        }
    }

    fn min_expand(&mut self, mut s: usize, p: usize, ep: usize) -> PatResult<Option<usize>> {
        loop {
            if let Some(r) = self.do_match(s, ep + 1)? {
                return Ok(Some(r));
            }
            if !self.single(s, p, ep) {
                return Ok(None);
            }
            s += 1;
        }
    }

    fn start_capture(&mut self, s: usize, p: usize, what: isize) -> PatResult<Option<usize>> {
        if self.level >= MAX_CAPTURES {
            return Err("too many captures".into());
        }
        self.caps[self.level] = (s, what);
        self.level += 1;
        let r = self.do_match(s, p)?;
        if r.is_none() {
            self.level -= 1;
        }
        Ok(r)
    }

    fn end_capture(&mut self, s: usize, p: usize) -> PatResult<Option<usize>> {
        let l = self.capture_to_close()?;
        self.caps[l].1 = (s - self.caps[l].0) as isize;
        let r = self.do_match(s, p)?;
        if r.is_none() {
            self.caps[l].1 = UNFINISHED;
        }
        Ok(r)
    }

    fn match_capture(&self, s: usize, c: u8) -> PatResult<Option<usize>> {
        let l = self.check_capture(c)?;
        let (init, len) = (self.caps[l].0, self.caps[l].1 as usize);
        let cap = &self.src[init..init + len];
        Ok(self.src[s..].starts_with(cap).then_some(s + len))
    }

    fn do_match(&mut self, s: usize, p: usize) -> PatResult<Option<usize>> {
        if self.depth == 0 {
            return Err("pattern too complex".into());
        }
        self.depth -= 1;
        let r = self.match_body(s, p);
        self.depth += 1;
        r
    }

    /// `match`'s body: the C code's `goto init` is the loop.
    fn match_body(&mut self, mut s: usize, mut p: usize) -> PatResult<Option<usize>> {
        loop {
            self.step();
            if p >= self.pat.len() {
                return Ok(Some(s));
            }
            match self.pat[p] {
                b'(' => {
                    return if self.byte(p + 1) == b')' && p + 1 < self.pat.len() {
                        self.start_capture(s, p + 2, POSITION)
                    } else {
                        self.start_capture(s, p + 1, UNFINISHED)
                    };
                }
                b')' => return self.end_capture(s, p + 1),
                b'$' if p + 1 == self.pat.len() => {
                    return Ok((s == self.src.len()).then_some(s));
                }
                ESC if self.byte(p + 1) == b'b' && p + 1 < self.pat.len() => {
                    match self.balance(s, p + 2)? {
                        Some(e) => {
                            s = e;
                            p += 4;
                            continue;
                        }
                        None => return Ok(None),
                    }
                }
                ESC if self.byte(p + 1) == b'f' && p + 1 < self.pat.len() => {
                    p += 2;
                    if self.byte(p) != b'[' || p >= self.pat.len() {
                        return Err("missing '[' after '%f' in pattern".into());
                    }
                    let ep = self.class_end(p)?;
                    let previous = if s == 0 { 0 } else { self.src[s - 1] };
                    let current = self.src.get(s).copied().unwrap_or(0);
                    if !self.bracket_class(previous, p, ep - 1)
                        && self.bracket_class(current, p, ep - 1)
                    {
                        p = ep;
                        continue;
                    }
                    return Ok(None);
                }
                ESC if self.byte(p + 1).is_ascii_digit() && p + 1 < self.pat.len() => {
                    match self.match_capture(s, self.pat[p + 1])? {
                        Some(e) => {
                            s = e;
                            p += 2;
                            continue;
                        }
                        None => return Ok(None),
                    }
                }
                _ => {}
            }
            // A single-character class with an optional suffix.
            let ep = self.class_end(p)?;
            let suffix = if ep < self.pat.len() { self.pat[ep] } else { 0 };
            if !self.single(s, p, ep) {
                if matches!(suffix, b'*' | b'?' | b'-') {
                    p = ep + 1;
                    continue;
                }
                return Ok(None);
            }
            return match suffix {
                b'?' => match self.do_match(s + 1, ep + 1)? {
                    Some(r) => Ok(Some(r)),
                    None => {
                        p = ep + 1;
                        continue;
                    }
                },
                b'+' => self.max_expand(s + 1, p, ep),
                b'*' => self.max_expand(s, p, ep),
                b'-' => self.min_expand(s, p, ep),
                _ => {
                    s += 1;
                    p = ep;
                    continue;
                }
            };
        }
    }
}

fn bad_index(n: i64) -> String {
    if LUA53 {
        format!("invalid capture index %{n}")
    } else {
        "invalid capture index".into()
    }
}

/// `match_class`: `%a`, `%d`, ... (upper case negates); any other character stands for itself.
fn class_matches(c: u8, cl: u8) -> bool {
    let res = match cl.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'g' if LUA53 => c.is_ascii_graphic(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        b's' => matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        b'z' => c == 0,
        _ => return cl == c,
    };
    if cl.is_ascii_lowercase() { res } else { !res }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(s: &str, p: &str) -> PatResult<Option<(usize, usize)>> {
        let tick = || {};
        let mut m = Matcher::new(s.as_bytes(), p.as_bytes(), &tick);
        for start in 0..=s.len() {
            if let Some(e) = m.try_at(start)? {
                return Ok(Some((start + 1, e)));
            }
        }
        Ok(None)
    }

    #[test]
    fn classes_quantifiers_and_anchors_match_as_in_lua() {
        assert_eq!(find("hello world", "o w"), Ok(Some((5, 7))));
        assert_eq!(find("hello", "l+"), Ok(Some((3, 4))));
        assert_eq!(find("hello", "l-o"), Ok(Some((3, 5))));
        assert_eq!(find("key = value", "%w+%s*=%s*%w+"), Ok(Some((1, 11))));
        assert_eq!(find("x(a(b)c)y", "%b()"), Ok(Some((2, 8))));
        assert_eq!(find("THE (quick) fox", "%f[%a]%a+"), Ok(Some((1, 3))));
        assert_eq!(find("abc", "[^a]"), Ok(Some((2, 2))));
        assert_eq!(find("a]b", "[]]"), Ok(Some((2, 2))));
        assert_eq!(find("abc", "c$"), Ok(Some((3, 3))));
        assert_eq!(find("abcabc", "(abc)%1"), Ok(Some((1, 6))));
    }

    #[test]
    fn malformed_patterns_give_lua_s_messages() {
        assert_eq!(
            find("a", "%"),
            Err("malformed pattern (ends with '%')".into())
        );
        assert_eq!(
            find("a", "[a"),
            Err("malformed pattern (missing ']')".into())
        );
        assert_eq!(
            find("a", "%fa"),
            Err("missing '[' after '%f' in pattern".into())
        );
        assert_eq!(find("a", "a)"), Err("invalid pattern capture".into()));
        assert_eq!(
            find(&"a".repeat(300), &"a?".repeat(300)),
            Err("pattern too complex".into())
        );
    }

    #[test]
    fn a_runaway_match_ticks() {
        let ticks = std::cell::Cell::new(0);
        let tick = || ticks.set(ticks.get() + 1);
        let s = "a".repeat(12);
        let p = format!("{}b", "a-".repeat(12));
        let mut m = Matcher::new(s.as_bytes(), p.as_bytes(), &tick);
        assert_eq!(m.try_at(0), Ok(None));
        assert!(ticks.get() > 10, "{}", ticks.get());
    }
}
