//! `websocket`: device scripts against real WebSocket servers on loopback, written with
//! `tungstenite` (the server side of the protocol, so the device's frames are checked by an
//! independent implementation), plus raw TCP servers for the answers a WebSocket server would
//! never give. Exact callback arguments, order and close statuses.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tungstenite::handshake::server::{Request, Response};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::{Bytes, Message, WebSocket};

use crate::support::{Ran, run_lua};
use crate::tls::peer;

mod limits;

type Log = Arc<Mutex<Vec<String>>>;

/// A loopback server for one connection: the upgrade (its request line and headers logged),
/// then `f` with the socket and the log.
fn serve(
    f: impl FnOnce(&mut WebSocket<TcpStream>, &Log) + Send + 'static,
) -> (u16, Log, JoinHandle<()>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let log: Log = Arc::default();
    let l = log.clone();
    let t = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let seen = l.clone();
        let mut ws = tungstenite::accept_hdr(tcp, move |req: &Request, resp: Response| {
            let mut seen = seen.lock().unwrap();
            seen.push(format!("GET {}", req.uri()));
            for (k, v) in req.headers() {
                if k != "sec-websocket-key" {
                    seen.push(format!("{k}: {}", v.to_str().unwrap()));
                }
            }
            Ok(resp)
        })
        .unwrap();
        f(&mut ws, &l);
    });
    (port, log, t)
}

fn push(log: &Log, s: impl Into<String>) {
    log.lock().unwrap().push(s.into());
}

/// Reads until the client's close frame (answered by tungstenite) or the end; logs what came.
fn echo_until_close(ws: &mut WebSocket<TcpStream>, log: &Log) {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => {
                push(log, format!("text {t}"));
                ws.send(Message::Text(t)).unwrap();
            }
            Ok(Message::Binary(b)) => {
                push(log, format!("binary {:?}", &b[..]));
                ws.send(Message::Binary(b)).unwrap();
            }
            Ok(Message::Close(c)) => {
                push(log, format!("close {c:?}"));
                let _ = ws.flush();
            }
            Ok(other) => push(log, format!("other {other:?}")),
            Err(_) => return,
        }
    }
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

fn ok(ran: &Ran) {
    assert_eq!(
        ran.status, 0,
        "stdout: {}\nstderr: {}",
        ran.stdout, ran.stderr
    );
}

/// The callbacks every script here sets, printing their arguments.
const SHOW: &str = r#"
ws = websocket.createClient()
ws:on("connection", function(c) print("connection", c == ws) end)
ws:on("close", function(c, status) print("close", c == ws, status) end)
"#;

#[test]
fn text_and_binary_echo_then_a_close_the_server_answers_ends_with_minus_six() {
    let (port, log, t) = serve(echo_until_close);
    let ran = run_lua(
        &format!(
            r#"{SHOW}
local n = 0
ws:on("connection", function(c)
  print("connection", c == ws)
  c:send("hello")
  c:send("\0\1\255", 2)
end)
ws:on("receive", function(c, msg, op)
  n = n + 1
  print("receive", c == ws, op, msg:byte(1, -1))
  if n == 2 then c:close() end
end)
ws:connect("ws://127.0.0.1:{port}/echo?x=1")
"#
        ),
        &[],
    );
    ok(&ran);
    t.join().unwrap();
    assert_eq!(
        lines(&ran.stdout),
        [
            "connection\ttrue",
            "receive\ttrue\t1\t104\t101\t108\t108\t111",
            "receive\ttrue\t2\t0\t1\t255",
            "close\ttrue\t-6",
        ]
    );
    let log = log.lock().unwrap().clone();
    let mut head = log[1..7].to_vec();
    head.sort();
    assert_eq!(log[0], "GET /echo?x=1");
    assert_eq!(
        head,
        [
            "connection: Upgrade".to_string(),
            format!("host: 127.0.0.1:{port}"),
            "sec-websocket-protocol: chat".into(),
            "sec-websocket-version: 13".into(),
            "upgrade: websocket".into(),
            "user-agent: ESP8266".into(),
        ]
    );
    assert_eq!(
        log[7..],
        ["text hello", "binary [0, 1, 255]", "close None"],
        "the device's close frame is empty"
    );
}

#[test]
fn config_headers_go_before_the_defaults_and_replace_them_by_name() {
    let (port, log, t) = serve(|ws, _| {
        ws.close(None).unwrap();
        while ws.read().is_ok() {}
    });
    let ran = run_lua(
        &format!(
            r#"{SHOW}
ws:config({{headers = {{["User-Agent"] = "NodeMCU"}}}})
ws:connect("ws://127.0.0.1:{port}")
"#
        ),
        &[],
    );
    ok(&ran);
    t.join().unwrap();
    assert_eq!(lines(&ran.stdout), ["connection\ttrue", "close\ttrue\t-6"]);
    let log = log.lock().unwrap().clone();
    assert_eq!(log[0], "GET /");
    assert!(log.contains(&"user-agent: NodeMCU".to_string()), "{log:?}");
    assert!(!log.contains(&"user-agent: ESP8266".to_string()), "{log:?}");
    assert!(
        log.contains(&"sec-websocket-protocol: chat".to_string()),
        "{log:?}"
    );
}

