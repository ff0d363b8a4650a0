//! The ESP8266 firmware's HTTP client (`app/http/httpclient.c`) as protocol logic: parsing a URL the
//! way it does, the exact request it writes, what it makes of the whole response once the server
//! closes (status, headers, a decoded chunked body, or a redirect to follow), and the exchange over
//! a tokio `TcpStream`. The Lua binding (`net-api`'s `modules/http.rs`) owns the buffer limit, the
//! timeout and the callback; this file knows nothing of Lua.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// `REDIRECTION_FOLLOW_MAX`: a response that would be the 21st redirect fails instead.
pub const REDIRECT_MAX: u32 = 20;
/// `BUFFER_SIZE_MAX`: the response (status line, headers and body) and its terminating NUL must fit.
pub const BUFFER_SIZE_MAX: usize = 0x2000;
/// `HTTP_REQUEST_TIMEOUT_MS`, counted from the start of the connection.
pub const TIMEOUT_MS: u64 = 60_000;
/// The firmware's hostname buffer: a host of this length or more is refused.
const HOSTNAME_MAX: usize = 128;

/// Where a URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub secure: bool,
    pub path: String,
}

/// Splits `http://host[:port]/path` (or `https://`) as the firmware does; `None` is a URL it
/// refuses, which it does silently (no callback ever runs).
pub fn parse_url(url: &str) -> Option<Target> {
    let (rest, secure, mut port) = if let Some(r) = url.strip_prefix("http://") {
        (r, false, 80)
    } else if let Some(r) = url.strip_prefix("https://") {
        (r, true, 443)
    } else {
        return None;
    };
    let path_at = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(path_at);
    if authority.len() >= HOSTNAME_MAX {
        return None;
    }
    let host = match authority.split_once(':') {
        Some((host, p)) => {
            // atoi: leading digits; 0 (or none) is refused. The port field is 16 bits.
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            let n: u64 = digits.parse().unwrap_or(0);
            port = (n % 65536) as u16;
            if n == 0 {
                return None;
            }
            host
        }
        None => authority,
    };
    let path = if path.is_empty() { "/" } else { path };
    Some(Target {
        host: host.to_string(),
        port,
        secure,
        path: path.to_string(),
    })
}

