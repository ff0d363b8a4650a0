//! The ESP8266's `wifi.ap` table: the soft AP's configuration (current and saved), its address,
//! MAC, DHCP server and clients. Clients are the simulated world's: they join and leave at the
//! device times the project file gives (`[[wifi.event]] kind = "join"`), get an address from
//! the DHCP range and are reported as AP_STACONNECTED / AP_STADISCONNECTED.

use std::net::Ipv4Addr;
use std::rc::Rc;

use mlua::{Lua, MultiValue, Table, Value};

use super::eventmon;
use super::radio::field;
use super::sta::{broadcast, ip_values, set_mac, setip};
use super::sta_config::INVALID_MAC_STR;
use super::station::{AUTH_OPEN, AUTH_WPA_WPA2_PSK, ApConfig, Client, W};
use super::{Event, emit, fmt_mac, parse_ip, parse_mac_lenient};
use crate::config::Firmware;
use crate::lauxlib::{Args, FwResult, arg_check, arg_err, bind, fw_err, to_number, typename};
use crate::modules::module_table;
use crate::runtime::Runtime;

pub(crate) fn table(lua: &Lua, rt: &Rc<Runtime>, w: &W) -> mlua::Result<Table> {
    let ap = module_table(
        lua,
        vec![
            ("config", {
                let (r, ww) = (rt.clone(), w.clone());
                bind(lua, move |_, a| config(&r, &ww, &a))?
            }),
            ("getconfig", {
                let ww = w.clone();
                bind(lua, move |lua, a| getconfig(lua, &ww.st.borrow().ap, &a))?
            }),
            ("getdefaultconfig", {
                let ww = w.clone();
                bind(lua, move |lua, a| getconfig(lua, &ww.saved.borrow().ap, &a))?
            }),
            ("getip", {
                let ww = w.clone();
                bind(lua, move |lua, _| ip_values(lua, ap_ip(&ww)))?
            }),
            ("getbroadcast", {
                let ww = w.clone();
                bind(lua, move |_, _| Ok(broadcast(ap_ip(&ww))))?
            }),
            ("setip", {
                let ww = w.clone();
                bind(lua, move |_, a| {
                    let base = ww.st.borrow().ap_ip;
                    ww.st.borrow_mut().ap_ip = setip(&a, base, true)?;
                    Ok(true)
                })?
            }),
            ("getmac", {
                let ww = w.clone();
                bind(lua, move |_, _| Ok(fmt_mac(&ww.st.borrow().ap_mac)))?
            }),
            ("setmac", {
                let ww = w.clone();
                bind(lua, move |lua, a| {
                    Ok(set_mac(lua, &a)?
                        .map(|m| ww.st.borrow_mut().ap_mac = m)
                        .is_some())
                })?
            }),
            ("getclient", {
                let (r, ww) = (rt.clone(), w.clone());
                bind(lua, move |lua, _| getclient(lua, &r, &ww))?
            }),
            ("deauth", {
                let (r, ww) = (rt.clone(), w.clone());
                bind(lua, move |lua, a| {
                    let mac = if a.is_string(1) {
                        let s = a.check_str(lua, 1)?;
                        arg_check(s.len() == 17, 1, INVALID_MAC_STR)?;
                        Some(parse_mac_lenient(&s))
                    } else {
                        None
                    };
                    deauth(&r, &ww, mac);
                    Ok(true)
                })?
            }),
        ],
    )?;
    ap.set("dhcp", dhcp_table(lua, w)?)?;
    Ok(ap)
}

/// The soft AP's addresses, while the mode has it.
fn ap_ip(w: &W) -> Option<super::station::IpInfo> {
    let s = w.st.borrow();
    (s.mode & 2 != 0).then_some(s.ap_ip)
}

/// A numeric field of the config table, with the firmware's range check.
fn number_field(t: &Table, key: &str, range: (i64, i64), range_msg: &str) -> FwResult<Option<i64>> {
    match field(t, key)? {
        Value::Nil => Ok(None),
        v => match to_number(&v) {
            Some(n) => {
                let n = n as i64;
                arg_check(n >= range.0 && n <= range.1, 1, range_msg)?;
                Ok(Some(n))
            }
            None => arg_err(1, format!("{key}: not number")),
        },
    }
}

