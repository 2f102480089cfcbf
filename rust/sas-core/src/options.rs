//! The selection options: what the Python layer's `sas_core.options` holds, as Rust
//! enums. The binding parses option strings into these at the boundary, so the core
//! never sees an unknown value.

use crate::error::{Result, SasError};

/// Which rollouts may get zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Both,
    Correct,
    Failed,
}

/// How units are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectionRule {
    Confidence,
    Random,
}

/// What a unit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Step,
    Token,
}

/// What becomes of a rollout whose log-probs hold NaN or inf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonFinite {
    /// An error naming the first such log-prob.
    Raise,
    /// Ranked as if they were 0, then left unselected: its whole advantage stands.
    Keep,
}

fn unknown(arg: &'static str, got: &str, allowed: &str) -> SasError {
    SasError::new(arg, format!("must be one of {allowed}, got {got:?}"))
}

impl Mode {
    /// ```
    /// use sas_core::Mode;
    /// assert_eq!(Mode::parse("failed").unwrap(), Mode::Failed);
    /// assert_eq!(Mode::parse("all").unwrap_err().arg, "mode");
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "both" => Ok(Mode::Both),
            "correct" => Ok(Mode::Correct),
            "failed" => Ok(Mode::Failed),
            _ => Err(unknown("mode", s, "'both', 'correct', 'failed'")),
        }
    }

    pub(crate) fn applies(self, correct: bool) -> bool {
        match self {
            Mode::Both => true,
            Mode::Correct => correct,
            Mode::Failed => !correct,
        }
    }
}

impl SelectionRule {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "confidence" => Ok(SelectionRule::Confidence),
            "random" => Ok(SelectionRule::Random),
            _ => Err(unknown("selection", s, "'confidence', 'random'")),
        }
    }
}

impl Granularity {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "step" => Ok(Granularity::Step),
            "token" => Ok(Granularity::Token),
            _ => Err(unknown("granularity", s, "'step', 'token'")),
        }
    }
}

impl NonFinite {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "raise" => Ok(NonFinite::Raise),
            "keep" => Ok(NonFinite::Keep),
            _ => Err(unknown("nonfinite", s, "'raise', 'keep'")),
        }
    }
}

/// The options of one selection call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelectOptions {
    /// Fraction r of each rollout's units to select, in [0, 1].
    pub ratio: f64,
    pub mode: Mode,
    pub selection: SelectionRule,
    pub granularity: Granularity,
    /// Seed of random selection (see [`crate::rng::unit_key`]).
    pub seed: u64,
    pub nonfinite: NonFinite,
}

impl Default for SelectOptions {
    /// The paper's setting: r = 0.3, both modes, by confidence, over steps; a NaN
    /// log-prob is an error.
    fn default() -> Self {
        SelectOptions {
            ratio: 0.3,
            mode: Mode::Both,
            selection: SelectionRule::Confidence,
            granularity: Granularity::Step,
            seed: 0,
            nonfinite: NonFinite::Raise,
        }
    }
}

impl SelectOptions {
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.ratio) {
            return Err(SasError::new(
                "ratio",
                format!("must be in [0, 1], got {}", self.ratio),
            ));
        }
        Ok(())
    }
}

/// k = floor(ratio * n) with a 1e-9 tolerance, so that 0.3 * 10 selects 3 units.
///
/// ```
/// assert_eq!(sas_core::n_selected(0.3, 10), 3);
/// assert_eq!(sas_core::n_selected(0.3, 6), 1);
/// ```
pub fn n_selected(ratio: f64, n: usize) -> usize {
    ((ratio * n as f64 + 1e-9).floor() as usize).min(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_uses_floor_with_tolerance() {
        assert_eq!(n_selected(0.3, 10), 3);
        assert_eq!(n_selected(0.3, 3), 0);
        assert_eq!(n_selected(0.3, 4), 1);
        assert_eq!(n_selected(1.0, 7), 7);
        assert_eq!(n_selected(0.0, 7), 0);
    }

    #[test]
    fn parse_names_the_option() {
        assert_eq!(Mode::parse("all").unwrap_err().arg, "mode");
        assert_eq!(SelectionRule::parse("top").unwrap_err().arg, "selection");
        assert_eq!(Granularity::parse("line").unwrap_err().arg, "granularity");
        assert_eq!(Granularity::parse("token").unwrap(), Granularity::Token);
        assert_eq!(NonFinite::parse("skip").unwrap_err().arg, "nonfinite");
        assert_eq!(NonFinite::parse("keep").unwrap(), NonFinite::Keep);
    }
}
