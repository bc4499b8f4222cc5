"""Area report of one design point: synthesis (cached) + JSON/CSV/plot.

:func:`area_report` elaborates the unit to RTLIL (or takes it), drops the
memories' all-zero contents, merges identical module
instances (unless ``flat``), runs the generic flow (cells + CMOS transistor
estimate) and optionally an FPGA flow, and returns an :class:`AreaReport`
with the generic flow's area by unit and memory (:mod:`synth.breakdown`).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from focus_hw.fileio import atomic_write_bytes, atomic_write_text, figure_png
from focus_hw.generate import as_params, convert_rtlil, drop_zero_init, top_name

from .area import FLOW_VERSION, FLOWS, FlowResult, synthesize
from .breakdown import cell_breakdown, memory_breakdown
from .cache import ResultCache
from .dedup import dedup_rtlil
from .yosys import yosys_version

__all__ = ["AreaReport", "area_report", "FPGA_CELLS", "KEEP_DEPTH", "RUNS"]

#: Headline cell types of each FPGA flow.
FPGA_CELLS = {
    "ecp5": ("LUT4", "TRELLIS_FF", "CCU2C", "MULT18X18D"),
    "ice40": ("SB_LUT4", "SB_CARRY", "SB_DFF*", "SB_MAC16"),
}

#: Levels below the top kept as modules (:func:`synth.dedup.dedup_rtlil`)
#: and reported as rows of the breakdown; 1 unless listed. The integrated
#: accelerator keeps its units' parts (the PE classes, the SIC's dot
#: product, arg-max...), each then synthesized as in its own unit.
KEEP_DEPTH = {"focus": 2}
#: Parallel Yosys runs of a unit's generic flow (:mod:`synth.parts`), 1
#: unless listed: fixed, so that its figures do not depend on the machine.
RUNS = {"focus": 2}


def _count(cells: dict[str, int], pattern: str) -> int:
    if pattern.endswith("*"):
        return sum(n for t, n in cells.items() if t.startswith(pattern[:-1]))
    return cells.get(pattern, 0)


@dataclass
class AreaReport:
    """Area of one unit for one FocusParams, per flow and per module class."""

    unit: str
    top: str
    params: dict
    digest: str
    flat: bool
    flows: dict[str, FlowResult]
    yosys_version: str
    cached: dict[str, bool] = field(default_factory=dict)
    wall_s: float = 0.0
    #: Generic flow by instance path: ``cells`` rows (unit, instances, cells,
    #: transistors) summing to its total, ``memory`` rows (unit, memory,
    #: width, depth, instances, bits) summing to its memory bits.
    breakdown: dict[str, list[dict]] = field(default_factory=dict)

    def summary(self) -> dict:
        """Headline numbers: generic cells / transistors and FPGA cells."""
        out = {
            "unit": self.unit,
            "dtype": self.params["dtype"],
            "rows": self.params["rows"],
            "cols": self.params["cols"],
            "flat": self.flat,
        }
        generic = self.flows.get("generic")
        if generic is not None:
            out["cells"] = generic.total_cells
            out["transistors"] = generic.total_transistors
            out["memory_bits"] = generic.total_memory_bits
        for flow, cells in FPGA_CELLS.items():
            if flow in self.flows:
                for pattern in cells:
                    out[pattern.rstrip("*")] = _count(self.flows[flow].cells_by_type, pattern)
        return out

    def rows(self) -> list[dict]:
        """One row per (flow, module class): own and instance-weighted area."""
        rows = []
        for flow, result in self.flows.items():
            for m in result.modules:
                rows.append(
                    {
                        "flow": flow,
                        "module": m.module,
                        "label": m.label,
                        "instances": m.instances,
                        "cells": m.cells,
                        "total_cells": m.cells * m.instances,
                        "transistors": m.transistors,
                        "total_transistors": (
                            None if m.transistors is None else m.transistors * m.instances
                        ),
                        "memory_bits": m.memory_bits,
                        "total_memory_bits": m.memory_bits * m.instances,
                    }
                )
        return rows

    def to_dict(self) -> dict:
        return {
            "unit": self.unit,
            "top": self.top,
            "params": self.params,
            "digest": self.digest,
            "flat": self.flat,
            "yosys_version": self.yosys_version,
            "cached": self.cached,
            "wall_s": self.wall_s,
            "summary": self.summary(),
            "flows": {k: v.to_dict() for k, v in self.flows.items()},
            "breakdown": self.breakdown,
        }

    def save(self, out_dir) -> dict[str, Path]:
        """Write ``area.json``, ``area.csv`` (per module class),
        ``breakdown.csv`` (per unit, then per memory) and ``area.png`` to
        ``out_dir``."""
        import pandas as pd

        out_dir = Path(out_dir)
        paths = {
            "json": out_dir / "area.json",
            "csv": out_dir / "area.csv",
            "breakdown": out_dir / "breakdown.csv",
            "png": out_dir / "area.png",
        }
        atomic_write_text(paths["json"], json.dumps(self.to_dict(), indent=2, sort_keys=True))
        atomic_write_text(paths["csv"], pd.DataFrame(self.rows()).to_csv(index=False))
        table = pd.concat(
            [pd.DataFrame(self.breakdown.get(kind, [])) for kind in ("cells", "memory")]
        )
        atomic_write_text(paths["breakdown"], table.to_csv(index=False))
        atomic_write_bytes(paths["png"], self.plot())
        return paths

    def plot(self) -> bytes:
        """PNG bar chart: area contribution of each module class per metric."""
        return figure_png(self.figure(), dpi=110)

    def figure(self):
        """The matplotlib figure of :meth:`plot`."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import EngFormatter, MaxNLocator

        panels = []
        for flow, result in self.flows.items():
            panels.append((f"{flow}: cells", result, "cells"))
            if result.total_transistors is not None:
                panels.append((f"{flow}: CMOS transistors", result, "transistors"))
        fig, axes = plt.subplots(
            1,
            len(panels),
            figsize=(5 * len(panels), 0.5 * max(len(r.modules) for _, r, _ in panels) + 1.8),
            squeeze=False,
            layout="constrained",  # room for the long module names and the title
        )
        for ax, (title, result, metric) in zip(axes[0], panels):
            labels = [
                f"{m.module.removeprefix(self.top + '.')} x{m.instances}" for m in result.modules
            ]
            values = [(getattr(m, metric) or 0) * m.instances for m in result.modules]
            ax.barh(labels, values, color="tab:blue")
            ax.invert_yaxis()
            ax.set_title(title)
            ax.set_xlabel(f"{metric} (all instances)")
            # few, short, tilted counts (12k, 1.5M): apart even in a narrow panel
            ax.xaxis.set_major_locator(MaxNLocator(4))
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))
            ax.tick_params(axis="x", labelrotation=30)
        name = f"{self.unit} {self.params['rows']}x{self.params['cols']} {self.params['dtype']}"
        fig.suptitle(f"Area by module: {name}{' (flat)' if self.flat else ''}")
        return fig


