//! 1-Wire: the bus on a pin, the DS18B20 thermometer that sits on it, and the master's side of
//! the protocol (the ROM search and the CRCs) as the firmware's `onewire.c` drives it.
//!
//! The bus is modelled at the level of its time slots: a reset (answered by every device's
//! presence pulse), a write slot and a read slot. A read slot reads low when any device pulls
//! it low (the wire is an AND of the devices' outputs), which is what makes the ROM search work:
//! every device still in the search answers each ROM bit and its complement at once, and the
//! master sees which values are present. Each device is its own state machine over those slots
//! (ROM command, function command, data), so a script's byte sequence gets the chip's answers
//! and a wrong sequence gets silence (all ones), as on a real bus.

use serde::Deserialize;

use crate::Micros;
use crate::sensor::{ReadingAt, Readings, Sensor, set_within};

/// `kind = "ds18b20"`: a DS18B20 on a 1-Wire bus.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ds18b20Spec {
    pub pin: u8,
    pub name: Option<String>,
    /// The 64-bit ROM code as 16 hex digits, family code first (`"28ff641e8216034b"`, colons
    /// allowed); its CRC byte must be right. Default: family 0x28 and a serial made from the
    /// part's name, with its CRC.
    pub rom: Option<String>,
    /// °C from boot (default 20).
    pub temperature: Option<f64>,
    /// Later temperatures: `[{ at = ms, value = °C }, ...]`.
    #[serde(default)]
    pub temperatures: Vec<ReadingAt>,
    /// Powered from the data line: it answers "Read Power Supply" with 0.
    #[serde(default)]
    pub parasite: bool,
}

/// The Dallas/Maxim CRC-8 (polynomial x^8 + x^5 + x^4 + 1, reflected) of ROM codes and
/// scratchpads.
pub fn crc8(data: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &b in data {
        let mut b = b;
        for _ in 0..8 {
            let mix = (crc ^ b) & 1;
            crc >>= 1;
            if mix != 0 {
                crc ^= 0x8C;
            }
            b >>= 1;
        }
    }
    crc
}

/// The 1-Wire CRC-16 (x^16 + x^15 + x^2 + 1, reflected) continuing from `crc`, as devices with
/// 16-bit CRCs (DS2406, DS2438 memory pages) send it inverted.
pub fn crc16(data: &[u8], mut crc: u16) -> u16 {
    for &b in data {
        let mut b = b;
        for _ in 0..8 {
            let mix = (crc ^ u16::from(b)) & 1;
            crc >>= 1;
            if mix != 0 {
                crc ^= 0xA001;
            }
            b >>= 1;
        }
    }
    crc
}

/// What the master does on the wire: a reset with its presence answer, and single slots.
pub trait OneWireBus {
    /// True when a device answered with a presence pulse.
    fn reset(&mut self) -> bool;
    fn write_bit(&mut self, bit: bool);
    fn read_bit(&mut self) -> bool;

    /// A byte, least significant bit first.
    fn write_byte(&mut self, v: u8) {
        for i in 0..8 {
            self.write_bit(v >> i & 1 != 0);
        }
    }

    fn read_byte(&mut self) -> u8 {
        (0..8).fold(0, |acc, i| acc | (u8::from(self.read_bit()) << i))
    }
}

/// The master's ROM search state for one pin, as the firmware keeps it between `ow.search`
/// calls: the last ROM found and the last branch taken where devices differed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    rom: [u8; 8],
    last_discrepancy: u8,
    last_family_discrepancy: u8,
    last_device: bool,
}

/// Search ROM and Alarm Search.
const SEARCH_ROM: u8 = 0xF0;
const ALARM_SEARCH: u8 = 0xEC;

impl Search {
    /// `ow.reset_search`: the next search starts from the first device.
    pub fn reset(&mut self) {
        *self = Search::default();
    }

    /// `ow.target_search`: the next search looks for devices of `family` first.
    pub fn target(&mut self, family: u8) {
        self.rom = [family, 0, 0, 0, 0, 0, 0, 0];
        self.last_discrepancy = 64;
        self.last_family_discrepancy = 0;
        self.last_device = false;
    }

