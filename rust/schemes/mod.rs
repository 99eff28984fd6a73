//! Dovecot password schemes: `{SCHEME[.ENCODING]}value` parsing, hashing with Dovecot's default
//! parameters, and verification that agrees with `doveadm pw -t`.
//!
//! Everything this crate knows about a scheme is one row of [`TABLE`], as Dovecot keeps it in
//! `builtin_schemes[]` (`password-scheme.c`); parsing, hashing, verifying and the Python-facing
//! `scheme_info` all read that row.

mod crypt;
mod salted;

use base64ct::{Base64, Encoding as _};

use crate::ct;
use crate::error::{Error, Result};

/// How a stored value is encoded between the braces' end and the line's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    None,
    Base64,
    Hex,
}

impl Encoding {
    /// The name `scheme_info` reports (as the twin's table writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::None => "none",
            Encoding::Base64 => "base64",
            Encoding::Hex => "hex",
        }
    }
}

/// Makes the raw value of a new hash from a password.
pub type Generate = fn(&[u8]) -> Result<Vec<u8>>;
/// Whether a decoded stored value (first) matches a password (second).
pub type Verify = fn(&[u8], &[u8]) -> Result<bool>;

/// One password scheme: Dovecot's `struct password_scheme`, plus what the servers need to know.
#[derive(Debug)]
pub struct SchemeDef {
    /// Upper case, as Dovecot writes it in front of a new hash.
    pub name: &'static str,
    /// The encoding of a stored value whose scheme name has no suffix.
    pub encoding: Encoding,
    /// The decoded value's length where the scheme fixes it (Dovecot's `raw_password_len`).
    pub raw_len: Option<usize>,
    /// Whether hashing or verifying takes long enough to be worth releasing the GIL.
    pub slow: bool,
    /// Verify cost rank, cheapest 0, by the time at Dovecot's default parameters
    /// (docs/accounts.md, password scheme benchmarks); unprefixed CRYPT values are mostly `$6$`.
    pub cost: u8,
    /// The raw value for a new hash; `None` for verify-only schemes.
    pub generate: Option<Generate>,
    /// Whether a decoded stored value matches a password.
    pub verify: Verify,
}

/// Every scheme this crate knows, sorted by name.
pub static TABLE: [SchemeDef; 11] = [
    SchemeDef {
        name: "ARGON2ID",
        encoding: Encoding::None,
        raw_len: None,
        slow: true,
        cost: 6,
        generate: Some(|password| Ok(crypt::argon2id_new(password)?.into_bytes())),
        verify: |raw, password| {
            Ok(text(raw).is_some_and(|hash| crypt::argon2_verify(hash, password)))
        },
    },
    SchemeDef {
        name: "BLF-CRYPT",
        encoding: Encoding::None,
        raw_len: None,
        slow: true,
        cost: 4,
        generate: Some(|password| Ok(crypt::blf_crypt_new(password)?.into_bytes())),
        verify: |raw, password| match text(raw) {
            Some(hash) if hash.starts_with("$2") => crypt::verify(hash, password),
            _ => Ok(false),
        },
    },
    plaintext("CLEAR"),
    SchemeDef {
        name: "CRAM-MD5",
        encoding: Encoding::Hex,
        raw_len: Some(crate::cram::STATE_LEN),
        slow: false,
        cost: 0,
        generate: Some(|password| Ok(crate::cram::prepare(password).to_vec())),
        verify: |raw, password| Ok(ct::constant_time_eq(raw, &crate::cram::prepare(password))),
    },
    // crypt(3) as Dovecot calls it for a passdb value without a {SCHEME} prefix: verify-only.
    SchemeDef {
        name: "CRYPT",
        encoding: Encoding::None,
        raw_len: None,
        slow: true,
        cost: 5,
        generate: None,
        verify: crypt_verify,
    },
    SchemeDef {
        name: "PBKDF2",
        encoding: Encoding::None,
        raw_len: None,
        slow: true,
        cost: 2,
        generate: Some(|password| Ok(salted::pbkdf2_new(password)?.into_bytes())),
        verify: |raw, password| Ok(salted::pbkdf2_verify(raw, password)),
    },
    plaintext("PLAIN"),
    // Dovecot hands CRYPT, SHA256-CRYPT and SHA512-CRYPT values alike to crypt(3), by prefix.
    SchemeDef {
        name: "SHA256-CRYPT",
        encoding: Encoding::None,
        raw_len: None,
        slow: true,
        cost: 3,
        generate: Some(|password| Ok(crypt::sha256_crypt_new(password)?.into_bytes())),
        verify: crypt_verify,
    },
    SchemeDef {
        name: "SHA512-CRYPT",
        encoding: Encoding::None,
        raw_len: None,
        slow: true,
        cost: 5,
        generate: Some(|password| Ok(crypt::sha512_crypt_new(password)?.into_bytes())),
        verify: crypt_verify,
    },
    SchemeDef {
        name: "SSHA256",
        encoding: Encoding::Base64,
        raw_len: None,
        slow: false,
        cost: 1,
        generate: Some(salted::ssha256_new),
        verify: |raw, password| Ok(salted::ssha256_verify(raw, password)),
    },
    SchemeDef {
        name: "SSHA512",
        encoding: Encoding::Base64,
        raw_len: None,
        slow: false,
        cost: 1,
        generate: Some(salted::ssha512_new),
        verify: |raw, password| Ok(salted::ssha512_verify(raw, password)),
    },
];

