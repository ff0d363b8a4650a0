//! The MAX7219 LED display driver (8 digits of 7 segments, or an 8×8 matrix), as a part on the
//! SPI bus with its own chip-select pin (LOAD/CS). `count` chips are daisy-chained: DOUT of
//! one into DIN of the next, so the bits the master clocks while CS is low shift through the
//! chain's 16-bit registers, and on CS's rising edge every chip latches the last 16 bits it
//! holds (D15..D0: 4 don't-care bits, the address, the data), as the datasheet's serial
//! interface does.
//!
//! The chips are numbered from DIN: chip 1 is the one the master's MOSI wires to, so of the
//! frames a master sends in one CS window, the first ends in the last chip. Each latch is one
//! `--trace` line ([`crate::Event::Max7219`]): one `[address, data]` pair per chip, from chip 1.
//!
//! ```json
//! {"t":5000,"max7219":"matrix","latch":[[1,24],[0,0]]}
//! ```
//!
//! What a chip shows ([`Max7219::rows`]) follows its registers: nothing in shutdown, every
//! segment lit in display test (which overrides shutdown), digits past the scan limit dark,
//! and Code B font on the digits decode mode selects.

use serde::Deserialize;

use crate::Micros;

/// The `[[board.part]]` table of `kind = "max7219"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Max7219Spec {
    /// The LOAD/CS pin.
    pub pin: u8,
    pub name: Option<String>,
    /// How many chips are chained.
    #[serde(default = "one")]
    pub count: u8,
}

fn one() -> u8 {
    1
}

/// The register addresses (D11..D8 of a frame).
pub const NO_OP: u8 = 0x0;
pub const DECODE_MODE: u8 = 0x9;
pub const INTENSITY: u8 = 0xA;
pub const SCAN_LIMIT: u8 = 0xB;
pub const SHUTDOWN: u8 = 0xC;
pub const DISPLAY_TEST: u8 = 0xF;

/// Code B: the segments (DP A B C D E F G, D7..D0) of 0-9, '-', 'E', 'H', 'L', 'P', blank.
const CODE_B: [u8; 16] = [
    0x7e, 0x30, 0x6d, 0x79, 0x33, 0x5b, 0x5f, 0x70, 0x7f, 0x7b, 0x01, 0x4f, 0x37, 0x0e, 0x67, 0x00,
];

/// One chip's registers; all zero at power-up (shutdown, no decode, display test off).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registers {
    pub digits: [u8; 8],
    pub decode: u8,
    pub intensity: u8,
    pub scan_limit: u8,
    /// Normal operation (the shutdown register's D0 set).
    pub on: bool,
    pub test: bool,
}

impl Registers {
    fn latch(&mut self, address: u8, data: u8) {
        match address {
            1..=8 => self.digits[usize::from(address - 1)] = data,
            DECODE_MODE => self.decode = data,
            INTENSITY => self.intensity = data & 0x0f,
            SCAN_LIMIT => self.scan_limit = data & 0x07,
            SHUTDOWN => self.on = data & 1 == 1,
            DISPLAY_TEST => self.test = data & 1 == 1,
            // No-op, and the addresses the datasheet leaves unused (0xD, 0xE).
            _ => {}
        }
    }

    /// The segments lit on each digit (0..7): a matrix's rows.
    pub fn rows(&self) -> [u8; 8] {
        let mut out = [0u8; 8];
        for (i, r) in out.iter_mut().enumerate() {
            *r = if self.test {
                0xff
            } else if !self.on || i > usize::from(self.scan_limit) {
                0
            } else if self.decode & (1 << i) != 0 {
                let d = self.digits[i];
                d & 0x80 | CODE_B[usize::from(d & 0x0f)]
            } else {
                self.digits[i]
            };
        }
        out
    }
}

/// A chain of MAX7219s on one CS pin.
#[derive(Debug, Clone, PartialEq)]
pub struct Max7219 {
    pub pin: u8,
    /// Each chip's shift register, from DIN.
    shift: Vec<u16>,
    pub chips: Vec<Registers>,
    /// The CS level last seen (idle high).
    selected: bool,
}

impl Max7219 {
    pub fn from_spec(s: &Max7219Spec) -> Result<Max7219, String> {
        if !(1..=64).contains(&s.count) {
            return Err(format!("count {} is outside 1..64", s.count));
        }
        let n = usize::from(s.count);
        Ok(Max7219 {
            pin: s.pin,
            shift: vec![0; n],
            chips: vec![Registers::default(); n],
            selected: false,
        })
    }

    /// CS low: the master's clock now shifts bits in.
    pub fn selected(&self) -> bool {
        self.selected
    }

    /// The bits the master clocked out (`bits` of them, packed MSB first) while CS was low.
    pub fn clock_in(&mut self, mosi: &[u8], bits: u32) {
        for i in 0..bits as usize {
            let Some(byte) = mosi.get(i / 8) else { break };
            let mut carry = byte & (0x80 >> (i % 8)) != 0;
            for r in &mut self.shift {
                let out = *r & 0x8000 != 0;
                *r = *r << 1 | u16::from(carry);
                carry = out;
            }
        }
    }

