//! SASL client-response decoding and the PLAIN (RFC 4616), LOGIN and CRAM-MD5 (RFC 2195)
//! message parsers. Pure logic, borrowed results, no allocation.

use base64ct::{Base64, Encoding};

use crate::error::{Error, Result};

/// Longest base64 client response accepted (RFC 4954 §4 lets servers cap it; 12288 octets).
pub const MAX_RESPONSE_LEN: usize = 12288;
/// Room for the largest decoded response.
pub const MAX_DECODED_LEN: usize = MAX_RESPONSE_LEN / 4 * 3;
/// Longest authzid, authcid, password or LOGIN payload (RFC 4616 §2 "up to 255 octets").
pub const MAX_FIELD_LEN: usize = 255;

pub const LOGIN_CHALLENGES: (&[u8], &[u8]) = (b"Username:", b"Password:");

/// Decode one base64 client response into `out` (at least [`MAX_DECODED_LEN`] bytes).
///
/// `=` is the empty response and `*` cancels. The decoder is base64ct's constant-time one,
/// because the data usually carries a password.
pub fn decode_response<'a>(line: &[u8], out: &'a mut [u8]) -> Result<&'a [u8]> {
    if line.len() > MAX_RESPONSE_LEN {
        return Err(Error::Sasl("client response is too long"));
    }
    match line {
        b"*" => Err(Error::Cancelled),
        b"=" => Ok(&out[..0]),
        _ => Base64::decode(line, out)
            .map_err(|_| Error::Sasl("client response is not valid base64")),
    }
}

/// Octets `decode_response` yields for a well-formed `line` (an upper bound otherwise).
pub fn decoded_len(line: &[u8]) -> usize {
    let padding = line
        .iter()
        .rev()
        .take(2)
        .take_while(|&&b| b == b'=')
        .count();
    (line.len() / 4 * 3).saturating_sub(padding)
}

/// Base64 length of `len` octets.
pub fn encoded_len(len: usize) -> usize {
    len.div_ceil(3) * 4
}

/// Base64-encode `data` into `out`, which must be exactly [`encoded_len`] bytes.
pub fn encode_challenge(data: &[u8], out: &mut [u8]) {
    let written = Base64::encode(data, out).map(str::len);
    debug_assert_eq!(written, Ok(out.len()));
}

fn utf8_field<'a>(field: &'a [u8], what: &'static str) -> Result<&'a str> {
    std::str::from_utf8(field).map_err(|_| Error::Sasl(what))
}

/// Index of the first NUL in `data`, eight octets at a time.
///
/// A word `x` has a zero octet exactly when `(x - 0x01…01) & !x & 0x80…80` is non-zero; the
/// borrow can only mark octets above the first zero one, so in little-endian order the lowest
/// mark is the first NUL.
#[inline]
fn find_nul(data: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let (words, tail) = data.as_chunks::<8>();
    for (index, word) in words.iter().enumerate() {
        let x = u64::from_le_bytes(*word);
        let marks = x.wrapping_sub(ONES) & !x & HIGHS;
        if marks != 0 {
            return Some(index * 8 + marks.trailing_zeros() as usize / 8);
        }
    }
    if tail.is_empty() {
        return None;
    }
    if let Some(last) = data.last_chunk::<8>() {
        // The last eight octets overlap ones found above not to be NUL, so a mark here is in
        // the tail: one more word instead of a loop over up to seven octets.
        let x = u64::from_le_bytes(*last);
        let marks = x.wrapping_sub(ONES) & !x & HIGHS;
        return (marks != 0).then(|| data.len() - 8 + marks.trailing_zeros() as usize / 8);
    }
    tail.iter().position(|&b| b == 0)
}

/// RFC 4616 `[authzid] NUL authcid NUL passwd` split into its three fields, with every check
/// of [`parse_plain`] but the UTF-8 of the two identities (left to whoever makes text of them:
/// CPython validates while it builds a `str`, so the extension does not do it twice).
#[inline]
pub fn split_plain(message: &[u8]) -> Result<(&[u8], &[u8], &[u8])> {
    const TOO_FEW: Error = Error::Sasl("PLAIN message needs two NUL separators");
    let first = find_nul(message).ok_or(TOO_FEW)?;
    let (authzid, rest) = (&message[..first], &message[first + 1..]);
    let second = find_nul(rest).ok_or(TOO_FEW)?;
    let (authcid, passwd) = (&rest[..second], &rest[second + 1..]);
    if find_nul(passwd).is_some() {
        return Err(Error::Sasl(
            "PLAIN message has more than two NUL separators",
        ));
    }
    if authcid.is_empty() {
        return Err(Error::Sasl("PLAIN authentication identity is empty"));
    }
    if passwd.is_empty() {
        return Err(Error::Sasl("PLAIN password is empty"));
    }
    if authzid.len() > MAX_FIELD_LEN
        || authcid.len() > MAX_FIELD_LEN
        || passwd.len() > MAX_FIELD_LEN
    {
        return Err(Error::Sasl("PLAIN field is longer than 255 octets"));
    }
    Ok((authzid, authcid, passwd))
}