/// The request head the firmware writes: the method line, `Host` (unless the script's headers
/// name one), `Connection: close`, the script's headers as given, `User-Agent: ESP8266` (unless
/// given), `Content-Length` when there is a body, and the blank line. The body follows it.
pub fn request_head(
    t: &Target,
    method: &str,
    headers: Option<&[u8]>,
    body: Option<&[u8]>,
) -> Vec<u8> {
    let headers = headers.unwrap_or_default();
    let mut out = format!("{method} {} HTTP/1.1\r\n", t.path).into_bytes();
    if !contains_nocase(headers, b"Host:") {
        // The firmware leaves the port out for 80 (even over TLS), or 443 over TLS.
        if t.port == 80 || (t.secure && t.port == 443) {
            out.extend_from_slice(format!("Host: {}\r\n", t.host).as_bytes());
        } else {
            out.extend_from_slice(format!("Host: {}:{}\r\n", t.host, t.port).as_bytes());
        }
    }
    out.extend_from_slice(b"Connection: close\r\n");
    out.extend_from_slice(headers);
    if !contains_nocase(headers, b"User-Agent:") {
        out.extend_from_slice(b"User-Agent: ESP8266\r\n");
    }
    if let Some(body) = body {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A C string's view of bytes: everything before the first NUL (the firmware uses `strlen`).
pub fn c_str(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// `strcasestr` on bytes.
fn find_nocase(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

fn contains_nocase(hay: &[u8], needle: &[u8]) -> bool {
    find_nocase(hay, needle).is_some()
}

/// What the firmware makes of a response once the connection is gone.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The callback gets `-1, nil, nil`.
    Failed,
    /// A 3xx with a `Location`: the same method is requested there (without the script's headers
    /// or body, which the firmware freed once sent).
    Redirect(String),
    /// The callback gets the status, the body and the headers (names lower-cased).
    Done {
        status: i32,
        body: Vec<u8>,
        headers: Vec<(String, Vec<u8>)>,
    },
}

/// Judges a received response: `redirects` is how many were followed to reach it.
pub fn evaluate(whole: &[u8], redirects: u32) -> Outcome {
    // The firmware searches the response as a C string, but the body runs to the last byte.
    let buf = c_str(whole);
    if buf.is_empty() || !(buf.starts_with(b"HTTP/1.0 ") || buf.starts_with(b"HTTP/1.1 ")) {
        return Outcome::Failed;
    }
    let status = atoi(&buf[9..]);
    // The firmware looks for `Location:` anywhere in the response, body included.
    if let Some(at) = find_nocase(buf, b"Location:")
        && (300..=308).contains(&status)
    {
        if redirects >= REDIRECT_MAX {
            return Outcome::Failed;
        }
        let rest = &buf[at + b"Location:".len()..];
        let rest = &rest[rest.iter().take_while(|&&b| b == b' ').count()..];
        return match rest.windows(2).position(|w| w == b"\r\n") {
            Some(end) => Outcome::Redirect(String::from_utf8_lossy(&rest[..end]).into_owned()),
            None => Outcome::Failed,
        };
    }
    let body = match buf.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => &whole[at + 4..],
        None => &[][..],
    };
    let body = if contains_nocase(buf, b"Transfer-Encoding: chunked") {
        dechunk(body)
    } else {
        body.to_vec()
    };
    Outcome::Done {
        status,
        body,
        headers: headers(buf),
    }
}

/// `atoi`: an optional sign and the leading digits.
fn atoi(s: &[u8]) -> i32 {
    let s = &s[s.iter().take_while(|b| b.is_ascii_whitespace()).count()..];
    let (neg, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i32 = 0;
    for &b in s.iter().take_while(|b| b.is_ascii_digit()) {
        n = n.wrapping_mul(10).wrapping_add(i32::from(b - b'0'));
    }
    if neg { n.wrapping_neg() } else { n }
}

/// The header table the callback gets. A complete head is parsed with `httparse`; a head cut
/// short (the timeout struck mid-response) keeps the lines that arrived whole, as the firmware's
/// line-by-line walk does.
fn headers(buf: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut res = httparse::Response::new(&mut slots);
    if let Ok(httparse::Status::Complete(_)) = res.parse(buf) {
        return res
            .headers
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
            .collect();
    }
    let after_status = buf
        .iter()
        .position(|&b| b == b'\n')
        .map_or(buf.len(), |i| i + 1);
    buf[after_status..]
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .take_while(|l| !l.is_empty())
        .map_while(|l| {
            let colon = l.iter().position(|&b| b == b':')?;
            let value = &l[colon + 1..];
            let value = &value[value.iter().take_while(|&&b| b == b' ').count()..];
            let name = String::from_utf8_lossy(&l[..colon]).to_ascii_lowercase();
            Some((name, value.to_vec()))
        })
        .collect()
}

/// Decodes a chunked body; a size of 0 or one that does not parse ends it, and a chunk cut short
/// keeps what arrived.
pub fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(httparse::Status::Complete((used, size))) = httparse::parse_chunk_size(body) {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if size == 0 {
            break;
        }
        body = &body[used..];
        let take = size.min(body.len());
        out.extend_from_slice(&body[..take]);
        body = body.get(take + 2..).unwrap_or_default();
    }
    out
}

/// The absolute target a `Location` names, relative to the request that got it; `None` is a URL
/// the firmware refuses (the request then ends without a callback).
pub fn redirect_target(from: &Target, location: &str) -> Option<Target> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return parse_url(location);
    }
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        let folder = from.path.rfind('/').map_or("", |i| &from.path[..=i]);
        format!("{folder}{location}")
    };
    Some(Target {
        path,
        ..from.clone()
    })
}

/// What the exchange reports, in order: data as it arrives, then one end.
#[derive(Debug)]
pub enum Event {
    Data(Vec<u8>),
    /// The server closed (or the connection broke after it was made).
    Closed,
    /// The connection could not be made (refused, unreachable).
    Failed,
}

/// TLS for an `https://` request: the client config and the name the handshake is for.
pub struct Tls {
    pub config: std::sync::Arc<crate::tls::ClientConfig>,
    pub name: crate::tls::ServerName<'static>,
}

/// Connects to `addr` (with a TLS handshake when `tls` is given), writes `head` then `body`, and
/// reports what comes back until the server closes. The caller drops the task to abort it
/// (timeout, buffer full). A refused connection or a failed handshake is [`Event::Failed`].
pub async fn exchange(
    addr: SocketAddr,
    tls: Option<Tls>,
    head: Vec<u8>,
    body: Option<Vec<u8>>,
    mut report: impl FnMut(Event),
) {
    let Ok(tcp) = TcpStream::connect(addr).await else {
        report(Event::Failed);
        return;
    };
    match tls {
        None => talk(tcp, head, body, report).await,
        Some(Tls { config, name }) => match crate::tls::handshake(config, name, tcp).await {
            Ok(stream) => talk(stream, head, body, report).await,
            Err(_) => report(Event::Failed),
        },
    }
}

