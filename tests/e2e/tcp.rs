//! TCP in `net`: device scripts against real Rust peers on loopback, on ephemeral ports.
//!
//! This file has the helper for a simulator that keeps running while a test talks to it, and the
//! tests of events, callback arguments and lifetimes. `tcp/errors.rs` covers misuse and bad
//! arguments; `tcp/flow.rs` data (echo, chunk sizes, send limits, hold, inbound limit) and the
//! fixtures; `tcp/host.rs` the host side (port options, descriptors and memory across many
//! connections); `tcp/gen15.rs` the sockets of `--firmware 1.5`.

mod errors;
mod flow;
mod gen15;
mod host;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{BIN, Flash, run_lua};

/// A simulator run in the background: its stdout arrives line by line.
pub struct Sim {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    _flash: Option<Flash>,
}

impl Sim {
    /// Runs `script` as init.lua of a fresh flash.
    pub fn start(script: &str, args: &[&str]) -> Sim {
        let flash = Flash::new(&[("init.lua", script)]);
        let mut sim = Sim::start_path(&flash.file("init.lua"), args);
        sim._flash = Some(flash);
        sim
    }

    pub fn start_path(path: &std::path::Path, args: &[&str]) -> Sim {
        let mut child = Command::new(BIN)
            .arg("run")
            .arg(path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nodemcu-sim");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (mut err, e2) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                e2.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Sim {
            child,
            lines,
            stderr,
            _flash: None,
        }
    }

    /// The next line the device printed (fails the test after 30 s).
    pub fn line(&self) -> String {
        match self.lines.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(_) => panic!("no output from the device; stderr: {}", self.stderr()),
        }
    }

    /// The next line, which must start with `prefix`; the rest after the tab.
    pub fn expect(&self, prefix: &str) -> String {
        let l = self.line();
        assert!(l.starts_with(prefix), "expected {prefix:?}, got {l:?}");
        l[prefix.len()..].trim_start_matches('\t').to_string()
    }

    /// A line if one comes within `d`.
    pub fn line_within(&self, d: Duration) -> Option<String> {
        self.lines.recv_timeout(d).ok()
    }

    /// The port a script announced with `print("port", port)`.
    pub fn port(&self) -> u16 {
        self.expect("port").parse().expect("port number")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the run to end by itself: its exit status.
    pub fn wait(mut self) -> i32 {
        crate::support::wait(&mut self.child, Duration::from_secs(60))
    }

    /// Waits for the device's PANIC: exit status 4, and `msg` in its line.
    pub fn expect_panic(self, msg: &str) {
        let err = self.stderr.clone();
        assert_eq!(self.wait(), 4, "PANIC exit status");
        let err = err.lock().unwrap().clone();
        let line = format!("PANIC: unprotected error in call to Lua API ({msg})");
        assert!(err.contains(&line), "{err}");
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on.
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the device");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Reads until the peer closes.
pub fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    s.read_to_end(&mut v).expect("read to end");
    v
}

#[test]
fn client_events_come_in_order_with_the_firmware_arguments() {
    let srv = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = srv.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = srv.accept().unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(b"pong:").unwrap();
        s.write_all(&buf).unwrap();
        // Then the peer closes: "disconnection" with 0.
    });
    let r = run_lua(
        &format!(
            r#"
        local sk = net.createConnection(net.TCP, 0)
        print("type", type(sk), sk:getpeer())
        sk:on("dns", function(s, ip) print("dns", s == sk, ip) end)
        sk:on("connection", function(s)
          print("connection", s == sk, select('#', s))
          local lport, lip = s:getaddr()
          print("getaddr", type(lport), lip)
          print("getpeer", s:getpeer())
          s:send("hello", function(x) print("sent fn", x == sk) end)
        end)
        sk:on("sent", function() print("never: replaced by send's function") end)
        sk:on("receive", function(s, data) print("receive", s == sk, data) end)
        sk:on("disconnection", function(s, err) print("disconnection", s == sk, err) end)
        sk:on("reconnection", function(s, err) print("reconnection", err) end)
        sk:connect({port}, "127.0.0.1")
        print("connect returned")
        "#
        ),
        &[],
    );
    peer.join().unwrap();
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        format!(
            "type\tuserdata\tnil\tnil\ndns\ttrue\t127.0.0.1\nconnect returned\n\
             connection\ttrue\t1\ngetaddr\tnumber\t127.0.0.1\ngetpeer\t{port}\t127.0.0.1\n\
             sent fn\ttrue\nreceive\ttrue\tpong:hello\ndisconnection\ttrue\t0\n"
        )
    );
}

