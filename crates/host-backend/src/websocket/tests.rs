//! The engine against hand-made server bytes: URL rules, the upgrade request and its checks,
//! framing both ways, and the firmware's quirks.

use super::*;

fn target() -> Target {
    parse_url("ws://example.com:8080/chat?x=1").unwrap()
}

/// A server frame (unmasked).
fn server_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![b0];
    if payload.len() < 126 {
        f.push(payload.len() as u8);
    } else {
        f.push(126);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    f.extend_from_slice(payload);
    f
}

/// A session past its upgrade.
fn upgraded() -> Session {
    let mut s = Session::new(7);
    let _ = s.connected(&target(), &[]);
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        s.expected_key
    );
    assert_eq!(s.received(answer.as_bytes()), [Output::Connected]);
    s
}

/// Unmasks a client frame: (first byte, payload).
fn client_frame(f: &[u8]) -> (u8, Vec<u8>) {
    assert!(f[1] & 0x80 != 0, "client frames are masked");
    let (len, at) = match f[1] & 0x7f {
        126 => (usize::from(u16::from_be_bytes([f[2], f[3]])), 4),
        n => (usize::from(n), 2),
    };
    let mask = &f[at..at + 4];
    let data = f[at + 4..]
        .iter()
        .enumerate()
        .map(|(i, x)| x ^ mask[i % 4])
        .collect::<Vec<_>>();
    assert_eq!(data.len(), len);
    (f[0], data)
}

#[test]
fn urls_split_as_the_firmware_splits_them() {
    assert_eq!(
        parse_url("WSS://h").unwrap(),
        Target {
            host: "h".into(),
            port: 443,
            secure: true,
            path: "/".into()
        }
    );
    assert_eq!(target().path, "/chat?x=1");
    assert_eq!(target().port, 8080);
    assert_eq!(parse_url("http://h"), Err(status::BAD_PROTOCOL));
    assert_eq!(
        parse_url(&format!("ws://{}/", "a".repeat(256))),
        Err(status::HOSTNAME_TOO_LONG)
    );
    assert_eq!(parse_url("ws://h:0/"), Err(status::BAD_PORT));
    assert_eq!(parse_url("ws://h:70000"), Err(status::BAD_PORT));
    assert_eq!(parse_url("ws://h:x"), Err(status::BAD_PORT));
    assert_eq!(parse_url("ws://h:81abc").unwrap().port, 81);
    assert_eq!(parse_url("ws://:81/"), Err(status::NO_HOSTNAME));
    assert_eq!(parse_url("ws:///"), Err(status::NO_HOSTNAME));
}

#[test]
fn the_upgrade_request_puts_its_own_headers_first_and_the_first_of_a_name_wins() {
    let mut s = Session::new(1);
    let extra = [
        ("user-agent".to_string(), "NodeMCU".to_string()),
        ("Upgrade".to_string(), "nope".to_string()),
        ("X-A".to_string(), "1".to_string()),
    ];
    let req = String::from_utf8(s.connected(&target(), &extra)).unwrap();
    let lines: Vec<&str> = req.split("\r\n").collect();
    assert_eq!(lines[0], "GET /chat?x=1 HTTP/1.1");
    assert_eq!(lines[1], "Host: example.com:8080");
    assert_eq!(lines[2], "Upgrade: websocket");
    assert_eq!(lines[3], "Connection: Upgrade");
    assert!(lines[4].starts_with("Sec-WebSocket-Key: ") && lines[4].len() == 19 + 24);
    assert_eq!(
        &lines[5..],
        [
            "Sec-WebSocket-Version: 13",
            "user-agent: NodeMCU",
            "X-A: 1",
            "Sec-WebSocket-Protocol: chat",
            "",
            ""
        ]
    );
}

