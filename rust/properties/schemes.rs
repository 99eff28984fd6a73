//! `schemes`: `{SCHEME[.ENCODING]}` parsing, and hashing and verifying on arbitrary input.
//!
//! Stored values come from the passwd-file, so costs an administrator chose (bcrypt 31, a
//! billion SHA-crypt rounds) are legitimate and slow; generated values keep costs minimal so
//! "never panics" can be checked on many of them.

use base64ct::{Base64, Encoding as _};
use proptest::prelude::*;

use super::{config, octets, CASES};
use crate::cram;
use crate::error::Error;
use crate::schemes::{Scheme, Stored};

const KNOWN: [&str; 11] = [
    "PLAIN",
    "CLEAR",
    "CRAM-MD5",
    "SHA256-CRYPT",
    "SHA512-CRYPT",
    "BLF-CRYPT",
    "ARGON2ID",
    "SSHA256",
    "SSHA512",
    "PBKDF2",
    "CRYPT",
];
const ENCODINGS: [&str; 3] = ["B64", "BASE64", "HEX"];

/// The naming rule written out plainly: a known name, then at most one known encoding.
fn name_is_known(name: &str) -> bool {
    let (base, suffix) = match name.split_once('.') {
        Some((base, suffix)) => (base, Some(suffix)),
        None => (name, None),
    };
    KNOWN.iter().any(|known| known.eq_ignore_ascii_case(base))
        && suffix.is_none_or(|s| ENCODINGS.iter().any(|e| e.eq_ignore_ascii_case(s)))
}

fn random_case(text: &str, mask: u64) -> String {
    text.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_lowercase()
            } else {
                c
            }
        })
        .collect()
}

fn scheme_names() -> impl Strategy<Value = String> {
    let known = prop::sample::select(&KNOWN[..]).prop_map(str::to_owned);
    let suffix = prop_oneof![
        Just(String::new()),
        prop::sample::select(&ENCODINGS[..]).prop_map(|e| format!(".{e}")),
        "\\.[A-Za-z0-9.]{0,6}",
    ];
    prop_oneof![
        3 => (known, suffix, any::<u64>()).prop_map(|(k, s, mask)| random_case(&(k + &s), mask)),
        1 => "[A-Za-z0-9.\\-]{0,14}",
        1 => any::<String>(),
    ]
}

/// Values shaped like each scheme's, with cheap costs, cut short or salted with odd characters.
fn stored_values() -> impl Strategy<Value = String> {
    let shaped = prop_oneof![
        (
            prop::sample::select(
                &[
                    "$5$",
                    "$6$",
                    "$5$rounds=1000$",
                    "$6$rounds=1000$",
                    "$6$rounds=0999$"
                ][..]
            ),
            "[./0-9A-Za-z$:;*!\\\\ \u{e9}]{0,20}",
            "[./0-9A-Za-z$:;*!\\\\ \u{e9}]{0,90}"
        )
            .prop_map(|(p, salt, hash)| format!("{p}{salt}${hash}")),
        (
            prop::sample::select(
                &["$2a$04$", "$2b$04$", "$2x$04$", "$2y$04$", "$2y$4$", "$2q$04$"][..]
            ),
            "[./0-9A-Za-z$:;*!\\\\ \u{e9}]{50,56}"
        )
            .prop_map(|(p, rest)| format!("{p}{rest}")),
        (
            prop::sample::select(
                &[
                    "$argon2id$v=19$m=8,t=1,p=1$",
                    "$argon2i$v=19$m=8,t=1,p=1$",
                    "$argon2id$v=16$m=8,t=1,p=1$",
                    "$argon2id$m=8,t=1,p=1$"
                ][..]
            ),
            "[A-Za-z0-9+/]{0,24}",
            "[A-Za-z0-9+/=]{0,48}"
        )
            .prop_map(|(p, salt, hash)| format!("{p}{salt}${hash}")),
        (
            "[./0-9A-Za-z$]{0,18}",
            prop::sample::select(&["1", "2", "01", "", "x"][..]),
            "[0-9a-fA-Fg]{38,42}"
        )
            .prop_map(|(salt, rounds, hex)| format!("$1${salt}${rounds}${hex}")),
        "[A-Za-z0-9+/= \t\r\n]{0,100}",
        "[0-9a-fA-F]{62,66}",
        any::<String>(),
    ];
    (shaped, any::<prop::sample::Index>(), any::<bool>()).prop_map(|(value, at, cut)| {
        let mut boundary = at.index(value.len() + 1);
        while !value.is_char_boundary(boundary) {
            boundary -= 1;
        }
        if cut {
            value[..boundary].to_owned()
        } else {
            value
        }
    })
}

