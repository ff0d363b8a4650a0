//! TLS: device scripts talking to loopback rustls servers whose certificates rcgen makes at test
//! time (the one static key, an RSA key for `tls.cert.auth`'s PEM form, is in fixtures/tls/).

use std::io::{Read, Write};

use crate::support::Ran;

mod http;
mod http32;
pub(crate) mod peer;
use peer::*;

/// A device script that fetches over TLS. `setup` runs first; `make` creates the socket.
fn fetch_script(setup: &str, make: &str, port: u16, host: &str) -> String {
    format!(
        r#"{setup}
local parts, biggest = {{}}, 0
local s = {make}
s:on("dns", function(sk, ip) print("dns", ip) end)
s:on("connection", function(sk)
  print("connection", sk:getpeer())
  sk:send("GET /x HTTP/1.0\r\n\r\n")
end)
s:on("sent", function(sk) print("sent") end)
s:on("receive", function(sk, d) parts[#parts + 1] = d; biggest = math.max(biggest, #d) end)
s:on("reconnection", function(sk, why) print("reconnection", sk == s, why, sk:getpeer()) end)
s:on("disconnection", function(sk)
  local b = table.concat(parts)
  print("disconnection", sk, #b, biggest)
  print(b)
end)
s:connect({port}, "{host}")
"#
    )
}

/// The old `tls.cert.verify` / `auth` forms print the firmware's deprecation note on the UART;
/// the tests that use them to set up a certificate test something else, so here the note is
/// taken out of stdout (`verify_true_needs_a_stored_certificate` checks it).
pub(crate) fn run_lua(script: &str, args: &[&str]) -> Ran {
    let mut ran = crate::support::run_lua(script, args);
    ran.stdout = ran
        .stdout
        .lines()
        .filter(|l| !l.starts_with("Warning, deprecated API! tls.cert."))
        .flat_map(|l| [l, "\n"])
        .collect();
    ran
}

fn lua_long_string(s: &str) -> String {
    format!("[==[{s}]==]")
}

fn expect_fetched(ran: &Ran, port: u16, body: &[u8]) {
    let expected = format!(
        "dns\t127.0.0.1\nconnection\t127.0.0.1\t{port}\nsent\ndisconnection\tnil\t{}\t1460\n{}\n",
        body.len(),
        String::from_utf8_lossy(body)
    );
    assert_eq!(ran.stdout, expected, "stderr: {}", ran.stderr);
    assert_eq!(ran.status, 0);
}

#[test]
fn fetch_with_the_ca_pinned_is_byte_exact() {
    let ca = ca("pinned");
    let server = leaf(&ca);
    let body = body();
    let reply = body.clone();
    let (port, srv) = serve_tls(server_config(&server, None), move |tls| {
        let req = read_request(tls);
        reply_and_close(tls, &reply);
        (req, tls.conn.server_name().map(str::to_string))
    });
    let setup = format!("print(tls.cert.verify({}))", lua_long_string(&ca.pem));
    let script = fetch_script(&setup, "tls.createConnection()", port, "localhost");
    let ran = run_lua(&script, &[]);
    let ran = Ran {
        stdout: ran.stdout.strip_prefix("true\n").unwrap_or("").to_string(),
        ..ran
    };
    expect_fetched(&ran, port, &body);
    let (req, sni) = srv.join().unwrap().unwrap().unwrap();
    assert_eq!(req, b"GET /x HTTP/1.0\r\n\r\n");
    assert_eq!(sni.as_deref(), Some("localhost"), "SNI is sent");
    assert!(
        !ran.stderr.contains("without certificate verification"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_server_from_another_ca_is_refused_when_a_ca_is_pinned() {
    let server = leaf(&ca("real"));
    let (port, srv) = serve_tls(server_config(&server, None), |_| ());
    let setup = format!("tls.cert.verify({})", lua_long_string(&ca("other").pem));
    let script = fetch_script(&setup, "tls.createConnection()", port, "localhost");
    let ran = run_lua(&script, &[]);
    assert_eq!(
        ran.stdout, "dns\t127.0.0.1\nreconnection\ttrue\tSSL handshake failed\tnil\tnil\n",
        "stderr: {}",
        ran.stderr
    );
    assert!(ran.stderr.contains("UnknownIssuer"), "{}", ran.stderr);
    assert!(srv.join().unwrap().unwrap().is_err());
}

#[test]
fn verify_true_needs_a_stored_certificate() {
    let ran = crate::support::run_lua(
        "print(pcall(function() tls.cert.verify(true) end))\n\
         print(tls.cert.verify(false))\n\
         tls.cert.verify(true)\n",
        &[],
    );
    // Each call of the old form prints the firmware's note on the UART, as its `printf` does.
    let note = "Warning, deprecated API! tls.cert.verify's old interface. It will be removed \
                soon. See documentation for details.\n";
    assert_eq!(
        ran.stdout,
        format!("{note}false\tinit.lua:1: no certificates found\n{note}true\n{note}")
    );
    assert_eq!(ran.status, 1);
    assert!(
        ran.stderr.contains("init.lua:3: no certificates found"),
        "{}",
        ran.stderr
    );
    // The public roots count as stored with --tls-roots webpki.
    let ran = run_lua("print(tls.cert.verify(true))", &["--tls-roots", "webpki"]);
    assert_eq!(ran.stdout, "true\n", "{}", ran.stderr);
}

#[test]
fn bad_pem_gets_the_firmware_message_and_position() {
    let cases = [
        ("nothing here", "No PEM header"),
        (
            "-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----",
            "Wrong PEM type",
        ),
        ("-----BEGIN CERTIFICATE-----", "Incorrect PEM format"),
        (
            "-----BEGIN CERTIFICATE-----\\nAA*A\\n-----END CERTIFICATE-----",
            "Invalid character in PEM",
        ),
        (
            "-----BEGIN CERTIFICATE-----\\nAAAA\\n",
            "Invalid PEM format data",
        ),
    ];
    for (pem, msg) in cases {
        let script = format!(
            "local ok, e = pcall(function()\n  tls.cert.verify(\"{pem}\")\nend)\nprint(e)\n"
        );
        let ran = run_lua(&script, &[]);
        assert_eq!(ran.stdout, format!("init.lua:2: {msg}\n"), "{}", ran.stderr);
    }
    // auth takes only a PKCS#1 RSA key in PEM form, and a missing blob has its own message.
    let cert = leaf(&ca("x"));
    let script = format!(
        "print(pcall(tls.cert.auth, {c}, {k}))\nprint(pcall(tls.cert.auth, {c}, {{}}))\n",
        c = lua_long_string(&cert.pem),
        k = lua_long_string(&cert.key.serialize_pem()),
    );
    let ran = run_lua(&script, &[]);
    assert_eq!(
        ran.stdout, "false\tWrong PEM type\nfalse\tNo PEM blob\n",
        "{}",
        ran.stderr
    );
}

#[test]
fn the_2015_secure_form_makes_the_same_socket_and_warns_once_about_verification() {
    let server = leaf(&ca("any"));
    let body = b"hello over tls".to_vec();
    let reply = body.clone();
    let (port, srv) = serve_tls(server_config(&server, None), move |tls| {
        let req = read_request(tls);
        reply_and_close(tls, &reply);
        req
    });
    let script = fetch_script(
        "local a, b = net.createConnection(net.TCP, 1), tls.createConnection()\n\
         assert(a.connect == b.connect and a.getpeer == b.getpeer and a.dns == nil)",
        "net.createConnection(net.TCP, 1)",
        port,
        "127.0.0.1",
    );
    let ran = run_lua(&script, &[]);
    let expected = format!(
        "dns\t127.0.0.1\nconnection\t127.0.0.1\t{port}\nsent\ndisconnection\tnil\t{}\t{}\nhello over tls\n",
        body.len(),
        body.len()
    );
    assert_eq!(ran.stdout, expected, "stderr: {}", ran.stderr);
    assert_eq!(
        srv.join().unwrap().unwrap().unwrap(),
        b"GET /x HTTP/1.0\r\n\r\n"
    );
    assert_eq!(
        ran.stderr
            .matches("without certificate verification")
            .count(),
        1,
        "{}",
        ran.stderr
    );
}

#[test]
fn a_client_certificate_the_server_requires() {
    let client_ca = ca("devices");
    let server = leaf(&ca("server"));
    let config = server_config(&server, Some(&client_ca.der));
    let hello = |tls: &mut Tls| {
        let req = read_request(tls);
        reply_and_close(tls, b"welcome");
        req
    };
    // Without a certificate the handshake fails.
    let (port, srv) = serve_tls(config.clone(), hello);
    let ran = run_lua(
        &fetch_script("", "tls.createConnection()", port, "localhost"),
        &[],
    );
    assert!(
        !ran.stdout.lines().any(|l| l.starts_with("connection")),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("reconnection\ttrue\t"),
        "{}",
        ran.stdout
    );
    assert!(srv.join().unwrap().unwrap().is_err());

    // The board's PEM form: the certificate and a PKCS#1 RSA key.
    let key = std::fs::read_to_string(fixture("client-rsa.key")).unwrap();
    let setup = format!(
        "print(tls.cert.auth({}, {}))",
        lua_long_string(&rsa_client_cert(&client_ca)),
        lua_long_string(&key)
    );
    let (port, srv) = serve_tls(config.clone(), hello);
    let ran = run_lua(
        &fetch_script(&setup, "tls.createConnection()", port, "localhost"),
        &[],
    );
    assert!(ran.stdout.starts_with("true\ndns"), "{}", ran.stderr);
    assert!(
        ran.stdout.ends_with("\nwelcome\n"),
        "{}\n{}",
        ran.stdout,
        ran.stderr
    );
    assert!(srv.join().unwrap().unwrap().is_ok());

    // The function form: fn(0) is the key (any format mbedTLS parses), fn(1..) the chain.
    let device = leaf(&client_ca);
    let setup = format!(
        "local key, cert = {}, {}\n\
         tls.cert.auth(function(n) if n == 0 then return key elseif n == 1 then return cert end end)",
        lua_long_string(&device.key.serialize_pem()),
        lua_long_string(&device.pem)
    );
    let (port, srv) = serve_tls(config, hello);
    let ran = run_lua(
        &fetch_script(&setup, "tls.createConnection()", port, "localhost"),
        &[],
    );
    assert!(
        ran.stdout.ends_with("\nwelcome\n"),
        "{}\n{}",
        ran.stdout,
        ran.stderr
    );
    assert!(srv.join().unwrap().unwrap().is_ok());
}

#[test]
fn the_server_closing_first_fires_disconnection_with_nil() {
    let server = leaf(&ca("x"));
    let (port, _srv) = serve_tls(server_config(&server, None), |tls| {
        reply_and_close(tls, b"bye");
    });
    let script = format!(
        r#"local s = tls.createConnection()
s:on("connection", function(sk) print("connection") end)
s:on("receive", function(sk, d) print("receive", sk == s, d) end)
s:on("disconnection", function(...) print("disconnection", select('#', ...), ...) end)
s:connect({port}, "127.0.0.1")
"#
    );
    let ran = run_lua(&script, &[]);
    assert_eq!(
        ran.stdout, "connection\nreceive\ttrue\tbye\ndisconnection\t1\tnil\n",
        "{}",
        ran.stderr
    );
    assert_eq!(ran.status, 0);
}

#[test]
fn a_handshake_against_a_plain_tcp_server_fails() {
    let (port, srv) = serve(|mut tcp| {
        let mut b = [0u8; 1024];
        let n = tcp.read(&mut b).unwrap_or(0);
        let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
        n
    });
    let script = fetch_script("", "tls.createConnection()", port, "127.0.0.1");
    let ran = run_lua(&script, &[]);
    assert_eq!(
        ran.stdout, "dns\t127.0.0.1\nreconnection\ttrue\tSSL handshake failed\tnil\tnil\n",
        "{}",
        ran.stderr
    );
    // What the server got was a TLS ClientHello (a handshake record).
    assert!(srv.join().unwrap().unwrap() > 0);
}

#[test]
fn a_second_send_before_sent_is_dropped_on_the_esp8266() {
    let server = leaf(&ca("x"));
    let run = |target: &str| {
        let (port, srv) = serve_tls(server_config(&server, None), |tls| {
            let mut got = Vec::new();
            let mut b = [0u8; 64];
            while let Ok(n) = tls.read(&mut b) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&b[..n]);
            }
            got
        });
        let script = format!(
            r#"local s = tls.createConnection()
local sent = 0
s:on("connection", function(sk) sk:send("one,") sk:send("two,") end)
s:on("sent", function(sk) sent = sent + 1 if sent == 1 then sk:send("three") else sk:close() end end)
s:connect({port}, "127.0.0.1")
"#
        );
        let ran = run_lua(&script, &["--target", target]);
        let got = srv.join().unwrap().unwrap().unwrap();
        (ran, String::from_utf8(got).unwrap())
    };
    let (ran, got) = run("esp8266");
    assert_eq!(got, "one,three");
    assert_eq!(
        ran.stderr.matches("send() dropped").count(),
        1,
        "{}",
        ran.stderr
    );
    let (ran, got) = run("host");
    assert_eq!(got, "one,two,three");
    assert!(!ran.stderr.contains("send() dropped"), "{}", ran.stderr);
}

#[test]
fn an_error_in_a_tls_callback_panics_the_esp8266() {
    let server = leaf(&ca("x"));
    let (port, _srv) = serve_tls(server_config(&server, None), |tls| {
        reply_and_close(tls, b"x");
    });
    let script = format!(
        "local s = tls.createConnection()\n\
         s:on('connection', function(sk) error('boom') end)\n\
         s:connect({port}, '127.0.0.1')\n"
    );
    let ran = run_lua(&script, &[]);
    assert_eq!(ran.status, 4, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("PANIC: unprotected error in call to Lua API (init.lua:2: boom)"),
        "{}",
        ran.stderr
    );
}

#[test]
fn webpki_roots_refuse_a_private_server() {
    let server = leaf(&ca("private"));
    let (port, _srv) = serve_tls(server_config(&server, None), |_| ());
    let script = fetch_script(
        "tls.cert.verify(true)",
        "tls.createConnection()",
        port,
        "localhost",
    );
    let ran = run_lua(&script, &["--tls-roots", "webpki"]);
    assert!(
        ran.stdout
            .ends_with("reconnection\ttrue\tSSL handshake failed\tnil\tnil\n"),
        "{}\n{}",
        ran.stdout,
        ran.stderr
    );
}

#[test]
fn verify_with_a_function_supplies_the_cas_at_connect_time() {
    let ca1 = ca("one");
    let server = leaf(&ca1);
    let (port, srv) = serve_tls(server_config(&server, None), |tls| {
        let _ = read_request(tls);
        reply_and_close(tls, b"ok");
    });
    // Several CAs, the right one second; tls.setDebug reports the handshake on stderr.
    let setup = format!(
        "local cas = {{ {}, {} }}\n\
         tls.setDebug(1)\n\
         print(tls.cert.verify(function(n) print('ca', n) return cas[n] end))",
        lua_long_string(&ca("unrelated").pem),
        lua_long_string(&ca1.pem)
    );
    let ran = run_lua(
        &fetch_script(&setup, "tls.createConnection()", port, "localhost"),
        &[],
    );
    assert!(
        ran.stdout
            .starts_with("true\ndns\t127.0.0.1\nca\t1\nca\t2\nca\t3\nconnection\t"),
        "{}\n{}",
        ran.stdout,
        ran.stderr
    );
    assert!(ran.stdout.ends_with("\nok\n"), "{}", ran.stdout);
    assert!(ran.stderr.contains("TLSv1_2"), "{}", ran.stderr);
    assert!(srv.join().unwrap().unwrap().is_ok());

    // A function that fails makes the connection fail (the board swallows the error).
    let (port, _srv) = serve_tls(server_config(&server, None), |_| ());
    let setup = "tls.cert.verify(function(n) error('no CA here') end)";
    let ran = run_lua(
        &fetch_script(setup, "tls.createConnection()", port, "localhost"),
        &[],
    );
    assert!(
        ran.stdout
            .ends_with("reconnection\ttrue\tSSL handshake failed\tnil\tnil\n"),
        "{}",
        ran.stdout
    );
    assert!(ran.stderr.contains("no CA here"), "{}", ran.stderr);
}

#[test]
fn socket_methods_follow_tls_c_when_not_connected() {
    let script = r#"
local s = tls.createConnection()
print(s:getpeer())
s:send("ignored") s:close() s:hold() s:unhold()
print(pcall(s.on, s, "bogus", print))
print(pcall(s.on, s, "receive", 42))
print(pcall(s.connect, s, 0))
print(pcall(s.connect, s, 65536))
s:on("dns", function(sk, ip) print("dns", sk == s, ip, sk:getpeer()) end)
s:connect(443, "")
print(pcall(s.connect, s, 443))
"#;
    let ran = run_lua(script, &[]);
    assert_eq!(
        ran.stdout,
        "nil\tnil\n\
         false\tinvalid method\n\
         false\tinvalid callback function\n\
         false\tinvalid port\n\
         false\tinvalid port\n\
         dns\ttrue\tnil\t0.0.0.0\t443\n\
         false\talready connected\n",
        "{}",
        ran.stderr
    );
    assert_eq!(ran.status, 0);
}

#[test]
fn a_certificate_function_that_closes_its_socket_stops_the_connection() {
    let script = r#"
local s = tls.createConnection()
tls.cert.verify(function(n) s:close() return nil end)
s:on("connection", function() print("connection") end)
s:on("reconnection", function(sk, why) print("reconnection", why) end)
s:connect(9, "127.0.0.1")
print("connect returned", s:getpeer())
"#;
    let ran = run_lua(script, &[]);
    assert_eq!(ran.stdout, "connect returned\tnil\tnil\n", "{}", ran.stderr);
    assert_eq!(ran.status, 0);
}
