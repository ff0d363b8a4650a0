//! The ESP8266's `wifi.sta` table: joining and leaving (`connect`, `disconnect`, `autoconnect`,
//! `changeap`), the stored access points, scanning (`getap`), addresses (`getip`, `setip`,
//! `getbroadcast`, `getmac`, `setmac`), the host name, the signal and the status. The
//! configuration calls are in `sta_config.rs`.

use std::cell::{Cell, RefCell};
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::time::Duration;

use mlua::{Function, Lua, MultiValue, Table, Value};

use super::eventmon;
use super::radio::field;
use super::sta_config::{self, INVALID_MAC_STR};
use super::station::{self, IpInfo, W};
use super::{fmt_mac, parse_ip, parse_mac_lenient};
use crate::config::Firmware;
use crate::lauxlib::{Args, FwResult, arg_check, bind, fw_err, to_number};
use crate::modules::{module_table, note_removed};
use crate::runtime::Runtime;

/// A scan of all 13 channels at the SDK's 120 ms each.
pub(crate) const SCAN: Duration = Duration::from_millis(13 * 120);

pub(crate) fn table(
    lua: &Lua,
    rt: &Rc<Runtime>,
    w: &W,
    sleeptype: Function,
) -> mlua::Result<Table> {
    let fw = rt.cfg.firmware;
    let ap_index = Rc::new(Cell::new(0usize));
    let mut fns = vec![
        ("config", {
            let (r, ww) = (rt.clone(), w.clone());
            bind(lua, move |lua, a| sta_config::config(lua, &r, &ww, &a))?
        }),
        ("getconfig", {
            let (r, ww) = (rt.clone(), w.clone());
            bind(lua, move |lua, a| {
                sta_config::getconfig(lua, &r, &ww, &a, false)
            })?
        }),
        ("getdefaultconfig", {
            let (r, ww) = (rt.clone(), w.clone());
            bind(lua, move |lua, a| {
                sta_config::getconfig(lua, &r, &ww, &a, true)
            })?
        }),
        ("connect", {
            let (r, ww) = (rt.clone(), w.clone());
            bind(lua, move |_, a| {
                take_callback(&r, &ww, &a, eventmon::STA_CONNECTED);
                station::connect(&r, &ww);
                Ok(())
            })?
        }),
        ("disconnect", {
            let (r, ww) = (rt.clone(), w.clone());
            bind(lua, move |_, a| {
                take_callback(&r, &ww, &a, eventmon::STA_DISCONNECTED);
                station::disconnect(&r, &ww);
                Ok(())
            })?
        }),
        ("autoconnect", {
            let ww = w.clone();
            bind(lua, move |_, a| {
                let on = a.check_integer(1)?;
                arg_check(on == 0 || on == 1, 1, "0 or 1")?;
                ww.saved.borrow_mut().autoconnect = on == 1;
                Ok(())
            })?
        }),
        ("changeap", {
            let (r, ww, idx) = (rt.clone(), w.clone(), ap_index.clone());
            bind(lua, move |_, a| changeap(&r, &ww, &idx, &a))?
        }),
        ("getapindex", {
            let idx = ap_index.clone();
            bind(lua, move |_, _| Ok(idx.get() as i64 + 1))?
        }),
        ("getapinfo", {
            let ww = w.clone();
            bind(lua, move |lua, _| getapinfo(lua, &ww))?
        }),
        ("setaplimit", {
            let ww = w.clone();
            bind(lua, move |_, a| {
                let n = a.check_integer(1)?;
                arg_check((1..=5).contains(&n), 1, "Valid range: 1-5")?;
                let mut s = ww.saved.borrow_mut();
                s.ap_limit = n as usize;
                s.aps.truncate(n as usize);
                Ok(true)
            })?
        }),
        ("getap", getap_fn(lua, rt, w)?),
        ("getip", {
            let ww = w.clone();
            bind(lua, move |lua, _| ip_values(lua, ww.sta_ip()))?
        }),
        ("getbroadcast", {
            let ww = w.clone();
            bind(lua, move |_, _| Ok(broadcast(ww.sta_ip())))?
        }),
        ("setip", {
            let ww = w.clone();
            bind(lua, move |_, a| {
                let base = ww.sta_ip().unwrap_or(UNSET);
                let ip = setip(&a, base, false)?;
                ww.st.borrow_mut().static_ip = Some(ip);
                Ok(true)
            })?
        }),
        ("getmac", {
            let ww = w.clone();
            bind(lua, move |_, _| Ok(fmt_mac(&ww.st.borrow().sta_mac)))?
        }),
        ("setmac", {
            let ww = w.clone();
            bind(lua, move |lua, a| {
                Ok(set_mac(lua, &a)
                    .map(|m| m.map(|m| ww.st.borrow_mut().sta_mac = m))?
                    .is_some())
            })?
        }),
        ("gethostname", {
            let ww = w.clone();
            bind(lua, move |_, _| Ok(ww.st.borrow().hostname.clone()))?
        }),
        ("sethostname", {
            let ww = w.clone();
            bind(lua, move |lua, a| {
                let name = a.check_str(lua, 1)?;
                arg_check(valid_hostname(&name), 1, "Invalid hostname")?;
                ww.st.borrow_mut().hostname = name;
                Ok(true)
            })?
        }),
        ("getrssi", {
            let ww = w.clone();
            bind(lua, move |_, _| {
                Ok(ww.st.borrow().link.as_ref().map(|l| l.rssi))
            })?
        }),
        ("status", {
            let ww = w.clone();
            bind(lua, move |_, _| Ok(ww.st.borrow().status))?
        }),
        ("sleeptype", sleeptype),
    ];
    if fw > Firmware::V1_5 {
        let (r, ww) = (rt.clone(), w.clone());
        fns.push((
            "clearconfig",
            bind(lua, move |_, _| Ok(sta_config::clearconfig(&r, &ww)))?,
        ));
    }
    let sta = module_table(lua, fns)?;
    if fw == Firmware::V1_5 {
        eventmon::add_status_monitor(lua, rt, w, &sta)?;
    } else {
        note_removed(lua, rt, &sta, "wifi.sta.", eventmon::REMOVED_MONITOR)?;
    }
    Ok(sta)
}

