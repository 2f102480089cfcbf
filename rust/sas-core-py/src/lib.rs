//! `sas_core._core`: thin PyO3 bindings of the `sas-core` crate.
//!
//! Every function converts its arguments (zero-copy for contiguous numpy arrays of the
//! supported dtypes), releases the GIL for the computation, and maps core errors through
//! `error.rs`. Argument normalisation (dtype casts, defaults) lives in the Python layer.

mod error;

use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use sas_core::parallel::default_threads;
use sas_core::select::LogProb;
use sas_core::{
    grpo, sas_advantages_padded, sas_mask_packed, segment_packed, Granularity, Mode, Packed,
    Padded, SelectOptions, Selection, StepTable, TokenClass, TokenId,
};

use error::{not_contiguous, to_py, type_error};

fn slice<'a, T: numpy::Element>(a: &'a PyReadonlyArray1<'_, T>, arg: &str) -> PyResult<&'a [T]> {
    a.as_slice().map_err(|_| not_contiguous(arg))
}

fn threads(num_threads: Option<usize>) -> usize {
    // The wrappers reject more than MAX_THREADS; the pool caps at it as well.
    num_threads.unwrap_or_else(default_threads).max(1)
}

/// (step id per token, steps per rollout).
type SegmentOut<'py> = (Bound<'py, PyArray1<i32>>, Bound<'py, PyArray1<u32>>);

/// Byte table of one tokenizer (see `_core.pyi`).
#[pyclass(frozen, name = "StepTable", module = "sas_core._core")]
struct PyStepTable {
    table: StepTable,
}

#[pymethods]
impl PyStepTable {
    #[new]
    #[pyo3(signature = (token_bytes, vocab_size = None, think_end_ids = Vec::new()))]
    fn new(
        token_bytes: &Bound<'_, PyAny>,
        vocab_size: Option<usize>,
        think_end_ids: Vec<i64>,
    ) -> PyResult<Self> {
        let mut classes = Vec::with_capacity(token_bytes.len().unwrap_or(0));
        for (i, item) in token_bytes.try_iter()?.enumerate() {
            let item = item?;
            let bytes = item
                .cast::<PyBytes>()
                .map_err(|_| type_error(&format!("token_bytes[{i}]"), "bytes"))?;
            classes.push(TokenClass::of(bytes.as_bytes()));
        }
        let table = StepTable::from_classes(classes, vocab_size, &think_end_ids).map_err(to_py)?;
        Ok(Self { table })
    }

    #[getter]
    fn vocab_size(&self) -> usize {
        self.table.vocab_size()
    }

    #[getter]
    fn n_entries(&self) -> usize {
        self.table.n_entries()
    }

