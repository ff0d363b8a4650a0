//! net over UDP: round trips in both API generations against loopback peers written in
//! Rust, datagram boundaries, the ESP8266 limits, multicast, and the firmware's argument errors.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{BIN, Flash, run_lua, wait};

const ECHO: &str = include_str!("../../fixtures/udp/echo.lua");
const CLIENT: &str = include_str!("../../fixtures/udp/client.lua");

/// A loopback UDP socket for the Rust side, with a read timeout so no test can hang.
fn peer() -> (UdpSocket, u16) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let port = s.local_addr().unwrap().port();
    (s, port)
}

fn recv(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 65_536];
    let (n, from) = s.recv_from(&mut buf).expect("a datagram within 10 s");
    buf.truncate(n);
    (buf, from)
}

/// A device running in the background whose stdout is read line by line as it comes.
struct Running {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    _flash: Flash,
}

impl Running {
    fn start(flash: Flash, script: &str, args: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .arg("run")
            .arg(flash.file(script))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nodemcu-sim");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Running {
            child,
            lines,
            _flash: flash,
        }
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("a line of device output within 10 s")
    }

    /// Waits for the exit status; returns it with the rest of stdout and all of stderr.
    fn finish(mut self) -> (i32, String, String) {
        let status = wait(&mut self.child, Duration::from_secs(20));
        let mut err = String::new();
        std::io::Read::read_to_string(&mut self.child.stderr.take().unwrap(), &mut err).unwrap();
        // The reader thread may still be forwarding the last lines: wait for it to reach EOF
        // (the child has exited) instead of taking only what already arrived.
        let rest: Vec<String> = self.lines.iter().collect();
        (status, rest.join("\n"), err)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The echo fixture on an ephemeral host port (`--port-map 5000=0`); returns it and that port.
fn echo_device(args: &[&str]) -> (Running, u16) {
    let mut all = vec!["--port-map", "5000=0"];
    all.extend_from_slice(args);
    let dev = Running::start(Flash::new(&[("echo.lua", ECHO)]), "echo.lua", &all);
    let first = dev.line();
    let port = first
        .strip_prefix("udp echo listening on 0.0.0.0:")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap();
    (dev, port)
}

#[test]
fn echo_fixture_returns_each_datagram_whole_and_ends_on_quit() {
    let (dev, port) = echo_device(&[]);
    let (s, _) = peer();
    let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    // Sent back to back, so only datagram boundaries keep them apart.
    let msgs: Vec<Vec<u8>> = vec![
        b"a".to_vec(),
        b"two words".to_vec(),
        vec![b'x'; 1000],
        vec![0u8, 255, 10, 13, 0],
        vec![b'm'; 1472],
    ];
    for m in &msgs {
        s.send_to(m, to).unwrap();
    }
    for m in &msgs {
        let (got, from) = recv(&s);
        assert_eq!(&got, m);
        assert_eq!(from, SocketAddr::V4(to));
    }
    // One byte over what an ESP8266 can receive unfragmented: dropped, the next one still arrives.
    s.send_to(&[b'z'; 1473], to).unwrap();
    s.send_to(b"after", to).unwrap();
    assert_eq!(recv(&s).0, b"after");
    s.send_to(b"quit", to).unwrap();
    assert_eq!(recv(&s).0, b"quit");
    let (status, _, err) = dev.finish();
    assert_eq!(status, 0, "{err}");
    assert!(
        err.contains("dropped a 1473-byte datagram: an ESP8266 receives at most 1472 bytes"),
        "{err}"
    );
}

#[test]
fn the_host_profile_has_no_datagram_limit() {
    let (dev, port) = echo_device(&["--target", "host"]);
    let (s, _) = peer();
    let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let big = vec![b'b'; 8000];
    s.send_to(&big, to).unwrap();
    assert_eq!(recv(&s).0, big);
    s.send_to(b"quit", to).unwrap();
    assert_eq!(recv(&s).0, b"quit");
    assert_eq!(dev.finish().0, 0);
}

/// A Rust echo peer for `n` datagrams; returns its port and a handle yielding what it received.
fn rust_echo(n: usize) -> (u16, std::thread::JoinHandle<Vec<Vec<u8>>>) {
    let (s, port) = peer();
    let h = std::thread::spawn(move || {
        (0..n)
            .map(|_| {
                let (data, from) = recv(&s);
                s.send_to(&data, from).unwrap();
                data
            })
            .collect()
    });
    (port, h)
}

#[test]
fn client_fixture_in_the_2015_style_talks_to_a_rust_peer() {
    let (port, peer) = rust_echo(3);
    let flash = Flash::new(&[
        ("init.lua", CLIENT),
        (
            "peer.lua",
            &format!("return {{ host = '127.0.0.1', port = {port} }}"),
        ),
    ]);
    let r = flash.run("init.lua", &[]);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "reply: one\nreply: two two\nreply: three three three\n"
    );
    let seen = peer.join().unwrap();
    assert_eq!(seen, vec![&b"one"[..], b"two two", b"three three three"]);
}

