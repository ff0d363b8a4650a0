//! The dev kits people run NodeMCU on, as ready boards: the resistors, buttons and LEDs soldered
//! on them, which a bare chip lacks and many projects rely on (a FLASH/BOOT button read as an
//! input that idles high).
//!
//! `board = "nodemcu-devkit"` (ESP8266 NodeMCU DevKit v1.0 / Amica; pins are NodeMCU indexes):
//! D3 (GPIO0) pulled up through 10k with the FLASH button to ground, D4 (GPIO2) pulled up with
//! the ESP-12's blue LED from 3.3 V (lit when low), D8 (GPIO15) pulled down for booting, and D0
//! (GPIO16) with its LED from 3.3 V, so it reads 1 as an input and lights when driven low.
//!
//! `board = "esp32-devkitc"` (Espressif's ESP32-DevKitC; GPIO numbers): GPIO0 pulled up through
//! 10k with the BOOT button to ground. Its other LED is the power LED, on no GPIO.

use crate::board::Chip;
use crate::spec::{Active, ButtonSpec, End, LedSpec, PartSpec, Rail, ResistorSpec};

pub(super) const NODEMCU: &str = "nodemcu-devkit";
pub(super) const DEVKITC: &str = "esp32-devkitc";

/// The board's parts, `None` for a name that is no dev kit, an error for a dev kit of the
/// other chip (its pin numbers would mean other pins).
pub(super) fn parts(chip: Chip, name: &str) -> Option<Result<Vec<PartSpec>, String>> {
    let (parts, own) = match name {
        NODEMCU => (nodemcu(), Chip::Esp8266),
        DEVKITC => (devkitc(), Chip::Esp32),
        _ => return None,
    };
    if chip != own {
        return Some(Err(format!(
            "the ready board \"{name}\" is an {} board, not an {} one",
            own.name().to_uppercase(),
            chip.name().to_uppercase()
        )));
    }
    Some(Ok(parts))
}

fn pull(name: &str, pin: u8, rail: Rail) -> PartSpec {
    PartSpec::Resistor(ResistorSpec {
        pins: [End::Pin(pin), End::Rail(rail)],
        name: Some(name.into()),
        ohms: Some(10_000),
    })
}

fn button(name: &str, pin: u8) -> PartSpec {
    PartSpec::Button(ButtonSpec {
        pin,
        name: Some(name.into()),
        to: Rail::Ground,
        presses: Vec::new(),
    })
}

/// An LED from 3.3 V to the pin: it lights when the pin is driven low.
fn led(name: &str, pin: u8) -> PartSpec {
    PartSpec::Led(LedSpec {
        pin,
        name: Some(name.into()),
        active: Active::Low,
    })
}

fn nodemcu() -> Vec<PartSpec> {
    vec![
        pull("flash-pullup", 3, Rail::Vcc),
        button("flash", 3),
        // The LED from 3.3 V holds an input high as well; the pull stands for both.
        pull("d4-pullup", 4, Rail::Vcc),
        led("led-d4", 4),
        pull("d8-pulldown", 8, Rail::Ground),
        pull("d0-led-pullup", 0, Rail::Vcc),
        led("led-d0", 0),
    ]
}

fn devkitc() -> Vec<PartSpec> {
    vec![pull("boot-pullup", 0, Rail::Vcc), button("boot", 0)]
}
