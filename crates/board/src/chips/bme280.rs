//! BME280, the temperature, humidity and pressure sensor (Bosch BST-BME280-DS002): chip id 0x60,
//! the calibration words at 0x88..0xA1 and 0xE1..0xE7, ctrl_hum/ctrl_meas/config, forced and
//! normal mode on device time, and the raw ADC words at 0xF7..0xFE.
//!
//! The raw words are what the datasheet's integer compensation (section 4.2.3) turns back into
//! the configured readings: each is found by bisection over the monotonic compensation
//! functions, so a driver's own arithmetic (the firmware's `bme280` module, a Lua driver) is
//! exercised and gives the board file's values within its rounding. The IIR filter and the
//! resolution oversampling buys are not modelled: the words are always 20 (16) bits exact.

use serde::Deserialize;

use super::{ReadingAt, Readings};
use crate::Micros;
use crate::i2c::I2cDevice;

pub const CHIP_ID: u8 = 0x60;

/// The calibration of one real part (the datasheet's example temperature and pressure words, and
/// humidity words as a typical part carries them).
const T: [i64; 3] = [27504, 26435, -1000];
const P: [i64; 9] = [36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000];
const H1: i64 = 75;
const H2: i64 = 362;
const H3: i64 = 0;
const H4: i64 = 324;
const H5: i64 = 50;
const H6: i64 = 30;

const QUANTITIES: &[&str] = &["temperature", "humidity", "pressure"];

/// `kind = "bme280"`: readings in °C, %RH and hPa.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bme280Spec {
    pub name: Option<String>,
    /// 0x76 (SDO to ground, the default) or 0x77.
    pub address: Option<u8>,
    pub sda: Option<u8>,
    pub scl: Option<u8>,
    pub temperature: Option<f64>,
    pub humidity: Option<f64>,
    pub pressure: Option<f64>,
    #[serde(default)]
    pub readings: Vec<ReadingAt>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bme280 {
    address: u8,
    pub readings: Readings,
    regs: [u8; 256],
    pointer: u8,
    expect_pointer: bool,
    /// ctrl_hum as last written: it applies from the next ctrl_meas write.
    ctrl_hum: u8,
    /// A measurement started at (forced mode), or the normal-mode cycle's start.
    started: Option<Micros>,
}

impl Bme280 {
    pub fn new(spec: &Bme280Spec) -> Result<Bme280, String> {
        let address = super::check_address(spec.address.unwrap_or(0x76), &[0x76, 0x77])?;
        let readings = Readings::new(
            QUANTITIES,
            &[
                ("temperature", spec.temperature.unwrap_or(20.0)),
                ("humidity", spec.humidity.unwrap_or(50.0)),
                ("pressure", spec.pressure.unwrap_or(1013.25)),
            ],
            &spec.readings,
        )?;
        let mut c = Bme280 {
            address,
            readings,
            regs: [0; 256],
            pointer: 0,
            expect_pointer: false,
            ctrl_hum: 0,
            started: None,
        };
        c.reset();
        Ok(c)
    }

    /// Power-on state: calibration words, id, registers at their reset values.
    fn reset(&mut self) {
        self.regs = [0; 256];
        let mut put = |at: usize, v: i64| {
            self.regs[at] = v as u8;
            self.regs[at + 1] = (v >> 8) as u8;
        };
        for (i, v) in T.iter().enumerate() {
            put(0x88 + 2 * i, *v);
        }
        for (i, v) in P.iter().enumerate() {
            put(0x8e + 2 * i, *v);
        }
        put(0xe1, H2);
        self.regs[0xa1] = H1 as u8;
        self.regs[0xe3] = H3 as u8;
        self.regs[0xe4] = (H4 >> 4) as u8;
        self.regs[0xe5] = ((H4 & 0x0f) | (H5 & 0x0f) << 4) as u8;
        self.regs[0xe6] = (H5 >> 4) as u8;
        self.regs[0xe7] = H6 as u8;
        self.regs[0xd0] = CHIP_ID;
        self.regs[0xf7..=0xfe].copy_from_slice(&[0x80, 0, 0, 0x80, 0, 0, 0x80, 0]);
        self.ctrl_hum = 0;
        self.started = None;
    }

