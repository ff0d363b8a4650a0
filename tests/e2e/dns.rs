//! DNS for real: `net.dns.*` and `sock:dns` against a DNS server on loopback made with
//! hickory-server, chosen with `setdnsserver` or `--dns` (`--dns-port` points at its port), a black
//! hole that never answers, `--resolve` pins, and the firmware's errors.

use std::net::{Ipv4Addr, UdpSocket};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use hickory_server::Server;
use hickory_server::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};

use crate::support::run_lua;

/// A catalog that records every name it is asked for.
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

/// A DNS server on 127.0.0.1 for zone `test.`, on its own thread; stops when dropped.
pub(crate) struct DnsServer {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DnsServer {
    pub(crate) fn start(records: &[(&str, Ipv4Addr)]) -> DnsServer {
        let origin = Name::from_str("test.").unwrap();
        let mut zone = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
            origin.clone(),
            ZoneType::Primary,
            AxfrPolicy::Deny,
        );
        let ns = |s: &str| Name::from_str(s).unwrap();
        let soa = SOA::new(ns("ns.test."), ns("admin.test."), 1, 3600, 600, 86400, 60);
        zone.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
        for (name, ip) in records {
            let rdata = RData::A(A::from(*ip));
            zone.upsert_mut(Record::from_rdata(ns(name), 60, rdata), 1);
        }
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::new(&origin), vec![Arc::new(zone)]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let port = socket.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handler = Recording {
            catalog,
            seen: seen.clone(),
        };
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut server = Server::new(handler);
                server.register_socket(tokio::net::UdpSocket::from_std(socket).unwrap());
                let _ = stopped.await;
                drop(server);
            });
        });
        DnsServer {
            port,
            seen,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    pub(crate) fn port_arg(&self) -> String {
        self.port.to_string()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) fn zone() -> DnsServer {
    DnsServer::start(&[
        ("host.test.", Ipv4Addr::new(10, 1, 2, 3)),
        ("peer.test.", Ipv4Addr::LOCALHOST),
    ])
}

#[test]
fn setdnsserver_is_honoured_for_answers_and_nxdomain() {
    let dns = zone();
    let r = run_lua(
        r#"
        net.dns.setdnsserver("127.0.0.1")
        print(net.dns.getdnsserver(0), net.dns.getdnsserver(1))
        net.dns.resolve("host.test", function(sk, ip)
          print("host.test", sk, ip)
          net.dns.resolve("missing.test", function(sk, ip) print("missing.test", sk, ip) end)
        end)
        "#,
        &["--dns-port", &dns.port_arg()],
    );
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "127.0.0.1\tnil\nhost.test\tnil\t10.1.2.3\nmissing.test\tnil\tnil\n"
    );
    let seen = dns.seen();
    assert!(seen.contains(&"host.test.".to_string()), "{seen:?}");
    assert!(seen.contains(&"missing.test.".to_string()), "{seen:?}");
    assert!(r.elapsed < Duration::from_secs(3), "{:?}", r.elapsed);
}

#[test]
fn dns_flag_sets_server_zero_and_esp32_resolve_passes_only_the_ip() {
    let dns = zone();
    let r = run_lua(
        r##"
        print(net.dns.getdnsserver())
        net.dns.resolve("host.test", function(...) print(select("#", ...), ...) end)
        "##,
        &[
            "--dns",
            "127.0.0.1",
            "--dns-port",
            &dns.port_arg(),
            "--target",
            "esp32",
        ],
    );
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(r.stdout, "127.0.0.1\n1\t10.1.2.3\n");
    assert_eq!(dns.seen(), vec!["host.test.".to_string()]);
}

