//! `dht`: the firmware's DHTxx reader (`dht.c` over `dht/dht.c`) on the virtual board, where
//! DHT11 and DHT22 parts answer (`board::dht`).
//!
//! The board gives the 40-bit frame the sensor sends; this module decodes it the way the
//! running generation's C library does, so the results (and their oddities, such as a DHT22
//! read with `read11`) are the firmware's. 3.0 has `read`, `read11`, `read12` and `readxx`
//! (the same as `read`); 1.5 and 2.2 have `read` (the "universal" decoder), `read11` and
//! `readxx` (the DHT22 decoder, with a 1 ms start pulse a DHT11 does not answer). A pin with no
//! DHT gives `ERROR_TIMEOUT` and -999 readings.

use std::rc::Rc;
use std::time::Duration;

use mlua::{Lua, MultiValue, Value};

use crate::config::Firmware;
use crate::devboard::{DeviceBoard, micros};
use crate::lauxlib::{Args, FwResult, bind, fw_err};
use crate::modules::gpio::PINS;
use crate::modules::module_table;
use crate::runtime::Runtime;

const OK: i64 = 0;
const ERROR_CHECKSUM: i64 = -1;
const ERROR_TIMEOUT: i64 = -2;
/// `DHTLIB_INVALID_VALUE`: both readings after a failed read.
const INVALID: f64 = -999.0;

/// The start pulses (ms): the DHT11's, which every reader but the old `readxx` sends, and the
/// DHT22's.
const WAKEUP_DHT11: u32 = 18;
const WAKEUP_DHT22: u32 = 1;

/// How the C library decodes the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoder {
    /// 3.0's `dht_read(pin, type)`, by type.
    Dht11,
    Dht12,
    NonDht11,
    /// 1.5/2.2: `dht_read_universal`, `dht_read11`, `dht_read` (DHT22).
    Universal,
    Old11,
    Old22,
}

impl Decoder {
    fn wakeup(self) -> u32 {
        if self == Decoder::Old22 {
            WAKEUP_DHT22
        } else {
            WAKEUP_DHT11
        }
    }
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let db = DeviceBoard::get(rt).map_err(mlua::Error::runtime)?;
    let reader = |d: Decoder| {
        let (rt, db) = (rt.clone(), db.clone());
        bind(lua, move |_, a| read(&rt, &db, &a, d))
    };
    let new = rt.cfg.firmware >= Firmware::V3_0;
    let fns = if new {
        vec![
            ("read", reader(Decoder::NonDht11)?),
            ("read11", reader(Decoder::Dht11)?),
            ("read12", reader(Decoder::Dht12)?),
            ("readxx", reader(Decoder::NonDht11)?),
        ]
    } else {
        vec![
            ("read", reader(Decoder::Universal)?),
            ("read11", reader(Decoder::Old11)?),
            ("readxx", reader(Decoder::Old22)?),
        ]
    };
    let t = module_table(lua, fns)?;
    t.set("OK", OK)?;
    t.set("ERROR_CHECKSUM", ERROR_CHECKSUM)?;
    t.set("ERROR_TIMEOUT", ERROR_TIMEOUT)?;
    lua.globals().set("dht", t)
}

/// The ESP32 firmware's `dht`: `read11(gpio)` and `read2x(gpio)` on any output-capable GPIO
/// (`invalid gpio`), a 20 ms or 1 ms start pulse, and only the status after a timeout.
pub(crate) fn install32(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let db = DeviceBoard::get(rt).map_err(mlua::Error::runtime)?;
    let reader = |dht11: bool| {
        let (rt, db) = (rt.clone(), db.clone());
        bind(lua, move |_, a| read32(&rt, &db, &a, dht11))
    };
    let t = module_table(
        lua,
        vec![("read11", reader(true)?), ("read2x", reader(false)?)],
    )?;
    t.set("OK", OK)?;
    t.set("ERROR_CHECKSUM", ERROR_CHECKSUM)?;
    t.set("ERROR_TIMEOUT", ERROR_TIMEOUT)?;
    lua.globals().set("dht", t)
}

fn read32(rt: &Runtime, db: &DeviceBoard, a: &Args, dht11: bool) -> FwResult<MultiValue> {
    let gpio = a.check_integer(1)? as i32;
    // `GPIO_IS_VALID_OUTPUT_GPIO`: 0..33 without 20, 24 and 28..31.
    let output = (0..34).contains(&gpio) && ![20, 24, 28, 29, 30, 31].contains(&gpio);
    crate::lauxlib::arg_check(output, 1, "invalid gpio")?;
    let wake = if dht11 { 20 } else { 1 };
    let frame = db
        .board
        .borrow_mut()
        .dht_frame(gpio as u8, wake, micros(rt));
    let answer_us = if frame.is_some() { 4_500 } else { 100 };
    rt.pass_time_within_limit(Duration::from_micros(u64::from(wake) * 1000 + answer_us));
    let Some(b) = frame else {
        return Ok(MultiValue::from_iter([Value::Integer(ERROR_TIMEOUT)]));
    };
    let sum4 = b[..4].iter().fold(0u8, |s, x| s.wrapping_add(*x));
    let (temp, humi) = if dht11 {
        (f64::from(b[2]), f64::from(b[0]))
    } else {
        let mut t = f64::from(i32::from(b[2] & 0x7f) * 256 + i32::from(b[3])) * 0.1;
        if b[2] & 0x80 != 0 {
            t = -t;
        }
        (t, f64::from(i32::from(b[0]) * 256 + i32::from(b[1])) * 0.1)
    };
    let dec = |v: f64| i64::from(((v - v.trunc()) * 1000.0) as i32);
    Ok(MultiValue::from_iter([
        Value::Integer(if b[4] == sum4 { OK } else { ERROR_CHECKSUM }),
        Value::Number(temp),
        Value::Number(humi),
        Value::Integer(dec(temp)),
        Value::Integer(dec(humi)),
    ]))
}

