//! `wifi`, as network scripts use it. The simulated station is always in range: configuring or
//! connecting it fires the same events a board would see on joining (STA_CONNECTED, then
//! STA_GOT_IP), a few milliseconds later, with the device's loopback address as its IP.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use mlua::{Function, Lua, Table, Value};

use crate::lauxlib::{Args, FwResult, bind, fw_err};
use crate::modules::module_table;
use crate::runtime::Runtime;

pub const STA_IP: &str = "127.0.0.1";
pub const STA_NETMASK: &str = "255.0.0.0";
pub const STA_GATEWAY: &str = "127.0.0.1";
const SSID_DEFAULT: &str = "nodemcu-sim";
const BSSID: &str = "02:00:00:00:00:01";
pub const STA_MAC: &str = "5c:cf:7f:c0:ff:ee";

const EV_STA_CONNECTED: i64 = 0;
const EV_STA_DISCONNECTED: i64 = 1;
const EV_STA_GOT_IP: i64 = 3;
const EV_MODE_CHANGED: i64 = 8;
const STA_IDLE: i64 = 0;
const STA_GOTIP: i64 = 5;

#[derive(Default)]
struct Wifi {
    mode: Cell<i64>,
    status: Cell<i64>,
    ssid: RefCell<String>,
    /// sta.config callbacks by event id.
    config_cbs: RefCell<HashMap<i64, Function>>,
    /// eventmon registrations by event id.
    monitors: RefCell<HashMap<i64, Function>>,
}

type W = Rc<Wifi>;

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let w: W = Rc::new(Wifi {
        mode: Cell::new(1),
        status: Cell::new(STA_GOTIP),
        ..Default::default()
    });
    *w.ssid.borrow_mut() = SSID_DEFAULT.into();
    let wifi = module_table(
        lua,
        vec![
            ("setmode", setmode(lua, rt, &w)?),
            ("getmode", {
                let w = w.clone();
                bind(lua, move |_, _| Ok(w.mode.get()))?
            }),
        ],
    )?;
    for (k, v) in [
        ("NULLMODE", 0),
        ("STATION", 1),
        ("SOFTAP", 2),
        ("STATIONAP", 3),
    ] {
        wifi.set(k, v)?;
    }
    for (k, v) in [
        ("STA_IDLE", 0),
        ("STA_CONNECTING", 1),
        ("STA_WRONGPWD", 2),
        ("STA_APNOTFOUND", 3),
        ("STA_FAIL", 4),
        ("STA_GOTIP", 5),
    ] {
        wifi.set(k, v)?;
    }
    wifi.set("sta", sta_table(lua, rt, &w)?)?;
    wifi.set("ap", ap_table(lua)?)?;
    wifi.set("eventmon", eventmon_table(lua, &w)?)?;
    lua.globals().set("wifi", wifi)
}

fn setmode(lua: &Lua, rt: &Rc<Runtime>, w: &W) -> mlua::Result<Function> {
    let (w, rt) = (w.clone(), rt.clone());
    bind(lua, move |lua, a| {
        let m = a.check_integer(1)?;
        if !(0..=3).contains(&m) {
            return fw_err("Invalid mode");
        }
        let old = w.mode.replace(m);
        if old != m {
            let t = lua.create_table()?;
            t.set("old_mode", old)?;
            t.set("new_mode", m)?;
            fire(&rt, &w, EV_MODE_CHANGED, t, Duration::ZERO);
        }
        Ok(m)
    })
}

/// Calls the sta.config callback and the eventmon handler for `ev` with table `t`, after `delay`.
fn fire(rt: &Rc<Runtime>, w: &W, ev: i64, t: Table, delay: Duration) {
    let (r, w) = (rt.clone(), w.clone());
    rt.arm_timer(
        delay,
        Box::new(move |lua| {
            if ev == EV_STA_GOT_IP {
                w.status.set(STA_GOTIP);
            }
            let cbs = [
                w.config_cbs.borrow().get(&ev).cloned(),
                w.monitors.borrow().get(&ev).cloned(),
            ];
            for f in cbs.into_iter().flatten() {
                r.call_protected(lua, &f, t.clone())?;
            }
            Ok(())
        }),
    );
}

/// The station joining: STA_CONNECTED, then STA_GOT_IP.
fn join(lua: &Lua, rt: &Rc<Runtime>, w: &W) -> mlua::Result<()> {
    let c = lua.create_table()?;
    c.set("SSID", w.ssid.borrow().clone())?;
    c.set("BSSID", BSSID)?;
    c.set("channel", 6)?;
    fire(rt, w, EV_STA_CONNECTED, c, Duration::from_millis(1));
    let g = lua.create_table()?;
    g.set("IP", STA_IP)?;
    g.set("netmask", STA_NETMASK)?;
    g.set("gateway", STA_GATEWAY)?;
    fire(rt, w, EV_STA_GOT_IP, g, Duration::from_millis(2));
    Ok(())
}

