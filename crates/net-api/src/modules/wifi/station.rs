//! The station's life as on a board, shared by both chips' APIs: what is saved in flash, the
//! access points in range, and the steps of joining one, each on the device clock.
//!
//! Timings (device time, chosen from what boards show on a serial log):
//! an attempt finds and joins its network in [`JOIN`] (1.5 s: scan, authenticate, associate),
//! then DHCP takes [`DHCP`] (0.5 s) to STA_GOT_IP. A failed attempt (no such network, a refused
//! password) is reported after [`FAIL`] (2 s) and the ESP8266 SDK tries again at once, for ever,
//! as its auto-reconnect does. A station the network drops reconnects the same way.
//!
//! These steps are background timers (`Runtime::arm_background_at`): they keep a run alive only
//! while the script has a Wi-Fi callback that could see them.

use std::cell::RefCell;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::time::Duration;

use host_backend::timers::TimerKey;

use super::setup::{EventKind, EventSetup, WifiSetup};
use super::{Event, emit};
use crate::config::Target;
use crate::runtime::Runtime;

pub const JOIN: Duration = Duration::from_millis(1500);
pub const DHCP: Duration = Duration::from_millis(500);
pub const FAIL: Duration = Duration::from_millis(2000);

/// `wifi.STA_*`, the SDK's `station_status_t`.
pub const STA_IDLE: u8 = 0;
pub const STA_CONNECTING: u8 = 1;
pub const STA_WRONGPWD: u8 = 2;
pub const STA_APNOTFOUND: u8 = 3;
pub const STA_GOTIP: u8 = 5;

/// Disconnect reasons (`wifi.eventmon.reason.*`).
pub const REASON_ASSOC_LEAVE: u16 = 8;
pub const REASON_BEACON_TIMEOUT: u16 = 200;
pub const REASON_NO_AP_FOUND: u16 = 201;
pub const REASON_AUTH_FAIL: u16 = 202;

/// The SDK's auth modes.
pub const AUTH_OPEN: u8 = 0;
pub const AUTH_WPA2_PSK: u8 = 3;
pub const AUTH_WPA_WPA2_PSK: u8 = 4;

/// A station configuration (`struct station_config`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StaConfig {
    pub ssid: String,
    pub pwd: String,
    pub bssid: Option<[u8; 6]>,
}

/// A soft AP configuration (`struct softap_config`).
#[derive(Debug, Clone)]
pub struct ApConfig {
    pub ssid: String,
    pub pwd: String,
    pub auth: u8,
    pub channel: u8,
    pub hidden: bool,
    pub max: u8,
    pub beacon: u16,
}

/// An interface's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpInfo {
    pub ip: Ipv4Addr,
    pub netmask: Ipv4Addr,
    pub gateway: Ipv4Addr,
}

impl IpInfo {
    pub fn broadcast(&self) -> Ipv4Addr {
        let (ip, mask) = (u32::from(self.ip), u32::from(self.netmask));
        Ipv4Addr::from((ip & mask) | !mask)
    }
}

/// What the SDK keeps in flash: it survives `node.restart()` within a run.
pub struct Saved {
    pub sta: Option<StaConfig>,
    /// The stored access points, newest first (`wifi.sta.getapinfo`).
    pub aps: Vec<StaConfig>,
    pub ap_limit: usize,
    pub autoconnect: bool,
    pub mode: u8,
    pub ap: ApConfig,
}

impl Saved {
    fn from_setup(setup: &WifiSetup, ap_mac: [u8; 6]) -> Saved {
        let sta = match &setup.saved {
            Some(s) => s.0.as_ref().map(|n| StaConfig {
                ssid: n.ssid.0.clone(),
                pwd: n.pwd.clone(),
                bssid: n.bssid.map(|m| m.0),
            }),
            None => Some(match setup.ap.first() {
                Some(ap) => StaConfig {
                    ssid: ap.ssid.0.clone(),
                    pwd: ap.pwd.clone().unwrap_or_default(),
                    bssid: None,
                },
                None => StaConfig {
                    ssid: DEFAULT_SSID.into(),
                    ..Default::default()
                },
            }),
        };
        Saved {
            aps: sta.iter().cloned().collect(),
            sta,
            ap_limit: 1,
            autoconnect: true,
            mode: setup.mode.map_or(1, |m| m.number()),
            ap: ApConfig {
                ssid: format!("ESP_{:02X}{:02X}{:02X}", ap_mac[3], ap_mac[4], ap_mac[5]),
                pwd: String::new(),
                auth: AUTH_OPEN,
                channel: 1,
                hidden: false,
                max: 4,
                beacon: 100,
            },
        }
    }

