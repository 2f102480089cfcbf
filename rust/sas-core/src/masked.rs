//! The packed calls from token ids, with or without an action mask. With one (a packed
//! layout of multi-turn or tool-using rollouts), tokens off the mask (tool output,
//! observations) stay in the arrays but are in no step, never ranked, never selected:
//! each rollout is read as a padded row is ([`crate::padded`]), its action tokens
//! gathered and segmented turn by turn, a turn being a maximal run of them; so packed
//! and padded give the same steps. Without one, they are the single-turn kernels.

use crate::confidence::LogProb;
use crate::error::{Positions, Result};
use crate::options::SelectOptions;
use crate::packed::Packed;
use crate::padded::{opens_turn, select_row, Cells};
use crate::parallel::map_rollouts;
use crate::scratch::Scratch;
use crate::segment::{segment_rollout, TokenId};
use crate::select::{select_packed, Selected};
use crate::vocab::StepTable;

/// Step id per token of a packed batch (-1 off the action mask, when given), and each
/// rollout's step count.
///
/// ```
/// use sas_core::{masked::segment_packed_masked, Packed, StepTable};
/// let table = StepTable::from_bytes(&[&b"a"[..], b"\n"], None, &[]).unwrap();
/// // "a\n" | tool output "aa" | "\na": no blank line across the gap, and yet two turns
/// let ids = [0i64, 1, 0, 0, 1, 0];
/// let mask = [true, true, false, false, true, true];
/// let steps_counts =
///     segment_packed_masked(&table, &ids, Some(&mask), &Packed::new(&[0, 6]).unwrap(), 1);
/// assert_eq!(steps_counts.unwrap(), (vec![0, 0, -1, -1, 1, 1], vec![2]));
/// ```
pub fn segment_packed_masked<I: TokenId>(
    table: &StepTable,
    ids: &[I],
    mask: Option<&[bool]>,
    packed: &Packed<'_>,
    threads: usize,
) -> Result<(Vec<i32>, Vec<u32>)> {
    let Some(mask) = mask else {
        return crate::segment_packed(table, ids, packed, threads);
    };
    packed.check_len("token_ids", ids.len())?;
    packed.check_len("action_mask", mask.len())?;
    let mut steps = vec![-1i32; packed.n_tokens()];
    let counts = map_rollouts(
        packed,
        &mut steps,
        threads,
        Scratch::default,
        |s, _, r, out| {
            let (mut pos, mut gathered, lps) = s.take_row();
            for (j, _) in mask[r.clone()].iter().enumerate().filter(|(_, &m)| m) {
                pos.push(j as u32);
                gathered.push(ids[r.start + j].to_i64());
            }
            let mut turn_steps = std::mem::take(&mut s.steps);
            turn_steps.clear();
            turn_steps.resize(gathered.len(), -1);
            let turn_start = |j: usize| opens_turn(&pos, j);
            let at = Positions {
                offset: r.start,
                cols: Some(&pos),
            };
            let n = segment_rollout(table, &gathered, &mut turn_steps, at, turn_start);
            for (&p, &step) in pos.iter().zip(&turn_steps) {
                out[p as usize] = step;
            }
            s.steps = turn_steps;
            s.put_row(pos, gathered, lps);
            n
        },
    );
    Ok((steps, counts.into_iter().collect::<Result<Vec<_>>>()?))
}

