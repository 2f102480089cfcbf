"""Type stubs of the Rust extension ``sas_core._core``.

These are the raw bindings: they take contiguous numpy arrays of the exact dtypes named
here and do no casting. Use the wrappers in ``sas_core`` (which normalise arguments).
The calls over token arrays (segmentation, selection, confidence, token advantages)
release the GIL while they compute, and those with ``num_threads`` run in parallel over
rollouts on a fork-safe thread pool and return the same result for any ``num_threads``;
``grpo_advantages`` (one pass over B rewards), ``segment_text`` (it reads a Python
string) and the scalar helpers keep the GIL. Bad values raise
``ValueError("<argument>: ...")``; wrong dtypes raise ``TypeError``.

The selection calls take one options object, a ``sas_core.options.SASOptions``, and
read its ``ratio``, ``mode``, ``selection``, ``granularity`` and ``seed`` attributes
directly: the option strings are
parsed into the core's enums at the boundary, and an unknown value is a ``ValueError``
naming the option. The ``Literal`` types are ``sas_core.options``' own.
"""

from collections.abc import Iterable
from typing import Protocol

import numpy as np
import numpy.typing as npt

from sas_core.options import Delimiter, Granularity, Mode, NonFinite, SelectionRule

class SelectOptions(Protocol):
    """What the bindings read of an options object (``sas_core.options.SASOptions``)."""

    @property
    def ratio(self) -> float: ...
    @property
    def mode(self) -> Mode: ...
    @property
    def selection(self) -> SelectionRule: ...
    @property
    def granularity(self) -> Granularity: ...
    @property
    def seed(self) -> int: ...
    @property
    def nonfinite(self) -> NonFinite: ...

__version__: str
MAX_THREADS: int  # the most threads a call may ask for (256)

