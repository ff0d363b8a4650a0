//! Data through TCP sockets: byte-exact echo with the profile's chunk sizes, the send-buffer rules,
//! the inbound connection limit, `hold`, and the fixtures (web server, echo server, fetch).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{Sim, connect, read_all};
use crate::support::run_lua;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/net")
        .join(name)
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 131 % 251) as u8).collect()
}

/// Writes `data` and reads the same number of bytes back, concurrently.
fn echo_through(port: u16, data: &[u8]) -> Vec<u8> {
    let mut s = connect(port);
    let mut w = s.try_clone().unwrap();
    let out = data.to_vec();
    let writer = std::thread::spawn(move || w.write_all(&out).unwrap());
    let mut back = vec![0u8; data.len()];
    s.read_exact(&mut back).unwrap();
    writer.join().unwrap();
    back
}

const ECHO_WITH_STATS: &str = r#"
local sv = net.createServer(net.TCP, 30)
sv:listen(0, function(c)
  local q, sending, n, max, total = {}, false, 0, 0, 0
  local function pump(s)
    if #q == 0 then sending = false; if s.unhold then s:unhold() end; return end
    sending = true
    s:send(table.remove(q, 1))
  end
  c:on("receive", function(s, d)
    n, total = n + 1, total + #d
    if #d > max then max = #d end
    q[#q + 1] = d
    if #q > 2 and s.hold then s:hold() end
    if not sending then pump(s) end
  end)
  c:on("sent", pump)
  c:on("disconnection", function() print("stats", n, max, total) sv:close() end)
end)
print("port", (sv:getaddr()))
"#;

#[test]
fn echo_of_a_large_payload_is_byte_exact_in_1460_byte_chunks_on_the_device() {
    let data = pattern(3 << 20);
    for target in ["esp8266", "host"] {
        let sim = Sim::start(ECHO_WITH_STATS, &["--target", target]);
        let back = echo_through(sim.port(), &data);
        assert!(back == data, "{target}: echoed bytes differ");
        let stats = sim.expect("stats");
        let v: Vec<usize> = stats.split('\t').map(|x| x.parse().unwrap()).collect();
        assert_eq!(v[2], data.len(), "{target}");
        if target == "esp8266" {
            assert!(v[1] <= 1460, "chunk of {} bytes", v[1]);
            assert!(v[0] >= data.len() / 1460, "{} chunks", v[0]);
        } else {
            assert!(
                v[1] > 1460,
                "host chunks are whatever the read gave: max {}",
                v[1]
            );
        }
    }
}

#[test]
fn the_echo_fixture_echoes_byte_exact() {
    let sim = Sim::start_path(&fixture("echo.lua"), &["--port-map", "7=0"]);
    let port: u16 = sim.expect("echo server listening on port").parse().unwrap();
    let data = pattern(2 << 20);
    assert!(echo_through(port, &data) == data);
    assert!(echo_through(port, b"hello\n") == b"hello\n");
}

#[test]
fn more_than_2920_bytes_unhanded_in_one_callback_is_out_of_memory_on_the_esp8266() {
    let script = r#"
    local sv = net.createServer()
    sv:listen(0, function(c)
      print("a", pcall(c.send, c, ("a"):rep(2000)))
      print("b", pcall(c.send, c, ("b"):rep(921)))
      print("c", pcall(c.send, c, ("c"):rep(920)))
      local n = 0
      c:on("sent", function(s)
        n = n + 1
        -- another 2920 from "sent": the earlier bytes were handed over meanwhile
        if n == 2 then print("d", pcall(s.send, s, ("d"):rep(2920))) end
        if n == 3 then s:close() sv:close() end
      end)
    end)
    print("port", (sv:getaddr()))
    "#;
    let sim = Sim::start(script, &[]);
    let mut c = connect(sim.port());
    assert_eq!(sim.line(), "a\ttrue");
    assert_eq!(sim.line(), "b\tfalse\tout of memory");
    assert_eq!(sim.line(), "c\ttrue");
    assert_eq!(sim.line(), "d\ttrue");
    let got = read_all(&mut c);
    assert_eq!(got.len(), 2000 + 920 + 2920);
    assert!(got[..2000].iter().all(|b| *b == b'a') && got[2000..2920].iter().all(|b| *b == b'c'));

    let host = run_lua(
        "local sk = net.createConnection() sk:connect(1, '127.0.0.1') \
         print(pcall(sk.send, sk, ('x'):rep(1000000))) sk:close()",
        &["--target", "host"],
    );
    assert_eq!(host.stdout, "true\n", "{host:?}");

    let esp32 = run_lua(
        "local sk = net.createConnection() sk:connect(1, '127.0.0.1') \
         print(pcall(sk.send, sk, ('x'):rep(5744))) \
         print(pcall(sk.send, sk, ('x'):rep(5745))) \
         print(sk.hold, sk.unhold, sk.ttl) sk:close()",
        &["--target", "esp32"],
    );
    assert_eq!(
        esp32.stdout, "true\nfalse\tbuffer error\nnil\tnil\tnil\n",
        "{esp32:?}"
    );
}

#[test]
fn a_send_limit_error_inside_a_callback_is_a_panic() {
    let sim = Sim::start(
        r#"
        local sv = net.createServer()
        sv:listen(0, function(c) c:send(("x"):rep(3000)) end)
        print("port", (sv:getaddr()))
        "#,
        &[],
    );
    let _c = connect(sim.port());
    sim.expect_panic("init.lua:3: out of memory");
}

const COUNT_ACCEPTS: &str = r#"
local sv, n = net.createServer(), 0
sv:listen(0, function(c)
  n = n + 1
  print("accept", n)
  c:on("receive", function(s) s:close() end)
end)
print("port", (sv:getaddr()))
"#;

#[test]
fn the_esp8266_has_five_inbound_connections_at_once_and_a_sixth_waits_in_the_backlog() {
    let sim = Sim::start(COUNT_ACCEPTS, &[]);
    let port = sim.port();
    let mut clients: Vec<_> = (0..6).map(|_| connect(port)).collect();
    for i in 1..=5 {
        assert_eq!(sim.line(), format!("accept\t{i}"));
    }
    assert_eq!(
        sim.line_within(Duration::from_millis(700)),
        None,
        "a sixth connection was accepted"
    );
    clients[0].write_all(b"x").unwrap();
    assert_eq!(read_all(&mut clients[0]), b"");
    assert_eq!(sim.line(), "accept\t6");

    let host = Sim::start(COUNT_ACCEPTS, &["--target", "host"]);
    let port = host.port();
    let _clients: Vec<_> = (0..8).map(|_| connect(port)).collect();
    for i in 1..=8 {
        assert_eq!(host.line(), format!("accept\t{i}"));
    }
}

#[test]
fn hold_stops_reading_so_the_peer_stalls_and_unhold_resumes_the_flow() {
    let sim = Sim::start(
        r#"
        local sv = net.createServer()
        sv:listen(0, function(c)
          local total, held = 0, false
          c:on("receive", function(s, d)
            total = total + #d
            if held then return end
            held = true
            s:hold()
            print("held")
            tmr.create():alarm(1500, tmr.ALARM_SINGLE, function()
              print("delivered while held", total)
              s:unhold()
            end)
          end)
        end)
        print("port", (sv:getaddr()))
        "#,
        &[],
    );
    let mut s = connect(sim.port());
    let written = Arc::new(AtomicUsize::new(0));
    let w = written.clone();
    std::thread::spawn(move || {
        let block = vec![7u8; 64 * 1024];
        for _ in 0..(256 << 20) / block.len() {
            if s.write_all(&block).is_err() {
                return;
            }
            w.fetch_add(block.len(), Ordering::SeqCst);
        }
    });
    assert_eq!(sim.line(), "held");
    std::thread::sleep(Duration::from_millis(600));
    let w1 = written.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(400));
    let w2 = written.load(Ordering::SeqCst);
    assert_eq!(w1, w2, "the peer kept writing while the socket was held");
    assert!(w2 < 256 << 20);
    let held: usize = sim.expect("delivered while held").parse().unwrap();
    assert!(held <= 5840, "{held} bytes delivered after hold()");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        written.load(Ordering::SeqCst) > w2,
        "unhold did not resume the flow"
    );
}

