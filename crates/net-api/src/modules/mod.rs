//! The firmware's C modules, one file each, and the shape every handle type shares.
//!
//! A handle type (`tmr.timer`, `net.tcpsocket`, ...) is a thin Rust handle around shared state. Its
//! methods are firmware-style bindings collected in a table kept in the registry under the
//! firmware's metatable name, which is also the name argument errors use
//! (`calling 'send' on bad self (net.tcpsocket expected, got userdata)`).

use std::rc::Rc;

use mlua::{Function, Lua, Table, Value};

use crate::config::Firmware;
use crate::runtime::{Removed, ResetCause, Runtime};

pub mod adc;
pub mod adc32;
pub mod bit;
pub mod bme280;
pub mod bme280_math;
pub mod cjson;
pub mod color_utils;
pub mod cron;
pub mod crypto;
pub mod dht;
pub mod encoder;
pub mod enduser_setup;
pub mod file;
pub mod gpio;
pub mod gpio32;
pub mod gpio_pulse;
pub mod http;
pub mod http32;
pub mod i2c;
pub mod i2c32;
pub mod ledc;
pub mod lfs;
pub mod mdns;
pub mod node;
pub mod ow;
pub mod ow32;
pub mod pipe;
pub mod pixbuf;
pub mod printf;
pub mod pwm;
pub mod pwm2;
pub mod rtcmem;
pub mod rtctime;
pub mod sjson;
pub mod sntp;
pub mod spi;
pub mod spi32;
pub mod r#struct;
pub mod tcs34725;
pub mod time32;
pub mod tmr;
pub mod uart;
pub mod wifi;
pub mod ws2812;
pub mod ws2812_32;
pub mod ws2812_effects;

/// Implements `mlua::UserData` for a handle type whose methods live in the registry under `$name`.
#[macro_export]
macro_rules! handle_type {
    ($ty:ty, $name:expr) => {
        impl mlua::UserData for $ty {
            fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
                fields.add_meta_field_with("__index", |lua| {
                    lua.named_registry_value::<mlua::Table>($name)
                });
                fields.add_meta_field("__name", $name);
            }
        }
    };
}

/// Stores a handle type's method table under its metatable name; call before creating handles.
pub fn register_methods(
    lua: &Lua,
    name: &str,
    methods: Vec<(&str, Function)>,
) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (k, f) in methods {
        t.set(k, f)?;
    }
    lua.set_named_registry_value(name, t.clone())?;
    Ok(t)
}

/// A module table from `(name, function)` pairs.
pub fn module_table(lua: &Lua, fns: Vec<(&str, Function)>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (k, f) in fns {
        t.set(k, f)?;
    }
    Ok(t)
}

/// Makes `table` (a module, or `_G` with `prefix` "") answer reads of names the running generation
/// lacks but an older one had: the read still gives nil, so the script gets the firmware's own
/// error (`attempt to call field 'alarm' (a nil value)`), and the first read of each name puts a
/// note on stderr naming the removal and the `--firmware` that has it. Only misses pay for this.
pub fn note_removed(
    lua: &Lua,
    rt: &Rc<Runtime>,
    table: &Table,
    prefix: &'static str,
    removed: &'static [(&'static str, Removed)],
) -> mlua::Result<()> {
    if removed.is_empty() {
        return Ok(());
    }
    let rt = Rc::downgrade(rt);
    // A binding like any other: its failures (short of heap) read as the firmware's.
    let index = crate::lauxlib::bind(lua, move |_, a| {
        if let (Value::String(k), Some(rt)) = (a.arg(2), rt.upgrade())
            && let Some((name, r)) = removed.iter().find(|(n, _)| k.as_bytes() == n.as_bytes())
        {
            rt.note_removed(&format!("{prefix}{name}"), r);
        }
        Ok(Value::Nil)
    })?;
    let mt = lua.create_table()?;
    mt.set("__index", index)?;
    table.set_metatable(Some(mt))?;
    Ok(())
}