#[test]
fn pings_are_answered_with_their_payload_and_the_close_frame_is_echoed() {
    let (port, log, t) = serve(|ws, log| {
        ws.send(Message::Ping(Bytes::from_static(b"pp"))).unwrap();
        loop {
            match ws.read().unwrap() {
                Message::Pong(p) => {
                    push(log, format!("pong {}", String::from_utf8_lossy(&p)));
                    break;
                }
                other => push(log, format!("other {other:?}")),
            }
        }
        ws.send(Message::Text("after ping".into())).unwrap();
        ws.close(Some(CloseFrame {
            code: CloseCode::Away,
            reason: "bye".into(),
        }))
        .unwrap();
        loop {
            match ws.read() {
                Ok(Message::Close(c)) => push(log, format!("echo {c:?}")),
                Ok(other) => push(log, format!("other {other:?}")),
                Err(_) => break,
            }
        }
    });
    let ran = run_lua(
        &format!(
            r#"{SHOW}
ws:on("receive", function(c, msg, op) print("receive", msg, op) end)
ws:connect("ws://127.0.0.1:{port}/")
"#
        ),
        &[],
    );
    ok(&ran);
    t.join().unwrap();
    assert_eq!(
        lines(&ran.stdout),
        [
            "connection\ttrue",
            "receive\tafter ping\t1",
            "close\ttrue\t-6"
        ]
    );
    let log = log.lock().unwrap().clone();
    let tail: Vec<&str> = log[log.len() - 2..].iter().map(|s| s.as_str()).collect();
    assert_eq!(
        tail,
        [
            "pong pp",
            "echo Some(CloseFrame { code: Away, reason: Utf8Bytes(b\"bye\") })"
        ]
    );
}

#[test]
fn a_fragmented_message_arrives_without_its_first_fragment_as_on_the_board() {
    let (port, _log, t) = serve(|ws, _| {
        let frag = |data: &'static [u8], op: OpCode, fin: bool| {
            Message::Frame(Frame::message(Bytes::from_static(data), op, fin))
        };
        ws.send(frag(b"one ", OpCode::Data(Data::Text), false))
            .unwrap();
        ws.send(frag(b"two ", OpCode::Data(Data::Continue), false))
            .unwrap();
        ws.send(frag(b"three", OpCode::Data(Data::Continue), true))
            .unwrap();
        ws.send(frag(b"A", OpCode::Data(Data::Binary), false))
            .unwrap();
        ws.send(frag(b"B", OpCode::Data(Data::Continue), true))
            .unwrap();
        ws.send(Message::Text("whole".into())).unwrap();
        ws.close(None).unwrap();
        while ws.read().is_ok() {}
    });
    let ran = run_lua(
        &format!(
            r#"{SHOW}
ws:on("receive", function(c, msg, op) print("receive", msg, op) end)
ws:connect("ws://127.0.0.1:{port}/")
"#
        ),
        &[],
    );
    ok(&ran);
    t.join().unwrap();
    assert_eq!(
        lines(&ran.stdout),
        [
            "connection\ttrue",
            "receive\ttwo three\t1",
            "receive\tB\t2",
            "receive\twhole\t1",
            "close\ttrue\t-6"
        ]
    );
}

/// A raw TCP server that reads the upgrade request and answers `reply`, then waits for the end.
fn raw(reply: &'static [u8]) -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let mut req = Vec::new();
        let mut b = [0u8; 512];
        while !req.ends_with(b"\r\n\r\n") {
            match tcp.read(&mut b) {
                Ok(0) | Err(_) => return,
                Ok(n) => req.extend_from_slice(&b[..n]),
            }
        }
        tcp.write_all(reply).unwrap();
        while matches!(tcp.read(&mut b), Ok(n) if n > 0) {}
    });
    port
}

