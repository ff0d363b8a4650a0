//! The ESP32 firmware's HTTP client engine: ESP-IDF's `esp_http_client` as the ESP32 `http` module
//! drives it (`esp_http_client_perform` in its blocking form). It keeps the client's URL rules
//! (`esp_http_client_set_url`), its request header list (insertion order, names matched without
//! case, `Content-Length` always sent), its response handling (per-header events, body data as it
//! is decoded, redirects through `esp_http_check_response`) and its error codes.
//!
//! The engine reports every event through [`Events`] and waits for the answer before it goes on,
//! as the board's HTTP task waits for the Lua task to acknowledge each callback. `net-api`'s
//! `modules/http32.rs` runs it either on a helper thread (synchronous requests, which block the
//! Lua task on the board too) or on the device's loop (asynchronous ones). This file knows nothing
//! of Lua.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::dns::{DnsOptions, Resolver};

/// `ESP_FAIL`.
pub const ESP_FAIL: i32 = -1;
/// `ESP_ERR_HTTP_BASE` + n: the esp_http_client error codes (the module reports them negated).
pub const ERR_MAX_REDIRECT: i32 = 0x7001;
pub const ERR_CONNECT: i32 = 0x7002;
pub const ERR_WRITE_DATA: i32 = 0x7003;
pub const ERR_FETCH_HEADER: i32 = 0x7004;
pub const ERR_INVALID_TRANSPORT: i32 = 0x7005;
pub const ERR_EAGAIN: i32 = 0x7007;
pub const ERR_CONNECTION_CLOSED: i32 = 0x7008;

/// `HTTP_METHOD_MAPPING`, indexed by `esp_http_client_method_t`; its length is `HTTP_METHOD_MAX`.
pub const METHODS: [&str; 17] = [
    "GET",
    "POST",
    "PUT",
    "PATCH",
    "DELETE",
    "HEAD",
    "NOTIFY",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "OPTIONS",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
];
pub const METHOD_HEAD: usize = 5;

/// `DEFAULT_USER_AGENT` of the client; the module replaces it with its own at once.
const IDF_USER_AGENT: &str = "ESP32 HTTP Client/1.0";

/// Where a request goes, as the client's `connection_info` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub scheme: String,
    pub host: String,
    pub port: u16,
    pub path: String,
    pub query: Option<String>,
}

/// The pieces `http_parser_parse_url` finds; `None` where a part is absent.
struct Parts<'a> {
    scheme: Option<&'a str>,
    host: Option<&'a str>,
    port: Option<u16>,
    path: Option<&'a str>,
    query: Option<&'a str>,
}

fn split_url(url: &str) -> Option<Parts<'_>> {
    let url = url.split('#').next().unwrap_or_default();
    let (scheme, host, port, rest) = if url.starts_with('/') || url.starts_with('*') {
        (None, None, None, url)
    } else {
        let (scheme, rest) = url.split_once("://")?;
        if scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphabetic()) {
            return None;
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(end);
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = match hostport.split_once(':') {
            Some((h, p)) => {
                if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                (h, Some(p.parse::<u16>().ok()?))
            }
            None => (hostport, None),
        };
        if host.is_empty() {
            return None;
        }
        (Some(scheme), Some(host), port, rest)
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    Some(Parts {
        scheme,
        host,
        port,
        path: (!path.is_empty()).then_some(path),
        query: query.filter(|q| !q.is_empty()),
    })
}

