//! `ws2812_effects`: the firmware's LED-strip animations (`ws2812_effects.c`), drawn into a
//! `pixbuf` buffer and sent out through `ws2812` on a timer of the device clock.
//!
//! Every effect is the firmware's integer arithmetic step for step, including its oddities
//! (the colour wheel's red and green land swapped, the gradient keeps the first colour's
//! saturation and value, rotating effects send each frame twice), so a strip's frames match
//! a board's. The random effects use newlib's `rand()` from its default seed, so a run is
//! repeatable. Where the firmware would divide by zero or write past the buffer (a one-LED
//! strip, a window too small) the simulator leaves those bytes alone instead.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use mlua::{Lua, MultiValue, Value};

use crate::config::Firmware;
use crate::devboard::DeviceBoard;
use crate::lauxlib::{Args, FwResult, arg_check, arg_err, bind};
use crate::modules::color_utils::{color_wheel, grb2hsv, hsv2grb};
use crate::modules::pixbuf::{self, Pixbuf};
use crate::modules::{module_table, ws2812};
use crate::runtime::Runtime;
use draw::*;

mod draw;
use host_backend::timers::TimerKey;

const NOT_INITIALIZED: &str = "please call init() first";
const PARAM_INVALID: i32 = -10000;

/// Effect names, in the firmware's order (their index is the effect type).
const MODES: &[&str] = &[
    "static",
    "blink",
    "gradient",
    "gradient_rgb",
    "random_color",
    "rainbow",
    "rainbow_cycle",
    "flicker",
    "fire",
    "fire_soft",
    "fire_intense",
    "halloween",
    "circus_combustus",
    "larson_scanner",
    "cycle",
    "color_wipe",
    "random_dot",
];
const STATIC: usize = 0;
const BLINK: usize = 1;
const GRADIENT: usize = 2;
const GRADIENT_RGB: usize = 3;
const RANDOM_COLOR: usize = 4;
const RAINBOW: usize = 5;
const RAINBOW_CYCLE: usize = 6;
const FLICKER: usize = 7;
const FIRE: usize = 8;
const FIRE_SOFT: usize = 9;
const FIRE_INTENSE: usize = 10;
const HALLOWEEN: usize = 11;
const CIRCUS: usize = 12;
const LARSON: usize = 13;
const CYCLE: usize = 14;
const COLOR_WIPE: usize = 15;
const RANDOM_DOT: usize = 16;

/// The module's state after `init`.
struct State {
    buffer: Pixbuf,
    mode_delay: u32,
    call: u32,
    step: u32,
    color_index: u8,
    speed: u8,
    brightness: u8,
    running: bool,
    effect: usize,
    /// G, R, B, W.
    color: [u8; 4],
    param: i32,
    /// The rotation of the rotating effects: pixels, negative to the left.
    shift: i32,
    timer: Option<TimerKey>,
}

/// newlib's `rand()`: a 64-bit LCG from seed 1, its top 31 bits.
struct Rand(u64);

impl Rand {
    fn next(&mut self) -> i32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        ((self.0 >> 32) & 0x7fff_ffff) as i32
    }
}

struct Effects {
    rt: Rc<Runtime>,
    db: Rc<DeviceBoard>,
    state: RefCell<Option<State>>,
    rand: RefCell<Rand>,
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let db = DeviceBoard::get(rt).map_err(mlua::Error::runtime)?;
    let fx = Rc::new(Effects {
        rt: rt.clone(),
        db,
        state: RefCell::new(None),
        rand: RefCell::new(Rand(1)),
    });
    let with = |f: fn(&Rc<Effects>, &Lua, &Args) -> FwResult<Option<i64>>| {
        let fx = fx.clone();
        // Most functions return nothing; the getters (and `set_delay`) one integer.
        bind(lua, move |lua, a| {
            f(&fx, lua, &a).map(|r| {
                r.map_or_else(MultiValue::new, |v| {
                    MultiValue::from_iter([Value::Integer(v)])
                })
            })
        })
    };
    let t = module_table(
        lua,
        vec![
            ("init", with(init)?),
            ("set_brightness", with(set_brightness)?),
            ("set_color", with(set_color)?),
            ("set_speed", with(set_speed)?),
            ("set_delay", with(set_delay)?),
            ("set_mode", with(set_mode)?),
            ("start", with(start)?),
            ("stop", with(stop)?),
            ("get_delay", with(get_delay)?),
            ("get_speed", with(get_speed)?),
        ],
    )?;
    t.set("__tostring", bind(lua, |_, _| Ok("[effects]"))?)?;
    lua.globals().set("ws2812_effects", t)
}

