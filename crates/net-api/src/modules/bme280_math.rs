//! `bme280_math` (3.0): the firmware's BME280 arithmetic without the bus, for the
//! `lua_modules/bme280` driver, which reads the registers itself over `i2c`. `setup(calibration,
//! ...)` parses the calibration bytes into a sensor userdata and returns it with the three
//! register values (config, ctrl_hum, ctrl_meas, each a one-character string) to write; `read(sensor,
//! data[, altitude])` compensates the raw words as the `bme280` module does, returning floats:
//! °C, hPa, %RH (and QNH). `qfe2qnh`, `altitude`, `dewpoint` work as functions or methods.

use std::rc::Rc;

use mlua::{Lua, MultiValue, UserData, Value};

use crate::lauxlib::{Args, FwResult, bind, fw_err};
use crate::modules::bme280::{Calib, ln, qnh};
use crate::modules::module_table;
use crate::runtime::Runtime;

/// The sensor `setup` returns: its calibration.
struct Sensor(Calib);

impl UserData for Sensor {}

pub(crate) fn install(lua: &Lua, _rt: &Rc<Runtime>) -> mlua::Result<()> {
    let t = module_table(
        lua,
        vec![
            ("setup", bind(lua, setup)?),
            ("read", bind(lua, read)?),
            ("qfe2qnh", bind(lua, qfe2qnh)?),
            ("altitude", bind(lua, altitude)?),
            ("dewpoint", bind(lua, dewpoint)?),
        ],
    )?;
    lua.globals().set("bme280_math", t)
}

fn opt(a: &Args, n: usize, mask: i64, default: u8) -> FwResult<u8> {
    Ok(if a.is_number(n) {
        (a.check_integer(n)? & mask) as u8
    } else {
        default
    })
}

/// `bme280_math.setup(calibration[, osrs_t, osrs_p, osrs_h, mode, t_sb, filter])`.
fn setup(lua: &Lua, a: Args) -> FwResult<MultiValue> {
    let mode = opt(&a, 5, 3, 3)? | opt(&a, 3, 7, 5)? << 2 | opt(&a, 2, 7, 5)? << 5;
    let ossh = opt(&a, 4, 7, 5)?;
    let config = opt(&a, 6, 7, 7)? << 5 | opt(&a, 7, 7, 4)? << 2;
    let buf = a.check_bytes(lua, 1)?.as_bytes().to_vec();
    let sensor = lua.create_userdata(Sensor(Calib::parse(&buf)))?;
    let cfg = lua.create_table()?;
    for (i, b) in [config, ossh, mode].iter().enumerate() {
        // lua_pushstring of a one-byte C string: a zero byte makes it empty.
        let s: &[u8] = if *b == 0 {
            &[]
        } else {
            std::slice::from_ref(b)
        };
        cfg.raw_set(i + 1, lua.create_string(s)?)?;
    }
    Ok(MultiValue::from_iter([
        Value::UserData(sensor),
        Value::Table(cfg),
    ]))
}

fn sensor(a: &Args) -> FwResult<Calib> {
    if let Value::UserData(ud) = a.arg(1)
        && let Ok(s) = ud.borrow::<Sensor>()
    {
        return Ok(s.0);
    }
    crate::lauxlib::arg_err(1, "sensor expected")
}

fn word20(b: &[u8]) -> i64 {
    ((i64::from(b[0]) << 16 | i64::from(b[1]) << 8 | i64::from(b[2])) >> 4) & 0xfffff
}

/// `bme280_math.read(sensor, data[, altitude])`: T, P, H (and QNH) as floats.
fn read(lua: &Lua, a: Args) -> FwResult<MultiValue> {
    let c = sensor(&a)?;
    let buf = a.check_bytes(lua, 2)?.as_bytes().to_vec();
    if buf.len() != 8 && buf.len() != 6 {
        return fw_err("invalid readout data");
    }
    let mut with_qnh = a.is_number(3);
    let adc_t = word20(&buf[3..6]);
    if adc_t == 0x80000 || adc_t == 0xfffff {
        return Ok(MultiValue::new());
    }
    let (t, fine) = c.temperature(adc_t);
    let mut out = vec![Value::Number(t as f64 / 100.0)];
    let adc_p = word20(&buf[0..3]);
    let mut qfe = 0.0;
    if adc_p == 0x80000 || adc_p == 0xfffff {
        out.push(Value::Nil);
        with_qnh = false;
    } else {
        qfe = c.pressure(adc_p, fine) as f64 / 1000.0;
        out.push(Value::Number(qfe));
    }
    let adc_h = if buf.len() == 8 {
        i64::from(buf[6]) << 8 | i64::from(buf[7])
    } else {
        0x8000
    };
    if adc_h == 0x8000 || adc_h == 0xffff {
        out.push(Value::Nil);
    } else {
        out.push(Value::Number(c.humidity(adc_h, fine) as f64 / 1000.0));
    }
    if with_qnh {
        // The firmware keeps the altitude as an int32.
        let h = a.check_number(3)? as i32;
        out.push(Value::Number(qnh(qfe, f64::from(h))));
    }
    Ok(out.into_iter().collect())
}

/// Drops a leading self (the sensor object or table) for the method forms.
fn args(a: Args) -> Args {
    match a.arg(1) {
        Value::UserData(_) | Value::Table(_) => Args(a.0.into_iter().skip(1).collect()),
        _ => a,
    }
}

fn qfe2qnh(_: &Lua, a: Args) -> FwResult<MultiValue> {
    let a = args(a);
    let (qfe, h) = (a.check_number(1)?, a.check_number(2)?);
    Ok(MultiValue::from_iter([Value::Number(qnh(qfe, h))]))
}

fn altitude(_: &Lua, a: Args) -> FwResult<MultiValue> {
    let a = args(a);
    let (p, q) = (a.check_number(1)?, a.check_number(2)?);
    let h = (1.0 - (p / q).powf(1.0 / 5.25588)) / 2.25577e-5;
    Ok(MultiValue::from_iter([Value::Number(h)]))
}

fn dewpoint(_: &Lua, a: Args) -> FwResult<MultiValue> {
    let a = args(a);
    let h = a.check_number(1)? / 100.0;
    let t = a.check_number(2)?;
    let c = ln(h) + (17.67 * t) / (243.5 + t);
    Ok(MultiValue::from_iter([Value::Number(
        243.5 * c / (17.67 - c),
    )]))
}
