//! The stream a protocol client (`mqtt`, `websocket`) runs over: plain TCP, or TLS on top of it
//! when the client asked for a secure connection. The client builds the TLS setup on the Lua
//! thread (the script's certificate functions run there); [`dial`] starts the connection and the
//! handshake on the stream layer and hands each of its events back on the Lua thread.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use host_backend::stream::{Close, Conn, Event, Options};
use host_backend::tls::{ClientConfig, ServerName};
use mlua::Lua;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::runtime::Runtime;

/// A client's byte stream, whichever of the two it is.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Stream for T {}

/// A protocol client's connection.
pub(crate) type Link = Conn<Box<dyn Stream>>;

/// Connecting, as the stream layer runs it.
type Dialing = Pin<Box<dyn Future<Output = Result<Box<dyn Stream>, Close>>>>;

/// Connects to `addr`, then shakes hands with `name` under `tls` when given; every event of the
/// connection reaches `on_event` on the Lua thread, in order. A failed handshake is said on
/// stderr as `who: TLS handshake with ADDR failed: ...`, and `failed` runs before the connection
/// ends as a reset (the board sees the peer go away).
pub(crate) fn dial(
    rt: &Rc<Runtime>,
    who: &'static str,
    addr: SocketAddr,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    failed: impl FnOnce() + 'static,
    on_event: impl Fn(&Lua, Event) -> mlua::Result<()> + 'static,
) -> Link {
    let opts = Options {
        chunk: rt.cfg.target.rx_chunk(),
        handover: Some(rt.handover.clone()),
        ..Options::default()
    };
    let (on_event, sink) = (Rc::new(on_event), rt.event_sink());
    Conn::connect(
        connecting(rt, who, addr, tls, failed),
        opts,
        Box::new(move |ev| {
            let f = on_event.clone();
            sink.push(Box::new(move |lua| f(lua, ev)));
        }),
    )
}

fn connecting(
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
