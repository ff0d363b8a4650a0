//! `tls.cert.verify` and `tls.cert.auth`: what the device trusts and which certificate it presents.
//!
//! The board keeps one flash sector for the trusted CA and one for the client certificate and key,
//! plus a flag per sector saying whether it is in use, plus an optional Lua function per sector that
//! supersedes it. [`CertState`] is that, per boot. The PEM forms are decoded with the firmware's own
//! rules (`host_backend::tls::pem`), so a bad blob raises exactly the board's message. The function
//! forms are called when a connection starts, as `fn(1)`, `fn(2)`, ... (and `fn(0)` for the key),
//! until they return nil or false; [`CertState::client_setup`] turns all of it into the
//! `host_backend::tls::ClientSetup` for one connection.

use std::cell::RefCell;
use std::rc::Rc;

use host_backend::tls::pem::{self, PemError};
use host_backend::tls::{CaStore, ClientSetup, Identity};
use mlua::{Function, Lua, Table, Value};

use crate::config::Target;
use crate::lauxlib::{Args, FwResult, bind, fw_err};
use crate::modules::module_table;
use crate::runtime::Runtime;

/// A callback that keeps returning certificates would loop forever on the board (until the heap
/// runs out); the simulator stops it here and fails the connection.
const MAX_CALLBACK_CERTS: i64 = 64;

/// The client certificate sector: a certificate, and a key unless `auth` was given only one blob.
#[derive(Clone)]
struct StoredIdentity {
    cert: Vec<u8>,
    key: Option<Vec<u8>>,
}

#[derive(Default)]
pub(crate) struct CertState {
    /// The CA sector: the public roots at boot under `--tls-roots webpki`, else what a script stored.
    ca: Option<CaStore>,
    verify: bool,
    verify_fn: Option<Function>,
    client: Option<StoredIdentity>,
    auth: bool,
    auth_fn: Option<Function>,
    /// `tls.setDebug` level: above 0 the simulator reports each handshake on stderr.
    pub debug: i64,
}

pub(crate) type Certs = Rc<RefCell<CertState>>;

pub(crate) fn new_state(rt: &Runtime) -> Certs {
    let st = CertState {
        ca: rt.cfg.net.tls_webpki_roots.then_some(CaStore::Webpki),
        ..Default::default()
    };
    Rc::new(RefCell::new(st))
}

/// The `tls.cert` table.
pub(crate) fn table(lua: &Lua, rt: &Rc<Runtime>, certs: &Certs) -> mlua::Result<Table> {
    let (r, c) = (rt.clone(), certs.clone());
    let verify = bind(lua, move |_, a| verify(&r, &c, &a))?;
    let (r, c) = (rt.clone(), certs.clone());
    let auth = bind(lua, move |lua, a| auth(lua, &r, &c, &a))?;
    module_table(lua, vec![("verify", verify), ("auth", auth)])
}

fn deprecated(rt: &Runtime, what: &str) {
    rt.deprecation_note(what, "soon");
}

/// `lua_tostring` of argument `n`: strings and numbers, else nothing.
fn tostring(lua: &Lua, a: &Args, n: usize) -> mlua::Result<Option<Vec<u8>>> {
    Ok(match a.get(n) {
        v @ (Value::String(_) | Value::Integer(_) | Value::Number(_)) => {
            lua.coerce_string(v)?.map(|s| s.as_bytes().to_vec())
        }
        _ => None,
    })
}

fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Nil | Value::Boolean(false))
}

fn pem_err<T>(e: PemError) -> FwResult<T> {
    fw_err(e.message())
}

/// `tls.cert.verify(true|false|pem|fn)`.
fn verify(rt: &Runtime, certs: &Certs, a: &Args) -> FwResult<bool> {
    let mut st = certs.borrow_mut();
    st.verify_fn = None;
    let first = a.get(1);
    if let Value::Function(f) = first {
        st.verify_fn = Some(f);
        return Ok(true);
    }
    if !matches!(first, Value::Nil) {
        deprecated(rt, "tls.cert.verify's old interface");
    }
    let enable = if let Value::String(s) = &first {
        let der = match pem::fill_sector(&[Some(&s.as_bytes())], &[pem::CERTIFICATE]) {
            Ok(mut blobs) => blobs.remove(0),
            Err(e) => return pem_err(e),
        };
        let more_args = (2..=a.len()).any(|n| !a.is_none_or_nil(n));
        warn_ignored_certs(rt, &s.as_bytes(), more_args);
        st.ca = Some(CaStore::Certs(vec![der.into()]));
        true
    } else {
        truthy(&first)
    };
    if enable {
        if st.ca.is_none() {
            return fw_err("no certificates found");
        }
        st.verify = true;
    } else {
        st.verify = false;
    }
    Ok(true)
}

/// The board stores the first certificate of the first argument and nothing else: say so, since a
/// script that pins two CAs this way would trust only one of them on the device.
fn warn_ignored_certs(rt: &Runtime, text: &[u8], more_args: bool) {
    let blocks = text.windows(11).filter(|w| *w == b"-----BEGIN ").count();
    if blocks > 1 || more_args {
        rt.warn_once(
            "tls-verify-one-ca",
            "tls.cert.verify(pem) stores only the first certificate of its first argument, as the \
             board does; the others are ignored (tls.cert.verify(fn) can supply several)",
        );
    }
}

