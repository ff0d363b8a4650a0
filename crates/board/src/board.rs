//! The board: the chip's pins, the nets wires make of them, and the parts on them.
//!
//! Every call takes the device time it happens at and may leave [`Event`]s for the caller to
//! take ([`Board::take_events`]). A pin's level is resolved per net, the way a wire settles: a
//! driven output beats a pull-up or a resistor; a resistor to a driven net or to a rail (a dev
//! kit's pull-up) beats the chip's weak pull-up, the smaller resistance winning; an undriven, unpulled net reads low, as an ESP8266 input left floating reads in
//! practice. Two drivers pulling one net opposite ways are a conflict: reported once (per set of
//! drivers), resolved low, never a failure.

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};

mod bus;
mod devkit;
mod harness;
mod onewire;
mod resolve;
mod strip;

pub use onewire::Wire;

use crate::Micros;
use crate::chips::BusChip;
use crate::event::{Event, Pwm};
use crate::i2c::{Master, Transfer};
use crate::parts::{Change, Kind, Part};
use crate::spec::{BoardSpec, PartSpec};
use resolve::{note, record};

/// The chip whose pins the board has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chip {
    /// Pins are the NodeMCU index numbers D0..D12 (D0 is GPIO16); one ADC channel.
    Esp8266,
    /// Pins are GPIO numbers 0..39; ADC1 channels 0..7.
    Esp32,
}

impl Chip {
    pub fn pin_count(self) -> u8 {
        match self {
            Chip::Esp8266 => 13,
            Chip::Esp32 => 40,
        }
    }

    pub fn adc_channels(self) -> u8 {
        match self {
            Chip::Esp8266 => 1,
            Chip::Esp32 => 8,
        }
    }

    /// GPIO16 (D0) has no pull-up on the ESP8266; GPIO34..39 have no pulls on the ESP32.
    pub fn has_pulls(self, pin: u8) -> bool {
        match self {
            Chip::Esp8266 => pin != 0,
            Chip::Esp32 => pin < 34,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Chip::Esp8266 => "esp8266",
            Chip::Esp32 => "esp32",
        }
    }
}

/// How the script set a pin up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Input,
    Output,
    /// Drives low, lets go for high.
    OpenDrain,
    /// An input with its interrupt enabled.
    Interrupt,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Input => "input",
            Mode::Output => "output",
            Mode::OpenDrain => "opendrain",
            Mode::Interrupt => "int",
        }
    }
}

/// A pin's internal weak resistors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pull {
    #[default]
    None,
    Up,
    Down,
    /// Both on (ESP32): they divide, and the pin reads high.
    UpDown,
}

impl Pull {
    pub fn name(self) -> &'static str {
        match self {
            Pull::None => "none",
            Pull::Up => "up",
            Pull::Down => "down",
            Pull::UpDown => "updown",
        }
    }

    fn level(self) -> Option<bool> {
        match self {
            Pull::None => None,
            Pull::Down => Some(false),
            Pull::Up | Pull::UpDown => Some(true),
        }
    }
}

/// Changes a pin keeps for the test module's `history` (older ones are dropped).
pub const HISTORY: usize = 10_000;

#[derive(Debug, Clone)]
struct Pin {
    mode: Mode,
    pull: Pull,
    /// The output register.
    out: bool,
    /// The output driver is on (an output, or any pin the script wrote: the chip enables it).
    driving: bool,
    pwm: Option<Pwm>,
    level: bool,
    net: usize,
    history: VecDeque<(Micros, u8)>,
}

#[derive(Debug, Clone, Default)]
struct Net {
    pins: Vec<u8>,
    /// Parts that can drive the net (contacts, signals).
    drivers: Vec<usize>,
    /// Parts that watch its level (LEDs, relays).
    watchers: Vec<usize>,
    /// Resistors to other nets: (part, the other net).
    resistors: Vec<(usize, usize)>,
    /// Resistors to a rail (a dev kit's pull-ups and pull-downs).
    pulls: Vec<usize>,
    /// One pin, no part: nothing but the pin decides its level.
    lone: bool,
}

/// The board's state. See the module doc.
#[derive(Debug, Clone)]
pub struct Board {
    chip: Chip,
    pins: Vec<Pin>,
    nets: Vec<Net>,
    parts: Vec<Part>,
    events: Vec<Event>,
    /// Only conflicts are events while quiet (nobody traces or waits for an edge).
    quiet: bool,
    conflicts: HashSet<Vec<String>>,
    /// The chips on I2C buses (`bus.rs`).
    chips: Vec<BusChip>,
    /// The master's side of each bus the script used, by its (SDA, SCL) pins.
    masters: Vec<((u8, u8), Master)>,
    /// The last I2C transfers, for the test module.
    i2c_log: VecDeque<Transfer>,
}

