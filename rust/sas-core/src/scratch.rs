//! Per-thread buffers, reused across the rollouts a worker handles, so that selection
//! allocates once per thread rather than once per rollout.

use crate::confidence::LaneSum;

#[derive(Default)]
pub(crate) struct Scratch {
    /// Log-prob sum per step id, for rollouts whose step ids are not non-decreasing
    /// (never the case for segmenter output).
    pub(crate) dense: Vec<LaneSum>,
    /// (sort key, unit id) per unit.
    pub(crate) units: Vec<(u64, u32)>,
    pub(crate) chosen: Vec<bool>,
    /// (first position, step id) of each run of equal step ids (fused path only).
    pub(crate) runs: Vec<(u32, i32)>,
    /// One padded row, gathered: column, id and log-prob of each response token.
    row: (Vec<u32>, Vec<i64>, Vec<f64>),
    /// Per-token step ids and keep flags of a padded row (token granularity).
    pub(crate) steps: Vec<i32>,
    pub(crate) keep: Vec<bool>,
}

impl Scratch {
    /// The row buffers, emptied (hand them back with [`Scratch::put_row`]).
    pub(crate) fn take_row(&mut self) -> (Vec<u32>, Vec<i64>, Vec<f64>) {
        let (mut p, mut i, mut l) = std::mem::take(&mut self.row);
        p.clear();
        i.clear();
        l.clear();
        (p, i, l)
    }

    pub(crate) fn put_row(&mut self, p: Vec<u32>, i: Vec<i64>, l: Vec<f64>) {
        self.row = (p, i, l);
    }
}