#[test]
fn refused_connection_is_minus_nine_to_reconnection_if_registered_else_disconnection() {
    let port = closed_port();
    let r = run_lua(
        &format!(
            r#"
        local a = net.createConnection()
        a:on("reconnection", function(s, err) print("a reconnection", err) end)
        a:on("disconnection", function(s, err) print("a disconnection", err) end)
        a:on("connection", function() print("never") end)
        a:connect({port}, "127.0.0.1")
        local b = net.createConnection()
        b:on("disconnection", function(s, err)
          print("b disconnection", err, s:getpeer())
          print(pcall(s.close, s))
          print(pcall(s.send, s, "x"))
        end)
        b:connect({port}, "127.0.0.1")
        "#
        ),
        &[],
    );
    assert_eq!(r.status, 0, "{r:?}");
    let mut lines: Vec<_> = r.stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "a reconnection\t-9",
            "b disconnection\t-9\tnil\tnil",
            "false\tnot connected",
            "false\tnot connected",
        ]
    );
}

#[test]
fn accepted_socket_gets_listen_fn_then_connection_then_receive_and_remote_close() {
    let sim = Sim::start(
        r#"
        local sv = net.createServer(net.TCP, 30)
        sv:listen(0, "127.0.0.1", function(c)
          print("accept", c:getpeer() ~= nil, (c:getaddr()) == (sv:getaddr()))
          c:on("connection", function(s) print("connection", s == c) end)
          c:on("receive", function(s, d) print("receive", d); s:send("got " .. d) end)
          c:on("sent", function(s) print("sent") end)
          c:on("disconnection", function(s, err) print("disconnection", err); sv:close() end)
        end)
        print("port", (sv:getaddr()))
        "#,
        &[],
    );
    let port = sim.port();
    let mut c = connect(port);
    assert_eq!(sim.line(), "accept\ttrue\ttrue");
    assert_eq!(sim.line(), "connection\ttrue");
    c.write_all(b"ping").unwrap();
    assert_eq!(sim.line(), "receive\tping");
    assert_eq!(sim.line(), "sent");
    let mut buf = [0u8; 8];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"got ping");
    drop(c);
    assert_eq!(sim.line(), "disconnection\t0");
    assert_eq!(sim.wait(), 0, "the run ends once the server is closed");
}

#[test]
fn local_close_fires_nothing_and_the_peer_sees_the_queued_data_then_eof() {
    let sim = Sim::start(
        r#"
        local sv = net.createServer()
        sv:listen(0, function(c)
          c:on("disconnection", function() print("never") end)
          c:on("sent", function() print("never sent") end)
          c:send("bye")
          c:close()
          print("closed", pcall(c.close, c))
          sv:close()
        end)
        print("port", (sv:getaddr()))
        "#,
        &[],
    );
    let mut c = connect(sim.port());
    assert_eq!(read_all(&mut c), b"bye");
    assert_eq!(sim.line(), "closed\tfalse\tnot connected");
    assert_eq!(sim.wait(), 0);
}

