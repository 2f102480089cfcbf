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
