//! The ESP8266's `wifi` table: the radio's mode (current and saved), PHY mode, channel, country,
//! transmit power and sleep settings, the constants, and the `sta`, `ap` and `eventmon` tables,
//! each as the running generation's `app/modules/wifi.c` has them.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Function, Lua, Table, Value};

use super::station::{self, W};
use super::{Event, emit, set_all};
use crate::config::Firmware;
use crate::lauxlib::{Args, FwResult, arg_check, arg_err, bind, fw_err, to_number, typename};
use crate::modules::module_table;
use crate::runtime::Runtime;

/// Settings of the radio that only report back what was set.
struct Radio {
    phymode: i64,
    sleeptype: i64,
    nullmodesleep: bool,
    country: Country,
    /// 1.5 `wifi.sleep`: the forced-sleep flag.
    force_sleep: bool,
}

#[derive(Clone)]
struct Country {
    cc: String,
    start_ch: i64,
    end_ch: i64,
    policy: i64,
}

type R = Rc<RefCell<Radio>>;

pub(crate) fn module(lua: &Lua, rt: &Rc<Runtime>, w: &W) -> mlua::Result<Table> {
    let fw = rt.cfg.firmware;
    let r: R = Rc::new(RefCell::new(Radio {
        phymode: 3,
        sleeptype: 2,
        nullmodesleep: true,
        country: Country {
            cc: "CN".into(),
            start_ch: 1,
            end_ch: 13,
            policy: 0,
        },
        force_sleep: false,
    }));
    let sleeptype = {
        let r = r.clone();
        bind(lua, move |_, a| {
            if a.is_number(1) {
                let t = a.check_number(1)? as i64;
                arg_check((0..=2).contains(&t), 1, "range:0-2")?;
                r.borrow_mut().sleeptype = t;
            }
            Ok(r.borrow().sleeptype)
        })?
    };
    let (rr, ww) = (rt.clone(), w.clone());
    let mut fns = vec![
        ("setmode", bind(lua, move |_, a| setmode(&rr, &ww, &a))?),
        ("getmode", {
            let ww = w.clone();
            bind(lua, move |_, _| Ok(ww.st.borrow().mode))?
        }),
        ("getdefaultmode", {
            let ww = w.clone();
            bind(lua, move |_, _| Ok(ww.saved.borrow().mode))?
        }),
        ("getchannel", {
            let ww = w.clone();
            bind(lua, move |_, _| Ok(channel(&ww)))?
        }),
        ("setphymode", {
            let r = r.clone();
            bind(lua, move |_, a| {
                let m = a.check_integer(1)?;
                if !(1..=3).contains(&m) {
                    return fw_err("wrong arg type");
                }
                r.borrow_mut().phymode = m;
                Ok(m)
            })?
        }),
        ("getphymode", {
            let r = r.clone();
            bind(lua, move |_, _| Ok(r.borrow().phymode))?
        }),
        ("nullmodesleep", {
            let r = r.clone();
            bind(lua, move |_, a| {
                if !a.is_empty() {
                    r.borrow_mut().nullmodesleep = truthy(a.arg(1));
                }
                Ok(r.borrow().nullmodesleep)
            })?
        }),
        ("sleeptype", sleeptype.clone()),
    ];
    if fw == Firmware::V1_5 {
        let (rr, ww, r) = (rt.clone(), w.clone(), r.clone());
        fns.push((
            "sleep",
            bind(lua, move |_, a| force_sleep(&rr, &ww, &r, &a))?,
        ));
    } else {
        fns.extend(newer_fns(lua, rt, &r)?);
    }
    let wifi = module_table(lua, fns)?;
    constants(&wifi, fw)?;
    wifi.set("sta", super::sta::table(lua, rt, w, sleeptype)?)?;
    wifi.set("ap", super::ap::table(lua, rt, w)?)?;
    wifi.set("eventmon", super::eventmon::table(lua, rt, w)?)?;
    Ok(wifi)
}

/// What 2.x added to `wifi`: country, transmit power, and the suspend API (which the default
/// build leaves out, so it says so).
fn newer_fns(lua: &Lua, rt: &Rc<Runtime>, r: &R) -> mlua::Result<Vec<(&'static str, Function)>> {
    let unavailable = |rt: &Rc<Runtime>| {
        let rt = rt.clone();
        bind(lua, move |_, _| -> FwResult<()> {
            rt.uart(b"\n The option \"PMSLEEP_ENABLE\" in \"app/include/user_config.h\" was disabled during FW build!\n");
            fw_err("wifi.suspend is unavailable")
        })
    };
    let (r1, r2) = (r.clone(), r.clone());
    Ok(vec![
        (
            "getcountry",
            bind(lua, move |lua, _| country_table(lua, &r1.borrow().country))?,
        ),
        ("setcountry", bind(lua, move |_, a| setcountry(&r2, &a))?),
        (
            "setmaxtxpower",
            bind(lua, |_, a| {
                let p = a.check_integer(1)?;
                arg_check(p > 0 && p < 83, 1, "tx power out of range (0->82)")?;
                // The firmware returns 1 value without pushing one: the argument itself.
                Ok(a.get(1))
            })?,
        ),
        ("suspend", unavailable(rt)?),
        ("resume", unavailable(rt)?),
    ])
}

