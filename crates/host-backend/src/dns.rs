//! Name resolution for the device. For now the host's own resolver (getaddrinfo through tokio);
//! issue 4 replaces it with hickory-resolver so the script's `net.dns.setdnsserver` is honoured.

use std::net::{IpAddr, Ipv4Addr};

/// The first IPv4 address of `name` (the ESP8266 resolves A records only), or `None`.
pub async fn lookup_v4(name: &str) -> Option<Ipv4Addr> {
    let addrs = tokio::net::lookup_host((name, 0)).await.ok()?;
    addrs.into_iter().find_map(|a| match a.ip() {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    })
}
