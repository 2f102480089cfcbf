//! Step segmentation straight from token ids.
//!
//! The contract: concatenate a response's token bytes; a *delimiter* is a maximal run of
//! two or more `\n` bytes (found across token boundaries) and belongs to the step it
//! ends. A token's *anchor* is its first byte outside every delimiter, or its first byte
//! if all of its bytes are delimiter bytes; its raw step is the number of delimiter runs
//! that end at or before the anchor. A token with no bytes takes the raw step of the last
//! byte before it. Raw steps are renumbered 0..n-1 in order of appearance. From the first
//! reasoning-end token (e.g. `</think>`) on, tokens get step -1.
//!
//! A rollout with holes in its action mask (a multi-turn or tool-using rollout, whose
//! tool output is off the mask) is a sequence of *turns*, the maximal runs of action
//! tokens: each turn is segmented on its own (no newline run carries over a gap, every
//! turn opens a new step, and the reasoning region starts again), and step ids keep
//! counting from one turn to the next.
//!
//! One left-to-right pass keeps two numbers: `closed`, the delimiter runs already ended
//! by a non-newline byte, and `open`, the length (saturated at 2) of the newline run at
//! the end of the bytes seen so far. Each token's
//! [`TokenClass`](crate::vocab::TokenClass) then gives its raw step in O(1): no byte is
//! looked at on the hot path.

use crate::error::{Positions, Result, SasError};
use crate::packed::Packed;
use crate::parallel::map_rollouts;
use crate::vocab::{code, StepTable};

/// Integer types accepted as token ids.
pub trait TokenId: Copy + Send + Sync {
    fn to_i64(self) -> i64;
}

impl TokenId for i32 {
    #[inline(always)]
    fn to_i64(self) -> i64 {
        self as i64
    }
}

impl TokenId for i64 {
    #[inline(always)]
    fn to_i64(self) -> i64 {
        self
    }
}

/// A rollout of one turn (packed rollouts): no position starts a new turn.
#[inline(always)]
pub fn one_turn(_: usize) -> bool {
    false
}

/// Segments one rollout into `out` (same length as `ids`); returns its number of steps.
/// `at`: where its tokens sit in the batch, for error messages (the rollout's first
/// position, `.into()`, for a packed one); `turn_start(i)`: token `i` (> 0) opens a new
/// turn.
pub fn segment_rollout<I: TokenId>(
    table: &StepTable,
    ids: &[I],
    out: &mut [i32],
    at: Positions<'_>,
    turn_start: impl Fn(usize) -> bool,
) -> Result<u32> {
    debug_assert_eq!(ids.len(), out.len());
    segment_rollout_with(
        table,
        ids,
        at,
        turn_start,
        |i, step| out[i] = step,
        |_, _| {},
    )
}

