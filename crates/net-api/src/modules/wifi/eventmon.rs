//! The ESP8266's ways of hearing about the radio: `wifi.eventmon` (one callback slot per SDK
//! event, shared with the callbacks of `wifi.sta.config{...}` and `wifi.ap.config{...}`), and
//! under 1.5 the polling status monitor `wifi.sta.eventMonReg/eventMonStart/eventMonStop`.
//!
//! As in the firmware, an event is queued only if its slot holds a callback when it happens, and
//! runs as a low-priority task with the callback the slot holds by then, its argument table made
//! from the SDK's event record.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use host_backend::timers::TimerKey;
use mlua::{Function, Lua, Table, Value};

use super::station::{STA_IDLE, W};
use super::{Event, fmt_mac, set_all};
use crate::config::Firmware;
use crate::lauxlib::{Args, bind, fw_err};
use crate::modules::module_table;
use crate::runtime::{Priority, Removed, Runtime};

pub const STA_CONNECTED: u8 = 0;
pub const STA_DISCONNECTED: u8 = 1;
pub const STA_AUTHMODE_CHANGE: u8 = 2;
pub const STA_GOT_IP: u8 = 3;
pub const STA_DHCP_TIMEOUT: u8 = 4;
pub const AP_STACONNECTED: u8 = 5;
pub const AP_STADISCONNECTED: u8 = 6;
pub const AP_PROBEREQRECVED: u8 = 7;
pub const WIFI_MODE_CHANGED: u8 = 8;
/// `EVENT_SOFTAPMODE_DISTRIBUTE_STA_IP`: no constant of its own in `wifi.eventmon`.
const AP_DISTRIBUTE_STA_IP: u8 = 9;

/// The SDK's `EVENT_MAX`: 8 events in the 1.5 SDK, 10 from SDK 2 on (`OPMODE_CHANGED`,
/// `SOFTAPMODE_DISTRIBUTE_STA_IP`).
pub fn event_max(fw: Firmware) -> u8 {
    if fw == Firmware::V1_5 { 8 } else { 10 }
}

/// The disconnect reasons of `wifi.eventmon.reason`.
const REASONS: &[(&str, i64)] = &[
    ("UNSPECIFIED", 1),
    ("AUTH_EXPIRE", 2),
    ("AUTH_LEAVE", 3),
    ("ASSOC_EXPIRE", 4),
    ("ASSOC_TOOMANY", 5),
    ("NOT_AUTHED", 6),
    ("NOT_ASSOCED", 7),
    ("ASSOC_LEAVE", 8),
    ("ASSOC_NOT_AUTHED", 9),
    ("DISASSOC_PWRCAP_BAD", 10),
    ("DISASSOC_SUPCHAN_BAD", 11),
    ("IE_INVALID", 13),
    ("MIC_FAILURE", 14),
    ("4WAY_HANDSHAKE_TIMEOUT", 15),
    ("GROUP_KEY_UPDATE_TIMEOUT", 16),
    ("IE_IN_4WAY_DIFFERS", 17),
    ("GROUP_CIPHER_INVALID", 18),
    ("PAIRWISE_CIPHER_INVALID", 19),
    ("AKMP_INVALID", 20),
    ("UNSUPP_RSN_IE_VERSION", 21),
    ("INVALID_RSN_IE_CAP", 22),
    ("802_1X_AUTH_FAILED", 23),
    ("CIPHER_SUITE_REJECTED", 24),
    ("BEACON_TIMEOUT", 200),
    ("NO_AP_FOUND", 201),
    ("AUTH_FAIL", 202),
    ("ASSOC_FAIL", 203),
    ("HANDSHAKE_TIMEOUT", 204),
];

/// The SDK event id of `ev`, if the ESP8266 has one.
fn event_id(ev: &Event) -> Option<u8> {
    Some(match ev {
        Event::StaConnected { .. } => STA_CONNECTED,
        Event::StaDisconnected { .. } => STA_DISCONNECTED,
        Event::StaGotIp(_) => STA_GOT_IP,
        Event::ModeChanged { .. } => WIFI_MODE_CHANGED,
        Event::ApStaConnected { .. } => AP_STACONNECTED,
        Event::ApStaDisconnected { .. } => AP_STADISCONNECTED,
        Event::ApDistributeIp => AP_DISTRIBUTE_STA_IP,
        _ => return None,
    })
}

