//! The chips on the board's I2C bus, each a plain state machine on device time with the
//! datasheet's register map (one file per chip), and what they share: where they sit on the bus,
//! and their readings over device time.
//!
//! A chip's readings (a temperature, a lux value, a colour) come from the board file, fixed or as
//! a schedule (`readings = [ { at = ms, temperature = 25.0 } ]`), or from the test module; a chip
//! asks [`Readings::at`] for the value at the device time it measures.

use serde::Deserialize;

use crate::Micros;
use crate::board::Chip;
use crate::i2c::I2cDevice;

pub mod bh1750;
pub mod bme280;
pub mod ds3231;
pub mod mcp23017;
pub mod tcs34725;

pub use bh1750::{Bh1750, Bh1750Spec};
pub use bme280::{Bme280, Bme280Spec};
pub use ds3231::{Ds3231, Ds3231Spec};
pub use mcp23017::{Mcp23017, Mcp23017Spec};
pub use tcs34725::{LightSource, Tcs34725, Tcs34725Spec};

/// A scheduled reading in the board file: from `at` ms on, the quantities given.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadingAt {
    pub at: u64,
    pub temperature: Option<f64>,
    pub humidity: Option<f64>,
    pub pressure: Option<f64>,
    pub lux: Option<f64>,
    pub red: Option<f64>,
    pub green: Option<f64>,
    pub blue: Option<f64>,
}

impl ReadingAt {
    fn pairs(&self) -> [(&'static str, Option<f64>); 7] {
        [
            ("temperature", self.temperature),
            ("humidity", self.humidity),
            ("pressure", self.pressure),
            ("lux", self.lux),
            ("red", self.red),
            ("green", self.green),
            ("blue", self.blue),
        ]
    }
}

/// A chip's quantities over device time: each change at its time, the latest applying.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Readings {
    /// (when, quantity, value), in time order.
    changes: Vec<(Micros, &'static str, f64)>,
    quantities: &'static [&'static str],
}

impl Readings {
    /// Readings of `quantities` starting at `initial` (at time 0), then the file's schedule.
    pub(crate) fn new(
        quantities: &'static [&'static str],
        initial: &[(&'static str, f64)],
        schedule: &[ReadingAt],
    ) -> Result<Readings, String> {
        let mut r = Readings {
            changes: Vec::new(),
            quantities,
        };
        for (q, v) in initial {
            r.set(q, *v, 0)?;
        }
        for s in schedule {
            for (q, v) in s.pairs() {
                if let Some(v) = v {
                    r.set(q, v, s.at * 1000)?;
                }
            }
        }
        Ok(r)
    }

    /// `quantity` is `value` from `t` on (a test setting it now, or a scheduled change).
    pub fn set(&mut self, quantity: &str, value: f64, t: Micros) -> Result<(), String> {
        let Some(q) = self.quantities.iter().find(|q| **q == quantity) else {
            return Err(format!(
                "this part has no reading \"{quantity}\" (it has {})",
                self.quantities.join(", ")
            ));
        };
        if !value.is_finite() {
            return Err(format!("{quantity} must be a finite number"));
        }
        let i = self.changes.partition_point(|(at, _, _)| *at <= t);
        self.changes.insert(i, (t, q, value));
        Ok(())
    }

    /// The value of `quantity` at `t` (0 if never given).
    pub fn at(&self, quantity: &str, t: Micros) -> f64 {
        self.changes
            .iter()
            .rev()
            .find(|(at, q, _)| *at <= t && *q == quantity)
            .map_or(0.0, |c| c.2)
    }

    pub fn quantities(&self) -> &'static [&'static str] {
        self.quantities
    }
}

/// The kinds of I2C chip.
#[derive(Debug, Clone, PartialEq)]
pub enum I2cChip {
    Mcp23017(Mcp23017),
    Bme280(Bme280),
    Bh1750(Bh1750),
    Ds3231(Ds3231),
    Tcs34725(Tcs34725),
}

/// A chip on an I2C bus: its name, the bus pins, and the chip.
#[derive(Debug, Clone, PartialEq)]
pub struct BusChip {
    pub name: String,
    pub sda: u8,
    pub scl: u8,
    pub chip: I2cChip,
}

/// The SDA and SCL pins a chip sits on when the file does not say: NodeMCU's D2/D1 on the
/// ESP8266 (the firmware's examples), the ESP-IDF's customary GPIO 21/22 on the ESP32.
pub fn default_bus(chip: Chip) -> (u8, u8) {
    match chip {
        Chip::Esp8266 => (2, 1),
        Chip::Esp32 => (21, 22),
    }
}

impl BusChip {
    pub fn kind(&self) -> &'static str {
        match self.chip {
            I2cChip::Mcp23017(_) => "mcp23017",
            I2cChip::Bme280(_) => "bme280",
            I2cChip::Bh1750(_) => "bh1750",
            I2cChip::Ds3231(_) => "ds3231",
            I2cChip::Tcs34725(_) => "tcs34725",
        }
    }

    pub fn device(&mut self) -> &mut dyn I2cDevice {
        match &mut self.chip {
            I2cChip::Mcp23017(c) => c,
            I2cChip::Bme280(c) => c,
            I2cChip::Bh1750(c) => c,
            I2cChip::Ds3231(c) => c,
            I2cChip::Tcs34725(c) => c,
        }
    }

    pub fn address(&self) -> u8 {
        match &self.chip {
            I2cChip::Mcp23017(c) => c.address(),
            I2cChip::Bme280(c) => c.address(),
            I2cChip::Bh1750(c) => c.address(),
            I2cChip::Ds3231(c) => c.address(),
            I2cChip::Tcs34725(c) => c.address(),
        }
    }

    /// The chip's readings, where it has some.
    pub fn readings(&mut self) -> Option<&mut Readings> {
        match &mut self.chip {
            I2cChip::Mcp23017(_) => None,
            I2cChip::Bme280(c) => Some(&mut c.readings),
            I2cChip::Bh1750(c) => Some(&mut c.readings),
            I2cChip::Ds3231(c) => Some(&mut c.readings),
            I2cChip::Tcs34725(c) => Some(&mut c.readings),
        }
    }
}

/// A 7-bit address from the file.
pub(crate) fn check_address(a: u8, allowed: &[u8]) -> Result<u8, String> {
    if allowed.contains(&a) {
        Ok(a)
    } else {
        Err(format!(
            "address 0x{a:02x} is not one this chip can have ({})",
            allowed
                .iter()
                .map(|a| format!("0x{a:02x}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}
