//! `sasl`: base64 response decoding and the PLAIN, LOGIN and CRAM-MD5 message parsers.

use base64ct::{Base64, Encoding as _};
use proptest::prelude::*;

use super::{config, octets, CASES};
use crate::cram;
use crate::error::Error;
use crate::sasl::*;

fn decode(line: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = [0u8; MAX_DECODED_LEN];
    decode_response(line, &mut out).map(<[u8]>::to_vec)
}

fn encode(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; encoded_len(data.len())];
    encode_challenge(data, &mut out);
    out
}

/// A PLAIN or LOGIN field: text without NUL, 1 to 255 octets once UTF-8 encoded.
fn field_text() -> impl Strategy<Value = String> {
    "[^\u{0}]{1,80}".prop_filter("at most 255 octets", |s| s.len() <= MAX_FIELD_LEN)
}

fn field_octets() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(1u8..=255, 1..=MAX_FIELD_LEN)
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn decode_never_panics_and_fits_its_length(line in octets(64)) {
        if let Ok(decoded) = decode(&line) {
            // `_core.decode_response` sizes its output with decoded_len and refuses a shortfall.
            prop_assert_eq!(decoded.len(), decoded_len(&line));
        }
    }

    #[test]
    fn encode_then_decode_gives_the_data_back(data in prop::collection::vec(any::<u8>(), 0..600)) {
        let line = encode(&data);
        prop_assert_eq!(line.len(), encoded_len(data.len()));
        prop_assert_eq!(&line, &Base64::encode_string(&data).into_bytes());
        prop_assert_eq!(decoded_len(&line), data.len());
        if line.is_empty() {
            // "" is not a response; the empty one is spelt "=".
            prop_assert!(decode(&line).is_ok_and(|d| d.is_empty()));
        } else {
            prop_assert_eq!(decode(&line), Ok(data));
        }
    }

    #[test]
    fn decode_accepts_only_canonical_base64(line in "[A-Za-z0-9+/=*]{0,24}") {
        let line = line.as_bytes();
        let expected = match line {
            b"*" => Err(Error::Cancelled),
            b"=" => Ok(Vec::new()),
            _ => Base64::decode_vec(std::str::from_utf8(line).unwrap())
                .ok()
                .filter(|data| encode(data) == line)
                .ok_or(Error::Sasl("client response is not valid base64")),
        };
        prop_assert_eq!(decode(line), expected);
    }

    #[test]
    fn decode_agrees_with_base64ct_on_any_octets(
        line in prop_oneof![octets(64), "[A-Za-z0-9+/=]{0,64}".prop_map(String::into_bytes)],
    ) {
        prop_assume!(line != b"*" && line != b"=");
        let expected = std::str::from_utf8(&line)
            .ok()
            .and_then(|text| Base64::decode_vec(text).ok())
            .filter(|data| encode(data) == line)
            .ok_or(Error::Sasl("client response is not valid base64"));
        prop_assert_eq!(decode(&line), expected);
    }

    #[test]
    fn a_damaged_response_is_refused(
        data in prop::collection::vec(any::<u8>(), 1..100),
        at in any::<prop::sample::Index>(),
        junk in prop::sample::select(&b" \t\r\n\x00!-_.:\xff"[..]),
    ) {
        let mut line = encode(&data);
        let position = at.index(line.len());
        line[position] = junk;
        prop_assert!(matches!(decode(&line), Err(Error::Sasl(_))));
    }

    #[test]
    fn plain_parses_back_what_was_joined(
        authzid in prop_oneof![Just(String::new()), field_text()],
        authcid in field_text(),
        passwd in field_octets().prop_filter("no NUL", |p| !p.contains(&0)),
    ) {
        let message = [authzid.as_bytes(), authcid.as_bytes(), &passwd].join(&0u8);
        prop_assert_eq!(
            parse_plain(&message),
            Ok((authzid.as_str(), authcid.as_str(), &passwd[..]))
        );
    }

    #[test]
    fn plain_results_rejoin_to_the_message(message in octets(300)) {
        if let Ok((authzid, authcid, passwd)) = parse_plain(&message) {
            prop_assert_eq!(
                [authzid.as_bytes(), authcid.as_bytes(), passwd].join(&0u8),
                &message[..]
            );
            prop_assert!(!authcid.is_empty() && !passwd.is_empty());
            prop_assert!(authzid.len().max(authcid.len()).max(passwd.len()) <= MAX_FIELD_LEN);
        } else {
            let fields: Vec<&[u8]> = message.split(|&b| b == 0).collect();
            let well_formed = fields.len() == 3
                && !fields[1].is_empty()
                && !fields[2].is_empty()
                && fields.iter().all(|f| f.len() <= MAX_FIELD_LEN)
                && std::str::from_utf8(fields[0]).is_ok()
                && std::str::from_utf8(fields[1]).is_ok();
            prop_assert!(!well_formed, "refused a well-formed message");
        }
    }

    #[test]
    fn plain_split_is_parse_without_utf8(message in octets(300)) {
        let fields: Vec<&[u8]> = message.split(|&b| b == 0).collect();
        let expected = (fields.len() == 3
            && !fields[1].is_empty()
            && !fields[2].is_empty()
            && fields.iter().all(|f| f.len() <= MAX_FIELD_LEN))
            .then(|| (fields[0], fields[1], fields[2]));
        prop_assert_eq!(split_plain(&message).ok(), expected);
        if let Ok((authzid, authcid, passwd)) = parse_plain(&message) {
            prop_assert_eq!(Some((authzid.as_bytes(), authcid.as_bytes(), passwd)), expected);
        }
    }

    #[test]
    fn login_payloads_follow_their_rule(data in octets(300)) {
        let acceptable = (1..=MAX_FIELD_LEN).contains(&data.len())
            && !data.iter().any(|b| matches!(b, 0 | b'\r' | b'\n'));
        prop_assert_eq!(parse_login_password(&data).ok(), acceptable.then_some(&data[..]));
        let as_text = std::str::from_utf8(&data).ok().filter(|_| acceptable);
        prop_assert_eq!(parse_login_username(&data).ok(), as_text);
    }

    #[test]
    fn cram_md5_parses_back_a_client_response(
        username in field_text(),
        secret in octets(80),
        challenge in octets(80),
    ) {
        let response = cram::response(&username, &secret, &challenge);
        prop_assert_eq!(
            parse_cram_md5_response(&response),
            Ok((username.as_str(), cram::digest_hex(&secret, &challenge)))
        );
        let shouted = [username.as_bytes(), b" ", &response[username.len() + 1..].to_ascii_uppercase()].concat();
        prop_assert_eq!(
            parse_cram_md5_response(&shouted),
            Ok((username.as_str(), cram::digest_hex(&secret, &challenge)))
        );
    }

    #[test]
    fn cram_md5_results_match_the_message(
        message in prop_oneof![
            octets(80),
            (octets(20), "[0-9a-fA-Fg ]{30,34}").prop_map(|(user, digest)| {
                [&user[..], b" ", digest.as_bytes()].concat()
            }),
        ],
    ) {
        if let Ok((username, digest)) = parse_cram_md5_response(&message) {
            let (user_part, digest_part) = message.split_at(message.len() - 33);
            prop_assert_eq!(user_part, username.as_bytes());
            prop_assert_eq!(digest_part[0], b' ');
            prop_assert_eq!(&digest_part[1..].to_ascii_lowercase(), &digest[..]);
            prop_assert!(digest.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)));
        }
    }
}

proptest! {
    #![proptest_config(config(16))]

    #[test]
    fn long_responses_are_cut_at_the_limit(extra in 1usize..64, filler in "[A-Za-z0-9+/]") {
        let line = filler.repeat(MAX_RESPONSE_LEN + extra);
        prop_assert_eq!(decode(line.as_bytes()), Err(Error::Sasl("client response is too long")));
        let at_limit = filler.repeat(MAX_RESPONSE_LEN);
        prop_assert_eq!(decode(at_limit.as_bytes()).map(|d| d.len()), Ok(MAX_DECODED_LEN));
    }
}
