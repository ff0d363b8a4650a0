//! `enduser_setup`: the firmware's captive portal (`app/modules/enduser_setup.c`), driving the
//! Wi-Fi model as the C code drives the SDK, with its web server and DNS server on the host.
//!
//! `start([ap_ssid,] onConnected, onError, onDebug)`: unless `manual(true)`, the station is
//! switched on, a scan picks the channel of the strongest network, and an open soft AP
//! (`NodeMCU_XXXXXX` from its MAC, or `ap_ssid`) comes up in STATIONAP mode. Every 3 s the
//! station is checked: once it has an address, `onConnected()` runs (when the station's channel
//! is the AP's) and, unless manual, the portal stops 10 s later so a browser can read the last
//! status. A station that fails (wrong password, no network) is only reported through `/status`
//! and `/status.json`, as in the firmware. Fatal errors stop the portal before the error
//! callback could run, so, as on the board, the script hears nothing of them; the simulator says
//! why on stderr. `onDebug` is never called: the firmware builds it disabled.
//!
//! Here: the portal's life; `http.rs` has the web server and its endpoints, `dns.rs` the DNS
//! server that answers every name with the soft AP's address.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Duration;

use host_backend::timers::TimerKey;
use mlua::{Function, Lua, Value};

use crate::lauxlib::{Args, FwResult, bind};
use crate::modules::module_table;
use crate::modules::wifi::{self, AUTH_OPEN, ApConfig, W};
use crate::runtime::{LiveIo, Runtime};

mod dns;
mod http;

/// How often the station is checked (`check_station_timer`).
const CHECK: Duration = Duration::from_secs(3);
/// The teardown delay after success, for a browser to fetch the last status.
const SHUTDOWN: Duration = Duration::from_secs(10);
/// `ENDUSER_SETUP_AP_SSID` (`SetupGadget` before 3.0).
const AP_SSID_PREFIX: &str = "NodeMCU";
const LEGACY_AP_SSID_PREFIX: &str = "SetupGadget";
/// `STATION_MODE`, `SOFTAP_MODE`, `STATIONAP_MODE`.
const STATION: u8 = 1;
const SOFTAP: u8 = 2;
const STATIONAP: u8 = 3;

/// A running portal (`enduser_setup_state_t`).
pub(super) struct Portal {
    w: W,
    ap_ssid: Option<String>,
    on_connected: Option<Function>,
    soft_ap_channel: Cell<u8>,
    success: Cell<bool>,
    callback_done: Cell<bool>,
    /// The station status cached when the station had to be switched off (0: none).
    last_status: Cell<u8>,
    connecting: Cell<bool>,
    ipaddr: RefCell<String>,
    check: Cell<Option<TimerKey>>,
    timers: RefCell<Vec<TimerKey>>,
    servers: RefCell<Vec<tokio::task::JoinHandle<()>>>,
    listener: RefCell<Option<Rc<tokio::net::TcpListener>>>,
    live: RefCell<Option<LiveIo>>,
}

impl Drop for Portal {
    /// A reset drops the portal without `stop()`: its servers must not outlive the boot.
    fn drop(&mut self) {
        if let Some(l) = self.listener.get_mut().take() {
            host_backend::tcp::stop_listening(&l);
        }
        for task in self.servers.get_mut().drain(..) {
            task.abort();
        }
    }
}

/// The boot's portal and the `manual` flag, which outlives a portal as the C static does.
/// The DNS server's socket stays bound from the first `start` on (a closed UDP socket frees its
/// port only when the loop next runs) and answers only while a portal runs.
#[derive(Default)]
struct Slot {
    portal: RefCell<Option<Rc<Portal>>>,
    manual: Cell<bool>,
    dns: RefCell<Option<host_backend::udp::Endpoint>>,
}

fn slot(rt: &Runtime) -> Rc<Slot> {
    rt.state(|_| Slot::default())
}

