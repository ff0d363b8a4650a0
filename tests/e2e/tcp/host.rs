//! The host side of TCP: where servers bind (`--expose`, `--port-map`,
//! `--port-offset`), and descriptors and memory staying flat across thousands of connections.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use super::{Sim, closed_port, connect, read_all};

/// The local address of the listening TCP socket on `port`, from /proc/net/tcp ("0100007F" is
/// 127.0.0.1, "00000000" is 0.0.0.0).
fn listening_address(port: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (addr, p) = f.get(1)?.split_once(':')?;
        (u16::from_str_radix(p, 16).ok()? == port && f.get(3) == Some(&"0A")).then(|| addr.into())
    })
}

const LISTEN_ANY: &str = r#"
local sv = net.createServer()
sv:listen(0, function(c) c:send("hi") c:on("sent", function(s) s:close() end) end)
print("port", (sv:getaddr()))
print("getaddr", select(2, sv:getaddr()))
"#;

#[test]
fn servers_on_0_0_0_0_bind_loopback_unless_exposed() {
    let sim = Sim::start(LISTEN_ANY, &[]);
    let port = sim.port();
    assert_eq!(sim.line(), "getaddr\t0.0.0.0");
    assert_eq!(listening_address(port).as_deref(), Some("0100007F"));
    assert_eq!(read_all(&mut connect(port)), b"hi");

    let exposed = Sim::start(LISTEN_ANY, &["--expose"]);
    let port = exposed.port();
    assert_eq!(exposed.line(), "getaddr\t0.0.0.0");
    assert_eq!(listening_address(port).as_deref(), Some("00000000"));
}

#[test]
fn port_map_and_port_offset_move_the_host_port_and_getaddr_reports_the_device_port() {
    let host_port = closed_port();
    let sim = Sim::start(
        r#"
        local sv = net.createServer()
        sv:listen(80, function(c)
          print("accepted on", c:getaddr())
          c:send("mapped") c:on("sent", function(s) s:close() end)
        end)
        print("getaddr", sv:getaddr())
        "#,
        &["--port-map", &format!("80={host_port}")],
    );
    assert_eq!(sim.line(), "getaddr\t80\t0.0.0.0");
    assert_eq!(read_all(&mut connect(host_port)), b"mapped");
    assert_eq!(sim.line(), "accepted on\t80\t127.0.0.1");

    let free = closed_port();
    let (device, offset) = (free - 1000, 1000);
    let sim = Sim::start(
        &format!(
            r#"
            local sv = net.createServer()
            sv:listen({device}, "127.0.0.1", function(c) c:send("offset") c:on("sent", function(s) s:close() end) end)
            print("getaddr", sv:getaddr())
            "#
        ),
        &["--port-offset", &offset.to_string()],
    );
    assert_eq!(sim.line(), format!("getaddr\t{device}\t127.0.0.1"));
    assert_eq!(read_all(&mut connect(free)), b"offset");
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn rss_kb(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn descriptors_and_memory_stay_flat_across_ten_thousand_connections() {
    let sim = Sim::start(
        r#"
        local sv, n = net.createServer(net.TCP, 30), 0
        sv:listen(0, function(conn)
          conn:on("receive", function(c, req)
            n = n + 1
            c:on("sent", function() c:close() end)
            c:send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            if n % 1000 == 0 then
              collectgarbage() collectgarbage()
              print("lua kb", n, math.floor(collectgarbage("count")))
            end
          end)
        end)
        print("port", (sv:getaddr()))
        "#,
        &[],
    );
    let port = sim.port();
    let pid = sim.pid();
    let hit = |count: usize| {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    for _ in 0..count / 4 {
                        let mut c = connect(port);
                        c.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
                        let r = read_all(&mut c);
                        assert!(r.ends_with(b"ok"), "{r:?}");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    };
    hit(1000);
    let first_kb: usize = sim.expect("lua kb\t1000").parse().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let (fds0, rss0) = (fd_count(pid), rss_kb(pid));
    hit(9000);
    let mut last_kb = 0;
    for i in 2..=10 {
        last_kb = sim
            .expect(&format!("lua kb\t{}", i * 1000))
            .parse()
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    let (fds1, rss1) = (fd_count(pid), rss_kb(pid));
    assert!(fds1 <= fds0, "descriptors grew from {fds0} to {fds1}");
    assert!(
        last_kb <= first_kb + 2,
        "Lua heap grew from {first_kb} KB to {last_kb} KB"
    );
    assert!(rss1 < rss0 + 4096, "RSS grew from {rss0} KB to {rss1} KB");
}

#[test]
fn client_sockets_are_released_across_thousands_of_connections() {
    let srv = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = srv.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in srv.incoming() {
            let Ok(mut s) = s else { return };
            let _ = s.write_all(b"pong");
            let mut buf = [0u8; 4];
            let _ = s.read(&mut buf);
        }
    });
    let sim = Sim::start(
        &format!(
            r#"
            local n = 0
            local function one()
              local sk = net.createConnection()
              sk:on("receive", function(s, d)
                n = n + 1
                sk:close()
                if n % 500 == 0 then collectgarbage() collectgarbage() print("lua kb", n, math.floor(collectgarbage("count"))) end
                if n < 3000 then one() end
              end)
              sk:connect({port}, "127.0.0.1")
            end
            one()
            "#
        ),
        &[],
    );
    let pid = sim.pid();
    let first: usize = sim.expect("lua kb\t500").parse().unwrap();
    let fds0 = fd_count(pid);
    let mut last = 0;
    let mut fds1 = 0;
    for i in 2..=6 {
        last = sim.expect(&format!("lua kb\t{}", i * 500)).parse().unwrap();
        if i == 5 {
            fds1 = fd_count(pid);
        }
    }
    assert!(
        last <= first + 2,
        "Lua heap grew from {first} KB to {last} KB"
    );
    assert!(fds1 <= fds0 + 2, "descriptors grew from {fds0} to {fds1}");
    assert_eq!(sim.wait(), 0);
}
