//! `ws2812.buffer`: the ESP32 firmware's own LED buffer (dev-esp32 `ws2812.c`), which
//! `ws2812.newBuffer` hands out under `--target esp32` and `ws2812.write` sends as a table's
//! `data`.
//!
//! It is not the ESP8266's `pixbuf` (`pixbuf.rs`): a narrower method set (no `channels`, `map`,
//! `fadeI`, `mix4I5`, `powerI`, no `==`), methods that return nothing rather than the buffer,
//! `FADE_IN` 1 and `FADE_OUT` 0, `mix` without rounding (an arithmetic shift of each product)
//! and its own argument rules and messages (`Buffers have different colors`, `Buffer not same
//! shape`). Counts come back as `lua_pushnumber` made them (floats in a 5.3 build). The metatable
//! is its own `__index`, so `b.__tostring` and `b.__index` read as on a board; there is no `__len`.
//!
//! Where the firmware would write outside the buffer or divide by zero (a `replace` at offset 0
//! or before it, a string into a buffer of 0 colours per LED), the simulator refuses or copies
//! nothing instead; the docs list these.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{AnyUserData, Lua, MultiValue, Table, Value};

use crate::heap::{HOST_BYTES_PER_DEVICE_BYTE, Room};
use crate::lauxlib::{Args, FwResult, arg_check, bind, fw_err, to_number};
use crate::modules::register_methods;
use crate::runtime::Runtime;

/// The metatable's name, which argument errors use.
pub const TYPE: &str = "ws2812.buffer";

pub const FADE_IN: i64 = 1;
pub const FADE_OUT: i64 = 0;
pub const SHIFT_LOGICAL: i64 = 0;
pub const SHIFT_CIRCULAR: i64 = 1;

/// More than any ESP32's RAM: past it an allocation fails whatever the profile's heap says.
const MAX_BYTES: usize = 1 << 24;

#[derive(Debug, Default)]
pub struct Data {
    /// LEDs (`size` in the firmware).
    pub size: usize,
    /// Bytes per LED, kept in a `uint8_t` as the firmware keeps it (256 reads as 0).
    pub colors: usize,
    pub values: Vec<u8>,
}

/// A buffer handle; clones share the bytes.
#[derive(Clone)]
pub struct Buffer(pub Rc<RefCell<Data>>);

impl mlua::UserData for Buffer {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with("__index", |lua| lua.named_registry_value::<Table>(TYPE));
        for m in ["__concat", "__tostring"] {
            fields.add_meta_field_with(m, move |lua| {
                lua.named_registry_value::<Table>(TYPE)?.get::<Value>(m)
            });
        }
    }
}

/// `luaL_checkudata(L, n, "ws2812.buffer")`.
fn check(a: &Args, n: usize) -> FwResult<Buffer> {
    Ok(a.check_udata::<Buffer>(n, TYPE)?.1)
}

/// The bytes of a userdata that is a buffer, as `ws2812.write` sends them.
pub fn bytes_of(ud: &AnyUserData) -> Option<Vec<u8>> {
    ud.borrow::<Buffer>()
        .ok()
        .map(|b| b.0.borrow().values.clone())
}

/// `allocate_buffer`: a zeroed buffer of `leds` LEDs of `colors` bytes, as a userdata. The
/// bytes are a Rust vector; a Lua string as long (in device bytes) rides along as the userdata's
/// user value, so the buffer takes its size off `node.heap()` while it lives, and one that does
/// not fit is `not enough memory`, as `lua_newuserdata` fails on the chip.
fn allocate(lua: &Lua, leds: usize, colors: usize) -> FwResult<(AnyUserData, Buffer)> {
    let bytes = leds.saturating_mul(colors);
    let host = bytes.saturating_mul(HOST_BYTES_PER_DEVICE_BYTE);
    let fits = bytes <= MAX_BYTES
        && lua
            .app_data_ref::<Rc<Runtime>>()
            .is_none_or(|rt| Room::new(lua, &rt.heap).fits(host));
    if !fits {
        return fw_err("not enough memory");
    }
    let colors = colors as u8 as usize;
    let data = Data {
        size: leds,
        colors,
        values: vec![0; leds * colors],
    };
    let b = Buffer(Rc::new(RefCell::new(data)));
    let ud = lua.create_userdata(b.clone())?;
    ud.set_user_value(lua.create_string(vec![0u8; host])?)?;
    Ok((ud, b))
}

