//! The SPI bus as the master drives it: a transaction selects the part whose chip select is a
//! pin, shifts bits out on MOSI and in on MISO at the same time (full duplex), and deselects it.
//! A part on the bus implements [`SpiDevice`]. With no part selected, MISO reads what its net
//! carries: the MOSI bits when a wire loops MOSI back to MISO, all ones when the net is pulled
//! up, zeros when it floats.
//!
//! Each transaction is one `--trace` line ([`crate::Event::Spi`]):
//!
//! ```json
//! {"t":5000,"spi":8,"mosi":[161,178],"miso":[161,178]}
//! ```
//!
//! `spi` is the chip-select pin; `mosi` and `miso` the bits exchanged, packed most significant
//! bit first into bytes (a transaction of fewer than 8 bits fills the top of its one byte).

use crate::Micros;

/// A part on an SPI bus, selected by its chip-select pin.
pub trait SpiDevice {
    /// Chip select asserted.
    fn select(&mut self, _t: Micros) {}
    /// One byte in on MOSI; the byte it shifts out on MISO at the same time.
    fn exchange(&mut self, mosi: u8, t: Micros) -> u8;
    /// Chip select released.
    fn deselect(&mut self, _t: Micros) {}
}

/// The pins of a bus: MOSI, MISO, SCLK, CS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpiPins {
    pub mosi: u8,
    pub miso: u8,
    pub sclk: u8,
    pub cs: u8,
}

/// `bits` bits of `value` (the low ones) as bytes, most significant bit first.
pub fn pack(value: u64, bits: u32) -> Vec<u8> {
    let n = bits.div_ceil(8) as usize;
    let v = if bits == 0 {
        0
    } else {
        value << (n as u32 * 8 - bits)
    };
    (0..n).rev().map(|i| (v >> (8 * i)) as u8).collect()
}

/// The inverse of [`pack`].
pub fn unpack(bytes: &[u8], bits: u32) -> u64 {
    let n = bytes.len() as u32;
    let v = bytes.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b));
    if bits == 0 { 0 } else { v >> (n * 8 - bits) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_pack_msb_first() {
        assert_eq!(pack(0xa1b2, 16), [0xa1, 0xb2]);
        assert_eq!(pack(0b101, 3), [0b1010_0000]);
        assert_eq!(unpack(&[0b1010_0000], 3), 0b101);
        assert_eq!(unpack(&pack(0x1234_5678, 32), 32), 0x1234_5678);
    }
}
