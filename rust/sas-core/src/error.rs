//! The one error type of the core. Every variant names the argument at fault, so the
//! Python layer can raise a `ValueError` that tells the user which input to fix.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SasError {
    /// Name of the offending argument, as the Python API spells it.
    pub arg: &'static str,
    pub msg: String,
}

impl SasError {
    pub fn new(arg: &'static str, msg: impl Into<String>) -> Self {
        Self {
            arg,
            msg: msg.into(),
        }
    }
}

impl fmt::Display for SasError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.arg, self.msg)
    }
}

impl std::error::Error for SasError {}

pub type Result<T> = std::result::Result<T, SasError>;

/// Where token `i` of the tokens a function reads sits in its caller's array, for error
/// messages: `offset + i`, or, for tokens gathered from a row (a padded row's masked-in
/// columns, a packed rollout's action tokens), `offset + cols[i]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Positions<'a> {
    pub offset: usize,
    pub cols: Option<&'a [u32]>,
}

impl Positions<'_> {
    /// The caller's position of token `i`.
    pub fn of(self, i: usize) -> usize {
        let col = self.cols.and_then(|c| c.get(i)).map_or(i, |&c| c as usize);
        self.offset + col
    }
}

impl From<usize> for Positions<'_> {
    fn from(offset: usize) -> Self {
        Self { offset, cols: None }
    }
}
