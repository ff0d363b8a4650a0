//! `bme280`: the firmware's C module for the Bosch BME280/BMP280 (the release's deprecated
//! `app/modules/bme280.c` API), talking to the part on I2C bus 0 through the same bus as the
//! `i2c` module, so the board's `bme280` part answers it as it answers a Lua driver.
//!
//! `setup` finds the chip at 0x76 or 0x77, reads its id and calibration words and writes config,
//! ctrl_hum and ctrl_meas; `read`, `temp`, `baro`, `humi` read the raw words and compensate them
//! with the datasheet's integer formulas, returning the firmware's fixed-point integers
//! (°C × 100, hPa × 1000, %RH × 1000); `startreadout` starts a forced measurement and calls back
//! after the delay on a timer; `qfe2qnh`, `altitude`, `dewpoint` are the module's arithmetic.
//! The bus must have been set up with `i2c.setup(0, ...)`, as on the board.
//!
//! Generations: 2.2.1 has this API without the deprecation note. 1.5.4.1 has `init(sda, scl,
//! ...)` instead of `setup`, which sets up bus 0 itself, and no `read`; its register reads are one
//! byte per transfer, with a stop between the register's address and the read, and its `init`
//! writes the config register with the standby and filter fields one bit low (its own shifts,
//! corrected in 2017).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use mlua::{Lua, MultiValue, Value};

use crate::config::Firmware;
use crate::lauxlib::{Args, FwResult, bind, fw_err};
use crate::modules::i2c::{I2c, master};
use crate::modules::module_table;
use crate::runtime::Runtime;

/// The firmware's default readout delay: all three at 16× oversampling, in ms.
const SAMPLING_DELAY: i64 = 113;

/// Calibration words as the module reads them.
#[derive(Default, Clone, Copy)]
pub(crate) struct Calib {
    t: [i64; 3],
    p: [i64; 9],
    h1: i64,
    h2: i64,
    h3: i64,
    h4: i64,
    h5: i64,
    h6: i64,
}

impl Calib {
    /// The words from the registers 0x88..0x9F, then (a BME280) 0xA1 and 0xE1..0xE7, as the
    /// `bme280_math` module takes them in one string; missing bytes read as 0.
    pub(crate) fn parse(buf: &[u8]) -> Calib {
        let at = |i: usize| buf.get(i).copied().unwrap_or(0);
        let u16le = |i: usize| i64::from(at(i)) | i64::from(at(i + 1)) << 8;
        let s16le = |i: usize| u16le(i) as u16 as i16 as i64;
        let mut c = Calib {
            t: [u16le(0), s16le(2), s16le(4)],
            ..Calib::default()
        };
        c.p[0] = u16le(6);
        for i in 1..9 {
            c.p[i] = s16le(6 + 2 * i);
        }
        c.h1 = i64::from(at(24));
        c.h2 = s16le(25);
        c.h3 = i64::from(at(27));
        c.h4 = i64::from(at(28)) << 4 | i64::from(at(29) & 0x0f);
        c.h5 = i64::from(at(30)) << 4 | i64::from(at(29) >> 4);
        c.h6 = i64::from(at(31) as i8);
        c
    }

    /// °C × 100 and t_fine.
    pub(crate) fn temperature(&self, adc: i64) -> (i64, i64) {
        let t = self.t;
        let var1 = (((adc >> 3) - (t[0] << 1)) * t[1]) >> 11;
        let d = (adc >> 4) - t[0];
        let var2 = (((d * d) >> 12) * t[2]) >> 14;
        let fine = var1 + var2;
        ((fine * 5 + 128) >> 8, fine)
    }

