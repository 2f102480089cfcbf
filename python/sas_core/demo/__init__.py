"""``sas-core demo``: the SAS paper's mechanism in miniature, on CPU, with no downloads.

A tiny Qwen2-architecture model learns chained additions from worked solutions that mix
careful one-addition steps, error-prone shortcuts and redundant hesitations; RL then runs
under a window L that careful solutions of long chains do not fit, and is evaluated by
sampled Pass@1 at 2L. Arms: GRPO and SAS by default; ``--full`` adds the paper's
ablations, TRL's ``mask_truncated_completions`` and GRPO trained at 2L. Validity gates
and a pre-registered verdict are computed from the runs (``sas_core.demo.verdict``).
"""
