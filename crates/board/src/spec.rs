//! The board as a project describes it: the `board` key of `nodemcu-sim.toml`.
//!
//! `board` is either the name of a ready board (`board = "test-harness"`) or a table of parts
//! (`[[board.part]]`, one table per part, its `kind` first). Every part type denies keys it does
//! not know, so a typo is an error naming the key rather than a part silently wired wrong. Times
//! in the file are milliseconds of device time since boot; values are what the firmware reads.

use serde::Deserialize;

use crate::chips::{Bh1750Spec, Bme280Spec, Ds3231Spec, Mcp23017Spec, Tcs34725Spec};

/// The `board` key: a named ready board, or the parts of a board described in place.
#[derive(Debug, Clone, PartialEq)]
pub enum BoardSpec {
    /// `board = "NAME"`: a ready board the simulator knows by name.
    Named(String),
    /// `[board]` with `[[board.part]]` tables.
    Parts(PartsSpec),
}

/// `[board]` as a table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartsSpec {
    /// `ready = "NAME"`: a ready board's parts come first, these tables' after.
    pub ready: Option<String>,
    /// `[[board.part]]`, in the file's order.
    #[serde(default)]
    pub part: Vec<PartSpec>,
    /// `[[board.press]]`: presses of a button by its name, for a ready board's buttons, which
    /// the file cannot give a `presses` key.
    #[serde(default)]
    pub press: Vec<NamedPress>,
}

/// `[[board.press]]`: the button `part` pressed at `at` ms for `for` ms.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedPress {
    pub part: String,
    pub at: u64,
    #[serde(rename = "for")]
    pub duration: u64,
}

impl<'de> Deserialize<'de> for BoardSpec {
    /// A string or a table; each form keeps its own error messages (an untagged enum would
    /// replace them with "did not match any variant").
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = BoardSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a ready board's name or a table of parts")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<BoardSpec, E> {
                Ok(BoardSpec::Named(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, m: A) -> Result<BoardSpec, A::Error> {
                PartsSpec::deserialize(serde::de::value::MapAccessDeserializer::new(m))
                    .map(BoardSpec::Parts)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// One `[[board.part]]` table, by its `kind`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PartSpec {
    Led(LedSpec),
    Button(ButtonSpec),
    Switch(SwitchSpec),
    Potentiometer(PotentiometerSpec),
    Voltage(VoltageSpec),
    Relay(RelaySpec),
    Resistor(ResistorSpec),
    Wire(WireSpec),
    Signal(SignalSpec),
    Ds18b20(crate::onewire::Ds18b20Spec),
    Dht11(crate::dht::DhtSpec),
    Dht22(crate::dht::DhtSpec),
    Ws2812(crate::strip::StripSpec),
    Max7219(crate::max7219::Max7219Spec),
    Mcp23017(Mcp23017Spec),
    Bme280(Bme280Spec),
    Bh1750(Bh1750Spec),
    Ds3231(Ds3231Spec),
    Tcs34725(Tcs34725Spec),
    AdcResistor(AdcResistorSpec),
}

/// A resistor from a pin to an ADC channel's input: with others it makes a divider whose
/// voltage the ADC reads (see `board/bus.rs`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdcResistorSpec {
    pub pin: u8,
    #[serde(default)]
    pub channel: u8,
    pub ohms: u32,
    pub name: Option<String>,
}

/// Which level of a pin turns a part on (`active = "low"`: an LED wired from 3.3 V to the pin).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Active {
    #[default]
    High,
    Low,
}

/// What a closed contact (or a resistor's other end) connects its pin to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rail {
    /// Ground: with `gpio.PULLUP` the pin reads 1 until pressed.
    #[default]
    #[serde(alias = "gnd")]
    Ground,
    /// 3.3 V.
    #[serde(alias = "3v3", alias = "3.3v")]
    Vcc,
}

