"""Analytic performance model of the Focus accelerator and its rivals.

``sim.simulate(workload, params, machine, sparsity)`` runs the decoder GEMMs
of a :class:`Workload` on "dense", "focus", "focus_sec", "cmc" or "adaptiv",
with every hardware figure read from :class:`focus_hw.FocusParams`.
``sim.focus_gemm(counts, params)`` is the exact model of one GEMM on the
integrated accelerator (equal to its RTL). ``sim.presets.paper_preset(machine)``
is each machine as the paper's artifact configures it.
"""

import importlib

# sim.focus_gemm is both a module and its function: imported here, so the
# package attribute is the function. The rest (pandas) is imported on first use.
from .focus_gemm import GemmCounts, focus_gemm

_LAZY = {
    "MACHINES": "model",
    "MachineError": "model",
    "Result": "model",
    "simulate": "model",
    "stream_cycles": "model",
    "SITES": "sparsity",
    "SparsityError": "sparsity",
    "TileCounts": "sparsity",
    "counts_from_trace": "sparsity",
    "synthetic_counts": "sparsity",
    "synthetic_trace": "sparsity",
    "Workload": "workload",
    "WorkloadError": "workload",
    "from_config": "workload",
    "paper_workloads": "workload",
    "qwen2_7b": "workload",
}

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


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
