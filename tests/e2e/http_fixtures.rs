//! `fixtures/http`: the weather node and the dashboard client, each run unmodified against real
//! servers on loopback (a small HTTP API made here with `std::net`, a WebSocket server with
//! `tungstenite`), reached through the project file's `resolve` names and a `config.lua` with the
//! servers' ports.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};

use tungstenite::Message;

use crate::support::{BIN, Ran, run_cmd};

/// A copy of the fixture with `config.lua` pointing at `api_port` and `ws_port`.
fn fixture(api_port: u16, ws_port: u16) -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/http");
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        dir.path().join("config.lua"),
        format!(
            "return {{ api = 'http://api.weather.test:{api_port}', \
             dashboard = 'ws://dashboard.test:{ws_port}/live', station = 'garden' }}"
        ),
    )
    .unwrap();
    dir
}

fn run(dir: &Path, script: &str) -> Ran {
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("run").arg(dir.join(script));
    run_cmd(cmd, std::time::Duration::from_secs(30))
}

/// The weather API: answers GET /v1/current with JSON, records the body of POST /v1/readings.
fn api(seen: Arc<Mutex<Vec<String>>>) -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut req = Vec::new();
            let mut b = [0u8; 1024];
            let head_end = loop {
                match conn.read(&mut b) {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => req.extend_from_slice(&b[..n]),
                }
                if let Some(i) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                    break Some(i + 4);
                }
            };
            let Some(head_end) = head_end else { continue };
            let head = String::from_utf8_lossy(&req[..head_end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while req.len() < head_end + len {
                match conn.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&b[..n]),
                }
            }
            let body = String::from_utf8_lossy(&req[head_end..]).to_string();
            let line = head.lines().next().unwrap_or("").to_string();
            seen.lock().unwrap().push(format!("{line} {body}"));
            let (ctype, reply) = if line.starts_with("GET /v1/current?station=garden ") {
                (
                    "application/json",
                    r#"{"temp":12.5,"unit":"C","station":"garden"}"#,
                )
            } else if line.starts_with("POST /v1/readings ") {
                ("text/plain", "stored")
            } else {
                ("text/plain", "not found")
            };
            let _ = conn.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                )
                .as_bytes(),
            );
        }
    });
    port
}

#[test]
fn the_weather_node_fetches_json_and_posts_its_reading() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let port = api(seen.clone());
    let dir = fixture(port, 1);
    let ran = run(dir.path(), "weather.lua");
    assert_eq!(ran.status, 0, "{}", ran.stderr);
    assert_eq!(
        ran.stdout,
        "outside\t12.5\tC\tapplication/json\nposted\t200\tstored\n"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0], "GET /v1/current?station=garden HTTP/1.1 ");
    assert!(
        seen[1].starts_with("POST /v1/readings HTTP/1.1 {"),
        "{seen:?}"
    );
    for field in [r#""station":"garden""#, r#""temp":21.5"#, r#""delta":9"#] {
        assert!(seen[1].contains(field), "{field} in {seen:?}");
    }
}

#[test]
fn the_dashboard_client_streams_readings_and_obeys_the_server() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let station = Arc::new(Mutex::new(String::new()));
        let s = station.clone();
        let mut ws = tungstenite::accept_hdr(
            tcp,
            move |req: &tungstenite::handshake::server::Request, resp| {
                *s.lock().unwrap() = format!(
                    "{} {}",
                    req.uri(),
                    req.headers()["x-station"].to_str().unwrap()
                );
                Ok(resp)
            },
        )
        .unwrap();
        let mut got = Vec::new();
        while let Ok(msg) = ws.read() {
            match msg {
                Message::Text(t) => {
                    got.push(t.to_string());
                    if got.len() == 2 {
                        ws.send(Message::Text(r#"{"cmd":"interval","ms":50}"#.into()))
                            .unwrap();
                    }
                    if got.len() == 4 {
                        ws.send(Message::Text(r#"{"cmd":"stop"}"#.into())).unwrap();
                    }
                }
                Message::Close(_) => {}
                _ => {}
            }
        }
        let station = station.lock().unwrap().clone();
        (station, got)
    });
    let dir = fixture(1, port);
    let ran = run(dir.path(), "dashboard.lua");
    let (station, got) = server.join().unwrap();
    assert_eq!(ran.status, 0, "{}", ran.stderr);
    assert_eq!(station, "/live garden");
    // The stop reaches the device within one period of the fourth reading, so on a loaded host a
    // fifth may already be on its way: the device reports how many it sent.
    let n = got.len();
    assert!(n >= 4, "{got:?}");
    assert_eq!(
        ran.stdout,
        format!("connected\ninterval\t50\nstopping after\t{n}\nclosed\t-6\n")
    );
    let expected: Vec<String> = (1..=n).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
    assert_eq!(got, expected);
}