    /// Stores `cfg` as the SDK's `wifi_station_set_config` does.
    pub fn store(&mut self, cfg: &StaConfig) {
        self.sta = Some(cfg.clone());
        self.aps.retain(|c| c.ssid != cfg.ssid);
        self.aps.insert(0, cfg.clone());
        self.aps.truncate(self.ap_limit);
    }
}

/// The network that answers when the project lists none.
pub const DEFAULT_SSID: &str = "nodemcu-sim";
const DEFAULT_BSSID: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// An access point in range.
#[derive(Debug, Clone)]
pub struct Neighbour {
    /// None: the default network, which takes any SSID and password.
    pub ssid: Option<String>,
    pub pwd: Option<String>,
    pub rssi: i8,
    pub channel: u8,
    pub bssid: [u8; 6],
    pub up: bool,
}

impl Neighbour {
    pub fn auth(&self) -> u8 {
        match self.pwd.as_deref() {
            None | Some("") => AUTH_OPEN,
            Some(_) => AUTH_WPA2_PSK,
        }
    }
}

/// The access point the station is associated with.
#[derive(Debug, Clone)]
pub struct Link {
    pub ssid: String,
    pub bssid: [u8; 6],
    pub channel: u8,
    pub rssi: i8,
    pub auth: u8,
}

/// A client of the soft AP.
#[derive(Debug, Clone)]
pub struct Client {
    pub mac: [u8; 6],
    pub aid: u8,
    pub ip: Ipv4Addr,
}

/// The radio's state for one boot.
pub struct State {
    pub mode: u8,
    pub status: u8,
    pub config: Option<StaConfig>,
    pub link: Option<Link>,
    pub dhcp_ip: Option<IpInfo>,
    pub static_ip: Option<IpInfo>,
    pub pending: Option<TimerKey>,
    pub sta_mac: [u8; 6],
    pub ap_mac: [u8; 6],
    pub hostname: String,
    pub ap: ApConfig,
    pub ap_ip: IpInfo,
    pub lease_start: Ipv4Addr,
    pub clients: Vec<Client>,
    pub air: Vec<Neighbour>,
    /// ESP32: `wifi.start()` was called.
    pub started: bool,
}

/// The station's state and what outlives the boot.
pub struct Wifi {
    pub st: RefCell<State>,
    pub saved: Rc<RefCell<Saved>>,
    /// The script's callbacks for the radio's events.
    pub cbs: RefCell<super::Callbacks>,
}

pub type W = Rc<Wifi>;

pub const STA_MAC: [u8; 6] = [0x5c, 0xcf, 0x7f, 0xc0, 0xff, 0xee];
pub const AP_MAC: [u8; 6] = [0x5e, 0xcf, 0x7f, 0xc0, 0xff, 0xee];

impl Wifi {
    /// The radio at power-on: the saved mode and configuration, the neighbourhood of the project
    /// file, and (on the ESP8266) the saved network joining at once.
    pub fn boot(rt: &Rc<Runtime>) -> W {
        let setup = &rt.cfg.wifi;
        let saved = rt
            .persist
            .get(|| RefCell::new(Saved::from_setup(setup, AP_MAC)));
        let air = neighbourhood(setup);
        let (mode, config, ap) = {
            let s = saved.borrow();
            (s.mode, s.sta.clone(), s.ap.clone())
        };
        let w = Rc::new(Wifi {
            st: RefCell::new(State {
                mode,
                status: STA_IDLE,
                config,
                link: None,
                dhcp_ip: None,
                static_ip: None,
                pending: None,
                sta_mac: STA_MAC,
                ap_mac: AP_MAC,
                hostname: format!(
                    "NODE-{:02X}{:02X}{:02X}",
                    STA_MAC[3], STA_MAC[4], STA_MAC[5]
                ),
                ap,
                ap_ip: IpInfo {
                    ip: Ipv4Addr::new(192, 168, 4, 1),
                    netmask: Ipv4Addr::new(255, 255, 255, 0),
                    gateway: Ipv4Addr::new(192, 168, 4, 1),
                },
                lease_start: Ipv4Addr::new(192, 168, 4, 2),
                clients: Vec::new(),
                air,
                started: false,
            }),
            saved,
            cbs: RefCell::default(),
        });
        for ev in &setup.event {
            schedule_world(rt, &w, ev.clone());
        }
        if rt.cfg.target != Target::Esp32 && w.saved.borrow().autoconnect {
            connect(rt, &w);
        }
        w
    }

    /// The station's address: a static one if set, else the DHCP lease once it came.
    pub fn sta_ip(&self) -> Option<IpInfo> {
        let s = self.st.borrow();
        s.static_ip.or(s.dhcp_ip)
    }
}

