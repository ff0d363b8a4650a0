//! TLS client connections on rustls, configured the way the device configures mbedTLS.
//!
//! The board's `tls` module verifies nothing unless a script stores a CA (`tls.cert.verify`), may
//! present a client certificate (`tls.cert.auth`), speaks TLS 1.2 only (ESP8266 build) and has no
//! clock, so certificate dates are never checked. [`client_config`] builds a rustls config with
//! those properties from a [`ClientSetup`]; [`handshake`] runs the handshake over any byte stream
//! (the TCP layer's socket, or a test's), and a failure comes back as a [`Failure`] whose
//! [`FailureKind::reason`] is the firmware's "reconnection" reason string.
//!
//! Only the ring provider is used, passed explicitly, so no other crypto backend can enter the
//! build. SNI is sent for host names (the board's docs say it sends none).
//! `pem.rs` holds the firmware's own PEM rules for what scripts store.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::UnixTime;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use rustls::ClientConfig;
pub use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
pub use tokio_rustls::client::TlsStream;

pub mod pem;

/// The trusted CAs a device has stored.
#[derive(Debug, Clone)]
pub enum CaStore {
    /// The public web PKI roots (`--tls-roots webpki`).
    Webpki,
    /// Certificates a script stored (`tls.cert.verify(pem)`) or returned from `verify(fn)`.
    Certs(Vec<CertificateDer<'static>>),
}

/// A client certificate chain and its private key (`tls.cert.auth`).
#[derive(Debug)]
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// What one connection's TLS client is configured with.
#[derive(Debug, Clone, Default)]
pub struct ClientSetup {
    /// `None`: accept any server certificate (the device default).
    pub verify: Option<CaStore>,
    pub identity: Option<Identity>,
    /// Offer TLS 1.2 only, as the ESP8266 build of mbedTLS does.
    pub tls12_only: bool,
}

/// Why a client config could not be built (the connection then fails before its handshake).
#[derive(Debug)]
pub enum SetupError {
    /// A stored CA certificate is not a certificate rustls can use as a trust anchor.
    BadCa(String),
    /// The client certificate or key cannot be used.
    BadIdentity(String),
    Rustls(rustls::Error),
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetupError::BadCa(e) => write!(f, "the stored CA certificate is unusable: {e}"),
            SetupError::BadIdentity(e) => {
                write!(f, "the client certificate or key is unusable: {e}")
            }
            SetupError::Rustls(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SetupError {}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls client config for one connection.
pub fn client_config(setup: &ClientSetup) -> Result<Arc<ClientConfig>, SetupError> {
    let provider = provider();
    let versions: &[&rustls::SupportedProtocolVersion] = if setup.tls12_only {
        &[&rustls::version::TLS12]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(SetupError::Rustls)?;
    let verifier: Arc<dyn ServerCertVerifier> = match &setup.verify {
        None => Arc::new(AcceptAnything(provider.signature_verification_algorithms)),
        Some(cas) => {
            let roots = root_store(cas)?;
            let inner =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| SetupError::BadCa(e.to_string()))?;
            Arc::new(NoClock(inner))
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match &setup.identity {
        None => builder.with_no_client_auth(),
        // The chain goes out as stored, unparsed, as the board sends it: rustls' own
        // `with_client_auth_cert` parses the certificate with webpki to compare keys, which
        // refuses the X.509 v1 certificates `openssl x509 -req` makes by default, though servers
        // accept them. Only the key must be usable here.
        Some(id) => {
            let key = provider
                .key_provider
                .load_private_key(id.key.clone_key())
                .map_err(|e| SetupError::BadIdentity(e.to_string()))?;
            let certified = rustls::sign::CertifiedKey::new(id.chain.clone(), key);
            builder.with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(
                certified,
            )))
        }
    };
    Ok(Arc::new(config))
}

fn root_store(cas: &CaStore) -> Result<RootCertStore, SetupError> {
    match cas {
        CaStore::Webpki => Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }),
        CaStore::Certs(certs) => {
            let mut roots = RootCertStore::empty();
            for c in certs {
                roots
                    .add(c.clone())
                    .map_err(|e| SetupError::BadCa(e.to_string()))?;
            }
            Ok(roots)
        }
    }
}

/// The name the handshake is for: the host name the script gave (sent as SNI and checked against the
/// certificate), or the address when the script gave an address or a name rustls cannot carry.
pub fn server_name(host: &str, ip: IpAddr) -> ServerName<'static> {
    match ServerName::try_from(host.to_string()) {
        Ok(name) => name,
        Err(_) => ServerName::IpAddress(ip.into()),
    }
}

