//! What `node` says about the chip: `node.info`, `node.bootreason`, the ids and the partition
//! table, per firmware generation and chip.
//!
//! A board's ids are hardware-specific; the simulator's are fixed, plausible values (a 4 MB
//! Winbond flash, as on an ESP-12E) so that scripts which log or compare them get the same
//! answer every run. Versions and build facts are those of the generation's release.

use mlua::{IntoLuaMulti, Lua, MultiValue, Table, Value};

use crate::config::{Firmware, Target};
use crate::lauxlib::{Args, FwResult, arg_err};
use crate::runtime::{ResetCause, Runtime};

/// `system_get_chip_id()`: the ESP8266's id (the low three bytes of its MAC address on a board).
pub const CHIP_ID: i64 = 0x00C0_FFEE;
/// `spi_flash_get_id()` of a Winbond W25Q32 (manufacturer 0xEF, type 0x40, capacity 0x16), as the
/// ESP8266 SDK reads it (bytes in wire order, so the manufacturer is the low byte).
pub const FLASH_ID: i64 = 0x0016_40EF;
/// The same chip as the ESP32's `esp_flash_read_id()` gives it (manufacturer in the high byte).
pub const FLASH_ID_ESP32: i64 = 0x00EF_4016;
/// A 4 MB module.
pub const FLASH_SIZE: i64 = 4 * 1024 * 1024;
/// `flash_rom_get_mode()`: 0 is QIO.
const FLASH_MODE: i64 = 0;
/// `flash_rom_get_speed()`: the SPI clock in Hz (40 MHz).
const FLASH_SPEED: i64 = 40_000_000;
/// The ESP32's `node.chipid()`: a hex string made from the efuse MAC, as esptool prints it.
pub const CHIP_ID_ESP32: &str = "0x240ac4c0ffee";

/// The release the 3.0 generation is (`node.info("sw_version")`).
const RELEASE: (&str, &str, &str) = (
    "36cbf9f017d356319a6369e299765eedff191154",
    "3.0.0-release_20240225",
    "202402250804",
);

/// `node.info([group])`: the positional form before 3.0 (any argument ignored), the grouped
/// forms in 3.0, and the ESP32's own groups.
pub(super) fn info(lua: &Lua, rt: &Runtime, a: &Args) -> FwResult<MultiValue> {
    let fw = rt.cfg.firmware;
    if rt.cfg.target == Target::Esp32 {
        return Ok(esp32_info(lua, a)?.into_lua_multi(lua)?);
    }
    if fw < Firmware::V3_0 {
        return Ok(legacy(lua, fw)?);
    }
    let group = group_or(lua, a, "legacy")?;
    let t = lua.create_table()?;
    match group.as_str() {
        "legacy" => {
            rt.uart(
                b"Warning, deprecated API! node.info() without parameter. It will be removed in the next version. See documentation for details.\n",
            );
            return Ok(legacy(lua, fw)?);
        }
        "lfs" => lfs_config(lua, &t)?,
        "hw" => {
            t.set("chip_id", CHIP_ID)?;
            t.set("flash_id", FLASH_ID)?;
            t.set("flash_size", FLASH_SIZE / 1024)?;
            t.set("flash_mode", FLASH_MODE)?;
            t.set("flash_speed", FLASH_SPEED)?;
        }
        "sw_version" => sw_version(&t, fw)?,
        "build_config" => build_config(lua, &t)?,
        other => return arg_err(1, format!("invalid option '{other}'")),
    }
    Ok(t.into_lua_multi(lua)?)
}

/// The group argument, or `default` when there is none (`luaL_checkoption`'s default).
fn group_or(lua: &Lua, a: &Args, default: &str) -> FwResult<String> {
    if a.is_none_or_nil(1) {
        Ok(default.to_string())
    } else {
        a.check_str(lua, 1)
    }
}