fn neighbourhood(setup: &WifiSetup) -> Vec<Neighbour> {
    if setup.ap.is_empty() {
        return vec![Neighbour {
            ssid: None,
            pwd: None,
            rssi: -60,
            channel: 6,
            bssid: DEFAULT_BSSID,
            up: true,
        }];
    }
    setup
        .ap
        .iter()
        .zip(1u8..)
        .map(|(a, n)| Neighbour {
            ssid: Some(a.ssid.0.clone()),
            pwd: a.pwd.clone(),
            rssi: a.rssi.0,
            channel: a.channel.0,
            bssid: a.bssid.map_or([2, 0, 0, 0, 0, n], |m| m.0),
            up: true,
        })
        .collect()
}

/// The access point `cfg` would join now, or the reason it cannot and the BSSID it reports.
fn lookup(s: &State, cfg: &StaConfig) -> Result<Link, (u16, [u8; 6])> {
    let found = s.air.iter().find(|n| {
        n.up && n.ssid.as_ref().is_none_or(|id| *id == cfg.ssid)
            && cfg.bssid.is_none_or(|b| n.ssid.is_none() || b == n.bssid)
    });
    let Some(n) = found else {
        return Err((REASON_NO_AP_FOUND, [0; 6]));
    };
    if n.ssid.is_some() && n.pwd.as_deref().unwrap_or("") != cfg.pwd {
        return Err((REASON_AUTH_FAIL, n.bssid));
    }
    let auth = if n.ssid.is_none() && !cfg.pwd.is_empty() {
        AUTH_WPA2_PSK
    } else {
        n.auth()
    };
    Ok(Link {
        ssid: cfg.ssid.clone(),
        bssid: cfg.bssid.filter(|_| n.ssid.is_none()).unwrap_or(n.bssid),
        channel: n.channel,
        rssi: n.rssi,
        auth,
    })
}

/// What a scan finds: every network up, the default one under the station's SSID.
pub fn scan(w: &Wifi) -> Vec<Neighbour> {
    let s = w.st.borrow();
    let own = s
        .config
        .as_ref()
        .filter(|c| !c.ssid.is_empty())
        .map_or(DEFAULT_SSID.to_string(), |c| c.ssid.clone());
    s.air
        .iter()
        .filter(|n| n.up)
        .map(|n| {
            let mut n = n.clone();
            if n.ssid.is_none() {
                n.ssid = Some(own.clone());
            }
            n
        })
        .collect()
}

/// Runs `step` after `delay` as the station's one pending step, replacing any other.
fn schedule(rt: &Rc<Runtime>, w: &W, delay: Duration, step: fn(&Rc<Runtime>, &W)) {
    cancel_pending(rt, w);
    let (r, ww) = (rt.clone(), w.clone());
    let key = rt.arm_background_at(
        rt.now() + delay,
        Box::new(move |_| {
            ww.st.borrow_mut().pending = None;
            step(&r, &ww);
            Ok(())
        }),
    );
    w.st.borrow_mut().pending = Some(key);
}

fn cancel_pending(rt: &Runtime, w: &Wifi) {
    if let Some(k) = w.st.borrow_mut().pending.take() {
        rt.cancel_timer(k);
    }
}

/// `wifi_station_connect`: starts joining the configured network, unless the station is off,
/// already joined or already on its way.
pub fn connect(rt: &Rc<Runtime>, w: &W) {
    let cfg = {
        let s = w.st.borrow();
        if s.mode & 1 == 0 || s.link.is_some() || s.pending.is_some() {
            return;
        }
        match &s.config {
            Some(c) if !c.ssid.is_empty() => c.clone(),
            _ => return,
        }
    };
    w.st.borrow_mut().status = STA_CONNECTING;
    attempt(rt, w, &cfg);
}

/// One attempt: how long it takes depends on whether it can succeed now; when it is done the
/// neighbourhood is asked again (a network that went down meanwhile fails it).
fn attempt(rt: &Rc<Runtime>, w: &W, cfg: &StaConfig) {
    let found = lookup(&w.st.borrow(), cfg).is_ok();
    if found {
        schedule(rt, w, JOIN, joined);
    } else {
        schedule(rt, w, FAIL, failed);
    }
}

fn current_config(w: &Wifi) -> Option<StaConfig> {
    w.st.borrow().config.clone().filter(|c| !c.ssid.is_empty())
}

fn joined(rt: &Rc<Runtime>, w: &W) {
    let Some(cfg) = current_config(w) else { return };
    let found = lookup(&w.st.borrow(), &cfg);
    let link = match found {
        Ok(l) => l,
        Err(_) => return failed(rt, w),
    };
    let static_ip = {
        let mut s = w.st.borrow_mut();
        s.link = Some(link.clone());
        s.static_ip
    };
    emit(
        rt,
        w,
        Event::StaConnected {
            ssid: link.ssid,
            bssid: link.bssid,
            channel: link.channel,
            auth: link.auth,
        },
    );
    match static_ip {
        Some(ip) => got_ip(rt, w, ip),
        None => schedule(rt, w, DHCP, dhcp_done),
    }
}

