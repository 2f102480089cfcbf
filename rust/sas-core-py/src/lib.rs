//! `sas_core._core`: thin PyO3 bindings of the `sas-core` crate.
//!
//! Every function converts its arguments (`args.rs`: zero-copy for C-contiguous numpy
//! arrays of the supported dtypes, option strings parsed into the core's enums), calls
//! the core, where every check and rule lives, and maps its errors through `error.rs`.
//! The kernels over token arrays release the GIL while they compute; the GRPO helper
//! (one pass over B rewards), the text segmenter (it reads a Python string) and the
//! scalar helpers keep it.

mod args;
mod error;

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArrayDyn};
use numpy::{PyReadwriteArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use sas_core::masked::{sas_mask_packed_masked, segment_packed_masked};
use sas_core::parallel::{default_threads, env_threads};
use sas_core::{select, vocab::Delimiter, Advantages, Packed, Padded, Selected};
use sas_core::{StepTable, Written};

use args::{data, dispatch, extract, opt, slice, FloatsOut, Ids, LogProbs, OptionsArg};
use error::{not_contiguous, to_py, type_error};

const IDS: &str = "a numpy array of int32 or int64";
const LOGPROBS: &str = "a numpy array of float32 or float64";

type Array<'py, T> = Bound<'py, PyArray1<T>>;
/// (keep mask, units per rollout, selected units per rollout).
type MaskOut<'py> = (Array<'py, bool>, Array<'py, u32>, Array<'py, u32>);
/// (keep (B, A), units, selected units, zeroed and response tokens, non-finite flag).
type PaddedOut<'py> = (
    Bound<'py, PyArray2<bool>>,
    Array<'py, u32>,
    Array<'py, u32>,
    Array<'py, u32>,
    Array<'py, u32>,
    Array<'py, bool>,
);

fn threads(num_threads: Option<usize>) -> usize {
    // The wrappers reject more than MAX_THREADS; the pool caps at it as well.
    num_threads.unwrap_or_else(default_threads).max(1)
}

fn array<T: numpy::Element>(py: Python<'_>, v: Vec<T>) -> Array<'_, T> {
    PyArray1::from_vec(py, v)
}

fn mask_out(py: Python<'_>, sel: Selected) -> MaskOut<'_> {
    (
        array(py, sel.keep),
        array(py, sel.n_units),
        array(py, sel.n_selected),
    )
}

/// The C-order data of the output (rust-numpy's `as_slice_mut` also takes Fortran order).
fn out_slice<'a, F: numpy::Element>(
    o: &'a mut PyReadwriteArrayDyn<'_, F>,
) -> PyResult<&'a mut [F]> {
    if !o.is_c_contiguous() {
        return Err(not_contiguous("out"));
    }
    o.as_slice_mut().map_err(|_| not_contiguous("out"))
}

/// (B,) advantages are one per row, (B, A) one per token.
fn per_row_or_token<'a, F: numpy::Element>(
    a: &'a PyReadonlyArrayDyn<'_, F>,
) -> PyResult<Advantages<'a, F>> {
    Ok(match a.ndim() {
        1 => Advantages::PerRow(data(a, "advantages", 1)?),
        _ => Advantages::PerToken(data(a, "advantages", 2)?),
    })
}

/// What a padded call writes: `advantages` and `out` of one float dtype, or neither.
fn written<'a>(
    adv: &'a Option<LogProbs<'_>>,
    out: &'a mut Option<FloatsOut<'_>>,
) -> PyResult<Written<'a>> {
    Ok(match (adv, out) {
        (None, None) => Written::None,
        (Some(LogProbs::F32(a)), Some(FloatsOut::F32(o))) => {
            Written::F32(per_row_or_token(a)?, out_slice(o)?)
        }
        (Some(LogProbs::F64(a)), Some(FloatsOut::F64(o))) => {
            Written::F64(per_row_or_token(a)?, out_slice(o)?)
        }
        _ => {
            return Err(type_error(
                "advantages, out",
                "both given, of one float dtype",
            ))
        }
    })
}

/// Byte table of one tokenizer (see `_core.pyi`).
#[pyclass(frozen, name = "StepTable", module = "sas_core._core")]
struct PyStepTable {
    table: StepTable,
}

