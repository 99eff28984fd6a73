//! The servers' hottest calls, entered without PyO3's generic call machinery.
//!
//! A `#[pyfunction]` call goes through PyO3's trampoline (attach count, deferred reference
//! counts, panic trap) and its keyword-aware argument parser: together about as long as all of
//! `hmac.compare_digest`, which made the Rust row of a 32-octet comparison slower than the C
//! builtin. The functions here are registered as `METH_FASTCALL | METH_KEYWORDS` builtins whose
//! body only serves the common call: all arguments positional, of the exact types, and a result
//! that needs no error. Every other call (keywords, subclasses, wrong types or counts, any
//! input the function refuses) is handed unchanged to the ordinary `#[pyfunction]` of the same
//! name, so signatures, error types and messages stay PyO3's own; a fast body only ever answers
//! a call its fallback would answer with an equal result (tests/core/test_fast_calls.py and the
//! differential tests hold both backends to that).

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use pyo3::exceptions::{PySystemError, PyTypeError};
use pyo3::ffi;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyCFunction, PyDict, PyString, PyTuple};

/// The ordinary PyO3 function a fast function hands its other calls to; set at module init.
pub type Fallback = PyOnceLock<Py<PyCFunction>>;

/// Signature of a fast function's body: the positional arguments, and the result when this
/// call is one the body serves (`None`: the fallback handles it).
pub type FastBody<const N: usize> =
    for<'a, 'py> fn(Python<'py>, [Borrowed<'a, 'py, PyAny>; N]) -> Option<Bound<'py, PyAny>>;

/// Defines the `METH_FASTCALL | METH_KEYWORDS` entry `$name` running `$body` (a [`FastBody`]
/// of `$n` arguments), and the static `$fallback` it hands other calls to (set by [`add`]).
macro_rules! fast_function {
    ($name:ident, $fallback:ident, $n:literal, $body:path) => {
        pub static $fallback: $crate::fastcall::Fallback = ::pyo3::sync::PyOnceLock::new();

        /// # Safety
        ///
        /// Called by CPython only, as a `METH_FASTCALL | METH_KEYWORDS` builtin.
        pub unsafe extern "C" fn $name(
            _module: *mut ::pyo3::ffi::PyObject,
            args: *const *mut ::pyo3::ffi::PyObject,
            nargs: ::pyo3::ffi::Py_ssize_t,
            kwnames: *mut ::pyo3::ffi::PyObject,
        ) -> *mut ::pyo3::ffi::PyObject {
            // SAFETY: the caller's contract is that of `enter`.
            unsafe { $crate::fastcall::enter::<$n>(&$fallback, args, nargs, kwnames, $body) }
        }
    };
}

pub(crate) use fast_function;

/// Runs `body` for a call of exactly `N` positional arguments, else (or when it declines) the
/// fallback. This is the whole of the entry: no attach-count bookkeeping is needed on the fast
/// path because the body neither creates nor drops a `Py<T>` nor calls anything that could run
/// Python code; the fallback attaches as any PyO3 code does. A panic becomes `PanicException`,
/// as in PyO3's own trampoline.
///
/// # Safety
///
/// The arguments must be those CPython passes to a `METH_FASTCALL | METH_KEYWORDS` function:
/// the thread is attached, `args` holds `nargs` positional arguments followed by one per name in
/// `kwnames` (a tuple of `str`, or null).
#[inline(always)]
pub unsafe fn enter<const N: usize>(
    fallback: &'static Fallback,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
    body: FastBody<N>,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls builtins with the thread attached.
    let py = unsafe { Python::assume_attached() };
    let call = AssertUnwindSafe(|| {
        if kwnames.is_null() && nargs == N as ffi::Py_ssize_t {
            // SAFETY: `args` holds `nargs` == N valid objects, borrowed for the call.
            let arguments =
                std::array::from_fn(|i| unsafe { Borrowed::from_ptr_or_opt(py, *args.add(i)) });
            if let Some(result) = transpose(arguments).and_then(|arguments| body(py, arguments)) {
                return result.into_ptr();
            }
        }
        // SAFETY: as for this function.
        unsafe { call_fallback(fallback, args, nargs, kwnames) }
    });
    catch_unwind(call).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("panic in seikyou_auth._core");
        PanicException::new_err(message.to_owned()).restore(py);
        ptr::null_mut()
    })
}

fn transpose<T, const N: usize>(items: [Option<T>; N]) -> Option<[T; N]> {
    if items.iter().any(Option::is_none) {
        return None;
    }
    Some(items.map(|item| item.expect("checked above")))
}