    /// hPa × 1000.
    pub(crate) fn pressure(&self, adc: i64, t_fine: i64) -> i64 {
        let p = self.p;
        let mut var1 = t_fine - 128_000;
        let mut var2 = var1 * var1 * p[5];
        var2 += (var1 * p[4]) << 17;
        var2 += p[3] << 35;
        var1 = ((var1 * var1 * p[2]) >> 8) + ((var1 * p[1]) << 12);
        var1 = (((1i64 << 47) + var1) * p[0]) >> 33;
        if var1 == 0 {
            return 0;
        }
        let mut q = 1_048_576 - adc;
        q = (((q << 31) - var2) * 3125) / var1;
        let v1 = (p[8] * (q >> 13) * (q >> 13)) >> 25;
        let v2 = (p[7] * q) >> 19;
        q = ((q + v1 + v2) >> 8) + (p[6] << 4);
        ((q * 10) >> 8) as u32 as i64
    }

    /// %RH × 1000.
    pub(crate) fn humidity(&self, adc: i64, t_fine: i64) -> i64 {
        let c = self;
        let mut v = t_fine - 76_800;
        v = ((((adc << 14) - (c.h4 << 20) - (c.h5 * v)) + 16_384) >> 15)
            * (((((((v * c.h6) >> 10) * (((v * c.h3) >> 11) + 32_768)) >> 10) + 2_097_152) * c.h2
                + 8192)
                >> 14);
        v -= ((((v >> 15) * (v >> 15)) >> 7) * c.h1) >> 4;
        v = v.clamp(0, 419_430_400) >> 12;
        (v * 1000) >> 10
    }
}

/// The QNH of a QFE at altitude `h` m.
pub(crate) fn qnh(qfe: f64, h: f64) -> f64 {
    qfe * (1.0 - 2.25577e-5 * h).powf(-5.25588)
}

/// The module's own series for ln (the firmware avoids libm's).
pub(crate) fn ln(x: f64) -> f64 {
    let y = (x - 1.0) / (x + 1.0);
    let y2 = y * y;
    let mut r = 0.0;
    let mut i = 33;
    while i > 0 {
        r = 1.0 / f64::from(i) + y2 * r;
        i -= 2;
    }
    2.0 * y * r
}

struct Bme {
    rt: Rc<Runtime>,
    bus: Rc<I2c>,
    /// 1.5.4.1's module: `init`, byte-wise reads.
    legacy: bool,
    addr: Cell<u8>,
    is_bme: Cell<bool>,
    mode: Cell<u8>,
    ossh: Cell<u8>,
    calib: Cell<Calib>,
    t_fine: Cell<i64>,
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let b = Rc::new(Bme {
        rt: rt.clone(),
        bus: master(rt)?,
        legacy: rt.cfg.firmware == Firmware::V1_5,
        addr: Cell::new(0x76),
        is_bme: Cell::new(false),
        mode: Cell::new(0),
        ossh: Cell::new(0),
        calib: Cell::new(Calib::default()),
        t_fine: Cell::new(0),
    });
    let with = |f: fn(&Bme, &Lua, &Args) -> FwResult<MultiValue>| {
        let b = b.clone();
        bind(lua, move |lua, a| f(&b, lua, &a))
    };
    let first = if b.legacy {
        ("init", with(init)?)
    } else {
        ("setup", with(setup)?)
    };
    let mut functions = vec![
        first,
        ("temp", with(temp)?),
        ("baro", with(baro)?),
        ("humi", with(humi)?),
        ("startreadout", with(startreadout)?),
        ("qfe2qnh", with(qfe2qnh)?),
        ("altitude", with(altitude)?),
        ("dewpoint", with(dewpoint)?),
    ];
    if !b.legacy {
        functions.push(("read", with(read)?));
    }
    lua.globals().set("bme280", module_table(lua, functions)?)
}

fn ints(v: &[i64]) -> MultiValue {
    v.iter().map(|x| Value::Integer(*x)).collect()
}

impl Bme {
    fn read_n(&self, reg: u8, n: usize) -> Vec<u8> {
        if self.legacy {
            return (0..n)
                .map(|i| self.r8u(reg.wrapping_add(i as u8)))
                .collect();
        }
        let (b, a) = (&self.bus, self.addr.get());
        b.start(0);
        b.address(0, a, false);
        b.send(0, reg);
        b.start(0);
        b.address(0, a, true);
        let out = (0..n).map(|i| b.recv(0, i + 1 < n)).collect();
        b.stop(0);
        out
    }

