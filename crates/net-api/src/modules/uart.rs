//! `uart`: UART0 is the device's serial console, which here is the simulator's standard output.

use std::cell::Cell;
use std::rc::Rc;

use mlua::{Lua, Value};

use crate::lauxlib::{bind, fw_err};
use crate::modules::module_table;
use crate::runtime::Runtime;

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let baud = Rc::new(Cell::new(115_200i64));
    let r = rt.clone();
    let write = bind(lua, move |lua, a| {
        let id = a.check_integer(1)?;
        if id != 0 && id != 1 {
            return fw_err(format!("uart {id} does not exist"));
        }
        let mut out = Vec::new();
        for n in 2..=a.len() {
            match a.get(n) {
                Value::Integer(_) | Value::Number(_) => out.push(a.check_integer(n)? as u8),
                _ => out.extend_from_slice(&a.check_bytes(lua, n)?.as_bytes()),
            }
        }
        if id == 0 {
            r.uart(&out);
        }
        Ok(())
    })?;
    let b = baud.clone();
    let setup = bind(lua, move |_, a| {
        let id = a.check_integer(1)?;
        if id != 0 && id != 1 {
            return fw_err(format!("uart {id} does not exist"));
        }
        b.set(a.check_integer(2)?);
        Ok(b.get())
    })?;
    let getconfig = bind(lua, move |_, _| Ok((baud.get(), 8, 0, 1)))?;
    let on = bind(lua, |lua, a| {
        a.check_str(lua, 1)?;
        Ok(())
    })?;
    let t = module_table(
        lua,
        vec![
            ("write", write),
            ("setup", setup),
            ("getconfig", getconfig),
            ("on", on),
            ("alt", bind(lua, |_, _| Ok(()))?),
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
    ] {
        t.set(k, v)?;
    }
    lua.globals().set("uart", t)
}
