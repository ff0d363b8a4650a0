//! `color_utils`: the firmware's colour conversions (`color_utils.c`), for LED strips: HSV to
//! GRB(W), GRB to HSV and the colour wheel. `ws2812_effects` uses the same functions.
//!
//! The arithmetic is the firmware's integer arithmetic, so the results match a board's to the
//! unit, including `colorWheel` handing back its colour as R, G, B (the C code names the bytes
//! the other way round, and the effects carry that along).

use mlua::Lua;

use crate::lauxlib::{Args, FwResult, arg_check, bind};
use crate::modules::module_table;

/// A colour packed as `0x00GGRRBB`, from hue 0..360, saturation and value 0..255.
pub fn hsv2grb(hue: u16, sat: u8, val: u8) -> u32 {
    let accent = (hue % 360) / 60;
    let bottom = ((255 - i32::from(sat)) * i32::from(val)) >> 8;
    let top = i32::from(val);
    let rising = (((top - bottom) * i32::from(hue % 60)) / 60 + bottom) as u8;
    let falling = (((top - bottom) * i32::from(60 - hue % 60)) / 60 + bottom) as u8;
    let (top, bottom) = (top as u8, bottom as u8);
    let (r, g, b) = match accent {
        0 => (top, rising, bottom),
        1 => (falling, top, bottom),
        2 => (bottom, top, rising),
        3 => (bottom, falling, top),
        4 => (rising, bottom, top),
        _ => (top, bottom, falling),
    };
    u32::from(g) << 16 | u32::from(r) << 8 | u32::from(b)
}

/// `0xGGRRBBWW`: the white part taken out of the colour.
pub fn hsv2grbw(hue: u16, sat: u8, val: u8) -> u32 {
    let grb = hsv2grb(hue, sat, val);
    let (g, r, b) = ((grb >> 16) as u8, (grb >> 8) as u8, grb as u8);
    let w = g.min(r).min(b);
    u32::from(g - w) << 24 | u32::from(r - w) << 16 | u32::from(b - w) << 8 | u32::from(w)
}

/// `0xHHHHSSVV` (a grey's hue is -1, all ones).
pub fn grb2hsv(g: u8, r: u8, b: u8) -> u32 {
    let (m, mx) = (r.min(g).min(b), r.max(g).max(b));
    let delta = i32::from(mx - m);
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let (hue, sat) = if delta == 0 {
        (-1, 0)
    } else {
        let mut h = if r == i32::from(mx) {
            ((g - b) * 60) / delta
        } else if g == i32::from(mx) {
            ((b - r) * 60) / delta + 120
        } else {
            ((r - g) * 60) / delta + 240
        };
        if h < 0 {
            h += 360;
        }
        (h, (256 * delta - 8) / i32::from(mx))
    };
    ((hue as u32) << 16) | ((sat as u32) << 8) | u32::from(mx)
}

/// The wheel's colour at `pos` (0..360): full saturation and value, packed as [`hsv2grb`].
pub fn color_wheel(pos: u16) -> u32 {
    hsv2grb(pos, 255, 255)
}

/// `luaL_checkint` then the range check of a hue.
fn hsv_args(a: &Args) -> FwResult<(u16, u8, u8)> {
    let (h, s, v) = (
        a.check_integer(1)? as i32,
        a.check_integer(2)? as i32,
        a.check_integer(3)? as i32,
    );
    arg_check((0..=360).contains(&h), 1, "should be a 0-360")?;
    arg_check((0..=255).contains(&s), 2, "should be 0-255")?;
    arg_check((0..=255).contains(&v), 3, "should be 0-255")?;
    Ok((h as u16, s as u8, v as u8))
}

pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let hsv2grb_ = bind(lua, |_, a| {
        let (h, s, v) = hsv_args(&a)?;
        let c = hsv2grb(h, s, v);
        Ok((c >> 16 & 0xFF, c >> 8 & 0xFF, c & 0xFF))
    })?;
    let hsv2grbw_ = bind(lua, |_, a| {
        let (h, s, v) = hsv_args(&a)?;
        let c = hsv2grbw(h, s, v);
        Ok((c >> 24, c >> 16 & 0xFF, c >> 8 & 0xFF, c & 0xFF))
    })?;
    let wheel = bind(lua, |_, a| {
        let i = a.check_integer(1)? as i32;
        arg_check((0..=360).contains(&i), 1, "should be a 0-360")?;
        let c = color_wheel(i as u16);
        // The C code's "r" is the packed G byte and its "g" the R byte; it pushes g, r, b.
        Ok((c >> 8 & 0xFF, c >> 16 & 0xFF, c & 0xFF))
    })?;
    let to_hsv = bind(lua, |_, a| {
        let (g, r, b) = (
            a.check_integer(1)? as i32,
            a.check_integer(2)? as i32,
            a.check_integer(3)? as i32,
        );
        arg_check(
            g != r || g != b,
            1,
            "greyscale value cannot be converted to hsv",
        )?;
        let hsv = grb2hsv(g as u8, r as u8, b as u8);
        Ok((hsv >> 16, hsv >> 8 & 0xFF, hsv & 0xFF))
    })?;
    let t = module_table(
        lua,
        vec![
            ("hsv2grb", hsv2grb_),
            ("hsv2grbw", hsv2grbw_),
            ("colorWheel", wheel),
            ("grb2hsv", to_hsv),
        ],
    )?;
    lua.globals().set("color_utils", t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_match_the_firmware_arithmetic() {
        // Pure red, green and blue; a half-saturated orange.
        assert_eq!(hsv2grb(0, 255, 255), 0x0000_FF00);
        assert_eq!(hsv2grb(120, 255, 255), 0x00FF_0000);
        assert_eq!(hsv2grb(240, 255, 255), 0x00_0000FF);
        assert_eq!(hsv2grb(30, 128, 200), 0x0095_C863);
        assert_eq!(grb2hsv(0, 255, 0), 0x0000_FFFF);
        assert_eq!(hsv2grbw(0, 128, 200) & 0xFF, 99);
        assert_eq!(color_wheel(360), color_wheel(0));
    }
}
