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

use crate::devboard::DeviceBoard;
use crate::lauxlib::{Args, FwResult, arg_check, arg_err, bind};
use crate::modules::color_utils::{color_wheel, grb2hsv, hsv2grb};
use crate::modules::pixbuf::{self, Pixbuf};
use crate::modules::{module_table, ws2812};
use crate::runtime::Runtime;
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
    fx.rt.uart(
        b"Warning, deprecated API! ws2812_effects. It will be removed soon; please see \
          https://github.com/nodemcu/nodemcu-firmware/issues/3122. See documentation for details.\n",
    );
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

/// The delay until the next step: set explicitly, or from the speed per effect.
fn mode_delay(s: &State, rand: &mut Rand) -> u32 {
    if s.speed == 0 && s.mode_delay > 0 {
        return s.mode_delay;
    }
    let slow = 255 - u32::from(s.speed);
    match s.effect {
        FLICKER | FIRE | FIRE_SOFT | FIRE_INTENSE => {
            30 + (rand.next() % 100) as u32 + 200 * slow / 255
        }
        STATIC | GRADIENT | GRADIENT_RGB => 10,
        _ => 10 + 1000 * slow / 255,
    }
}

/// A channel scaled by the brightness.
fn bright(s: &State, v: i32) -> u8 {
    (v * i32::from(s.brightness) / 255) as u8
}

/// Every pixel `[g, r, b, w]` scaled by the brightness (no W byte on 3-channel buffers).
fn fill(s: &State, grbw: [u8; 4]) {
    let px: Vec<u8> = grbw.iter().map(|v| bright(s, i32::from(*v))).collect();
    let mut b = s.buffer.0.borrow_mut();
    let n = b.nchan;
    for p in b.values.chunks_mut(n) {
        let k = p.len().min(4);
        p[..k].copy_from_slice(&px[..k]);
    }
}

fn fill_color(s: &State) {
    fill(s, s.color);
}

/// Every pixel's first three bytes from `f(index)`; any further channels 0.
fn per_pixel(s: &State, mut f: impl FnMut(usize) -> [u8; 3]) {
    let mut b = s.buffer.0.borrow_mut();
    let n = b.nchan;
    for (i, p) in b.values.chunks_mut(n).enumerate() {
        let c = f(i);
        for (k, v) in p.iter_mut().enumerate() {
            *v = c.get(k).copied().unwrap_or(0);
        }
    }
}

fn blink(s: &State) {
    if s.call % 2 == 1 {
        fill_color(s);
    } else {
        s.buffer.0.borrow_mut().values.fill(0);
    }
}

/// A wheel colour as the firmware writes it: the packed R byte first, then G, then B.
fn wheel_bytes(s: &State, pos: u16) -> [u8; 3] {
    let c = color_wheel(pos) as i32;
    [
        bright(s, c >> 8 & 0xFF),
        bright(s, c >> 16 & 0xFF),
        bright(s, c & 0xFF),
    ]
}

fn random_color(s: &mut State, rand: &mut Rand) {
    // The firmware keeps these in bytes, so the wheel index wraps at 256.
    let pos = s.color_index;
    let mut d = 0u8;
    let mut r = 0u8;
    while d < 42 {
        r = (rand.next() % 360) as u8;
        let diff = i32::from(pos) - i32::from(r);
        let x = (if diff > 0 { diff } else { -diff }) as u8;
        let y = (360 - i32::from(x)) as u8;
        d = x.min(y);
    }
    s.color_index = r;
    let c = wheel_bytes(s, u16::from(r));
    per_pixel(s, |_| c);
}

fn rainbow(s: &mut State) {
    let c = wheel_bytes(s, s.step as u16);
    per_pixel(s, |_| c);
    s.step = (s.step + 1) % 360;
}

fn rainbow_cycle(s: &State, repeat: i32) {
    let npix = s.buffer.0.borrow().npix.max(1) as i32;
    per_pixel(s, |i| {
        let idx = ((i as i32 * 360 / npix).wrapping_mul(repeat) % 360) as u16;
        wheel_bytes(s, idx)
    });
}

fn flicker(s: &State, max: u8, rand: &mut Rand) {
    let [g, r, b, _] = s.color.map(i32::from);
    per_pixel(s, |_| {
        let f = rand.next() % i32::from(max.max(1));
        [
            bright(s, (g - f).max(0)),
            bright(s, (r - f).max(0)),
            bright(s, (b - f).max(0)),
        ]
    });
}

/// Repeating bands: pixel `i % period` below each bound takes that band's G, R, B.
fn pattern(s: &State, period: usize, bands: &[(usize, [u8; 3])]) {
    per_pixel(s, |i| {
        let c = bands
            .iter()
            .find(|(lim, _)| i % period < *lim)
            .map_or([0; 3], |(_, c)| *c);
        c.map(|v| bright(s, i32::from(v)))
    });
}

