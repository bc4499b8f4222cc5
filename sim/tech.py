"""Logic area and power of each machine (the SRAM part is :mod:`sim.sram`).

Two technology sources:

* :class:`PaperTech` (default): the paper's 28 nm per-module RTL tables
  (``focus_rtl.csv``, ``cmc_rtl.csv``, ``adaptiv_rtl.csv``). Instance counts
  are fitted at run time: for Focus's units, count = power in
  ``detailed_power_area_breakdown.csv`` / per-instance power in
  ``focus_rtl.csv`` (e.g. 192 FP16 exp lanes, 32 SEC max units); the array
  scales with ``rows x cols`` relative to the default FocusParams array and
  the SIC accumulators with ``num_scatter``. Dense = array + SFU. A
  baseline's own units (CMC codec PEs and adder tree, AdapTiV's AdapTME) get
  one common count n = round((core power - array - SFU) / sum of their
  powers), the core power being ``core_energy / execution_time`` of its
  ``main_<machine>.csv`` (median over workloads): n = 16 for CMC, 1 for AdapTiV.
* :class:`YosysTech`: a Yosys ``stat -json`` report of our generated design
  (``estimated_num_transistors``, from ``stat -tech cmos``) times a
  per-transistor area and switching power of a named node (:data:`NODES`);
  machines without a report fall back to :class:`PaperTech`.
  :meth:`YosysTech.from_breakdown` prices dense, Focus and SEC-only from one
  area report of the integrated accelerator (``focus-hw synth --unit
  focus``): each machine is the sum of its parts.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from focus_hw import FocusParams

from .presets import paper_preset
from .workload import REFERENCE_DIR

if TYPE_CHECKING:  # pandas is imported where it is used: a fast `--help`
    import pandas as pd

__all__ = [
    "PaperTech",
    "YosysTech",
    "NODES",
    "MACHINES",
    "PAPER_TABLE_PARAMS",
    "TechError",
    "paper_focus_share",
]

#: The design point the paper's module tables describe (its accumulator
#: rows in ``detailed_power_area_breakdown.csv`` are for 2 scatter lanes):
#: the Focus preset. :class:`PaperTech` scales them from here to the params
#: it prices.
PAPER_TABLE_PARAMS = paper_preset("focus")

#: Per-transistor figures of a node: placed-cell area (um^2, NAND2 ~0.5 um^2
#: / 4 transistors at 28 nm over ~70% row utilisation) and switching power
#: (nW at 1 GHz: 0.3 fF per transistor incl. wire, 0.81 V, activity 0.1).
NODES = {
    "28nm": {"um2_per_transistor": 0.18, "nw_per_transistor_ghz": 20.0},
    "45nm": {"um2_per_transistor": 0.47, "nw_per_transistor_ghz": 45.0},
}
#: The machines the performance model knows (re-exported by :mod:`sim.model`).
MACHINES = ("dense", "focus", "focus_sec", "cmc", "adaptiv")


class TechError(ValueError):
    """A technology table or synthesis report that cannot be used."""


def _sim_csv(name):
    import pandas as pd

    return pd.read_csv(REFERENCE_DIR / "simulator" / name)


def paper_focus_share() -> float:
    """The paper's Focus unit (its SIC modules with the accumulators, and
    SEC's max units) over its systolic array, by area in its 28 nm table."""
    area = _sim_csv("detailed_power_area_breakdown.csv").set_index("component")["area"]
    unit = area.index.str.endswith("(SIC)") | (area.index == "Max Unit (SEC)")
    return float(area[unit].sum() / area["Systolic Array"])


@functools.cache
def _focus_counts() -> dict[str, float]:
    rtl = _sim_csv("focus_rtl.csv").set_index("Module")
    bd = _sim_csv("detailed_power_area_breakdown.csv").set_index("component")
    return {
        m: round(float(bd.loc[m, "power"] / rtl.loc[m, "Power"]))
        for m in rtl.index
        if m in bd.index
    }


