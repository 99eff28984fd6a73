//! `ct`: constant-time equality and the branch-free hex parser against plain references.

use proptest::prelude::*;

use super::{config, octets, CASES};
use crate::ct::*;

/// The obvious hex decoder, early exits and all.
fn reference_hex(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks_exact(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).ok()?;
            if !pair.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None; // from_str_radix would also take a sign
            }
            u8::from_str_radix(pair, 16).ok()
        })
        .collect()
}

fn hexish(len: usize) -> impl Strategy<Value = Vec<u8>> {
    let digit = prop_oneof![
        8 => prop::sample::select(&b"0123456789abcdefABCDEF"[..]),
        1 => any::<u8>(),
    ];
    prop::collection::vec(digit, len - 1..=len + 1)
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn constant_time_eq_is_equality(a in octets(40), b in octets(40)) {
        prop_assert_eq!(constant_time_eq(&a, &b), a == b);
        prop_assert!(constant_time_eq(&a, &a.clone()));
    }

    #[test]
    fn constant_time_eq_sees_any_single_change(
        a in prop::collection::vec(any::<u8>(), 1..64),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut b = a.clone();
        b[at.index(a.len())] ^= flip;
        prop_assert!(!constant_time_eq(&a, &b));
    }

    #[test]
    fn parse_hex_agrees_with_the_reference(text in hexish(4)) {
        let expected = reference_hex(&text).filter(|bytes| bytes.len() == 2);
        prop_assert_eq!(parse_hex::<2>(&text).map(Vec::from), expected);
    }

    #[test]
    fn hex_round_trips_in_either_case(bytes in any::<[u8; 16]>()) {
        let text: [u8; 32] = hex_lower(&bytes);
        prop_assert_eq!(reference_hex(&text), Some(bytes.to_vec()));
        prop_assert_eq!(parse_hex::<16>(&text), Some(bytes));
        prop_assert_eq!(parse_hex::<16>(&text.to_ascii_uppercase()), Some(bytes));
    }

    #[test]
    fn digest_matches_only_its_own_hex(expected in any::<[u8; 16]>(), given in hexish(32)) {
        let own: [u8; 32] = hex_lower(&expected);
        prop_assert_eq!(hex_digest_matches(&expected, &given), given.eq_ignore_ascii_case(&own));
        prop_assert!(hex_digest_matches(&expected, &own.to_ascii_uppercase()));
    }
}
