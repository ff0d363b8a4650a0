//! The board's buses: the I2C chips and the master's transfers to them, the expander pins that
//! are board pins, and the ADC dividers resistors make.
//!
//! A transfer goes to the chip on the bus's pins (SDA, SCL) with the address; each transfer is
//! an [`Event::I2c`] and stays in a log the test module reads. An MCP23017's pins are board
//! pins: before a read the chip is shown what its pins' nets settled to, after a write its
//! IODIR/OLAT/GPPU drive them. An ADC channel with `adc-resistor`s reads the divider they make
//! with the module's 220 kΩ/100 kΩ divider on A0 (a NodeMCU or D1 mini: 3.3 V at A0 reads 1024):
//! a pin driven high is 3.3 V through its resistor, one driven low is ground, an undriven one
//! adds nothing.

use std::borrow::Cow;

use super::{Board, Chip, Mode, Pin, Pull};
use crate::Micros;
use crate::chips::{self, BusChip, I2cChip};
use crate::i2c::{I2C_LOG, Transfer};
use crate::parts::{ADC_MAX, Kind};
use crate::spec::PartSpec;
use crate::spi::SpiPins;

fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    }
}

/// Is the spec a chip on a bus (not a pin part)?
pub(super) fn is_chip(spec: &PartSpec) -> bool {
    matches!(
        spec,
        PartSpec::Mcp23017(_)
            | PartSpec::Bme280(_)
            | PartSpec::Bh1750(_)
            | PartSpec::Ds3231(_)
            | PartSpec::Tcs34725(_)
    )
}

/// The bus chip a spec describes, if it is one.
pub(super) fn chip_from_spec(chip: Chip, spec: &PartSpec) -> Result<Option<BusChip>, String> {
    let (sda0, scl0) = chips::default_bus(chip);
    let (c, sda, scl) = match spec {
        PartSpec::Mcp23017(s) => (I2cChip::Mcp23017(chips::Mcp23017::new(s)?), s.sda, s.scl),
        PartSpec::Bme280(s) => (I2cChip::Bme280(chips::Bme280::new(s)?), s.sda, s.scl),
        PartSpec::Bh1750(s) => (I2cChip::Bh1750(chips::Bh1750::new(s)?), s.sda, s.scl),
        PartSpec::Ds3231(s) => (I2cChip::Ds3231(chips::Ds3231::new(s)?), s.sda, s.scl),
        PartSpec::Tcs34725(s) => (I2cChip::Tcs34725(chips::Tcs34725::new(s)?), s.sda, s.scl),
        _ => return Ok(None),
    };
    Ok(Some(BusChip {
        name: spec.name(),
        sda: sda.unwrap_or(sda0),
        scl: scl.unwrap_or(scl0),
        chip: c,
    }))
}

/// The D1 mini's A0 divider: 220 kΩ to TOUT, 100 kΩ from TOUT to ground.
const A0_TOP: f64 = 220_000.0;
const A0_BOTTOM: f64 = 100_000.0;
const VCC: f64 = 3.3;

impl Board {
    /// Puts a chip on its bus; an expander's pins become board pins.
    pub(super) fn add_chip(&mut self, c: BusChip) -> Result<(), String> {
        let n = self.chip.pin_count();
        for p in [c.sda, c.scl] {
            if p >= n {
                return Err(format!(
                    "pin {p} does not exist on the {} (pins 0..{})",
                    self.chip.name(),
                    n - 1
                ));
            }
        }
        if let Some(other) = self
            .chips
            .iter()
            .find(|o| (o.sda, o.scl) == (c.sda, c.scl) && o.address() == c.address())
        {
            return Err(format!(
                "address 0x{:02x} is taken by \"{}\" on the same bus",
                c.address(),
                other.name
            ));
        }
        if let I2cChip::Mcp23017(m) = &c.chip {
            let pins = m.pin_numbers();
            if *pins.start() < n || pins.clone().any(|p| self.is_pin(p)) {
                return Err(format!(
                    "its pins {}..{} overlap other pins (set pin_base)",
                    pins.start(),
                    pins.end()
                ));
            }
            let end = *pins.end() as usize + 1;
            while self.pins.len() < end {
                let i = self.pins.len();
                self.pins.push(Pin {
                    mode: Mode::Input,
                    pull: Pull::None,
                    out: false,
                    driving: false,
                    pwm: None,
                    level: false,
                    net: i,
                    history: Default::default(),
                });
            }
        }
        self.chips.push(c);
        Ok(())
    }

