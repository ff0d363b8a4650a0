//! `string.find`, `string.match`, `string.gmatch` and `string.gsub` on the simulator's own
//! pattern matcher (`strlib/pattern.rs`), so that the watchdog reaches into a runaway match.
//!
//! Lua's C matcher can backtrack for minutes inside one call, where no instruction hook runs:
//! the watchdog never fired and `--timeout` never came. These functions behave as the build's Lua
//! version's (5.1 or 5.3: arguments, start positions, plain searches, empty matches in `gsub` and
//! `gmatch`, replacement strings, error texts), and look at the watchdog every few thousand
//! steps of a match; a match that runs too long resets the device as a runaway loop does.

mod pattern;

use std::cell::Cell;
use std::rc::Rc;

use mlua::{Function, Lua, LuaString, MultiValue, Table, Value};

use crate::heap::Room;
use crate::lauxlib::{Args, FwError, FwResult, arg_err, bind, call_lua, fw_err, typename};
use crate::runtime::Runtime;
use pattern::{Capture, Matcher, PatResult, SPECIALS};

const LUA53: bool = cfg!(feature = "lua53");

/// Replaces the pattern functions of the `string` table (which is also strings' `__index`).
pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let string: Table = lua.globals().get("string")?;
    let r = rt.clone();
    string.set(
        "find",
        bind(lua, move |lua, a| find_aux(lua, &r, &a, true))?,
    )?;
    let r = rt.clone();
    string.set(
        "match",
        bind(lua, move |lua, a| find_aux(lua, &r, &a, false))?,
    )?;
    let r = rt.clone();
    string.set("gmatch", bind(lua, move |lua, a| gmatch(lua, &r, &a))?)?;
    let r = rt.clone();
    string.set("gsub", bind(lua, move |lua, a| gsub(lua, &r, &a))?)?;
    Ok(())
}

/// Runs `f` with a tick that bites when the watchdog has expired; a pattern error becomes the
/// firmware's `luaL_error`.
fn with_tick<T>(rt: &Runtime, f: impl FnOnce(&dyn Fn()) -> PatResult<T>) -> FwResult<T> {
    let tick = || crate::watchdog::check(rt);
    f(&tick).or_else(fw_err)
}

/// The 0-based position a search starts at, or `None` when it starts past the end (5.3 then
/// finds nothing; 5.1 searches from the end).
fn start_at(init: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    if LUA53 {
        let pos = if init >= 0 {
            init
        } else if -init > len {
            0
        } else {
            len + init + 1
        };
        let pos = pos.max(1);
        (pos <= len + 1).then(|| (pos - 1) as usize)
    } else {
        let pos = if init < 0 { init + len + 1 } else { init }.max(0);
        Some((pos - 1).clamp(0, len) as usize)
    }
}

/// True when `p` has no pattern characters (5.1 looks only up to a zero byte).
fn is_plain(p: &[u8]) -> bool {
    let p = if LUA53 {
        p
    } else {
        p.split(|&b| b == 0).next().unwrap_or(p)
    };
    !p.iter().any(|c| SPECIALS.contains(c))
}

fn capture_value(lua: &Lua, c: Capture) -> mlua::Result<Value> {
    Ok(match c {
        Capture::Str(s) => Value::String(lua.create_string(s)?),
        Capture::Pos(p) => Value::Integer(p as _),
    })
}

/// The values a match yields: its captures, or the whole match `s..e` when `whole` and there are
/// no captures.
fn captures(lua: &Lua, m: &Matcher, s: usize, e: usize, whole: bool) -> FwResult<MultiValue> {
    let mut out = MultiValue::new();
    for i in 0..m.nresults(whole) {
        let c = m.capture(i, s, e).or_else(fw_err)?;
        out.push_back(capture_value(lua, c)?);
    }
    Ok(out)
}

