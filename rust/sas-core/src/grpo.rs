//! GRPO group normalisation of per-rollout rewards.

use crate::error::{Result, SasError};
use crate::packed::Packed;

/// A = (R - mean) / (std + eps) within each group of `group_size` consecutive rollouts,
/// with the unbiased standard deviation (torch's default), computed in f64.
///
/// ```
/// let adv = sas_core::grpo_advantages(&[1.0, 0.0, 0.0, 0.0, 1.0, 1.0], 3, 1e-15).unwrap();
/// // Each group of 3 is normalised on its own: one success among three, then two.
/// let s = 1.0 / 3f64.sqrt(); // (1 - 1/3) / std, std = sqrt(1/3)
/// assert!((adv[0] - 2.0 * s).abs() < 1e-12 && (adv[1] + s).abs() < 1e-12);
/// assert!((adv[3] + 2.0 * s).abs() < 1e-12 && (adv[4] - s).abs() < 1e-12);
/// ```
pub fn grpo_advantages(rewards: &[f64], group_size: usize, eps: f64) -> Result<Vec<f64>> {
    if group_size < 2 {
        return Err(SasError::new(
            "group_size",
            format!("must be at least 2 (the unbiased std of one reward is undefined), got {group_size}"),
        ));
    }
    if rewards.len() % group_size != 0 {
        return Err(SasError::new(
            "rewards, group_size",
            format!(
                "{group_size} does not divide the number of rollouts {}",
                rewards.len()
            ),
        ));
    }
    let groups: Vec<u32> = (0..rewards.len())
        .map(|i| (i / group_size) as u32)
        .collect();
    grpo_advantages_grouped(rewards, &groups, eps)
}

/// A = (R - mean) / (std + eps) within each group, rollout `i` in group `groups[i]`
/// (dense indices 0..G, any order: verl's `uid`s mapped to integers), with the unbiased
/// standard deviation, in f64. The one GRPO formula: [`grpo_advantages`] calls it with
/// consecutive groups. Sums run in rollout order, so a group's result does not depend
/// on how the other groups interleave with it.
///
/// ```
/// let adv = sas_core::grpo::grpo_advantages_grouped(&[1.0, 0.0, 0.0, 1.0], &[0, 1, 0, 1], 1e-15)
///     .unwrap();
/// // Groups {0, 2} and {1, 3}: one success each, mean 1/2, std sqrt(1/2).
/// let s = 0.5 / 0.5f64.sqrt();
/// assert!((adv[0] - s).abs() < 1e-12 && (adv[2] + s).abs() < 1e-12);
/// assert!((adv[1] + s).abs() < 1e-12 && (adv[3] - s).abs() < 1e-12);
/// ```
pub fn grpo_advantages_grouped(rewards: &[f64], groups: &[u32], eps: f64) -> Result<Vec<f64>> {
    if groups.len() != rewards.len() {
        return Err(SasError::new(
            "group_ids, rewards",
            format!(
                "need one group per rollout ({}), got {}",
                rewards.len(),
                groups.len()
            ),
        ));
    }
    if !(eps.is_finite() && eps > 0.0) {
        return Err(SasError::new(
            "eps",
            format!("must be finite and > 0, got {eps}"),
        ));
    }
    if let Some(i) = rewards.iter().position(|r| !r.is_finite()) {
        return Err(SasError::new(
            "rewards",
            format!("must be finite, got {} at index {i}", rewards[i]),
        ));
    }
    let n_groups = groups.iter().max().map_or(0, |&g| g as usize + 1);
    let mut count = vec![0usize; n_groups];
    let mut sum = vec![0.0f64; n_groups];
    for (&r, &g) in rewards.iter().zip(groups) {
        count[g as usize] += 1;
        sum[g as usize] += r;
    }
    if let Some(g) = count.iter().position(|&c| c == 1) {
        return Err(SasError::new(
            "group_ids",
            format!("group {g} has 1 rollout; GRPO needs >= 2 (the unbiased std)"),
        ));
    }
    let mean: Vec<f64> = sum
        .iter()
        .zip(&count)
        .map(|(s, &c)| s / c.max(1) as f64)
        .collect();
    let mut squares = vec![0.0f64; n_groups];
    for (&r, &g) in rewards.iter().zip(groups) {
        let d = r - mean[g as usize];
        squares[g as usize] += d * d;
    }
    let denom: Vec<f64> = squares
        .iter()
        .zip(&count)
        .map(|(q, &c)| (q / (c.max(2) - 1) as f64).sqrt() + eps)
        .collect();
    Ok(rewards
        .iter()
        .zip(groups)
        .map(|(&r, &g)| (r - mean[g as usize]) / denom[g as usize])
        .collect())
}