/// `ws2812.newBuffer(leds, colorsPerLed)`.
pub fn new_lua(lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    let leds = a.check_integer(1)? as i32;
    let colors = a.check_integer(2)? as i32;
    arg_check(leds > 0, 1, "should be a positive integer")?;
    arg_check(colors > 0, 2, "should be a positive integer")?;
    one(Value::UserData(
        allocate(lua, leds as usize, colors as usize)?.0,
    ))
}

/// Registers the methods; call before the first `newBuffer`.
pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let m = |f: fn(&Lua, &Args) -> FwResult<MultiValue>| bind(lua, move |lua, a| f(lua, &a));
    let t = register_methods(
        lua,
        TYPE,
        vec![
            ("__concat", m(concat)?),
            ("__tostring", m(tostring)?),
            ("dump", m(dump)?),
            ("fade", m(fade)?),
            ("fill", m(fill)?),
            ("get", m(get)?),
            ("replace", m(replace)?),
            ("mix", m(mix)?),
            ("power", m(power)?),
            ("set", m(set)?),
            ("shift", m(shift)?),
            ("size", m(size)?),
            ("sub", m(sub)?),
        ],
    )?;
    // The firmware's metatable is its own `__index`.
    t.set("__index", t.clone())
}

/// FADE_IN, FADE_OUT, SHIFT_LOGICAL, SHIFT_CIRCULAR.
pub fn set_constants(t: &Table) -> mlua::Result<()> {
    t.set("FADE_IN", FADE_IN)?;
    t.set("FADE_OUT", FADE_OUT)?;
    t.set("SHIFT_LOGICAL", SHIFT_LOGICAL)?;
    t.set("SHIFT_CIRCULAR", SHIFT_CIRCULAR)
}

fn one(v: Value) -> FwResult<MultiValue> {
    Ok(MultiValue::from_iter([v]))
}

/// `lua_pushnumber`: a float in 5.3, which prints as `3.0` there.
fn number(n: i64) -> Value {
    Value::Number(n as f64)
}

fn none() -> FwResult<MultiValue> {
    Ok(MultiValue::new())
}

/// The firmware's `posrelat`: negative counts back from the end; before the start is 0, with
/// no upper clamp (the callers clamp).
fn posrelat(pos: i64, len: usize) -> i64 {
    let pos = if pos < 0 { pos + len as i64 + 1 } else { pos };
    pos.max(0)
}

/// The LED (0-based) at argument 2, checked.
fn led(a: &Args, d: &Data) -> FwResult<usize> {
    let led = (a.check_integer(2)? as i32).wrapping_sub(1);
    arg_check(led >= 0 && (led as usize) < d.size, 2, "index out of range")?;
    Ok(led as usize)
}

fn size(_: &Lua, a: &Args) -> FwResult<MultiValue> {
    one(number(check(a, 1)?.0.borrow().size as i64))
}

fn dump(lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let s = lua.create_string(&b.0.borrow().values)?;
    one(Value::String(s))
}

/// `fill(c1, ..., cN)`: one integer per colour; extra arguments are ignored.
fn fill(_: &Lua, a: &Args) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let colors = b.0.borrow().colors;
    let mut px = Vec::with_capacity(colors);
    for i in 0..colors {
        px.push(a.check_integer(2 + i)? as u8);
    }
    if colors > 0 {
        let mut d = b.0.borrow_mut();
        d.values
            .chunks_mut(colors)
            .for_each(|c| c.copy_from_slice(&px));
    }
    none()
}