    /// The next device's ROM code, or None when the bus is empty or every device was found
    /// (the state then starts over). Devices come in the order of their ROM codes read least
    /// significant bit first, zeros before ones, as the firmware's search takes them.
    pub fn next(&mut self, bus: &mut impl OneWireBus, alarm: bool) -> Option<[u8; 8]> {
        let mut found = false;
        if !self.last_device {
            if !bus.reset() {
                self.reset_keeping_rom();
                return None;
            }
            bus.write_byte(if alarm { ALARM_SEARCH } else { SEARCH_ROM });
            let mut last_zero = 0u8;
            let mut n = 1u8;
            while n <= 64 {
                let (byte, mask) = (usize::from((n - 1) / 8), 1u8 << ((n - 1) % 8));
                let (bit, complement) = (bus.read_bit(), bus.read_bit());
                if bit && complement {
                    break; // nobody answered
                }
                let dir = if bit != complement {
                    bit
                } else {
                    // Devices differ here: retrace the last path, then take the other branch.
                    let dir = if n < self.last_discrepancy {
                        self.rom[byte] & mask != 0
                    } else {
                        n == self.last_discrepancy
                    };
                    if !dir {
                        last_zero = n;
                        if last_zero < 9 {
                            self.last_family_discrepancy = last_zero;
                        }
                    }
                    dir
                };
                if dir {
                    self.rom[byte] |= mask;
                } else {
                    self.rom[byte] &= !mask;
                }
                bus.write_bit(dir);
                n += 1;
            }
            if n > 64 {
                self.last_discrepancy = last_zero;
                self.last_device = last_zero == 0;
                found = true;
            }
        }
        // A family code of 0 is no device: the firmware treats it as the end too.
        if !found || self.rom[0] == 0 {
            self.reset_keeping_rom();
            return None;
        }
        Some(self.rom)
    }

    /// The firmware clears its flags but keeps the last ROM after a failed search.
    fn reset_keeping_rom(&mut self) {
        self.last_discrepancy = 0;
        self.last_device = false;
        self.last_family_discrepancy = 0;
    }
}

/// Conversion time at 9, 10, 11 and 12 bits (the datasheet's maxima: tCONV / 8, / 4, / 2, 1).
const CONVERSION_US: [Micros; 4] = [93_750, 187_500, 375_000, 750_000];

/// Copy Scratchpad writes the EEPROM for up to 10 ms.
const COPY_US: Micros = 10_000;

/// The scratchpad's temperature at power-up: +85 °C.
const POWER_ON_RAW: i16 = 0x0550;

/// Where a DS18B20 is in a transaction.
#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// Waits for a reset.
    Idle,
    /// Takes the ROM command's bits.
    RomCommand { byte: u8, bits: u8 },
    /// Match ROM: compares each written bit with its own ROM.
    Match { bit: u8 },
    /// Search ROM: `step` 0 sends its ROM bit, 1 its complement, 2 takes the master's choice.
    Search { bit: u8, step: u8 },
    /// Read ROM: sends its ROM.
    ReadRom { bit: u8 },
    /// Takes the function command's bits.
    Function { byte: u8, bits: u8 },
    /// Sends `data`, then ones.
    Send { data: Vec<u8>, bit: usize },
    /// Takes `want` bytes for Write Scratchpad.
    Receive { data: Vec<u8>, byte: u8, bits: u8 },
    /// Converting or copying until `until`: read slots read 0 until then, 1 after.
    Busy { until: Micros },
    /// Read Power Supply: read slots tell how it is powered.
    Power,
}

/// A DS18B20: its ROM, scratchpad, EEPROM and conversion, and the temperatures it measures.
#[derive(Debug, Clone, PartialEq)]
pub struct Ds18b20 {
    pub pin: u8,
    pub rom: [u8; 8],
    pub parasite: bool,
    pub temperatures: Readings,
    /// The scratchpad's temperature register (1/16 °C).
    raw: i16,
    th: u8,
    tl: u8,
    config: u8,
    /// What the EEPROM holds (TH, TL, configuration).
    eeprom: [u8; 3],
    /// A conversion under way: when it ends.
    converting: Option<Micros>,
    phase: Phase,
}

impl Ds18b20 {
    /// The part a spec describes; `seed` (the part's name) makes its default serial number.
    pub fn from_spec(s: &Ds18b20Spec, seed: &str) -> Result<Ds18b20, String> {
        let rom = match &s.rom {
            Some(r) => parse_rom(r)?,
            None => default_rom(0x28, seed),
        };
        let temperatures = Readings::new(s.temperature, &s.temperatures, 20.0);
        temperatures
            .within(-55.0, 125.0)
            .map_err(|v| format!("temperature {v} is outside the DS18B20's -55..125 °C"))?;
        // The factory's EEPROM: TH 75 °C, TL 70 °C, 12 bits.
        let eeprom = [0x4B, 0x46, 0x7F];
        Ok(Ds18b20 {
            pin: s.pin,
            rom,
            parasite: s.parasite,
            temperatures,
            raw: POWER_ON_RAW,
            th: eeprom[0],
            tl: eeprom[1],
            config: eeprom[2],
            eeprom,
            converting: None,
            phase: Phase::Idle,
        })
    }

