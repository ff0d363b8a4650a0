//! A sensor's readings over device time, shared by the parts that measure something (DS18B20,
//! DHT): a fixed value, a schedule from the board file, and values a test sets as it runs.
//!
//! A part samples its readings when the chip would (a DS18B20 at the end of its conversion, a DHT
//! when it is asked), so a reading is looked up by time instead of being applied as an event.

use serde::Deserialize;

use crate::Micros;

/// One value from `at` ms on (the board file's schedule entries).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadingAt {
    pub at: u64,
    pub value: f64,
}

/// Values over time: each holds from its time until the next one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Readings {
    /// (from µs, value), in time order.
    points: Vec<(Micros, f64)>,
}

impl Readings {
    /// `fixed` from boot, then the schedule's values at their times (ms).
    pub fn new(fixed: Option<f64>, schedule: &[ReadingAt], default: f64) -> Readings {
        let mut points = vec![(0, fixed.unwrap_or(default))];
        points.extend(schedule.iter().map(|r| (r.at * 1000, r.value)));
        // A stable sort keeps the file's order for values at the same time; the last one wins.
        points.sort_by_key(|(t, _)| *t);
        Readings { points }
    }

    /// The value at device time `t`.
    pub fn at(&self, t: Micros) -> f64 {
        let i = self.points.partition_point(|(at, _)| *at <= t);
        self.points
            .get(i.saturating_sub(1))
            .map_or(0.0, |(_, v)| *v)
    }

    /// A value from `t` on, until the next scheduled one (a test setting a reading).
    pub fn set(&mut self, t: Micros, value: f64) {
        let i = self.points.partition_point(|(at, _)| *at <= t);
        self.points.insert(i, (t, value));
    }

    /// Whether every value lies within `lo..=hi`: the file's values are checked against what
    /// the chip can measure.
    pub fn within(&self, lo: f64, hi: f64) -> Result<(), f64> {
        match self.points.iter().find(|(_, v)| !(lo..=hi).contains(v)) {
            Some((_, v)) => Err(*v),
            None => Ok(()),
        }
    }
}

/// A part whose readings a test can set as it runs.
pub trait Sensor {
    /// °C from `t` on; an error names the range the chip measures.
    fn set_temperature(&mut self, t: Micros, value: f64) -> Result<(), String>;
    /// %RH from `t` on; parts that measure no humidity say so.
    fn set_humidity(&mut self, t: Micros, value: f64) -> Result<(), String>;
}

/// Checks `value` against the chip's range before it goes into `readings` from `t` on.
pub(crate) fn set_within(
    readings: &mut Readings,
    t: Micros,
    value: f64,
    (lo, hi): (f64, f64),
    what: &str,
) -> Result<(), String> {
    if !(lo..=hi).contains(&value) {
        return Err(format!("{what} {value} is outside {lo}..{hi}"));
    }
    readings.set(t, value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_holds_each_value_until_the_next() {
        let mut r = Readings::new(
            Some(20.0),
            &[ReadingAt {
                at: 1000,
                value: 25.0,
            }],
            0.0,
        );
        assert_eq!(r.at(0), 20.0);
        assert_eq!(r.at(999_999), 20.0);
        assert_eq!(r.at(1_000_000), 25.0);
        r.set(500_000, 22.0);
        assert_eq!(r.at(600_000), 22.0);
        assert_eq!(r.at(2_000_000), 25.0);
        assert_eq!(r.within(0.0, 30.0), Ok(()));
        assert_eq!(r.within(0.0, 24.0), Err(25.0));
    }
}
