//! The portal's web server: the firmware's endpoints, byte for byte where a client can see it.
//!
//! | request | reply |
//! |---|---|
//! | `GET /`, `GET /?...` | the page: `enduser_setup.html` from flash if present (gzip detected by its magic), else the built-in page |
//! | `GET /aplist` | after a scan, `[{"ssid":..,"rssi":..,"chan":..,"auth":..}]`; 204 while the station is connecting |
//! | `GET /status.json` | `{"deviceid":"<chip id>", "status":N}` (the IP as deviceid once connected) |
//! | `GET /status` | the status as text: `Connecting to "x".`, `Connected to "x" (ip).`, ... |
//! | `GET /update?wifi_ssid=..&wifi_password=..` | credentials taken: 302 to `http://nodemcu.portal/`; bad: 400 |
//! | `POST /setwifi` (form body) | credentials taken, the form saved to `eus_params.lua`: 302 to `/?trying=true`; bad: 400 |
//! | `OPTIONS` | the firmware's CORS answers |
//! | any other `GET` | 302 to `http://nodemcu.portal/` (the captive portal trigger) |
//! | other `POST` / methods | 404 / 405 |
//!
//! Firmware 1.5 and 2.2 differ: `GET /` only (no `/?`), `GET /setwifi?...` takes credentials and
//! answers with the JSON status, `GET /generate_204` is a 204, other pages are 404, `POST` is 405,
//! `/aplist` has no `auth`, relative redirects, empty error bodies, no charset on the page.
//!
//! Requests are matched on their first bytes as the firmware's `strncmp`s do. A request is read
//! until its head ends and its `Content-Length` body arrived. Each is answered on the Lua thread
//! (the station and the portal state live there), then the connection is closed.
//!
//! The web server listens on port 80 where a device's server would (127.0.0.1 unless `--expose`),
//! through `--port-map` / `--port-offset`.

use std::net::Ipv4Addr;
use std::rc::Rc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use super::{Portal, current};
use crate::config::Firmware;
use crate::modules::node::CHIP_ID;
use crate::modules::wifi::{self, StaConfig};
use crate::runtime::{Priority, Runtime};

const HTTP_PORT: u16 = 80;
/// The largest request head and body taken (the firmware keeps them in RAM).
const MAX_REQUEST: usize = 8192;

const HEADER_200: &str = "HTTP/1.1 200 OK\r\nCache-control:no-cache\r\nConnection:close\r\nContent-Type:text/html; charset=utf-8\r\n";
const HEADER_204: &str = "HTTP/1.1 204 No Content\r\nContent-Length:0\r\nConnection:close\r\n\r\n";
const HEADER_302: &str = "HTTP/1.1 302 Moved\r\nLocation: http://nodemcu.portal/\r\nContent-Length:0\r\nConnection:close\r\n\r\n";
const HEADER_302_TRYING: &str =
    "HTTP/1.1 302 Moved\r\nLocation: /?trying=true\r\nContent-Length:0\r\nConnection:close\r\n\r\n";
const HEADER_400: &str = "HTTP/1.1 400 Bad request\r\nContent-Length:0\r\nConnection:close\r\n\r\n";
const HEADER_404: &str =
    "HTTP/1.1 404 Not found\r\nContent-Length:10\r\nConnection:close\r\n\r\nNot found\n";
const HEADER_405: &str =
    "HTTP/1.1 405 Method Not Allowed\r\nContent-Length:0\r\nConnection:close\r\n\r\n";

/// Firmware 1.5 and 2.2: no charset, a relative redirect, empty error bodies.
const LEGACY_HEADER_200: &str =
    "HTTP/1.1 200 OK\r\nCache-control:no-cache\r\nConnection:close\r\nContent-Type:text/html\r\n";
const LEGACY_HEADER_302: &str =
    "HTTP/1.1 302 Moved\r\nLocation: /\r\nContent-Length:0\r\nConnection:close\r\n\r\n";
const LEGACY_HEADER_404: &str =
    "HTTP/1.1 404 Not found\r\nContent-Length:0\r\nConnection:close\r\n\r\n";
const HEADER_500: &str =
    "HTTP/1.1 500 Internal Error\r\nContent-Length:6\r\nConnection:close\r\n\r\nError\n";
const LEGACY_HEADER_500: &str =
    "HTTP/1.1 500 Internal Error\r\nContent-Length:0\r\nConnection:close\r\n\r\n";

/// The page served when the flash holds none: ours, with the firmware page's form fields and
/// endpoints.
const PAGE: &str = include_str!("page.html");

