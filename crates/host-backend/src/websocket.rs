//! The ESP8266 firmware's WebSocket client (`app/websocket/websocketclient.c`) as protocol logic:
//! how it reads a `ws://` / `wss://` URL, the upgrade request it writes, how it checks the
//! server's answer, and how it frames, unframes and answers messages. The Lua binding (`net-api`'s
//! `websocket/`) owns the connection, the timers and the callbacks; nothing here does I/O.
//!
//! The framing is the handful of bytes RFC 6455 asks for, written here rather than taken from a
//! codec crate because the board's client differs from a conforming one in ways scripts can see:
//! it truncates what it sends to 16 bits of length, echoes a close frame with its payload, answers
//! pings and ignores pongs, does not check the server's frames for a mask or reserved bits, and
//! loses the first fragment of a fragmented message (it records that fragment's length in the
//! wrong field, so the reassembled message starts with the second one).

use base64::Engine as _;
use sha1::{Digest, Sha1};

/// The close statuses the firmware hands to the "close" callback.
pub mod status {
    /// The URL starts with neither `ws://` nor `wss://`.
    pub const BAD_PROTOCOL: i32 = -1;
    /// The host part is 256 bytes or more.
    pub const HOSTNAME_TOO_LONG: i32 = -2;
    /// The port is not in 1..=65535.
    pub const BAD_PORT: i32 = -3;
    /// The host part is empty.
    pub const NO_HOSTNAME: i32 = -4;
    /// The name did not resolve.
    pub const DNS: i32 = -5;
    /// A close frame was answered: the server asked to end (also the end of a `close()` the
    /// server acknowledges).
    pub const SERVER_CLOSED: i32 = -6;
    /// The answer did not carry the expected `Sec-WebSocket-Accept` key.
    pub const BAD_KEY: i32 = -7;
    /// A frame too large for the device's heap (the firmware's allocation failures, -8 to -14).
    pub const NO_MEMORY: i32 = -9;
    /// A final continuation frame with no message begun.
    pub const BAD_FIN: i32 = -15;
    /// The answer was not `HTTP/1.1 101`.
    pub const NOT_SWITCHING: i32 = -17;
    /// No upgrade within [`super::CONNECT_TIMEOUT_MS`].
    pub const CONNECT_TIMEOUT: i32 = -18;
    /// Two pings went unanswered and nothing else came.
    pub const UNHEALTHY: i32 = -19;
    /// The connection ended with no known reason (a local `close()`, the server's FIN).
    pub const UNKNOWN: i32 = -99;
    /// Added to a connection error (lwIP's `ERR_RST` -9, `ERR_ABRT` -8) to give its status.
    pub const CONN_ERROR_BASE: i32 = -100;
}

/// `WS_CONNECT_TIMEOUT_MS`: from the name's resolution to the server's upgrade.
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;
/// `WS_PING_INTERVAL_MS`: a ping when nothing arrived for this long.
pub const PING_INTERVAL_MS: u64 = 30_000;
/// `WS_FORCE_CLOSE_TIMEOUT_MS`: how long `close()` waits for the server's close frame.
pub const FORCE_CLOSE_TIMEOUT_MS: u64 = 5_000;
/// `WS_UNHEALTHY_THRESHOLD`: pings sent without an answer before giving up.
pub const UNHEALTHY_THRESHOLD: u32 = 2;

pub const OPCODE_CONTINUATION: u8 = 0x0;
pub const OPCODE_TEXT: u8 = 0x1;
pub const OPCODE_CLOSE: u8 = 0x8;
pub const OPCODE_PING: u8 = 0x9;
pub const OPCODE_PONG: u8 = 0xA;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The request's own headers, then the script's, then these: the first of a name wins.
const DEFAULT_HEADERS: &[(&str, &str)] = &[
    ("User-Agent", "ESP8266"),
    ("Sec-WebSocket-Protocol", "chat"),
];
/// The firmware's hostname buffer.
const HOSTNAME_MAX: usize = 256;

/// Where a URL points: the HTTP client's kind.
pub use crate::http::Target;

/// Splits a URL as `ws_connect` does; `Err` is the status the "close" callback gets at once.
pub fn parse_url(url: &str) -> Result<Target, i32> {
    let starts = |p: &str| url.len() >= p.len() && url[..p.len()].eq_ignore_ascii_case(p);
    let (rest, secure) = if url.is_char_boundary(6) && starts("wss://") {
        (&url[6..], true)
    } else if url.is_char_boundary(5) && starts("ws://") {
        (&url[5..], false)
    } else {
        return Err(status::BAD_PROTOCOL);
    };
    let (mut host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if host.len() >= HOSTNAME_MAX {
        return Err(status::HOSTNAME_TOO_LONG);
    }
    let mut port = if secure { 443 } else { 80 };
    if let Some(i) = host.find(':') {
        match atoi(&host[i + 1..]) {
            p @ 1..=65535 => port = p as u16,
            _ => return Err(status::BAD_PORT),
        }
        host = &host[..i];
    }
    if host.is_empty() {
        return Err(status::NO_HOSTNAME);
    }
    Ok(Target {
        host: host.to_string(),
        port,
        secure,
        path: path.to_string(),
    })
}

/// C's `atoi`: leading blanks, a sign, digits; anything else ends it (none at all is 0).
fn atoi(s: &str) -> i64 {
    let s = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg { -n } else { n }
}

/// What the engine asks of the connection, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Bytes to write.
    Send(Vec<u8>),
    /// The upgrade was accepted: "connection" fires and the ping timer starts.
    Connected,
    /// A message for "receive": its payload and opcode.
    Message(Vec<u8>, u8),
    /// Data arrived: the ping timer starts over.
    Alive,
    /// The engine ends the connection with this status (after any `Send` before it).
    Close(i32),
}

