//! `spi` on the ESP32 (`--target esp32`): the dev-esp32 firmware's SPI master objects over
//! ESP-IDF's driver, on the same board bus as the ESP8266 form (`Board::spi_transfer`), so a
//! loopback wire or a part answers both and each transfer is one `--trace` line.
//!
//! `spi.master(host[, config[, dma]])` gives a bus object (`spi.master`), `bus:device(config)`
//! a device (`spi.device`) and `device:transfer(...)` one transaction: command, address and
//! dummy bits, then the data, at the device's clock. The IDF's answers the firmware turns into
//! its own errors are kept: a host already initialized, SPI1, a pin that is no GPIO (`bus init
//! failed`); a fourth device or a zero clock (`failed to add device`); DIO/QIO on a full-duplex
//! device or more bytes read than sent in full duplex (`transfer failed`). Objects are freed by
//! `close`/`remove` only, not by the collector.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use board::SpiPins;
use mlua::{Lua, Table, Value};

use crate::devboard::DeviceBoard;
use crate::handle_type;
use crate::lauxlib::{Args, FwResult, arg_check, arg_err, bind, binding_name, fw_err, typename};
use crate::modules::{module_table, register_methods};
use crate::runtime::Runtime;

const HOST_TYPE: &str = "spi.master";
const DEVICE_TYPE: &str = "spi.device";
/// `SPI1_HOST`, `SPI2_HOST` (HSPI), `SPI3_HOST` (VSPI).
const SPI1: i64 = 0;
const SPI2: i64 = 1;
const SPI3: i64 = 2;
/// `SPI_MASTER_FREQ_80M`.
const FREQ_MAX: i64 = 80_000_000;
/// The IDF's largest transfer on a bus with DMA (its default `max_transfer_sz`) and without.
const MAX_DMA_TRANSFER: usize = 4092;
const MAX_TRANSFER: usize = 64;
/// The IDF's chip selects per bus.
const MAX_DEVICES: usize = 3;

/// An initialized bus: its pins (-1 unused), DMA channel and the devices on it.
#[derive(Clone, Copy)]
struct Bus {
    sclk: i64,
    mosi: i64,
    miso: i64,
    dma: i64,
    devices: usize,
}

/// The hosts' buses, shared by every object.
struct Hosts(RefCell<[Option<Bus>; 3]>);

/// A bus object: the host it stands for, -1 once closed.
#[derive(Clone)]
struct Master(Rc<RefCell<i64>>);
handle_type!(Master, HOST_TYPE);

/// A device's settings, None once removed.
#[derive(Clone, Copy)]
struct Dev {
    host: usize,
    cs: i64,
    freq: i64,
    command_bits: u32,
    address_bits: u32,
    dummy_bits: u32,
    tx_lsb_first: bool,
    rx_lsb_first: bool,
    halfduplex: bool,
}

#[derive(Clone)]
struct Device(Rc<RefCell<Option<Dev>>>);
handle_type!(Device, DEVICE_TYPE);

/// `GPIO_IS_VALID_GPIO`, and `GPIO_IS_VALID_OUTPUT_GPIO` for the pins the master drives.
fn gpio(pin: i64, output: bool) -> bool {
    let top = if output { 34 } else { 40 };
    pin == -1 || ((0..top).contains(&pin) && ![20, 24, 28, 29, 30, 31].contains(&pin))
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let db = DeviceBoard::get(rt).map_err(mlua::Error::runtime)?;
    let hosts = Rc::new(Hosts(RefCell::new([None; 3])));
    let h = hosts.clone();
    let close = bind(lua, move |_, a| {
        let (_, m) = a.check_udata::<Master>(1, HOST_TYPE)?;
        let mut host = m.0.borrow_mut();
        if let Ok(i) = usize::try_from(*host) {
            // `spi_bus_free` refuses a bus with devices; the object forgets its host anyway.
            let mut buses = h.0.borrow_mut();
            if buses[i].is_some_and(|b| b.devices == 0) {
                buses[i] = None;
            }
            *host = -1;
        }
        Ok(())
    })?;
    let h = hosts.clone();
    let device = bind(lua, move |lua, a| device(lua, &h, &a))?;
    register_methods(lua, HOST_TYPE, vec![("device", device), ("close", close)])?;
    let h = hosts.clone();
    let remove = bind(lua, move |_, a| {
        let (_, d) = a.check_udata::<Device>(1, DEVICE_TYPE)?;
        if let Some(dev) = d.0.borrow_mut().take()
            && let Some(b) = h.0.borrow_mut()[dev.host].as_mut()
        {
            b.devices -= 1;
        }
        Ok(())
    })?;
    let (h, r) = (hosts.clone(), rt.clone());
    let transfer = bind(lua, move |lua, a| transfer(lua, &r, &db, &h, &a))?;
    register_methods(
        lua,
        DEVICE_TYPE,
        vec![("transfer", transfer), ("remove", remove)],
    )?;
    let h = hosts;
    let master = bind(lua, move |_, a| master(&h, &a))?;
    let t = module_table(lua, vec![("master", master)])?;
    for (k, v) in [
        ("SPI", SPI1),
        ("HSPI", SPI2),
        ("VSPI", SPI3),
        ("SPI1", SPI1),
        ("SPI2", SPI2),
        ("SPI3", SPI3),
    ] {
        t.set(k, v)?;
    }
    lua.globals().set("spi", t)
}

