//! `board = "test-harness"`: DUT 0 of the firmware's own hardware test rig
//! (`tests/HardwareTestHarness.md` in the firmware repository), so its `tests/NTest_*_env.lua`
//! run unmodified. On its I2C bus (SDA D2/GPIO 4, SCL D1/GPIO 5): an MCP23017 at 0x20 whose
//! port B pin 0 (4K7) and pin 1 (2K2) feed the ADC, pin 6 reaches GPIO 13 (D7) through 4K4 and
//! pin 7 GPIO 15 (D8) through 4K7; and the TCS34725 that sits over the last LED of the WS2812
//! strip. The expander's pins are board pins 100 (GPA0) to 115 (GPB7).
//!
//! The rig's DHT, DS18B20s and three-LED WS2812 strip hang off DUT 1: `board =
//! "test-harness-dut1"` is that device, with the strip on D4, the DHT on D6 and two DS18B20s
//! (one powered, one parasite) on D5. The colour sensor over the strip's last LED is on DUT 0's
//! bus, so from either device alone it reads dark, as one board of the rig does.

use crate::board::Chip;
use crate::chips::{Mcp23017Spec, Tcs34725Spec};
use crate::dht::DhtSpec;
use crate::onewire::Ds18b20Spec;
use crate::spec::{AdcResistorSpec, End, PartSpec, ResistorSpec};
use crate::strip::StripSpec;

pub(super) const NAME: &str = "test-harness";
pub(super) const DUT1: &str = "test-harness-dut1";

/// GPB0: the expander's pin numbers start at 100 (GPA0).
const GPB: u8 = 108;

pub(super) fn parts(_chip: Chip) -> Vec<PartSpec> {
    let resistor = |name: &str, pins: [u8; 2], ohms: u32| {
        PartSpec::Resistor(ResistorSpec {
            pins: pins.map(End::Pin),
            name: Some(name.into()),
            ohms: Some(ohms),
        })
    };
    let adc = |name: &str, pin: u8, ohms: u32| {
        PartSpec::AdcResistor(AdcResistorSpec {
            pin,
            channel: 0,
            ohms,
            name: Some(name.into()),
        })
    };
    vec![
        PartSpec::Mcp23017(Mcp23017Spec {
            name: Some("mcp23017".into()),
            address: Some(0x20),
            sda: Some(2),
            scl: Some(1),
            pin_base: Some(100),
        }),
        adc("adc-b0", GPB, 4700),
        adc("adc-b1", GPB + 1, 2200),
        resistor("b6-gpio13", [GPB + 6, 7], 4400),
        resistor("b7-gpio15", [GPB + 7, 8], 4700),
        PartSpec::Tcs34725(Tcs34725Spec {
            name: Some("tcs34725".into()),
            sda: Some(2),
            scl: Some(1),
            red: None,
            green: None,
            blue: None,
            over: Some("ws2812:2".into()),
            readings: Vec::new(),
        }),
    ]
}

/// DUT 1's parts: the strip on D4, the DHT on D6, the DS18B20s on D5.
pub(super) fn dut1_parts(_chip: Chip) -> Vec<PartSpec> {
    let ds18b20 = |name: &str, parasite: bool| {
        PartSpec::Ds18b20(Ds18b20Spec {
            pin: 5,
            name: Some(name.into()),
            rom: None,
            temperature: None,
            temperatures: Vec::new(),
            parasite,
        })
    };
    vec![
        PartSpec::Ws2812(StripSpec {
            pin: 4,
            name: Some("ws2812".into()),
            leds: 3,
            channels: 3,
        }),
        PartSpec::Dht22(DhtSpec {
            pin: 6,
            name: Some("dht".into()),
            temperature: None,
            temperatures: Vec::new(),
            humidity: None,
            humidities: Vec::new(),
        }),
        ds18b20("ds18b20", false),
        ds18b20("ds18b20-parasite", true),
    ]
}
