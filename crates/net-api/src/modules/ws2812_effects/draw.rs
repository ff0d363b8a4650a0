//! The effects' drawing: each step of each effect into the buffer, with the firmware's integer
//! arithmetic (see the module doc in `ws2812_effects.rs`).

use super::*;

/// The delay until the next step: set explicitly, or from the speed per effect.
pub(super) fn mode_delay(s: &State, rand: &mut Rand) -> u32 {
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
pub(super) fn bright(s: &State, v: i32) -> u8 {
    (v * i32::from(s.brightness) / 255) as u8
}

/// Every pixel `[g, r, b, w]` scaled by the brightness (no W byte on 3-channel buffers).
pub(super) fn fill(s: &State, grbw: [u8; 4]) {
    let px: Vec<u8> = grbw.iter().map(|v| bright(s, i32::from(*v))).collect();
    let mut b = s.buffer.0.borrow_mut();
    let n = b.nchan;
    for p in b.values.chunks_mut(n) {
        let k = p.len().min(4);
        p[..k].copy_from_slice(&px[..k]);
    }
}

pub(super) fn fill_color(s: &State) {
    fill(s, s.color);
}

/// Every pixel's first three bytes from `f(index)`; any further channels 0.
pub(super) fn per_pixel(s: &State, mut f: impl FnMut(usize) -> [u8; 3]) {
    let mut b = s.buffer.0.borrow_mut();
    let n = b.nchan;
    for (i, p) in b.values.chunks_mut(n).enumerate() {
        let c = f(i);
        for (k, v) in p.iter_mut().enumerate() {
            *v = c.get(k).copied().unwrap_or(0);
        }
    }
}

pub(super) fn blink(s: &State) {
    if s.call % 2 == 1 {
        fill_color(s);
    } else {
        s.buffer.0.borrow_mut().values.fill(0);
    }
}

/// A wheel colour as the firmware writes it: the packed R byte first, then G, then B.
pub(super) fn wheel_bytes(s: &State, pos: u16) -> [u8; 3] {
    let c = color_wheel(pos) as i32;
    [
        bright(s, c >> 8 & 0xFF),
        bright(s, c >> 16 & 0xFF),
        bright(s, c & 0xFF),
    ]
}

pub(super) fn random_color(s: &mut State, rand: &mut Rand) {
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

pub(super) fn rainbow(s: &mut State) {
    let c = wheel_bytes(s, s.step as u16);
    per_pixel(s, |_| c);
    s.step = (s.step + 1) % 360;
}

pub(super) fn rainbow_cycle(s: &State, repeat: i32) {
    let npix = s.buffer.0.borrow().npix.max(1) as i32;
    per_pixel(s, |i| {
        let idx = ((i as i32 * 360 / npix).wrapping_mul(repeat) % 360) as u16;
        wheel_bytes(s, idx)
    });
}

pub(super) fn flicker(s: &State, max: u8, rand: &mut Rand) {
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
pub(super) fn pattern(s: &State, period: usize, bands: &[(usize, [u8; 3])]) {
    per_pixel(s, |i| {
        let c = bands
            .iter()
            .find(|(lim, _)| i % period < *lim)
            .map_or([0; 3], |(_, c)| *c);
        c.map(|v| bright(s, i32::from(v)))
    });
}

pub(super) fn larson(s: &mut State) {
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

pub(super) fn color_wipe(s: &mut State) {
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

pub(super) fn random_dot(s: &mut State, dots: u8, rand: &mut Rand) {
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
pub(super) fn rotate(s: &State) {
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
pub(super) fn gradient(s: &State, spec: &[u8], hsv: bool) {
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
