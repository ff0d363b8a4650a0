//! `mdns`: real mDNS queries sent over loopback to a device that registered a service, decoded
//! with hickory-proto; the multicast announcements seen by a socket joined to 224.0.0.251; the
//! firmware's errors.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::support::{BIN, Flash, run_lua, wait};

const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);

/// A UDP port nobody listens on right now.
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn name(labels: &[&str]) -> Name {
    Name::from_labels(labels.iter().map(|l| l.as_bytes())).unwrap()
}

fn query(id: u16, qname: &Name, qtype: RecordType, class: u16) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    let mut q = Query::query(qname.clone(), qtype);
    q.set_query_class(DNSClass::from(class));
    m.add_query(q);
    m.to_vec().unwrap()
}

/// Asks until the device answers (it registers once its station has an address).
fn ask(sock: &UdpSocket, to: SocketAddrV4, packet: &[u8], within: Duration) -> Message {
    let start = Instant::now();
    let mut buf = [0u8; 2048];
    while start.elapsed() < within {
        sock.send_to(packet, to).unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            return Message::from_vec(&buf[..n]).unwrap();
        }
    }
    panic!("no mDNS answer from {to} within {within:?}");
}

fn rdata(r: &Record) -> &RData {
    &r.data
}

const SCRIPT: &str = r#"
wifi.eventmon.register(wifi.eventmon.STA_GOT_IP, function()
  mdns.register("fishtank", {description = "Top Fishtank", service = "http", port = 8080,
    location = "Living Room"})
  print("registered")
  tmr.create():alarm(4000, tmr.ALARM_SINGLE, function() mdns.close() print("closed") end)
end)
"#;