fn larson(s: &mut State) {
    let mut b = s.buffer.0.borrow_mut();
    b.values.iter_mut().for_each(|v| *v >>= 2);
    let npix = b.npix as u32;
    let pos = if s.step < npix {
        s.step
    } else {
        (npix * 2).wrapping_sub(s.step).wrapping_sub(2)
    };
    let at = pos as usize * b.nchan;
    for (k, c) in [(0, s.color[0]), (1, s.color[1]), (2, s.color[2])] {
        if let Some(v) = b.values.get_mut(at + k) {
            *v = c;
        }
    }
    let m = (npix * 2).saturating_sub(2);
    s.step = if m == 0 { 0 } else { (s.step + 1) % m };
}

fn color_wipe(s: &mut State) {
    let (npix, n) = {
        let b = s.buffer.0.borrow();
        (b.npix as u32, b.nchan)
    };
    if npix == 0 {
        return;
    }
    let at = (s.step % npix) as usize * n;
    let c = if s.step >= npix {
        [0; 3]
    } else {
        [s.color[0], s.color[1], s.color[2]].map(|v| bright(s, i32::from(v)))
    };
    s.buffer.0.borrow_mut().values[at..at + 3].copy_from_slice(&c);
    s.step = (s.step + 1) % (npix * 2);
}

fn random_dot(s: &mut State, dots: u8, rand: &mut Rand) {
    let mut b = s.buffer.0.borrow_mut();
    b.values.iter_mut().for_each(|v| *v >>= 1);
    let (npix, n) = (b.npix, b.nchan);
    for _ in 0..dots {
        if npix == 0 {
            break;
        }
        let at = (rand.next() as usize % npix) * n;
        b.values[at..at + 3].copy_from_slice(&[s.color[0], s.color[1], s.color[2]]);
        if n == 4 {
            b.values[at + 3] = s.color[3];
        }
    }
    let m = (npix as u32 * 2).saturating_sub(2);
    s.step = if m == 0 { 0 } else { (s.step + 1) % m };
}

/// The rotating effects' step: the whole buffer rotated by `shift` pixels.
fn rotate(s: &State) {
    let mut b = s.buffer.0.borrow_mut();
    let len = b.values.len();
    if len == 0 {
        return;
    }
    let by = (s.shift.unsigned_abs() as usize * b.nchan) % len;
    if s.shift < 0 {
        b.values.rotate_left(by);
    } else {
        b.values.rotate_right(by);
    }
}

/// `gradient` (through HSV) and `gradient_rgb` (straight lines in RGB) over the buffer.
fn gradient(s: &State, spec: &[u8], hsv: bool) {
    let (npix, n) = {
        let b = s.buffer.0.borrow();
        (b.npix as i32, b.nchan)
    };
    let colours: Vec<[i32; 3]> = spec
        .chunks(n)
        .map(|c| [i32::from(c[0]), i32::from(c[1]), i32::from(c[2])])
        .collect();
    let segments = colours.len() as i32 - 1;
    let size = npix / segments;
    let mut out: Vec<[u8; 3]> = Vec::with_capacity(npix as usize);
    for k in 0..segments as usize {
        let (c1, c2) = (colours[k], colours[k + 1]);
        let count = if k as i32 == segments - 1 {
            npix - size * (segments - 1)
        } else {
            size
        };
        let steps = (count - 1).max(1);
        let hsv1 = grb2hsv(c1[0] as u8, c1[1] as u8, c1[2] as u8);
        let hsv2 = grb2hsv(c2[0] as u8, c2[1] as u8, c2[2] as u8);
        let (h1, h2) = ((hsv1 >> 16) as u16 as i32, (hsv2 >> 16) as u16 as i32);
        // The firmware takes the second colour's saturation and value from the first.
        let (s1, v1) = ((hsv1 >> 8 & 0xFF) as i32, (hsv1 & 0xFF) as i32);
        let ccw = if h1 > h2 { h1 - h2 } else { 360 + h1 - h2 };
        let cw = if h1 > h2 { 360 + h2 - h1 } else { h2 - h1 };
        for i in 0..count {
            let px = if hsv {
                let mut h = if ccw > cw {
                    h1 + ((cw * i / steps) % 360)
                } else {
                    h1 - (ccw * i / steps)
                };
                if h < 0 {
                    h += 360;
                }
                if h > 359 {
                    h -= 360;
                }
                let grb = hsv2grb(h as u16, s1 as u8, v1 as u8) as i32;
                [grb >> 16 & 0xFF, grb >> 8 & 0xFF, grb & 0xFF].map(|v| bright(s, v))
            } else {
                [0, 1, 2].map(|j| bright(s, c1[j] + (c2[j] - c1[j]) * i / steps))
            };
            out.push(px);
        }
    }
    per_pixel(s, |i| out.get(i).copied().unwrap_or([0; 3]));
}
