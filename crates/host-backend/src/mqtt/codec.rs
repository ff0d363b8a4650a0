//! MQTT 3.1.1 packets on the wire, through the `mqttbytes` codec: the packets the firmware's client
//! sends, encoded to bytes, and a [`Framer`] that cuts the received byte stream into packets the
//! way `mqtt.c` does, including its `max_message_length` rule (a packet longer than that is not
//! buffered: a PUBLISH reaches the script truncated, as "overflow", and the rest is skipped).
//!
//! Nothing here encodes or parses a packet by hand; only the framing decisions are ours.

use bytes::{Bytes, BytesMut};
use mqttbytes::v4::{
    Connect, LastWill, Login, Packet, PubAck, PubComp, PubRec, PubRel, Publish, Subscribe,
    SubscribeFilter, Unsubscribe,
};
use mqttbytes::{FixedHeader, PacketType, Protocol, QoS};

/// What the firmware's single TCP segment holds: an oversized PUBLISH delivers the part of it that
/// arrived with its header, which on a board is one segment of this many bytes.
pub const SEGMENT: usize = 1460;

/// A codec failure, in words for the diagnostic channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(pub String);

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(e: mqttbytes::Error) -> CodecError {
    CodecError(format!("malformed MQTT packet ({e:?})"))
}

/// The QoS level for a number the script gave (0, 1, 2).
pub fn qos(n: u8) -> Option<QoS> {
    mqttbytes::qos(n).ok()
}

/// The last will a client registers with its CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    pub topic: String,
    pub message: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
}

/// What the CONNECT packet carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectInfo {
    pub client_id: String,
    pub keepalive: u16,
    pub username: String,
    pub password: String,
    pub clean_session: bool,
    pub will: Option<Will>,
}

fn encode(write: impl FnOnce(&mut BytesMut) -> Result<usize, mqttbytes::Error>) -> Vec<u8> {
    let mut buf = BytesMut::new();
    // Every packet here is built from checked parts; a codec refusal leaves an empty buffer,
    // which the caller treats as a packet that could not be built (the firmware's 0 length).
    match write(&mut buf) {
        Ok(_) => buf.to_vec(),
        Err(_) => Vec::new(),
    }
}

pub fn connect(info: &ConnectInfo) -> Vec<u8> {
    let mut c = Connect::new(info.client_id.clone());
    c.protocol = Protocol::V4;
    c.keep_alive = info.keepalive;
    c.clean_session = info.clean_session;
    if !info.username.is_empty() || !info.password.is_empty() {
        c.login = Some(Login::new(info.username.clone(), info.password.clone()));
    }
    if let Some(w) = &info.will {
        c.last_will = Some(LastWill {
            topic: w.topic.clone(),
            message: Bytes::from(w.message.clone()),
            qos: qos(w.qos & 3).unwrap_or(QoS::AtMostOnce),
            retain: w.retain,
        });
    }
    encode(|b| c.write(b))
}

pub fn publish(topic: &str, payload: &[u8], qos: QoS, retain: bool, pkid: u16) -> Vec<u8> {
    let mut p = Publish::new(topic, qos, payload.to_vec());
    p.retain = retain;
    p.pkid = pkid;
    encode(|b| p.write(b))
}

pub fn subscribe(pkid: u16, filters: &[(String, QoS)]) -> Vec<u8> {
    let mut s = Subscribe::empty_subscribe();
    s.pkid = pkid;
    s.filters = filters
        .iter()
        .map(|(t, q)| SubscribeFilter::new(t.clone(), *q))
        .collect();
    encode(|b| s.write(b))
}

pub fn unsubscribe(pkid: u16, topics: &[String]) -> Vec<u8> {
    let u = Unsubscribe {
        pkid,
        topics: topics.to_vec(),
    };
    encode(|b| u.write(b))
}

pub fn puback(pkid: u16) -> Vec<u8> {
    encode(|b| PubAck::new(pkid).write(b))
}

pub fn pubrec(pkid: u16) -> Vec<u8> {
    encode(|b| PubRec::new(pkid).write(b))
}