/// A ready board's parts by its name, for this chip.
fn ready(chip: Chip, name: &str) -> Result<Vec<PartSpec>, String> {
    match name {
        harness::NAME => Ok(harness::parts(chip)),
        harness::DUT1 => Ok(harness::dut1_parts(chip)),
        _ => devkit::parts(chip, name)
            .unwrap_or_else(|| Err(format!("no ready board is named \"{name}\""))),
    }
}

/// How two drivers on a net stand.
#[derive(Default, Clone, Copy)]
struct Drive {
    low: bool,
    high: bool,
}

impl Board {
    /// A board from the project's description.
    pub fn from_spec(chip: Chip, spec: &BoardSpec) -> Result<Board, String> {
        match spec {
            BoardSpec::Named(n) => Board::new(chip, &ready(chip, n)?),
            BoardSpec::Parts(p) => {
                let mut parts = match &p.ready {
                    Some(n) => ready(chip, n)?,
                    None => Vec::new(),
                };
                parts.extend(p.part.iter().cloned());
                let mut board = Board::new(chip, &parts)?;
                for (k, press) in p.press.iter().enumerate() {
                    let i = board
                        .part_named(&press.part)
                        .filter(|&i| {
                            matches!(board.parts[i].kind, Kind::Contact { button: true, .. })
                        })
                        .ok_or_else(|| {
                            format!("board press {}: no button named \"{}\"", k + 1, press.part)
                        })?;
                    let at = press.at.saturating_mul(1000);
                    board.schedule(i, at, Change::Close(true));
                    let end = press.at.saturating_add(press.duration).saturating_mul(1000);
                    board.schedule(i, end, Change::Close(false));
                }
                Ok(board)
            }
        }
    }

    /// A board with `parts` on it (none: the bare chip). Errors name the part by its position.
    pub fn new(chip: Chip, parts: &[PartSpec]) -> Result<Board, String> {
        let n = chip.pin_count();
        let mut board = Board {
            chip,
            pins: (0..n)
                .map(|i| Pin {
                    mode: Mode::Input,
                    pull: Pull::None,
                    out: false,
                    driving: false,
                    pwm: None,
                    level: false,
                    net: i as usize,
                    history: VecDeque::new(),
                })
                .collect(),
            nets: Vec::new(),
            parts: Vec::with_capacity(parts.len()),
            events: Vec::new(),
            quiet: false,
            conflicts: HashSet::new(),
            chips: Vec::new(),
            masters: Vec::new(),
            i2c_log: VecDeque::new(),
        };
        for (i, spec) in parts.iter().enumerate() {
            let fail = |e: String| format!("board part {} ({}): {e}", i + 1, spec.kind());
            if let Some(c) = bus::chip_from_spec(chip, spec).map_err(fail)? {
                board.add_chip(c).map_err(fail)?;
            }
        }
        for (i, spec) in parts.iter().enumerate() {
            let fail = |e: String| format!("board part {} ({}): {e}", i + 1, spec.kind());
            if bus::is_chip(spec) {
                continue;
            }
            let part = Part::from_spec(spec).map_err(fail)?;
            if let Kind::Analog { channel, .. } = part.kind
                && channel >= chip.adc_channels()
            {
                return Err(fail(format!(
                    "ADC channel {channel} does not exist on the {} (channels 0..{})",
                    chip.name(),
                    chip.adc_channels() - 1
                )));
            }
            if let Some(p) = part.pins().into_iter().find(|p| !board.is_pin(*p)) {
                return Err(fail(format!(
                    "pin {p} does not exist on the {} (pins 0..{})",
                    chip.name(),
                    n - 1
                )));
            }
            board.parts.push(part);
        }
        board.wire_nets();
        for net in 0..board.nets.len() {
            board.resolve(net, 0, Cow::Borrowed("board"), true);
        }
        board.events.clear();
        for p in &mut board.pins {
            p.history.clear();
        }
        Ok(board)
    }