def area_report(
    params,
    unit: str = "array",
    *,
    fpga: str = "none",
    flat: bool = False,
    cache_dir=None,
    use_cache: bool = True,
    out_dir=None,
    timeout: float | None = None,
    rtlil: str | None = None,
) -> AreaReport:
    """Synthesize ``unit`` for ``params`` and report its area.

    ``fpga`` adds an FPGA flow (``"ecp5"``, ``"ice40"`` or ``"none"``);
    ``flat`` flattens the whole design instead of synthesizing each distinct
    module once (the array: its shell and each PE class, see
    :func:`focus_hw.generate.unit_modules`). Results are cached
    (see :mod:`synth.cache`); ``out_dir`` receives the Yosys logs and
    ``area.json``/``.csv``/``.png``. ``rtlil``: the unit's
    :func:`~focus_hw.generate.convert_rtlil` text, if already made."""
    if fpga not in ("none",) + FLOWS[1:]:
        raise ValueError(
            f"unknown FPGA flow {fpga!r}; expected one of none, {', '.join(FLOWS[1:])}"
        )
    start = time.perf_counter()
    params = as_params(params)
    top = top_name(unit)
    design = drop_zero_init(convert_rtlil(params, unit) if rtlil is None else rtlil)
    if not flat:
        design, _ = dedup_rtlil(design, top, keep_depth=KEEP_DEPTH.get(unit, 1))
    design_sha = hashlib.sha256(design.encode()).hexdigest()
    cache = ResultCache(cache_dir)
    flows, cached = {}, {}
    with tempfile.TemporaryDirectory(prefix="focus-synth-") as tmp:
        for flow in ["generic"] + ([fpga] if fpga != "none" else []):
            key = {
                "unit": unit,
                "digest": params.digest(),
                "flow": flow,
                "flat": flat,
                "flow_version": FLOW_VERSION,
                "yosys": yosys_version(),
                "design_sha256": design_sha,
                "runs": RUNS.get(unit, 1),
            }
            result = cache.get(key) if use_cache else None
            cached[flow] = result is not None
            if result is None:
                workdir = (
                    Path(out_dir) / "yosys" / flow if out_dir is not None else Path(tmp) / flow
                )
                workdir.mkdir(parents=True, exist_ok=True)
                (workdir / "design.il").write_text(design)
                result = synthesize(
                    "design.il",
                    top,
                    workdir,
                    flow=flow,
                    flat=flat,
                    timeout=timeout,
                    jobs=RUNS.get(unit, 1),
                )
                cache.put(key, result)
            flows[flow] = result
    report = AreaReport(
        unit=unit,
        top=top,
        params=params.to_dict(),
        digest=params.digest(),
        flat=flat,
        flows=flows,
        yosys_version=yosys_version(),
        cached=cached,
        wall_s=time.perf_counter() - start,
        breakdown={
            "cells": cell_breakdown(design, top, flows["generic"], KEEP_DEPTH.get(unit, 1)),
            "memory": memory_breakdown(design, top),
        },
    )
    if out_dir is not None:
        report.save(out_dir)
    return report