/// `status, temp, humi, temp_dec, humi_dec = dht.readXX(pin)`.
fn read(rt: &Runtime, db: &DeviceBoard, a: &Args, d: Decoder) -> FwResult<MultiValue> {
    let id = a.check_integer(1)? as u32;
    if id == 0 || id >= PINS {
        return fw_err(format!("dht {} does not exist", id as i32));
    }
    let wake = d.wakeup();
    let frame = db.board.borrow_mut().dht_frame(id as u8, wake, micros(rt));
    // The start pulse, then the sensor's answer (about 4 ms) or the driver's short timeout.
    let answer_us = if frame.is_some() { 4_500 } else { 100 };
    rt.pass_time_within_limit(Duration::from_micros(u64::from(wake) * 1000 + answer_us));
    let (status, temp, humi) = match frame {
        Some(f) => decode(f, d),
        None => (ERROR_TIMEOUT, INVALID, INVALID),
    };
    // The decimals are the C `int` of the fraction times 1000; 3.0 pushes them as integers.
    let dec = |v: f64| ((v - v.trunc()) * 1000.0) as i32;
    let new = matches!(d, Decoder::Dht11 | Decoder::Dht12 | Decoder::NonDht11);
    let as_value = |n: i32| {
        if new {
            Value::Integer(i64::from(n))
        } else {
            Value::Number(f64::from(n))
        }
    };
    Ok(MultiValue::from_iter([
        Value::Integer(status),
        Value::Number(temp),
        Value::Number(humi),
        as_value(dec(temp)),
        as_value(dec(humi)),
    ]))
}

/// The C library's decoding of `b`: status, temperature, humidity.
fn decode(b: [u8; 5], d: Decoder) -> (i64, f64, f64) {
    let sum4 = b[..4].iter().fold(0u8, |s, x| s.wrapping_add(*x));
    let sum11 = b[0].wrapping_add(b[2]);
    let word = |hi: u8, lo: u8| f64::from(u16::from(hi) << 8 | u16::from(lo));
    let dht22 = || {
        let mut temp = word(b[2] & 0x7F, b[3]) * 0.1;
        if b[2] & 0x80 != 0 {
            temp = -temp;
        }
        (word(b[0], b[1]) * 0.1, temp)
    };
    let check = |ok: bool| if ok { OK } else { ERROR_CHECKSUM };
    match d {
        Decoder::Old11 => (check(b[4] == sum11), f64::from(b[2]), f64::from(b[0])),
        Decoder::Old22 => {
            let (h, t) = dht22();
            (check(b[4] == sum4), t, h)
        }
        Decoder::Universal => {
            if b[1] == 0 && b[3] == 0 && b[4] == sum11 {
                return (OK, f64::from(b[2]), f64::from(b[0]));
            }
            let (h, t) = dht22();
            (check(b[4] == sum4), t, h)
        }
        Decoder::Dht11 | Decoder::Dht12 | Decoder::NonDht11 => {
            if b[1] == 0 && b[3] == 0 && b[4] == sum11 {
                return (OK, f64::from(b[2]), f64::from(b[0]));
            }
            let mut humi = f64::from(b[0]);
            let mut temp = f64::from(b[2]);
            match d {
                Decoder::Dht11 | Decoder::Dht12 => humi += f64::from(b[1]) * 0.1,
                _ => humi = word(b[0], b[1]) * 0.1,
            }
            match d {
                Decoder::Dht11 => {
                    if b[3] & 0x80 != 0 {
                        temp = -1.0 - temp;
                    }
                    temp += f64::from(b[3] & 0x0F) * 0.1;
                }
                Decoder::Dht12 => {
                    temp += f64::from(b[3] & 0x0F) * 0.1;
                    if b[2] & 0x80 != 0 {
                        temp = -temp;
                    }
                }
                _ => temp = dht22().1,
            }
            (check(b[4] == sum4), temp, humi)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_decode_as_the_c_library_does() {
        let dht22 = [0x02, 0x8D, 0x80, 0x65, 0x74];
        let (s, t, h) = decode(dht22, Decoder::NonDht11);
        assert_eq!((s, t, h), (OK, -10.100000000000001, 65.3));
        // The DHT11 decoder on a DHT22's frame: bytes taken as degrees and tenths.
        let (s, t, h) = decode(dht22, Decoder::Dht11);
        assert_eq!(s, OK);
        assert_eq!((t, h), (128.5, 2.0 + 141.0 * 0.1));
        let dht11 = [55, 0, 23, 0, 78];
        assert_eq!(decode(dht11, Decoder::Universal), (OK, 23.0, 55.0));
        assert_eq!(decode(dht11, Decoder::NonDht11), (OK, 23.0, 55.0));
        let bad = [55, 0, 23, 0, 79];
        assert_eq!(decode(bad, Decoder::Old11).0, ERROR_CHECKSUM);
    }
}