/// `fade(value[, direction])`: FADE_OUT (0) divides; any other direction multiplies, clamped
/// at 255 (the C `int` product wraps first, as on the chip).
fn fade(_: &Lua, a: &Args) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let fade = a.check_integer(2)? as i32;
    let direction = a.opt_integer(3, FADE_OUT)? as u32;
    arg_check(fade > 0, 2, "fade value should be a strict positive number")?;
    let mut d = b.0.borrow_mut();
    for v in d.values.iter_mut() {
        *v = if i64::from(direction) == FADE_OUT {
            (i32::from(*v) / fade) as u8
        } else {
            i32::from(*v).wrapping_mul(fade).min(255) as u8
        };
    }
    none()
}

/// `shift(value[, mode[, i[, j]]])`: the LEDs `i..j` move `value` places (towards the end when
/// positive); SHIFT_LOGICAL (0) fills with zeros, any other mode rotates.
fn shift(_: &Lua, a: &Args) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let (len, colors) = {
        let d = b.0.borrow();
        (d.size, d.colors)
    };
    let by = i64::from(a.check_integer(2)? as i32);
    let mode = a.opt_integer(3, SHIFT_LOGICAL)? as u32;
    let start = posrelat(a.opt_integer(4, 1)?, len).max(1) - 1;
    let end = posrelat(a.opt_integer(5, -1)?, len).min(len as i64);
    let window = end - start;
    arg_check(
        by > -window && by < window,
        2,
        "shifting more elements than buffer size",
    )?;
    if by == 0 {
        return none();
    }
    let (offset, window) = (start as usize * colors, window as usize * colors);
    let amount = by.unsigned_abs() as usize * colors;
    let mut d = b.0.borrow_mut();
    let w = &mut d.values[offset..offset + window];
    match (i64::from(mode) == SHIFT_LOGICAL, by > 0) {
        (false, true) => w.rotate_right(amount),
        (false, false) => w.rotate_left(amount),
        (true, true) => {
            w.copy_within(..window - amount, amount);
            w[..amount].fill(0);
        }
        (true, false) => {
            w.copy_within(amount.., 0);
            w[window - amount..].fill(0);
        }
    }
    none()
}

/// `replace(source[, offset])`: a string (whole LEDs of it) or a buffer of as many colours.
fn replace(_: &Lua, a: &Args) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let (len, colors) = {
        let d = b.0.borrow();
        (d.size, d.colors)
    };
    let start = posrelat(a.opt_integer(3, 1)?, len);
    let (src, src_leds) = match a.arg(2) {
        Value::String(s) => {
            let s = s.as_bytes().to_vec();
            let leds = s.len().checked_div(colors).unwrap_or(0);
            (s, leds)
        }
        _ => {
            let r = check(a, 2)?;
            let r = r.0.borrow();
            arg_check(r.colors == colors, 2, "Buffers have different colors")?;
            (r.values.clone(), r.size)
        }
    };
    // The firmware compares as `size_t`: nothing fits before LED 1, where it would write
    // before the buffer.
    let fits = start >= 1 && src_leds as i64 + start - 1 <= len as i64;
    arg_check(fits, 2, "Does not fit into destination")?;
    let (at, n) = ((start as usize - 1) * colors, src_leds * colors);
    b.0.borrow_mut().values[at..at + n].copy_from_slice(&src[..n]);
    none()
}

/// `mix(factor1, buffer1, ...)`: each byte the sum of the sources' bytes times factor/256, each
/// product shifted down on its own (no rounding), the sum clamped to 0..255. No sources: zeros.
fn mix(_: &Lua, a: &Args) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let (len, colors) = {
        let d = b.0.borrow();
        (d.size, d.colors)
    };
    let mut sources = Vec::new();
    for s in 0..a.len().saturating_sub(1) / 2 {
        let pos = 2 + 2 * s;
        let factor = a.check_integer(pos)? as i32;
        let src = check(a, pos + 1)?;
        let src = src.0.borrow();
        arg_check(
            src.size == len && src.colors == colors,
            pos + 1,
            "Buffer not same shape",
        )?;
        sources.push((factor, src.values.clone()));
    }
    let mut d = b.0.borrow_mut();
    for (i, out) in d.values.iter_mut().enumerate() {
        let val = sources
            .iter()
            .map(|(f, v)| i32::from(v[i]).wrapping_mul(*f) >> 8)
            .fold(0i32, i32::wrapping_add);
        *out = val.clamp(0, 255) as u8;
    }
    none()
}