/// `tls.cert.auth(true|false|cert_pem[, key_pem]|fn)`.
fn auth(lua: &Lua, rt: &Runtime, certs: &Certs, a: &Args) -> FwResult<bool> {
    let mut st = certs.borrow_mut();
    st.auth_fn = None;
    let first = a.get(1);
    if let Value::Function(f) = first {
        st.auth_fn = Some(f);
        return Ok(true);
    }
    if !matches!(first, Value::Nil) {
        deprecated(rt, "tls.cert.auth's old interface");
    }
    let enable = if matches!(first, Value::String(_)) {
        let args: Vec<Option<Vec<u8>>> = (1..=a.len().min(2))
            .map(|n| tostring(lua, a, n))
            .collect::<mlua::Result<_>>()?;
        let views: Vec<Option<&[u8]>> = args.iter().map(|v| v.as_deref()).collect();
        let mut blobs = match pem::fill_sector(&views, &[pem::CERTIFICATE, pem::RSA_PRIVATE_KEY]) {
            Ok(b) => b.into_iter(),
            Err(e) => return pem_err(e),
        };
        let Some(cert) = blobs.next() else {
            return fw_err("no certificate");
        };
        st.client = Some(StoredIdentity {
            cert,
            key: blobs.next(),
        });
        true
    } else {
        truthy(&first)
    };
    if enable {
        if st.client.is_none() {
            return fw_err("no certificates found");
        }
        st.auth = true;
    } else {
        st.auth = false;
    }
    Ok(true)
}

impl CertState {
    /// True when a connection made now would not verify the server.
    pub fn unverified(&self) -> bool {
        self.verify_fn.is_none() && !self.verify
    }

    /// Everything one connection's TLS client needs, calling the script's certificate functions.
    /// `Err` is the simulator's explanation; the connection then fails as a failed handshake.
    pub fn client_setup(this: &Certs, lua: &Lua, target: Target) -> Result<ClientSetup, String> {
        let (verify_fn, auth_fn, ca, client) = {
            let st = this.borrow();
            let ca = st.verify.then(|| st.ca.clone()).flatten();
            let client = st.auth.then(|| st.client.clone()).flatten();
            (st.verify_fn.clone(), st.auth_fn.clone(), ca, client)
        };
        let verify = match verify_fn {
            Some(f) => Some(CaStore::Certs(call_for_certs(lua, &f, "verify")?)),
            None => ca,
        };
        let identity = match auth_fn {
            Some(f) => Some(call_for_identity(lua, &f)?),
            None => match client {
                None => None,
                Some(StoredIdentity { key: None, .. }) => {
                    return Err("tls.cert.auth stored a certificate but no private key".into());
                }
                Some(StoredIdentity {
                    cert,
                    key: Some(key),
                }) => Some(Identity {
                    chain: vec![cert.into()],
                    key: pem::stored_key(&key),
                }),
            },
        };
        Ok(ClientSetup {
            verify,
            identity,
            tls12_only: target == Target::Esp8266,
        })
    }
}

/// One call of a certificate function; `None` when it returned nil or false (the end of the list).
fn call_one(lua: &Lua, f: &Function, k: i64, which: &str) -> Result<Option<Vec<u8>>, String> {
    let v = f
        .call::<Value>(k)
        .map_err(|e| format!("tls.cert.{which} function failed: {e}"))?;
    if !truthy(&v) {
        return Ok(None);
    }
    match lua.coerce_string(v) {
        Ok(Some(s)) => Ok(Some(s.as_bytes().to_vec())),
        _ => Err(format!(
            "tls.cert.{which} function returned a value that is not a string for {k}"
        )),
    }
}

fn call_for_certs(
    lua: &Lua,
    f: &Function,
    which: &str,
) -> Result<Vec<host_backend::tls::CertificateDer<'static>>, String> {
    let mut certs = Vec::new();
    for k in 1..=MAX_CALLBACK_CERTS {
        let Some(bytes) = call_one(lua, f, k, which)? else {
            return Ok(certs);
        };
        match pem::parse_certs(&bytes) {
            Some(c) => certs.extend(c),
            None => {
                return Err(format!(
                    "tls.cert.{which} function returned something that is not a certificate for {k}"
                ));
            }
        }
    }
    Err(format!(
        "tls.cert.{which} function returned more than {MAX_CALLBACK_CERTS} certificates"
    ))
}

fn call_for_identity(lua: &Lua, f: &Function) -> Result<Identity, String> {
    let key = match call_one(lua, f, 0, "auth")? {
        None => return Err("tls.cert.auth function gave no private key for 0".into()),
        Some(bytes) => pem::parse_key(&bytes)
            .ok_or("tls.cert.auth function returned something that is not a private key for 0")?,
    };
    let chain = call_for_certs(lua, f, "auth")?;
    if chain.is_empty() {
        return Err("tls.cert.auth function gave no certificate for 1".into());
    }
    Ok(Identity { chain, key })
}
