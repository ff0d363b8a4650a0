//! Handshakes against loopback rustls servers with rcgen certificates.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Ca {
    cert: CertificateDer<'static>,
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
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
        pem: cert.pem(),
        cert: cert.der().clone(),
        issuer: Issuer::new(p, key),
    }
}

struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn leaf(ca: &Ca, expired: bool) -> Leaf {
    let mut p =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    if expired {
        p.not_before = date_time_ymd(2001, 1, 1);
        p.not_after = date_time_ymd(2002, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca.issuer).unwrap();
    Leaf {
        chain: vec![cert.der().clone()],
        key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    }
}

fn server_config(
    leaf: &Leaf,
    client_ca: Option<&Ca>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap();
    let b = match client_ca {
        None => b.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca.cert.clone()).unwrap();
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            b.with_client_cert_verifier(v)
        }
    };
    Arc::new(
        b.with_single_cert(leaf.chain.clone(), leaf.key.clone_key())
            .unwrap(),
    )
}

/// What the server saw of one connection.
#[derive(Debug)]
struct Seen {
    sni: Option<String>,
    version: Option<rustls::ProtocolVersion>,
    request: Vec<u8>,
}

/// A one-connection TLS server: reads one request, answers `reply`, closes.
async fn serve_once(
    config: Arc<ServerConfig>,
    reply: &'static [u8],
) -> (u16, tokio::task::JoinHandle<Result<Seen, String>>) {
    let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
        let (_, conn) = tls.get_ref();
        let sni = conn.server_name().map(str::to_string);
        let version = conn.protocol_version();
        let mut buf = vec![0; 1024];
        let n = tls.read(&mut buf).await.map_err(|e| e.to_string())?;
        tls.write_all(reply).await.map_err(|e| e.to_string())?;
        tls.shutdown().await.map_err(|e| e.to_string())?;
        Ok(Seen {
            sni,
            version,
            request: buf[..n].to_vec(),
        })
    });
    (port, task)
}

/// Connects with `setup` to `host`, sends a request and reads the whole reply.
async fn fetch(setup: &ClientSetup, host: &str, port: u16) -> Result<Vec<u8>, Failure> {
    let config = client_config(setup).expect("config");
    let tcp = TcpStream::connect((LOOPBACK, port)).await.unwrap();
    let mut tls = handshake(config, server_name(host, LOOPBACK), tcp).await?;
    tls.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut reply = Vec::new();
    loop {
        let mut buf = [0; 512];
        match tls.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) => match Failure::after_handshake(&e) {
                None => break,
                Some(f) => return Err(f),
            },
        }
    }
    Ok(reply)
}

const TLS12_AND_13: &[&rustls::SupportedProtocolVersion] = rustls::DEFAULT_VERSIONS;