    /// The resolution in bits (9..12) the configuration register sets.
    pub fn resolution(&self) -> u8 {
        9 + (self.config >> 5 & 3)
    }

    /// The nine scratchpad bytes as Read Scratchpad sends them, CRC last.
    pub fn scratchpad(&self) -> [u8; 9] {
        let [lo, hi] = self.raw.to_le_bytes();
        // Byte 6 is reserved; the chip fills it as its predecessor's COUNT REMAIN register.
        let reserved = if self.raw == POWER_ON_RAW {
            0x0C
        } else {
            0x10 - (lo & 0x0F)
        };
        let mut s = [
            lo,
            hi,
            self.th,
            self.tl,
            self.config,
            0xFF,
            reserved,
            0x10,
            0,
        ];
        s[8] = crc8(&s[..8]);
        s
    }

    /// A finished conversion puts its result into the scratchpad.
    fn settle(&mut self, t: Micros) {
        if let Some(end) = self.converting
            && t >= end
        {
            self.converting = None;
            let v = self.temperatures.at(end);
            let raw = (v * 16.0).round().clamp(-55.0 * 16.0, 125.0 * 16.0) as i16;
            // Lower resolutions leave their undefined low bits at zero.
            let drop = 12 - self.resolution();
            self.raw = raw & !((1 << drop) - 1);
        }
    }

    /// A reset pulse: every device answers it (true: a presence pulse).
    pub fn reset(&mut self, t: Micros) -> bool {
        self.settle(t);
        // A reset during a conversion leaves the conversion running.
        self.phase = Phase::RomCommand { byte: 0, bits: 0 };
        true
    }

    fn rom_bit(&self, n: u8) -> bool {
        rom_bit(&self.rom, n)
    }

    /// In alarm: the last temperature at or above TH or at or below TL.
    fn alarm(&self) -> bool {
        let whole = self.raw >> 4;
        whole >= i16::from(self.th as i8) || whole <= i16::from(self.tl as i8)
    }

    /// The master writes `bit` in a write slot.
    pub fn write_bit(&mut self, bit: bool, t: Micros) {
        self.settle(t);
        let phase = std::mem::replace(&mut self.phase, Phase::Idle);
        self.phase = match phase {
            Phase::RomCommand { byte, bits } => {
                let byte = byte | u8::from(bit) << bits;
                if bits < 7 {
                    Phase::RomCommand {
                        byte,
                        bits: bits + 1,
                    }
                } else {
                    self.rom_command(byte)
                }
            }
            Phase::Match { bit: n } if bit == self.rom_bit(n) => {
                if n == 63 {
                    Phase::Function { byte: 0, bits: 0 }
                } else {
                    Phase::Match { bit: n + 1 }
                }
            }
            Phase::Search { bit: n, step: 2 } if bit == self.rom_bit(n) => {
                if n == 63 {
                    Phase::Function { byte: 0, bits: 0 }
                } else {
                    Phase::Search {
                        bit: n + 1,
                        step: 0,
                    }
                }
            }
            Phase::Function { byte, bits } => {
                let byte = byte | u8::from(bit) << bits;
                if bits < 7 {
                    Phase::Function {
                        byte,
                        bits: bits + 1,
                    }
                } else {
                    self.function(byte, t)
                }
            }
            Phase::Receive {
                mut data,
                byte,
                bits,
            } => {
                let byte = byte | u8::from(bit) << bits;
                if bits < 7 {
                    Phase::Receive {
                        data,
                        byte,
                        bits: bits + 1,
                    }
                } else {
                    data.push(byte);
                    if data.len() == 3 {
                        self.th = data[0];
                        self.tl = data[1];
                        // Only R1 and R0 are writable; the other bits read as the chip fixes them.
                        self.config = data[2] & 0x60 | 0x1F;
                        Phase::Idle
                    } else {
                        Phase::Receive {
                            data,
                            byte: 0,
                            bits: 0,
                        }
                    }
                }
            }
            // A write slot of 1 is a read slot to a device that is sending: it reads the same.
            p @ (Phase::Send { .. } | Phase::Busy { .. } | Phase::Power) => p,
            // A mismatch, or a slot where the device expected none, takes it off the bus.
            _ => Phase::Idle,
        };
    }

