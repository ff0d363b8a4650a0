//! `ow`: the firmware's 1-Wire master (`ow.c` over `driver/onewire.c`) on the virtual board's
//! 1-Wire buses (`board::onewire`), where DS18B20 parts answer.
//!
//! Each reset, each call's bytes (`write_bytes`, `select` with its ROM, `read_bytes`) and each
//! search is one `--trace` line (see `board/src/board/onewire.rs`).
//!
//! Every call is a sequence of the bus's time slots, and each slot takes its device time (a
//! reset 960 µs, a bit about 70 µs, the driver's default timings), so a DS18B20's conversion
//! ends after as many milliseconds as on the board. The ROM search keeps its state per pin
//! between calls, as the firmware does. Pins are the NodeMCU index numbers 1..12 (D0 has no
//! 1-Wire, as in the firmware).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use board::onewire::{OneWireBus, Search, crc8, crc16};
use mlua::{Lua, MultiValue, Value};

use crate::devboard::{DeviceBoard, micros};
use crate::lauxlib::{Args, FwResult, arg_check, bind, fw_err, to_integer, to_number};
use crate::modules::gpio::PINS;
use crate::modules::module_table;
use crate::runtime::Runtime;

/// `LUAL_BUFFERSIZE`: the most `ow.read_bytes` reads at once.
const BUFFER_SIZE: u32 = 256;

/// The driver's default slot lengths (µs): reset low + wait + recovery; a write-1 slot, a
/// write-0 slot and a read slot.
const RESET_US: u64 = 480 + 70 + 410;
const WRITE1_US: u64 = 5 + 52;
const WRITE0_US: u64 = 65 + 5;
const READ_US: u64 = 5 + 8 + 52;

/// The bus on one pin as the firmware's driver drives it: each slot at the device time now,
/// then the slot's length passes. The ESP32 form (`ow32`) drives the same wire.
pub(crate) struct Wire<'a> {
    pub(crate) rt: &'a Runtime,
    pub(crate) db: &'a DeviceBoard,
    pub(crate) pin: u8,
}

impl Wire<'_> {
    fn pass(&self, us: u64) {
        self.rt.pass_time_within_limit(Duration::from_micros(us));
    }

    /// A reset, traced: true when a device answered with a presence pulse.
    pub(crate) fn traced_reset(&mut self) -> bool {
        let presence = self.reset();
        self.db.flush();
        presence
    }

    /// Writes `bytes` as one trace line (the time of its first slot).
    pub(crate) fn write_all(&mut self, bytes: &[u8]) {
        let t = micros(self.rt);
        bytes.iter().for_each(|b| self.write_byte(*b));
        self.db
            .board
            .borrow_mut()
            .ow_bytes(self.pin, false, bytes, t);
        self.db.flush();
    }

    /// Reads `n` bytes as one trace line.
    pub(crate) fn read_all(&mut self, n: u32) -> Vec<u8> {
        let t = micros(self.rt);
        let bytes: Vec<u8> = (0..n).map(|_| self.read_byte()).collect();
        self.db
            .board
            .borrow_mut()
            .ow_bytes(self.pin, true, &bytes, t);
        self.db.flush();
        bytes
    }

    /// The search's next step, traced: the ROM found, or none.
    pub(crate) fn traced_search(&mut self, state: &mut Search, alarm: bool) -> Option<[u8; 8]> {
        let t = micros(self.rt);
        let found = state.next(self, alarm);
        self.db
            .board
            .borrow_mut()
            .ow_search(self.pin, found.as_ref(), t);
        self.db.flush();
        found
    }
}

impl OneWireBus for Wire<'_> {
    fn reset(&mut self) -> bool {
        let r = self
            .db
            .board
            .borrow_mut()
            .ow_reset(self.pin, micros(self.rt));
        self.pass(RESET_US);
        r
    }

    fn write_bit(&mut self, bit: bool) {
        self.db
            .board
            .borrow_mut()
            .ow_write_bit(self.pin, bit, micros(self.rt));
        self.pass(if bit { WRITE1_US } else { WRITE0_US });
    }

    fn read_bit(&mut self) -> bool {
        let b = self
            .db
            .board
            .borrow_mut()
            .ow_read_bit(self.pin, micros(self.rt));
        self.pass(READ_US);
        b
    }
}

/// What every binding shares: the board, the runtime and the search state of each pin.
struct Ow {
    rt: Rc<Runtime>,
    db: Rc<DeviceBoard>,
    search: RefCell<Vec<Search>>,
}