#[test]
fn the_two_fixtures_talk_to_each_other() {
    let (echo, port) = echo_device(&[]);
    let flash = Flash::new(&[
        ("init.lua", CLIENT),
        (
            "peer.lua",
            &format!("return {{ host = '127.0.0.1', port = {port} }}"),
        ),
    ]);
    let r = flash.run("init.lua", &[]);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "reply: one\nreply: two two\nreply: three three three\n"
    );
    let (s, _) = peer();
    s.send_to(b"quit", ("127.0.0.1", port)).unwrap();
    assert_eq!(recv(&s).0, b"quit");
    assert_eq!(echo.finish().0, 0);
}

#[test]
fn current_api_send_fires_sent_inside_send_and_receive_gets_port_and_ip() {
    let (s, port) = peer();
    let script = format!(
        r#"
        local u = net.createUDPSocket()
        print("addr before", u:getaddr())
        u:on("sent", function(sk) print("sent", sk == u) end)
        u:on("receive", function(sk, data, port, ip)
          print("receive", sk == u, data, port == {port}, ip)
          sk:close()
          print("addr after close", sk:getaddr())
        end)
        print("before")
        u:send({port}, "127.0.0.1", "ping")
        print("after", u:getaddr() ~= nil, select(2, u:getaddr()), u:ttl())
        "#
    );
    let h = std::thread::spawn(move || {
        let (data, from) = recv(&s);
        s.send_to(b"pong", from).unwrap();
        data
    });
    let r = run_lua(&script, &[]);
    assert_eq!(h.join().unwrap(), b"ping");
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "addr before\tnil\tnil\nbefore\nsent\ttrue\nafter\ttrue\t0.0.0.0\t255\n\
         receive\ttrue\tpong\ttrue\t127.0.0.1\naddr after close\tnil\tnil\n"
    );
}

#[test]
fn create_server_udp_listens_and_replies_with_send() {
    let (s, _) = peer();
    let r = Running::start(
        Flash::new(&[(
            "init.lua",
            r#"
            local srv = net.createServer(net.UDP)
            srv:on("receive", function(sk, data, port, ip)
              print("got " .. data)
              sk:send(port, ip, data:upper(), function() print("replied") sk:close() end)
            end)
            srv:listen(7000)
            print((srv:getaddr()))
            "#,
        )]),
        "init.lua",
        &["--port-map", "7000=0"],
    );
    let port: u16 = r.line().parse().unwrap();
    s.send_to(b"hello", ("127.0.0.1", port)).unwrap();
    assert_eq!(recv(&s).0, b"HELLO");
    let (status, rest, err) = r.finish();
    assert_eq!(status, 0, "{err}");
    assert_eq!(rest, "got hello\nreplied");
}

#[test]
fn esp8266_has_four_udp_sockets_and_a_closed_one_is_reusable() {
    let script = r#"
        local s = {}
        for i = 1, 5 do
          s[i] = net.createUDPSocket()
          print(i, pcall(s[i].listen, s[i], 0))
        end
        s[1]:close()
        print("again", pcall(s[5].listen, s[5], 0))
        print("send", pcall(s[1].send, s[1], 9, "127.0.0.1", "x"))
        for i = 2, 5 do s[i]:close() end
        "#;
    let r = run_lua(script, &[]);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "1\ttrue\n2\ttrue\n3\ttrue\n4\ttrue\n5\tfalse\tcannot allocate PCB\n\
         again\ttrue\nsend\tfalse\tcannot allocate PCB\n"
    );
    let r = run_lua(
        "for i = 1, 5 do local u = net.createUDPSocket() u:listen(0) print(i) u:close() end",
        &["--target", "host"],
    );
    assert_eq!(r.stdout, "1\n2\n3\n4\n5\n", "{r:?}");
}

