//! Benchmark peer: pushes N MiB through one TCP connection to an echo server and checks that the
//! same bytes come back, in order. Prints `bytes=<n> seconds=<s> MB/s=<rate>` (MB = 10^6 bytes).
//!
//! `cargo run --release --example tcp_echo_client -- 127.0.0.1:7007 128`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

/// The stream is a repeating pattern with a prime period, so that misplaced, lost or duplicated
/// chunks show; both sides slice it from one precomputed buffer (cheap next to the server).
const PERIOD: usize = 251;
const BLOCK: usize = 256 * 1024;

fn pattern() -> Vec<u8> {
    (0..BLOCK + PERIOD)
        .map(|i| (i % PERIOD) as u8 ^ 0x5a)
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().expect("usage: tcp_echo_client HOST:PORT MIB");
    let mib: usize = args.next().map_or(128, |s| s.parse().expect("MiB"));
    let total = mib << 20;
    let stream = TcpStream::connect(&addr).expect("connect");
    stream.set_nodelay(true).ok();
    let mut writer = stream.try_clone().expect("clone");
    let start = Instant::now();
    let pat = std::sync::Arc::new(pattern());
    let wpat = pat.clone();
    let w = std::thread::spawn(move || {
        let mut sent = 0;
        while sent < total {
            let n = (64 * 1024).min(total - sent);
            let at = sent % PERIOD;
            writer.write_all(&wpat[at..at + n]).expect("write");
            sent += n;
        }
    });
    let mut reader = stream;
    let mut buf = vec![0u8; BLOCK];
    let mut got = 0;
    while got < total {
        let n = reader.read(&mut buf).expect("read");
        assert!(n > 0, "server closed after {got} of {total} bytes");
        let at = got % PERIOD;
        assert!(
            buf[..n] == pat[at..at + n],
            "bytes {got}..{} differ",
            got + n
        );
        got += n;
    }
    let secs = start.elapsed().as_secs_f64();
    w.join().expect("writer");
    println!(
        "bytes={got} seconds={secs:.3} MB/s={:.1}",
        got as f64 / secs / 1e6
    );
}
