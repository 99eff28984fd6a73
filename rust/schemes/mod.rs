//! Dovecot password schemes: `{SCHEME[.ENCODING]}value` parsing, hashing with Dovecot's default
//! parameters, and verification that agrees with `doveadm pw -t`.

mod crypt;
mod salted;

use base64ct::{Base64, Encoding as _};

use crate::ct;
use crate::error::{Error, Result};

/// The schemes `hash_password` generates (sorted).
pub const SCHEMES: (&str, &str, &str, &str, &str, &str, &str, &str, &str, &str) = (
    "ARGON2ID",
    "BLF-CRYPT",
    "CLEAR",
    "CRAM-MD5",
    "PBKDF2",
    "PLAIN",
    "SHA256-CRYPT",
    "SHA512-CRYPT",
    "SSHA256",
    "SSHA512",
);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Plain,
    CramMd5,
    /// crypt(3) as Dovecot calls it for CRYPT, SHA256-CRYPT and SHA512-CRYPT: by the value's prefix.
    Crypt,
    BlfCrypt,
    Argon2id,
    Ssha256,
    Ssha512,
    Pbkdf2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    None,
    Base64,
    Hex,
}

/// A scheme name with its optional encoding suffix, as written between the braces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scheme {
    kind: Kind,
    /// How a stored value is encoded; `explicit` when the name carried a suffix.
    encoding: Encoding,
    explicit: bool,
    /// The name as Dovecot writes it in front of a new hash (upper case).
    label: String,
    generates: Option<Generator>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Generator {
    Plain,
    CramMd5,
    Sha256Crypt,
    Sha512Crypt,
    BlfCrypt,
    Argon2id,
    Ssha256,
    Ssha512,
    Pbkdf2,
}

impl Scheme {
    /// Parse `NAME[.b64|.base64|.hex]`, case-insensitively; unknown names are `UnsupportedScheme`.
    pub fn parse(name: &str) -> Result<Scheme> {
        let unsupported = || Error::UnsupportedScheme(name.to_owned());
        let (base, suffix) = match name.split_once('.') {
            Some((base, suffix)) => (base, Some(suffix)),
            None => (name, None),
        };
        let upper = base.to_ascii_uppercase();
        let (kind, default_encoding, generates) = match upper.as_str() {
            "PLAIN" | "CLEAR" => (Kind::Plain, Encoding::None, Some(Generator::Plain)),
            "CRAM-MD5" => (Kind::CramMd5, Encoding::Hex, Some(Generator::CramMd5)),
            "SHA256-CRYPT" => (Kind::Crypt, Encoding::None, Some(Generator::Sha256Crypt)),
            "SHA512-CRYPT" => (Kind::Crypt, Encoding::None, Some(Generator::Sha512Crypt)),
            "BLF-CRYPT" => (Kind::BlfCrypt, Encoding::None, Some(Generator::BlfCrypt)),
            "ARGON2ID" => (Kind::Argon2id, Encoding::None, Some(Generator::Argon2id)),
            "SSHA256" => (Kind::Ssha256, Encoding::Base64, Some(Generator::Ssha256)),
            "SSHA512" => (Kind::Ssha512, Encoding::Base64, Some(Generator::Ssha512)),
            "PBKDF2" => (Kind::Pbkdf2, Encoding::None, Some(Generator::Pbkdf2)),
            // Verify-only: what a passdb value without a {SCHEME} prefix means.
            "CRYPT" => (Kind::Crypt, Encoding::None, None),
            _ => return Err(unsupported()),
        };
        Scheme {
            kind,
            encoding: default_encoding,
            explicit: false,
            label: upper,
            generates,
        }
        .with_suffix(suffix)
        .ok_or_else(unsupported)
    }

    fn with_suffix(mut self, suffix: Option<&str>) -> Option<Scheme> {
        let Some(suffix) = suffix else {
            return Some(self);
        };
        let upper = suffix.to_ascii_uppercase();
        self.encoding = match upper.as_str() {
            "B64" | "BASE64" => Encoding::Base64,
            "HEX" => Encoding::Hex,
            _ => return None,
        };
        self.explicit = true;
        self.label = format!("{}.{upper}", self.label);
        Some(self)
    }

    /// Whether hashing or verifying takes long enough to be worth releasing the GIL.
    pub fn is_slow(&self) -> bool {
        matches!(
            self.kind,
            Kind::Crypt | Kind::BlfCrypt | Kind::Argon2id | Kind::Pbkdf2
        )
    }