/// What `esp_http_client_set_url` leaves after `url` is applied to `current` (the defaults of a
/// new client: scheme `http`, port 80). `None`: the URL does not parse (`ESP_ERR_INVALID_ARG`).
pub fn set_url(current: Option<&Url>, url: &str) -> Option<Url> {
    let parts = split_url(url)?;
    let mut next = current.cloned().unwrap_or(Url {
        scheme: "http".into(),
        host: String::new(),
        port: 80,
        path: "/".into(),
        query: None,
    });
    if let Some(h) = parts.host {
        next.host = h.to_string();
    }
    if let Some(s) = parts.scheme {
        next.scheme = s.to_string();
        if s.eq_ignore_ascii_case("http") {
            next.port = 80;
        } else if s.eq_ignore_ascii_case("https") {
            next.port = 443;
        }
    }
    if let Some(p) = parts.port {
        next.port = p;
    }
    next.path = parts.path.unwrap_or("/").to_string();
    next.query = parts.query.map(str::to_string);
    Some(next)
}

/// The `Host` header the client makes: the port only when it is neither 80 nor 443.
pub fn host_header(url: &Url) -> String {
    match url.port {
        80 | 443 => url.host.clone(),
        p => format!("{}:{p}", url.host),
    }
}

/// The request header list (`http_header_t`): insertion order, names compared without case, a
/// name keeping the spelling it was first set with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// The list a new client starts with: its user agent, then `Host`.
    pub fn for_url(url: &Url) -> Headers {
        let mut h = Headers::default();
        h.set("User-Agent", Some(IDF_USER_AGENT));
        h.set("Host", Some(&host_header(url)));
        h
    }

    /// `http_header_set`: replaces a value in place, appends a new name, `None` deletes.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let at = self
            .0
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name));
        match (at, value) {
            (Some(i), Some(v)) => self.0[i].1 = v.to_string(),
            (Some(i), None) => {
                self.0.remove(i);
            }
            (None, Some(v)) => self.0.push((name.to_string(), v.to_string())),
            (None, None) => {}
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The request head `esp_http_client_request_send` writes for a body of `post_len` bytes.
pub fn request_head(method: usize, url: &Url, headers: &Headers, post_len: usize) -> Vec<u8> {
    let mut headers = headers.clone();
    headers.set("Content-Length", Some(&post_len.to_string()));
    let mut out = format!("{} {}", METHODS[method], url.path);
    if let Some(q) = &url.query {
        out.push('?');
        out.push_str(q);
    }
    out.push_str(" HTTP/1.1\r\n");
    for (n, v) in &headers.0 {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// One request as the connection object configures it.
#[derive(Clone)]
pub struct Request {
    pub url: Url,
    pub method: usize,
    pub headers: Headers,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
    /// `buffer_size_rx`: the most one read takes.
    pub bufsz: usize,
    pub max_redirects: u32,
    /// `disable_auto_redirect` off.
    pub follow: bool,
    /// The TLS client for `https://` (with the `cert` option's roots, or the device's store).
    pub tls: Option<Arc<crate::tls::ClientConfig>>,
    pub dns: DnsOptions,
}

/// What the client dispatches to the module's event handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Connected,
    Header(String, String),
    /// Decoded body bytes of the response with this status.
    Data(i32, Vec<u8>),
    Finish(i32),
    Disconnected,
}

/// The answer to an event: go on, or close the connection (`connection:close()` in a callback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
}

/// Where the engine's events go; each returns once the callback has been acknowledged.
pub trait Events {
    fn event(&mut self, ev: Event) -> impl Future<Output = Flow>;
}

/// How a perform ended: the error (0: none) and whether the connection is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub err: i32,
    pub connected: bool,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

type Conn = Pin<Box<dyn Stream>>;

/// The state one perform carries between its hops.
struct Client<'a, E: Events> {
    req: Request,
    events: &'a mut E,
    conn: Option<Conn>,
    /// Where `conn` goes (scheme, host, port): a redirect elsewhere closes it.
    peer: Option<(String, String, u16)>,
    resolver: Option<Resolver>,
    closed_by_script: bool,
}

