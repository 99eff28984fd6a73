//! `seikyou_auth._core`: the Rust core. This file only converts between Python and the pure
//! Rust modules below; all logic (and its unit tests) lives in those modules.

pub mod apop;
pub mod cram;
pub mod ct;
pub mod error;
mod fastcall;
pub mod sasl;
pub mod schemes;

#[cfg(test)]
mod properties;

use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use pyo3::Borrowed;

pyo3::import_exception!(seikyou_auth.errors, SaslError);
pyo3::import_exception!(seikyou_auth.errors, SaslCancelled);
pyo3::import_exception!(seikyou_auth.errors, UnsupportedScheme);

impl From<error::Error> for PyErr {
    fn from(err: error::Error) -> PyErr {
        let message = err.to_string();
        match err {
            error::Error::Sasl(_) => SaslError::new_err(message),
            error::Error::Cancelled => SaslCancelled::new_err(message),
            error::Error::UnsupportedScheme(_) => UnsupportedScheme::new_err(message),
            error::Error::InvalidArgument(_) => PyValueError::new_err(message),
            error::Error::Random => PyOSError::new_err(message),
        }
    }
}

fn ascii(hex: &[u8]) -> &str {
    std::str::from_utf8(hex).expect("hex digits are ASCII")
}

/// A client's hex digest as octets. A `str` holding a lone surrogate has no UTF-8 form, and is
/// not hex either: it becomes the empty digest, which matches nothing (as in the twin).
fn digest_octets<'a>(digest: &'a Bound<'_, PyString>) -> &'a [u8] {
    digest.to_str().map_or(&[], str::as_bytes)
}

/// The octets of a `bytes` or `str` argument, borrowed from the object.
fn octets<'a>(value: &'a Bound<'_, PyAny>, name: &str) -> PyResult<&'a [u8]> {
    // The exact types first: a pointer comparison each, where the subclass checks below are
    // calls into the interpreter under the limited API.
    if let Ok(bytes) = value.cast_exact::<PyBytes>() {
        return Ok(bytes.as_bytes());
    }
    if let Ok(text) = value.cast_exact::<PyString>() {
        return Ok(text.to_str()?.as_bytes());
    }
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return Ok(bytes.as_bytes());
    }
    match value.cast::<PyString>() {
        Ok(text) => Ok(text.to_str()?.as_bytes()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{name} must be bytes or str, not {}",
            value.get_type().name()?
        ))),
    }
}

/// A scheme name argument. A `str` with a lone surrogate is no known name: it is kept, lossily,
/// to be refused as `UnsupportedScheme` as the twin does, not as PyO3's `UnicodeEncodeError`.
struct SchemeName(String);

impl FromPyObject<'_, '_> for SchemeName {
    type Error = PyErr;

    fn extract(object: Borrowed<'_, '_, PyAny>) -> PyResult<Self> {
        Ok(SchemeName(
            object.cast::<PyString>()?.to_string_lossy().into_owned(),
        ))
    }
}

#[pyo3::pymodule]
mod _core {
    use pyo3::prelude::*;
    use pyo3::types::{PyBytes, PyString, PyTuple};

    use super::{apop, ascii, cram, digest_octets, error, sasl, schemes, SchemeName};

    #[pymodule_export]
    const LOGIN_CHALLENGES: (&[u8], &[u8]) = sasl::LOGIN_CHALLENGES;

    #[pymodule_export]
    const MAX_RESPONSE_OCTETS: usize = sasl::MAX_RESPONSE_LEN;

    /// `SCHEMES`: the names `hash_password` generates, read from the scheme table.
    #[pymodule_init]
    fn init(module: &Bound<'_, PyModule>) -> PyResult<()> {
        let names: Vec<&str> = schemes::generated_names().collect();
        let names = PyTuple::new(module.py(), names)?;
        module.add("SCHEMES", names)?;
        super::add_fast_functions(module)
    }

