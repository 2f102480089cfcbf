//! Step confidence: the mean log-prob of a step's tokens, summed in f64 in one fixed
//! order ([`LaneSum`]) so that the pure-Python reference computes bit-identical values
//! and therefore the same ranking.

use crate::error::{Positions, Result, SasError};

/// Float types accepted as log-probs (`Default`, their 0: what a NaN/inf log-prob is
/// ranked as under [`crate::NonFinite::Keep`]).
pub trait LogProb: Copy + Default + Send + Sync {
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

/// A step's log-prob sum in four interleaved f64 lanes: the token with ordinal j in
/// the step goes to lane j mod 4, and the total is (l0 + l1) + (l2 + l3).
///
/// One running sum would chain every token on the 4-cycle latency of an f64 add; four
/// lanes let four adds be in flight. The order is fixed by the contract. Tokens can be
/// fed one by one ([`LaneSum::add`], for steps whose tokens are not contiguous) or a
/// contiguous step at once ([`LaneSum::of_slice`], which vectorises); both give the
/// same lanes.
///
/// ```
/// use sas_core::LaneSum;
/// let xs = [-0.5, -1.0, -0.25, -2.0, -0.125];
/// let mut s = LaneSum::default();
/// xs.iter().for_each(|&x| s.add(x));
/// assert_eq!(s.mean().to_bits(), LaneSum::of_slice(&xs).mean().to_bits());
/// assert_eq!(s.total(), ((-0.5 + -0.125) + -1.0) + (-0.25 + -2.0));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct LaneSum {
    // Position p holds lane (p + count) mod 4: each add goes to position 0 and rotates
    // it to the back, which compiles to register renames rather than indexing.
    p: [f64; 4],
    pub count: u32,
}

impl LaneSum {
    #[inline(always)]
    pub fn add(&mut self, x: f64) {
        let [a, b, c, d] = self.p;
        self.p = [b, c, d, a + x];
        self.count += 1;
    }

    /// The sum of a contiguous step: four independent accumulators that the compiler
    /// turns into one SIMD add per 4 tokens.
    #[inline]
    pub fn of_slice<L: LogProb>(xs: &[L]) -> Self {
        let mut lane = [0.0f64; 4];
        let chunks = xs.chunks_exact(4);
        let rest = chunks.remainder();
        for c in chunks {
            for k in 0..4 {
                lane[k] += c[k].to_f64();
            }
        }
        for (k, x) in rest.iter().enumerate() {
            lane[k] += x.to_f64();
        }
        Self::from_lanes(lane, xs.len() as u32)
    }

    /// The inverse of [`LaneSum::lanes`].
    fn from_lanes(l: [f64; 4], count: u32) -> Self {
        let p = match count & 3 {
            0 => l,
            1 => [l[1], l[2], l[3], l[0]],
            2 => [l[2], l[3], l[0], l[1]],
            _ => [l[3], l[0], l[1], l[2]],
        };
        LaneSum { p, count }
    }

    /// The four lanes in lane order. A `match` rather than an index computed from
    /// `count`: dynamic indexing would keep the lanes in memory, not registers.
    pub fn lanes(&self) -> [f64; 4] {
        let [a, b, c, d] = self.p;
        match self.count & 3 {
            0 => [a, b, c, d],
            1 => [d, a, b, c],
            2 => [c, d, a, b],
            _ => [b, c, d, a],
        }
    }

    pub fn total(&self) -> f64 {
        let [l0, l1, l2, l3] = self.lanes();
        (l0 + l1) + (l2 + l3)
    }

    pub fn mean(&self) -> f64 {
        self.total() / self.count as f64
    }
}

/// Mean log-prob of a contiguous step, in the [`LaneSum`] order.
#[inline]
pub(crate) fn slice_mean<L: LogProb>(xs: &[L]) -> f64 {
    LaneSum::of_slice(xs).mean()
}

/// All log-probs finite (a branch-free fold that vectorises); the error names the
/// first bad one.
pub(crate) fn check_finite<L: LogProb>(logprobs: &[L], at: Positions<'_>) -> Result<()> {
    if logprobs
        .iter()
        .fold(true, |ok, &x| ok & x.to_f64().is_finite())
    {
        return Ok(());
    }
    let i = logprobs
        .iter()
        .position(|x| !x.to_f64().is_finite())
        .unwrap_or(0);
    Err(SasError::new(
        "logprobs",
        format!(
            "must be finite, got {} at position {}",
            logprobs[i].to_f64(),
            at.of(i)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_sum_is_the_documented_order() {
        let xs = [0.1, 1e16, -0.3, 2.5, -1e16, 7.0, 0.2];
        let mut s = LaneSum::default();
        for &x in &xs {
            s.add(x);
        }
        let lanes: Vec<f64> = (0..4)
            .map(|k| xs.iter().skip(k).step_by(4).fold(0.0, |a, x| a + x))
            .collect();
        assert_eq!(
            s.total().to_bits(),
            ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])).to_bits()
        );
        assert_eq!(s.count, 7);
    }

    #[test]
    fn slice_and_streamed_sums_agree_for_every_length() {
        let xs: Vec<f64> = (0..23).map(|i| (i as f64 * 0.37).sin() * 1e8).collect();
        for n in 1..xs.len() {
            let mut s = LaneSum::default();
            xs[..n].iter().for_each(|&x| s.add(x));
            let t = LaneSum::of_slice(&xs[..n]);
            assert_eq!(s.lanes().map(f64::to_bits), t.lanes().map(f64::to_bits));
            assert_eq!(s.count, t.count);
            // and more tokens streamed after a slice land in the same lanes
            let (mut a, mut b) = (s, t);
            a.add(1.5);
            b.add(1.5);
            assert_eq!(a.total().to_bits(), b.total().to_bits());
        }
    }
}
