//! The ESP32 firmware's `wifi` (branch dev-esp32, `components/modules/wifi*.c`): the radio is off
//! until `wifi.start()`, the station joins only on `wifi.sta.connect()` (the IDF has no
//! auto-connect) and does not retry on its own, and events reach `wifi.sta.on` / `wifi.ap.on`
//! callbacks as `(event, info)`. The station model is the ESP8266's (`station.rs`).

use std::net::Ipv4Addr;
use std::rc::Rc;
use std::time::Duration;

use mlua::{Function, Lua, Table, Value};

use super::radio::field;
use super::station::{self, ApConfig, IpInfo, W};
use super::{Event, fmt_mac, set_all};
use crate::lauxlib::{Args, FwResult, arg_err, bind, fw_err, to_number, typename};
use crate::modules::module_table;
use crate::runtime::{Priority, Runtime};

/// `ESP_ERR_WIFI_NOT_STARTED`, `ESP_ERR_WIFI_MODE`.
pub(super) const NOT_STARTED: i32 = 0x3002;
pub(super) const WRONG_MODE: i32 = 0x3005;
pub(super) const SCAN: Duration = Duration::from_millis(13 * 120);

const STA_EVENTS: &[&str] = &[
    "start",
    "stop",
    "connected",
    "disconnected",
    "authmode_changed",
    "got_ip",
];
const AP_EVENTS: &[&str] = &[
    "start",
    "stop",
    "sta_connected",
    "sta_disconnected",
    "probe_req",
];

pub(crate) fn module(lua: &Lua, rt: &Rc<Runtime>, w: &W) -> mlua::Result<Table> {
    let wifi = module_table(
        lua,
        vec![
            ("getchannel", {
                let ww = w.clone();
                bind(lua, move |_, _| Ok((super::radio::channel(&ww), 0)))?
            }),
            ("getmode", {
                let ww = w.clone();
                bind(lua, move |_, _| Ok(ww.st.borrow().mode))?
            }),
            ("mode", {
                let (r, ww) = (rt.clone(), w.clone());
                bind(lua, move |_, a| set_mode(&r, &ww, &a))?
            }),
            ("start", {
                let (r, ww) = (rt.clone(), w.clone());
                bind(lua, move |_, _| {
                    start(&r, &ww);
                    Ok(())
                })?
            }),
            ("stop", {
                let (r, ww) = (rt.clone(), w.clone());
                bind(lua, move |_, _| {
                    stop(&r, &ww);
                    Ok(())
                })?
            }),
        ],
    )?;
    set_all(
        &wifi,
        &[
            ("NULLMODE", 0),
            ("STATION", 1),
            ("SOFTAP", 2),
            ("STATIONAP", 3),
            ("AUTH_OPEN", 0),
            ("AUTH_WEP", 1),
            ("AUTH_WPA_PSK", 2),
            ("AUTH_WPA2_PSK", 3),
            ("AUTH_WPA_WPA2_PSK", 4),
            ("AUTH_WPA2_ENTERPRISE", 5),
            ("AUTH_WPA3_PSK", 6),
            ("AUTH_WPA2_WPA3_PSK", 7),
            ("AUTH_WAPI_PSK", 8),
            ("SAE_PWE_UNSPECIFIED", 0),
            ("SAE_PWE_HUNT_AND_PECK", 1),
            ("SAE_PWE_HASH_TO_ELEMENT", 2),
            ("SAE_PWE_BOTH", 3),
            // The firmware's table stringifies the macro names, not their "HT20" values.
            ("STR_WIFI_SECOND_CHAN_NONE", 0),
            ("STR_WIFI_SECOND_CHAN_ABOVE", 1),
            ("STR_WIFI_SECOND_CHAN_BELOW", 2),
        ],
    )?;
    wifi.set("sta", super::esp32_sta::table(lua, rt, w)?)?;
    wifi.set("ap", ap_table(lua, rt, w)?)?;
    Ok(wifi)
}

/// `luaL_optbool`.
pub(super) fn opt_bool(a: &Args, n: usize, default: bool) -> FwResult<bool> {
    match a.arg(n) {
        Value::Nil => Ok(default),
        Value::Boolean(b) => Ok(*b),
        v => arg_err(n, format!("boolean expected, got {}", typename(v))),
    }
}

/// `luaL_checktable`.
pub(super) fn check_table(a: &Args, n: usize) -> FwResult<Table> {
    match a.get(n) {
        Value::Table(t) => Ok(t),
        _ => {
            let got = if n > a.len() {
                "no value"
            } else {
                typename(a.arg(n))
            };
            arg_err(n, format!("table expected, got {got}"))
        }
    }
}

