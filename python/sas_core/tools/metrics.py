"""Evaluation metrics of the SAS paper: Pass@k and the Accuracy-Efficiency Score."""

from __future__ import annotations

from math import comb

__all__ = ["aes", "pass_at_k"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct (Chen et al., 2021):
    1 - C(n - c, k) / C(n, k). Pass@1 is c / n."""
    for name, v in (("n", n), ("c", c), ("k", k)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name}: must be an integer, got {type(v).__name__}")
    if not 0 <= c <= n:
        raise ValueError(f"c: must be in [0, n={n}], got {c}")
    if not 1 <= k <= n:
        raise ValueError(f"k: must be in [1, n={n}], got {k}")
    return 1.0 - comb(n - c, k) / comb(n, k)


def aes(
    acc: float,
    tokens: float,
    base_acc: float,
    base_tokens: float,
    *,
    alpha: float = 1.0,
    beta: float = 3.0,
    gamma: float = 5.0,
) -> float:
    """Accuracy-Efficiency Score (O1-Pruner, Luo et al., 2025) against a baseline run.

    With dL = (L_base - L) / L_base and dA = (A - A_base) / A_base:
    AES = alpha * dL + beta * dA when dA >= 0, else alpha * dL - gamma * |dA|.
    """
    if not base_tokens > 0:
        raise ValueError(f"base_tokens: must be > 0, got {base_tokens}")
    if not base_acc > 0:
        raise ValueError(f"base_acc: must be > 0, got {base_acc}")
    d_len = (base_tokens - tokens) / base_tokens
    d_acc = (acc - base_acc) / base_acc
    return alpha * d_len + (beta * d_acc if d_acc >= 0 else -gamma * abs(d_acc))
