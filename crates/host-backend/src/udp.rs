//! The device's UDP sockets on the host: bind, send a datagram, hand every received datagram to the
//! owner whole, and multicast group membership.
//!
//! An [`Endpoint`] is one bound host socket plus the task that reads it. It reports each datagram
//! through a plain Rust callback, once per datagram, so message boundaries survive all the way to
//! the script's "receive" callback. Sends are synchronous (`try_send_to`), because the firmware's
//! `udp:send()` hands the datagram to lwIP before it returns and fires "sent" right there.
//!
//! Multicast: lwIP joins a group for the whole interface, and every socket bound to the wildcard
//! address then sees the group's traffic on its port. A host socket bound to a unicast address
//! (127.0.0.1, where a device's 0.0.0.0 lands unless `--expose`) never sees multicast, so for each
//! joined group such an endpoint opens a companion socket bound to `group:port`, which receives only
//! that group's datagrams and feeds the same callback.
//!
//! The tasks run with `spawn_local`: create endpoints from inside a tokio `LocalSet`. Dropping the
//! endpoint stops its tasks and closes its sockets.

use std::cell::RefCell;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::rc::Rc;

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};
use tokio::task::JoinHandle;

/// The largest datagram the host can receive (the IPv4 UDP maximum).
const RECV_BUFFER: usize = 65_536;

/// One received datagram and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub data: Vec<u8>,
    pub from: SocketAddrV4,
}

type OnDatagram = Rc<dyn Fn(Datagram)>;

/// A companion socket receiving one multicast group's datagrams on the endpoint's port.
struct GroupReceiver {
    group: Ipv4Addr,
    task: JoinHandle<()>,
}

/// A bound UDP socket and the task that reads it.
pub struct Endpoint {
    sock: Rc<tokio::net::UdpSocket>,
    local: SocketAddrV4,
    reader: JoinHandle<()>,
    on_datagram: OnDatagram,
    groups: RefCell<Vec<GroupReceiver>>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.reader.abort();
        for g in self.groups.borrow_mut().drain(..) {
            g.task.abort();
        }
    }
}

fn new_socket() -> io::Result<Socket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_nonblocking(true)?;
    // lwIP sends to broadcast addresses without asking (IP_SOF_BROADCAST is 0 in the firmware).
    s.set_broadcast(true)?;
    Ok(s)
}

/// Reads datagrams until the socket fails for good; each one goes to `on` whole.
fn spawn_reader(sock: Rc<tokio::net::UdpSocket>, on: OnDatagram) -> JoinHandle<()> {
    tokio::task::spawn_local(async move {
        let mut buf = vec![0u8; RECV_BUFFER];
        loop {
            match sock.recv_from(&mut buf).await {
                Ok((n, SocketAddr::V4(from))) => on(Datagram {
                    data: buf[..n].to_vec(),
                    from,
                }),
                Ok((_, SocketAddr::V6(_))) => {}
                // An ICMP error for an earlier send (Windows reports them on unconnected sockets).
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => break,
            }
        }
    })
}

impl Endpoint {
    /// Binds `addr` and starts reading; every datagram received goes to `on_datagram`.
    pub fn bind(addr: SocketAddrV4, on_datagram: impl Fn(Datagram) + 'static) -> io::Result<Self> {
        let s = new_socket()?;
        s.bind(&SockAddr::from(addr))?;
        if !addr.ip().is_unspecified() {
            // Multicast sent from a socket confined to an address leaves through that address's
            // interface (loopback for 127.0.0.1), never through the host's default route.
            s.set_multicast_if_v4(addr.ip())?;
        }
        let sock = Rc::new(tokio::net::UdpSocket::from_std(s.into())?);
        let local = match sock.local_addr()? {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => return Err(io::ErrorKind::Unsupported.into()),
        };
        let on_datagram: OnDatagram = Rc::new(on_datagram);
        let reader = spawn_reader(sock.clone(), on_datagram.clone());
        Ok(Endpoint {
            sock,
            local,
            reader,
            on_datagram,
            groups: RefCell::default(),
        })
    }

    /// The host address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    /// Sends one datagram now. `WouldBlock` means the host's send queue is full.
    pub fn send_to(&self, data: &[u8], to: SocketAddrV4) -> io::Result<()> {
        // Straight to the non-blocking socket: tokio's `try_send_to` reports WouldBlock until its
        // reactor has seen the socket writable once, which a fresh socket never has.
        SockRef::from(&*self.sock)
            .send_to(data, &SockAddr::from(to))
            .map(|_| ())
    }

