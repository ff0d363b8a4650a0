//! The `http` module against a real HTTP server on loopback: a tiny one made here with
//! `std::net::TcpListener`, which records every request's exact bytes and answers each path as
//! the test says, then closes (the firmware asks for `Connection: close`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{Flash, Ran, run_cmd, run_lua};

/// A server on 127.0.0.1 answering each request with `reply(path)` and closing; `None` answers
/// nothing. A holding server keeps every connection open after its answer.
pub(crate) struct Server {
    pub(crate) port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub(crate) fn start(reply: impl Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static) -> Server {
        Server::spawn(reply, false)
    }

    pub(crate) fn holding(
        reply: impl Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) -> Server {
        Server::spawn(reply, true)
    }

    fn spawn(
        reply: impl Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static,
        hold: bool,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, reply) = (seen.clone(), Arc::new(reply));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let (s, reply) = (s.clone(), reply.clone());
                std::thread::spawn(move || serve(conn, &s, &*reply, hold));
            }
        });
        Server { port, seen }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(
    mut conn: TcpStream,
    seen: &Mutex<Vec<String>>,
    reply: &dyn Fn(&str) -> Option<Vec<u8>>,
    hold: bool,
) {
    let req = read_request(&mut conn);
    let path = req.split(' ').nth(1).unwrap_or("").to_string();
    seen.lock().unwrap().push(req);
    let answer = reply(&path);
    if let Some(bytes) = &answer {
        let _ = conn.write_all(bytes);
    }
    if hold || answer.is_none() {
        std::thread::sleep(Duration::from_secs(120));
    }
}

/// The head, then as many body bytes as its `Content-Length` says.
fn read_request(conn: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    let _ = conn.read_exact(&mut body);
    head + &String::from_utf8_lossy(&body)
}

fn ok(ran: &Ran) {
    assert_eq!(ran.status, 0, "{ran:?}");
}

