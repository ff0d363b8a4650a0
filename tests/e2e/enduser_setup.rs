//! `enduser_setup`: a browser-like client walks the captive portal as a phone does (the page,
//! the network list, a wrong password, the right one, the status until connected) against the
//! simulator, with the `[wifi]` access points of the project file deciding the password; the
//! portal's DNS server; `manual` and `stop`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};

use crate::support::{BIN, Flash, run_cmd, wait};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP exchange: the raw request out, the whole reply (the portal closes after it).
fn exchange(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the portal");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn get(port: u16, path: &str) -> String {
    exchange(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 192.168.4.1\r\nUser-Agent: test\r\n\r\n"),
    )
}

/// Polls `/status` until its text is `want`.
fn wait_status(port: u16, want: &str) -> String {
    let start = Instant::now();
    loop {
        let r = get(port, "/status");
        if r.ends_with(want) {
            return r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "status never became {want:?}; last: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

const PROJECT: &str = r#"
[wifi]
saved = false

[[wifi.ap]]
ssid = "home"
pwd = "secret"
channel = 6
rssi = -55

[[wifi.ap]]
ssid = "cafe \"free\""
channel = 11
rssi = -80
"#;

const SCRIPT: &str = r#"
enduser_setup.start(
  function()
    print("connected", wifi.sta.getip(), wifi.getmode())
    tmr.create():alarm(11000, tmr.ALARM_SINGLE, function()
      print("after", wifi.getmode(), wifi.sta.status())
    end)
  end,
  function(err, str) print("error", err, str) end
)
"#;

#[test]
fn a_browser_walks_the_portal_from_the_page_to_connected() {
    let (http, dns) = (free_port(), free_port());
    let flash = Flash::new(&[("init.lua", SCRIPT), ("nodemcu-sim.toml", PROJECT)]);
    let mut child = Command::new(BIN)
        .arg("run")
        .arg(flash.file("init.lua"))
        .args(["--port-map", &format!("80={http}")])
        .args(["--port-map", &format!("53={dns}")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The portal is up once its port answers.
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", http)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "no portal");
        std::thread::sleep(Duration::from_millis(50));
    }

    let page = get(http, "/");
    assert!(
        page.starts_with(
            "HTTP/1.1 200 OK\r\nCache-control:no-cache\r\nConnection:close\r\n\
             Content-Type:text/html; charset=utf-8\r\nContent-length:"
        ),
        "{page}"
    );
    for field in [
        "action=\"/setwifi\"",
        "method=\"POST\"",
        "name=\"wifi_ssid\"",
        "name=\"wifi_password\"",
        "/aplist",
        "/status.json",
    ] {
        assert!(page.contains(field), "{field} missing from the page");
    }

    let aplist = get(http, "/aplist");
    let body = "[{\"ssid\":\"home\",\"rssi\":-55,\"chan\":6,\"auth\":3},\
                {\"ssid\":\"cafe \\\"free\\\"\",\"rssi\":-80,\"chan\":11,\"auth\":0}]";
    assert_eq!(
        aplist,
        format!(
            "HTTP/1.1 200 OK\r\nConnection:close\r\nCache-control:no-cache\r\n\
             Access-Control-Allow-Origin: *\r\nContent-type:application/json\r\n\
             Content-length:{:4}\r\n\r\n{body}",
            body.len()
        )
    );
    let json = "{\"deviceid\":\"C0FFEE\", \"status\":0}";
    assert_eq!(
        get(http, "/status.json?n=1"),
        format!(
            "HTTP/1.1 200 OK\r\nCache-Control: no-cache\r\nConnection: close\r\n\
             Access-Control-Allow-Origin: *\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{json}",
            json.len()
        )
    );

    // Captive portal checks: any other page redirects, the DNS server answers every name.
    assert!(
        get(http, "/generate_204")
            .starts_with("HTTP/1.1 302 Moved\r\nLocation: http://nodemcu.portal/\r\n")
    );
    let q = {
        let mut m = Message::new(77, MessageType::Query, OpCode::Query);
        let name = Name::from_ascii("connectivitycheck.gstatic.com.").unwrap();
        m.add_query(Query::query(name, RecordType::A));
        m.to_vec().unwrap()
    };
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    udp.send_to(&q, SocketAddrV4::new(Ipv4Addr::LOCALHOST, dns))
        .unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = udp.recv_from(&mut buf).expect("DNS answer");
    let a = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(a.metadata.id, 77);
    assert_eq!(a.answers.len(), 1);
    assert_eq!(a.answers[0].ttl, 120);
    assert_eq!(
        a.answers[0].data,
        RData::A(Ipv4Addr::new(192, 168, 4, 1).into())
    );

    // A wrong password: the firmware reports it through the status, not the error callback.
    assert_eq!(
        get(http, "/update?wifi_ssid=home&wifi_password=wrong"),
        "HTTP/1.1 302 Moved\r\nLocation: http://nodemcu.portal/\r\nContent-Length:0\r\nConnection:close\r\n\r\n"
    );
    wait_status(http, "Failed to connect to \"home\" - Wrong password.");
    assert!(get(http, "/status.json").ends_with("\"status\":2}"));
    assert!(get(http, "/update?wifi_password=x").starts_with("HTTP/1.1 400 Bad request\r\n"));

    // The form, as a browser posts it.
    let form = "wifi_ssid=home&wifi_password=secret&device_name=kitchen+shelf";
    let posted = exchange(
        http,
        &format!(
            "POST /setwifi HTTP/1.1\r\nHost: 192.168.4.1\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    );
    assert_eq!(
        posted,
        "HTTP/1.1 302 Moved\r\nLocation: /?trying=true\r\nContent-Length:0\r\nConnection:close\r\n\r\n"
    );
    let text = "Connected to \"home\" (127.0.0.1).";
    let connected = wait_status(http, text);
    assert!(connected.starts_with(&format!(
        "HTTP/1.1 200 OK\r\nCache-control:no-cache\r\nConnection:close\r\n\
         Access-Control-Allow-Origin: *\r\nContent-type:text/plain\r\nContent-length: {}\r\n\r\n",
        text.len()
    )));
    assert!(get(http, "/status.json").ends_with("{\"deviceid\":\"127.0.0.1\", \"status\":5}"));
    assert!(
        exchange(http, "PUT / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 Method Not Allowed")
    );
    assert!(exchange(http, "POST /other HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 Not found"));

    // The portal shuts down 10 s after success; the AP goes with it.
    let status = wait(&mut child, Duration::from_secs(40));
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(status, 0, "{out}");
    assert_eq!(out, "connected\t127.0.0.1\t3\nafter\t1\t5\n");
    assert!(TcpStream::connect(("127.0.0.1", http)).is_err());
    assert_eq!(
        std::fs::read_to_string(flash.file("eus_params.lua")).unwrap(),
        "local p={}\np.wifi_ssid=\"home\"\np.wifi_password=\"secret\"\n\
         p.device_name=\"kitchen shelf\"\nreturn p\n"
    );
}

#[test]
fn manual_mode_leaves_the_ap_to_the_script_and_stop_ends_the_portal() {
    let (http, dns) = (free_port(), free_port());
    let script = r#"
      print(enduser_setup.manual(), enduser_setup.manual(true), enduser_setup.manual(nil))
      wifi.setmode(wifi.STATIONAP)
      enduser_setup.start("MyPortal")
      print(wifi.getmode(), wifi.ap.getconfig())
      enduser_setup.stop()
      print(wifi.getmode(), enduser_setup.manual(false))
      enduser_setup.start("MyPortal")
      tmr.create():alarm(2000, tmr.ALARM_SINGLE, function()
        print(wifi.getmode(), (wifi.ap.getconfig()))
        enduser_setup.stop()
        print(wifi.getmode())
      end)
    "#;
    let flash = Flash::new(&[("init.lua", script)]);
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .arg(flash.file("init.lua"))
        .args(["--virtual-time", "--port-map", &format!("80={http}")])
        .args(["--port-map", &format!("53={dns}")]);
    let r = run_cmd(cmd, Duration::from_secs(30));
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "false\ttrue\ttrue\n3\tESP_C0FFEE\tnil\n3\tfalse\n3\tMyPortal\n1\n"
    );
}

/// Firmware 1.5 and 2.2: credentials by `GET /setwifi?` (answered with the JSON status), 204 for
/// Android's check, 404 for other pages, no POST, no `auth` in the list, the `SetupGadget` AP.
#[test]
fn older_generations_take_credentials_by_get_and_answer_404() {
    for fw in ["2.2", "1.5"] {
        let (http, dns) = (free_port(), free_port());
        let script = r#"
          enduser_setup.start(function()
            print("connected", (wifi.ap.getconfig()))
          end)
        "#;
        let flash = Flash::new(&[("init.lua", script), ("nodemcu-sim.toml", PROJECT)]);
        let mut child = Command::new(BIN)
            .arg("run")
            .arg(flash.file("init.lua"))
            .args(["--firmware", fw, "--port-map", &format!("80={http}")])
            .args(["--port-map", &format!("53={dns}")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", http)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "no portal");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(get(http, "/").starts_with(
            "HTTP/1.1 200 OK\r\nCache-control:no-cache\r\nConnection:close\r\nContent-Type:text/html\r\n"
        ));
        assert!(get(http, "/aplist").ends_with(
            "[{\"ssid\":\"home\",\"rssi\":-55,\"chan\":6},\
             {\"ssid\":\"cafe \\\"free\\\"\",\"rssi\":-80,\"chan\":11}]"
        ));
        assert_eq!(
            get(http, "/generate_204"),
            "HTTP/1.1 204 No Content\r\nContent-Length:0\r\nConnection:close\r\n\r\n"
        );
        assert_eq!(
            get(http, "/?x"),
            "HTTP/1.1 404 Not found\r\nContent-Length:0\r\nConnection:close\r\n\r\n"
        );
        assert!(exchange(http, "POST /setwifi HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
        let set = get(http, "/setwifi?wifi_ssid=home&wifi_password=secret");
        assert!(
            set.ends_with("{\"deviceid\":\"C0FFEE\", \"status\":0}"),
            "{set}"
        );
        wait_status(http, "Connected to \"home\" (127.0.0.1).");
        let json = get(http, "/status.json");
        let id = if fw == "1.5" { "C0FFEE" } else { "127.0.0.1" };
        assert!(
            json.ends_with(&format!("{{\"deviceid\":\"{id}\", \"status\":5}}")),
            "{fw}: {json}"
        );
        let status = wait(&mut child, Duration::from_secs(40));
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(status, 0, "{fw}: {out}");
        assert_eq!(out, "connected\tSetupGadget_C0FFEE\n", "{fw}");
    }
}

/// A reset ends the portal with the boot: the next boot's portal gets the same ports.
#[test]
fn a_restarted_device_can_start_its_portal_again() {
    let (http, dns) = (free_port(), free_port());
    let script = r#"
      local again = file.exists("boots")
      file.putcontents("boots", "1")
      enduser_setup.start()
      tmr.create():alarm(300, tmr.ALARM_SINGLE, function()
        if again then print("second boot") enduser_setup.stop() else node.restart() end
      end)
    "#;
    let flash = Flash::new(&[("init.lua", script)]);
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .arg(flash.file("init.lua"))
        .args(["--on-reset", "restart", "--port-map", &format!("80={http}")])
        .args(["--port-map", &format!("53={dns}")]);
    let r = run_cmd(cmd, Duration::from_secs(30));
    assert_eq!(r.status, 0, "{r:?}");
    assert!(r.stdout.ends_with("second boot\n"), "{r:?}");
    assert!(!r.stderr.contains("cannot start"), "{r:?}");
}
