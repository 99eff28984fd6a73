//! crypt(3) formats as libxcrypt computes them for Dovecot: SHA-crypt (`$5$`, `$6$`), bcrypt
//! (`$2a$`, `$2b$`, `$2x$`, `$2y$`); and Argon2 PHC strings (`$argon2id$`, `$argon2i$`) as
//! libsodium checks them for Dovecot's ARGON2ID.
//! A value matches when crypt(3) would reproduce it exactly, so non-canonical values fail.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use base64ct::{Base64ShaCrypt, Encoding as _};

use super::{random_bytes, random_salt};
use crate::ct;
use crate::error::{Error, Result};

const SHA_CRYPT_SALT_MAX: usize = 16;
const SHA_CRYPT_DEFAULT_ROUNDS: u32 = 5_000;
const SHA_CRYPT_ROUNDS_MIN: u32 = 1_000;
const SHA_CRYPT_ROUNDS_MAX: u32 = 999_999_999;
/// Dovecot's BLF-CRYPT default cost.
const BLF_CRYPT_COST: u32 = 5;
/// Dovecot's (libsodium's "interactive") ARGON2ID defaults: 64 MiB, 3 passes, 1 lane.
const ARGON2_M_COST: u32 = 65_536;
const ARGON2_T_COST: u32 = 3;
const ARGON2_P_COST: u32 = 1;
const ARGON2_OUTPUT_LEN: usize = 32;

#[derive(Clone, Copy)]
enum ShaCrypt {
    Sha256,
    Sha512,
}

impl ShaCrypt {
    fn prefix(self) -> &'static str {
        match self {
            ShaCrypt::Sha256 => "$5$",
            ShaCrypt::Sha512 => "$6$",
        }
    }

    /// The crypt(3) base64 of the digest, bytes taken in each algorithm's permuted order.
    fn encoded(self, password: &[u8], salt: &[u8], rounds: u32) -> String {
        const ORDER_256: [usize; 32] = [
            20, 10, 0, 11, 1, 21, 2, 22, 12, 23, 13, 3, 14, 4, 24, 5, 25, 15, 26, 16, 6, 17, 7, 27,
            8, 28, 18, 29, 19, 9, 30, 31,
        ];
        const ORDER_512: [usize; 64] = [
            42, 21, 0, 1, 43, 22, 23, 2, 44, 45, 24, 3, 4, 46, 25, 26, 5, 47, 48, 27, 6, 7, 49, 28,
            29, 8, 50, 51, 30, 9, 10, 52, 31, 32, 11, 53, 54, 33, 12, 13, 55, 34, 35, 14, 56, 57,
            36, 15, 16, 58, 37, 38, 17, 59, 60, 39, 18, 19, 61, 40, 41, 20, 62, 63,
        ];
        let params = sha_crypt::Params::new(rounds).expect("rounds are range-checked");
        match self {
            ShaCrypt::Sha256 => {
                let digest = sha_crypt::sha256_crypt(password, salt, params);
                Base64ShaCrypt::encode_string(&ORDER_256.map(|i| digest[i]))
            }
            ShaCrypt::Sha512 => {
                let digest = sha_crypt::sha512_crypt(password, salt, params);
                Base64ShaCrypt::encode_string(&ORDER_512.map(|i| digest[i]))
            }
        }
    }

    fn generate(self, password: &[u8]) -> Result<String> {
        let salt = random_salt(SHA_CRYPT_SALT_MAX)?;
        let hash = self.encoded(password, salt.as_bytes(), SHA_CRYPT_DEFAULT_ROUNDS);
        Ok(format!("{}{salt}${hash}", self.prefix()))
    }

    /// Whether crypt(3) with `setting` (everything after the `$5$`/`$6$`) reproduces it.
    fn verify(self, setting: &str, password: &[u8]) -> bool {
        let (rounds, rest) = match setting.strip_prefix("rounds=") {
            Some(after) => match after.split_once('$') {
                Some((digits, rest)) => match canonical_rounds(digits) {
                    Some(rounds) => (rounds, rest),
                    None => return false,
                },
                None => return false,
            },
            None => (SHA_CRYPT_DEFAULT_ROUNDS, setting),
        };
        let Some((salt, hash)) = rest.split_once('$') else {
            return false;
        };
        if salt.len() > SHA_CRYPT_SALT_MAX {
            return false;
        }
        let expected = self.encoded(password, salt.as_bytes(), rounds);
        ct::constant_time_eq(expected.as_bytes(), hash.as_bytes())
    }
}

