//! CRAM-MD5 (RFC 2195): challenges, HMAC-MD5 digests, and Dovecot's precomputed
//! `{CRAM-MD5}` state — the MD5 chaining values after the ipad and opad key blocks.

use hmac::{Hmac, KeyInit, Mac};
use md5::block_api::compress;
use md5::{Digest, Md5};

use crate::ct;
use crate::error::{Error, Result};

/// Length of a prepared state: outer a,b,c,d then inner a,b,c,d, little-endian u32.
pub const STATE_LEN: usize = 32;
const BLOCK_LEN: usize = 64;
const MD5_INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// Longest hostname accepted in a msg-id (a DNS name's limit).
const MAX_HOSTNAME_LEN: usize = 253;

/// What a hostname that cannot go into a msg-id gets.
pub const NOT_A_HOSTNAME: Error =
    Error::InvalidArgument("hostname must be a domain name (letters, digits, '-', '_', '.')");

/// `<DIGITS.UNIXTIME@hostname>` with 20 decimal digits from the OS CSPRNG: an RFC 2195
/// challenge and an RFC 1939 APOP timestamp alike.
///
/// The hostname must be dot-separated labels of letters, digits, `-` and `_`; anything else
/// could break the msg-id syntax or, with CR/LF, the protocol line that carries it.
pub fn msg_id(hostname: &str) -> Result<Vec<u8>> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if hostname.len() > MAX_HOSTNAME_LEN || !hostname.split('.').all(label_ok) {
        return Err(NOT_A_HOSTNAME);
    }
    let digits = random_digits()?;
    Ok(format!("<{digits:020}.{}@{hostname}>", unix_time()).into_bytes())
}

/// A fresh CRAM-MD5 challenge.
pub fn challenge(hostname: &str) -> Result<Vec<u8>> {
    msg_id(hostname)
}

/// 20 decimal digits: a 128-bit OS random value reduced mod 10^20 (bias below 2^-60).
fn random_digits() -> Result<u128> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| Error::Random)?;
    Ok(u128::from_le_bytes(bytes) % 100_000_000_000_000_000_000)
}

fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// HMAC-MD5(secret, challenge).
pub fn digest(secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut mac =
        <Hmac<Md5> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(challenge);
    mac.finalize().into_bytes().into()
}

/// HMAC-MD5 as 32 lowercase hex digits.
pub fn digest_hex(secret: &[u8], challenge: &[u8]) -> [u8; 32] {
    ct::hex_lower(&digest(secret, challenge))
}

/// Whether `given` (hex, either case) is HMAC-MD5(secret, challenge); constant time in it.
pub fn verify(secret: &[u8], challenge: &[u8], given: &[u8]) -> bool {
    ct::hex_digest_matches(&digest(secret, challenge), given)
}

fn key_block(secret: &[u8], pad: u8) -> [u8; BLOCK_LEN] {
    let mut block = [0u8; BLOCK_LEN];
    if secret.len() > BLOCK_LEN {
        block[..16].copy_from_slice(&Md5::digest(secret));
    } else {
        block[..secret.len()].copy_from_slice(secret);
    }
    block.iter_mut().for_each(|b| *b ^= pad);
    block
}

fn chained(block: &[u8; BLOCK_LEN]) -> [u32; 4] {
    let mut state = MD5_INIT;
    compress(&mut state, std::slice::from_ref(block));
    state
}

/// The 32-byte `{CRAM-MD5}` state of `secret`, in Dovecot's layout.
pub fn prepare(secret: &[u8]) -> [u8; STATE_LEN] {
    let outer = chained(&key_block(secret, 0x5c));
    let inner = chained(&key_block(secret, 0x36));
    let mut out = [0u8; STATE_LEN];
    for (chunk, word) in out.chunks_exact_mut(4).zip(outer.iter().chain(&inner)) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    out
}

/// Finish an MD5 whose first `BLOCK_LEN` bytes are already folded into `state`.
fn finish_after_key_block(mut state: [u32; 4], message: &[u8]) -> [u8; 16] {
    let (blocks, tail) = message.as_chunks::<BLOCK_LEN>();
    compress(&mut state, blocks);
    let bit_len = ((BLOCK_LEN + message.len()) as u64).wrapping_mul(8);
    let mut last = [[0u8; BLOCK_LEN]; 2];
    let flat = last.as_flattened_mut();
    flat[..tail.len()].copy_from_slice(tail);
    flat[tail.len()] = 0x80;
    let used = if tail.len() < BLOCK_LEN - 8 { 1 } else { 2 };
    flat[used * BLOCK_LEN - 8..used * BLOCK_LEN].copy_from_slice(&bit_len.to_le_bytes());
    compress(&mut state, &last[..used]);
    let mut out = [0u8; 16];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    out
}

fn words(bytes: &[u8]) -> [u32; 4] {
    std::array::from_fn(|i| u32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap()))
}