    /// A pin of the chip or of an expander.
    pub fn is_pin(&self, p: u8) -> bool {
        p < self.chip.pin_count()
            || self.chips.iter().any(|c| match &c.chip {
                I2cChip::Mcp23017(m) => m.pin_numbers().contains(&p),
                _ => false,
            })
    }

    /// The chips on the board's buses.
    pub fn chips(&self) -> &[BusChip] {
        &self.chips
    }

    /// The bus chip named `name`.
    pub fn chip_named(&mut self, name: &str) -> Option<&mut BusChip> {
        self.chips.iter_mut().find(|c| c.name == name)
    }

    /// The I2C transfers so far, oldest first (at most [`I2C_LOG`]).
    pub fn i2c_log(&self) -> impl Iterator<Item = &Transfer> {
        self.i2c_log.iter()
    }

    fn master(&mut self, bus: (u8, u8)) -> &mut crate::i2c::Master {
        let i = match self.masters.iter().position(|(b, _)| *b == bus) {
            Some(i) => i,
            None => {
                self.masters.push((bus, Default::default()));
                self.masters.len() - 1
            }
        };
        &mut self.masters[i].1
    }

    /// Ends the open transfer on a bus: its event and log entry, the chip's stop.
    fn end_transfer(&mut self, bus: (u8, u8), t: Micros) {
        let m = self.master(bus);
        let (open, device) = (m.open.take(), m.device.take());
        if let Some(d) = device {
            self.chips[d].device().stop(t);
            self.drive_expander(d, t);
        }
        if let Some(tr) = open {
            if self.i2c_log.len() == I2C_LOG {
                self.i2c_log.pop_front();
            }
            // The log is kept even when quiet: the test module reads it.
            super::resolve::note(&mut self.events, self.quiet, tr.event());
            self.i2c_log.push_back(tr);
        }
    }

    /// A start (or repeated start) condition on the bus with pins `sda`, `scl`.
    pub fn i2c_start(&mut self, sda: u8, scl: u8, t: Micros) {
        self.end_transfer((sda, scl), t);
        self.master((sda, scl)).started = true;
    }

    /// A stop condition.
    pub fn i2c_stop(&mut self, sda: u8, scl: u8, t: Micros) {
        self.end_transfer((sda, scl), t);
        self.master((sda, scl)).started = false;
    }

    /// The address byte: true when a chip acknowledged it.
    pub fn i2c_address(&mut self, sda: u8, scl: u8, address: u8, read: bool, t: Micros) -> bool {
        let bus = (sda, scl);
        if self.master(bus).open.is_some() {
            // An address byte without a new start is data to whoever listens.
            return self.i2c_write(sda, scl, address << 1 | read as u8, t);
        }
        let found = self
            .chips
            .iter()
            .position(|c| (c.sda, c.scl) == bus && c.address() == address);
        if read && let Some(d) = found {
            self.sense_expander(d, t);
        }
        let ack = match found {
            Some(d) => self.chips[d].device().begin(read, t),
            None => false,
        };
        let m = self.master(bus);
        m.device = found.filter(|_| ack);
        m.started = false;
        m.open = Some(Transfer {
            t,
            address,
            read,
            bytes: Vec::new(),
            ack: vec![ack as u8],
            bus: [sda, scl],
        });
        ack
    }