impl Rail {
    /// The spellings a file may use for a rail, as a resistor's end takes them.
    fn from_name(s: &str) -> Option<Rail> {
        match s.to_ascii_lowercase().as_str() {
            "vcc" | "3v3" | "3.3v" => Some(Rail::Vcc),
            "gnd" | "ground" => Some(Rail::Ground),
            _ => None,
        }
    }
}

/// One end of a resistor: a board pin, or a rail (`"vcc"`/`"3v3"`, `"gnd"`/`"ground"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Pin(u8),
    Rail(Rail),
}

impl<'de> Deserialize<'de> for End {
    /// A number or a rail's name; anything else names the key, since the error of an
    /// internally tagged part only carries its table's line.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = End;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`pins`: a pin number, \"vcc\" (\"3v3\") or \"gnd\" (\"ground\")")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<End, E> {
                u8::try_from(v)
                    .map(End::Pin)
                    .map_err(|_| E::custom(format!("`pins`: {v} is not a pin number")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<End, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(-1))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<End, E> {
                Rail::from_name(v).map(End::Rail).ok_or_else(|| {
                    E::custom(format!(
                        "`pins`: unknown end `{v}`, expected a pin number, \"vcc\" (\"3v3\") or \"gnd\" (\"ground\")"
                    ))
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// An LED on a pin.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedSpec {
    pub pin: u8,
    pub name: Option<String>,
    #[serde(default)]
    pub active: Active,
}

/// A push button from a pin to a rail, with scheduled presses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonSpec {
    pub pin: u8,
    pub name: Option<String>,
    #[serde(default)]
    pub to: Rail,
    #[serde(default)]
    pub presses: Vec<Press>,
}

/// A press: closed at `at` ms for `for` ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Press {
    pub at: u64,
    #[serde(rename = "for")]
    pub duration: u64,
}

/// A switch from a pin to a rail: stays where it is put.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchSpec {
    pub pin: u8,
    pub name: Option<String>,
    #[serde(default)]
    pub to: Rail,
    /// Closed at boot.
    #[serde(default)]
    pub on: bool,
    #[serde(default)]
    pub changes: Vec<SwitchAt>,
}

/// A switch set on or off at `at` ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchAt {
    pub at: u64,
    pub on: bool,
}

/// A potentiometer on an ADC channel: the raw reading over time (0..1024 on the ESP8266).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PotentiometerSpec {
    /// The ADC channel (0: the ESP8266's only one, the A0/TOUT pin).
    pub pin: u8,
    pub name: Option<String>,
    #[serde(default)]
    pub values: Vec<ValueAt>,
}

/// The ADC reading from `at` ms on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueAt {
    pub at: u64,
    pub value: u16,
}

/// A fixed voltage on an ADC channel, in volts at the chip's pin (0..1 V on the ESP8266's TOUT).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoltageSpec {
    pub pin: u8,
    pub name: Option<String>,
    pub volts: f64,
}

/// A relay whose coil a pin drives: the same keys as an LED.
pub type RelaySpec = LedSpec;

/// A resistor between two pins, or from a pin to a rail: a driven pin (or the rail) pulls the
/// other end weakly its way.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResistorSpec {
    pub pins: [End; 2],
    pub name: Option<String>,
    pub ohms: Option<u32>,
}

/// A wire between two pins: they are one net and read the same level.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireSpec {
    pub pins: [u8; 2],
    pub name: Option<String>,
}

/// A signal generator driving a square wave (half high, half low) into a pin.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalSpec {
    pub pin: u8,
    pub name: Option<String>,
    /// Frequency in hertz (1..=100000).
    pub hz: u32,
    /// When it starts, in ms (default 0); it starts high.
    #[serde(default)]
    pub from: u64,
}

