//! The firmware's MQTT client state machine (`mqtt.c`), without I/O: the connection's states, its
//! single outgoing queue with one packet in flight, the one timer that serves as send timeout,
//! CONNACK timeout and keepalive, and the acknowledgements of each QoS level.
//!
//! The caller feeds it what happens (the connection came up, bytes arrived, a send was handed over,
//! the timer fired, the script called a method) and carries out the [`Output`]s it returns, in
//! order: bytes to send, the timer to arm, the connection to drop, events for the script.
//!
//! The board's rules, kept because scripts can see them:
//! - One packet is sent at a time; the next goes only after the previous one's "sent", and a
//!   QoS 1/2 PUBLISH (and a SUBSCRIBE, an UNSUBSCRIBE, a PUBREC we sent) stays at the head of the
//!   queue, holding everything behind it, until the broker acknowledges it. Nothing is resent.
//! - A QoS 0 PUBLISH counts as done when it is handed over: "puback" fires then.
//! - The timer: 5 s after a packet is sent, re-armed to the keepalive once it is handed over; when
//!   it fires with the queue empty a PINGREQ goes out, and if the previous PINGREQ still has no
//!   answer the connection is dropped. With something queued it does nothing and is not re-armed.
//! - Acks are matched against the head of the queue only (type and packet id); others are ignored.

use std::collections::VecDeque;
use std::time::Duration;

use mqttbytes::v4::{ConnectReturnCode, Packet, Publish};
use mqttbytes::{PacketType, QoS};

use super::codec::{self, ConnectInfo, Frame, Framer};

/// `MQTT_SEND_TIMEOUT`: how long a sent packet may take to be handed over, and a CONNACK to come.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// The firmware's connection failure codes (`mqtt.CONN_FAIL_*`); CONNACK codes are 1..=5.
pub mod fail {
    pub const SERVER_NOT_FOUND: i32 = -5;
    pub const NOT_A_CONNACK_MSG: i32 = -4;
    pub const DNS: i32 = -3;
    pub const TIMEOUT_RECEIVING: i32 = -2;
    pub const TIMEOUT_SENDING: i32 = -1;
}

/// What the script is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Connect,
    ConnFail(i32),
    /// A PUBLISH: topic and payload (`None` when the payload is empty, as the board passes nil).
    Message(String, Option<bytes::Bytes>),
    Overflow(String, Option<bytes::Bytes>),
    PubAck,
    SubAck,
    UnsubAck,
}

/// What the caller must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write these bytes; call [`Session::sent`] once they are handed over.
    Send(Vec<u8>),
    /// Arm the session's timer for this long (replacing any armed one).
    Timer(Duration),
    /// Drop the connection; the script's "offline" follows when it is gone.
    Disconnect,
    Event(Event),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Init,
    ConnectSending,
    ConnectSent,
    Data,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Publish(QoS),
    Subscribe,
    Unsubscribe,
    PubAck,
    PubRec,
    PubRel,
    PubComp,
    PingReq,
    PingResp,
    Disconnect,
}

#[derive(Debug)]
struct Pending {
    kind: Kind,
    id: u16,
    bytes: Vec<u8>,
    sent: bool,
}

/// One client's protocol state; lives as long as the `mqtt.socket`.
#[derive(Debug)]
pub struct Session {
    info: ConnectInfo,
    max_message_length: usize,
    /// Largest packet a script may queue (`None`: no limit); the board builds them in 1460 bytes.
    max_out: Option<usize>,
    state: State,
    queue: VecDeque<Pending>,
    next_id: u16,
    sending: bool,
    keepalive_sent: bool,
    framer: Framer,
    out: Vec<Output>,
}

impl Session {
    pub fn new(info: ConnectInfo, max_message_length: usize, max_out: Option<usize>) -> Session {
        Session {
            info,
            max_message_length,
            max_out,
            state: State::Init,
            queue: VecDeque::new(),
            next_id: 0,
            sending: false,
            keepalive_sent: false,
            framer: Framer::default(),
            out: Vec::new(),
        }
    }

    /// The CONNECT's contents, which the script may change between connections (`lwt`).
    pub fn info_mut(&mut self) -> &mut ConnectInfo {
        &mut self.info
    }

    pub fn is_connected(&self) -> bool {
        self.state == State::Data
    }

