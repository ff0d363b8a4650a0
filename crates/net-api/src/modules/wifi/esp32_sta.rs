//! The ESP32 firmware's `wifi.sta` (dev-esp32 `components/modules/wifi_sta.c`): the IDF's
//! station configuration with all its keys, explicit `connect`/`disconnect` that fail until
//! `wifi.start()`, `getconfig`, `scan` and the small settings. Events are `esp32.rs`'s.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Function, Lua, Table, Value};

use super::esp32::{
    NOT_STARTED, SCAN, WRONG_MODE, check_table, field_str, on, opt_bool, opt_field_int, parse_setip,
};
use super::radio::field;
use super::station::{self, StaConfig, W};
use super::{fmt_mac, set_all};
use crate::lauxlib::{Args, FwResult, arg_err, bind, fw_err};
use crate::modules::module_table;
use crate::runtime::Runtime;

/// The station settings the IDF keeps beside SSID and password, as `getconfig` reports them.
#[derive(Clone, Default)]
struct StaExtras {
    pmf_required: bool,
    channel: i64,
    scan_all: bool,
    listen_interval: i64,
    sort_by_auth: bool,
    threshold_rssi: i64,
    threshold_authmode: i64,
    rm: bool,
    btm: bool,
    mbo: bool,
    sae_pwe: i64,
}

fn ready(w: &W, what: &str) -> FwResult<()> {
    let s = w.st.borrow();
    if !s.started {
        return fw_err(format!("{what}, code {NOT_STARTED}"));
    }
    if s.mode & 1 == 0 {
        return fw_err(format!("{what}, code {WRONG_MODE}"));
    }
    Ok(())
}

pub(super) fn table(lua: &Lua, rt: &Rc<Runtime>, w: &W) -> mlua::Result<Table> {
    let extras: Rc<RefCell<StaExtras>> = Rc::default();
    let scanning: Rc<RefCell<Option<Function>>> = Rc::default();
    // The IDF's default power save mode.
    let powersave = Rc::new(RefCell::new("min".to_string()));
    let sta = module_table(
        lua,
        vec![
            ("config", {
                let (ww, ex) = (w.clone(), extras.clone());
                bind(lua, move |_, a| sta_config(&ww, &ex, &a))?
            }),
            ("connect", {
                let (r, ww) = (rt.clone(), w.clone());
                bind(lua, move |_, _| {
                    ready(&ww, "connect failed")?;
                    station::connect(&r, &ww);
                    Ok(())
                })?
            }),
            ("disconnect", {
                let (r, ww) = (rt.clone(), w.clone());
                bind(lua, move |_, _| {
                    ready(&ww, "disconnect failed")?;
                    station::disconnect(&r, &ww);
                    Ok(())
                })?
            }),
            ("getconfig", {
                let (ww, ex) = (w.clone(), extras.clone());
                bind(lua, move |lua, _| sta_getconfig(lua, &ww, &ex.borrow()))?
            }),
            ("getmac", {
                let ww = w.clone();
                bind(lua, move |_, _| Ok(fmt_mac(&ww.st.borrow().sta_mac)))?
            }),
            ("on", {
                let ww = w.clone();
                bind(lua, move |lua, a| on(lua, &ww, &a, true))?
            }),
            ("scan", {
                let (r, ww) = (rt.clone(), w.clone());
                bind(lua, move |_, a| scan(&r, &ww, &scanning, &a))?
            }),
            ("setip", {
                let ww = w.clone();
                bind(lua, move |_, a| {
                    let ip = parse_setip(&a, &["ip", "netmask", "gateway"])?;
                    ww.st.borrow_mut().static_ip = Some(ip);
                    Ok(())
                })?
            }),
            ("sethostname", {
                let ww = w.clone();
                bind(lua, move |lua, a| {
                    ww.st.borrow_mut().hostname = a.check_str(lua, 1)?;
                    Ok(true)
                })?
            }),
            (
                "settxpower",
                bind(lua, |_, a| {
                    a.check_number(1)?;
                    Ok(true)
                })?,
            ),
            ("powersave", {
                let ps = powersave.clone();
                bind(lua, move |lua, a| {
                    let m = a.check_str(lua, 1)?;
                    if !["none", "min", "max"].contains(&m.as_str()) {
                        return arg_err(1, format!("invalid option '{m}'"));
                    }
                    *ps.borrow_mut() = m;
                    Ok(())
                })?
            }),
            (
                "getpowersave",
                bind(lua, move |_, _| Ok(powersave.borrow().clone()))?,
            ),
        ],
    )?;
    set_all(&sta, &[("PMF_AVAILABLE", 1), ("PMF_REQUIRED", 2)])?;
    Ok(sta)
}