/// RFC 4616 `[authzid] NUL authcid NUL passwd` → `(authzid, authcid, passwd)`.
pub fn parse_plain(message: &[u8]) -> Result<(&str, &str, &[u8])> {
    let (authzid, authcid, passwd) = split_plain(message)?;
    let authzid = utf8_field(authzid, "PLAIN authorization identity is not UTF-8")?;
    let authcid = utf8_field(authcid, "PLAIN authentication identity is not UTF-8")?;
    Ok((authzid, authcid, passwd))
}

fn check_login_payload(data: &[u8], what: &'static str) -> Result<()> {
    if data.is_empty() {
        return Err(Error::Sasl(what));
    }
    if data.len() > MAX_FIELD_LEN {
        return Err(Error::Sasl("LOGIN payload is longer than 255 octets"));
    }
    if data.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n')) {
        return Err(Error::Sasl("LOGIN payload contains NUL, CR or LF"));
    }
    Ok(())
}

/// The decoded LOGIN user name.
pub fn parse_login_username(data: &[u8]) -> Result<&str> {
    check_login_payload(data, "LOGIN user name is empty")?;
    utf8_field(data, "LOGIN user name is not UTF-8")
}

/// The decoded LOGIN password.
pub fn parse_login_password(data: &[u8]) -> Result<&[u8]> {
    check_login_payload(data, "LOGIN password is empty")?;
    Ok(data)
}

