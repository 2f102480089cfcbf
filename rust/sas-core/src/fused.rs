//! The whole SAS mask from token ids in one call, for the default step granularity.
//!
//! The segmenter's steps are contiguous runs of tokens, so each rollout is segmented
//! into its list of runs (a few dozen entries) rather than a step id per token. Step
//! means are then sums over contiguous log-prob slices (vectorised), and the keep mask
//! is written by filling the selected runs. No per-token intermediate array exists.
//!
//! Same result as [`crate::segment_packed`] followed by [`crate::keep_mask_packed`]
//! (the tests check it); this is the path `sas_advantages` takes.

use std::ops::Range;

use crate::confidence::{check_finite, slice_mean, LogProb};
use crate::error::{Positions, Result};
use crate::options::{Granularity, SelectOptions};
use crate::packed::Packed;
use crate::scratch::Scratch;
use crate::segment::{one_turn, segment_rollout_with, TokenId};
use crate::select::{choose_units, keep_mask_packed, select_packed, sparing_nonfinite, Selected};
use crate::vocab::StepTable;

/// Tokens of run `j` of a rollout of `len` tokens.
pub(crate) fn run_range(runs: &[(u32, i32)], j: usize, len: usize) -> Range<usize> {
    runs[j].0 as usize..runs.get(j + 1).map_or(len, |e| e.0 as usize)
}

/// Segments one rollout into its runs of equal step ids (into `s.runs`: segmenter
/// steps are contiguous, so a few dozen entries instead of a step id per token) and
/// chooses its steps: afterwards `s.units[..k]` holds the chosen steps, and step j is
/// run j of the runs with a step id (and, in a rollout of one turn, run j: those come
/// first). `turn_start` as in [`segment_rollout_with`]. Returns (n, k).
#[allow(clippy::too_many_arguments)]
pub(crate) fn select_runs<I: TokenId, L: LogProb>(
    table: &StepTable,
    ids: &[I],
    turn_start: impl Fn(usize) -> bool,
    lps: &[L],
    correct: bool,
    index: usize,
    at: Positions<'_>,
    opts: &SelectOptions,
    s: &mut Scratch,
) -> Result<(usize, usize)> {
    let runs = &mut s.runs;
    runs.clear();
    segment_rollout_with(
        table,
        ids,
        at,
        turn_start,
        |_, _| {},
        |i, step| runs.push((i as u32, step)),
    )?;
    check_finite(lps, at)?;
    s.units.clear();
    for (j, &(_, step)) in s.runs.iter().enumerate() {
        if step >= 0 {
            let mean = slice_mean(&lps[run_range(&s.runs, j, lps.len())]);
            s.units.push((mean.to_bits(), step as u32));
        }
    }
    let n = s.units.len();
    Ok((n, choose_units(&mut s.units, correct, index, opts)))
}