/// `power()`: the sum of all bytes.
fn power(_: &Lua, a: &Args) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let total: i64 = b.0.borrow().values.iter().map(|v| i64::from(*v)).sum();
    one(number(i64::from(total as i32)))
}

fn get(_: &Lua, a: &Args) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let d = b.0.borrow();
    let at = led(a, &d)? * d.colors;
    Ok(d.values[at..at + d.colors]
        .iter()
        .map(|v| number(i64::from(*v)))
        .collect())
}

/// `set(index, color)`: the colour as numbers, a table of numbers or a string of bytes.
fn set(_: &Lua, a: &Args) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let mut d = b.0.borrow_mut();
    let at = led(a, &d)? * d.colors;
    let colors = d.colors;
    match a.arg(3) {
        Value::Table(t) => {
            for i in 0..colors {
                // `lua_tonumber` then a C cast: non-numbers are 0, fractions truncate.
                let v: Value = t.raw_get(i + 1)?;
                d.values[at + i] = to_number(&v).map_or(0, |x| x as i64 as u8);
            }
        }
        Value::String(s) => {
            let s = s.as_bytes();
            if at + s.len() > d.values.len() {
                return fw_err("string size will exceed strip length");
            }
            d.values[at..at + s.len()].copy_from_slice(&s);
        }
        // Each colour is stored as it is checked, so a bad one leaves those before it set.
        _ => {
            for i in 0..colors {
                let v = a.check_integer(3 + i)?;
                d.values[at + i] = v as u8;
            }
        }
    }
    none()
}

/// `sub(i[, j])`: a new buffer of LEDs `i..j`, `string.sub`'s rules.
fn sub(lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let (len, colors) = {
        let d = b.0.borrow();
        (d.size, d.colors)
    };
    let start = posrelat(a.check_integer(2)?, len).max(1);
    let end = posrelat(a.opt_integer(3, -1)?, len).min(len as i64);
    let leds = if start <= end {
        (end - start + 1) as usize
    } else {
        0
    };
    let (ud, out) = allocate(lua, leds, colors)?;
    if leds > 0 {
        let at = (start as usize - 1) * colors;
        let src = &b.0.borrow().values[at..at + leds * colors];
        out.0.borrow_mut().values.copy_from_slice(src);
    }
    one(Value::UserData(ud))
}

/// `b1 .. b2`: a new buffer of both.
fn concat(lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    let (l, r) = (check(a, 1)?, check(a, 2)?);
    let (lv, rv, colors, leds) = {
        let (l, r) = (l.0.borrow(), r.0.borrow());
        arg_check(
            l.colors == r.colors,
            1,
            "Can only concatenate buffers with same colors",
        )?;
        (
            l.values.clone(),
            r.values.clone(),
            l.colors,
            l.size + r.size,
        )
    };
    let (ud, out) = allocate(lua, leds, colors)?;
    {
        let mut o = out.0.borrow_mut();
        o.values[..lv.len()].copy_from_slice(&lv);
        o.values[lv.len()..].copy_from_slice(&rv);
    }
    one(Value::UserData(ud))
}

/// `tostring(b)`: `[(g,r,b),(g,r,b)]`, one parenthesised group per LED.
fn tostring(lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    let b = check(a, 1)?;
    let d = b.0.borrow();
    let mut s = String::from("[");
    for led in 0..d.size {
        if led > 0 {
            s.push(',');
        }
        s.push('(');
        let px = &d.values[led * d.colors..(led + 1) * d.colors];
        let px: Vec<String> = px.iter().map(u8::to_string).collect();
        s.push_str(&px.join(","));
        s.push(')');
    }
    s.push(']');
    one(Value::String(lua.create_string(s)?))
}