/// From 2.x, `connect(fn)` and `disconnect(fn)` set the event's eventmon callback.
fn take_callback(rt: &Runtime, w: &W, a: &Args, id: u8) {
    if rt.cfg.firmware > Firmware::V1_5
        && let Value::Function(f) = a.get(1)
    {
        eventmon::set_slot(rt, w, id, Some(f));
    }
}

const UNSET: IpInfo = IpInfo {
    ip: Ipv4Addr::UNSPECIFIED,
    netmask: Ipv4Addr::UNSPECIFIED,
    gateway: Ipv4Addr::UNSPECIFIED,
};

/// `getip()`: `ip, netmask, gateway`, or nil while the interface has no address.
pub(crate) fn ip_values(lua: &Lua, ip: Option<IpInfo>) -> FwResult<MultiValue> {
    Ok(match ip.filter(|i| !i.ip.is_unspecified()) {
        Some(i) => lua.pack_multi((
            i.ip.to_string(),
            i.netmask.to_string(),
            i.gateway.to_string(),
        ))?,
        None => lua.pack_multi(Value::Nil)?,
    })
}

pub(crate) fn broadcast(ip: Option<IpInfo>) -> Option<String> {
    ip.filter(|i| !i.ip.is_unspecified())
        .map(|i| i.broadcast().to_string())
}