class StepTable:
    """Per-vocabulary byte table of one tokenizer.

    Args:
        token_bytes: iterable of ``bytes``, the bytes of each token id (index = id).
        vocab_size: ids accepted, >= number of entries (default: the number of
            entries); ids past the table segment as tokens with no bytes.
        think_end_ids: ids that end the reasoning region; must be in the table.
        delimiter: where a step ends: ``"blank_line"`` (a run of two or more newlines)
            or ``"line"`` (any newline).
        boundary_ids: ids after which a step ends (e.g. ``</tool_call>``); must be in
            the table.
    """

    def __init__(
        self,
        token_bytes: Iterable[bytes],
        vocab_size: int | None = None,
        think_end_ids: list[int] = ...,
        delimiter: Delimiter = "blank_line",
        boundary_ids: list[int] = ...,
    ) -> None: ...
    @property
    def vocab_size(self) -> int: ...
    def segment(
        self,
        token_ids: npt.NDArray[np.int32] | npt.NDArray[np.int64],
        cu_seqlens: npt.NDArray[np.int64],
        action_mask: npt.NDArray[np.bool_] | None = None,
        num_threads: int | None = None,
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.uint32]]:
        """(step id per token (N,), steps per rollout (B,)). ``action_mask`` (N,): tokens
        off it get step -1, and each maximal run of tokens on it is a turn, segmented on
        its own (as a padded row's)."""
    def sas_mask(
        self,
        token_ids: npt.NDArray[np.int32] | npt.NDArray[np.int64],
        logprobs: npt.NDArray[np.float32] | npt.NDArray[np.float64],
        cu_seqlens: npt.NDArray[np.int64],
        correct: npt.NDArray[np.bool_],
        options: SelectOptions,
        action_mask: npt.NDArray[np.bool_] | None = None,
        num_threads: int | None = None,
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
        """Segmentation and selection fused: like ``keep_mask(segment(...), ...)``; with
        ``action_mask``, each rollout selected as a padded row is (True off the mask).

        Returns (keep mask (N,), units per rollout (B,), selected units per rollout (B,)).
        """
    def sas_padded(
        self,
        response_ids: npt.NDArray[np.int32] | npt.NDArray[np.int64],
        logprobs: npt.NDArray[np.float32] | npt.NDArray[np.float64],
        action_mask: npt.NDArray[np.bool_],
        correct: npt.NDArray[np.bool_],
        options: SelectOptions,
        spare: npt.NDArray[np.bool_] | None = None,
        advantages: npt.NDArray[np.float32] | npt.NDArray[np.float64] | None = None,
        out: npt.NDArray[np.float32] | npt.NDArray[np.float64] | None = None,
        num_threads: int | None = None,
    ) -> tuple[
        npt.NDArray[np.bool_],
        npt.NDArray[np.uint32],
        npt.NDArray[np.uint32],
        npt.NDArray[np.uint32],
        npt.NDArray[np.bool_],
    ]:
        """Segmentation and selection of padded (B, A) C-contiguous arrays, one rollout
        per row (``action_mask`` set on its response tokens, any padding side).

        Returns the keep mask (B, A) (False exactly on the response tokens of the
        selected units) and, per row, the units, the selected units, the tokens those
        cover, and whether the row was left unselected for a NaN/inf log-prob. Errors
        name the row.

        ``options.nonfinite == "keep"``: a row whose response log-probs hold NaN/inf is
        selected as if they were 0 and then left unselected (``"raise"``: an error).
        ``spare``: (B,) rows left unselected. ``advantages`` ((B,) per row or (B, A) per
        token) and ``out`` ((B, A), written; both of one float dtype): the SAS
        advantages, written in the same pass over each row (per row: the row's value on
        its kept response tokens, 0 elsewhere; per token: as given, 0 on the selected
        tokens).
        """

def keep_mask(
    step_ids: npt.NDArray[np.int32],
    logprobs: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    cu_seqlens: npt.NDArray[np.int64],
    correct: npt.NDArray[np.bool_],
    options: SelectOptions,
    num_threads: int | None = None,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    """(keep mask (N,), units per rollout (B,), selected units per rollout (B,)).
    ``options.nonfinite == "keep"``: a rollout whose log-probs hold NaN/inf is ranked as
    if they were 0 and then left unselected (``"raise"``: an error); the others as
    without it."""

def step_confidences(
    step_ids: npt.NDArray[np.int32],
    logprobs: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    cu_seqlens: npt.NDArray[np.int64],
    num_threads: int | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """(the confidence of every step id 0..max of each rollout, rollout by rollout, in
    the order the ranking sums them (NaN for an id with no token); (B+1,) boundaries of
    each rollout's steps in them). Tokens with step -1 are outside every step."""

def grpo_advantages(
    rewards: npt.NDArray[np.float64],
    eps: float,
    *,
    group_size: int | None = None,
    groups: npt.NDArray[np.uint32] | None = None,
) -> npt.NDArray[np.float64]:
    """(B,) (R - mean) / (std + eps) within each group; unbiased std. The groups are
    ``group_size`` consecutive rollouts, or rollout ``i`` is in group ``groups[i]``
    (dense indices, any order): exactly one of the two, the same formula either way."""

def token_advantages(
    rollout_advantages: npt.NDArray[np.float32],
    keep: npt.NDArray[np.bool_],
    cu_seqlens: npt.NDArray[np.int64],
) -> npt.NDArray[np.float32]:
    """(N,) each rollout's advantage on its tokens, 0 where ``keep`` is False."""

def segment_text(
    text: str, offsets: npt.NDArray[np.int64], think_end: str | None = None
) -> npt.NDArray[np.int32]:
    """(T,) step id per token of one response from its text and (T, 2) character spans
    (start, end): a step ends after a run of two or more newlines; a token's step is the
    one its first character outside such a run is in (an empty span: the character
    before it); ids dense in the order tokens reach them; -1 from the first occurrence
    of ``think_end`` on."""

def unit_key(seed: int, rollout: int, unit: int) -> int:
    """The random key of unit ``unit`` of rollout ``rollout`` under ``seed`` (u64s):
    ``selection="random"`` selects the k units with the smallest keys."""

def default_num_threads() -> tuple[int, str | None]:
    """(``SAS_CORE_NUM_THREADS`` if set to a positive integer, at most ``MAX_THREADS``,
    else the CPUs available to this process; a note when the variable is set but not
    used as written). The one place that parses the variable."""