#[test]
fn the_answer_must_switch_and_carry_the_key() {
    let mut s = Session::new(1);
    let _ = s.connected(&target(), &[]);
    assert_eq!(
        s.received(b"HTTP/1.1 400 Bad Request\r\n\r\n"),
        [Output::Close(status::NOT_SWITCHING)]
    );
    let mut s = Session::new(1);
    let _ = s.connected(&target(), &[]);
    assert_eq!(
        s.received(b"HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: x\r\n\r\n"),
        [Output::Close(status::BAD_KEY)]
    );
}

#[test]
fn frames_after_the_answer_in_the_same_read_are_delivered() {
    let mut s = Session::new(3);
    let _ = s.connected(&target(), &[]);
    let mut answer = format!(
        "HTTP/1.1 101 X\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        s.expected_key
    )
    .into_bytes();
    answer.extend(server_frame(0x81, b"hi"));
    assert_eq!(
        s.received(&answer),
        [Output::Connected, Output::Message(b"hi".to_vec(), 1)]
    );
}

#[test]
fn sends_are_masked_and_cut_to_sixteen_bits_of_length() {
    let mut s = upgraded();
    let f = s.frame(1, b"hello").unwrap();
    assert_eq!(client_frame(&f), (0x81, b"hello".to_vec()));
    let big = vec![b'x'; 70_000];
    let f = s.frame(2, &big).unwrap();
    assert_eq!(client_frame(&f), (0x82, vec![b'x'; 70_000 - 65_536]));
    let f = s.frame(2, &big[..300]).unwrap();
    assert_eq!(client_frame(&f).1.len(), 300);
}

#[test]
fn pings_are_answered_pongs_ignored_and_split_frames_wait() {
    let mut s = upgraded();
    let out = s.received(&server_frame(0x89, b"p"));
    let [Output::Alive, Output::Send(pong)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(client_frame(pong), (0x8A, b"p".to_vec()));
    assert_eq!(s.received(&server_frame(0x8A, b"")), [Output::Alive]);
    let f = server_frame(0x82, &[1, 2, 3]);
    assert_eq!(s.received(&f[..2]), [Output::Alive]);
    assert_eq!(
        s.received(&f[2..]),
        [Output::Alive, Output::Message(vec![1, 2, 3], 2)]
    );
}

#[test]
fn a_fragmented_message_loses_its_first_fragment_as_on_the_board() {
    let mut s = upgraded();
    let mut b = server_frame(0x01, b"one ");
    b.extend(server_frame(0x00, b"two "));
    b.extend(server_frame(0x80, b"three"));
    assert_eq!(
        s.received(&b),
        [Output::Alive, Output::Message(b"two three".to_vec(), 1)]
    );
    let mut b = server_frame(0x02, b"a");
    b.extend(server_frame(0x80, b"b"));
    assert_eq!(
        s.received(&b),
        [Output::Alive, Output::Message(b"b".to_vec(), 2)]
    );
    assert_eq!(
        s.received(&server_frame(0x80, b"x")),
        [Output::Alive, Output::Close(status::BAD_FIN)]
    );
}

#[test]
fn a_close_frame_is_echoed_and_nothing_more_is_sent() {
    let mut s = upgraded();
    let out = s.received(&server_frame(0x88, &[0x03, 0xE8, b'b', b'y', b'e']));
    let [Output::Alive, Output::Send(echo)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        client_frame(echo),
        (0x88, vec![0x03, 0xE8, b'b', b'y', b'e'])
    );
    assert!(s.closing());
    assert_eq!(s.frame(1, b"late"), None);
}

#[test]
fn frames_past_the_heap_fail_and_pings_give_up_after_two() {
    let mut s = upgraded();
    s.set_room(Some(100));
    assert_eq!(
        s.received(&server_frame(0x81, &[b'x'; 200])[..10]),
        [Output::Alive, Output::Close(status::NO_MEMORY)]
    );
    let mut s = upgraded();
    assert!(matches!(&s.ping_due()[..], [Output::Send(_)]));
    assert!(matches!(&s.ping_due()[..], [Output::Send(_)]));
    assert_eq!(s.ping_due(), [Output::Close(status::UNHEALTHY)]);
}