impl<E: Events> Client<'_, E> {
    async fn emit(&mut self, ev: Event) {
        if self.events.event(ev).await == Flow::Close && self.conn.is_some() {
            self.closed_by_script = true;
            self.close().await;
        }
    }

    async fn close(&mut self) {
        if self.conn.take().is_some() {
            self.peer = None;
            self.events.event(Event::Disconnected).await;
        }
    }

    async fn resolve(&mut self, host: &str) -> Option<Ipv4Addr> {
        if let Ok(ip) = host.parse::<Ipv4Addr>() {
            return Some(ip);
        }
        let dns = self.req.dns.clone();
        let resolver = self.resolver.get_or_insert_with(|| Resolver::new(dns));
        resolver.lookup_v4(host).await
    }

    /// `esp_http_client_connect`: `Err` is the error code.
    async fn connect(&mut self) -> Result<(), i32> {
        let url = self.req.url.clone();
        let key = (url.scheme.to_ascii_lowercase(), url.host.clone(), url.port);
        if self.conn.is_some() && self.peer.as_ref() == Some(&key) {
            return Ok(());
        }
        self.close().await;
        let secure = match key.0.as_str() {
            "http" => false,
            "https" => true,
            _ => return Err(ERR_INVALID_TRANSPORT),
        };
        let limit = self.req.timeout;
        let ip = timeout(limit, self.resolve(&url.host))
            .await
            .ok()
            .flatten()
            .ok_or(ERR_CONNECT)?;
        let addr = SocketAddr::new(IpAddr::V4(ip), url.port);
        let tcp = match timeout(limit, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => tcp,
            _ => return Err(ERR_CONNECT),
        };
        let conn: Conn = if secure {
            let Some(config) = self.req.tls.clone() else {
                return Err(ERR_CONNECT);
            };
            let name = crate::tls::server_name(&url.host, IpAddr::V4(ip));
            match timeout(limit, crate::tls::handshake(config, name, tcp)).await {
                Ok(Ok(s)) => Box::pin(s),
                _ => return Err(ERR_CONNECT),
            }
        } else {
            Box::pin(tcp)
        };
        self.conn = Some(conn);
        self.peer = Some(key);
        self.emit(Event::Connected).await;
        Ok(())
    }

    async fn read(&mut self, buf: &mut [u8]) -> Read {
        let limit = self.req.timeout;
        let Some(conn) = self.conn.as_mut() else {
            return Read::Failed;
        };
        match timeout(limit, conn.read(buf)).await {
            Err(_) => Read::TimedOut,
            Ok(Ok(0)) => Read::Closed,
            Ok(Ok(n)) => Read::Data(n),
            Ok(Err(_)) => Read::Failed,
        }
    }

    /// One request and its response (`esp_http_client_perform`'s states for one hop); `Ok(true)`
    /// asks for another hop (a redirect was taken).
    async fn hop(&mut self, redirects: &mut u32) -> Result<bool, i32> {
        self.connect().await?;
        let body = self.req.body.clone().unwrap_or_default();
        let head = request_head(
            self.req.method,
            &self.req.url,
            &self.req.headers,
            body.len(),
        );
        let limit = self.req.timeout;
        let sent = match self.conn.as_mut() {
            Some(conn) => {
                let mut ok = matches!(timeout(limit, conn.write_all(&head)).await, Ok(Ok(())));
                if ok && !body.is_empty() {
                    ok = matches!(timeout(limit, conn.write_all(&body)).await, Ok(Ok(())));
                }
                ok
            }
            None => false,
        };
        if !sent {
            self.close().await;
            return Err(ERR_WRITE_DATA);
        }
        // Headers: read until the head is whole.
        let mut buf = vec![0u8; self.req.bufsz.max(1)];
        let mut pending = Vec::new();
        let (status, headers, head_len) = loop {
            match self.read(&mut buf).await {
                Read::Data(n) => pending.extend_from_slice(&buf[..n]),
                Read::TimedOut => return Err(ERR_EAGAIN),
                Read::Closed => {
                    self.close().await;
                    return Err(ERR_CONNECTION_CLOSED);
                }
                Read::Failed => return Err(ERR_FETCH_HEADER),
            }
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut res = httparse::Response::new(&mut slots);
            match res.parse(&pending) {
                Ok(httparse::Status::Complete(len)) => {
                    let headers: Vec<(String, String)> = res
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_string(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect();
                    let version = res.version.unwrap_or(1);
                    break (i32::from(res.code.unwrap_or(0)), (version, headers), len);
                }
                Ok(httparse::Status::Partial) => {}
                Err(_) => return Err(ERR_FETCH_HEADER),
            }
        };
        let (version, headers) = headers;
        for (n, v) in &headers {
            self.emit(Event::Header(n.clone(), v.clone())).await;
        }
        let find = |name: &str| {
            headers
                .iter()
                .rev()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let chunked = find("Transfer-Encoding") == Some("chunked");
        let length = find("Content-Length").and_then(|v| v.trim().parse::<u64>().ok());
        let location = find("Location").map(str::to_string);
        let conn_hdr = find("Connection").map(str::to_ascii_lowercase);
        let is_head = self.req.method == METHOD_HEAD;
        let framed = chunked || length.is_some() || is_head || status == 204 || status == 304;
        let keep_alive = framed
            && match version {
                1 => conn_hdr.as_deref() != Some("close"),
                _ => conn_hdr.as_deref() == Some("keep-alive"),
            };

        // The body bytes that came with the head are dispatched while the head is fetched.
        let mut body = Body::new(chunked, if is_head { Some(0) } else { length });
        let early = pending.split_off(head_len);
        for piece in body.feed(&early) {
            self.emit(Event::Data(status, piece)).await;
        }

        // `esp_http_check_response`.
        let mut again = false;
        if !(200..300).contains(&status) {
            if *redirects >= self.req.max_redirects {
                return Err(ERR_MAX_REDIRECT);
            }
            if matches!(status, 301 | 302 | 303 | 307 | 308) && self.req.follow {
                let next = location
                    .as_deref()
                    .and_then(|l| set_url(Some(&self.req.url), l))
                    .ok_or(ESP_FAIL)?;
                if !next.host.eq_ignore_ascii_case(&self.req.url.host) {
                    self.req.headers.set("Host", Some(&next.host));
                }
                self.req.url = next;
                *redirects += 1;
                again = true;
            }
        } else {
            *redirects = 0;
        }

        while !body.done() && self.conn.is_some() {
            match self.read(&mut buf).await {
                Read::Data(n) => {
                    for piece in body.feed(&buf[..n]) {
                        self.emit(Event::Data(status, piece)).await;
                    }
                }
                _ => break,
            }
        }
        self.emit(Event::Finish(status)).await;
        if !keep_alive {
            self.close().await;
        }
        Ok(again)
    }
}

enum Read {
    Data(usize),
    TimedOut,
    Closed,
    Failed,
}

/// The response body as the parser decodes it: by length, by chunks, or up to the close.
struct Body {
    chunked: bool,
    left: Option<u64>,
    raw: Vec<u8>,
    /// Bytes left of the current chunk (and then its CRLF).
    in_chunk: u64,
    complete: bool,
}

impl Body {
    fn new(chunked: bool, length: Option<u64>) -> Body {
        Body {
            chunked,
            left: if chunked { None } else { length },
            raw: Vec::new(),
            in_chunk: 0,
            complete: !chunked && length == Some(0),
        }
    }

    fn done(&self) -> bool {
        self.complete
    }

    /// The decoded pieces in `bytes` (one per chunk piece, as `on_body` gets them).
    fn feed(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        if self.complete || bytes.is_empty() {
            return Vec::new();
        }
        if !self.chunked {
            let take = match self.left {
                Some(left) => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                    let rest = left - take as u64;
                    self.left = Some(rest);
                    self.complete = rest == 0;
                    take
                }
                None => bytes.len(),
            };
            return vec![bytes[..take].to_vec()];
        }
        self.raw.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            if self.in_chunk > 0 {
                let take = usize::try_from(self.in_chunk)
                    .unwrap_or(usize::MAX)
                    .min(self.raw.len());
                if take == 0 {
                    break;
                }
                out.push(self.raw.drain(..take).collect());
                self.in_chunk -= take as u64;
                if self.in_chunk > 0 {
                    break;
                }
                continue;
            }
            // Between chunks: an optional CRLF left from the last chunk, then the size line.
            if self.raw.starts_with(b"\r\n") {
                self.raw.drain(..2);
            } else if self.raw == b"\r" {
                break;
            }
            match httparse::parse_chunk_size(&self.raw) {
                Ok(httparse::Status::Complete((used, 0))) => {
                    self.raw.drain(..used);
                    self.complete = true;
                    break;
                }
                Ok(httparse::Status::Complete((used, size))) => {
                    self.raw.drain(..used);
                    self.in_chunk = size;
                }
                Ok(httparse::Status::Partial) => break,
                Err(_) => {
                    self.complete = true;
                    break;
                }
            }
        }
        out
    }
}

