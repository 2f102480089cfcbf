"""sas-core: Step-level Advantage Selection (SAS) for RL post-training of reasoning LLMs.

GRPO gives every token of a rollout the same advantage. SAS splits each response into
steps at blank lines, scores each step by its mean token log-prob, and zeroes the
advantage of a fraction of steps: the least confident steps of correct rollouts and the
most confident steps of failed ones. The hot path runs in Rust (``sas_core._core``).
"""

from sas_core._arrays import default_num_threads
from sas_core._core import __version__
from sas_core.confidence import StepConfidences, step_confidences
from sas_core.masks import StepSelection, grpo_advantages, select_steps, token_advantages
from sas_core.offsets import segment_offsets
from sas_core.options import SASOptions
from sas_core.segmenter import StepSegmenter
from sas_core.torch_api import BatchStep, sas_advantages, sas_batch_step

__all__ = [
    "BatchStep",
    "SASOptions",
    "StepConfidences",
    "StepSegmenter",
    "StepSelection",
    "__version__",
    "default_num_threads",
    "grpo_advantages",
    "sas_advantages",
    "sas_batch_step",
    "segment_offsets",
    "select_steps",
    "step_confidences",
    "token_advantages",
]