/// One connection's protocol state: the upgrade handshake, then frames.
pub struct Session {
    expected_key: String,
    upgraded: bool,
    /// The answer to the upgrade so far (until its blank line).
    head: Vec<u8>,
    /// Received bytes not yet a whole frame.
    frames: Vec<u8>,
    /// The fragments kept of a message begun and not finished, and its opcode.
    partial: Option<(Vec<u8>, u8)>,
    /// Whether the firmware's kept-fragment length is still zero (see the file's comment).
    partial_len_lost: bool,
    /// A close frame came and was answered: the connection ends with -6.
    closing: bool,
    unhealthy: u32,
    /// Frames go out only while this is set (`connectionState == 3`).
    open: bool,
    /// The device's free heap, the largest frame it can hold (`None`: no limit).
    room: Option<usize>,
    rng: u64,
}

impl Session {
    /// A session for a new connection; `seed` feeds the key and the masks (`os_random`).
    pub fn new(seed: u64) -> Session {
        Session {
            expected_key: String::new(),
            upgraded: false,
            head: Vec::new(),
            frames: Vec::new(),
            partial: None,
            partial_len_lost: false,
            closing: false,
            unhealthy: 0,
            open: false,
            room: None,
            rng: seed | 1,
        }
    }

    fn random(&mut self) -> u8 {
        // xorshift64: the board's os_random is a hardware source; any spread of bytes does.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 24) as u8
    }

