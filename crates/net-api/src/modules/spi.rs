//! `spi`: the ESP8266 firmware's SPI master, on the virtual board's HSPI pins (MOSI D7, MISO D6,
//! SCLK D5, CS D8). Each item `send` or `recv` exchanges is one transaction on the board
//! (`Board::spi_transfer`), so it is one `--trace` line; what comes back on MISO is what the
//! board's MISO net carries (see `board/src/spi.rs`).
//!
//! The 512-bit MOSI/MISO buffer of `set_mosi`/`get_miso`/`transaction` is a plain bit array, the
//! first bit sent first. The release's `luaL_argcheck` calls in `set_mosi`, `get_miso` and
//! `transaction` pass their condition as the argument number, so they never fail; neither do
//! they here, but lengths are clamped to the buffer instead of overrunning it. Id 0 (the flash's
//! bus on the chip) uses the same pins here.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use board::SpiPins;
use board::spi::{pack, unpack};
use mlua::{Lua, MultiValue, Value};

use crate::config::Firmware;
use crate::devboard::DeviceBoard;
use crate::lauxlib::{Args, FwResult, bind, fw_err};
use crate::modules::module_table;
use crate::runtime::Runtime;

const MASTER: i64 = 1;
const SLAVE: i64 = 0;
const HALFDUPLEX: i64 = 0;
const FULLDUPLEX: i64 = 1;
const BUFFER_BITS: usize = 512;
/// HSPI on the NodeMCU pin numbers.
const PINS: SpiPins = SpiPins {
    mosi: 7,
    miso: 6,
    sclk: 5,
    cs: 8,
};

#[derive(Clone, Copy)]
struct Bus {
    databits: u32,
    full: bool,
    clock_div: u32,
}

struct Spi {
    rt: Rc<Runtime>,
    db: Rc<DeviceBoard>,
    buses: RefCell<[Bus; 2]>,
    /// The MOSI and MISO buffers, one bit per entry.
    mosi: RefCell<Vec<bool>>,
    miso: RefCell<Vec<bool>>,
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let db = DeviceBoard::get(rt).map_err(mlua::Error::runtime)?;
    let bus = Bus {
        databits: 0,
        full: false,
        clock_div: 8,
    };
    let st = Rc::new(Spi {
        rt: rt.clone(),
        db,
        buses: RefCell::new([bus; 2]),
        mosi: RefCell::new(vec![false; BUFFER_BITS]),
        miso: RefCell::new(vec![false; BUFFER_BITS]),
    });
    let with = |f: fn(&Spi, &Lua, &Args) -> FwResult<MultiValue>| {
        let s = st.clone();
        bind(lua, move |lua, a| f(&s, lua, &a))
    };
    let mut fns = vec![
        ("setup", with(setup)?),
        ("send", with(send)?),
        ("recv", with(recv)?),
        ("set_mosi", with(set_mosi)?),
        ("get_miso", with(get_miso)?),
        ("transaction", with(transaction)?),
    ];
    if rt.cfg.firmware >= Firmware::V3_0 {
        fns.push(("set_clock_div", with(set_clock_div)?));
    }
    let t = module_table(lua, fns)?;
    for (k, v) in [
        ("MASTER", MASTER),
        ("SLAVE", SLAVE),
        ("CPHA_LOW", 0),
        ("CPHA_HIGH", 1),
        ("CPOL_LOW", 0),
        ("CPOL_HIGH", 1),
        ("DATABITS_8", 8),
        ("HALFDUPLEX", HALFDUPLEX),
        ("FULLDUPLEX", FULLDUPLEX),
    ] {
        t.set(k, v)?;
    }
    lua.globals().set("spi", t)
}

fn one(v: Value) -> MultiValue {
    MultiValue::from_iter([v])
}

impl Spi {
    fn id(&self, a: &Args) -> FwResult<usize> {
        let id = a.check_integer(1)? as u32;
        if id < 2 {
            Ok(id as usize)
        } else {
            fw_err(format!("spi {} does not exist", id as i32))
        }
    }

