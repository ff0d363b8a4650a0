//! `uart`: UART0 is the device's serial console (standard output, or the serial mode's byte
//! stream); UART1 transmits only and goes nowhere here. What UART0 receives is handled by
//! `console/input.rs`, which `uart.on("data")` and `uart.setup`'s echo argument configure.

use std::cell::Cell;
use std::rc::Rc;

use mlua::{Lua, Value};

use crate::console::input::{self, MAX_INPUT, Receiver};
use crate::lauxlib::{Args, FwResult, arg_check, bind, fw_err};
use crate::modules::module_table;
use crate::runtime::Runtime;

/// A UART's line settings, as `uart.getconfig` reports them.
#[derive(Clone, Copy)]
struct Line {
    baud: i64,
    databits: i64,
    parity: i64,
    stopbits: i64,
}

const DEFAULT: Line = Line {
    baud: 115_200,
    databits: 8,
    parity: 0,
    stopbits: 1,
};

/// `MOD_CHECK_ID(uart, id)`: the ESP8266 has UART 0 and 1.
fn check_id(a: &Args, n: usize) -> FwResult<usize> {
    let id = a.check_integer(n)?;
    match id {
        0 | 1 => Ok(id as usize),
        _ => fw_err(format!("uart {id} does not exist")),
    }
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let lines = Rc::new([Cell::new(DEFAULT), Cell::new(DEFAULT)]);
    let r = rt.clone();
    let write = bind(lua, move |lua, a| {
        let id = check_id(&a, 1)?;
        let mut out = Vec::new();
        for n in 2..=a.len() {
            match a.get(n) {
                Value::Integer(_) | Value::Number(_) => {
                    let b = a.check_integer(n)?;
                    if !(0..=255).contains(&b) {
                        return fw_err("invalid number");
                    }
                    out.push(b as u8);
                }
                _ => out.extend_from_slice(&a.check_bytes(lua, n)?.as_bytes()),
            }
        }
        if id == 0 {
            r.uart_raw(&out);
        }
        Ok(())
    })?;
    let l = lines.clone();
    let setup = bind(lua, move |lua, a| {
        let id = check_id(&a, 1)?;
        let line = Line {
            baud: a.check_integer(2)?,
            databits: a.check_integer(3)?,
            parity: a.check_integer(4)?,
            stopbits: a.check_integer(5)?,
        };
        if a.is_number(6) {
            input::set_echo(lua, a.check_integer(6)? != 0);
        }
        l[id].set(line);
        Ok(line.baud)
    })?;
    let getconfig = bind(lua, move |_, a| {
        let line = lines[check_id(&a, 1)?].get();
        Ok((line.baud, line.databits, line.parity, line.stopbits))
    })?;
    let on = bind(lua, |lua, a| on(lua, &a))?;
    let t = module_table(
        lua,
        vec![
            ("write", write),
            ("setup", setup),
            ("getconfig", getconfig),
            ("on", on),
            (
                "alt",
                bind(lua, |_, a| {
                    a.check_integer(1)?;
                    Ok(())
                })?,
            ),
            ("fifodepth", bind(lua, |_, _| Ok(0))?),
        ],
    )?;
    for (k, v) in [
        ("STOPBITS_1", 1),
        ("STOPBITS_1_5", 2),
        ("STOPBITS_2", 3),
        ("PARITY_NONE", 0),
        ("PARITY_EVEN", 1),
        ("PARITY_ODD", 2),
        ("DIR_RX", 0),
        ("DIR_TX", 1),
    ] {
        t.set(k, v)?;
    }
    lua.globals().set("uart", t)
}

/// `uart.on("data", [n | char,] fn [, run_input])`, or `uart.on("data")` to stop receiving.
fn on(lua: &Lua, a: &Args) -> FwResult<()> {
    let method = match a.get(1) {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(_) | Value::Number(_) => Some(a.check_str(lua, 1)?.into_bytes()),
        _ => None,
    };
    arg_check(
        method.as_deref() == Some(b"data"),
        1,
        "method not supported",
    )?;
    let (mut n, mut data_len, mut end_char) = (2, -1, 0u8);
    if matches!(a.get(2), Value::Integer(_) | Value::Number(_)) {
        data_len = a.check_integer(2)?;
        arg_check(
            data_len >= 0 && data_len < MAX_INPUT as i64,
            2,
            "wrong arg range",
        )?;
        n = 3;
    } else if let Value::String(s) = a.get(2) {
        let s = s.as_bytes();
        end_char = s.first().copied().unwrap_or(0);
        n = 3;
        if s.len() != 1 {
            return fw_err("wrong arg range");
        }
    }
    let receiver = match a.get(n) {
        Value::Function(callback) => Some(Receiver {
            callback,
            data_len,
            end_char,
            run_input: !(a.is_number(n + 1) && a.check_integer(n + 1)? == 0),
        }),
        _ => None,
    };
    // Unregistering gives the input back to the interpreter.
    input::set_receiver(lua, receiver);
    Ok(())
}
