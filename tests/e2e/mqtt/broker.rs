//! A real Mosquitto broker for one test: started on a free loopback port with a config file the
//! test writes (plain or TLS listener, optional password file, optional client certificates made
//! with rcgen by the TLS tests' helpers), stopped when dropped. Also the `mosquitto_sub`/`mosquitto_pub` clients the tests
//! check the device against. A missing binary fails the test, naming the package to install.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::tls::peer::{ca, leaf};

const INSTALL: &str = "install it with `apt-get install -y mosquitto mosquitto-clients`";

/// The path of a Mosquitto program, or a failed test saying what to install.
pub fn program(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("`{name}` not found: the MQTT tests need a real Mosquitto broker; {INSTALL}");
}

/// PEM files made for one TLS broker: a CA, the broker's certificate, and a client's.
pub struct Certs {
    pub ca_pem: String,
    pub client_pem: String,
    pub client_key_pem: String,
}

/// How the broker is set up.
#[derive(Default)]
pub struct Setup {
    /// A user and password; anonymous clients are then refused.
    pub user: Option<(&'static str, &'static str)>,
    /// A TLS listener; `true` also requires a client certificate signed by the test's CA.
    pub tls: Option<bool>,
}

pub struct Broker {
    pub port: u16,
    pub certs: Option<Certs>,
    child: Child,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// Starts mosquitto on the config in `dir`, logging to `broker.log` there (appending).
fn spawn(dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("broker.log"))
        .unwrap();
    Command::new(program("mosquitto"))
        .arg("-c")
        .arg(dir.join("mosquitto.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start mosquitto ({e}); {INSTALL}"))
}

impl Broker {
    pub fn start(setup: Setup) -> Broker {
        program("mosquitto");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut conf = format!(
            "listener {port} 127.0.0.1\npersistence false\nlog_dest stderr\nlog_type all\n"
        );
        match setup.user {
            Some((user, pass)) => {
                let pw = dir.path().join("passwd");
                let ok = Command::new(program("mosquitto_passwd"))
                    .args(["-b", "-c"])
                    .arg(&pw)
                    .args([user, pass])
                    .status()
                    .unwrap();
                assert!(ok.success(), "mosquitto_passwd failed");
                conf += &format!("allow_anonymous false\npassword_file {}\n", pw.display());
            }
            None => conf += "allow_anonymous true\n",
        }
        let mut certs = None;
        if let Some(require) = setup.tls {
            // The TLS tests' certificate authority and leaves (for localhost and 127.0.0.1).
            let ca = ca("test-ca");
            let (srv, client) = (leaf(&ca), leaf(&ca));
            let (ca_pem, srv_key) = (ca.pem.clone(), srv.key.serialize_pem());
            let (client_pem, client_key_pem) = (client.pem, client.key.serialize_pem());
            let srv = srv.pem;
            for (name, body) in [
                ("ca.pem", &ca_pem),
                ("srv.pem", &srv),
                ("srv.key", &srv_key),
            ] {
                std::fs::write(dir.path().join(name), body).unwrap();
            }
            let p = dir.path().display();
            conf += &format!("cafile {p}/ca.pem\ncertfile {p}/srv.pem\nkeyfile {p}/srv.key\n");
            if require {
                conf += "require_certificate true\n";
            }
            certs = Some(Certs {
                ca_pem,
                client_pem,
                client_key_pem,
            });
        }
        std::fs::write(dir.path().join("mosquitto.conf"), conf).unwrap();
        let child = spawn(dir.path());
        let b = Broker {
            port,
            certs,
            child,
            dir,
        };
        b.wait_listening();
        b
    }

    /// Kills the broker and starts it again on the same port with the same setup.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(self.dir.path());
        self.wait_listening();
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the broker logged (every packet, with `log_type all`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }

    /// Sends a signal (`STOP`, `CONT`, `KILL`) to the broker process.
    pub fn signal(&self, sig: &str) {
        assert!(self.try_signal(sig), "kill -{sig} failed");
    }

    fn try_signal(&self, sig: &str) -> bool {
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Kills the broker and waits for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `mosquitto_pub` of one message (`extra`: further options such as `-r`).
    pub fn publish(&self, topic: &str, payload: &str, qos: u8, extra: &[&str]) {
        let ok = Command::new(program("mosquitto_pub"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-i",
                "test-pub",
            ])
            .args(["-t", topic, "-m", payload, "-q", &qos.to_string()])
            .args(extra)
            .status()
            .unwrap();
        assert!(ok.success(), "mosquitto_pub failed");
    }

    /// A `mosquitto_sub` on `topic` at QoS 2 that has its SUBACK when this returns. Each message
    /// comes out as one line "topic qos retain payload".
    pub fn subscribe(&self, topic: &str) -> Sub {
        // Line-buffered: mosquitto_sub writes to a pipe through stdio, which would hold the lines.
        let mut child = Command::new("stdbuf")
            .arg("-oL")
            .arg(program("mosquitto_sub"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-i",
                "test-sub",
            ])
            .args(["-t", topic, "-q", "2", "-d", "-F", "%t %q %r %p"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let out: ChildStdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let sub = Sub { child, rx };
        sub.wait_for(|l| l.contains("SUBACK"), Duration::from_secs(10));
        sub
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.try_signal("CONT");
        self.kill();
    }
}

/// A running `mosquitto_sub`.
pub struct Sub {
    child: Child,
    rx: mpsc::Receiver<String>,
}

impl Sub {
    fn wait_for(&self, f: impl Fn(&str) -> bool, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) if f(&l) => return l,
                Ok(_) => {}
                Err(_) => panic!("mosquitto_sub: nothing matching within {limit:?}"),
            }
        }
    }

    /// The next `n` messages (debug lines left out).
    pub fn messages(&self, n: usize, limit: Duration) -> Vec<String> {
        (0..n)
            .map(|_| {
                self.wait_for(
                    |l| !l.starts_with("Client ") && !l.starts_with("Subscribed"),
                    limit,
                )
            })
            .collect()
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
