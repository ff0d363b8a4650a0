//! The calendar and time-zone arithmetic behind `time` (ESP32): the C library's `gmtime`,
//! `localtime_r`, `mktime` and `tzset` as the ESP32's newlib does them.
//!
//! `time.settimezone` stores a POSIX `TZ` string; newlib reads it with its own small parser, and
//! that parser, not the POSIX grammar, is what a script meets: a name of 3 to 10 letters (or a
//! `<...>` quoted one), an offset in hours west of UTC (`[+-]hh[:mm[:ss]]`), and optionally a
//! daylight name, its offset (default one hour less) and two rules (`Mm.w.d`, `Jn` or `n`, each
//! with `/hh[:mm[:ss]]`, default 02:00); missing rules are the US ones (`M3.2.0`, `M11.1.0`).
//! Anything it cannot read leaves the zone at UTC without daylight time, silently. The crates
//! that parse POSIX TZ strings follow the standard (and refuse what newlib accepts), so the
//! parser is written here to newlib's rules.

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

/// The calendar fields `time` tables carry, 1-based as the module pushes them (`wday` 1 is Sunday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tm {
    pub year: i64,
    pub mon: i64,
    pub day: i64,
    pub hour: i64,
    pub min: i64,
    pub sec: i64,
    pub yday: i64,
    pub wday: i64,
    pub dst: i64,
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn month_len(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to `y`-`m`-`d` (proleptic Gregorian, any year).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `gmtime`: the fields of a Unix time, `dst` 0.
pub fn gmtime(t: i64) -> Tm {
    let days = t.div_euclid(DAY);
    let secs = t.rem_euclid(DAY);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let mon = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(mon <= 2);
    Tm {
        year,
        mon,
        day,
        hour: secs / HOUR,
        min: secs / 60 % 60,
        sec: secs % 60,
        yday: days - days_from_civil(year, 1, 1) + 1,
        wday: (days + 4).rem_euclid(7) + 1,
        dst: 0,
    }
}

/// When a daylight period starts or ends in a year (newlib's `__tzrule_struct`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Day {
    /// `Mm.w.d`: weekday `d` (0 Sunday) of week `w` (5: the last) of month `m`.
    M { m: i64, w: i64, d: i64 },
    /// `Jn`: day 1..365, 29 February never counted.
    J(i64),
    /// `n`: day 0..365, 29 February counted.
    D(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    day: Day,
    /// Local time of day of the change, in seconds.
    at: i64,
}

/// A zone as `tzset` leaves it: offsets in seconds west of UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Zone {
    std: i64,
    /// The daylight offset and the start and end rules, when the zone has daylight time.
    dst: Option<(i64, Rule, Rule)>,
}

/// A forgiving cursor over the TZ string, reading the way newlib's `sscanf` calls do.
struct Cur<'a>(&'a [u8]);

