//! The single mapping from core errors to Python exceptions.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::PyErr;
use sas_core::SasError;

/// Core errors are bad argument values: `ValueError`, message prefixed by the argument.
pub fn to_py(err: SasError) -> PyErr {
    PyValueError::new_err(err.to_string())
}

/// An argument of the wrong type or dtype.
pub fn type_error(arg: &str, want: &str) -> PyErr {
    PyTypeError::new_err(format!("{arg}: must be {want}"))
}

/// A numpy array that is not C-contiguous (the Python layer normally makes it so).
pub fn not_contiguous(arg: &str) -> PyErr {
    PyValueError::new_err(format!("{arg}: must be a C-contiguous (row-major) array"))
}
