//! Step selection: which units of each rollout get a zero advantage.
//!
//! With n units (steps, or tokens at token granularity) in a rollout, k = floor(r*n)
//! are selected: the lowest-confidence units of a correct rollout, the highest-confidence
//! units of a failed one (or k random units), ties to the lower unit id. Confidence is
//! defined in [`crate::confidence`].

use std::ops::Range;

use crate::confidence::{check_finite, slice_mean, LaneSum, LogProb};
use crate::error::{Positions, Result, SasError};
use crate::options::{n_selected, Granularity, NonFinite, SelectOptions, SelectionRule};
use crate::packed::Packed;
use crate::parallel::map_rollouts;
use crate::rng::unit_key;
use crate::scratch::Scratch;

/// Result of selection over a packed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// Per token: false on the selected units' tokens.
    pub keep: Vec<bool>,
    /// Per rollout: number of units n (steps, or in-step tokens).
    pub n_units: Vec<u32>,
    /// Per rollout: number of selected units (k, or 0 where `mode` excludes the rollout).
    pub n_selected: Vec<u32>,
}

impl Selected {
    /// Assembles the batch result from each rollout's (n, k); the first error wins.
    pub(crate) fn collect(keep: Vec<bool>, per_rollout: Vec<Result<(u32, u32)>>) -> Result<Self> {
        let counts = per_rollout.into_iter().collect::<Result<Vec<_>>>()?;
        let (n_units, n_selected) = counts.into_iter().unzip();
        Ok(Selected {
            keep,
            n_units,
            n_selected,
        })
    }
}

/// Ascending sort key of a float that agrees with `<` (so -0.0 and 0.0 tie).
#[inline]
fn float_key(x: f64) -> u64 {
    let bits = (x + 0.0).to_bits(); // + 0.0 turns -0.0 into 0.0
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

pub(crate) struct Rollout<'a, L> {
    pub(crate) step_ids: &'a [i32],
    pub(crate) logprobs: &'a [L],
    pub(crate) correct: bool,
    pub(crate) index: usize,
    pub(crate) at: Positions<'a>,
}

/// Finds the first invalid token of a rollout, if any: a non-finite log-prob or a
/// step id outside [-1, len).
fn validate<L: LogProb>(r: &Rollout<'_, L>) -> Result<()> {
    check_finite(r.logprobs, r.at)?;
    let len = r.step_ids.len() as i64;
    let in_range = r
        .step_ids
        .iter()
        .fold(true, |ok, &id| ok & (id >= -1) & ((id as i64) < len));
    if !in_range {
        let i = r
            .step_ids
            .iter()
            .position(|&id| id < -1 || id as i64 >= len);
        let i = i.unwrap_or(0);
        return Err(SasError::new(
            "step_ids",
            format!(
                "must be -1 or in [0, rollout length {len}), got {} at position {}",
                r.step_ids[i],
                r.at.of(i)
            ),
        ));
    }
    Ok(())
}

/// Step means of a rollout whose steps are contiguous runs of tokens in increasing id
/// order (as the segmenter produces), pushed to `units` as (f64 bits, step id).
/// Returns false, leaving `units` partial, for any other layout.
fn ordered_step_means<L: LogProb>(
    step_ids: &[i32],
    logprobs: &[L],
    units: &mut Vec<(u64, u32)>,
) -> bool {
    let mut last = -1;
    let mut i = 0;
    while i < step_ids.len() {
        let id = step_ids[i];
        let run = step_ids[i..].iter().take_while(|&&x| x == id).count();
        if id >= 0 {
            if id <= last {
                return false;
            }
            units.push((slice_mean(&logprobs[i..i + run]).to_bits(), id as u32));
            last = id;
        }
        i += run;
    }
    true
}

