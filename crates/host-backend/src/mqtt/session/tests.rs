//! The firmware's queue, acks and timers, driven without a network.

use super::*;
use mqttbytes::v4::{ConnAck, PubAck, SubAck, SubscribeReasonCode};

fn info() -> ConnectInfo {
    ConnectInfo {
        client_id: "dev".into(),
        keepalive: 60,
        username: String::new(),
        password: String::new(),
        clean_session: true,
        will: None,
    }
}

fn bytes(write: impl FnOnce(&mut bytes::BytesMut) -> Result<usize, mqttbytes::Error>) -> Vec<u8> {
    let mut b = bytes::BytesMut::new();
    write(&mut b).unwrap();
    b.to_vec()
}

fn connack(code: ConnectReturnCode) -> Vec<u8> {
    bytes(|b| ConnAck::new(code, false).write(b))
}

fn up() -> Session {
    let mut s = Session::new(info(), 1024, Some(1460));
    s.connected();
    s.sent();
    let out = s.received(&connack(ConnectReturnCode::Success));
    assert!(out.contains(&Output::Event(Event::Connect)));
    s
}

fn sends(out: &[Output]) -> usize {
    out.iter().filter(|o| matches!(o, Output::Send(_))).count()
}

#[test]
fn a_refused_connack_drops_the_connection_then_reports_its_code() {
    let mut s = Session::new(info(), 1024, None);
    s.connected();
    s.sent();
    let out = s.received(&connack(ConnectReturnCode::BadUserNamePassword));
    assert_eq!(
        out,
        [
            Output::Timer(Duration::from_secs(60)),
            Output::Disconnect,
            Output::Event(Event::ConnFail(4)),
        ]
    );
}

#[test]
fn no_connack_in_time_is_timeout_receiving() {
    let mut s = Session::new(info(), 1024, None);
    s.connected();
    s.sent();
    let out = s.timer();
    assert_eq!(
        out,
        [
            Output::Disconnect,
            Output::Event(Event::ConnFail(fail::TIMEOUT_RECEIVING))
        ]
    );
}

#[test]
fn one_packet_in_flight_and_qos1_holds_the_queue_until_its_puback() {
    let mut s = up();
    let (ok, out) = s.publish("t", b"1", QoS::AtLeastOnce, false);
    assert!(ok);
    assert_eq!(sends(&out), 1);
    let (_, out) = s.publish("t", b"2", QoS::AtMostOnce, false);
    assert_eq!(sends(&out), 0, "the first is still being handed over");
    let out = s.sent();
    assert_eq!(sends(&out), 0, "a QoS 1 publish waits for its PUBACK");
    let out = s.received(&bytes(|b| PubAck::new(1).write(b)));
    assert_eq!(out.first(), Some(&Output::Event(Event::PubAck)));
    assert_eq!(sends(&out), 1, "then the QoS 0 one goes");
    let out = s.sent();
    assert!(out.contains(&Output::Event(Event::PubAck)));
    assert_eq!(s.queued(), 0);
}

#[test]
fn an_ack_for_another_packet_is_ignored() {
    let mut s = up();
    s.publish("t", b"1", QoS::AtLeastOnce, false);
    s.sent();
    let out = s.received(&bytes(|b| PubAck::new(99).write(b)));
    assert!(!out.contains(&Output::Event(Event::PubAck)));
    let ack = SubAck::new(1, vec![SubscribeReasonCode::Success(QoS::AtMostOnce)]);
    let out = s.received(&bytes(|b| ack.write(b)));
    assert!(!out.contains(&Output::Event(Event::SubAck)));
    assert_eq!(s.queued(), 1);
}

#[test]
fn keepalive_pings_then_gives_up_without_an_answer() {
    let mut s = up();
    let out = s.timer();
    assert_eq!(
        out,
        [Output::Send(codec::pingreq()), Output::Timer(SEND_TIMEOUT)]
    );
    let out = s.sent();
    assert_eq!(out, [Output::Timer(Duration::from_secs(60))]);
    assert_eq!(s.timer(), [Output::Disconnect]);
}

#[test]
fn a_pingresp_keeps_the_connection() {
    let mut s = up();
    s.timer();
    s.sent();
    s.received(&[0xD0, 0]);
    assert_eq!(sends(&s.timer()), 1, "a new ping, not a disconnect");
}

#[test]
fn an_incoming_qos2_publish_is_delivered_then_rec_rel_comp() {
    let mut s = up();
    let p = codec::publish("in", b"x", QoS::ExactlyOnce, false, 5);
    let out = s.received(&p);
    assert_eq!(
        out[1],
        Output::Send(codec::pubrec(5)),
        "the PUBREC goes after delivery"
    );
    assert!(out.contains(&Output::Event(Event::Message(
        "in".into(),
        Some(bytes::Bytes::from_static(b"x"))
    ))));
    s.sent();
    let out = s.received(&codec::pubrel(5));
    assert_eq!(out[0], Output::Send(codec::pubcomp(5)));
    s.sent();
    assert_eq!(s.queued(), 0);
}

#[test]
fn an_empty_payload_is_delivered_as_none() {
    let mut s = up();
    let out = s.received(&codec::publish("t", b"", QoS::AtMostOnce, false, 0));
    assert_eq!(out, [Output::Event(Event::Message("t".into(), None))]);
}

#[test]
fn publish_refuses_an_empty_topic_and_an_oversized_packet() {
    let mut s = up();
    assert!(!s.publish("", b"x", QoS::AtMostOnce, false).0);
    assert!(!s.publish("t", &[0; 1500], QoS::AtMostOnce, false).0);
    assert_eq!(s.queued(), 0);
}

#[test]
fn close_disconnects_once_the_disconnect_is_handed_over() {
    let mut s = up();
    let out = s.close();
    assert_eq!(out[0], Output::Send(codec::disconnect()));
    assert_eq!(s.sent().last(), Some(&Output::Disconnect));
}

#[test]
fn a_lost_connection_drops_the_queue_and_nothing_is_resent() {
    let mut s = up();
    s.publish("t", b"1", QoS::AtLeastOnce, false);
    s.publish("t", b"2", QoS::AtLeastOnce, false);
    assert_eq!(s.queued(), 2);
    s.reset();
    assert_eq!(s.queued(), 0);
    // The next connection starts with its CONNECT alone.
    let out = s.connected();
    assert_eq!(sends(&out), 1);
    s.sent();
    let out = s.received(&connack(ConnectReturnCode::Success));
    assert_eq!(sends(&out), 0);
}
