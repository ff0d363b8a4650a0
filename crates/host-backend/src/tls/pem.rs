//! Certificates and keys as the device stores and reads them.
//!
//! `tls.cert.verify(pem)` and `tls.cert.auth(cert_pem, key_pem)` do not hand their text to a PEM
//! library: the firmware decodes each blob itself into one 4 KiB flash sector, with its own checks and
//! its own error strings, and scripts see those strings. [`fill_sector`] follows those rules: the
//! first `-----BEGIN ` decides, the type after it must start with the expected one, the base64 body
//! runs to the first `-` (whitespace skipped, `=` ends a quantum), it must close with
//! `-----END <type>`, and everything (a 34-byte header per blob plus the DER) must fit the sector.
//! Only the first blob of each argument is read; the rest of the text is ignored, as on the board.
//!
//! The callback forms (`verify(fn)`, `auth(fn)`) hand their results to mbedTLS's parsers instead,
//! which take PEM (every block in the text) or raw DER: [`parse_certs`] and [`parse_key`].

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer};

/// One flash sector, `INTERNAL_FLASH_SECTOR_SIZE`.
pub const SECTOR_SIZE: usize = 4096;
/// Each stored blob is preceded by a 32-byte name and a 2-byte length.
const BLOB_HEADER: usize = 34;

/// Why the firmware refused a PEM argument; [`PemError::message`] is the string it raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemError {
    NoBlob,
    NoHeader,
    WrongType,
    IncorrectFormat,
    InvalidCharacter,
    InvalidData,
}

impl PemError {
    pub fn message(self) -> &'static str {
        match self {
            PemError::NoBlob => "No PEM blob",
            PemError::NoHeader => "No PEM header",
            PemError::WrongType => "Wrong PEM type",
            PemError::IncorrectFormat => "Incorrect PEM format",
            PemError::InvalidCharacter => "Invalid character in PEM",
            PemError::InvalidData => "Invalid PEM format data",
        }
    }
}

impl std::fmt::Display for PemError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// The PEM type a `verify` argument must have.
pub const CERTIFICATE: &str = "CERTIFICATE";
/// The PEM type of `auth`'s second argument: only a PKCS#1 RSA key is accepted by the firmware.
pub const RSA_PRIVATE_KEY: &str = "RSA PRIVATE KEY";

/// Decodes the arguments of `verify`/`auth` into the DER blobs the sector would hold, one per
/// expected type. `args[i]` is argument `i + 1` as `lua_tostring` sees it (`None`: not a string or
/// number). Arguments past `types.len()` are ignored; a missing argument ends the list early.
pub fn fill_sector(args: &[Option<&[u8]>], types: &[&str]) -> Result<Vec<Vec<u8>>, PemError> {
    let mut used = 0;
    let mut blobs = Vec::new();
    for (arg, typ) in args.iter().zip(types) {
        let der = decode_blob(*arg, typ, SECTOR_SIZE - used)?;
        used += BLOB_HEADER + der.len();
        blobs.push(der);
    }
    Ok(blobs)
}

/// One blob with `room` bytes of the sector left for its header and data.
fn decode_blob(pem: Option<&[u8]>, typ: &str, room: usize) -> Result<Vec<u8>, PemError> {
    let pem = pem.ok_or(PemError::NoBlob)?;
    // The firmware works on a C string: an embedded NUL ends the text.
    let pem = &pem[..pem.iter().position(|&b| b == 0).unwrap_or(pem.len())];
    let begin = find(pem, b"-----BEGIN ").ok_or(PemError::NoHeader)?;
    let header = &pem[begin..];
    if !header[11..].starts_with(typ.as_bytes()) {
        return Err(PemError::WrongType);
    }
    let newline = header
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(PemError::IncorrectFormat)?;
    let body = &header[newline..];
    // Bytes of data that fit: the loop stops once the write position reaches the sector's end.
    let capacity = room.saturating_sub(BLOB_HEADER);
    let mut der = Vec::new();
    let (mut bits, mut acc) = (0u32, 0u32);
    let mut end = body.len();
    for (i, &c) in body.iter().enumerate() {
        if der.len() >= capacity {
            end = i;
            break;
        }
        match base64_value(c) {
            Some(v) => {
                acc = ((acc << 6) | v) & 0xFFFF;
                bits += 6;
                if bits >= 8 {
                    bits -= 8;
                    der.push((acc >> bits) as u8);
                }
            }
            None if c.is_ascii_whitespace() || c == 0x0b => {}
            None if c == b'=' => bits = 0,
            None if c == b'-' => {
                end = i;
                break;
            }
            None => return Err(PemError::InvalidCharacter),
        }
    }
    let trailer = &body[end..];
    let closed = trailer.starts_with(b"-----END ") && trailer[9..].starts_with(typ.as_bytes());
    if der.len() >= capacity || !closed || bits != 0 {
        return Err(PemError::InvalidData);
    }
    Ok(der)
}

fn base64_value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The private key stored by `auth(cert_pem, key_pem)`: always PKCS#1 RSA.
pub fn stored_key(der: &[u8]) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der.to_vec()))
}