    #[pyfunction]
    fn decode_response<'py>(py: Python<'py>, line: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let len = sasl::decoded_len(line);
        PyBytes::new_with(py, len, |out| {
            match sasl::decode_response(line, out)?.len() {
                decoded if decoded == len => Ok(()),
                _ => Err(error::Error::Sasl("client response is not valid base64").into()),
            }
        })
    }

    #[pyfunction]
    fn encode_challenge<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        PyBytes::new_with(py, sasl::encoded_len(data.len()), |out| {
            sasl::encode_challenge(data, out);
            Ok(())
        })
    }

    #[pyfunction]
    fn parse_login_username<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyString>> {
        Ok(PyString::new(py, sasl::parse_login_username(data)?))
    }

    #[pyfunction]
    fn parse_login_password<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, sasl::parse_login_password(data)?))
    }

    #[pyfunction]
    fn parse_cram_md5_response<'py>(
        py: Python<'py>,
        message: &[u8],
    ) -> PyResult<(Bound<'py, PyString>, Bound<'py, PyString>)> {
        let (username, digest) = sasl::parse_cram_md5_response(message)?;
        Ok((
            PyString::new(py, username),
            PyString::new(py, ascii(&digest)),
        ))
    }

    #[pyfunction]
    fn cram_md5_challenge<'py>(
        py: Python<'py>,
        hostname: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let hostname = hostname.to_str().map_err(|_| cram::NOT_A_HOSTNAME)?;
        Ok(PyBytes::new(py, &cram::challenge(hostname)?))
    }

    #[pyfunction]
    fn cram_md5_digest<'py>(
        py: Python<'py>,
        secret: &[u8],
        challenge: &[u8],
    ) -> Bound<'py, PyString> {
        PyString::new(py, ascii(&cram::digest_hex(secret, challenge)))
    }

    #[pyfunction]
    fn cram_md5_response<'py>(
        py: Python<'py>,
        username: &str,
        secret: &[u8],
        challenge: &[u8],
    ) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &cram::response(username, secret, challenge))
    }

    #[pyfunction]
    fn cram_md5_prepare<'py>(py: Python<'py>, secret: &[u8]) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &cram::prepare(secret))
    }

    #[pyfunction]
    fn cram_md5_verify(secret: &[u8], challenge: &[u8], digest: &Bound<'_, PyString>) -> bool {
        cram::verify(secret, challenge, digest_octets(digest))
    }

    #[pyfunction]
    fn cram_md5_verify_prepared(
        state: &[u8],
        challenge: &[u8],
        digest: &Bound<'_, PyString>,
    ) -> PyResult<bool> {
        Ok(cram::verify_prepared(
            state,
            challenge,
            digest_octets(digest),
        )?)
    }

    #[pyfunction]
    fn apop_timestamp<'py>(
        py: Python<'py>,
        hostname: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let hostname = hostname.to_str().map_err(|_| cram::NOT_A_HOSTNAME)?;
        Ok(PyBytes::new(py, &apop::timestamp(hostname)?))
    }

    #[pyfunction]
    fn apop_digest<'py>(py: Python<'py>, timestamp: &[u8], secret: &[u8]) -> Bound<'py, PyString> {
        PyString::new(py, ascii(&apop::digest_hex(timestamp, secret)))
    }

    #[pyfunction]
    fn apop_verify(timestamp: &[u8], secret: &[u8], digest: &Bound<'_, PyString>) -> bool {
        apop::verify(timestamp, secret, digest_octets(digest))
    }

    /// Slow schemes hash with the GIL released so other threads (and the event loop) run.
    #[pyfunction]
    #[pyo3(
        signature = (password, scheme = SchemeName("SHA512-CRYPT".to_owned())),
        text_signature = "(password, scheme='SHA512-CRYPT')"
    )]
    fn hash_password(py: Python<'_>, password: &[u8], scheme: SchemeName) -> PyResult<String> {
        let scheme = schemes::Scheme::parse(&scheme.0)?;
        if scheme.is_slow() {
            Ok(py.detach(|| scheme.hash(password))?)
        } else {
            Ok(scheme.hash(password)?)
        }
    }

    #[pyfunction]
    fn verify_password(
        py: Python<'_>,
        stored: &Bound<'_, PyString>,
        password: &[u8],
    ) -> PyResult<bool> {
        let stored = match stored.to_str() {
            Ok(stored) => stored,
            Err(not_utf8) => {
                // A lone surrogate: the scheme is judged first, as the twin does, so an
                // unknown one is named; a known one with such a value is the encoding error.
                schemes::Stored::parse(&stored.to_string_lossy())?;
                return Err(not_utf8);
            }
        };
        let parsed = schemes::Stored::parse(stored)?;
        if parsed.is_slow() {
            Ok(py.detach(|| parsed.verify(password))?)
        } else {
            Ok(parsed.verify(password)?)
        }
    }

    /// `(name, label, encoding, raw length or 0, slow, cost rank, can generate)` of a scheme
    /// name with its optional encoding suffix: its row of the scheme table.
    #[pyfunction]
    fn scheme_info(
        name: SchemeName,
    ) -> PyResult<(&'static str, String, &'static str, usize, bool, u8, bool)> {
        let scheme = schemes::Scheme::parse(&name.0)?;
        let def = scheme.def;
        Ok((
            def.name,
            scheme.label,
            scheme.encoding.as_str(),
            def.raw_len.unwrap_or(0),
            def.slow,
            def.cost,
            def.generate.is_some(),
        ))
    }

    /// `(scheme name as written, decoded value)`; the value is `None` when the scheme is
    /// unknown or the stored text cannot be decoded (or has no UTF-8 form). Never raises for
    /// what the text holds: callers judge the name with `scheme_info`.
    #[pyfunction]
    fn parse_stored<'py>(
        py: Python<'py>,
        stored: &Bound<'py, PyString>,
    ) -> (Bound<'py, PyString>, Option<Bound<'py, PyBytes>>) {
        let Ok(text) = stored.to_str() else {
            let lossy = stored.to_string_lossy();
            return (PyString::new(py, schemes::split(&lossy).0), None);
        };
        let (name, value) = schemes::split(text);
        let raw = schemes::Scheme::parse(name)
            .ok()
            .and_then(|scheme| scheme.decode(value));
        (
            PyString::new(py, name),
            raw.map(|raw| PyBytes::new(py, &raw)),
        )
    }
}

