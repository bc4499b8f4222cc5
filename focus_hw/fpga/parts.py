"""Utilisation per part of the accelerator, from Yosys' ``stat`` after ``synth_ecp5``.

nextpnr reports totals only, and after flattening Yosys' LUTs carry no
hierarchy. So beside the build's own (flat) synthesis, a second Yosys run
(:func:`stat_script`) marks each part (a submodule of the accelerator, and
the harness's ROMs and FIFOs) ``keep_hierarchy``: Yosys maps it as its own
module and ``stat -json`` counts its cells. Nothing is optimised across
parts there, so the parts add up to somewhat more LUTs than the placed
design has. A part's LUTs are its
``LUT4`` plus two per ``CCU2C`` carry and per ``TRELLIS_DPR16X4`` RAM (the
``TRELLIS_COMB`` cells nextpnr packs them into); ``rest`` is what the
top keeps itself: the accelerator's buffers and glue and the harness's control.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["ACCEL_PARTS", "stat_script", "part_utilisation"]

#: The accelerator's submodules (:class:`~focus_hw.accelerator.FocusAccelerator`).
ACCEL_PARTS = (
    "array",
    "scatter",
    "sic",
    "sec",
    "load",
    "feed",
    "write",
    "dispatch",
    "drain",
    "blocks",
)
#: ECP5 cell -> (figure, weight).
_CELLS = {
    "LUT4": ("luts", 1),
    "CCU2C": ("luts", 2),
    "TRELLIS_DPR16X4": ("luts", 2),
    "TRELLIS_FF": ("ffs", 1),
    "DP16KD": ("brams", 1),
    "MULT18X18D": ("dsps", 1),
}
STAT_FILE = "stat.json"


def stat_script(rtlil: str, modules: list[str]) -> str:
    """A Yosys script that reads ``rtlil``, synthesizes it for ECP5 with
    ``modules`` (RTLIL names such as ``top.harness.accel.sic``) kept apart
    and writes :data:`STAT_FILE`."""
    # synth_ecp5 maps LUTs with ABC9, which trips an assertion on the kept
    # modules (ABC_OPS_REINTEGRATE, rtlil.cc count_id) in Yosys 0.70: run it
    # up to the LUT mapping, map with ABC, then run the rest, as synth.area does.
    return "; ".join(
        [
            f"read_rtlil {rtlil}",
            f"setattr -mod -set keep_hierarchy 1 {' '.join(modules)}",
            "synth_ecp5 -top top -run :map_luts",
            "abc -lut 4 -dress",
            "clean",
            "synth_ecp5 -top top -run map_cells:",
            f"tee -q -o {STAT_FILE} stat -json",
        ]
    )


def part_utilisation(path, prefix: str) -> dict[str, dict[str, int]]:
    """Per part (the module name less ``prefix``; ``rest`` for the top) its
    LUTs, FFs, BRAMs and DSPs from a ``stat -json`` file (:func:`stat_script`)."""
    stat = json.loads(Path(path).read_text())
    parts = {}
    for name, module in stat["modules"].items():
        name = name.lstrip("\\")
        part = name[len(prefix) :] if name.startswith(prefix) else "rest"
        figures = parts.setdefault(part, dict.fromkeys(("luts", "ffs", "brams", "dsps"), 0))
        for cell, count in module.get("num_cells_by_type", {}).items():
            if cell in _CELLS:
                key, weight = _CELLS[cell]
                figures[key] += weight * count
    return parts