/// Prints the callback's arguments: code, body, and the header table sorted.
const SHOW: &str = r#"
local function show(code, body, headers)
  local names = {}
  for k, v in pairs(headers or {}) do names[#names + 1] = k .. "=" .. v end
  table.sort(names)
  print(code, body, table.concat(names, ","))
end
"#;

#[test]
fn get_passes_code_body_and_lowercased_headers() {
    let srv = Server::start(|_| {
        Some(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Custom:  yes\r\n\r\nhello".to_vec())
    });
    let ran = run_lua(
        &format!("{SHOW} http.get('{}', nil, show)", srv.url("/path?q=1")),
        &[],
    );
    ok(&ran);
    assert_eq!(
        ran.stdout,
        "200\thello\tcontent-type=text/plain,x-custom=yes\n"
    );
    assert_eq!(
        srv.requests(),
        [format!(
            "GET /path?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nUser-Agent: ESP8266\r\n\r\n",
            srv.port
        )]
    );
}

#[test]
fn post_put_delete_and_request_send_the_firmware_request() {
    let srv = Server::start(|_| Some(b"HTTP/1.0 201 Created\r\n\r\nmade".to_vec()));
    let script = format!(
        "{SHOW}
        http.post('{u}', 'Content-Type: application/json\\r\\n', '{{\"a\":1}}', function(...)
          show(...)
          http.put('{u}', 'user-agent: me\\r\\n', 'x', function(...)
            show(...)
            http.delete('{u}', nil, nil, function(...)
              show(...)
              http.request('{u}', 'PATCH', 'Host: other\\r\\n', '', show)
            end)
          end)
        end)",
        u = srv.url("/r")
    );
    let ran = run_lua(&script, &[]);
    ok(&ran);
    assert_eq!(ran.stdout, "201\tmade\t\n".repeat(4));
    let host = format!("Host: 127.0.0.1:{}\r\n", srv.port);
    assert_eq!(
        srv.requests(),
        [
            format!(
                "POST /r HTTP/1.1\r\n{host}Connection: close\r\nContent-Type: application/json\r\nUser-Agent: ESP8266\r\nContent-Length: 7\r\n\r\n{{\"a\":1}}"
            ),
            format!("PUT /r HTTP/1.1\r\n{host}Connection: close\r\nuser-agent: me\r\nContent-Length: 1\r\n\r\nx"),
            format!("DELETE /r HTTP/1.1\r\n{host}Connection: close\r\nUser-Agent: ESP8266\r\n\r\n"),
            "PATCH /r HTTP/1.1\r\nConnection: close\r\nHost: other\r\nUser-Agent: ESP8266\r\nContent-Length: 0\r\n\r\n".to_string(),
        ]
    );
}

#[test]
fn chunked_bodies_are_decoded() {
    let srv = Server::start(|_| {
        Some(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"
                .to_vec(),
        )
    });
    let ran = run_lua(
        &format!("{SHOW} http.get('{}', nil, show)", srv.url("/")),
        &[],
    );
    ok(&ran);
    assert_eq!(ran.stdout, "200\thello, world\ttransfer-encoding=chunked\n");
}

#[test]
fn redirects_are_followed_without_the_headers_and_body() {
    let port = Arc::new(Mutex::new(0u16));
    let p = port.clone();
    let srv = Server::start(move |path| {
        let to = match path {
            "/a" => format!("http://127.0.0.1:{}/b", p.lock().unwrap()),
            "/b" => "/c/d".to_string(),
            "/c/d" => "e".to_string(),
            _ => return Some(b"HTTP/1.1 404 Not Found\r\n\r\nnone here".to_vec()),
        };
        Some(format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\n\r\n").into_bytes())
    });
    *port.lock().unwrap() = srv.port;
    let ran = run_lua(
        &format!(
            "{SHOW} http.post('{}', 'X-A: 1\\r\\n', 'data', show)",
            srv.url("/a")
        ),
        &[],
    );
    ok(&ran);
    assert_eq!(ran.stdout, "404\tnone here\t\n");
    let reqs = srv.requests();
    let lines: Vec<&str> = reqs.iter().map(|r| r.lines().next().unwrap()).collect();
    assert_eq!(
        lines,
        [
            "POST /a HTTP/1.1",
            "POST /b HTTP/1.1",
            "POST /c/d HTTP/1.1",
            "POST /c/e HTTP/1.1"
        ]
    );
    assert_eq!(
        reqs[3],
        format!(
            "POST /c/e HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nUser-Agent: ESP8266\r\n\r\n",
            srv.port
        )
    );
}

#[test]
fn the_twenty_first_redirect_fails() {
    let srv = Server::start(|_| Some(b"HTTP/1.1 301 Moved\r\nLocation: /loop\r\n\r\n".to_vec()));
    let ran = run_lua(
        &format!(
            "http.get('{}', nil, function(...) print(select('#', ...), ...) end)",
            srv.url("/")
        ),
        &[],
    );
    ok(&ran);
    assert_eq!(ran.stdout, "3\t-1\tnil\tnil\n");
    assert_eq!(srv.requests().len(), 21);
}

#[test]
fn a_refused_connection_gives_minus_one() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ran = run_lua(
        &format!(
            "http.get('http://127.0.0.1:{port}/', nil, function(...) print(...) end) print('asked')"
        ),
        &[],
    );
    ok(&ran);
    assert_eq!(ran.stdout, "asked\n-1\tnil\tnil\n");
}

#[test]
fn names_resolve_as_the_device_does() {
    let srv = Server::start(|_| Some(b"HTTP/1.1 200 OK\r\n\r\nhi".to_vec()));
    let ran = run_lua(
        &format!(
            "http.get('http://web.test:{}/', nil, function(c, b) print(c, b) end)",
            srv.port
        ),
        &["--resolve", "web.test=127.0.0.1"],
    );
    ok(&ran);
    assert_eq!(ran.stdout, "200\thi\n");
    assert!(srv.requests()[0].contains(&format!("\r\nHost: web.test:{}\r\n", srv.port)));
}

#[test]
fn bad_urls_never_call_back_and_an_empty_host_fails_at_once() {
    let ran = run_lua(
        "local cb = function(...) print('cb', ...) end
         http.get('ftp://x/', nil, cb) http.get('http://h:0/', nil, cb)
         print('silent')
         http.get('http:///p', nil, cb) print('after')",
        &[],
    );
    ok(&ran);
    assert_eq!(ran.stdout, "silent\ncb\t-1\tnil\tnil\nafter\n");
}

#[test]
fn a_response_must_fit_the_firmware_buffer() {
    // BUFFER_SIZE_MAX is 8192 bytes, the terminating NUL included.
    let head = "HTTP/1.1 200 OK\r\n\r\n";
    let srv = Server::start(move |path| {
        let total = if path == "/fits" { 8191 } else { 8192 };
        Some(format!("{head}{}", "x".repeat(total - head.len())).into_bytes())
    });
    let ran = run_lua(
        &format!(
            "http.get('{}', nil, function(c, b) print(c, #b)
               http.get('{}', nil, function(c, b) print(c, b) end) end)",
            srv.url("/fits"),
            srv.url("/over")
        ),
        &[],
    );
    ok(&ran);
    assert_eq!(ran.stdout, format!("200\t{}\n-1\tnil\n", 8191 - head.len()));
}

#[test]
fn argument_errors_are_the_firmwares() {
    let ran = run_lua(
        "print(select(2, pcall(function() http.get() end)))
         print(select(2, pcall(function() http.request('http://x/', {}) end)))
         print(select(2, pcall(function() http.request(nil, 'GET') end)))
         print(http.OK, http.ERROR)",
        &[],
    );
    ok(&ran);
    assert_eq!(
        ran.stdout,
        "init.lua:1: bad argument #1 to 'get' (string expected, got no value)\n\
         init.lua:2: bad argument #2 to 'request' (string expected, got table)\n\
         init.lua:3: bad argument #1 to 'request' (string expected, got nil)\n0\t-1\n"
    );
}

#[test]
fn generations_and_targets() {
    let srv = Server::start(|_| Some(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nx\0y".to_vec()));
    let script = format!(
        "http.get('{}', nil, function(...) print(select('#', ...), #select(2, ...)) end)",
        srv.url("/")
    );
    let v15 = run_lua(&script, &["--firmware", "1.5"]);
    let v22 = run_lua(&script, &["--firmware", "2.2"]);
    let v30 = run_lua(&script, &[]);
    // The ESP32 firmware's http is another API (tests/e2e/http32.rs).
    let esp32 = run_lua(
        "print(type(http.createConnection), http.request)",
        &["--target", "esp32"],
    );
    assert_eq!(
        [v15.stdout, v22.stdout, v30.stdout, esp32.stdout],
        ["2\t1\n", "3\t1\n", "3\t3\n", "function\tnil\n"]
    );
}

#[test]
fn the_callback_slot_is_shared() {
    // The second request's callback replaces the first's; the first answer consumes it.
    let srv = Server::start(|path| {
        if path == "/slow" {
            std::thread::sleep(Duration::from_millis(300));
        }
        Some(format!("HTTP/1.1 200 OK\r\n\r\n{path}").into_bytes())
    });
    let ran = run_lua(
        &format!(
            "http.get('{}', nil, function(c, b) print('one', b) end)
             http.get('{}', nil, function(c, b) print('two', b) end)",
            srv.url("/slow"),
            srv.url("/fast")
        ),
        &[],
    );
    ok(&ran);
    assert_eq!(ran.stdout, "two\t/fast\n");
}

/// Runs `script` with a 90 s limit (the firmware's timeout is 60 s).
fn run_long(script: String) -> std::thread::JoinHandle<Ran> {
    std::thread::spawn(move || {
        let flash = Flash::new(&[("init.lua", &script)]);
        let mut cmd = std::process::Command::new(crate::support::BIN);
        cmd.arg("run").arg(flash.file("init.lua"));
        run_cmd(cmd, Duration::from_secs(90))
    })
}

#[test]
fn the_timeout_is_sixty_seconds_and_judges_what_arrived() {
    let silent = Server::start(|_| None);
    let partial = Server::holding(|_| Some(b"HTTP/1.1 206 Partial\r\nA: 1\r\nB".to_vec()));
    let script = |url: String| {
        format!(
            "{SHOW} local t0 = tmr.now()
             http.get('{url}', nil, function(...) print(math.floor((tmr.now() - t0) / 1000000)) show(...) end)"
        )
    };
    let silent = run_long(script(silent.url("/")));
    let partial = run_long(script(partial.url("/")));
    let (silent, partial) = (silent.join().unwrap(), partial.join().unwrap());
    ok(&silent);
    ok(&partial);
    assert_eq!(silent.stdout, "60\n-1\tnil\t\n");
    assert_eq!(partial.stdout, "60\n206\t\ta=1\n");
}

#[test]
fn a_name_that_does_not_resolve_calls_back_minus_one() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ran = run_lua(
        "http.get('http://nowhere.test/', nil, function(...) print(...) end) print('asked')",
        &["--dns", "127.0.0.1", "--dns-port", &port.to_string()],
    );
    ok(&ran);
    assert_eq!(ran.stdout, "asked\n-1\tnil\tnil\n");
}

#[test]
fn an_error_in_the_callback_panics_before_3_0_and_goes_to_the_handler_after() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script =
        format!("http.get('http://127.0.0.1:{port}/', nil, function(c) error('boom ' .. c) end)");
    let v22 = run_lua(&script, &["--firmware", "2.2"]);
    assert_eq!(v22.status, 4, "{}", v22.stderr);
    assert!(
        v22.stderr
            .contains("PANIC: unprotected error in call to Lua API (init.lua:1: boom -1)"),
        "{}",
        v22.stderr
    );
    let v30 = run_lua(&script, &[]);
    assert_eq!(v30.status, 3, "{}", v30.stderr);
    assert!(
        v30.stdout
            .starts_with("init.lua:1: boom -1\nstack traceback:"),
        "{}",
        v30.stdout
    );
}

#[test]
fn in_1_5_a_request_made_by_the_callback_loses_its_callback() {
    let srv = Server::start(|path| Some(format!("HTTP/1.1 200 OK\r\n\r\n{path}").into_bytes()));
    let script = format!(
        "http.get('{a}', nil, function(c, b)
           print('first', b)
           http.get('{b}', nil, function(c, b) print('second', b) end)
         end)",
        a = srv.url("/a"),
        b = srv.url("/b")
    );
    let v15 = run_lua(&script, &["--firmware", "1.5"]);
    let v22 = run_lua(&script, &["--firmware", "2.2"]);
    assert_eq!(v15.stdout, "first\t/a\n");
    assert_eq!(v22.stdout, "first\t/a\nsecond\t/b\n");
    assert_eq!(
        srv.requests().len(),
        4,
        "both generations made both requests"
    );
}

