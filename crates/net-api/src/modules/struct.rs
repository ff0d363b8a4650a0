//! `struct`: Roberto Ierusalimschy's struct library as the firmware builds it for the ESP8266.
//!
//! `struct.pack(fmt, ...)`, `struct.unpack(fmt, s[, pos])`, `struct.size(fmt)`. The sizes are the
//! chip's: short 2, long/int/size_t 4, float 4, double 8; `!` aligns to at most 8. Formats:
//! `< > !n` and space, `x`, `b B h H l L T`, `i In I In` (n up to 32), `f d`, `s`, `c cn c0`;
//! anything else is `invalid format option`. Integers are packed from a 32-bit value (so bytes
//! past the fourth are zero) and unpacked as integers when they fit 32 bits, else as floats, as
//! the firmware does; Lua 5.3 builds refuse fractional integers. `struct.size` skips unknown
//! letters, as the firmware's does.

use mlua::{Lua, MultiValue, Value};

use crate::lauxlib::{Args, FwError, FwResult, arg_check, arg_err, bind, fw_err};
use crate::modules::module_table;

const MAXINTSIZE: i64 = 32;
const MAXALIGN: i64 = 8;

struct Header {
    little: bool,
    align: usize,
}

impl Default for Header {
    /// The chip is little-endian; no alignment until `!` asks for it.
    fn default() -> Self {
        Header {
            little: true,
            align: 1,
        }
    }
}

/// A format string being read.
struct Fmt<'a> {
    s: &'a [u8],
    i: usize,
}

impl Fmt<'_> {
    fn next(&mut self) -> Option<u8> {
        let c = *self.s.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    fn getnum(&mut self, df: i64) -> FwResult<i64> {
        if !self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            return Ok(df);
        }
        let mut a: i64 = 0;
        while let Some(&c) = self.s.get(self.i).filter(|c| c.is_ascii_digit()) {
            let d = (c - b'0') as i64;
            if a > i32::MAX as i64 / 10 || a * 10 > i32::MAX as i64 - d {
                return fw_err("integral size overflow");
            }
            a = a * 10 + d;
            self.i += 1;
        }
        Ok(a)
    }

    fn optsize(&mut self, opt: u8) -> FwResult<usize> {
        Ok(match opt {
            b'B' | b'b' | b'x' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'f' => 4,
            b'd' => 8,
            b'c' => self.getnum(1)? as usize,
            b'i' | b'I' => {
                let sz = self.getnum(4)?;
                if sz > MAXINTSIZE {
                    return fw_err(format!(
                        "integral size {sz} is larger than limit of {MAXINTSIZE}"
                    ));
                }
                sz as usize
            }
            _ => 0,
        })
    }

    /// Endianness, alignment and spaces; anything else is not a format option.
    fn control(&mut self, opt: u8, h: &mut Header) -> FwResult<()> {
        match opt {
            b' ' => {}
            b'>' => h.little = false,
            b'<' => h.little = true,
            b'!' => {
                let a = self.getnum(MAXALIGN)?;
                if a <= 0 || a & (a - 1) != 0 {
                    return fw_err(format!("alignment {a} is not a power of 2"));
                }
                h.align = a as usize;
            }
            c => {
                let c = String::from_utf8_lossy(&[c]).into_owned();
                return arg_err(1, format!("invalid format option '{c}'"));
            }
        }
        Ok(())
    }
}

/// Padding before an item of `size` at offset `len`.
fn gettoalign(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    size.wrapping_sub(len & (size - 1)) & (size - 1)
}

fn ordered(mut bytes: Vec<u8>, little: bool) -> Vec<u8> {
    if !little {
        bytes.reverse();
    }
    bytes
}

fn pack(lua: &Lua, a: &Args) -> FwResult<mlua::LuaString> {
    let fmt = a.check_bytes(lua, 1)?;
    let mut f = Fmt {
        s: &fmt.as_bytes(),
        i: 0,
    };
    let mut h = Header::default();
    let (mut arg, mut out) = (2, Vec::new());
    while let Some(opt) = f.next() {
        let mut size = f.optsize(opt)?;
        let pad = gettoalign(out.len(), &h, opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let value = a.check_integer(arg)? as i32 as u32 as u64;
                arg += 1;
                let le: Vec<u8> = (0..size)
                    .map(|k| (value.checked_shr(8 * k as u32).unwrap_or(0) & 0xff) as u8)
                    .collect();
                out.extend(ordered(le, h.little));
            }
            b'x' => out.push(0),
            b'f' => {
                let x = a.check_number(arg)? as f32;
                arg += 1;
                out.extend(ordered(x.to_le_bytes().to_vec(), h.little));
            }
            b'd' => {
                let x = a.check_number(arg)?;
                arg += 1;
                out.extend(ordered(x.to_le_bytes().to_vec(), h.little));
            }
            b'c' | b's' => {
                let s = a.check_bytes(lua, arg)?;
                let s = s.as_bytes();
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                // The firmware names the argument after the string.
                arg_check(s.len() >= size, arg, "string too short")?;
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => f.control(opt, &mut h)?,
        }
    }
    Ok(lua.create_string(out)?)
}

