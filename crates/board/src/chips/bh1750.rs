//! BH1750FVI, the ambient light sensor (ROHM datasheet 2011.11): one-byte opcodes (power down
//! 0x00, power on 0x01, reset 0x07, continuous H/H2/L resolution 0x10/0x11/0x13, one-time
//! 0x20/0x21/0x23, measurement time 0x40|MT[7:5] and 0x60|MT[4:0]) and a two-byte big-endian
//! result, `lux × 1.2 × MT/69` counts (twice that in H2 mode), ready once the measurement time
//! (120 ms, or 16 ms in L mode, scaled by MT/69) has passed. As real modules do, a measurement
//! opcode also works from power down.

use serde::Deserialize;

use super::{ReadingAt, Readings};
use crate::Micros;
use crate::i2c::I2cDevice;

const QUANTITIES: &[&str] = &["lux"];

/// `kind = "bh1750"`: the light in lux.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bh1750Spec {
    pub name: Option<String>,
    /// 0x23 (ADDR low, the default) or 0x5c.
    pub address: Option<u8>,
    pub sda: Option<u8>,
    pub scl: Option<u8>,
    pub lux: Option<f64>,
    #[serde(default)]
    pub readings: Vec<ReadingAt>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bh1750 {
    address: u8,
    pub readings: Readings,
    powered: bool,
    /// The measurement opcode running, and when it started.
    mode: Option<(u8, Micros)>,
    mt: u8,
    result: u16,
    /// Which byte of the result the next read gives.
    byte: usize,
}

impl Bh1750 {
    pub fn new(spec: &Bh1750Spec) -> Result<Bh1750, String> {
        let address = super::check_address(spec.address.unwrap_or(0x23), &[0x23, 0x5c])?;
        let readings = Readings::new(
            QUANTITIES,
            &[("lux", spec.lux.unwrap_or(0.0))],
            &spec.readings,
        )?;
        Ok(Bh1750 {
            address,
            readings,
            powered: false,
            mode: None,
            mt: 69,
            result: 0,
            byte: 0,
        })
    }

    fn measuring_us(&self, op: u8) -> Micros {
        let base: Micros = if op & 0x03 == 0x03 { 16_000 } else { 120_000 };
        base * Micros::from(self.mt) / 69
    }

    /// The count a measurement of `lux` gives in mode `op`.
    fn count(&self, op: u8, lux: f64) -> u16 {
        let mut c = lux.max(0.0) * 1.2 * f64::from(self.mt) / 69.0;
        match op & 0x03 {
            0x01 => c *= 2.0,
            // L resolution: 4 lx steps.
            0x03 => c = (c / 4.0).floor() * 4.0,
            _ => {}
        }
        c.round().min(65535.0) as u16
    }

    /// Brings the result up to `t`.
    fn update(&mut self, t: Micros) {
        let Some((op, start)) = self.mode else { return };
        let meas = self.measuring_us(op);
        if t < start + meas {
            return;
        }
        if op & 0x20 != 0 {
            // One-time: measure once, then power down.
            self.result = self.count(op, self.readings.at("lux", start + meas));
            self.mode = None;
            self.powered = false;
        } else {
            let done = start + (t - start) / meas * meas;
            self.result = self.count(op, self.readings.at("lux", done));
        }
    }
}

impl I2cDevice for Bh1750 {
    fn address(&self) -> u8 {
        self.address
    }

    fn begin(&mut self, read: bool, t: Micros) -> bool {
        if read {
            self.update(t);
            self.byte = 0;
        }
        true
    }

    fn write(&mut self, op: u8, t: Micros) -> bool {
        self.update(t);
        match op {
            0x00 => {
                self.powered = false;
                self.mode = None;
            }
            0x01 => self.powered = true,
            0x07 if self.powered => self.result = 0,
            0x10 | 0x11 | 0x13 | 0x20 | 0x21 | 0x23 => {
                self.powered = true;
                self.mode = Some((op, t));
            }
            0x40..=0x47 => self.mt = (self.mt & 0x1f) | (op & 0x07) << 5,
            0x60..=0x7f => self.mt = (self.mt & 0xe0) | (op & 0x1f),
            _ => {}
        }
        true
    }

    fn read(&mut self, t: Micros) -> u8 {
        // The result register is latched when its first byte goes out.
        if self.byte == 0 {
            self.update(t);
        }
        let v = if self.byte == 0 {
            (self.result >> 8) as u8
        } else {
            self.result as u8
        };
        self.byte = (self.byte + 1) % 2;
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h_mode_counts_are_lux_times_1_2_after_120_ms() {
        let mut c = Bh1750::new(&Bh1750Spec {
            name: None,
            address: None,
            sda: None,
            scl: None,
            lux: Some(500.0),
            readings: vec![],
        })
        .unwrap();
        c.begin(false, 0);
        c.write(0x10, 0);
        c.begin(true, 119_999);
        assert_eq!([c.read(0), c.read(0)], [0, 0]);
        c.begin(true, 120_000);
        assert_eq!([c.read(0), c.read(0)], [0x02, 0x58]); // 600
        c.readings.set("lux", 100.0, 200_000).unwrap();
        c.begin(false, 300_000);
        c.write(0x21, 300_000); // one-time H2
        c.begin(true, 420_000);
        assert_eq!([c.read(0), c.read(0)], [0x00, 240]);
        c.begin(false, 430_000);
        c.write(0x13, 430_000); // continuous L: 120 counts, in 4 lx steps
        c.begin(true, 446_000);
        assert_eq!([c.read(0), c.read(0)], [0x00, 120]);
    }
}