/// `luaL_checklstring(L, -1)` on a field just fetched: the firmware's message names argument -1.
pub(super) fn field_str(t: &Table, key: &str, fname: &str) -> FwResult<String> {
    match field(t, key)? {
        v @ (Value::String(_) | Value::Integer(_) | Value::Number(_)) => Ok(v.to_string()?),
        v => fw_err(format!(
            "bad argument #-1 to '{fname}' (string expected, got {})",
            typename(&v)
        )),
    }
}

pub(super) fn opt_field_int(t: &Table, key: &str, default: i64) -> FwResult<i64> {
    match field(t, key)? {
        Value::Nil => Ok(default),
        v => match to_number(&v) {
            Some(n) => Ok(n as i64),
            None => fw_err(format!(
                "bad argument #-1 to 'config' (number expected, got {})",
                typename(&v)
            )),
        },
    }
}

fn set_mode(rt: &Rc<Runtime>, w: &W, a: &Args) -> FwResult<()> {
    let m = a.check_integer(1)?;
    let save = opt_bool(a, 2, false)?;
    if !(0..=3).contains(&m) {
        return fw_err(format!("invalid wifi mode {m}"));
    }
    if save {
        w.saved.borrow_mut().mode = m as u8;
    }
    let old = std::mem::replace(&mut w.st.borrow_mut().mode, m as u8);
    if old & 1 != 0 && m & 1 == 0 {
        station::disconnect(rt, w);
    }
    Ok(())
}

fn start(rt: &Rc<Runtime>, w: &W) {
    let mode = {
        let mut s = w.st.borrow_mut();
        s.started = true;
        s.mode
    };
    if mode & 1 != 0 {
        deliver(rt, w, Event::StaStart);
    }
    if mode & 2 != 0 {
        deliver(rt, w, Event::ApStart);
    }
}

fn stop(rt: &Rc<Runtime>, w: &W) {
    if !std::mem::replace(&mut w.st.borrow_mut().started, false) {
        return;
    }
    station::disconnect(rt, w);
    let mode = w.st.borrow().mode;
    if mode & 1 != 0 {
        deliver(rt, w, Event::StaStop);
    }
    if mode & 2 != 0 {
        deliver(rt, w, Event::ApStop);
    }
}

/// Which `on` table an event goes to, its name there, and its info table.
fn describe(lua: &Lua, ev: &Event) -> mlua::Result<(bool, &'static str, Table)> {
    let t = lua.create_table()?;
    let (sta, name) = match ev {
        Event::StaStart => (true, "start"),
        Event::StaStop => (true, "stop"),
        Event::StaConnected {
            ssid,
            bssid,
            channel,
            auth,
        } => {
            t.set("ssid", ssid.as_str())?;
            t.set("bssid", fmt_mac(bssid))?;
            t.set("channel", *channel)?;
            t.set("auth", *auth)?;
            (true, "connected")
        }
        Event::StaDisconnected {
            ssid,
            bssid,
            reason,
        } => {
            t.set("ssid", ssid.as_str())?;
            t.set("bssid", fmt_mac(bssid))?;
            t.set("reason", *reason)?;
            (true, "disconnected")
        }
        Event::StaGotIp(ip) => {
            t.set("ip", ip.ip.to_string())?;
            t.set("netmask", ip.netmask.to_string())?;
            t.set("gw", ip.gateway.to_string())?;
            (true, "got_ip")
        }
        Event::ApStart => (false, "start"),
        Event::ApStop => (false, "stop"),
        Event::ApStaConnected { mac, aid } | Event::ApStaDisconnected { mac, aid } => {
            t.set("mac", fmt_mac(mac))?;
            t.set("id", *aid)?;
            let joined = matches!(ev, Event::ApStaConnected { .. });
            (
                false,
                if joined {
                    "sta_connected"
                } else {
                    "sta_disconnected"
                },
            )
        }
        Event::ModeChanged { .. } | Event::ApDistributeIp => (true, ""),
    };
    Ok((sta, name, t))
}

fn handler(w: &W, sta: bool, name: &str) -> Option<Function> {
    let cbs = w.cbs.borrow();
    let list = if sta { &cbs.sta_on } else { &cbs.ap_on };
    list.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| f.clone())
}