fn opt_error<T>(lua: &Lua, name: &str, msg: &str) -> FwResult<T> {
    fw_err(format!(
        "bad option {name} to '{}' ({msg})",
        binding_name(lua)
    ))
}

/// `opt_get`: a field of the options table of the wanted type, None when nil.
fn opt_get(lua: &Lua, t: &Table, name: &str, want: &str) -> FwResult<Option<Value>> {
    let v: Value = t.get(name)?;
    if v.is_nil() {
        return Ok(None);
    }
    let got = typename(&v);
    if got != want {
        return opt_error(lua, name, &format!("{want} expected, got {got}"));
    }
    Ok(Some(v))
}

/// `opt_checkint`.
fn opt_int(lua: &Lua, t: &Table, name: &str, default: i64) -> FwResult<i64> {
    Ok(match opt_get(lua, t, name, "number")? {
        Some(Value::Integer(i)) => i64::from(i as i32),
        Some(Value::Number(x)) => i64::from(x as i32),
        _ => default,
    })
}

/// `opt_checkint_range`: the default too must be in range, which makes a field mandatory.
fn opt_range(lua: &Lua, t: &Table, name: &str, default: i64, lo: i64, hi: i64) -> FwResult<i64> {
    let v = opt_int(lua, t, name, default)?;
    if !(lo..=hi).contains(&v) {
        return opt_error(lua, name, &format!("must be in range {lo}-{hi}"));
    }
    Ok(v)
}

fn opt_bool(lua: &Lua, t: &Table, name: &str) -> FwResult<bool> {
    Ok(matches!(
        opt_get(lua, t, name, "boolean")?,
        Some(Value::Boolean(true))
    ))
}

/// `spi.master(host[, config[, dma]])`: without a config table, an object for a host set up
/// elsewhere.
fn master(hosts: &Hosts, a: &Args) -> FwResult<Master> {
    let host = i64::from(a.check_integer(1)? as i32);
    // The firmware tests SPI2 twice and never SPI3.
    arg_check(host == SPI1 || host == SPI2, 1, "invalid host")?;
    let Value::Table(t) = a.get(2) else {
        return Ok(Master(Rc::new(RefCell::new(host))));
    };
    let lua_pins = |name| -> FwResult<i64> {
        let v: Value = t.get(name)?;
        match v {
            Value::Nil => Ok(-1),
            Value::Integer(i) => Ok(i64::from(i as i32)),
            Value::Number(x) => Ok(i64::from(x as i32)),
            other => fw_err(format!(
                "bad option {name} to 'master' (number expected, got {})",
                typename(&other)
            )),
        }
    };
    let (sclk, mosi, miso) = (lua_pins("sclk")?, lua_pins("mosi")?, lua_pins("miso")?);
    let (wp, hd) = (lua_pins("quadwp")?, lua_pins("quadhd")?);
    let dma = i64::from(a.opt_integer(3, 1)? as i32);
    arg_check((0..=2).contains(&dma), 3, "out of range")?;
    let mut buses = hosts.0.borrow_mut();
    let i = host as usize;
    let pins_ok = gpio(sclk, true) && gpio(mosi, true) && gpio(miso, false);
    if host == SPI1 || buses[i].is_some() || !pins_ok || !gpio(wp, true) || !gpio(hd, true) {
        return fw_err("bus init failed");
    }
    buses[i] = Some(Bus {
        sclk,
        mosi,
        miso,
        dma,
        devices: 0,
    });
    Ok(Master(Rc::new(RefCell::new(host))))
}

