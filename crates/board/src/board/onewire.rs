//! The board's 1-Wire buses: the devices on a pin's net answer the master's slots together.

use super::Board;
use crate::Micros;
use crate::onewire::{Ds18b20, OneWireBus};
use crate::parts::Kind;

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

    /// The DS18B20 named `name`.
    pub fn ds18b20_mut(&mut self, name: &str) -> Option<&mut Ds18b20> {
        self.parts.iter_mut().find_map(|p| match &mut p.kind {
            Kind::Ds18b20(d) if p.name == name => Some(&mut **d),
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