    /// Fused segmentation + selection from token ids (see `_core.pyi`).
    #[pyo3(signature = (token_ids, logprobs, cu_seqlens, correct, ratio, mode, selection, granularity, seed, num_threads = None))]
    #[allow(clippy::too_many_arguments)]
    fn sas_mask<'py>(
        &self,
        py: Python<'py>,
        token_ids: &Bound<'py, PyAny>,
        logprobs: &Bound<'py, PyAny>,
        cu_seqlens: PyReadonlyArray1<'py, i64>,
        correct: PyReadonlyArray1<'py, bool>,
        ratio: f64,
        mode: &str,
        selection: &str,
        granularity: &str,
        seed: u64,
        num_threads: Option<usize>,
    ) -> PyResult<MaskOut<'py>> {
        let opts = options(ratio, mode, selection, granularity, seed)?;
        let cu = slice(&cu_seqlens, "cu_seqlens")?;
        let correct = slice(&correct, "correct")?;
        let threads = threads(num_threads);
        if let Ok(ids) = token_ids.extract::<PyReadonlyArray1<'py, i64>>() {
            let ids = slice(&ids, "token_ids")?;
            self.sas_mask_typed(py, ids, logprobs, cu, correct, opts, threads)
        } else if let Ok(ids) = token_ids.extract::<PyReadonlyArray1<'py, i32>>() {
            let ids = slice(&ids, "token_ids")?;
            self.sas_mask_typed(py, ids, logprobs, cu, correct, opts, threads)
        } else {
            Err(type_error(
                "token_ids",
                "a 1-D numpy array of int32 or int64",
            ))
        }
    }

    /// SAS advantages from padded (B, A) arrays (see `_core.pyi`).
    #[pyo3(signature = (response_ids, logprobs, action_mask, correct, advantages, ratio, mode, selection, granularity, seed, num_threads = None))]
    #[allow(clippy::too_many_arguments)]
    fn sas_advantages_padded<'py>(
        &self,
        py: Python<'py>,
        response_ids: &Bound<'py, PyAny>,
        logprobs: &Bound<'py, PyAny>,
        action_mask: PyReadonlyArray2<'py, bool>,
        correct: PyReadonlyArray1<'py, bool>,
        advantages: PyReadonlyArray1<'py, f64>,
        ratio: f64,
        mode: &str,
        selection: &str,
        granularity: &str,
        seed: u64,
        num_threads: Option<usize>,
    ) -> PyResult<PaddedOut<'py>> {
        let opts = options(ratio, mode, selection, granularity, seed)?;
        let shape = action_mask.shape().to_vec();
        let args = PaddedArgs {
            mask: action_mask
                .as_slice()
                .map_err(|_| not_contiguous("action_mask"))?,
            width: shape[1],
            rows: shape[0],
            correct: slice(&correct, "correct")?,
            advantages: slice(&advantages, "advantages")?,
            opts,
            threads: threads(num_threads),
        };
        if let Ok(ids) = response_ids.extract::<PyReadonlyArray2<'py, i64>>() {
            let ids = ids.as_slice().map_err(|_| not_contiguous("response_ids"))?;
            self.padded_ids(py, ids, logprobs, &args)
        } else if let Ok(ids) = response_ids.extract::<PyReadonlyArray2<'py, i32>>() {
            let ids = ids.as_slice().map_err(|_| not_contiguous("response_ids"))?;
            self.padded_ids(py, ids, logprobs, &args)
        } else {
            Err(type_error(
                "response_ids",
                "a 2-D numpy array of int32 or int64",
            ))
        }
    }

    #[pyo3(signature = (token_ids, cu_seqlens, num_threads = None))]
    fn segment<'py>(
        &self,
        py: Python<'py>,
        token_ids: &Bound<'py, PyAny>,
        cu_seqlens: PyReadonlyArray1<'py, i64>,
        num_threads: Option<usize>,
    ) -> PyResult<SegmentOut<'py>> {
        if let Ok(ids) = token_ids.extract::<PyReadonlyArray1<'py, i64>>() {
            self.segment_typed(py, &ids, &cu_seqlens, num_threads)
        } else if let Ok(ids) = token_ids.extract::<PyReadonlyArray1<'py, i32>>() {
            self.segment_typed(py, &ids, &cu_seqlens, num_threads)
        } else {
            Err(type_error(
                "token_ids",
                "a 1-D numpy array of int32 or int64",
            ))
        }
    }
}

struct PaddedArgs<'a> {
    mask: &'a [bool],
    width: usize,
    rows: usize,
    correct: &'a [bool],
    advantages: &'a [f64],
    opts: SelectOptions,
    threads: usize,
}

/// (advantages (B, A) float32, units, selected units and zeroed tokens per row).
type PaddedOut<'py> = (
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<u32>>,
);