/// `esp_http_client_perform`: every hop of one request, then how it ended.
pub async fn perform<E: Events>(req: Request, events: &mut E) -> Outcome {
    let mut c = Client {
        req,
        events,
        conn: None,
        peer: None,
        resolver: None,
        closed_by_script: false,
    };
    let mut redirects = 0;
    let err = loop {
        match c.hop(&mut redirects).await {
            Ok(true) => continue,
            Ok(false) => break 0,
            Err(e) => break e,
        }
    };
    let connected = c.conn.is_some() && !c.closed_by_script;
    // The board keeps a kept-alive socket for the next request; here every request connects
    // anew, so the socket goes (without a "disconnected" event: the flag says it is open).
    drop(c.conn.take());
    Outcome { err, connected }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_set_url() {
        let u = set_url(None, "http://h:8080/a/b?x=1#f").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("h", 8080));
        assert_eq!((u.path.as_str(), u.query.as_deref()), ("/a/b", Some("x=1")));
        let v = set_url(Some(&u), "/next").unwrap();
        assert_eq!(
            (v.host.as_str(), v.port, v.path.as_str()),
            ("h", 8080, "/next")
        );
        assert_eq!(v.query, None);
        assert_eq!(set_url(None, "https://x").unwrap().port, 443);
        assert_eq!(set_url(None, "https://x").unwrap().path, "/");
        assert!(set_url(Some(&u), "next").is_none());
        assert!(set_url(None, "not a url").is_none());
        assert!(set_url(None, "http://h:99999/").is_none());
        assert_eq!(set_url(None, "ftp://h/").unwrap().scheme, "ftp");
    }

    #[test]
    fn heads_list_headers_in_insertion_order() {
        let u = set_url(None, "http://h:81/p?q").unwrap();
        let mut h = Headers::for_url(&u);
        h.set("user-agent", Some("NodeMCU (ESP32)"));
        h.set("X-A", Some("1"));
        h.set("x-a", Some("2"));
        assert_eq!(
            String::from_utf8(request_head(0, &u, &h, 0)).unwrap(),
            "GET /p?q HTTP/1.1\r\nUser-Agent: NodeMCU (ESP32)\r\nHost: h:81\r\nX-A: 2\r\nContent-Length: 0\r\n\r\n"
        );
        h.set("X-A", None);
        assert_eq!(h.get("x-a"), None);
    }

    #[test]
    fn chunked_bodies_decode_across_reads() {
        let mut b = Body::new(true, None);
        let mut got = Vec::new();
        for part in [&b"3\r\nab"[..], b"c\r\n", b"4\r\ndefg\r\n0\r\n\r\n"] {
            got.extend(b.feed(part).concat());
        }
        assert_eq!(got, b"abcdefg");
        assert!(b.done());
        let mut b = Body::new(false, Some(3));
        assert_eq!(b.feed(b"abcdef"), vec![b"abc".to_vec()]);
        assert!(b.done());
    }
}
