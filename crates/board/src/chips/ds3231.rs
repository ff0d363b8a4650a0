//! DS3231, the real-time clock (Maxim 19-5170): BCD seconds, minutes, hours (24 h, or 12 h with
//! the PM bit when bit 6 is set), day of week, date, month with the century bit, year at
//! 0x00..0x06, which run with device time from the file's `start`; alarms at 0x07..0x0D as plain
//! registers; control (0x0E, reset 0x1C), status (0x0F, reset 0x88: the oscillator-stop flag is set
//! at power-up and only clears when written 0), aging, and the temperature (0x11/0x12, 0.25 °C
//! steps). Writing a time register sets that field and restarts the second, as the chip does.

use serde::Deserialize;

use super::{ReadingAt, Readings};
use crate::Micros;
use crate::i2c::{I2cDevice, bcd, from_bcd};

const QUANTITIES: &[&str] = &["temperature"];

/// `kind = "ds3231"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ds3231Spec {
    pub name: Option<String>,
    pub sda: Option<u8>,
    pub scl: Option<u8>,
    /// The time at boot, `YYYY-MM-DD HH:MM:SS` (2000..2199); default 2000-01-01 00:00:00.
    pub start: Option<String>,
    /// The die temperature in °C (default 25).
    pub temperature: Option<f64>,
    #[serde(default)]
    pub readings: Vec<ReadingAt>,
}

