//! SAS straight from padded (B, A) arrays, the layout trainers hold.
//!
//! Packing a padded batch and scattering the result back cost more than the SAS
//! kernel itself (see benchmarks/README.md). Here each row is gathered into per-thread
//! buffers, segmented and selected there, and its keep flags are written straight into
//! the (B, A) output: no batch-sized intermediate array. [`sas_padded`] also writes the
//! advantages (one per rollout as GRPO's, or per token as with a KL penalty in the
//! reward) into the caller's output in the same pass over the row, so that the public
//! padded call makes no batch-sized pass of its own.

use crate::confidence::LogProb;
use crate::error::{Positions, Result, SasError};
use crate::fused::{run_range, select_runs};
use crate::options::{Granularity, NonFinite, SelectOptions};
use crate::packed::Packed;
use crate::parallel::map_rollouts_with;
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
/// of selected units, of tokens they cover and of response tokens, and whether the row
/// was left unselected for a non-finite log-prob (see [`sas_padded`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaddedSelection {
    pub keep: Vec<bool>,
    pub n_units: Vec<u32>,
    pub n_selected: Vec<u32>,
    pub n_zeroed_tokens: Vec<u32>,
    pub n_tokens: Vec<u32>,
    pub nonfinite: Vec<bool>,
}

/// An advantage value type (the output's float type).
pub trait Advantage: Copy + Send + Sync {
    const ZERO: Self;
}

impl Advantage for f32 {
    const ZERO: f32 = 0.0;
}

impl Advantage for f64 {
    const ZERO: f64 = 0.0;
}

/// The advantages [`sas_padded`] writes, and where from.
#[derive(Debug, Clone, Copy)]
pub enum Advantages<'a, F> {
    /// None: the keep mask only.
    None,
    /// One per row (GRPO's): on the row's kept response tokens, 0 everywhere else.
    PerRow(&'a [F]),
    /// (B, width) row-major, one per token: as given, 0 on the selected tokens.
    PerToken(&'a [F]),
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

/// The keep mask of a padded batch: [`sas_padded`] without advantages, a NaN/inf
/// log-prob an error.
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
    sas_padded(table, batch, opts, threads, None, Written::None)
}

/// The advantages a padded call writes, in either float type, and its output
/// ((B, width) row-major, of that type).
pub enum Written<'a> {
    /// The keep mask only.
    None,
    F32(Advantages<'a, f32>, &'a mut [f32]),
    F64(Advantages<'a, f64>, &'a mut [f64]),
}

/// Segments and selects every row of a padded batch and writes the advantages of
/// `written` into its output, in the same pass over each row (see [`write_padded`]).
pub fn sas_padded<I: TokenId, L: LogProb>(
    table: &StepTable,
    batch: &Padded<'_, I, L>,
    opts: &SelectOptions,
    threads: usize,
    spare: Option<&[bool]>,
    written: Written<'_>,
) -> Result<PaddedSelection> {
    match written {
        Written::None => write_padded::<I, L, f32>(
            table,
            batch,
            opts,
            threads,
            spare,
            Advantages::None,
            &mut [],
        ),
        Written::F32(adv, out) => write_padded(table, batch, opts, threads, spare, adv, out),
        Written::F64(adv, out) => write_padded(table, batch, opts, threads, spare, adv, out),
    }
}