/// RFC 2195 `username SP digest`, split at the last space; the digest comes back lowercase.
pub fn parse_cram_md5_response(message: &[u8]) -> Result<(&str, [u8; 32])> {
    let Some(space) = message.iter().rposition(|&b| b == b' ') else {
        return Err(Error::Sasl("CRAM-MD5 response has no space"));
    };
    let (username, digest) = (&message[..space], &message[space + 1..]);
    if username.is_empty() {
        return Err(Error::Sasl("CRAM-MD5 user name is empty"));
    }
    let digest: [u8; 32] = digest
        .try_into()
        .ok()
        .filter(|d: &[u8; 32]| d.iter().all(u8::is_ascii_hexdigit))
        .ok_or(Error::Sasl("CRAM-MD5 digest is not 32 hex digits"))?;
    let username = utf8_field(username, "CRAM-MD5 user name is not UTF-8")?;
    Ok((username, digest.map(|b| b.to_ascii_lowercase())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(line: &[u8]) -> Result<Vec<u8>> {
        let mut out = [0u8; MAX_DECODED_LEN];
        decode_response(line, &mut out).map(<[u8]>::to_vec)
    }

    #[test]
    fn decode_special_responses() {
        assert_eq!(decode(b"="), Ok(vec![]));
        assert_eq!(decode(b"*"), Err(Error::Cancelled));
        assert_eq!(decode(b"dGVzdA=="), Ok(b"test".to_vec()));
    }

    #[test]
    fn decode_rejects_malformed_base64() {
        for bad in [
            &b"dGVzdA"[..],
            b"dGVzdA=",
            b"dGVz dA==",
            b"dGVzdA==\r\n",
            b"dGVz\ndA==",
            b"dG!zdA==",
        ] {
            assert!(matches!(decode(bad), Err(Error::Sasl(_))), "{bad:?}");
        }
    }

    #[test]
    fn decode_length_limit() {
        let at_limit = vec![b'A'; MAX_RESPONSE_LEN];
        assert_eq!(decode(&at_limit).map(|v| v.len()), Ok(MAX_DECODED_LEN));
        let over = vec![b'A'; MAX_RESPONSE_LEN + 4];
        assert!(matches!(decode(&over), Err(Error::Sasl(_))));
    }

    #[test]
    fn rfc4954_plain_example() {
        // RFC 4954 §4 example: "AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=" is "test\0test\01234".
        let message = decode(b"dGVzdAB0ZXN0ADEyMzQ=").unwrap();
        assert_eq!(parse_plain(&message), Ok(("test", "test", &b"1234"[..])));
    }

    #[test]
    fn rfc4616_examples() {
        // RFC 4616 §4: "\0tim\0tanstaaftanstaaf" and "Ursel\0Kurt\0xipj3plmq".
        assert_eq!(
            parse_plain(b"\0tim\0tanstaaftanstaaf"),
            Ok(("", "tim", &b"tanstaaftanstaaf"[..]))
        );
        assert_eq!(
            parse_plain(b"Ursel\0Kurt\0xipj3plmq"),
            Ok(("Ursel", "Kurt", &b"xipj3plmq"[..]))
        );
    }

    #[test]
    fn plain_rejections() {
        let long = [b'a'; 256];
        let mut long_authcid = b"\0".to_vec();
        long_authcid.extend_from_slice(&long);
        long_authcid.extend_from_slice(b"\0pw");
        let mut long_passwd = b"\0user\0".to_vec();
        long_passwd.extend_from_slice(&long);
        let mut long_authzid = long.to_vec();
        long_authzid.extend_from_slice(b"\0user\0pw");
        for bad in [
            &b"userpw"[..],
            b"\0userpw",
            b"\0user\0pw\0",
            b"\0\0pw",
            b"\0user\0",
            b"\0\xff\0pw",
            b"\xff\0user\0pw",
            &long_authcid,
            &long_passwd,
            &long_authzid,
        ] {
            assert!(matches!(parse_plain(bad), Err(Error::Sasl(_))), "{bad:?}");
        }
        let mut at_limit = b"\0user\0".to_vec();
        at_limit.extend_from_slice(&long[..255]);
        assert!(parse_plain(&at_limit).is_ok());
        assert_eq!(parse_plain(b"\0user\0\xff"), Ok(("", "user", &b"\xff"[..])));
    }

    #[test]
    fn find_nul_every_position() {
        for len in 0..40 {
            let mut data = vec![0xffu8; len];
            assert_eq!(find_nul(&data), None, "{len}");
            for at in 0..len {
                data[at] = 0;
                assert_eq!(find_nul(&data), Some(at), "{len} {at}");
                // A later NUL, and a 0x01 octet just above a NUL (the borrow case), change nothing.
                if at + 1 < len {
                    data[at + 1] = 1;
                    assert_eq!(find_nul(&data), Some(at), "{len} {at}");
                    data[at + 1] = 0;
                    assert_eq!(find_nul(&data), Some(at), "{len} {at}");
                    data[at + 1] = 0xff;
                }
                data[at] = 0x80;
                assert_eq!(find_nul(&data), None, "{len} {at}");
                data[at] = 0xff;
            }
        }
    }

    #[test]
    fn login_payloads() {
        assert_eq!(
            parse_login_username(b"ma10001a@seikyou.ne.jp"),
            Ok("ma10001a@seikyou.ne.jp")
        );
        assert_eq!(parse_login_password(b"p\xffss"), Ok(&b"p\xffss"[..]));
        for bad in [&b""[..], b"a\0b", b"a\rb", b"a\nb", &[b'a'; 256]] {
            assert!(parse_login_username(bad).is_err(), "{bad:?}");
            assert!(parse_login_password(bad).is_err(), "{bad:?}");
        }
        assert!(parse_login_username(b"\xff").is_err());
    }

    #[test]
    fn cram_md5_response_parsing() {
        // RFC 2195 §2 client response.
        let (user, digest) =
            parse_cram_md5_response(b"tim b913a602c7eda7a495b4e6e7334d3890").unwrap();
        assert_eq!(user, "tim");
        assert_eq!(&digest, b"b913a602c7eda7a495b4e6e7334d3890");
        let (user, digest) =
            parse_cram_md5_response(b"John Smith B913A602C7EDA7A495B4E6E7334D3890").unwrap();
        assert_eq!(user, "John Smith");
        assert_eq!(&digest, b"b913a602c7eda7a495b4e6e7334d3890");
        for bad in [
            &b"timb913a602c7eda7a495b4e6e7334d3890"[..],
            b" b913a602c7eda7a495b4e6e7334d3890",
            b"tim b913a602c7eda7a495b4e6e7334d389",
            b"tim b913a602c7eda7a495b4e6e7334d38900",
            b"tim g913a602c7eda7a495b4e6e7334d3890",
            b"\xff b913a602c7eda7a495b4e6e7334d3890",
            b"tim b913a602c7eda7a495b4e6e7334d3890 ",
        ] {
            assert!(parse_cram_md5_response(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn encode() {
        let data = b"<1896.697170952@postoffice.reston.mci.net>";
        let mut out = vec![0u8; encoded_len(data.len())];
        encode_challenge(data, &mut out);
        assert_eq!(
            out,
            b"PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"
        );
        let mut empty = [0u8; 0];
        encode_challenge(b"", &mut empty);
    }
}
