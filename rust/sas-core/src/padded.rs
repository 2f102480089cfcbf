//! The SAS keep mask straight from padded (B, A) arrays, the layout trainers hold.
//!
//! Packing a padded batch and scattering the result back cost more than the SAS
//! kernel itself (see benchmarks/README.md). Here each row is gathered into per-thread
//! buffers, segmented and selected there, and its keep flags are written straight into
//! the (B, A) output: no batch-sized intermediate array. The caller multiplies its
//! advantages by the mask in whatever dtype and layout it holds them (one per rollout
//! as GRPO's, or per token as with a KL penalty in the reward).

use crate::confidence::LogProb;
use crate::error::{Result, SasError};
use crate::fused::{run_range, select_runs};
use crate::options::{Granularity, SelectOptions};
use crate::packed::Packed;
use crate::parallel::map_rollouts;
use crate::scratch::Scratch;
use crate::segment::{segment_rollout, TokenId};
use crate::select::{select_rollout, Rollout};
use crate::vocab::StepTable;

/// A padded batch: row-major (B, width) arrays and one rollout per row.
pub struct Padded<'a, I, L> {
    pub ids: &'a [I],
    pub logprobs: &'a [L],
    /// Set on the row's response tokens (any padding side, holes allowed).
    pub mask: &'a [bool],
    pub width: usize,
    pub correct: &'a [bool],
}

/// The keep mask (B*width, row-major; false exactly on the response tokens of the
/// selected units, true elsewhere, padding included), and per row the number of units,
/// of selected units and of tokens they cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaddedSelection {
    pub keep: Vec<bool>,
    pub n_units: Vec<u32>,
    pub n_selected: Vec<u32>,
    pub n_zeroed_tokens: Vec<u32>,
}

impl<I, L> Padded<'_, I, L> {
    fn check(&self) -> Result<usize> {
        let rows = self.correct.len();
        let cells = rows.checked_mul(self.width);
        for (arg, len) in [
            ("response_ids", self.ids.len()),
            ("logprobs", self.logprobs.len()),
            ("action_mask", self.mask.len()),
        ] {
            if Some(len) != cells {
                return Err(SasError::new(
                    arg,
                    format!("has {len} entries, expected {rows} rows x {}", self.width),
                ));
            }
        }
        Ok(rows)
    }
}

fn in_row(b: usize) -> impl Fn(SasError) -> SasError {
    move |e| {
        let arg = if e.arg == "token_ids" {
            "response_ids"
        } else {
            e.arg
        };
        SasError::new(arg, format!("row {b}: {}", e.msg))
    }
}

