//! Step selection: which steps of each rollout get a zero advantage.
//!
//! With n units (steps, or tokens at token granularity) in a rollout, k = floor(r*n)
//! are selected: the lowest-confidence units of a correct rollout, the highest-confidence
//! units of a failed one (or k random units), ties to the lower unit id. A step's
//! confidence is the mean log-prob of its tokens, summed left to right in f64 so that
//! the pure-Python reference gets bit-identical values and therefore the same ranking.

use crate::error::{Result, SasError};
use crate::packed::Packed;
use crate::parallel::map_rollouts;
use crate::rng::unit_key;

/// Which rollouts may get zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Both,
    Correct,
    Failed,
}

/// How units are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    Confidence,
    Random,
}

/// What a unit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Step,
    Token,
}

fn unknown(arg: &'static str, got: &str, allowed: &str) -> SasError {
    SasError::new(arg, format!("must be one of {allowed}, got {got:?}"))
}

impl Mode {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "both" => Ok(Mode::Both),
            "correct" => Ok(Mode::Correct),
            "failed" => Ok(Mode::Failed),
            _ => Err(unknown("mode", s, "'both', 'correct', 'failed'")),
        }
    }

    fn applies(self, correct: bool) -> bool {
        match self {
            Mode::Both => true,
            Mode::Correct => correct,
            Mode::Failed => !correct,
        }
    }
}

impl Selection {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "confidence" => Ok(Selection::Confidence),
            "random" => Ok(Selection::Random),
            _ => Err(unknown("selection", s, "'confidence', 'random'")),
        }
    }
}

impl Granularity {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "step" => Ok(Granularity::Step),
            "token" => Ok(Granularity::Token),
            _ => Err(unknown("granularity", s, "'step', 'token'")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelectOptions {
    pub ratio: f64,
    pub mode: Mode,
    pub selection: Selection,
    pub granularity: Granularity,
    pub seed: u64,
}

impl SelectOptions {
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.ratio) {
            return Err(SasError::new(
                "ratio",
                format!("must be in [0, 1], got {}", self.ratio),
            ));
        }
        Ok(())
    }
}

/// k = floor(ratio * n) with a 1e-9 tolerance, so that 0.3 * 10 selects 3 units.
pub fn n_selected(ratio: f64, n: usize) -> usize {
    ((ratio * n as f64 + 1e-9).floor() as usize).min(n)
}

/// Float types accepted as log-probs.
pub trait LogProb: Copy + Send + Sync {
    fn to_f64(self) -> f64;
}

impl LogProb for f32 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl LogProb for f64 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

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

/// Per-thread buffers, reused across rollouts.
#[derive(Default)]
struct Scratch {
    sum: Vec<f64>,
    count: Vec<u32>,
    units: Vec<(u64, u32)>,
    chosen: Vec<bool>,
}

struct Rollout<'a, L> {
    step_ids: &'a [i32],
    logprobs: &'a [L],
    correct: bool,
    index: usize,
    offset: usize,
}

fn select_rollout<L: LogProb>(
    r: &Rollout<'_, L>,
    opts: &SelectOptions,
    s: &mut Scratch,
    keep: &mut [bool],
) -> Result<(u32, u32)> {
    let len = r.step_ids.len();
    let by_step = opts.granularity == Granularity::Step;
    if by_step {
        s.sum.clear();
        s.sum.resize(len, 0.0);
        s.count.clear();
        s.count.resize(len, 0);
    }
    let mut in_step_tokens = 0usize;
    for (i, (&id, &lp)) in r.step_ids.iter().zip(r.logprobs).enumerate() {
        let lp = lp.to_f64();
        if !lp.is_finite() {
            return Err(SasError::new(
                "logprobs",
                format!("must be finite, got {lp} at position {}", r.offset + i),
            ));
        }
        if id < -1 || id as i64 >= len as i64 {
            return Err(SasError::new(
                "step_ids",
                format!(
                    "must be -1 or in [0, rollout length {len}), got {id} at position {}",
                    r.offset + i
                ),
            ));
        }
        if id >= 0 {
            in_step_tokens += 1;
            if by_step {
                s.sum[id as usize] += lp;
                s.count[id as usize] += 1;
            }
        }
    }

    s.units.clear();
    if by_step {
        for (id, (&sum, &count)) in s.sum.iter().zip(&s.count).enumerate() {
            if count > 0 {
                s.units.push(((sum / count as f64).to_bits(), id as u32));
            }
        }
    } else {
        for (pos, (&id, &lp)) in r.step_ids.iter().zip(r.logprobs).enumerate() {
            if id >= 0 {
                s.units.push((lp.to_f64().to_bits(), pos as u32));
            }
        }
    }
    let n = s.units.len();
    debug_assert!(by_step || n == in_step_tokens);
    keep.fill(true);
    let k = n_selected(opts.ratio, n);
    if k == 0 || !opts.mode.applies(r.correct) {
        return Ok((n as u32, 0));
    }

    // Rewrite each unit's key so that the k smallest (key, id) pairs are the selection.
    for u in s.units.iter_mut() {
        u.0 = match opts.selection {
            Selection::Random => unit_key(opts.seed, r.index as u64, u.1 as u64),
            Selection::Confidence if r.correct => float_key(f64::from_bits(u.0)),
            Selection::Confidence => float_key(-f64::from_bits(u.0)),
        };
    }
    if k < n {
        s.units.select_nth_unstable(k - 1);
    }
    let chosen = &s.units[..k];
    if by_step {
        s.chosen.clear();
        s.chosen.resize(len, false);
        for &(_, id) in chosen {
            s.chosen[id as usize] = true;
        }
        for (kp, &id) in keep.iter_mut().zip(r.step_ids) {
            *kp = id < 0 || !s.chosen[id as usize];
        }
    } else {
        for &(_, pos) in chosen {
            keep[pos as usize] = false;
        }
    }
    Ok((n as u32, k as u32))
}

