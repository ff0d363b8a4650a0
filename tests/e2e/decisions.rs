//! Behaviours of the simulator's contract that no area's tests covered: the constructor forms of both API
//! generations, `--forever`, virtual time against socket I/O in flight, callbacks running to
//! completion, where the simulator's own messages go, and wifi callback errors.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{BIN, Flash, run_lua};

/// every constructor form makes the object the contract names. The methods a handle has tell
/// its kind apart: a server only listens, a UDP socket listens and sends, a TCP client connects
/// and has `dns`, a TLS client has no `dns`.
#[test]
fn every_constructor_form_makes_the_object_the_contract_names() {
    let script = r#"
local function kind(x)
  return (x.listen and "L" or "") .. (x.send and "S" or "") .. (x.connect and "C" or "")
    .. (x.dns and "D" or "") .. (x.hold and "H" or "")
end
print(kind(net.createServer()), kind(net.createServer(net.TCP)), kind(net.createServer(net.TCP, 1)),
  kind(net.createServer(net.TCP, 28800)), kind(net.createServer(5)), kind(net.createServer(3600)))
print(kind(net.createUDPSocket()), kind(net.createServer(net.UDP)), kind(net.createServer(2)),
  kind(net.createConnection(net.UDP, 0)))
print(kind(net.createConnection()), kind(net.createConnection(net.TCP, 0)),
  kind(tls.createConnection()), kind(net.createConnection(net.TCP, 1)))
print(pcall(net.createConnection, net.TCP, 2))
print(pcall(net.createConnection, net.UDP, 1))
"#;
    let r = run_lua(script, &[]);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "L\tL\tL\tL\tL\tL\n\
         LSD\tLSD\tLSD\tLSCD\n\
         SCDH\tSCDH\tSCH\tSCH\n\
         false\twrong arg type\n\
         false\twrong arg type\n"
    );
}

/// `--forever` keeps a device with nothing left to run up, as a powered board stays up; the
/// same script without it ends by itself.
#[test]
fn forever_keeps_an_idle_device_up_until_it_is_stopped() {
    let flash = Flash::new(&[("init.lua", "print('booted')\n")]);
    let mut child = Command::new(BIN)
        .arg("run")
        .arg(flash.file("init.lua"))
        .arg("--forever")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nodemcu-sim");
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 7];
    out.read_exact(&mut first).expect("banner line");
    assert_eq!(&first, b"booted\n");
    std::thread::sleep(Duration::from_millis(1500));
    let still_up = child.try_wait().expect("try_wait").is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(still_up, "--forever ended the run with nothing left to do");

    let r = flash.run("init.lua", &[]);
    assert_eq!((r.status, r.stdout.as_str()), (0, "booted\n"), "{r:?}");
}

/// under `--virtual-time` the clock must not jump to a timer while a reply is still in flight
/// on a real socket: the reply, sent 300 ms of real time after the request, arrives before the
/// 5-second timer, and only once the socket is closed does the clock jump to that timer.
#[test]
fn virtual_time_never_jumps_over_a_reply_in_flight() {
    let srv = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = srv.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = srv.accept().unwrap();
        let mut req = [0u8; 4];
        s.read_exact(&mut req).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        s.write_all(b"pong").unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        req
    });
    let r = run_lua(
        &format!(
            r#"
local t = tmr.create()
t:alarm(5000, tmr.ALARM_SINGLE, function() print("timer", tmr.now() >= 5000000) end)
local sk = net.createConnection()
sk:on("receive", function(s, d) print("receive", d, tmr.now() < 5000000) s:close() end)
sk:on("connection", function(s) s:send("ping") end)
sk:connect({port}, "127.0.0.1")
"#
        ),
        &["--virtual-time"],
    );
    assert_eq!(&peer.join().unwrap(), b"ping");
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(r.stdout, "receive\tpong\ttrue\ntimer\ttrue\n", "{r:?}");
    // The 5 s timer is reached by a jump once the socket is closed, not by waiting.
    assert!(r.elapsed < Duration::from_secs(4), "{r:?}");
}