    /// CS now reads `high` (a floating pin counts as high: the line idles there). On a rising
    /// edge every chip latches its frame: the `[address, data]` pairs, from chip 1.
    pub fn cs(&mut self, high: bool, _t: Micros) -> Option<Vec<[u8; 2]>> {
        let was = self.selected;
        self.selected = !high;
        if !(was && high) {
            return None;
        }
        let mut latched = Vec::with_capacity(self.chips.len());
        for (c, r) in self.chips.iter_mut().zip(&self.shift) {
            let (address, data) = ((*r >> 8) as u8 & 0x0f, *r as u8);
            c.latch(address, data);
            latched.push([address, data]);
        }
        Some(latched)
    }

    /// The part's state for the test module: `test`, `on` or `off` (shutdown) for chip 1,
    /// with its intensity.
    pub fn state(&self) -> (&'static str, Option<u32>) {
        let c = &self.chips[0];
        let s = if c.test {
            "test"
        } else if c.on {
            "on"
        } else {
            "off"
        };
        (s, Some(u32::from(c.intensity)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(count: u8) -> Max7219 {
        Max7219::from_spec(&Max7219Spec {
            pin: 8,
            name: None,
            count,
        })
        .unwrap()
    }

    /// One CS window carrying `frames` (the first sent first).
    fn send(m: &mut Max7219, frames: &[u16]) -> Vec<[u8; 2]> {
        m.cs(false, 0);
        for f in frames {
            m.clock_in(&f.to_be_bytes(), 16);
        }
        m.cs(true, 0).unwrap()
    }

    /// Each frame in a CS window of its own.
    fn each(m: &mut Max7219, frames: &[u16]) {
        for f in frames {
            send(m, &[*f]);
        }
    }

    #[test]
    fn a_chip_powers_up_dark_and_shows_its_digits_once_on() {
        let mut m = chain(1);
        each(&mut m, &[0x0118, 0x0824]);
        assert_eq!(m.chips[0].rows(), [0; 8], "shutdown at power-up");
        // Of two frames in one window, a lone chip keeps the last.
        send(&mut m, &[0x0201, 0x0300]);
        assert_eq!(m.chips[0].digits[1..3], [0, 0]);
        each(&mut m, &[0x0c01]);
        // Scan limit 0: only digit 0 is scanned.
        assert_eq!(m.chips[0].rows(), [0x18, 0, 0, 0, 0, 0, 0, 0]);
        each(&mut m, &[0x0b07, 0x0a1f]);
        assert_eq!(m.chips[0].rows(), [0x18, 0, 0, 0, 0, 0, 0, 0x24]);
        assert_eq!(m.state(), ("on", Some(15)), "intensity keeps D3..D0");
        each(&mut m, &[0x0f01]);
        assert_eq!(m.chips[0].rows(), [0xff; 8]);
        assert_eq!(m.state().0, "test");
        each(&mut m, &[0x0f00, 0x0c00]);
        assert_eq!(m.chips[0].rows(), [0; 8]);
        assert_eq!(m.chips[0].digits[7], 0x24, "shutdown keeps the digits");
    }

    #[test]
    fn decode_mode_shows_code_b_with_its_decimal_point() {
        let mut m = chain(1);
        each(&mut m, &[0x0c01, 0x0b07, 0x0903, 0x0185, 0x020c, 0x0305]);
        let rows = m.chips[0].rows();
        assert_eq!(rows[0], 0x80 | 0x5b, "5 with its point");
        assert_eq!(rows[1], 0x37, "H");
        assert_eq!(rows[2], 0x05, "digit 2 is not decoded");
    }

    #[test]
    fn chained_chips_take_the_frames_shifted_through() {
        let mut m = chain(3);
        // The first frame sent ends in the last chip; a no-op leaves a chip's register alone.
        let l = send(&mut m, &[0x0c01, 0x0000, 0x0a05]);
        assert_eq!(l, [[0xa, 5], [0, 0], [0xc, 1]]);
        assert_eq!(m.chips[0].intensity, 5);
        assert!(!m.chips[0].on && !m.chips[1].on && m.chips[2].on);
        // Bits clocked in pieces of any size shift alike; the top nibble is ignored.
        m.cs(false, 0);
        m.clock_in(&[0xf1], 8);
        m.clock_in(&[0x42], 8);
        assert_eq!(m.cs(true, 0).unwrap()[0], [1, 0x42]);
        assert_eq!(m.chips[0].digits[0], 0x42);
        // Without a rising edge nothing latches.
        assert_eq!(m.cs(true, 0), None);
    }

    #[test]
    fn a_bad_count_is_refused() {
        let e = Max7219::from_spec(&Max7219Spec {
            pin: 8,
            name: None,
            count: 0,
        })
        .unwrap_err();
        assert_eq!(e, "count 0 is outside 1..64");
    }
}