    /// Packets queued and not yet acknowledged (or handed over, for those needing no ack).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    fn take(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    fn keepalive(&self) -> Duration {
        Duration::from_secs(u64::from(self.info.keepalive))
    }

    fn next_message_id(&mut self) -> u16 {
        self.next_id = self.next_id.wrapping_add(1);
        if self.next_id == 0 {
            self.next_id = 1;
        }
        self.next_id
    }

    /// The connection is gone: the queue and any partial packet are dropped.
    pub fn reset(&mut self) {
        self.state = State::Init;
        self.queue.clear();
        self.sending = false;
        self.keepalive_sent = false;
        self.framer.reset();
        self.out.clear();
    }

    /// The TCP (or TLS) connection is up: the CONNECT goes out at once, outside the queue.
    pub fn connected(&mut self) -> Vec<Output> {
        self.reset();
        self.out.push(Output::Send(codec::connect(&self.info)));
        self.sending = true;
        self.out.push(Output::Timer(SEND_TIMEOUT));
        self.state = State::ConnectSending;
        self.take()
    }

    /// The packet last sent was handed over to the network.
    pub fn sent(&mut self) -> Vec<Output> {
        self.sending = false;
        if self.state == State::ConnectSending {
            self.state = State::ConnectSent;
            self.out.push(Output::Timer(SEND_TIMEOUT));
            return self.take();
        }
        self.out.push(Output::Timer(self.keepalive()));
        let head = self.queue.front().map(|p| p.kind);
        match head {
            Some(Kind::Publish(QoS::AtMostOnce)) => {
                self.queue.pop_front();
                self.out.push(Output::Event(Event::PubAck));
                self.send_if_possible();
            }
            Some(Kind::PubAck | Kind::PubComp | Kind::PingReq) => {
                self.queue.pop_front();
                self.send_if_possible();
            }
            Some(Kind::Disconnect) => {
                self.queue.pop_front();
                self.out.push(Output::Disconnect);
            }
            _ => {}
        }
        self.take()
    }

    /// The session's timer fired.
    pub fn timer(&mut self) -> Vec<Output> {
        match self.state {
            State::Init => {}
            State::ConnectSending => self.fail(fail::TIMEOUT_SENDING),
            State::ConnectSent => self.fail(fail::TIMEOUT_RECEIVING),
            State::Data if !self.queue.is_empty() => {}
            State::Data if self.keepalive_sent => self.out.push(Output::Disconnect),
            State::Data => {
                self.enqueue(Kind::PingReq, 0, codec::pingreq());
                self.keepalive_sent = true;
                self.send_if_possible();
            }
        }
        self.take()
    }

    /// The connection attempt ends with `code`: the connection is dropped, then the script is told.
    fn fail(&mut self, code: i32) {
        self.state = State::Init;
        self.out.push(Output::Disconnect);
        self.out.push(Output::Event(Event::ConnFail(code)));
    }

    /// Bytes from the broker.
    pub fn received(&mut self, data: &[u8]) -> Vec<Output> {
        self.framer.push(data);
        loop {
            let limit = (self.state == State::Data).then_some(self.max_message_length);
            match self.framer.next(limit) {
                Ok(Some(frame)) => self.frame(frame),
                Ok(None) => break,
                Err(_) => {
                    self.framer.reset();
                    self.out.push(Output::Disconnect);
                    break;
                }
            }
            if self.state == State::Init {
                break; // the connection is being dropped: the rest is not read
            }
        }
        self.send_if_possible();
        self.take()
    }

    fn frame(&mut self, frame: Frame) {
        match (self.state, frame) {
            (State::ConnectSending | State::ConnectSent, f) => self.connack(f),
            (State::Data, Frame::Packet(p)) => self.packet(p),
            (State::Data, Frame::Overflow(p)) => {
                self.ack_publish(&p);
                let payload = (!p.payload.is_empty()).then_some(p.payload);
                if !p.topic.is_empty() {
                    self.out
                        .push(Output::Event(Event::Overflow(p.topic, payload)));
                }
            }
            _ => {}
        }
    }

    fn connack(&mut self, frame: Frame) {
        self.out.push(Output::Timer(self.keepalive()));
        let code = match frame {
            Frame::Packet(Packet::ConnAck(ack)) => ack.code,
            _ => return self.fail(fail::NOT_A_CONNACK_MSG),
        };
        if code != ConnectReturnCode::Success {
            return self.fail(code as i32);
        }
        self.state = State::Data;
        self.keepalive_sent = false;
        self.out.push(Output::Event(Event::Connect));
    }

    /// Is the head of the queue a sent packet of `kind` with this id?
    fn head_is(&self, kind: fn(Kind) -> bool, id: u16) -> bool {
        self.queue
            .front()
            .is_some_and(|p| kind(p.kind) && p.id == id)
    }

    fn packet(&mut self, p: Packet) {
        match p {
            Packet::SubAck(a) if self.head_is(|k| k == Kind::Subscribe, a.pkid) => {
                self.queue.pop_front();
                self.out.push(Output::Event(Event::SubAck));
            }
            Packet::UnsubAck(a) if self.head_is(|k| k == Kind::Unsubscribe, a.pkid) => {
                self.queue.pop_front();
                self.out.push(Output::Event(Event::UnsubAck));
            }
            Packet::Publish(p) => {
                self.ack_publish(&p);
                let payload = (!p.payload.is_empty()).then_some(p.payload);
                if !p.topic.is_empty() {
                    self.out
                        .push(Output::Event(Event::Message(p.topic, payload)));
                }
            }
            Packet::PubAck(a) if self.head_is(|k| matches!(k, Kind::Publish(_)), a.pkid) => {
                self.queue.pop_front();
                self.out.push(Output::Event(Event::PubAck));
            }
            Packet::PubRec(a) if self.head_is(|k| matches!(k, Kind::Publish(_)), a.pkid) => {
                self.queue.pop_front();
                self.enqueue(Kind::PubRel, a.pkid, codec::pubrel(a.pkid));
            }
            Packet::PubRel(a) if self.head_is(|k| k == Kind::PubRec, a.pkid) => {
                self.queue.pop_front();
                self.enqueue(Kind::PubComp, a.pkid, codec::pubcomp(a.pkid));
            }
            Packet::PubComp(a) if self.head_is(|k| k == Kind::PubRel, a.pkid) => {
                self.queue.pop_front();
                self.out.push(Output::Event(Event::PubAck));
            }
            Packet::PingReq => self.enqueue(Kind::PingResp, 0, codec::pingresp()),
            Packet::PingResp => self.keepalive_sent = false,
            _ => {}
        }
    }

    /// Queues the acknowledgement a received PUBLISH needs.
    fn ack_publish(&mut self, p: &Publish) {
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.enqueue(Kind::PubAck, p.pkid, codec::puback(p.pkid)),
            QoS::ExactlyOnce => self.enqueue(Kind::PubRec, p.pkid, codec::pubrec(p.pkid)),
        }
    }

    fn enqueue(&mut self, kind: Kind, id: u16, bytes: Vec<u8>) {
        self.queue.push_back(Pending {
            kind,
            id,
            bytes,
            sent: false,
        });
    }

    /// Sends the head of the queue if nothing is being handed over and it was not sent yet.
    fn send_if_possible(&mut self) {
        if self.sending {
            return;
        }
        if let Some(p) = self.queue.front_mut()
            && !p.sent
        {
            p.sent = true;
            self.out.push(Output::Send(p.bytes.clone()));
            self.sending = true;
            self.out.push(Output::Timer(SEND_TIMEOUT));
        }
    }

    /// Queues a script's packet (false, and nothing queued, if it could not be built), and sends
    /// it if the line is free.
    fn submit(&mut self, kind: Kind, id: u16, bytes: Vec<u8>) -> (bool, Vec<Output>) {
        if bytes.is_empty() || self.max_out.is_some_and(|max| bytes.len() > max) {
            return (false, Vec::new());
        }
        self.enqueue(kind, id, bytes);
        self.send_if_possible();
        (true, self.take())
    }

    /// `publish`: true if queued. An empty topic or a packet over the board's buffer is refused.
    pub fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> (bool, Vec<Output>) {
        if topic.is_empty() {
            return (false, Vec::new());
        }
        let id = if qos == QoS::AtMostOnce {
            0
        } else {
            self.next_message_id()
        };
        let bytes = codec::publish(topic, payload, qos, retain, id);
        self.submit(Kind::Publish(qos), id, bytes)
    }

    pub fn subscribe(&mut self, filters: &[(String, QoS)]) -> (bool, Vec<Output>) {
        let id = self.next_message_id();
        let bytes = codec::subscribe(id, filters);
        self.submit(Kind::Subscribe, id, bytes)
    }

    pub fn unsubscribe(&mut self, topics: &[String]) -> (bool, Vec<Output>) {
        let id = self.next_message_id();
        let bytes = codec::unsubscribe(id, topics);
        self.submit(Kind::Unsubscribe, id, bytes)
    }

    /// `close`: a DISCONNECT joins the queue; the connection is dropped once it is handed over.
    pub fn close(&mut self) -> Vec<Output> {
        self.submit(Kind::Disconnect, 0, codec::disconnect()).1
    }

    /// The packet type at the head of the queue, for diagnostics and tests.
    pub fn head(&self) -> Option<PacketType> {
        self.queue.front().map(|p| match p.kind {
            Kind::Publish(_) => PacketType::Publish,
            Kind::Subscribe => PacketType::Subscribe,
            Kind::Unsubscribe => PacketType::Unsubscribe,
            Kind::PubAck => PacketType::PubAck,
            Kind::PubRec => PacketType::PubRec,
            Kind::PubRel => PacketType::PubRel,
            Kind::PubComp => PacketType::PubComp,
            Kind::PingReq => PacketType::PingReq,
            Kind::PingResp => PacketType::PingResp,
            Kind::Disconnect => PacketType::Disconnect,
        })
    }
}

#[cfg(test)]
mod tests;
