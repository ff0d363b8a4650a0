//! `enduser_setup` in a real browser: headless Chromium, driven over its DevTools protocol (CDP
//! JSON on a WebSocket, spoken with `tungstenite`), opens the portal the simulator serves on
//! loopback, waits for the network list, picks the network, types the password, submits the form
//! and watches the page until it reports the station connected, while the device's script prints
//! from its success callback. What a hand-written client cannot show is checked here: the page's
//! script runs without errors, the browser's parallel and speculative connections, its favicon
//! request, and the redirect after the POST.
//!
//! Chromium is a requirement of the test suite (`.ci/run` installs it); without it the test fails
//! saying so rather than skipping.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

use crate::support::{BIN, Flash};

/// The walk takes about 18 s (10 of them the portal's shutdown delay); each wait has its own
/// bound, so a stuck browser or device fails the test instead of hanging it.
const SHUTDOWN: Duration = Duration::from_secs(15);

const PROJECT: &str = r#"
[wifi]
saved = false

[[wifi.ap]]
ssid = "home"
pwd = "secret"
channel = 6
rssi = -55

[[wifi.ap]]
ssid = "attic"
pwd = "other"
channel = 1
rssi = -71
"#;

const SCRIPT: &str = r#"
enduser_setup.start(
  function() print("connected", wifi.sta.getip(), wifi.sta.getconfig()) end,
  function(err, str) print("error", err, str) end
)
"#;

/// Kills a child process when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A line reader on another thread, so waits on a child's output have deadlines.
fn lines(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Headless Chromium with a fresh profile. Every host name leads to the portal's port, as the
/// portal's DNS server makes every name 192.168.4.1 on the board; so the browser never leaves
/// loopback.
fn chromium(profile: &std::path::Path, portal: u16) -> (Reaped, String) {
    let child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--host-rules=MAP * 127.0.0.1:{portal}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => Reaped(c),
        Err(e) => panic!(
            "this test needs Chromium (`chromium` on PATH; Debian: apt-get install chromium, as \
             .ci/run does): {e}"
        ),
    };
    let stderr = lines(child.0.stderr.take().unwrap());
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        let left = Duration::from_secs(15).saturating_sub(start.elapsed());
        match stderr.recv_timeout(left) {
            Ok(line) => {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    // The rest of its stderr is drained so Chromium never blocks on the pipe.
                    std::thread::spawn(move || for _ in stderr {});
                    return (child, url.trim().to_string());
                }
                seen.push(line);
            }
            Err(_) => panic!(
                "Chromium did not announce its DevTools endpoint within 15 s; stderr:\n{}",
                seen.join("\n")
            ),
        }
    }
}

/// A CDP session on one page, over the browser's WebSocket (flattened sessions).
struct Cdp {
    ws: WebSocket<TcpStream>,
    next: u64,
    session: Option<String>,
    /// Uncaught exceptions, console errors and failed requests the page reported.
    errors: Vec<String>,
    /// Each response the page got: status and URL.
    seen: Vec<String>,
}

impl Cdp {
    fn connect(url: &str) -> Cdp {
        let addr = url
            .strip_prefix("ws://")
            .and_then(|r| r.split('/').next())
            .expect("a ws:// DevTools URL");
        let stream = TcpStream::connect(addr).expect("connect to DevTools");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (ws, _) = tungstenite::client(url, stream).expect("DevTools WebSocket handshake");
        Cdp {
            ws,
            next: 0,
            session: None,
            errors: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// One command and its result; events read meanwhile are noted.
    fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .expect("send to DevTools");
        loop {
            let frame = self.ws.read().expect("read from DevTools (10 s bound)");
            let Message::Text(text) = frame else {
                continue;
            };
            let v: Value = serde_json::from_str(text.as_str()).expect("CDP JSON");
            if v["id"].as_u64() == Some(id) {
                return match v.get("error") {
                    Some(e) => Err(e.to_string()),
                    None => Ok(v["result"].clone()),
                };
            }
            self.note(&v);
        }
    }

    fn note(&mut self, event: &Value) {
        let p = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.exceptionThrown") => self.errors.push(p["exceptionDetails"].to_string()),
            Some("Runtime.consoleAPICalled") if p["type"] == "error" => {
                self.errors.push(p["args"].to_string())
            }
            Some("Network.responseReceived") => self.saw(&p["response"]),
            // A redirect is reported with the request it leads to.
            Some("Network.requestWillBeSent") if p["redirectResponse"].is_object() => {
                self.saw(&p["redirectResponse"])
            }
            // Requests cut short when the page moves on are the browser's doing, not failures.
            Some("Network.loadingFailed") if p["canceled"] != true => {
                self.errors.push(p.to_string())
            }
            _ => {}
        }
    }

    fn saw(&mut self, response: &Value) {
        let url = response["url"].as_str().unwrap_or_default();
        self.seen.push(format!("{} {url}", response["status"]));
    }

