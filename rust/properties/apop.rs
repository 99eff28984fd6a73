//! `apop`: MD5(timestamp + secret) digests and their verification.

use md5::{Digest, Md5};
use proptest::prelude::*;

use super::cram::hostnames;
use super::{config, octets, CASES};
use crate::apop::*;
use crate::cram;

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn digest_is_md5_of_timestamp_then_secret(timestamp in octets(100), secret in octets(100)) {
        let joined: [u8; 16] = Md5::digest([&timestamp[..], &secret[..]].concat()).into();
        prop_assert_eq!(digest(&timestamp, &secret), joined);
    }

    #[test]
    fn verify_accepts_exactly_the_digest_in_either_case(
        timestamp in octets(60),
        secret in octets(60),
        given in prop::collection::vec(prop::sample::select(&b"0123456789abcdefABCDEF "[..]), 31..=33),
    ) {
        let own = digest_hex(&timestamp, &secret);
        prop_assert!(verify(&timestamp, &secret, &own.to_ascii_uppercase()));
        prop_assert_eq!(verify(&timestamp, &secret, &given), given.eq_ignore_ascii_case(&own));
    }

    #[test]
    fn timestamps_follow_the_challenge_rule(hostname in hostnames()) {
        let stamp = timestamp(&hostname);
        let challenge = cram::challenge(&hostname);
        prop_assert_eq!(stamp.is_ok(), challenge.is_ok());
        if let (Ok(stamp), Ok(challenge)) = (stamp, challenge) {
            let tail = format!("@{hostname}>");
            prop_assert!(stamp.ends_with(tail.as_bytes()));
            prop_assert_eq!(stamp.len(), challenge.len());
            prop_assert_ne!(stamp, challenge, "the random digits repeated");
        }
    }
}
