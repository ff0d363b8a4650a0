//! `pixbuf`: the firmware's pixel buffers (`pixbuf.c`), the byte arrays `ws2812` sends to a
//! strip and `ws2812_effects` draws into.
//!
//! A buffer is `npix` pixels of `nchan` bytes, with the firmware's methods, metamethods
//! (`==`, `..`, `tostring`) and argument checks. 3.0 has it as its own module, with
//! `ws2812.newBuffer` kept for older scripts; earlier generations have only `ws2812.newBuffer`.
//! Positions follow `string.sub` (negative counts from the end, clamped to the buffer).

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{AnyUserData, Lua, MultiValue, Table, Value};

use crate::lauxlib::{
    Args, FwResult, arg_check, arg_err, bind, call_lua, fw_err, to_integer, to_number,
};
use crate::modules::{module_table, register_methods};

/// The buffers' metatable name, which argument errors use.
pub const TYPE: &str = "pixbuf.buf";
/// Where the metamethods wait for the userdata's metatable.
const META: &str = "pixbuf.buf.meta";

pub const FADE_IN: i64 = 0;
pub const FADE_OUT: i64 = 1;
pub const SHIFT_LOGICAL: i64 = 0;
pub const SHIFT_CIRCULAR: i64 = 1;

#[derive(Debug, Default)]
pub struct Data {
    pub npix: usize,
    pub nchan: usize,
    pub values: Vec<u8>,
}

/// A buffer handle; clones share the bytes.
#[derive(Clone)]
pub struct Pixbuf(pub Rc<RefCell<Data>>);

impl mlua::UserData for Pixbuf {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with("__index", |lua| lua.named_registry_value::<Table>(TYPE));
        fields.add_meta_field("__name", TYPE);
        for m in ["__eq", "__concat", "__tostring"] {
            fields.add_meta_field_with(m, move |lua| {
                lua.named_registry_value::<Table>(META)?.get::<Value>(m)
            });
        }
    }
}

/// `luaL_checkudata(L, n, "pixbuf.buf")`.
pub fn check(a: &Args, n: usize) -> FwResult<Pixbuf> {
    Ok(a.check_udata::<Pixbuf>(n, TYPE)?.1)
}

/// `luaL_testudata`: the buffer at `n`, if it is one.
fn test(a: &Args, n: usize) -> Option<Pixbuf> {
    match a.arg(n) {
        Value::UserData(ud) => ud.borrow::<Pixbuf>().ok().map(|b| (*b).clone()),
        _ => None,
    }
}

/// A new zeroed buffer, as a userdata.
pub fn new_buffer(lua: &Lua, npix: usize, nchan: usize) -> FwResult<AnyUserData> {
    if npix > 8192 || nchan > 32 {
        // The firmware's spelling.
        return fw_err("pixbuf size limits exeeded");
    }
    let data = Data {
        npix,
        nchan,
        values: vec![0; npix * nchan],
    };
    Ok(lua.create_userdata(Pixbuf(Rc::new(RefCell::new(data))))?)
}

/// `string.sub`'s relative position, clamped to 1..len (0 for an empty buffer).
fn posrelat(pos: i64, len: usize) -> i64 {
    let pos = if pos < 0 { pos + len as i64 + 1 } else { pos };
    pos.max(1).min(len as i64)
}

/// `newBuffer(leds, channels)`, shared with `ws2812.newBuffer`.
pub fn new_lua(lua: &Lua, a: &Args) -> FwResult<AnyUserData> {
    let leds = a.check_integer(1)? as i32;
    let chans = a.check_integer(2)? as i32;
    arg_check(leds > 0, 1, "should be a positive integer")?;
    arg_check(chans > 0, 2, "should be a positive integer")?;
    new_buffer(lua, leds as usize, chans as usize)
}