/// Installs every module as a global of a freshly booted device.
pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>, reset: Option<ResetCause>) -> mlua::Result<()> {
    tmr::install(lua, rt)?;
    node::install(lua, rt, reset)?;
    lfs::install(lua, rt)?;
    wifi::install(lua, rt)?;
    uart::install(lua, rt)?;
    bit::install(lua)?;
    pipe::install(lua, rt)?;
    file::install(lua, rt)?;
    crate::net::install(lua, rt)?;
    crate::tls::install(lua, rt)?;
    rtcmem::install(lua, rt)?;
    // The ESP32 firmware keeps time in its `time` module instead.
    if rt.cfg.target != crate::config::Target::Esp32 {
        rtctime::install(lua, rt)?;
        sntp::install(lua, rt)?;
        if rt.cfg.firmware >= crate::config::Firmware::V2_2 {
            cron::install(lua, rt)?;
        }
    }
    if rt.cfg.target == crate::config::Target::Esp32 {
        gpio32::install(lua, rt)?;
        adc32::install(lua, rt)?;
        ledc::install(lua, rt)?;
        dht::install32(lua, rt)?;
        i2c32::install(lua, rt)?;
        ow32::install(lua, rt)?;
        ws2812_32::install(lua, rt)?;
        spi32::install(lua, rt)?;
        http32::install(lua, rt)?;
        time32::install(lua, rt)?;
    } else {
        gpio::install(lua, rt)?;
        adc::install(lua, rt)?;
        pwm::install(lua, rt)?;
        ow::install(lua, rt)?;
        dht::install(lua, rt)?;
        ws2812::install(lua, rt)?;
        if rt.cfg.firmware >= crate::config::Firmware::V2_2 {
            color_utils::install(lua)?;
            ws2812_effects::install(lua, rt)?;
        }
        i2c::install(lua, rt)?;
        bme280::install(lua, rt)?;
        if rt.cfg.firmware >= crate::config::Firmware::V3_0 {
            bme280_math::install(lua, rt)?;
        }
        spi::install(lua, rt)?;
        if rt.cfg.firmware >= crate::config::Firmware::V2_2 {
            tcs34725::install(lua, rt)?;
        }
        if rt.cfg.firmware >= crate::config::Firmware::V3_0 {
            pwm2::install(lua, rt)?;
        }
        http::install(lua, rt)?;
        // The ESP32 port has no mdns module, nor enduser_setup.
        mdns::install(lua, rt)?;
        enduser_setup::install(lua, rt)?;
    }
    sjson::install(lua, rt)?;
    encoder::install(lua)?;
    crypto::install(lua, rt)?;
    r#struct::install(lua)?;
    if rt.cfg.firmware == Firmware::V1_5 {
        cjson::install(lua)?;
    }
    crate::mqtt::install(lua, rt)?;
    // The ESP32 firmware has no websocket module.
    if rt.cfg.target != crate::config::Target::Esp32 {
        crate::websocket::install(lua, rt)?;
    }
    install_removed_globals(lua, rt)
}

/// Globals an older generation had and a newer one lacks, oldest `newest` first. Every module's
/// removed globals are listed here, because `_G` has one metatable for them all.
const REMOVED_GLOBALS: &[(&str, Removed)] = &[(
    "cjson",
    Removed {
        removed_in: "2.1",
        why: "use sjson",
        newest: Firmware::V1_5,
    },
)];

/// Makes reads of [`REMOVED_GLOBALS`] the running generation lacks give nil plus a note.
fn install_removed_globals(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let fw = rt.cfg.firmware;
    let lacking = REMOVED_GLOBALS
        .iter()
        .take_while(|(_, r)| r.newest < fw)
        .count();
    note_removed(lua, rt, &lua.globals(), "", &REMOVED_GLOBALS[..lacking])
}
