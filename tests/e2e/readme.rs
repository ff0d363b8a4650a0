//! The README's commands, run as a reader would type them, from the repository root, against the
//! built binary: each command line here must appear verbatim in the README (so the two cannot drift
//! apart silently), and each run is bounded and stays on loopback.
//!
//! Two adjustments keep the runs hermetic, and only these: a command that listens on a fixed
//! port (8080, 5000) gets that port mapped to a free one, since other tests (and other programs)
//! may hold it; and the TLS example is pointed at a local DNS server that knows no names, which is
//! the case the README describes for it.

use std::io::Read;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{BIN, Flash, run_cmd};

const README: &str = include_str!("../../README.md");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Splits a shell command line as `sh` would for these simple lines (words, double quotes).
fn words(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// The command as the README has it (asserted), as a `Command` of the built binary in the
/// repository root, with `extra` arguments appended.
fn readme_command(line: &str, extra: &[&str]) -> Command {
    readme_command_on(line, None, extra)
}

/// [`readme_command`] with the argument `port.0` replaced by `port.1` (a fixed port mapped to a
/// free one).
fn readme_command_on(line: &str, port: Option<(&str, &str)>, extra: &[&str]) -> Command {
    assert!(
        README.lines().any(|l| l.trim_start().starts_with(line)),
        "the README no longer shows `{line}`"
    );
    let mut w = words(line);
    assert_eq!(w[0], "nodemcu-sim");
    if let Some((from, to)) = port {
        let at = w
            .iter()
            .position(|a| a == from)
            .expect("the argument to replace");
        w[at] = to.to_string();
    }
    let mut cmd = Command::new(BIN);
    cmd.current_dir(root()).args(&w[1..]).args(extra);
    cmd
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_first_example_runs() {
    let r = run_cmd(
        readme_command("nodemcu-sim run fixtures/examples/timers.lua", &[]),
        Duration::from_secs(30),
    );
    assert_eq!(r.status, 0, "{r:?}");
    assert!(r.stdout.starts_with("booted\n"), "{}", r.stdout);
    assert!(
        r.stdout.contains("station got\t127.0.0.1\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("blink\t3\theap\ttrue\n"), "{}", r.stdout);
}

#[test]
fn the_blink_expectation_passes_as_written() {
    let r = run_cmd(
        readme_command(
            r#"nodemcu-sim run fixtures/examples/blink.lua --virtual-time --timeout 10500 --expect-text "blink 10" --fail-text "stack traceback""#,
            &[],
        ),
        Duration::from_secs(30),
    );
    assert_eq!(r.status, 0, "{r:?}");
    assert!(r.stdout.ends_with("blink 10\n"), "{}", r.stdout);
}

#[test]
fn the_sample_project_s_tests_pass() {
    let r = run_cmd(
        readme_command("nodemcu-sim test fixtures/project", &[]),
        Duration::from_secs(120),
    );
    assert_eq!(r.status, 0, "{r:?}");
}

/// The transcript of `curl -i http://127.0.0.1:8080/hello` in the README, byte for byte.
#[test]
fn the_web_server_answers_curl_as_the_transcript_shows() {
    let port = free_tcp_port();
    let mut cmd = readme_command_on(
        "nodemcu-sim run fixtures/net/webserver.lua --port-map 80=8080",
        Some(("80=8080", &format!("80={port}"))),
        &[],
    );
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    // The line the README shows says the server is listening.
    let (mut out, mut line) = (child.stdout.take().unwrap(), [0u8; 64]);
    let n = out.read(&mut line).unwrap();
    assert_eq!(&line[..n], b"web server listening on port\t80\n");
    let curl = Command::new("curl")
        .args(["-s", "-i", "--max-time", "20"])
        .arg(format!("http://127.0.0.1:{port}/hello"))
        .output();
    let _ = child.kill();
    let _ = child.wait();
    drop(out);
    let curl = curl.expect("curl is needed for this test: apt-get install curl");
    assert!(README.contains("curl -i http://127.0.0.1:8080/hello"));
    let got = String::from_utf8_lossy(&curl.stdout).replace("\r\n", "\n");
    let start = README
        .find("HTTP/1.1 200 OK\n")
        .expect("the README's transcript");
    let end = start + README[start..].find("\n```").unwrap();
    let (want, want_heap) = split_heap(&README[start..end]);
    let (got, got_heap) = split_heap(got.trim_end());
    assert_eq!(got, want);
    // The figure is the default (Lua 5.1) build's, and depends a little on the request curl
    // makes (its version, the port's digits) and on whether the station has joined its network
    // yet (its state takes heap): it must be within a tenth. The 5.3 build's heap differs.
    if !cfg!(feature = "lua53") {
        assert!(
            got_heap.abs_diff(want_heap) * 10 <= want_heap,
            "heap {got_heap}, the README says {want_heap}"
        );
    }
}

/// The transcript with its heap figure taken out, and the figure.
fn split_heap(t: &str) -> (String, u64) {
    let at = t.find("heap ").expect("a heap figure") + "heap ".len();
    let digits = t[at..].chars().take_while(char::is_ascii_digit).count();
    let figure = t[at..at + digits].parse().unwrap();
    (format!("{}{}", &t[..at], &t[at + digits..]), figure)
}

#[test]
fn typing_quit_into_netcat_stops_the_udp_echo_device() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = readme_command(
        "nodemcu-sim run fixtures/udp/echo.lua",
        &["--port-map", &format!("5000={port}")],
    );
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    // The listening line says the device is ready.
    let mut first = [0u8; 64];
    let n = out.read(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("udp echo listening on"));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    for line in ["hello\n", "quit\n"] {
        // netcat sends each typed line with its newline.
        sock.send_to(line.as_bytes(), ("127.0.0.1", port)).unwrap();
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], line.as_bytes());
    }
    let status = crate::support::wait(&mut child, Duration::from_secs(10));
    assert_eq!(status, 0);
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn the_tls_example_says_when_its_name_does_not_resolve() {
    let start = README.find("-- https_get.lua\n").expect("the TLS example");
    let end = start + README[start..].find("```").unwrap();
    let flash = Flash::new(&[("https_get.lua", &README[start..end])]);
    let dns = crate::dns::DnsServer::start(&[]);
    let mut cmd = readme_command("nodemcu-sim run https_get.lua --tls-roots webpki", &[]);
    cmd.current_dir(flash.path())
        .args(["--dns", "127.0.0.1", "--dns-port", &dns.port_arg()]);
    let r = run_cmd(cmd, Duration::from_secs(30));
    assert_eq!(r.status, 0, "{r:?}");
    // `verify(true)` is the old interface: the firmware's note on the UART, and nothing else.
    assert_eq!(
        r.stdout,
        "Warning, deprecated API! tls.cert.verify's old interface. It will be removed soon. \
         See documentation for details.\n"
    );
    assert!(
        r.stderr.contains("tls: example.com did not resolve;"),
        "{}",
        r.stderr
    );
}

#[test]
fn install_commands_are_locked() {
    for l in README.lines().filter(|l| l.contains("cargo install")) {
        assert!(l.contains("--locked"), "{l}");
    }
}

#[test]
fn words_split_like_sh() {
    assert_eq!(words(r#"a "b c" d"#), ["a", "b c", "d"]);
}