/// The 5.1 build's: Lua 5.3's emergency collector frees the filling loop's garbage, so whether
/// the heap is still full when the reply comes depends on when it last ran.
#[cfg(not(feature = "lua53"))]
#[test]
fn a_response_the_heap_cannot_hold_fails() {
    // The firmware grows its buffer with os_malloc: with the heap nearly full, that fails.
    let srv = Server::start(|_| {
        Some(format!("HTTP/1.1 200 OK\r\n\r\n{}", "y".repeat(4000)).into_bytes())
    });
    let ran = run_lua(
        &format!(
            "local hog = {{}}
             pcall(function() while node.heap() > 3000 do hog[#hog + 1] = string.rep('x', 200) .. #hog end end)
             http.get('{u}', nil, function(c, b)
               print(c, b)
               hog = nil
               collectgarbage()
               http.get('{u}', nil, function(c, b) print(c, #b) end)
             end)",
            u = srv.url("/")
        ),
        &[],
    );
    ok(&ran);
    assert_eq!(ran.stdout, "-1\tnil\n200\t4000\n");
}

#[test]
fn a_callback_run_inside_the_call_raises_there_before_3_0() {
    // An empty host fails at once: the callback runs inside http.get.
    let script = "print(pcall(http.get, 'http:///x', nil, function(c) error('boom ' .. c) end))";
    let v22 = run_lua(script, &["--firmware", "2.2"]);
    ok(&v22);
    assert_eq!(v22.stdout, "false\tinit.lua:1: boom -1\n");
    let v30 = run_lua(script, &[]);
    assert_eq!(v30.status, 3, "{}", v30.stderr);
    // 3.0 runs it protected: the call returns, and the error handler reports it after.
    assert!(
        v30.stdout
            .starts_with("true\ninit.lua:1: boom -1\nstack traceback:"),
        "{}",
        v30.stdout
    );
}