    /// Clocks `bits` bits out and in, as one transaction; the bits read.
    fn exchange(&self, id: usize, out: &[bool]) -> Vec<bool> {
        let bits = out.len() as u32;
        // SCLK is 80 MHz / clock_div.
        let div = u64::from(self.buses.borrow()[id].clock_div.max(1));
        let ns = u64::from(bits) * div * 1000 / 80;
        self.rt
            .pass_time_within_limit(Duration::from_nanos(ns.max(1)));
        let mut bytes = vec![0u8; out.len().div_ceil(8)];
        for (i, b) in out.iter().enumerate() {
            if *b {
                bytes[i / 8] |= 0x80 >> (i % 8);
            }
        }
        let t = self.db.now();
        let got = self
            .db
            .board
            .borrow_mut()
            .spi_transfer(PINS, &bytes, bits, t);
        self.db.settle();
        (0..out.len())
            .map(|i| got.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0))
            .collect()
    }

    /// One item of `databits` bits: what came back.
    fn item(&self, id: usize, v: u64) -> i64 {
        let bits = self.buses.borrow()[id].databits;
        let out = pack(v, bits);
        let out: Vec<bool> = (0..bits as usize)
            .map(|i| out[i / 8] & (0x80 >> (i % 8)) != 0)
            .collect();
        let back = self.exchange(id, &out);
        let mut bytes = vec![0u8; back.len().div_ceil(8)];
        for (i, b) in back.iter().enumerate() {
            if *b {
                bytes[i / 8] |= 0x80 >> (i % 8);
            }
        }
        unpack(&bytes, bits) as i64
    }
}

/// `spi.setup(id, mode, cpol, cpha, databits, clock_div[, duplex])`: 1.
fn setup(s: &Spi, _: &Lua, a: &Args) -> FwResult<MultiValue> {
    for n in 1..=6 {
        a.check_integer(n)?;
    }
    let mode = a.check_integer(2)? as i32;
    let cpol = a.check_integer(3)? as i32;
    let cpha = a.check_integer(4)? as i32;
    let databits = a.check_integer(5)? as i32;
    let mut div = a.check_integer(6)? as u32;
    let duplex = a.opt_integer(7, HALFDUPLEX)? as i32;
    let id = s.id(a)?;
    if !(0..=1).contains(&mode) || !(0..=1).contains(&cpol) || !(0..=1).contains(&cpha) {
        return fw_err("wrong arg type");
    }
    if !(0..=32).contains(&databits) {
        return fw_err("out of range");
    }
    if div == 0 {
        div = 8;
    }
    if !(0..=1).contains(&duplex) {
        return fw_err("out of range");
    }
    s.buses.borrow_mut()[id] = Bus {
        databits: databits as u32,
        full: duplex == 1,
        clock_div: div,
    };
    Ok(one(Value::Integer(1)))
}

/// `spi.send(id, data...)`: the count sent, and in full duplex what came back per argument.
fn send(s: &Spi, lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    let id = s.id(a)?;
    if a.len() < 2 {
        return fw_err("wrong arg type");
    }
    let full = s.buses.borrow()[id].full;
    let mut out = vec![Value::Integer(0)];
    let mut wrote = 0i64;
    for n in 2..=a.len() {
        match a.arg(n) {
            Value::Integer(_) | Value::Number(_) => {
                let v = a.check_integer(n)? as u32;
                let r = s.item(id, u64::from(v));
                if full {
                    out.push(Value::Integer(r));
                }
                wrote += 1;
            }
            Value::Table(t) => {
                let len = t.raw_len();
                let back = lua.create_table()?;
                for i in 0..len {
                    let v = t.raw_get::<Value>(i + 1)?;
                    let v = Args(MultiValue::from_iter([v])).check_integer(1)? as u32;
                    let r = s.item(id, u64::from(v));
                    if full {
                        back.raw_set(i + 1, r)?;
                    }
                }
                if full && len > 0 {
                    out.push(Value::Table(back));
                }
                wrote += len as i64;
            }
            _ => {
                let bytes = a.check_bytes(lua, n)?.as_bytes().to_vec();
                let back: Vec<u8> = bytes
                    .iter()
                    .map(|b| s.item(id, u64::from(*b)) as u8)
                    .collect();
                if full && !bytes.is_empty() {
                    out.push(Value::String(lua.create_string(&back)?));
                }
                wrote += bytes.len() as i64;
            }
        }
    }
    out[0] = Value::Integer(wrote);
    Ok(out.into_iter().collect())
}

/// `spi.recv(id, size[, default])`: `size` items sent as `default` (all ones), their low bytes.
fn recv(s: &Spi, lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    a.check_integer(1)?;
    let size = a.check_integer(2)? as i32;
    let def = a.opt_integer(3, 0xffff_ffff)? as u32;
    let id = s.id(a)?;
    if size == 0 {
        return Ok(MultiValue::new());
    }
    if size > 1 << 20 {
        return fw_err("not enough memory");
    }
    let out: Vec<u8> = (0..size.max(0))
        .map(|_| s.item(id, u64::from(def)) as u8)
        .collect();
    Ok(one(Value::String(lua.create_string(&out)?)))
}

/// Writes `bits` bits of `v` into the buffer from `offset`, most significant first.
fn put(buf: &mut [bool], offset: usize, bits: usize, v: u64) {
    for i in 0..bits {
        if let Some(b) = buf.get_mut(offset + i) {
            *b = v >> (bits - 1 - i) & 1 == 1;
        }
    }
}