#[tokio::test]
async fn no_verification_accepts_any_certificate_and_sends_sni() {
    let leaf = leaf(&ca("someone"), false);
    let (port, server) = serve_once(server_config(&leaf, None, TLS12_AND_13), b"hello").await;
    let reply = fetch(&ClientSetup::default(), "localhost", port)
        .await
        .unwrap();
    assert_eq!(reply, b"hello");
    let seen = server.await.unwrap().unwrap();
    assert_eq!(seen.request, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(seen.sni.as_deref(), Some("localhost"));
}

#[tokio::test]
async fn an_address_sends_no_sni() {
    let leaf = leaf(&ca("someone"), false);
    let (port, server) = serve_once(server_config(&leaf, None, TLS12_AND_13), b"x").await;
    fetch(&ClientSetup::default(), "127.0.0.1", port)
        .await
        .unwrap();
    assert_eq!(server.await.unwrap().unwrap().sni, None);
}

#[tokio::test]
async fn pinned_ca_is_trusted_and_a_different_ca_is_refused() {
    let good = ca("good");
    let leaf = leaf(&good, false);
    let pinned = ClientSetup {
        verify: Some(CaStore::Certs(vec![good.cert.clone()])),
        ..Default::default()
    };
    let (port, _) = serve_once(server_config(&leaf, None, TLS12_AND_13), b"ok").await;
    assert_eq!(fetch(&pinned, "localhost", port).await.unwrap(), b"ok");

    let other = ClientSetup {
        verify: Some(CaStore::Certs(vec![ca("other").cert])),
        ..Default::default()
    };
    let (port, server) = serve_once(server_config(&leaf, None, TLS12_AND_13), b"ok").await;
    let err = fetch(&other, "localhost", port).await.unwrap_err();
    assert_eq!(err.kind, FailureKind::Handshake);
    assert_eq!(err.kind.reason(), "SSL handshake failed");
    assert!(err.detail.contains("UnknownIssuer"), "{}", err.detail);
    assert!(server.await.unwrap().is_err());
}

#[tokio::test]
async fn the_host_name_is_checked_when_verifying() {
    let good = ca("good");
    let leaf = leaf(&good, false);
    let pinned = ClientSetup {
        verify: Some(CaStore::Certs(vec![good.cert.clone()])),
        ..Default::default()
    };
    let (port, _) = serve_once(server_config(&leaf, None, TLS12_AND_13), b"ok").await;
    let err = fetch(&pinned, "example.com", port).await.unwrap_err();
    assert_eq!(err.kind, FailureKind::Handshake);
    assert!(err.detail.contains("not valid for name"), "{}", err.detail);
}

#[tokio::test]
async fn webpki_roots_refuse_a_private_ca() {
    let leaf = leaf(&ca("private"), false);
    let setup = ClientSetup {
        verify: Some(CaStore::Webpki),
        ..Default::default()
    };
    let (port, _) = serve_once(server_config(&leaf, None, TLS12_AND_13), b"ok").await;
    let err = fetch(&setup, "localhost", port).await.unwrap_err();
    assert!(err.detail.contains("UnknownIssuer"), "{}", err.detail);
}

#[tokio::test]
async fn dates_are_not_checked_as_the_board_has_no_clock() {
    let good = ca("good");
    let leaf = leaf(&good, true);
    let pinned = ClientSetup {
        verify: Some(CaStore::Certs(vec![good.cert.clone()])),
        ..Default::default()
    };
    let (port, _) = serve_once(server_config(&leaf, None, TLS12_AND_13), b"old").await;
    assert_eq!(fetch(&pinned, "localhost", port).await.unwrap(), b"old");
}

#[tokio::test]
async fn a_client_certificate_the_server_requires() {
    let server_ca = ca("server");
    let client_ca = ca("clients");
    let server_leaf = leaf(&server_ca, false);
    let client = leaf(&client_ca, false);
    let config = server_config(&server_leaf, Some(&client_ca), TLS12_AND_13);

    let (port, server) = serve_once(config.clone(), b"ok").await;
    let anonymous = fetch(&ClientSetup::default(), "localhost", port).await;
    assert!(anonymous.is_err() || anonymous.unwrap().is_empty());
    assert!(server.await.unwrap().is_err());

    let with_cert = ClientSetup {
        identity: Some(Identity {
            chain: client.chain.clone(),
            key: client.key.clone_key(),
        }),
        ..Default::default()
    };
    let (port, server) = serve_once(config, b"welcome").await;
    assert_eq!(
        fetch(&with_cert, "localhost", port).await.unwrap(),
        b"welcome"
    );
    assert!(server.await.unwrap().is_ok());
}

#[tokio::test]
async fn tls12_only_like_the_esp8266() {
    let leaf = leaf(&ca("x"), false);
    let setup = ClientSetup {
        tls12_only: true,
        ..Default::default()
    };
    let (port, server) = serve_once(server_config(&leaf, None, TLS12_AND_13), b"ok").await;
    fetch(&setup, "localhost", port).await.unwrap();
    let seen = server.await.unwrap().unwrap();
    assert_eq!(seen.version, Some(rustls::ProtocolVersion::TLSv1_2));

    let only13 = server_config(&leaf, None, &[&rustls::version::TLS13]);
    let (port, _) = serve_once(only13, b"ok").await;
    let err = fetch(&setup, "localhost", port).await.unwrap_err();
    assert_eq!(err.kind, FailureKind::Handshake);
}

#[tokio::test]
async fn a_plain_tcp_server_fails_the_handshake() {
    let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0; 512];
        let _ = s.read(&mut buf).await;
        let _ = s
            .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            .await;
    });
    let err = fetch(&ClientSetup::default(), "localhost", port)
        .await
        .unwrap_err();
    assert_eq!(err.kind, FailureKind::Handshake);
}

#[tokio::test]
async fn a_server_that_hangs_up_mid_handshake_fails_it() {
    let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0; 4096];
        let _ = s.read(&mut buf).await;
        let _ = s.shutdown().await;
        let _ = s.read(&mut buf).await;
    });
    let err = fetch(&ClientSetup::default(), "localhost", port)
        .await
        .unwrap_err();
    assert_eq!(err.kind, FailureKind::Handshake);
}

#[test]
fn unusable_stored_material_is_a_setup_error() {
    let bad_ca = ClientSetup {
        verify: Some(CaStore::Certs(vec![CertificateDer::from(vec![
            0x30, 0x03, 1, 2, 3,
        ])])),
        ..Default::default()
    };
    assert!(matches!(client_config(&bad_ca), Err(SetupError::BadCa(_))));
    let bad_key = ClientSetup {
        identity: Some(Identity {
            chain: vec![ca("x").cert],
            key: pem::stored_key(b"not a key"),
        }),
        ..Default::default()
    };
    assert!(matches!(
        client_config(&bad_key),
        Err(SetupError::BadIdentity(_))
    ));
}

