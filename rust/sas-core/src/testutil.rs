//! Helpers shared by the unit tests.

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

/// A deterministic stream of pseudo-random u64s.
pub fn random(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state = splitmix64(state);
        state
    }
}
