//! The one error type of the core. Messages never carry client data or secrets.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Malformed SASL client data (maps to `SaslError`).
    Sasl(&'static str),
    /// The client sent `*` (maps to `SaslCancelled`).
    Cancelled,
    /// An unknown password scheme (maps to `UnsupportedScheme`); carries the scheme name only.
    UnsupportedScheme(String),
    /// A caller error on a non-SASL argument (maps to `ValueError`).
    InvalidArgument(&'static str),
    /// The operating system's random source failed (maps to `OSError`).
    Random,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sasl(reason) | Error::InvalidArgument(reason) => f.write_str(reason),
            Error::Cancelled => f.write_str("authentication cancelled by the client"),
            Error::UnsupportedScheme(name) => write!(f, "unsupported password scheme: {name}"),
            Error::Random => f.write_str("the operating system's random source failed"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