    /// 1.5.4.1's one-register read: the address written and the byte read in two transfers.
    fn r8u(&self, reg: u8) -> u8 {
        let (b, a) = (&self.bus, self.addr.get());
        b.start(0);
        b.address(0, a, false);
        b.send(0, reg);
        b.stop(0);
        b.start(0);
        b.address(0, a, true);
        let v = b.recv(0, false);
        b.stop(0);
        v
    }

    fn write(&self, reg: u8, v: u8) {
        let (b, a) = (&self.bus, self.addr.get());
        b.start(0);
        b.address(0, a, false);
        b.send(0, reg);
        b.send(0, v);
        b.stop(0);
    }

    fn probe(&self, a: u8) -> bool {
        self.bus.start(0);
        let ack = self.bus.address(0, a, false);
        self.bus.stop(0);
        ack
    }

    fn comp_t(&self, adc: i64) -> i64 {
        let (t, fine) = self.calib.get().temperature(adc);
        self.t_fine.set(fine);
        t
    }

    /// hPa × 1000.
    fn comp_p(&self, adc: i64) -> i64 {
        self.calib.get().pressure(adc, self.t_fine.get())
    }

    /// %RH × 1000.
    fn comp_h(&self, adc: i64) -> i64 {
        self.calib.get().humidity(adc, self.t_fine.get())
    }
}

fn word20(b: &[u8]) -> i64 {
    ((i64::from(b[0]) << 16 | i64::from(b[1]) << 8 | i64::from(b[2])) >> 4) & 0xfffff
}

fn opt3(a: &Args, n: usize, default: u8) -> FwResult<u8> {
    Ok(if a.is_number(n) {
        (a.check_integer(n)? & 7) as u8
    } else {
        default
    })
}

/// `bme280.setup([osrs_t, osrs_p, osrs_h, mode, t_sb, filter, full_init])`: 2 for a BME280, 1
/// for a BMP280, nothing when no chip answers.
fn setup(b: &Bme, _: &Lua, a: &Args) -> FwResult<MultiValue> {
    if b.rt.cfg.firmware >= Firmware::V3_0 {
        b.rt.print(
            b"Warning, deprecated API! bme280. It will be removed soon. Use bme280math and bme280 Lua module instead. See documentation for details.\n",
        )?;
    }
    let mode = if a.is_number(4) {
        (a.check_integer(4)? & 3) as u8
    } else {
        3
    } | opt3(a, 2, 5)? << 2
        | opt3(a, 1, 5)? << 5;
    b.mode.set(mode);
    b.ossh.set(opt3(a, 3, 5)?);
    let config = opt3(a, 5, 7)? << 5 | opt3(a, 6, 4)? << 2;
    let full = !a.is_number(7) || a.check_integer(7)? != 0;
    Ok(load(b, full.then_some(config)))
}

/// 1.5.4.1's `bme280.init(sda, scl[, osrs_t, osrs_p, osrs_h, mode, t_sb, filter])`: sets up
/// bus 0 on `sda`/`scl`, then as `setup` with every register written; 2 for a BME280, 1 for a
/// BMP280, nothing when no chip answers.
fn init(b: &Bme, _: &Lua, a: &Args) -> FwResult<MultiValue> {
    if !a.is_number(1) || !a.is_number(2) {
        return fw_err("wrong arg range");
    }
    let (sda, scl) = (a.check_integer(1)? as u8, a.check_integer(2)? as u8);
    let mode = if a.is_number(6) {
        (a.check_integer(6)? & 3) as u8
    } else {
        3
    } | opt3(a, 4, 5)? << 2
        | opt3(a, 3, 5)? << 5;
    b.mode.set(mode);
    b.ossh.set(opt3(a, 5, 5)?);
    // The 2016 shifts: t_sb at bit 4 and the filter at bit 1, not the datasheet's 5 and 2.
    let config = opt3(a, 7, 7)? << 4 | opt3(a, 8, 4)? << 1;
    b.bus.platform_setup(0, sda, scl);
    Ok(load(b, Some(config)))
}