/// Pass 1: validates every token and collects the units into `s.units` as
/// (confidence bits, unit id). Returns the step-id bound (max id + 1).
fn collect_units<L: LogProb>(r: &Rollout<'_, L>, by_step: bool, s: &mut Scratch) -> Result<usize> {
    validate(r)?;
    let bound = r.step_ids.iter().fold(-1, |m, &id| m.max(id)) + 1;
    let bound = bound as usize;
    s.units.clear();
    if !by_step {
        for (pos, (&id, &lp)) in r.step_ids.iter().zip(r.logprobs).enumerate() {
            if id >= 0 {
                s.units.push((lp.to_f64().to_bits(), pos as u32));
            }
        }
    } else if !ordered_step_means(r.step_ids, r.logprobs, &mut s.units) {
        s.units.clear();
        s.dense.clear();
        s.dense.resize(bound, LaneSum::default());
        for (&id, &lp) in r.step_ids.iter().zip(r.logprobs) {
            if id >= 0 {
                s.dense[id as usize].add(lp.to_f64());
            }
        }
        for (id, sum) in s.dense.iter().enumerate() {
            if sum.count > 0 {
                s.units.push((sum.mean().to_bits(), id as u32));
            }
        }
    }
    Ok(bound)
}

pub(crate) fn select_rollout<L: LogProb>(
    r: &Rollout<'_, L>,
    opts: &SelectOptions,
    s: &mut Scratch,
    keep: &mut [bool],
) -> Result<(u32, u32)> {
    let by_step = opts.granularity == Granularity::Step;
    let bound = collect_units(r, by_step, s)?;
    Ok(apply_selection(
        r.step_ids, r.correct, r.index, bound, opts, s, keep,
    ))
}

/// Pass 2: given the units in `s.units` as (confidence bits, unit id), selects k of
/// them and writes the rollout's keep mask. Returns (n, k).
fn apply_selection(
    step_ids: &[i32],
    correct: bool,
    index: usize,
    bound: usize,
    opts: &SelectOptions,
    s: &mut Scratch,
    keep: &mut [bool],
) -> (u32, u32) {
    let n = s.units.len();
    let k = choose_units(&mut s.units, correct, index, opts);
    keep.fill(true);
    if k == 0 {
        return (n as u32, 0);
    }
    if opts.granularity == Granularity::Step {
        s.chosen.clear();
        s.chosen.resize(bound, false);
        for &(_, id) in &s.units[..k] {
            s.chosen[id as usize] = true;
        }
        for (kp, &id) in keep.iter_mut().zip(step_ids) {
            *kp = id < 0 || !s.chosen[id as usize];
        }
    } else {
        for &(_, pos) in &s.units[..k] {
            keep[pos as usize] = false;
        }
    }
    (n as u32, k as u32)
}

/// Reorders `units` (confidence bits, unit id) so that the selected ones come first
/// and returns how many are selected (0 where `mode` spares the rollout).
pub(crate) fn choose_units(
    units: &mut [(u64, u32)],
    correct: bool,
    index: usize,
    opts: &SelectOptions,
) -> usize {
    let n = units.len();
    let k = n_selected(opts.ratio, n);
    if k == 0 || !opts.mode.applies(correct) {
        return 0;
    }
    // Rewrite each unit's key so that the k smallest (key, id) pairs are the selection.
    for u in units.iter_mut() {
        u.0 = match opts.selection {
            SelectionRule::Random => unit_key(opts.seed, index as u64, u.1 as u64),
            SelectionRule::Confidence if correct => float_key(f64::from_bits(u.0)),
            SelectionRule::Confidence => float_key(-f64::from_bits(u.0)),
        };
    }
    if k < n {
        units.select_nth_unstable(k - 1);
    }
    k
}

