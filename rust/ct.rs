//! Constant-time helpers: comparison and hex digests parsed without early exits.

use subtle::ConstantTimeEq;

/// Equality whose time depends only on the lengths, never on where the inputs differ.
///
/// The differences are folded eight octets at a time and judged once by `subtle`: its slice
/// comparison makes a `Choice` (an optimisation barrier) per octet, which costs more than the
/// Python call around it. Nothing branches on the data before that one judgement.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, a_tail) = a.as_chunks::<8>();
    let (b_words, b_tail) = b.as_chunks::<8>();
    let mut difference = 0u64;
    for (x, y) in a_words.iter().zip(b_words) {
        difference |= u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y);
    }
    for (x, y) in a_tail.iter().zip(b_tail) {
        difference |= u64::from(x ^ y);
    }
    difference.ct_eq(&0).into()
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `N` bytes into `2 * N` output bytes (`OUT` must be `2 * N`).
pub fn hex_lower<const N: usize, const OUT: usize>(bytes: &[u8; N]) -> [u8; OUT] {
    const { assert!(OUT == 2 * N, "hex output is twice the input") };
    let mut out = [0u8; OUT];
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX_DIGITS[usize::from(byte >> 4)];
        pair[1] = HEX_DIGITS[usize::from(byte & 0x0f)];
    }
    out
}

/// 1 when `x < y`, else 0, for small non-negative values; branch-free.
fn less_than(x: i32, y: i32) -> i32 {
    ((x - y) >> 31) & 1
}

/// One hex digit's value, or a value with bit 8 set when the byte is not a hex digit; computed
/// without branches so a digest being parsed leaks nothing about its digits through timing.
fn hex_value(c: u8) -> i32 {
    let c = i32::from(c);
    let folded = c | 0x20;
    let is_digit = (1 - less_than(c, i32::from(b'0'))) & less_than(c, i32::from(b'9') + 1);
    let is_letter =
        (1 - less_than(folded, i32::from(b'a'))) & less_than(folded, i32::from(b'f') + 1);
    let value =
        ((c - i32::from(b'0')) & -is_digit) | ((folded - i32::from(b'a') + 10) & -is_letter);
    value | (((is_digit | is_letter) ^ 1) << 8)
}

/// Decode exactly `2 * N` hex digits of either case; `None` for any other input.
pub fn parse_hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    let mut invalid = 0i32;
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let high = hex_value(pair[0]);
        let low = hex_value(pair[1]);
        invalid |= (high | low) & 0x100;
        *byte = ((high << 4) | (low & 0x0f)) as u8;
    }
    (invalid == 0).then_some(out)
}

/// Whether `text` is the hex form (either case) of `expected`, comparing in constant time.
pub fn hex_digest_matches<const N: usize>(expected: &[u8; N], text: &[u8]) -> bool {
    match parse_hex::<N>(text) {
        Some(given) => constant_time_eq(expected, &given),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_and_unequal() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn every_octet_position_counts() {
        let base: Vec<u8> = (0..=40).collect();
        for len in 0..base.len() {
            assert!(constant_time_eq(&base[..len], &base[..len]));
            for position in 0..len {
                for flip in [0x01, 0x80, 0xff] {
                    let mut other = base[..len].to_vec();
                    other[position] ^= flip;
                    assert!(!constant_time_eq(&base[..len], &other), "{len} {position}");
                }
            }
        }
    }

    #[test]
    fn hex_round_trip_every_byte() {
        let bytes: [u8; 256] = std::array::from_fn(|i| i as u8);
        let text: [u8; 512] = hex_lower(&bytes);
        assert_eq!(parse_hex::<256>(&text), Some(bytes));
        let upper = text.to_ascii_uppercase();
        assert_eq!(parse_hex::<256>(&upper), Some(bytes));
    }

    #[test]
    fn hex_rejects_non_digits_and_wrong_lengths() {
        for c in 0u8..=255 {
            let valid = c.is_ascii_hexdigit();
            assert_eq!(parse_hex::<1>(&[b'0', c]).is_some(), valid, "byte {c}");
            assert_eq!(parse_hex::<1>(&[c, b'0']).is_some(), valid, "byte {c}");
        }
        assert_eq!(parse_hex::<1>(b"0"), None);
        assert_eq!(parse_hex::<1>(b"000"), None);
    }
}