fn get(buf: &[bool], offset: usize, bits: usize) -> u64 {
    (0..bits).fold(0, |acc, i| {
        acc << 1 | u64::from(buf.get(offset + i).copied().unwrap_or(false))
    })
}

/// `spi.set_mosi(id, offset, bitlen, data...)` or `spi.set_mosi(id, string)`.
fn set_mosi(s: &Spi, lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    s.id(a)?;
    let mut buf = s.mosi.borrow_mut();
    if let Value::String(_) = a.arg(2) {
        let data = a.check_bytes(lua, 2)?.as_bytes().to_vec();
        for (i, b) in data.iter().take(BUFFER_BITS / 8).enumerate() {
            put(&mut buf, i * 8, 8, u64::from(*b));
        }
        return Ok(MultiValue::new());
    }
    let mut offset = a.check_integer(2)? as i32;
    let bitlen = a.check_integer(3)? as i32;
    for n in 4..=a.len().max(3) {
        let v = a.check_integer(n)? as u32;
        if offset + bitlen > 512 {
            return fw_err("data range exceeded > 512 bits");
        }
        put(
            &mut buf,
            offset.max(0) as usize,
            bitlen.clamp(0, 32) as usize,
            u64::from(v),
        );
        offset += bitlen;
    }
    Ok(MultiValue::new())
}

/// `spi.get_miso(id, offset, bitlen, num)` or `spi.get_miso(id, len)`.
fn get_miso(s: &Spi, lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    s.id(a)?;
    let buf = s.miso.borrow();
    if a.len() == 2 {
        let len = (a.check_integer(2)? as i32).clamp(0, 64) as usize;
        let bytes: Vec<u8> = (0..len).map(|i| get(&buf, i * 8, 8) as u8).collect();
        return Ok(one(Value::String(lua.create_string(&bytes)?)));
    }
    let offset = a.check_integer(2)? as i32;
    let bitlen = a.check_integer(3)? as i32;
    let num = a.check_integer(4)? as i32;
    if i64::from(offset) + i64::from(bitlen) * i64::from(num) > 512 {
        return fw_err("out of range");
    }
    let (offset, bitlen) = (offset.max(0) as usize, bitlen.clamp(0, 32) as usize);
    Ok((0..num.max(0) as usize)
        .map(|i| Value::Integer(get(&buf, offset + bitlen * i, bitlen) as i64))
        .collect())
}

/// `spi.transaction(id, cmd_bitlen, cmd, addr_bitlen, addr, mosi_bitlen, dummy_bitlen,
/// miso_bitlen)`: one transaction of command, address, the MOSI buffer, dummy bits, then the
/// MISO bits into the buffer (a negative `miso_bitlen`: read during the MOSI phase instead).
fn transaction(s: &Spi, _: &Lua, a: &Args) -> FwResult<MultiValue> {
    a.check_integer(1)?;
    let id = s.id(a)?;
    let cmd_bits = (a.check_integer(2)? as i32).clamp(0, 16) as usize;
    let cmd = a.check_integer(3)? as u16;
    let addr_bits = (a.check_integer(4)? as i32).clamp(0, 32) as usize;
    let addr = a.check_integer(5)? as u32;
    let mosi_bits = (a.check_integer(6)? as i32).clamp(0, 512) as usize;
    let dummy_bits = (a.check_integer(7)? as i32).clamp(0, 256) as usize;
    let miso_bits = (a.check_integer(8)? as i32).clamp(-512, 512);
    let mut out = vec![false; cmd_bits + addr_bits];
    put(&mut out, 0, cmd_bits, u64::from(cmd));
    put(&mut out, cmd_bits, addr_bits, u64::from(addr));
    let start = out.len();
    out.extend_from_slice(&s.mosi.borrow()[..mosi_bits]);
    out.extend(std::iter::repeat_n(false, dummy_bits));
    let read_after = miso_bits.max(0) as usize;
    // The MOSI line idles high while the part answers.
    out.extend(std::iter::repeat_n(true, read_after));
    let back = s.exchange(id, &out);
    let mut miso = s.miso.borrow_mut();
    if miso_bits < 0 {
        let n = (-miso_bits) as usize;
        for i in 0..n.min(mosi_bits) {
            miso[i] = back[start + i];
        }
    } else {
        let from = back.len() - read_after;
        miso[..read_after].copy_from_slice(&back[from..]);
    }
    Ok(MultiValue::new())
}

/// `spi.set_clock_div(id, div)`: the old divider.
fn set_clock_div(s: &Spi, _: &Lua, a: &Args) -> FwResult<MultiValue> {
    a.check_integer(1)?;
    let id = s.id(a)?;
    let div = a.check_integer(2)? as u32;
    let old = std::mem::replace(&mut s.buses.borrow_mut()[id].clock_div, div.max(1));
    Ok(one(Value::Integer(i64::from(old))))
}