impl Ow {
    fn wire(&self, pin: u8) -> Wire<'_> {
        Wire {
            rt: &self.rt,
            db: &self.db,
            pin,
        }
    }
}

/// `MOD_CHECK_ID(ow, id)`: pins 1..12; the id is a C `unsigned` printed with `%d`.
fn check_id(a: &Args, n: usize) -> FwResult<u8> {
    let id = a.check_integer(n)? as u32;
    if id > 0 && id < PINS {
        Ok(id as u8)
    } else {
        fw_err(format!("ow {} does not exist", id as i32))
    }
}

/// `lua_isnumber` then `lua_tointeger`: the optional power and alarm flags.
fn opt_flag(a: &Args, n: usize) -> bool {
    to_number(a.arg(n))
        .and_then(to_integer)
        .is_some_and(|v| v != 0)
}

fn range_err<T>() -> FwResult<T> {
    fw_err("wrong arg range")
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let db = DeviceBoard::get(rt).map_err(mlua::Error::runtime)?;
    let ow = Rc::new(Ow {
        rt: rt.clone(),
        db,
        search: RefCell::new(vec![Search::default(); PINS as usize]),
    });
    let with = |f: fn(&Lua, &Ow, &Args) -> FwResult<MultiValue>| {
        let o = ow.clone();
        bind(lua, move |lua, a| f(lua, &o, &a))
    };
    let t = module_table(
        lua,
        vec![
            ("setup", with(setup)?),
            ("reset", with(reset)?),
            ("skip", with(skip)?),
            ("select", with(select)?),
            ("write", with(write)?),
            ("write_bytes", with(write_bytes)?),
            ("read", with(read)?),
            ("read_bytes", with(read_bytes)?),
            ("depower", with(depower)?),
            ("reset_search", with(reset_search)?),
            ("target_search", with(target_search)?),
            ("search", with(search)?),
            ("crc8", with(crc8_)?),
            ("check_crc16", with(check_crc16)?),
            ("crc16", with(crc16_)?),
            ("set_timings", with(set_timings)?),
        ],
    )?;
    lua.globals().set("ow", t)
}

fn none() -> FwResult<MultiValue> {
    Ok(MultiValue::new())
}

fn int(v: impl Into<i64>) -> FwResult<MultiValue> {
    Ok(MultiValue::from_iter([Value::Integer(v.into())]))
}

/// `ow.setup(pin)`: D0 is refused before the range check, as in the firmware.
fn setup(_: &Lua, _: &Ow, a: &Args) -> FwResult<MultiValue> {
    if a.check_integer(1)? as u32 == 0 {
        return fw_err("no 1-wire for D0");
    }
    check_id(a, 1)?;
    none()
}

/// `ow.reset(pin)`: 1 when a device answered with a presence pulse.
fn reset(_: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_id(a, 1)?;
    int(ow.wire(pin).traced_reset())
}

fn skip(_: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_id(a, 1)?;
    ow.wire(pin).write_all(&[0xCC]);
    none()
}

/// `ow.select(pin, rom)`: the ROM as an 8-byte string or a table of 8 numbers.
fn select(lua: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_id(a, 1)?;
    let mut rom = [0u8; 8];
    match a.arg(2) {
        Value::Table(t) => {
            if t.raw_len() != 8 {
                return range_err();
            }
            for (i, b) in rom.iter_mut().enumerate() {
                let v: Value = t.raw_get(i + 1)?;
                let Some(n) = to_number(&v).and_then(to_integer) else {
                    // `luaL_checkinteger(L, -1)` on the element: the argument number is -1.
                    return fw_err(format!(
                        "bad argument #-1 to '{}' (number expected, got {})",
                        crate::lauxlib::binding_name(lua),
                        crate::lauxlib::typename(&v)
                    ));
                };
                if n > 255 {
                    return range_err();
                }
                *b = n as u8;
            }
        }
        _ => {
            let s = a.check_bytes(lua, 2)?;
            let s = s.as_bytes();
            if s.len() != 8 {
                return range_err();
            }
            rom.copy_from_slice(&s);
        }
    }
    let mut bytes = vec![0x55];
    bytes.extend_from_slice(&rom);
    ow.wire(pin).write_all(&bytes);
    none()
}

/// `ow.write(pin, v[, power])`: the power flag keeps the line driven for a parasite device,
/// which the board does not need.
fn write(_: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_id(a, 1)?;
    let v = a.check_integer(2)? as i32;
    if v > 255 {
        return range_err();
    }
    let _power = opt_flag(a, 3);
    ow.wire(pin).write_all(&[v as u8]);
    none()
}

