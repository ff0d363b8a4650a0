//! The TLS tests' peers: certificate authorities and certificates made with rcgen at test time,
//! and one-connection rustls servers on loopback threads.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};

/// A certificate authority made for one test.
pub(crate) struct Ca {
    pub(crate) der: CertificateDer<'static>,
    pub(crate) pem: String,
    pub(crate) issuer: Issuer<'static, KeyPair>,
}

pub(crate) fn ca(name: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Ca {
        der: cert.der().clone(),
        pem: cert.pem(),
        issuer: Issuer::new(p, key),
    }
}

/// A certificate for "localhost" and 127.0.0.1, with its PEM and its key (PKCS#8).
pub(crate) struct Leaf {
    pub(crate) der: CertificateDer<'static>,
    pub(crate) pem: String,
    pub(crate) key: KeyPair,
}

pub(crate) fn leaf(ca: &Ca) -> Leaf {
    let p = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca.issuer).unwrap();
    Leaf {
        der: cert.der().clone(),
        pem: cert.pem(),
        key,
    }
}

pub(super) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(super) fn server_config(
    server: &Leaf,
    client_ca: Option<&CertificateDer<'static>>,
) -> Arc<ServerConfig> {
    let b = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let b = match client_ca {
        None => b.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca.clone()).unwrap();
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .unwrap();
            b.with_client_cert_verifier(v)
        }
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server.key.serialize_der()));
    Arc::new(b.with_single_cert(vec![server.der.clone()], key).unwrap())
}

pub(super) type Tls = StreamOwned<ServerConnection, TcpStream>;

/// A loopback listener whose one connection is handled on a thread by `f`.
pub(super) fn serve<T: Send + 'static>(
    f: impl FnOnce(TcpStream) -> T + Send + 'static,
) -> (u16, JoinHandle<Option<T>>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let t = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                    return Some(f(s));
                }
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => return None,
            }
        }
    });
    (port, t)
}

/// A TLS server for one connection: handshake, then `f`. `Err` if the handshake failed.
pub(super) fn serve_tls<T: Send + 'static>(
    config: Arc<ServerConfig>,
    f: impl FnOnce(&mut Tls) -> T + Send + 'static,
) -> (u16, JoinHandle<Option<Result<T, String>>>) {
    serve(move |tcp| {
        let mut tls = StreamOwned::new(ServerConnection::new(config).unwrap(), tcp);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| e.to_string())?;
        }
        Ok(f(&mut tls))
    })
}

/// Reads an HTTP-style request (up to the blank line).
pub(super) fn read_request(tls: &mut Tls) -> Vec<u8> {
    let mut req = Vec::new();
    let mut b = [0u8; 256];
    while !req.ends_with(b"\r\n\r\n") {
        match tls.read(&mut b) {
            Ok(0) | Err(_) => break,
            Ok(n) => req.extend_from_slice(&b[..n]),
        }
    }
    req
}

/// Writes `reply` and closes with close_notify.
pub(super) fn reply_and_close(tls: &mut Tls, reply: &[u8]) {
    tls.write_all(reply).unwrap();
    tls.conn.send_close_notify();
    let _ = tls.flush();
    // Wait for the client to hang up, so nothing is cut short by a reset.
    let mut b = [0u8; 64];
    while matches!(tls.sock.read(&mut b), Ok(n) if n > 0) {}
}

/// 5000 bytes that are not all alike, so a byte lost or moved shows.
pub(super) fn body() -> Vec<u8> {
    (0..5000u32)
        .map(|i| b'a' + ((i * 7 + i / 26) % 26) as u8)
        .collect()
}

/// The client certificate the server's CA signs for the committed RSA key.
pub(super) fn rsa_client_cert(client_ca: &Ca) -> String {
    let pkcs1 = PrivatePkcs1KeyDer::from_pem_file(fixture("client-rsa.key")).unwrap();
    let pkcs8 = PrivateKeyDer::Pkcs8(pkcs1_to_pkcs8(pkcs1.secret_pkcs1_der()).into());
    let key = KeyPair::try_from(&pkcs8).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, "device");
    p.signed_by(&key, &client_ca.issuer).unwrap().pem()
}

/// Wraps a PKCS#1 RSA key in PKCS#8 (what ring loads): version 0, the rsaEncryption algorithm,
/// the key as an OCTET STRING.
pub(super) fn pkcs1_to_pkcs8(pkcs1: &[u8]) -> Vec<u8> {
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = body.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(body);
        out
    }
    const RSA_ENCRYPTION: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend(tlv(0x30, RSA_ENCRYPTION));
    body.extend(tlv(0x04, pkcs1));
    tlv(0x30, &body)
}

pub(super) fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/tls")
        .join(name)
}