/// The functions on the servers' hot paths (constant-time comparison, PLAIN), each a fast
/// builtin (rust/fastcall.rs) in front of the ordinary `#[pyfunction]` below, which serves every
/// call the fast body does not (keywords, other types, refused input) and defines the behaviour.
fn add_fast_functions(module: &Bound<'_, PyModule>) -> PyResult<()> {
    fastcall::add(
        module,
        c"constant_time_eq",
        fast::constant_time_eq,
        wrap_pyfunction!(checked::constant_time_eq, module)?,
        &fast::CONSTANT_TIME_EQ,
    )?;
    fastcall::add(
        module,
        c"parse_plain",
        fast::parse_plain,
        wrap_pyfunction!(checked::parse_plain, module)?,
        &fast::PARSE_PLAIN,
    )?;
    fastcall::add(
        module,
        c"decode_plain",
        fast::decode_plain,
        wrap_pyfunction!(checked::decode_plain, module)?,
        &fast::DECODE_PLAIN,
    )
}

/// The defining `#[pyfunction]`s of the fast functions (not added to the module themselves).
mod checked {
    use pyo3::prelude::*;
    use pyo3::types::{PyBytes, PyString};

    use super::{ct, octets, sasl};

    /// `(authzid, authcid, passwd)` as Python objects.
    type PlainFields<'py> = (
        Bound<'py, PyString>,
        Bound<'py, PyString>,
        Bound<'py, PyBytes>,
    );

    fn plain_fields<'py>(py: Python<'py>, message: &[u8]) -> PyResult<PlainFields<'py>> {
        let (authzid, authcid, passwd) = sasl::parse_plain(message)?;
        Ok((
            PyString::new(py, authzid),
            PyString::new(py, authcid),
            PyBytes::new(py, passwd),
        ))
    }

    /// `bytes` or `str` on either side (a `str` compared as its UTF-8 form, which CPython
    /// keeps with the string, so neither argument is copied).
    #[pyfunction]
    pub fn constant_time_eq(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(ct::constant_time_eq(octets(a, "a")?, octets(b, "b")?))
    }

    #[pyfunction]
    pub fn parse_plain<'py>(py: Python<'py>, message: &[u8]) -> PyResult<PlainFields<'py>> {
        plain_fields(py, message)
    }

    /// `parse_plain(decode_response(line))` in one call: the servers' PLAIN path.
    #[pyfunction]
    pub fn decode_plain<'py>(py: Python<'py>, line: &[u8]) -> PyResult<PlainFields<'py>> {
        let mut on_stack = [0u8; super::fast::PLAIN_ON_STACK];
        let mut on_heap = Vec::new();
        let room = sasl::decoded_len(line).min(sasl::MAX_DECODED_LEN);
        let out = if room <= on_stack.len() {
            &mut on_stack[..]
        } else {
            on_heap.resize(room, 0);
            &mut on_heap[..]
        };
        plain_fields(py, sasl::decode_response(line, out)?)
    }
}