    /// Joins wired pins into nets (union-find) and attaches each part to its net.
    fn wire_nets(&mut self) {
        let n = self.pins.len();
        let mut root: Vec<usize> = (0..n).collect();
        fn find(root: &mut [usize], mut i: usize) -> usize {
            while root[i] != i {
                root[i] = root[root[i]];
                i = root[i];
            }
            i
        }
        for part in &self.parts {
            if let Kind::Wire { pins: [a, b] } = part.kind {
                let (ra, rb) = (find(&mut root, a as usize), find(&mut root, b as usize));
                root[ra] = rb;
            }
        }
        let mut index = vec![usize::MAX; n];
        for pin in 0..n {
            let r = find(&mut root, pin);
            if index[r] == usize::MAX {
                index[r] = self.nets.len();
                self.nets.push(Net::default());
            }
            self.pins[pin].net = index[r];
            self.nets[index[r]].pins.push(pin as u8);
        }
        for (i, part) in self.parts.iter().enumerate() {
            match part.kind {
                Kind::Contact { pin, .. } | Kind::Signal { pin, .. } => {
                    self.nets[self.pins[pin as usize].net].drivers.push(i)
                }
                Kind::Led { pin, .. } | Kind::Relay { pin, .. } => {
                    self.nets[self.pins[pin as usize].net].watchers.push(i)
                }
                // A MAX7219 latches on its CS pin's rising edge.
                Kind::Max7219(ref m) => self.nets[self.pins[m.pin as usize].net].watchers.push(i),
                Kind::Pull { pin, .. } => self.nets[self.pins[pin as usize].net].pulls.push(i),
                Kind::Resistor { pins: [a, b], .. } => {
                    let (na, nb) = (self.pins[a as usize].net, self.pins[b as usize].net);
                    if na != nb {
                        self.nets[na].resistors.push((i, nb));
                        self.nets[nb].resistors.push((i, na));
                    }
                }
                Kind::Wire { .. }
                | Kind::Analog { .. }
                | Kind::AdcResistor { .. }
                | Kind::Ds18b20(_)
                | Kind::Dht(_)
                | Kind::Strip(_) => {}
            }
        }
        for n in &mut self.nets {
            n.lone = n.pins.len() == 1
                && n.drivers.is_empty()
                && n.watchers.is_empty()
                && n.resistors.is_empty()
                && n.pulls.is_empty();
        }
    }

    pub fn chip(&self) -> Chip {
        self.chip
    }

