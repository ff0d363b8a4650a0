//! The virtual board: the chip's pins and the parts wired to them, as plain state machines on
//! device time. No Lua, no I/O, no clock of its own: every call takes the device time
//! (microseconds since boot) from the caller, and changes come back as [`Event`]s.
//!
//! Map of the crate:
//! - `spec.rs`: [`BoardSpec`], the `board` key of `nodemcu-sim.toml` (a ready board's name or
//!   `[[board.part]]` tables), deserialized with serde; unknown kinds and keys are errors.
//! - `parts.rs`: [`Part`]s (LED, button, switch, potentiometer, voltage, relay, resistor (between
//!   pins, or to a rail: a pull-up/down), wire, signal generator) and their schedules of changes
//!   over device time.
//! - `board.rs`: [`Board`], the pins with their modes, pulls and drivers, the nets wires make,
//!   and how a net settles (driven beats pulled; opposite drivers are a conflict, reported once).
//! - `i2c.rs`: the I2C bus as the master drives it, the [`I2cDevice`] trait chips implement,
//!   and [`Transfer`]s (each a trace line). `board/bus.rs` puts the chips on the board: the
//!   transfers, an expander's pins as board pins, ADC dividers; `board/harness.rs` is the
//!   firmware's test rig as the ready board `test-harness`; `board/devkit.rs` the dev kits'
//!   own pulls, buttons and LEDs as `nodemcu-devkit` and `esp32-devkitc`. `pull_tests.rs` tests
//!   pulls as parts and those boards.
//! - `spi.rs`: the SPI bus ([`SpiDevice`] parts by chip-select pin, full-duplex transactions,
//!   MISO from the net when no part answers).
//! - `chips/`: the I2C chips (MCP23017, BME280, BH1750, DS3231, TCS34725) with their register
//!   maps, and their readings over device time.
//! - `max7219.rs`: the MAX7219 display driver chain, a part on the SPI bus with its own CS pin.
//! - `event.rs`: [`Event`], one per change (a level, a mode, a PWM setting, a part's state, a
//!   conflict), serializing to the `--trace` stream's JSON lines.
//!
//! `net-api` binds the firmware's modules (`gpio`, `adc`, `pwm`) to a [`Board`] and turns its
//! schedule ([`Board::next_event`]) into a timer on the device clock, so virtual time jumps to
//! each scheduled change exactly.

mod board;
pub mod chips;
pub mod dht;
mod event;
pub mod i2c;
pub mod max7219;
pub mod onewire;
mod parts;
pub mod sensor;
mod spec;
pub mod spi;
pub mod strip;

pub use board::{Board, Chip, HISTORY, Mode, Pull, Wire};
pub use chips::{BusChip, I2cChip, ReadingAt, Readings};
pub use event::{Event, Pwm};
pub use i2c::{I2cDevice, Transfer};
pub use parts::{ADC_MAX, Change, Kind, Part, volts_to_raw};
pub use spec::{
    Active, AdcResistorSpec, BoardSpec, ButtonSpec, End, LedSpec, NamedPress, PartSpec, PartsSpec,
    PotentiometerSpec, Press, Rail, RelaySpec, ResistorSpec, SignalSpec, SwitchAt, SwitchSpec,
    ValueAt, VoltageSpec, WireSpec,
};
pub use spi::{SpiDevice, SpiPins};

/// Device time: microseconds since boot.
pub type Micros = u64;

#[cfg(test)]
mod pull_tests;
#[cfg(test)]
mod tests;