fn constants(wifi: &Table, fw: Firmware) -> mlua::Result<()> {
    set_all(
        wifi,
        &[
            ("NULLMODE", 0),
            ("STATION", 1),
            ("SOFTAP", 2),
            ("STATIONAP", 3),
            ("PHYMODE_B", 1),
            ("PHYMODE_G", 2),
            ("PHYMODE_N", 3),
            ("NONE_SLEEP", 0),
            ("LIGHT_SLEEP", 1),
            ("MODEM_SLEEP", 2),
            ("OPEN", 0),
            ("WPA_PSK", 2),
            ("WPA2_PSK", 3),
            ("WPA_WPA2_PSK", 4),
            ("STA_IDLE", 0),
            ("STA_CONNECTING", 1),
            ("STA_WRONGPWD", 2),
            ("STA_APNOTFOUND", 3),
            ("STA_FAIL", 4),
            ("STA_GOTIP", 5),
        ],
    )?;
    if fw > Firmware::V1_5 {
        set_all(wifi, &[("COUNTRY_AUTO", 0), ("COUNTRY_MANUAL", 1)])?;
    }
    Ok(())
}

fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Nil | Value::Boolean(false))
}

/// `wifi.setmode(mode[, save])`: returns the mode now in force.
fn setmode(rt: &Rc<Runtime>, w: &W, a: &Args) -> FwResult<u8> {
    let m = a.check_integer(1)?;
    arg_check((0..=3).contains(&m), 1, "Invalid mode")?;
    let save = match a.arg(2) {
        Value::Nil => true,
        Value::Boolean(b) => *b,
        v => return arg_err(2, format!("boolean expected, got {}", typename(v))),
    };
    if save {
        w.saved.borrow_mut().mode = m as u8;
    }
    set_mode(rt, w, m as u8);
    Ok(m as u8)
}

/// Switches the radio's mode: a station switched off leaves its network, one switched on joins
/// the configured one (if it connects automatically), and the SDK reports the change.
pub(crate) fn set_mode(rt: &Rc<Runtime>, w: &W, new: u8) {
    let old = std::mem::replace(&mut w.st.borrow_mut().mode, new);
    if old == new {
        return;
    }
    emit(rt, w, Event::ModeChanged { old, new });
    if old & 1 != 0 && new & 1 == 0 {
        station::disconnect(rt, w);
    }
    if old & 2 != 0 && new & 2 == 0 {
        w.st.borrow_mut().clients.clear();
    }
    if old & 1 == 0 && new & 1 != 0 && w.saved.borrow().autoconnect {
        station::connect(rt, w);
    }
}

/// The radio's channel: its network's while joined, else the soft AP's, else 1.
pub(crate) fn channel(w: &W) -> u8 {
    let s = w.st.borrow();
    match &s.link {
        Some(l) => l.channel,
        None if s.mode & 2 != 0 => s.ap.channel,
        None => 1,
    }
}

fn country_table(lua: &Lua, c: &Country) -> FwResult<Table> {
    let t = lua.create_table()?;
    t.set("country", c.cc.as_str())?;
    t.set("start_ch", c.start_ch)?;
    t.set("end_ch", c.end_ch)?;
    t.set("policy", c.policy)?;
    Ok(t)
}

/// A field of a table argument as `lua_getfield` reads it.
pub(crate) fn field(t: &Table, key: &str) -> FwResult<Value> {
    Ok(t.get::<Value>(key)?)
}

/// `lua_isnumber` on a field: its integer value, if it has one.
fn field_number(v: &Value) -> Option<i64> {
    to_number(v).map(|x| x as i64)
}

fn setcountry(r: &R, a: &Args) -> FwResult<bool> {
    let Value::Table(t) = a.get(1) else {
        return arg_err(1, "Table not found!");
    };
    let cc = match field(&t, "country")? {
        Value::Nil => "CN".to_string(),
        v @ (Value::String(_) | Value::Integer(_) | Value::Number(_)) => {
            let s = v.to_string()?;
            let ok = s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic());
            arg_check(ok, 1, "country: country code must be 2 chars")?;
            s.to_ascii_uppercase()
        }
        _ => return arg_err(1, "country: must be string"),
    };
    let start_ch = match field(&t, "start_ch")? {
        Value::Nil => 1,
        v => match field_number(&v) {
            Some(n) => {
                arg_check((1..=14).contains(&n), 1, "start_ch: Range:1-14")?;
                n
            }
            None => return arg_err(1, "start_ch: must be a number"),
        },
    };
    let end_ch = match field(&t, "end_ch")? {
        Value::Nil => 13,
        v => match field_number(&v) {
            Some(n) => {
                arg_check((1..=14).contains(&n), 1, "end_ch: Range:1-14")?;
                arg_check(n >= start_ch, 1, "end_ch: can't be less than start_ch")?;
                n
            }
            None => return arg_err(1, "end_ch: must be a number"),
        },
    };
    let policy = match field(&t, "policy")? {
        Value::Nil => 0,
        v => match field_number(&v) {
            Some(n) => {
                arg_check(n == 0 || n == 1, 1, "policy: must be 0 or 1")?;
                n
            }
            None => return arg_err(1, "policy: must be a number"),
        },
    };
    r.borrow_mut().country = Country {
        cc,
        start_ch,
        end_ch,
        policy,
    };
    Ok(true)
}

/// 1.5 `wifi.sleep([0|1])`: forced modem sleep. Sleeping leaves the network and switches the
/// radio off (NULLMODE, saved); waking only lifts the flag. Returns the flag and nil.
fn force_sleep(rt: &Rc<Runtime>, w: &W, r: &R, a: &Args) -> FwResult<(Value, Value)> {
    let want = match to_number(a.arg(1)) {
        Some(0.0) => 0,
        Some(1.0) => 1,
        _ => 2,
    };
    let asleep = r.borrow().force_sleep;
    if want == 1 && !asleep {
        station::disconnect(rt, w);
        w.saved.borrow_mut().mode = 0;
        set_mode(rt, w, 0);
        r.borrow_mut().force_sleep = true;
    } else if want == 0 && asleep {
        r.borrow_mut().force_sleep = false;
    }
    Ok((Value::Integer(r.borrow().force_sleep as i64), Value::Nil))
}
