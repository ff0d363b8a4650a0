//! The device's virtual board: the `board` crate's [`Board`] for this boot, and what its events
//! do to the device.
//!
//! One [`DeviceBoard`] per boot, made from `Config::board` when the modules are installed, shared
//! by `gpio`, `adc`, `pwm` and the test module (`simmod.rs`). After every change the bindings
//! call [`DeviceBoard::flush`]: each event goes to the `--trace` stream, a conflict is reported
//! once on stderr, and a level change on a pin with a `gpio.trig` callback queues the callback
//! as the firmware's interrupt task does. The board's schedule is one timer on the device clock
//! ([`DeviceBoard::rearm`]), so a virtual clock jumps to each scheduled change exactly.

mod simbus;
pub mod simmod;
mod simwire;

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Duration;

use board::{Board, BoardSpec, Chip, Event, Micros, Mode};
use mlua::{Function, Lua};

use crate::config::{Firmware, Target};
use crate::runtime::Runtime;

/// A `gpio.trig` interrupt type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrigKind {
    None,
    Up,
    Down,
    Both,
    Low,
    High,
}

impl TrigKind {
    fn is_level(self) -> bool {
        matches!(self, TrigKind::Low | TrigKind::High)
    }

    /// Does the pin reading `level` (after a change, or still) raise this interrupt?
    fn fires(self, level: u8) -> bool {
        match self {
            TrigKind::None => false,
            TrigKind::Both => true,
            TrigKind::Up | TrigKind::High => level == 1,
            TrigKind::Down | TrigKind::Low => level == 0,
        }
    }
}

/// A pin's interrupt: the firmware's `pin_counter` seen/reported pair and the first edge's data.
#[derive(Default)]
struct Trig {
    kind: Option<TrigKind>,
    callback: Option<Function>,
    /// A callback is queued and has not run yet: further edges only count.
    pending: bool,
    count: u32,
    level: u8,
    when: Micros,
}

/// How long a level-triggered interrupt stays off after its callback: the firmware re-enables it
/// at once, and on a board the callback itself took about this long.
const LEVEL_REARM: Duration = Duration::from_micros(100);

pub struct DeviceBoard {
    pub board: RefCell<Board>,
    /// Itself, for the jobs it queues.
    me: Weak<DeviceBoard>,
    /// Events being handed on (kept to reuse its allocation).
    buf: RefCell<Vec<Event>>,
    trig: RefCell<Vec<Trig>>,
    rt: Weak<Runtime>,
    firmware: Firmware,
    /// When the board's timer is armed for (its next scheduled change).
    armed: Cell<Option<Micros>>,
    /// The ESP32's interrupts: on any input pin with a type set, callback `(pin, level)`, and
    /// edges while one is queued are lost (the ISR disables the pin's interrupt until it ran).
    esp32: bool,
}

/// The chip whose pins a target's board has (`host` is an ESP8266 without limits).
pub fn chip(target: Target) -> Chip {
    match target {
        Target::Esp32 => Chip::Esp32,
        Target::Esp8266 | Target::Host => Chip::Esp8266,
    }
}

/// Device time in µs.
pub fn micros(rt: &Runtime) -> Micros {
    rt.now().as_micros() as Micros
}

impl DeviceBoard {
    /// This boot's board, made from the configuration on first use.
    pub fn get(rt: &Rc<Runtime>) -> Result<Rc<DeviceBoard>, String> {
        let slot = rt.state(|_| RefCell::new(None::<Rc<DeviceBoard>>));
        if let Some(b) = slot.borrow().clone() {
            return Ok(b);
        }
        let chip = chip(rt.cfg.target);
        let board = match &rt.cfg.board {
            Some(spec) => Board::from_spec(chip, spec)?,
            None => Board::from_spec(chip, &BoardSpec::Parts(Default::default()))?,
        };
        let pins = board.chip().pin_count() as usize;
        let db = Rc::new_cyclic(|me| DeviceBoard {
            board: RefCell::new(board),
            me: me.clone(),
            buf: RefCell::default(),
            trig: RefCell::new((0..pins).map(|_| Trig::default()).collect()),
            rt: Rc::downgrade(rt),
            firmware: rt.cfg.firmware,
            armed: Cell::new(None),
            esp32: chip == Chip::Esp32,
        });
        *slot.borrow_mut() = Some(db.clone());
        db.keep_alive();
        // Changes due at boot (a potentiometer's value at 0) are there before the script runs.
        db.board.borrow_mut().advance(0);
        db.settle();
        Ok(db)
    }