/// Segments and selects every row of a padded batch.
///
/// ```
/// use sas_core::{keep_mask_padded, Padded, SelectOptions, StepTable};
/// // A three-token vocabulary: "a", "b" and a blank line.
/// let table = StepTable::from_bytes(&[&b"a"[..], b"b", b"\n\n"], None, &[]).unwrap();
/// // One correct rollout of four steps, "a|a|b|b" (the last one unterminated), and a
/// // padding column.
/// let ids: [i64; 8] = [0, 2, 0, 2, 1, 2, 1, 0];
/// let lps = [-0.1, -0.1, -2.0, -0.1, -0.2, -0.1, -0.3, 0.0];
/// let mask = [true, true, true, true, true, true, true, false];
/// let batch = Padded { ids: &ids, logprobs: &lps, mask: &mask, width: 8, correct: &[true] };
/// let opts = SelectOptions { ratio: 0.3, ..SelectOptions::default() };
/// let out = keep_mask_padded(&table, &batch, &opts, 1).unwrap();
/// // k = floor(0.3 * 4) = 1: the least confident step of a correct rollout, the second.
/// assert_eq!(out.keep, [true, true, false, false, true, true, true, true]);
/// assert_eq!((out.n_units[0], out.n_selected[0], out.n_zeroed_tokens[0]), (4, 1, 2));
/// ```
pub fn keep_mask_padded<I: TokenId, L: LogProb>(
    table: &StepTable,
    batch: &Padded<'_, I, L>,
    opts: &SelectOptions,
    threads: usize,
) -> Result<PaddedSelection> {
    opts.validate()?;
    let rows = batch.check()?;
    let w = batch.width;
    let cu: Vec<i64> = (0..=rows).map(|b| (b * w) as i64).collect();
    let packed = Packed::new(&cu)?;
    let mut out = vec![true; rows * w];
    let results = map_rollouts(
        &packed,
        &mut out,
        threads,
        Scratch::default,
        |s, b, r, row| {
            // Gather the row's response tokens.
            let (mut pos, mut ids, mut lps) = s.take_row();
            for (j, &m) in batch.mask[r.clone()].iter().enumerate() {
                if m {
                    pos.push(j as u32);
                    ids.push(batch.ids[r.start + j].to_i64());
                    lps.push(batch.logprobs[r.start + j].to_f64());
                }
            }
            let correct = batch.correct[b];
            row.fill(true);
            let result = if opts.granularity == Granularity::Step {
                select_runs(table, &ids, &lps, correct, b, 0, opts, s).map(|(n, k)| {
                    s.chosen.clear();
                    s.chosen.resize(n, false);
                    for &(_, step) in &s.units[..k] {
                        s.chosen[step as usize] = true;
                    }
                    let mut zeroed_tokens = 0;
                    for (j, &(_, step)) in s.runs.iter().enumerate() {
                        if step >= 0 && s.chosen[step as usize] {
                            let cols = &pos[run_range(&s.runs, j, ids.len())];
                            zeroed_tokens += cols.len() as u32;
                            for &p in cols {
                                row[p as usize] = false;
                            }
                        }
                    }
                    (n as u32, k as u32, zeroed_tokens)
                })
            } else {
                let mut steps = std::mem::take(&mut s.steps);
                let mut keep = std::mem::take(&mut s.keep);
                steps.clear();
                steps.resize(ids.len(), 0);
                keep.clear();
                keep.resize(ids.len(), true);
                let result = segment_rollout(table, &ids, &mut steps, 0).and_then(|_| {
                    let rollout = Rollout {
                        step_ids: &steps,
                        logprobs: &lps,
                        correct,
                        index: b,
                        offset: 0,
                    };
                    select_rollout(&rollout, opts, s, &mut keep)
                });
                for (&p, &k) in pos.iter().zip(&keep) {
                    row[p as usize] = k;
                }
                let zeroed_tokens = keep.iter().filter(|&&k| !k).count() as u32;
                (s.steps, s.keep) = (steps, keep);
                result.map(|(n, k)| (n, k, zeroed_tokens))
            };
            s.put_row(pos, ids, lps);
            result.map_err(in_row(b))
        },
    );
    let counts = results.into_iter().collect::<Result<Vec<_>>>()?;
    Ok(PaddedSelection {
        keep: out,
        n_units: counts.iter().map(|c| c.0).collect(),
        n_selected: counts.iter().map(|c| c.1).collect(),
        n_zeroed_tokens: counts.iter().map(|c| c.2).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{Mode, SelectionRule};
    use crate::testutil;
    use crate::{keep_mask_packed, segment_packed};

    /// The padded path equals packing by hand, segment + keep_mask, and broadcasting.
    #[test]
    fn padded_equals_packed_pipeline() {
        let table = testutil::newline_table();
        let mut next = testutil::random(11);
        for _ in 0..200 {
            let (rows, width) = (4usize, (next() % 60) as usize + 1);
            let ids: Vec<i32> = (0..rows * width).map(|_| (next() % 9) as i32).collect();
            let lps: Vec<f32> = (0..rows * width)
                .map(|_| -((next() % 500) as f32) / 50.0)
                .collect();
            let mask: Vec<bool> = (0..rows * width).map(|_| next() % 4 != 0).collect();
            let correct: Vec<bool> = (0..rows).map(|_| next() % 2 == 0).collect();
            // Pack by hand.
            let (mut pids, mut plps, mut cu) = (vec![], vec![], vec![0i64]);
            for b in 0..rows {
                for j in 0..width {
                    if mask[b * width + j] {
                        pids.push(ids[b * width + j]);
                        plps.push(lps[b * width + j]);
                    }
                }
                cu.push(pids.len() as i64);
            }
            let packed = Packed::new(&cu).unwrap();
            for granularity in [Granularity::Step, Granularity::Token] {
                let opts = SelectOptions {
                    ratio: 0.4,
                    mode: Mode::Both,
                    selection: SelectionRule::Confidence,
                    granularity,
                    seed: 1,
                };
                let (steps, _) = segment_packed(&table, &pids, &packed, 1).unwrap();
                let sel = keep_mask_packed(&steps, &plps, &packed, &correct, &opts, 1).unwrap();
                let batch = Padded {
                    ids: &ids,
                    logprobs: &lps,
                    mask: &mask,
                    width,
                    correct: &correct,
                };
                let got = keep_mask_padded(&table, &batch, &opts, 2).unwrap();
                assert_eq!(got.n_units, sel.n_units);
                assert_eq!(got.n_selected, sel.n_selected);
                let zeroed: Vec<u32> = (0..rows)
                    .map(|b| {
                        sel.keep[cu[b] as usize..cu[b + 1] as usize]
                            .iter()
                            .filter(|&&k| !k)
                            .count() as u32
                    })
                    .collect();
                assert_eq!(got.n_zeroed_tokens, zeroed);
                let mut t = 0;
                for b in 0..rows {
                    for j in 0..width {
                        let v = got.keep[b * width + j];
                        if mask[b * width + j] {
                            assert_eq!(v, sel.keep[t]);
                            t += 1;
                        } else {
                            assert!(v, "padding is never selected");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn padded_errors_name_the_row() {
        let table = StepTable::from_bytes(&[b"a".as_slice()], None, &[]).unwrap();
        let opts = SelectOptions::default();
        let batch = |ids: &'static [i64], lps: &'static [f64]| Padded {
            ids,
            logprobs: lps,
            mask: &[true, true, false, true],
            width: 2,
            correct: &[true, false],
        };
        let e = keep_mask_padded(&table, &batch(&[0, 0, 0, 5], &[0.0; 4]), &opts, 1);
        let e = e.unwrap_err();
        assert_eq!(e.arg, "response_ids");
        assert!(e.msg.starts_with("row 1:"), "{}", e.msg);
        // A NaN under the mask is an error; off the mask it is padding.
        let e = keep_mask_padded(
            &table,
            &batch(&[0; 4], &[0.0, f64::NAN, 0.0, 0.0]),
            &opts,
            1,
        );
        assert_eq!(e.unwrap_err().arg, "logprobs");
        assert!(keep_mask_padded(
            &table,
            &batch(&[0; 4], &[0.0, 0.0, f64::NAN, 0.0]),
            &opts,
            1
        )
        .is_ok());
        let short = Padded {
            width: 3,
            ..batch(&[0; 4], &[0.0; 4])
        };
        assert_eq!(
            keep_mask_padded(&table, &short, &opts, 1).unwrap_err().arg,
            "response_ids"
        );
    }
}
