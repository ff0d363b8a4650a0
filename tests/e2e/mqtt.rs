//! `mqtt`: device scripts against a real Mosquitto broker on loopback (`mqtt/broker.rs`), checked
//! with the broker's own clients and its packet log. Exact callback arguments and order.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{BIN, run_lua};

mod api;
mod broker;
mod device;
use broker::{Broker, Setup, program};
use device::Device;

const LONG: Duration = Duration::from_secs(20);

/// A device script with the broker's port put in for `{port}`.
pub(crate) fn with_port(port: u16, script: &str) -> String {
    script.replace("{port}", &port.to_string())
}

pub(crate) fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn connect_subscribe_publish_and_close_in_the_firmware_order() {
    let b = Broker::start(Setup::default());
    let script = with_port(
        b.port,
        r#"
m = mqtt.Client("dev1", 30)
m:on("message", function(c, t, d) print("message", c == m, t, d) end)
m:on("offline", function(c) print("offline", c == m) end)
m:on("puback", function(c) print("puback", c == m) end)
m:connect("127.0.0.1", {port}, false, function(c)
  print("connect", c == m)
  print("subscribe", c:subscribe("t/#", 2, function(c2) print("suback", c2 == m)
    print("publish", c:publish("t/a", "hello", 1, 0))
  end))
end, function(c, r) print("connfail", r) end)
m:on("message", function(c, t, d) print("message", c == m, t, d); c:close() end)
"#,
    );
    let ran = run_lua(&script, &[]);
    assert_eq!(
        lines(&ran.stdout),
        [
            "connect\ttrue",
            "subscribe\ttrue",
            "suback\ttrue",
            "publish\ttrue",
            "message\ttrue\tt/a\thello",
            "puback\ttrue",
            "offline\ttrue",
        ],
        "stderr: {}",
        ran.stderr
    );
    assert_eq!(ran.status, 0);
    // The client identified itself, with a clean session off by default (3.0's code).
    let log = b.log();
    assert!(log.contains("New client connected from 127.0.0.1"), "{log}");
    assert!(log.contains("as dev1 (p2, c0, k30)"), "{log}");
}

#[test]
fn the_device_publishes_at_each_qos_and_retain_as_asked() {
    let b = Broker::start(Setup::default());
    let sub = b.subscribe("d/#");
    let script = with_port(
        b.port,
        r#"
local n = 0
m = mqtt.Client("dev2", 30)
m:on("puback", function(c) n = n + 1; print("puback", n); if n == 4 then c:close() end end)
m:connect("127.0.0.1", {port}, function(c)
  print(c:publish("d/0", "zero", 0, 0), c:publish("d/1", "one", 1, 0),
        c:publish("d/2", "two", 2, 0), c:publish("d/r", "kept", 0, 1))
end)
"#,
    );
    let ran = run_lua(&script, &[]);
    assert_eq!(
        lines(&ran.stdout),
        [
            "true\ttrue\ttrue\ttrue",
            "puback\t1",
            "puback\t2",
            "puback\t3",
            "puback\t4"
        ],
        "stderr: {}",
        ran.stderr
    );
    // The broker forwards a QoS 2 message with its own exchange, so others may overtake it.
    let mut got = sub.messages(4, LONG);
    got.sort();
    assert_eq!(
        got,
        ["d/0 0 0 zero", "d/1 1 0 one", "d/2 2 0 two", "d/r 0 0 kept"]
    );
    // The retained one is kept by the broker for the next subscriber.
    let late = b.subscribe("d/r");
    let _ = late.messages(1, LONG);
}

#[test]
fn messages_arrive_at_each_qos_with_the_firmware_arguments() {
    let b = Broker::start(Setup::default());
    b.publish("in/retained", "old news", 1, &["-r"]);
    let script = with_port(
        b.port,
        r#"
m = mqtt.Client("dev3", 30)
m:on("message", function(c, t, d, extra) print("message", c == m, t, d, extra) end)
m:connect("127.0.0.1", {port}, function(c)
  c:subscribe({["in/#"] = 2}, function() print("ready") end)
end)
"#,
    );
    let mut dev = Device::start(&script, &[]);
    // The SUBACK comes first, then the retained message.
    dev.expect("ready");
    dev.expect("message\ttrue\tin/retained\told news\tnil");
    b.publish("in/q0", "a", 0, &[]);
    dev.expect("message\ttrue\tin/q0\ta\tnil");
    b.publish("in/q1", "b", 1, &[]);
    dev.expect("message\ttrue\tin/q1\tb\tnil");
    b.publish("in/q2", "c", 2, &[]);
    dev.expect("message\ttrue\tin/q2\tc\tnil");
    // An empty payload is passed as nothing at all.
    b.publish("in/empty", "", 1, &[]);
    dev.expect("message\ttrue\tin/empty\tnil\tnil");
    // The device acknowledged every QoS 1 and 2 message, completing the QoS 2 exchange.
    let log = b.log();
    assert!(log.contains("Received PUBACK from dev3"), "{log}");
    assert!(log.contains("Received PUBREC from dev3"), "{log}");
    assert!(log.contains("Received PUBCOMP from dev3"), "{log}");
}

