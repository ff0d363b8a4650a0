//! The answers of the firmware's responder (`app/net/nodemcu_mdns.c`), as DNS messages built
//! with hickory-proto: which question gets which records, their classes and TTLs.
//!
//! - `_services._dns-sd._udp.local` PTR/ANY: one PTR to `_<service>._tcp.local`.
//! - `_<service>._tcp.local` PTR/ANY, and `<description>._<service>._tcp.local` TXT/SRV/ANY: the
//!   service block: PTR, TXT (the attributes, then `platform=nodemcu` unless given), SRV
//!   (`<hostname>.local`, priority and weight 0, the port), A; and an NSEC for the host.
//! - `<hostname>.local` A/ANY: the A record with an NSEC naming A.
//! - Any other type for one of these names: an empty answer with an NSEC of the types it has.
//!
//! A unicast answer (legacy query or QU bit) carries TTL 10 and class IN; a multicast one TTL
//! 300 (3600 for the service type PTR) and, for the service's TXT, SRV and A, the cache-flush
//! bit. Flags are 0x84 (response, authoritative) and the query's id is kept, as there.

use std::net::Ipv4Addr;

use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::rdata::{A, NULL, PTR, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

pub(super) const DNS_SD_SERVICE: &str = "_services._dns-sd._udp.local";
/// `DNS_RRTYPE_NSEC`, which hickory knows only with its DNSSEC features.
const NSEC: u16 = 47;
/// The cache-flush bit of an mDNS record's class (RFC 6762 §10.2).
const CACHE_FLUSH: u16 = 0x8000;

/// What `mdns.register` was given, with the firmware's defaults applied.
#[derive(Debug, Clone)]
pub(super) struct Info {
    pub host_name: Vec<u8>,
    pub host_desc: Vec<u8>,
    pub service_name: Vec<u8>,
    pub port: u16,
    /// `key=value` strings, at most 10.
    pub txt: Vec<Vec<u8>>,
}

/// The names the responder answers for.
pub(super) struct Names {
    pub dns_sd: Name,
    pub service: Name,
    pub instance: Name,
    pub host: Name,
}

/// A dotted name as the firmware encodes it: split at every dot. `None` for what DNS cannot carry
/// (an empty or over-long label).
fn name(parts: &[&[u8]]) -> Option<Name> {
    let joined = parts.join(&b"."[..]);
    Name::from_labels(joined.split(|b| *b == b'.')).ok()
}

impl Info {
    pub(super) fn names(&self) -> Option<Names> {
        let mut service = b"_".to_vec();
        service.extend_from_slice(&self.service_name);
        let service: &[u8] = &service;
        Some(Names {
            dns_sd: Name::from_ascii(DNS_SD_SERVICE).ok()?,
            service: name(&[service, b"_tcp", b"local"])?,
            instance: name(&[&self.host_desc, service, b"_tcp", b"local"])?,
            host: name(&[&self.host_name, b"local"])?,
        })
    }

    /// The TXT strings: the script's attributes, then the firmware's defaults it did not set.
    fn txt(&self) -> Vec<&[u8]> {
        let mut out: Vec<&[u8]> = self.txt.iter().map(Vec::as_slice).collect();
        let default: &[u8] = b"platform=nodemcu";
        if !self.txt.iter().any(|t| t.starts_with(b"platform=")) {
            out.push(default);
        }
        out
    }
}

/// How an answer goes out, which sets its TTLs and classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Delivery {
    Unicast,
    Multicast,
}

impl Delivery {
    fn max_ttl(self) -> u32 {
        match self {
            Delivery::Unicast => 10,
            Delivery::Multicast => 7200,
        }
    }

    fn flush_class(self) -> DNSClass {
        match self {
            Delivery::Unicast => DNSClass::IN,
            Delivery::Multicast => DNSClass::Unknown(u16::from(DNSClass::IN) | CACHE_FLUSH),
        }
    }
}

fn response(id: u16) -> Message {
    let mut m = Message::new(id, MessageType::Response, OpCode::Query);
    m.metadata.authoritative = true;
    m
}

fn record(name: &Name, ttl: u32, class: DNSClass, rdata: RData) -> Record {
    let mut r = Record::from_rdata(name.clone(), ttl, rdata);
    r.dns_class = class;
    r
}