/// a callback runs to completion. A timer due in 1 ms, a posted task and data that arrives
/// while the callback is still busy all wait until it has returned.
#[test]
fn nothing_fires_while_a_callback_is_running() {
    let r = run_lua(
        r#"
local sv = net.createServer()
sv:listen(0, "127.0.0.1", function(c)
  c:on("receive", function(c, d) print("receive", d) c:close() sv:close() end)
end)
local sk = net.createConnection()
sk:on("sent", function(s) s:close() end)
sk:on("connection", function(s)
  s:send("x")
  tmr.create():alarm(1, tmr.ALARM_SINGLE, function() print("timer") end)
  node.task.post(function() print("task") end)
  local t0 = tmr.now()
  while tmr.now() - t0 < 200000 do end
  print("callback end")
end)
sk:connect((sv:getaddr()), "127.0.0.1")
"#,
        &[],
    );
    assert_eq!(r.status, 0, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"callback end"), "{r:?}");
    let mut rest = lines[1..].to_vec();
    rest.sort();
    assert_eq!(rest, ["receive\tx", "task", "timer"], "{r:?}");
}

/// the simulator's own messages (here a PANIC and the reset it causes) go to stderr, each line
/// prefixed, and nothing of them reaches the device's output on stdout.
#[test]
fn a_panic_is_reported_on_stderr_with_the_prefix_and_never_on_stdout() {
    let r = run_lua(
        r#"
local sv = net.createServer()
sv:listen(0, "127.0.0.1", function(c) error("boom") end)
local sk = net.createConnection()
sk:connect((sv:getaddr()), "127.0.0.1")
print("armed")
"#,
        &[],
    );
    assert_eq!(r.status, 4, "{r:?}");
    assert_eq!(r.stdout, "armed\n");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert!(
        lines.contains(
            &"nodemcu-sim: PANIC: unprotected error in call to Lua API (init.lua:3: boom)"
        ),
        "{r:?}"
    );
    assert!(
        lines.iter().all(|l| l.starts_with("nodemcu-sim: ")),
        "{r:?}"
    );
}

/// an error in a wifi callback goes through `node.setonerror` as a traceback string, and the
/// default handler resets the device.
#[test]
fn wifi_callback_errors_go_through_setonerror() {
    let script = |handler: &str| {
        format!(
            "{handler}\n\
             wifi.setmode(wifi.STATION)\n\
             wifi.eventmon.register(wifi.eventmon.STA_CONNECTED, function(T) error('in wifi') end)\n\
             wifi.sta.config({{ssid = 'home', pwd = 'secret'}})\n"
        )
    };
    let handled = run_lua(
        &script("node.setonerror(function(s) print('handler', type(s)) print(s) end)"),
        &["--virtual-time"],
    );
    assert_eq!(handled.status, 0, "{handled:?}");
    assert!(
        handled
            .stdout
            .starts_with("handler\tstring\ninit.lua:3: in wifi\nstack traceback:\n"),
        "{handled:?}"
    );
    let default = run_lua(&script("-- default handler"), &["--virtual-time"]);
    assert_eq!(default.status, 3, "{default:?}");
    assert!(
        default.stdout.starts_with("init.lua:3: in wifi\n"),
        "{default:?}"
    );
    assert!(
        default
            .stderr
            .contains("nodemcu-sim: device reset: unhandled error"),
        "{default:?}"
    );
}

/// the 2015 idle timeout closes a client that *sends nothing* for `t` seconds: a client that
/// keeps sending more often than that stays connected past `t`, and is closed once it goes quiet.
#[test]
fn a_client_that_keeps_sending_outlives_the_idle_timeout() {
    let sim = crate::tcp::Sim::start(
        r#"
local sv = net.createServer(net.TCP, 1)
sv:listen(0, function(c)
  local n = 0
  c:on("receive", function(s, d) n = n + #d end)
  c:on("disconnection", function(s, err) print("disconnection", err, n) sv:close() end)
end)
print("port", (sv:getaddr()))
"#,
        &[],
    );
    let mut c = crate::tcp::connect(sim.port());
    // Five bytes over 1.6 s, 400 ms apart: never 1 s without one.
    for i in 0..5 {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(400));
        }
        c.write_all(b"a")
            .expect("the server closed an active client");
    }
    assert_eq!(crate::tcp::read_all(&mut c), b"", "closed once quiet");
    assert_eq!(sim.line(), "disconnection\t-8\t5");
    assert_eq!(sim.wait(), 0);
}

