//! What the bindings accept, parsed once at the boundary: the dtypes of the array
//! arguments (one `FromPyObject` enum each, dispatched to the core's generic functions
//! by the `dispatch!` macro) and the option strings (parsed into the core's enums,
//! typed as `Literal[...]` in `_core.pyi`).

use numpy::{PyReadonlyArray1, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyString;
use sas_core::{Granularity, Mode, SelectOptions, SelectionRule};

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

/// The data of token-id argument `name` (its dtype's variant), for calls without
/// log-probs.
macro_rules! with_ids {
    ($ids:expr, $name:literal, $ndim:expr, |$i:ident| $body:expr) => {{
        use $crate::args::{data, Ids};
        match $ids {
            Ids::I64(a) => {
                let $i = data(a, $name, $ndim)?;
                $body
            }
            Ids::I32(a) => {
                let $i = data(a, $name, $ndim)?;
                $body
            }
        }
    }};
}
pub(crate) use with_ids;

/// The data of the log-probs argument (its dtype's variant), for calls without ids.
macro_rules! with_logprobs {
    ($lps:expr, $ndim:expr, |$l:ident| $body:expr) => {{
        use $crate::args::{data, LogProbs};
        match $lps {
            LogProbs::F32(a) => {
                let $l = data(a, "logprobs", $ndim)?;
                $body
            }
            LogProbs::F64(a) => {
                let $l = data(a, "logprobs", $ndim)?;
                $body
            }
        }
    }};
}
pub(crate) use with_logprobs;

/// Runs `$body` with `$i` bound to the ids' data and `$l` to the log-probs' data, for
/// each of the four dtype pairs (the core functions are generic over both).
macro_rules! dispatch {
    ($ids:expr, $ids_name:literal, $lps:expr, $ndim:expr, |$i:ident, $l:ident| $body:expr) => {{
        use $crate::args::{data, Ids, LogProbs};
        match ($ids, $lps) {
            (Ids::I64(a), LogProbs::F32(b)) => {
                let ($i, $l) = (data(a, $ids_name, $ndim)?, data(b, "logprobs", $ndim)?);
                $body
            }
            (Ids::I64(a), LogProbs::F64(b)) => {
                let ($i, $l) = (data(a, $ids_name, $ndim)?, data(b, "logprobs", $ndim)?);
                $body
            }
            (Ids::I32(a), LogProbs::F32(b)) => {
                let ($i, $l) = (data(a, $ids_name, $ndim)?, data(b, "logprobs", $ndim)?);
                $body
            }
            (Ids::I32(a), LogProbs::F64(b)) => {
                let ($i, $l) = (data(a, $ids_name, $ndim)?, data(b, "logprobs", $ndim)?);
                $body
            }
        }
    }};
}
pub(crate) use dispatch;

/// An option string parsed into the core's enum (`$parse` names the option in its
/// `ValueError`); a non-string is a `TypeError` naming it.
macro_rules! option_arg {
    ($name:ident, $core:ty, $arg:literal) => {
        pub struct $name(pub $core);

        impl<'a, 'py> FromPyObject<'a, 'py> for $name {
            type Error = PyErr;

            fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
                let s = obj
                    .cast::<PyString>()
                    .map_err(|_| type_error($arg, "a string"))?;
                <$core>::parse(&s.to_cow()?).map(Self).map_err(to_py)
            }
        }
    };
}

option_arg!(ModeArg, Mode, "mode");
option_arg!(SelectionRuleArg, SelectionRule, "selection");
option_arg!(GranularityArg, Granularity, "granularity");

/// The selection options, read from the attributes of one Python object (a
/// `sas_core.options.SASOptions`, checked there once): `ratio`, `mode`, `selection`,
/// `granularity`, `seed`; errors name the attribute.
pub struct OptionsArg(pub SelectOptions);

impl<'a, 'py> FromPyObject<'a, 'py> for OptionsArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let get = |name: &str| {
            obj.getattr(name).map_err(|_| {
                type_error(
                    "options",
                    &format!("a sas_core.SASOptions (no attribute `{name}`)"),
                )
            })
        };
        Ok(Self(SelectOptions {
            ratio: extract(&get("ratio")?, "ratio", "a float")?,
            mode: get("mode")?.extract::<ModeArg>()?.0,
            selection: get("selection")?.extract::<SelectionRuleArg>()?.0,
            granularity: get("granularity")?.extract::<GranularityArg>()?.0,
            seed: extract(&get("seed")?, "seed", "an integer in [0, 2**64)")?,
        }))
    }
}
