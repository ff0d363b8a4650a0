//! `net.tcpserver`. To be implemented (issue 3).

use std::rc::Rc;

use mlua::{Lua, Value};

use crate::lauxlib::{FwResult, fw_err};
use crate::runtime::Runtime;

pub(crate) fn install(_lua: &Lua, _rt: &Rc<Runtime>) -> mlua::Result<()> {
    Ok(())
}

/// `net.createServer` with an idle timeout in seconds.
pub fn create(_lua: &Lua, _rt: &Rc<Runtime>, _timeout: i64) -> FwResult<Value> {
    fw_err("TCP servers are not available yet")
}
