//! TCP sockets under `--firmware 1.5` (1.5.4.1's espconn `net.c`) against real loopback peers,
//! each script also run under 3.0 (and 2.2 where it differs from 1.5) for today's output.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use super::closed_port;
use crate::support::run_lua;

/// Runs `script` (with `{port}` replaced) under `fw` and returns its stdout; the run must end 0.
fn run(script: &str, port: u16, fw: &str) -> String {
    let r = run_lua(
        &script.replace("{port}", &port.to_string()),
        &["--firmware", fw],
    );
    assert_eq!(r.status, 0, "--firmware {fw}: {r:?}");
    r.stdout
}

/// A one-shot peer: accepts one connection and hands it to `f`.
fn peer(
    f: impl FnOnce(std::net::TcpStream) + Send + 'static,
) -> (u16, std::thread::JoinHandle<()>) {
    let srv = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = srv.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (s, _) = srv.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        f(s);
    });
    (port, h)
}

const REFUSED: &str = r#"
local c = net.createConnection(net.TCP, 0)
c:on("reconnection", function(s, e) print("reconnection", e) end)
c:on("disconnection", function(s, e) print("disconnection", e); s:close(); print("close ok") end)
c:connect({port}, "127.0.0.1")
"#;

#[test]
fn a_refused_connect_is_disconnection_with_no_code_under_1_5_and_closing_it_again_is_silent() {
    let port = closed_port();
    assert_eq!(run(REFUSED, port, "1.5"), "disconnection\tnil\nclose ok\n");
    assert_eq!(run(REFUSED, port, "2.2"), "reconnection\t-9\n");
    assert_eq!(run(REFUSED, port, "3.0"), "reconnection\t-9\n");
}

/// After the connection ends, 1.5.4.1 has freed the espconn: `send`, `close`, `connect` and `dns`
/// return without a word, `getpeer` is `nil, nil`.
const AFTER_END: &str = r#"
local c = net.createConnection(net.TCP, 0)
c:on("connection", function(s) print("connection", s:getpeer()) end)
c:on("receive", function(s, d) print("receive", d) end)
c:on("reconnection", function(s, e) print("reconnection", e) end)
c:on("disconnection", function(s, ...)
  print("disconnection", select('#', ...), ...)
  print("getpeer", s:getpeer())
  print("send", pcall(s.send, s, "x"))
  print("close", pcall(s.close, s))
  print("connect", pcall(s.connect, s, {port}, "127.0.0.1"))
end)
c:connect({port}, "127.0.0.1")
"#;

#[test]
fn a_peer_that_closes_ends_in_disconnection_and_the_freed_socket_ignores_every_call_under_1_5() {
    let (port, h) = peer(|mut s| {
        s.write_all(b"hi").unwrap();
        // The device's second connect must never arrive: the listener is gone with this thread.
    });
    let out = run(AFTER_END, port, "1.5");
    h.join().unwrap();
    assert_eq!(
        out,
        format!(
            "connection\t127.0.0.1\t{port}\nreceive\thi\ndisconnection\t0\n\
             getpeer\tnil\tnil\nsend\ttrue\nclose\ttrue\nconnect\ttrue\n"
        )
    );

    let (port, h) = peer(|mut s| s.write_all(b"hi").unwrap());
    let out = run(AFTER_END, port, "3.0");
    h.join().unwrap();
    let out: Vec<_> = out.lines().collect();
    assert_eq!(
        out[..6],
        [
            format!("connection\t{port}\t127.0.0.1").as_str(),
            "receive\thi",
            "disconnection\t1\t0",
            "getpeer\tnil\tnil",
            "send\tfalse\tnot connected",
            "close\tfalse\tnot connected",
        ]
    );
    // 3.0 connects again (to a port nobody listens on now).
    assert_eq!(out[6], "connect\ttrue");
}

#[test]
fn a_peer_that_resets_ends_in_disconnection_with_no_code_under_1_5() {
    let script = r#"
local c = net.createConnection(net.TCP, 0)
c:on("connection", function(s) s:send("ping") end)
c:on("reconnection", function(s, e) print("reconnection", e) end)
c:on("disconnection", function(s, ...) print("disconnection", select('#', ...), ...) end)
c:connect({port}, "127.0.0.1")
"#;
    let reset = |mut s: std::net::TcpStream| {
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    };
    let (port, h) = peer(reset);
    let out = run(script, port, "1.5");
    h.join().unwrap();
    assert_eq!(out, "disconnection\t0\n");
    let (port, h) = peer(reset);
    let out = run(script, port, "3.0");
    h.join().unwrap();
    assert_eq!(out, "reconnection\t-9\n");
}

/// `close()` of a live connection: 1.5.4.1's SDK runs the disconnect callback from its close task,
/// after `close` returned; 3.0 calls nothing. Either way the peer gets the queued bytes, then EOF.
#[test]
fn close_of_a_connection_is_followed_by_disconnection_under_1_5_only() {
    let script = r#"
local c = net.createConnection(net.TCP, 0)
c:on("connection", function(s) s:send("bye"); s:close(); print("closed") end)
c:on("disconnection", function(s, ...) print("disconnection", select('#', ...)) end)
c:connect({port}, "127.0.0.1")
"#;
    for (fw, want) in [
        ("1.5", "closed\ndisconnection\t0\n"),
        ("2.2", "closed\n"),
        ("3.0", "closed\n"),
    ] {
        let (port, h) = peer(|mut s| {
            let mut v = Vec::new();
            s.read_to_end(&mut v).unwrap();
            assert_eq!(v, b"bye");
        });
        let out = run(script, port, fw);
        h.join().unwrap();
        assert_eq!(out, want, "--firmware {fw}");
    }
}

