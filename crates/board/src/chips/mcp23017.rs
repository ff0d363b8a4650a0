//! MCP23017, the 16-bit I/O expander (Microchip DS20001952C): 22 registers (IOCON.BANK=0
//! numbering by default, BANK=1 when the script sets it), a register pointer that the first byte
//! of a write sets and every byte moves on (IOCON.SEQOP=0), or that toggles within an A/B pair
//! (SEQOP=1).
//!
//! Its 16 pins are board pins (GPA0..7 then GPB0..7 from the file's `pin_base`), so wires and
//! resistors join them to the chip's pins and the ADC. The board reads what the pins' nets settle
//! to before each read ([`Mcp23017::sense`]) and drives them from [`Mcp23017::pins`] after each
//! write. Interrupt outputs (INTA/INTB) are not modelled: GPINTEN, DEFVAL and INTCON are plain
//! registers and INTF/INTCAP read 0.

use serde::Deserialize;

use crate::Micros;
use crate::i2c::I2cDevice;

// Register indices in BANK=0 order: A at even, B at odd addresses.
const IODIR: usize = 0x00;
const IPOL: usize = 0x02;
const IOCON: usize = 0x0a;
const GPPU: usize = 0x0c;
const INTF: usize = 0x0e;
const INTCAP: usize = 0x10;
const GPIO: usize = 0x12;
const OLAT: usize = 0x14;
const REGISTERS: usize = 0x16;

const BANK: u8 = 0x80;
const SEQOP: u8 = 0x20;

/// `kind = "mcp23017"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mcp23017Spec {
    pub name: Option<String>,
    /// 0x20..0x27 (the A2..A0 pins); default 0x20.
    pub address: Option<u8>,
    pub sda: Option<u8>,
    pub scl: Option<u8>,
    /// The board pin number of GPA0; GPA0..7, GPB0..7 follow (default 100).
    pub pin_base: Option<u8>,
}

/// How the chip drives one of its pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinDrive {
    pub output: bool,
    pub high: bool,
    pub pullup: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mcp23017 {
    address: u8,
    pub pin_base: u8,
    regs: [u8; REGISTERS],
    /// The register pointer (a BANK=0 index).
    pointer: usize,
    /// The next written byte is the register address.
    expect_pointer: bool,
    /// What the pins read (GPA0 = bit 0 .. GPB7 = bit 15), as the board last settled them.
    levels: u16,
}

impl Mcp23017 {
    pub fn new(spec: &Mcp23017Spec) -> Result<Mcp23017, String> {
        let address = super::check_address(
            spec.address.unwrap_or(0x20),
            &[0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27],
        )?;
        let pin_base = spec.pin_base.unwrap_or(100);
        if pin_base > 255 - 15 {
            return Err(format!("pin_base {pin_base} leaves no room for 16 pins"));
        }
        let mut regs = [0u8; REGISTERS];
        regs[IODIR] = 0xff;
        regs[IODIR + 1] = 0xff;
        Ok(Mcp23017 {
            address,
            pin_base,
            regs,
            pointer: 0,
            expect_pointer: false,
            levels: 0,
        })
    }

    /// The board pin numbers of GPA0..GPB7.
    pub fn pin_numbers(&self) -> std::ops::RangeInclusive<u8> {
        self.pin_base..=self.pin_base + 15
    }

    /// What the board settled the pins to.
    pub fn sense(&mut self, levels: u16) {
        self.levels = levels;
    }

    /// How the chip drives each pin now (GPA0 first).
    pub fn pins(&self) -> [PinDrive; 16] {
        std::array::from_fn(|i| {
            let (reg, bit) = (i / 8, 1u8 << (i % 8));
            PinDrive {
                output: self.regs[IODIR + reg] & bit == 0,
                high: self.regs[OLAT + reg] & bit != 0,
                pullup: self.regs[GPPU + reg] & bit != 0,
            }
        })
    }

    /// A register by its BANK=0 index, as the chip returns it.
    fn get(&self, r: usize) -> u8 {
        let port = r & 1;
        let pins = (self.levels >> (8 * port)) as u8;
        match r & !1 {
            GPIO => {
                // Inputs read the pin through the polarity inversion; outputs read the pin.
                let dir = self.regs[IODIR + port];
                pins ^ (self.regs[IPOL + port] & dir)
            }
            INTF | INTCAP => 0,
            _ => self.regs[r],
        }
    }

    fn set(&mut self, r: usize, v: u8) {
        match r & !1 {
            // Writing GPIO writes the output latch.
            GPIO => self.regs[OLAT + (r & 1)] = v,
            // IOCON is one register at two addresses.
            IOCON => {
                self.regs[IOCON] = v & 0xfe;
                self.regs[IOCON + 1] = v & 0xfe;
            }
            INTF | INTCAP => {}
            _ => self.regs[r] = v,
        }
    }