#[test]
fn esp8266_does_not_send_datagrams_over_1472_bytes() {
    let (s, port) = peer();
    let script = format!(
        r#"
        local u = net.createUDPSocket()
        u:send({port}, "127.0.0.1", string.rep("a", 1473), function() print("sent") end)
        u:send({port}, "127.0.0.1", string.rep("b", 1472))
        u:close()
        "#
    );
    let r = run_lua(&script, &[]);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(r.stdout, "sent\nsent\n");
    assert!(
        r.stderr.contains("a 1473-byte datagram was not sent"),
        "{r:?}"
    );
    assert_eq!(recv(&s).0, vec![b'b'; 1472]);
}

#[test]
fn ttl_is_kept_in_a_byte_and_esp32_has_none() {
    let r = run_lua(
        "local u = net.createUDPSocket() u:listen(0)\n\
         print(u:ttl(), u:ttl(64), u:ttl(), u:ttl(300), u:ttl())\n\
         u:close()",
        &[],
    );
    assert_eq!(r.stdout, "255\t64\t64\t300\t44\n", "{r:?}");
    let r = run_lua(
        "local u = net.createUDPSocket() print(u.ttl, net.ifinfo, u.getaddr ~= nil)",
        &["--target", "esp32"],
    );
    assert_eq!(r.stdout, "nil\tnil\ttrue\n", "{r:?}");
}

#[test]
fn multicast_join_delivers_group_datagrams_until_leave() {
    let group = Ipv4Addr::new(239, 255, 42, 99);
    let r = Running::start(
        Flash::new(&[(
            "init.lua",
            r#"
            local u = net.createUDPSocket()
            u:listen(6000)
            net.multicastJoin("", "239.255.42.99")
            u:on("receive", function(sk, data)
              if data == "group 1" then net.multicastLeave("any", "239.255.42.99") end
              print("got " .. data)
              if data == "direct" then sk:close() end
            end)
            print((u:getaddr()))
            "#,
        )]),
        "init.lua",
        &["--port-map", "6000=0"],
    );
    let port: u16 = r.line().parse().unwrap();
    let sender = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    sender.set_multicast_if_v4(&Ipv4Addr::LOCALHOST).unwrap();
    let to = socket2::SockAddr::from(SocketAddrV4::new(group, port));
    sender.send_to(b"group 1", &to).unwrap();
    assert_eq!(r.line(), "got group 1");
    sender.send_to(b"group 2", &to).unwrap();
    let (s, _) = peer();
    s.send_to(b"direct", ("127.0.0.1", port)).unwrap();
    let (status, rest, err) = r.finish();
    assert_eq!(status, 0, "{err}");
    assert_eq!(rest, "got direct");
}