    /// A byte as a hardware master clocks it: the address byte right after a start, else data.
    pub fn i2c_byte(&mut self, sda: u8, scl: u8, byte: u8, t: Micros) -> bool {
        if self.master((sda, scl)).started {
            self.i2c_address(sda, scl, byte >> 1, byte & 1 == 1, t)
        } else {
            self.i2c_write(sda, scl, byte, t)
        }
    }

    /// A data byte from the master: true when acknowledged.
    pub fn i2c_write(&mut self, sda: u8, scl: u8, byte: u8, t: Micros) -> bool {
        let bus = (sda, scl);
        let m = self.master(bus);
        let device = m
            .device
            .filter(|_| m.open.as_ref().is_some_and(|o| !o.read));
        let ack = match device {
            Some(d) => self.chips[d].device().write(byte, t),
            None => false,
        };
        if let Some(o) = &mut self.master(bus).open {
            o.bytes.push(byte);
            o.ack.push(ack as u8);
        }
        if let Some(d) = device {
            self.drive_expander(d, t);
        }
        ack
    }

    /// A data byte to the master, which answers `ack` (false for the last byte it wants).
    pub fn i2c_read(&mut self, sda: u8, scl: u8, ack: bool, t: Micros) -> u8 {
        let bus = (sda, scl);
        let m = self.master(bus);
        let device = m.device.filter(|_| m.open.as_ref().is_some_and(|o| o.read));
        let byte = match device {
            Some(d) => {
                self.sense_expander(d, t);
                self.chips[d].device().read(t)
            }
            // Nobody drives SDA: the pull-ups make it 0xFF.
            None => 0xff,
        };
        if let Some(o) = &mut self.master(bus).open {
            o.bytes.push(byte);
            o.ack.push(ack as u8);
        }
        byte
    }

    /// Shows an expander what its pins read, or a colour sensor the light it sits over.
    fn sense_expander(&mut self, d: usize, t: Micros) {
        let levels = match &self.chips[d].chip {
            I2cChip::Mcp23017(m) => m
                .pin_numbers()
                .enumerate()
                .fold(0u16, |acc, (i, p)| acc | u16::from(self.read(p, t)) << i),
            I2cChip::Tcs34725(c) => {
                let rgb = match &c.source {
                    chips::LightSource::Led { strip, index } => self.strip_led(strip, *index),
                    chips::LightSource::Colour => None,
                };
                if let I2cChip::Tcs34725(c) = &mut self.chips[d].chip {
                    c.see(rgb);
                }
                return;
            }
            _ => return,
        };
        if let I2cChip::Mcp23017(m) = &mut self.chips[d].chip {
            m.sense(levels);
        }
    }

    /// The colour LED `index` of the strip part `strip` shows now (red, green, blue; a white
    /// channel lights all three), or `None` for no such strip or LED: the sensor reads dark.
    pub fn strip_led(&self, strip: &str, index: usize) -> Option<[u8; 3]> {
        let [r, g, b, w] = self.strip(strip)?.rgb(index)?;
        Some([
            r.saturating_add(w),
            g.saturating_add(w),
            b.saturating_add(w),
        ])
    }

    /// Drives an expander's pins as its registers say.
    fn drive_expander(&mut self, d: usize, t: Micros) {
        let I2cChip::Mcp23017(m) = &self.chips[d].chip else {
            return;
        };
        let (drives, base) = (m.pins(), m.pin_base);
        let by: Cow<'static, str> = Cow::Owned(self.chips[d].name.clone());
        for (i, dr) in drives.iter().enumerate() {
            let pin = base + i as u8;
            let p = &mut self.pins[pin as usize];
            let mode = if dr.output { Mode::Output } else { Mode::Input };
            let pull = if dr.pullup { Pull::Up } else { Pull::None };
            if (p.mode, p.pull, p.driving, p.out) == (mode, pull, dr.output, dr.high) {
                continue;
            }
            p.mode = mode;
            p.pull = pull;
            p.driving = dr.output;
            p.out = dr.high;
            let net = p.net;
            self.resolve(net, t, by.clone(), true);
        }
    }

