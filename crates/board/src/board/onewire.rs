//! The board's 1-Wire buses (the devices on a pin's net answer the master's slots together),
//! and the other sensors on a pin: a DHT's frame, and what a test sets a sensor to measure.
//!
//! The trace gets a line per reset and, from the master's side ([`Board::ow_bytes`]), one per
//! call's bytes, rather than one per bit slot:
//!
//! ```json
//! {"t":1000,"ow":3,"reset":true,"presence":true}
//! {"t":1960,"ow":3,"write":[204,68]}
//! {"t":9000,"ow":3,"read":[80,5,75,70,127,255,12,16,28]}
//! {"t":9600,"ow":3,"search":"28ff64d31d160356"}
//! ```
//!
//! A search's own slots (its 0xF0 and the bit triplets) are summed up in its `search` line.

use super::Board;
use super::resolve::note;
use crate::Micros;
use crate::event::Event;
use crate::onewire::{Ds18b20, OneWireBus};
use crate::parts::Kind;
use crate::sensor::Sensor;

impl Board {
    /// The 1-Wire devices on `pin`'s net.
    fn one_wire_devices(&mut self, pin: u8) -> impl Iterator<Item = &mut Ds18b20> {
        let net = self.pins[usize::from(pin)].net;
        let pins = &self.pins;
        self.parts
            .iter_mut()
            .filter_map(move |p| match &mut p.kind {
                Kind::Ds18b20(d) if pins[usize::from(d.pin)].net == net => Some(&mut **d),
                _ => None,
            })
    }

    /// A reset on `pin`'s bus at `t`: true when some device answered with a presence pulse.
    pub fn ow_reset(&mut self, pin: u8, t: Micros) -> bool {
        // Every device sees the reset, so each one's answer is taken, not just the first.
        let presence = self
            .one_wire_devices(pin)
            .fold(false, |any, d| d.reset(t) | any);
        let e = Event::OwReset {
            t,
            ow: pin,
            reset: true,
            presence,
        };
        note(&mut self.events, self.quiet, e);
        presence
    }

    /// The trace line of the bytes one master call wrote (or read, when `read`) on `pin`'s
    /// bus, starting at `t`. Nothing for no bytes.
    pub fn ow_bytes(&mut self, pin: u8, read: bool, bytes: &[u8], t: Micros) {
        if bytes.is_empty() {
            return;
        }
        let e = if read {
            Event::OwRead {
                t,
                ow: pin,
                read: bytes.to_vec(),
            }
        } else {
            Event::OwWrite {
                t,
                ow: pin,
                write: bytes.to_vec(),
            }
        };
        note(&mut self.events, self.quiet, e);
    }

    /// The trace line of a ROM search on `pin` begun at `t`, and what it found.
    pub fn ow_search(&mut self, pin: u8, found: Option<&[u8; 8]>, t: Micros) {
        let e = Event::OwSearch {
            t,
            ow: pin,
            search: found.map(crate::onewire::rom_hex),
        };
        note(&mut self.events, self.quiet, e);
    }

    /// A write slot of `bit` on `pin`'s bus at `t`.
    pub fn ow_write_bit(&mut self, pin: u8, bit: bool, t: Micros) {
        for d in self.one_wire_devices(pin) {
            d.write_bit(bit, t);
        }
    }

    /// A read slot on `pin`'s bus at `t`: low when any device pulls it low, high (the bus's
    /// pull-up) when none does.
    pub fn ow_read_bit(&mut self, pin: u8, t: Micros) -> bool {
        self.one_wire_devices(pin)
            .fold(true, |all, d| d.read_bit(t) & all)
    }

    /// The frame a DHT on `pin`'s net sends after a start pulse of `wakeup_ms` at `t`; None
    /// when nothing answers (no DHT there, or a pulse too short for it).
    pub fn dht_frame(&mut self, pin: u8, wakeup_ms: u32, t: Micros) -> Option<[u8; 5]> {
        let net = self.pins[usize::from(pin)].net;
        self.parts.iter().find_map(|p| match &p.kind {
            Kind::Dht(d) if self.pins[usize::from(d.pin)].net == net => d.frame(t, wakeup_ms),
            _ => None,
        })
    }

    /// The sensor part named `name`, for a test to set its readings.
    pub fn sensor_mut(&mut self, name: &str) -> Option<&mut dyn Sensor> {
        self.parts.iter_mut().find_map(|p| match &mut p.kind {
            Kind::Ds18b20(d) if p.name == name => Some(&mut **d as &mut dyn Sensor),
            Kind::Dht(d) if p.name == name => Some(&mut **d as &mut dyn Sensor),
            _ => None,
        })
    }
}

/// `pin`'s bus as the master sees it, for callers that keep no clock of their own (tests): each
/// slot happens at `t`, which then moves on by the slot's length (a reset 960 µs, a bit 70 µs).
pub struct Wire<'a> {
    pub board: &'a mut Board,
    pub pin: u8,
    pub t: Micros,
}

impl OneWireBus for Wire<'_> {
    fn reset(&mut self) -> bool {
        let r = self.board.ow_reset(self.pin, self.t);
        self.t += 960;
        r
    }

    fn write_bit(&mut self, bit: bool) {
        self.board.ow_write_bit(self.pin, bit, self.t);
        self.t += 70;
    }

    fn read_bit(&mut self) -> bool {
        let b = self.board.ow_read_bit(self.pin, self.t);
        self.t += 70;
        b
    }
}
