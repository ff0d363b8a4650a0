//! `ws2812`: the firmware's WS2812 driver (`ws2812.c`), which streams GRB(W) bytes out of
//! UART1 on D4 (GPIO2), and with `ws2812.MODE_DUAL` a second stream out of UART0's TX (D10).
//!
//! On the virtual board the bytes reach the `ws2812` strip parts on those pins
//! (`board::strip`), each frame at the device time of the write, which then takes the wire's
//! time: four UART characters of 8 bits at 3.2 Mbaud per byte, 10 µs. Until `ws2812.init` has
//! routed UART1 to GPIO2 nothing reaches the strip, as on the board. The buffers
//! (`ws2812.newBuffer`) are `pixbuf`'s (`pixbuf.rs`).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use board::{Mode, Pull};
use mlua::{Lua, Value};

use crate::devboard::{DeviceBoard, micros};
use crate::lauxlib::{Args, FwResult, arg_check, arg_err, bind};
use crate::modules::{module_table, pixbuf};
use crate::runtime::Runtime;

const MODE_SINGLE: i64 = 0;
const MODE_DUAL: i64 = 1;
/// D4 (GPIO2, U1TXD) and D10 (GPIO1, U0TXD).
const DATA_PIN: u8 = 4;
const DUAL_PIN: u8 = 10;
/// One byte on the wire: 4 characters × 8 bits at 3.2 Mbaud.
const BYTE_US: u64 = 10;

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let db = DeviceBoard::get(rt).map_err(mlua::Error::runtime)?;
    let three = rt.cfg.firmware >= crate::config::Firmware::V3_0;
    pixbuf::install(lua, three)?;
    let mode = rt.state(|_| Uart(Cell::new(None)));
    let (d, m, r) = (db.clone(), mode.clone(), rt.clone());
    let init = bind(lua, move |_, a| {
        let md = a.opt_integer(1, MODE_SINGLE)?;
        arg_check(
            md == MODE_SINGLE || md == MODE_DUAL,
            1,
            "ws2812.SINGLE or ws2812.DUAL expected",
        )?;
        // GPIO2 pulled low for 10 µs (the strip's reset), then handed to UART1.
        let t = micros(&r);
        d.board
            .borrow_mut()
            .set_mode(DATA_PIN, Mode::Output, Pull::None, t);
        d.write(DATA_PIN, false);
        d.flush();
        r.pass_time_within_limit(Duration::from_micros(10));
        m.0.set(Some(md));
        Ok(())
    })?;
    let (d, r) = (db.clone(), rt.clone());
    let write = bind(lua, move |lua, a| {
        let (first, second) = (data(lua, &a, 1)?, data(lua, &a, 2)?);
        send(&r, &d, &first, &second);
        Ok(())
    })?;
    let t = module_table(
        lua,
        vec![
            ("init", init),
            ("newBuffer", bind(lua, |lua, a| pixbuf::new_lua(lua, &a))?),
            ("write", write),
        ],
    )?;
    pixbuf::set_constants(&t)?;
    t.set("MODE_SINGLE", MODE_SINGLE)?;
    t.set("MODE_DUAL", MODE_DUAL)?;
    lua.globals().set("ws2812", t)
}

/// Argument `n` as the bytes to send: nil (nothing), a string or a 3- or 4-channel buffer.
fn data(lua: &Lua, a: &Args, n: usize) -> FwResult<Vec<u8>> {
    match a.arg(n) {
        Value::Nil => Ok(Vec::new()),
        Value::String(_) => Ok(a.check_bytes(lua, n)?.as_bytes().to_vec()),
        Value::UserData(_) => {
            let b = pixbuf::check(a, n)?;
            let b = b.0.borrow();
            arg_check(b.nchan == 3 || b.nchan == 4, n, "Bad pixbuf format")?;
            Ok(b.values.clone())
        }
        _ => arg_err(n, "pixbuf or string expected"),
    }
}

/// The mode `ws2812.init` set up the UARTs in: None until then (nothing reaches a strip).
struct Uart(Cell<Option<i64>>);

/// `ws2812_write_data`: the bytes out of UART1 (and UART0 in dual mode) to the strips there,
/// at the device time now, which then moves on by the time the longer stream takes.
pub fn send(rt: &Rc<Runtime>, db: &DeviceBoard, first: &[u8], second: &[u8]) {
    let mode = rt.state(|_| Uart(Cell::new(None))).0.get();
    let t = micros(rt);
    if mode.is_some() {
        let mut b = db.board.borrow_mut();
        if !first.is_empty() {
            b.strip_write(DATA_PIN, first, t);
        }
        if mode == Some(MODE_DUAL) && !second.is_empty() {
            b.strip_write(DUAL_PIN, second, t);
        }
    }
    db.flush();
    let bytes = first.len().max(second.len()) as u64;
    if bytes > 0 {
        rt.pass_time_within_limit(Duration::from_micros(bytes * BYTE_US));
    }
}