#[test]
fn socket_dns_and_legacy_connect_by_name_use_the_same_resolver() {
    let dns = zone();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let port = peer.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        peer.send_to(b"pong", from).unwrap();
        buf[..n].to_vec()
    });
    let script = format!(
        r#"
        net.dns.setdnsserver("127.0.0.2", 1)
        net.dns.setdnsserver("127.0.0.1")
        print(net.dns.getdnsserver(1))
        local u = net.createUDPSocket()
        print("before")
        u:dns("127.0.0.7", function(sk, ip) print("sync", sk == u, ip) end)
        print("after")
        u:dns("host.test", function(sk, ip)
          print("async", sk == u, ip)
          local sk = net.createConnection(net.UDP, 0)
          sk:on("dns", function(_, ip) print("connect dns", ip) end)
          sk:on("receive", function(s, data, port, ip) print("reply", data, ip) s:close() end)
          sk:connect({port}, "peer.test")
          print("not yet", pcall(sk.send, sk, "early"))
          sk:on("dns", function(s, ip) print("connect dns", ip) s:send("ping") end)
        end)
        "#
    );
    let r = run_lua(&script, &["--dns-port", &dns.port_arg()]);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "127.0.0.2\nbefore\nsync\ttrue\t127.0.0.7\nafter\nasync\ttrue\t10.1.2.3\n\
         not yet\tfalse\tnot connected\nconnect dns\t127.0.0.1\nreply\tpong\t127.0.0.1\n"
    );
    assert_eq!(h.join().unwrap(), b"ping");
}

#[test]
fn a_server_that_never_answers_gives_nil_in_bounded_time() {
    let hole = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port().to_string();
    let script = r#"
        net.dns.setdnsserver("127.0.0.1")
        net.dns.resolve("host.test", function(sk, ip) print("resolved", sk, ip) end)
        "#;
    let r = run_lua(script, &["--dns-port", &port]);
    assert_eq!(r.stdout, "resolved\tnil\tnil\n", "{r:?}");
    assert!(
        r.elapsed >= Duration::from_secs(3) && r.elapsed < Duration::from_secs(8),
        "real time: {:?}",
        r.elapsed
    );
    // Under virtual time the budget shrinks: a pending query holds the clock back.
    let r = run_lua(script, &["--dns-port", &port, "--virtual-time"]);
    assert_eq!(r.stdout, "resolved\tnil\tnil\n", "{r:?}");
    assert!(
        r.elapsed < Duration::from_secs(3),
        "virtual time: {:?}",
        r.elapsed
    );
}

#[test]
fn resolve_pins_answer_without_asking_and_dotted_quads_answer_inside_the_call() {
    let hole = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port().to_string();
    let r = run_lua(
        r#"
        print("before")
        net.dns.resolve("10.9.8.7", function(sk, ip) print("quad", sk, ip) end)
        print("after")
        net.dns.resolve("Example.COM", function(sk, ip) print("pinned", ip) end)
        "#,
        &[
            "--dns",
            "127.0.0.1",
            "--dns-port",
            &port,
            "--resolve",
            "example.com=127.0.0.9",
        ],
    );
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "before\nquad\tnil\t10.9.8.7\nafter\npinned\t127.0.0.9\n"
    );
    assert!(r.elapsed < Duration::from_secs(2), "{:?}", r.elapsed);
}

#[test]
fn esp8266_has_four_dns_table_entries() {
    let hole = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port().to_string();
    let script = r#"
        net.dns.setdnsserver("127.0.0.1")
        local n = 0
        for i = 1, 5 do
          print(i, pcall(net.dns.resolve, "q" .. i .. ".test", function() n = n + 1 end))
        end
        tmr.create():alarm(5000, tmr.ALARM_SINGLE, function() print("answered", n) end)
        "#;
    let args = ["--dns-port", &port, "--virtual-time"];
    let r = run_lua(script, &args);
    assert_eq!(
        r.stdout, "1\ttrue\n2\ttrue\n3\ttrue\n4\ttrue\n5\tfalse\tout of memory\nanswered\t4\n",
        "{r:?}"
    );
    let r = run_lua(script, &[&args[..], &["--target", "host"]].concat());
    assert!(r.stdout.contains("5\ttrue\nanswered\t5\n"), "{r:?}");
}