pub(super) fn start(rt: &Rc<Runtime>, p: &Rc<Portal>) -> std::io::Result<()> {
    let addr = crate::net::host_bind_addr(rt, Ipv4Addr::UNSPECIFIED, HTTP_PORT);
    let listener = Rc::new(host_backend::tcp::listen(addr)?);
    *p.listener.borrow_mut() = Some(listener.clone());
    let (sink, weak_rt, weak_p) = (rt.event_sink(), Rc::downgrade(rt), Rc::downgrade(p));
    let task = tokio::task::spawn_local(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (sink, weak_rt, weak_p) = (sink.clone(), weak_rt.clone(), weak_p.clone());
            tokio::task::spawn_local(async move {
                let Some(req) = read_request(&mut stream).await else {
                    return;
                };
                let (tx, rx) = oneshot::channel::<Vec<u8>>();
                sink.push(Box::new(move |_| {
                    if let Some(rt) = weak_rt.upgrade()
                        && let Some(p) = current(&rt, &weak_p)
                    {
                        route(&rt, &p, &req, tx);
                    }
                    Ok(())
                }));
                if let Ok(reply) = rx.await {
                    let _ = stream.write_all(&reply).await;
                }
                let _ = stream.shutdown().await;
            });
        }
    });
    p.servers.borrow_mut().push(task);
    Ok(())
}