/// Installs the methods; with `module`, the `pixbuf` global too (3.0).
pub(crate) fn install(lua: &Lua, module: bool) -> mlua::Result<()> {
    let m = |f: fn(&Lua, &Args) -> FwResult<MultiValue>| bind(lua, move |lua, a| f(lua, &a));
    register_methods(
        lua,
        TYPE,
        vec![
            ("channels", m(channels)?),
            ("dump", m(dump)?),
            ("fade", m(|l, a| fade(l, a, false))?),
            ("fadeI", m(|l, a| fade(l, a, true))?),
            ("fill", m(fill)?),
            ("get", m(get)?),
            ("replace", m(replace)?),
            ("map", m(map)?),
            ("mix", m(|l, a| mix(l, a, 0))?),
            ("mix4I5", m(|l, a| mix(l, a, 5))?),
            ("power", m(|l, a| power(l, a, false))?),
            ("powerI", m(|l, a| power(l, a, true))?),
            ("set", m(set)?),
            ("shift", m(shift)?),
            ("size", m(size)?),
            ("sub", m(sub)?),
        ],
    )?;
    let meta = lua.create_table()?;
    meta.set("__eq", m(eq)?)?;
    meta.set("__concat", m(concat)?)?;
    meta.set("__tostring", m(tostring)?)?;
    lua.set_named_registry_value(META, meta)?;
    if module {
        let t = module_table(
            lua,
            vec![("newBuffer", bind(lua, |lua, a| new_lua(lua, &a))?)],
        )?;
        set_constants(&t)?;
        lua.globals().set("pixbuf", t)?;
    }
    Ok(())
}

/// FADE_IN, FADE_OUT, SHIFT_LOGICAL, SHIFT_CIRCULAR.
pub fn set_constants(t: &Table) -> mlua::Result<()> {
    t.set("FADE_IN", FADE_IN)?;
    t.set("FADE_OUT", FADE_OUT)?;
    t.set("SHIFT_CIRCULAR", SHIFT_CIRCULAR)?;
    t.set("SHIFT_LOGICAL", SHIFT_LOGICAL)
}

fn one(v: Value) -> FwResult<MultiValue> {
    Ok(MultiValue::from_iter([v]))
}

fn int(n: i64) -> FwResult<MultiValue> {
    one(Value::Integer(n))
}

/// The buffer itself, as the methods that `lua_settop(L, 1)` return it.
fn this(a: &Args) -> FwResult<MultiValue> {
    one(a.get(1))
}

fn none() -> FwResult<MultiValue> {
    Ok(MultiValue::new())
}

fn channels(_: &Lua, a: &Args) -> FwResult<MultiValue> {
    int(check(a, 1)?.0.borrow().nchan as i64)
}

fn size(_: &Lua, a: &Args) -> FwResult<MultiValue> {
    int(check(a, 1)?.0.borrow().npix as i64)
}

fn dump(lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let s = lua.create_string(&b.0.borrow().values)?;
    one(Value::String(s))
}

fn eq(_: &Lua, a: &Args) -> FwResult<MultiValue> {
    let (l, r) = (check(a, 1)?, check(a, 2)?);
    let same = {
        let (l, r) = (l.0.borrow(), r.0.borrow());
        l.npix == r.npix && l.nchan == r.nchan && l.values == r.values
    };
    one(Value::Boolean(same))
}

fn concat(lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    let (l, r) = (check(a, 1)?, check(a, 2)?);
    let (l, r) = (l.0.borrow(), r.0.borrow());
    arg_check(
        l.nchan == r.nchan,
        1,
        "can only concatenate buffers with same channel count",
    )?;
    let ud = new_buffer(lua, l.npix + r.npix, l.nchan)?;
    if let Ok(out) = ud.borrow::<Pixbuf>() {
        let mut o = out.0.borrow_mut();
        o.values[..l.values.len()].copy_from_slice(&l.values);
        o.values[l.values.len()..].copy_from_slice(&r.values);
    }
    one(Value::UserData(ud))
}

fn tostring(lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let b = b.0.borrow();
    let pixels: Vec<String> = b
        .values
        .chunks(b.nchan.max(1))
        .take(b.npix)
        .map(|p| {
            let v: Vec<String> = p.iter().map(u8::to_string).collect();
            format!("({})", v.join(","))
        })
        .collect();
    one(Value::String(
        lua.create_string(format!("[{}]", pixels.join(",")))?,
    ))
}