    /// `{LABEL}value` for `password`, with Dovecot's default salt sizes and costs.
    pub fn hash(&self, password: &[u8]) -> Result<String> {
        let generator = self
            .generates
            .ok_or_else(|| Error::UnsupportedScheme(self.label.clone()))?;
        let raw: Vec<u8> = match generator {
            Generator::Plain => password.to_vec(),
            Generator::CramMd5 => crate::cram::prepare(password).to_vec(),
            Generator::Sha256Crypt => crypt::sha256_crypt_new(password)?.into_bytes(),
            Generator::Sha512Crypt => crypt::sha512_crypt_new(password)?.into_bytes(),
            Generator::BlfCrypt => crypt::blf_crypt_new(password)?.into_bytes(),
            Generator::Argon2id => crypt::argon2id_new(password)?.into_bytes(),
            Generator::Ssha256 => salted::ssha256_new(password)?,
            Generator::Ssha512 => salted::ssha512_new(password)?,
            Generator::Pbkdf2 => salted::pbkdf2_new(password)?.into_bytes(),
        };
        let value = match self.encoding {
            Encoding::None => String::from_utf8(raw).map_err(|_| {
                Error::InvalidArgument("this password is not UTF-8; use the .b64 or .hex form")
            })?,
            Encoding::Base64 => Base64::encode_string(&raw),
            Encoding::Hex => raw.iter().map(|b| format!("{b:02x}")).collect(),
        };
        Ok(format!("{{{}}}{value}", self.label))
    }

    /// Decode a stored value as Dovecot's `password_decode` does; `None` when it cannot.
    fn decode(&self, value: &str) -> Option<Vec<u8>> {
        let raw = match self.encoding {
            Encoding::None => value.as_bytes().to_vec(),
            // Only CRAM-MD5 has a fixed raw length; without a suffix Dovecot guesses hex by length.
            Encoding::Hex if !self.explicit && value.len() != 64 => decode_base64(value)?,
            Encoding::Hex if !self.explicit => {
                decode_hex(value).or_else(|| decode_base64(value))?
            }
            Encoding::Hex => decode_hex(value)?,
            Encoding::Base64 => decode_base64(value)?,
        };
        (self.kind != Kind::CramMd5 || raw.len() == crate::cram::STATE_LEN).then_some(raw)
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks_exact(2)
        .map(|pair| ct::parse_hex::<1>(pair).map(|[b]| b))
        .collect()
}

/// Dovecot's base64 decoder skips whitespace and insists on padding, but ignores the unused
/// low bits of the last character, so those are cleared before the strict decoder sees them.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut compact: Vec<u8> = text.bytes().filter(|b| !b" \t\r\n".contains(b)).collect();
    let padding = compact
        .iter()
        .rev()
        .take(2)
        .take_while(|&&b| b == b'=')
        .count();
    if padding > 0 && compact.len() > padding {
        let last = compact.len() - padding - 1;
        let value = ALPHABET.iter().position(|&c| c == compact[last])?;
        let used_bits_mask = if padding == 1 { 0b11_1100 } else { 0b11_0000 };
        compact[last] = ALPHABET[value & used_bits_mask];
    }
    Base64::decode_vec(std::str::from_utf8(&compact).ok()?).ok()
}

/// A stored password: its scheme and the value after the braces.
pub struct Stored<'a> {
    scheme: Scheme,
    value: &'a str,
}

impl<'a> Stored<'a> {
    /// Split `{SCHEME}value`; a value without a scheme prefix is CRYPT, as in a Dovecot passdb.
    pub fn parse(stored: &'a str) -> Result<Stored<'a>> {
        if stored.starts_with("$1$") {
            // Dovecot's password_get_scheme() names a bare `$1$` value MD5-CRYPT.
            return Err(Error::UnsupportedScheme("MD5-CRYPT".to_owned()));
        }
        if let Some(rest) = stored.strip_prefix('{') {
            if let Some((name, value)) = rest.split_once('}') {
                return Ok(Stored {
                    scheme: Scheme::parse(name)?,
                    value,
                });
            }
        }
        Ok(Stored {
            scheme: Scheme::parse("CRYPT")?,
            value: stored,
        })
    }

    pub fn is_slow(&self) -> bool {
        self.scheme.is_slow()
    }

    /// Whether `password` matches; malformed values are a mismatch, as in Dovecot.
    pub fn verify(&self, password: &[u8]) -> Result<bool> {
        let Some(raw) = self.scheme.decode(self.value) else {
            return Ok(false);
        };
        Ok(match self.scheme.kind {
            Kind::Plain => ct::constant_time_eq(&raw, password),
            Kind::CramMd5 => ct::constant_time_eq(&raw, &crate::cram::prepare(password)),
            Kind::Crypt => match std::str::from_utf8(&raw) {
                Ok(hash) => crypt::verify(hash, password)?,
                Err(_) => false,
            },
            Kind::BlfCrypt => match std::str::from_utf8(&raw) {
                Ok(hash) if hash.starts_with("$2") => crypt::verify(hash, password)?,
                _ => false,
            },
            Kind::Argon2id => match std::str::from_utf8(&raw) {
                Ok(hash) => crypt::argon2_verify(hash, password),
                Err(_) => false,
            },
            Kind::Ssha256 => salted::ssha256_verify(&raw, password),
            Kind::Ssha512 => salted::ssha512_verify(&raw, password),
            Kind::Pbkdf2 => salted::pbkdf2_verify(&raw, password),
        })
    }
}

/// `count` characters of crypt's `./0-9A-Za-z` alphabet from the OS CSPRNG (Dovecot's salts).
fn random_salt(count: usize) -> Result<String> {
    const ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut bytes = vec![0u8; count];
    getrandom::fill(&mut bytes).map_err(|_| Error::Random)?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
        .collect())
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|_| Error::Random)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests;
