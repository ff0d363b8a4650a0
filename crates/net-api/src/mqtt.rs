//! `mqtt`: the firmware's MQTT 3.1.1 client (`mqtt.Client()` and its `mqtt.socket` handle).
//!
//! - `mqtt/socket.rs`: the handle's methods, their argument rules and errors, per generation.
//! - `mqtt/link.rs`: the connection to the broker (TCP, or TLS through the `tls` module's
//!   certificate store), the session timer, and the callbacks the protocol engine's events fire.
//!
//! The protocol itself (queue, acks, keepalive, timeouts, framing) is `host_backend::mqtt`. The
//! module is a global in every generation; `mqtt.CONN_FAIL_*` and `mqtt.CONNACK_*` are the codes
//! the failure callback gets.

use std::rc::Rc;

use host_backend::mqtt::fail;
use mlua::Lua;

use crate::lauxlib::bind;
use crate::modules::module_table;
use crate::runtime::Runtime;

mod link;
mod socket;

const CODES: &[(&str, i32)] = &[
    ("CONN_FAIL_SERVER_NOT_FOUND", fail::SERVER_NOT_FOUND),
    ("CONN_FAIL_NOT_A_CONNACK_MSG", fail::NOT_A_CONNACK_MSG),
    ("CONN_FAIL_DNS", fail::DNS),
    ("CONN_FAIL_TIMEOUT_RECEIVING", fail::TIMEOUT_RECEIVING),
    ("CONN_FAIL_TIMEOUT_SENDING", fail::TIMEOUT_SENDING),
    ("CONNACK_ACCEPTED", 0),
    ("CONNACK_REFUSED_PROTOCOL_VER", 1),
    ("CONNACK_REFUSED_ID_REJECTED", 2),
    ("CONNACK_REFUSED_SERVER_UNAVAILABLE", 3),
    ("CONNACK_REFUSED_BAD_USER_OR_PASS", 4),
    ("CONNACK_REFUSED_NOT_AUTHORIZED", 5),
];

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    socket::install(lua, rt)?;
    let r = rt.clone();
    let client = bind(lua, move |lua, a| socket::client(lua, &r, &a))?;
    let mqtt = module_table(lua, vec![("Client", client)])?;
    for (name, code) in CODES {
        mqtt.set(*name, *code)?;
    }
    lua.globals().set("mqtt", mqtt)
}