fn sta_table(lua: &Lua, rt: &Rc<Runtime>, w: &W) -> mlua::Result<Table> {
    let (r, ww) = (rt.clone(), w.clone());
    let config = bind(lua, move |lua, a| sta_config(lua, &r, &ww, &a))?;
    let (r, ww) = (rt.clone(), w.clone());
    let connect = bind(lua, move |lua, _| Ok(join(lua, &r, &ww)?))?;
    let (r, ww) = (rt.clone(), w.clone());
    let disconnect = bind(lua, move |lua, _| {
        ww.status.set(STA_IDLE);
        let t = lua.create_table()?;
        t.set("SSID", ww.ssid.borrow().clone())?;
        t.set("BSSID", BSSID)?;
        t.set("reason", 8)?; // ASSOC_LEAVE
        fire(&r, &ww, EV_STA_DISCONNECTED, t, Duration::from_millis(1));
        Ok(())
    })?;
    let ww = w.clone();
    let getip = bind(lua, move |_, _| {
        Ok(if ww.status.get() == STA_GOTIP {
            mlua::Variadic::from_iter([STA_IP, STA_NETMASK, STA_GATEWAY])
        } else {
            mlua::Variadic::new()
        })
    })?;
    let ww = w.clone();
    let status = bind(lua, move |_, _| Ok(ww.status.get()))?;
    let hostname = format!("NODE-{:06X}", crate::modules::node::CHIP_ID & 0xFF_FFFF);
    module_table(
        lua,
        vec![
            ("config", config),
            ("connect", connect),
            ("disconnect", disconnect),
            ("getip", getip),
            ("status", status),
            ("getmac", bind(lua, |_, _| Ok(STA_MAC))?),
            ("gethostname", bind(lua, move |_, _| Ok(hostname.clone()))?),
            ("sethostname", bind(lua, |_, _| Ok(true))?),
            ("getrssi", bind(lua, |_, _| Ok(-50))?),
        ],
    )
}

/// `wifi.sta.config{ssid=, pwd=, auto=true, connect_cb=, got_ip_cb=, disconnect_cb=, ...}`.
fn sta_config(lua: &Lua, rt: &Rc<Runtime>, w: &W, a: &Args) -> FwResult<bool> {
    let Value::Table(t) = a.get(1) else {
        return fw_err("config table not found!");
    };
    if let Some(ssid) = t.get::<Option<String>>("ssid")? {
        *w.ssid.borrow_mut() = ssid;
    }
    let mut cbs = w.config_cbs.borrow_mut();
    for (key, ev) in [
        ("connect_cb", EV_STA_CONNECTED),
        ("disconnect_cb", EV_STA_DISCONNECTED),
        ("got_ip_cb", EV_STA_GOT_IP),
    ] {
        if let Some(f) = t.get::<Option<Function>>(key)? {
            cbs.insert(ev, f);
        }
    }
    drop(cbs);
    if t.get::<Option<bool>>("auto")?.unwrap_or(true) {
        join(lua, rt, w)?;
    }
    Ok(true)
}

fn ap_table(lua: &Lua) -> mlua::Result<Table> {
    module_table(
        lua,
        vec![
            (
                "config",
                bind(lua, |_, a| {
                    if !matches!(a.get(1), Value::Table(_)) {
                        return fw_err("config table not found!");
                    }
                    Ok(true)
                })?,
            ),
            (
                "getip",
                bind(lua, |_, _| {
                    Ok(("192.168.4.1", "255.255.255.0", "192.168.4.1"))
                })?,
            ),
            ("getmac", bind(lua, |_, _| Ok("5e:cf:7f:c0:ff:ee"))?),
        ],
    )
}

fn eventmon_table(lua: &Lua, w: &W) -> mlua::Result<Table> {
    let ww = w.clone();
    let register = bind(lua, move |_, a| {
        let ev = a.check_integer(1)?;
        match a.get(2) {
            Value::Function(f) => ww.monitors.borrow_mut().insert(ev, f),
            _ => ww.monitors.borrow_mut().remove(&ev),
        };
        Ok(())
    })?;
    let ww = w.clone();
    let unregister = bind(lua, move |_, a| {
        ww.monitors.borrow_mut().remove(&a.check_integer(1)?);
        Ok(())
    })?;
    let t = module_table(
        lua,
        vec![("register", register), ("unregister", unregister)],
    )?;
    let events = [
        ("STA_CONNECTED", 0),
        ("STA_DISCONNECTED", 1),
        ("STA_AUTHMODE_CHANGE", 2),
        ("STA_GOT_IP", 3),
        ("STA_DHCP_TIMEOUT", 4),
        ("AP_STACONNECTED", 5),
        ("AP_STADISCONNECTED", 6),
        ("AP_PROBEREQRECVED", 7),
        ("WIFI_MODE_CHANGED", 8),
    ];
    for (k, v) in events {
        t.set(k, v)?;
    }
    let reason = lua.create_table()?;
    for (k, v) in [
        ("UNSPECIFIED", 1),
        ("AUTH_EXPIRE", 2),
        ("AUTH_LEAVE", 3),
        ("ASSOC_LEAVE", 8),
        ("BEACON_TIMEOUT", 200),
        ("NO_AP_FOUND", 201),
        ("AUTH_FAIL", 202),
        ("ASSOC_FAIL", 203),
        ("HANDSHAKE_TIMEOUT", 204),
    ] {
        reason.set(k, v)?;
    }
    t.set("reason", reason)?;
    Ok(t)
}