/// Reads one request: its head, and the body its `Content-Length` announces.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1460];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let body = end + 4;
            let want = content_length(&buf[..end]).unwrap_or(0);
            if buf.len() >= body + want || buf.len() >= MAX_REQUEST {
                return Some(buf);
            }
        }
        if buf.len() >= MAX_REQUEST {
            return Some(buf);
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return (!buf.is_empty()).then_some(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &[u8]) -> Option<usize> {
    let head = String::from_utf8_lossy(head);
    head.split("\r\n").find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

fn legacy(rt: &Runtime) -> bool {
    rt.cfg.firmware < Firmware::V3_0
}

/// `enduser_setup_http_recvcb`'s dispatch.
fn route(rt: &Rc<Runtime>, p: &Rc<Portal>, req: &[u8], tx: oneshot::Sender<Vec<u8>>) {
    let at = |i: usize, s: &str| req.get(i..).is_some_and(|r| r.starts_with(s.as_bytes()));
    if at(0, "GET ") && at(4, "/aplist") {
        if p.connecting.get() {
            let _ = tx.send(HEADER_204.into());
            return;
        }
        // The reply waits for the scan, as the firmware's scan listener does.
        let weak = Rc::downgrade(p);
        let r = rt.clone();
        let key = rt.arm_timer(
            wifi::SCAN,
            Box::new(move |_| {
                if let Some(p) = current(&r, &weak) {
                    let _ = tx.send(aplist(&p, !legacy(&r)));
                }
                Ok(())
            }),
        );
        p.timers.borrow_mut().push(key);
        return;
    }
    let reply = if legacy(rt) {
        route_legacy(rt, p, req)
    } else {
        route_current(rt, p, req)
    };
    let _ = tx.send(reply);
}

/// Firmware 3.0: the form is posted, every unknown page redirects to the portal.
fn route_current(rt: &Rc<Runtime>, p: &Rc<Portal>, req: &[u8]) -> Vec<u8> {
    let at = |i: usize, s: &str| req.get(i..).is_some_and(|r| r.starts_with(s.as_bytes()));
    if at(0, "GET ") {
        if at(4, "/ ") || at(4, "/?") {
            page(rt, HEADER_200)
        } else if at(4, "/status.json") {
            status_json(rt, p)
        } else if at(4, "/status") {
            status_text(p, HEADER_500)
        } else if at(4, "/update?") {
            match credentials(req) {
                Some(cfg) => {
                    configure(rt, p, cfg);
                    HEADER_302.into()
                }
                None => HEADER_400.into(),
            }
        } else {
            HEADER_302.into()
        }
    } else if at(0, "OPTIONS ") {
        options(req)
    } else if at(0, "POST ") {
        if !at(5, "/setwifi ") {
            return HEADER_404.into();
        }
        let Some(end) = find(req, b"\r\n\r\n") else {
            return HEADER_400.into();
        };
        let body = &req[end + 4..];
        match credentials(body) {
            Some(cfg) => {
                configure(rt, p, cfg);
                save_form(rt, body);
                HEADER_302_TRYING.into()
            }
            None => HEADER_400.into(),
        }
    } else {
        HEADER_405.into()
    }
}

/// Firmware 1.5 and 2.2: `GET /setwifi?` answers with the JSON status, `/generate_204` with 204,
/// unknown pages 404, no POST.
fn route_legacy(rt: &Rc<Runtime>, p: &Rc<Portal>, req: &[u8]) -> Vec<u8> {
    let at = |i: usize, s: &str| req.get(i..).is_some_and(|r| r.starts_with(s.as_bytes()));
    if at(0, "OPTIONS ") {
        return options(req);
    }
    if !at(0, "GET ") {
        return HEADER_405.into();
    }
    if at(4, "/ ") {
        page(rt, LEGACY_HEADER_200)
    } else if at(4, "/status.json") {
        status_json(rt, p)
    } else if at(4, "/status") {
        status_text(p, LEGACY_HEADER_500)
    } else if at(4, "/update?") || at(4, "/setwifi?") {
        match credentials(req) {
            Some(cfg) => {
                configure(rt, p, cfg);
                if at(4, "/update?") {
                    LEGACY_HEADER_302.into()
                } else {
                    status_json(rt, p)
                }
            }
            None => HEADER_400.into(),
        }
    } else if at(4, "/generate_204") {
        HEADER_204.into()
    } else {
        LEGACY_HEADER_404.into()
    }
}

/// The page: the flash's `enduser_setup.html` (or `.html.gz`), else ours.
fn page(rt: &Runtime, header: &str) -> Vec<u8> {
    let file = ["enduser_setup.html.gz", "enduser_setup.html"]
        .iter()
        .find_map(|name| rt.flash.read(name));
    let body = file.unwrap_or_else(|| PAGE.as_bytes().to_vec());
    let mut out = header.as_bytes().to_vec();
    if body.starts_with(&[0x1f, 0x8b]) {
        out.extend_from_slice(b"Content-Encoding: gzip\r\n");
    }
    out.extend_from_slice(format!("Content-length:{:5}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(&body);
    out
}

/// `on_scan_done`: the networks in range as JSON (`auth` from 3.0 on).
fn aplist(p: &Portal, with_auth: bool) -> Vec<u8> {
    let entries: Vec<String> = wifi::scan(&p.w)
        .iter()
        .map(|n| {
            let ssid = n.ssid.clone().unwrap_or_default();
            let escaped: String = ssid
                .bytes()
                .take(32)
                .flat_map(|b| {
                    let esc = (b == b'\\' || b == b'"').then_some(b'\\');
                    esc.into_iter().chain(std::iter::once(b))
                })
                .map(char::from)
                .collect();
            let auth = if with_auth {
                format!(",\"auth\":{}", n.auth())
            } else {
                String::new()
            };
            format!(
                "{{\"ssid\":\"{escaped}\",\"rssi\":{},\"chan\":{}{auth}}}",
                n.rssi, n.channel
            )
        })
        .collect();
    let body = format!("[{}]", entries.join(","));
    format!(
        "HTTP/1.1 200 OK\r\nConnection:close\r\nCache-control:no-cache\r\n\
         Access-Control-Allow-Origin: *\r\nContent-type:application/json\r\n\
         Content-length:{:4}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The status the endpoints report: the cached one while the station is off, else the SDK's.
fn status(p: &Portal) -> u8 {
    match p.last_status.get() {
        0 => p.w.st.borrow().status,
        s => s,
    }
}

fn status_json(rt: &Runtime, p: &Portal) -> Vec<u8> {
    let st = status(p);
    // 1.5 always reports the chip id.
    let payload = if st == 5 && rt.cfg.firmware > Firmware::V1_5 {
        if p.ipaddr.borrow().is_empty()
            && let Some(ip) = p.w.sta_ip()
        {
            *p.ipaddr.borrow_mut() = ip.ip.to_string();
        }
        format!(
            "{{\"deviceid\":\"{}\", \"status\":{st}}}",
            p.ipaddr.borrow()
        )
    } else {
        format!("{{\"deviceid\":\"{CHIP_ID:06X}\", \"status\":{st}}}")
    };
    format!(
        "HTTP/1.1 200 OK\r\nCache-Control: no-cache\r\nConnection: close\r\n\
         Access-Control-Allow-Origin: *\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{payload}",
        payload.len()
    )
    .into_bytes()
}

fn status_text(p: &Portal, header_500: &str) -> Vec<u8> {
    let st = status(p);
    let ssid: String = {
        let s = p.w.st.borrow();
        s.config
            .as_ref()
            .map(|c| c.ssid.chars().take(31).collect())
            .unwrap_or_default()
    };
    let text = match st {
        0 => "Idle.".to_string(),
        1 => format!("Connecting to \"{ssid}\"."),
        2 => format!("Failed to connect to \"{ssid}\" - Wrong password."),
        3 => format!("Failed to connect to \"{ssid}\" - Network not found."),
        4 => "Failed to connect.".to_string(),
        5 => {
            let ip = p.w.sta_ip().map(|i| i.ip.to_string()).unwrap_or_default();
            format!("Connected to \"{ssid}\" ({ip}).")
        }
        _ => return header_500.into(),
    };
    format!(
        "HTTP/1.1 200 OK\r\nCache-control:no-cache\r\nConnection:close\r\n\
         Access-Control-Allow-Origin: *\r\nContent-type:text/plain\r\n\
         Content-length: {}\r\n\r\n{text}",
        text.len()
    )
    .into_bytes()
}

fn options(req: &[u8]) -> Vec<u8> {
    let path = &req[8.min(req.len())..];
    let json = [&b"/aplist"[..], b"/setwifi?", b"/status.json"]
        .iter()
        .any(|p| path.starts_with(p));
    if json {
        b"HTTP/1.1 200 OK\r\nCache-Control: no-cache\r\nConnection: close\r\n\
          Content-Type: application/json\r\nContent-Length: 0\r\n\
          Access-Control-Allow-Origin: *\r\nAccess-Control-Allow-Methods: GET\r\n\
          Access-Control-Allow-Age: 300\r\n\r\n"
            .to_vec()
    } else {
        b"HTTP/1.1 200 OK\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            .to_vec()
    }
}

/// `enduser_setup_http_urldecode` into a buffer of `cap` bytes: `None` when the value does not
/// fit (the firmware then refuses the request).
fn urldecode(src: &[u8], cap: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < src.len() && src[i] != 0 && out.len() < cap - 1 {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (src[i], src.get(i + 1).copied(), src.get(i + 2).copied()) {
            (b'%', Some(a), Some(b)) if hex(a).is_some() && hex(b).is_some() => {
                out.push((hex(a).unwrap_or(0) * 16 + hex(b).unwrap_or(0)) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    (i >= src.len()).then_some(out)
}

/// The value after `key=` up to the next `&` or space.
fn param<'a>(data: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let at = find(data, key)? + key.len();
    let rest = &data[at..];
    let end = rest
        .iter()
        .position(|b| *b == b'&' || *b == b' ')
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// `enduser_setup_http_handle_credentials`: the SSID (32-byte field) and password (64) found in
/// `data`; no password is an open network.
fn credentials(data: &[u8]) -> Option<StaConfig> {
    let ssid = urldecode(param(data, b"wifi_ssid=")?, 32)?;
    let pwd = urldecode(param(data, b"wifi_password=").unwrap_or(b""), 64)?;
    if ssid.is_empty() {
        return None;
    }
    Some(StaConfig {
        ssid: String::from_utf8_lossy(&ssid).into_owned(),
        pwd: String::from_utf8_lossy(&pwd).into_owned(),
        bssid: None,
    })
}

/// `do_station_cfg`, run as a medium-priority task: leave, store the configuration, join.
fn configure(rt: &Rc<Runtime>, p: &Rc<Portal>, cfg: StaConfig) {
    let weak = Rc::downgrade(p);
    let r = rt.clone();
    rt.post_internal(
        Priority::Medium,
        Box::new(move |_| {
            if let Some(p) = current(&r, &weak) {
                p.connecting.set(true);
                wifi::station_disconnect(&r, &p.w);
                p.w.st.borrow_mut().config = Some(cfg.clone());
                p.w.saved.borrow_mut().store(&cfg);
                wifi::station_connect(&r, &p.w);
            }
            Ok(())
        }),
    );
}

/// The posted form as `eus_params.lua`: `p.key="value"` per pair, values URL-decoded and written
/// as they are (the firmware escapes nothing).
fn save_form(rt: &Runtime, body: &[u8]) {
    let text = String::from_utf8_lossy(body);
    if !text.contains('=') {
        return;
    }
    let mut out = String::from("local p={}\n");
    for pair in text.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let dec = |s: &str| {
            urldecode(s.as_bytes(), s.len() + 1).map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        let (Some(k), Some(v)) = (dec(k), dec(v)) else {
            return;
        };
        out.push_str(&format!("p.{k}=\"{v}\"\n"));
    }
    out.push_str("return p\n");
    if let Some(path) = rt.flash.resolve("eus_params.lua") {
        let _ = std::fs::write(path, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_decode_as_the_firmware_does() {
        let c = credentials(b"GET /update?wifi_ssid=My+Net%21&wifi_password=p%20w HTTP/1.1\r\n")
            .unwrap();
        assert_eq!((c.ssid.as_str(), c.pwd.as_str()), ("My Net!", "p w"));
        let open = credentials(b"wifi_ssid=cafe").unwrap();
        assert_eq!(open.pwd, "");
        assert!(credentials(b"wifi_ssid=&wifi_password=x").is_none());
        assert!(credentials(b"wifi_password=x").is_none());
        let long = format!("wifi_ssid={}", "a".repeat(32));
        assert!(credentials(long.as_bytes()).is_none());
        let fits = format!("wifi_ssid={}", "a".repeat(31));
        assert!(credentials(fits.as_bytes()).is_some());
    }

    #[test]
    fn requests_are_complete_when_their_body_arrived() {
        assert_eq!(
            content_length(b"POST / HTTP/1.1\r\ncontent-length: 12"),
            Some(12)
        );
        assert_eq!(content_length(b"GET / HTTP/1.1\r\nHost: x"), None);
    }
}