/// `string.find(s, p [, init [, plain]])` and `string.match(s, p [, init])`.
fn find_aux(lua: &Lua, rt: &Runtime, a: &Args, find: bool) -> FwResult<MultiValue> {
    let s = a.check_bytes(lua, 1)?;
    let p = a.check_bytes(lua, 2)?;
    let (s, p) = (s.as_bytes(), p.as_bytes());
    let init = a.opt_integer(3, 1)?;
    let nil = || Ok(MultiValue::from_iter([Value::Nil]));
    let Some(start) = start_at(init, s.len()) else {
        return nil();
    };
    let plain = find && (!matches!(a.arg(4), Value::Nil | Value::Boolean(false)) || is_plain(&p));
    if plain {
        let at = if p.is_empty() {
            Some(start)
        } else {
            s[start..]
                .windows(p.len())
                .position(|w| w == &p[..])
                .map(|i| start + i)
        };
        return match at {
            Some(i) => Ok(MultiValue::from_iter([
                Value::Integer(i as i64 + 1),
                Value::Integer((i + p.len()) as _),
            ])),
            None => nil(),
        };
    }
    let (anchor, pat) = match p.first() {
        Some(b'^') => (true, &p[1..]),
        _ => (false, &p[..]),
    };
    let found = with_tick(rt, |tick| {
        let mut m = Matcher::new(&s, pat, tick);
        for s1 in start..=s.len() {
            if let Some(e) = m.try_at(s1)? {
                return Ok(Some((s1, e, captures_of(&m, s1, e, !find)?)));
            }
            if anchor {
                break;
            }
        }
        Ok(None)
    })?;
    let Some((s1, e, caps)) = found else {
        return nil();
    };
    let mut out = MultiValue::new();
    if find {
        out.push_back(Value::Integer(s1 as i64 + 1));
        out.push_back(Value::Integer(e as _));
    }
    for c in caps {
        out.push_back(capture_value(lua, c)?);
    }
    Ok(out)
}

/// A match's captures as owned values, taken before the matcher (and its borrow) goes.
fn captures_of<'a>(
    m: &Matcher<'a, '_>,
    s: usize,
    e: usize,
    whole: bool,
) -> PatResult<Vec<Capture<'a>>> {
    (0..m.nresults(whole)).map(|i| m.capture(i, s, e)).collect()
}

