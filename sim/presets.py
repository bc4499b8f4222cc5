"""The paper artifact's configuration of each machine, as FocusParams presets.

The artifact configures each machine on its own; the project's defaults
(:class:`~focus_hw.FocusParams`) are our own design point and move with it.
:func:`paper_preset` gives the artifact's point for one machine: every field
the artifact sets differently from our defaults, with where the value comes
from (:data:`PAPER`, :data:`PAPER_MACHINES`; :func:`preset_table` lists
them). ``focus-sim reproduce`` runs these presets.

The sum of the Focus preset's buffers (:attr:`FocusParams.buffer_bytes`)
is 731 KiB, against the 734 KB the artifact lists for Focus
(``accelerator_area_power_buffer.csv``; tested). :data:`sim.tech.PAPER_TABLE_PARAMS`,
the point the paper's module tables describe, is the Focus preset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from focus_hw import FocusParams

if TYPE_CHECKING:  # pandas is imported where it is used: a fast `--help`
    import pandas as pd

__all__ = ["PAPER", "PAPER_MACHINES", "paper_preset", "preset_table"]

#: Fields of the paper's Focus (and of its dense array, which it extends):
#: ``field: (value, source)``.
PAPER = {
    "acc_format": (
        "operand",
        "focus_rtl.csv: the accumulator is 32 FP16 adders, and the artifact's PE "
        "narrows every partial sum to FP16",
    ),
    "num_scatter": (
        2,
        "main_focus.csv's stall cycles are the num_scatter=2 row of "
        "dse_d_num_scatter_accumulator.csv",
    ),
    "ring_blocks": (2, "the artifact's concentrate-out buffer is double-buffered"),
    "out_vectors": (3, "the artifact's simulator: a 96-column output tile for dense and Focus"),
}
#: Per machine, the fields where the artifact's baselines differ from :data:`PAPER`.
PAPER_MACHINES = {
    "dense": {},
    "focus": {},
    "focus_sec": {},
    "cmc": {
        "out_vectors": (2, "the artifact's simulator: a 64-column output tile for CMC"),
        "m_tile": (768, "the artifact's simulator: CMC's M tile of 768 tokens"),
    },
    "adaptiv": {
        "out_vectors": (8, "the artifact's simulator: a 256-column output tile for AdapTiV"),
        "m_tile": (256, "the artifact's simulator: AdapTiV's M tile of 256 tokens"),
    },
}


def paper_preset(machine: str, base: FocusParams | None = None) -> FocusParams:
    """``base`` (default ``FocusParams()``) with the artifact's fields for ``machine``."""
    if machine not in PAPER_MACHINES:
        raise ValueError(f"unknown machine {machine!r}; know {tuple(PAPER_MACHINES)}")
    fields = {**PAPER, **PAPER_MACHINES[machine]}
    return (base or FocusParams()).replace(**{k: v for k, (v, _) in fields.items()})


def preset_table() -> pd.DataFrame:
    """One row per (machine, field): the preset's value and its source."""
    import pandas as pd

    return pd.DataFrame(
        [
            {"machine": machine, "field": field, "value": value, "source": source}
            for machine in PAPER_MACHINES
            for field, (value, source) in {**PAPER, **PAPER_MACHINES[machine]}.items()
        ]
    )
