//! The I2C bus as the master sees it: start, an address byte with its direction, data bytes each
//! acknowledged or not, stop. Parts on the bus ([`I2cDevice`]) answer by their 7-bit address; an
//! address nobody owns is not acknowledged, and a read from nobody gets 0xFF (SDA floats high
//! through the bus pull-ups), as on a board.
//!
//! A [`Transfer`] is what happens between a start and the next start or stop: it becomes one
//! `--trace` line ([`crate::Event::I2c`]):
//!
//! ```json
//! {"t":1200,"i2c":32,"write":[1,127],"ack":[1,1,1],"bus":[2,1]}
//! {"t":1300,"i2c":32,"read":[64],"ack":[1,0],"bus":[2,1]}
//! {"t":1400,"i2c":33,"write":[],"ack":[0],"bus":[2,1]}
//! ```
//!
//! `ack` has one entry per byte on the wire, the address byte first: for a write the part's
//! ACK (1) or NACK (0) of each byte, for a read the master's (it NACKs the last byte it wants).

use crate::Micros;

/// A part on an I2C bus: a state machine the master's bytes drive. Every call carries the
/// device time, so a part can tell how long a conversion has been running.
pub trait I2cDevice {
    /// Its 7-bit address.
    fn address(&self) -> u8;
    /// Addressed after a start, for reading or writing: its ACK.
    fn begin(&mut self, _read: bool, _t: Micros) -> bool {
        true
    }
    /// A byte from the master: its ACK.
    fn write(&mut self, byte: u8, t: Micros) -> bool;
    /// The next byte to the master.
    fn read(&mut self, t: Micros) -> u8;
    /// The master's stop (or a repeated start) ends the transfer.
    fn stop(&mut self, _t: Micros) {}
}

/// One transfer on a bus, from its address byte on.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    pub t: Micros,
    pub address: u8,
    pub read: bool,
    pub bytes: Vec<u8>,
    pub ack: Vec<u8>,
    pub bus: [u8; 2],
}

impl Transfer {
    pub(crate) fn event(&self) -> crate::Event {
        crate::Event::I2c {
            t: self.t,
            i2c: self.address,
            write: (!self.read).then(|| self.bytes.clone()),
            read: self.read.then(|| self.bytes.clone()),
            ack: self.ack.clone(),
            bus: self.bus,
        }
    }
}

/// The master's side of one bus (its SDA and SCL pins): the transfer under way and which part,
/// if any, answered its address.
#[derive(Debug, Clone, Default)]
pub(crate) struct Master {
    pub(crate) open: Option<Transfer>,
    /// The index of the chip that acknowledged the address.
    pub(crate) device: Option<usize>,
    /// After a start and before the address byte.
    pub(crate) started: bool,
}

/// Transfers the test module can read back (older ones are dropped).
pub const I2C_LOG: usize = 1000;

/// BCD of 0..99.
pub(crate) fn bcd(v: u32) -> u8 {
    (((v / 10) % 10) << 4 | (v % 10)) as u8
}

/// 0..99 from BCD (nibbles above 9 count as they would in the chip's adder).
pub(crate) fn from_bcd(b: u8) -> u32 {
    u32::from(b >> 4) * 10 + u32::from(b & 0x0f)
}
