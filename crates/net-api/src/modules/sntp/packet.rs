//! The NTP frame as the firmware's client reads and writes it, and the RFC 2030 arithmetic on its
//! 32.32 fixed-point timestamps.

/// The size of an NTP frame without extensions.
pub(super) const FRAME: usize = 48;

/// `US_TO_FRAC`: microseconds as a 32-bit binary fraction of a second.
pub(super) fn us_to_frac(us: u32) -> u32 {
    ((u64::from(us) << 32) / 1_000_000) as u32
}

/// `FRAC16_TO_US`: a 16.16 fixed-point second in microseconds.
pub(super) fn frac16_to_us(f: u32) -> i64 {
    ((u64::from(f) * 1_000_000) >> 16) as i64
}

/// The fields of a server's answer the client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reply {
    pub li: u8,
    pub stratum: u8,
    pub root_delay: u32,
    pub root_dispersion: u32,
    pub refid: [u8; 4],
    pub origin: u64,
    pub recv: u64,
    pub xmit: u64,
}

pub(super) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(super) fn be64(b: &[u8], at: usize) -> u64 {
    (u64::from(be32(b, at)) << 32) | u64::from(be32(b, at + 4))
}

impl Reply {
    /// A datagram as an NTP frame; shorter ones are not NTP and are ignored.
    pub fn parse(b: &[u8]) -> Option<Reply> {
        (b.len() >= FRAME).then(|| Reply {
            li: b[0] >> 6,
            stratum: b[1],
            root_delay: be32(b, 4),
            root_dispersion: be32(b, 8),
            refid: [b[12], b[13], b[14], b[15]],
            origin: be64(b, 24),
            recv: be64(b, 32),
            xmit: be64(b, 40),
        })
    }
}

/// A client request (version 4, mode 3) carrying `xmit` as its transmit timestamp.
pub(super) fn request(xmit: u64) -> [u8; FRAME] {
    let mut p = [0u8; FRAME];
    p[0] = (4 << 3) | 3;
    p[40..].copy_from_slice(&xmit.to_be_bytes());
    p
}

/// The clock offset and the round trip (16.16) of an answer received at `dest` (RFC 2030).
pub(super) fn offset_and_delay(r: &Reply, dest: u64) -> (i64, u32) {
    let delta = (r.recv.wrapping_sub(r.origin) as i64) / 2 + (r.xmit.wrapping_sub(dest) as i64) / 2;
    let rtt = dest
        .wrapping_sub(r.origin)
        .wrapping_sub(r.xmit.wrapping_sub(r.recv));
    (delta, ((rtt as i64) >> 16) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(sec: u32, frac: u32) -> u64 {
        (u64::from(sec) << 32) | u64::from(frac)
    }

    #[test]
    fn a_request_is_version_4_client_mode_with_the_cookie_last() {
        let p = request(0x0102_0304_0506_0708);
        assert_eq!(p[0], 0x23);
        assert!(p[1..40].iter().all(|b| *b == 0));
        assert_eq!(&p[40..], &[1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn a_reply_parses_and_a_short_one_does_not() {
        let mut b = [0u8; 48];
        b[0] = (1 << 6) | (4 << 3) | 4;
        b[1] = 2;
        b[4..8].copy_from_slice(&0x8000u32.to_be_bytes());
        b[12..16].copy_from_slice(b"DENY");
        b[24..32].copy_from_slice(&stamp(7, 8).to_be_bytes());
        let r = Reply::parse(&b).unwrap();
        assert_eq!((r.li, r.stratum, r.root_delay), (1, 2, 0x8000));
        assert_eq!(&r.refid, b"DENY");
        assert_eq!(r.origin, stamp(7, 8));
        assert_eq!(Reply::parse(&b[..47]), None);
    }

    #[test]
    fn offset_and_delay_follow_rfc_2030() {
        // Sent at 100.0, server got it at 150.25 and answered at 150.75, back at 101.0.
        let r = Reply {
            li: 0,
            stratum: 1,
            root_delay: 0,
            root_dispersion: 0,
            refid: [0; 4],
            origin: stamp(100, 0),
            recv: stamp(150, 1 << 30),
            xmit: stamp(150, 3 << 30),
        };
        let (delta, delay) = offset_and_delay(&r, stamp(101, 0));
        assert_eq!(delta, stamp(50, 0) as i64);
        assert_eq!(delay, 0x8000); // 0.5 s of round trip, in 16.16
        assert_eq!(frac16_to_us(delay), 500_000);
        assert_eq!(us_to_frac(500_000), 1 << 31);
    }
}
