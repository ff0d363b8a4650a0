//! `ws2812` on the ESP32 (`--target esp32`): the dev-esp32 firmware's RMT driver, which sends
//! any number of strips at once, one table each: `ws2812.write({pin =, data =[, reset, t0h,
//! t0l, t1h, t1l]}, ...)`.
//!
//! The bytes reach the `ws2812` strip parts on those GPIOs (`board::strip`), as the ESP8266
//! form's do, each frame at the device time of the write; the write then takes the wire's time,
//! every bit its high and low durations (multiples of 100 ns) and the reset after, the longest
//! strip's. Buffers from `ws2812.newBuffer` are the firmware's own `ws2812.buffer`
//! (`ws2812_32/buffer.rs`), not the ESP8266's `pixbuf`.

mod buffer;

use std::rc::Rc;
use std::time::Duration;

use mlua::{Lua, Table, Value};

use crate::devboard::{DeviceBoard, micros};
use crate::lauxlib::{Args, FwResult, arg_err, bind, binding_name, fw_err, to_number, typename};
use crate::modules::module_table;
use crate::runtime::Runtime;

/// The driver's defaults, in 100 ns: bit high/low times and the reset after the data.
const T0H: i64 = 4;
const T0L: i64 = 7;
const T1H: i64 = 8;
const T1L: i64 = 6;
const RESET: i64 = 512;
/// The chip's RMT transmit channels: one per strip in a write.
const RMT_CHANNELS: usize = 8;

/// One strip of a write, as the driver sets its channel up.
struct Chain {
    gpio: u8,
    bit_ns: [u64; 2],
    reset_ns: u64,
    data: Vec<u8>,
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let db = DeviceBoard::get(rt).map_err(mlua::Error::runtime)?;
    buffer::install(lua)?;
    let r = rt.clone();
    let write = bind(lua, move |lua, a| write(lua, &r, &db, &a))?;
    let t = module_table(
        lua,
        vec![
            ("newBuffer", bind(lua, |lua, a| buffer::new_lua(lua, &a))?),
            ("write", write),
        ],
    )?;
    buffer::set_constants(&t)?;
    lua.globals().set("ws2812", t)
}

/// An optional timing field: the default when nil, else a number in `lo..=hi`.
fn timing(t: &Table, n: usize, key: &str, default: i64, lo: i64, hi: i64) -> FwResult<i64> {
    let v: Value = t.get(key)?;
    if v.is_nil() {
        return Ok(default);
    }
    let Some(x) = to_number(&v) else {
        return arg_err(n, format!("invalid {key}"));
    };
    let x = i64::from(x as i32);
    if x < lo || x > hi {
        return arg_err(n, format!("{key} must be {lo}<={key}<={hi}"));
    }
    Ok(x)
}

/// One table argument as its chain, with the firmware's checks in its order.
fn chain(lua: &Lua, n: usize, t: &Table) -> FwResult<Chain> {
    let pin: Value = t.get("pin")?;
    let Some(pin) = to_number(&pin) else {
        return arg_err(n, "invalid pin");
    };
    let reset = timing(t, n, "reset", RESET, 0, 0xfffe)?;
    let t0h = timing(t, n, "t0h", T0H, 1, 0x7fff)?;
    let t0l = timing(t, n, "t0l", T0L, 1, 0x7fff)?;
    let t1h = timing(t, n, "t1h", T1H, 1, 0x7fff)?;
    let t1l = timing(t, n, "t1l", T1L, 1, 0x7fff)?;
    let data = match t.get::<Value>("data")? {
        Value::String(s) => s.as_bytes().to_vec(),
        // `luaL_checkudata` on the field, at stack index -1.
        Value::UserData(ud) => match buffer::bytes_of(&ud) {
            Some(bytes) => bytes,
            None => {
                return fw_err(format!(
                    "bad argument #-1 to '{}' ({} expected, got userdata)",
                    binding_name(lua),
                    buffer::TYPE
                ));
            }
        },
        _ => return arg_err(n, "ws2812.buffer or string expected"),
    };
    Ok(Chain {
        gpio: pin as i32 as u8,
        bit_ns: [(t0h + t0l) as u64 * 100, (t1h + t1l) as u64 * 100],
        reset_ns: reset as u64 * 100,
        data,
    })
}

/// `ws2812.write(t1, ...)`: nil arguments are skipped; all chains go out together.
fn write(lua: &Lua, rt: &Rc<Runtime>, db: &DeviceBoard, a: &Args) -> FwResult<()> {
    let mut chains = Vec::new();
    for n in 1..=a.len() {
        match a.arg(n) {
            Value::Nil => continue,
            Value::Table(t) => {
                let c = chain(lua, n, t)?;
                if chains.len() == RMT_CHANNELS {
                    return arg_err(n, "can't set up chain");
                }
                chains.push(c);
            }
            v => return arg_err(n, format!("table expected, got {}", typename(v))),
        }
    }
    // The RMT cannot drive a pin that is no output GPIO: the channel's set-up fails at send.
    let output = |g: u8| g < 34 && ![20, 24, 28, 29, 30, 31].contains(&g);
    if chains.iter().any(|c| !output(c.gpio)) {
        return fw_err("sending failed");
    }
    let t = micros(rt);
    {
        let mut b = db.board.borrow_mut();
        for c in chains.iter().filter(|c| !c.data.is_empty()) {
            b.strip_write(c.gpio, &c.data, t);
        }
    }
    db.flush();
    let ns = chains
        .iter()
        .map(|c| {
            let ones: u64 = c.data.iter().map(|b| u64::from(b.count_ones())).sum();
            let zeros = c.data.len() as u64 * 8 - ones;
            ones * c.bit_ns[1] + zeros * c.bit_ns[0] + c.reset_ns
        })
        .max()
        .unwrap_or(0);
    if ns > 0 {
        rt.pass_time_within_limit(Duration::from_nanos(ns));
    }
    Ok(())
}
