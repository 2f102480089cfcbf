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
//!
//! [`padded::sas_padded`] does 1 and 2 (and writes the advantages) on the padded (B, A)
//! arrays trainers hold.
//! Modules by concern: [`options`] (what to select), [`confidence`] (a step's score),
//! [`select`] (ranking and masks), [`segment`] and [`vocab`] (steps from token ids),
//! [`text`] (the same steps from decoded text and character spans).

pub mod confidence;
pub mod error;
pub mod fused;
pub mod grpo;
pub mod masked;
pub mod options;
pub mod packed;
pub mod padded;
pub mod parallel;
pub mod rng;
mod scratch;
pub mod segment;
pub mod select;
pub mod text;
pub mod vocab;

#[cfg(test)]
mod testutil;

pub use confidence::{LaneSum, LogProb};
pub use error::{Result, SasError};
pub use fused::sas_mask_packed;
pub use grpo::grpo_advantages;
pub use options::{n_selected, Granularity, Mode, NonFinite, SelectOptions, SelectionRule};
pub use packed::Packed;
pub use padded::{
    keep_mask_padded, sas_padded, write_padded, Advantage, Advantages, Padded, PaddedSelection,
    Written,
};
pub use rng::unit_key;
pub use segment::{segment_packed, TokenId};
pub use select::{keep_mask_packed, Selected};
pub use vocab::{StepTable, TokenClass};
