//! The resolver against DNS servers on loopback: a hickory-server zone that answers, NXDOMAIN, a
//! black hole that never answers, pins, and the switch from the host's configuration to the
//! script's servers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use hickory_server::Server;
use hickory_server::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};

use super::*;

/// A catalog that also records every name it was asked for.
struct Recording {
    catalog: Catalog,
    seen: Arc<Mutex<Vec<String>>>,
}

// The trait is declared with `async_trait`; this is its expanded signature.
impl RequestHandler for Recording {
    fn handle_request<'s, 'r, 'f, R, T>(
        &'s self,
        request: &'r Request,
        response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'f>>
    where
        R: ResponseHandler + 'f,
        T: Time + 'f,
        's: 'f,
        'r: 'f,
        Self: 'f,
    {
        if let Ok(info) = request.request_info() {
            self.seen
                .lock()
                .unwrap()
                .push(info.query.name().to_string());
        }
        self.catalog
            .handle_request::<R, T>(request, response_handle)
    }
}

/// A server for zone `test.` with `host.test. A 10.1.2.3`; returns its address and query log.
async fn zone_server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let origin = Name::from_str("test.").unwrap();
    let mut zone = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
        origin.clone(),
        ZoneType::Primary,
        AxfrPolicy::Deny,
    );
    let soa = SOA::new(
        Name::from_str("ns.test.").unwrap(),
        Name::from_str("admin.test.").unwrap(),
        1,
        3600,
        600,
        86400,
        60,
    );
    zone.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
    let host = Name::from_str("host.test.").unwrap();
    zone.upsert_mut(
        Record::from_rdata(host, 60, RData::A(A::new(10, 1, 2, 3))),
        1,
    );
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&origin), vec![Arc::new(zone)]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let mut server = Server::new(Recording {
        catalog,
        seen: seen.clone(),
    });
    server.register_socket(socket);
    tokio::spawn(async move {
        let _ = server.block_until_done().await;
    });
    (addr, seen)
}

fn run<F: Future<Output = ()>>(f: F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f);
}

fn explicit(server: SocketAddr, budget: Budget) -> Resolver {
    Resolver::new(DnsOptions {
        server: Some(server.ip()),
        port: server.port(),
        pins: vec![],
        budget,
    })
}

#[test]
fn answers_a_records_from_the_server_it_was_given() {
    run(async {
        let (addr, seen) = zone_server().await;
        let mut r = explicit(addr, Budget::REAL);
        assert!(r.is_explicit());
        assert_eq!(r.server(0), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(r.server(1), None);
        assert_eq!(
            r.lookup_v4("host.test").await,
            Some(Ipv4Addr::new(10, 1, 2, 3))
        );
        assert_eq!(
            r.lookup_v4("HOST.test.").await,
            Some(Ipv4Addr::new(10, 1, 2, 3))
        );
        assert!(seen.lock().unwrap().iter().any(|n| n == "host.test."));
    });
}

#[test]
fn nxdomain_is_none_at_once() {
    run(async {
        let (addr, _) = zone_server().await;
        let mut r = explicit(addr, Budget::REAL);
        let t = Instant::now();
        assert_eq!(r.lookup_v4("missing.test").await, None);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    });
}

#[test]
fn a_server_that_never_answers_gives_none_within_the_budget() {
    run(async {
        let hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut r = explicit(hole.local_addr().unwrap(), Budget::QUICK);
        let t = Instant::now();
        assert_eq!(r.lookup_v4("host.test").await, None);
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(250) && took <= Duration::from_millis(1500),
            "{took:?}"
        );
    });
}

#[test]
fn pins_answer_without_any_server_and_ipv6_pins_give_none() {
    run(async {
        let hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = hole.local_addr().unwrap();
        let mut r = Resolver::new(DnsOptions {
            server: Some(addr.ip()),
            port: addr.port(),
            pins: vec![
                ("example.com".into(), "127.0.0.9".parse().unwrap()),
                ("v6.example".into(), "::1".parse().unwrap()),
            ],
            budget: Budget::QUICK,
        });
        let t = Instant::now();
        assert_eq!(
            r.lookup_v4("Example.COM.").await,
            Some(Ipv4Addr::new(127, 0, 0, 9))
        );
        assert_eq!(r.lookup_v4("v6.example").await, None);
        assert!(t.elapsed() < Duration::from_millis(100));
    });
}

#[test]
fn host_mode_reports_the_host_servers_and_reads_the_hosts_file() {
    run(async {
        let mut r = Resolver::new(DnsOptions::default());
        assert!(!r.is_explicit());
        let expected: Vec<IpAddr> = hickory_resolver::system_conf::read_system_conf()
            .map(|(c, _)| c.name_servers().iter().map(|n| n.ip).collect())
            .unwrap_or_default();
        assert_eq!(r.server(0), expected.iter().copied().find(IpAddr::is_ipv4));
        // Answered from /etc/hosts: no query leaves the machine.
        assert_eq!(r.lookup_v4("localhost").await, Some(Ipv4Addr::LOCALHOST));
    });
}

#[test]
fn setting_a_server_switches_to_it_and_out_of_range_slots_are_ignored() {
    run(async {
        let (addr, seen) = zone_server().await;
        let mut r = Resolver::new(DnsOptions {
            port: addr.port(),
            budget: Budget::QUICK,
            ..DnsOptions::default()
        });
        r.set_server(5, "1.2.3.4".parse().unwrap());
        assert!(!r.is_explicit());
        // Both slots on the loopback server, so no query leaves the machine.
        r.set_server(1, addr.ip());
        r.set_server(0, addr.ip());
        assert_eq!(r.server(1), Some(addr.ip()));
        assert_eq!(
            r.lookup_v4("host.test").await,
            Some(Ipv4Addr::new(10, 1, 2, 3))
        );
        assert!(!seen.lock().unwrap().is_empty());
    });
}
