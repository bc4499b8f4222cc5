"""Shared pieces of the token-granularity baselines.

Both baselines decide per TOKEN (a whole feature vector), never per
``vector_size`` slice as SIC does. :func:`token_result` broadcasts such
token decisions to the ``(T, V)`` masks of :class:`focus_algo.sic.SICResult`
so reports and sparse traces treat every method alike.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import torch

from focus_hw import FocusParams

from ..sic import SICResult

__all__ = ["as_tokens", "check_threshold", "token_result", "resolve_roots", "read_config_row"]


def as_tokens(x: torch.Tensor, grid) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """Validate ``x``/``grid`` and return ``x`` as (T, D) plus the grid.

    ``x`` is (T, D), or (heads, T, d) whose heads are concatenated along the
    features (as SIC does for the attention query)."""
    if not isinstance(x, torch.Tensor) or x.dim() not in (2, 3):
        raise ValueError(
            f"x must be a (T, D) or (heads, T, d) tensor, got "
            f"{getattr(x, 'shape', type(x).__name__)}"
        )
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got {x.dtype}")
    try:
        frames, height, width = (int(g) for g in grid)
    except (TypeError, ValueError):
        raise ValueError(f"grid must be (frames, height, width), got {grid!r}") from None
    if min(frames, height, width) < 1:
        raise ValueError(f"grid {grid!r}: every extent must be >= 1")
    x2 = x if x.dim() == 2 else x.transpose(0, 1).reshape(x.shape[1], -1)
    if frames * height * width != x2.shape[0]:
        raise ValueError(
            f"grid {grid!r} holds {frames * height * width} tokens but x has T={x2.shape[0]}"
        )
    return x2, (frames, height, width)


def check_threshold(threshold, name: str) -> float:
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or math.isnan(threshold)
    ):
        raise ValueError(f"{name} threshold must be a real number, got {threshold!r}")
    return float(threshold)


def resolve_roots(pointer: torch.Tensor) -> torch.Tensor:
    """Follow backward pointers (``pointer[t] <= t``) to their roots by
    pointer doubling: log2(chain length) gathers instead of a serial walk."""
    root = pointer.clone()
    while True:
        nxt = root[root]
        if torch.equal(nxt, root):
            return root
        root = nxt


def token_result(
    x: torch.Tensor,
    x2: torch.Tensor,
    zero: torch.Tensor,
    root: torch.Tensor,
    params: FocusParams | None,
) -> SICResult:
    """Build the SICResult of token-level decisions.

    ``x`` is the caller's tensor, ``x2`` its (T, D) view, ``zero`` (T,) bool
    the all-zero tokens, ``root`` (T,) int64 the group root of every token
    (its own index for roots, unique and zero tokens). Every group (root and
    followers) is replaced by the element-wise mean of its members, computed
    in fp32 and cast back to ``x.dtype``."""
    params = params or FocusParams()
    t, d = x2.shape
    v = math.ceil(d / params.vector_size)
    own = torch.arange(t, device=x2.device)
    similar = (root != own) & ~zero
    counts = torch.bincount(root, minlength=t)
    members = (counts[root] > 1).nonzero().squeeze(1)  # tokens of groups of 2 or more
    tokens2 = x2.clone()
    if len(members):
        groups, inverse = torch.unique(root[members], return_inverse=True)
        sums = torch.zeros(len(groups), d, dtype=torch.float32, device=x2.device)
        sums.index_add_(0, inverse, x2[members].float())
        mean = sums / counts[groups].unsqueeze(1).float()
        tokens2[members] = mean[inverse].to(x.dtype)
    if x.dim() == 3:
        heads = x.shape[0]
        tokens = tokens2.reshape(t, heads, -1).transpose(0, 1).contiguous()
    else:
        tokens = tokens2
    expand = lambda m: m.unsqueeze(1).expand(t, v).contiguous()  # noqa: E731
    sparsity = float((zero | similar).sum()) / t if t else 0.0
    return SICResult(
        tokens=tokens,
        zero=expand(zero),
        similar=expand(similar),
        root=expand(root.to(torch.int64)),
        sparsity=sparsity,
    )


def read_config_row(csv_path: Path, model: str, dataset: str) -> dict[str, str]:
    """Row of a ``model,dataset,...`` config CSV; falls back to the row whose
    model is ``default``. Raises ValueError naming the file when neither
    exists or the file lacks the model/dataset columns."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"baseline config {csv_path} does not exist")
    with csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"model", "dataset"} <= set(rows[0]):
        raise ValueError(f"{csv_path}: needs a header with 'model' and 'dataset' columns")
    for row in rows:
        if row["model"] == model and row["dataset"] == dataset:
            return row
    for row in rows:
        if row["model"] == "default":
            return row
    raise ValueError(
        f"{csv_path}: no row for model={model!r} dataset={dataset!r} and no 'default' row"
    )
