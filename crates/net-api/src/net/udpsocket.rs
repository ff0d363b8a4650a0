//! `net.udpsocket`. To be implemented (issue 4).

use std::rc::Rc;

use mlua::{Lua, Value};

use crate::lauxlib::{FwResult, fw_err};
use crate::runtime::Runtime;

pub(crate) fn install(_lua: &Lua, _rt: &Rc<Runtime>) -> mlua::Result<()> {
    Ok(())
}

/// A UDP socket; `legacy` is the 2015 `net.createConnection(net.UDP, 0)` form with `connect(port, ip)`.
pub fn create(_lua: &Lua, _rt: &Rc<Runtime>, _legacy: bool) -> FwResult<Value> {
    fw_err("UDP sockets are not available yet")
}