/// The call as it came, made on the fallback: `fallback(*positional, **keywords)`.
///
/// # Safety
///
/// As for [`enter`].
#[cold]
#[inline(never)]
unsafe fn call_fallback(
    fallback: &'static Fallback,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    Python::attach(|py| {
        let result = (|| -> PyResult<Bound<'_, PyAny>> {
            let function = fallback
                .get(py)
                .ok_or_else(|| PySystemError::new_err("seikyou_auth._core is not initialised"))?
                .bind(py);
            let nargs = usize::try_from(nargs)?;
            // SAFETY: `args` holds `nargs` positional arguments and then one per keyword name.
            let argument = |i: usize| unsafe { Borrowed::from_ptr(py, *args.add(i)) };
            let positional = PyTuple::new(py, (0..nargs).map(argument))?;
            // SAFETY: `kwnames` is null or a tuple.
            let keywords = match unsafe { Borrowed::from_ptr_or_opt(py, kwnames) } {
                None => None,
                Some(names) => {
                    let names = names.cast::<PyTuple>()?;
                    let keywords = PyDict::new(py);
                    for (i, name) in names.iter().enumerate() {
                        keywords.set_item(name, argument(nargs + i))?;
                    }
                    Some(keywords)
                }
            };
            function.call(positional, keywords.as_ref())
        })();
        match result {
            Ok(value) => value.into_ptr(),
            Err(err) => {
                err.restore(py);
                ptr::null_mut()
            }
        }
    })
}

/// Adds to `module` the builtin `name` that runs `fast` and hands other calls to `checked` (the
/// `#[pyfunction]` of that name, not itself added), with `checked`'s signature and docstring.
pub fn add(
    module: &Bound<'_, PyModule>,
    name: &'static CStr,
    fast: ffi::PyCFunctionFastWithKeywords,
    checked: Bound<'_, PyCFunction>,
    fallback: &'static Fallback,
) -> PyResult<()> {
    let py = module.py();
    let text_name = name
        .to_str()
        .map_err(|_| PyTypeError::new_err("a function name is ASCII"))?;
    if checked.getattr("__name__")?.cast::<PyString>()?.to_str()? != text_name {
        return Err(PyTypeError::new_err(format!(
            "the fallback of {text_name} has another name"
        )));
    }
    // "name(signature)\n--\n\ndoc", the layout from which CPython derives `__text_signature__`.
    let signature: String = checked.getattr("__text_signature__")?.extract()?;
    let doc: Option<String> = checked.getattr("__doc__")?.extract()?;
    let doc = CString::new(format!(
        "{text_name}{signature}\n--\n\n{}",
        doc.unwrap_or_default()
    ))?;
    // The definition must outlive the function object; modules are initialised once per
    // process, so this is one small leak per fast function.
    let def = Box::leak(Box::new(ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: ffi::PyMethodDefPointer {
            PyCFunctionFastWithKeywords: fast,
        },
        ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
        ml_doc: Box::leak(doc.into_boxed_c_str()).as_ptr() as *const c_char,
    }));
    let module_name = module.name()?;
    // SAFETY: `def` lives for the rest of the process; `module` and `module_name` are valid.
    let function = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyCFunction_NewEx(def, module.as_ptr(), module_name.as_ptr()),
        )?
    };
    let _ = fallback.set(py, checked.unbind());
    module.add(text_name, function)
}

/// The octets of an exact `bytes`; `None` for anything else.
///
/// The type is tested with `is_exact_instance_of`, not `cast_exact`: a failed cast builds an
/// error holding a new reference to the type, two interpreter calls on the common `str` path.
#[inline(always)]
pub fn exact_bytes<'a>(value: Borrowed<'a, '_, PyAny>) -> Option<&'a [u8]> {
    if !value.is_exact_instance_of::<PyBytes>() {
        return None;
    }
    let mut data = ptr::null_mut();
    let mut len: ffi::Py_ssize_t = 0;
    // SAFETY: `value` is a `bytes` object, whose buffer is immutable and lives as long as the
    // object, which the caller borrows for `'a` (as `PyBytes::as_bytes` does). The call cannot
    // fail for a `bytes` object.
    unsafe {
        ffi::PyBytes_AsStringAndSize(value.as_ptr(), &mut data, &mut len);
        Some(std::slice::from_raw_parts(data.cast::<u8>(), len as usize))
    }
}

/// The octets of an exact `bytes` or `str` (its UTF-8 form, kept by CPython with the string);
/// `None` for anything else, including a `str` without a UTF-8 form (left to the fallback).
#[inline(always)]
pub fn exact_octets<'a>(value: Borrowed<'a, '_, PyAny>) -> Option<&'a [u8]> {
    if !value.is_exact_instance_of::<PyString>() {
        return exact_bytes(value);
    }
    let mut len: ffi::Py_ssize_t = 0;
    // SAFETY: `value` is a `str`; the UTF-8 buffer CPython returns lives as long as the string,
    // which the caller borrows for `'a`. On failure the error is cleared: the fallback raises it.
    unsafe {
        let data = ffi::PyUnicode_AsUTF8AndSize(value.as_ptr(), &mut len);
        if data.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        Some(std::slice::from_raw_parts(data.cast::<u8>(), len as usize))
    }
}