    fn mode(&self) -> u8 {
        self.regs[0xf4] & 3
    }

    /// The measurement time (datasheet 9.1, maximum), in µs.
    fn measuring_us(&self) -> Micros {
        let os = |v: u8| -> u64 {
            match v & 7 {
                0 => 0,
                n => 1 << (n.min(5) - 1),
            }
        };
        let (t, p, h) = (
            os(self.regs[0xf4] >> 5),
            os(self.regs[0xf4] >> 2),
            os(self.regs[0xf2]),
        );
        let mut us = 1250 + 2300 * t;
        if p > 0 {
            us += 2300 * p + 575;
        }
        if h > 0 {
            us += 2300 * h + 575;
        }
        us
    }

    fn standby_us(&self) -> Micros {
        [
            500, 62_500, 125_000, 250_000, 500_000, 1_000_000, 10_000, 20_000,
        ][(self.regs[0xf5] >> 5) as usize]
    }

    /// Brings the data registers and status up to `t`.
    fn update(&mut self, t: Micros) {
        let Some(start) = self.started else {
            self.regs[0xf3] = 0;
            return;
        };
        let meas = self.measuring_us();
        let done = match self.mode() {
            0 => None,
            1 | 2 => (t >= start + meas).then_some(start + meas),
            _ => {
                // Normal mode: a measurement, a standby, again.
                let cycle = meas + self.standby_us();
                (t >= start + meas).then(|| start + meas + (t - start - meas) / cycle * cycle)
            }
        };
        if let Some(at) = done {
            self.measure(at);
        }
        let measuring = match self.mode() {
            1 | 2 => done.is_none(),
            3 => {
                let cycle = meas + self.standby_us();
                (t - start) % cycle < meas
            }
            _ => false,
        };
        self.regs[0xf3] = if measuring { 0x08 } else { 0 };
        if done.is_some() && matches!(self.mode(), 1 | 2) {
            // Forced mode: back to sleep once the measurement is stored.
            self.regs[0xf4] &= !3;
            self.started = None;
        }
    }

    /// Stores the raw words of the readings at `t`.
    fn measure(&mut self, t: Micros) {
        let temp = self.readings.at("temperature", t);
        let adc_t = raw_temperature(temp);
        let fine = t_fine(adc_t);
        let osrs_t = self.regs[0xf4] >> 5;
        let osrs_p = (self.regs[0xf4] >> 2) & 7;
        let osrs_h = self.regs[0xf2] & 7;
        let word20 = |v: i64| [(v >> 12) as u8, (v >> 4) as u8, ((v & 0x0f) << 4) as u8];
        if osrs_t != 0 {
            self.regs[0xfa..=0xfc].copy_from_slice(&word20(adc_t));
        }
        if osrs_p != 0 {
            let adc_p = raw_pressure(self.readings.at("pressure", t), fine);
            self.regs[0xf7..=0xf9].copy_from_slice(&word20(adc_p));
        }
        if osrs_h != 0 {
            let adc_h = raw_humidity(self.readings.at("humidity", t), fine);
            self.regs[0xfd] = (adc_h >> 8) as u8;
            self.regs[0xfe] = adc_h as u8;
        }
    }

    fn write_register(&mut self, r: u8, v: u8, t: Micros) {
        match r {
            0xe0 if v == 0xb6 => self.reset(),
            0xf2 => {
                self.ctrl_hum = v & 7;
                self.regs[0xf2] = v & 7;
            }
            0xf4 => {
                self.update(t);
                self.regs[0xf4] = v;
                self.started = (v & 3 != 0).then_some(t);
            }
            0xf5 => self.regs[0xf5] = v & 0xfd,
            _ => {}
        }
    }
}

impl I2cDevice for Bme280 {
    fn address(&self) -> u8 {
        self.address
    }

    fn begin(&mut self, read: bool, t: Micros) -> bool {
        self.expect_pointer = !read;
        if read {
            // A burst read sees one consistent set of data registers.
            self.update(t);
        }
        true
    }

