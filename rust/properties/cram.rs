//! `cram`: HMAC-MD5 from prepared state, verification, and msg-id challenges.

use proptest::prelude::*;

use super::{config, octets, CASES};
use crate::cram::*;
use crate::error::Error;

/// Message lengths that cross the MD5 padding boundaries after a 64-octet key block.
fn messages() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        octets(200),
        (50usize..=130).prop_flat_map(|n| prop::collection::vec(any::<u8>(), n))
    ]
}

fn hostname_is_valid(hostname: &str) -> bool {
    hostname.len() <= 253
        && hostname.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Host names that are mostly plausible, with every kind of wrong character mixed in.
pub(super) fn hostnames() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_-]{1,12}(\\.[a-zA-Z0-9_-]{1,12}){0,3}",
        "[a-z0-9._\\- <>@\r\n\u{0}\u{e9}\\[\\]:]{0,20}",
        any::<String>(),
        (1usize..=5, "[a-z]{50}").prop_map(|(n, label)| vec![label; n].join(".")),
    ]
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn prepared_state_gives_the_hmac(key in octets(150), message in messages()) {
        let state = prepare(&key);
        prop_assert_eq!(digest_prepared(&state, &message), digest(&key, &message));
    }

    #[test]
    fn verify_accepts_exactly_the_digest_in_either_case(
        key in octets(80),
        message in messages(),
        given in prop::collection::vec(prop::sample::select(&b"0123456789abcdefABCDEFx"[..]), 31..=33),
    ) {
        let own = digest_hex(&key, &message);
        prop_assert!(verify(&key, &message, &own));
        prop_assert!(verify(&key, &message, &own.to_ascii_uppercase()));
        let expected = given.eq_ignore_ascii_case(&own);
        prop_assert_eq!(verify(&key, &message, &given), expected);
        prop_assert_eq!(verify_prepared(&prepare(&key), &message, &given), Ok(expected));
    }

    #[test]
    fn prepared_state_must_be_32_octets(state in octets(40), message in octets(20), given in octets(34)) {
        let result = verify_prepared(&state, &message, &given);
        if state.len() == STATE_LEN {
            prop_assert!(result.is_ok());
        } else {
            prop_assert!(matches!(result, Err(Error::InvalidArgument(_))));
        }
    }

    #[test]
    fn challenges_are_msg_ids_for_valid_hostnames_only(hostname in hostnames()) {
        match challenge(&hostname) {
            Ok(challenge) => {
                prop_assert!(hostname_is_valid(&hostname));
                let text = String::from_utf8(challenge).unwrap();
                let inner = text
                    .strip_prefix('<')
                    .and_then(|t| t.strip_suffix('>'))
                    .and_then(|t| t.strip_suffix(hostname.as_str()))
                    .and_then(|t| t.strip_suffix('@'));
                prop_assert!(inner.is_some(), "{}", text);
                let (digits, time) = inner.unwrap().split_once('.').unwrap();
                prop_assert_eq!(digits.len(), 20);
                prop_assert!(digits.bytes().chain(time.bytes()).all(|b| b.is_ascii_digit()));
            }
            Err(error) => {
                prop_assert!(!hostname_is_valid(&hostname));
                prop_assert!(matches!(error, Error::InvalidArgument(_)));
            }
        }
    }
}