impl PyStepTable {
    fn padded_ids<'py, I: TokenId>(
        &self,
        py: Python<'py>,
        ids: &[I],
        logprobs: &Bound<'py, PyAny>,
        a: &PaddedArgs<'_>,
    ) -> PyResult<PaddedOut<'py>> {
        if let Ok(lps) = logprobs.extract::<PyReadonlyArray2<'py, f32>>() {
            let lps = lps.as_slice().map_err(|_| not_contiguous("logprobs"))?;
            self.padded_typed(py, ids, lps, a)
        } else if let Ok(lps) = logprobs.extract::<PyReadonlyArray2<'py, f64>>() {
            let lps = lps.as_slice().map_err(|_| not_contiguous("logprobs"))?;
            self.padded_typed(py, ids, lps, a)
        } else {
            Err(type_error(
                "logprobs",
                "a 2-D numpy array of float32 or float64",
            ))
        }
    }

    fn padded_typed<'py, I: TokenId, L: LogProb>(
        &self,
        py: Python<'py>,
        ids: &[I],
        lps: &[L],
        a: &PaddedArgs<'_>,
    ) -> PyResult<PaddedOut<'py>> {
        let batch = Padded {
            ids,
            logprobs: lps,
            mask: a.mask,
            width: a.width,
            correct: a.correct,
            advantages: a.advantages,
        };
        let out = py
            .detach(|| sas_advantages_padded(&self.table, &batch, &a.opts, a.threads))
            .map_err(to_py)?;
        let adv = PyArray1::from_vec(py, out.advantages).reshape([a.rows, a.width])?;
        Ok((
            adv,
            PyArray1::from_vec(py, out.n_units),
            PyArray1::from_vec(py, out.n_selected),
            PyArray1::from_vec(py, out.n_zeroed_tokens),
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn sas_mask_typed<'py, I: TokenId>(
        &self,
        py: Python<'py>,
        ids: &[I],
        logprobs: &Bound<'py, PyAny>,
        cu: &[i64],
        correct: &[bool],
        opts: SelectOptions,
        threads: usize,
    ) -> PyResult<MaskOut<'py>> {
        let table = &self.table;
        let run = |sel: sas_core::Result<sas_core::Selected>| -> PyResult<MaskOut<'py>> {
            let sel = sel.map_err(to_py)?;
            Ok(mask_out(py, sel))
        };
        if let Ok(lps) = logprobs.extract::<PyReadonlyArray1<'py, f32>>() {
            let lps = slice(&lps, "logprobs")?;
            run(py.detach(|| {
                let packed = Packed::new(cu)?;
                sas_mask_packed(table, ids, lps, &packed, correct, &opts, threads)
            }))
        } else if let Ok(lps) = logprobs.extract::<PyReadonlyArray1<'py, f64>>() {
            let lps = slice(&lps, "logprobs")?;
            run(py.detach(|| {
                let packed = Packed::new(cu)?;
                sas_mask_packed(table, ids, lps, &packed, correct, &opts, threads)
            }))
        } else {
            Err(type_error(
                "logprobs",
                "a 1-D numpy array of float32 or float64",
            ))
        }
    }

    fn segment_typed<'py, I: TokenId + numpy::Element>(
        &self,
        py: Python<'py>,
        ids: &PyReadonlyArray1<'py, I>,
        cu_seqlens: &PyReadonlyArray1<'py, i64>,
        num_threads: Option<usize>,
    ) -> PyResult<SegmentOut<'py>> {
        let ids = slice(ids, "token_ids")?;
        let cu = slice(cu_seqlens, "cu_seqlens")?;
        let threads = threads(num_threads);
        let (steps, counts) = py
            .detach(|| {
                let packed = Packed::new(cu)?;
                segment_packed(&self.table, ids, &packed, threads)
            })
            .map_err(to_py)?;
        Ok((
            PyArray1::from_vec(py, steps),
            PyArray1::from_vec(py, counts),
        ))
    }
}

type MaskOut<'py> = (
    Bound<'py, PyArray1<bool>>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<u32>>,
);

#[allow(clippy::too_many_arguments)]
fn keep_mask_typed<'py, L: LogProb + numpy::Element>(
    py: Python<'py>,
    step_ids: &[i32],
    logprobs: &PyReadonlyArray1<'py, L>,
    cu: &[i64],
    correct: &[bool],
    opts: SelectOptions,
    threads: usize,
) -> PyResult<MaskOut<'py>> {
    let lps = slice(logprobs, "logprobs")?;
    let sel = py
        .detach(|| {
            let packed = Packed::new(cu)?;
            sas_core::keep_mask_packed(step_ids, lps, &packed, correct, &opts, threads)
        })
        .map_err(to_py)?;
    Ok(mask_out(py, sel))
}