/// `on(event, fn)` replaces the event's callback; `on(event, nil)` and `on(event)` remove it.
#[test]
fn on_replaces_a_callback_and_nil_or_no_function_removes_it() {
    let sim = Sim::start(
        r#"
        local sv = net.createServer(net.TCP, 30)
        sv:listen(0, function(c)
          c:on("receive", function() print("replaced") end)
          c:on("receive", function(s, d) print("receive", d); s:send("ok") end)
          c:on("sent", function() print("removed by nil") end)
          c:on("sent", nil)
          c:on("disconnection", function() print("removed by no function") end)
          c:on("disconnection")
          coroutine.wrap(function() c:on("connection", function() print("connection") end) end)()
          sv:close()
        end)
        print("port", (sv:getaddr()))
        "#,
        &[],
    );
    let mut c = connect(sim.port());
    assert_eq!(sim.line(), "connection");
    c.write_all(b"hi").unwrap();
    let mut ok = [0u8; 2];
    c.read_exact(&mut ok).unwrap();
    drop(c);
    assert_eq!(sim.line(), "receive\thi");
    // The run ends with the connection: nothing else is printed before the output closes.
    assert_eq!(sim.line_within(Duration::from_secs(30)), None);
    assert_eq!(sim.wait(), 0);
}

/// `send` and `close` called from a coroutine (another Lua thread than the loop's, which the fast
/// paths leave to the bindings), on the host profile (no send limit), with a number to send and a string just under and at the size sent without a copy: every byte
/// arrives in order, and the second `close` is refused as for any closed socket.
#[test]
fn send_and_close_work_from_a_coroutine_with_every_kind_of_data() {
    let sim = Sim::start(
        r#"
        local sv = net.createServer(net.TCP, 30)
        sv:listen(0, function(c)
          c:on("receive", function(s, d)
            coroutine.wrap(function()
              s:send("co:" .. d)
              s:send(42)
              s:send(string.rep("a", 16383))
              s:send(string.rep("b", 16384))
            end)()
          end)
          local n = 0
          c:on("sent", function(s)
            n = n + 1
            if n < 4 then return end
            coroutine.wrap(function()
              s:close()
              print("closed", pcall(s.close, s))
              sv:close()
            end)()
          end)
        end)
        print("port", (sv:getaddr()))
        "#,
        &["--target", "host"],
    );
    let mut c = connect(sim.port());
    c.write_all(b"hi").unwrap();
    let mut want = b"co:hi42".to_vec();
    want.extend(std::iter::repeat_n(b'a', 16383));
    want.extend(std::iter::repeat_n(b'b', 16384));
    assert!(read_all(&mut c) == want, "bytes differ");
    assert_eq!(sim.line(), "closed\tfalse\tnot connected");
    assert_eq!(sim.wait(), 0);
}

#[test]
fn idle_clients_of_a_server_are_closed_after_its_timeout() {
    let sim = Sim::start(
        r#"
        local sv = net.createServer(net.TCP, 1)
        sv:listen(0, function(c)
          local t0 = tmr.now()
          c:on("disconnection", function(s, err)
            print("disconnection", err, (tmr.now() - t0) >= 900000)
          end)
        end)
        print("port", (sv:getaddr()))
        "#,
        &[],
    );
    let mut c = connect(sim.port());
    let t0 = std::time::Instant::now();
    assert_eq!(read_all(&mut c), b"", "the server closes the idle client");
    assert!(t0.elapsed() >= Duration::from_millis(900));
    assert_eq!(sim.line(), "disconnection\t-8\ttrue");
}

#[test]
fn an_error_in_a_net_callback_is_a_panic_on_the_esp8266_and_goes_to_onerror_elsewhere() {
    let script = r#"
        local sv = net.createServer()
        sv:listen(0, function(c)
          c:on("receive", function(s, d)
            error("bad request: " .. d)
          end)
        end)
        print("port", (sv:getaddr()))
        "#;
    let sim = Sim::start(script, &[]);
    let mut c = connect(sim.port());
    c.write_all(b"x").unwrap();
    sim.expect_panic("init.lua:5: bad request: x");

    for target in ["host", "esp32"] {
        let sim = Sim::start(
            &format!(
                "node.setonerror(function(m) print('onerror', (m:match('^[^\\n]*'))) end)\n{script}"
            ),
            &["--target", target],
        );
        let mut c = connect(sim.port());
        c.write_all(b"y").unwrap();
        assert_eq!(
            sim.line(),
            "onerror\tinit.lua:6: bad request: y",
            "{target}"
        );
    }
}