/// Segments one rollout, calling `on_token(position, step id)` for every token and
/// `on_segment(position, step id)` where a new run of equal step ids begins (step ids
/// never decrease, apart from the runs of -1 where a turn's reasoning region has ended).
/// `turn_start(i)`: token `i` opens a new turn ([`one_turn`] for a rollout of one).
/// Returns the number of steps. Generic so that each caller's unused callback compiles
/// away.
#[inline(always)]
pub fn segment_rollout_with<I, B, T, S>(
    table: &StepTable,
    ids: &[I],
    at: Positions<'_>,
    turn_start: B,
    mut on_token: T,
    mut on_segment: S,
) -> Result<u32>
where
    I: TokenId,
    B: Fn(usize) -> bool,
    T: FnMut(usize, i32),
    S: FnMut(usize, i32),
{
    let mut closed: u32 = 0;
    let mut open: u8 = 0;
    let mut last_raw: u32 = u32::MAX;
    let mut step: i32 = -1;
    let mut in_reasoning = true;
    let mut emitted: i32 = i32::MIN;
    let mut n_steps: u32 = 0;
    let codes = table.codes();
    for (i, &id) in ids.iter().enumerate() {
        let id = id.to_i64();
        if turn_start(i) {
            // A turn is segmented on its own: no newline run carries over the gap, the
            // reasoning region starts again, and the next step id opens (the step count
            // so far, not the counter, which also moved inside a region that ended).
            (open, in_reasoning, step, last_raw) = (0, true, n_steps as i32 - 1, u32::MAX);
        }
        // Fast path, most tokens of any text: a token with no newline (code MIXED and
        // nothing else) after a token that left no open run and no pending step change.
        // Such a token changes no state, so it takes the current step.
        if let Some(&code::MIXED) = codes.get(id as u64 as usize) {
            if open == 0 && closed == last_raw && in_reasoning {
                on_token(i, step);
                continue;
            }
        }
        let Some(c) = table.code(id) else {
            return Err(SasError::new(
                "token_ids",
                format!(
                    "token id {id} at position {} is outside the vocabulary (0..{})",
                    at.of(i),
                    table.vocab_size()
                ),
            ));
        };
        // Written without data-dependent branches: the common path is a few ALU ops.
        let mixed = c & code::MIXED != 0;
        let lead = (c >> code::LEAD_SHIFT) & 3;
        let trail = (c >> code::TRAIL_SHIFT) & 3;
        let sum = open + lead;
        // A mixed token's leading newlines extend the open run; a run of two or more
        // is a delimiter that ends before the token's first non-newline byte.
        let raw = closed + u32::from(mixed & (sum >= 2));
        if mixed {
            let inner = if c & code::HAS_INNER != 0 {
                table.inner(id)
            } else {
                0
            };
            closed = raw.saturating_add(inner);
        }
        // Only newlines (or nothing): the token sits inside the open run, whose step
        // is the one it ends.
        open = if mixed { trail } else { sum.min(2) };
        step += i32::from(raw != last_raw);
        last_raw = raw;
        // Keep validating ids after the reasoning region ends; only the steps stop.
        in_reasoning &= c & code::THINK_END == 0;
        let s = if in_reasoning { step } else { -1 };
        if s != emitted {
            on_segment(i, s);
            emitted = s;
            // Steps are numbered from 0 in order: the count is one past the last.
            n_steps = if s >= 0 { s as u32 + 1 } else { n_steps };
        }
        on_token(i, s);
    }
    Ok(n_steps)
}