#[test]
fn callback_material_is_pem_or_der() {
    let c = ca("x");
    let pem_text = format!("{}{}", c.pem, ca("y").pem);
    assert_eq!(pem::parse_certs(pem_text.as_bytes()).unwrap().len(), 2);
    assert_eq!(pem::parse_certs(&c.cert).unwrap(), vec![c.cert.clone()]);
    assert!(pem::parse_certs(b"garbage").is_none());
    let key = KeyPair::generate().unwrap();
    assert!(pem::parse_key(key.serialize_pem().as_bytes()).is_some());
    assert!(pem::parse_key(&key.serialize_der()).is_some());
    assert!(pem::parse_key(b"garbage").is_none());
}

#[tokio::test]
async fn a_reset_during_the_handshake_is_a_reset() {
    let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        // Closing with the ClientHello unread makes the kernel answer with RST.
        let mut buf = [0; 8];
        let _ = s.read(&mut buf).await;
    });
    let err = fetch(&ClientSetup::default(), "localhost", port)
        .await
        .unwrap_err();
    assert_eq!(err.kind, FailureKind::Reset);
    assert_eq!(err.kind.reason(), "Connection reset");
}

#[tokio::test]
async fn a_server_ending_without_close_notify_has_simply_closed() {
    let leaf = leaf(&ca("x"), false);
    let config = server_config(&leaf, None, TLS12_AND_13);
    let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = tokio_rustls::TlsAcceptor::from(config)
            .accept(tcp)
            .await
            .unwrap();
        tls.write_all(b"bye").await.unwrap();
        tls.flush().await.unwrap();
        // A plain FIN, no close_notify.
        let (mut tcp, _) = tls.into_inner();
        tcp.shutdown().await.unwrap();
        let mut sink = [0; 64];
        while tcp.read(&mut sink).await.unwrap_or(0) > 0 {}
    });
    let config = client_config(&ClientSetup::default()).unwrap();
    let tcp = TcpStream::connect((LOOPBACK, port)).await.unwrap();
    let mut tls = handshake(config, server_name("localhost", LOOPBACK), tcp)
        .await
        .unwrap();
    let mut got = Vec::new();
    let n = tls.read_to_end(&mut got).await.unwrap();
    assert_eq!((n, got.as_slice()), (3, &b"bye"[..]));
}

/// A server that asks for a client certificate and takes whatever is sent, as servers that do
/// their own checks (or none) do. Signatures are not checked: rustls could only check them by
/// parsing the certificate with webpki, which refuses X.509 v1 ones.
#[derive(Debug)]
struct AnyClientCert;

impl rustls::server::danger::ClientCertVerifier for AnyClientCert {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client certificate made as most tutorials make one: `openssl x509 -req` with no extensions,
/// which gives an X.509 version 1 certificate.
fn openssl_v1_client_cert() -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("the openssl command is needed for this test: apt-get install openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    run(&["genrsa", "-traditional", "-out", "client.key", "2048"]);
    run(&[
        "req",
        "-new",
        "-key",
        "client.key",
        "-subj",
        "/CN=device",
        "-out",
        "client.csr",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-signkey",
        "client.key",
        "-days",
        "30",
        "-out",
        "client.pem",
    ]);
    let read = |f: &str| std::fs::read(dir.path().join(f)).unwrap();
    (read("client.pem"), read("client.key"))
}

#[tokio::test]
async fn an_x509_v1_client_certificate_is_sent_as_it_is() {
    let (cert_pem, key_pem) = openssl_v1_client_cert();
    let chain = pem::parse_certs(&cert_pem).unwrap();
    // The version field (`[0] INTEGER 2` for v3) is absent from a v1 TBSCertificate.
    assert!(
        !chain[0]
            .windows(5)
            .any(|w| w == [0xa0, 0x03, 0x02, 0x01, 0x02])
    );
    let server_leaf = leaf(&ca("server"), false);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(TLS12_AND_13)
        .unwrap()
        .with_client_cert_verifier(Arc::new(AnyClientCert))
        .with_single_cert(server_leaf.chain.clone(), server_leaf.key.clone_key())
        .unwrap();
    let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
        let presented = tls.get_ref().1.peer_certificates().map(<[_]>::to_vec);
        let mut buf = [0; 64];
        let _ = tls.read(&mut buf).await;
        tls.write_all(b"welcome").await.unwrap();
        tls.shutdown().await.unwrap();
        Ok::<_, String>(presented)
    });
    let setup = ClientSetup {
        identity: Some(Identity {
            chain: chain.clone(),
            key: pem::parse_key(&key_pem).unwrap(),
        }),
        ..Default::default()
    };
    assert_eq!(fetch(&setup, "localhost", port).await.unwrap(), b"welcome");
    assert_eq!(server.await.unwrap().unwrap(), Some(chain));
}