/// What `setup` and `init` share once the settings are known: find the chip, read its id and
/// calibration, write `config` (if given), ctrl_hum and ctrl_meas (those two only with `config`).
fn load(b: &Bme, config: Option<u8>) -> MultiValue {
    let mode = b.mode.get();
    b.addr.set(0x76);
    if !b.probe(0x76) {
        b.addr.set(0x77);
        if !b.probe(0x77) {
            return MultiValue::new();
        }
    }
    let id = b.read_n(0xd0, 1)[0];
    b.is_bme.set(id == 0x60);
    let u16le = |x: &[u8], i: usize| i64::from(x[i]) | i64::from(x[i + 1]) << 8;
    let s16le = |x: &[u8], i: usize| u16le(x, i) as u16 as i16 as i64;
    let mut c = Calib::default();
    let t = b.read_n(0x88, 6);
    c.t = [u16le(&t, 0), s16le(&t, 2), s16le(&t, 4)];
    let p = b.read_n(0x8e, 18);
    c.p[0] = u16le(&p, 0);
    for i in 1..9 {
        c.p[i] = s16le(&p, 2 * i);
    }
    if let Some(config) = config {
        b.write(0xf5, config);
    }
    let r = if b.is_bme.get() {
        c.h1 = i64::from(b.read_n(0xa1, 1)[0]);
        let h = b.read_n(0xe1, 7);
        c.h2 = s16le(&h, 0);
        c.h3 = i64::from(h[2]);
        c.h4 = i64::from(h[3]) << 4 | i64::from(h[4] & 0x0f);
        c.h5 = i64::from(h[5]) << 4 | i64::from(h[4] >> 4);
        c.h6 = i64::from(h[6] as i8);
        if config.is_some() {
            b.write(0xf2, b.ossh.get());
        }
        2
    } else {
        1
    };
    b.calib.set(c);
    if config.is_some() {
        b.write(0xf4, mode);
    }
    ints(&[r])
}

/// `bme280.read([altitude])`: T, P, H (and QNH with an altitude).
fn read(b: &Bme, _: &Lua, a: &Args) -> FwResult<MultiValue> {
    let mut with_qnh = a.is_number(1);
    let d = b.read_n(0xf7, 8);
    let adc_t = word20(&d[3..6]);
    if adc_t == 0x80000 || adc_t == 0xfffff {
        return Ok(MultiValue::new());
    }
    let mut out = vec![Value::Integer(b.comp_t(adc_t))];
    let adc_p = word20(&d[0..3]);
    let mut qfe = 0;
    if adc_p == 0x80000 || adc_p == 0xfffff {
        out.push(Value::Nil);
        with_qnh = false;
    } else {
        qfe = b.comp_p(adc_p);
        out.push(Value::Integer(qfe));
    }
    let adc_h = i64::from(d[6]) << 8 | i64::from(d[7]);
    if !b.is_bme.get() || adc_h == 0x8000 || adc_h == 0xffff {
        out.push(Value::Nil);
    } else {
        out.push(Value::Integer(b.comp_h(adc_h)));
    }
    if with_qnh {
        let h = a.check_integer(1)? as i32;
        out.push(Value::Integer(
            (qnh(qfe as f64, f64::from(h)) + 0.5) as i32 as i64,
        ));
    }
    Ok(out.into_iter().collect())
}

/// `bme280.temp()`: T and t_fine.
fn temp(b: &Bme, _: &Lua, _: &Args) -> FwResult<MultiValue> {
    let d = b.read_n(0xfa, 3);
    let adc_t = word20(&d);
    if adc_t == 0x80000 || adc_t == 0xfffff {
        return Ok(MultiValue::new());
    }
    let t = b.comp_t(adc_t);
    Ok(ints(&[t, b.t_fine.get()]))
}