/// `wifi_setip`: the table's `ip`, `netmask`, `gateway` over the interface's current ones (a
/// soft AP always takes the gateway given, even none).
pub(crate) fn setip(a: &Args, mut ip: IpInfo, ap: bool) -> FwResult<IpInfo> {
    let Value::Table(t) = a.get(1) else {
        return fw_err("wrong arg type");
    };
    let key = |k: &str| -> FwResult<Ipv4Addr> {
        Ok(match field(&t, k)? {
            v @ (Value::String(_) | Value::Integer(_) | Value::Number(_)) => {
                parse_ip(&v.to_string()?)
            }
            _ => Ipv4Addr::UNSPECIFIED,
        })
    };
    let (addr, mask, gw) = (key("ip")?, key("netmask")?, key("gateway")?);
    if !addr.is_unspecified() {
        ip.ip = addr;
    }
    if !mask.is_unspecified() {
        ip.netmask = mask;
    }
    if ap || !gw.is_unspecified() {
        ip.gateway = gw;
    }
    Ok(ip)
}

/// `wifi_setmac`: a 17-character MAC; the SDK refuses a multicast one (returns false).
pub(crate) fn set_mac(lua: &Lua, a: &Args) -> FwResult<Option<[u8; 6]>> {
    let s = a.check_str(lua, 1)?;
    arg_check(s.len() == 17, 1, INVALID_MAC_STR)?;
    let m = parse_mac_lenient(&s);
    Ok((m[0] & 1 == 0).then_some(m))
}

