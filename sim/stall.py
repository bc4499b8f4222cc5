"""Stall of the integrated Focus accelerator on the paper's video workloads.

The stall share of a run is the sum of ``stall_cycles`` over the sum of
``cycles`` of all its GEMMs, what ``focus-sim run --machine focus --csv``
reports: every cycle beyond the array's own work (scatter and SIC waits, the
SIC passes that end a run). ``benchmarks/bench_focus_stall.py`` and
``benchmarks/bench_focus_pareto.py`` print it per design point.
"""

from __future__ import annotations

from focus_hw import FocusParams

from .model import simulate
from .reproduce import paper_params
from .sparsity import focus_target
from .workload import paper_workload

__all__ = ["STALL_TARGET", "STALL_CEILING", "meets_stall", "workload_stall"]

#: Issue 15's stall targets: at most ``STALL_TARGET`` on all but one of the
#: 9 workloads and at most ``STALL_CEILING`` on every one.
STALL_TARGET, STALL_CEILING = 0.011, 0.025


def meets_stall(shares, target: float = STALL_TARGET, ceiling: float = STALL_CEILING) -> bool:
    """Whether stall ``shares`` (one per workload) are at most ``target`` on
    all but one and at most ``ceiling`` on all."""
    shares = list(shares)
    return max(shares) <= ceiling and sum(s > target for s in shares) <= 1


def workload_stall(model: str, dataset: str, base: FocusParams | None = None) -> dict:
    """Focus (SEC + SIC) on one paper workload with ``base``'s hardware
    fields (:func:`sim.reproduce.paper_params` sets its SEC schedule and
    threshold): ``stall_share``, ``sv_stall_share`` (the part S x V stalls,
    over all cycles), input DRAM (``dram_in_gb``), ``energy_mj`` and
    ``speedup`` over dense."""
    p = paper_params(model, dataset, base)
    res = simulate(paper_workload(model, dataset), p, "focus", focus_target(model, dataset))
    g = res.gemms
    cycles = g.cycles.sum()
    return {
        "workload": f"{model}/{dataset}",
        "stall_share": g.stall_cycles.sum() / cycles,
        "sv_stall_share": g.stall_cycles[g.gemm == "sv"].sum() / cycles,
        "dram_in_gb": g.dram_in.sum() / 1e9,
        "energy_mj": res.totals.energy_mj,
        "speedup": res.totals.speedup,
    }
