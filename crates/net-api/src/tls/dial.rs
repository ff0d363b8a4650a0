//! The stream a protocol client (`mqtt`, `websocket`) runs over: plain TCP, or TLS on top of it
//! when the client asked for a secure connection. The client builds the TLS setup on the Lua
//! thread (the script's certificate functions run there); the connection and handshake happen
//! in the future this returns, which the client hands to the stream layer's `Conn::connect`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use host_backend::stream::{Close, Conn};
use host_backend::tls::{ClientConfig, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::runtime::Runtime;

/// A client's byte stream, whichever of the two it is.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Stream for T {}

/// A protocol client's connection.
pub(crate) type Link = Conn<Box<dyn Stream>>;

/// Connecting, as the stream layer runs it.
pub(crate) type Dialing = Pin<Box<dyn Future<Output = Result<Box<dyn Stream>, Close>>>>;

/// Connects to `addr`, then shakes hands with `name` under `tls` when given. A failed handshake
/// is said on stderr as `who: TLS handshake with ADDR failed: ...`, and `failed` runs before the
/// connection ends as a reset (the board sees the peer go away).
pub(crate) fn dial(
    rt: &Rc<Runtime>,
    who: &'static str,
    addr: SocketAddr,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    failed: impl FnOnce() + 'static,
) -> Dialing {
    let diag = Rc::downgrade(rt);
    Box::pin(async move {
        let tcp = host_backend::tcp::connect(addr).await?;
        let Some((config, name)) = tls else {
            return Ok(Box::new(tcp) as Box<dyn Stream>);
        };
        match host_backend::tls::handshake(config, name, tcp).await {
            Ok(t) => Ok(Box::new(t) as Box<dyn Stream>),
            Err(f) => {
                if let Some(rt) = diag.upgrade() {
                    rt.diag(&format!(
                        "{who}: TLS handshake with {addr} failed: {}",
                        f.detail
                    ));
                }
                failed();
                Err(Close::Reset)
            }
        }
    })
}