/// The frame of every packed selection call: checks the options, the length of each
/// per-token array (`arrays`: its name and length) and of `correct`, then selects each
/// rollout in parallel with `rollout(scratch, b, its token range, its keep flags)`
/// (all true on entry), which returns the rollout's (units, selected units).
pub(crate) fn select_packed<F>(
    packed: &Packed<'_>,
    opts: &SelectOptions,
    correct: &[bool],
    arrays: &[(&'static str, usize)],
    threads: usize,
    rollout: F,
) -> Result<Selected>
where
    F: Fn(&mut Scratch, usize, Range<usize>, &mut [bool]) -> Result<(u32, u32)> + Sync + Send,
{
    opts.validate()?;
    for &(arg, len) in arrays {
        packed.check_len(arg, len)?;
    }
    check_correct_len(packed, correct)?;
    let mut keep = vec![true; packed.n_tokens()];
    let results = map_rollouts(packed, &mut keep, threads, Scratch::default, rollout);
    Selected::collect(keep, results)
}

fn check_correct_len(packed: &Packed<'_>, correct: &[bool]) -> Result<()> {
    if correct.len() == packed.len() {
        return Ok(());
    }
    Err(SasError::new(
        "correct, cu_seqlens",
        format!(
            "has {} entries but cu_seqlens holds {} rollouts",
            correct.len(),
            packed.len()
        ),
    ))
}

/// Keep mask of a packed batch: per token, false where its step (or token) is selected.
/// A rollout with a NaN/inf log-prob is an error, or under [`NonFinite::Keep`] left
/// unselected: ranked as if they were 0, so that its unit count stands.
///
/// ```
/// use sas_core::{keep_mask_packed, Mode, NonFinite, Packed, SelectOptions};
/// // One rollout of four steps with confidences -1, -3, -2 and -0.5.
/// let step_ids = [0, 1, 1, 2, 3];
/// let lps = [-1.0, -2.0, -4.0, -2.0, -0.5];
/// let cu = [0i64, 5];
/// let packed = Packed::new(&cu).unwrap();
/// let opts = SelectOptions { ratio: 0.5, ..SelectOptions::default() };
/// // Correct: its two least confident steps (1 and 2) are selected.
/// let sel = keep_mask_packed(&step_ids, &lps, &packed, &[true], &opts, 1).unwrap();
/// assert_eq!(sel.keep, [true, false, false, false, true]);
/// // Failed: its two most confident steps (0 and 3).
/// let sel = keep_mask_packed(&step_ids, &lps, &packed, &[false], &opts, 1).unwrap();
/// assert_eq!(sel.keep, [false, true, true, true, false]);
/// assert_eq!((sel.n_units, sel.n_selected), (vec![4], vec![2]));
/// // mode = correct spares the failed rollout.
/// let only_correct = SelectOptions { mode: Mode::Correct, ..opts };
/// let sel = keep_mask_packed(&step_ids, &lps, &packed, &[false], &only_correct, 1).unwrap();
/// assert!(sel.keep.iter().all(|&k| k));
/// // A NaN: an error naming the log-probs, or under nonfinite = keep, no step selected.
/// let lps = [-1.0, f64::NAN, -4.0, -2.0, -0.5];
/// let err = keep_mask_packed(&step_ids, &lps, &packed, &[true], &opts, 1).unwrap_err();
/// assert_eq!(err.arg, "logprobs");
/// let keep = SelectOptions { nonfinite: NonFinite::Keep, ..opts };
/// let sel = keep_mask_packed(&step_ids, &lps, &packed, &[true], &keep, 1).unwrap();
/// assert_eq!((sel.n_units, sel.n_selected), (vec![4], vec![0]));
/// assert!(sel.keep.iter().all(|&k| k));
/// ```
pub fn keep_mask_packed<L: LogProb>(
    step_ids: &[i32],
    logprobs: &[L],
    packed: &Packed<'_>,
    correct: &[bool],
    opts: &SelectOptions,
    threads: usize,
) -> Result<Selected> {
    sparing_nonfinite(logprobs, packed, opts, |logprobs| {
        let arrays = [("step_ids", step_ids.len()), ("logprobs", logprobs.len())];
        select_packed(packed, opts, correct, &arrays, threads, |s, b, r, out| {
            let rollout = Rollout {
                step_ids: &step_ids[r.clone()],
                logprobs: &logprobs[r.clone()],
                correct: correct[b],
                index: b,
                at: r.start.into(),
            };
            select_rollout(&rollout, opts, s, out)
        })
    })
}

/// Runs the packed selection `select` under `opts.nonfinite`. With
/// [`NonFinite::Keep`], a rollout with a NaN/inf log-prob is ranked as if they were 0
/// and then left unselected (all its tokens kept, no unit selected), the others as
/// without it; the copy with zeros is made only when a non-finite value is there.
/// Otherwise `select` sees the log-probs as they are (and names a NaN).
pub(crate) fn sparing_nonfinite<L: LogProb>(
    logprobs: &[L],
    packed: &Packed<'_>,
    opts: &SelectOptions,
    select: impl FnOnce(&[L]) -> Result<Selected>,
) -> Result<Selected> {
    let finite = |l: &L| l.to_f64().is_finite();
    let sized = packed.check_len("logprobs", logprobs.len()).is_ok();
    if opts.nonfinite == NonFinite::Raise || !sized || logprobs.iter().all(finite) {
        return select(logprobs);
    }
    let zeroed: Vec<L> = logprobs
        .iter()
        .map(|&l| if finite(&l) { l } else { L::default() })
        .collect();
    let mut sel = select(&zeroed)?;
    for (b, r) in packed.ranges().enumerate() {
        if !logprobs[r.clone()].iter().all(finite) {
            sel.keep[r].fill(true);
            sel.n_selected[b] = 0;
        }
    }
    Ok(sel)
}

/// The confidence of every step of a packed batch (tokens with step -1 are outside
/// every step): one value per step id 0..max+1 of each rollout, rollout by rollout, in
/// the [`LaneSum`] order the ranking uses (a step id with no token gets NaN), and the
/// (B+1,) boundaries of each rollout's steps in them.
///
/// ```
/// use sas_core::{select::step_confidences_packed, Packed};
/// let (ids, lps) = ([0, 0, 1, -1, 0], [-1.0, -3.0, -0.5, -9.0, -0.25]);
/// let (values, cu_steps) = step_confidences_packed(&ids, &lps, &Packed::new(&[0, 4, 5]).unwrap(), 1)
///     .unwrap();
/// assert_eq!((values, cu_steps), (vec![-2.0, -0.5, -0.25], vec![0, 2, 3]));
/// ```
pub fn step_confidences_packed<L: LogProb>(
    step_ids: &[i32],
    logprobs: &[L],
    packed: &Packed<'_>,
    threads: usize,
) -> Result<(Vec<f64>, Vec<i64>)> {
    packed.check_len("step_ids", step_ids.len())?;
    packed.check_len("logprobs", logprobs.len())?;
    let outs = vec![(); packed.len()];
    let per_rollout = crate::parallel::map_rollouts_with(
        packed,
        outs,
        threads,
        Vec::<LaneSum>::new,
        |sums, b, r, ()| {
            let rollout = Rollout {
                step_ids: &step_ids[r.clone()],
                logprobs: &logprobs[r.clone()],
                correct: false,
                index: b,
                at: r.start.into(),
            };
            validate(&rollout)?;
            let bound = rollout.step_ids.iter().fold(-1, |m, &id| m.max(id)) + 1;
            sums.clear();
            sums.resize(bound as usize, LaneSum::default());
            for (&id, &lp) in rollout.step_ids.iter().zip(rollout.logprobs) {
                if id >= 0 {
                    sums[id as usize].add(lp.to_f64());
                }
            }
            Ok(sums.iter().map(LaneSum::mean).collect::<Vec<f64>>())
        },
    );
    let mut values = Vec::new();
    let mut cu_steps = vec![0i64];
    for steps in per_rollout {
        values.extend(steps?);
        cu_steps.push(values.len() as i64);
    }
    Ok((values, cu_steps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Mode;

    fn opts(ratio: f64) -> SelectOptions {
        SelectOptions {
            ratio,
            mode: Mode::Both,
            selection: SelectionRule::Confidence,
            granularity: Granularity::Step,
            seed: 0,
            nonfinite: NonFinite::Raise,
        }
    }

    fn mask(step_ids: &[i32], lps: &[f64], correct: bool, o: SelectOptions) -> Vec<bool> {
        let cu = [0, step_ids.len() as i64];
        let packed = Packed::new(&cu).unwrap();
        keep_mask_packed(step_ids, lps, &packed, &[correct], &o, 1)
            .unwrap()
            .keep
    }

    #[test]
    fn correct_loses_lowest_failed_loses_highest() {
        // Four steps with confidences -1, -3, -2, -0.5 (step 1 has two tokens).
        let ids = [0, 1, 1, 2, 3];
        let lps = [-1.0, -2.0, -4.0, -2.0, -0.5];
        assert_eq!(
            mask(&ids, &lps, true, opts(0.5)),
            [true, false, false, false, true]
        );
        assert_eq!(
            mask(&ids, &lps, false, opts(0.5)),
            [false, true, true, true, false]
        );
    }

    #[test]
    fn ties_go_to_lower_step_and_signed_zero_ties() {
        let ids = [0, 1, 2];
        assert_eq!(
            mask(&ids, &[-1.0, -1.0, -1.0], true, opts(0.34)),
            [false, true, true]
        );
        assert_eq!(
            mask(&ids, &[-0.0, 0.0, -0.0], false, opts(0.34)),
            [false, true, true]
        );
    }

    #[test]
    fn outside_steps_never_count_nor_get_zeroed() {
        let ids = [0, -1, 1, -1];
        let lps = [-5.0, -9.0, -1.0, -9.0];
        assert_eq!(mask(&ids, &lps, true, opts(0.5)), [false, true, true, true]);
        let mut o = opts(0.5);
        o.granularity = Granularity::Token;
        assert_eq!(mask(&ids, &lps, true, o), [false, true, true, true]);
    }

    #[test]
    fn unordered_step_ids_give_the_same_selection() {
        // Steps listed out of order (not segmenter output, but valid input).
        let ordered = mask(
            &[0, 0, 1, 2, 2],
            &[-1.0, -3.0, -0.5, -4.0, -1.0],
            true,
            opts(0.34),
        );
        let shuffled = mask(
            &[2, 2, 1, 0, 0],
            &[-4.0, -1.0, -0.5, -1.0, -3.0],
            true,
            opts(0.34),
        );
        assert_eq!(ordered, [true, true, true, false, false]);
        assert_eq!(shuffled, [false, false, true, true, true]);
        // Interleaved ids sum in token order, like the reference.
        let inter = mask(&[0, 1, 0, 1], &[-1.0, -2.0, -1.0, -2.0], true, opts(0.5));
        assert_eq!(inter, [true, false, true, false]);
    }

    #[test]
    fn mode_excludes_rollouts() {
        let mut o = opts(0.5);
        o.mode = Mode::Failed;
        assert_eq!(mask(&[0, 1], &[-1.0, -2.0], true, o), [true, true]);
        o.mode = Mode::Correct;
        assert_eq!(mask(&[0, 1], &[-1.0, -2.0], true, o), [true, false]);
    }

    #[test]
    fn bad_inputs_name_their_argument() {
        let cu = [0i64, 2];
        let p = Packed::new(&cu).unwrap();
        let o = opts(0.3);
        let err = |ids: &[i32], lps: &[f64], c: &[bool], o: &SelectOptions| {
            keep_mask_packed(ids, lps, &p, c, o, 1).unwrap_err().arg
        };
        assert_eq!(err(&[0, 0], &[f64::NAN, 0.0], &[true], &o), "logprobs");
        assert_eq!(
            err(&[0, 0], &[0.0, f64::NEG_INFINITY], &[true], &o),
            "logprobs"
        );
        assert_eq!(err(&[0, 2], &[0.0, 0.0], &[true], &o), "step_ids");
        assert_eq!(err(&[0, -2], &[0.0, 0.0], &[true], &o), "step_ids");
        assert_eq!(err(&[0], &[0.0, 0.0], &[true], &o), "step_ids, cu_seqlens");
        assert_eq!(err(&[0, 0], &[0.0], &[true], &o), "logprobs, cu_seqlens");
        assert_eq!(err(&[0, 0], &[0.0, 0.0], &[], &o), "correct, cu_seqlens");
        let bad = SelectOptions { ratio: 1.5, ..o };
        assert_eq!(err(&[0, 0], &[0.0, 0.0], &[true], &bad), "ratio");
        let nan = SelectOptions {
            ratio: f64::NAN,
            ..o
        };
        assert_eq!(err(&[0, 0], &[0.0, 0.0], &[true], &nan), "ratio");
    }
}