#[test]
fn a_refused_upgrade_a_bad_key_and_a_refused_connection_have_their_statuses() {
    let not_found = raw(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    let bad_key = raw(b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: abc\r\n\r\n");
    let dead = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (port, status) in [(not_found, -17), (bad_key, -7), (dead, -109)] {
        let ran = run_lua(
            &format!("{SHOW}\nws:connect('ws://127.0.0.1:{port}/')"),
            &[],
        );
        ok(&ran);
        assert_eq!(
            ran.stdout,
            format!("close\ttrue\t{status}\n"),
            "port {port}"
        );
    }
}

#[test]
fn bad_urls_close_inside_connect_and_a_name_that_does_not_resolve_gives_minus_five() {
    let ran = run_lua(
        &format!(
            r#"{SHOW}
for _, url in ipairs({{"http://h/", "ws://{long}/", "ws://h:0/", "ws://h:99999", "ws://:80/"}}) do
  ws:connect(url)
  print("returned")
end
ws:connect("ws://nowhere.test/")
print("asked")
"#,
            long = "a".repeat(256)
        ),
        &[
            "--dns",
            "127.0.0.1",
            "--dns-port",
            &std::net::UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
                .to_string(),
        ],
    );
    ok(&ran);
    assert_eq!(
        lines(&ran.stdout),
        [
            "close\ttrue\t-1",
            "returned",
            "close\ttrue\t-2",
            "returned",
            "close\ttrue\t-3",
            "returned",
            "close\ttrue\t-3",
            "returned",
            "close\ttrue\t-4",
            "returned",
            "asked",
            "close\ttrue\t-5",
        ]
    );
}

#[test]
fn method_errors_are_the_firmware_texts() {
    let ran = run_lua(
        r#"
ws = websocket.createClient()
print(pcall(ws.send, ws, "x"))
print(pcall(ws.on, ws, "nope", print))
print(pcall(ws.on, ws, "close", 1))
print(pcall(ws.config, ws))
print(pcall(ws.connect, ws))
print(pcall(function() ws:on("nope", print) end))
ws:close()
ws:connect("ws://127.0.0.1:1/")
print(pcall(ws.connect, ws, "ws://127.0.0.1:1/"))
ws:close()
"#,
        &[],
    );
    ok(&ran);
    assert_eq!(
        ran.stdout,
        "false\tWebsocket isn't connected.\n\n\
         false\tbad argument #2 to '?' (invalid option 'nope')\n\
         false\tbad argument #3 to '?' (function or nil)\n\
         false\tbad argument #2 to '?' (table expected, got no value)\n\
         false\tbad argument #2 to '?' (string expected, got no value)\n\
         false\tinit.lua:8: bad argument #1 to 'on' (invalid option 'nope')\n\
         false\tWebsocket already connecting or connected.\n\n"
    );
}

#[test]
fn the_esp32_firmware_has_no_websocket_module() {
    let ran = run_lua("print(websocket)", &["--target", "esp32"]);
    ok(&ran);
    assert_eq!(ran.stdout, "nil\n");
}

#[test]
fn wss_goes_through_the_tls_stack_and_its_verification() {
    let ca = peer::ca("ws test ca");
    let leaf = peer::leaf(&ca);
    let config = {
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(leaf.key.serialize_der()),
        );
        Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der.clone()], key)
            .unwrap(),
        )
    };
    let serve_tls = |config: Arc<rustls::ServerConfig>| {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let tls = rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), tcp);
            let Ok(mut ws) = tungstenite::accept(tls) else {
                return;
            };
            if let Ok(Message::Text(t)) = ws.read() {
                ws.send(Message::Text(t)).unwrap();
            }
            while ws.read().is_ok() {}
        });
        port
    };
    let script = |verify: &str, port: u16| {
        format!(
            r#"tls.cert.verify([==[{verify}]==])
{SHOW}
ws:on("connection", function(c) print("connection") c:send("secret") end)
ws:on("receive", function(c, msg, op) print("receive", msg, op) c:close() end)
ws:connect("wss://localhost:{port}/")
"#
        )
    };
    let port = serve_tls(config.clone());
    let ran = run_lua(
        &script(&ca.pem, port),
        &["--resolve", "localhost=127.0.0.1"],
    );
    ok(&ran);
    // (The first line is the firmware's note for the old `tls.cert.verify(pem)` form.)
    assert_eq!(
        lines(&ran.stdout)[1..],
        ["connection", "receive\tsecret\t1", "close\ttrue\t-6"]
    );
    let port = serve_tls(config);
    let other = peer::ca("someone else");
    let ran = run_lua(
        &script(&other.pem, port),
        &["--resolve", "localhost=127.0.0.1"],
    );
    ok(&ran);
    assert_eq!(lines(&ran.stdout)[1..], ["close\ttrue\t-128"]);
}

#[test]
fn connecting_again_from_the_close_callback_leaves_the_new_connection_without_its_self_reference() {
    let dead = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (port, _log, t) = serve(echo_until_close);
    let ran = run_lua(
        &format!(
            r#"
ws = websocket.createClient()
local tries = 0
ws:on("connection", function(c) print("connection", c) ws:send("again") end)
ws:on("receive", function(c, msg) print("receive", c, msg) ws:close() end)
ws:on("close", function(c, status)
  tries = tries + 1
  print("close", c == ws and "ws" or tostring(c), status)
  if tries == 1 then c:connect("ws://127.0.0.1:{port}/") end
end)
ws:connect("ws://127.0.0.1:{dead}/")
"#
        ),
        &[],
    );
    ok(&ran);
    t.join().unwrap();
    assert_eq!(
        lines(&ran.stdout),
        [
            "close\tws\t-109",
            "connection\tnil",
            "receive\tnil\tagain",
            "close\tnil\t-6"
        ]
    );
}