fn mask_out(py: Python<'_>, sel: sas_core::Selected) -> MaskOut<'_> {
    (
        PyArray1::from_vec(py, sel.keep),
        PyArray1::from_vec(py, sel.n_units),
        PyArray1::from_vec(py, sel.n_selected),
    )
}

fn options(
    ratio: f64,
    mode: &str,
    selection: &str,
    granularity: &str,
    seed: u64,
) -> PyResult<SelectOptions> {
    Ok(SelectOptions {
        ratio,
        mode: Mode::parse(mode).map_err(to_py)?,
        selection: Selection::parse(selection).map_err(to_py)?,
        granularity: Granularity::parse(granularity).map_err(to_py)?,
        seed,
    })
}

/// Keep mask plus per-rollout unit and selection counts (see `_core.pyi`).
#[pyfunction]
#[pyo3(signature = (step_ids, logprobs, cu_seqlens, correct, ratio, mode, selection, granularity, seed, num_threads = None))]
#[allow(clippy::too_many_arguments)]
fn keep_mask<'py>(
    py: Python<'py>,
    step_ids: PyReadonlyArray1<'py, i32>,
    logprobs: &Bound<'py, PyAny>,
    cu_seqlens: PyReadonlyArray1<'py, i64>,
    correct: PyReadonlyArray1<'py, bool>,
    ratio: f64,
    mode: &str,
    selection: &str,
    granularity: &str,
    seed: u64,
    num_threads: Option<usize>,
) -> PyResult<MaskOut<'py>> {
    let opts = options(ratio, mode, selection, granularity, seed)?;
    let step_ids = slice(&step_ids, "step_ids")?;
    let cu = slice(&cu_seqlens, "cu_seqlens")?;
    let correct = slice(&correct, "correct")?;
    let threads = threads(num_threads);
    if let Ok(lps) = logprobs.extract::<PyReadonlyArray1<'py, f32>>() {
        keep_mask_typed(py, step_ids, &lps, cu, correct, opts, threads)
    } else if let Ok(lps) = logprobs.extract::<PyReadonlyArray1<'py, f64>>() {
        keep_mask_typed(py, step_ids, &lps, cu, correct, opts, threads)
    } else {
        Err(type_error(
            "logprobs",
            "a 1-D numpy array of float32 or float64",
        ))
    }
}

/// GRPO group-normalised advantages (see `_core.pyi`).
#[pyfunction]
#[pyo3(signature = (rewards, group_size, eps))]
fn grpo_advantages<'py>(
    py: Python<'py>,
    rewards: PyReadonlyArray1<'py, f64>,
    group_size: usize,
    eps: f64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let r = slice(&rewards, "rewards")?;
    let adv = grpo::grpo_advantages(r, group_size, eps).map_err(to_py)?;
    Ok(PyArray1::from_vec(py, adv))
}

/// Threads used when `num_threads` is not given.
#[pyfunction]
fn default_num_threads() -> usize {
    default_threads()
}

/// Loads numpy's C API, rust-numpy's borrow-checking API and the dtypes the bindings
/// use while the module is imported. They are otherwise loaded lazily on first use,
/// behind once-cells: a process forked while another thread is inside that first use
/// would leave its child waiting forever on an initialisation no thread there finishes.
fn load_numpy_api(py: Python<'_>) {
    let _ = PyArray1::<f64>::zeros(py, 0, false).readonly(); // the borrow-checking API
    let _ = PyArray1::<bool>::zeros(py, 0, false);
    let _ = PyArray1::<i32>::zeros(py, 0, false);
    let _ = PyArray1::<i64>::zeros(py, 0, false);
    let _ = PyArray1::<u32>::zeros(py, 0, false);
    let _ = PyArray1::<f32>::zeros(py, 0, false);
    let _ = PyArray1::<f64>::zeros(py, 0, false);
}

#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    load_numpy_api(m.py());
    m.add_class::<PyStepTable>()?;
    m.add_function(wrap_pyfunction!(keep_mask, m)?)?;
    m.add_function(wrap_pyfunction!(grpo_advantages, m)?)?;
    m.add_function(wrap_pyfunction!(default_num_threads, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_THREADS", sas_core::parallel::MAX_THREADS)?;
    Ok(())
}