/// The state, or the firmware's argument error before `init`.
fn with_state<R>(fx: &Effects, f: impl FnOnce(&mut State) -> FwResult<R>) -> FwResult<R> {
    let mut s = fx.state.borrow_mut();
    match s.as_mut() {
        Some(s) => f(s),
        None => arg_err(1, NOT_INITIALIZED),
    }
}

fn init(fx: &Rc<Effects>, _: &Lua, a: &Args) -> FwResult<Option<i64>> {
    // The note came with 3.0; 2.2.1's module has none.
    if fx.rt.cfg.firmware >= Firmware::V3_0 {
        fx.rt.deprecation_note(
            "ws2812_effects",
            "soon; please see https://github.com/nodemcu/nodemcu-firmware/issues/3122",
        );
    }
    let buffer = pixbuf::check(a, 1)?;
    if let Some(old) = fx.state.borrow_mut().take()
        && let Some(k) = old.timer
    {
        fx.rt.cancel_timer(k);
    }
    *fx.state.borrow_mut() = Some(State {
        buffer,
        mode_delay: 100,
        call: 0,
        step: 0,
        color_index: 0,
        speed: 150,
        brightness: 100,
        running: false,
        effect: STATIC,
        color: [0; 4],
        param: 0,
        shift: 0,
        timer: None,
    });
    Ok(None)
}

fn set_color(fx: &Rc<Effects>, _: &Lua, a: &Args) -> FwResult<Option<i64>> {
    with_state(fx, |s| {
        let g = a.check_integer(1)? as u8;
        let r = a.check_integer(2)? as u8;
        let b = a.check_integer(3)? as u8;
        let w = a.opt_integer(4, 0)? as u8;
        s.color = [g, r, b, w];
        Ok(None)
    })
}

fn get_speed(fx: &Rc<Effects>, _: &Lua, _: &Args) -> FwResult<Option<i64>> {
    with_state(fx, |s| Ok(Some(i64::from(s.speed))))
}

fn get_delay(fx: &Rc<Effects>, _: &Lua, _: &Args) -> FwResult<Option<i64>> {
    with_state(fx, |s| Ok(Some(i64::from(s.mode_delay))))
}

/// The speed is checked as a number before the state, as in the firmware.
fn set_speed(fx: &Rc<Effects>, _: &Lua, a: &Args) -> FwResult<Option<i64>> {
    let speed = a.check_integer(1)? as i32;
    with_state(fx, |s| {
        arg_check((0..=255).contains(&speed), 1, "should be 0-255")?;
        s.speed = speed as u8;
        s.mode_delay = 10;
        Ok(None)
    })
}

/// `set_delay(ms)`: the firmware returns one value (its argument) here.
fn set_delay(fx: &Rc<Effects>, _: &Lua, a: &Args) -> FwResult<Option<i64>> {
    with_state(fx, |s| {
        let delay = a.check_integer(1)? as i32;
        arg_check(delay >= 10, 1, "must be equal / larger than 10")?;
        s.mode_delay = delay as u32;
        s.speed = 0;
        Ok(Some(i64::from(delay)))
    })
}

fn set_brightness(fx: &Rc<Effects>, _: &Lua, a: &Args) -> FwResult<Option<i64>> {
    let b = a.check_integer(1)? as i32;
    with_state(fx, |s| {
        arg_check((0..=255).contains(&b), 1, "should be 0-255")?;
        s.brightness = b as u8;
        Ok(None)
    })
}