    /// A JavaScript expression's value; `Err` while the page is between documents.
    fn eval(&mut self, expr: &str) -> Result<Value, String> {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expr, "returnByValue": true }),
        )?;
        match r.get("exceptionDetails") {
            Some(e) => Err(e.to_string()),
            None => Ok(r["result"]["value"].clone()),
        }
    }

    /// Evaluates `expr` until it gives a string containing `want`.
    fn wait_for(&mut self, expr: &str, want: &str, limit: Duration) -> String {
        let start = Instant::now();
        let mut last = Err(String::new());
        while start.elapsed() < limit {
            last = self.eval(expr);
            if let Ok(Value::String(s)) = &last
                && s.contains(want)
            {
                return s.clone();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the page never showed {want:?} for `{expr}` within {limit:?}; last: {last:?}");
    }
}

#[test]
fn headless_chromium_sets_up_wifi_through_the_portal() {
    let (http, dns) = (free_port(), free_port());
    let flash = Flash::new(&[("init.lua", SCRIPT), ("nodemcu-sim.toml", PROJECT)]);
    let mut sim = Reaped(
        Command::new(BIN)
            .arg("run")
            .arg(flash.file("init.lua"))
            .args(["--port-map", &format!("80={http}")])
            .args(["--port-map", &format!("53={dns}")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nodemcu-sim"),
    );
    let device = lines(sim.0.stdout.take().unwrap());
    let device_err = lines(sim.0.stderr.take().unwrap());
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", http)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "no portal");
        std::thread::sleep(Duration::from_millis(50));
    }

    let profile = tempfile::tempdir().unwrap();
    let (browser, url) = chromium(profile.path(), http);
    let mut cdp = Cdp::connect(&url);
    let target = cdp
        .call("Target.createTarget", json!({ "url": "about:blank" }))
        .expect("open a tab");
    let attached = cdp
        .call(
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        )
        .expect("attach to the tab");
    cdp.session = attached["sessionId"].as_str().map(str::to_string);
    cdp.call("Runtime.enable", json!({})).unwrap();
    cdp.call("Page.enable", json!({})).unwrap();
    cdp.call("Network.enable", json!({})).unwrap();

    // A phone's connectivity check lands on the portal through its redirect.
    let check = "http://connectivitycheck.gstatic.com/generate_204";
    let nav = cdp
        .call("Page.navigate", json!({ "url": check }))
        .expect("navigate");
    assert!(nav.get("errorText").is_none(), "navigation failed: {nav}");
    assert_eq!(
        cdp.wait_for(
            "document.title + ' ' + location.href",
            "Wi-Fi",
            Duration::from_secs(10)
        ),
        "Wi-Fi setup http://nodemcu.portal/"
    );

    // The list fills from /aplist after the scan, strongest first.
    let list = cdp.wait_for(
        "Array.from(document.querySelectorAll('#aplist option')).map(o => o.textContent).join('|')",
        "attic",
        Duration::from_secs(10),
    );
    assert_eq!(
        list,
        "Choose a network|home (-55 dBm, channel 6)|attic (-71 dBm, channel 1)"
    );
    assert_eq!(
        cdp.eval("document.getElementById('status').textContent")
            .unwrap(),
        "Idle"
    );

    // Pick the network as a user does (the list fills the name field), type the password, submit.
    cdp.eval(
        "var l = document.getElementById('aplist'); l.value = 'home'; \
         l.dispatchEvent(new Event('change')); \
         document.getElementById('wifi_password').value = 'secret'; \
         document.querySelector('button[type=submit]').click(); 'sent'",
    )
    .expect("fill and submit the form");

    // The POST redirects to the page again, which polls /status.json until connected.
    let shown = cdp.wait_for(
        "location.pathname + location.search + ' ' + document.getElementById('status').textContent",
        "connected",
        Duration::from_secs(15),
    );
    assert_eq!(shown, "/?trying=true Wi-Fi successfully connected!");
    assert_eq!(
        cdp.eval("document.getElementById('device').textContent")
            .unwrap(),
        "Device: 127.0.0.1"
    );
    assert!(
        cdp.errors.is_empty(),
        "the page reported errors: {:?}",
        cdp.errors
    );
    for want in [
        format!("302 {check}"),
        "200 http://nodemcu.portal/".into(),
        "200 http://nodemcu.portal/?trying=true".into(),
    ] {
        assert!(cdp.seen.contains(&want), "no {want:?} in {:?}", cdp.seen);
    }
    for endpoint in ["aplist", "status.json"] {
        let url = format!("200 http://nodemcu.portal/{endpoint}?n=");
        assert!(
            cdp.seen.iter().any(|s| s.starts_with(&url)),
            "no {url:?} in {:?}",
            cdp.seen
        );
    }

    // The device saw the same: its success callback ran with the station up.
    let printed = device
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|_| {
            let err: Vec<String> = device_err.try_iter().collect();
            panic!("the device printed nothing; stderr: {err:?}")
        });
    assert_eq!(
        printed,
        "connected\t127.0.0.1\thome\tsecret\t0\t00:00:00:00:00:00"
    );
    assert_eq!(
        std::fs::read_to_string(flash.file("eus_params.lua")).unwrap(),
        "local p={}\np.aplist=\"home\"\np.wifi_ssid=\"home\"\np.wifi_password=\"secret\"\nreturn p\n"
    );

    // The portal shuts down 10 s after success, and the device's run ends, while the page still
    // polls and the browser holds its connections.
    assert_eq!(crate::support::wait(&mut sim.0, SHUTDOWN), 0);
    assert!(TcpStream::connect(("127.0.0.1", http)).is_err());
    let _ = cdp.call("Browser.close", json!({}));
    drop(browser);
}
