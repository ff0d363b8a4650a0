//! `net`: TCP servers and sockets, UDP sockets and DNS, bound the way the firmware binds them.
//!
//! One file per handle kind (`tcpserver`, `tcpsocket`, `udpsocket`, `dns`), each with the same
//! shape: a check-self helper, thin bindings, one error path. This file builds the module table and
//! holds what the kinds share.

use std::rc::Rc;

use mlua::Lua;

use crate::runtime::Runtime;

/// `net.TCP` and `net.UDP`, as the firmware numbers them.
pub const TCP: i64 = 1;
pub const UDP: i64 = 2;

pub(crate) fn install(lua: &Lua, _rt: &Rc<Runtime>) -> mlua::Result<()> {
    let net = lua.create_table()?;
    net.set("TCP", TCP)?;
    net.set("UDP", UDP)?;
    lua.globals().set("net", net)
}