/// Each rollout's advantage spread over its tokens, times `keep` (0 on the tokens of
/// selected steps): the (N,) token advantages of a packed batch.
///
/// ```
/// let packed = sas_core::Packed::new(&[0, 2, 3]).unwrap();
/// let adv = sas_core::grpo::token_advantages(&[1.5, -1.0], &[true, false, true], &packed);
/// assert_eq!(adv.unwrap(), vec![1.5, 0.0, -1.0]);
/// ```
pub fn token_advantages(advantages: &[f32], keep: &[bool], packed: &Packed) -> Result<Vec<f32>> {
    if advantages.len() != packed.len() {
        return Err(SasError::new(
            "rollout_advantages, cu_seqlens",
            format!(
                "need {} values (one per rollout of cu_seqlens), got {}",
                packed.len(),
                advantages.len()
            ),
        ));
    }
    packed.check_len("keep", keep.len())?;
    let mut out = Vec::with_capacity(keep.len());
    for (range, &a) in packed.ranges().zip(advantages) {
        out.extend(keep[range].iter().map(|&k| if k { a } else { 0.0 }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_each_group() {
        let a = grpo_advantages(&[1.0, 0.0, 0.0, 0.0, 2.0, 2.0], 3, 1e-15).unwrap();
        // Group 1: mean 1/3, unbiased std sqrt(1/3).
        let s = (1.0f64 / 3.0).sqrt();
        assert!((a[0] - (2.0 / 3.0) / s).abs() < 1e-12);
        assert!((a[1] + (1.0 / 3.0) / s).abs() < 1e-12);
        // Group 2: all equal rewards: zero advantage, no division by zero with eps.
        let b = grpo_advantages(&[2.0, 2.0], 2, 1e-6).unwrap();
        assert_eq!(b, vec![0.0, 0.0]);
    }

    #[test]
    fn grouped_equals_consecutive_when_the_groups_are_consecutive() {
        let r = [0.5, 1.0, 0.0, 3.0, 2.0, 2.0, 7.0, -1.0];
        let consecutive = grpo_advantages(&r, 4, 1e-6).unwrap();
        let grouped = grpo_advantages_grouped(&r, &[0, 0, 0, 0, 1, 1, 1, 1], 1e-6).unwrap();
        assert_eq!(consecutive, grouped);
        // Interleaving the two groups permutes the result the same way.
        let perm = [0, 4, 1, 5, 2, 6, 3, 7];
        let mixed: Vec<f64> = perm.iter().map(|&i| r[i]).collect();
        let ids: Vec<u32> = perm.iter().map(|&i| (i / 4) as u32).collect();
        let got = grpo_advantages_grouped(&mixed, &ids, 1e-6).unwrap();
        let want: Vec<f64> = perm.iter().map(|&i| consecutive[i]).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn grouped_rejects_a_lone_rollout_and_a_length_mismatch() {
        let e = grpo_advantages_grouped(&[1.0, 2.0, 3.0], &[0, 0, 1], 1e-6).unwrap_err();
        assert_eq!(e.arg, "group_ids");
        let e = grpo_advantages_grouped(&[1.0, 2.0], &[0], 1e-6).unwrap_err();
        assert_eq!(e.arg, "group_ids, rewards");
        assert_eq!(
            grpo_advantages_grouped(&[], &[], 1e-6).unwrap(),
            Vec::<f64>::new()
        );
    }

    #[test]
    fn rejects_bad_groups() {
        assert_eq!(
            grpo_advantages(&[1.0; 3], 2, 1e-6).unwrap_err().arg,
            "rewards, group_size"
        );
        assert_eq!(
            grpo_advantages(&[1.0; 3], 1, 1e-6).unwrap_err().arg,
            "group_size"
        );
        assert_eq!(
            grpo_advantages(&[f64::NAN, 1.0], 2, 1e-6).unwrap_err().arg,
            "rewards"
        );
        assert_eq!(
            grpo_advantages(&[0.0, 1.0], 2, -1.0).unwrap_err().arg,
            "eps"
        );
    }
}