    /// One SPI transaction of `bits` bits (`mosi` packed as [`crate::spi::pack`] does): the bits
    /// read on MISO, packed the same way. Every MAX7219 whose CS is low shifts the bits in (it
    /// has no MISO); MISO is its net: a wire from MOSI loops the bits back, a pull-up reads
    /// ones, a floating pin zeros.
    pub fn spi_transfer(&mut self, pins: SpiPins, mosi: &[u8], bits: u32, t: Micros) -> Vec<u8> {
        for p in &mut self.parts {
            if let Kind::Max7219(m) = &mut p.kind
                && m.selected()
            {
                m.clock_in(mosi, bits);
            }
        }
        let (a, b) = (
            self.pins[pins.mosi as usize].net,
            self.pins[pins.miso as usize].net,
        );
        let miso: Vec<u8> = if a == b {
            mosi.to_vec()
        } else {
            let high = self.read(pins.miso, t) == 1;
            let v = if high { u64::MAX } else { 0 };
            crate::spi::pack(v & mask(bits), bits)
        };
        super::resolve::note(
            &mut self.events,
            self.quiet,
            crate::Event::Spi {
                t,
                spi: pins.cs,
                mosi: mosi.to_vec(),
                miso: miso.clone(),
            },
        );
        miso
    }

