//! Step segmentation from decoded text and character spans, for callers that hold each
//! response's text and its tokenizer's offset mapping rather than token ids.
//!
//! The rule is the token-id segmenter's ([`crate::segment`]) read on characters: a step
//! ends after a run of two or more newlines (a newline is one character and one byte, so
//! both give the same steps for the same response), and from the first occurrence of the
//! reasoning-end text on every token is outside every step.

use crate::error::{Result, SasError};

/// Step id per token of one response (-1 from the first `think_end` on), from its
/// `text` and one `[start, end)` character span per token. A token's step is the one its first
/// character outside a blank-line run falls in (a span of delimiter characters only: its
/// first character, the end of the step before; an empty span: the character before it).
/// Step ids are numbered 0, 1, ... in the order the tokens first reach them, so steps
/// that no token reaches take no id.
///
/// ```
/// // "a", "\n\n", "b": the blank line ends step 0; "b" opens step 1.
/// let steps = sas_core::text::segment_text("a\n\nb", [(0, 1), (1, 3), (3, 4)], None);
/// assert_eq!(steps.unwrap(), vec![0, 0, 1]);
/// ```
pub fn segment_text(
    text: &str,
    spans: impl IntoIterator<Item = (i64, i64)>,
    think_end: Option<&str>,
) -> Result<Vec<i32>> {
    let newline: Vec<bool> = text.chars().map(|c| c == '\n').collect();
    let n = newline.len();
    // in_run[p]: character p is in a run of >= 2 newlines; runs_ended[p]: how many such
    // runs end at or before position p (p in 0..=n).
    let mut in_run = vec![false; n];
    let mut runs_ended = vec![0u32; n + 1];
    let mut p = 0;
    while p < n {
        let start = p;
        while p < n && newline[p] {
            p += 1;
        }
        if p - start >= 2 {
            in_run[start..p].fill(true);
            runs_ended[p] += 1;
        }
        p = p.max(start + 1);
    }
    for p in 1..=n {
        runs_ended[p] += runs_ended[p - 1];
    }
    let cut = think_end
        .filter(|t| !t.is_empty())
        .and_then(|t| text.find(t))
        .map(|byte| text[..byte].chars().count());
    let mut dense = vec![-1i32; runs_ended[n] as usize + 1];
    let mut next = 0;
    let mut steps = Vec::new();
    for (i, (start, end)) in spans.into_iter().enumerate() {
        if !(0 <= start && start <= end && end <= n as i64) {
            return Err(SasError::new(
                "offsets",
                format!("span {i} ({start}, {end}) is outside the text ({n} characters)"),
            ));
        }
        let (start, end) = (start as usize, end as usize);
        // an empty span is where the character before it is: outside from cut + 1 on
        if cut.is_some_and(|c| start > c || (start == c && start < end)) {
            steps.push(-1);
            continue;
        }
        let raw = if start == end {
            // runs that end before the position: the step of the character before it
            runs_ended[start.saturating_sub(1)]
        } else {
            let anchor = (start..end).find(|&p| !in_run[p]).unwrap_or(start);
            runs_ended[anchor]
        } as usize;
        if dense[raw] < 0 {
            dense[raw] = next;
            next += 1;
        }
        steps.push(dense[raw]);
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(text: &str, spans: &[(i64, i64)]) -> Vec<i32> {
        segment_text(text, spans.iter().copied(), None).unwrap()
    }

    #[test]
    fn a_blank_line_ends_a_step() {
        // one token per character: the run's two newlines stay in step 0
        let spans: Vec<(i64, i64)> = (0..6).map(|p| (p, p + 1)).collect();
        assert_eq!(steps("ab\n\ncd", &spans), vec![0, 0, 0, 0, 1, 1]);
        // a single newline is no boundary, a run of three is one boundary
        assert_eq!(steps("a\nb", &[(0, 1), (1, 2), (2, 3)]), vec![0, 0, 0]);
        assert_eq!(steps("a\n\n\nb", &[(0, 1), (1, 4), (4, 5)]), vec![0, 0, 1]);
    }

    #[test]
    fn a_token_that_straddles_a_run_takes_its_first_character_outside_it() {
        assert_eq!(steps("a\n\nb", &[(0, 1), (1, 4)]), vec!(0, 1));
        assert_eq!(steps("a\n\nb", &[(0, 2), (2, 4)]), vec!(0, 1));
    }

    #[test]
    fn empty_spans_take_the_step_of_the_character_before() {
        assert_eq!(steps("a\n\nb", &[(0, 0), (3, 3), (4, 4)]), vec![0, 0, 1]);
    }

    #[test]
    fn ids_are_dense_in_the_order_tokens_reach_them() {
        // steps 0 and 2 of the text are reached, step 1 is skipped; then out of order
        let text = "a\n\nb\n\nc";
        assert_eq!(steps(text, &[(0, 1), (6, 7)]), vec!(0, 1));
        assert_eq!(steps(text, &[(6, 7), (0, 1), (3, 4)]), vec![0, 1, 2]);
    }

    #[test]
    fn characters_not_bytes_and_the_reasoning_end() {
        let text = "é\n\nü</think>x";
        let spans = [(0, 1), (1, 3), (3, 4), (4, 12), (12, 13)];
        assert_eq!(
            segment_text(text, spans, Some("</think>")).unwrap(),
            vec![0, 0, 1, -1, -1]
        );
        assert_eq!(segment_text(text, spans, Some("")).unwrap()[4], 1);
        // empty spans at the reasoning end are still inside (the character before is)
        let empty = [(4, 4), (4, 5), (5, 5)];
        assert_eq!(
            segment_text(text, empty, Some("</think>")).unwrap(),
            vec![0, -1, -1]
        );
        assert_eq!(segment_text(text, spans, Some("?")).unwrap()[4], 1);
    }

    #[test]
    fn spans_outside_the_text_are_refused() {
        for bad in [(0, 5), (-1, 1), (2, 1)] {
            let err = segment_text("abcd", [(0, 1), bad], None).unwrap_err();
            assert_eq!(err.arg, "offsets");
            assert!(err.msg.starts_with("span 1 "), "{}", err.msg);
        }
    }
}
