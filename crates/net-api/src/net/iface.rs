//! The device's network interfaces: `net.ifinfo` and multicast group membership
//! (`net.multicastJoin` / `net.multicastLeave`).
//!
//! The station interface is the simulated one `wifi` reports (127.0.0.1, with the station's MAC);
//! the soft-AP interface exists while the Wi-Fi mode includes it. A multicast join is real: the
//! host joins the group, on the loopback interface unless `--expose` (where the device's sockets
//! live), and every UDP socket bound to the wildcard address receives the group's datagrams. lwIP
//! ignores IGMP errors, and so does the script here; the simulator says why on stderr.

use std::net::Ipv4Addr;
use std::rc::Rc;

use mlua::{Function, Lua, Table, Value, Variadic};

use crate::config::Target;
use crate::lauxlib::{Args, FwResult, bind, fw_err};
use crate::modules::wifi::{STA_GATEWAY, STA_IP, STA_MAC, STA_NETMASK};
use crate::runtime::Runtime;

const AP_IP: &str = "192.168.4.1";
const AP_NETMASK: &str = "255.255.255.0";
const AP_MAC: &str = "5e:cf:7f:c0:ff:ee";

/// The module functions this file provides, to be added to `net`.
pub(crate) fn functions(
    lua: &Lua,
    rt: &Rc<Runtime>,
) -> mlua::Result<Vec<(&'static str, Function)>> {
    let r = rt.clone();
    let join = bind(lua, move |lua, a| join_leave(lua, &r, &a, true))?;
    let r = rt.clone();
    let leave = bind(lua, move |lua, a| join_leave(lua, &r, &a, false))?;
    let mut fns = vec![("multicastJoin", join), ("multicastLeave", leave)];
    if rt.cfg.target != Target::Esp32 {
        fns.push(("ifinfo", bind(lua, ifinfo)?));
    }
    Ok(fns)
}

/// `ipaddr_addr`: a dotted quad, or lwIP's failure value 255.255.255.255.
fn ipaddr_addr(s: &str) -> Ipv4Addr {
    super::parse_ipv4(s).unwrap_or(Ipv4Addr::BROADCAST)
}

/// `net.multicastJoin(if_ip, mc_ip)` / `net.multicastLeave(if_ip, mc_ip)`.
fn join_leave(lua: &Lua, rt: &Rc<Runtime>, a: &Args, join: bool) -> FwResult<()> {
    if !a.is_string(1) {
        return fw_err("wrong arg type");
    }
    let mut if_ip = a.check_str(lua, 1)?;
    if if_ip.is_empty() || if_ip.eq_ignore_ascii_case("any") {
        if_ip = "0.0.0.0".into();
    }
    if !(7..=15).contains(&if_ip.len()) {
        return fw_err("invalid if ip");
    }
    if !a.is_string(2) {
        return fw_err("wrong arg type");
    }
    let mc_ip = a.check_str(lua, 2)?;
    if !(7..=15).contains(&mc_ip.len()) {
        return fw_err("invalid multicast ip");
    }
    let (iface, group) = (ipaddr_addr(&if_ip), ipaddr_addr(&mc_ip));
    let what = if join {
        "multicastJoin"
    } else {
        "multicastLeave"
    };
    if !group.is_multicast() {
        rt.warn_once(
            &format!("mc-group-{mc_ip}"),
            &format!("net.{what}: {mc_ip} is not a multicast group; the firmware ignores the call"),
        );
        return Ok(());
    }
    // The device's own address and "any" are the host's loopback, where its sockets are, unless
    // the run exposes them to the LAN.
    let device_ip = STA_IP.parse::<Ipv4Addr>().ok();
    let host_iface = if iface.is_unspecified() || Some(iface) == device_ip {
        if rt.cfg.net.expose {
            Ipv4Addr::UNSPECIFIED
        } else {
            Ipv4Addr::LOCALHOST
        }
    } else {
        iface
    };
    if let Err(e) = super::udpsocket::multicast(rt, join, group, host_iface) {
        rt.warn_once(
            &format!("mc-{what}-{mc_ip}-{if_ip}"),
            &format!("net.{what}({if_ip}, {mc_ip}) failed on the host: {e}; the firmware ignores IGMP errors"),
        );
    }
    Ok(())
}

/// The Wi-Fi mode, read through the script-visible `wifi.getmode()` (1 = station if unavailable).
fn wifi_mode(lua: &Lua) -> i64 {
    let get = || -> mlua::Result<i64> {
        let wifi: Table = lua.globals().get("wifi")?;
        wifi.get::<Function>("getmode")?.call(())
    };
    get().unwrap_or(1)
}

fn mac_bytes(mac: &str) -> Vec<u8> {
    mac.split(':')
        .filter_map(|h| u8::from_str_radix(h, 16).ok())
        .collect()
}

/// `net.ifinfo([idx])`: 0 the station, 1 the soft AP; nothing for other indexes or an interface
/// that is down.
fn ifinfo(lua: &Lua, a: Args) -> FwResult<Variadic<Value>> {
    let idx = a.opt_integer(1, 0)?;
    let mode = wifi_mode(lua);
    let (mac, ip, netmask, gateway, dhcp) = match idx {
        0 if mode & 1 != 0 => (STA_MAC, STA_IP, STA_NETMASK, STA_GATEWAY, true),
        1 if mode & 2 != 0 => (AP_MAC, AP_IP, AP_NETMASK, AP_IP, false),
        _ => return Ok(Variadic::new()),
    };
    let t = lua.create_table()?;
    t.set("hwaddr", lua.create_string(mac_bytes(mac))?)?;
    t.set("ip", ip)?;
    t.set("netmask", netmask)?;
    t.set("gateway", gateway)?;
    if dhcp {
        let d = lua.create_table()?;
        d.set("server_ip", STA_GATEWAY)?;
        d.set("client_ip", STA_IP)?;
        t.set("dhcp", d)?;
    }
    Ok(Variadic::from_iter([Value::Table(t)]))
}
