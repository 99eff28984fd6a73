//! APOP (RFC 1939 §7): greeting timestamps and MD5(timestamp + secret) digests.

use md5::{Digest, Md5};

use crate::cram::msg_id;
use crate::ct;
use crate::error::Result;

/// `<DIGITS.UNIXTIME@hostname>`: the local part is only digits and `.`, which every APOP client
/// accepts (mpop refuses timestamps whose local part has `=`).
pub fn timestamp(hostname: &str) -> Result<Vec<u8>> {
    msg_id(hostname)
}

pub fn digest(timestamp: &[u8], secret: &[u8]) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(timestamp);
    md5.update(secret);
    md5.finalize().into()
}

pub fn digest_hex(timestamp: &[u8], secret: &[u8]) -> [u8; 32] {
    ct::hex_lower(&digest(timestamp, secret))
}

/// Whether `given` (hex, either case) is the APOP digest; constant time in it.
pub fn verify(timestamp: &[u8], secret: &[u8], given: &[u8]) -> bool {
    ct::hex_digest_matches(&digest(timestamp, secret), given)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1939_vector() {
        // RFC 1939 §7: secret "tanstaaf".
        let stamp = b"<1896.697170952@dbc.mtview.ca.us>";
        assert_eq!(
            &digest_hex(stamp, b"tanstaaf"),
            b"c4c9334bac560ecc979e58001b3e22fb"
        );
        assert!(verify(
            stamp,
            b"tanstaaf",
            b"C4C9334BAC560ECC979E58001B3E22FB"
        ));
        assert!(!verify(
            stamp,
            b"tanstaaF",
            b"c4c9334bac560ecc979e58001b3e22fb"
        ));
        assert!(!verify(
            stamp,
            b"tanstaaf",
            b"c4c9334bac560ecc979e58001b3e22f"
        ));
    }

    #[test]
    fn timestamps_are_msg_ids_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let stamp = String::from_utf8(timestamp("pop.example").unwrap()).unwrap();
            let local = stamp
                .strip_prefix('<')
                .unwrap()
                .strip_suffix("@pop.example>")
                .unwrap();
            assert!(local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
            assert!(seen.insert(stamp));
        }
    }
}