/// `wifi.sta.config(t[, save])`; the IDF takes a BSSID in any of four spellings.
fn sta_config(w: &W, ex: &Rc<RefCell<StaExtras>>, a: &Args) -> FwResult<()> {
    let t = check_table(a, 1)?;
    let save = opt_bool(a, 2, false)?;
    let mut ssid = field_str(&t, "ssid", "config")?;
    ssid.truncate(32);
    let mut pwd = match field(&t, "pwd")? {
        Value::Nil => String::new(),
        _ => field_str(&t, "pwd", "config")?,
    };
    pwd.truncate(64);
    let bssid = match field(&t, "bssid")? {
        Value::Nil => None,
        _ => {
            let s = field_str(&t, "bssid", "config")?;
            match parse_bssid(&s) {
                Some(m) => Some(m),
                None => return fw_err(format!("invalid BSSID: {s}")),
            }
        }
    };
    let option = |key: &str, keys: [&str; 2]| -> FwResult<bool> {
        match field(&t, key)? {
            Value::Nil => Ok(false),
            v => {
                let s = v.to_string().unwrap_or_default();
                match keys.iter().position(|k| *k == s) {
                    Some(i) => Ok(i == 1),
                    None => fw_err(format!(
                        "bad argument #-1 to 'config' (invalid option '{s}')"
                    )),
                }
            }
        }
    };
    let truthy = |key: &str| -> FwResult<bool> {
        Ok(match field(&t, key)? {
            Value::Nil | Value::Boolean(false) => false,
            Value::Integer(n) => n != 0,
            Value::Number(n) => n != 0.0,
            _ => true,
        })
    };
    *ex.borrow_mut() = StaExtras {
        pmf_required: opt_field_int(&t, "pmf", 1)? == 2,
        channel: opt_field_int(&t, "channel", 0)?,
        scan_all: option("scan_method", ["fast", "all"])?,
        listen_interval: opt_field_int(&t, "listen_interval", 0)?,
        sort_by_auth: option("sort_by", ["rssi", "authmode"])?,
        threshold_rssi: opt_field_int(&t, "threshold_rssi", 0)?,
        threshold_authmode: opt_field_int(&t, "threshold_authmode", 0)?,
        rm: truthy("rm")?,
        btm: truthy("btm")?,
        mbo: truthy("mbo")?,
        sae_pwe: opt_field_int(&t, "sae_pwe", 0)?,
    };
    let cfg = StaConfig { ssid, pwd, bssid };
    if save {
        w.saved.borrow_mut().store(&cfg);
    }
    w.st.borrow_mut().config = Some(cfg);
    Ok(())
}

/// `AABBCCDDEEFF`, `AA:BB:...`, `AA-BB-...` or `AA BB ...`.
fn parse_bssid(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<String> = if s.len() == 12 && !s.contains([':', '-', ' ']) {
        (0..6).map(|i| s[i * 2..i * 2 + 2].to_string()).collect()
    } else {
        s.split([':', '-', ' ']).map(str::to_string).collect()
    };
    if parts.len() != 6 {
        return None;
    }
    let mut m = [0u8; 6];
    for (b, p) in m.iter_mut().zip(&parts) {
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    Some(m)
}

fn sta_getconfig(lua: &Lua, w: &W, ex: &StaExtras) -> FwResult<Table> {
    let cfg = w.st.borrow().config.clone().unwrap_or_default();
    let t = lua.create_table()?;
    t.set("ssid", cfg.ssid)?;
    t.set("pwd", cfg.pwd)?;
    if let Some(b) = cfg.bssid {
        t.set("bssid", fmt_mac(&b))?;
    }
    t.set("pmf", if ex.pmf_required { 2 } else { 1 })?;
    t.set("scan_method", if ex.scan_all { "all" } else { "fast" })?;
    t.set("channel", ex.channel)?;
    t.set("listen_interval", ex.listen_interval)?;
    t.set("sort_by", if ex.sort_by_auth { "authmode" } else { "rssi" })?;
    t.set("threshold_rssi", ex.threshold_rssi)?;
    t.set("threshold_authmode", ex.threshold_authmode)?;
    t.set("rm", ex.rm)?;
    t.set("btm", ex.btm)?;
    t.set("mbo", ex.mbo)?;
    t.set("sae_pwe", ex.sae_pwe)?;
    Ok(t)
}

/// `wifi.sta.scan(cfg, fn)`: `fn(nil, list)` once the scan is done.
fn scan(
    rt: &Rc<Runtime>,
    w: &W,
    scanning: &Rc<RefCell<Option<Function>>>,
    a: &Args,
) -> FwResult<()> {
    if scanning.borrow().is_some() {
        return fw_err("scan already in progress");
    }
    let t = check_table(a, 1)?;
    let cb = a.check_function(2)?;
    let ssid = match field(&t, "ssid")? {
        Value::Nil => None,
        v => Some(v.to_string()?),
    };
    let channel = opt_field_int(&t, "channel", 0)?;
    if !w.st.borrow().started {
        return fw_err(format!("failed to start scan, code {NOT_STARTED}"));
    }
    *scanning.borrow_mut() = Some(cb);
    let (r, ww, sc) = (rt.clone(), w.clone(), scanning.clone());
    rt.arm_timer(
        SCAN,
        Box::new(move |lua| {
            let Some(cb) = sc.borrow_mut().take() else {
                return Ok(());
            };
            let list = lua.create_table()?;
            let found = station::scan(&ww).into_iter().filter(|n| {
                ssid.as_ref().is_none_or(|s| n.ssid.as_ref() == Some(s))
                    && (channel == 0 || i64::from(n.channel) == channel)
            });
            for (i, n) in found.enumerate() {
                let e = lua.create_table()?;
                e.set("bssid", fmt_mac(&n.bssid))?;
                e.set("ssid", n.ssid.clone().unwrap_or_default())?;
                e.set("channel", n.channel)?;
                e.set("rssi", n.rssi)?;
                e.set("auth", n.auth())?;
                e.set("bandwidth", "HT20")?;
                list.set(i + 1, e)?;
            }
            r.call_protected(lua, &cb, (Value::Nil, list))
        }),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bssids_parse_in_the_four_spellings() {
        let m = Some([0xde, 0xc1, 0xa5, 0x51, 0xf1, 0xed]);
        assert_eq!(parse_bssid("DE:C1:A5:51:F1:ED"), m);
        assert_eq!(parse_bssid("de-c1-a5-51-f1-ed"), m);
        assert_eq!(parse_bssid("DE C1 A5 51 F1 ED"), m);
        assert_eq!(parse_bssid("DEC1A551F1ED"), m);
        assert_eq!(parse_bssid("DE:C1"), None);
    }
}
