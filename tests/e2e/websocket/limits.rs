//! `websocket` at its limits: the firmware's timers on silent servers, messages past the heap and
//! past 16 bits of length, and errors inside callbacks.

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::thread::JoinHandle;

use tungstenite::Message;

use super::{SHOW, lines, ok, push, serve};
use crate::support::{Ran, run_lua};

/// A server that takes the connection and answers nothing (`upgrade`: after a proper upgrade).
fn silent(upgrade: bool) -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut keep = tcp.try_clone().unwrap();
        if upgrade {
            // Never read again: pings go unanswered.
            let _ws = tungstenite::accept(tcp).unwrap();
        }
        let mut b = [0u8; 4096];
        // Hold the connection until the device hangs up (reading only to see the end).
        while !upgrade && matches!(keep.read(&mut b), Ok(n) if n > 0) {}
        if upgrade {
            std::thread::sleep(std::time::Duration::from_secs(3));
            while matches!(keep.read(&mut b), Ok(n) if n > 0) {}
        }
    });
    (port, t)
}

/// Runs a client against `port` that prints the close status and the whole seconds it took.
fn timed(port: u16, extra: &'static str) -> JoinHandle<Ran> {
    std::thread::spawn(move || {
        run_lua(
            &format!(
                r#"{SHOW}
local t0 = tmr.now()
ws:on("close", function(c, status) print("close", status, math.floor((tmr.now() - t0) / 1000000)) end)
{extra}
ws:connect("ws://127.0.0.1:{port}/")
"#
            ),
            &[],
        )
    })
}

/// The connect timeout (no answer to the upgrade: 10 s) and the forced close of a `close()` the
/// server never answers (5 s). The 30 s pings of a silent connection are the engine's unit tests'.
#[test]
fn the_firmware_timers_end_silent_connections() {
    let (port, t1) = silent(false);
    let no_upgrade = timed(port, "");
    let (port, t2) = silent(true);
    let unanswered = timed(
        port,
        r#"ws:on("connection", function(c) print("connection") c:close() end)"#,
    );
    let (no_upgrade, unanswered) = (no_upgrade.join().unwrap(), unanswered.join().unwrap());
    t1.join().unwrap();
    t2.join().unwrap();
    ok(&no_upgrade);
    ok(&unanswered);
    assert_eq!(no_upgrade.stdout, "close\t-18\t10\n");
    assert_eq!(unanswered.stdout, "connection\nclose\t-99\t5\n");
}

#[test]
fn big_messages_split_across_reads_arrive_whole_and_past_the_heap_fail_with_minus_nine() {
    let server = || {
        serve(|ws, log| {
            let body: String = (0..5000u32)
                .map(|i| (b'a' + (i % 26) as u8) as char)
                .collect();
            ws.send(Message::Text(body.into())).unwrap();
            if let Ok(Message::Text(t)) = ws.read() {
                push(log, format!("got {}", t.len()));
            }
            ws.send(Message::Binary(vec![7u8; 60_000].into())).unwrap();
            while ws.read().is_ok() {}
        })
    };
    let script = |port: u16, reply: usize| {
        format!(
            r#"{SHOW}
ws:on("receive", function(c, msg, op)
  print("receive", #msg, op, msg:sub(1, 3), msg:byte(-1))
  if op == 1 then c:send(("x"):rep({reply})) else c:close() end
end)
ws:connect("ws://127.0.0.1:{port}/")
"#
        )
    };
    // The ESP8266 has no heap for a 60000-byte frame.
    let (port, log, t) = server();
    let ran = run_lua(&script(port, 3000), &[]);
    ok(&ran);
    t.join().unwrap();
    assert_eq!(
        lines(&ran.stdout),
        [
            "connection\ttrue",
            "receive\t5000\t1\tabc\t104",
            "close\ttrue\t-9"
        ]
    );
    assert!(log.lock().unwrap().contains(&"got 3000".to_string()));
    // On the host profile it arrives; 70000 bytes go out as the firmware's 16-bit length lets
    // them: 70000 - 65536.
    let (port, log, t) = server();
    let ran = run_lua(&script(port, 70_000), &["--target", "host"]);
    ok(&ran);
    t.join().unwrap();
    assert_eq!(
        lines(&ran.stdout),
        [
            "connection\ttrue",
            "receive\t5000\t1\tabc\t104",
            "receive\t60000\t2\t\u{7}\u{7}\u{7}\t7",
            "close\ttrue\t-6"
        ]
    );
    assert!(log.lock().unwrap().contains(&"got 4464".to_string()));
}

#[test]
fn an_error_in_a_callback_panics_before_3_0_and_goes_to_the_handler_after() {
    let dead = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = format!(
        "ws = websocket.createClient()
ws:on('close', function(c, status) error('boom ' .. status) end)
ws:connect('ws://127.0.0.1:{dead}/')"
    );
    let v22 = run_lua(&script, &["--firmware", "2.2"]);
    assert_eq!(v22.status, 4, "{}", v22.stderr);
    assert!(
        v22.stderr
            .contains("PANIC: unprotected error in call to Lua API (init.lua:2: boom -109)"),
        "{}",
        v22.stderr
    );
    let v30 = run_lua(&script, &[]);
    assert_eq!(v30.status, 3, "{}", v30.stderr);
    assert!(
        v30.stdout
            .starts_with("init.lua:2: boom -109\nstack traceback:"),
        "{}",
        v30.stdout
    );
}