#[pymethods]
impl PyStepTable {
    #[new]
    #[pyo3(signature = (token_bytes, vocab_size = None, think_end_ids = Vec::new(),
        delimiter = "blank_line", boundary_ids = Vec::new()))]
    fn new(
        token_bytes: &Bound<'_, PyAny>,
        vocab_size: Option<usize>,
        think_end_ids: Vec<i64>,
        delimiter: &str,
        boundary_ids: Vec<i64>,
    ) -> PyResult<Self> {
        let delimiter = Delimiter::parse(delimiter).map_err(to_py)?;
        let not_bytes = |i| type_error(&format!("token_bytes[{i}]"), "bytes");
        let tokens = token_bytes
            .try_iter()?
            .enumerate()
            .map(|(i, t)| t?.cast_into::<PyBytes>().map_err(|_| not_bytes(i)))
            .collect::<PyResult<Vec<_>>>()?;
        let bytes: Vec<&[u8]> = tokens.iter().map(|t| t.as_bytes()).collect();
        let table = StepTable::from_bytes_with(
            &bytes,
            delimiter,
            &boundary_ids,
            vocab_size,
            &think_end_ids,
        );
        Ok(Self {
            table: table.map_err(to_py)?,
        })
    }

    #[getter]
    fn vocab_size(&self) -> usize {
        self.table.vocab_size()
    }

    /// Fused segmentation + selection from packed token ids (see `_core.pyi`).
    #[pyo3(signature = (token_ids, logprobs, cu_seqlens, correct, options,
        action_mask = None, num_threads = None))]
    #[allow(clippy::too_many_arguments)] // seven from Python, plus self and py
    fn sas_mask<'py>(
        &self,
        py: Python<'py>,
        token_ids: &Bound<'py, PyAny>,
        logprobs: &Bound<'py, PyAny>,
        cu_seqlens: PyReadonlyArray1<'py, i64>,
        correct: PyReadonlyArray1<'py, bool>,
        options: OptionsArg,
        action_mask: Option<PyReadonlyArray1<'py, bool>>,
        num_threads: Option<usize>,
    ) -> PyResult<MaskOut<'py>> {
        let ids: Ids = extract(token_ids, "token_ids", IDS)?;
        let lps: LogProbs = extract(logprobs, "logprobs", LOGPROBS)?;
        let cu = slice(&cu_seqlens, "cu_seqlens")?;
        let correct = slice(&correct, "correct")?;
        let mask = opt(&action_mask, "action_mask")?;
        let (table, opts, threads) = (&self.table, &options.0, threads(num_threads));
        let sel = dispatch!(&ids, "token_ids", &lps, 1, |i, l| py.detach(|| {
            let packed = Packed::new(cu)?;
            sas_mask_packed_masked(table, i, l, mask, &packed, correct, opts, threads)
        }));
        Ok(mask_out(py, sel.map_err(to_py)?))
    }

    /// Segmentation, selection and advantages of a padded (B, A) batch (see `_core.pyi`).
    #[pyo3(signature = (response_ids, logprobs, action_mask, correct, options,
        spare = None, advantages = None, out = None, num_threads = None))]
    #[allow(clippy::too_many_arguments)] // nine from Python, plus self and py
    fn sas_padded<'py>(
        &self,
        py: Python<'py>,
        response_ids: &Bound<'py, PyAny>,
        logprobs: &Bound<'py, PyAny>,
        action_mask: PyReadonlyArrayDyn<'py, bool>,
        correct: PyReadonlyArray1<'py, bool>,
        options: OptionsArg,
        spare: Option<PyReadonlyArray1<'py, bool>>,
        advantages: Option<LogProbs<'py>>,
        mut out: Option<FloatsOut<'py>>,
        num_threads: Option<usize>,
    ) -> PyResult<PaddedOut<'py>> {
        let ids: Ids = extract(response_ids, "response_ids", IDS)?;
        let lps: LogProbs = extract(logprobs, "logprobs", LOGPROBS)?;
        let mask = data(&action_mask, "action_mask", 2)?; // checks the 2 dimensions
        let (rows, width) = (action_mask.shape()[0], action_mask.shape()[1]);
        let correct = slice(&correct, "correct")?;
        let spare = opt(&spare, "spare")?;
        let written = written(&advantages, &mut out)?;
        let (table, opts, threads) = (&self.table, options.0, threads(num_threads));
        let out = dispatch!(&ids, "response_ids", &lps, 2, |ids, logprobs| {
            let batch = Padded {
                ids,
                logprobs,
                mask,
                width,
                correct,
            };
            py.detach(|| sas_core::sas_padded(table, &batch, &opts, threads, spare, written))
        })
        .map_err(to_py)?;
        Ok((
            array(py, out.keep).reshape([rows, width])?,
            array(py, out.n_units),
            array(py, out.n_selected),
            array(py, out.n_zeroed_tokens),
            array(py, out.n_tokens),
            array(py, out.nonfinite),
        ))
    }

    /// Step id per token of a packed batch (see `_core.pyi`).
    #[pyo3(signature = (token_ids, cu_seqlens, action_mask = None, num_threads = None))]
    fn segment<'py>(
        &self,
        py: Python<'py>,
        token_ids: &Bound<'py, PyAny>,
        cu_seqlens: PyReadonlyArray1<'py, i64>,
        action_mask: Option<PyReadonlyArray1<'py, bool>>,
        num_threads: Option<usize>,
    ) -> PyResult<(Array<'py, i32>, Array<'py, u32>)> {
        let ids: Ids = extract(token_ids, "token_ids", IDS)?;
        let cu = slice(&cu_seqlens, "cu_seqlens")?;
        let mask = opt(&action_mask, "action_mask")?;
        let (table, threads) = (&self.table, threads(num_threads));
        let (steps, counts) = dispatch!(&ids, "token_ids", 1, |i| py
            .detach(|| { segment_packed_masked(table, i, mask, &Packed::new(cu)?, threads) }))
        .map_err(to_py)?;
        Ok((array(py, steps), array(py, counts)))
    }
}

