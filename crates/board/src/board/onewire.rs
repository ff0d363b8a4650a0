//! The board's 1-Wire buses (the devices on a pin's net answer the master's slots together),
//! and the other sensors on a pin: a DHT's frame, and what a test sets a sensor to measure.

use super::Board;
use crate::Micros;
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
        self.one_wire_devices(pin)
            .fold(false, |any, d| d.reset(t) | any)
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