/// Keep mask of a packed batch straight from token ids. With an action mask, each
/// rollout is selected as a padded row is (true off the mask); without, by the fused
/// single-turn kernel ([`crate::sas_mask_packed`]). A rollout whose (action tokens')
/// log-probs hold NaN/inf: as in [`crate::keep_mask_packed`].
#[allow(clippy::too_many_arguments)] // the batch's arrays, the options and the pool
pub fn sas_mask_packed_masked<I: TokenId, L: LogProb>(
    table: &StepTable,
    ids: &[I],
    logprobs: &[L],
    mask: Option<&[bool]>,
    packed: &Packed<'_>,
    correct: &[bool],
    opts: &SelectOptions,
    threads: usize,
) -> Result<Selected> {
    let Some(mask) = mask else {
        return crate::sas_mask_packed(table, ids, logprobs, packed, correct, opts, threads);
    };
    let arrays = [
        ("token_ids", ids.len()),
        ("logprobs", logprobs.len()),
        ("action_mask", mask.len()),
    ];
    select_packed(packed, opts, correct, &arrays, threads, |s, b, r, out| {
        let cells = Cells {
            ids: &ids[r.clone()],
            logprobs: &logprobs[r.clone()],
            mask: &mask[r.clone()],
            correct: correct[b],
            offset: r.start,
        };
        let counts = select_row(table, &cells, opts, s, b, out)?;
        Ok((counts.units, counts.selected))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Granularity;
    use crate::padded::keep_mask_padded;
    use crate::testutil;

    /// A packed batch with an action mask equals the padded batch of the same rows.
    #[test]
    fn packed_with_a_mask_equals_padded() {
        let table = testutil::newline_table();
        let mut next = testutil::random(17);
        for _ in 0..200 {
            let (rows, width) = (3usize, (next() % 30) as usize + 1);
            let t = testutil::random_batch::<i64, f64>(&mut next, rows, width, 3);
            let (mask, correct) = (Some(t.mask.as_slice()), &t.correct);
            let cu: Vec<i64> = (0..=rows).map(|b| (b * width) as i64).collect();
            let packed = Packed::new(&cu).unwrap();
            for granularity in [Granularity::Step, Granularity::Token] {
                let opts = SelectOptions {
                    ratio: 0.4,
                    granularity,
                    seed: 3,
                    ..SelectOptions::default()
                };
                let want = keep_mask_padded(&table, &t.padded(), &opts, 1).unwrap();
                let got = sas_mask_packed_masked(
                    &table, &t.ids, &t.lps, mask, &packed, correct, &opts, 2,
                );
                let got = got.unwrap();
                assert_eq!((got.keep, got.n_units), (want.keep, want.n_units.clone()));
                assert_eq!(got.n_selected, want.n_selected);
                // the steps: off the mask -1, and as many per rollout as padded ranks
                let (steps, counts) =
                    segment_packed_masked(&table, &t.ids, mask, &packed, 2).unwrap();
                assert!(steps.iter().zip(&t.mask).all(|(&s, &m)| m || s == -1));
                if granularity == Granularity::Step {
                    assert_eq!(counts, want.n_units);
                }
            }
        }
    }

    #[test]
    fn lengths_are_checked() {
        let table = testutil::newline_table();
        let packed = Packed::new(&[0, 2]).unwrap();
        let err = segment_packed_masked(&table, &[0i64, 0], Some(&[true]), &packed, 1);
        assert_eq!(err.unwrap_err().arg, "action_mask, cu_seqlens");
    }

    /// A bad token after a hole is named by its position in the batch, not by its
    /// index among the rollout's action tokens (3 here).
    #[test]
    fn a_bad_token_is_named_by_its_position_in_the_batch() {
        let table = testutil::newline_table();
        let packed = Packed::new(&[0, 2, 8]).unwrap();
        let mask = [true, true, true, false, false, true, true, true];
        let (ids, lps) = ([0i64, 0, 0, 0, 0, 0, 99, 0], [-1.0f64; 8]);
        let err = segment_packed_masked(&table, &ids, Some(&mask), &packed, 1).unwrap_err();
        assert!(err
            .msg
            .ends_with("token id 99 at position 6 is outside the vocabulary (0..9)"));
        let opts = SelectOptions::default();
        let select = |ids: &[i64], lps: &[f64]| {
            sas_mask_packed_masked(&table, ids, lps, Some(&mask), &packed, &[true; 2], &opts, 1)
        };
        assert!(select(&ids, &lps)
            .unwrap_err()
            .msg
            .contains("at position 6 "));
        let mut nan = lps;
        nan[6] = f64::NAN;
        let err = select(&[0; 8], &nan).unwrap_err();
        assert_eq!(
            (err.arg, err.msg.as_str()),
            ("logprobs", "must be finite, got NaN at position 6")
        );
    }
}