fn write_bytes(lua: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_id(a, 1)?;
    let s = a.check_bytes(lua, 2)?;
    let _power = opt_flag(a, 3);
    let s = s.as_bytes();
    // The firmware's length is 16 bits.
    ow.wire(pin)
        .write_all(&s[..s.len().min(usize::from(u16::MAX))]);
    none()
}

fn read(_: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_id(a, 1)?;
    int(ow.wire(pin).read_all(1)[0])
}

/// `ow.read_bytes(pin, size)`: nothing at all for 0, at most `LUAL_BUFFERSIZE`.
fn read_bytes(lua: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_id(a, 1)?;
    let size = a.check_integer(2)? as u32;
    if size == 0 {
        return none();
    }
    arg_check(
        size <= BUFFER_SIZE,
        2,
        "Attempt to read too many characters",
    )?;
    let bytes = ow.wire(pin).read_all(size);
    Ok(MultiValue::from_iter([Value::String(
        lua.create_string(&bytes)?,
    )]))
}

fn depower(_: &Lua, _: &Ow, a: &Args) -> FwResult<MultiValue> {
    check_id(a, 1)?;
    none()
}

fn reset_search(_: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_id(a, 1)?;
    ow.search.borrow_mut()[usize::from(pin)].reset();
    none()
}

fn target_search(_: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_id(a, 1)?;
    let code = a.check_integer(2)? as i32;
    if code > 255 {
        return range_err();
    }
    ow.search.borrow_mut()[usize::from(pin)].target(code as u8);
    none()
}

/// `ow.search(pin[, alarm])`: the next device's ROM as an 8-byte string, or nil.
fn search(lua: &Lua, ow: &Ow, a: &Args) -> FwResult<MultiValue> {
    let pin = check_id(a, 1)?;
    let alarm = opt_flag(a, 2);
    let mut state = ow.search.borrow()[usize::from(pin)].clone();
    let found = ow.wire(pin).traced_search(&mut state, alarm);
    ow.search.borrow_mut()[usize::from(pin)] = state;
    Ok(MultiValue::from_iter([match found {
        Some(rom) => Value::String(lua.create_string(rom)?),
        None => Value::Nil,
    }]))
}

fn crc8_(lua: &Lua, _: &Ow, a: &Args) -> FwResult<MultiValue> {
    crc8_binding(lua, a)
}

/// `ow.crc8(buf)`, the same on both targets.
pub(crate) fn crc8_binding(lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    let s = a.check_bytes(lua, 1)?;
    let s = s.as_bytes();
    if s.len() > 255 {
        return range_err();
    }
    int(crc8(&s))
}

fn check_crc16(lua: &Lua, _: &Ow, a: &Args) -> FwResult<MultiValue> {
    check_crc16_binding(lua, a)
}

/// `ow.check_crc16(buf, inverted_crc0, inverted_crc1[, crc])`, the same on both targets: the
/// firmware checks the data's length (not the CRC bytes) after each of them, so a long buffer
/// fails only there.
pub(crate) fn check_crc16_binding(lua: &Lua, a: &Args) -> FwResult<MultiValue> {
    let s = a.check_bytes(lua, 1)?;
    let s = s.as_bytes();
    if s.len() > 65535 {
        return range_err();
    }
    let inv0 = a.check_integer(2)? as u8;
    if s.len() > 255 {
        return range_err();
    }
    let inv1 = a.check_integer(3)? as u8;
    let crc = to_number(a.arg(4)).and_then(to_integer).unwrap_or(0) as i32;
    if crc > 65535 {
        return range_err();
    }
    let c = !crc16(&s, crc as u16);
    Ok(MultiValue::from_iter([Value::Boolean(
        c as u8 == inv0 && (c >> 8) as u8 == inv1,
    )]))
}

fn crc16_(lua: &Lua, _: &Ow, a: &Args) -> FwResult<MultiValue> {
    let s = a.check_bytes(lua, 1)?;
    let s = s.as_bytes();
    if s.len() > 65535 {
        return range_err();
    }
    let crc = to_number(a.arg(2)).and_then(to_integer).unwrap_or(0) as i32;
    if crc > 65535 {
        return range_err();
    }
    int(crc16(&s, crc as u16))
}

/// `ow.set_timings(...)`: the board's devices answer slots of any length.
fn set_timings(_: &Lua, _: &Ow, _: &Args) -> FwResult<MultiValue> {
    none()
}