/// The callback's argument table, as `wifi_event_monitor_process_event_queue` fills it.
fn event_table(lua: &Lua, ev: &Event) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    match ev {
        Event::StaConnected {
            ssid,
            bssid,
            channel,
            ..
        } => {
            t.set("SSID", ssid.as_str())?;
            t.set("BSSID", fmt_mac(bssid))?;
            t.set("channel", *channel)?;
        }
        Event::StaDisconnected {
            ssid,
            bssid,
            reason,
        } => {
            t.set("SSID", ssid.as_str())?;
            t.set("reason", *reason)?;
            t.set("BSSID", fmt_mac(bssid))?;
        }
        Event::StaGotIp(ip) => {
            t.set("IP", ip.ip.to_string())?;
            t.set("netmask", ip.netmask.to_string())?;
            t.set("gateway", ip.gateway.to_string())?;
        }
        Event::ModeChanged { old, new } => {
            t.set("old_mode", *old)?;
            t.set("new_mode", *new)?;
        }
        Event::ApStaConnected { mac, aid } | Event::ApStaDisconnected { mac, aid } => {
            t.set("MAC", fmt_mac(mac))?;
            t.set("AID", *aid)?;
        }
        // The firmware's default case, for events it does not decode.
        _ => t.set(
            "info",
            format!("event {} not implemented", event_id(ev).unwrap_or(0)),
        )?,
    }
    Ok(t)
}

fn slot(w: &W, id: u8) -> Option<Function> {
    w.cbs.borrow().slots.get(id as usize).cloned().flatten()
}

/// The callback for event `id`: its own slot, else for an event the firmware does not decode
/// the catch-all registered under `EVENT_MAX`.
fn callback(rt: &Runtime, w: &W, id: u8) -> Option<Function> {
    let max = event_max(rt.cfg.firmware);
    slot(w, id).or_else(|| (id > WIFI_MODE_CHANGED).then(|| slot(w, max)).flatten())
}

/// Queues `ev` for its eventmon callback, if one is registered now.
pub(crate) fn deliver(rt: &Rc<Runtime>, w: &W, ev: Event) {
    let Some(id) = event_id(&ev) else { return };
    if ev_absent(rt, &ev) || callback(rt, w, id).is_none() {
        return;
    }
    let (r, ww) = (rt.clone(), w.clone());
    rt.post_internal(
        Priority::Low,
        Box::new(move |lua| match callback(&r, &ww, id) {
            Some(f) => r.call_protected(lua, &f, event_table(lua, &ev)?),
            None => Ok(()),
        }),
    );
}

/// The 1.5 SDK had neither the mode-change nor the address-given event.
fn ev_absent(rt: &Runtime, ev: &Event) -> bool {
    matches!(ev, Event::ModeChanged { .. } | Event::ApDistributeIp)
        && rt.cfg.firmware == Firmware::V1_5
}

/// `wifi_event_monitor_register`: also what `wifi.sta.config{connect_cb=...}` and the callback
/// argument of `wifi.sta.connect(fn)` use. A non-function second argument clears the slot.
pub(crate) fn register(rt: &Runtime, w: &W, a: &Args) -> crate::lauxlib::FwResult<()> {
    let id = a.check_integer(1)? as u8;
    let max = event_max(rt.cfg.firmware);
    if id > max {
        return fw_err(format!("valid wifi events:0-{max}"));
    }
    set_slot(
        rt,
        w,
        id,
        match a.get(2) {
            Value::Function(f) => Some(f),
            _ => None,
        },
    );
    Ok(())
}

pub(crate) fn set_slot(rt: &Runtime, w: &W, id: u8, f: Option<Function>) {
    let mut cbs = w.cbs.borrow_mut();
    let len = event_max(rt.cfg.firmware) as usize + 1;
    if cbs.slots.len() < len {
        cbs.slots.resize(len, None);
    }
    cbs.slots[id as usize] = f;
}

/// `wifi.eventmon`.
pub(crate) fn table(lua: &Lua, rt: &Rc<Runtime>, w: &W) -> mlua::Result<Table> {
    let (r, ww) = (rt.clone(), w.clone());
    let register_fn = bind(lua, move |_, a| register(&r, &ww, &a))?;
    let t = module_table(
        lua,
        vec![
            ("register", register_fn.clone()),
            ("unregister", register_fn),
        ],
    )?;
    set_all(
        &t,
        &[
            ("STA_CONNECTED", STA_CONNECTED),
            ("STA_DISCONNECTED", STA_DISCONNECTED),
            ("STA_AUTHMODE_CHANGE", STA_AUTHMODE_CHANGE),
            ("STA_GOT_IP", STA_GOT_IP),
            ("STA_DHCP_TIMEOUT", STA_DHCP_TIMEOUT),
            ("AP_STACONNECTED", AP_STACONNECTED),
            ("AP_STADISCONNECTED", AP_STADISCONNECTED),
            ("AP_PROBEREQRECVED", AP_PROBEREQRECVED),
            ("EVENT_MAX", event_max(rt.cfg.firmware)),
        ],
    )?;
    if rt.cfg.firmware > Firmware::V1_5 {
        t.set("WIFI_MODE_CHANGED", WIFI_MODE_CHANGED)?;
    }
    let reason = lua.create_table()?;
    set_all(&reason, REASONS)?;
    t.set("reason", reason)?;
    Ok(t)
}

