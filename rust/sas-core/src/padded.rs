//! SAS advantages straight from padded (B, A) arrays, the layout trainers hold.
//!
//! Packing a padded batch and scattering the result back cost more than the SAS
//! kernel itself (see benchmarks/README.md). Here each row is gathered into per-thread
//! buffers, segmented and selected there, and its advantages are written straight into
//! the (B, A) output: no batch-sized intermediate array.

use crate::error::{Result, SasError};
use crate::fused::{run_range, select_runs};
use crate::packed::Packed;
use crate::parallel::map_rollouts;
use crate::segment::{segment_rollout, TokenId};
use crate::select::{select_rollout, Granularity, LogProb, Rollout, Scratch, SelectOptions};
use crate::vocab::StepTable;

/// A padded batch: row-major (B, width) arrays and one rollout per row.
pub struct Padded<'a, I, L> {
    pub ids: &'a [I],
    pub logprobs: &'a [L],
    /// Set on the row's response tokens (any padding side, holes allowed).
    pub mask: &'a [bool],
    pub width: usize,
    pub correct: &'a [bool],
    /// The rollout's advantage (e.g. GRPO's), given to its kept tokens.
    pub advantages: &'a [f64],
}

/// Per-token advantages (B*width, row-major; 0 off the mask and on selected steps),
/// and per row the number of units, of selected units and of tokens they cover.
#[derive(Debug, Clone, PartialEq)]
pub struct PaddedAdvantages {
    pub advantages: Vec<f32>,
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
        if self.advantages.len() != rows {
            return Err(SasError::new(
                "advantages",
                format!("has {} entries for {rows} rows", self.advantages.len()),
            ));
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

pub fn sas_advantages_padded<I: TokenId, L: LogProb>(
    table: &StepTable,
    batch: &Padded<'_, I, L>,
    opts: &SelectOptions,
    threads: usize,
) -> Result<PaddedAdvantages> {
    opts.validate()?;
    let rows = batch.check()?;
    let w = batch.width;
    let cu: Vec<i64> = (0..=rows).map(|b| (b * w) as i64).collect();
    let packed = Packed::new(&cu)?;
    let mut out = vec![0.0f32; rows * w];
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
            let adv = batch.advantages[b] as f32;
            let correct = batch.correct[b];
            row.fill(0.0);
            let result = if opts.granularity == Granularity::Step {
                select_runs(table, &ids, &lps, correct, b, 0, opts, s).map(|(n, k)| {
                    s.chosen.clear();
                    s.chosen.resize(n, false);
                    for &(_, step) in &s.units[..k] {
                        s.chosen[step as usize] = true;
                    }
                    let mut zeroed_tokens = 0;
                    for (j, &(_, step)) in s.runs.iter().enumerate() {
                        let zeroed = step >= 0 && s.chosen[step as usize];
                        let value = if zeroed { 0.0 } else { adv };
                        let cols = &pos[run_range(&s.runs, j, ids.len())];
                        zeroed_tokens += if zeroed { cols.len() as u32 } else { 0 };
                        for &p in cols {
                            row[p as usize] = value;
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
                    row[p as usize] = if k { adv } else { 0.0 };
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
    Ok(PaddedAdvantages {
        advantages: out,
        n_units: counts.iter().map(|c| c.0).collect(),
        n_selected: counts.iter().map(|c| c.1).collect(),
        n_zeroed_tokens: counts.iter().map(|c| c.2).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpo::grpo_advantages;
    use crate::select::{Mode, Selection};
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
            let rewards: Vec<f64> = correct.iter().map(|&c| c as u8 as f64).collect();
            let adv = grpo_advantages(&rewards, 2, 1e-6).unwrap();
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
                    selection: Selection::Confidence,
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
                    advantages: &adv,
                };
                let got = sas_advantages_padded(&table, &batch, &opts, 2).unwrap();
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
                        let v = got.advantages[b * width + j];
                        if mask[b * width + j] {
                            let want = if sel.keep[t] { adv[b] as f32 } else { 0.0 };
                            assert_eq!(v, want);
                            t += 1;
                        } else {
                            assert_eq!(v, 0.0);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn padded_errors_name_the_row() {
        let table = StepTable::from_bytes(&[b"a".as_slice()], None, &[]).unwrap();
        let opts = SelectOptions {
            ratio: 0.3,
            mode: Mode::Both,
            selection: Selection::Confidence,
            granularity: Granularity::Step,
            seed: 0,
        };
        let batch = |ids: &'static [i64], lps: &'static [f64]| Padded {
            ids,
            logprobs: lps,
            mask: &[true, true, false, true],
            width: 2,
            correct: &[true, false],
            advantages: &[1.0, -1.0],
        };
        let e = sas_advantages_padded(&table, &batch(&[0, 0, 0, 5], &[0.0; 4]), &opts, 1);
        let e = e.unwrap_err();
        assert_eq!(e.arg, "response_ids");
        assert!(e.msg.starts_with("row 1:"), "{}", e.msg);
        // A NaN under the mask is an error; off the mask it is padding.
        let e = sas_advantages_padded(
            &table,
            &batch(&[0; 4], &[0.0, f64::NAN, 0.0, 0.0]),
            &opts,
            1,
        );
        assert_eq!(e.unwrap_err().arg, "logprobs");
        assert!(sas_advantages_padded(
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
            sas_advantages_padded(&table, &short, &opts, 1)
                .unwrap_err()
                .arg,
            "response_ids"
        );
    }
}