/// `set_mode(name[, param])`.
fn set_mode(fx: &Rc<Effects>, lua: &Lua, a: &Args) -> FwResult<Option<i64>> {
    if fx.state.borrow().is_none() {
        return arg_err(1, NOT_INITIALIZED);
    }
    let name = a.check_str(lua, 1)?;
    let Some(effect) = MODES.iter().position(|m| *m == name) else {
        return arg_err(1, format!("invalid option '{name}'"));
    };
    let param = if a.is_number(2) {
        a.opt_integer(2, i64::from(PARAM_INVALID))? as i32
    } else {
        PARAM_INVALID
    };
    let mut rand = fx.rand.borrow_mut();
    let mut write = false;
    with_state(fx, |s| {
        s.effect = effect;
        s.step = 0;
        match effect {
            STATIC => {
                fill_color(s);
                s.mode_delay = 250;
            }
            BLINK => blink(s),
            GRADIENT | GRADIENT_RGB => {
                if !a.is_string(2) || a.is_number(2) {
                    return arg_err(2, "string expected");
                }
                let spec = a.check_bytes(lua, 2)?.as_bytes().to_vec();
                let n = s.buffer.0.borrow().nchan;
                if spec.len() / n < 2 || spec.len() % n != 0 {
                    return arg_err(
                        2,
                        "must be at least two colors and same size as buffer colors",
                    );
                }
                gradient(s, &spec, effect == GRADIENT);
                write = true;
            }
            RANDOM_COLOR => random_color(s, &mut rand),
            RAINBOW => rainbow(s),
            RAINBOW_CYCLE => {
                rainbow_cycle(s, if param != PARAM_INVALID { param } else { 1 });
                s.shift = 1;
            }
            FLICKER => s.param = param,
            FIRE | FIRE_SOFT | FIRE_INTENSE => s.color = [255 - 40, 255, 40, 0],
            HALLOWEEN => {
                pattern(s, 4, &[(2, [50, 255, 0]), (4, [0, 255, 130])]);
                s.shift = 1;
            }
            CIRCUS => {
                pattern(
                    s,
                    6,
                    &[(2, [0, 255, 0]), (4, [255, 255, 255]), (6, [0, 0, 0])],
                );
                s.shift = 1;
            }
            LARSON => larson(s),
            CYCLE => {
                if param != PARAM_INVALID {
                    s.param = param;
                }
                s.shift = s.param;
            }
            COLOR_WIPE => {
                fill(s, [0, 0, 0, 0]);
                color_wipe(s);
            }
            _ => {
                s.param = param;
                fill(s, [0, 0, 0, 0]);
            }
        }
        Ok(())
    })?;
    drop(rand);
    if write {
        fx.write();
    }
    Ok(None)
}

fn start(fx: &Rc<Effects>, _: &Lua, _: &Args) -> FwResult<Option<i64>> {
    let delay = with_state(fx, |s| {
        if let Some(k) = s.timer.take() {
            fx.rt.cancel_timer(k);
        }
        s.running = true;
        s.call = 0;
        s.step = 0;
        Ok(s.mode_delay)
    })?;
    fx.arm(delay);
    Ok(None)
}

fn stop(fx: &Rc<Effects>, _: &Lua, _: &Args) -> FwResult<Option<i64>> {
    with_state(fx, |s| {
        if let Some(k) = s.timer.take() {
            fx.rt.cancel_timer(k);
        }
        s.running = false;
        Ok(None)
    })
}

impl Effects {
    /// The buffer out to the strip.
    fn write(&self) {
        let data = match self.state.borrow().as_ref() {
            Some(s) => s.buffer.0.borrow().values.clone(),
            None => return,
        };
        ws2812::send(&self.rt, &self.db, &data, &[]);
    }

    fn arm(self: &Rc<Self>, delay: u32) {
        let me = self.clone();
        let key = self.rt.arm_timer(
            Duration::from_millis(u64::from(delay)),
            Box::new(move |_| {
                me.step();
                Ok(())
            }),
        );
        if let Some(s) = self.state.borrow_mut().as_mut() {
            s.timer = Some(key);
        }
    }

    /// One step of the running effect (the firmware's `ws2812_effects_loop`).
    fn step(self: &Rc<Self>) {
        let mut rand = self.rand.borrow_mut();
        let mut shifted = false;
        let next = {
            let mut st = self.state.borrow_mut();
            let Some(s) = st.as_mut() else { return };
            s.timer = None;
            match s.effect {
                BLINK => blink(s),
                RAINBOW => rainbow(s),
                RAINBOW_CYCLE | HALLOWEEN | CIRCUS | CYCLE => {
                    rotate(s);
                    shifted = true;
                }
                FLICKER | FIRE | FIRE_SOFT | FIRE_INTENSE => {
                    let max = match s.effect {
                        FLICKER if s.param == 0 => 50,
                        FLICKER if s.param != PARAM_INVALID => s.param,
                        FLICKER => 100,
                        FIRE => 110,
                        FIRE_SOFT => 70,
                        _ => 170,
                    };
                    flicker(s, max as u8, &mut rand);
                    s.step = (s.step + 1) % 256;
                }
                RANDOM_COLOR => random_color(s, &mut rand),
                LARSON => larson(s),
                COLOR_WIPE => color_wipe(s),
                RANDOM_DOT => {
                    let dots = if s.param != PARAM_INVALID {
                        s.param as u8
                    } else {
                        1
                    };
                    random_dot(s, dots, &mut rand);
                }
                _ => {}
            }
            s.mode_delay = mode_delay(s, &mut rand);
            s.call = s.call.wrapping_add(1) % u32::MAX;
            (s.running && s.mode_delay >= 10).then_some(s.mode_delay)
        };
        drop(rand);
        if shifted {
            self.write();
        }
        self.write();
        if let Some(d) = next {
            self.arm(d);
        }
    }
}