impl Cur<'_> {
    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.0 = &self.0[1..];
            true
        } else {
            false
        }
    }

    /// A run of bytes matching `ok`, at most `max` long (`%11[...]`).
    fn run(&mut self, max: usize, ok: impl Fn(u8) -> bool) -> usize {
        let n = self.0.iter().take(max).take_while(|&&c| ok(c)).count();
        self.0 = &self.0[n..];
        n
    }

    /// `%hu`: an unsigned decimal, kept to 16 bits as the C variable is.
    fn num(&mut self) -> Option<i64> {
        let n = self.0.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let v = self.0[..n].iter().fold(0u64, |v, &c| {
            v.wrapping_mul(10).wrapping_add(u64::from(c - b'0'))
        });
        self.0 = &self.0[n..];
        Some(i64::from(v as u16))
    }

    /// `%hu:%hu:%hu` as seconds; minutes and seconds only where a `:` and digits follow.
    fn hms(&mut self) -> Option<i64> {
        let h = self.num()?;
        let mut total = h * HOUR;
        for scale in [60, 1] {
            let save = self.0;
            if !self.eat(b':') {
                break;
            }
            match self.num() {
                Some(v) => total += v * scale,
                None => {
                    self.0 = save;
                    break;
                }
            }
        }
        Some(total)
    }

    /// `[+-]hh[:mm[:ss]]` as seconds west of UTC; the sign is read even when no digits follow.
    fn offset(&mut self) -> Option<i64> {
        let sign = if self.eat(b'-') {
            -1
        } else {
            self.eat(b'+');
            1
        };
        self.hms().map(|s| sign * s)
    }

    /// A zone name: 3..10 letters, or 3..10 of `[-+0-9A-Za-z]` between `<` and `>`.
    /// `Ok(None)` when there is none at all (`Err` when there is one of a bad length).
    fn name(&mut self) -> Result<Option<()>, ()> {
        if self.eat(b'<') {
            let n = self.run(11, |c| c.is_ascii_alphanumeric() || c == b'-' || c == b'+');
            if !(3..=10).contains(&n) || !self.eat(b'>') {
                return Err(());
            }
            return Ok(Some(()));
        }
        match self.run(11, |c| c.is_ascii_alphabetic()) {
            0 => Ok(None),
            3..=10 => Ok(Some(())),
            _ => Err(()),
        }
    }

    fn rule(&mut self, first: bool) -> Option<Rule> {
        self.eat(b',');
        let day = if self.eat(b'M') {
            let m = self.num()?;
            let w = self.eat(b'.').then(|| self.num()).flatten()?;
            let d = self.eat(b'.').then(|| self.num()).flatten()?;
            if !(1..=12).contains(&m) || !(1..=5).contains(&w) || d > 6 {
                return None;
            }
            Day::M { m, w, d }
        } else {
            let julian = self.eat(b'J');
            match self.num() {
                Some(n) if julian => Day::J(n),
                Some(n) => Day::D(n),
                // No rule given: the US rules since 2007.
                None if first => Day::M { m: 3, w: 2, d: 0 },
                None => Day::M { m: 11, w: 1, d: 0 },
            }
        };
        let at = if self.eat(b'/') {
            self.hms()?
        } else {
            2 * HOUR
        };
        Some(Rule { day, at })
    }
}

impl Zone {
    /// UTC, as at boot and after a string newlib cannot read.
    pub const UTC: Zone = Zone { std: 0, dst: None };

    /// `setenv("TZ", s); tzset()`.
    pub fn parse(s: &str) -> Zone {
        Zone::try_parse(s.as_bytes()).unwrap_or(Zone::UTC)
    }

    fn try_parse(s: &[u8]) -> Option<Zone> {
        let mut c = Cur(s);
        c.eat(b':');
        c.name().ok()??;
        let std = c.offset()?;
        match c.name() {
            Err(()) => return None,
            Ok(None) => return Some(Zone { std, dst: None }),
            Ok(Some(())) => {}
        }
        let dst = {
            let save = Cur(c.0);
            let mut probe = Cur(c.0);
            match probe.offset() {
                Some(o) => {
                    c = probe;
                    o
                }
                None => {
                    // The sign is consumed even without digits, as newlib does.
                    c = save;
                    if !c.eat(b'-') {
                        c.eat(b'+');
                    }
                    std - HOUR
                }
            }
        };
        let start = c.rule(true)?;
        let end = c.rule(false)?;
        Some(Zone {
            std,
            dst: Some((dst, start, end)),
        })
    }

    /// Whether daylight time is in effect at UTC time `t` (newlib: -1 before 1970).
    fn isdst_at_utc(&self, t: i64) -> i64 {
        let Some((dst, start, end)) = self.dst else {
            return 0;
        };
        let year = gmtime(t).year;
        match limits(year, self.std, dst, start, end) {
            None => -1,
            Some((c0, c1)) => {
                let on = if c0 < c1 {
                    t >= c0 && t < c1
                } else {
                    t >= c0 || t < c1
                };
                i64::from(on)
            }
        }
    }

    /// `localtime_r`.
    pub fn localtime(&self, t: i64) -> Tm {
        let isdst = self.isdst_at_utc(t);
        let off = match (isdst, self.dst) {
            (1, Some((dst, _, _))) => dst,
            _ => self.std,
        };
        Tm {
            dst: isdst,
            ..gmtime(t - off)
        }
    }