/// An integer field; as an integer when it fits the firmware's 32-bit integers.
fn getinteger(b: &[u8], little: bool, signed: bool) -> Value {
    let mut l: u64 = 0;
    let mut push = |c: &u8| l = l.wrapping_shl(8) | *c as u64;
    if little {
        b.iter().rev().for_each(&mut push);
    } else {
        b.iter().for_each(&mut push);
    }
    if signed && !b.is_empty() {
        let mask = u64::MAX.checked_shl(b.len() as u32 * 8 - 1).unwrap_or(0);
        if l & mask != 0 {
            l |= mask;
        }
    }
    let res = l as i64;
    if res >= i32::MIN as i64 && res <= i32::MAX as i64 {
        Value::Integer(res)
    } else {
        Value::Number(res as f64)
    }
}

fn unpack(lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    const SHORT: &str = "data string too short";
    let fmt = a.check_bytes(lua, 1)?;
    let data = a.check_bytes(lua, 2)?;
    let data = data.as_bytes();
    // The firmware's `pos - 1` wraps for the most negative integer; a start before 1 is too short.
    let start = a.opt_integer(3, 1)?.wrapping_sub(1);
    let mut f = Fmt {
        s: &fmt.as_bytes(),
        i: 0,
    };
    let mut h = Header::default();
    let mut out = MultiValue::new();
    let Ok(mut pos) = usize::try_from(start) else {
        return arg_err(2, SHORT);
    };
    let ld = data.len();
    while let Some(opt) = f.next() {
        let mut size = f.optsize(opt)?;
        pos += gettoalign(pos, &h, opt, size);
        arg_check(pos + size <= ld, 2, SHORT)?;
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let signed = opt.is_ascii_lowercase();
                out.push_back(getinteger(&data[pos..pos + size], h.little, signed));
            }
            b'x' => {}
            b'f' => {
                let b: [u8; 4] = ordered(data[pos..pos + 4].to_vec(), h.little)
                    .try_into()
                    .unwrap_or([0; 4]);
                out.push_back(Value::Number(f32::from_le_bytes(b) as f64));
            }
            b'd' => {
                let b: [u8; 8] = ordered(data[pos..pos + 8].to_vec(), h.little)
                    .try_into()
                    .unwrap_or([0; 8]);
                out.push_back(Value::Number(f64::from_le_bytes(b)));
            }
            b'c' => {
                if size == 0 {
                    size = previous_size(&mut out, a)?;
                    arg_check(pos.checked_add(size).is_some_and(|e| e <= ld), 2, SHORT)?;
                }
                out.push_back(Value::String(lua.create_string(&data[pos..pos + size])?));
            }
            b's' => {
                let Some(n) = data[pos..].iter().position(|&c| c == 0) else {
                    return fw_err("unfinished string in data");
                };
                out.push_back(Value::String(lua.create_string(&data[pos..pos + n])?));
                size = n + 1;
            }
            _ => f.control(opt, &mut h)?,
        }
        pos += size;
    }
    out.push_back(Value::Integer(pos as i64 + 1));
    Ok(out)
}

/// `c0`'s length: the number on top of the stack (the last value read), which it replaces.
fn previous_size(out: &mut MultiValue, a: &Args) -> FwResult<usize> {
    let top = out.back().cloned().unwrap_or_else(|| a.get(2));
    let Some(n) = crate::lauxlib::to_number(&top) else {
        return fw_err("format `c0' needs a previous size");
    };
    if !out.is_empty() {
        out.pop_back();
    }
    usize::try_from(n as i64).map_err(|_| FwError::Arg(2, "data string too short".into()))
}

fn size(lua: &Lua, a: &Args) -> FwResult<i64> {
    let fmt = a.check_bytes(lua, 1)?;
    let mut f = Fmt {
        s: &fmt.as_bytes(),
        i: 0,
    };
    let mut h = Header::default();
    let mut pos = 0usize;
    while let Some(opt) = f.next() {
        let size = f.optsize(opt)?;
        pos += gettoalign(pos, &h, opt, size);
        if opt == b's' {
            return arg_err(1, "option 's' has no fixed size");
        } else if opt == b'c' && size == 0 {
            return arg_err(1, "option 'c0' has no fixed size");
        }
        if !opt.is_ascii_alphanumeric() {
            f.control(opt, &mut h)?;
        }
        pos += size;
    }
    Ok(pos as i64)
}

pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let t = module_table(
        lua,
        vec![
            ("pack", bind(lua, |lua, a| pack(lua, &a))?),
            ("unpack", bind(lua, |lua, a| unpack(lua, &a))?),
            ("size", bind(lua, |lua, a| size(lua, &a))?),
        ],
    )?;
    lua.globals().set("struct", t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_follows_the_chip() {
        let h = Header {
            little: true,
            align: 8,
        };
        assert_eq!(gettoalign(1, &h, b'd', 8), 7);
        assert_eq!(gettoalign(1, &h, b'h', 2), 1);
        assert_eq!(gettoalign(3, &h, b'c', 1), 0);
        assert_eq!(gettoalign(5, &Header::default(), b'l', 4), 0);
    }

    #[test]
    fn integers_sign_extend_and_widen() {
        assert_eq!(getinteger(&[0xff, 0xff], true, true), Value::Integer(-1));
        assert_eq!(
            getinteger(&[0xff, 0xff], true, false),
            Value::Integer(65535)
        );
        assert_eq!(
            getinteger(&[0x12, 0x34], false, false),
            Value::Integer(0x1234)
        );
        assert_eq!(
            getinteger(&[0xff, 0xff, 0xff, 0xff], true, false),
            Value::Number(4294967295.0)
        );
    }
}