/// `bme280.baro()`: P and T.
fn baro(b: &Bme, _: &Lua, _: &Args) -> FwResult<MultiValue> {
    let d = b.read_n(0xf7, 6);
    let (adc_t, adc_p) = (word20(&d[3..6]), word20(&d[0..3]));
    let t = b.comp_t(adc_t);
    if [adc_t, adc_p]
        .iter()
        .any(|w| *w == 0x80000 || *w == 0xfffff)
    {
        return Ok(MultiValue::new());
    }
    Ok(ints(&[b.comp_p(adc_p), t]))
}

/// `bme280.humi()`: H and T (nothing on a BMP280).
fn humi(b: &Bme, _: &Lua, _: &Args) -> FwResult<MultiValue> {
    if !b.is_bme.get() {
        return Ok(MultiValue::new());
    }
    let d = b.read_n(0xfa, 5);
    let adc_t = word20(&d[0..3]);
    let t = b.comp_t(adc_t);
    let adc_h = i64::from(d[3]) << 8 | i64::from(d[4]);
    if adc_t == 0x80000 || adc_t == 0xfffff || adc_h == 0x8000 || adc_h == 0xffff {
        return Ok(MultiValue::new());
    }
    Ok(ints(&[b.comp_h(adc_h), t]))
}

/// `bme280.startreadout([delay_ms[, callback]])`: a forced measurement, the callback after
/// `delay` ms (0 or none: 113).
fn startreadout(b: &Bme, _: &Lua, a: &Args) -> FwResult<MultiValue> {
    let mut delay = SAMPLING_DELAY;
    if a.is_number(1) {
        delay = a.check_integer(1)?;
        if delay == 0 {
            delay = SAMPLING_DELAY;
        }
    }
    let cb = match a.arg(2) {
        Value::Nil => None,
        Value::Function(f) => Some(f.clone()),
        _ => None,
    };
    b.write(0xf2, b.ossh.get());
    b.write(0xf4, (b.mode.get() & 0xfc) | 1);
    if let Some(cb) = cb {
        let rt = Rc::downgrade(&b.rt);
        b.rt.arm_timer(
            Duration::from_millis(delay as u32 as u64),
            Box::new(move |lua| {
                if let Some(rt) = rt.upgrade() {
                    rt.call_protected(lua, &cb, ())?;
                }
                Ok(())
            }),
        );
    }
    Ok(MultiValue::new())
}

fn need_second(a: &Args) -> FwResult<()> {
    if a.is_number(2) {
        Ok(())
    } else {
        fw_err("wrong arg range")
    }
}

fn round_away(x: f64) -> i64 {
    (x + x.signum() * 0.5) as i32 as i64
}

/// `bme280.qfe2qnh(P, altitude)`.
fn qfe2qnh(_: &Bme, _: &Lua, a: &Args) -> FwResult<MultiValue> {
    need_second(a)?;
    let qfe = a.check_integer(1)? as i32;
    let h = a.check_integer(2)? as i32;
    Ok(ints(&[
        (qnh(f64::from(qfe), f64::from(h)) + 0.5) as i32 as i64
    ]))
}

/// `bme280.altitude(P, QNH)`: cm.
fn altitude(_: &Bme, _: &Lua, a: &Args) -> FwResult<MultiValue> {
    need_second(a)?;
    let p = f64::from(a.check_integer(1)? as i32);
    let q = f64::from(a.check_integer(2)? as i32);
    let h = (1.0 - (p / q).powf(1.0 / 5.25588)) / 2.25577e-5 * 100.0;
    Ok(ints(&[round_away(h)]))
}

/// `bme280.dewpoint(H, T)`: °C × 100.
fn dewpoint(_: &Bme, _: &Lua, a: &Args) -> FwResult<MultiValue> {
    need_second(a)?;
    let h = f64::from(a.check_integer(1)? as i32) / 100_000.0;
    let t = f64::from(a.check_integer(2)? as i32) / 100.0;
    let c = ln(h) + (17.67 * t) / (243.5 + t);
    let d = 243.5 * c / (17.67 - c) * 100.0;
    Ok(ints(&[round_away(d)]))
}