async fn talk<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    head: Vec<u8>,
    body: Option<Vec<u8>>,
    mut report: impl FnMut(Event),
) {
    let mut sent = stream.write_all(&head).await;
    if let (Ok(()), Some(body)) = (&sent, body) {
        sent = stream.write_all(&body).await;
    }
    if sent.is_err() {
        report(Event::Closed);
        return;
    }
    let mut buf = vec![0u8; 2920];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => report(Event::Data(buf[..n].to_vec())),
        }
    }
    report(Event::Closed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(url: &str) -> Target {
        parse_url(url).unwrap()
    }

    #[test]
    fn urls_split_as_the_firmware_does() {
        assert_eq!(
            t("http://example.com"),
            Target {
                host: "example.com".into(),
                port: 80,
                secure: false,
                path: "/".into()
            }
        );
        assert_eq!(t("https://h:8443/a/b?c").port, 8443);
        assert_eq!(t("https://h:8443/a/b?c").path, "/a/b?c");
        assert!(t("https://h/").secure);
        assert_eq!(parse_url("ftp://h/"), None);
        assert_eq!(parse_url("http://h:0/"), None);
        assert_eq!(parse_url("http://h:x/"), None);
        assert_eq!(parse_url(&format!("http://{}/", "a".repeat(128))), None);
        assert!(parse_url(&format!("http://{}/", "a".repeat(127))).is_some());
    }

    #[test]
    fn request_heads_match_the_firmware() {
        let head = request_head(
            &t("http://h:8080/p"),
            "POST",
            Some(b"X-A: 1\r\n"),
            Some(b"hi"),
        );
        assert_eq!(
            head,
            b"POST /p HTTP/1.1\r\nHost: h:8080\r\nConnection: close\r\nX-A: 1\r\nUser-Agent: ESP8266\r\nContent-Length: 2\r\n\r\n"
        );
        let head = request_head(
            &t("https://h/"),
            "GET",
            Some(b"host: x\r\nuser-agent: me\r\n"),
            None,
        );
        assert_eq!(
            head,
            b"GET / HTTP/1.1\r\nConnection: close\r\nhost: x\r\nuser-agent: me\r\n\r\n"
        );
        let head = request_head(&t("https://h:80/"), "GET", None, None);
        assert!(head.starts_with(b"GET / HTTP/1.1\r\nHost: h\r\n"));
        let head = request_head(&t("http://h:443/"), "GET", None, None);
        assert!(head.starts_with(b"GET / HTTP/1.1\r\nHost: h:443\r\n"));
    }

    #[test]
    fn responses_are_judged_as_the_firmware_does() {
        assert_eq!(evaluate(b"", 0), Outcome::Failed);
        assert_eq!(evaluate(b"HTTP/2 200 OK\r\n\r\n", 0), Outcome::Failed);
        assert_eq!(
            evaluate(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Two:  v\r\n\r\nbody",
                0
            ),
            Outcome::Done {
                status: 200,
                body: b"body".to_vec(),
                headers: vec![
                    ("content-type".into(), b"text/plain".to_vec()),
                    ("x-two".into(), b"v".to_vec())
                ],
            }
        );
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\na;x=1\r\n0123456789\r\n0\r\n\r\n";
        match evaluate(chunked, 0) {
            Outcome::Done { body, .. } => assert_eq!(body, b"abc0123456789"),
            o => panic!("{o:?}"),
        }
        let redirect = b"HTTP/1.1 302 Found\r\nlocation:  /next\r\n\r\n";
        assert_eq!(evaluate(redirect, 19), Outcome::Redirect("/next".into()));
        assert_eq!(evaluate(redirect, 20), Outcome::Failed);
        assert_eq!(
            evaluate(b"HTTP/1.1 302 Found\r\nLocation: /x", 0),
            Outcome::Failed
        );
    }

    #[test]
    fn a_cut_head_keeps_its_whole_lines() {
        match evaluate(b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC", 0) {
            Outcome::Done {
                status,
                body,
                headers,
            } => {
                assert_eq!(status, 200);
                assert!(body.is_empty());
                assert_eq!(
                    headers,
                    vec![("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())]
                );
            }
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn chunks_cut_short_keep_what_arrived() {
        assert_eq!(dechunk(b"5\r\nhel"), b"hel");
        assert_eq!(dechunk(b"3\r\nabc\r\nzz\r\nnot hex"), b"abc");
        assert_eq!(dechunk(b""), b"");
    }

    #[test]
    fn redirects_resolve_against_the_request() {
        let from = t("http://h:81/a/b/c?q");
        assert_eq!(redirect_target(&from, "/x").unwrap().path, "/x");
        assert_eq!(redirect_target(&from, "d").unwrap().path, "/a/b/d");
        assert_eq!(redirect_target(&from, "d").unwrap().port, 81);
        assert_eq!(redirect_target(&from, "http://o/z").unwrap().host, "o");
        assert_eq!(redirect_target(&from, "https://o:0/"), None);
    }
}
