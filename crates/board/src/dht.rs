//! DHT11 and DHT22 (AM2302) humidity and temperature sensors on a pin.
//!
//! The sensor answers the master's start pulse with a 40-bit frame: humidity, temperature and
//! a checksum, in the format of its model. The board builds that frame from the part's readings
//! at the time of the read; decoding it (and so getting odd values when a script reads a DHT22
//! with the DHT11 routine) is the firmware's side, in `net-api`. A DHT11 wants a start pulse of
//! at least 18 ms and stays silent after a shorter one, as the real part does.

use serde::Deserialize;

use crate::Micros;
use crate::sensor::{ReadingAt, Readings, Sensor, set_within};

/// `kind = "dht11"` or `kind = "dht22"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhtSpec {
    pub pin: u8,
    pub name: Option<String>,
    /// °C from boot (default 20).
    pub temperature: Option<f64>,
    /// Later temperatures: `[{ at = ms, value = °C }, ...]`.
    #[serde(default)]
    pub temperatures: Vec<ReadingAt>,
    /// %RH from boot (default 50).
    pub humidity: Option<f64>,
    #[serde(default)]
    pub humidities: Vec<ReadingAt>,
}

/// Which sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    Dht11,
    Dht22,
}

impl Model {
    /// What the model measures: (°C range, %RH range).
    fn ranges(self) -> ((f64, f64), (f64, f64)) {
        match self {
            Model::Dht11 => ((0.0, 50.0), (20.0, 90.0)),
            Model::Dht22 => ((-40.0, 80.0), (0.0, 100.0)),
        }
    }

    /// The shortest start pulse it answers, in ms.
    fn wakeup_ms(self) -> u32 {
        match self {
            Model::Dht11 => 18,
            Model::Dht22 => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Model::Dht11 => "dht11",
            Model::Dht22 => "dht22",
        }
    }
}

/// A DHT sensor and its readings.
#[derive(Debug, Clone, PartialEq)]
pub struct Dht {
    pub pin: u8,
    pub model: Model,
    pub temperatures: Readings,
    pub humidities: Readings,
}

impl Dht {
    pub fn from_spec(s: &DhtSpec, model: Model) -> Result<Dht, String> {
        let ((tlo, thi), (hlo, hhi)) = model.ranges();
        let temperatures = Readings::new(s.temperature, &s.temperatures, 20.0);
        let humidities = Readings::new(s.humidity, &s.humidities, 50.0);
        temperatures.within(tlo, thi).map_err(|v| {
            format!(
                "temperature {v} is outside the {}'s {tlo}..{thi} °C",
                model.name()
            )
        })?;
        humidities.within(hlo, hhi).map_err(|v| {
            format!(
                "humidity {v} is outside the {}'s {hlo}..{hhi} %",
                model.name()
            )
        })?;
        Ok(Dht {
            pin: s.pin,
            model,
            temperatures,
            humidities,
        })
    }

    /// The frame sent after a start pulse of `wakeup_ms` at `t`, or None when the sensor does
    /// not answer (a pulse too short for it).
    pub fn frame(&self, t: Micros, wakeup_ms: u32) -> Option<[u8; 5]> {
        if wakeup_ms < self.model.wakeup_ms() {
            return None;
        }
        let (temp, hum) = (self.temperatures.at(t), self.humidities.at(t));
        let mut f = match self.model {
            // Whole percent; temperature in whole degrees and tenths (the newer DHT11s send the
            // tenths in byte 3, older ones 0).
            Model::Dht11 => {
                let t10 = (temp * 10.0).round() as i32;
                [hum.round() as u8, 0, (t10 / 10) as u8, (t10 % 10) as u8, 0]
            }
            // Tenths, big-endian; the temperature's top bit is its sign.
            Model::Dht22 => {
                let h10 = (hum * 10.0).round() as u16;
                let t10 = (temp.abs() * 10.0).round() as u16 | if temp < 0.0 { 0x8000 } else { 0 };
                let [h1, h0] = h10.to_be_bytes();
                let [t1, t0] = t10.to_be_bytes();
                [h1, h0, t1, t0, 0]
            }
        };
        f[4] = f[..4].iter().fold(0u8, |s, b| s.wrapping_add(*b));
        Some(f)
    }
}

impl Sensor for Dht {
    fn set_temperature(&mut self, t: Micros, value: f64) -> Result<(), String> {
        let range = self.model.ranges().0;
        set_within(&mut self.temperatures, t, value, range, "temperature")
    }

    fn set_humidity(&mut self, t: Micros, value: f64) -> Result<(), String> {
        let range = self.model.ranges().1;
        set_within(&mut self.humidities, t, value, range, "humidity")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dht(model: Model, temp: f64, hum: f64) -> Dht {
        Dht::from_spec(
            &DhtSpec {
                pin: 2,
                name: None,
                temperature: Some(temp),
                temperatures: vec![],
                humidity: Some(hum),
                humidities: vec![],
            },
            model,
        )
        .unwrap()
    }

    #[test]
    fn frames_are_encoded_as_each_model_sends_them() {
        // DHT22: 65.3 %RH = 0x028D, -10.1 °C = 0x8065, checksum the low byte of the sum.
        assert_eq!(
            dht(Model::Dht22, -10.1, 65.3).frame(0, 1),
            Some([0x02, 0x8D, 0x80, 0x65, 0x74])
        );
        assert_eq!(
            dht(Model::Dht22, 24.6, 40.0).frame(0, 18),
            Some([0x01, 0x90, 0x00, 0xF6, 0x87])
        );
        // DHT11: whole percent, degrees and tenths.
        assert_eq!(
            dht(Model::Dht11, 23.4, 55.0).frame(0, 18),
            Some([55, 0, 23, 4, 82])
        );
        // A DHT11 does not answer a 1 ms start pulse.
        assert_eq!(dht(Model::Dht11, 23.0, 55.0).frame(0, 1), None);
    }

    #[test]
    fn readings_outside_the_model_range_are_refused() {
        let s = DhtSpec {
            pin: 2,
            name: None,
            temperature: Some(-5.0),
            temperatures: vec![],
            humidity: None,
            humidities: vec![],
        };
        let e = Dht::from_spec(&s, Model::Dht11).unwrap_err();
        assert_eq!(e, "temperature -5 is outside the dht11's 0..50 °C");
        let mut d = Dht::from_spec(&s, Model::Dht22).unwrap();
        assert!(d.set_humidity(0, 101.0).is_err());
        d.set_humidity(1000, 70.0).unwrap();
        assert_eq!(d.frame(1000, 1).map(|f| (f[0], f[1])), Some((0x02, 0xBC)));
    }
}