/// `wifi.ap.config(table)`.
fn config(rt: &Rc<Runtime>, w: &W, a: &Args) -> FwResult<bool> {
    let Value::Table(t) = a.get(1) else {
        let got = if a.is_empty() {
            "no value"
        } else {
            typename(a.arg(1))
        };
        return arg_err(1, format!("table expected, got {got}"));
    };
    let text = |v: &Value| v.to_string().unwrap_or_default();
    let ssid = match field(&t, "ssid")? {
        Value::Nil => return arg_err(1, "ssid: required"),
        v @ (Value::String(_) | Value::Integer(_) | Value::Number(_)) => text(&v),
        _ => return arg_err(1, "ssid: not string"),
    };
    arg_check((1..=32).contains(&ssid.len()), 1, "ssid: length:1-32")?;
    let (pwd, mut auth) = match field(&t, "pwd")? {
        Value::Nil => (String::new(), AUTH_OPEN),
        v @ (Value::String(_) | Value::Integer(_) | Value::Number(_)) => {
            let p = text(&v);
            arg_check((8..=64).contains(&p.len()), 1, "pwd: length:0 or 8-64")?;
            (p, AUTH_WPA_WPA2_PSK)
        }
        _ => return arg_err(1, "pwd: not string"),
    };
    if let Some(n) = number_field(&t, "auth", (0, 4), "auth: Range:0-4")? {
        auth = n as u8;
    }
    let channel = number_field(&t, "channel", (1, 13), "channel: Range:1-13")?.unwrap_or(6);
    let hidden = match field(&t, "hidden")? {
        Value::Nil => 0,
        Value::Boolean(b) => b as i64,
        v @ (Value::Integer(_) | Value::Number(_)) => to_number(&v).unwrap_or(0.0) as i64,
        _ => return arg_err(1, "hidden: not boolean"),
    };
    arg_check(hidden == 0 || hidden == 1, 1, "hidden: 0 or 1")?;
    let max = number_field(&t, "max", (1, 4), "max: 1-4")?.unwrap_or(4);
    let beacon = number_field(&t, "beacon", (100, 60000), "beacon: 100-60000")?.unwrap_or(100);
    let save = match field(&t, "save")? {
        Value::Nil => true,
        Value::Boolean(b) => b,
        _ => return arg_err(1, "save: not boolean"),
    };
    if rt.cfg.firmware > Firmware::V1_5 {
        let keys = [
            ("staconnected_cb", eventmon::AP_STACONNECTED),
            ("stadisconnected_cb", eventmon::AP_STADISCONNECTED),
            ("probereq_cb", eventmon::AP_PROBEREQRECVED),
        ];
        for (key, id) in keys {
            match field(&t, key)? {
                Value::Nil => {}
                Value::Function(f) => eventmon::set_slot(rt, w, id, Some(f)),
                _ => return arg_err(1, format!("{key}:not function")),
            }
        }
    }
    let cfg = ApConfig {
        ssid,
        pwd,
        auth,
        channel: channel as u8,
        hidden: hidden == 1,
        max: max as u8,
        beacon: beacon as u16,
    };
    if save {
        w.saved.borrow_mut().ap = cfg.clone();
    }
    w.st.borrow_mut().ap = cfg;
    Ok(true)
}

/// `getconfig([true])`: the table, or `ssid, pwd` (pwd nil for an open AP).
fn getconfig(lua: &Lua, c: &ApConfig, a: &Args) -> FwResult<MultiValue> {
    let pwd = (c.auth != AUTH_OPEN).then(|| c.pwd.clone());
    if !matches!(a.arg(1), Value::Boolean(true)) {
        return Ok(lua.pack_multi((c.ssid.clone(), pwd))?);
    }
    let t = lua.create_table()?;
    t.set("ssid", c.ssid.as_str())?;
    t.set("pwd", pwd)?;
    t.set("auth", c.auth)?;
    t.set("channel", c.channel)?;
    t.set("hidden", c.hidden)?;
    t.set("max", c.max)?;
    t.set("beacon", c.beacon)?;
    Ok(lua.pack_multi(t)?)
}

