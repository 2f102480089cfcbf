//! Per-vocabulary byte table: what each token id contributes to step segmentation.
//!
//! Segmentation only needs to know, for each token, how its bytes interact with runs of
//! newline bytes. A token is summarised once, when the tokenizer is loaded, so the hot
//! path is one table look-up per token and never decodes text.

use crate::error::{Result, SasError};

/// Saturation point of newline counts: a run is a delimiter once it has two newlines,
/// so counts beyond two carry no information.
const SAT: u8 = 2;

/// How one vocabulary entry interacts with newline runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenClass {
    /// The token has at least one byte that is not `\n`.
    pub mixed: bool,
    /// Leading `\n` bytes (for a token made only of `\n`, its length), saturated at 2.
    pub lead: u8,
    /// Trailing `\n` bytes after the last non-newline byte, saturated at 2.
    pub trail: u8,
    /// Delimiter runs (two or more `\n`) wholly inside the token, between non-newline bytes.
    pub inner: u32,
    /// The token ends the reasoning region (e.g. `</think>`).
    pub think_end: bool,
}

/// Where a step ends, besides the boundary tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delimiter {
    /// After a run of two or more newlines (the paper's rule).
    #[default]
    BlankLine,
    /// After any newline (a step per line, for code).
    Line,
}

impl Delimiter {
    /// ```
    /// use sas_core::vocab::Delimiter;
    /// assert_eq!(Delimiter::parse("line").unwrap(), Delimiter::Line);
    /// assert_eq!(Delimiter::parse("para").unwrap_err().arg, "delimiter");
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "blank_line" => Ok(Delimiter::BlankLine),
            "line" => Ok(Delimiter::Line),
            _ => Err(SasError::new(
                "delimiter",
                format!("must be one of 'blank_line', 'line', got {s:?}"),
            )),
        }
    }

    /// How much one newline counts towards the two that make a delimiter: with
    /// [`Delimiter::Line`] each counts twice, so the segmenter's one rule (a run that
    /// reaches two) ends a step at every newline.
    fn weight(self) -> usize {
        match self {
            Delimiter::BlankLine => 1,
            Delimiter::Line => 2,
        }
    }
}

impl TokenClass {
    /// Class of a token with no bytes (ids past the byte table, in a padded embedding).
    pub const EMPTY: TokenClass = TokenClass {
        mixed: false,
        lead: 0,
        trail: 0,
        inner: 0,
        think_end: false,
    };

    /// Class of a token's bytes under the paper's rule ([`Delimiter::BlankLine`]).
    pub fn of(bytes: &[u8]) -> TokenClass {
        Self::of_with(bytes, Delimiter::BlankLine)
    }

    /// Class of a token's bytes: newline counts are weighted by the delimiter
    /// (`Delimiter::weight`), so one segmentation pass serves both rules.
    pub fn of_with(bytes: &[u8], delimiter: Delimiter) -> TokenClass {
        let w = delimiter.weight();
        let Some(first) = bytes.iter().position(|&b| b != b'\n') else {
            return TokenClass {
                lead: saturate(w * bytes.len()),
                ..TokenClass::EMPTY
            };
        };
        // `last` exists because `first` does.
        let last = bytes.iter().rposition(|&b| b != b'\n').unwrap_or(first);
        let mut inner = 0u32;
        let mut run = 0usize;
        for &b in &bytes[first..=last] {
            if b == b'\n' {
                run += 1;
            } else {
                if w * run >= 2 {
                    inner = inner.saturating_add(1);
                }
                run = 0;
            }
        }
        TokenClass {
            mixed: true,
            lead: saturate(w * first),
            trail: saturate(w * (bytes.len() - 1 - last)),
            inner,
            think_end: false,
        }
    }

    /// The class of a boundary token: a step ends after it, as if a blank line followed
    /// its bytes (newline-only tokens after it stay in its step, as after a delimiter).
    pub fn ending_a_step(self) -> TokenClass {
        if self.mixed {
            TokenClass { trail: SAT, ..self }
        } else {
            TokenClass { lead: SAT, ..self }
        }
    }
}