#[test]
fn a_registered_device_answers_address_and_service_queries_and_announces_itself() {
    let port = free_port();
    // The announcements go to the group on the responder's port: listen there first.
    let group = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    group.set_reuse_address(true).unwrap();
    group
        .bind(&SockAddr::from(SocketAddrV4::new(GROUP, port)))
        .unwrap();
    group
        .join_multicast_v4(&GROUP, &Ipv4Addr::LOCALHOST)
        .unwrap();
    group
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let group: UdpSocket = group.into();

    let flash = Flash::new(&[("init.lua", SCRIPT)]);
    let mut child = Command::new(BIN)
        .arg("run")
        .arg(flash.file("init.lua"))
        .args(["--port-map", &format!("5353={port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let device = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let host = name(&["fishtank", "local"]);
    let service = name(&["_http", "_tcp", "local"]);
    let instance = name(&["Top Fishtank", "_http", "_tcp", "local"]);

    // A legacy unicast query (not from port 5353): answered to the sender, TTL 10, class IN.
    let a = ask(
        &sock,
        device,
        &query(0x1234, &host, RecordType::A, 1),
        Duration::from_secs(15),
    );
    assert_eq!(a.metadata.id, 0x1234);
    assert_eq!(a.metadata.message_type, MessageType::Response);
    assert!(a.metadata.authoritative);
    assert_eq!(a.answers.len(), 1, "{a:?}");
    assert_eq!(a.answers[0].name, host);
    assert_eq!(a.answers[0].ttl, 10);
    assert_eq!(a.answers[0].dns_class, DNSClass::IN);
    assert_eq!(rdata(&a.answers[0]), &RData::A(Ipv4Addr::LOCALHOST.into()));
    assert_eq!(a.additionals.len(), 1);
    assert_eq!(u16::from(a.additionals[0].record_type()), 47, "NSEC");

    // The service: PTR, TXT, SRV, A.
    let s = ask(
        &sock,
        device,
        &query(7, &service, RecordType::PTR, 1),
        Duration::from_secs(2),
    );
    assert_eq!(s.answers.len(), 4, "{s:?}");
    let RData::PTR(ptr) = rdata(&s.answers[0]) else {
        panic!("{s:?}")
    };
    assert_eq!(ptr.0, instance);
    let RData::TXT(txt) = rdata(&s.answers[1]) else {
        panic!("{s:?}")
    };
    let strings: Vec<&[u8]> = txt.txt_data.iter().map(|b| &b[..]).collect();
    assert_eq!(
        strings,
        vec![&b"location=Living Room"[..], &b"platform=nodemcu"[..]]
    );
    let RData::SRV(srv) = rdata(&s.answers[2]) else {
        panic!("{s:?}")
    };
    assert_eq!((srv.port, &srv.target), (8080, &host));
    assert_eq!(s.answers[3].name, host);

    // A type the host does not have: no answer, an NSEC saying it has A only.
    let none = ask(
        &sock,
        device,
        &query(8, &host, RecordType::AAAA, 1),
        Duration::from_secs(2),
    );
    assert!(none.answers.is_empty(), "{none:?}");
    assert_eq!(none.additionals.len(), 1);
    // A name it does not own: silence.
    sock.send_to(
        &query(9, &name(&["other", "local"]), RecordType::A, 1),
        device,
    )
    .unwrap();
    let mut buf = [0u8; 512];
    assert!(
        sock.recv_from(&mut buf).is_err(),
        "answered a stranger's name"
    );

    // The announcement at registration: the service block with cache-flush classes and TTL
    // 300, then the service type for DNS-SD with TTL 3600.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let (n, _) = group.recv_from(&mut buf).expect("announcement");
        let m = Message::from_vec(&buf[..n]).unwrap();
        if m.metadata.message_type == MessageType::Response {
            seen.push(m);
        }
    }
    assert_eq!(seen[0].answers.len(), 4, "{:?}", seen[0]);
    assert_eq!(seen[0].answers[0].ttl, 300);
    assert_eq!(u16::from(seen[0].answers[1].dns_class), 0x8001);
    assert_eq!(seen[1].answers.len(), 1);
    assert_eq!(
        seen[1].answers[0].name,
        name(&["_services", "_dns-sd", "_udp", "local"])
    );
    assert_eq!(seen[1].answers[0].ttl, 3600);
    assert_eq!(
        rdata(&seen[1].answers[0]),
        &RData::PTR(hickory_proto::rr::rdata::PTR(service.clone()))
    );

    let status = wait(&mut child, Duration::from_secs(20));
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert_eq!(status, 0);
    assert_eq!(out, "registered\nclosed\n");
}

#[test]
fn register_checks_its_arguments_then_needs_an_address() {
    let r = run_lua(
        r#"
        for _, args in ipairs({
          {"x", 5},
          {"x", {"positional"}},
          {"x", {port = "eighty"}},
          {"x", {service = {}}},
          {{}},
          {"x", {port = 80}},
        }) do
          local ok, e = pcall(function() mdns.register(args[1], args[2]) end)
          print((e:gsub("^[^:]*:%d+: ", "")))
        end
        mdns.close()
        "#,
        &[],
    );
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "bad argument #2 to 'register' (table expected, got number)\n\
         bad argument #-2 to 'register' (string expected, got number)\n\
         bad argument #-1 to 'register' (number expected, got string)\n\
         bad argument #-1 to 'register' (string expected, got table)\n\
         bad argument #1 to 'register' (string expected, got table)\n\
         No network connection\n"
    );
}

#[test]
fn a_port_the_host_holds_fails_to_start_and_says_how_to_move_it() {
    let held = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let r = run_lua(
        r#"
        wifi.eventmon.register(wifi.eventmon.STA_GOT_IP, function()
          print(pcall(mdns.register, "x"))
        end)
        "#,
        &["--virtual-time", "--port-map", &format!("5353={port}")],
    );
    assert!(
        r.stdout.starts_with("false\t") && r.stdout.contains("Unable to start mDns daemon"),
        "{r:?}"
    );
    assert!(r.stderr.contains("--port-map 5353=PORT"), "{r:?}");
}

#[test]
fn the_esp32_port_has_no_mdns() {
    let r = run_lua("print(mdns)", &["--target", "esp32"]);
    assert_eq!(r.stdout, "nil\n", "{r:?}");
    let r = run_lua("print(type(mdns.register))", &["--firmware", "1.5"]);
    assert_eq!(r.stdout, "function\n", "{r:?}");
}

/// A querier on the mDNS port (here the mapped one, from another loopback address) is answered
/// on the group unless it sets the QU bit, which gets it a unicast answer.
#[test]
fn a_querier_on_the_mdns_port_is_answered_on_the_group_unless_it_asks_qu() {
    let port = free_port();
    let group = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    group.set_reuse_address(true).unwrap();
    group
        .bind(&SockAddr::from(SocketAddrV4::new(GROUP, port)))
        .unwrap();
    group
        .join_multicast_v4(&GROUP, &Ipv4Addr::LOCALHOST)
        .unwrap();
    group
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let group: UdpSocket = group.into();

    let flash = Flash::new(&[("init.lua", SCRIPT)]);
    let mut child = Command::new(BIN)
        .arg("run")
        .arg(flash.file("init.lua"))
        .args(["--port-map", &format!("5353={port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let device = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let host = name(&["fishtank", "local"]);
    // Wait for the responder through a legacy query first.
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    ask(
        &probe,
        device,
        &query(1, &host, RecordType::A, 1),
        Duration::from_secs(15),
    );

    let querier = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), port)).unwrap();
    querier
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 2048];
    // QU: a unicast answer with TTL 10.
    querier
        .send_to(&query(2, &host, RecordType::A, 0x8001), device)
        .unwrap();
    let (n, _) = querier.recv_from(&mut buf).expect("QU answer");
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!((m.metadata.id, m.answers[0].ttl), (2, 10));
    // QM: the answer goes to the group, TTL 300, and not to the querier.
    querier
        .send_to(&query(3, &host, RecordType::A, 1), device)
        .unwrap();
    let start = Instant::now();
    let on_group = loop {
        let (n, _) = group.recv_from(&mut buf).expect("multicast answer");
        let m = Message::from_vec(&buf[..n]).unwrap();
        if m.metadata.id == 3 {
            break m;
        }
        assert!(start.elapsed() < Duration::from_secs(5));
    };
    assert_eq!(on_group.answers[0].ttl, 300);
    assert_eq!(on_group.answers[0].name, host);
    assert!(
        querier.recv_from(&mut buf).is_err(),
        "QM answered by unicast"
    );
    let _ = child.kill();
    let _ = wait(&mut child, Duration::from_secs(5));
}