/// Keep mask of a packed batch: per token, false where its step (or token) is selected.
pub fn keep_mask_packed<L: LogProb>(
    step_ids: &[i32],
    logprobs: &[L],
    packed: &Packed<'_>,
    correct: &[bool],
    opts: &SelectOptions,
    threads: usize,
) -> Result<Selected> {
    opts.validate()?;
    let n_tokens = packed.n_tokens();
    let check_len = |arg: &'static str, got: usize, want: usize, what: &str| {
        if got == want {
            Ok(())
        } else {
            Err(SasError::new(
                arg,
                format!("has length {got} but {what} is {want}"),
            ))
        }
    };
    check_len(
        "step_ids",
        step_ids.len(),
        n_tokens,
        "the token count from cu_seqlens",
    )?;
    check_len(
        "logprobs",
        logprobs.len(),
        n_tokens,
        "the token count from cu_seqlens",
    )?;
    check_len(
        "correct",
        correct.len(),
        packed.len(),
        "the rollout count from cu_seqlens",
    )?;

    let mut keep = vec![true; n_tokens];
    let results = map_rollouts(
        packed,
        &mut keep,
        threads,
        Scratch::default,
        |s, b, r, out| {
            let rollout = Rollout {
                step_ids: &step_ids[r.clone()],
                logprobs: &logprobs[r.clone()],
                correct: correct[b],
                index: b,
                offset: r.start,
            };
            select_rollout(&rollout, opts, s, out)
        },
    );
    let counts = results.into_iter().collect::<Result<Vec<_>>>()?;
    let (n_units, n_selected) = counts.into_iter().unzip();
    Ok(Selected {
        keep,
        n_units,
        n_selected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(ratio: f64) -> SelectOptions {
        SelectOptions {
            ratio,
            mode: Mode::Both,
            selection: Selection::Confidence,
            granularity: Granularity::Step,
            seed: 0,
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
    fn k_uses_floor_with_tolerance() {
        assert_eq!(n_selected(0.3, 10), 3);
        assert_eq!(n_selected(0.3, 3), 0);
        assert_eq!(n_selected(0.3, 4), 1);
        assert_eq!(n_selected(1.0, 7), 7);
        assert_eq!(n_selected(0.0, 7), 0);
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
        assert_eq!(err(&[0], &[0.0, 0.0], &[true], &o), "step_ids");
        assert_eq!(err(&[0, 0], &[0.0], &[true], &o), "logprobs");
        assert_eq!(err(&[0, 0], &[0.0, 0.0], &[], &o), "correct");
        let bad = SelectOptions { ratio: 1.5, ..o };
        assert_eq!(err(&[0, 0], &[0.0, 0.0], &[true], &bad), "ratio");
        let nan = SelectOptions {
            ratio: f64::NAN,
            ..o
        };
        assert_eq!(err(&[0, 0], &[0.0, 0.0], &[true], &nan), "ratio");
        assert_eq!(Mode::parse("all").unwrap_err().arg, "mode");
    }
}