@functools.cache
def _modules(machine: str) -> pd.DataFrame:
    """Module table (Area mm^2, Power mW, count, role) of a machine at the
    default FocusParams; role: array / sfu / unit / scatter."""
    import pandas as pd

    counts = _focus_counts()
    focus = _sim_csv("focus_rtl.csv").set_index("Module")
    sfu = focus[focus.index.str.contains("SFU")].assign(role="sfu")
    sfu["count"] = [counts[m] for m in sfu.index]
    if machine in ("dense", "focus", "focus_sec"):
        arr = focus.loc[["Systolic Array"]].assign(role="array", count=1)
        if machine == "dense":
            return pd.concat([arr, sfu])
        units = focus[~focus.index.str.contains("SFU") & (focus.index != "Systolic Array")]
        units = units.assign(
            count=[counts[m] for m in units.index],
            role=["scatter" if "Accumulator" in m else "unit" for m in units.index],
        )
        return pd.concat([arr, sfu, units])
    table = {"cmc": "cmc_rtl.csv", "adaptiv": "adaptiv_rtl.csv"}.get(machine)
    if table is None:
        raise TechError(f"unknown machine {machine!r}; know {MACHINES}")
    rtl = _sim_csv(table).set_index("Module")
    own = rtl[~rtl.index.str.contains("SFU")]
    arr = own.iloc[[0]].assign(role="array", count=1)
    units = own.iloc[1:].assign(role="unit")
    main = _sim_csv(f"main_{machine}.csv")
    core_mw = float(np.median(main.core_energy / main.execution_time))
    rest = core_mw - arr.Power.sum() - (sfu.Power * sfu["count"]).sum()
    units["count"] = max(0, round(rest / units.Power.sum()))
    return pd.concat([arr, sfu, units])


class PaperTech:
    """Area/power from the paper's per-module RTL tables (see module doc)."""

    name = "paper-28nm"

    def _scaled(self, machine: str, params: FocusParams) -> pd.DataFrame:
        df = _modules(machine).copy()
        ref = PAPER_TABLE_PARAMS
        scale = np.ones(len(df))
        scale[(df.role == "array").to_numpy()] = params.rows * params.cols / (ref.rows * ref.cols)
        scale[(df.role == "scatter").to_numpy()] = params.num_scatter / ref.num_scatter
        df["count"] = df["count"] * scale
        return df

    def core_power_mw(self, machine: str, params: FocusParams) -> float:
        df = self._scaled(machine, params)
        return float((df.Power * df["count"]).sum())

    def logic_area_mm2(self, machine: str, params: FocusParams) -> float:
        df = self._scaled(machine, params)
        return float((df.Area * df["count"]).sum())


class YosysTech(PaperTech):
    """Area/power from Yosys ``stat -json`` reports per machine (dict or JSON
    file path) at a node of :data:`NODES`; other machines use the paper table.
    The power assumes the report's design clocked at ``params.clock_mhz``."""

    def __init__(self, reports: dict, node: str = "28nm"):
        if node not in NODES:
            raise TechError(f"unknown node {node!r}; know {sorted(NODES)}")
        self.node, self.name = NODES[node], f"yosys-{node}"
        self.transistors = {m: self._transistors(r) for m, r in reports.items()}

    #: Parts (instance paths of the ``focus`` unit's breakdown) each machine
    #: leaves out: dense has the array only, SEC-only no SIC or scatter.
    OMIT = {
        "dense": ("sic", "scatter", "sec", ""),
        "focus_sec": ("sic", "scatter"),
        "focus": (),
    }

    @classmethod
    def from_breakdown(cls, rows, node: str = "28nm") -> YosysTech:
        """Dense, Focus and SEC-only from the ``cells`` rows of a ``focus``
        unit's :attr:`synth.AreaReport.breakdown` (``unit``: instance path,
        ``""`` the top's own control; ``transistors``); CMC and AdapTiV keep
        the paper table (their units are not generated)."""
        rows = list(rows)
        if not rows or any("unit" not in r or "transistors" not in r for r in rows):
            raise TechError("breakdown rows need 'unit' and 'transistors' (a focus area report)")

        def part(unit: str) -> str:
            return unit.split(".")[0]

        return cls(
            {
                machine: {
                    "design": {
                        "estimated_num_transistors": sum(
                            r["transistors"] for r in rows if part(r["unit"]) not in omit
                        )
                    }
                }
                for machine, omit in cls.OMIT.items()
            },
            node,
        )

    @staticmethod
    def _transistors(report) -> int:
        if isinstance(report, (str, Path)):
            try:
                report = json.loads(Path(report).read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise TechError(f"{report}: cannot read Yosys stat JSON: {e}") from e
        design = report.get("design", report) if isinstance(report, dict) else None
        n = design.get("estimated_num_transistors") if isinstance(design, dict) else None
        if n is None:
            raise TechError(
                "Yosys report lacks design.estimated_num_transistors (run 'stat -json -tech cmos')"
            )
        return int(n)

    def core_power_mw(self, machine, params):
        if machine not in self.transistors:
            return super().core_power_mw(machine, params)
        return (
            self.transistors[machine]
            * self.node["nw_per_transistor_ghz"]
            * params.clock_mhz
            / 1e3
            * 1e-6
        )

    def logic_area_mm2(self, machine, params):
        if machine not in self.transistors:
            return super().logic_area_mm2(machine, params)
        return self.transistors[machine] * self.node["um2_per_transistor"] * 1e-6