/// `bus:device(config)`: `mode` and `freq` are mandatory.
fn device(lua: &Lua, hosts: &Hosts, a: &Args) -> FwResult<Device> {
    let (_, m) = a.check_udata::<Master>(1, HOST_TYPE)?;
    let host = *m.0.borrow();
    arg_check(host >= 0, 1, "no active bus host")?;
    let Value::Table(t) = a.get(2) else {
        let got = if a.len() < 2 {
            "no value"
        } else {
            typename(a.arg(2))
        };
        return arg_err(2, format!("table expected, got {got}"));
    };
    opt_range(lua, &t, "mode", -1, 0, 3)?;
    let freq = opt_range(lua, &t, "freq", -1, 0, FREQ_MAX)?;
    let cs = opt_int(lua, &t, "cs", -1)?;
    // The IDF keeps these as bytes.
    let mut bits = [0u32; 3];
    for (b, name) in bits
        .iter_mut()
        .zip(["command_bits", "address_bits", "dummy_bits"])
    {
        *b = u32::from(opt_int(lua, &t, name, 0)? as u8);
    }
    for name in ["cs_ena_pretrans", "cs_ena_posttrans", "duty_cycle_pos"] {
        opt_int(lua, &t, name, 0)?;
    }
    let tx_lsb_first = opt_bool(lua, &t, "tx_lsb_first")?;
    let rx_lsb_first = opt_bool(lua, &t, "rx_lsb_first")?;
    opt_bool(lua, &t, "wire3")?;
    opt_bool(lua, &t, "positive_cs")?;
    let halfduplex = opt_bool(lua, &t, "halfduplex")?;
    opt_bool(lua, &t, "clk_as_cs")?;
    if cs >= 0 && !gpio(cs, true) {
        return fw_err("failed to configure gpio");
    }
    let mut buses = hosts.0.borrow_mut();
    let Some(bus) = buses[host as usize].as_mut() else {
        return fw_err("failed to add device");
    };
    if bus.devices == MAX_DEVICES || freq == 0 {
        return fw_err("failed to add device");
    }
    bus.devices += 1;
    Ok(Device(Rc::new(RefCell::new(Some(Dev {
        host: host as usize,
        cs,
        freq,
        command_bits: bits[0].min(16),
        address_bits: bits[1].min(64),
        dummy_bits: bits[2],
        tx_lsb_first,
        rx_lsb_first,
        halfduplex,
    })))))
}