/// The eight values every ESP8266 generation returns without a group.
fn legacy(lua: &Lua, fw: Firmware) -> mlua::Result<MultiValue> {
    let (major, minor, rev) = fw.version();
    (
        major,
        minor,
        rev,
        CHIP_ID,
        FLASH_ID,
        FLASH_SIZE / 1024,
        FLASH_MODE,
        FLASH_SPEED,
    )
        .into_lua_multi(lua)
}

fn sw_version(t: &Table, fw: Firmware) -> mlua::Result<()> {
    let (major, minor, rev) = fw.version();
    t.set("node_version_major", major)?;
    t.set("node_version_minor", minor)?;
    t.set("node_version_revision", rev)?;
    t.set("git_branch", "release")?;
    t.set("git_commit_id", RELEASE.0)?;
    t.set("git_release", RELEASE.1)?;
    t.set("git_commit_dts", RELEASE.2)
}

/// The LFS region's figures, as `node.LFS.config` (`lfs.rs`) has them; 0 without an LFS.
fn lfs_config(lua: &Lua, t: &Table) -> mlua::Result<()> {
    let config = lfs_field(lua, "config")?;
    for k in ["lfs_mapped", "lfs_base", "lfs_size", "lfs_used"] {
        let v = match &config {
            Value::Table(c) => c.get::<Option<i64>>(k)?.unwrap_or(0),
            _ => 0,
        };
        t.set(k, v)?;
    }
    Ok(())
}

/// `node.LFS[name]`, or nil where the build has no `node.LFS`.
fn lfs_field(lua: &Lua, name: &str) -> mlua::Result<Value> {
    let Some(node) = lua.globals().get::<Option<Table>>("node")? else {
        return Ok(Value::Nil);
    };
    match node.get::<Value>("LFS")? {
        Value::Table(lfs) => lfs.get(name),
        _ => Ok(Value::Nil),
    }
}

/// The LFS region's size in bytes (`lfs_size` of `info("lfs")`).
fn lfs_size(lua: &Lua) -> mlua::Result<i64> {
    let t = lua.create_table()?;
    lfs_config(lua, &t)?;
    t.get("lfs_size")
}

fn build_config(lua: &Lua, t: &Table) -> mlua::Result<()> {
    t.set("ssl", true)?;
    t.set("lfs_size", lfs_size(lua)?)?;
    t.set("modules", module_list(lua)?)?;
    t.set("number_type", "float")
}

/// The firmware modules this device has, comma-separated and sorted, as the build lists them:
/// the global tables that are not Lua's own libraries.
fn module_list(lua: &Lua) -> mlua::Result<String> {
    const LUA_LIBS: &[&str] = &[
        "_G",
        "coroutine",
        "debug",
        "io",
        "math",
        "os",
        "package",
        "string",
        "table",
        "utf8",
        "bit32",
    ];
    let mut names: Vec<String> = lua
        .globals()
        .pairs::<String, Value>()
        .filter_map(|p| p.ok())
        .filter(|(k, v)| matches!(v, Value::Table(_)) && !LUA_LIBS.contains(&k.as_str()))
        .map(|(k, _)| k)
        .collect();
    names.sort();
    Ok(names.join(","))
}

/// The ESP32 port's `node.info`: no positional form (no group gives an empty table).
fn esp32_info(lua: &Lua, a: &Args) -> FwResult<Table> {
    let group = group_or(lua, a, "default")?;
    let t = lua.create_table()?;
    match group.as_str() {
        "default" => {}
        "lfs" => lfs_config(lua, &t)?,
        "hw" => {
            t.set("chip_model", "esp32")?;
            // CHIP_FEATURE_WIFI_BGN | CHIP_FEATURE_BLE | CHIP_FEATURE_BT
            t.set("chip_features", 2 | 16 | 32)?;
            t.set("chip_major_rev", 3)?;
            t.set("chip_minor_rev", 0)?;
            t.set("cpu_cores", 2)?;
            t.set("flash_size", FLASH_SIZE / 1024)?;
            t.set("flash_id", FLASH_ID_ESP32)?;
        }
        "sw_version" => {
            t.set("node_version", "NodeMCU 3.0.0")?;
            sw_version(&t, Firmware::V3_0)?;
            t.set("git_branch", "dev-esp32")?;
        }
        "build_config" => {
            build_config(lua, &t)?;
            t.set("esp_console", "uart")?;
        }
        other => return arg_err(1, format!("invalid option '{other}'")),
    }
    Ok(t)
}

