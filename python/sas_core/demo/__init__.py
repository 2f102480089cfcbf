"""``sas-core demo``: the SAS paper's effect in miniature, on CPU, with no downloads.

A tiny Qwen2-architecture model learns a multi-step arithmetic task from verbose worked
solutions (with redundant re-checking steps), then is post-trained with RL under a
completion limit shorter than those solutions: once with TRL's GRPO, once with SAS.
"""
