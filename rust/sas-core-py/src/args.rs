//! What the bindings accept, parsed once at the boundary: the dtypes of the array
//! arguments (one `FromPyObject` enum each, dispatched to the core's generic functions
//! by the `dispatch!` macro) and the option strings (parsed into the core's enums,
//! typed as `Literal[...]` in `_core.pyi`).

use numpy::{PyReadonlyArray1, PyReadonlyArrayDyn, PyReadwriteArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyString;
use sas_core::{Granularity, Mode, NonFinite, Result, SelectOptions, SelectionRule};

use crate::error::{not_contiguous, to_py, type_error};

/// Token ids: a numpy array of int32 or int64 (1-D packed or 2-D padded).
#[derive(FromPyObject)]
pub enum Ids<'py> {
    I64(PyReadonlyArrayDyn<'py, i64>),
    I32(PyReadonlyArrayDyn<'py, i32>),
}

/// Log-probs: a numpy array of float32 or float64 (1-D packed or 2-D padded).
#[derive(FromPyObject)]
pub enum LogProbs<'py> {
    F32(PyReadonlyArrayDyn<'py, f32>),
    F64(PyReadonlyArrayDyn<'py, f64>),
}

/// An output array of advantages: a writable numpy array of float32 or float64.
#[derive(FromPyObject)]
pub enum FloatsOut<'py> {
    F32(PyReadwriteArrayDyn<'py, f32>),
    F64(PyReadwriteArrayDyn<'py, f64>),
}

/// Extracts argument `name` as `T`, or a `TypeError` that names it.
pub fn extract<'py, T>(obj: &Bound<'py, PyAny>, name: &str, want: &str) -> PyResult<T>
where
    T: for<'a> FromPyObject<'a, 'py>,
{
    obj.extract::<T>().map_err(|_| type_error(name, want))
}

/// The C-contiguous data of an array argument.
pub fn data<'a, T: numpy::Element>(
    a: &'a PyReadonlyArrayDyn<'_, T>,
    name: &str,
    ndim: usize,
) -> PyResult<&'a [T]> {
    if a.ndim() != ndim {
        return Err(type_error(name, &format!("a {ndim}-D numpy array")));
    }
    // rust-numpy's `as_slice` also accepts Fortran order, whose memory order is not the
    // row-major order read here: only C order is borrowed (callers copy the rest).
    if !a.is_c_contiguous() {
        return Err(not_contiguous(name));
    }
    a.as_slice().map_err(|_| not_contiguous(name))
}

/// 1-D data of a typed argument (cu_seqlens, correct, ...).
pub fn slice<'a, T: numpy::Element>(
    a: &'a PyReadonlyArray1<'_, T>,
    name: &str,
) -> PyResult<&'a [T]> {
    a.as_slice().map_err(|_| not_contiguous(name))
}

/// 1-D data of an optional argument (`action_mask`, `spare`, ...).
pub fn opt<'a, T: numpy::Element>(
    a: &'a Option<PyReadonlyArray1<'_, T>>,
    name: &str,
) -> PyResult<Option<&'a [T]>> {
    a.as_ref().map(|a| slice(a, name)).transpose()
}

/// Runs `$body` with `$i` bound to the data of the token-id argument (named `$name`)
/// and, in the two-array form, `$l` to the log-probs' data: one arm per dtype (pair),
/// since the core functions are generic over both.
macro_rules! dispatch {
    ($ids:expr, $name:literal, $lps:expr, $ndim:expr, |$i:ident, $l:ident| $body:expr) => {
        $crate::args::dispatch!($ids, $name, $ndim, |$i| {
            $crate::args::dispatch!(@logprobs $lps, $ndim, |$l| $body)
        })
    };
    ($ids:expr, $name:literal, $ndim:expr, |$i:ident| $body:expr) => {
        match $ids {
            $crate::args::Ids::I64(a) => {
                let $i = $crate::args::data(a, $name, $ndim)?;
                $body
            }
            $crate::args::Ids::I32(a) => {
                let $i = $crate::args::data(a, $name, $ndim)?;
                $body
            }
        }
    };
    (@logprobs $lps:expr, $ndim:expr, |$l:ident| $body:expr) => {
        match $lps {
            $crate::args::LogProbs::F32(b) => {
                let $l = $crate::args::data(b, "logprobs", $ndim)?;
                $body
            }
            $crate::args::LogProbs::F64(b) => {
                let $l = $crate::args::data(b, "logprobs", $ndim)?;
                $body
            }
        }
    };
}
pub(crate) use dispatch;

/// The selection options, read from the attributes of one Python object (a
/// `sas_core.options.SASOptions`, checked there once): `ratio`, `mode`, `selection`,
/// `granularity`, `seed`, `nonfinite`; the option strings parsed into the core's enums
/// (an unknown value is the core's `ValueError` naming the option); errors name the
/// attribute.
pub struct OptionsArg(pub SelectOptions);

impl<'a, 'py> FromPyObject<'a, 'py> for OptionsArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let get = |name: &str| {
            let no = format!("a sas_core.SASOptions (no attribute `{name}`)");
            obj.getattr(name).map_err(|_| type_error("options", &no))
        };
        fn text<T>(v: Bound<'_, PyAny>, name: &str, parse: fn(&str) -> Result<T>) -> PyResult<T> {
            let s = v
                .cast::<PyString>()
                .map_err(|_| type_error(name, "a string"))?;
            parse(&s.to_cow()?).map_err(to_py)
        }
        Ok(Self(SelectOptions {
            ratio: extract(&get("ratio")?, "ratio", "a float")?,
            mode: text(get("mode")?, "mode", Mode::parse)?,
            selection: text(get("selection")?, "selection", SelectionRule::parse)?,
            granularity: text(get("granularity")?, "granularity", Granularity::parse)?,
            seed: extract(&get("seed")?, "seed", "an integer in [0, 2**64)")?,
            nonfinite: text(get("nonfinite")?, "nonfinite", NonFinite::parse)?,
        }))
    }
}
