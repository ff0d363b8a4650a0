//! `net.tcpsocket`. To be implemented (issue 3).

use std::rc::Rc;

use mlua::{Lua, Value};

use crate::lauxlib::{FwResult, fw_err};
use crate::runtime::Runtime;

pub(crate) fn install(_lua: &Lua, _rt: &Rc<Runtime>) -> mlua::Result<()> {
    Ok(())
}

/// `net.createConnection()`: a TCP client.
pub fn create(_lua: &Lua, _rt: &Rc<Runtime>) -> FwResult<Value> {
    fw_err("TCP sockets are not available yet")
}