/// `node.bootreason()`: why the previous boot ended, as the chip's reset registers say it.
///
/// ESP8266: `(raw, extended)`, raw 1 power-on / 2 software; extended 0 power-on, 3 software
/// watchdog (what a PANIC's endless loop and a runaway callback end in), 4 software restart
/// (`node.restart()`, the default error handler, `tmr.softwd`), 5 deep-sleep wake.
/// ESP32: `(raw, rtc reason + 7[, panic count])`, the third value after a software CPU reset.
pub(super) fn bootreason(target: Target, reset: Option<ResetCause>) -> MultiValue {
    let vals: &[i64] = if target == Target::Esp32 {
        match reset {
            None => &[1, 8],
            Some(ResetCause::Panic) => &[2, 19, 1],
            Some(ResetCause::Watchdog) => &[3, 14],
            Some(ResetCause::DeepSleep) => &[3, 12],
            Some(ResetCause::Restart | ResetCause::Error | ResetCause::SoftWatchdog) => &[2, 19, 0],
        }
    } else {
        match reset {
            None => &[1, 0],
            Some(ResetCause::Restart | ResetCause::Error | ResetCause::SoftWatchdog) => &[2, 4],
            Some(ResetCause::Panic | ResetCause::Watchdog) => &[2, 3],
            Some(ResetCause::DeepSleep) => &[2, 5],
        }
    };
    vals.iter().map(|v| Value::Integer(*v)).collect()
}

/// `node.getpartitiontable()`: the LFS region where `node.LFS.config` puts it, the file system
/// at `file.fscfg()`'s address and size.
pub(super) fn partition_table(lua: &Lua, rt: &Runtime) -> mlua::Result<Table> {
    let (addr, size) = host_backend::flash_file::geometry::partition(rt.flash.capacity());
    let lfs = lua.create_table()?;
    lfs_config(lua, &lfs)?;
    let t = lua.create_table()?;
    t.set("lfs_addr", lfs.get::<i64>("lfs_base")?)?;
    t.set("lfs_size", lfs.get::<i64>("lfs_size")?)?;
    t.set("spiffs_addr", addr as i64)?;
    t.set("spiffs_size", size as i64)?;
    Ok(t)
}

/// `node.setpartitiontable(t)`: the firmware's checks on the new values; a valid table is
/// written and the chip then hangs until the watchdog resets it, which is what the caller sees.
pub(super) fn check_partition_values(a: &Args) -> FwResult<()> {
    let Value::Table(t) = a.get(1) else {
        return arg_err(1, "must be table");
    };
    let mut vals = [None::<i64>; 4];
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let key = match &k {
            Value::String(s) => s.to_string_lossy(),
            Value::Integer(_) | Value::Number(_) => String::new(),
            _ => return arg_err(1, "invalid partition setting"),
        };
        let slot = ["lfs_addr", "lfs_size", "spiffs_addr", "spiffs_size"]
            .iter()
            .position(|s| *s == key);
        match (slot, crate::lauxlib::to_number(&v)) {
            (Some(i), Some(n)) => vals[i] = Some(n as i64),
            _ => return arg_err(1, "invalid partition setting"),
        }
    }
    let sector = 0x1000;
    let fits = |addr: Option<i64>, size: Option<i64>| {
        let (addr, size) = (addr.unwrap_or(0), size.unwrap_or(0));
        addr % sector == 0 && size % sector == 0 && addr >= 0 && addr + size <= FLASH_SIZE
    };
    if !fits(vals[0], vals[1]) || !fits(vals[2], vals[3]) {
        return crate::lauxlib::fw_err("Partition value out of range");
    }
    Ok(())
}