#[test]
fn bad_arguments_raise_the_firmware_errors_at_the_caller() {
    let r = run_lua(
        "local u = net.createUDPSocket()\n\
         local function e(f) local ok, m = pcall(f) print(m) end\n\
         e(function() u:close() end)\n\
         e(function() u:listen('x') end)\n\
         e(function() u:listen(0, '1.2.3') end)\n\
         e(function() u:send(0, '127.0.0.1', 'x') end)\n\
         e(function() u:send(70000 - 4464, '127.0.0.1', 'x') end)\n\
         e(function() u:send(9, 'host.example', 'x') end)\n\
         e(function() u:send(9, '127.0.0.1', '') end)\n\
         e(function() u:send('a', '127.0.0.1', 'x') end)\n\
         e(function() u:send(9, nil, 'x') end)\n\
         e(function() u:send(9, '127.0.0.1') end)\n\
         e(function() u:on('connection', print) end)\n\
         e(function() u:on('receive', 'nope') end)\n\
         e(function() u:on() end)\n\
         e(function() u:dns('example.com') end)\n\
         e(function() u:dns('', print) end)\n\
         e(function() u:ttl() end)\n\
         e(function() u.listen(nil) end)\n\
         e(function() u.listen(tmr.create()) end)\n\
         e(function() u:connect(9, '127.0.0.1') end)\n\
         e(function() net.multicastJoin(nil, '239.1.1.1') end)\n\
         e(function() net.multicastJoin('any', nil) end)\n\
         e(function() net.multicastJoin('1.2.3', '239.1.1.1') end)\n\
         e(function() net.multicastLeave('any', '239.100.100.1000') end)\n\
         e(function() net.ifinfo('x') end)\n\
         print(net.ifinfo(2), select('#', net.ifinfo(2)))\n\
         local i = net.ifinfo()\n\
         print(i.ip, i.netmask, i.gateway, i.hwaddr:byte(1, -1))\n\
         local l = net.createConnection(net.UDP, 0)\n\
         e(function() l:send('x') end)\n\
         e(function() l:connect(0, '127.0.0.1') end)\n\
         e(function() l:connect('p') end)\n\
         e(function() l:send(string.rep('x', 1461)) end)\n",
        &[],
    );
    assert_eq!(r.status, 0, "{r:?}");
    // Lua's own message for calling a missing method differs between 5.1 and 5.3.
    let no_connect = if cfg!(feature = "lua53") {
        "attempt to call a nil value (method 'connect')"
    } else {
        "attempt to call method 'connect' (a nil value)"
    };
    let expected = "\
init.lua:3: not connected
init.lua:4: invalid IP address
init.lua:5: invalid IP address
init.lua:6: need port
init.lua:7: need port
init.lua:8: invalid IP address
init.lua:9: no data to send
init.lua:10: bad argument #1 to 'send' (number expected, got string)
init.lua:11: bad argument #2 to 'send' (string expected, got nil)
init.lua:12: bad argument #3 to 'send' (string expected, got no value)
init.lua:13: invalid callback name
init.lua:14: invalid callback function
init.lua:15: bad argument #1 to 'on' (string expected, got no value)
init.lua:16: no callback specified
init.lua:17: illegal argument
init.lua:18: socket is not open/bound yet
init.lua:19: invalid user data
init.lua:20: bad argument #1 to 'listen' (net.udpsocket expected, got userdata)
init.lua:21: NO_CONNECT
init.lua:22: wrong arg type
init.lua:23: wrong arg type
init.lua:24: invalid if ip
init.lua:25: invalid multicast ip
init.lua:26: bad argument #1 to 'ifinfo' (number expected, got string)
nil\t0
127.0.0.1\t255.0.0.0\t127.0.0.1\t92\t207\t127\t192\t255\t238
init.lua:31: not connected
init.lua:32: specify port
init.lua:33: bad argument #1 to 'connect' (number expected, got string)
init.lua:34: need <1460 payload
"
    .replace("NO_CONNECT", no_connect);
    assert_eq!(r.stdout, expected);
}

#[test]
fn errors_in_callbacks_panic_on_esp8266_and_sent_errors_reach_the_sender() {
    let script = "local u = net.createUDPSocket()\n\
         u:listen(0)\n\
         local port = u:getaddr()\n\
         node.setonerror(function(e) print('onerror', e:match('^[^\\n]*')) u:close() end)\n\
         u:on('receive', function() error('boom') end)\n\
         u:on('sent', function() error('in sent') end)\n\
         print(pcall(u.send, u, port, '127.0.0.1', 'x'))\n";
    let r = run_lua(script, &[]);
    assert_eq!(r.status, 4, "{r:?}");
    assert_eq!(r.stdout, "false\tinit.lua:6: in sent\n");
    assert!(
        r.stderr
            .contains("PANIC: unprotected error in call to Lua API (init.lua:5: boom)"),
        "{r:?}"
    );
    let r = run_lua(script, &["--target", "host"]);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "false\tinit.lua:6: in sent\nonerror\tinit.lua:5: boom\n"
    );
}

#[test]
fn loopback_sockets_stay_on_loopback_and_foreign_addresses_fall_back_to_it() {
    let r = run_lua(
        "local u = net.createUDPSocket()\n\
         u:listen(0)\n\
         print(pcall(u.send, u, 9, '192.0.2.1', 'x'))\n\
         u:close()\n\
         u:listen(0, '192.168.4.1')\n\
         print(select(2, u:getaddr()))\n\
         u:close()\n\
         local c = net.createUDPSocket()\n\
         c:send(9, '127.0.0.1', 'to this host')\n\
         print(pcall(c.send, c, 9, '192.0.2.1', 'elsewhere'))\n\
         print(select(2, c:getaddr()))\n\
         c:close()\n",
        &[],
    );
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "false\trouting problem\n192.168.4.1\nfalse\trouting problem\n0.0.0.0\n"
    );
    assert!(
        r.stderr.contains("run with --expose to reach other hosts"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains(
            "the host has no address 192.168.4.1; UDP sockets bound to it listen on 127.0.0.1"
        ),
        "{r:?}"
    );
}
