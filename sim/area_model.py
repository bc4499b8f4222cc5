"""Logic area of the integrated accelerator at any design point, fitted to
whole-accelerator synthesis.

Synthesizing the accelerator (``focus-hw synth --unit focus``) takes minutes
per point, too slow for a sweep of hundreds. This model prices a point from
a few synthesized ones: each unit path of the synthesis breakdown
(:func:`synth.breakdown.cell_breakdown`: ``array.pe``, ``scatter.add``,
``sic.dot``, ...) is a linear function of one structural count of the
parameters (:data:`UNITS`: PEs, scatter adders, SIC lanes, mean lanes,
arg-max multipliers, ...; every other unit a constant), its cells and its CMOS
transistors fitted by least squares per numerics (``dtype``, and
``acc_format`` for the parts it changes) over the breakdowns of
:data:`POINTS`, kept in ``area_points.csv`` beside this module.

``python -m sim.area_model`` synthesizes :data:`POINTS` (cached) and
rewrites that file; a test holds the fit to a point it was not fitted on.
The counts scale the units whose size they set exactly (PEs, adders, MAC
lanes); the control around them follows the fit, so a point far from
:data:`POINTS` (another array size) is an estimate.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from focus_hw import FocusParams
from focus_hw.timing import sic_mean_lanes

__all__ = ["UNITS", "POINTS", "POINTS_CSV", "AreaModelError", "breakdown", "fit", "synthesized"]

POINTS_CSV = Path(__file__).with_name("area_points.csv")

#: Unit path -> (the count of the params it scales with, whether it has a
#: fixed part beside it). Unit paths not listed are constants.
UNITS = {
    "array.pe": (lambda p: p.rows * p.cols, False),
    "array": (lambda p: p.rows * p.cols, False),
    "scatter.add": (lambda p: p.num_scatter * p.cols, False),
    "scatter": (lambda p: p.num_scatter * p.cols, True),
    "sic.dot": (lambda p: p.sic_width, True),
    "sic.average": (sic_mean_lanes, True),
    "sic.argmax": (lambda p: _argmax_multipliers(p), True),
    "drain": (lambda p: p.cols, False),
}
#: Parts whose arithmetic does not depend on ``acc_format`` (the SIC's is
#: its own fp32, the SEC's the operand's): fitted per ``dtype`` over both
#: numerics; every other unit per (``dtype``, ``acc_format``).
OPERAND_ONLY = ("sic", "sec")

#: The synthesized points (``acc_format``, ``sic_lanes``, ``num_scatter``;
#: the rest FocusParams' defaults): both numerics, the lanes and scatter
#: sizes the sweeps visit.
POINTS = tuple(
    FocusParams(acc_format=acc, sic_lanes=lanes, num_scatter=scatter)
    for acc, lanes, scatter in (
        ("wide", 8, 2),
        ("wide", 8, 3),
        ("wide", 16, 3),
        ("wide", 8, 4),
        ("wide", 4, 3),
        ("operand", 8, 2),
        ("operand", 8, 3),
        ("operand", 16, 3),
    )
)


class AreaModelError(ValueError):
    """The model has no synthesized points for a design point's numerics."""


def _argmax_multipliers(params: FocusParams) -> int:
    """fp32 multipliers of the SIC's arg-max unit: one shared, or three."""
    from focus_hw.sic.argmax import shares_multiplier

    return 1 if shares_multiplier(params) else 3


def _features(unit: str, params: FocusParams) -> list[float]:
    count, fixed = UNITS.get(unit, (lambda p: 1, False))
    return [count(params), 1.0] if fixed else [count(params)]


def _numerics(unit: str, params: FocusParams) -> tuple:
    if unit.split(".")[0] in OPERAND_ONLY:
        return (params.dtype,)
    return (params.dtype, params.acc_format)


def fit(rows) -> dict:
    """Coefficients ``{unit: {numerics: (cells coef, transistors coef)}}``
    from breakdown ``rows`` (``params`` a FocusParams, ``unit``, ``cells``,
    ``transistors``); ``numerics`` is ``(dtype, acc_format)``, or
    ``(dtype,)`` for the parts in :data:`OPERAND_ONLY`."""
    groups: dict = {}
    for r in rows:
        key = _numerics(r["unit"], r["params"])
        groups.setdefault(r["unit"], {}).setdefault(key, []).append(r)
    model: dict = {}
    for unit, by_numerics in groups.items():
        for key, rs in by_numerics.items():
            x = np.array([_features(unit, r["params"]) for r in rs], float)
            y = np.array([[r["cells"], r["transistors"]] for r in rs], float)
            coef = np.linalg.lstsq(x, y, rcond=None)[0]
            model.setdefault(unit, {})[key] = (coef[:, 0], coef[:, 1])
    return model


@functools.cache
def synthesized() -> dict[FocusParams, list[dict]]:
    """The breakdown rows (``unit``, ``cells``, ``transistors``) of each
    synthesized point in ``area_points.csv``."""
    import pandas as pd

    df = pd.read_csv(POINTS_CSV, keep_default_na=False)
    return {
        FocusParams.from_json(text): g[["unit", "cells", "transistors"]].to_dict("records")
        for text, g in df.groupby("params", sort=False)
    }


@functools.cache
def _fitted() -> dict:
    return fit({"params": p, **r} for p, rows in synthesized().items() for r in rows)


def breakdown(params: FocusParams, model: dict | None = None) -> list[dict]:
    """Rows ``{unit, cells, transistors}`` of the accelerator at ``params``,
    as :func:`synth.breakdown.cell_breakdown` gives them for a synthesized
    one (``model``: from :func:`fit`; default: fitted to ``area_points.csv``)."""
    model = _fitted() if model is None else model
    rows = []
    for unit, by_numerics in sorted(model.items()):
        coef = by_numerics.get(_numerics(unit, params))
        if coef is None:
            raise AreaModelError(
                f"area model: no synthesized points for dtype={params.dtype!r}, "
                f"acc_format={params.acc_format!r}; add them to sim.area_model.POINTS "
                "and run python -m sim.area_model"
            )
        x = np.array(_features(unit, params))
        rows.append(
            {
                "unit": unit,
                "cells": max(0, round(float(x @ coef[0]))),
                "transistors": max(0, round(float(x @ coef[1]))),
            }
        )
    return rows


def main() -> None:
    """Synthesize :data:`POINTS` (cached) and rewrite ``area_points.csv``."""
    import pandas as pd
    from tqdm import tqdm

    from focus_hw.fileio import atomic_write_text
    from synth import area_report

    rows = []
    for p in tqdm(POINTS, desc="synthesis", unit="point"):
        report = area_report(p, "focus")
        text = json.dumps(p.to_dict(), sort_keys=True)
        rows += [
            {"params": text, **{k: r[k] for k in ("unit", "cells", "transistors")}}
            for r in report.breakdown["cells"]
        ]
    atomic_write_text(POINTS_CSV, pd.DataFrame(rows).to_csv(index=False))
    print(f"wrote {POINTS_CSV} ({len(POINTS)} points)")


if __name__ == "__main__":
    main()
