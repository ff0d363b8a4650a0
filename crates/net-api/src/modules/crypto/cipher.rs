//! `crypto.encrypt`/`decrypt`: AES-ECB and AES-CBC as the firmware runs them.
//!
//! The firmware's AES takes a 16-byte key only (any other length fails the operation:
//! `crypto op failed`). Data is zero-padded to a whole number of 16-byte blocks, on decryption
//! too, and nothing is stripped. CBC uses the first 16 bytes of the IV, zero-padded if shorter,
//! all zeros if none; ECB ignores it. The block cipher is RustCrypto's `aes`.

use aes::Aes128;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit, generic_array::GenericArray};

const BLOCK: usize = 16;

/// The cipher mechanisms by name (any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    AesEcb,
    AesCbc,
}

impl Cipher {
    pub fn by_name(name: &str) -> Option<Cipher> {
        match name.to_ascii_uppercase().as_str() {
            "AES-ECB" => Some(Cipher::AesEcb),
            "AES-CBC" => Some(Cipher::AesCbc),
            _ => None,
        }
    }

    /// Runs the cipher; `None` when the key is refused.
    pub fn run(self, encrypt: bool, key: &[u8], data: &[u8], iv: &[u8]) -> Option<Vec<u8>> {
        let aes = Aes128::new_from_slice(key).ok()?;
        let cbc = self == Cipher::AesCbc;
        let mut chain = [0u8; BLOCK];
        if cbc {
            let n = iv.len().min(BLOCK);
            chain[..n].copy_from_slice(&iv[..n]);
        }
        let mut out = Vec::with_capacity(data.len().div_ceil(BLOCK) * BLOCK);
        for chunk in data.chunks(BLOCK) {
            let mut block = [0u8; BLOCK];
            block[..chunk.len()].copy_from_slice(chunk);
            let input = block;
            if cbc && encrypt {
                xor(&mut block, &chain);
            }
            let b = GenericArray::from_mut_slice(&mut block);
            if encrypt {
                aes.encrypt_block(b);
            } else {
                aes.decrypt_block(b);
            }
            if cbc {
                if encrypt {
                    chain = block;
                } else {
                    xor(&mut block, &chain);
                    chain = input;
                }
            }
            out.extend_from_slice(&block);
        }
        Some(out)
    }
}

fn xor(block: &mut [u8; BLOCK], with: &[u8; BLOCK]) {
    block.iter_mut().zip(with).for_each(|(b, w)| *b ^= w);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::encoder::{from_hex, to_hex};

    fn h(s: &str) -> Vec<u8> {
        from_hex(s.as_bytes()).unwrap()
    }

    #[test]
    fn fips197_known_answer() {
        let out = Cipher::AesEcb
            .run(
                true,
                &h("000102030405060708090a0b0c0d0e0f"),
                &h("00112233445566778899aabbccddeeff"),
                b"",
            )
            .unwrap();
        assert_eq!(to_hex(&out), b"69c4e0d86a7b0430d8cdb78070b4c55a");
    }

    #[test]
    fn sp800_38a_cbc_aes128() {
        let key = h("2b7e151628aed2a6abf7158809cf4f3c");
        let iv = h("000102030405060708090a0b0c0d0e0f");
        let plain = h("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
        let cipher = h("7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2");
        assert_eq!(Cipher::AesCbc.run(true, &key, &plain, &iv).unwrap(), cipher);
        assert_eq!(
            Cipher::AesCbc.run(false, &key, &cipher, &iv).unwrap(),
            plain
        );
        // SP 800-38A F.1.1, ECB.
        let ecb = Cipher::AesEcb.run(true, &key, &plain[..16], b"").unwrap();
        assert_eq!(to_hex(&ecb), b"3ad77bb40d7a3660a89ecaf32466ef97");
    }

    #[test]
    fn zero_padding_and_key_length() {
        let key = b"1234567890abcdef";
        let c = Cipher::AesEcb
            .run(true, key, b"Hi, I'm secret!", b"")
            .unwrap();
        assert_eq!(c.len(), 16);
        assert_eq!(
            Cipher::AesEcb.run(false, key, &c, b"").unwrap(),
            b"Hi, I'm secret!\0"
        );
        assert!(Cipher::AesEcb.run(true, b"short", b"x", b"").is_none());
        assert!(Cipher::AesCbc.run(true, &[0; 32], b"x", b"").is_none());
    }
}
