//! GRPO group normalisation of per-rollout rewards.

use crate::error::{Result, SasError};

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
    let mut out = Vec::with_capacity(rewards.len());
    for group in rewards.chunks_exact(group_size) {
        let n = group.len() as f64;
        let mean = group.iter().sum::<f64>() / n;
        let var = group.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / (n - 1.0);
        let denom = var.sqrt() + eps;
        out.extend(group.iter().map(|r| (r - mean) / denom));
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