/// HMAC-MD5 of `challenge` from a prepared state.
pub fn digest_prepared(state: &[u8; STATE_LEN], challenge: &[u8]) -> [u8; 16] {
    let inner = finish_after_key_block(words(&state[16..]), challenge);
    finish_after_key_block(words(&state[..16]), &inner)
}

/// `verify` from a prepared state; `InvalidArgument` unless the state is 32 bytes.
pub fn verify_prepared(state: &[u8], challenge: &[u8], given: &[u8]) -> Result<bool> {
    let state: &[u8; STATE_LEN] = state
        .try_into()
        .map_err(|_| Error::InvalidArgument("a prepared CRAM-MD5 state is exactly 32 bytes"))?;
    Ok(ct::hex_digest_matches(
        &digest_prepared(state, challenge),
        given,
    ))
}

/// Client side: `username SP digest`.
pub fn response(username: &str, secret: &[u8], challenge: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(username.len() + 33);
    out.extend_from_slice(username.as_bytes());
    out.push(b' ');
    out.extend_from_slice(&digest_hex(secret, challenge));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC2195_CHALLENGE: &[u8] = b"<1896.697170952@postoffice.reston.mci.net>";

    #[test]
    fn rfc2195_vector() {
        // RFC 2195 §2: user "tim", secret "tanstaaftanstaaf".
        assert_eq!(
            &digest_hex(b"tanstaaftanstaaf", RFC2195_CHALLENGE),
            b"b913a602c7eda7a495b4e6e7334d3890"
        );
        assert_eq!(
            response("tim", b"tanstaaftanstaaf", RFC2195_CHALLENGE),
            b"tim b913a602c7eda7a495b4e6e7334d3890"
        );
        assert!(verify(
            b"tanstaaftanstaaf",
            RFC2195_CHALLENGE,
            b"B913A602C7EDA7A495B4E6E7334D3890"
        ));
        assert!(!verify(
            b"tanstaaftanstaaf",
            RFC2195_CHALLENGE,
            b"b913a602c7eda7a495b4e6e7334d3891"
        ));
        assert!(!verify(
            b"tanstaaftanstaaf",
            RFC2195_CHALLENGE,
            b"b913a602c7eda7a495b4e6e7334d389"
        ));
        assert!(!verify(
            b"tanstaaftanstaaf",
            RFC2195_CHALLENGE,
            b"zz13a602c7eda7a495b4e6e7334d3890"
        ));
    }

    #[test]
    fn dovecot_vector() {
        // `doveadm pw -s CRAM-MD5 -p test`
        let state: [u8; 64] = ct::hex_lower(&prepare(b"test"));
        assert_eq!(
            &state[..],
            b"e02d374fde0dc75a17a557039a3a5338c7743304777dccd376f332bee68d2cf6"
        );
    }

    #[test]
    fn prepared_matches_hmac_for_all_lengths() {
        let challenge_bytes: Vec<u8> = (0..200u8).collect();
        for key_len in [0usize, 1, 16, 63, 64, 65, 200] {
            let key: Vec<u8> = (0..key_len).map(|i| (i * 7 + 3) as u8).collect();
            let state = prepare(&key);
            for challenge_len in [0usize, 1, 55, 56, 63, 64, 119, 120, 128, 200] {
                let challenge = &challenge_bytes[..challenge_len];
                let expected = digest(&key, challenge);
                assert_eq!(
                    digest_prepared(&state, challenge),
                    expected,
                    "{key_len} {challenge_len}"
                );
                let hex: [u8; 32] = ct::hex_lower(&expected);
                assert_eq!(verify_prepared(&state, challenge, &hex), Ok(true));
            }
        }
    }

    #[test]
    fn prepared_state_length_checked() {
        assert!(verify_prepared(&[0u8; 31], b"", b"").is_err());
        assert!(verify_prepared(&[0u8; 33], b"", b"").is_err());
        assert_eq!(verify_prepared(&[0u8; 32], b"", b"not hex"), Ok(false));
    }

    #[test]
    fn challenges_are_well_formed_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let c = String::from_utf8(challenge("mail.example").unwrap()).unwrap();
            let inner = c
                .strip_prefix('<')
                .unwrap()
                .strip_suffix("@mail.example>")
                .unwrap();
            let (digits, time) = inner.split_once('.').unwrap();
            assert!(digits.len() >= 16 && digits.bytes().all(|b| b.is_ascii_digit()));
            assert!(time.bytes().all(|b| b.is_ascii_digit()));
            assert!(seen.insert(c));
        }
    }

    #[test]
    fn hostnames_are_checked() {
        for good in [
            "localhost",
            "ma1.seikyou.ne.jp",
            "a_b-c.d",
            &"a".repeat(253),
        ] {
            assert!(challenge(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "a..b",
            "a.",
            ".a",
            "a b",
            "a>b",
            "a\r\nb",
            "\u{e9}.jp",
            "[::1]",
            &"a".repeat(254),
        ] {
            assert!(
                matches!(challenge(bad), Err(Error::InvalidArgument(_))),
                "{bad:?}"
            );
        }
    }
}