/// PLAIN and CLEAR: one scheme under two names, as in Dovecot.
const fn plaintext(name: &'static str) -> SchemeDef {
    SchemeDef {
        name,
        encoding: Encoding::None,
        raw_len: None,
        slow: false,
        cost: 0,
        generate: Some(|password| Ok(password.to_vec())),
        verify: |raw, password| Ok(ct::constant_time_eq(raw, password)),
    }
}

fn text(raw: &[u8]) -> Option<&str> {
    std::str::from_utf8(raw).ok()
}

fn crypt_verify(raw: &[u8], password: &[u8]) -> Result<bool> {
    text(raw).map_or(Ok(false), |hash| crypt::verify(hash, password))
}

/// The names of the schemes `hash_password` generates, sorted.
pub fn generated_names() -> impl Iterator<Item = &'static str> {
    TABLE
        .iter()
        .filter(|def| def.generate.is_some())
        .map(|def| def.name)
}

/// A scheme name with its optional encoding suffix, as written between the braces.
#[derive(Clone, Debug)]
pub struct Scheme {
    pub def: &'static SchemeDef,
    /// How a stored value is encoded; `explicit` when the name carried a suffix.
    pub encoding: Encoding,
    explicit: bool,
    /// The name as Dovecot writes it in front of a new hash (upper case, with the suffix).
    pub label: String,
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
        let def = TABLE
            .iter()
            .find(|def| def.name == upper)
            .ok_or_else(unsupported)?;
        Scheme {
            def,
            encoding: def.encoding,
            explicit: false,
            label: upper,
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

    pub fn is_slow(&self) -> bool {
        self.def.slow
    }

    /// `{LABEL}value` for `password`, with Dovecot's default salt sizes and costs.
    pub fn hash(&self, password: &[u8]) -> Result<String> {
        let generate = self
            .def
            .generate
            .ok_or_else(|| Error::UnsupportedScheme(self.label.clone()))?;
        let raw = generate(password)?;
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
    pub fn decode(&self, value: &str) -> Option<Vec<u8>> {
        let raw = match self.encoding {
            Encoding::None => value.as_bytes().to_vec(),
            Encoding::Hex if self.explicit => decode_hex(value)?,
            // Without a suffix Dovecot guesses: hex when the length fits the raw length, else base64.
            Encoding::Hex => match self.def.raw_len {
                Some(len) if value.len() == 2 * len => {
                    decode_hex(value).or_else(|| decode_base64(value))?
                }
                _ => decode_base64(value)?,
            },
            Encoding::Base64 => decode_base64(value)?,
        };
        self.def
            .raw_len
            .is_none_or(|len| raw.len() == len)
            .then_some(raw)
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
        let (name, value) = split(stored);
        Ok(Stored {
            scheme: Scheme::parse(name)?,
            value,
        })
    }

    pub fn is_slow(&self) -> bool {
        self.scheme.is_slow()
    }

    /// Whether `password` matches; malformed values are a mismatch, as in Dovecot.
    pub fn verify(&self, password: &[u8]) -> Result<bool> {
        match self.scheme.decode(self.value) {
            Some(raw) => (self.scheme.def.verify)(&raw, password),
            None => Ok(false),
        }
    }
}

/// `(scheme name as written, value)`: the name between the braces, else the one Dovecot's
/// `password_get_scheme` implies (MD5-CRYPT for a bare `$1$` value, CRYPT for any other).
pub fn split(stored: &str) -> (&str, &str) {
    if stored.starts_with("$1$") {
        return ("MD5-CRYPT", stored);
    }
    stored
        .strip_prefix('{')
        .and_then(|rest| rest.split_once('}'))
        .unwrap_or(("CRYPT", stored))
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
