//! TCP on the host for the device's lwIP: listening sockets with an accept loop, outgoing connects
//! with lwIP's outcomes, and the socket options scripts can reach. Connected streams are driven by
//! [`crate::stream::Conn`].
//!
//! A board admits a fixed number of established inbound connections at once; a [`Slots`] limit
//! shared by every server of a device models it: the accept loop waits for a free slot before it
//! accepts, so a further client completes its handshake in the kernel's backlog and waits there, as
//! it would in front of a board, until an earlier connection has finished.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::stream::Close;

/// How long a connect may take before it fails with [`Close::Aborted`] (lwIP gives up on SYN
/// retries after about 6-7 s).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(7);

/// Backlog of a listening socket (room for connections waiting for a slot).
const BACKLOG: u32 = 128;

/// A device-wide limit on established inbound connections (`None` inside: unlimited).
#[derive(Clone, Default)]
pub struct Slots(Option<Arc<Semaphore>>);

/// One inbound connection's slot; dropping it lets the next waiting client in.
pub struct Slot(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl Slots {
    pub fn new(limit: Option<usize>) -> Slots {
        Slots(limit.map(|n| Arc::new(Semaphore::new(n))))
    }

    async fn acquire(&self) -> Slot {
        match &self.0 {
            Some(s) => Slot(s.clone().acquire_owned().await.ok()),
            None => Slot(None),
        }
    }
}

/// Binds a listening socket (with `SO_REUSEADDR`, as the firmware sets `SOF_REUSEADDR`).
/// `TCP_NODELAY` is set here too: Linux copies it to every accepted socket, which saves a system
/// call per connection.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let sock = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    sock.set_reuseaddr(true)?;
    let _ = sock.set_nodelay(true); // best effort: elsewhere each accepted socket sets it too
    sock.bind(addr)?;
    sock.listen(BACKLOG)
}

/// Stops `l` listening at once, even while an accept loop still holds it (an aborted task drops
/// its socket only when the loop next runs): a new listener may take the port right away.
pub fn stop_listening(l: &TcpListener) {
    let _ = socket2::SockRef::from(l).shutdown(std::net::Shutdown::Both);
}

/// A running accept loop; [`Server::close`] (or dropping it) stops listening and releases the port.
pub struct Server {
    local: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Accepts connections on `listener`, one slot each, handing every one to `on_accept` with the
    /// slot it must keep for as long as the connection lives. Must run inside a `LocalSet`.
    pub fn start(
        listener: TcpListener,
        slots: Slots,
        mut on_accept: impl FnMut(TcpStream, SocketAddr, Slot) + 'static,
    ) -> io::Result<Server> {
        let local = listener.local_addr()?;
        let task = tokio::task::spawn_local(async move {
            loop {
                let slot = slots.acquire().await;
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        // Elsewhere an accepted socket may not inherit it from the listener.
                        #[cfg(not(target_os = "linux"))]
                        let _ = stream.set_nodelay(true);
                        on_accept(stream, peer, slot);
                    }
                    // Out of descriptors and the like: try again shortly rather than spin.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        Ok(Server {
            local,
            task: Some(task),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops accepting; connections already accepted stay open.
    pub fn close(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.close();
    }
}

/// Connects to `addr` with lwIP's outcomes: refused is [`Close::Reset`], no answer within
/// [`CONNECT_TIMEOUT`] (or no route) is [`Close::Aborted`].
pub async fn connect(addr: SocketAddr) -> Result<TcpStream, Close> {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => Err(Close::from_io(&e)),
        Err(_) => Err(Close::Aborted),
    }
}

#[cfg(test)]
mod tests;