/// the profile table's rows for libraries, the methods only some chips have and the
/// `net.dns.resolve` callback's arguments, for all three targets in one script.
#[test]
fn each_target_profile_has_its_libraries_methods_and_resolve_arguments() {
    let script = r#"
local sk, u = net.createConnection(), net.createUDPSocket()
print(io ~= nil, os ~= nil, sk.hold ~= nil, sk.unhold ~= nil, sk.ttl ~= nil, u.ttl ~= nil,
  net.ifinfo ~= nil)
net.dns.resolve("127.0.0.1", function(a, b) print("resolve", a, b) end)
"#;
    for (target, want) in [
        (
            "esp8266",
            "false\tfalse\ttrue\ttrue\ttrue\ttrue\ttrue\nresolve\tnil\t127.0.0.1\n",
        ),
        (
            "esp32",
            "false\tfalse\tfalse\tfalse\tfalse\tfalse\tfalse\nresolve\t127.0.0.1\tnil\n",
        ),
        (
            "host",
            "true\ttrue\ttrue\ttrue\ttrue\ttrue\ttrue\nresolve\tnil\t127.0.0.1\n",
        ),
    ] {
        let r = run_lua(script, &["--target", target]);
        assert_eq!((r.status, r.stdout.as_str()), (0, want), "{target}: {r:?}");
    }
}

/// `net.createServer(net.TCP, t)` takes `t` as the timeout (not the current firmware's quirk,
/// where `net.TCP` itself, 1, would be the timeout), and one number other than 1 or 2 is the
/// current form's timeout. Only lower bounds on the times: load can only make them later.
#[test]
fn both_create_server_forms_take_their_idle_timeout_from_the_right_argument() {
    let sim = crate::tcp::Sim::start(
        r#"
local function serve(tag, sv)
  sv:listen(0, "127.0.0.1", function(c)
    local t0 = tmr.now()
    c:on("disconnection", function(s, err)
      print(tag, err, math.floor((tmr.now() - t0) / 100000))
      sv:close()
    end)
  end)
  return (sv:getaddr())
end
print("port", serve("legacy", net.createServer(net.TCP, 2)))
print("port", serve("current", net.createServer(3)))
"#,
        &[],
    );
    let (legacy, current) = (sim.port(), sim.port());
    let mut a = crate::tcp::connect(legacy);
    let mut b = crate::tcp::connect(current);
    assert_eq!(crate::tcp::read_all(&mut a), b"");
    assert_eq!(crate::tcp::read_all(&mut b), b"");
    let mut got: Vec<(String, i64)> = [sim.line(), sim.line()]
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "{l}");
            assert_eq!(f[1], "-8", "{l}");
            (f[0].to_string(), f[2].parse().unwrap())
        })
        .collect();
    got.sort();
    assert_eq!(got[0].0, "current");
    assert!(
        got[0].1 >= 29,
        "createServer(3) closed after {} ds",
        got[0].1
    );
    assert_eq!(got[1].0, "legacy");
    assert!(
        got[1].1 >= 19,
        "createServer(net.TCP, 2) closed after {} ds",
        got[1].1
    );
    assert_eq!(sim.wait(), 0);
}

