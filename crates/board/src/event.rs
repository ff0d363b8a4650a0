//! What the board reports: one [`Event`] per change, with the device time it happened at.
//!
//! Events are the `--trace` stream's lines (they serialize to the documented JSON, `t` first)
//! and what the caller reacts to: a level change on a pin with an interrupt armed, a conflict to
//! print. The field names are part of the trace format and stay stable.

use std::borrow::Cow;

use serde::Serialize;

use crate::Micros;

/// One change on the board.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Event {
    /// A pin now reads `level`, because of `by` (a part's name, `gpio`, `pwm`, ...).
    Level {
        t: Micros,
        pin: u8,
        level: u8,
        by: Cow<'static, str>,
    },
    /// The script set a pin's mode (`input`, `output`, `opendrain`, `int`) and pull (`up`, `none`).
    Mode {
        t: Micros,
        pin: u8,
        mode: &'static str,
        pull: &'static str,
    },
    /// A pin's PWM output: its setting, or `null` when it stopped being a PWM output.
    Pwm {
        t: Micros,
        pin: u8,
        pwm: Option<Pwm>,
    },
    /// A part changed state (`on`, `off`, `pressed`, `released`, ...), with a value where it has one.
    Part {
        t: Micros,
        part: String,
        state: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        value: Option<u32>,
    },
    /// A WS2812 strip received a frame: its bytes in hex, as sent (G, R, B[, W] per LED).
    Strip {
        t: Micros,
        strip: String,
        frame: String,
    },
    /// Drivers fight over one net: the net's pins, and who drives what.
    Conflict {
        t: Micros,
        conflict: Vec<u8>,
        drivers: Vec<String>,
    },
    /// One I2C transfer (a start, an address, its bytes, up to a stop or a repeated start), as
    /// `i2c.rs` documents: `write` or `read` holds the data bytes, `ack` one entry per byte on
    /// the wire with the address byte first (1: ACK, 0: NACK), `bus` the SDA and SCL pins.
    I2c {
        t: Micros,
        i2c: u8,
        #[serde(skip_serializing_if = "Option::is_none")]
        write: Option<Vec<u8>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        read: Option<Vec<u8>>,
        ack: Vec<u8>,
        bus: [u8; 2],
    },
    /// A chain of MAX7219s latched its frames on CS rising: `[address, data]` per chip, from
    /// the chip on DIN (see `max7219.rs`).
    Max7219 {
        t: Micros,
        max7219: String,
        latch: Vec<[u8; 2]>,
    },
    /// A 1-Wire reset on pin `ow`, and whether a device answered with a presence pulse.
    OwReset {
        t: Micros,
        ow: u8,
        reset: bool,
        presence: bool,
    },
    /// Bytes the 1-Wire master wrote on pin `ow` in one call.
    OwWrite { t: Micros, ow: u8, write: Vec<u8> },
    /// Bytes the 1-Wire master read on pin `ow` in one call.
    OwRead { t: Micros, ow: u8, read: Vec<u8> },
    /// A ROM search on pin `ow` (its reset is a line of its own): the ROM code found, in hex
    /// as sent (family code first), or null when the search found no more devices.
    OwSearch {
        t: Micros,
        ow: u8,
        search: Option<String>,
    },
    /// One SPI exchange with the part whose chip select is `spi`: the bytes out (`mosi`) and in.
    Spi {
        t: Micros,
        spi: u8,
        mosi: Vec<u8>,
        miso: Vec<u8>,
    },
}

impl Event {
    /// When it happened.
    pub fn time(&self) -> Micros {
        match self {
            Event::Level { t, .. }
            | Event::Mode { t, .. }
            | Event::Pwm { t, .. }
            | Event::Part { t, .. }
            | Event::Conflict { t, .. }
            | Event::Strip { t, .. }
            | Event::I2c { t, .. }
            | Event::Spi { t, .. }
            | Event::Max7219 { t, .. }
            | Event::OwReset { t, .. }
            | Event::OwWrite { t, .. }
            | Event::OwRead { t, .. }
            | Event::OwSearch { t, .. } => *t,
        }
    }
}

/// A pin's PWM wave: `clock` Hz, high for `duty` out of `depth` of each period. `depth` is in
/// the trace (as `resolution`) only where it is not the `pwm` module's 1023; `period` (µs) only
/// where the clock is not a whole number of hertz (`pwm2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pwm {
    pub clock: u32,
    pub duty: u32,
    #[serde(rename = "resolution", skip_serializing_if = "is_pwm_depth")]
    pub depth: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Micros>,
}

fn is_pwm_depth(d: &u32) -> bool {
    *d == 1023
}

impl Pwm {
    /// The wave's period in µs.
    pub fn period_us(&self) -> Micros {
        self.period
            .unwrap_or_else(|| 1_000_000 / u64::from(self.clock.max(1)))
            .max(1)
    }

    /// The wave's level at `t`: periods start high at time 0.
    pub fn level_at(&self, t: Micros) -> bool {
        if self.duty == 0 || (self.clock == 0 && self.period.is_none()) {
            return false;
        }
        if self.duty >= self.depth {
            return true;
        }
        let period = self.period_us();
        let high = period * u64::from(self.duty) / u64::from(self.depth);
        t % period < high
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_to_the_documented_lines() {
        let e = Event::Level {
            t: 5_000_000,
            pin: 3,
            level: 0,
            by: "button".into(),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"t":5000000,"pin":3,"level":0,"by":"button"}"#
        );
        let e = Event::Pwm {
            t: 1,
            pin: 1,
            pwm: Some(Pwm {
                clock: 500,
                duty: 512,
                depth: 1023,
                period: None,
            }),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"t":1,"pin":1,"pwm":{"clock":500,"duty":512}}"#
        );
        let e = Event::Part {
            t: 2,
            part: "led".into(),
            state: "on",
            value: None,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"t":2,"part":"led","state":"on"}"#
        );
        let e = Event::Strip {
            t: 3,
            strip: "strip".into(),
            frame: "00ff00".into(),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"t":3,"strip":"strip","frame":"00ff00"}"#
        );
    }

    #[test]
    fn a_pwm_wave_is_high_for_its_duty() {
        let p = Pwm {
            clock: 1000,
            duty: 256,
            depth: 1024,
            period: None,
        };
        assert!(p.level_at(0));
        assert!(p.level_at(249));
        assert!(!p.level_at(250));
        assert!(p.level_at(1000));
    }
}