    /// Everything that changed since the last call, in order.
    pub fn take_events(&mut self) -> std::vec::Drain<'_, Event> {
        self.events.drain(..)
    }

    /// Quiet: level, mode, PWM and part changes make no events (history is still kept); only
    /// conflicts do. For a caller with no trace and no interrupt to serve.
    pub fn set_quiet(&mut self, quiet: bool) {
        self.quiet = quiet;
    }

    /// True when changes are waiting to be taken.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    // ---- the script's side ----

    /// `gpio.mode`: `pull` is ignored where the chip has none.
    pub fn set_mode(&mut self, pin: u8, mode: Mode, pull: Pull, t: Micros) {
        let pull = if self.chip.has_pulls(pin) {
            pull
        } else {
            Pull::None
        };
        let p = &mut self.pins[pin as usize];
        let changed = (p.mode, p.pull) != (mode, pull);
        p.mode = mode;
        p.pull = pull;
        p.driving = matches!(mode, Mode::Output | Mode::OpenDrain);
        let had_pwm = p.pwm.take().is_some();
        if changed {
            note(
                &mut self.events,
                self.quiet,
                Event::Mode {
                    t,
                    pin,
                    mode: mode.name(),
                    pull: pull.name(),
                },
            );
        }
        if had_pwm {
            note(
                &mut self.events,
                self.quiet,
                Event::Pwm { t, pin, pwm: None },
            );
        }
        let net = self.pins[pin as usize].net;
        self.resolve(net, t, Cow::Borrowed("gpio"), true);
    }

    /// `gpio.write`: sets the output register and turns the driver on, as the chip's write does
    /// even on a pin set up as an input.
    pub fn write(&mut self, pin: u8, high: bool, t: Micros) {
        let p = &mut self.pins[pin as usize];
        if p.driving && p.out == high && p.pwm.is_none() {
            return;
        }
        p.out = high;
        p.driving = true;
        let net = p.net;
        // A pin alone on its net with nothing attached reads what it drives.
        if self.nets[net].lone && p.mode != Mode::OpenDrain && p.pwm.is_none() {
            if p.level != high {
                p.level = high;
                record(
                    p,
                    &mut self.events,
                    self.quiet,
                    pin,
                    t,
                    Cow::Borrowed("gpio"),
                );
            }
            return;
        }
        self.resolve(net, t, Cow::Borrowed("gpio"), true);
    }

    /// What the pin reads at `t`.
    pub fn read(&self, pin: u8, t: Micros) -> u8 {
        let net = &self.nets[self.pins[pin as usize].net];
        if let Some(w) = net.pins.iter().find_map(|p| self.pwm_drive(*p)) {
            return w.level_at(t) as u8;
        }
        self.pins[pin as usize].level as u8
    }

    pub fn mode(&self, pin: u8) -> Mode {
        self.pins[pin as usize].mode
    }

    /// The pin's PWM output, if it is one.
    pub fn pwm(&self, pin: u8) -> Option<Pwm> {
        self.pins[pin as usize].pwm
    }

    /// Makes the pin a PWM output with this wave, or (None) a plain output again, driving low.
    pub fn set_pwm(&mut self, pin: u8, pwm: Option<Pwm>, t: Micros) {
        let p = &mut self.pins[pin as usize];
        if p.pwm == pwm && (pwm.is_none() || p.driving) {
            return;
        }
        if pwm.is_some() {
            p.mode = Mode::Output;
        }
        p.driving = true;
        p.out = false;
        p.pwm = pwm;
        note(&mut self.events, self.quiet, Event::Pwm { t, pin, pwm });
        let net = p.net;
        self.resolve(net, t, Cow::Borrowed("pwm"), true);
    }

    /// The pin's level changes, oldest first (at most [`HISTORY`]).
    pub fn history(&self, pin: u8) -> impl Iterator<Item = (Micros, u8)> + '_ {
        self.pins[pin as usize].history.iter().copied()
    }

    /// The ADC channel's raw reading: its potentiometer's or voltage's value, else what the
    /// resistors into it divide (`bus.rs`), else 0.
    pub fn adc(&self, channel: u8) -> u16 {
        self.parts
            .iter()
            .find_map(|p| match p.kind {
                Kind::Analog { channel: c, value } if c == channel => Some(value),
                _ => None,
            })
            .or_else(|| self.ladder(channel))
            .unwrap_or(0)
    }

    // ---- the parts' side ----

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The first part named `name`.
    pub fn part_named(&self, name: &str) -> Option<usize> {
        self.parts.iter().position(|p| p.name == name)
    }

    /// The first part on `pin` that `accept` accepts.
    pub fn part_on(&self, pin: u8, accept: impl Fn(&Kind) -> bool) -> Option<usize> {
        self.parts
            .iter()
            .position(|p| accept(&p.kind) && p.pins().contains(&pin))
    }

    /// The ADC part on `channel`.
    pub fn analog_on(&self, channel: u8) -> Option<usize> {
        self.parts
            .iter()
            .position(|p| matches!(p.kind, Kind::Analog { channel: c, .. } if c == channel))
    }

    /// Changes part `i` now (a test pressing a button).
    pub fn set_part(&mut self, i: usize, change: Change, t: Micros) {
        if self.parts[i].set(change) {
            self.part_changed(i, t);
        }
    }

    /// Sets ADC `channel`'s reading now: its part's value, or a new part named `adc` if the
    /// board has none there (a test setting a value the board file did not describe).
    pub fn set_adc(&mut self, channel: u8, value: u16, t: Micros) {
        let i = match self.analog_on(channel) {
            Some(i) => i,
            None => {
                let spec = PartSpec::Potentiometer(crate::spec::PotentiometerSpec {
                    pin: channel,
                    name: Some("adc".into()),
                    values: Vec::new(),
                });
                match Part::from_spec(&spec) {
                    Ok(p) => self.parts.push(p),
                    Err(_) => return,
                }
                self.parts.len() - 1
            }
        };
        self.set_part(i, Change::Value(value), t);
    }

    /// Schedules a change of part `i` (a test pressing a button for 200 ms).
    pub fn schedule(&mut self, i: usize, at: Micros, change: Change) {
        self.parts[i].schedule(at, change);
    }

    /// When the next scheduled change of any part is due.
    pub fn next_event(&self) -> Option<Micros> {
        self.parts.iter().filter_map(Part::next_at).min()
    }

    /// Applies every scheduled change due at or before `t`, each at its own time.
    pub fn advance(&mut self, t: Micros) {
        while let Some((i, at)) = self
            .parts
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.next_at().map(|at| (i, at)))
            .min_by_key(|(_, at)| *at)
            .filter(|(_, at)| *at <= t)
        {
            let before = self.parts[i].state();
            self.parts[i].apply_next();
            if self.parts[i].state() != before {
                self.part_changed(i, at);
            }
        }
    }

    fn part_changed(&mut self, i: usize, t: Micros) {
        let part = &self.parts[i];
        let by: Cow<'static, str> = Cow::Owned(part.name.clone());
        // A signal's every edge is a level event already; its state line would double them.
        if !matches!(part.kind, Kind::Signal { .. }) {
            note(&mut self.events, self.quiet, part.event(t));
        }
        if let Some(pin) = part.pins().first() {
            let net = self.pins[*pin as usize].net;
            self.resolve(net, t, by, true);
        }
    }
}
