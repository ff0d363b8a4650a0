//! TCS34725, the colour light-to-digital converter (ams TCS3472 datasheet): the command byte
//! (bit 7 set; bits 6:5 repeated-byte 00, auto-increment 01, special function 11; bits 4:0 the
//! register), ENABLE (PON, AEN), ATIME, WTIME, thresholds, PERS, CONFIG, CONTROL (gain 1/4/16/60),
//! ID 0x44, STATUS (AVALID once an integration finished) and the four 16-bit channels.
//!
//! What it sees comes from a [`LightSource`]: a colour the file or the test module sets (`red`,
//! `green`, `blue`, each 0..255), or the LED of a strip it sits over (the board fills that in).
//! A channel counts `value × cycles × gain / 4` (clear: the sum of the three), up to the
//! datasheet's maximum of `1024 × cycles` and 65535. Integration takes `(256 − ATIME) × 2.4 ms`
//! after the 2.4 ms power-on wait; data registers show the last finished integration.

use serde::Deserialize;

use super::{ReadingAt, Readings};
use crate::Micros;
use crate::i2c::I2cDevice;

pub const ID: u8 = 0x44;
const CYCLE_US: Micros = 2400;

const QUANTITIES: &[&str] = &["red", "green", "blue"];

/// What the sensor looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum LightSource {
    /// Its own readings (`red`, `green`, `blue`).
    Colour,
    /// LED `index` (0-based) of the strip part named `strip`.
    Led { strip: String, index: usize },
}

/// `kind = "tcs34725"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tcs34725Spec {
    pub name: Option<String>,
    pub sda: Option<u8>,
    pub scl: Option<u8>,
    pub red: Option<f64>,
    pub green: Option<f64>,
    pub blue: Option<f64>,
    /// `"STRIP:INDEX"`: the strip's LED it sits over, instead of a fixed colour.
    pub over: Option<String>,
    #[serde(default)]
    pub readings: Vec<ReadingAt>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tcs34725 {
    pub readings: Readings,
    pub source: LightSource,
    regs: [u8; 0x20],
    pointer: u8,
    increment: bool,
    expect_command: bool,
    /// Powered and integrating since.
    since: Option<Micros>,
    /// The colour the board last showed it (for a `Led` source).
    seen: Option<[f64; 3]>,
}

impl Tcs34725 {
    pub fn new(spec: &Tcs34725Spec) -> Result<Tcs34725, String> {
        let readings = Readings::new(
            QUANTITIES,
            &[
                ("red", spec.red.unwrap_or(0.0)),
                ("green", spec.green.unwrap_or(0.0)),
                ("blue", spec.blue.unwrap_or(0.0)),
            ],
            &spec.readings,
        )?;
        let source = match &spec.over {
            None => LightSource::Colour,
            Some(o) => {
                let bad = || format!("over \"{o}\" is not STRIP:INDEX");
                let (strip, index) = o.rsplit_once(':').ok_or_else(bad)?;
                LightSource::Led {
                    strip: strip.to_string(),
                    index: index.parse().map_err(|_| bad())?,
                }
            }
        };
        let mut regs = [0u8; 0x20];
        regs[0x01] = 0xff;
        regs[0x03] = 0xff;
        regs[0x12] = ID;
        Ok(Tcs34725 {
            readings,
            source,
            regs,
            pointer: 0,
            increment: false,
            expect_command: false,
            since: None,
            seen: None,
        })
    }

    /// The board shows it the colour of the LED it sits over.
    pub fn see(&mut self, rgb: Option<[u8; 3]>) {
        self.seen = rgb.map(|c| c.map(f64::from));
    }

    fn colour(&self, t: Micros) -> [f64; 3] {
        match (&self.source, self.seen) {
            (LightSource::Led { .. }, Some(c)) => c,
            (LightSource::Led { .. }, None) => [0.0; 3],
            (LightSource::Colour, _) => [QUANTITIES[0], QUANTITIES[1], QUANTITIES[2]]
                .map(|q| self.readings.at(q, t).clamp(0.0, 255.0)),
        }
    }

    fn integration_us(&self) -> Micros {
        Micros::from(256 - u32::from(self.regs[0x01])) * CYCLE_US
    }