/// A client that prints every connection outcome: "connect", "connfail" with its code, "offline".
fn watch_script(port: u16, client: &str) -> String {
    format!(
        r#"
m = {client}
m:on("offline", function(c) print("offline", c == m) end)
m:connect("127.0.0.1", {port}, false, function(c) print("connect") end,
  function(c, r) print("connfail", c == m, r) end)
"#
    )
}

#[test]
fn a_refused_login_reports_the_connack_code_then_offline() {
    let b = Broker::start(Setup {
        user: Some(("u1", "secret")),
        ..Setup::default()
    });
    let ran = run_lua(
        &watch_script(b.port, r#"mqtt.Client("dev4", 30, "u1", "wrong")"#),
        &[],
    );
    // Mosquitto refuses a wrong password as "not authorized" (5) under MQTT 3.1.1.
    assert_eq!(
        lines(&ran.stdout),
        ["connfail\ttrue\t5", "offline\ttrue"],
        "{}",
        ran.stderr
    );
    let ok = run_lua(
        &format!(
            r#"print(mqtt.CONNACK_REFUSED_NOT_AUTHORIZED, mqtt.CONNACK_REFUSED_BAD_USER_OR_PASS)
m = mqtt.Client("dev4", 30, "u1", "secret")
m:connect("127.0.0.1", {}, function(c) print("connect"); c:close() end)
m:on("offline", function() print("offline") end)"#,
            b.port
        ),
        &[],
    );
    assert_eq!(
        lines(&ok.stdout),
        ["5\t4", "connect", "offline"],
        "{}",
        ok.stderr
    );
}

#[test]
fn no_broker_is_server_not_found_and_no_offline() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ran = run_lua(&watch_script(port, r#"mqtt.Client("dev5", 30)"#), &[]);
    assert_eq!(lines(&ran.stdout), ["connfail\ttrue\t-5"], "{}", ran.stderr);
    assert_eq!(ran.status, 0);
}

#[test]
fn a_broker_killed_mid_session_makes_the_device_go_offline() {
    let mut b = Broker::start(Setup::default());
    let script = watch_script(b.port, r#"mqtt.Client("dev6", 30)"#);
    let mut dev = Device::start(&script, &[]);
    dev.expect("connect");
    b.kill();
    dev.expect("offline\ttrue");
    assert_eq!(dev.finish(), ["connect", "offline\ttrue"]);
}

#[test]
fn the_broker_publishes_the_will_when_the_device_drops_without_disconnect() {
    let b = Broker::start(Setup::default());
    let sub = b.subscribe("will/#");
    let script = with_port(
        b.port,
        r#"
m = mqtt.Client("dev7", 30)
m:lwt("will/dev7", "gone", 1, 0)
m:connect("127.0.0.1", {port}, function(c) print("connect") end)
"#,
    );
    let mut dev = Device::start(&script, &[]);
    dev.expect("connect");
    drop(dev); // the device loses power: no DISCONNECT
    assert_eq!(sub.messages(1, LONG), ["will/dev7 1 0 gone"]);
}

#[test]
fn keepalive_gives_up_on_a_broker_that_stopped_answering() {
    let b = Broker::start(Setup::default());
    let script = watch_script(b.port, r#"mqtt.Client("dev8", 1)"#);
    let mut dev = Device::start(&script, &[]);
    dev.expect("connect");
    // Let one ping go through, then freeze the broker: the next ping goes unanswered.
    std::thread::sleep(Duration::from_millis(1500));
    b.signal("STOP");
    let t = Instant::now();
    dev.expect("offline\ttrue");
    b.signal("CONT");
    // A ping at most one keepalive after the last packet, then one keepalive for its answer.
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert!(b.log().contains("Received PINGREQ from dev8"));
}

#[test]
fn an_oversized_message_goes_to_overflow_truncated_and_the_next_arrives() {
    let b = Broker::start(Setup::default());
    let script = with_port(
        b.port,
        r#"
m = mqtt.Client("dev9", 30, nil, nil, 0, 100)
m:on("message", function(c, t, d) print("message", t, d) end)
m:on("overflow", function(c, t, d) print("overflow", t, #d, d:sub(1, 3)) end)
m:connect("127.0.0.1", {port}, function(c)
  c:subscribe("big/#", 1, function() print("ready") end)
end)
"#,
    );
    let mut dev = Device::start(&script, &[]);
    dev.expect("ready");
    // 3000 bytes at QoS 1: the device gets the first 1460-byte segment's payload
    // (1460 - 3 header - 7 topic - 2 id) and still acknowledges it.
    b.publish("big/a", &"x".repeat(3000), 1, &[]);
    dev.expect("overflow\tbig/a\t1448\txxx");
    b.publish("big/b", "small", 0, &[]);
    dev.expect("message\tbig/b\tsmall");
    assert!(b.log().contains("Received PUBACK from dev9"));
}

#[test]
fn a_burst_goes_one_packet_at_a_time_in_order() {
    let b = Broker::start(Setup::default());
    let sub = b.subscribe("burst/#");
    let script = with_port(
        b.port,
        r#"
local acks = 0
m = mqtt.Client("dev10", 30)
m:on("puback", function(c) acks = acks + 1; if acks == 20 then print("acks", acks); c:close() end end)
m:connect("127.0.0.1", {port}, function(c)
  local ok = true
  for i = 1, 20 do ok = c:publish("burst/" .. i, tostring(i), 1, 0) and ok end
  print("queued", ok)
end)
"#,
    );
    let ran = run_lua(&script, &[]);
    assert_eq!(
        lines(&ran.stdout),
        ["queued\ttrue", "acks\t20"],
        "{}",
        ran.stderr
    );
    let got = sub.messages(20, LONG);
    let want: Vec<String> = (1..=20).map(|i| format!("burst/{i} 1 0 {i}")).collect();
    assert_eq!(got, want);
    // One in flight: the broker's PUBACK for each message comes before the next PUBLISH.
    let log = b.log();
    let seq: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("PUBLISH from dev10") || l.contains("PUBACK to dev10"))
        .map(|l| if l.contains("PUBLISH") { "P" } else { "A" })
        .collect();
    assert_eq!(seq.concat(), "PA".repeat(20), "{log}");
}

#[test]
fn a_device_can_reconnect_from_its_offline_callback() {
    let b = Broker::start(Setup::default());
    let script = with_port(
        b.port,
        r#"
local rounds = 0
m = mqtt.Client("dev11", 30)
m:on("connect", function(c) rounds = rounds + 1; print("connect", rounds); c:close() end)
m:on("offline", function(c)
  print("offline", rounds)
  if rounds < 3 then c:connect("127.0.0.1", {port}) end
end)
m:connect("127.0.0.1", {port})
"#,
    );
    let ran = run_lua(&script, &[]);
    assert_eq!(
        lines(&ran.stdout),
        [
            "connect\t1",
            "offline\t1",
            "connect\t2",
            "offline\t2",
            "connect\t3",
            "offline\t3"
        ],
        "{}",
        ran.stderr
    );
}

#[test]
fn a_secure_connection_with_a_client_certificate() {
    let b = Broker::start(Setup {
        tls: Some(true),
        ..Setup::default()
    });
    let certs = b.certs.as_ref().unwrap();
    let script = format!(
        r#"
local cas, key, cert = {{ [==[{ca}]==] }}, [==[{key}]==], [==[{cert}]==]
tls.cert.verify(function(n) return cas[n] end)
tls.cert.auth(function(n) if n == 0 then return key elseif n == 1 then return cert end end)
m = mqtt.Client("dev12", 30)
m:on("offline", function() print("offline") end)
m:connect("localhost", {port}, true, function(c)
  print("connect")
  c:publish("s/x", "sealed", 1, 0, function() print("puback"); c:close() end)
end, function(c, r) print("connfail", r) end)
"#,
        ca = certs.ca_pem,
        cert = certs.client_pem,
        key = certs.client_key_pem,
        port = b.port
    );
    let ran = run_lua(&script, &["--resolve", "localhost=127.0.0.1"]);
    assert_eq!(
        lines(&ran.stdout),
        ["connect", "puback", "offline"],
        "{}",
        ran.stderr
    );
    // Without the client certificate the broker refuses the handshake.
    let no_cert = with_port(
        b.port,
        r#"
m = mqtt.Client("dev13", 30)
m:connect("127.0.0.1", {port}, true, function() print("connect") end,
  function(c, r) print("connfail", r) end)
"#,
    );
    let ran = run_lua(&no_cert, &[]);
    assert_eq!(lines(&ran.stdout), ["connfail\t-5"], "{}", ran.stderr);
}

#[test]
fn the_broker_helper_names_the_package_when_a_program_is_missing() {
    let err = std::panic::catch_unwind(|| program("mosquitto-no-such-program")).unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("apt-get install -y mosquitto mosquitto-clients"),
        "{msg}"
    );
}

#[test]
fn the_sensor_fixture_passes_its_ntest_suite() {
    let b = Broker::start(Setup::default());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mqtt");
    let dir = tempfile::tempdir().unwrap();
    for name in ["sensor.lua", "NTest_sensor.lua"] {
        std::fs::copy(root.join(name), dir.path().join(name)).unwrap();
    }
    let config = format!("return {{ host = \"127.0.0.1\", port = {} }}\n", b.port);
    std::fs::write(dir.path().join("config.lua"), config).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("test").arg(dir.path());
    let ran = crate::support::run_cmd(cmd, Duration::from_secs(60));
    assert_eq!(ran.status, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("3 tests: 3 passed."), "{}", ran.stdout);
}

#[test]
fn a_name_that_does_not_resolve_is_conn_fail_dns() {
    // Port 9 (discard) has no DNS server on loopback: the query is refused at once.
    let ran = run_lua(
        &watch_script(0, r#"mqtt.Client("dev15", 30)"#)
            .replace("\"127.0.0.1\", 0", "\"broker.invalid\""),
        &["--dns", "127.0.0.1", "--dns-port", "9"],
    );
    assert_eq!(lines(&ran.stdout), ["connfail\ttrue\t-3"], "{}", ran.stderr);
}

/// A loopback peer that accepts one connection, reads the CONNECT, and answers with `reply`
/// (nothing at all if empty), then holds the connection until the device drops it.
fn raw_peer(reply: &'static [u8]) -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(LONG)).unwrap();
        let mut connect = vec![0; 256];
        let n = s.read(&mut connect).unwrap();
        connect.truncate(n);
        s.write_all(reply).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        connect
    });
    (port, t)
}

#[test]
fn a_broker_that_never_sends_its_connack_times_out_after_5_s() {
    let (port, peer) = raw_peer(b"");
    let ran = run_lua(&watch_script(port, r#"mqtt.Client("dev16", 30)"#), &[]);
    assert_eq!(
        lines(&ran.stdout),
        ["connfail\ttrue\t-2", "offline\ttrue"],
        "{}",
        ran.stderr
    );
    assert!(ran.elapsed >= Duration::from_secs(5), "{:?}", ran.elapsed);
    // The CONNECT was MQTT 3.1.1 (level 4) with the client id, no clean session by default.
    let connect = peer.join().unwrap();
    assert_eq!(
        &connect[..12],
        [0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 4, 0, 0, 30]
    );
    assert_eq!(&connect[12..], b"\0\x05dev16");
}

#[test]
fn a_first_packet_other_than_connack_is_not_a_connack_msg() {
    let (port, _peer) = raw_peer(&[0xD0, 0]); // PINGRESP
    let ran = run_lua(&watch_script(port, r#"mqtt.Client("dev17", 30)"#), &[]);
    assert_eq!(
        lines(&ran.stdout),
        ["connfail\ttrue\t-4", "offline\ttrue"],
        "{}",
        ran.stderr
    );
}

#[test]
fn a_secure_connection_verifies_only_when_asked() {
    let b = Broker::start(Setup {
        tls: Some(false),
        ..Setup::default()
    });
    // The device default: nothing verified, and the simulator says so once.
    let script = with_port(
        b.port,
        r#"
m = mqtt.Client("dev22", 30)
m:connect("127.0.0.1", {port}, true, function(c) print("connect"); c:close() end,
  function(c, r) print("connfail", r) end)
"#,
    );
    let ran = run_lua(&script, &[]);
    assert_eq!(lines(&ran.stdout), ["connect"], "{}", ran.stderr);
    assert!(
        ran.stderr.contains("without certificate verification"),
        "{}",
        ran.stderr
    );
    // A CA that did not sign the broker's certificate: the handshake fails, -5.
    let other = crate::tls::peer::ca("another");
    let pinned = format!(
        "local cas = {{ [==[{}]==] }}\ntls.cert.verify(function(n) return cas[n] end)\n{script}",
        other.pem
    );
    let ran = run_lua(&pinned, &[]);
    assert_eq!(lines(&ran.stdout), ["connfail\t-5"], "{}", ran.stderr);
}
