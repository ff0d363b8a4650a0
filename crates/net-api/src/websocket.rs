//! `websocket`: the ESP8266 firmware's WebSocket client (`websocket.createClient()` and its
//! `websocket.client` handle), on every ESP8266 generation and the host profile; the ESP32
//! firmware has no such module.
//!
//! - `websocket/client.rs`: the handle's methods, their argument rules and errors.
//! - `websocket/link.rs`: the connection (TCP, or TLS through the `tls` module's certificate
//!   store for `wss://`), the firmware's timers, and the callbacks the engine's outputs fire.
//!
//! The protocol itself (URL rules, the upgrade, framing, pings) is `host_backend::websocket`.

use std::rc::Rc;

use mlua::Lua;

use crate::lauxlib::bind;
use crate::modules::module_table;
use crate::runtime::Runtime;

mod client;
mod link;

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    client::install(lua, rt)?;
    let r = rt.clone();
    let create = bind(lua, move |lua, _| client::create(lua, &r))?;
    let ws = module_table(lua, vec![("createClient", create)])?;
    lua.globals().set("websocket", ws)
}