/// `string.gmatch(s, p)`: an iterator over the matches.
fn gmatch(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<Function> {
    let s = a.check_bytes(lua, 1)?;
    let p = a.check_bytes(lua, 2)?.as_bytes().to_vec();
    let (pos, last) = (Cell::new(0usize), Cell::new(None::<usize>));
    let rt = rt.clone();
    Ok(bind(lua, move |lua, _| {
        let src = s.as_bytes();
        let found = with_tick(&rt, |tick| {
            let mut m = Matcher::new(&src, &p, tick);
            for start in pos.get()..=src.len() {
                let Some(e) = m.try_at(start)? else { continue };
                if LUA53 && last.get() == Some(e) {
                    continue;
                }
                // 5.3 moves past the match; 5.1 also steps over an empty one.
                let next = if !LUA53 && e == start { e + 1 } else { e };
                return Ok(Some((start, e, next, captures_of(&m, start, e, true)?)));
            }
            Ok(None)
        })?;
        let Some((_, e, next, caps)) = found else {
            pos.set(src.len() + 1);
            return Ok(MultiValue::new());
        };
        pos.set(next);
        last.set(Some(e));
        let mut out = MultiValue::new();
        for c in caps {
            out.push_back(capture_value(lua, c)?);
        }
        Ok(out)
    })?)
}

/// `string.gsub(s, p, repl [, n])`.
fn gsub(lua: &Lua, rt: &Runtime, a: &Args) -> FwResult<(LuaString, i64)> {
    let src = a.check_bytes(lua, 1)?;
    let p = a.check_bytes(lua, 2)?;
    let (src, p) = (src.as_bytes(), p.as_bytes());
    let repl = a.get(3);
    let max = a.opt_integer(4, src.len() as i64 + 1)?;
    if !matches!(
        repl,
        Value::Integer(_)
            | Value::Number(_)
            | Value::String(_)
            | Value::Function(_)
            | Value::Table(_)
    ) {
        return arg_err(3, "string/function/table expected");
    }
    let repl_text = match &repl {
        Value::String(_) | Value::Integer(_) | Value::Number(_) => Some(a.check_bytes(lua, 3)?),
        _ => None,
    };
    let (anchor, pat) = match p.first() {
        Some(b'^') => (true, &p[1..]),
        _ => (false, &p[..]),
    };
    let tick = || crate::watchdog::check(rt);
    let mut m = Matcher::new(&src, pat, &tick);
    let (mut out, mut at, mut n, mut last) = (Vec::new(), 0usize, 0i64, None::<usize>);
    let room = Room::new(lua, &rt.heap);
    while n < max {
        let e = m.try_at(at).or_else(fw_err)?;
        match e {
            Some(e) if !(LUA53 && last == Some(e)) => {
                n += 1;
                add_value(lua, &m, &mut out, (at, e), &repl, repl_text.as_ref(), &room)?;
                // Replacements can be long where matches are cheap: the matcher's own ticks
                // come too seldom.
                if n % 256 == 0 {
                    tick();
                }
                if LUA53 || e > at {
                    at = e;
                    last = Some(e);
                } else if at < src.len() {
                    put(&mut out, &src[at..=at], &room)?;
                    at += 1;
                } else {
                    break;
                }
            }
            _ if at < src.len() => {
                put(&mut out, &src[at..=at], &room)?;
                at += 1;
            }
            _ => break,
        }
        if anchor {
            break;
        }
    }
    put(&mut out, &src[at..], &room)?;
    Ok((crate::longcalls::make_string(lua, rt, &out)?, n))
}

/// Appends the replacement of the match `s..e` (`add_value`).
fn add_value(
    lua: &Lua,
    m: &Matcher,
    out: &mut Vec<u8>,
    (s, e): (usize, usize),
    repl: &Value,
    text: Option<&LuaString>,
    room: &Room,
) -> FwResult<()> {
    let value = match repl {
        Value::Function(f) => {
            let args = captures(lua, m, s, e, true)?;
            call_lua(lua, f, args)?.pop_front().unwrap_or(Value::Nil)
        }
        Value::Table(t) => {
            let key = capture_value(lua, m.capture(0, s, e).or_else(fw_err)?)?;
            t.get::<Value>(key)?
        }
        _ => {
            let text = text.map(|t| t.as_bytes().to_vec()).unwrap_or_default();
            return add_s(m, out, s, e, &text, room);
        }
    };
    match value {
        Value::Nil | Value::Boolean(false) => put(out, &m.src[s..e], room)?,
        Value::String(v) => put(out, &v.as_bytes(), room)?,
        v @ (Value::Integer(_) | Value::Number(_)) => {
            if let Some(t) = lua.coerce_string(v)? {
                put(out, &t.as_bytes(), room)?;
            }
        }
        v => return fw_err(format!("invalid replacement value (a {})", typename(&v))),
    }
    Ok(())
}

/// Appends `bytes` to a result being built off the Lua heap: past the device heap's [`Room`] or
/// past what the host can give, Lua's `not enough memory`, before the bytes are
/// copied (a replacement repeated once per match can ask for far more than the heap holds).
fn put(out: &mut Vec<u8>, bytes: &[u8], room: &Room) -> FwResult<()> {
    if !room.fits(out.len().saturating_add(bytes.len())) || out.try_reserve(bytes.len()).is_err() {
        return Err(FwError::Lua(mlua::Error::MemoryError(String::new())));
    }
    out.extend_from_slice(bytes);
    Ok(())
}

/// A replacement string: `%0`-`%9` are the match and its captures, `%%` a percent sign.
fn add_s(
    m: &Matcher,
    out: &mut Vec<u8>,
    s: usize,
    e: usize,
    text: &[u8],
    room: &Room,
) -> FwResult<()> {
    let mut i = 0;
    while i < text.len() {
        if text[i] != b'%' {
            // The literal run up to the next `%`, in one piece.
            let run = text[i..]
                .iter()
                .position(|&c| c == b'%')
                .unwrap_or(text.len() - i);
            put(out, &text[i..i + run], room)?;
            i += run;
            continue;
        }
        i += 1;
        let d = text.get(i).copied().unwrap_or(0);
        i += 1;
        match d {
            b'0' => put(out, &m.src[s..e], room)?,
            b'1'..=b'9' => match m.capture((d - b'1') as usize, s, e).or_else(fw_err)? {
                Capture::Str(c) => put(out, c, room)?,
                Capture::Pos(p) => put(out, p.to_string().as_bytes(), room)?,
            },
            b'%' => put(out, b"%", room)?,
            _ if LUA53 => return fw_err("invalid use of '%' in replacement string"),
            // 5.1 keeps the character (a `%` at the very end adds its terminating zero).
            _ => put(out, &[d], room)?,
        }
    }
    Ok(())
}
