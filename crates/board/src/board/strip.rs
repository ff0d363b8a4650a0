//! The board's LED strips and displays: a frame sent on a pin reaches every strip on its net;
//! a MAX7219 chain is found by name for the test module to read its rows.

use super::Board;
use super::resolve::note;
use crate::Micros;
use crate::event::Event;
use crate::parts::Kind;
use crate::strip::Strip;

impl Board {
    /// `data` sent out of `pin` at `t`: each strip on the pin's net takes it, and the trace gets
    /// a line per strip. False when no strip is there.
    pub fn strip_write(&mut self, pin: u8, data: &[u8], t: Micros) -> bool {
        let net = self.pins[usize::from(pin)].net;
        let mut any = false;
        for p in &mut self.parts {
            if let Kind::Strip(s) = &mut p.kind
                && self.pins[usize::from(s.pin)].net == net
            {
                s.receive(t, data);
                any = true;
                let frame = data.iter().map(|b| format!("{b:02x}")).collect();
                note(
                    &mut self.events,
                    self.quiet,
                    Event::Strip {
                        t,
                        strip: p.name.clone(),
                        frame,
                    },
                );
            }
        }
        any
    }

    /// The strip named `name`.
    pub fn strip(&self, name: &str) -> Option<&Strip> {
        self.parts.iter().find_map(|p| match &p.kind {
            Kind::Strip(s) if p.name == name => Some(&**s),
            _ => None,
        })
    }
}

impl Board {
    /// The MAX7219 chain named `name`.
    pub fn max7219(&self, name: &str) -> Option<&crate::max7219::Max7219> {
        self.parts.iter().find_map(|p| match &p.kind {
            Kind::Max7219(m) if p.name == name => Some(&**m),
            _ => None,
        })
    }
}