impl PartSpec {
    /// The `kind` as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            PartSpec::Led(_) => "led",
            PartSpec::Button(_) => "button",
            PartSpec::Switch(_) => "switch",
            PartSpec::Potentiometer(_) => "potentiometer",
            PartSpec::Voltage(_) => "voltage",
            PartSpec::Relay(_) => "relay",
            PartSpec::Resistor(_) => "resistor",
            PartSpec::Wire(_) => "wire",
            PartSpec::Signal(_) => "signal",
            PartSpec::Ds18b20(_) => "ds18b20",
            PartSpec::Dht11(_) => "dht11",
            PartSpec::Dht22(_) => "dht22",
            PartSpec::Ws2812(_) => "ws2812",
            PartSpec::Max7219(_) => "max7219",
            PartSpec::Mcp23017(_) => "mcp23017",
            PartSpec::Bme280(_) => "bme280",
            PartSpec::Bh1750(_) => "bh1750",
            PartSpec::Ds3231(_) => "ds3231",
            PartSpec::Tcs34725(_) => "tcs34725",
            PartSpec::AdcResistor(_) => "adc-resistor",
        }
    }

    /// The name the trace and the test module use: `name`, else the kind.
    pub fn name(&self) -> String {
        let n = match self {
            PartSpec::Led(p) => &p.name,
            PartSpec::Button(p) => &p.name,
            PartSpec::Switch(p) => &p.name,
            PartSpec::Potentiometer(p) => &p.name,
            PartSpec::Voltage(p) => &p.name,
            PartSpec::Relay(p) => &p.name,
            PartSpec::Resistor(p) => &p.name,
            PartSpec::Wire(p) => &p.name,
            PartSpec::Signal(p) => &p.name,
            PartSpec::Ds18b20(p) => &p.name,
            PartSpec::Dht11(p) | PartSpec::Dht22(p) => &p.name,
            PartSpec::Ws2812(p) => &p.name,
            PartSpec::Max7219(p) => &p.name,
            PartSpec::Mcp23017(p) => &p.name,
            PartSpec::Bme280(p) => &p.name,
            PartSpec::Bh1750(p) => &p.name,
            PartSpec::Ds3231(p) => &p.name,
            PartSpec::Tcs34725(p) => &p.name,
            PartSpec::AdcResistor(p) => &p.name,
        };
        n.clone().unwrap_or_else(|| self.kind().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        board: BoardSpec,
    }

    fn parse(s: &str) -> Result<BoardSpec, String> {
        toml::from_str::<File>(s)
            .map(|f| f.board)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_named_board_and_a_table_of_parts_both_parse() {
        assert_eq!(
            parse("board = \"test-harness\"").unwrap(),
            BoardSpec::Named("test-harness".into())
        );
        let b = parse(
            "[[board.part]]\nkind = \"button\"\npin = 3\npresses = [ { at = 5000, for = 200 } ]\n\
             [[board.part]]\nkind = \"led\"\npin = 4\nactive = \"low\"\n",
        )
        .unwrap();
        let BoardSpec::Parts(p) = b else {
            panic!("parts")
        };
        assert_eq!(
            p.part[0],
            PartSpec::Button(ButtonSpec {
                pin: 3,
                name: None,
                to: Rail::Ground,
                presses: vec![Press {
                    at: 5000,
                    duration: 200
                }],
            })
        );
        assert_eq!(p.part[1].name(), "led");
    }

    #[test]
    fn unknown_kinds_and_keys_name_the_line_and_key() {
        let e = parse("[[board.part]]\nkind = \"buton\"\npin = 3\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(e.contains("unknown variant `buton`"), "{e}");
        let e = parse("[[board.part]]\nkind = \"led\"\npin = 3\ncolour = \"red\"\n").unwrap_err();
        assert!(e.contains("unknown field `colour`"), "{e}");
        let e = parse("[[board.part]]\nkind = \"led\"\n").unwrap_err();
        assert!(e.contains("missing field `pin`"), "{e}");
        let e = parse("board = 3").unwrap_err();
        assert!(
            e.contains("a ready board's name or a table of parts"),
            "{e}"
        );
        let e = parse("[board]\nparts = []\n").unwrap_err();
        assert!(e.contains("unknown field `parts`"), "{e}");
    }
}
