//! `tls`: TLS client sockets and the device's certificate store, on rustls.
//!
//! - `tls/cert.rs`: `tls.cert.verify` / `tls.cert.auth`, the per-boot certificate state, and the
//!   client setup each connection is made with.
//! - `tls/dial.rs`: the plain or TLS stream that `mqtt` and `websocket` clients connect over.
//! - `tls/socket.rs`: the `tls.socket` handle (`connect`, `send`, `on`, ...), which rides on the
//!   TCP stream layer and `host_backend::tls` for the handshake.
//!
//! The module is a global on every profile. `tls.createConnection()` and the 2015 form
//! `net.createConnection(net.TCP, 1)` make the same socket. As on the board, nothing is verified
//! unless the script asks (`tls.cert.verify`); the simulator says so once on stderr.

use std::rc::Rc;

use mlua::{Lua, Value};

use crate::lauxlib::{FwResult, bind};
use crate::modules::module_table;
use crate::runtime::Runtime;

pub mod cert;
pub(crate) mod dial;
mod link;
mod socket;

/// The module's per-boot state, reachable from any binding through the Lua state's app data.
#[derive(Clone)]
pub(crate) struct TlsModule {
    pub certs: cert::Certs,
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let certs = cert::new_state(rt);
    lua.set_app_data(TlsModule {
        certs: certs.clone(),
    });
    socket::install(lua, rt)?;
    let r = rt.clone();
    let create_connection = bind(lua, move |lua, _| create(lua, &r))?;
    let c = certs.clone();
    let set_debug = bind(lua, move |_, a| {
        c.borrow_mut().debug = a.check_integer(1)?;
        Ok(())
    })?;
    let tls = module_table(
        lua,
        vec![
            ("createConnection", create_connection),
            ("setDebug", set_debug),
        ],
    )?;
    tls.set("cert", cert::table(lua, rt, &certs)?)?;
    lua.globals().set("tls", tls)
}

/// `tls.createConnection()` and `net.createConnection(net.TCP, 1)`: arguments are ignored.
pub fn create(lua: &Lua, rt: &Rc<Runtime>) -> FwResult<Value> {
    socket::create(lua, rt)
}

/// The TLS client configuration for a connection another module makes over TLS (`mqtt`'s secure
/// connections): the device's certificate store as it stands, the script's certificate functions
/// called, and the once-per-run note when nothing will be verified.
pub(crate) fn client_config(
    lua: &Lua,
    rt: &Rc<Runtime>,
) -> Result<std::sync::Arc<host_backend::tls::ClientConfig>, String> {
    let certs = lua
        .app_data_ref::<TlsModule>()
        .map(|m| m.certs.clone())
        .ok_or_else(|| "the tls module is not installed".to_string())?;
    let setup = cert::CertState::client_setup(&certs, lua, rt.cfg.target)?;
    if certs.borrow().unverified() {
        rt.warn_once(
            "tls-unverified",
            "TLS connection made without certificate verification (the device default); \
             call tls.cert.verify(...) to check the server's certificate",
        );
    }
    host_backend::tls::client_config(&setup).map_err(|e| e.to_string())
}