/// The lease every network hands out: the device's loopback address (decisions.md §5).
pub fn lease() -> IpInfo {
    IpInfo {
        ip: Ipv4Addr::LOCALHOST,
        netmask: Ipv4Addr::new(255, 0, 0, 0),
        gateway: Ipv4Addr::LOCALHOST,
    }
}

fn dhcp_done(rt: &Rc<Runtime>, w: &W) {
    w.st.borrow_mut().dhcp_ip = Some(lease());
    got_ip(rt, w, lease());
}

fn got_ip(rt: &Rc<Runtime>, w: &W, ip: IpInfo) {
    w.st.borrow_mut().status = STA_GOTIP;
    emit(rt, w, Event::StaGotIp(ip));
}

fn failed(rt: &Rc<Runtime>, w: &W) {
    let Some(cfg) = current_config(w) else { return };
    // The network may have come back since the attempt began; it still failed.
    let found = lookup(&w.st.borrow(), &cfg);
    let (reason, bssid) = found.err().unwrap_or((REASON_NO_AP_FOUND, [0; 6]));
    w.st.borrow_mut().status = if reason == REASON_AUTH_FAIL {
        STA_WRONGPWD
    } else {
        STA_APNOTFOUND
    };
    emit(
        rt,
        w,
        Event::StaDisconnected {
            ssid: cfg.ssid.clone(),
            bssid,
            reason,
        },
    );
    if rt.cfg.target != Target::Esp32 {
        attempt(rt, w, &cfg);
    }
}

/// `wifi_station_disconnect`: leaves the network (STA_DISCONNECTED with ASSOC_LEAVE if it was
/// joined) and stops trying.
pub fn disconnect(rt: &Rc<Runtime>, w: &W) {
    cancel_pending(rt, w);
    let link = {
        let mut s = w.st.borrow_mut();
        s.status = STA_IDLE;
        s.dhcp_ip = None;
        s.link.take()
    };
    if let Some(l) = link {
        emit(
            rt,
            w,
            Event::StaDisconnected {
                ssid: l.ssid,
                bssid: l.bssid,
                reason: REASON_ASSOC_LEAVE,
            },
        );
    }
}

/// The network dropped the station: it reports `reason` and (on the ESP8266) reconnects.
fn lost(rt: &Rc<Runtime>, w: &W, reason: u16) {
    let link = {
        let mut s = w.st.borrow_mut();
        s.dhcp_ip = None;
        s.link.take()
    };
    let Some(l) = link else { return };
    cancel_pending(rt, w);
    let esp32 = rt.cfg.target == Target::Esp32;
    w.st.borrow_mut().status = if esp32 { STA_IDLE } else { STA_CONNECTING };
    emit(
        rt,
        w,
        Event::StaDisconnected {
            ssid: l.ssid,
            bssid: l.bssid,
            reason,
        },
    );
    if let (false, Some(cfg)) = (esp32, current_config(w)) {
        attempt(rt, w, &cfg);
    }
}

/// Arms one `[[wifi.event]]` at its device time.
fn schedule_world(rt: &Rc<Runtime>, w: &W, ev: EventSetup) {
    let (r, ww) = (rt.clone(), w.clone());
    rt.arm_background_at(
        Duration::from_millis(ev.at),
        Box::new(move |_| {
            world_event(&r, &ww, &ev);
            Ok(())
        }),
    );
}

fn world_event(rt: &Rc<Runtime>, w: &W, ev: &EventSetup) {
    let target = ev
        .ssid
        .as_ref()
        .map(|s| s.0.clone())
        .or_else(|| current_config(w).map(|c| c.ssid));
    let ours = w.st.borrow().link.as_ref().map(|l| l.ssid.clone()) == target;
    match ev.kind {
        EventKind::Drop => lost(rt, w, ev.reason.unwrap_or(REASON_ASSOC_LEAVE)),
        EventKind::Down | EventKind::Up => {
            set_up(w, target.as_deref(), ev.kind == EventKind::Up);
            if ev.kind == EventKind::Down && ours {
                lost(rt, w, ev.reason.unwrap_or(REASON_BEACON_TIMEOUT));
            }
        }
        EventKind::Join => super::ap::client_joins(rt, w, ev.mac.map(|m| m.0)),
        EventKind::Leave => super::ap::client_leaves(rt, w, ev.mac.map(|m| m.0)),
    }
}

fn set_up(w: &Wifi, ssid: Option<&str>, up: bool) {
    for n in w.st.borrow_mut().air.iter_mut() {
        if n.ssid.is_none() || n.ssid.as_deref() == ssid {
            n.up = up;
        }
    }
}
