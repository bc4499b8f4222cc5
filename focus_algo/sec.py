"""Semantic concentration (SEC): prompt-aware pruning of visual tokens.

At a few decoder layers the attention probabilities from the text query
tokens to the visual tokens give each visual token an importance (max over
heads and query rows, :ref:`method-sec`); the top-k tokens survive, in their original
order. The per-model/dataset layers, keep ratios and SIC threshold come from a
``focus_config.csv``-style table (:func:`focus_algo.config.params_from_focus_config`,
re-exported here).
"""

from __future__ import annotations

import torch

from .config import params_from_focus_config

__all__ = ["importance", "keep_count", "select_tokens", "params_from_focus_config"]


def importance(attn: torch.Tensor, visual: slice, text: slice) -> torch.Tensor:
    """Importance of each visual token: max over heads and text query rows.

    ``attn`` is (heads, Q, K) or (1, heads, Q, K) attention probabilities;
    rows ``text`` are the text queries, columns ``visual`` the visual keys.
    Returns (n_visual,) fp32.
    """
    if not isinstance(visual, slice) or not isinstance(text, slice):
        raise TypeError("visual and text must be slices")
    if attn.ndim == 4:
        if attn.shape[0] != 1:
            raise ValueError(f"attn batch must be 1, got shape {tuple(attn.shape)}")
        attn = attn[0]
    if attn.ndim != 3:
        raise ValueError(
            f"attn must be (heads, Q, K) or (1, heads, Q, K), got shape {tuple(attn.shape)}"
        )
    scores = attn[:, text, visual]
    if scores.shape[1] == 0:
        raise ValueError(f"text slice {text} selects no query rows of attn with Q={attn.shape[1]}")
    if scores.shape[2] == 0:
        raise ValueError(
            f"visual slice {visual} selects no key columns of attn with K={attn.shape[2]}"
        )
    return scores.amax(dim=(0, 1)).float()


def keep_count(ratio: float, n_original: int, n_current: int) -> int:
    """Visual tokens kept: ``ratio`` of the ORIGINAL count, at least 1, never
    more than currently kept (Python's round, i.e. half to even)."""
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"keep ratio must lie in (0, 1], got {ratio}")
    if not 1 <= n_current <= n_original:
        raise ValueError(
            f"need 1 <= n_current <= n_original, got n_current={n_current}, n_original={n_original}"
        )
    return max(1, min(n_current, round(ratio * n_original)))


def select_tokens(importance: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` most important tokens, ascending (original order).

    Equal scores (``-0 == +0``) favour the lower index: a stable descending
    sort, not ``torch.topk``, which picks among ties arbitrarily. The SEC RTL
    (``focus_hw.simulate_sec``) follows the same rule.
    """
    if importance.ndim != 1:
        raise ValueError(f"importance must be 1-D, got shape {tuple(importance.shape)}")
    n = importance.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must lie in [1, {n}], got {k}")
    if torch.isnan(importance).any():
        raise ValueError("importance contains NaN")
    order = torch.sort(importance, descending=True, stable=True).indices
    return torch.sort(order[:k]).values