/// Keep mask of a packed batch straight from token ids and log-probs (a NaN/inf
/// log-prob as in [`keep_mask_packed`]).
///
/// ```
/// use sas_core::{sas_mask_packed, Packed, SelectOptions, StepTable};
/// let table = StepTable::from_bytes(&[&b"x"[..], b"\n\n"], None, &[]).unwrap();
/// // One failed rollout "x\n\nx\n\nx" of three steps; the first is the most confident.
/// let ids: [i64; 5] = [0, 1, 0, 1, 0];
/// let lps = [-0.1f32, -0.1, -1.0, -1.0, -2.0];
/// let cu = [0i64, 5];
/// let opts = SelectOptions { ratio: 0.34, ..SelectOptions::default() };
/// let sel =
///     sas_mask_packed(&table, &ids, &lps, &Packed::new(&cu).unwrap(), &[false], &opts, 1)
///         .unwrap();
/// assert_eq!(sel.keep, [false, false, true, true, true]);
/// ```
pub fn sas_mask_packed<I: TokenId, L: LogProb>(
    table: &StepTable,
    ids: &[I],
    logprobs: &[L],
    packed: &Packed<'_>,
    correct: &[bool],
    opts: &SelectOptions,
    threads: usize,
) -> Result<Selected> {
    opts.validate()?;
    packed.check_len("token_ids", ids.len())?;
    if opts.granularity == Granularity::Token {
        // Token granularity needs no step confidences: nothing to fuse.
        let (steps, _) = crate::segment_packed(table, ids, packed, threads)?;
        return keep_mask_packed(&steps, logprobs, packed, correct, opts, threads);
    }
    sparing_nonfinite(logprobs, packed, opts, |logprobs| {
        let arrays = [("logprobs", logprobs.len())];
        select_packed(packed, opts, correct, &arrays, threads, |s, b, r, out| {
            let (lps, ids, at) = (&logprobs[r.clone()], &ids[r.clone()], r.start.into());
            let (n, k) = select_runs(table, ids, one_turn, lps, correct[b], b, at, opts, s)?;
            for &(_, step) in &s.units[..k] {
                out[run_range(&s.runs, step as usize, lps.len())].fill(false);
            }
            Ok((n as u32, k as u32))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{Mode, NonFinite, SelectionRule};
    use crate::segment_packed;
    use crate::testutil;

    #[test]
    fn fused_equals_segment_then_select() {
        let table = testutil::newline_table();
        let mut next = testutil::random(3);
        for _ in 0..300 {
            let b = (next() % 5) as usize;
            let mut cu = vec![0i64];
            for _ in 0..b {
                cu.push(cu.last().unwrap() + (next() % 200) as i64);
            }
            let n = *cu.last().unwrap() as usize;
            let ids: Vec<i64> = (0..n).map(|_| (next() % 9) as i64).collect();
            let lps: Vec<f32> = (0..n).map(|_| -((next() % 1000) as f32) / 100.0).collect();
            let correct: Vec<bool> = (0..b).map(|_| next() % 2 == 0).collect();
            let packed = Packed::new(&cu).unwrap();
            for mode in [Mode::Both, Mode::Correct, Mode::Failed] {
                for selection in [SelectionRule::Confidence, SelectionRule::Random] {
                    for granularity in [Granularity::Step, Granularity::Token] {
                        let opts = SelectOptions {
                            ratio: 0.3,
                            mode,
                            selection,
                            granularity,
                            seed: 5,
                            nonfinite: NonFinite::Raise,
                        };
                        let (steps, _) = segment_packed(&table, &ids, &packed, 1).unwrap();
                        let two = keep_mask_packed(&steps, &lps, &packed, &correct, &opts, 1);
                        let one = sas_mask_packed(&table, &ids, &lps, &packed, &correct, &opts, 2);
                        assert_eq!(one.unwrap(), two.unwrap());
                    }
                }
            }
        }
    }

    #[test]
    fn fused_reports_bad_inputs() {
        let table = StepTable::from_bytes(&[b"a".as_slice()], None, &[]).unwrap();
        let cu = [0i64, 2];
        let packed = Packed::new(&cu).unwrap();
        let o = SelectOptions::default();
        let run = |ids: &[i64], lps: &[f64], c: &[bool]| {
            sas_mask_packed(&table, ids, lps, &packed, c, &o, 1)
                .unwrap_err()
                .arg
        };
        assert_eq!(run(&[0, 1], &[0.0, 0.0], &[true]), "token_ids");
        assert_eq!(run(&[0, 0], &[0.0, f64::NAN], &[true]), "logprobs");
        assert_eq!(run(&[0], &[0.0, 0.0], &[true]), "token_ids, cu_seqlens");
        assert_eq!(run(&[0, 0], &[0.0], &[true]), "logprobs, cu_seqlens");
        assert_eq!(run(&[0, 0], &[0.0, 0.0], &[]), "correct, cu_seqlens");
    }
}