/// The rounds value crypt(3) would echo back unchanged: decimal, no sign or leading zero, in range.
fn canonical_rounds(digits: &str) -> Option<u32> {
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse::<u32>()
        .ok()
        .filter(|r| (SHA_CRYPT_ROUNDS_MIN..=SHA_CRYPT_ROUNDS_MAX).contains(r))
}

pub fn sha256_crypt_new(password: &[u8]) -> Result<String> {
    ShaCrypt::Sha256.generate(password)
}

pub fn sha512_crypt_new(password: &[u8]) -> Result<String> {
    ShaCrypt::Sha512.generate(password)
}

pub fn blf_crypt_new(password: &[u8]) -> Result<String> {
    let salt = random_bytes::<16>()?;
    let parts = bcrypt::hash_with_salt(password, BLF_CRYPT_COST, salt)
        .map_err(|_| Error::InvalidArgument("bcrypt could not hash this password"))?;
    Ok(parts.format_for_version(bcrypt::Version::TwoY))
}

fn argon2id() -> Argon2<'static> {
    let params = Params::new(
        ARGON2_M_COST,
        ARGON2_T_COST,
        ARGON2_P_COST,
        Some(ARGON2_OUTPUT_LEN),
    )
    .expect("Dovecot's Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn argon2id_new(password: &[u8]) -> Result<String> {
    let salt = random_bytes::<16>()?;
    argon2id()
        .hash_password_with_salt(password, &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| Error::InvalidArgument("argon2 could not hash this password"))
}

/// Argon2 PHC string check (libsodium's `crypto_pwhash_str_verify` for Dovecot's ARGON2*).
pub fn argon2_verify(hash: &str, password: &[u8]) -> bool {
    if !(hash.starts_with("$argon2id$") || hash.starts_with("$argon2i$")) {
        return false;
    }
    argon2id().verify_password(password, hash).is_ok()
}

/// crypt(3) formats libxcrypt has and this crate does not.
const NOT_IMPLEMENTED: [&str; 8] = ["$1$", "$y$", "$gy$", "$7$", "$sha1$", "$md5", "$3$", "_"];

/// crypt(3) by prefix. Formats libxcrypt knows but this crate does not implement are
/// `UnsupportedScheme`, so an operator learns why such an account cannot log in; anything else
/// that is not SHA-crypt or bcrypt cannot match (libxcrypt has no Argon2 either).
pub fn verify(hash: &str, password: &[u8]) -> Result<bool> {
    if ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .any(|p| hash.starts_with(p))
    {
        return Ok(bcrypt::verify(password, hash).unwrap_or(false));
    }
    if let Some(prefix) = NOT_IMPLEMENTED.iter().find(|p| hash.starts_with(*p)) {
        return Err(Error::UnsupportedScheme(format!("CRYPT {prefix}")));
    }
    if hash
        .bytes()
        .any(|b| !(0x21..0x7f).contains(&b) || b"!*:;\\".contains(&b))
    {
        return Ok(false); // libxcrypt refuses such a setting
    }
    Ok(if let Some(setting) = hash.strip_prefix("$5$") {
        ShaCrypt::Sha256.verify(setting, password)
    } else if let Some(setting) = hash.strip_prefix("$6$") {
        ShaCrypt::Sha512.verify(setting, password)
    } else {
        false
    })
}
