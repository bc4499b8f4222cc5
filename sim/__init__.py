"""Analytic performance model of the Focus accelerator and its rivals.

``sim.simulate(workload, params, machine, sparsity)`` runs the decoder GEMMs
of a :class:`Workload` on "dense", "focus", "focus_sec", "cmc" or "adaptiv",
with every hardware figure read from :class:`focus_hw.FocusParams`.
"""

from .model import MACHINES, MachineError, Result, simulate, stream_cycles
from .sparsity import (
    SITES,
    SparsityError,
    TileCounts,
    counts_from_trace,
    synthetic_counts,
    synthetic_trace,
)
from .workload import Workload, WorkloadError, from_config, paper_workloads, qwen2_7b

__all__ = [
    "MACHINES",
    "MachineError",
    "Result",
    "simulate",
    "stream_cycles",
    "SITES",
    "SparsityError",
    "TileCounts",
    "counts_from_trace",
    "synthetic_counts",
    "synthetic_trace",
    "Workload",
    "WorkloadError",
    "from_config",
    "paper_workloads",
    "qwen2_7b",
]
