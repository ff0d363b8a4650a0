//! The ESP8266 station's configuration: `wifi.sta.config` in its table form (with the event
//! callbacks from 2.x on) and the 1.5 positional form, `getconfig` / `getdefaultconfig` in their
//! table and positional forms, and `clearconfig`. "Current" is what the station uses now, "default"
//! what the SDK saved in flash, which outlives a restart.

use std::rc::Rc;

use mlua::{Lua, MultiValue, Table, Value};

use super::eventmon;
use super::radio::field;
use super::station::{self, StaConfig, W};
use super::{fmt_mac, parse_mac_lenient};
use crate::config::Firmware;
use crate::lauxlib::{Args, FwResult, arg_check, arg_err, fw_err};
use crate::runtime::{Removed, Runtime};

pub(crate) const INVALID_MAC_STR: &str = "MAC:FF:FF:FF:FF:FF:FF";

/// The note for a positional `wifi.sta.config(ssid, pwd)` under 2.x and 3.0.
const POSITIONAL_REMOVED: Removed = Removed {
    removed_in: "2.1",
    why: "positional station config",
    newest: Firmware::V1_5,
};

/// `lua_isstring`: strings and numbers.
fn is_string(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Integer(_) | Value::Number(_))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string_lossy(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// What a config call asks for besides the configuration itself.
struct Request {
    cfg: StaConfig,
    auto: bool,
    save: bool,
}

/// `wifi.sta.config(...)`: returns true, as the SDK's set_config does.
pub(crate) fn config(lua: &Lua, rt: &Rc<Runtime>, w: &W, a: &Args) -> FwResult<bool> {
    let fw = rt.cfg.firmware;
    let req = match a.get(1) {
        Value::Table(t) => table_form(rt, w, &t, fw)?,
        _ if fw == Firmware::V1_5 => positional(lua, a)?,
        _ => {
            if is_string(a.arg(1)) {
                rt.note_removed("wifi.sta.config(ssid, pwd)", &POSITIONAL_REMOVED);
            }
            return arg_err(1, "config table not found!");
        }
    };
    station::disconnect(rt, w);
    w.st.borrow_mut().config = Some(req.cfg.clone());
    let mut saved = w.saved.borrow_mut();
    if req.save {
        saved.store(&req.cfg);
    }
    saved.autoconnect = req.auto;
    drop(saved);
    if req.auto {
        station::connect(rt, w);
    }
    Ok(true)
}

fn table_form(rt: &Rc<Runtime>, w: &W, t: &Table, fw: Firmware) -> FwResult<Request> {
    let old = fw == Firmware::V1_5;
    let ssid = match field(t, "ssid")? {
        Value::Nil => return arg_err(1, "ssid required"),
        v if is_string(&v) => text(&v),
        _ => return arg_err(1, "ssid:not string"),
    };
    if old {
        arg_check((1..=32).contains(&ssid.len()), 1, "ssid: length:1-32")?;
    } else {
        arg_check(ssid.len() <= 32, 1, "ssid: length:0-32")?;
    }
    let pwd = match field(t, "pwd")? {
        Value::Nil => String::new(),
        v if is_string(&v) => text(&v),
        _ => return arg_err(1, "pwd:not string"),
    };
    if old {
        arg_check((8..=64).contains(&pwd.len()), 1, "pwd: length:8-64")?;
    } else {
        arg_check(pwd.len() <= 64, 1, "pwd: length:0-64")?;
    }
    let bssid = match field(t, "bssid")? {
        Value::Nil => None,
        v if is_string(&v) => {
            let s = text(&v);
            arg_check(s.len() == 17, 1, "bssid: FF:FF:FF:FF:FF:FF")?;
            Some(parse_mac_lenient(&s))
        }
        _ => return arg_err(1, "bssid:not string"),
    };
    let auto = match field(t, "auto")? {
        Value::Nil => true,
        Value::Boolean(b) => b,
        _ => return arg_err(1, "auto:not boolean"),
    };
    let save = match field(t, "save")? {
        // 1.5 kept a table config in RAM unless told to save it.
        Value::Nil => !old,
        Value::Boolean(b) => b,
        _ => return arg_err(1, "save:not boolean"),
    };
    if !old {
        table_callbacks(rt, w, t)?;
    }
    Ok(Request {
        cfg: StaConfig { ssid, pwd, bssid },
        auto,
        save,
    })
}

/// The callbacks a 2.x table may carry: each takes its event's eventmon slot.
fn table_callbacks(rt: &Runtime, w: &W, t: &Table) -> FwResult<()> {
    let keys = [
        ("connect_cb", eventmon::STA_CONNECTED, "connect_cb"),
        ("disconnect_cb", eventmon::STA_DISCONNECTED, "disconnect_cb"),
        (
            "authmode_change_cb",
            eventmon::STA_AUTHMODE_CHANGE,
            "authmode_change_cb",
        ),
        ("got_ip_cb", eventmon::STA_GOT_IP, "gotip_cb"),
        (
            "dhcp_timeout_cb",
            eventmon::STA_DHCP_TIMEOUT,
            "dhcp_timeout_cb",
        ),
    ];
    for (key, id, name) in keys {
        match field(t, key)? {
            Value::Nil => {}
            Value::Function(f) => eventmon::set_slot(rt, w, id, Some(f)),
            _ => return arg_err(1, format!("{name}:not function")),
        }
    }
    Ok(())
}

/// 1.5 `wifi.sta.config(ssid, pwd[, auto[, bssid]])`, saved to flash. A string third argument is
/// taken as the BSSID.
fn positional(lua: &Lua, a: &Args) -> FwResult<Request> {
    let ssid = a.check_str(lua, 1)?;
    arg_check((1..32).contains(&ssid.len()), 1, "length:1-32")?;
    let pwd = a.check_str(lua, 2)?;
    arg_check(
        pwd.is_empty() || (8..64).contains(&pwd.len()),
        2,
        "length:0 or 8-64",
    )?;
    let mut bssid_at = 4;
    let auto = match a.arg(3) {
        _ if a.is_number(3) => match a.check_integer(3)? {
            0 => false,
            1 => true,
            _ => return fw_err("wrong arg type"),
        },
        Value::String(_) => {
            bssid_at = 3;
            true
        }
        Value::Nil if a.len() >= 3 => return fw_err("wrong arg type"),
        _ => true,
    };
    let bssid = match a.arg(bssid_at) {
        _ if a.is_number(bssid_at) => None,
        Value::String(s) => {
            let s = s.to_string_lossy();
            arg_check(s.len() == 17, 1, INVALID_MAC_STR)?;
            Some(parse_mac_lenient(&s))
        }
        _ => None,
    };
    Ok(Request {
        cfg: StaConfig { ssid, pwd, bssid },
        auto,
        save: true,
    })
}

/// `getconfig([true])` / `getdefaultconfig([true])`: a table with `true`, else
/// `ssid, pwd, bssid_set, bssid`.
pub(crate) fn getconfig(
    lua: &Lua,
    rt: &Runtime,
    w: &W,
    a: &Args,
    saved: bool,
) -> FwResult<MultiValue> {
    let cfg = if saved {
        w.saved.borrow().sta.clone()
    } else {
        w.st.borrow().config.clone()
    }
    .unwrap_or_default();
    let bssid = fmt_mac(&cfg.bssid.unwrap_or_default());
    if !matches!(a.arg(1), Value::Boolean(true)) {
        let set = cfg.bssid.is_some() as i64;
        return Ok(lua.pack_multi((cfg.ssid, cfg.pwd, set, bssid))?);
    }
    let t = lua.create_table()?;
    t.set("ssid", cfg.ssid.as_str())?;
    if rt.cfg.firmware == Firmware::V1_5 {
        if cfg.pwd.len() >= 8 {
            t.set("pwd", cfg.pwd.as_str())?;
        }
        if cfg.bssid.is_some() {
            t.set("bssid", bssid)?;
        }
    } else {
        if !cfg.pwd.is_empty() {
            t.set("pwd", cfg.pwd.as_str())?;
        }
        t.set("bssid_set", cfg.bssid.is_some())?;
        t.set("bssid", bssid)?;
    }
    Ok(lua.pack_multi(t)?)
}

/// `wifi.sta.clearconfig()`: leaves the network, erases the saved configuration and stops
/// connecting at boot.
pub(crate) fn clearconfig(rt: &Rc<Runtime>, w: &W) -> bool {
    station::disconnect(rt, w);
    w.st.borrow_mut().config = Some(StaConfig::default());
    let mut saved = w.saved.borrow_mut();
    saved.sta = Some(StaConfig::default());
    saved.autoconnect = false;
    true
}