/// `fade(value[, direction])`; `fadeI` scales only each pixel's first (intensity) byte.
fn fade(_: &Lua, a: &Args, intensity: bool) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let f = a.check_integer(2)? as i32;
    let dir = a.opt_integer(3, FADE_OUT)? as u32;
    arg_check(f > 0, 2, "fade value should be a strictly positive int")?;
    let mut b = b.0.borrow_mut();
    let scale = |v: &mut u8| {
        if i64::from(dir) == FADE_OUT {
            *v = (i32::from(*v) / f) as u8;
        } else {
            *v = (i32::from(*v) * f).min(255) as u8;
        }
    };
    if intensity {
        let nchan = b.nchan;
        // The firmware's fade-in steps one byte further per pixel (a `p++` in its loop), so
        // after the first pixel it scales the byte after each intensity byte.
        let step = if i64::from(dir) == FADE_OUT {
            nchan
        } else {
            nchan + 1
        };
        let mut p = 0;
        for _ in 0..b.npix {
            if let Some(v) = b.values.get_mut(p) {
                scale(v);
            }
            p += step;
        }
    } else {
        b.values.iter_mut().for_each(scale);
    }
    none()
}

fn fill(_: &Lua, a: &Args) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let mut b = b.0.borrow_mut();
    if b.npix == 0 {
        return this(a);
    }
    if a.len() != 1 + b.nchan {
        return arg_err(1, "need as many values as colors per pixel");
    }
    let mut px = Vec::with_capacity(b.nchan);
    for i in 0..b.nchan {
        px.push(a.check_integer(2 + i)? as u8);
    }
    let n = b.nchan;
    b.values.chunks_mut(n).for_each(|c| c.copy_from_slice(&px));
    this(a)
}

/// The pixel index (0-based) at argument 2, checked.
fn index(a: &Args, b: &Data) -> FwResult<usize> {
    let led = a.check_integer(2)?.wrapping_sub(1);
    arg_check(led >= 0 && (led as usize) < b.npix, 2, "index out of range")?;
    Ok(led as usize)
}

fn get(_: &Lua, a: &Args) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let b = b.0.borrow();
    let led = index(a, &b)?;
    Ok(b.values[led * b.nchan..(led + 1) * b.nchan]
        .iter()
        .map(|v| Value::Integer(i64::from(*v)))
        .collect())
}

fn set(lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let mut b = b.0.borrow_mut();
    let led = index(a, &b)?;
    let n = b.nchan;
    match a.arg(3) {
        Value::Table(t) => {
            for i in 0..n {
                let v: Value = t.raw_get(i + 1)?;
                b.values[n * led + i] = to_number(&v).and_then(to_integer).unwrap_or(0) as u8;
            }
        }
        Value::String(s) => {
            let s = s.as_bytes();
            if n * led + s.len() > n * b.npix {
                return fw_err("string size will exceed strip length");
            }
            if s.len() % n != 0 {
                return fw_err("string does not contain whole LEDs");
            }
            b.values[n * led..n * led + s.len()].copy_from_slice(&s);
        }
        _ => {
            arg_check(a.len() <= 2 + n, 2 + n, "extra values given")?;
            for i in 0..n {
                b.values[n * led + i] = a.check_integer(3 + i)? as u8;
            }
        }
    }
    let _ = lua;
    this(a)
}

fn replace(lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let (npix, n) = {
        let d = b.0.borrow();
        (d.npix, d.nchan)
    };
    let start = posrelat(a.opt_integer(3, 1)?, npix);
    let src: Vec<u8> = match a.arg(2) {
        Value::String(_) => a.check_bytes(lua, 2)?.as_bytes().to_vec(),
        _ => {
            let r = check(a, 2)?;
            let r = r.0.borrow();
            arg_check(r.nchan == n, 2, "buffers have different channels")?;
            r.values.clone()
        }
    };
    let src_len = src.len() / n;
    arg_check(
        src_len as i64 + start - 1 <= npix as i64,
        2,
        "does not fit into destination",
    )?;
    let at = (start.max(1) as usize - 1) * n;
    let mut d = b.0.borrow_mut();
    // An empty buffer clamps `start` to 0, which passes the firmware's check and makes it write
    // before the buffer; here that is the same error as any other misfit.
    let Some(dst) = d.values.get_mut(at..at + src_len * n) else {
        return arg_err(2, "does not fit into destination");
    };
    dst.copy_from_slice(&src[..src_len * n]);
    none()
}