/// RFC 952/1123 as the firmware checks it: 1-32 letters, digits and inner hyphens.
fn valid_hostname(h: &str) -> bool {
    let b = h.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

fn changeap(rt: &Rc<Runtime>, w: &W, idx: &Cell<usize>, a: &Args) -> FwResult<bool> {
    let i = a.check_integer(1)? as u8;
    arg_check((1..=5).contains(&i), 1, "Valid range: 1-5")?;
    let Some(cfg) = w.saved.borrow().aps.get(i as usize - 1).cloned() else {
        return Ok(false);
    };
    idx.set(i as usize - 1);
    station::disconnect(rt, w);
    w.st.borrow_mut().config = Some(cfg);
    station::connect(rt, w);
    Ok(true)
}

fn getapinfo(lua: &Lua, w: &W) -> FwResult<Table> {
    let t = lua.create_table()?;
    let aps = w.saved.borrow().aps.clone();
    t.set("qty", aps.len())?;
    for (i, c) in aps.iter().enumerate() {
        let e = lua.create_table()?;
        e.set("ssid", c.ssid.as_str())?;
        if !c.pwd.is_empty() {
            e.set("pwd", c.pwd.as_str())?;
        }
        if let Some(b) = c.bssid {
            e.set("bssid", fmt_mac(&b))?;
        }
        t.set(i + 1, e)?;
    }
    Ok(t)
}

/// What a `getap` table asks the scan for.
#[derive(Default, Clone)]
struct ScanFilter {
    ssid: Option<String>,
    bssid: Option<[u8; 6]>,
    channel: u8,
}

fn getap_fn(lua: &Lua, rt: &Rc<Runtime>, w: &W) -> mlua::Result<Function> {
    let pending: Rc<RefCell<Option<Function>>> = Rc::default();
    let (r, ww) = (rt.clone(), w.clone());
    bind(lua, move |_, a| getap(&r, &ww, &pending, a))
}

/// `wifi.sta.getap([cfg,] [format,] callback)`: the firmware shifts its arguments into
/// `(cfg, format, callback)` and scans only when there is a callback.
fn getap(
    rt: &Rc<Runtime>,
    w: &W,
    pending: &Rc<RefCell<Option<Function>>>,
    a: Args,
) -> FwResult<()> {
    if w.st.borrow().mode == 2 {
        return fw_err("Can't list ap in SOFTAP mode");
    }
    let mut args: Vec<Value> = a.0.into_iter().collect();
    args.resize(args.len().max(3), Value::Nil);
    let mut filter = None;
    match args[0].clone() {
        Value::Table(t) => {
            filter = Some(scan_filter(&t)?);
            if matches!(args[1], Value::Function(_)) {
                args.insert(1, Value::Nil);
            }
        }
        Value::Integer(_) | Value::Number(_) => args.insert(0, Value::Nil),
        Value::Function(_) => {
            args.insert(0, Value::Nil);
            args.insert(0, Value::Nil);
        }
        Value::Nil => {
            if matches!(args[1], Value::Function(_)) {
                args.insert(1, Value::Nil);
            }
        }
        _ => return fw_err("wrong arg type"),
    }
    let mut format = 0;
    if matches!(args[1], Value::Integer(_) | Value::Number(_)) {
        format = to_number(&args[1]).unwrap_or(0.0) as i64;
        if format != 0 && format != 1 {
            return fw_err("wrong arg type");
        }
    }
    let Value::Function(cb) = args[2].clone() else {
        pending.borrow_mut().take();
        return Ok(());
    };
    *pending.borrow_mut() = Some(cb);
    let (r, ww, p) = (rt.clone(), w.clone(), pending.clone());
    let filter = filter.unwrap_or_default();
    rt.arm_timer(
        SCAN,
        Box::new(move |lua| {
            let Some(cb) = p.borrow_mut().take() else {
                return Ok(());
            };
            let list = scan_table(lua, &ww, &filter, format == 1)?;
            r.call_protected(lua, &cb, list)
        }),
    );
    Ok(())
}

fn scan_filter(t: &Table) -> FwResult<ScanFilter> {
    let mut f = ScanFilter::default();
    match field(t, "ssid")? {
        Value::Nil => {}
        v @ (Value::String(_) | Value::Integer(_) | Value::Number(_)) => {
            let s = v.to_string()?;
            if s.len() > 32 {
                return fw_err("ssid:<32");
            }
            f.ssid = Some(s);
        }
        _ => return fw_err("wrong arg type"),
    }
    match field(t, "bssid")? {
        Value::Nil => {}
        v @ (Value::String(_) | Value::Integer(_) | Value::Number(_)) => {
            let s = v.to_string()?;
            arg_check(s.len() == 17, 1, INVALID_MAC_STR)?;
            f.bssid = Some(parse_mac_lenient(&s));
        }
        _ => return fw_err("wrong arg type"),
    }
    for key in ["channel", "show_hidden"] {
        match field(t, key)? {
            Value::Nil => {}
            v => {
                let Some(n) = to_number(&v).map(|x| x as i64) else {
                    return fw_err("wrong arg type");
                };
                if key == "channel" {
                    if !(0..=13).contains(&n) {
                        return fw_err("channel: 0 or 1-13");
                    }
                    f.channel = n as u8;
                } else if n != 0 && n != 1 {
                    return fw_err("show_hidden: 0 or 1");
                }
            }
        }
    }
    Ok(f)
}

/// The scan's result table: `SSID = "authmode,rssi,bssid,channel"`, or with format 1
/// `BSSID = "ssid,rssi,authmode,channel"`.
fn scan_table(lua: &Lua, w: &W, f: &ScanFilter, by_bssid: bool) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for n in station::scan(w) {
        let ssid = n.ssid.clone().unwrap_or_default();
        if f.ssid.as_ref().is_some_and(|s| *s != ssid)
            || f.bssid.is_some_and(|b| b != n.bssid)
            || (f.channel != 0 && f.channel != n.channel)
        {
            continue;
        }
        let bssid = fmt_mac(&n.bssid);
        if by_bssid {
            t.set(
                bssid,
                format!("{ssid},{},{},{}", n.rssi, n.auth(), n.channel),
            )?;
        } else {
            t.set(
                ssid,
                format!("{},{},{bssid},{}", n.auth(), n.rssi, n.channel),
            )?;
        }
    }
    Ok(t)
}
