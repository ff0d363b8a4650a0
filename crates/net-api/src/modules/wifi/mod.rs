//! `wifi`: the radio of a board, as each chip's firmware binds it.
//!
//! The model (`station.rs`) is one station and one soft AP living on the device clock: saved and
//! current configuration, the networks in range (`setup.rs`, from `nodemcu-sim.toml`), joining,
//! failing, being dropped and reconnecting. It reports what happens as [`Event`]s, which each API
//! delivers its own way: the ESP8266's `wifi.eventmon` (`eventmon.rs`, and `wifi.sta.eventMonReg`
//! under 1.5), the ESP32's `wifi.sta.on` / `wifi.ap.on` (`esp32.rs`, `esp32_sta.rs`). The ESP8266 API is
//! `radio.rs` (`wifi.*`), `sta.rs` (`wifi.sta.*`) and `ap.rs` (`wifi.ap.*`).

use std::net::Ipv4Addr;
use std::rc::Rc;

use mlua::{Function, Lua, Table};

use crate::config::Target;
use crate::runtime::Runtime;

mod ap;
mod esp32;
mod esp32_sta;
mod eventmon;
mod radio;
pub mod setup;
mod sta;
mod sta_config;
mod station;

pub(crate) use station::W;

// What `enduser_setup` drives, as its C code calls the SDK.
pub(crate) use radio::{channel, set_mode};
pub(crate) use sta::SCAN;
pub(crate) use station::{
    AUTH_OPEN, ApConfig, StaConfig, connect as station_connect, disconnect as station_disconnect,
    scan,
};

/// The station's address on every network: the device's loopback address (decisions.md §5).
pub const STA_IP: &str = "127.0.0.1";
pub const STA_NETMASK: &str = "255.0.0.0";
pub const STA_GATEWAY: &str = "127.0.0.1";
pub const STA_MAC: &str = "5c:cf:7f:c0:ff:ee";

/// Something the radio did, for the script's callbacks.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    StaStart,
    StaStop,
    StaConnected {
        ssid: String,
        bssid: [u8; 6],
        channel: u8,
        auth: u8,
    },
    StaDisconnected {
        ssid: String,
        bssid: [u8; 6],
        reason: u16,
    },
    StaGotIp(station::IpInfo),
    ModeChanged {
        old: u8,
        new: u8,
    },
    ApStart,
    ApStop,
    ApStaConnected {
        mac: [u8; 6],
        aid: u8,
    },
    ApStaDisconnected {
        mac: [u8; 6],
        aid: u8,
    },
    /// The soft AP's DHCP server gave a client its address (an SDK 2 event the firmware does
    /// not decode).
    ApDistributeIp,
}

/// The script's callbacks: the ESP8266's eventmon slots by event id, the ESP32's by name.
#[derive(Default)]
pub(crate) struct Callbacks {
    pub slots: Vec<Option<Function>>,
    pub sta_on: Vec<(&'static str, Function)>,
    pub ap_on: Vec<(&'static str, Function)>,
}

impl Callbacks {
    fn any(&self) -> bool {
        self.slots.iter().any(Option::is_some) || !self.sta_on.is_empty() || !self.ap_on.is_empty()
    }
}

/// Hands `ev` to the API of the device's chip.
pub(crate) fn emit(rt: &Rc<Runtime>, w: &W, ev: Event) {
    if rt.cfg.target == Target::Esp32 {
        esp32::deliver(rt, w, ev);
    } else {
        eventmon::deliver(rt, w, ev);
    }
}

/// The boot's radio, for the modules that ask the Wi-Fi model (`mdns`, `enduser_setup`).
#[derive(Default)]
struct Radio(std::cell::RefCell<Option<W>>);

/// The radio of this boot (`None` before `wifi` is installed).
pub(crate) fn radio(rt: &Runtime) -> Option<W> {
    rt.state(|_| Radio::default()).0.borrow().clone()
}

/// The address services bind to, as the firmware's `mdns` asks for it: the soft AP's in
/// SOFTAP mode, else the station's (`None` until it has one).
pub(crate) fn service_ip(rt: &Runtime) -> Option<Ipv4Addr> {
    let w = radio(rt)?;
    let mode = w.st.borrow().mode;
    let ip = match mode {
        2 => Some(w.st.borrow().ap_ip.ip),
        0 => None,
        _ => w.sta_ip().map(|i| i.ip),
    };
    ip.filter(|ip| !ip.is_unspecified())
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let w = station::Wifi::boot(rt);
    rt.state(|_| Radio::default()).0.replace(Some(w.clone()));
    let weak = Rc::downgrade(&w);
    rt.set_background_wanted(Box::new(move || {
        weak.upgrade().is_some_and(|w| w.cbs.borrow().any())
    }));
    let wifi = match rt.cfg.target {
        Target::Esp32 => esp32::module(lua, rt, &w)?,
        _ => radio::module(lua, rt, &w)?,
    };
    lua.globals().set("wifi", wifi)
}

/// Sets `(name, value)` pairs on a table.
fn set_all<V: mlua::IntoLua + Copy>(t: &Table, pairs: &[(&str, V)]) -> mlua::Result<()> {
    for (k, v) in pairs {
        t.set(*k, *v)?;
    }
    Ok(())
}

/// `MACSTR`: lower-case hex pairs with colons.
pub(crate) fn fmt_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// `aa:bb:cc:dd:ee:ff` exactly, for the project file.
pub(crate) fn parse_mac_strict(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
        return None;
    }
    let mut m = [0u8; 6];
    for (b, p) in m.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    Some(m)
}

/// The SDK's `ets_str2macaddr` on a 17-character string: hex pairs at every third place; what
/// does not parse reads as 0, as the SDK's unchecked conversion gives something just as arbitrary.
pub(crate) fn parse_mac_lenient(s: &str) -> [u8; 6] {
    let b = s.as_bytes();
    let mut m = [0u8; 6];
    for (i, byte) in m.iter_mut().enumerate() {
        let pair = b.get(i * 3..i * 3 + 2).unwrap_or(b"00");
        *byte = std::str::from_utf8(pair)
            .ok()
            .and_then(|p| u8::from_str_radix(p, 16).ok())
            .unwrap_or(0);
    }
    m
}

/// lwIP's `ipaddr_addr`: an address that does not parse is IPADDR_NONE (255.255.255.255).
pub(crate) fn parse_ip(s: &str) -> Ipv4Addr {
    s.trim().parse().unwrap_or(Ipv4Addr::BROADCAST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_format_and_parse_as_the_sdk_does() {
        assert_eq!(
            fmt_mac(&[0x5c, 0xcf, 0x7f, 0, 0xff, 1]),
            "5c:cf:7f:00:ff:01"
        );
        assert_eq!(
            parse_mac_strict("02:00:00:00:00:0A"),
            Some([2, 0, 0, 0, 0, 10])
        );
        assert_eq!(parse_mac_strict("02:00:00:00:00"), None);
        assert_eq!(parse_mac_lenient("02-00-00-zz-00-0a"), [2, 0, 0, 0, 0, 10]);
    }

    #[test]
    fn broadcast_follows_the_netmask() {
        let ip = station::IpInfo {
            ip: Ipv4Addr::new(192, 168, 1, 20),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            gateway: Ipv4Addr::new(192, 168, 1, 1),
        };
        assert_eq!(ip.broadcast(), Ipv4Addr::new(192, 168, 1, 255));
        assert_eq!(
            station::lease().broadcast(),
            Ipv4Addr::new(127, 255, 255, 255)
        );
        assert_eq!(parse_ip("nope"), Ipv4Addr::BROADCAST);
    }
}