/// `dev:transfer(data)` or `dev:transfer({cmd, addr, rxlen, addr_mode, mode, txdata})`: the
/// bytes read in the data phase.
fn transfer(
    lua: &Lua,
    rt: &Runtime,
    db: &DeviceBoard,
    hosts: &Hosts,
    a: &Args,
) -> FwResult<mlua::LuaString> {
    let (_, d) = a.check_udata::<Device>(1, DEVICE_TYPE)?;
    let dev = *d.0.borrow();
    let Some(dev) = dev else {
        return arg_err(1, "no device");
    };
    let (mut cmd, mut addr, mut wide) = (0i64, 0i64, false);
    let (tx, rx_len) = match a.get(2) {
        Value::String(s) => {
            let s = s.as_bytes().to_vec();
            let n = s.len();
            (s, n)
        }
        Value::Table(t) => {
            cmd = opt_int(lua, &t, "cmd", 0)?;
            addr = opt_int(lua, &t, "addr", 0)?;
            let rx = opt_int(lua, &t, "rxlen", 0)?;
            opt_bool(lua, &t, "addr_mode")?;
            match t.get::<Value>("mode")? {
                Value::Nil => {}
                Value::String(m) if &*m.as_bytes() == b"std" => {}
                Value::String(m) if [&b"dio"[..], b"qio"].contains(&&*m.as_bytes()) => wide = true,
                // `luaL_checkoption` on the field at the stack's top: argument #-1.
                Value::String(m) => {
                    return bad_minus_one(
                        lua,
                        &format!("invalid option '{}'", m.to_string_lossy()),
                    );
                }
                v => return bad_minus_one(lua, &format!("string expected, got {}", typename(&v))),
            }
            let tx = match opt_get(lua, &t, "txdata", "string")? {
                Some(Value::String(s)) => s.as_bytes().to_vec(),
                _ => Vec::new(),
            };
            // A negative size reaches the driver as a huge one, which it cannot allocate.
            let Ok(rx) = usize::try_from(rx) else {
                return fw_err("no mem");
            };
            (tx, rx)
        }
        _ => return arg_err(2, "string or table expected"),
    };
    let dma = hosts.0.borrow()[dev.host].map_or(0, |b| b.dma);
    let max = if dma != 0 {
        MAX_DMA_TRANSFER
    } else {
        MAX_TRANSFER
    };
    let refused = tx.len() > max
        || rx_len > max
        || if dev.halfduplex {
            dma != 0 && !tx.is_empty() && rx_len > 0
        } else {
            wide || rx_len > tx.len()
        };
    if refused {
        return fw_err("transfer failed");
    }
    let bus = hosts.0.borrow()[dev.host];
    let rx = exchange(rt, db, bus, &dev, (cmd, addr), &tx, rx_len);
    Ok(lua.create_string(&rx)?)
}

fn bad_minus_one<T>(lua: &Lua, msg: &str) -> FwResult<T> {
    fw_err(format!(
        "bad argument #-1 to '{}' ({msg})",
        binding_name(lua)
    ))
}

/// Bits of `v`'s low `n`, most significant first.
fn bits_of(v: u64, n: u32, out: &mut Vec<bool>) {
    out.extend((0..n).rev().map(|i| v >> i & 1 != 0));
}

/// One transaction on the board: command, address, dummy and data phases (the read phase
/// after the write phase on a half-duplex device), at the device's clock.
fn exchange(
    rt: &Runtime,
    db: &DeviceBoard,
    bus: Option<Bus>,
    dev: &Dev,
    (cmd, addr): (i64, i64),
    tx: &[u8],
    rx_len: usize,
) -> Vec<u8> {
    let order = |b: u8, lsb: bool| if lsb { b.reverse_bits() } else { b };
    let mut out = Vec::new();
    bits_of(cmd as u64, dev.command_bits, &mut out);
    bits_of(addr as u64, dev.address_bits, &mut out);
    out.extend(std::iter::repeat_n(false, dev.dummy_bits as usize));
    let data_at = out.len() + if dev.halfduplex { tx.len() * 8 } else { 0 };
    for b in tx {
        bits_of(u64::from(order(*b, dev.tx_lsb_first)), 8, &mut out);
    }
    if dev.halfduplex {
        out.extend(std::iter::repeat_n(false, rx_len * 8));
    }
    let nbits = out.len();
    let ns = nbits as u64 * 1_000_000_000 / dev.freq.max(1) as u64;
    rt.pass_time_within_limit(Duration::from_nanos(ns.max(1)));
    let mut bytes = vec![0u8; nbits.div_ceil(8)];
    for (i, b) in out.iter().enumerate() {
        if *b {
            bytes[i / 8] |= 0x80 >> (i % 8);
        }
    }
    let miso: Vec<u8> = match bus {
        Some(b) if nbits > 0 && b.mosi >= 0 && b.miso >= 0 && b.sclk >= 0 => {
            let pins = SpiPins {
                mosi: b.mosi as u8,
                miso: b.miso as u8,
                sclk: b.sclk as u8,
                cs: dev.cs as u8,
            };
            let t = db.now();
            let got = db
                .board
                .borrow_mut()
                .spi_transfer(pins, &bytes, nbits as u32, t);
            db.settle();
            got
        }
        _ => Vec::new(),
    };
    let bit = |i: usize| miso.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0);
    (0..rx_len)
        .map(|k| {
            let v = (0..8).fold(0u8, |v, j| v << 1 | u8::from(bit(data_at + k * 8 + j)));
            order(v, dev.rx_lsb_first)
        })
        .collect()
}