/// `map(f[, buf1[, ilo[, ihi[, buf2[, ilo2]]]]])`: each output pixel from `f` of the source
/// pixels' channels.
fn map(lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    let out = check(a, 1)?;
    let f = match a.arg(2) {
        Value::Function(f) => f.clone(),
        _ => return arg_err(2, "function expected"),
    };
    let b1 = test(a, 3).unwrap_or_else(|| out.clone());
    let n1 = b1.0.borrow().npix;
    let ilo = posrelat(a.opt_integer(4, 1)?, n1) - 1;
    let ihi = posrelat(a.opt_integer(5, n1 as i64)?, n1) - 1;
    arg_check(ihi > ilo, 3, "Buffer limits out of order")?;
    let npix = (ihi - ilo + 1) as usize;
    arg_check(npix == out.0.borrow().npix, 1, "Output buffer wrong size")?;
    let b2 = test(a, 6);
    let ilo2 = match &b2 {
        Some(b) => {
            let n2 = b.0.borrow().npix;
            let lo = posrelat(a.opt_integer(7, 1)?, n2) - 1;
            arg_check(lo as usize + npix <= n2, 6, "Second buffer too short")?;
            lo as usize
        }
        None => 0,
    };
    let out_n = out.0.borrow().nchan;
    for p in 0..npix {
        let mut args: Vec<Value> = Vec::new();
        {
            let d = b1.0.borrow();
            let at = (ilo as usize + p) * d.nchan;
            args.extend(
                d.values[at..at + d.nchan]
                    .iter()
                    .map(|v| Value::Integer(i64::from(*v))),
            );
        }
        if let Some(b) = &b2 {
            let d = b.0.borrow();
            let at = (ilo2 + p) * d.nchan;
            args.extend(
                d.values[at..at + d.nchan]
                    .iter()
                    .map(|v| Value::Integer(i64::from(*v))),
            );
        }
        let r: Vec<Value> = call_lua(lua, &f, MultiValue::from_iter(args))?
            .into_iter()
            .collect();
        // `lua_call` with `nchan` results: missing ones are nil, extra ones dropped; the last
        // result goes to the last channel.
        for c in 0..out_n {
            let v = r.get(c).cloned().unwrap_or(Value::Nil);
            let Some(x) = to_number(&v).and_then(to_integer) else {
                return fw_err(format!(
                    "bad argument #-1 to '{}' (number expected, got {})",
                    crate::lauxlib::binding_name(lua),
                    if matches!(v, Value::Nil) {
                        "nil"
                    } else {
                        crate::lauxlib::typename(&v)
                    }
                ));
            };
            out.0.borrow_mut().values[p * out_n + c] = x as u8;
        }
    }
    this(a)
}

/// `mix(factor1, buf1, ...)`: the sum of the sources scaled by factor/256, rounded and
/// clamped; `mix4I5` mixes intensity-scaled pixels (5-bit global intensity).
fn mix(_: &Lua, a: &Args, ibits: u32) -> FwResult<MultiValue> {
    let out = check(a, 1)?;
    let n_src = (a.len().saturating_sub(1)) / 2;
    if n_src == 0 {
        return this(a);
    }
    let (npix, nchan) = {
        let d = out.0.borrow();
        (d.npix, d.nchan)
    };
    let mut sources = Vec::with_capacity(n_src);
    for s in 0..n_src {
        let pos = 2 + 2 * s;
        let factor = a.check_integer(pos)? as i32;
        let b = check(a, pos + 1)?;
        let ok = {
            let d = b.0.borrow();
            d.npix == npix && d.nchan == nchan
        };
        arg_check(ok, pos + 1, "buffer not same size or shape")?;
        sources.push((factor, b.0.borrow().values.clone()));
    }
    let clamp = |v: i32| v.clamp(0, 255) as u8;
    let mut o = out.0.borrow_mut();
    if ibits == 0 {
        for c in 0..o.values.len() {
            let sum: i32 = sources
                .iter()
                .map(|(f, v)| i32::from(v[c]).wrapping_mul(*f))
                .fold(0i32, i32::wrapping_add);
            // C division truncates toward zero.
            o.values[c] = clamp(sum.wrapping_add(128) / 256);
        }
        return this(a);
    }
    arg_check(nchan == 4, 2, "Requires 4 channel pixbuf")?;
    let max_gi = (1i64 << ibits) - 1;
    for p in 0..npix {
        let mut sums = [0i64; 3];
        for (f, v) in &sources {
            for (c, s) in sums.iter_mut().enumerate() {
                *s += i64::from(v[4 * p + c + 1]) * i64::from(v[4 * p]) * i64::from(*f);
            }
        }
        let pmax = sums.iter().copied().max().unwrap_or(0).max(0);
        if pmax == 0 {
            // The firmware stops at the first dark pixel.
            o.values[4 * p..4 * p + 4].fill(0);
            break;
        }
        let gi = if pmax <= 1 << 16 {
            1
        } else if pmax >= max_gi << 16 {
            max_gi
        } else {
            (pmax >> 16) + 1
        };
        o.values[4 * p] = gi as u8;
        for (c, sum) in sums.iter().enumerate() {
            o.values[4 * p + c + 1] = ((sum + 256 * gi - 127) / (256 * gi)).clamp(0, 255) as u8;
        }
    }
    this(a)
}