/// The seed's `net.dns` examples as written: a socket dropped right after `dns()` (and collected)
/// still gets its answer, `resolve` passes `(sk, ip)`, and the servers set are the ones read back.
#[test]
fn the_seed_dns_examples_run_as_written() {
    let r = run_lua(
        r#"
sk = net.createConnection(net.TCP, 0)
sk:dns("www.nodemcu.com", function(conn, ip) print(ip) end)
sk = nil
collectgarbage() collectgarbage()
net.dns.resolve("www.google.com", function(sk, ip)
    if (ip == nil) then print("DNS fail!") else print(ip) end
end)
net.dns.setdnsserver("8.8.8.8", 0)
net.dns.setdnsserver("192.168.1.252", 1)
print(net.dns.getdnsserver(0)) -- 8.8.8.8
print(net.dns.getdnsserver(1)) -- 192.168.1.252
"#,
        &[
            "--resolve",
            "www.nodemcu.com=127.0.0.2",
            "--resolve",
            "www.google.com=127.0.0.3",
        ],
    );
    assert_eq!(r.status, 0, "{r:?}");
    let mut lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[..2], ["8.8.8.8", "192.168.1.252"], "{r:?}");
    lines.sort();
    assert_eq!(
        lines,
        ["127.0.0.2", "127.0.0.3", "192.168.1.252", "8.8.8.8"],
        "{r:?}"
    );
}

/// Nothing a script does may crash the simulator: every function of every module and every
/// method of every handle kind, called with thousands of combinations of odd arguments (wrong
/// types, NaN, infinities, huge and negative numbers, long strings, bad addresses), raises Lua
/// errors or works, and the run ends normally. Names resolve through a closed loopback port, so
/// nothing leaves the machine; the host profile keeps the heap limit out of the way.
#[test]
fn odd_arguments_to_every_function_never_crash_the_simulator() {
    let dns_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let r = run_lua(
        r#"
local skip = {delay = 1, restart = 1, dsleep = 1, format = 1, deepsleep = 1, sleep = 1,
  output = 1, input = 1, setonerror = 1, softwd = 1, write = 1, setpartitiontable = 1}
local vals = {nil, 0, -1, 1, 2, 65536, 2^31, -2^31, 2^53, 1/0, -1/0, 0/0, "", "x", "127.0.0.1",
  "0.0.0.0", "999.1.1.1", "::1", ("z"):rep(5000), {}, true, function() end}
local nv, count = 22, 0
local function hammer(f, self)
  for i = 1, nv do
    for j = 1, nv, 3 do
      count = count + 1
      if self then pcall(f, self, vals[i], vals[j], vals[(i + j) % nv + 1])
      else pcall(f, vals[i], vals[j], vals[(i * j) % nv + 1]) end
    end
  end
end
for _, m in ipairs({"net", "tmr", "file", "node", "wifi", "tls", "uart", "bit", "pipe"}) do
  for k, v in pairs(_G[m] or {}) do
    if type(v) == "function" and not skip[k] then hammer(v) end
    if type(v) == "table" then
      for k2, v2 in pairs(v) do
        if type(v2) == "function" and not skip[k2] then hammer(v2) end
      end
    end
  end
end
local objs = {}
for _, make in ipairs({net.createServer, net.createConnection, net.createUDPSocket,
    function() return net.createConnection(net.UDP, 0) end, tls.createConnection, tmr.create}) do
  local ok, o = pcall(make)
  if ok then objs[#objs + 1] = o end
end
for _, o in ipairs(objs) do
  for _, name in ipairs({"listen", "connect", "send", "on", "close", "dns", "hold", "unhold",
      "ttl", "getpeer", "getaddr", "alarm", "register", "start", "stop", "unregister",
      "interval", "state"}) do
    local ok, f = pcall(function() return o[name] end)
    if ok and type(f) == "function" then hammer(f, o) end
  end
end
print("done", count > 10000)
"#,
        &[
            "--target",
            "host",
            "--dns",
            "127.0.0.1",
            "--dns-port",
            &dns_port,
        ],
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(r.stdout.ends_with("done\ttrue\n"), "{}", r.stdout);
}

#[test]
fn the_seed_server_close_example_runs_as_written() {
    // net-module-seed.md, net.server:close(): a server closed without ever listening.
    let r = run_lua(
        "sv = net.createServer(net.TCP, 30)\nsv:close()\nprint(sv:getaddr())\n\
         sv:listen(0, '127.0.0.1', function() end)\nprint(sv:getaddr() > 0)\nsv:close()\nsv:close()\nprint('closed')\n",
        &[],
    );
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (0, "nil\tnil\ntrue\nclosed\n"),
        "{}",
        r.stderr
    );
}
