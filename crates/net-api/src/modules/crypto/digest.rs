//! The firmware's hash mechanisms (MD5, SHA1, SHA256, SHA384, SHA512; MD2 is compiled out in
//! every generation's default build), plain and keyed, behind one streaming interface.
//!
//! `crypto.new_hash`/`new_hmac` objects and the one-shot functions all go through [`Mech`] and
//! [`Stream`]. The digests are RustCrypto's; HMAC is RFC 2104 as the `hmac` crate does it,
//! which is also what the firmware's own construction computes (a key longer than a block is
//! hashed first).

use hmac::{Mac, SimpleHmac};
use md5::Md5;
use sha1::Sha1;
use sha2::digest::{Digest, core_api::BlockSizeUser};
use sha2::{Sha256, Sha384, Sha512};

/// A hash mechanism by the name scripts give it (any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mech {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Mech {
    pub fn by_name(name: &str) -> Option<Mech> {
        Some(match name.to_ascii_uppercase().as_str() {
            "MD5" => Mech::Md5,
            "SHA1" => Mech::Sha1,
            "SHA256" => Mech::Sha256,
            "SHA384" => Mech::Sha384,
            "SHA512" => Mech::Sha512,
            _ => return None,
        })
    }

    /// A running hash, keyed when `key` is given.
    pub fn start(self, key: Option<&[u8]>) -> Box<dyn Stream> {
        fn make<D>(key: Option<&[u8]>) -> Box<dyn Stream>
        where
            D: Digest + BlockSizeUser + Clone + 'static,
        {
            match key {
                None => Box::new(Plain(D::new())),
                // HMAC takes a key of any length.
                Some(k) => Box::new(Keyed(
                    <SimpleHmac<D> as hmac::digest::KeyInit>::new_from_slice(k)
                        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length")),
                )),
            }
        }
        match self {
            Mech::Md5 => make::<Md5>(key),
            Mech::Sha1 => make::<Sha1>(key),
            Mech::Sha256 => make::<Sha256>(key),
            Mech::Sha384 => make::<Sha384>(key),
            Mech::Sha512 => make::<Sha512>(key),
        }
    }

    /// The digest of `data` (keyed when `key` is given).
    pub fn digest(self, key: Option<&[u8]>, data: &[u8]) -> Vec<u8> {
        let mut s = self.start(key);
        s.update(data);
        s.finalize()
    }
}

/// A hash being fed. `finalize` works on a copy, so it can be asked again.
pub trait Stream {
    fn update(&mut self, data: &[u8]);
    fn finalize(&self) -> Vec<u8>;
}

struct Plain<D>(D);

impl<D: Digest + Clone> Stream for Plain<D> {
    fn update(&mut self, data: &[u8]) {
        Digest::update(&mut self.0, data);
    }
    fn finalize(&self) -> Vec<u8> {
        self.0.clone().finalize().to_vec()
    }
}

struct Keyed<D: Digest + BlockSizeUser>(SimpleHmac<D>);

impl<D: Digest + BlockSizeUser + Clone> Stream for Keyed<D> {
    fn update(&mut self, data: &[u8]) {
        Mac::update(&mut self.0, data);
    }
    fn finalize(&self) -> Vec<u8> {
        self.0.clone().finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::encoder::to_hex;

    fn hex(m: Mech, key: Option<&[u8]>, data: &[u8]) -> String {
        String::from_utf8(to_hex(&m.digest(key, data))).unwrap()
    }

    #[test]
    fn nist_and_rfc_digests() {
        // RFC 1321, FIPS 180-2 examples.
        assert_eq!(
            hex(Mech::Md5, None, b"abc"),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            hex(Mech::Sha1, None, b"abc"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(Mech::Sha256, None, b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(Mech::Sha384, None, b"abc"),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
             8086072ba1e7cc2358baeca134c825a7"
        );
        assert_eq!(
            hex(Mech::Sha512, None, b"abc"),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
    }

    #[test]
    fn hmac_rfc2202_and_rfc4231() {
        // RFC 2202 test case 2 (MD5, SHA1); RFC 4231 test case 2 (SHA256, SHA512).
        let (k, d) = (
            b"Jefe".as_slice(),
            b"what do ya want for nothing?".as_slice(),
        );
        assert_eq!(
            hex(Mech::Md5, Some(k), d),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        assert_eq!(
            hex(Mech::Sha1, Some(k), d),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hex(Mech::Sha256, Some(k), d),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(Mech::Sha512, Some(k), d),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
        // RFC 4231 test case 6: a key longer than the block is hashed first.
        let long = [0xaa; 131];
        assert_eq!(
            hex(
                Mech::Sha256,
                Some(&long),
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn streaming_equals_one_shot_and_finalize_repeats() {
        let mut s = Mech::Sha1.start(None);
        s.update(b"ab");
        s.update(b"c");
        assert_eq!(s.finalize(), Mech::Sha1.digest(None, b"abc"));
        assert_eq!(s.finalize(), Mech::Sha1.digest(None, b"abc"));
        assert_eq!(Mech::by_name("sha256"), Some(Mech::Sha256));
        assert_eq!(Mech::by_name("MD2"), None);
    }
}
