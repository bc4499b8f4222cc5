"""Analytic performance model of the Focus accelerator and its rivals.

``sim.simulate(workload, params, machine, sparsity)`` runs the decoder GEMMs
of a :class:`Workload` on "dense", "focus", "focus_sec", "cmc" or "adaptiv",
with every hardware figure read from :class:`focus_hw.FocusParams`.
``sim.focus_gemm(counts, params)`` is the exact model of one GEMM on the
integrated accelerator (equal to its RTL). ``sim.presets.paper_preset(machine)``
is each machine as the paper's artifact configures it.
"""

from .focus_gemm import GemmCounts, focus_gemm
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
    "GemmCounts",
    "focus_gemm",
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
