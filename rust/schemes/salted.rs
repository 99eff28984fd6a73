//! Salted digests: SSHA256/SSHA512 (`digest(password + salt) + salt`) and Dovecot's PBKDF2
//! (`$1$salt$rounds$hex`, PBKDF2-HMAC-SHA1, 20-byte key).

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::{random_bytes, random_salt};
use crate::ct;
use crate::error::Result;

/// Dovecot's salt length for SSHA256/SSHA512.
const SSHA_SALT_LEN: usize = 4;
const PBKDF2_SALT_LEN: usize = 16;
const PBKDF2_DEFAULT_ROUNDS: u32 = 5_000;
const PBKDF2_KEY_LEN: usize = 20;

fn salted<D: Digest>(password: &[u8], salt: &[u8]) -> Vec<u8> {
    let mut raw = D::new()
        .chain_update(password)
        .chain_update(salt)
        .finalize()
        .to_vec();
    raw.extend_from_slice(salt);
    raw
}

/// Dovecot requires at least one salt byte after the digest.
fn salted_verify<D: Digest>(raw: &[u8], password: &[u8]) -> bool {
    let digest_len = <D as Digest>::output_size();
    if raw.len() <= digest_len {
        return false;
    }
    let (expected, salt) = raw.split_at(digest_len);
    let computed = D::new()
        .chain_update(password)
        .chain_update(salt)
        .finalize();
    ct::constant_time_eq(&computed, expected)
}

pub fn ssha256_new(password: &[u8]) -> Result<Vec<u8>> {
    Ok(salted::<Sha256>(
        password,
        &random_bytes::<SSHA_SALT_LEN>()?,
    ))
}

pub fn ssha512_new(password: &[u8]) -> Result<Vec<u8>> {
    Ok(salted::<Sha512>(
        password,
        &random_bytes::<SSHA_SALT_LEN>()?,
    ))
}

pub fn ssha256_verify(raw: &[u8], password: &[u8]) -> bool {
    salted_verify::<Sha256>(raw, password)
}

pub fn ssha512_verify(raw: &[u8], password: &[u8]) -> bool {
    salted_verify::<Sha512>(raw, password)
}

fn pbkdf2_key(password: &[u8], salt: &[u8], rounds: u32) -> [u8; PBKDF2_KEY_LEN] {
    pbkdf2::pbkdf2_hmac_array::<Sha1, PBKDF2_KEY_LEN>(password, salt, rounds)
}

pub fn pbkdf2_new(password: &[u8]) -> Result<String> {
    let salt = random_salt(PBKDF2_SALT_LEN)?;
    let key: [u8; 40] = ct::hex_lower(&pbkdf2_key(
        password,
        salt.as_bytes(),
        PBKDF2_DEFAULT_ROUNDS,
    ));
    let hex = std::str::from_utf8(&key).expect("hex digits are ASCII");
    Ok(format!("$1${salt}${PBKDF2_DEFAULT_ROUNDS}${hex}"))
}

/// `$1$salt$rounds$hex`: rounds any decimal Dovecot's `str_to_uint` takes, key hex of either case.
pub fn pbkdf2_verify(raw: &[u8], password: &[u8]) -> bool {
    let Some(rest) = raw.strip_prefix(b"$1$") else {
        return false;
    };
    let fields: Vec<&[u8]> = rest.split(|&b| b == b'$').collect();
    let [salt, rounds, hex] = fields[..] else {
        return false;
    };
    let rounds = std::str::from_utf8(rounds)
        .ok()
        .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|r| r.parse::<u32>().ok());
    match rounds {
        Some(rounds) if rounds > 0 => {
            ct::hex_digest_matches(&pbkdf2_key(password, salt, rounds), hex)
        }
        _ => false,
    }
}