/// An NSEC naming `owner` as the next name, with a bitmap of `types` (window 0).
fn nsec(owner: &Name, ttl: u32, class: DNSClass, types: &[u16]) -> Record {
    let mut data = Vec::new();
    for label in owner.iter() {
        data.push(label.len() as u8);
        data.extend_from_slice(label);
    }
    data.push(0);
    let mut bitmap = [0u8; 5];
    for t in types {
        bitmap[usize::from(t / 8)] |= 0x80 >> (t % 8);
    }
    let used = bitmap.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    data.extend_from_slice(&[0, used as u8]);
    data.extend_from_slice(&bitmap[..used]);
    let rdata = RData::Unknown {
        code: RecordType::Unknown(NSEC),
        rdata: NULL::with(data),
    };
    record(owner, ttl, class, rdata)
}

/// `mdns_send_service_type`: the service type PTR for a DNS-SD enumeration.
pub(super) fn service_type(names: &Names, id: u16, how: Delivery) -> Message {
    let mut m = response(id);
    let ttl = how.max_ttl().min(3600);
    let ptr = RData::PTR(PTR(names.service.clone()));
    m.add_answer(record(&names.dns_sd, ttl, DNSClass::IN, ptr));
    m
}

/// `mdns_send_service`: the service's PTR, TXT, SRV and A, with the host's NSEC.
pub(super) fn service(info: &Info, names: &Names, ip: Ipv4Addr, id: u16, how: Delivery) -> Message {
    let mut m = response(id);
    let ttl = how.max_ttl().min(300);
    let class = how.flush_class();
    let ptr = RData::PTR(PTR(names.instance.clone()));
    m.add_answer(record(&names.service, ttl, DNSClass::IN, ptr));
    let txt = RData::TXT(TXT::from_bytes(info.txt()));
    m.add_answer(record(&names.instance, ttl, class, txt));
    let srv = RData::SRV(SRV::new(0, 0, info.port, names.host.clone()));
    m.add_answer(record(&names.instance, ttl, class, srv));
    m.add_answer(record(&names.host, ttl, class, RData::A(A(ip))));
    m.add_additional(nsec(&names.host, ttl, class, &[u16::from(RecordType::A)]));
    m
}

/// `mdns_send_a_rr`: the host's address, with an NSEC saying A is all it has.
pub(super) fn address(names: &Names, ip: Ipv4Addr, id: u16, how: Delivery) -> Message {
    let mut m = response(id);
    let ttl = how.max_ttl().min(300);
    m.add_answer(record(&names.host, ttl, DNSClass::IN, RData::A(A(ip))));
    m.add_additional(nsec(
        &names.host,
        ttl,
        DNSClass::IN,
        &[u16::from(RecordType::A)],
    ));
    m
}

/// `mdns_send_no_rr`: the name exists but has no record of the asked type.
pub(super) fn no_record(owner: &Name, types: &[u16], id: u16, how: Delivery) -> Message {
    let mut m = response(id);
    let ttl = how.max_ttl().min(300);
    m.add_additional(nsec(owner, ttl, DNSClass::IN, types));
    m
}

/// The answers to one question, in the firmware's order of checks.
pub(super) fn answer(
    info: &Info,
    names: &Names,
    ip: Ipv4Addr,
    id: u16,
    qname: &Name,
    qtype: RecordType,
    how: Delivery,
) -> Option<Message> {
    use RecordType::{ANY, PTR as PTR_T, SRV as SRV_T, TXT as TXT_T};
    let (a, ptr, txt, srv) = (
        u16::from(RecordType::A),
        u16::from(PTR_T),
        u16::from(TXT_T),
        u16::from(SRV_T),
    );
    if qname == &names.dns_sd {
        return Some(match qtype {
            PTR_T | ANY => service_type(names, id, how),
            _ => no_record(&names.dns_sd, &[ptr], id, how),
        });
    }
    if qname == &names.service {
        return Some(match qtype {
            PTR_T | ANY => service(info, names, ip, id, how),
            _ => no_record(&names.service, &[ptr], id, how),
        });
    }
    if qname == &names.host {
        return Some(match qtype {
            RecordType::A | ANY => address(names, ip, id, how),
            _ => no_record(&names.host, &[a], id, how),
        });
    }
    if qname == &names.instance {
        return Some(match qtype {
            TXT_T | SRV_T | ANY => service(info, names, ip, id, how),
            _ => no_record(&names.instance, &[txt, srv], id, how),
        });
    }
    None
}