/// Segments and selects every row of a padded batch, and writes the advantages of
/// `adv` into `out` ((B, width) row-major; untouched for [`Advantages::None`]), in the
/// same pass over each row.
///
/// Some rows are left unselected (their advantage stands): those set in `spare` (B
/// flags, e.g. failed rollouts that were not truncated) and, under [`NonFinite::Keep`],
/// those whose response log-probs hold NaN or inf (`nonfinite[b]` set; selected as if
/// they were 0, so that their unit count stands; otherwise such a row is an error
/// naming it). Rows are selected independently, so the others are exactly what they
/// would be without them.
///
/// ```
/// use sas_core::{write_padded, Advantages, Padded, SelectOptions, StepTable};
/// let table = StepTable::from_bytes(&[&b"a"[..], b"\n\n"], None, &[]).unwrap();
/// // Two steps, "a\n\n|a", and a padding column; the second step is the less confident.
/// let (ids, lps) = ([0i32, 1, 0, 0], [-0.1f32, -0.1, -3.0, 0.0]);
/// let mask = [true, true, true, false];
/// let batch = Padded { ids: &ids, logprobs: &lps, mask: &mask, width: 4, correct: &[true] };
/// let opts = SelectOptions { ratio: 0.5, ..SelectOptions::default() };
/// let mut out = [9.0f32; 4];
/// let adv = Advantages::PerRow(&[1.5]);
/// let sel = write_padded(&table, &batch, &opts, 1, None, adv, &mut out).unwrap();
/// assert_eq!(out, [1.5, 1.5, 0.0, 0.0]); // the selected step and the padding get 0
/// assert_eq!(sel.keep, [true, true, false, true]);
/// ```
pub fn write_padded<I: TokenId, L: LogProb, F: Advantage>(
    table: &StepTable,
    batch: &Padded<'_, I, L>,
    opts: &SelectOptions,
    threads: usize,
    spare: Option<&[bool]>,
    adv: Advantages<'_, F>,
    out: &mut [F],
) -> Result<PaddedSelection> {
    opts.validate()?;
    let rows = batch.check()?;
    if let Some(flags) = spare {
        if flags.len() != rows {
            let msg = format!("has {} flags, expected one per row ({rows})", flags.len());
            return Err(SasError::new("spare", msg));
        }
    }
    let w = batch.width;
    let given = match adv {
        Advantages::None => None,
        Advantages::PerRow(a) => Some(("advantages", a.len(), rows)),
        Advantages::PerToken(a) => Some(("advantages", a.len(), rows * w)),
    };
    if let Some((arg, len, want)) = given {
        for (arg, len) in [(arg, len), ("out", out.len())] {
            let want = if arg == "out" { rows * w } else { want };
            if len != want {
                return Err(SasError::new(
                    arg,
                    format!("has {len} entries, expected {want}"),
                ));
            }
        }
    }
    let cu: Vec<i64> = (0..=rows).map(|b| (b * w) as i64).collect();
    let packed = Packed::new(&cu)?;
    let mut keep = vec![true; rows * w];
    // Each row's parts of both outputs (no advantages: empty slices).
    let mut outs = Vec::with_capacity(rows);
    let (mut k_rest, mut o_rest) = (&mut keep[..], out);
    let ow = if given.is_some() { w } else { 0 };
    for _ in 0..rows {
        let (k, kt) = std::mem::take(&mut k_rest).split_at_mut(w);
        let (o, ot) = std::mem::take(&mut o_rest).split_at_mut(ow);
        outs.push((k, o));
        (k_rest, o_rest) = (kt, ot);
    }
    let results = map_rollouts_with(
        &packed,
        outs,
        threads,
        Scratch::default,
        |s, b, r, (row, out_row)| {
            let spared = spare.is_some_and(|f| f[b]);
            let cells = Cells {
                ids: &batch.ids[r.clone()],
                logprobs: &batch.logprobs[r.clone()],
                mask: &batch.mask[r.clone()],
                correct: batch.correct[b],
                offset: 0,
            };
            let counts = select_row(table, &cells, opts, s, b, row).map(|c| {
                if spared {
                    c.unselect(row)
                } else {
                    c
                }
            });
            let mask = &batch.mask[r.clone()];
            match adv {
                Advantages::None => {}
                Advantages::PerRow(a) => {
                    for ((o, &m), &k) in out_row.iter_mut().zip(mask).zip(row.iter()) {
                        *o = if m && k { a[b] } else { F::ZERO };
                    }
                }
                Advantages::PerToken(a) => {
                    for ((o, &v), &k) in out_row.iter_mut().zip(&a[r.clone()]).zip(row.iter()) {
                        *o = if k { v } else { F::ZERO };
                    }
                }
            }
            counts.map_err(in_row(b))
        },
    );
    let counts = results.into_iter().collect::<Result<Vec<_>>>()?;
    Ok(PaddedSelection {
        keep,
        n_units: counts.iter().map(|c| c.units).collect(),
        n_selected: counts.iter().map(|c| c.selected).collect(),
        n_zeroed_tokens: counts.iter().map(|c| c.zeroed).collect(),
        n_tokens: counts.iter().map(|c| c.tokens).collect(),
        nonfinite: counts.iter().map(|c| c.nonfinite).collect(),
    })
}