#[test]
fn dns_is_synchronous_for_dotted_quads_and_names_resolve_through_the_host() {
    let srv = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = srv.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || drop(srv.accept().unwrap()));
    let r = run_lua(
        &format!(
            r#"
        local sk = net.createConnection()
        sk:dns("10.1.2.3", function(s, ip) print("dns", s == sk, ip) end)
        print("after dns")
        sk:on("dns", function(s, ip) print("dns again", ip) end)
        sk:on("connection", function(s) print("connected", s:getpeer()) end)
        sk:on("disconnection", function(s, err) print("disconnection", err) end)
        sk:connect({port}, "localhost")
        print("connect returned", sk:getpeer())
        print(pcall(sk.send, sk, "early"))
        "#
        ),
        &[],
    );
    peer.join().unwrap();
    assert_eq!(
        r.stdout,
        format!(
            "dns\ttrue\t10.1.2.3\nafter dns\nconnect returned\t{port}\t0.0.0.0\n\
             false\tnot connected\ndns again\t127.0.0.1\n\
             connected\t{port}\t127.0.0.1\ndisconnection\t0\n"
        ),
        "{r:?}"
    );
}

#[test]
fn sends_while_connecting_are_queued_and_only_the_2016_firmware_warns_of_consecutive_sends() {
    let srv = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = srv.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = srv.accept().unwrap();
        read_all(&mut s)
    });
    let r = run_lua(
        &format!(
            r#"
        local sk, n = net.createConnection(), 0
        sk:on("sent", function(s)
          n = n + 1
          print("sent", n)
          if n == 3 then s:close() end
        end)
        sk:connect({port}, "127.0.0.1")
        sk:send("one ")
        sk:send("two ")
        sk:send("three")
        "#
        ),
        &[],
    );
    assert_eq!(peer.join().unwrap(), b"one two three");
    assert_eq!(r.stdout, "sent\t1\nsent\t2\nsent\t3\n", "{r:?}");
    // Firmware from 2017 on queues such sends itself: no warning.
    assert!(!r.stderr.contains("send() called again"), "{}", r.stderr);
    // The 2016 firmware dropped them: the warning says so, once per socket.
    let srv = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = srv.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = srv.accept().unwrap();
        read_all(&mut s)
    });
    let old = run_lua(
        &format!(
            r#"
        local sk = net.createConnection(net.TCP, 0)
        sk:on("connection", function(s) s:send("a") s:send("b") s:send("c") end)
        sk:connect({port}, "127.0.0.1")
        tmr.create():alarm(200, tmr.ALARM_SINGLE, function() sk:close() end)
        "#
        ),
        &["--firmware", "1.5"],
    );
    assert_eq!(peer.join().unwrap(), b"abc");
    assert_eq!(
        old.stderr.matches("send() called again before").count(),
        1,
        "{old:?}"
    );
    let host = run_lua(
        "local sk = net.createConnection() sk:connect(1, '127.0.0.1') sk:send('a') sk:send('b') sk:close()",
        &["--target", "host"],
    );
    assert!(!host.stderr.contains("send() called again"), "{host:?}");
}

#[test]
fn a_closed_socket_whose_callbacks_capture_it_is_collected_and_can_be_reused() {
    let srv = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = srv.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        for _ in 0..3 {
            let (mut s, _) = srv.accept().unwrap();
            s.write_all(b"hi").unwrap();
        }
    });
    let r = run_lua(
        &format!(
            r#"
        local weak = setmetatable({{}}, {{__mode = "k"}})
        local function open(again)
          local sk = net.createConnection()
          weak[sk] = true
          sk:on("receive", function(s, d)
            print("receive", d, s == sk)
            sk:close()
            if again then sk:connect({port}, "127.0.0.1") end
          end)
          sk:connect({port}, "127.0.0.1")
        end
        open(false)
        tmr.create():alarm(300, tmr.ALARM_SINGLE, function()
          collectgarbage() collectgarbage()
          print("alive after close", next(weak) ~= nil)
        end)
        "#
        ),
        &[],
    );
    assert_eq!(
        r.stdout, "receive\thi\ttrue\nalive after close\tfalse\n",
        "{r:?}"
    );
    let r2 = run_lua(
        &format!(
            r#"
        local n = 0
        local sk = net.createConnection()
        sk:on("receive", function(s, d)
          n = n + 1
          print("receive", n, d)
          s:close()
          if n == 1 then s:connect({port}, "127.0.0.1") end
        end)
        sk:connect({port}, "127.0.0.1")
        sk = nil
        collectgarbage()
        "#
        ),
        &[],
    );
    peer.join().unwrap();
    assert_eq!(r2.stdout, "receive\t1\thi\nreceive\t2\thi\n", "{r2:?}");
}