/// Runs the `on` callback of `ev` from the event task, if one is registered.
pub(crate) fn deliver(rt: &Rc<Runtime>, w: &W, ev: Event) {
    let (r, ww) = (rt.clone(), w.clone());
    rt.post_internal(
        Priority::Low,
        Box::new(move |lua| {
            let (sta, name, info) = describe(lua, &ev)?;
            match handler(&ww, sta, name) {
                Some(f) => r.call_protected(lua, &f, (name, info)),
                None => Ok(()),
            }
        }),
    );
}

/// `wifi_on`: `(event, fn)` sets, `(event)` or `(event, nil)` clears.
pub(super) fn on(lua: &Lua, w: &W, a: &Args, sta: bool) -> FwResult<()> {
    let name = a.check_str(lua, 1)?;
    let f = match a.get(2) {
        Value::Nil => None,
        Value::Function(f) => Some(f),
        v => return arg_err(2, format!("function expected, got {}", typename(&v))),
    };
    let events = if sta { STA_EVENTS } else { AP_EVENTS };
    let Some(&known) = events.iter().find(|e| **e == name) else {
        return fw_err(format!("unknown event: {name}"));
    };
    let mut cbs = w.cbs.borrow_mut();
    let list = if sta { &mut cbs.sta_on } else { &mut cbs.ap_on };
    list.retain(|(n, _)| *n != known);
    if let Some(f) = f {
        list.push((known, f));
    }
    Ok(())
}

/// `setip{ip=, netmask=, gateway=}` with each key required, in the firmware's order.
pub(super) fn parse_setip(a: &Args, order: &[&str; 3]) -> FwResult<IpInfo> {
    let t = check_table(a, 1)?;
    let mut ip = IpInfo {
        ip: Ipv4Addr::UNSPECIFIED,
        netmask: Ipv4Addr::UNSPECIFIED,
        gateway: Ipv4Addr::UNSPECIFIED,
    };
    for key in order {
        let s = field_str(&t, key, "setip")?;
        let (slot, what) = match *key {
            "ip" => (&mut ip.ip, "IP address"),
            "netmask" => (&mut ip.netmask, "Netmask"),
            _ => (&mut ip.gateway, "Gateway address"),
        };
        *slot = match s.parse() {
            Ok(v) => v,
            Err(_) => return fw_err(format!("Could not parse {what}, aborting")),
        };
    }
    Ok(ip)
}

fn ap_table(lua: &Lua, rt: &Rc<Runtime>, w: &W) -> mlua::Result<Table> {
    let _ = rt;
    module_table(
        lua,
        vec![
            ("config", {
                let ww = w.clone();
                bind(lua, move |_, a| ap_config(&ww, &a))?
            }),
            ("setip", {
                let ww = w.clone();
                bind(lua, move |_, a| {
                    ww.st.borrow_mut().ap_ip = parse_setip(&a, &["ip", "gateway", "netmask"])?;
                    Ok(())
                })?
            }),
            (
                "sethostname",
                bind(lua, |lua, a| {
                    a.check_str(lua, 1)?;
                    Ok(true)
                })?,
            ),
            ("on", {
                let ww = w.clone();
                bind(lua, move |lua, a| on(lua, &ww, &a, false))?
            }),
            ("getmac", {
                let ww = w.clone();
                bind(lua, move |_, _| Ok(fmt_mac(&ww.st.borrow().ap_mac)))?
            }),
        ],
    )
}

fn ap_config(w: &W, a: &Args) -> FwResult<()> {
    let t = check_table(a, 1)?;
    let save = opt_bool(a, 2, false)?;
    let mut ssid = field_str(&t, "ssid", "config")?;
    ssid.truncate(32);
    let pwd = match field(&t, "pwd")? {
        Value::Nil => String::new(),
        _ => field_str(&t, "pwd", "config")?,
    };
    let auth = opt_field_int(&t, "auth", 3)?;
    if !(0..=8).contains(&auth) {
        return fw_err(format!("unknown auth mode {auth}"));
    }
    let hidden = !matches!(field(&t, "hidden")?, Value::Nil | Value::Boolean(false));
    let cfg = ApConfig {
        ssid,
        pwd,
        auth: auth as u8,
        channel: opt_field_int(&t, "channel", 11)? as u8,
        hidden,
        max: opt_field_int(&t, "max", 4)? as u8,
        beacon: opt_field_int(&t, "beacon", 100)? as u16,
    };
    if save {
        w.saved.borrow_mut().ap = cfg.clone();
    }
    w.st.borrow_mut().ap = cfg;
    Ok(())
}