fn verify(stored: &str, password: &[u8]) -> Result<bool, Error> {
    Stored::parse(stored).and_then(|s| s.verify(password))
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn scheme_names_parse_by_the_rule(name in scheme_names()) {
        match Scheme::parse(&name) {
            Ok(_) => prop_assert!(name_is_known(&name), "accepted {:?}", name),
            Err(error) => {
                prop_assert!(!name_is_known(&name), "refused {:?}", name);
                prop_assert_eq!(error, Error::UnsupportedScheme(name));
            }
        }
    }

    #[test]
    fn verifying_any_stored_value_never_panics(
        name in scheme_names(),
        value in stored_values(),
        braces in any::<bool>(),
        password in octets(40),
    ) {
        let stored = if braces { format!("{{{name}}}{value}") } else { value };
        match verify(&stored, &password) {
            Ok(_) | Err(Error::UnsupportedScheme(_)) => {}
            Err(other) => prop_assert!(false, "{:?} gave {:?}", stored, other),
        }
    }

    #[test]
    fn plain_values_match_exactly_their_password(value in any::<String>(), password in octets(40)) {
        let expected = value.as_bytes() == password;
        prop_assert_eq!(verify(&format!("{{PLAIN}}{value}"), &password), Ok(expected));
        let hex: String = value.bytes().map(|b| format!("{b:02X}")).collect();
        prop_assert_eq!(verify(&format!("{{plain.hex}}{hex}"), &password), Ok(expected));
        // Dovecot's base64 reader skips whitespace anywhere in the value.
        let b64 = Base64::encode_string(value.as_bytes()).replace('A', " A\n");
        prop_assert_eq!(verify(&format!("{{CLEAR.b64}}{b64}"), &password), Ok(expected));
    }

    #[test]
    fn fast_hashes_verify_their_password_and_no_other(
        name in prop::sample::select(&[
            "PLAIN", "CLEAR.HEX", "PLAIN.b64", "CRAM-MD5", "CRAM-MD5.b64", "SSHA256",
            "SSHA512", "SSHA256.hex", "SSHA512.base64",
        ][..]),
        password in octets(80),
        other in octets(80),
    ) {
        let scheme = Scheme::parse(name).unwrap();
        prop_assert!(!scheme.is_slow());
        let stored = match scheme.hash(&password) {
            Err(Error::InvalidArgument(_)) => {
                // Only a bare PLAIN value has to be text.
                prop_assert!(name == "PLAIN" && std::str::from_utf8(&password).is_err());
                return Ok(());
            }
            result => result.unwrap(),
        };
        let label = format!("{{{}}}", name.to_ascii_uppercase());
        prop_assert!(stored.starts_with(&label), "{}", stored);
        prop_assert_eq!(verify(&stored, &password), Ok(true));
        // HMAC pads short keys with zeros, so CRAM-MD5 cannot tell "pw" from "pw\0".
        let same = if name.starts_with("CRAM-MD5") {
            cram::prepare(&password) == cram::prepare(&other)
        } else {
            password == other
        };
        prop_assert_eq!(verify(&stored, &other), Ok(same));
    }
}

proptest! {
    #![proptest_config(config(6))]

    #[test]
    fn slow_hashes_verify_their_password_and_no_other(
        password in octets(40),
        other in octets(40),
    ) {
        for name in ["SHA256-CRYPT", "SHA512-CRYPT", "PBKDF2", "PBKDF2.hex", "SHA512-CRYPT.b64"] {
            let stored = Scheme::parse(name).unwrap().hash(&password);
            let stored = match stored {
                // The crypt formats are text; a non-UTF-8 password still hashes to text.
                Err(error) => return Err(TestCaseError::fail(format!("{name}: {error:?}"))),
                Ok(stored) => stored,
            };
            prop_assert_eq!(verify(&stored, &password), Ok(true), "{}", stored);
            prop_assert_eq!(verify(&stored, &other), Ok(password == other), "{}", stored);
        }
    }
}

proptest! {
    // Each Argon2ID hash costs 64 MiB and three passes; two cases show the round trip.
    #![proptest_config(config(2))]

    #[test]
    fn memory_hard_hashes_verify_their_password(password in octets(40)) {
        for name in ["BLF-CRYPT", "ARGON2ID"] {
            let stored = Scheme::parse(name).unwrap().hash(&password).unwrap();
            prop_assert_eq!(verify(&stored, &password), Ok(true), "{}", stored);
            let mut other = password.clone();
            other.push(b'!');
            prop_assert_eq!(verify(&stored, &other), Ok(false), "{}", stored);
        }
    }
}
