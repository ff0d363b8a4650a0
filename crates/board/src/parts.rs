//! The parts on a board and their schedules over device time.
//!
//! A part either drives a net (a closed button or switch, a signal generator), watches one (an
//! LED, a relay coil), feeds an ADC channel (a potentiometer, a voltage), or joins two nets (a
//! wire, a resistor). Its schedule is a list of changes at device times; the board applies them in
//! time order when the caller advances it, so each change happens at exactly its time.

use std::collections::VecDeque;

use crate::Micros;
use crate::spec::{Active, End, PartSpec, Rail};

/// A scheduled change of a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A contact closes (true) or opens.
    Close(bool),
    /// An ADC reading.
    Value(u16),
}

/// What a part is and its state now.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `dim`: the brightness in percent while the pin is a PWM output.
    Led {
        pin: u8,
        active: Active,
        lit: bool,
        dim: Option<u32>,
    },
    Relay {
        pin: u8,
        active: Active,
        on: bool,
    },
    /// A button or a switch: `closed` connects `pin` to `rail`.
    Contact {
        pin: u8,
        rail: Rail,
        closed: bool,
        button: bool,
    },
    /// A potentiometer or a voltage on ADC channel `channel`.
    Analog {
        channel: u8,
        value: u16,
    },
    /// A resistor between two pins' nets.
    Resistor {
        pins: [u8; 2],
        ohms: u32,
    },
    /// A resistor from `pin` to a rail: a weak pull that any driver beats.
    Pull {
        pin: u8,
        rail: Rail,
        ohms: u32,
    },
    /// A resistor from `pin` into ADC channel `channel`'s divider.
    AdcResistor {
        pin: u8,
        channel: u8,
        ohms: u32,
    },
    Wire {
        pins: [u8; 2],
    },
    /// A square wave: `level` now, toggling every `half` µs from `next`.
    Signal {
        pin: u8,
        half: Micros,
        level: bool,
        next: Micros,
        started: bool,
    },
    /// A DS18B20 on the 1-Wire bus of its pin.
    Ds18b20(Box<crate::onewire::Ds18b20>),
    /// A DHT11 or DHT22 on its pin.
    Dht(Box<crate::dht::Dht>),
    /// A WS2812 strip on its data pin.
    Strip(Box<crate::strip::Strip>),
    /// A chain of MAX7219s on the SPI bus, selected by its CS pin.
    Max7219(Box<crate::max7219::Max7219>),
}

/// One part: its name (for the trace and the test module), state and schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub name: String,
    pub kind: Kind,
    schedule: VecDeque<(Micros, Change)>,
}

/// The resistance a resistor without `ohms` counts as when weak pulls meet (a dev kit's 10k).
pub const DEFAULT_OHMS: u32 = 10_000;

/// The largest raw reading of the ESP8266's 10-bit ADC (it reads 1024 at full scale).
pub const ADC_MAX: u16 = 1024;

const MS: Micros = 1000;

