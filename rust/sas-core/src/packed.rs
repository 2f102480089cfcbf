//! Validated view of a packed batch's boundaries (`cu_seqlens`).

use std::ops::Range;

use crate::error::{Result, SasError};

/// Rollout boundaries checked once: non-empty, starts at 0, never decreases. The last
/// entry is the token count, which each packed array is checked against with
/// [`Packed::check_len`].
#[derive(Debug, Clone, Copy)]
pub struct Packed<'a> {
    cu: &'a [i64],
}

impl<'a> Packed<'a> {
    pub fn new(cu_seqlens: &'a [i64]) -> Result<Self> {
        let err = |msg: String| Err(SasError::new("cu_seqlens", msg));
        let Some((&first, rest)) = cu_seqlens.split_first() else {
            return err("must have length B+1 >= 1, got an empty array".into());
        };
        if first != 0 {
            return err(format!("must start at 0, got {first}"));
        }
        let mut prev = first;
        for (i, &c) in rest.iter().enumerate() {
            if c < prev {
                return err(format!(
                    "must be non-decreasing, but cu_seqlens[{}]={c} < cu_seqlens[{i}]={prev}",
                    i + 1
                ));
            }
            prev = c;
        }
        Ok(Self { cu: cu_seqlens })
    }

    /// Checks that the packed array `arg` has one entry per token.
    pub fn check_len(&self, arg: &'static str, len: usize) -> Result<()> {
        if len as u64 == self.n_tokens() as u64 {
            Ok(())
        } else {
            Err(SasError::new(
                with_cu_seqlens(arg),
                format!(
                    "has {len} entries but cu_seqlens ends at {} (the token count)",
                    self.n_tokens()
                ),
            ))
        }
    }

    /// Number of rollouts B.
    pub fn len(&self) -> usize {
        self.cu.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn n_tokens(&self) -> usize {
        self.cu[self.cu.len() - 1] as usize
    }

    /// Token range of rollout `b`.
    pub fn range(&self, b: usize) -> Range<usize> {
        self.cu[b] as usize..self.cu[b + 1] as usize
    }

    pub fn ranges(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        self.cu.windows(2).map(|w| w[0] as usize..w[1] as usize)
    }
}

/// A length mismatch involves two arguments: the error names both, the packed array
/// first (either may be the wrong one).
fn with_cu_seqlens(arg: &'static str) -> &'static str {
    match arg {
        "token_ids" => "token_ids, cu_seqlens",
        "step_ids" => "step_ids, cu_seqlens",
        "logprobs" => "logprobs, cu_seqlens",
        "keep" => "keep, cu_seqlens",
        "action_mask" => "action_mask, cu_seqlens",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_and_empty_rollouts() {
        let p = Packed::new(&[0, 3, 3, 5]).unwrap();
        assert!(p.check_len("x", 5).is_ok());
        assert_eq!(p.check_len("x", 4).unwrap_err().arg, "x");
        let both = p.check_len("logprobs", 4).unwrap_err().arg;
        assert_eq!(both, "logprobs, cu_seqlens");
        assert_eq!(p.len(), 3);
        assert_eq!(p.range(1), 3..3);
        assert_eq!(p.ranges().collect::<Vec<_>>(), vec![0..3, 3..3, 3..5]);
    }

    #[test]
    fn rejects_bad_boundaries() {
        assert!(Packed::new(&[]).is_err());
        assert!(Packed::new(&[1, 3]).is_err());
        assert!(Packed::new(&[0, 4, 3]).is_err());
        assert!(Packed::new(&[0, -1, 0]).is_err());
        let e = Packed::new(&[0, 2, 1]).unwrap_err();
        assert_eq!(e.arg, "cu_seqlens");
    }
}
