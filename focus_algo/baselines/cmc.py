"""CMC-style baseline (ASPLOS'24): codec-like inter-frame token reuse.

A video codec codes frame 0 as an I-frame and later frames as P-frames that
reuse blocks of a reference frame when the residual is small. At token
granularity this becomes:

* Frame 0 is the I-frame: every (non-zero) token is a reference.
* Token at patch position p of frame f > 0 is compared with the current
  REFERENCE token of position p: the last token at p that was not reused
  (so reuse never drifts through a chain of small residuals).
* Metric: relative sum of absolute differences (a codec's SAD residual),
  ``r = sum|x - ref| / sum|ref|`` over the whole token, in fp32. The token
  reuses the reference when ``r < threshold`` (strictly: equal is not
  reused); otherwise it becomes the new reference of position p. A larger
  threshold therefore reuses more, as in the artifact's configs (query
  threshold 0.8 > linear 0.4 and higher query sparsity).
* All-zero tokens (SEC-pruned) are "zero", are never references and leave
  the reference of their position unchanged.
* CMC compresses globally (off-chip, whole frames), so there is no M tile.

Reuse groups (reference + its reusers) become their fp32 mean, like SIC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from focus_hw import FocusParams

from ..reference import REFERENCE_DIR
from ..sic import SICResult
from .common import as_tokens, check_threshold, read_config_row, token_result

__all__ = [
    "cmc_concentrate",
    "CMCThresholds",
    "cmc_thresholds",
    "cmc_attn_sparsity",
    "cmc_sparsity",
]


def cmc_concentrate(
    x: torch.Tensor, grid, threshold: float, *, params: FocusParams | None = None
) -> SICResult:
    """Codec-style inter-frame reuse of whole tokens (see module docstring).

    ``x``: (T, D) or (heads, T, d) visual tokens, frame-major raster order;
    ``grid``: (frames, height, width); ``threshold``: relative-SAD bound
    (reuse when strictly below). ``params`` only sets ``vector_size`` (the V
    of the returned masks; default FocusParams())."""
    threshold = check_threshold(threshold, "CMC")
    x2, (frames, height, width) = as_tokens(x, grid)
    patches = height * width
    xf = x2.float().reshape(frames, patches, -1)
    zero = (x2 == 0).all(dim=1)
    root = torch.arange(x2.shape[0], device=x2.device)
    ref = torch.full((patches,), -1, dtype=torch.int64, device=x2.device)
    pos = torch.arange(patches, device=x2.device)
    flat = xf.reshape(frames * patches, -1)
    l1 = flat.abs().sum(1).clamp(min=torch.finfo(torch.float32).tiny)  # never 0 for a reference
    for f in range(frames):
        idx = f * patches + pos
        nonzero = ~zero[idx]
        has_ref = ref >= 0
        src = ref.clamp(min=0)
        residual = (xf[f] - flat[src]).abs_().sum(1) / l1[src]
        reuse = has_ref & nonzero & (residual < threshold)
        root[idx] = torch.where(reuse, ref, idx)
        ref = torch.where(nonzero & ~reuse, idx, ref)
    return token_result(x, x2, zero, root, params)


@dataclass(frozen=True)
class CMCThresholds:
    """The three CMC knobs of ``cmc_config.csv``."""

    linear: float  #: CMC_threshold: relative SAD for linear-layer inputs
    query: float  #: CMC_query_threshold: relative SAD for the attention query
    attn: float  #: CMC_attn_threshold: attention probabilities below it are skipped


def cmc_thresholds(model: str, dataset: str, *, csv_dir=None) -> CMCThresholds:
    """CMC knobs of ``csv_dir/cmc_config.csv`` for model/dataset (or the
    ``default`` row)."""
    path = Path(csv_dir or REFERENCE_DIR / "algorithm") / "cmc_config.csv"
    row = read_config_row(path, model, dataset)
    out = {}
    for field, column in (
        ("linear", "CMC_threshold"),
        ("query", "CMC_query_threshold"),
        ("attn", "CMC_attn_threshold"),
    ):
        try:
            out[field] = float(row[column])
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"{path}: column {column!r} missing or not a number "
                f"in the row of model={row['model']!r}"
            ) from None
    return CMCThresholds(**out)


def cmc_attn_sparsity(attn: torch.Tensor, threshold: float) -> float:
    """Fraction of attention probabilities strictly below ``threshold`` (the
    score x V products CMC skips)."""
    threshold = check_threshold(threshold, "CMC attention")
    if attn.numel() == 0:
        raise ValueError("attention probabilities are empty")
    return float((attn < threshold).float().mean())


def cmc_sparsity(
    linear: Sequence[torch.Tensor],
    query: Sequence[torch.Tensor],
    attn: Sequence[torch.Tensor],
    grid,
    thresholds: CMCThresholds,
    *,
    params: FocusParams | None = None,
) -> dict[str, float]:
    """Per-category CMC sparsities, the columns of ``cmc_sparsity.csv``.

    ``linear``: visual-token inputs of the linear layers (each (T, D));
    ``query``: attention queries ((heads, T, d) or (T, D));
    ``attn``: attention probabilities (any shape; pass the visual part).
    Each category is the unweighted mean over the tensors given."""

    def mean(values, what):
        values = list(values)
        if not values:
            raise ValueError(f"cmc_sparsity: no {what} tensors given")
        return sum(values) / len(values)

    return {
        "linear_sparsity": mean(
            (cmc_concentrate(x, grid, thresholds.linear, params=params).sparsity for x in linear),
            "linear",
        ),
        "query_sparsity": mean(
            (cmc_concentrate(q, grid, thresholds.query, params=params).sparsity for q in query),
            "query",
        ),
        "attn_score_sparsity": mean(
            (cmc_attn_sparsity(a, thresholds.attn) for a in attn), "attention"
        ),
    }
