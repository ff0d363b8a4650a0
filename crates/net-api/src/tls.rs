//! `tls`: TLS client sockets on rustls. To be implemented (issue 5).

use std::rc::Rc;

use mlua::{Lua, Value};

use crate::lauxlib::{FwResult, fw_err};
use crate::runtime::Runtime;

/// `tls.createConnection()` and `net.createConnection(net.TCP, 1)`.
pub fn create(_lua: &Lua, _rt: &Rc<Runtime>) -> FwResult<Value> {
    fw_err("TLS is not available yet")
}