    /// `mktime` on fields already normalised into local seconds `local` of (local) year `year`,
    /// with `tm_isdst` unknown: the repeated hour after daylight time ends reads as standard.
    pub fn mktime(&self, local: i64, year: i64) -> i64 {
        let Some((dst, start, end)) = self.dst else {
            return local + self.std;
        };
        let Some((c0, c1)) = limits(year, self.std, dst, start, end) else {
            return local + self.std;
        };
        let start_dst_local = c0 - dst;
        let end_std_local = c1 - self.std;
        let end_dst_local = c1 - dst;
        let overlap = local >= end_std_local && local < end_dst_local;
        let isdst = !overlap
            && if c0 < c1 {
                local >= start_dst_local && local < end_std_local
            } else {
                local >= start_dst_local || local < end_std_local
            };
        local + if isdst { dst } else { self.std }
    }
}

/// The UTC times daylight time starts and ends in `year` (`__tzcalc_limits`); none before 1970.
fn limits(year: i64, std: i64, dst: i64, start: Rule, end: Rule) -> Option<(i64, i64)> {
    if year < 1970 {
        return None;
    }
    let jan1 = days_from_civil(year, 1, 1);
    let day_of = |r: &Rule| match r.day {
        Day::J(n) => jan1 + n - 1 + i64::from(is_leap(year) && n >= 60),
        Day::D(n) => jan1 + n,
        Day::M { m, w, d } => {
            let first = days_from_civil(year, m, 1);
            let first_wday = (first + 4).rem_euclid(7);
            let mut day = (w - 1) * 7 + (d - first_wday).rem_euclid(7);
            while day >= month_len(year, m) {
                day -= 7;
            }
            first + day
        }
    };
    Some((
        day_of(&start) * DAY + start.at + std,
        day_of(&end) * DAY + end.at + dst,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymdhms(t: &Tm) -> (i64, i64, i64, i64, i64, i64, i64) {
        (t.year, t.mon, t.day, t.hour, t.min, t.sec, t.dst)
    }

    #[test]
    fn gmtime_and_days_agree_on_known_dates() {
        let t = gmtime(0);
        assert_eq!((t.year, t.mon, t.day, t.yday, t.wday), (1970, 1, 1, 1, 5));
        let t = gmtime(951_782_400);
        assert_eq!((t.year, t.mon, t.day, t.yday, t.wday), (2000, 2, 29, 60, 3));
        let t = gmtime(i64::from(i32::MAX));
        assert_eq!(ymdhms(&t), (2038, 1, 19, 3, 14, 7, 0));
        let t = gmtime(-1);
        assert_eq!(
            (t.year, t.mon, t.day, t.hour, t.yday, t.wday),
            (1969, 12, 31, 23, 365, 4)
        );
        for d in [-800_000, -1, 0, 59, 60, 11_016, 24_837, 1_000_000] {
            let t = gmtime(d * DAY);
            assert_eq!(days_from_civil(t.year, t.mon, t.day), d);
        }
    }

    #[test]
    fn names_offsets_and_bad_strings() {
        assert_eq!(
            Zone::parse("EST+5"),
            Zone {
                std: 5 * HOUR,
                dst: None
            }
        );
        assert_eq!(
            Zone::parse("IST-5:30"),
            Zone {
                std: -5 * HOUR - 1800,
                dst: None
            }
        );
        assert_eq!(Zone::parse("<+0330>-3:30").std, -3 * HOUR - 1800);
        assert_eq!(Zone::parse(":JST-9").std, -9 * HOUR);
        // Newlib gives up, and leaves UTC: short or long names, no offset, bad rules.
        for bad in [
            "",
            "ES+5",
            "ABCDEFGHIJK+1",
            "EST",
            "CET-1CEST,M13.1.0",
            "CET-1CEST,M3.5",
            "X",
        ] {
            assert_eq!(Zone::parse(bad), Zone::UTC, "{bad}");
        }
        let z = Zone::parse("EST5EDT");
        let (dst, start, end) = z.dst.unwrap();
        assert_eq!((z.std, dst), (5 * HOUR, 4 * HOUR));
        assert_eq!(start.day, Day::M { m: 3, w: 2, d: 0 });
        assert_eq!(end.day, Day::M { m: 11, w: 1, d: 0 });
        assert_eq!(start.at, 2 * HOUR);
    }

    /// Local time in a zone at a UTC date.
    fn local(
        z: &Zone,
        y: i64,
        m: i64,
        d: i64,
        h: i64,
        min: i64,
    ) -> (i64, i64, i64, i64, i64, i64, i64) {
        ymdhms(&z.localtime(days_from_civil(y, m, d) * DAY + h * HOUR + min * 60))
    }

    #[test]
    fn central_europe_changes_on_the_last_sundays_at_01_utc() {
        let cet = Zone::parse("CET-1CEST,M3.5.0,M10.5.0/3");
        // 2024: 31 March and 27 October.
        assert_eq!(local(&cet, 2024, 3, 31, 0, 59), (2024, 3, 31, 1, 59, 0, 0));
        assert_eq!(local(&cet, 2024, 3, 31, 1, 0), (2024, 3, 31, 3, 0, 0, 1));
        assert_eq!(
            local(&cet, 2024, 10, 27, 0, 59),
            (2024, 10, 27, 2, 59, 0, 1)
        );
        assert_eq!(local(&cet, 2024, 10, 27, 1, 0), (2024, 10, 27, 2, 0, 0, 0));
        assert_eq!(local(&cet, 2024, 1, 1, 0, 0), (2024, 1, 1, 1, 0, 0, 0));
        // 2026: 29 March (the month's fifth Sunday) and 25 October.
        assert_eq!(local(&cet, 2026, 3, 29, 1, 0), (2026, 3, 29, 3, 0, 0, 1));
        assert_eq!(local(&cet, 2026, 3, 22, 1, 0), (2026, 3, 22, 2, 0, 0, 0));
    }

    #[test]
    fn us_eastern_and_the_southern_hemisphere() {
        let et = Zone::parse("EST5EDT,M3.2.0,M11.1.0");
        // 2025: 9 March 07:00 UTC and 2 November 06:00 UTC.
        assert_eq!(local(&et, 2025, 3, 9, 6, 59), (2025, 3, 9, 1, 59, 0, 0));
        assert_eq!(local(&et, 2025, 3, 9, 7, 0), (2025, 3, 9, 3, 0, 0, 1));
        assert_eq!(local(&et, 2025, 11, 2, 5, 59), (2025, 11, 2, 1, 59, 0, 1));
        assert_eq!(local(&et, 2025, 11, 2, 6, 0), (2025, 11, 2, 1, 0, 0, 0));
        // Sydney: daylight time from the first Sunday of October to the first of April.
        let syd = Zone::parse("AEST-10AEDT,M10.1.0,M4.1.0/3");
        assert_eq!(local(&syd, 2025, 1, 15, 0, 0), (2025, 1, 15, 11, 0, 0, 1));
        assert_eq!(local(&syd, 2025, 7, 1, 0, 0), (2025, 7, 1, 10, 0, 0, 0));
        assert_eq!(local(&syd, 2025, 4, 5, 15, 59), (2025, 4, 6, 2, 59, 0, 1));
        assert_eq!(local(&syd, 2025, 4, 5, 16, 0), (2025, 4, 6, 2, 0, 0, 0));
        // Julian day rules: J60 is 1 March every year.
        let j = Zone::parse("AAA0BBB,J60,J300");
        assert_eq!(local(&j, 2024, 3, 1, 2, 0), (2024, 3, 1, 3, 0, 0, 1));
        assert_eq!(local(&j, 2024, 2, 29, 2, 0), (2024, 2, 29, 2, 0, 0, 0));
    }

    #[test]
    fn mktime_inverts_localtime_and_reads_the_repeated_hour_as_standard() {
        let cet = Zone::parse("CET-1CEST,M3.5.0,M10.5.0/3");
        for t in [
            1_711_846_800i64,
            1_729_990_800,
            1_700_000_000,
            1_720_000_000,
        ] {
            let l = cet.localtime(t);
            let secs =
                days_from_civil(l.year, l.mon, l.day) * DAY + l.hour * HOUR + l.min * 60 + l.sec;
            if l.dst == 1 || cet.localtime(t + HOUR).dst == 0 && cet.localtime(t - HOUR).dst == 0 {
                assert_eq!(cet.mktime(secs, l.year), t);
            }
        }
        // 27 October 2024, 02:30 local happens twice; standard time is 01:30 UTC.
        let local = days_from_civil(2024, 10, 27) * DAY + 2 * HOUR + 1800;
        assert_eq!(
            cet.mktime(local, 2024),
            days_from_civil(2024, 10, 27) * DAY + HOUR + 1800
        );
        assert_eq!(Zone::parse("EST+5").mktime(0, 1970), 5 * HOUR);
    }
}