/// The fast bodies: the common call only, `None` for anything else (the fallback answers it).
mod fast {
    use pyo3::ffi;
    use pyo3::prelude::*;
    use pyo3::types::{PyBool, PyBytes, PyString};

    use super::fastcall::{exact_bytes, exact_octets, fast_function};
    use super::{ct, sasl};

    /// Room for any valid decoded PLAIN message (three fields of at most 255 octets and two
    /// NULs) on the stack: zeroing room for the longest response on every call would cost more
    /// than the call.
    pub const PLAIN_ON_STACK: usize = 1024;

    type Arguments<'a, 'py, const N: usize> = [Borrowed<'a, 'py, PyAny>; N];

    fast_function!(constant_time_eq, CONSTANT_TIME_EQ, 2, compare);
    fast_function!(parse_plain, PARSE_PLAIN, 1, split);
    fast_function!(decode_plain, DECODE_PLAIN, 1, decode_and_split);

    fn compare<'py>(py: Python<'py>, [a, b]: Arguments<'_, 'py, 2>) -> Option<Bound<'py, PyAny>> {
        let equal = ct::constant_time_eq(exact_octets(a)?, exact_octets(b)?);
        Some(PyBool::new(py, equal).to_owned().into_any())
    }

    fn split<'py>(py: Python<'py>, [message]: Arguments<'_, 'py, 1>) -> Option<Bound<'py, PyAny>> {
        let message = exact_bytes(message)?;
        plain_fields(py, sasl::split_plain(message).ok()?)
    }

    fn decode_and_split<'py>(
        py: Python<'py>,
        [line]: Arguments<'_, 'py, 1>,
    ) -> Option<Bound<'py, PyAny>> {
        let line = exact_bytes(line)?;
        let mut out = [0u8; PLAIN_ON_STACK];
        let room = out.get_mut(..sasl::decoded_len(line))?;
        let message = sasl::decode_response(line, room).ok()?;
        plain_fields(py, sasl::split_plain(message).ok()?)
    }

    /// The result tuple of a split PLAIN message; `None` when an identity is not UTF-8.
    #[inline(always)]
    fn plain_fields<'py>(
        py: Python<'py>,
        (authzid, authcid, passwd): (&[u8], &[u8], &[u8]),
    ) -> Option<Bound<'py, PyAny>> {
        let authzid = utf8_text(py, authzid)?;
        let authcid = utf8_text(py, authcid)?;
        let fields = (authzid, authcid, PyBytes::new(py, passwd));
        Some(fields.into_pyobject(py).ok()?.into_any())
    }

    /// `str` of UTF-8 `octets`, validated by CPython as it builds the string (the Rust check
    /// would be a second pass); `None`, with the error cleared, when they are not UTF-8.
    #[inline(always)]
    fn utf8_text<'py>(py: Python<'py>, octets: &[u8]) -> Option<Bound<'py, PyString>> {
        // A field is at most 255 octets (split_plain), so the length fits.
        let len = octets.len() as ffi::Py_ssize_t;
        // SAFETY: `octets` is valid for `len` bytes; the result is a new reference or null.
        unsafe {
            let text = ffi::PyUnicode_FromStringAndSize(octets.as_ptr().cast(), len);
            match Bound::from_owned_ptr_or_opt(py, text) {
                Some(text) => Some(text.cast_into_unchecked()),
                None => {
                    ffi::PyErr_Clear();
                    None
                }
            }
        }
    }
}