    /// What the resistors into ADC `channel` divide to, if it has any.
    pub(super) fn ladder(&self, channel: u8) -> Option<u16> {
        let mut any = false;
        // Millman: the node's voltage is Σ(V/R) / Σ(1/R) over every path to a known voltage.
        let (mut current, mut conductance) = (0.0, 1.0 / (A0_TOP + A0_BOTTOM));
        for p in &self.parts {
            let Kind::AdcResistor {
                pin,
                channel: c,
                ohms,
            } = p.kind
            else {
                continue;
            };
            if c != channel {
                continue;
            }
            any = true;
            let d = self.strong(self.pins[pin as usize].net, 0);
            if d.low == d.high {
                continue;
            }
            let g = 1.0 / f64::from(ohms.max(1));
            conductance += g;
            if d.high {
                current += VCC * g;
            }
        }
        if !any {
            return None;
        }
        let a0 = current / conductance;
        let tout = a0 * A0_BOTTOM / (A0_TOP + A0_BOTTOM);
        Some(
            (tout * f64::from(ADC_MAX))
                .round()
                .clamp(0.0, f64::from(ADC_MAX)) as u16,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::BoardSpec;

    fn harness() -> Board {
        Board::from_spec(Chip::Esp8266, &BoardSpec::Named("test-harness".into())).unwrap()
    }

    fn write(b: &mut Board, addr: u8, bytes: &[u8], t: Micros) -> bool {
        b.i2c_start(2, 1, t);
        let mut ack = b.i2c_address(2, 1, addr, false, t);
        for x in bytes {
            ack &= b.i2c_write(2, 1, *x, t);
        }
        b.i2c_stop(2, 1, t);
        ack
    }

    #[test]
    fn a_missing_address_is_nacked_and_reads_ff() {
        let mut b = harness();
        assert!(!write(&mut b, 0x21, &[0x00], 5));
        b.i2c_start(2, 1, 6);
        assert!(!b.i2c_address(2, 1, 0x21, true, 6));
        assert_eq!(b.i2c_read(2, 1, false, 6), 0xff);
        b.i2c_stop(2, 1, 6);
        // The same address on other pins is another bus.
        b.i2c_start(3, 4, 7);
        assert!(!b.i2c_address(3, 4, 0x20, false, 7));
        let log: Vec<_> = b
            .i2c_log()
            .map(|t| serde_json::to_string(&t.event()).unwrap())
            .collect();
        assert_eq!(
            log,
            [
                r#"{"t":5,"i2c":33,"write":[0],"ack":[0,0],"bus":[2,1]}"#,
                r#"{"t":6,"i2c":33,"read":[255],"ack":[0,0],"bus":[2,1]}"#,
            ]
        );
    }

    #[test]
    fn the_expander_drives_and_reads_the_chips_pins_through_the_resistors() {
        let mut b = harness();
        assert!(write(&mut b, 0x20, &[0x01, 0x7f], 0)); // GPB7 an output
        assert!(write(&mut b, 0x20, &[0x15, 0x80], 10));
        assert_eq!(b.read(8, 10), 1);
        assert!(write(&mut b, 0x20, &[0x15, 0x00], 20));
        assert_eq!(b.read(8, 20), 0);
        b.set_mode(7, Mode::Output, Pull::None, 30);
        b.write(7, true, 30);
        assert!(write(&mut b, 0x20, &[0x13], 30));
        b.i2c_start(2, 1, 31);
        assert!(b.i2c_address(2, 1, 0x20, true, 31));
        assert_eq!(b.i2c_read(2, 1, false, 31) & 0x40, 0x40);
        b.i2c_stop(2, 1, 31);
    }

    #[test]
    fn the_adc_ladder_gives_four_steps() {
        let mut b = harness();
        assert_eq!(b.adc(0), 0);
        write(&mut b, 0x20, &[0x01, 0xfc], 0);
        let mut got = Vec::new();
        for v in 0..4u8 {
            write(&mut b, 0x20, &[0x15, v], 1);
            got.push(b.adc(0));
        }
        assert_eq!(got, [0, 335, 716, 1024]);
    }
}

#[cfg(test)]
mod spec_tests {
    use super::*;
    use crate::spec::BoardSpec;

    #[derive(Debug, serde::Deserialize)]
    struct File {
        board: BoardSpec,
    }

    fn board(toml_text: &str) -> Result<Board, String> {
        let f: File = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        Board::from_spec(Chip::Esp8266, &f.board)
    }

    #[test]
    fn chip_parts_check_their_keys_addresses_and_pins() {
        let e = board("[[board.part]]\nkind = \"bme280\"\ntemprature = 3\n").unwrap_err();
        assert!(e.contains("unknown field `temprature`"), "{e}");
        let e = board("[[board.part]]\nkind = \"bme280\"\naddress = 0x20\n").unwrap_err();
        assert_eq!(
            e,
            "board part 1 (bme280): address 0x20 is not one this chip can have (0x76, 0x77)"
        );
        let e = board("[[board.part]]\nkind = \"mcp23017\"\npin_base = 5\n").unwrap_err();
        assert_eq!(
            e,
            "board part 1 (mcp23017): its pins 5..20 overlap other pins (set pin_base)"
        );
        let e = board("[[board.part]]\nkind = \"bh1750\"\n[[board.part]]\nkind = \"bh1750\"\n")
            .unwrap_err();
        assert_eq!(
            e,
            "board part 2 (bh1750): address 0x23 is taken by \"bh1750\" on the same bus"
        );
        let e = board("[[board.part]]\nkind = \"ds3231\"\nstart = \"2026-13-01 00:00:00\"\n")
            .unwrap_err();
        assert!(e.contains("is not a time the DS3231 can hold"), "{e}");
        let e = board("[[board.part]]\nkind = \"led\"\npin = 116\n").unwrap_err();
        assert!(e.contains("pin 116 does not exist"), "{e}");
        // Two expanders side by side, an LED on the second one's GPB7.
        let b = board(
            "[[board.part]]\nkind = \"mcp23017\"\n[[board.part]]\nkind = \"mcp23017\"\n\
             address = 0x21\npin_base = 116\n[[board.part]]\nkind = \"led\"\npin = 131\n",
        )
        .unwrap();
        assert_eq!(b.chips().len(), 2);
        let e = board("[[board.part]]\nkind = \"bme280\"\nreadings = [ { at = 5, lux = 3 } ]\n")
            .unwrap_err();
        assert!(e.contains("this part has no reading \"lux\""), "{e}");
    }
}