    /// A read slot: false when the device pulls the line low.
    pub fn read_bit(&mut self, t: Micros) -> bool {
        self.settle(t);
        match &mut self.phase {
            Phase::Search { bit, step } if *step < 2 => {
                let b = rom_bit(&self.rom, *bit) ^ (*step == 1);
                *step += 1;
                b
            }
            Phase::ReadRom { bit } => {
                let n = *bit;
                let b = rom_bit(&self.rom, n);
                self.phase = if n == 63 {
                    Phase::Function { byte: 0, bits: 0 }
                } else {
                    Phase::ReadRom { bit: n + 1 }
                };
                b
            }
            Phase::Send { data, bit } => {
                let b = data.get(*bit / 8).is_none_or(|v| v >> (*bit % 8) & 1 != 0);
                *bit += 1;
                b
            }
            Phase::Busy { until } => t >= *until,
            Phase::Power => !self.parasite,
            Phase::Idle => true,
            _ => {
                self.phase = Phase::Idle;
                true
            }
        }
    }

    fn rom_command(&mut self, cmd: u8) -> Phase {
        match cmd {
            0x33 => Phase::ReadRom { bit: 0 },
            0x55 => Phase::Match { bit: 0 },
            0xCC => Phase::Function { byte: 0, bits: 0 },
            SEARCH_ROM => Phase::Search { bit: 0, step: 0 },
            ALARM_SEARCH if self.alarm() => Phase::Search { bit: 0, step: 0 },
            _ => Phase::Idle,
        }
    }

    fn function(&mut self, cmd: u8, t: Micros) -> Phase {
        match cmd {
            0x44 => {
                let end = t + CONVERSION_US[usize::from(self.resolution() - 9)];
                self.converting = Some(end);
                Phase::Busy { until: end }
            }
            0xBE => Phase::Send {
                data: self.scratchpad().to_vec(),
                bit: 0,
            },
            0x4E => Phase::Receive {
                data: Vec::new(),
                byte: 0,
                bits: 0,
            },
            0x48 => {
                self.eeprom = [self.th, self.tl, self.config];
                Phase::Busy { until: t + COPY_US }
            }
            0xB8 => {
                [self.th, self.tl, self.config] = self.eeprom;
                Phase::Busy { until: t }
            }
            0xB4 => Phase::Power,
            _ => Phase::Idle,
        }
    }
}

fn rom_bit(rom: &[u8; 8], n: u8) -> bool {
    rom[usize::from(n / 8)] >> (n % 8) & 1 != 0
}

impl Sensor for Ds18b20 {
    fn set_temperature(&mut self, t: Micros, value: f64) -> Result<(), String> {
        set_within(
            &mut self.temperatures,
            t,
            value,
            (-55.0, 125.0),
            "temperature",
        )
    }

    fn set_humidity(&mut self, _: Micros, _: f64) -> Result<(), String> {
        Err("a DS18B20 measures no humidity".into())
    }
}

/// `"28ff641e8216034b"` or `"28:FF:64:..."`: eight bytes whose last is the CRC of the others.
fn parse_rom(s: &str) -> Result<[u8; 8], String> {
    let hex: String = s.chars().filter(|c| *c != ':' && *c != '-').collect();
    let bad = || format!("rom \"{s}\" is not 8 bytes of hex");
    if hex.len() != 16 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut rom = [0u8; 8];
    for (i, b) in rom.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).map_err(|_| bad())?;
    }
    let crc = crc8(&rom[..7]);
    if crc != rom[7] {
        return Err(format!(
            "rom \"{s}\" has CRC byte {:02x}, its CRC is {crc:02x}",
            rom[7]
        ));
    }
    Ok(rom)
}

/// Family `family`, a 48-bit serial hashed from `seed` (FNV-1a), and the CRC.
pub fn default_rom(family: u8, seed: &str) -> [u8; 8] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut rom = [0u8; 8];
    rom[0] = family;
    rom[1..7].copy_from_slice(&h.to_le_bytes()[..6]);
    rom[7] = crc8(&rom[..7]);
    rom
}

/// The ROM as the trace and the test module show it: 16 hex digits.
pub fn rom_hex(rom: &[u8; 8]) -> String {
    rom.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[path = "onewire_tests.rs"]
mod tests;