pub fn pubrel(pkid: u16) -> Vec<u8> {
    encode(|b| PubRel::new(pkid).write(b))
}

pub fn pubcomp(pkid: u16) -> Vec<u8> {
    encode(|b| PubComp::new(pkid).write(b))
}

pub fn pingreq() -> Vec<u8> {
    encode(|b| mqttbytes::v4::PingReq.write(b))
}

pub fn pingresp() -> Vec<u8> {
    encode(|b| mqttbytes::v4::PingResp.write(b))
}

pub fn disconnect() -> Vec<u8> {
    encode(|b| mqttbytes::v4::Disconnect.write(b))
}

/// One received unit: a whole packet, or the truncated head of a PUBLISH over the limit.
#[derive(Debug, PartialEq)]
pub enum Frame {
    Packet(Packet),
    /// A PUBLISH longer than `max_message_length`: its topic, id, QoS and the payload bytes that
    /// came with its first segment. The rest of it is skipped.
    Overflow(Publish),
    /// A packet of another kind over the limit: skipped.
    Skipped(PacketType),
}

/// The size of the packet at the front of `buf`: `None` while even its fixed header is incomplete.
fn frame_header(buf: &[u8]) -> Result<Option<(u8, usize, usize)>, CodecError> {
    // `check` with a zero limit reports the remaining length as soon as the fixed header is
    // readable, before the rest of the packet has arrived.
    let remaining = match mqttbytes::check(buf.iter(), 0) {
        Ok(_) => 0,
        Err(mqttbytes::Error::PayloadSizeLimitExceeded(n)) => n,
        Err(mqttbytes::Error::InsufficientBytes(_)) => return Ok(None),
        Err(e) => return Err(err(e)),
    };
    let header = 1 + match remaining {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    };
    Ok(Some((buf[0], header, header + remaining)))
}

/// Cuts received bytes into frames. Keeps what is incomplete for the next read; skips what is
/// left of an oversized packet without keeping it.
#[derive(Debug, Default)]
pub struct Framer {
    buf: BytesMut,
    skip: usize,
}

impl Framer {
    /// Forgets everything (a new connection).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.skip = 0;
    }

    pub fn push(&mut self, data: &[u8]) {
        let skipped = self.skip.min(data.len());
        self.skip -= skipped;
        self.buf.extend_from_slice(&data[skipped..]);
    }

    /// The next frame, if one is complete. `limit` is `max_message_length` (whole packet bytes),
    /// or `None` where no limit applies (while waiting for the CONNACK).
    pub fn next(&mut self, limit: Option<usize>) -> Result<Option<Frame>, CodecError> {
        let Some((byte1, header, len)) = frame_header(&self.buf)? else {
            return Ok(None);
        };
        if limit.is_some_and(|max| len > max) {
            return self.oversized(byte1, header, len);
        }
        if self.buf.len() < len {
            return Ok(None);
        }
        mqttbytes::v4::read(&mut self.buf, usize::MAX)
            .map(|p| Some(Frame::Packet(p)))
            .map_err(err)
    }

    fn oversized(
        &mut self,
        byte1: u8,
        header: usize,
        len: usize,
    ) -> Result<Option<Frame>, CodecError> {
        let fixed = FixedHeader::new(byte1, header - 1, len - header);
        let kind = fixed.packet_type().map_err(err)?;
        let head = len.min(SEGMENT);
        if kind == PacketType::Publish && self.buf.len() < head {
            return Ok(None); // the first segment is not all here yet
        }
        let take = len.min(self.buf.len());
        let packet = self.buf.split_to(take).freeze();
        self.skip = len - take;
        if kind != PacketType::Publish {
            return Ok(Some(Frame::Skipped(kind)));
        }
        let head_bytes = packet.slice(..head);
        let fixed = FixedHeader::new(byte1, header - 1, head - header);
        match Publish::read(fixed, head_bytes) {
            Ok(p) => Ok(Some(Frame::Overflow(p))),
            // Not even the topic fitted: nothing to deliver.
            Err(_) => Ok(Some(Frame::Skipped(kind))),
        }
    }
}

#[cfg(test)]
mod tests;