/// Keep mask plus per-rollout unit and selection counts (see `_core.pyi`).
#[pyfunction]
#[pyo3(signature = (step_ids, logprobs, cu_seqlens, correct, options, num_threads = None))]
fn keep_mask<'py>(
    py: Python<'py>,
    step_ids: PyReadonlyArray1<'py, i32>,
    logprobs: &Bound<'py, PyAny>,
    cu_seqlens: PyReadonlyArray1<'py, i64>,
    correct: PyReadonlyArray1<'py, bool>,
    options: OptionsArg,
    num_threads: Option<usize>,
) -> PyResult<MaskOut<'py>> {
    let lps: LogProbs = extract(logprobs, "logprobs", LOGPROBS)?;
    let step_ids = slice(&step_ids, "step_ids")?;
    let cu = slice(&cu_seqlens, "cu_seqlens")?;
    let correct = slice(&correct, "correct")?;
    let (opts, threads) = (options.0, threads(num_threads));
    let sel = dispatch!(@logprobs &lps, 1, |l| py.detach(|| {
        sas_core::keep_mask_packed(step_ids, l, &Packed::new(cu)?, correct, &opts, threads)
    }));
    Ok(mask_out(py, sel.map_err(to_py)?))
}

/// Confidence of every step of a packed batch, and each rollout's steps' boundaries
/// (see `_core.pyi`).
#[pyfunction]
#[pyo3(signature = (step_ids, logprobs, cu_seqlens, num_threads = None))]
fn step_confidences<'py>(
    py: Python<'py>,
    step_ids: PyReadonlyArray1<'py, i32>,
    logprobs: &Bound<'py, PyAny>,
    cu_seqlens: PyReadonlyArray1<'py, i64>,
    num_threads: Option<usize>,
) -> PyResult<(Array<'py, f64>, Array<'py, i64>)> {
    let lps: LogProbs = extract(logprobs, "logprobs", LOGPROBS)?;
    let step_ids = slice(&step_ids, "step_ids")?;
    let cu = slice(&cu_seqlens, "cu_seqlens")?;
    let threads = threads(num_threads);
    let (values, cu_steps) = dispatch!(@logprobs &lps, 1, |l| py.detach(|| {
        select::step_confidences_packed(step_ids, l, &Packed::new(cu)?, threads)
    }))
    .map_err(to_py)?;
    Ok((array(py, values), array(py, cu_steps)))
}