    /// Brings STATUS and the data registers up to `t`.
    fn update(&mut self, t: Micros) {
        let Some(since) = self.since else { return };
        let atime = self.integration_us();
        let first = since + CYCLE_US + atime;
        if t < first {
            return;
        }
        let done = first + (t - first) / atime * atime;
        let cycles = 256 - u32::from(self.regs[0x01]);
        let gain = [1.0, 4.0, 16.0, 60.0][(self.regs[0x0f] & 3) as usize];
        let max = f64::from((1024 * cycles).min(65535));
        let c = self.colour(done);
        let count = |v: f64| (v * f64::from(cycles) * gain / 4.0).round().min(max) as u16;
        let data = [
            count(c[0] + c[1] + c[2]),
            count(c[0]),
            count(c[1]),
            count(c[2]),
        ];
        for (i, v) in data.iter().enumerate() {
            self.regs[0x14 + 2 * i] = *v as u8;
            self.regs[0x15 + 2 * i] = (*v >> 8) as u8;
        }
        self.regs[0x13] |= 0x01;
    }

    fn set(&mut self, r: u8, v: u8, t: Micros) {
        self.update(t);
        match r {
            0x00 => {
                let running = v & 0x03 == 0x03;
                if running && self.regs[0] & 0x03 != 0x03 {
                    self.since = Some(t);
                } else if !running {
                    self.since = None;
                    self.regs[0x13] &= !0x01;
                }
                self.regs[0] = v & 0x1b;
            }
            0x01 | 0x03..=0x07 | 0x0c | 0x0d | 0x0f => self.regs[r as usize] = v,
            _ => {}
        }
    }
}

impl I2cDevice for Tcs34725 {
    fn address(&self) -> u8 {
        0x29
    }

    fn begin(&mut self, read: bool, t: Micros) -> bool {
        self.expect_command = !read;
        if read {
            self.update(t);
        }
        true
    }

    fn write(&mut self, byte: u8, t: Micros) -> bool {
        if self.expect_command {
            self.expect_command = false;
            if byte & 0x80 == 0 {
                // Not a command: the chip ignores it.
                return true;
            }
            if byte & 0x60 == 0x60 {
                // Special function 0x06: clear the RGBC interrupt.
                if byte & 0x1f == 0x06 {
                    self.regs[0x13] &= !0x10;
                }
                return true;
            }
            self.pointer = byte & 0x1f;
            self.increment = byte & 0x60 == 0x20;
            return true;
        }
        self.set(self.pointer, byte, t);
        if self.increment {
            self.pointer = (self.pointer + 1) & 0x1f;
        }
        true
    }

    fn read(&mut self, _t: Micros) -> u8 {
        let v = self.regs[self.pointer as usize];
        if self.increment {
            self.pointer = (self.pointer + 1) & 0x1f;
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_then_colour_counts_after_one_integration() {
        let mut c = Tcs34725::new(&Tcs34725Spec {
            name: None,
            sda: None,
            scl: None,
            red: Some(200.0),
            green: Some(100.0),
            blue: Some(0.0),
            over: None,
            readings: vec![],
        })
        .unwrap();
        let read = |c: &mut Tcs34725, cmd: u8, n: usize, t: Micros| {
            c.begin(false, t);
            c.write(cmd, t);
            c.begin(true, t);
            (0..n).map(|_| c.read(t)).collect::<Vec<_>>()
        };
        assert_eq!(read(&mut c, 0x80 | 0x12, 1, 0), [0x44]);
        // ATIME 0xF6: 10 cycles, 24 ms; gain 4x.
        c.begin(false, 0);
        c.write(0xa0 | 0x01, 0);
        c.write(0xf6, 0);
        c.begin(false, 0);
        c.write(0x80 | 0x0f, 0);
        c.write(0x01, 0);
        c.begin(false, 0);
        c.write(0x80, 0);
        c.write(0x03, 0);
        assert_eq!(read(&mut c, 0x80 | 0x13, 1, 26_399), [0x00]);
        assert_eq!(read(&mut c, 0x80 | 0x13, 1, 26_400), [0x01]);
        // clear 3000, red 2000, green 1000, blue 0, little-endian.
        assert_eq!(
            read(&mut c, 0xa0 | 0x14, 8, 26_400),
            [0xb8, 0x0b, 0xd0, 0x07, 0xe8, 0x03, 0, 0]
        );
    }
}