/// What a `verify(fn)` / `auth(fn)` callback returned for a certificate: PEM text (every
/// CERTIFICATE block in it) or one DER certificate. `None` when nothing usable is in it.
pub fn parse_certs(bytes: &[u8]) -> Option<Vec<CertificateDer<'static>>> {
    if find(bytes, b"-----BEGIN").is_some() {
        let certs: Vec<_> = CertificateDer::pem_slice_iter(bytes)
            .filter_map(Result::ok)
            .collect();
        return (!certs.is_empty()).then_some(certs);
    }
    looks_like_der(bytes).then(|| vec![CertificateDer::from(bytes.to_vec())])
}

/// What an `auth(fn)` callback returned for `fn(0)`: a private key in PEM (PKCS#1, PKCS#8 or SEC1)
/// or DER.
pub fn parse_key(bytes: &[u8]) -> Option<PrivateKeyDer<'static>> {
    if find(bytes, b"-----BEGIN").is_some() {
        return PrivateKeyDer::from_pem_slice(bytes).ok();
    }
    PrivateKeyDer::try_from(bytes).ok().map(|k| k.clone_key())
}

/// A DER SEQUENCE: the cheapest check that the bytes could be a certificate (rustls checks the rest).
fn looks_like_der(bytes: &[u8]) -> bool {
    bytes.len() > 2 && bytes[0] == 0x30
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT_TYPES: &[&str] = &[CERTIFICATE];

    fn pem(body: &str) -> String {
        format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n")
    }

    fn one(text: &str) -> Result<Vec<u8>, PemError> {
        fill_sector(&[Some(text.as_bytes())], CERT_TYPES).map(|mut v| v.remove(0))
    }

    #[test]
    fn decodes_base64_with_padding_and_whitespace() {
        assert_eq!(one(&pem("aGVs\r\n bG8=")).unwrap(), b"hello");
        assert_eq!(one(&pem("aGk=")).unwrap(), b"hi");
        assert_eq!(one(&pem("aA==")).unwrap(), b"h");
        // Text before the header and after the trailer is ignored, as is a second block.
        let two = format!("junk\n{}{}", pem("aGk="), pem("aA=="));
        assert_eq!(one(&two).unwrap(), b"hi");
    }

    #[test]
    fn firmware_errors_in_the_firmware_order() {
        assert_eq!(
            fill_sector(&[None], CERT_TYPES).unwrap_err(),
            PemError::NoBlob
        );
        assert_eq!(one("no header here").unwrap_err(), PemError::NoHeader);
        assert_eq!(
            one("-----BEGIN PRIVATE KEY-----\naGk=\n-----END PRIVATE KEY-----").unwrap_err(),
            PemError::WrongType
        );
        assert_eq!(
            one("-----BEGIN CERTIFICATE-----").unwrap_err(),
            PemError::IncorrectFormat
        );
        assert_eq!(one(&pem("aGk*")).unwrap_err(), PemError::InvalidCharacter);
        // No trailer, the wrong trailer, or a quantum left open without padding.
        assert_eq!(
            one("-----BEGIN CERTIFICATE-----\naGk=\n").unwrap_err(),
            PemError::InvalidData
        );
        assert_eq!(
            one("-----BEGIN CERTIFICATE-----\naGk=\n-----END KEY-----").unwrap_err(),
            PemError::InvalidData
        );
        assert_eq!(one(&pem("aGk")).unwrap_err(), PemError::InvalidData);
    }

    #[test]
    fn type_is_a_prefix_match_and_nul_ends_the_text() {
        let req = "-----BEGIN CERTIFICATE REQUEST-----\naGk=\n-----END CERTIFICATE REQUEST-----";
        assert_eq!(one(req).unwrap(), b"hi");
        assert_eq!(
            one("\0-----BEGIN CERTIFICATE-----").unwrap_err(),
            PemError::NoHeader
        );
    }

    #[test]
    fn the_sector_limits_the_size() {
        // 4096 - 34 bytes of header leaves room for 4061 data bytes (the write position must stay
        // below the sector's end).
        let fits = "A".repeat(4061 / 3 * 4);
        assert!(one(&pem(&fits)).is_ok());
        let too_big = "A".repeat(4064 / 3 * 4);
        assert_eq!(one(&pem(&too_big)).unwrap_err(), PemError::InvalidData);
        // auth: the key shares the sector with the certificate.
        let cert = pem(&"A".repeat(3000 / 3 * 4));
        let key = format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----",
            "A".repeat(1200 / 3 * 4)
        );
        let both = [Some(cert.as_bytes()), Some(key.as_bytes())];
        assert_eq!(
            fill_sector(&both, &[CERTIFICATE, RSA_PRIVATE_KEY]).unwrap_err(),
            PemError::InvalidData
        );
    }

    #[test]
    fn auth_takes_a_certificate_then_an_rsa_key() {
        let key = "-----BEGIN RSA PRIVATE KEY-----\naGk=\n-----END RSA PRIVATE KEY-----";
        let blobs = fill_sector(
            &[Some(pem("aA==").as_bytes()), Some(key.as_bytes())],
            &[CERTIFICATE, RSA_PRIVATE_KEY],
        )
        .unwrap();
        assert_eq!(blobs, vec![b"h".to_vec(), b"hi".to_vec()]);
        let pkcs8 = "-----BEGIN PRIVATE KEY-----\naGk=\n-----END PRIVATE KEY-----";
        let err = fill_sector(
            &[Some(pem("aA==").as_bytes()), Some(pkcs8.as_bytes())],
            &[CERTIFICATE, RSA_PRIVATE_KEY],
        );
        assert_eq!(err.unwrap_err(), PemError::WrongType);
    }
}
