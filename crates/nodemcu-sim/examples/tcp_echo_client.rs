//! Benchmark peer: pushes N MiB through one TCP connection to an echo server and checks that the
//! same bytes come back, in order. Prints `bytes=<n> seconds=<s> MB/s=<rate>` (MB = 10^6 bytes).
//!
//! `cargo run --release --example tcp_echo_client -- 127.0.0.1:7007 128`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 11)) as u8
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
    let w = std::thread::spawn(move || {
        let mut block = vec![0u8; 64 * 1024];
        let mut sent = 0;
        while sent < total {
            let n = block.len().min(total - sent);
            for (k, b) in block[..n].iter_mut().enumerate() {
                *b = pattern(sent + k);
            }
            writer.write_all(&block[..n]).expect("write");
            sent += n;
        }
    });
    let mut reader = stream;
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    while got < total {
        let n = reader.read(&mut buf).expect("read");
        assert!(n > 0, "server closed after {got} of {total} bytes");
        for (k, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, pattern(got + k), "byte {} differs", got + k);
        }
        got += n;
    }
    let secs = start.elapsed().as_secs_f64();
    w.join().expect("writer");
    println!(
        "bytes={got} seconds={secs:.3} MB/s={:.1}",
        got as f64 / secs / 1e6
    );
}