#[test]
fn the_web_server_fixture_answers_many_http_clients() {
    let sim = Sim::start_path(&fixture("webserver.lua"), &["--port-map", "80=0"]);
    let port: u16 = sim.expect("web server listening on port").parse().unwrap();
    let get = |path: &str| {
        let mut c = connect(port);
        c.write_all(format!("GET {path} HTTP/1.1\r\nHost: device\r\n\r\n").as_bytes())
            .unwrap();
        String::from_utf8(read_all(&mut c)).unwrap()
    };
    for i in 1..=150 {
        let r = get(&format!("/page{i}"));
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{r}"
        );
        assert!(
            body.starts_with(&format!(
                "<h1>Hello from NodeMCU</h1><p>GET /page{i}, request {i},"
            )),
            "{body}"
        );
    }
    // Concurrent clients, and a request split across several segments.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let mut c = connect(port);
                    c.write_all(b"GET /x HTTP/1.1\r\n").unwrap();
                    std::thread::sleep(Duration::from_millis(2));
                    c.write_all(b"Host: device\r\n\r\n").unwrap();
                    let r = read_all(&mut c);
                    assert!(r.starts_with(b"HTTP/1.1 200 OK\r\n"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(get("/").contains("request 351,"));
}

#[test]
fn the_fetch_fixture_prints_the_page_it_fetched() {
    let r = crate::support::run_cmd(
        {
            let mut c = std::process::Command::new(crate::support::BIN);
            c.arg("run").arg(fixture("fetch.lua"));
            c
        },
        Duration::from_secs(60),
    );
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(r.stdout, "status:\t200\nbody:\thello\n\nclosed with\t0\n");
}

#[test]
fn a_large_send_is_written_intact_though_the_script_drops_it_and_collects() {
    // A send of 16 KB or more is written from the Lua string itself: the connection must keep
    // the string alive after the script lets go of it and the collector runs.
    let sim = Sim::start(
        r#"
        local sv = net.createServer(net.TCP, 30)
        sv:listen(0, function(c)
          c:on("receive", function(s)
            local lines = {}
            for i = 1, 5000 do lines[i] = string.format("%07d\n", i) end
            s:send(table.concat(lines))
            lines = nil
            collectgarbage()
            collectgarbage()
            -- New strings reuse whatever memory the collector freed.
            reuse = {}
            for i = 1, 50 do reuse[i] = ("z"):rep(40000 + i) end
          end)
          c:on("sent", function(s) s:close() end)
        end)
        print("port", (sv:getaddr()))
        "#,
        &["--target", "host"],
    );
    let mut c = connect(sim.port());
    c.write_all(b"go").unwrap();
    let expect: String = (1..=5000).map(|i| format!("{i:07}\n")).collect();
    assert!(read_all(&mut c) == expect.as_bytes(), "sent bytes differ");
}
