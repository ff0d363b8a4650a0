//! Loopback tests of the accept loop and the connection machinery, with plain tokio peers.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::*;
use crate::stream::{Close, Conn, Event, IdleTimer, Options};

fn local<F: Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f)
}

fn sink_to(tx: mpsc::UnboundedSender<Event>) -> crate::stream::Sink {
    Box::new(move |e| {
        let _ = tx.send(e);
    })
}

async fn recv(rx: &mut mpsc::UnboundedReceiver<Event>) -> Event {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("event in time")
        .expect("channel open")
}

async fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (a, b) = tokio::join!(TcpStream::connect(addr), l.accept());
    (a.unwrap(), b.unwrap().0)
}

fn chunked(chunk: usize) -> Options {
    Options {
        chunk: Some(chunk),
        window: 4 * chunk,
        ..Options::default()
    }
}

#[test]
fn echo_is_byte_exact_in_bounded_chunks_with_one_sent_per_send() {
    local(async {
        let (mut peer, ours) = pair().await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let conn = Conn::open(ours, chunked(1460), sink_to(tx));
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let expect = payload.clone();
        let writer = tokio::task::spawn_local(async move {
            peer.write_all(&payload).await.unwrap();
            let mut back = vec![0; payload.len()];
            peer.read_exact(&mut back).await.unwrap();
            back
        });
        let (mut got, mut sends, mut sents) = (0, 0, 0);
        while got < expect.len() {
            match recv(&mut rx).await {
                Event::Data(d) => {
                    assert!(!d.is_empty() && d.len() <= 1460, "chunk of {}", d.len());
                    got += d.len();
                    assert!(conn.send(d.to_vec()));
                    sends += 1;
                    conn.consumed();
                }
                Event::Sent => sents += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(writer.await.unwrap(), expect);
        while sents < sends {
            assert_eq!(recv(&mut rx).await, Event::Sent);
            sents += 1;
        }
        assert_eq!(conn.queued(), 0);
    });
}

#[test]
fn remote_close_reports_zero_after_all_data_and_reset_reports_minus_nine() {
    local(async {
        let (mut peer, ours) = pair().await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let conn = Conn::open(ours, Options::default(), sink_to(tx));
        peer.write_all(b"last words").await.unwrap();
        drop(peer);
        let mut data = Vec::new();
        loop {
            match recv(&mut rx).await {
                Event::Data(d) => {
                    data.extend(d);
                    conn.consumed();
                }
                Event::Closed(c) => {
                    assert_eq!(c.code(), 0);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(data, b"last words");
        assert!(!conn.is_open());

        let (peer, ours) = pair().await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _conn = Conn::open(ours, Options::default(), sink_to(tx));
        socket2::SockRef::from(&peer)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(peer);
        assert_eq!(recv(&mut rx).await, Event::Closed(Close::Reset));
    });
}

#[test]
fn refused_connect_is_reset_and_a_good_one_reports_connected_then_flushes_early_sends() {
    local(async {
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _c = Conn::connect(connect(dead), Options::default(), sink_to(tx));
        assert_eq!(recv(&mut rx).await, Event::Closed(Close::Reset));

        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let c = Conn::connect(
            connect(l.local_addr().unwrap()),
            Options::default(),
            sink_to(tx),
        );
        assert!(c.send(b"queued while connecting".to_vec()));
        let (mut peer, _) = l.accept().await.unwrap();
        assert_eq!(recv(&mut rx).await, Event::Connected);
        assert_eq!(recv(&mut rx).await, Event::Sent);
        let mut buf = [0; 23];
        peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"queued while connecting");
    });
}

#[test]
fn local_close_hands_over_the_queue_then_fin_and_reports_nothing() {
    local(async {
        let (mut peer, ours) = pair().await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let conn = Conn::open(ours, Options::default(), sink_to(tx));
        let big = vec![b'x'; 1 << 20];
        assert!(conn.send(big.clone()));
        conn.close();
        assert!(!conn.send(b"late".to_vec()));
        let mut all = Vec::new();
        peer.read_to_end(&mut all).await.unwrap();
        assert_eq!(all.len(), big.len());
        // The task ended and dropped its sink without a word.
        assert!(rx.recv().await.is_none());
    });
}

#[test]
fn hold_stops_reading_so_the_peer_stalls_and_unhold_lets_it_finish() {
    local(async {
        let (mut peer, ours) = pair().await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let conn = Conn::open(ours, chunked(1460), sink_to(tx));
        conn.hold();
        const TOTAL: usize = 64 << 20;
        let written = Rc::new(RefCell::new(0usize));
        let w = written.clone();
        let writer = tokio::task::spawn_local(async move {
            let block = vec![1u8; 64 * 1024];
            while *w.borrow() < TOTAL {
                peer.write_all(&block).await.unwrap();
                *w.borrow_mut() += block.len();
            }
            peer
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stalled_at = *written.borrow();
        assert!(stalled_at < TOTAL, "peer was not stalled");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            *written.borrow(),
            stalled_at,
            "peer kept writing while held"
        );
        assert!(
            rx.try_recv().is_err(),
            "data delivered while held from the start"
        );
        conn.unhold();
        let mut got = 0;
        while got < TOTAL {
            if let Event::Data(d) = recv(&mut rx).await {
                got += d.len();
                conn.consumed();
            }
        }
        drop(writer.await.unwrap());
        assert_eq!(got, TOTAL);
    });
}

#[test]
fn idle_connections_are_aborted_after_the_timeout() {
    local(async {
        let (mut peer, ours) = pair().await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let opts = Options {
            idle: Some(IdleTimer::new(Duration::from_millis(200))),
            ..Options::default()
        };
        let _c = Conn::open(ours, opts, sink_to(tx));
        let t0 = std::time::Instant::now();
        assert_eq!(recv(&mut rx).await, Event::Closed(Close::Aborted));
        assert!(t0.elapsed() >= Duration::from_millis(190));
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).await.unwrap();
    });
}

#[test]
fn connections_sharing_an_idle_timer_each_time_out_from_their_own_activity() {
    // One quiet connection and one kept busy, on one timer: only the quiet one is aborted.
    local(async {
        let timer = IdleTimer::new(Duration::from_millis(300));
        let opts = Options {
            idle: Some(timer.clone()),
            ..Options::default()
        };
        let (_quiet_peer, quiet) = pair().await;
        let (mut busy_peer, busy) = pair().await;
        let (qtx, mut qrx) = mpsc::unbounded_channel();
        let (btx, mut brx) = mpsc::unbounded_channel();
        let _q = Conn::open(quiet, opts.clone(), sink_to(qtx));
        let b = Conn::open(busy, opts, sink_to(btx));
        let t0 = std::time::Instant::now();
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            busy_peer.write_all(b"x").await.unwrap();
            assert!(matches!(recv(&mut brx).await, Event::Data(_)));
            b.consumed();
        }
        assert_eq!(recv(&mut qrx).await, Event::Closed(Close::Aborted));
        assert!(t0.elapsed() >= Duration::from_millis(290));
        assert!(brx.try_recv().is_err(), "the busy connection stayed open");
        assert_eq!(recv(&mut brx).await, Event::Closed(Close::Aborted));
        assert!(t0.elapsed() >= Duration::from_millis(890));
    });
}

#[test]
fn accepted_connections_have_nagle_off() {
    // Small writes (a header, then a body) must not wait for the peer's delayed ACK.
    local(async {
        let l = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr: SocketAddr = l.local_addr().unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _server = Server::start(l, Slots::new(None), move |s, _, _| {
            let _ = tx.send(s);
        })
        .unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let accepted = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("accepted in time")
            .expect("server open");
        assert!(accepted.nodelay().unwrap());
    });
}

#[test]
fn slots_keep_extra_clients_in_the_backlog_until_one_closes() {
    local(async {
        let l = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr: SocketAddr = l.local_addr().unwrap();
        let accepted: Rc<RefCell<Vec<(TcpStream, Slot)>>> = Rc::default();
        let a = accepted.clone();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut server = Server::start(l, Slots::new(Some(2)), move |s, _, slot| {
            a.borrow_mut().push((s, slot));
            let _ = tx.send(());
        })
        .unwrap();
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(TcpStream::connect(addr).await.unwrap());
        }
        let accept = async |rx: &mut mpsc::UnboundedReceiver<()>| {
            tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("accepted in time")
        };
        accept(&mut rx).await;
        accept(&mut rx).await;
        // The third client waits in the backlog: nothing is accepted while both slots are held
        // (an absence, so only a wait can show it).
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(accepted.borrow().len(), 2);
        accepted.borrow_mut().remove(0);
        accept(&mut rx).await;
        assert_eq!(accepted.borrow().len(), 2);
        server.close();
        tokio::task::yield_now().await;
        assert!(TcpStream::connect(addr).await.is_err(), "port still open");
    });
}

#[test]
fn sends_are_handed_over_only_when_the_handover_runs_and_while_the_buffer_has_room() {
    local(async {
        let (mut peer, ours) = pair().await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handover = crate::stream::Handover::default();
        let opts = Options {
            buffer: 4096,
            handover: Some(handover.clone()),
            ..Options::default()
        };
        let conn = Conn::open(ours, opts, sink_to(tx));
        // "Inside a callback": nothing is handed over yet, so everything counts as queued.
        assert!(conn.send(vec![1; 3000]));
        assert!(conn.send(vec![2; 3000]));
        assert_eq!(conn.queued(), 6000);
        assert!(rx.try_recv().is_err(), "sent before the callback returned");
        // The callback returns: the first send fits the buffer, the second waits for room.
        handover.run();
        assert_eq!(rx.try_recv().ok(), Some(Event::Sent));
        assert_eq!(conn.queued(), 3000);
        // The task writes the buffer out and hands the second send over.
        assert_eq!(recv(&mut rx).await, Event::Sent);
        assert_eq!(conn.queued(), 0);
        let mut got = vec![0u8; 6000];
        peer.read_exact(&mut got).await.unwrap();
        assert!(got[..3000].iter().all(|b| *b == 1) && got[3000..].iter().all(|b| *b == 2));
    });
}