/// `power()`: the sum of all bytes; `powerI()`: of each pixel's channels times its intensity.
fn power(_: &Lua, a: &Args, intensity: bool) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let b = b.0.borrow();
    let total: i64 = if intensity {
        b.values
            .chunks(b.nchan.max(1))
            .map(|p| {
                p[1..]
                    .iter()
                    .map(|v| i64::from(p[0]) * i64::from(*v))
                    .sum::<i64>()
            })
            .sum()
    } else {
        b.values.iter().map(|v| i64::from(*v)).sum()
    };
    int(total as i32 as i64)
}

/// `shift(n[, type[, start[, end]]])`: positive n moves pixels towards the end.
fn shift(_: &Lua, a: &Args) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let (npix, n) = {
        let d = b.0.borrow();
        (d.npix, d.nchan)
    };
    let by = a.check_integer(2)?.saturating_mul(n as i64);
    let kind = a.opt_integer(3, SHIFT_LOGICAL)? as u32;
    let start = posrelat(a.opt_integer(4, 1)?, npix);
    let end = posrelat(a.opt_integer(5, -1)?, npix);
    let (left, amount) = (by < 0, by.unsigned_abs() as usize);
    if !matches!(i64::from(kind), SHIFT_LOGICAL | SHIFT_CIRCULAR) {
        return arg_err(3, "invalid shift type");
    }
    if start < 1 {
        return arg_err(4, "start position must be >= 1");
    }
    if end < start {
        return arg_err(5, "end position must be >= start");
    }
    let offset = (start as usize - 1) * n;
    let window = (end - start + 1) as usize * n;
    if amount > npix * n {
        return arg_err(2, "shifting more elements than buffer size");
    }
    if amount > window {
        return arg_err(2, "shifting more than sliced window");
    }
    let mut d = b.0.borrow_mut();
    let w = &mut d.values[offset..offset + window];
    match (i64::from(kind), left) {
        (SHIFT_CIRCULAR, true) => w.rotate_left(amount),
        (SHIFT_CIRCULAR, false) => w.rotate_right(amount),
        (_, true) => {
            w.copy_within(amount.., 0);
            w[window - amount..].fill(0);
        }
        (_, false) => {
            w.copy_within(..window - amount, amount);
            w[..amount].fill(0);
        }
    }
    none()
}

fn sub(lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let (npix, n) = {
        let d = b.0.borrow();
        (d.npix, d.nchan)
    };
    let start = posrelat(a.check_integer(2)?, npix);
    let end = posrelat(a.opt_integer(3, -1)?, npix);
    if start <= end && start >= 1 {
        let count = (end - start + 1) as usize;
        let ud = new_buffer(lua, count, n)?;
        if let Ok(out) = ud.borrow::<Pixbuf>() {
            let at = (start as usize - 1) * n;
            out.0
                .borrow_mut()
                .values
                .copy_from_slice(&b.0.borrow().values[at..at + count * n]);
        }
        one(Value::UserData(ud))
    } else {
        one(Value::UserData(new_buffer(lua, 0, n)?))
    }
}
