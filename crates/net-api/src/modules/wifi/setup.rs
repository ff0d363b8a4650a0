//! The simulated radio neighbourhood, as the `[wifi]` section of `nodemcu-sim.toml` describes it:
//! the network saved in the board's flash at power-on, the access points in range, and what
//! happens to them at given device times. Typed here, where the station model reads it; the CLI
//! only deserializes it (`nodemcu-sim/src/project.rs`), so an unknown key or a bad value is an
//! error naming the file, the line and the key.

use serde::{Deserialize, Deserializer, de::Error};

/// `[wifi]`. Every key is optional; the default is a board whose user saved a network that is in
/// range and takes any password, so scripts that configure their own network keep working.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WifiSetup {
    /// The station configuration saved in flash at power-on: `{ ssid, pwd, bssid }`, or `false`
    /// for a board that was never configured. Default: the first `[[wifi.ap]]`, else an open
    /// network named `nodemcu-sim`.
    pub saved: Option<Saved>,
    /// The Wi-Fi mode saved in flash: "station" (default), "softap", "stationap" or "null".
    pub mode: Option<ModeName>,
    /// The access points in range. None listed: one network that answers to whatever SSID and
    /// password the station is configured with.
    #[serde(default)]
    pub ap: Vec<ApSetup>,
    /// What happens to the network at given device times.
    #[serde(default)]
    pub event: Vec<EventSetup>,
}

/// `saved = { ssid = "home", pwd = "secret" }` or `saved = false`.
#[derive(Debug, Clone)]
pub struct Saved(pub Option<SavedNet>);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedNet {
    pub ssid: Ssid,
    #[serde(default)]
    pub pwd: String,
    pub bssid: Option<Mac>,
}

impl<'de> Deserialize<'de> for Saved {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Net(SavedNet),
        }
        match Raw::deserialize(d).map_err(|_| {
            D::Error::custom(
                "expected false or a table such as { ssid = \"home\", pwd = \"secret\" }",
            )
        })? {
            Raw::Flag(false) => Ok(Saved(None)),
            Raw::Flag(true) => Err(D::Error::custom(
                "saved = true names no network: give { ssid = ..., pwd = ... }",
            )),
            Raw::Net(n) => Ok(Saved(Some(n))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeName {
    Null,
    Station,
    Softap,
    Stationap,
}

impl ModeName {
    /// The firmware's number for the mode (`wifi.STATION` ...).
    pub fn number(self) -> u8 {
        match self {
            ModeName::Null => 0,
            ModeName::Station => 1,
            ModeName::Softap => 2,
            ModeName::Stationap => 3,
        }
    }
}

/// `[[wifi.ap]]`: one access point in range.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApSetup {
    pub ssid: Ssid,
    /// None: an open network.
    pub pwd: Option<String>,
    /// Signal strength in dBm, -100..-1 (default -60).
    #[serde(default = "default_rssi")]
    pub rssi: Rssi,
    /// 1..13 (default 6).
    #[serde(default = "default_channel")]
    pub channel: Channel,
    /// Default: 02:00:00:00:00:NN, NN its place in the list from 1.
    pub bssid: Option<Mac>,
}

fn default_rssi() -> Rssi {
    Rssi(-60)
}

fn default_channel() -> Channel {
    Channel(6)
}

/// `[[wifi.event]]`: something that happens to the network at device time `at` (milliseconds).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSetup {
    pub at: u64,
    pub kind: EventKind,
    /// The disconnect reason the station reports (`wifi.eventmon.reason.*`); default: 8
    /// (ASSOC_LEAVE) for "drop", 200 (BEACON_TIMEOUT) for "down".
    pub reason: Option<u16>,
    /// The network it happens to ("down"/"up"); default: the one the station is configured for.
    pub ssid: Option<Ssid>,
    /// The client station ("join"/"leave" on the soft AP).
    pub mac: Option<Mac>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// The access point drops the station, which then reconnects as the SDK does.
    Drop,
    /// The network goes away: the station loses it and its reconnect attempts find nothing.
    Down,
    /// The network is back.
    Up,
    /// A client joins the device's soft AP.
    Join,
    /// A client leaves the device's soft AP.
    Leave,
}

/// An SSID of 1..32 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ssid(pub String);

impl<'de> Deserialize<'de> for Ssid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || s.len() > 32 {
            return Err(D::Error::custom(format!(
                "an SSID is 1 to 32 bytes, not {}",
                s.len()
            )));
        }
        Ok(Ssid(s))
    }
}

/// A MAC address written `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_mac_strict(&s).map(Mac).ok_or_else(|| {
            D::Error::custom(format!("not a MAC address like 02:00:00:00:00:01: {s:?}"))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rssi(pub i8);

impl<'de> Deserialize<'de> for Rssi {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        match i8::try_from(v) {
            Ok(r) if (-100..=-1).contains(&r) => Ok(Rssi(r)),
            _ => Err(D::Error::custom(format!("rssi is -100 to -1 dBm, not {v}"))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel(pub u8);

impl<'de> Deserialize<'de> for Channel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        match u8::try_from(v) {
            Ok(c) if (1..=13).contains(&c) => Ok(Channel(c)),
            _ => Err(D::Error::custom(format!("channel is 1 to 13, not {v}"))),
        }
    }
}