/// Marks the boundary tokens `ids` of `classes` (see [`TokenClass::ending_a_step`]).
pub fn mark_boundaries(classes: &mut [TokenClass], ids: &[i64]) -> Result<()> {
    let n = classes.len();
    for &id in ids {
        match usize::try_from(id).ok().and_then(|i| classes.get_mut(i)) {
            Some(c) => *c = c.ending_a_step(),
            None => {
                return Err(SasError::new(
                    "boundary_ids",
                    format!("id {id} is not in the byte table (0..{n})"),
                ))
            }
        }
    }
    Ok(())
}

fn saturate(n: usize) -> u8 {
    n.min(SAT as usize) as u8
}

/// Bit layout of a packed token code (see [`StepTable::code`]).
pub mod code {
    pub const MIXED: u8 = 1;
    pub const LEAD_SHIFT: u8 = 1;
    pub const TRAIL_SHIFT: u8 = 3;
    pub const THINK_END: u8 = 1 << 5;
    pub const HAS_INNER: u8 = 1 << 6;
}
use code::{HAS_INNER, LEAD_SHIFT, MIXED, THINK_END, TRAIL_SHIFT};

impl TokenClass {
    /// One byte per token keeps a 150K-entry table in L2 cache (8 bytes per entry did
    /// not, and table misses dominated segmentation). `inner` lives in a side table.
    fn pack(&self) -> u8 {
        u8::from(self.mixed)
            | (self.lead << LEAD_SHIFT)
            | (self.trail << TRAIL_SHIFT)
            | if self.think_end { THINK_END } else { 0 }
            | if self.inner > 0 { HAS_INNER } else { 0 }
    }
}

/// The byte table of one tokenizer, plus the segmenter's options.
#[derive(Debug, Clone)]
pub struct StepTable {
    /// Packed [`TokenClass`] per id (see [`TokenClass::pack`]).
    codes: Vec<u8>,
    /// `inner` per id; read only for the rare tokens with `HAS_INNER`.
    inner: Vec<u32>,
    vocab_size: usize,
}

impl StepTable {
    /// Builds the table from each id's bytes, in id order.
    ///
    /// `vocab_size` (default: the number of entries) may be larger, to accept the ids of
    /// a model's padded embedding rows; those ids segment as empty tokens.
    /// `think_end_ids` mark the tokens that end the reasoning region.
    pub fn from_classes(
        classes: Vec<TokenClass>,
        vocab_size: Option<usize>,
        think_end_ids: &[i64],
    ) -> Result<Self> {
        let mut classes = classes;
        let vocab_size = vocab_size.unwrap_or(classes.len());
        if vocab_size < classes.len() {
            return Err(SasError::new(
                "vocab_size",
                format!(
                    "must be at least the number of token entries ({}), got {vocab_size}",
                    classes.len()
                ),
            ));
        }
        if vocab_size > i32::MAX as usize {
            return Err(SasError::new(
                "vocab_size",
                format!("must be at most {}, got {vocab_size}", i32::MAX),
            ));
        }
        for &id in think_end_ids {
            match usize::try_from(id).ok().and_then(|i| classes.get_mut(i)) {
                Some(c) => c.think_end = true,
                None => {
                    return Err(SasError::new(
                        "think_end_ids",
                        format!("id {id} is not in the byte table (0..{})", classes.len()),
                    ))
                }
            }
        }
        Ok(Self {
            codes: classes.iter().map(TokenClass::pack).collect(),
            inner: classes.iter().map(|c| c.inner).collect(),
            vocab_size,
        })
    }

    pub fn from_bytes<B: AsRef<[u8]>>(
        tokens: &[B],
        vocab_size: Option<usize>,
        think_end_ids: &[i64],
    ) -> Result<Self> {
        Self::from_bytes_with(tokens, Delimiter::BlankLine, &[], vocab_size, think_end_ids)
    }

    /// The table of `tokens` (each token's bytes) under `delimiter`, with a step ending
    /// after each token of `boundary_ids` as well; `vocab_size` and `think_end_ids` as
    /// in [`StepTable::from_classes`].
    pub fn from_bytes_with<B: AsRef<[u8]>>(
        tokens: &[B],
        delimiter: Delimiter,
        boundary_ids: &[i64],
        vocab_size: Option<usize>,
        think_end_ids: &[i64],
    ) -> Result<Self> {
        let of = |t: &B| TokenClass::of_with(t.as_ref(), delimiter);
        let mut classes: Vec<TokenClass> = tokens.iter().map(of).collect();
        mark_boundaries(&mut classes, boundary_ids)?;
        Self::from_classes(classes, vocab_size, think_end_ids)
    }

