"""Area reports over many design points: the synthesis task of a sweep.

``focus_hw.sweep.sweep(base, grid, out, task=Synthesize(...))`` writes one
:func:`synth.report.area_report` per point folder (in parallel, on any
Executor, resumable like every sweep); :func:`summary_table` collects their
headline numbers into one table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from focus_hw.params import FocusParams

from .report import area_report

__all__ = ["Synthesize", "summary_table"]


@dataclass(frozen=True)
class Synthesize:
    """Sweep task: the area report of ``unit`` (options as in
    :func:`synth.report.area_report`); done when the folder's report is
    complete and for the same unit, parameters, flows and flattening."""

    unit: str = "array"
    fpga: str = "none"
    flat: bool = False
    cache_dir: str | None = None
    use_cache: bool = True

    def __call__(self, params: FocusParams, folder: Path) -> None:
        area_report(
            params,
            self.unit,
            fpga=self.fpga,
            flat=self.flat,
            cache_dir=self.cache_dir,
            use_cache=self.use_cache,
            out_dir=folder,
        )

    def done(self, params: FocusParams, folder: Path) -> bool:
        try:
            report = json.loads((Path(folder) / "area.json").read_text())
        except (OSError, ValueError):
            return False
        flows = {"generic"} | ({self.fpga} if self.fpga != "none" else set())
        return (
            (Path(folder) / "area.png").is_file()
            and report.get("unit") == self.unit
            and report.get("digest") == params.digest()
            and report.get("flat") == self.flat
            and flows <= set(report.get("flows", {}))
        )


def summary_table(result, out_dir) -> pd.DataFrame:
    """One row per synthesized point of a sweep ``result``: the swept values,
    then the report's headline numbers (:meth:`AreaReport.summary`)."""
    rows = []
    for p in result.points:
        if p.status in ("ok", "skipped"):
            summary = json.loads((Path(out_dir) / p.folder / "area.json").read_text())["summary"]
            swept = {k: str(v) if isinstance(v, tuple) else v for k, v in p.point.items()}
            rows.append(
                {
                    **swept,
                    "folder": p.folder,
                    **{k: v for k, v in summary.items() if k not in p.point},
                }
            )
    return pd.DataFrame(rows)
