//! A TCP socket under `--firmware 1.5`: what 1.5.4.1's espconn-based `net.c` does differently.
//!
//! That `net.c` wraps the SDK's espconn, not lwIP's PCB. Its differences from 2.x and 3.0 (whose
//! `net.c` the rest of `tcpsocket` follows) are all here, so the bindings only ask [`legacy`]:
//! - every end of a connection, refused, reset or closed by either side, is "disconnection" with
//!   the socket alone: the espconn's reconnect callback only runs the disconnect one, so a
//!   "reconnection" callback is stored but never called, and no error code is passed;
//! - `close()` of a connection ends in "disconnection" too, from the SDK's close task;
//! - once disconnected, the espconn is freed ([`SockState::released`]): `connect`, `send`,
//!   `close` and `dns` then return without doing anything or raising;
//! - `connect` fires no "dns" (its lookup is the SDK's own), and a name that does not resolve
//!   ends the attempt without calling anything (see `conn.rs`);
//! - `close()` and `send()` on a socket without a connection are silent, `send` takes at most
//!   1460 bytes, `on` takes only a function and names no event outside the six,
//! - `getpeer()` answers `ip, port`, and there is no `getaddr` or `ttl`.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{AnyUserData, Lua};

use super::conn::settle;
use super::{EVENTS, SockState};
use crate::config::Firmware;
use crate::lauxlib::{Args, FwResult, fw_err};
use crate::net::events::OnTable;
use crate::runtime::Runtime;

/// 1.5.4.1's largest `send`.
pub(super) const MAX_SEND: usize = 1460;

/// Whether this device's sockets are 1.5.4.1's.
pub(crate) fn legacy(rt: &Runtime) -> bool {
    rt.cfg.firmware == Firmware::V1_5
}

/// The espconn's disconnect callback: "disconnection" with the socket only (whatever ended the
/// connection), then the espconn is gone.
pub(super) fn disconnected(
    lua: &Lua,
    rt: &Rc<Runtime>,
    st: &Rc<RefCell<SockState>>,
    ud: &AnyUserData,
) -> mlua::Result<()> {
    st.borrow_mut().released = true;
    let r = match OnTable(lua, ud).get("disconnection") {
        Some(f) => rt.call_net(lua, &f, ud.clone()),
        None => Ok(()),
    };
    settle(rt, st);
    r
}

/// After `close()` of a connection: the SDK's close task runs the disconnect callback on a later
/// turn of the loop. The socket stays anchored until then.
pub(super) fn close_task(rt: &Rc<Runtime>, st: &Rc<RefCell<SockState>>) {
    let (id, epoch) = {
        let mut s = st.borrow_mut();
        s.released = true;
        (s.id, s.epoch)
    };
    let (r, s) = (Rc::downgrade(rt), Rc::downgrade(st));
    rt.event_sink().push(Box::new(move |lua| {
        let (Some(rt), Some(st)) = (r.upgrade(), s.upgrade()) else {
            return Ok(());
        };
        if st.borrow().epoch != epoch {
            return Ok(());
        }
        match rt.anchored(id) {
            Some(ud) => disconnected(lua, &rt, &st, &ud),
            None => Ok(()),
        }
    }));
}

/// `on(event, fn)`'s checks: `luaL_checkanyfunction`, then the six event names.
pub(super) fn check_on(event: &str, a: &Args) -> FwResult<()> {
    a.check_function(3)?;
    if !EVENTS.contains(&event) {
        return fw_err("method not supported");
    }
    Ok(())
}