#[test]
fn the_host_configuration_is_used_until_a_server_is_set() {
    let first_v4 = std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(str::trim)
        .find(|ip| ip.parse::<Ipv4Addr>().is_ok())
        .map(String::from);
    let r = run_lua(
        r#"
        print(net.dns.getdnsserver(0) or "none")
        net.dns.resolve("localhost", function(sk, ip) print("localhost", ip) end)
        "#,
        &[],
    );
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        format!(
            "{}\nlocalhost\t127.0.0.1\n",
            first_v4.as_deref().unwrap_or("none")
        )
    );
}

#[test]
fn dns_bad_arguments_raise_the_firmware_errors() {
    let r = run_lua(
        "local function e(f) local ok, m = pcall(f) print(m) end\n\
         e(function() net.dns.resolve() end)\n\
         e(function() net.dns.resolve('x') end)\n\
         e(function() net.dns.resolve('x', 'y') end)\n\
         e(function() net.dns.resolve('', print) end)\n\
         e(function() net.dns.resolve(string.rep('a', 256), print) end)\n\
         e(function() net.dns.setdnsserver() end)\n\
         e(function() net.dns.setdnsserver('8.8.8') end)\n\
         e(function() net.dns.setdnsserver('0.0.0.0') end)\n\
         e(function() net.dns.setdnsserver('255.255.255.255') end)\n\
         e(function() net.dns.setdnsserver('dns.example.com') end)\n\
         e(function() net.dns.setdnsserver('8.8.8.8', 2) end)\n\
         e(function() net.dns.setdnsserver('8.8.8.8', 'a') end)\n\
         e(function() net.dns.getdnsserver(2) end)\n\
         e(function() net.dns.getdnsserver({}) end)\n\
         print(net.dns.getdnsserver(-1))\n",
        &[],
    );
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "init.lua:2: bad argument #1 to 'resolve' (string expected, got no value)\n\
         init.lua:3: bad argument #2 to 'resolve' (function expected, got no value)\n\
         init.lua:4: bad argument #2 to 'resolve' (function expected, got string)\n\
         init.lua:5: illegal argument\n\
         init.lua:6: illegal argument\n\
         init.lua:7: bad argument #1 to 'setdnsserver' (string expected, got no value)\n\
         init.lua:8: invalid dns server ip\n\
         init.lua:9: invalid dns server ip\n\
         init.lua:10: invalid dns server ip\n\
         init.lua:11: invalid dns server ip\n\
         init.lua:12: server index out of range [0-1]\n\
         init.lua:13: bad argument #2 to 'setdnsserver' (number expected, got string)\n\
         init.lua:14: server index out of range [0-1]\n\
         init.lua:15: bad argument #1 to 'getdnsserver' (number expected, got table)\n\
         nil\n"
    );
}

#[test]
fn tcp_connect_by_name_asks_the_server_the_script_set() {
    let dns = zone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        s.write_all(b"pong").unwrap();
        buf.to_vec()
    });
    let script = format!(
        r#"
        net.dns.setdnsserver("127.0.0.1")
        local sk = net.createConnection(net.TCP, 0)
        sk:on("dns", function(_, ip) print("dns", ip) end)
        sk:on("connection", function(s) print("connected") s:send("ping") end)
        sk:on("receive", function(s, data) print("receive", data) s:close() end)
        sk:connect({port}, "peer.test")
        "#
    );
    let r = run_lua(&script, &["--dns-port", &dns.port_arg()]);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(r.stdout, "dns\t127.0.0.1\nconnected\nreceive\tpong\n");
    assert_eq!(peer.join().unwrap(), b"ping");
    assert_eq!(dns.seen(), vec!["peer.test.".to_string()]);
}