/// Runs the client handshake over `stream`.
pub async fn handshake<S>(
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    stream: S,
) -> Result<ClientStream<S>, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map(ClientStream)
        .map_err(|e| Failure::during_handshake(&e))
}

/// An established TLS client stream. A server that ends with a plain FIN instead of a TLS
/// close_notify (common with HTTP/1.0 servers) has simply closed: reading reports the end of the
/// stream rather than an error, as mbedTLS on the board treats it.
pub struct ClientStream<S>(pub TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for ClientStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.get_mut().0).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Poll::Ready(Ok(())),
            other => other,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ClientStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// How a TLS connection failed, in the firmware's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The handshake did not complete: a protocol error, an untrusted certificate, a peer that is
    /// not speaking TLS or that hung up mid-handshake (ESPCONN_HANDSHAKE).
    Handshake,
    /// A TLS error after the handshake (ESPCONN_SSL_INVALID_DATA).
    InvalidData,
    /// RST from the peer, including a refused connection (ESPCONN_RST).
    Reset,
    /// The connection was given up (ESPCONN_ABRT).
    Aborted,
    /// ESPCONN_TIMEOUT.
    Timeout,
}

impl FailureKind {
    /// The string `tls.c` passes to the "reconnection" callback.
    pub fn reason(self) -> &'static str {
        match self {
            FailureKind::Handshake => "SSL handshake failed",
            FailureKind::InvalidData => "SSL application invalid",
            FailureKind::Reset => "Connection reset",
            FailureKind::Aborted => "Connection aborted",
            FailureKind::Timeout => "Timeout",
        }
    }
}

/// A failed connection: the firmware's kind, and the host's own words for the diagnostic channel.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: FailureKind,
    pub detail: String,
}

impl Failure {
    /// Classifies an error from the handshake: anything TLS, or the peer hanging up, is a failed
    /// handshake; socket errors keep their own kind.
    pub fn during_handshake(e: &io::Error) -> Failure {
        let kind = match socket_kind(e) {
            Some(k) => k,
            None => FailureKind::Handshake,
        };
        Failure {
            kind,
            detail: describe(e),
        }
    }

    /// Classifies an error while reading or writing application data. `None` means the peer
    /// simply closed (a FIN without close_notify counts, as mbedTLS on the board treats it; a
    /// [`ClientStream`] already reports that as the end of the stream).
    pub fn after_handshake(e: &io::Error) -> Option<Failure> {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            return None;
        }
        let kind = socket_kind(e).unwrap_or(FailureKind::InvalidData);
        Some(Failure {
            kind,
            detail: describe(e),
        })
    }
}

/// The socket-level kinds; `None` for TLS errors and a peer hanging up.
fn socket_kind(e: &io::Error) -> Option<FailureKind> {
    if tls_error(e).is_some() {
        return None;
    }
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused => {
            Some(FailureKind::Reset)
        }
        io::ErrorKind::TimedOut => Some(FailureKind::Timeout),
        io::ErrorKind::UnexpectedEof => None,
        _ => Some(FailureKind::Aborted),
    }
}

fn tls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref())
}

fn describe(e: &io::Error) -> String {
    match tls_error(e) {
        Some(t) => t.to_string(),
        None if e.kind() == io::ErrorKind::UnexpectedEof => {
            "the server closed the connection during the handshake".to_string()
        }
        None => e.to_string(),
    }
}

/// The device default: any certificate is accepted, but the handshake signatures are still checked
/// (mbedTLS's VERIFY_NONE skips the chain, not the key exchange).
#[derive(Debug)]
struct AcceptAnything(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Full verification, except the dates: the ESP8266 build has no clock (`MBEDTLS_HAVE_TIME_DATE`
/// is off), so an expired or not-yet-valid certificate is accepted there. When the only complaint
/// is a date, verification is repeated at an instant the offending certificate was valid, a few
/// times at most (for chains whose certificates' periods do not overlap, the chain is refused).
#[derive(Debug)]
struct NoClock(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for NoClock {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut at = now;
        let mut last = None;
        for _ in 0..4 {
            match self.0.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                at,
            ) {
                Err(rustls::Error::InvalidCertificate(e)) => match valid_instant(&e) {
                    Some(t) => {
                        at = t;
                        last = Some(e);
                    }
                    None => return Err(rustls::Error::InvalidCertificate(e)),
                },
                other => return other,
            }
        }
        Err(rustls::Error::InvalidCertificate(
            last.unwrap_or(CertificateError::Expired),
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// For a date complaint, an instant at which the complaining certificate was valid.
fn valid_instant(e: &CertificateError) -> Option<UnixTime> {
    match e {
        CertificateError::ExpiredContext { not_after, .. } => Some(*not_after),
        CertificateError::NotValidYetContext { not_before, .. } => Some(*not_before),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
