//! Framing: whole packets across reads, and the `max_message_length` rule.

use super::*;

fn publish_bytes(topic: &str, payload: &[u8], qos: QoS, id: u16) -> Vec<u8> {
    publish(topic, payload, qos, false, id)
}

#[test]
fn connect_carries_the_firmware_fields() {
    let info = ConnectInfo {
        client_id: "dev".into(),
        keepalive: 120,
        username: String::new(),
        password: String::new(),
        clean_session: false,
        will: None,
    };
    let b = connect(&info);
    // Fixed header, "MQTT", level 4, no flags (clean session off), keepalive 120, client id.
    assert_eq!(
        b,
        [
            0x10, 15, 0, 4, b'M', b'Q', b'T', b'T', 4, 0, 0, 120, 0, 3, b'd', b'e', b'v'
        ]
    );
}

#[test]
fn packets_split_across_reads_come_out_whole_and_in_order() {
    let mut f = Framer::default();
    let mut bytes = publish_bytes("a/b", b"one", QoS::AtMostOnce, 0);
    bytes.extend(publish_bytes("a/c", b"two", QoS::AtLeastOnce, 7));
    let (x, y) = bytes.split_at(5);
    f.push(x);
    assert_eq!(f.next(Some(1024)), Ok(None));
    f.push(y);
    let Some(Frame::Packet(Packet::Publish(p))) = f.next(Some(1024)).unwrap() else {
        panic!("first publish")
    };
    assert_eq!((p.topic.as_str(), &p.payload[..]), ("a/b", &b"one"[..]));
    let Some(Frame::Packet(Packet::Publish(p))) = f.next(Some(1024)).unwrap() else {
        panic!("second publish")
    };
    assert_eq!((p.topic.as_str(), p.pkid), ("a/c", 7));
    assert_eq!(f.next(Some(1024)), Ok(None));
}

#[test]
fn an_oversized_publish_is_truncated_to_its_first_segment_and_the_rest_skipped() {
    let mut f = Framer::default();
    let payload = vec![b'x'; 3000];
    let mut bytes = publish_bytes("big", &payload, QoS::AtLeastOnce, 9);
    bytes.extend(publish_bytes("next", b"ok", QoS::AtMostOnce, 0));
    for chunk in bytes.chunks(1000) {
        f.push(chunk);
        while let Some(frame) = f.next(Some(100)).unwrap() {
            match frame {
                Frame::Overflow(p) => {
                    assert_eq!((p.topic.as_str(), p.pkid), ("big", 9));
                    // 1460 bytes: 3-byte fixed header, 5-byte topic, 2-byte id, then payload.
                    assert_eq!(p.payload.len(), SEGMENT - 3 - 5 - 2);
                }
                Frame::Packet(Packet::Publish(p)) => assert_eq!(p.topic, "next"),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

#[test]
fn a_packet_at_the_limit_is_delivered() {
    let mut f = Framer::default();
    let bytes = publish_bytes("t", b"12345", QoS::AtMostOnce, 0);
    f.push(&bytes);
    let got = f.next(Some(bytes.len())).unwrap();
    assert!(matches!(got, Some(Frame::Packet(Packet::Publish(_)))));
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let mut f = Framer::default();
    f.push(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]);
    assert!(f.next(Some(1024)).is_err());
}
