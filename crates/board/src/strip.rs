//! A WS2812 (NeoPixel) LED strip on a data pin: each frame the script sends, and the colour
//! each LED shows.
//!
//! The first LED keeps the first `channels` bytes of a frame (G, R, B and, on RGBW strips, W)
//! and passes the rest on, so a frame shorter than the strip leaves the last LEDs as they were
//! and a longer one spills off the end, as on a real chain. Frames are kept (the last
//! [`FRAMES`]) with their device time for the test module, and each is a trace line.

use std::collections::VecDeque;

use serde::Deserialize;

use crate::Micros;

/// `kind = "ws2812"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripSpec {
    /// The data pin: D4 (GPIO2, UART1's TX, where `ws2812.write` sends), or D10 (TXD0) for the
    /// second strip of `ws2812.MODE_DUAL`.
    pub pin: u8,
    pub name: Option<String>,
    /// How many LEDs.
    pub leds: u16,
    /// 3 (GRB) or 4 (GRBW).
    #[serde(default = "three")]
    pub channels: u8,
}

fn three() -> u8 {
    3
}

/// Frames a strip keeps (older ones are dropped).
pub const FRAMES: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Strip {
    pub pin: u8,
    pub leds: usize,
    pub channels: usize,
    /// Every LED's bytes as it received them (G, R, B[, W]).
    colours: Vec<u8>,
    frames: VecDeque<(Micros, Vec<u8>)>,
}

impl Strip {
    pub fn from_spec(s: &StripSpec) -> Result<Strip, String> {
        if !(3..=4).contains(&s.channels) {
            return Err(format!(
                "channels {} is not 3 (GRB) or 4 (GRBW)",
                s.channels
            ));
        }
        if s.leds == 0 {
            return Err("a strip needs at least one LED".into());
        }
        Ok(Strip {
            pin: s.pin,
            leds: usize::from(s.leds),
            channels: usize::from(s.channels),
            colours: vec![0; usize::from(s.leds) * usize::from(s.channels)],
            frames: VecDeque::new(),
        })
    }

    /// A frame arrives at `t`.
    pub fn receive(&mut self, t: Micros, data: &[u8]) {
        let n = data.len().min(self.colours.len());
        self.colours[..n].copy_from_slice(&data[..n]);
        if self.frames.len() == FRAMES {
            self.frames.pop_front();
        }
        self.frames.push_back((t, data.to_vec()));
    }

    /// The frames received, oldest first.
    pub fn frames(&self) -> impl Iterator<Item = &(Micros, Vec<u8>)> {
        self.frames.iter()
    }

    /// LED `i`'s (0-based) bytes as received: G, R, B[, W].
    pub fn led(&self, i: usize) -> Option<&[u8]> {
        self.colours.get(i * self.channels..(i + 1) * self.channels)
    }

    /// LED `i`'s colour as red, green, blue (and white): what a colour sensor over it sees.
    pub fn rgb(&self, i: usize) -> Option<[u8; 4]> {
        let l = self.led(i)?;
        Some([l[1], l[0], l[2], l.get(3).copied().unwrap_or(0)])
    }

    /// Every LED's bytes.
    pub fn colours(&self) -> &[u8] {
        &self.colours
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_fill_the_chain_from_its_first_led() {
        let mut s = Strip::from_spec(&StripSpec {
            pin: 4,
            name: None,
            leds: 3,
            channels: 3,
        })
        .unwrap();
        s.receive(10, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(s.colours(), &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        // A short frame leaves the last LED as it was.
        s.receive(20, &[0, 255, 0]);
        assert_eq!(s.rgb(0), Some([255, 0, 0, 0]));
        assert_eq!(s.led(2), Some(&[7u8, 8, 9][..]));
        assert_eq!(s.led(3), None);
        let f: Vec<_> = s.frames().map(|(t, d)| (*t, d.len())).collect();
        assert_eq!(f, [(10, 12), (20, 3)]);
        assert!(
            Strip::from_spec(&StripSpec {
                pin: 4,
                name: None,
                leds: 3,
                channels: 5,
            })
            .is_err()
        );
    }
}