    fn runtime(&self) -> Option<Rc<Runtime>> {
        self.rt.upgrade()
    }

    /// The device time now.
    pub fn now(&self) -> Micros {
        self.runtime().map_or(0, |rt| micros(&rt))
    }

    /// `gpio.write`, the hot path: the board, then the events if there are any.
    pub fn write(&self, pin: u8, high: bool) {
        let t = self.now();
        let mut b = self.board.borrow_mut();
        b.write(pin, high, t);
        if b.has_events() {
            drop(b);
            self.flush();
        }
    }

    /// Hands the board's events on: the trace, conflicts to stderr, interrupts to the loop.
    pub fn flush(&self) {
        let Some(rt) = self.runtime() else { return };
        let mut events = std::mem::take(&mut *self.buf.borrow_mut());
        events.extend(self.board.borrow_mut().take_events());
        for e in events.drain(..) {
            if let Some(trace) = &rt.cfg.trace
                && let Ok(mut line) = serde_json::to_vec(&e)
            {
                line.push(b'\n');
                trace.line(&line);
            }
            match &e {
                // `gpio.trig` arms the pin's interrupt whatever its mode (the firmware's
                // `platform_gpio_intr_init`); `gpio.mode` to anything but INT drops the callback.
                Event::Level { t, pin, level, .. } => self.edge(&rt, *pin, *level, *t),
                Event::Conflict {
                    conflict, drivers, ..
                } => rt.diag(&format!(
                    "board: conflict on pin{} {}: {} (reading low)",
                    if conflict.len() > 1 { "s" } else { "" },
                    conflict
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    drivers.join(" against ")
                )),
                _ => {}
            }
        }
        *self.buf.borrow_mut() = events;
    }

    /// A pin in interrupt mode changed to `level` at `t`.
    fn edge(&self, rt: &Rc<Runtime>, pin: u8, level: u8, t: Micros) {
        let mut trig = self.trig.borrow_mut();
        // An expander's pins are board pins but no interrupt's.
        let Some(tr) = trig.get_mut(pin as usize) else {
            return;
        };
        if tr.callback.is_none() || !tr.kind.is_some_and(|k| k.fires(level)) {
            return;
        }
        if tr.pending && self.esp32 {
            return;
        }
        tr.count = tr.count.wrapping_add(1) & 0x7fff;
        if tr.pending {
            return; // the queued callback will report this edge in its count
        }
        tr.pending = true;
        tr.level = level;
        tr.when = t;
        drop(trig);
        self.queue_callback(rt, pin);
    }

    fn queue_callback(&self, rt: &Rc<Runtime>, pin: u8) {
        let Some(me) = self.me.upgrade() else { return };
        rt.event_sink()
            .push(Box::new(move |lua| me.run_callback(lua, pin)));
    }

    /// The firmware's interrupt task: the callback with `(level, when, eventcount)` (1.5: only
    /// `level`), then a level-triggered interrupt enabled again.
    fn run_callback(&self, lua: &Lua, pin: u8) -> mlua::Result<()> {
        let Some(rt) = self.runtime() else {
            return Ok(());
        };
        let (cb, level, when, count, kind) = {
            let mut trig = self.trig.borrow_mut();
            let tr = &mut trig[pin as usize];
            tr.pending = false;
            let count = std::mem::take(&mut tr.count);
            (tr.callback.clone(), tr.level, tr.when, count, tr.kind)
        };
        let Some(cb) = cb else { return Ok(()) };
        let when = (when & 0x7fff_ffff) as i64;
        let r = match self.firmware {
            _ if self.esp32 => rt.call_protected(lua, &cb, (i64::from(pin), level)),
            Firmware::V1_5 => rt.call_net(lua, &cb, level),
            Firmware::V2_2 => rt.call_net(lua, &cb, (level, when, count)),
            Firmware::V3_0 => rt.call_protected(lua, &cb, (level, when, count)),
        };
        if let Some(k) = kind.filter(|k| k.is_level()) {
            self.rearm_level(&rt, pin, k);
        }
        r
    }

