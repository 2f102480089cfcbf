//! Helpers shared by the unit tests.

use crate::padded::Padded;
use crate::rng::splitmix64;
use crate::vocab::StepTable;

/// A small vocabulary rich in newline shapes; id 6 (`</think>`) ends the reasoning
/// region, and ids 7 and 8 are padding rows with no bytes.
pub fn newline_table() -> StepTable {
    let vocab: Vec<&[u8]> = vec![
        b"a",
        b" b",
        b".\n\n",
        b"\n",
        b"\n\nc",
        b"x\n\ny",
        b"</think>",
    ];
    StepTable::from_bytes(&vocab, Some(9), &[6]).unwrap()
}

/// A random (rows x width) batch over [`newline_table`]'s ids (padding rows included):
/// log-probs in (-10, 0], one cell in about `hole` off the mask, each row's correctness.
pub struct Batch<I, L> {
    pub ids: Vec<I>,
    pub lps: Vec<L>,
    pub mask: Vec<bool>,
    pub correct: Vec<bool>,
    pub width: usize,
}

impl<I, L> Batch<I, L> {
    pub fn padded(&self) -> Padded<'_, I, L> {
        Padded {
            ids: &self.ids,
            logprobs: &self.lps,
            mask: &self.mask,
            width: self.width,
            correct: &self.correct,
        }
    }
}

pub fn random_batch<I: From<i8>, L: From<f32>>(
    next: &mut impl FnMut() -> u64,
    rows: usize,
    width: usize,
    hole: u64,
) -> Batch<I, L> {
    let cells = rows * width;
    Batch {
        ids: (0..cells).map(|_| I::from((next() % 9) as i8)).collect(),
        lps: (0..cells)
            .map(|_| L::from(-((next() % 500) as f32) / 50.0))
            .collect(),
        mask: (0..cells).map(|_| next() % hole != 0).collect(),
        correct: (0..rows).map(|_| next() % 2 == 0).collect(),
        width,
    }
}

/// A deterministic stream of pseudo-random u64s.
pub fn random(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state = splitmix64(state);
        state
    }
}
