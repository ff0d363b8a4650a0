//! Benchmark peer used when `wrk` is not installed: C client threads, each making one connection
//! per request (`GET /`, read until the server closes), for D seconds. Prints
//! `requests=<n> seconds=<s> requests/s=<rate> errors=<e>`.
//!
//! `cargo run --release --example http_load -- 127.0.0.1:8080 4 10`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .expect("usage: http_load HOST:PORT CLIENTS SECONDS");
    let clients: usize = args.next().map_or(4, |s| s.parse().expect("clients"));
    let secs: u64 = args.next().map_or(10, |s| s.parse().expect("seconds"));
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs(secs);
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (addr, request) = (addr.clone(), request.clone());
            let (done, errors) = (done.clone(), errors.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                while Instant::now() < until {
                    let ok = (|| -> std::io::Result<bool> {
                        let mut s = TcpStream::connect(&addr)?;
                        s.write_all(request.as_bytes())?;
                        let mut n = 0;
                        loop {
                            match s.read(&mut buf[n.min(8 * 1024)..])? {
                                0 => break,
                                k => n += k,
                            }
                        }
                        Ok(buf.starts_with(b"HTTP/1.1 200"))
                    })();
                    match ok {
                        Ok(true) => done.fetch_add(1, Ordering::Relaxed),
                        _ => errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let secs = start.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "requests={n} seconds={secs:.2} requests/s={:.0} errors={}",
        n as f64 / secs,
        errors.load(Ordering::Relaxed)
    );
}