/// The running portal, if `p` is still it.
fn current(rt: &Runtime, p: &Weak<Portal>) -> Option<Rc<Portal>> {
    let p = p.upgrade()?;
    let cur = slot(rt).portal.borrow().clone()?;
    Rc::ptr_eq(&p, &cur).then_some(p)
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let r = rt.clone();
    let manual = bind(lua, move |_, a| {
        let s = slot(&r);
        if !a.is_none_or_nil(1) {
            s.manual.set(!matches!(a.arg(1), Value::Boolean(false)));
        }
        Ok(s.manual.get())
    })?;
    let r = rt.clone();
    let start = bind(lua, move |lua, a| start(lua, &r, &a))?;
    let r = rt.clone();
    let stop = bind(lua, move |lua, _| Ok(stop(lua, &r)?))?;
    let t = module_table(
        lua,
        vec![("manual", manual), ("start", start), ("stop", stop)],
    )?;
    lua.globals().set("enduser_setup", t)
}

/// `enduser_setup.start([ap_ssid,] onConnected, onError, onDebug)`.
fn start(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<()> {
    if slot(rt).portal.borrow().is_some() {
        // "init failed. Appears to already be started. EUS will shut down now." The portal is
        // gone before the error callback is looked up, so none runs.
        rt.diag("enduser_setup: start() while running shuts the portal down, as the firmware does");
        stop(lua, rt)?;
        return Ok(());
    }
    let Some(w) = wifi::radio(rt) else {
        return Ok(());
    };
    let mut n = 1;
    // The SSID argument came with 3.0.
    let ap_ssid = if rt.cfg.firmware >= crate::config::Firmware::V3_0 && a.is_string(n) {
        n += 1;
        Some(a.check_str(lua, 1)?)
    } else {
        None
    };
    let on_connected = match a.get(n) {
        Value::Function(f) => Some(f),
        _ => None,
    };
    let p = Rc::new(Portal {
        w,
        ap_ssid,
        on_connected,
        soft_ap_channel: Cell::new(1),
        success: Cell::new(false),
        callback_done: Cell::new(false),
        last_status: Cell::new(0),
        connecting: Cell::new(false),
        ipaddr: RefCell::new(String::new()),
        check: Cell::new(None),
        timers: RefCell::default(),
        servers: RefCell::default(),
        listener: RefCell::new(None),
        live: RefCell::new(Some(rt.live_io_guard())),
    });
    *slot(rt).portal.borrow_mut() = Some(p.clone());
    if slot(rt).manual.get() {
        check_station_start(rt, &p);
    } else {
        let mode = p.w.st.borrow().mode;
        wifi::set_mode(rt, &p.w, mode | STATION);
        // The initial scan: the AP takes the channel of the strongest network in range.
        let weak = Rc::downgrade(&p);
        let r = rt.clone();
        let key = rt.arm_timer(
            wifi::SCAN,
            Box::new(move |_| {
                if let Some(p) = current(&r, &weak) {
                    initial_scan_done(&r, &p);
                }
                Ok(())
            }),
        );
        p.timers.borrow_mut().push(key);
    }
    if let Err(e) = dns::start(rt) {
        rt.diag(&format!(
            "enduser_setup: cannot start the DNS server ({e}); the portal stops, as the \
             firmware does (move it with --port-map 53=PORT)"
        ));
        return Ok(stop(lua, rt)?);
    }
    if let Err(e) = http::start(rt, &p) {
        rt.diag(&format!(
            "enduser_setup: cannot start the web server ({e}); the portal stops, as the \
             firmware does (move it with --port-map 80=PORT)"
        ));
        return Ok(stop(lua, rt)?);
    }
    Ok(())
}

fn initial_scan_done(rt: &Rc<Runtime>, p: &Rc<Portal>) {
    let mut rssi = -100;
    for n in wifi::scan(&p.w) {
        if n.rssi > rssi {
            p.soft_ap_channel.set(n.channel);
            rssi = n.rssi;
        }
    }
    ap_start(rt, p);
    check_station_start(rt, p);
}

/// `enduser_setup_ap_start`: an open soft AP on the chosen channel, in STATIONAP mode.
fn ap_start(rt: &Rc<Runtime>, p: &Portal) {
    let mac = p.w.st.borrow().ap_mac;
    let prefix = if rt.cfg.firmware >= crate::config::Firmware::V3_0 {
        AP_SSID_PREFIX
    } else {
        LEGACY_AP_SSID_PREFIX
    };
    let ssid = match &p.ap_ssid {
        // `softap_config.ssid` holds 32 bytes.
        Some(s) => s.chars().take(32).collect(),
        None => format!("{prefix}_{:02X}{:02X}{:02X}", mac[3], mac[4], mac[5]),
    };
    wifi::set_mode(rt, &p.w, STATIONAP);
    p.w.st.borrow_mut().ap = ApConfig {
        ssid,
        pwd: String::new(),
        auth: AUTH_OPEN,
        channel: p.soft_ap_channel.get(),
        hidden: false,
        max: 5,
        beacon: 100,
    };
}

fn check_station_start(rt: &Rc<Runtime>, p: &Rc<Portal>) {
    let weak = Rc::downgrade(p);
    let r = rt.clone();
    let key = rt.arm_timer(
        CHECK,
        Box::new(move |lua| match current(&r, &weak) {
            Some(p) => check_station(lua, &r, &p),
            None => Ok(()),
        }),
    );
    p.check.set(Some(key));
}

/// `enduser_setup_check_station`, every 3 s until the station has an address.
fn check_station(lua: &Lua, rt: &Rc<Runtime>, p: &Rc<Portal>) -> mlua::Result<()> {
    p.check.set(None);
    let chan = wifi::channel(&p.w);
    let Some(ip) = p.w.sta_ip() else {
        let status = p.w.st.borrow().status;
        if matches!(status, 2..=4) {
            p.connecting.set(false);
            if chan != p.soft_ap_channel.get() {
                // The station is on another channel than the AP: it must go, keeping its
                // status for the browser.
                p.last_status.set(status);
                wifi::station_disconnect(rt, &p.w);
                wifi::set_mode(rt, &p.w, SOFTAP);
                ap_start(rt, p);
            }
        }
        check_station_start(rt, p);
        return Ok(());
    };
    *p.ipaddr.borrow_mut() = ip.ip.to_string();
    p.success.set(true);
    p.last_status.set(5);
    p.connecting.set(false);
    if chan == p.soft_ap_channel.get() {
        connected_callback(lua, rt, p)?;
        p.callback_done.set(true);
    } else {
        wifi::station_disconnect(rt, &p.w);
        wifi::set_mode(rt, &p.w, SOFTAP);
        ap_start(rt, p);
    }
    if !slot(rt).manual.get() {
        let weak = Rc::downgrade(p);
        let r = rt.clone();
        let key = rt.arm_timer(
            SHUTDOWN,
            Box::new(move |lua| match current(&r, &weak) {
                Some(_) => stop(lua, &r),
                None => Ok(()),
            }),
        );
        p.timers.borrow_mut().push(key);
    }
    Ok(())
}

fn connected_callback(lua: &Lua, rt: &Rc<Runtime>, p: &Portal) -> mlua::Result<()> {
    match &p.on_connected {
        Some(f) => rt.call_protected(lua, f, ()),
        None => Ok(()),
    }
}

/// `enduser_setup.stop()`, also the end of a successful portal and of a failed start.
fn stop(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let manual = slot(rt).manual.get();
    let portal = slot(rt).portal.borrow_mut().take();
    if !manual && let Some(w) = wifi::radio(rt) {
        let mode = w.st.borrow().mode;
        wifi::set_mode(rt, &w, mode & !SOFTAP);
    }
    let Some(p) = portal else { return Ok(()) };
    if let Some(key) = p.check.take() {
        rt.cancel_timer(key);
    }
    for key in p.timers.borrow_mut().drain(..) {
        rt.cancel_timer(key);
    }
    if let Some(l) = p.listener.borrow_mut().take() {
        host_backend::tcp::stop_listening(&l);
    }
    for task in p.servers.borrow_mut().drain(..) {
        task.abort();
    }
    p.live.borrow_mut().take();
    if p.success.get() && !p.callback_done.get() {
        let mode = p.w.st.borrow().mode;
        wifi::set_mode(rt, &p.w, mode | STATION);
        wifi::station_connect(rt, &p.w);
        connected_callback(lua, rt, &p)?;
    }
    Ok(())
}