fn getclient(lua: &Lua, rt: &Runtime, w: &W) -> FwResult<Table> {
    if w.st.borrow().mode == 1 {
        return fw_err(if rt.cfg.firmware == Firmware::V1_5 {
            "Can't list client in STATION_MODE mode"
        } else {
            "Can't list clients in STATION mode"
        });
    }
    let t = lua.create_table()?;
    for c in &w.st.borrow().clients {
        t.set(fmt_mac(&c.mac), c.ip.to_string())?;
    }
    Ok(t)
}

fn dhcp_table(lua: &Lua, w: &W) -> mlua::Result<Table> {
    let ww = w.clone();
    let config = bind(lua, move |_, a| {
        let Value::Table(t) = a.get(1) else {
            return fw_err("wrong arg type");
        };
        let start = match field(&t, "start")? {
            v @ (Value::String(_) | Value::Integer(_) | Value::Number(_)) => {
                parse_ip(&v.to_string()?)
            }
            _ => Ipv4Addr::UNSPECIFIED,
        };
        if start.is_unspecified() {
            return fw_err("wrong arg type");
        }
        let max = ww.st.borrow().ap.max;
        let mut end = start.octets();
        end[3] = end[3].wrapping_add(max.saturating_sub(1));
        ww.st.borrow_mut().lease_start = start;
        Ok((start.to_string(), Ipv4Addr::from(end).to_string()))
    })?;
    module_table(
        lua,
        vec![
            ("config", config),
            ("start", bind(lua, |_, _| Ok(true))?),
            ("stop", bind(lua, |_, _| Ok(true))?),
        ],
    )
}

/// A client joins the soft AP (when the mode has it and a place is free).
pub(crate) fn client_joins(rt: &Rc<Runtime>, w: &W, mac: Option<[u8; 6]>) {
    let client = {
        let mut s = w.st.borrow_mut();
        if s.mode & 2 == 0 || s.clients.len() >= s.ap.max as usize {
            return;
        }
        let aid = (1..=u8::MAX)
            .find(|a| s.clients.iter().all(|c| c.aid != *a))
            .unwrap_or(1);
        let mut ip = s.lease_start.octets();
        ip[3] = ip[3].wrapping_add(aid - 1);
        let c = Client {
            mac: mac.unwrap_or([0x02, 0, 0, 0, 0x10, aid]),
            aid,
            ip: Ipv4Addr::from(ip),
        };
        s.clients.retain(|o| o.mac != c.mac);
        s.clients.push(c.clone());
        c
    };
    emit(
        rt,
        w,
        Event::ApStaConnected {
            mac: client.mac,
            aid: client.aid,
        },
    );
    emit(rt, w, Event::ApDistributeIp);
}

/// A client leaves: the one named, else the newest.
pub(crate) fn client_leaves(rt: &Rc<Runtime>, w: &W, mac: Option<[u8; 6]>) {
    let gone = {
        let mut s = w.st.borrow_mut();
        let at = match mac {
            Some(m) => s.clients.iter().position(|c| c.mac == m),
            None => s.clients.len().checked_sub(1),
        };
        at.map(|i| s.clients.remove(i))
    };
    if let Some(c) = gone {
        emit(
            rt,
            w,
            Event::ApStaDisconnected {
                mac: c.mac,
                aid: c.aid,
            },
        );
    }
}

/// `wifi.ap.deauth([mac])`: one client, or all of them.
fn deauth(rt: &Rc<Runtime>, w: &W, mac: Option<[u8; 6]>) {
    match mac {
        Some(m) => client_leaves(rt, w, Some(m)),
        None => {
            while !w.st.borrow().clients.is_empty() {
                client_leaves(rt, w, None);
            }
        }
    }
}