/// GRPO group-normalised advantages: consecutive groups of `group_size`, or the dense
/// group index of each rollout in `groups` (see `_core.pyi`).
#[pyfunction]
#[pyo3(signature = (rewards, eps, *, group_size = None, groups = None))]
fn grpo_advantages<'py>(
    py: Python<'py>,
    rewards: PyReadonlyArray1<'py, f64>,
    eps: f64,
    group_size: Option<usize>,
    groups: Option<PyReadonlyArray1<'py, u32>>,
) -> PyResult<Array<'py, f64>> {
    let r = slice(&rewards, "rewards")?;
    let adv = match (group_size, opt(&groups, "groups")?) {
        (Some(size), None) => sas_core::grpo_advantages(r, size, eps),
        (None, Some(g)) => sas_core::grpo::grpo_advantages_grouped(r, g, eps),
        _ => return Err(type_error("group_size", "given, or groups, not both")),
    };
    Ok(array(py, adv.map_err(to_py)?))
}

/// Each rollout's advantage spread over its tokens, times `keep` (see `_core.pyi`).
#[pyfunction]
fn token_advantages<'py>(
    py: Python<'py>,
    rollout_advantages: PyReadonlyArray1<'py, f32>,
    keep: PyReadonlyArray1<'py, bool>,
    cu_seqlens: PyReadonlyArray1<'py, i64>,
) -> PyResult<Array<'py, f32>> {
    let adv = slice(&rollout_advantages, "rollout_advantages")?;
    let (keep, cu) = (slice(&keep, "keep")?, slice(&cu_seqlens, "cu_seqlens")?);
    let out = py.detach(|| sas_core::grpo::token_advantages(adv, keep, &Packed::new(cu)?));
    Ok(array(py, out.map_err(to_py)?))
}

/// Step id per token of one response from its text and (T, 2) character spans (see
/// `_core.pyi`).
#[pyfunction]
#[pyo3(signature = (text, offsets, think_end = None))]
fn segment_text<'py>(
    py: Python<'py>,
    text: &str,
    offsets: PyReadonlyArrayDyn<'py, i64>,
    think_end: Option<&str>,
) -> PyResult<Array<'py, i32>> {
    let flat = data(&offsets, "offsets", 2)?;
    if offsets.shape()[1] != 2 {
        return Err(type_error("offsets", "a (T, 2) array of spans"));
    }
    let spans = flat.chunks_exact(2).map(|c| (c[0], c[1]));
    let steps = sas_core::text::segment_text(text, spans, think_end).map_err(to_py)?;
    Ok(array(py, steps))
}

/// The random key of unit `unit` of rollout `rollout` under `seed` (see `_core.pyi`).
#[pyfunction]
fn unit_key(seed: u64, rollout: u64, unit: u64) -> u64 {
    sas_core::unit_key(seed, rollout, unit)
}

/// (threads used when `num_threads` is not given, a note when `SAS_CORE_NUM_THREADS` is
/// set but not used as written).
#[pyfunction]
fn default_num_threads() -> (usize, Option<String>) {
    (default_threads(), env_threads().1)
}

#[pymodule(gil_used = false)]
mod _core {
    use super::*;
    #[pymodule_export]
    use super::{default_num_threads, grpo_advantages, keep_mask, segment_text};
    #[pymodule_export]
    use super::{step_confidences, token_advantages, unit_key, PyStepTable};

    /// Loads numpy's C API, rust-numpy's borrow-checking API and the dtypes the bindings
    /// use while the module is imported. They are otherwise loaded lazily on first use,
    /// behind once-cells: a process forked while another thread is inside that first use
    /// would leave its child waiting forever on an initialisation no thread there ends.
    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        let py = m.py();
        let _ = PyArray1::<f64>::zeros(py, 0, false).readonly(); // borrow checking
        macro_rules! dtypes { ($($t:ty),*) => { $(let _ = PyArray1::<$t>::zeros(py, 0, false);)* } }
        dtypes!(bool, i32, i64, u32, f32);
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("MAX_THREADS", sas_core::parallel::MAX_THREADS)
    }
}