/// A calendar time, fields as the registers hold them (decimal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl DateTime {
    fn seconds(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour * 3600 + self.minute * 60 + self.second)
    }

    fn from_seconds(s: i64) -> DateTime {
        let (year, month, day) = civil_from_days(s.div_euclid(86_400));
        let r = s.rem_euclid(86_400) as u32;
        DateTime {
            year,
            month,
            day,
            hour: r / 3600,
            minute: r / 60 % 60,
            second: r % 60,
        }
    }

    /// `YYYY-MM-DD HH:MM:SS` (or with a `T`).
    pub fn parse(s: &str) -> Result<DateTime, String> {
        let bad = || format!("start \"{s}\" is not YYYY-MM-DD HH:MM:SS");
        let n: Vec<i64> = s
            .split(['-', ' ', 'T', ':'])
            .map(|p| p.parse::<i64>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        let [year, mo, d, h, mi, se] = n[..] else {
            return Err(bad());
        };
        let dt = DateTime {
            year,
            month: mo as u32,
            day: d as u32,
            hour: h as u32,
            minute: mi as u32,
            second: se as u32,
        };
        if !(2000..=2199).contains(&year) || DateTime::from_seconds(dt.seconds()) != dt {
            return Err(format!("start \"{s}\" is not a time the DS3231 can hold"));
        }
        Ok(dt)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ds3231 {
    pub readings: Readings,
    /// The time fields as last set, at device time `since` (a field may be out of range for a
    /// moment while a driver writes them one by one).
    fields: DateTime,
    since: Micros,
    /// The day-of-week register counts on its own (1..7), from this value at `base`.
    dow: u32,
    h12: bool,
    regs: [u8; 0x13],
    pointer: u8,
    expect_pointer: bool,
}

impl Ds3231 {
    pub fn new(spec: &Ds3231Spec) -> Result<Ds3231, String> {
        let start = match &spec.start {
            Some(s) => DateTime::parse(s)?,
            None => DateTime::parse("2000-01-01 00:00:00")?,
        };
        let readings = Readings::new(
            QUANTITIES,
            &[("temperature", spec.temperature.unwrap_or(25.0))],
            &spec.readings,
        )?;
        let mut regs = [0u8; 0x13];
        regs[0x0e] = 0x1c;
        regs[0x0f] = 0x88;
        // 1970-01-01 was a Thursday: Sunday = 1.
        let dow =
            ((days_from_civil(start.year, start.month, start.day) + 4).rem_euclid(7) + 1) as u32;
        Ok(Ds3231 {
            readings,
            fields: start,
            since: 0,
            dow,
            h12: false,
            regs,
            pointer: 0,
            expect_pointer: false,
        })
    }

    /// The clock's time at `t`.
    pub fn now(&self, t: Micros) -> (DateTime, u32) {
        let base = self.fields.seconds();
        let s = base + (t.saturating_sub(self.since) / 1_000_000) as i64;
        let days = s.div_euclid(86_400) - base.div_euclid(86_400);
        let dow = ((i64::from(self.dow) - 1 + days).rem_euclid(7) + 1) as u32;
        (DateTime::from_seconds(s), dow)
    }

    fn register(&self, r: u8, t: Micros) -> u8 {
        let (now, dow) = self.now(t);
        match r {
            0 => bcd(now.second),
            1 => bcd(now.minute),
            2 if self.h12 => {
                let h = (now.hour + 11) % 12 + 1;
                0x40 | if now.hour >= 12 { 0x20 } else { 0 } | bcd(h)
            }
            2 => bcd(now.hour),
            3 => dow as u8,
            4 => bcd(now.day),
            5 => bcd(now.month) | if now.year >= 2100 { 0x80 } else { 0 },
            6 => bcd((now.year % 100) as u32),
            0x11 | 0x12 => {
                let q = (self.readings.at("temperature", t) * 4.0)
                    .round()
                    .clamp(-512.0, 511.0) as i16;
                if r == 0x11 {
                    (q >> 2) as u8
                } else {
                    ((q & 3) << 6) as u8
                }
            }
            r => self.regs.get(r as usize).copied().unwrap_or(0),
        }
    }

    fn set_register(&mut self, r: u8, v: u8, t: Micros) {
        if r > 6 {
            match r {
                0x0f => {
                    self.regs[0x0f] = (v & 0x0b & !0x80) | (self.regs[0x0f] & v & 0x80) | (v & 0x08)
                }
                0x11 | 0x12 => {}
                r if (r as usize) < self.regs.len() => self.regs[r as usize] = v,
                _ => {}
            }
            return;
        }
        let (mut now, mut dow) = self.now(t);
        if t.saturating_sub(self.since) < 1_000_000 {
            // Within the second of the last write the fields stand as written.
            (now, dow) = (self.fields, self.dow);
        }
        match r {
            0 => now.second = from_bcd(v & 0x7f) % 60,
            1 => now.minute = from_bcd(v & 0x7f) % 60,
            2 => {
                self.h12 = v & 0x40 != 0;
                now.hour = if self.h12 {
                    from_bcd(v & 0x1f) % 12 + if v & 0x20 != 0 { 12 } else { 0 }
                } else {
                    from_bcd(v & 0x3f) % 24
                };
            }
            3 => dow = u32::from(v & 7).max(1),
            4 => now.day = from_bcd(v & 0x3f).clamp(1, 31),
            5 => {
                now.month = from_bcd(v & 0x1f).clamp(1, 12);
                now.year = now.year % 100 + if v & 0x80 != 0 { 2100 } else { 2000 };
            }
            _ => now.year = now.year - now.year % 100 + i64::from(from_bcd(v)) % 100,
        }
        self.fields = now;
        self.since = t;
        self.dow = dow;
    }
}

impl I2cDevice for Ds3231 {
    fn address(&self) -> u8 {
        0x68
    }

    fn begin(&mut self, read: bool, _t: Micros) -> bool {
        self.expect_pointer = !read;
        true
    }

    fn write(&mut self, byte: u8, t: Micros) -> bool {
        if self.expect_pointer {
            self.expect_pointer = false;
            self.pointer = byte;
        } else {
            self.set_register(self.pointer, byte, t);
            self.pointer = (self.pointer + 1) % 0x13;
        }
        true
    }

    fn read(&mut self, t: Micros) -> u8 {
        let v = self.register(self.pointer, t);
        self.pointer = (self.pointer + 1) % 0x13;
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read7(c: &mut Ds3231, t: Micros) -> Vec<u8> {
        c.begin(false, t);
        c.write(0, t);
        c.begin(true, t);
        (0..7).map(|_| c.read(t)).collect()
    }

    #[test]
    fn time_runs_from_the_start_in_bcd() {
        let mut c = Ds3231::new(&Ds3231Spec {
            name: None,
            sda: None,
            scl: None,
            start: Some("2026-12-31 23:59:58".into()),
            temperature: Some(21.75),
            readings: vec![],
        })
        .unwrap();
        // A Thursday: day 5.
        assert_eq!(read7(&mut c, 0), [0x58, 0x59, 0x23, 5, 0x31, 0x12, 0x26]);
        assert_eq!(
            read7(&mut c, 2_500_000),
            [0x00, 0x00, 0x00, 6, 0x01, 0x01, 0x27]
        );
        c.begin(false, 0);
        c.write(0x11, 0);
        c.begin(true, 0);
        assert_eq!([c.read(0), c.read(0)], [21, 0xc0]);
    }

    #[test]
    fn setting_the_time_writes_fields_and_restarts_the_second() {
        let mut c = Ds3231::new(&Ds3231Spec {
            name: None,
            sda: None,
            scl: None,
            start: None,
            temperature: None,
            readings: vec![],
        })
        .unwrap();
        c.begin(false, 1_700_000);
        // 12-hour mode, 12 AM: midnight.
        for b in [0x00, 0x30, 0x15, 0x52, 0x02, 0x14, 0x07, 0x24] {
            c.write(b, 1_700_000);
        }
        assert_eq!(
            read7(&mut c, 2_600_000),
            [0x30, 0x15, 0x52, 2, 0x14, 0x07, 0x24]
        );
        assert!(DateTime::parse("2026-02-30 00:00:00").is_err());
        // Date before month, as drivers write them: 31 then February then 2028.
        c.begin(false, 3_000_000);
        for b in [0x04, 0x29, 0x02, 0x28] {
            c.write(b, 3_000_000);
        }
        assert_eq!(read7(&mut c, 3_000_000)[4..], [0x29, 0x02, 0x28]);
    }
}