/// Segments a packed batch. Returns the step id of every token and each rollout's step
/// count. The first error (in batch order) wins.
///
/// ```
/// use sas_core::{segment_packed, Packed, StepTable};
/// let table = StepTable::from_bytes(&[&b"x"[..], b"\n\n", b"\n"], None, &[]).unwrap();
/// // Two rollouts: "x\n\nx\nx" and "x".
/// let ids: [i32; 6] = [0, 1, 0, 2, 0, 0];
/// let cu = [0i64, 5, 6];
/// let (steps, counts) = segment_packed(&table, &ids, &Packed::new(&cu).unwrap(), 1).unwrap();
/// // A blank line ends the step it follows; a single newline does not.
/// assert_eq!(steps, [0, 0, 1, 1, 1, 0]);
/// assert_eq!(counts, [2, 1]);
/// ```
pub fn segment_packed<I: TokenId>(
    table: &StepTable,
    ids: &[I],
    packed: &Packed<'_>,
    threads: usize,
) -> Result<(Vec<i32>, Vec<u32>)> {
    packed.check_len("token_ids", ids.len())?;
    let mut out = vec![0i32; ids.len()];
    let results = map_rollouts(
        packed,
        &mut out,
        threads,
        || (),
        |_, _, r, o| segment_rollout(table, &ids[r.clone()], o, r.start.into(), one_turn),
    );
    let counts = results.into_iter().collect::<Result<Vec<u32>>>()?;
    Ok((out, counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte-level oracle written independently of the state machine: find delimiter
    /// runs on the concatenated bytes, then count the runs that end at each anchor.
    fn oracle(tokens: &[&[u8]], think_end: Option<usize>) -> Vec<i32> {
        let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.iter().copied()).collect();
        let mut runs = vec![]; // (start, end)
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'\n' {
                let s = i;
                while i < bytes.len() && bytes[i] == b'\n' {
                    i += 1;
                }
                if i - s >= 2 {
                    runs.push((s, i));
                }
            } else {
                i += 1;
            }
        }
        let in_delim = |p: usize| runs.iter().any(|&(s, e)| s <= p && p < e);
        let mut raw = vec![];
        let mut pos = 0;
        for t in tokens {
            let n = match (0..t.len()).find(|&j| !in_delim(pos + j)) {
                // Runs ending at or before the anchor.
                Some(j) => runs.iter().filter(|&&(_, e)| e <= pos + j).count(),
                // All delimiter bytes: anchored at the first byte, inside its own run.
                None if !t.is_empty() => runs.iter().filter(|&&(_, e)| e <= pos).count(),
                // No bytes: the step of the byte before it, i.e. runs already closed
                // by a byte before position `pos`.
                None => runs.iter().filter(|&&(_, e)| e < pos).count(),
            };
            raw.push(n as i64);
            pos += t.len();
        }
        let mut out = vec![];
        let mut last = -1i64;
        let mut step = -1;
        for (i, r) in raw.into_iter().enumerate() {
            if think_end.is_some_and(|k| i >= k) {
                out.push(-1);
                continue;
            }
            if r != last {
                step += 1;
                last = r;
            }
            out.push(step);
        }
        out
    }

    fn run(tokens: &[&[u8]], think_end_id: Option<i64>) -> Vec<i32> {
        let table = StepTable::from_bytes(tokens, None, think_end_id.as_slice()).unwrap();
        let ids: Vec<i64> = (0..tokens.len() as i64).collect();
        let mut out = vec![0; ids.len()];
        let n = segment_rollout(&table, &ids, &mut out, 0.into(), one_turn).unwrap();
        assert_eq!(
            n as i32,
            out.iter().max().map_or(0, |m| m + 1),
            "step count"
        );
        out
    }

    /// `line`: every newline ends a step; boundary tokens end one after them.
    #[test]
    fn line_delimiter_and_boundary_tokens() {
        use crate::vocab::{mark_boundaries, Delimiter, TokenClass};
        let tokens: [&[u8]; 6] = [b"x = 1", b"\n", b"y\nz", b"\r\n", b"<end>", b"w"];
        let table = |delimiter, boundary: &[i64]| {
            StepTable::from_bytes_with(&tokens, delimiter, boundary, None, &[]).unwrap()
        };
        let steps = |t: &StepTable, ids: &[i64]| {
            let mut out = vec![0; ids.len()];
            segment_rollout(t, ids, &mut out, 0.into(), one_turn).unwrap();
            out
        };
        let ids = [0, 1, 2, 3, 5, 4, 5, 1, 5];
        // blank lines only: none here, one step
        assert_eq!(steps(&table(Delimiter::BlankLine, &[]), &ids), vec![0; 9]);
        // a step per line: "x = 1\n" | "y\n" | "z\r\n" | "w<end>w\n" | "w"
        let line = table(Delimiter::Line, &[]);
        assert_eq!(steps(&line, &ids), vec![0, 0, 1, 2, 3, 3, 3, 3, 4]);
        // "<end>" ends a step (a single newline does not)
        let ends = table(Delimiter::BlankLine, &[4]);
        assert_eq!(steps(&ends, &ids), vec![0, 0, 0, 0, 0, 0, 1, 1, 1]);
        // with lines too; a newline right after "<end>" stays with its step
        let both = table(Delimiter::Line, &[4]);
        assert_eq!(steps(&both, &[0, 4, 1, 5, 4, 5]), vec![0, 0, 0, 1, 1, 2]);
        let mut classes = vec![TokenClass::of(b"a")];
        assert_eq!(
            mark_boundaries(&mut classes, &[1]).unwrap_err().arg,
            "boundary_ids"
        );
    }

    /// Turns: no newline run carries over a turn start, each turn opens a step, and
    /// each turn has its own reasoning region.
    #[test]
    fn each_turn_is_segmented_on_its_own() {
        let table = crate::testutil::newline_table(); // 2: ".\n\n", 3: "\n", 6: </think>
        let steps = |ids: &[i64], starts: &[usize]| {
            let mut out = vec![0; ids.len()];
            let n =
                segment_rollout(&table, ids, &mut out, 0.into(), |i| starts.contains(&i)).unwrap();
            (out, n)
        };
        // "a</think>a" | "a.\n\na": the second turn's reasoning is in steps again
        let ids = [0, 6, 0, 0, 2, 0];
        assert_eq!(steps(&ids, &[3]), (vec![0, -1, -1, 1, 1, 2], 3));
        assert_eq!(steps(&ids, &[]), (vec![0, -1, -1, -1, -1, -1], 1));
        // "a\n" | "\na": one newline on each side of the gap is no blank line, and yet
        // the turn opens a step; and a turn that starts with </think> has none
        assert_eq!(steps(&[0, 3, 3, 0], &[2]), (vec![0, 0, 1, 1], 2));
        assert_eq!(steps(&[0, 3, 3, 0], &[]), (vec![0, 0, 0, 1], 2));
        assert_eq!(steps(&[0, 6, 0, 0], &[2, 3]), (vec![0, -1, 1, 2], 3));
        assert_eq!(steps(&[6, 0, 0], &[1]), (vec![-1, 0, 0], 1));
    }

    #[test]
    fn steps_of_hand_written_responses() {
        let cases: Vec<Vec<&[u8]>> = vec![
            vec![b"Hello", b".\n\n", b"The", b" end"],
            vec![b"A", b"\n", b"\n", b"B"],
            vec![b"A\n", b"\nB"],
            vec![b"\n\n", b"lead", b"\n\n"],
            vec![b"x", b"\n\n\n", b"y", b"\r\n\r\n", b"z"],
            vec![b"a\n\nb\n\nc", b"d", b"\n\ne"],
            vec![b"a", b"", b"\n\n", b"", b"b", b""],
            vec![b"", b"\n", b"q\n", b"\n"],
        ];
        for tokens in cases {
            assert_eq!(run(&tokens, None), oracle(&tokens, None), "{tokens:?}");
        }
        // Plain expectations a reader can check by eye.
        assert_eq!(
            run(&[b"Hello", b".\n\n", b"The", b" end"], None),
            [0, 0, 1, 1]
        );
        assert_eq!(run(&[b"A", b"\n", b"\n", b"B"], None), [0, 0, 0, 1]);
        assert_eq!(run(&[b"\n\n", b"lead", b"\n\n"], None), [0, 1, 1]);
        assert_eq!(run(&[b"x", b"\r\n\r\n", b"y"], None), [0, 0, 0]);
    }

    #[test]
    fn reasoning_region_ends_at_think_end() {
        let tokens: Vec<&[u8]> = vec![b"a", b"\n\n", b"b", b"</think>", b"\n\nc"];
        assert_eq!(run(&tokens, Some(3)), [0, 0, 1, -1, -1]);
    }

    #[test]
    fn random_byte_soup_matches_oracle() {
        // Deterministic pseudo-random tokens over a small alphabet rich in newlines.
        let alphabet = [b'\n', b'\n', b'\n', b'a', b'\r', b' '];
        let mut state = 7u64;
        let mut next = || {
            state = crate::rng::splitmix64(state);
            state
        };
        for _ in 0..2000 {
            let n_tok = (next() % 12) as usize;
            let toks: Vec<Vec<u8>> = (0..n_tok)
                .map(|_| {
                    let len = (next() % 5) as usize;
                    (0..len)
                        .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                        .collect()
                })
                .collect();
            let refs: Vec<&[u8]> = toks.iter().map(|t| t.as_slice()).collect();
            assert_eq!(run(&refs, None), oracle(&refs, None), "{refs:?}");
        }
    }

    #[test]
    fn rejects_out_of_vocabulary_ids() {
        let table = StepTable::from_bytes(&[b"a".as_slice()], Some(3), &[]).unwrap();
        let cu = [0i64, 2];
        let packed = Packed::new(&cu).unwrap();
        assert!(segment_packed(&table, &[0i64, 2], &packed, 1).is_ok());
        let e = segment_packed(&table, &[0i64, 3], &packed, 1).unwrap_err();
        assert_eq!(e.arg, "token_ids");
        assert!(segment_packed(&table, &[-1i32, 0], &packed, 1).is_err());
        assert!(segment_packed(&table, &[0i32], &packed, 1).is_err());
    }
}
