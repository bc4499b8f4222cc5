"""Per-model/dataset Focus settings from a ``focus_config.csv``-style table.

Torch-free (the performance model reads it): the SEC layers, keep ratios and
SIC threshold of a row become a :class:`~focus_hw.FocusParams`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from focus_hw.params import FocusParams

__all__ = ["CONFIG_COLUMNS", "params_from_focus_config"]

CONFIG_COLUMNS = ("model", "dataset", "selected_layers", "alpha_list", "similarity_threshold")


def _parse_list(text: str, kind, where: str, column: str) -> tuple:
    try:
        values = json.loads(text)
    except json.JSONDecodeError:
        values = None
    if not isinstance(values, list) or not values:
        raise ValueError(
            f"{where}: column {column!r} must be a non-empty list like [2, 5, 8], got {text!r}"
        )
    if kind is int and any(not isinstance(v, int) or isinstance(v, bool) for v in values):
        raise ValueError(f"{where}: column {column!r} must hold integers, got {text!r}")
    if kind is float and any(
        not isinstance(v, (int, float)) or isinstance(v, bool) for v in values
    ):
        raise ValueError(f"{where}: column {column!r} must hold numbers, got {text!r}")
    return tuple(kind(v) for v in values)


def params_from_focus_config(
    csv_path, model: str, dataset: str, base: FocusParams | None = None
) -> FocusParams:
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
            raise ValueError(
                f"{path}: missing column(s) {', '.join(missing)} (header {reader.fieldnames})"
            )
        rows = {}
        for record in reader:
            where = f"{path}:{reader.line_num}"
            if None in record or any(record[c] is None for c in CONFIG_COLUMNS):
                raise ValueError(f"{where}: expected {len(reader.fieldnames)} fields")
            key = (record["model"].strip(), record["dataset"].strip())
            if key in rows:
                raise ValueError(f"{where}: duplicate row for model={key[0]!r} dataset={key[1]!r}")
            layers = _parse_list(record["selected_layers"], int, where, "selected_layers")
            keep = _parse_list(record["alpha_list"], float, where, "alpha_list")
            try:
                threshold = float(record["similarity_threshold"])
            except ValueError:
                raise ValueError(
                    f"{where}: column 'similarity_threshold' must be a "
                    f"number, got {record['similarity_threshold']!r}"
                ) from None
            rows[key] = (where, layers, keep, threshold)

    key = next(
        (k for k in [(model, dataset), ("default", dataset), ("default", "")] if k in rows), None
    )
    if key is None:
        raise ValueError(
            f"{path}: no row for model={model!r} dataset={dataset!r} and no 'default' row"
        )
    where, layers, keep, threshold = rows[key]
    try:
        return (base or FocusParams()).replace(
            sec_layers=layers, sec_keep=keep, threshold=threshold
        )
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
