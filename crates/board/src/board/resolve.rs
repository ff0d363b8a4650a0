//! How a net settles: its strong drivers (outputs, open drains pulling low, closed contacts,
//! signals), else its weak ones (resistors to a driven net or a rail, then the chip's pulls), else it
//! floats low; a conflict is reported once per set of drivers. Settling a net updates its pins'
//! levels and histories, the parts watching it, and the nets its resistors pull.

use std::borrow::Cow;

use super::{Board, Drive, HISTORY, Mode, Pin};
use crate::Micros;
use crate::event::{Event, Pwm};
use crate::parts::Kind;
use crate::spec::Rail;

impl Board {
    pub(super) fn pwm_drive(&self, pin: u8) -> Option<Pwm> {
        let p = &self.pins[pin as usize];
        p.pwm.filter(|_| p.driving)
    }

    /// The strong drivers of a net at `t`: outputs, open drains pulling low, closed contacts,
    /// signals.
    pub(super) fn strong(&self, net: usize, t: Micros) -> Drive {
        let mut d = Drive::default();
        let n = &self.nets[net];
        for &pin in &n.pins {
            let p = &self.pins[pin as usize];
            let level = match (p.driving, p.mode, p.pwm) {
                (false, ..) => continue,
                (true, _, Some(w)) => w.level_at(t),
                (true, Mode::OpenDrain, None) if p.out => continue,
                (true, _, None) => p.out,
            };
            if level { d.high = true } else { d.low = true }
        }
        for &i in &n.drivers {
            match self.parts[i].drive() {
                Some(true) => d.high = true,
                Some(false) => d.low = true,
                None => {}
            }
        }
        d
    }

    /// Who drives a net, for a conflict's report.
    fn drivers(&self, net: usize, t: Micros) -> Vec<String> {
        let n = &self.nets[net];
        let word = |l: bool| if l { "high" } else { "low" };
        let mut out = Vec::new();
        for &pin in &n.pins {
            let p = &self.pins[pin as usize];
            if p.driving && !(p.mode == Mode::OpenDrain && p.out && p.pwm.is_none()) {
                let l = p.pwm.map_or(p.out, |w| w.level_at(t));
                out.push(format!("pin {pin} {}", word(l)));
            }
        }
        for &i in &n.drivers {
            if let Some(l) = self.parts[i].drive() {
                out.push(format!("{} {}", self.parts[i].name, word(l)));
            }
        }
        out.sort();
        out
    }

    /// Settles a net at `t` after a change caused `by` something, and the nets its resistors
    /// pull (one step, when `follow`).
    pub(super) fn resolve(&mut self, net: usize, t: Micros, by: Cow<'static, str>, follow: bool) {
        let d = self.strong(net, t);
        let level = if d.low && d.high {
            let drivers = self.drivers(net, t);
            if self.conflicts.insert(drivers.clone()) {
                self.events.push(Event::Conflict {
                    t,
                    conflict: self.nets[net].pins.clone(),
                    drivers,
                });
            }
            false
        } else if d.low || d.high {
            d.high
        } else {
            self.weak(net, t).unwrap_or(false)
        };
        // A floating net lights nothing: no current flows through a part to it.
        let driven = d.low || d.high || self.weak(net, t).is_some();
        let pwm = self.nets[net].pins.iter().find_map(|p| self.pwm_drive(*p));
        for k in 0..self.nets[net].pins.len() {
            let pin = self.nets[net].pins[k];
            let p = &mut self.pins[pin as usize];
            if p.level == level {
                continue;
            }
            p.level = level;
            // A PWM wave's edges are not events: its setting is.
            if pwm.is_none() {
                record(p, &mut self.events, self.quiet, pin, t, by.clone());
            }
        }
        self.update_watchers(net, t, driven.then_some(level), pwm);
        if follow {
            for k in 0..self.nets[net].resistors.len() {
                let (_, other) = self.nets[net].resistors[k];
                self.resolve(other, t, by.clone(), false);
            }
        }
    }

    /// An undriven net: the resistors on it (to a driven net, or to a rail) pull it their way,
    /// the smallest resistance winning (the first of equals), and any of them beats the chip's
    /// own pulls; else it floats (`None`). Weak against weak is never a conflict.
    fn weak(&self, net: usize, t: Micros) -> Option<bool> {
        let n = &self.nets[net];
        let mut best: Option<(u32, bool)> = None;
        let mut offer = |ohms: u32, level: bool| {
            if best.is_none_or(|(o, _)| ohms < o) {
                best = Some((ohms, level));
            }
        };
        for &(i, other) in &n.resistors {
            let d = self.strong(other, t);
            if d.low != d.high
                && let Kind::Resistor { ohms, .. } = self.parts[i].kind
            {
                offer(ohms, d.high);
            }
        }
        for &i in &n.pulls {
            if let Kind::Pull { rail, ohms, .. } = self.parts[i].kind {
                offer(ohms, rail == Rail::Vcc);
            }
        }
        best.map(|(_, level)| level).or_else(|| {
            n.pins
                .iter()
                .filter_map(|p| self.pins[*p as usize].pull.level())
                .max()
        })
    }

    /// LEDs and relays on a net seeing `level` (`None`: the net floats).
    fn update_watchers(&mut self, net: usize, t: Micros, level: Option<bool>, pwm: Option<Pwm>) {
        for k in 0..self.nets[net].watchers.len() {
            let i = self.nets[net].watchers[k];
            let part = &mut self.parts[i];
            if let Kind::Max7219(m) = &mut part.kind {
                // A floating CS idles high, as the line's pull-up on modules holds it.
                if let Some(latch) = m.cs(level != Some(false), t) {
                    let e = Event::Max7219 {
                        t,
                        max7219: part.name.clone(),
                        latch,
                    };
                    note(&mut self.events, self.quiet, e);
                }
                continue;
            }
            let changed = match pwm {
                Some(w) if matches!(part.kind, Kind::Led { .. }) => {
                    let pct =
                        (u64::from(w.duty.min(w.depth)) * 100 / u64::from(w.depth.max(1))) as u32;
                    part.watch_pwm(Some(pct))
                }
                _ => part.watch_pwm(None) | part.watch(level),
            };
            if changed {
                note(&mut self.events, self.quiet, part.event(t));
            }
        }
    }
}

/// Records a change unless the board is quiet.
pub(super) fn note(events: &mut Vec<Event>, quiet: bool, e: Event) {
    if !quiet {
        events.push(e);
    }
}

/// A pin's new level into its history and, unless quiet, the events.
pub(super) fn record(
    p: &mut Pin,
    events: &mut Vec<Event>,
    quiet: bool,
    pin: u8,
    t: Micros,
    by: Cow<'static, str>,
) {
    if p.history.len() == HISTORY {
        p.history.pop_front();
    }
    p.history.push_back((t, p.level as u8));
    note(
        events,
        quiet,
        Event::Level {
            t,
            pin,
            level: p.level as u8,
            by,
        },
    );
}