    /// Writes are register/value pairs (no auto-increment on writes).
    fn write(&mut self, byte: u8, t: Micros) -> bool {
        if self.expect_pointer {
            self.pointer = byte;
        } else {
            self.write_register(self.pointer, byte, t);
        }
        self.expect_pointer = !self.expect_pointer;
        true
    }

    fn read(&mut self, _t: Micros) -> u8 {
        let v = self.regs[self.pointer as usize];
        self.pointer = self.pointer.wrapping_add(1);
        v
    }
}

/// The datasheet's `t_fine` of a raw temperature.
pub fn t_fine(adc_t: i64) -> i64 {
    let var1 = (((adc_t >> 3) - (T[0] << 1)) * T[1]) >> 11;
    let d = (adc_t >> 4) - T[0];
    let var2 = (((d * d) >> 12) * T[2]) >> 14;
    var1 + var2
}

/// Temperature in 0.01 °C.
pub fn compensate_t(adc_t: i64) -> i64 {
    (t_fine(adc_t) * 5 + 128) >> 8
}

/// Pressure in Pa/256 (the 64-bit form).
pub fn compensate_p(adc_p: i64, t_fine: i64) -> i64 {
    let mut var1 = t_fine - 128_000;
    let mut var2 = var1 * var1 * P[5];
    var2 += (var1 * P[4]) << 17;
    var2 += P[3] << 35;
    var1 = ((var1 * var1 * P[2]) >> 8) + ((var1 * P[1]) << 12);
    var1 = (((1i64 << 47) + var1) * P[0]) >> 33;
    if var1 == 0 {
        return 0;
    }
    let mut p = 1_048_576 - adc_p;
    p = (((p << 31) - var2) * 3125) / var1;
    let var1 = (P[8] * (p >> 13) * (p >> 13)) >> 25;
    let var2 = (P[7] * p) >> 19;
    ((p + var1 + var2) >> 8) + (P[6] << 4)
}

/// Humidity in %RH/1024.
pub fn compensate_h(adc_h: i64, t_fine: i64) -> i64 {
    let mut v = t_fine - 76_800;
    v = ((((adc_h << 14) - (H4 << 20) - (H5 * v)) + 16_384) >> 15)
        * (((((((v * H6) >> 10) * (((v * H3) >> 11) + 32_768)) >> 10) + 2_097_152) * H2 + 8192)
            >> 14);
    v -= ((((v >> 15) * (v >> 15)) >> 7) * H1) >> 4;
    v = v.clamp(0, 419_430_400);
    v >> 12
}

/// The raw word in `0..=max` whose compensated value is nearest `want`, for an `f` that grows
/// (or, `falling`, shrinks) with its word.
fn invert(want: i64, max: i64, falling: bool, f: impl Fn(i64) -> i64) -> i64 {
    let key = |x: i64| if falling { -f(x) } else { f(x) };
    let want = if falling { -want } else { want };
    let (mut lo, mut hi) = (0, max);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if key(mid) < want {
            lo = mid + 1
        } else {
            hi = mid
        }
    }
    if lo > 0 && (want - key(lo - 1)).abs() <= (key(lo) - want).abs() {
        lo - 1
    } else {
        lo
    }
}

/// The raw temperature word for `celsius`.
pub fn raw_temperature(celsius: f64) -> i64 {
    invert(
        (celsius * 100.0).round() as i64,
        (1 << 20) - 1,
        false,
        compensate_t,
    )
}

/// The raw pressure word for `hpa` at `t_fine`.
pub fn raw_pressure(hpa: f64, t_fine: i64) -> i64 {
    invert((hpa * 25_600.0).round() as i64, (1 << 20) - 1, true, |x| {
        compensate_p(x, t_fine)
    })
}

