"""AdapTiV-style baseline (MICRO'24): sign-similarity token merging.

AdapTiV replaces the costly cosine similarity of token merging by a
sign-bit comparison. At token granularity:

* Sign bit of an element: ``x < 0`` (0.0 and -0.0 both count as positive).
* Sign similarity of tokens a, b with D features:
  ``s = (matching signs - differing signs) / D = 2 * (fraction matching) - 1``,
  the cosine of the two sign vectors, in [-1, 1] (so the published
  thresholds, e.g. 0.5, mean 75% matching signs).
* Candidates are the spatial neighbours in the same frame, earlier in the
  raster stream: the left token (same row, column - 1) and the upper token
  (row - 1, same column). No wrap-around across rows, no temporal
  neighbours (AdapTiV is image-adaptive). The best candidate wins; on a tie
  the left neighbour (nearest in the stream).
* The token merges when the best ``s > threshold`` (strictly: equal is not
  merged) and points to that neighbour; pointers are followed to the root.
* All-zero tokens (SEC-pruned) are "zero", never candidates, never roots.

Merged groups become their fp32 mean, like SIC.
"""

from __future__ import annotations

from pathlib import Path

import torch

from focus_hw import FocusParams

from ..reference import REFERENCE_DIR
from ..sic import SICResult
from .common import as_tokens, check_threshold, read_config_row, resolve_roots, token_result

__all__ = ["adaptiv_concentrate", "sign_similarity", "adaptiv_threshold"]


def sign_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise sign similarity (float64) of (N, D) tensors ``a`` and ``b``."""
    d = a.shape[-1]
    differ = ((a < 0) ^ (b < 0)).sum(-1, dtype=torch.int64)
    return (d - 2 * differ).to(torch.float64) / d


def adaptiv_concentrate(
    x: torch.Tensor, grid, threshold: float, *, params: FocusParams | None = None
) -> SICResult:
    """Sign-similarity merging of whole tokens (see module docstring).

    ``x``: (T, D) or (heads, T, d) visual tokens, frame-major raster order;
    ``grid``: (frames, height, width); ``threshold``: sign similarity in
    [-1, 1] to exceed. ``params`` only sets ``vector_size`` (the V of the
    returned masks; default FocusParams())."""
    threshold = check_threshold(threshold, "AdapTiV")
    x2, (frames, height, width) = as_tokens(x, grid)
    t = x2.shape[0]
    zero = (x2 == 0).all(dim=1)
    own = torch.arange(t, device=x2.device)
    col = own % width
    row = (own // width) % height
    best = torch.full((t,), -torch.inf, dtype=torch.float64, device=x2.device)
    pointer = own.clone()
    # Upper first, then left with >=, so the left neighbour wins ties.
    for valid, offset in ((row > 0, width), (col > 0, 1)):
        cand = (own - offset).clamp(min=0)
        score = sign_similarity(x2, x2[cand])
        ok = valid & ~zero & ~zero[cand] & (score >= best)
        best = torch.where(ok, score, best)
        pointer = torch.where(ok, cand, pointer)
    pointer = torch.where(best > threshold, pointer, own)
    return token_result(x, x2, zero, resolve_roots(pointer), params)


def adaptiv_threshold(model: str, dataset: str, *, csv_dir=None) -> float:
    """AdapTiV threshold of ``csv_dir/adaptiv_config.csv`` (or its
    ``default`` row)."""
    path = Path(csv_dir or REFERENCE_DIR / "algorithm") / "adaptiv_config.csv"
    row = read_config_row(path, model, dataset)
    try:
        return float(row["adaptiv_threshold"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"{path}: column 'adaptiv_threshold' missing or not a "
            f"number in the row of model={row['model']!r}"
        ) from None
