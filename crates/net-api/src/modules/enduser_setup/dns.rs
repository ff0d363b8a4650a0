//! The portal's DNS server: every query, whatever the name, is answered with the soft AP's
//! address, so a phone that joins the AP finds the portal at any name (the captive portal
//! check). The reply is the firmware's: the question echoed, one A record, TTL 120 s, flags
//! 0x8000 (a response, not authoritative, no recursion).
//!
//! It listens on UDP port 53 where a device's socket would (127.0.0.1 unless `--expose`), through
//! `--port-map` / `--port-offset` since port 53 needs privileges on the host.

use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;

use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record};
use host_backend::udp::{Datagram, Endpoint};

use super::{Portal, SOFTAP};
use crate::runtime::Runtime;

const DNS_PORT: u16 = 53;
/// The firmware's answer TTL (0x78).
const TTL: u32 = 120;

pub(super) fn start(rt: &Rc<Runtime>) -> std::io::Result<()> {
    let slot = super::slot(rt);
    if slot.dns.borrow().is_some() {
        return Ok(());
    }
    let SocketAddr::V4(host) = crate::net::host_bind_addr(rt, Ipv4Addr::UNSPECIFIED, DNS_PORT)
    else {
        return Err(std::io::ErrorKind::Unsupported.into());
    };
    let weak = Rc::downgrade(rt);
    let ep = Endpoint::bind(host, move |d| {
        if let Some(rt) = weak.upgrade() {
            let slot = super::slot(&rt);
            let portal = slot.portal.borrow().clone();
            if let (Some(p), Some(ep)) = (portal, slot.dns.borrow().as_ref()) {
                answer(&p, ep, &d);
            }
        }
    })?;
    *slot.dns.borrow_mut() = Some(ep);
    Ok(())
}

/// `enduser_setup_dns_recv_callback`: the first question answered with the AP's address, while
/// the soft AP is up.
fn answer(p: &Portal, ep: &Endpoint, d: &Datagram) {
    let (mode, ip) = {
        let s = p.w.st.borrow();
        (s.mode, s.ap_ip.ip)
    };
    if mode & SOFTAP == 0 {
        return;
    }
    let Ok(q) = Message::from_vec(&d.data) else {
        return;
    };
    let Some(question) = q.queries.first() else {
        return;
    };
    let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    m.add_query(question.clone());
    m.add_answer(Record::from_rdata(
        question.name.clone(),
        TTL,
        RData::A(A(ip)),
    ));
    if let Ok(bytes) = m.to_vec() {
        let _ = ep.send_to(&bytes, d.from);
    }
}
