//! The ESP32 firmware's `http` module (`--target esp32`) against the loopback servers of the
//! ESP8266 `http` tests: connection objects and their callbacks in both modes, the one-shot forms,
//! redirects, chunked replies and the esp_http_client error codes.

use std::net::TcpListener;

use crate::http::Server;
use crate::support::{Ran, run_lua};

const ESP32: &[&str] = &["--target", "esp32"];

fn ok(ran: &Ran) {
    assert_eq!(ran.status, 0, "{ran:?}");
}

/// Callbacks that print what they get, headers sorted.
const TRACE: &str = r#"
local function trace(c)
  c:on("connect", function(...) print("connect", select('#', ...)) end)
  c:on("headers", function(code, h)
    local t = {}
    for k, v in pairs(h) do t[#t + 1] = k .. "=" .. v end
    table.sort(t)
    print("headers", code, table.concat(t, ","))
  end)
  c:on("data", function(code, d) print("data", code, d) end)
  c:on("complete", function(code, connected) print("complete", code, connected) end)
  return c
end
"#;

fn hello() -> Server {
    Server::start(|_| {
        Some(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
                .to_vec(),
        )
    })
}

#[test]
fn async_request_calls_back_in_order_with_the_firmware_arguments() {
    let srv = hello();
    let ran = run_lua(
        &format!(
            "{TRACE} local c = trace(http.createConnection('{}', http.GET, \
             {{async = true, headers = {{['X-A'] = '1'}}}}))\n print('ret', c:request())",
            srv.url("/p?q=1")
        ),
        ESP32,
    );
    ok(&ran);
    assert_eq!(
        ran.stdout,
        "ret\nconnect\t0\nheaders\t200\tcontent-length=5,content-type=text/plain\n\
         data\t200\thello\ncomplete\t200\ttrue\n"
    );
    assert_eq!(
        srv.requests(),
        vec![format!(
            "GET /p?q=1 HTTP/1.1\r\nUser-Agent: NodeMCU (ESP32)\r\nHost: 127.0.0.1:{}\r\n\
             X-A: 1\r\nContent-Length: 0\r\n\r\n",
            srv.port
        )]
    );
}

#[test]
fn sync_request_runs_every_callback_before_it_returns() {
    let srv = hello();
    let ran = run_lua(
        &format!(
            "{TRACE} local c = trace(http.createConnection('{}'))\n\
             c:setheader('Connection', 'close')\n print('ret', c:request())",
            srv.url("/")
        ),
        ESP32,
    );
    ok(&ran);
    assert_eq!(
        ran.stdout,
        "connect\t0\nheaders\t200\tcontent-length=5,content-type=text/plain\n\
         data\t200\thello\ncomplete\t200\ttrue\nret\t200\ttrue\n"
    );
    assert!(srv.requests()[0].contains("\r\nConnection: close\r\n"));
}

#[test]
fn one_shot_get_returns_or_calls_back_with_code_body_and_headers() {
    let srv = hello();
    let url = srv.url("/x");
    let ran = run_lua(
        &format!(
            "local code, body, h = http.get('{url}')\n print(code, body, h['content-type'])\n\
             http.get('{url}', {{headers = {{Accept = 'text/plain'}}}}, function(code, body, h)\n\
               print('cb', code, body, h['content-length']) end)\n print('after')"
        ),
        ESP32,
    );
    ok(&ran);
    assert_eq!(
        ran.stdout,
        "200\thello\ttext/plain\nafter\ncb\t200\thello\t5\n"
    );
    let reqs = srv.requests();
    assert_eq!(
        reqs[0],
        format!(
            "GET /x HTTP/1.1\r\nUser-Agent: NodeMCU (ESP32)\r\nHost: 127.0.0.1:{}\r\n\
             Connection: close\r\nContent-Length: 0\r\n\r\n",
            srv.port
        )
    );
    assert!(reqs[1].contains("\r\nAccept: text/plain\r\nConnection: close\r\n"));
}

#[test]
fn one_shot_post_sends_the_body_as_a_form_unless_told() {
    let srv = Server::start(|_| {
        Some(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_vec())
    });
    let url = srv.url("/post");
    let ran = run_lua(
        &format!(
            "print(http.post('{url}', nil, 'a=1&b=2'))\n\
             print(http.post('{url}', {{headers = {{['Content-Type'] = 'application/json'}}}}, '{{}}'))"
        ),
        ESP32,
    );
    ok(&ran);
    assert!(ran.stdout.starts_with("201\tok\ttable: "), "{ran:?}");
    let reqs = srv.requests();
    assert_eq!(
        reqs[0],
        format!(
            "POST /post HTTP/1.1\r\nUser-Agent: NodeMCU (ESP32)\r\nHost: 127.0.0.1:{}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\
             Content-Length: 7\r\n\r\na=1&b=2",
            srv.port
        )
    );
    assert!(reqs[1].contains(
        "Content-Type: application/json\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    ));
}

fn redirecting() -> Server {
    Server::start(|path| {
        let to = match path {
            "/r1" => "/r2",
            "/r2" => "/ok",
            "/ok" => {
                return Some(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndone"
                        .to_vec(),
                );
            }
            _ => return Some(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()),
        };
        Some(
            format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .into_bytes(),
        )
    })
}

#[test]
fn redirects_are_followed_and_each_hop_reports_its_headers() {
    let srv = redirecting();
    let ran = run_lua(
        &format!(
            "{TRACE} print(trace(http.createConnection('{}')):request())",
            srv.url("/r1")
        ),
        ESP32,
    );
    ok(&ran);
    assert_eq!(
        ran.stdout,
        "connect\t0\nheaders\t302\tconnection=close,content-length=0,location=/r2\n\
         connect\t0\nheaders\t302\tconnection=close,content-length=0,location=/ok\n\
         connect\t0\nheaders\t200\tconnection=close,content-length=4\ndata\t200\tdone\n\
         complete\t200\tfalse\n200\tfalse\n"
    );
    let paths: Vec<String> = srv
        .requests()
        .iter()
        .map(|r| r.split(' ').nth(1).unwrap_or("").to_string())
        .collect();
    assert_eq!(paths, ["/r1", "/r2", "/ok"]);
}

#[test]
fn redirect_limits_and_disabled_redirects() {
    let srv = redirecting();
    let url = srv.url("/r1");
    let ran = run_lua(
        &format!(
            "local code, body, h = http.get('{url}', {{max_redirects = 1}})\n print(code, body, h.location)\n\
             code, body, h = http.get('{url}', {{max_redirects = 0}})\n print(code, h.location)"
        ),
        ESP32,
    );
    ok(&ran);
    // ESP_ERR_HTTP_MAX_REDIRECT (0x7001), negated, with the headers of the hop that was followed.
    assert_eq!(ran.stdout, "-28673\t\t/r2\n302\t/r2\n");
}

#[test]
fn chunked_replies_arrive_decoded() {
    let srv = Server::start(|_| {
        Some(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
              5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"
                .to_vec(),
        )
    });
    let url = srv.url("/c");
    let ran = run_lua(
        &format!(
            "local n = 0\n local c = http.createConnection('{url}')\n\
             c:on('data', function(code, d) n = n + 1 end)\n local code, connected = c:request()\n print(code, connected, n > 0)\n\
             print(http.get('{url}'))"
        ),
        ESP32,
    );
    ok(&ran);
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines[0], "200\tfalse\ttrue");
    assert!(
        lines[1].starts_with("200\thello, world\ttable: "),
        "{ran:?}"
    );
}

#[test]
fn a_refused_port_is_esp_err_http_connect() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/");
    let ran = run_lua(
        &format!(
            "{TRACE} print(http.get('{url}'))\n print(trace(http.createConnection('{url}')):request())\n\
             http.get('{url}', function(code, body, h) print('cb', code, #body, h) end)"
        ),
        ESP32,
    );
    ok(&ran);
    assert_eq!(
        ran.stdout,
        "-28674\t\tnil\ncomplete\t-28674\tfalse\n-28674\tfalse\ncb\t-28674\t0\tnil\n"
    );
}

#[test]
fn a_silent_server_times_out_with_esp_err_http_eagain() {
    let srv = Server::holding(|_| None);
    let ran = run_lua(
        &format!(
            "{TRACE} print(trace(http.createConnection('{}', {{timeout = 300}})):request())",
            srv.url("/")
        ),
        ESP32,
    );
    ok(&ran);
    assert_eq!(
        ran.stdout,
        "connect\t0\ncomplete\t-28679\ttrue\n-28679\ttrue\n"
    );
}

#[test]
fn bad_arguments_raise_the_firmware_errors() {
    let srv = hello();
    let url = srv.url("/");
    let ran = run_lua(
        &format!(
            "local function try(code) print(select(2, pcall((loadstring or load)(code)))) end\n\
             try(\"http.createConnection('not a url')\")\n\
             try(\"http.createConnection('{url}', 99)\")\n\
             try(\"http.createConnection('{url}', {{timeout = 'x'}})\")\n\
             c = http.createConnection('{url}')\n\
             try(\"c:on('nope', print)\")\n\
             try(\"c:setmethod(-1)\")\n\
             try(\"http.get('{url}', 5)\")\n\
             try(\"http.get('{url}', nil, 5)\")\n\
             try(\"http.post('{url}', nil)\")\n\
             try(\"c:ack()\")\n\
             c:on('headers', function() try(\"c:setheader('A', 'b')\") end)\n\
             c:request()\n\
             print(http.GET, http.POST, http.PUT, http.DELETE, http.HEAD, http.DELAYACK)"
        ),
        ESP32,
    );
    ok(&ran);
    let lines: Vec<&str> = ran.stdout.lines().collect();
    let want = [
        "esp_http_client_init failed",
        "Bad HTTP method 99",
        "bad option timeout to 'createConnection' (number expected, got string)",
        "bad argument #1 to 'on' (invalid option 'nope')",
        "Bad HTTP method -1",
        "bad argument #2 to 'get' (options must be nil or a table)",
        "bad argument #3 to 'get' (callback must be nil or a function)",
        "bad argument #3 to 'post' (string expected, got no value)",
        "No asynchronous callback pending",
        "Cannot modify connection while a request is active",
    ];
    for (line, want) in lines.iter().zip(want) {
        assert!(
            line.ends_with(want),
            "{line:?} should end with {want:?}\n{ran:?}"
        );
    }
    assert_eq!(lines.len(), want.len() + 1, "{ran:?}");
    assert_eq!(lines[want.len()], "0\t1\t2\t4\t5\t-99");
}

#[test]
fn an_async_data_callback_can_hold_the_request_until_ack() {
    let srv = hello();
    let ran = run_lua(
        &format!(
            "local c = http.createConnection('{}', {{async = true}})\n\
             c:on('data', function(code, d)\n\
               print('data', code, d, pcall(c.ack, c))\n\
               tmr.create():alarm(50, tmr.ALARM_SINGLE, function() print('ack', c:ack()) end)\n\
               return http.DELAYACK\n\
             end)\n\
             c:on('complete', function(code, connected) print('complete', code, connected) end)\n\
             c:request()",
            srv.url("/")
        ),
        ESP32,
    );
    ok(&ran);
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{ran:?}");
    assert!(lines[0].starts_with("data\t200\thello\tfalse\t"), "{ran:?}");
    assert!(
        lines[0].ends_with("Cannot call ack() from within the callback itself"),
        "{ran:?}"
    );
    assert_eq!(lines[1..], ["ack", "complete\t200\ttrue"]);
}

#[test]
fn close_in_a_callback_ends_the_request_disconnected() {
    let srv = hello();
    let ran = run_lua(
        &format!(
            "{TRACE} local c = trace(http.createConnection('{}'))\n\
             c:on('headers', function(code) print('headers', code); c:close() end)\n\
             print(c:request())",
            srv.url("/")
        ),
        ESP32,
    );
    ok(&ran);
    assert_eq!(
        ran.stdout,
        "connect\t0\nheaders\t200\ndata\t200\thello\ncomplete\t200\tfalse\n200\tfalse\n"
    );
}

#[test]
fn a_connection_is_reconfigured_between_requests() {
    let srv = hello();
    let ran = run_lua(
        &format!(
            "local c = http.createConnection('{}', http.POST)\n\
             c:setbody('x=1')\n print(c:request())\n\
             c:seturl('/two?a=b')\n c:setmethod(http.PUT)\n c:setbody(nil)\n\
             c:setheader('X-B', 'late')\n c:setheader('User-Agent', 'me')\n print(c:request())\n\
             c:setmethod(http.HEAD)\n print(c:request())",
            srv.url("/one")
        ),
        ESP32,
    );
    ok(&ran);
    assert_eq!(ran.stdout, "200\ttrue\n200\ttrue\n200\ttrue\n");
    let host = format!("Host: 127.0.0.1:{}", srv.port);
    assert_eq!(
        srv.requests(),
        [
            format!(
                "POST /one HTTP/1.1\r\nUser-Agent: NodeMCU (ESP32)\r\n{host}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\nx=1"
            ),
            format!(
                "PUT /two?a=b HTTP/1.1\r\nUser-Agent: me\r\n{host}\r\n\
                 Content-Length: 0\r\nX-B: late\r\n\r\n"
            ),
            format!(
                "HEAD /two?a=b HTTP/1.1\r\nUser-Agent: me\r\n{host}\r\n\
                 Content-Length: 0\r\nX-B: late\r\n\r\n"
            ),
        ]
    );
}

#[test]
fn a_sync_request_cannot_delay_its_ack() {
    let srv = hello();
    let ran = run_lua(
        &format!(
            "local c = http.createConnection('{}')\n\
             c:on('data', function() return http.DELAYACK end)\n\
             print(pcall(c.request, c))\n print(pcall(c.setheader, c, 'A', 'b'))",
            srv.url("/")
        ),
        ESP32,
    );
    ok(&ran);
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert!(lines[0].starts_with("false\t"), "{ran:?}");
    assert!(
        lines[0].ends_with(
            "Cannot delay acknowledgment of a callback when using synchronous callbacks"
        ),
        "{ran:?}"
    );
    // The connection is idle again afterwards.
    assert_eq!(lines[1], "true");
}

#[test]
fn a_server_closing_before_the_head_is_esp_err_http_connection_closed() {
    let srv = Server::start(|_| Some(Vec::new()));
    let ran = run_lua(
        &format!(
            "{TRACE} print(trace(http.createConnection('{}')):request())",
            srv.url("/")
        ),
        ESP32,
    );
    ok(&ran);
    assert_eq!(
        ran.stdout,
        "connect\t0\ncomplete\t-28680\tfalse\n-28680\tfalse\n"
    );
}

#[test]
fn a_large_body_comes_in_reads_of_bufsz() {
    let body: String = (0..5000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let srv = Server::start(move |_| Some(reply.clone().into_bytes()));
    let ran = run_lua(
        &format!(
            "local parts, most = {{}}, 0\n\
             local c = http.createConnection('{}', {{bufsz = 1000}})\n\
             c:on('data', function(_, d) parts[#parts + 1] = d; most = math.max(most, #d) end)\n\
             print(c:request())\n\
             local all = table.concat(parts)\n print(#all, most <= 1000, #parts >= 5, all:sub(1, 30))",
            srv.url("/big")
        ),
        ESP32,
    );
    ok(&ran);
    assert_eq!(
        ran.stdout,
        format!("200\tfalse\n5000\ttrue\ttrue\t{}\n", &body[..30])
    );
}

#[test]
fn a_redirect_to_another_host_resolves_it_and_renames_host_without_the_port() {
    let b = hello();
    let to = format!("http://localhost:{}/there", b.port);
    let a = Server::start(move |_| {
        Some(
            format!("HTTP/1.1 301 Moved\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n")
                .into_bytes(),
        )
    });
    let mut args = ESP32.to_vec();
    args.extend(["--resolve", "localhost=127.0.0.1"]);
    let ran = run_lua(&format!("print(http.get('{}'))", a.url("/here")), &args);
    ok(&ran);
    assert!(ran.stdout.starts_with("200\thello\ttable: "), "{ran:?}");
    // The client sets `Host` to the new host alone when a redirect changes it.
    assert_eq!(
        b.requests(),
        [
            "GET /there HTTP/1.1\r\nUser-Agent: NodeMCU (ESP32)\r\nHost: localhost\r\n\
          Connection: close\r\nContent-Length: 0\r\n\r\n"
        ]
    );
}

#[test]
fn async_one_shot_post_and_put_call_back_with_the_reply() {
    let srv = Server::start(|_| {
        Some(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nyes".to_vec())
    });
    let url = srv.url("/r");
    let ran = run_lua(
        &format!(
            "local opts = {{}}\n\
             http.post('{url}', opts, 'p=1', function(code, body, h) print('post', code, body, h['content-length']) \
               http.put('{url}', nil, 'q', function(code, body) print('put', code, body) end) end)\n\
             print('async', opts.async)"
        ),
        ESP32,
    );
    ok(&ran);
    assert_eq!(
        ran.stdout,
        "async\ttrue\npost\t200\tyes\t3\nput\t200\tyes\n"
    );
    let reqs = srv.requests();
    assert!(
        reqs[0].starts_with("POST /r HTTP/1.1\r\n")
            && reqs[0].ends_with("Content-Length: 3\r\n\r\np=1")
    );
    assert!(
        reqs[1].starts_with("PUT /r HTTP/1.1\r\n")
            && reqs[1].ends_with("Content-Length: 1\r\n\r\nq")
    );
}

#[test]
fn a_sync_request_moves_the_device_clock_on_by_its_wait() {
    let srv = Server::holding(|_| None);
    for clock in [&[][..], &["--virtual-time"][..]] {
        let mut args = ESP32.to_vec();
        args.extend(clock);
        let ran = run_lua(
            &format!(
                "local t0 = tmr.now()\n print(http.get('{}', {{timeout = 300}}))\n\
                 local took = tmr.now() - t0\n print(took >= 300000, took < 3000000)",
                srv.url("/")
            ),
            &args,
        );
        ok(&ran);
        assert_eq!(ran.stdout, "-28679\t\tnil\ntrue\ttrue\n", "{clock:?}");
    }
}