    /// Ids accepted by [`StepTable::class`]: `0..vocab_size`.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Number of entries with bytes.
    pub fn n_entries(&self) -> usize {
        self.codes.len()
    }

    /// Packed class of token `id` (bits in [`code`]; 0 for padding ids), or `None`
    /// when the id is outside `0..vocab_size`.
    #[inline(always)]
    pub fn code(&self, id: i64) -> Option<u8> {
        // A negative id wraps to a huge u64 and fails both checks.
        let u = id as u64;
        if u < self.codes.len() as u64 {
            Some(self.codes[u as usize])
        } else if u < self.vocab_size as u64 {
            Some(0)
        } else {
            None
        }
    }

    /// The packed codes of the ids with bytes (`0..n_entries`).
    #[inline]
    pub fn codes(&self) -> &[u8] {
        &self.codes
    }

    /// `inner` of a token whose code has `HAS_INNER`.
    #[inline]
    pub fn inner(&self, id: i64) -> u32 {
        self.inner[id as usize]
    }

    /// Class of token `id`, or `None` when the id is outside `0..vocab_size`.
    pub fn class(&self, id: i64) -> Option<TokenClass> {
        // A negative id wraps to a huge u64 and fails both checks.
        let u = id as u64;
        if u < self.codes.len() as u64 {
            let code = self.codes[u as usize];
            Some(TokenClass {
                mixed: code & MIXED != 0,
                lead: (code >> LEAD_SHIFT) & 3,
                trail: (code >> TRAIL_SHIFT) & 3,
                inner: if code & HAS_INNER != 0 {
                    self.inner[u as usize]
                } else {
                    0
                },
                think_end: code & THINK_END != 0,
            })
        } else if u < self.vocab_size as u64 {
            Some(TokenClass::EMPTY)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_newline_shapes() {
        assert_eq!(TokenClass::of(b""), TokenClass::EMPTY);
        let nn = TokenClass::of(b"\n\n\n");
        assert!(!nn.mixed);
        assert_eq!(nn.lead, 2);
        let t = TokenClass::of(b".\n\n");
        assert!(t.mixed);
        assert_eq!((t.lead, t.trail, t.inner), (0, 2, 0));
        let t = TokenClass::of(b"\n\nThe");
        assert_eq!((t.lead, t.trail, t.inner), (2, 0, 0));
        let t = TokenClass::of(b"a\n\nb\nc\n\n\nd\n");
        assert_eq!((t.lead, t.trail, t.inner), (0, 1, 2));
        let t = TokenClass::of(b"\r\n\r\n");
        assert_eq!((t.lead, t.trail, t.inner), (0, 1, 0));
    }

    #[test]
    fn packing_round_trips() {
        let tokens: Vec<&[u8]> = vec![
            b"",
            b"\n",
            b"\n\n\n",
            b".\n\n",
            b"\nx\n\ny\n\n\nz\n",
            b"</think>",
        ];
        let table = StepTable::from_bytes(&tokens, None, &[5]).unwrap();
        for (i, t) in tokens.iter().enumerate() {
            let mut want = TokenClass::of(t);
            want.think_end = i == 5;
            assert_eq!(table.class(i as i64), Some(want), "{t:?}");
        }
    }

    #[test]
    fn padded_vocab_and_bounds() {
        let table = StepTable::from_bytes(&[b"a".as_slice(), b"\n"], Some(4), &[]).unwrap();
        assert!(table.class(1).is_some());
        assert_eq!(table.class(3), Some(TokenClass::EMPTY));
        assert_eq!(table.class(4), None);
        assert_eq!(table.class(-1), None);
        assert!(StepTable::from_bytes(&[b"a".as_slice()], Some(0), &[]).is_err());
        assert!(StepTable::from_bytes(&[b"a".as_slice()], None, &[1]).is_err());
    }
}