impl Part {
    /// The part a spec describes, its schedule in µs. Pin numbers are checked by the board.
    pub fn from_spec(spec: &PartSpec) -> Result<Part, String> {
        let mut schedule = Vec::new();
        let kind = match spec {
            PartSpec::Led(s) => Kind::Led {
                pin: s.pin,
                active: s.active,
                lit: false,
                dim: None,
            },
            PartSpec::Relay(s) => Kind::Relay {
                pin: s.pin,
                active: s.active,
                on: false,
            },
            PartSpec::Button(s) => {
                for p in &s.presses {
                    schedule.push((p.at * MS, Change::Close(true)));
                    schedule.push(((p.at + p.duration) * MS, Change::Close(false)));
                }
                Kind::Contact {
                    pin: s.pin,
                    rail: s.to,
                    closed: false,
                    button: true,
                }
            }
            PartSpec::Switch(s) => {
                schedule.extend(s.changes.iter().map(|c| (c.at * MS, Change::Close(c.on))));
                Kind::Contact {
                    pin: s.pin,
                    rail: s.to,
                    closed: s.on,
                    button: false,
                }
            }
            PartSpec::Potentiometer(s) => {
                for v in &s.values {
                    if v.value > ADC_MAX {
                        return Err(format!("value {} is above {ADC_MAX}", v.value));
                    }
                    schedule.push((v.at * MS, Change::Value(v.value)));
                }
                Kind::Analog {
                    channel: s.pin,
                    value: 0,
                }
            }
            PartSpec::Voltage(s) => {
                if !(0.0..=1.0).contains(&s.volts) {
                    return Err(format!("volts {} is outside 0..1", s.volts));
                }
                Kind::Analog {
                    channel: s.pin,
                    value: volts_to_raw(s.volts),
                }
            }
            PartSpec::Resistor(s) => {
                let ohms = s.ohms.unwrap_or(DEFAULT_OHMS);
                if ohms == 0 {
                    return Err("ohms 0 is a wire, not a resistor".into());
                }
                match s.pins {
                    [End::Pin(a), End::Pin(b)] => Kind::Resistor { pins: [a, b], ohms },
                    [End::Pin(pin), End::Rail(rail)] | [End::Rail(rail), End::Pin(pin)] => {
                        Kind::Pull { pin, rail, ohms }
                    }
                    [End::Rail(_), End::Rail(_)] => {
                        return Err("a resistor between two rails touches no pin".into());
                    }
                }
            }
            PartSpec::AdcResistor(s) => Kind::AdcResistor {
                pin: s.pin,
                channel: s.channel,
                ohms: s.ohms,
            },
            PartSpec::Mcp23017(_)
            | PartSpec::Bme280(_)
            | PartSpec::Bh1750(_)
            | PartSpec::Ds3231(_)
            | PartSpec::Tcs34725(_) => return Err("a bus chip is not a pin part".into()),
            PartSpec::Wire(s) => Kind::Wire { pins: s.pins },
            PartSpec::Ds18b20(s) => Kind::Ds18b20(Box::new(crate::onewire::Ds18b20::from_spec(
                s,
                &spec.name(),
            )?)),
            PartSpec::Dht11(s) => Kind::Dht(Box::new(crate::dht::Dht::from_spec(
                s,
                crate::dht::Model::Dht11,
            )?)),
            PartSpec::Dht22(s) => Kind::Dht(Box::new(crate::dht::Dht::from_spec(
                s,
                crate::dht::Model::Dht22,
            )?)),
            PartSpec::Ws2812(s) => Kind::Strip(Box::new(crate::strip::Strip::from_spec(s)?)),
            PartSpec::Max7219(s) => Kind::Max7219(Box::new(crate::max7219::Max7219::from_spec(s)?)),
            PartSpec::Signal(s) => {
                if !(1..=100_000).contains(&s.hz) {
                    return Err(format!("hz {} is outside 1..100000", s.hz));
                }
                Kind::Signal {
                    pin: s.pin,
                    half: 500_000 / Micros::from(s.hz),
                    level: false,
                    next: s.from * MS,
                    started: false,
                }
            }
        };
        // A stable sort keeps the file's order for changes at the same time.
        schedule.sort_by_key(|(t, _)| *t);
        Ok(Part {
            name: spec.name(),
            kind,
            schedule: schedule.into(),
        })
    }

    /// The GPIO pins the part touches.
    pub fn pins(&self) -> Vec<u8> {
        match self.kind {
            Kind::Led { pin, .. }
            | Kind::Relay { pin, .. }
            | Kind::Contact { pin, .. }
            | Kind::Signal { pin, .. }
            | Kind::Pull { pin, .. }
            | Kind::AdcResistor { pin, .. } => vec![pin],
            Kind::Resistor { pins, .. } | Kind::Wire { pins } => pins.to_vec(),
            Kind::Analog { .. } => vec![],
            Kind::Ds18b20(ref d) => vec![d.pin],
            Kind::Dht(ref d) => vec![d.pin],
            Kind::Strip(ref s) => vec![s.pin],
            Kind::Max7219(ref m) => vec![m.pin],
        }
    }

    /// When its next scheduled change is due.
    pub fn next_at(&self) -> Option<Micros> {
        match self.kind {
            Kind::Signal { next, .. } => Some(next),
            _ => self.schedule.front().map(|(t, _)| *t),
        }
    }

    /// Applies the next scheduled change: its time, and whether the part's drive changed.
    pub(crate) fn apply_next(&mut self) -> Option<Micros> {
        if let Kind::Signal {
            half,
            level,
            next,
            started,
            ..
        } = &mut self.kind
        {
            let at = *next;
            *level = !*level || !*started;
            *started = true;
            *next += (*half).max(1);
            return Some(at);
        }
        let (at, change) = self.schedule.pop_front()?;
        self.set(change);
        Some(at)
    }

    /// Puts a change into the schedule, after any change already due at the same time.
    pub fn schedule(&mut self, at: Micros, change: Change) {
        let i = self.schedule.partition_point(|(t, _)| *t <= at);
        self.schedule.insert(i, (at, change));
    }

    /// Applies a change now; false when it changes nothing or does not apply to this part.
    pub fn set(&mut self, change: Change) -> bool {
        match (&mut self.kind, change) {
            (Kind::Contact { closed, .. }, Change::Close(c)) => std::mem::replace(closed, c) != c,
            (Kind::Analog { value, .. }, Change::Value(v)) => std::mem::replace(value, v) != v,
            _ => false,
        }
    }