#[test]
fn seed_api_calls_all_work() {
    let sim = Sim::start(
        r#"
        -- net-module-seed.md, as written in 2015
        sv = net.createServer(net.TCP, 30)
        sv:listen(0, function(c)
          c:on("receive", function(c, pl)
            print(pl:match("^[^\r]*"))
          end)
          c:send("hello world")
        end)
        print("port", (sv:getaddr()))
        sk = net.createConnection(net.TCP, 0)
        sk:on("receive", function(sck, c) print("client", c); sck:close(); sv:close() end)
        sk:on("connection", function(sck, c)
          sck:send("GET / HTTP/1.1\r\nHost: 192.168.0.66\r\n\r\n")
        end)
        sk:connect((sv:getaddr()), "127.0.0.1")
        "#,
        &[],
    );
    sim.port();
    let mut got = vec![sim.line(), sim.line()];
    got.sort();
    assert_eq!(got, ["GET / HTTP/1.1", "client\thello world"]);
    assert_eq!(sim.wait(), 0);
}

#[test]
fn connect_takes_a_connection_function_and_ttl_reads_and_sets_the_ip_ttl() {
    let srv = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = srv.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = srv.accept().unwrap();
        read_all(&mut s)
    });
    let r = run_lua(
        &format!(
            r#"
        local sk = net.createConnection()
        sk:on("connection", function() print("replaced: never") end)
        sk:connect({port}, "127.0.0.1", function(s)
          print("connected by connect's fn", s == sk)
          print("ttl", s:ttl(), s:ttl(64), s:ttl())
          s:send("bye", function(x) x:close() end)
        end)
        "#
        ),
        &[],
    );
    assert_eq!(peer.join().unwrap(), b"bye");
    assert_eq!(
        r.stdout, "connected by connect's fn\ttrue\nttl\t255\t64\t64\n",
        "{r:?}"
    );
}

#[test]
fn received_data_with_no_heap_left_is_a_panic_on_the_esp8266() {
    // The heap is filled to the last small block, then 1000 bytes arrive: their string cannot be
    // made even after a full collection, which on a board ends in the panic function.
    let sim = Sim::start(
        r#"
        local sv = net.createServer()
        hog = nil
        sv:listen(0, function(c)
          c:on("receive", function(s, d) print("received", #d) end)
          pcall(function() local i = 0 while true do i = i + 1 hog = {hog, ("h"):rep(40) .. i} end end)
        end)
        print("port", (sv:getaddr()))
        "#,
        &[],
    );
    let mut c = connect(sim.port());
    c.write_all(&[b'x'; 1000]).unwrap();
    // The string could not be made, so the callback never runs: nothing more on stdout.
    assert_eq!(sim.line_within(Duration::from_secs(20)), None);
    sim.expect_panic("not enough memory");
}

#[test]
fn a_reset_closes_a_connection_still_writing_a_large_send() {
    // The peer never reads, so most of the 8 MB is still queued (held from the Lua string) when
    // the device restarts; the connection must die with the boot, as on a board.
    let sim = Sim::start(
        r#"
        local sv = net.createServer(net.TCP, 30)
        sv:listen(0, function(c)
          c:on("receive", function(s)
            kept = s
            s:send(("x"):rep(8 * 1024 * 1024))
            tmr.create():alarm(200, tmr.ALARM_SINGLE, function() node.restart() end)
          end)
        end)
        print("port", (sv:getaddr()))
        "#,
        &["--target", "host", "--on-reset", "restart"],
    );
    let mut c = connect(sim.port());
    c.write_all(b"go").unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the connection outlived its device: {e}"),
        }
    }
}