/// The raw humidity word for `rh` at `t_fine`.
pub fn raw_humidity(rh: f64, t_fine: i64) -> i64 {
    invert((rh * 1024.0).round() as i64, 0xffff, false, |x| {
        compensate_h(x, t_fine)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chip() -> Bme280 {
        Bme280::new(&Bme280Spec {
            name: None,
            address: None,
            sda: None,
            scl: None,
            temperature: Some(23.45),
            humidity: Some(41.5),
            pressure: Some(1002.3),
            readings: vec![],
        })
        .unwrap()
    }

    fn regs(c: &mut Bme280, r: u8, n: usize, t: Micros) -> Vec<u8> {
        c.begin(false, t);
        c.write(r, t);
        c.begin(true, t);
        (0..n).map(|_| c.read(t)).collect()
    }

    fn set(c: &mut Bme280, r: u8, v: u8, t: Micros) {
        c.begin(false, t);
        c.write(r, t);
        c.write(v, t);
    }

    #[test]
    fn id_and_calibration_bytes_are_the_datasheet_layout() {
        let mut c = chip();
        assert_eq!(regs(&mut c, 0xd0, 1, 0), [0x60]);
        // dig_T1 = 27504 = 0x6B70, little-endian; dig_T2 = 26435 = 0x6743; dig_T3 = -1000.
        assert_eq!(
            regs(&mut c, 0x88, 6, 0),
            [0x70, 0x6b, 0x43, 0x67, 0x18, 0xfc]
        );
        assert_eq!(regs(&mut c, 0xa1, 1, 0), [75]);
        // H4 = 324 = 0x144: E4 = 0x14, E5 low nibble 4; H5 = 50 = 0x032: E5 high nibble 2, E6 = 3.
        assert_eq!(
            regs(&mut c, 0xe1, 7, 0),
            [0x6a, 0x01, 0x00, 0x14, 0x24, 0x03, 30]
        );
        assert_eq!(regs(&mut c, 0xf7, 8, 0), [0x80, 0, 0, 0x80, 0, 0, 0x80, 0]);
    }

    #[test]
    fn a_forced_measurement_takes_its_time_then_compensates_to_the_readings() {
        let mut c = chip();
        set(&mut c, 0xf2, 0x01, 0);
        set(&mut c, 0xf4, 0x25, 0); // osrs_t 1, osrs_p 1, forced
        // 1.25 + 2.3 + 2.875 + 2.875 ms = 9.3 ms
        assert_eq!(regs(&mut c, 0xf3, 1, 9_299), [0x08]);
        assert_eq!(regs(&mut c, 0xf3, 1, 9_300), [0x00]);
        assert_eq!(regs(&mut c, 0xf4, 1, 9_300), [0x24]);
        let d = regs(&mut c, 0xf7, 8, 9_300);
        let w20 =
            |b: &[u8]| (i64::from(b[0]) << 12) | (i64::from(b[1]) << 4) | i64::from(b[2] >> 4);
        let (adc_p, adc_t, adc_h) = (
            w20(&d[0..3]),
            w20(&d[3..6]),
            i64::from(d[6]) << 8 | i64::from(d[7]),
        );
        assert_eq!(compensate_t(adc_t), 2345);
        let fine = t_fine(adc_t);
        assert!((compensate_p(adc_p, fine) as f64 / 25_600.0 - 1002.3).abs() < 0.01);
        assert!((compensate_h(adc_h, fine) as f64 / 1024.0 - 41.5).abs() < 0.01);
    }

    #[test]
    fn the_inverse_holds_over_the_operating_range() {
        for c10 in (-400..=850).step_by(37) {
            let want = c10 as f64 / 10.0;
            let adc = raw_temperature(want);
            assert!(
                (compensate_t(adc) as f64 / 100.0 - want).abs() <= 0.01,
                "{want}"
            );
            let fine = t_fine(adc);
            for hpa in [300.0, 700.5, 1013.25, 1100.0] {
                let p = compensate_p(raw_pressure(hpa, fine), fine) as f64 / 25_600.0;
                assert!((p - hpa).abs() < 0.02, "{want} {hpa} {p}");
            }
            for rh in [0.0, 12.3, 50.0, 99.0] {
                let h = compensate_h(raw_humidity(rh, fine), fine) as f64 / 1024.0;
                assert!((h - rh).abs() < 0.05, "{want} {rh} {h}");
            }
        }
    }
}