    /// A level interrupt fires again while the level holds.
    fn rearm_level(&self, rt: &Rc<Runtime>, pin: u8, kind: TrigKind) {
        let Some(me) = self.me.upgrade() else { return };
        let weak = Rc::downgrade(rt);
        rt.arm_timer(
            LEVEL_REARM,
            Box::new(move |_| {
                let Some(rt) = weak.upgrade() else {
                    return Ok(());
                };
                let t = micros(&rt);
                let level = me.board.borrow().read(pin, t);
                let still = me.trig.borrow()[pin as usize].kind == Some(kind);
                if still && kind.fires(level) {
                    me.edge(&rt, pin, level, t);
                }
                Ok(())
            }),
        );
    }

    /// `gpio.trig(pin, type, fn)`: the callback and type (`None` callback: keep the old one).
    /// Queued interrupts are forgotten, as the firmware clears its counters.
    pub fn set_trig(&self, pin: u8, kind: TrigKind, callback: Option<Function>) {
        {
            let mut trig = self.trig.borrow_mut();
            let tr = &mut trig[pin as usize];
            if kind == TrigKind::None {
                tr.callback = None;
            } else if callback.is_some() {
                tr.callback = callback;
            }
            tr.kind = Some(kind);
            tr.count = 0;
        }
        self.keep_alive();
        // A level interrupt set while its level holds fires at once.
        if kind.is_level()
            && let Some(rt) = self.runtime()
        {
            let t = micros(&rt);
            let level = self.board.borrow().read(pin, t);
            let armed = self.esp32 || self.board.borrow().mode(pin) == Mode::Interrupt;
            if armed && kind.fires(level) {
                self.edge(&rt, pin, level, t);
            }
        }
    }

    /// True when the pin has a callback.
    pub fn has_trig(&self, pin: u8) -> bool {
        self.trig.borrow()[pin as usize].callback.is_some()
    }

    /// `gpio.mode` to anything but INT drops the pin's callback.
    pub fn clear_trig(&self, pin: u8) {
        self.trig.borrow_mut()[pin as usize].callback = None;
        self.keep_alive();
    }

    /// After a callback came or went: the schedule keeps the device alive while one waits, and
    /// the board records changes only while someone (the trace, a callback) wants them.
    fn keep_alive(&self) {
        if let Some(rt) = self.runtime() {
            let any = self.trig.borrow().iter().any(|t| t.callback.is_some());
            rt.set_board_keeps_alive(any);
            self.board
                .borrow_mut()
                .set_quiet(!any && rt.cfg.trace.is_none());
        }
    }

    /// Arms the board's timer for its next scheduled change, if that moved.
    pub fn rearm(&self) {
        let Some(rt) = self.runtime() else { return };
        let next = self.board.borrow().next_event();
        if next == self.armed.get() {
            return;
        }
        self.armed.set(next);
        let Some(at) = next else { return };
        let Some(me) = self.me.upgrade() else { return };
        rt.arm_board_timer(
            Duration::from_micros(at),
            Box::new(move |_| {
                me.armed.set(None);
                let t = me.now().max(at);
                me.board.borrow_mut().advance(t);
                me.flush();
                me.rearm();
                Ok(())
            }),
        );
    }

    /// After a change that may move the schedule (a test's press): events, then the timer.
    pub fn settle(&self) {
        self.flush();
        self.rearm();
    }
}
