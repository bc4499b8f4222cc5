"""Time the performance model: all 15 paper workloads x 5 machines (target < 10 s),
and print the SCALE-Sim cross-check of dense tile cycles."""

import time

from focus_hw import FocusParams
from sim.model import MACHINES, simulate
from sim.reproduce import paper_params
from sim.scalesim_check import compare
from sim.sparsity import baseline_sparsity
from sim.workload import paper_workloads


def sparsity_for(machine, w):
    if machine in ("dense", "focus_sec"):
        return None
    if machine == "focus":
        return 0.5
    try:
        return baseline_sparsity(machine, w.model, w.dataset)
    except ValueError:  # no CMC figure for image workloads: use AdapTiV's
        return baseline_sparsity("adaptiv", w.model, w.dataset)


def main():
    ws = paper_workloads()
    t0 = time.perf_counter()
    n = 0
    for w in ws:
        p = paper_params(w.model, w.dataset)
        for m in MACHINES:
            simulate(w, p, m, sparsity_for(m, w))
            n += 1
    dt = time.perf_counter() - t0
    print(
        f"simulate: {n} runs ({len(ws)} workloads x {len(MACHINES)} machines) "
        f"in {dt:.2f} s (target < 10 s)"
    )
    print("\nSCALE-Sim (ws) vs focus_hw.timing, dense GEMM cycles:")
    print(compare(FocusParams()).to_string(index=False))


if __name__ == "__main__":
    main()
