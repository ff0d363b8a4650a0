//! The firmware's MQTT 3.1.1 client, as a protocol engine without I/O.
//!
//! - [`codec`]: packets to and from bytes through the `mqttbytes` codec, and the framing of the
//!   received stream with the firmware's `max_message_length` rule.
//! - [`session`]: `mqtt.c`'s state machine (one packet in flight, its queue, the keepalive timer,
//!   the CONNACK and send timeouts), driven by the caller and answering with [`session::Output`]s.
//!
//! The Lua binding (`net-api`'s `mqtt` module) carries the bytes over a [`crate::stream::Conn`]
//! (plain TCP, or TLS from [`crate::tls`]) and runs the timer on the device clock, so the engine
//! can be tested with plain Rust tests.

pub mod codec;
pub mod session;

pub use mqttbytes::QoS;
pub use session::{Event, Output, Session, fail};