/// Whether gathered token `j` opens a turn, `pos` holding the gathered tokens' columns:
/// a gap in the mask (tool output, an observation) ends a turn, and turns are segmented
/// on their own, so no step spans a gap.
pub(crate) fn opens_turn(pos: &[u32], j: usize) -> bool {
    j > 0 && pos[j] != pos[j - 1] + 1
}

/// One rollout's cells: a padded row, or a packed rollout with an action mask;
/// `offset`: the position of its first cell in the caller's array (0 for a row, whose
/// errors name it), for error messages.
pub(crate) struct Cells<'a, I, L> {
    pub ids: &'a [I],
    pub logprobs: &'a [L],
    pub mask: &'a [bool],
    pub correct: bool,
    pub offset: usize,
}

/// One row's counts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowCounts {
    pub units: u32,
    pub selected: u32,
    pub zeroed: u32,
    pub tokens: u32,
    pub nonfinite: bool,
}

impl RowCounts {
    /// The counts once the row is left unselected (`row` all kept): its units stand.
    fn unselect(self, row: &mut [bool]) -> Self {
        row.fill(true);
        Self {
            selected: 0,
            zeroed: 0,
            ..self
        }
    }
}

/// One row: gathers its response tokens, segments them turn by turn (a turn is a
/// maximal run of masked-in columns) and selects them, writes its keep flags into `row`.
pub(crate) fn select_row<I: TokenId, L: LogProb>(
    table: &StepTable,
    cells: &Cells<'_, I, L>,
    opts: &SelectOptions,
    s: &mut Scratch,
    b: usize,
    row: &mut [bool],
) -> Result<RowCounts> {
    let (mut pos, mut ids, mut lps) = s.take_row();
    let mut bad = false;
    for (j, &m) in cells.mask.iter().enumerate() {
        if m {
            pos.push(j as u32);
            ids.push(cells.ids[j].to_i64());
            let lp = cells.logprobs[j].to_f64();
            if opts.nonfinite == NonFinite::Keep && !lp.is_finite() {
                bad = true;
                lps.push(0.0);
            } else {
                lps.push(lp);
            }
        }
    }
    let correct = cells.correct;
    let turn_start = |j: usize| opens_turn(&pos, j);
    // errors name a token's column (in a packed batch, its position), not its index
    // among the gathered ones
    let at = Positions {
        offset: cells.offset,
        cols: Some(&pos),
    };
    let result = if opts.granularity == Granularity::Step {
        select_runs(table, &ids, turn_start, &lps, correct, b, at, opts, s).map(|(n, k)| {
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
        let result = segment_rollout(table, &ids, &mut steps, at, turn_start).and_then(|_| {
            let rollout = Rollout {
                step_ids: &steps,
                logprobs: &lps,
                correct,
                index: b,
                at,
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
    let tokens = pos.len() as u32;
    s.put_row(pos, ids, lps);
    let (units, selected, zeroed) = result?;
    let counts = RowCounts {
        units,
        selected,
        zeroed,
        tokens,
        nonfinite: bad,
    };
    Ok(if bad { counts.unselect(row) } else { counts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil;
    use crate::{keep_mask_packed, segment_packed};

    /// The padded path equals packing by hand, segment + keep_mask, and broadcasting,
    /// with each turn (a maximal run of masked-in columns) segmented as a rollout of
    /// its own and its step ids following the row's earlier turns'.
    #[test]
    fn padded_equals_packed_pipeline() {
        let table = testutil::newline_table();
        let mut next = testutil::random(11);
        for _ in 0..200 {
            let (rows, width) = (4usize, (next() % 60) as usize + 1);
            let t = testutil::random_batch::<i32, f32>(&mut next, rows, width, 4);
            let (ids, lps, mask, correct) = (&t.ids, &t.lps, &t.mask, &t.correct);
            // Pack by hand: rows (cu) and turns, (row, start, end) in the packed arrays.
            let (mut pids, mut plps, mut cu) = (vec![], vec![], vec![0i64]);
            let mut turns: Vec<(usize, usize, usize)> = vec![];
            for b in 0..rows {
                for j in 0..width {
                    if mask[b * width + j] {
                        let p = pids.len();
                        if j > 0 && mask[b * width + j - 1] {
                            turns.last_mut().unwrap().2 = p + 1;
                        } else {
                            turns.push((b, p, p + 1));
                        }
                        pids.push(ids[b * width + j]);
                        plps.push(lps[b * width + j]);
                    }
                }
                cu.push(pids.len() as i64);
            }
            // Each turn a rollout of its own, then its step ids after its row's earlier
            // turns' steps.
            let cu_turns: Vec<i64> = std::iter::once(0)
                .chain(turns.iter().map(|t| t.2 as i64))
                .collect();
            let (mut steps, counts) =
                segment_packed(&table, &pids, &Packed::new(&cu_turns).unwrap(), 1).unwrap();
            let (mut row, mut offset) = (usize::MAX, 0);
            for (t, &(b, start, end)) in turns.iter().enumerate() {
                if b != row {
                    (row, offset) = (b, 0);
                }
                for s in steps[start..end].iter_mut().filter(|s| **s >= 0) {
                    *s += offset;
                }
                offset += counts[t] as i32;
            }
            let packed = Packed::new(&cu).unwrap();
            for granularity in [Granularity::Step, Granularity::Token] {
                let opts = SelectOptions {
                    ratio: 0.4,
                    granularity,
                    seed: 1,
                    ..SelectOptions::default()
                };
                let sel = keep_mask_packed(&steps, &plps, &packed, correct, &opts, 1).unwrap();
                let got = keep_mask_padded(&table, &t.padded(), &opts, 2).unwrap();
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
                let tokens: Vec<u32> = (0..rows).map(|b| (cu[b + 1] - cu[b]) as u32).collect();
                assert_eq!(got.n_tokens, tokens);
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

    /// The advantages written in the kernel equal the keep mask applied afterwards, per
    /// row and per token; a row with a NaN under `NonFinite::Keep` is what selecting it
    /// with 0 there and then unselecting it gives, and the other rows do not change.
    #[test]
    fn advantages_and_nonfinite_rows_follow_the_keep_mask() {
        let table = testutil::newline_table();
        let mut next = testutil::random(5);
        for _ in 0..100 {
            let (rows, width) = (3usize, (next() % 40) as usize + 1);
            let t = testutil::random_batch::<i64, f64>(&mut next, rows, width, 4);
            let (mut lps, mask) = (t.lps.clone(), &t.mask);
            let opts = SelectOptions {
                ratio: 0.5,
                ..SelectOptions::default()
            };
            let batch = |logprobs: &[f64]| {
                let b = Padded {
                    logprobs,
                    ..t.padded()
                };
                keep_mask_padded(&table, &b, &opts, 1).unwrap()
            };
            let want = batch(&lps);
            let per_row = [0.5f32, -1.25, 2.0];
            let per_token: Vec<f32> = (0..rows * width).map(|i| i as f32 - 7.0).collect();
            let b = t.padded();
            let mut out = vec![f32::NAN; rows * width];
            let adv = Advantages::PerRow(&per_row);
            let got = write_padded(&table, &b, &opts, 2, None, adv, &mut out).unwrap();
            assert_eq!(got, want);
            for i in 0..rows * width {
                let on = mask[i] && want.keep[i];
                assert_eq!(out[i], if on { per_row[i / width] } else { 0.0 });
            }
            let adv = Advantages::PerToken(&per_token);
            let written = Written::F32(adv, &mut out);
            sas_padded(&table, &b, &opts, 1, None, written).unwrap();
            for i in 0..rows * width {
                assert_eq!(out[i], if want.keep[i] { per_token[i] } else { 0.0 });
            }
            // A NaN on a response token of row 1.
            let Some(i) = (width..2 * width).find(|&i| mask[i]) else {
                continue;
            };
            let zeroed = {
                let mut z = lps.clone();
                z[i] = 0.0;
                batch(&z)
            };
            lps[i] = f64::NAN;
            let b = Padded {
                logprobs: &lps,
                ..t.padded()
            };
            // Row 2 spared by its flag as well.
            let keep = SelectOptions {
                nonfinite: NonFinite::Keep,
                ..opts
            };
            let spare = Some(&[false, false, true][..]);
            let got = sas_padded(&table, &b, &keep, 1, spare, Written::None).unwrap();
            assert_eq!(got.nonfinite, [false, true, false]);
            assert_eq!(got.n_units, zeroed.n_units);
            for r in [1, 2] {
                assert_eq!((got.n_selected[r], got.n_zeroed_tokens[r]), (0, 0));
                assert!(got.keep[r * width..(r + 1) * width].iter().all(|&k| k));
            }
            assert_eq!(got.keep[..width], want.keep[..width]);
            assert_eq!(got.n_selected[0], want.n_selected[0]);
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