/// What 2.1 removed from `wifi.sta`: the 1.x status monitor.
pub(crate) const REMOVED_MONITOR: &[(&str, Removed)] = &[
    ("eventMonReg", MONITOR_REMOVED),
    ("eventMonStart", MONITOR_REMOVED),
    ("eventMonStop", MONITOR_REMOVED),
];

const MONITOR_REMOVED: Removed = Removed {
    removed_in: "2.1",
    why: "the station status monitor; use wifi.eventmon",
    newest: Firmware::V1_5,
};

/// The 1.5 status monitor: a timer polling `wifi.sta.status()`, calling the callback of the new
/// status with the previous one.
#[derive(Default)]
struct Monitor {
    cbs: [Option<Function>; 6],
    timer: Option<TimerKey>,
    prev: u8,
}

type M = Rc<RefCell<Monitor>>;

/// Adds `eventMonReg`, `eventMonStart` and `eventMonStop` to the 1.5 `wifi.sta` table.
pub(crate) fn add_status_monitor(
    lua: &Lua,
    rt: &Rc<Runtime>,
    w: &W,
    sta: &Table,
) -> mlua::Result<()> {
    let m: M = Rc::new(RefCell::new(Monitor {
        prev: STA_IDLE,
        ..Default::default()
    }));
    let mm = m.clone();
    sta.set(
        "eventMonReg",
        bind(lua, move |_, a| {
            let id = a.check_number(1)? as i64 as u8;
            if id > 5 {
                return fw_err("valid wifi status:0-5");
            }
            mm.borrow_mut().cbs[id as usize] = match a.get(2) {
                Value::Function(f) => Some(f),
                _ => None,
            };
            Ok(())
        })?,
    )?;
    let (mm, r, ww) = (m.clone(), rt.clone(), w.clone());
    sta.set(
        "eventMonStart",
        bind(lua, move |_, a| {
            if ww.st.borrow().mode == 2 {
                return fw_err("Can't monitor in SOFTAP mode");
            }
            if mm.borrow().cbs.iter().all(Option::is_none) {
                return fw_err("No callbacks defined");
            }
            let ms = if a.is_number(1) {
                a.check_number(1)? as u32
            } else {
                150
            };
            stop_monitor(&r, &mm);
            arm_monitor(
                &r,
                &ww,
                &mm,
                Duration::from_millis(u64::from(ms.max(1))),
                r.now(),
            );
            Ok(())
        })?,
    )?;
    let (r, mm) = (rt.clone(), m);
    sta.set(
        "eventMonStop",
        bind(lua, move |_, a| {
            stop_monitor(&r, &mm);
            if a.is_string(1) {
                mm.borrow_mut().cbs = Default::default();
            }
            Ok(())
        })?,
    )
}

fn stop_monitor(rt: &Runtime, m: &M) {
    if let Some(k) = m.borrow_mut().timer.take() {
        rt.cancel_timer(k);
    }
}

/// Arms the next poll `every` after `from`, keeping the cadence as the SDK's repeating timer does.
fn arm_monitor(rt: &Rc<Runtime>, w: &W, m: &M, every: Duration, from: Duration) {
    let (r, ww, mm) = (rt.clone(), w.clone(), m.clone());
    let key = rt.arm_timer_at(
        from + every,
        Box::new(move |lua| {
            mm.borrow_mut().timer = None;
            if ww.st.borrow().mode == 2 {
                return Ok(());
            }
            arm_monitor(&r, &ww, &mm, every, from + every);
            let status = ww.st.borrow().status;
            let prev = std::mem::replace(&mut mm.borrow_mut().prev, status);
            let cb = mm.borrow().cbs[status as usize].clone();
            match cb {
                Some(f) if status != prev => r.call_protected(lua, &f, prev),
                _ => Ok(()),
            }
        }),
    );
    m.borrow_mut().timer = Some(key);
}