    pub fn ttl(&self) -> io::Result<u32> {
        SockRef::from(&*self.sock).ttl_v4()
    }

    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        SockRef::from(&*self.sock).set_ttl_v4(ttl)
    }

    /// Receives `group`'s datagrams on this endpoint's port, joining it on interface `iface`.
    pub fn join_group(&self, group: Ipv4Addr, iface: Ipv4Addr) -> io::Result<()> {
        if self.local.ip().is_unspecified() {
            return self.sock.join_multicast_v4(group, iface);
        }
        if self.groups.borrow().iter().any(|g| g.group == group) {
            return Ok(());
        }
        let s = new_socket()?;
        // Other programs on the host may listen to the same group and port.
        s.set_reuse_address(true)?;
        s.bind(&SockAddr::from(SocketAddrV4::new(group, self.local.port())))?;
        s.join_multicast_v4(&group, &iface)?;
        let sock = Rc::new(tokio::net::UdpSocket::from_std(s.into())?);
        let task = spawn_reader(sock, self.on_datagram.clone());
        self.groups.borrow_mut().push(GroupReceiver { group, task });
        Ok(())
    }

    /// Stops receiving `group`'s datagrams.
    pub fn leave_group(&self, group: Ipv4Addr, iface: Ipv4Addr) -> io::Result<()> {
        if self.local.ip().is_unspecified() {
            return self.sock.leave_multicast_v4(group, iface);
        }
        self.groups.borrow_mut().retain(|g| {
            let keep = g.group != group;
            if !keep {
                g.task.abort();
            }
            keep
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::mpsc;

    const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

    /// Runs `f` inside a current-thread runtime and a LocalSet, as the device does.
    fn local<F: std::future::Future<Output = ()>>(f: impl FnOnce() -> F) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&rt, f());
    }

    fn collecting(addr: SocketAddrV4) -> (Endpoint, mpsc::UnboundedReceiver<Datagram>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let ep = Endpoint::bind(addr, move |d| {
            let _ = tx.send(d);
        })
        .unwrap();
        (ep, rx)
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<Datagram>) -> Datagram {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a datagram within 5 s")
            .unwrap()
    }

    #[test]
    fn datagrams_arrive_whole_and_in_order_with_their_source() {
        local(|| async {
            let (ep, mut rx) = collecting(SocketAddrV4::new(LOCALHOST, 0));
            let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let peer_addr = match peer.local_addr().unwrap() {
                SocketAddr::V4(a) => a,
                _ => unreachable!(),
            };
            for msg in [&b"one"[..], b"two two", &[7u8; 3000]] {
                peer.send_to(msg, ep.local_addr()).unwrap();
            }
            for msg in [&b"one"[..], b"two two", &[7u8; 3000]] {
                let d = next(&mut rx).await;
                assert_eq!(d.data, msg);
                assert_eq!(d.from, peer_addr);
            }
        });
    }

    #[test]
    fn send_reaches_the_peer_and_ttl_can_be_set() {
        local(|| async {
            let (ep, _rx) = collecting(SocketAddrV4::new(LOCALHOST, 0));
            let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let to = match peer.local_addr().unwrap() {
                SocketAddr::V4(a) => a,
                _ => unreachable!(),
            };
            ep.send_to(b"hello", to).unwrap();
            let mut buf = [0u8; 16];
            peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let (n, from) = peer.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"hello");
            assert_eq!(from, SocketAddr::V4(ep.local_addr()));
            ep.set_ttl(255).unwrap();
            assert_eq!(ep.ttl().unwrap(), 255);
        });
    }

    #[test]
    fn a_loopback_socket_cannot_reach_other_hosts() {
        local(|| async {
            let (ep, _rx) = collecting(SocketAddrV4::new(LOCALHOST, 0));
            let err = ep
                .send_to(b"x", SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 77), 9))
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        });
    }

    #[test]
    fn dropping_the_endpoint_frees_its_port() {
        local(|| async {
            let (ep, _rx) = collecting(SocketAddrV4::new(LOCALHOST, 0));
            let addr = ep.local_addr();
            assert!(std::net::UdpSocket::bind(addr).is_err());
            drop(ep);
            tokio::task::yield_now().await;
            std::net::UdpSocket::bind(addr).expect("port free after drop");
        });
    }

    #[test]
    fn a_joined_group_is_received_on_a_loopback_socket_until_left() {
        local(|| async {
            let group = Ipv4Addr::new(239, 255, 77, 21);
            let (ep, mut rx) = collecting(SocketAddrV4::new(LOCALHOST, 0));
            ep.join_group(group, LOCALHOST).unwrap();
            let sender = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
            sender.set_multicast_if_v4(&LOCALHOST).unwrap();
            let to = SockAddr::from(SocketAddrV4::new(group, ep.local_addr().port()));
            sender.send_to(b"to the group", &to).unwrap();
            assert_eq!(next(&mut rx).await.data, b"to the group");
            ep.leave_group(group, LOCALHOST).unwrap();
            tokio::task::yield_now().await;
            sender.send_to(b"after leaving", &to).unwrap();
            let direct = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            direct.send_to(b"unicast", ep.local_addr()).unwrap();
            assert_eq!(next(&mut rx).await.data, b"unicast");
        });
    }
}