    /// The level the part drives its pin to, if it drives it now.
    pub fn drive(&self) -> Option<bool> {
        match self.kind {
            Kind::Contact {
                rail, closed: true, ..
            } => Some(rail == Rail::Vcc),
            Kind::Signal {
                level,
                started: true,
                ..
            } => Some(level),
            _ => None,
        }
    }

    /// The state the trace and the test module report.
    pub fn state(&self) -> (&'static str, Option<u32>) {
        match self.kind {
            Kind::Led { lit, dim, .. } => (if lit { "on" } else { "off" }, dim),
            Kind::Relay { on, .. } => (if on { "on" } else { "off" }, None),
            Kind::Contact {
                closed,
                button: true,
                ..
            } => (if closed { "pressed" } else { "released" }, None),
            Kind::Contact { closed, .. } => (if closed { "on" } else { "off" }, None),
            Kind::Analog { value, .. } => ("value", Some(u32::from(value))),
            Kind::Signal { level, .. } => (if level { "high" } else { "low" }, None),
            Kind::Resistor { .. }
            | Kind::Pull { .. }
            | Kind::Wire { .. }
            | Kind::AdcResistor { .. } => ("fixed", None),
            Kind::Ds18b20(_) | Kind::Dht(_) => ("sensor", None),
            Kind::Strip(_) => ("strip", None),
            Kind::Max7219(ref m) => m.state(),
        }
    }

    /// The trace event of the part's state at `t`.
    pub(crate) fn event(&self, t: Micros) -> crate::Event {
        let (state, value) = self.state();
        crate::Event::Part {
            t,
            part: self.name.clone(),
            state,
            value,
        }
    }

    /// An LED seeing a PWM wave of `duty` (percent high) on its pin, or none: true when its
    /// state changed.
    pub(crate) fn watch_pwm(&mut self, duty: Option<u32>) -> bool {
        let Kind::Led {
            active, lit, dim, ..
        } = &mut self.kind
        else {
            return false;
        };
        let pct = duty.map(|d| if *active == Active::High { d } else { 100 - d });
        let was = (*lit, *dim);
        *dim = pct;
        if let Some(p) = pct {
            *lit = p > 0;
        }
        was != (*lit, *dim)
    }

    /// An LED or relay seeing `level` on its pin (`None`: floating, so off): true when its
    /// state changed.
    pub(crate) fn watch(&mut self, level: Option<bool>) -> bool {
        let (active, now) = match &mut self.kind {
            Kind::Led { active, lit, .. } => (*active, lit),
            Kind::Relay { active, on, .. } => (*active, on),
            _ => return false,
        };
        let v = level == Some(active == Active::High);
        std::mem::replace(now, v) != v
    }
}

/// The raw ESP8266 reading of `volts` at TOUT (1.0 V reads 1024).
pub fn volts_to_raw(volts: f64) -> u16 {
    (volts * f64::from(ADC_MAX))
        .round()
        .clamp(0.0, f64::from(ADC_MAX)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::*;

    #[test]
    fn a_press_closes_then_opens_at_its_times() {
        let mut p = Part::from_spec(&PartSpec::Button(ButtonSpec {
            pin: 3,
            name: None,
            to: Rail::Ground,
            presses: vec![Press {
                at: 5000,
                duration: 200,
            }],
        }))
        .unwrap();
        assert_eq!(p.next_at(), Some(5_000_000));
        assert_eq!(p.apply_next(), Some(5_000_000));
        assert_eq!(p.drive(), Some(false));
        assert_eq!(p.state().0, "pressed");
        assert_eq!(p.apply_next(), Some(5_200_000));
        assert_eq!(p.drive(), None);
        assert_eq!(p.next_at(), None);
    }

    #[test]
    fn a_signal_toggles_every_half_period_starting_high() {
        let mut p = Part::from_spec(&PartSpec::Signal(SignalSpec {
            pin: 2,
            name: None,
            hz: 1000,
            from: 0,
        }))
        .unwrap();
        assert_eq!(p.drive(), None);
        assert_eq!(p.apply_next(), Some(0));
        assert_eq!(p.drive(), Some(true));
        assert_eq!(p.apply_next(), Some(500));
        assert_eq!(p.drive(), Some(false));
        assert_eq!(p.next_at(), Some(1000));
    }

    #[test]
    fn bad_values_are_refused() {
        let e = Part::from_spec(&PartSpec::Potentiometer(PotentiometerSpec {
            pin: 0,
            name: None,
            values: vec![ValueAt { at: 0, value: 2000 }],
        }))
        .unwrap_err();
        assert_eq!(e, "value 2000 is above 1024");
        assert_eq!(volts_to_raw(0.5), 512);
    }
}