    /// The BANK=0 index of a register address (None: unimplemented, reads 0).
    fn index(&self, addr: u8) -> Option<usize> {
        let a = addr as usize;
        if self.regs[IOCON] & BANK == 0 {
            return (a < REGISTERS).then_some(a);
        }
        let (port, reg) = (a >> 4, a & 0x0f);
        (port < 2 && reg < REGISTERS / 2).then_some(reg * 2 + port)
    }

    /// Moves the pointer past one byte.
    fn advance(&mut self) {
        let Some(i) = self.index(self.pointer as u8) else {
            return;
        };
        let (bank1, byte_mode) = (self.regs[IOCON] & BANK != 0, self.regs[IOCON] & SEQOP != 0);
        self.pointer = match (bank1, byte_mode) {
            // Byte mode: in BANK=0 it toggles within the A/B pair, in BANK=1 it stays.
            (false, true) => i ^ 1,
            (true, true) => self.pointer,
            (false, false) => (i + 1) % REGISTERS,
            // BANK=1 runs through port A's registers, then port B's.
            (true, false) => match self.pointer {
                0x0a => 0x10,
                0x1a => 0x00,
                p => p + 1,
            },
        };
    }
}

impl I2cDevice for Mcp23017 {
    fn address(&self) -> u8 {
        self.address
    }

    fn begin(&mut self, read: bool, _t: Micros) -> bool {
        self.expect_pointer = !read;
        true
    }

    fn write(&mut self, byte: u8, _t: Micros) -> bool {
        if self.expect_pointer {
            self.expect_pointer = false;
            self.pointer = byte as usize;
            return true;
        }
        if let Some(i) = self.index(self.pointer as u8) {
            self.set(i, byte);
        }
        self.advance();
        true
    }

    fn read(&mut self, _t: Micros) -> u8 {
        let v = self.index(self.pointer as u8).map_or(0, |i| self.get(i));
        self.advance();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chip() -> Mcp23017 {
        Mcp23017::new(&Mcp23017Spec {
            name: None,
            address: None,
            sda: None,
            scl: None,
            pin_base: None,
        })
        .unwrap()
    }

    fn write(c: &mut Mcp23017, bytes: &[u8]) {
        c.begin(false, 0);
        for b in bytes {
            assert!(c.write(*b, 0));
        }
        c.stop(0);
    }

    fn read(c: &mut Mcp23017, n: usize) -> Vec<u8> {
        c.begin(true, 0);
        (0..n).map(|_| c.read(0)).collect()
    }

    #[test]
    fn resets_with_every_pin_an_input() {
        let mut c = chip();
        write(&mut c, &[0x00]);
        assert_eq!(read(&mut c, 4), [0xff, 0xff, 0x00, 0x00]);
        assert!(c.pins().iter().all(|p| !p.output));
    }

    #[test]
    fn sequential_writes_fill_registers_and_outputs_follow_olat() {
        let mut c = chip();
        write(&mut c, &[0x00, 0xfe, 0x7f]); // IODIRA, IODIRB
        write(&mut c, &[0x14, 0x01, 0x80]); // OLATA, OLATB
        let p = c.pins();
        assert!(p[0].output && p[0].high);
        assert!(!p[1].output);
        assert!(p[15].output && p[15].high);
        assert!(!p[14].output);
        // Writing GPIOB writes OLATB.
        write(&mut c, &[0x13, 0x00]);
        write(&mut c, &[0x15]);
        assert_eq!(read(&mut c, 1), [0x00]);
    }

    #[test]
    fn gpio_reads_the_pins_through_ipol_for_inputs() {
        let mut c = chip();
        write(&mut c, &[0x03, 0x40]); // IPOLB: invert GPB6
        c.sense(0x4001);
        write(&mut c, &[0x12]);
        assert_eq!(read(&mut c, 2), [0x01, 0x00]);
        c.sense(0x0000);
        write(&mut c, &[0x13]);
        assert_eq!(read(&mut c, 1), [0x40]);
    }

    #[test]
    fn bank1_and_seqop_move_the_pointer_as_the_datasheet_says() {
        let mut c = chip();
        write(&mut c, &[0x0a, BANK]); // IOCON.BANK=1: IODIRB is now at 0x10
        write(&mut c, &[0x10, 0x0f]);
        write(&mut c, &[0x00]);
        // Bank 1 keeps port A together: IODIRA then IPOLA.
        assert_eq!(read(&mut c, 2), [0xff, 0x00]);
        write(&mut c, &[0x05, BANK | SEQOP]); // IOCON in bank 1; byte mode
        write(&mut c, &[0x10]);
        assert_eq!(read(&mut c, 3), [0x0f, 0x0f, 0x0f]);
    }
}