/// A socket that never connected, and what 1.5.4.1's socket has and takes.
#[test]
fn an_unconnected_socket_and_the_method_set_follow_1_5_4_1() {
    let script = r#"
local sk = net.createConnection(net.TCP, 0)
print("methods", type(sk.getaddr), type(sk.ttl), type(sk.hold), type(sk.getpeer))
print("getpeer", sk:getpeer())
print("send", pcall(sk.send, sk, "x"))
print("close", pcall(sk.close, sk))
print("hold", pcall(sk.hold, sk))
print("on nil", pcall(sk.on, sk, "receive", nil))
print("on none", pcall(sk.on, sk, "receive"))
print("on name", pcall(sk.on, sk, "data", print))
print("send big", pcall(sk.send, sk, ("x"):rep(1461)))
print("send 1460", pcall(sk.send, sk, ("x"):rep(1460)))
"#;
    assert_eq!(
        run(script, 0, "1.5"),
        "methods\tnil\tnil\tfunction\tfunction\n\
         getpeer\tnil\tnil\n\
         send\ttrue\n\
         close\ttrue\n\
         hold\ttrue\n\
         on nil\tfalse\tbad argument #3 to '?' (function expected, got nil)\n\
         on none\tfalse\tbad argument #3 to '?' (function expected, got no value)\n\
         on name\tfalse\tmethod not supported\n\
         send big\tfalse\tneed <1460 payload\n\
         send 1460\ttrue\n"
    );
    assert_eq!(
        run(script, 0, "3.0"),
        "methods\tfunction\tfunction\tfunction\tfunction\n\
         getpeer\tnil\tnil\n\
         send\tfalse\tnot connected\n\
         close\tfalse\tnot connected\n\
         hold\ttrue\n\
         on nil\ttrue\n\
         on none\ttrue\n\
         on name\tfalse\tinvalid callback name\n\
         send big\tfalse\tnot connected\n\
         send 1460\tfalse\tnot connected\n"
    );
}

/// 1.5.4.1 connects to a dotted quad at once and resolves a name with the SDK's own lookup:
/// "dns" never fires for `connect`, and a name that does not resolve ends the attempt silently.
#[test]
fn connect_fires_no_dns_and_a_name_that_does_not_resolve_is_silent_under_1_5() {
    let dns = crate::dns::zone();
    let script = r#"
local a = net.createConnection(net.TCP, 0)
a:on("dns", function(s, ip) print("dns", ip) end)
a:on("connection", function(s) print("connection") end)
a:connect({port}, "127.0.0.1")
print("connect returned")
"#;
    let (port, h) = peer(|_| {});
    let out = run(script, port, "1.5");
    h.join().unwrap();
    assert_eq!(out, "connect returned\nconnection\n");
    let (port, h) = peer(|_| {});
    let out = run(script, port, "3.0");
    h.join().unwrap();
    assert_eq!(out, "dns\t127.0.0.1\nconnect returned\nconnection\n");

    let script = r#"
net.dns.setdnsserver("127.0.0.1")
local b = net.createConnection(net.TCP, 0)
b:on("dns", function(s, ip) print("dns", ip) end)
b:on("reconnection", function(s, e) print("reconnection", e) end)
b:on("disconnection", function(s, e) print("disconnection", e) end)
b:connect(80, "missing.test")
print("connect returned")
"#;
    for (fw, want) in [
        ("1.5", "connect returned\n"),
        ("3.0", "connect returned\ndns\tnil\nreconnection\t-8\n"),
    ] {
        let r = run_lua(script, &["--firmware", fw, "--dns-port", &dns.port_arg()]);
        assert_eq!(r.status, 0, "--firmware {fw}: {r:?}");
        assert_eq!(r.stdout, want, "--firmware {fw}");
    }
}

/// A server's socket under 1.5: the peer's close and a local `close()` both end in
/// "disconnection" with the socket alone (`net_server_disconnected`).
#[test]
fn an_accepted_socket_gets_disconnection_without_a_code_for_either_close_under_1_5() {
    let sim = super::Sim::start(
        r#"
        local n = 0
        local sv = net.createServer(net.TCP, 30)
        sv:listen(0, "127.0.0.1", function(c)
          n = n + 1
          local me = n
          c:on("receive", function(s, d) print(me, "receive", d); s:close(); print(me, "closed") end)
          c:on("disconnection", function(s, ...)
            print(me, "disconnection", select('#', ...), s:getpeer())
            if me == 2 then sv:close() end
          end)
        end)
        print("port", (sv:getaddr()))
        "#,
        &["--firmware", "1.5"],
    );
    let port = sim.port();
    let mut c = super::connect(port);
    c.write_all(b"a").unwrap();
    assert_eq!(sim.line(), "1\treceive\ta");
    assert_eq!(sim.line(), "1\tclosed");
    assert_eq!(sim.line(), "1\tdisconnection\t0\tnil\tnil");
    assert_eq!(super::read_all(&mut c), b"");
    let c2 = super::connect(port);
    drop(c2);
    assert_eq!(sim.line(), "2\tdisconnection\t0\tnil\tnil");
    assert_eq!(sim.wait(), 0);
}
