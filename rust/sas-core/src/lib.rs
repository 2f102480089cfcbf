//! Step-level Advantage Selection (SAS) over packed batches of RL rollouts.
//!
//! A batch is *packed*: the response tokens of all rollouts lie end to end in one flat
//! array, and `cu_seqlens` (length B+1, starting at 0) marks where each rollout begins.
//! This crate is pure Rust (no Python): the `sas-core-py` crate wraps it for Python.
//!
//! The pipeline is
//! 1. [`segment::segment_packed`]: token ids -> step id per token, through a
//!    [`vocab::StepTable`] built once per tokenizer (no decoding);
//! 2. [`select::keep_mask_packed`]: step ids + log-probs -> keep mask (False on the
//!    selected steps);
//!    ([`fused::sas_mask_packed`] does 1 and 2 in one pass per rollout);
//! 3. [`grpo::grpo_advantages`]: the per-rollout GRPO advantage that the mask multiplies.

pub mod error;
pub mod fused;
pub mod grpo;
pub mod packed;
pub mod padded;
pub mod parallel;
pub mod rng;
pub mod segment;
pub mod select;
pub mod vocab;

#[cfg(test)]
mod testutil;

pub use error::{Result, SasError};
pub use fused::sas_mask_packed;
pub use grpo::grpo_advantages;
pub use packed::Packed;
pub use padded::{sas_advantages_padded, Padded, PaddedAdvantages};
pub use segment::{segment_packed, TokenId};
pub use select::{keep_mask_packed, Granularity, Mode, SelectOptions, Selected, Selection};
pub use vocab::{StepTable, TokenClass};