    /// The TCP (and TLS) connection is up: the upgrade request to write.
    pub fn connected(&mut self, target: &Target, extra: &[(String, String)]) -> Vec<u8> {
        self.open = true;
        let raw: Vec<u8> = (0..16).map(|_| self.random()).collect();
        let b64 = base64::engine::general_purpose::STANDARD;
        let key = b64.encode(raw);
        self.expected_key = b64.encode(Sha1::digest(format!("{key}{GUID}").as_bytes()));
        let own = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key.as_str()),
            ("Sec-WebSocket-Version", "13"),
        ];
        let all = own
            .iter()
            .copied()
            .chain(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .chain(DEFAULT_HEADERS.iter().copied());
        let mut req = format!(
            "GET {} HTTP/1.1\r\nHost: {}:{}\r\n",
            target.path, target.host, target.port
        );
        let mut seen: Vec<&str> = Vec::new();
        for (k, v) in all {
            if seen.iter().any(|s| s.eq_ignore_ascii_case(k)) {
                continue;
            }
            seen.push(k);
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.into_bytes()
    }

    /// Whether frames may be sent (`connectionState == 3`: from the TCP connection on).
    pub fn is_open(&self) -> bool {
        self.open && !self.closing
    }

    /// The connection is going away: nothing more is sent.
    pub fn shut(&mut self) {
        self.open = false;
    }

    /// `ws_sendFrame`: one final, masked frame. The firmware passes the length as an `unsigned
    /// short`, so only the first `len % 65536` bytes of a longer message go out; an opcode above
    /// 15 spills into the header's flag bits as its `b[0] += opCode` does.
    pub fn frame(&mut self, opcode: i64, data: &[u8]) -> Option<Vec<u8>> {
        if !self.is_open() {
            return None;
        }
        Some(self.encode(opcode, data))
    }

    fn encode(&mut self, opcode: i64, data: &[u8]) -> Vec<u8> {
        let data = &data[..data.len() % 0x10000];
        let mut b = Vec::with_capacity(data.len() + 8);
        b.push(0x80u8.wrapping_add(opcode as u8));
        if data.len() < 126 {
            b.push(0x80 | data.len() as u8);
        } else {
            b.push(0x80 | 126);
            b.extend_from_slice(&(data.len() as u16).to_be_bytes());
        }
        let mask = [self.random(), self.random(), self.random(), self.random()];
        b.extend_from_slice(&mask);
        b.extend(data.iter().enumerate().map(|(i, x)| x ^ mask[i % 4]));
        b
    }

    /// The ping timer fired: a ping, or the end once too many went unanswered.
    pub fn ping_due(&mut self) -> Vec<Output> {
        if self.unhealthy == UNHEALTHY_THRESHOLD {
            return vec![Output::Close(status::UNHEALTHY)];
        }
        self.unhealthy += 1;
        self.frame(i64::from(OPCODE_PING), &[])
            .map(Output::Send)
            .into_iter()
            .collect()
    }

    /// How much heap the device has free for a frame, before each [`Session::received`].
    pub fn set_room(&mut self, room: Option<usize>) {
        self.room = room;
    }

    /// Bytes from the server.
    pub fn received(&mut self, data: &[u8]) -> Vec<Output> {
        let mut out = Vec::new();
        if !self.upgraded {
            self.head.extend_from_slice(data);
            let Some(end) = find(&self.head, b"\r\n\r\n") else {
                return out;
            };
            let head = std::mem::take(&mut self.head);
            if find(&head[..end], b"HTTP/1.1 101").is_none() {
                return vec![Output::Close(status::NOT_SWITCHING)];
            }
            if find(&head[..end], self.expected_key.as_bytes()).is_none() {
                return vec![Output::Close(status::BAD_KEY)];
            }
            self.upgraded = true;
            out.push(Output::Connected);
            self.frames.extend_from_slice(&head[end + 4..]);
        } else {
            out.push(Output::Alive);
            self.unhealthy = 0;
            self.frames.extend_from_slice(data);
        }
        self.unframe(&mut out);
        out
    }

    fn unframe(&mut self, out: &mut Vec<Output>) {
        let mut at = 0;
        while let Some(Header {
            fin,
            opcode,
            start,
            len,
            long,
        }) = header(&self.frames[at..])
        {
            // The board buffers a whole frame before it looks at it; one past its heap fails
            // there (-8 to -14), and so does any in the 64-bit form.
            if let Some(room) = self.room
                && (long || len > room)
            {
                out.push(Output::Close(status::NO_MEMORY));
                return;
            }
            if self.frames.len() - at - start < len {
                break;
            }
            let masked = self.frames[at + 1] & 0x80 != 0;
            let mut payload = self.frames[at + start..at + start + len].to_vec();
            if masked {
                let key: Vec<u8> = self.frames[at + start - 4..at + start].to_vec();
                payload
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, x)| *x ^= key[i % 4]);
            }
            at += start + len;
            if let Some(o) = self.frame_in(fin, opcode, payload) {
                let end = matches!(o, Output::Close(_));
                out.push(o);
                if end {
                    return;
                }
            }
        }
        self.frames.drain(..at);
    }

    /// One whole frame from the server.
    fn frame_in(&mut self, fin: bool, opcode: u8, payload: Vec<u8>) -> Option<Output> {
        if !fin {
            match &mut self.partial {
                None => {
                    // The first fragment is kept with a recorded length of 0 (the board's bug):
                    // the next fragment overwrites it.
                    self.partial = Some((payload, opcode));
                    self.partial_len_lost = true;
                }
                Some((kept, _)) => {
                    if self.partial_len_lost {
                        kept.clear();
                        self.partial_len_lost = false;
                    }
                    kept.extend_from_slice(&payload);
                }
            }
            return None;
        }
        let (message, opcode) = if opcode == OPCODE_CONTINUATION {
            let Some((mut kept, first)) = self.partial.take() else {
                return Some(Output::Close(status::BAD_FIN));
            };
            if self.partial_len_lost {
                kept.clear();
                self.partial_len_lost = false;
            }
            kept.extend_from_slice(&payload);
            (kept, first)
        } else {
            (payload, opcode)
        };
        match opcode {
            OPCODE_CLOSE => {
                // Echoed with the server's code and reason; the connection then ends.
                let echo = self.frame(i64::from(OPCODE_CLOSE), &message);
                self.closing = true;
                echo.map(Output::Send)
            }
            OPCODE_PING => self
                .frame(i64::from(OPCODE_PONG), &message)
                .map(Output::Send),
            OPCODE_PONG => None,
            _ => Some(Output::Message(message, opcode)),
        }
    }

    /// A close frame was answered: the end that follows is the server's request (-6).
    pub fn closing(&self) -> bool {
        self.closing
    }
}

/// A frame header at the start of `b`, once enough bytes arrived.
struct Header {
    fin: bool,
    opcode: u8,
    /// Where the payload starts.
    start: usize,
    len: usize,
    /// The length was in the 64-bit form, which the board reads wrongly (as 32 bits of its high
    /// half, then six bytes in): a message that size would never fit its heap anyway.
    long: bool,
}

fn header(b: &[u8]) -> Option<Header> {
    if b.len() < 2 {
        return None;
    }
    let (len, mut start, long) = match b[1] & 0x7f {
        126 => {
            let l = b.get(2..4)?;
            (usize::from(u16::from_be_bytes([l[0], l[1]])), 4, false)
        }
        127 => {
            let l: [u8; 8] = b.get(2..10)?.try_into().ok()?;
            (
                usize::try_from(u64::from_be_bytes(l)).unwrap_or(usize::MAX),
                10,
                true,
            )
        }
        n => (usize::from(n), 2, false),
    };
    if b[1] & 0x80 != 0 {
        start += 4;
    }
    (b.len() >= start).then_some(Header {
        fin: b[0] & 0x80 != 0,
        opcode: b[0] & 0x0f,
        start,
        len,
        long,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests;
