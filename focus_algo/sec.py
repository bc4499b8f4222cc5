"""Semantic concentration (SEC): prompt-aware pruning of visual tokens.

At a few decoder layers the attention probabilities from the text query
tokens to the visual tokens give each visual token an importance (max over
heads and query rows, SPEC 2.1); the top-k tokens survive, in their original
order. The per-model/dataset layers, keep ratios and SIC threshold come from a
``focus_config.csv``-style table (:func:`params_from_focus_config`).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from focus_hw.params import FocusParams

__all__ = ["importance", "keep_count", "select_tokens", "params_from_focus_config"]

CONFIG_COLUMNS = ("model", "dataset", "selected_layers", "alpha_list",
                  "similarity_threshold")


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
        raise ValueError(f"attn must be (heads, Q, K) or (1, heads, Q, K), "
                         f"got shape {tuple(attn.shape)}")
    scores = attn[:, text, visual]
    if scores.shape[1] == 0:
        raise ValueError(f"text slice {text} selects no query rows of attn "
                         f"with Q={attn.shape[1]}")
    if scores.shape[2] == 0:
        raise ValueError(f"visual slice {visual} selects no key columns of attn "
                         f"with K={attn.shape[2]}")
    return scores.amax(dim=(0, 1)).float()


def keep_count(ratio: float, n_original: int, n_current: int) -> int:
    """Visual tokens kept: ``ratio`` of the ORIGINAL count, at least 1, never
    more than currently kept (Python's round, i.e. half to even)."""
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"keep ratio must lie in (0, 1], got {ratio}")
    if not 1 <= n_current <= n_original:
        raise ValueError(f"need 1 <= n_current <= n_original, got "
                         f"n_current={n_current}, n_original={n_original}")
    return max(1, min(n_current, round(ratio * n_original)))


def select_tokens(importance: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` most important tokens, ascending (original order).

    Equal scores favour the lower index.
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


def _parse_list(text: str, kind, where: str, column: str) -> tuple:
    try:
        values = json.loads(text)
    except json.JSONDecodeError:
        values = None
    if not isinstance(values, list) or not values:
        raise ValueError(f"{where}: column {column!r} must be a non-empty list "
                         f"like [2, 5, 8], got {text!r}")
    if kind is int and any(not isinstance(v, int) or isinstance(v, bool) for v in values):
        raise ValueError(f"{where}: column {column!r} must hold integers, got {text!r}")
    if kind is float and any(not isinstance(v, (int, float)) or isinstance(v, bool)
                             for v in values):
        raise ValueError(f"{where}: column {column!r} must hold numbers, got {text!r}")
    return tuple(kind(v) for v in values)


def params_from_focus_config(csv_path, model: str, dataset: str,
                             base: FocusParams | None = None) -> FocusParams:
    """FocusParams with ``sec_layers``, ``sec_keep`` and ``threshold`` taken
    from the row of ``model``/``dataset`` of a ``focus_config.csv``-style
    file (columns model, dataset, selected_layers, alpha_list,
    similarity_threshold), or from its ``default`` row if there is none
    (model ``default`` with this dataset, else with an empty dataset).
    Other fields come from ``base`` (paper defaults if None).
    """
    path = Path(csv_path)
    if not path.is_file():
        raise FileNotFoundError(f"focus config {path} does not exist")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CONFIG_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)} "
                             f"(header {reader.fieldnames})")
        rows = {}
        for record in reader:
            where = f"{path}:{reader.line_num}"
            if None in record or any(record[c] is None for c in CONFIG_COLUMNS):
                raise ValueError(f"{where}: expected {len(reader.fieldnames)} fields")
            key = (record["model"].strip(), record["dataset"].strip())
            if key in rows:
                raise ValueError(f"{where}: duplicate row for model={key[0]!r} "
                                 f"dataset={key[1]!r}")
            layers = _parse_list(record["selected_layers"], int, where, "selected_layers")
            keep = _parse_list(record["alpha_list"], float, where, "alpha_list")
            try:
                threshold = float(record["similarity_threshold"])
            except ValueError:
                raise ValueError(f"{where}: column 'similarity_threshold' must be a "
                                 f"number, got {record['similarity_threshold']!r}") from None
            rows[key] = (where, layers, keep, threshold)

    key = next((k for k in [(model, dataset), ("default", dataset), ("default", "")]
                if k in rows), None)
    if key is None:
        raise ValueError(f"{path}: no row for model={model!r} dataset={dataset!r} "
                         f"and no 'default' row")
    where, layers, keep, threshold = rows[key]
    try:
        return (base or FocusParams()).replace(sec_layers=layers, sec_keep=keep,
                                               threshold=threshold)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
