"""Time the performance model: all 15 paper workloads x 5 machines (target < 10 s),
one workload on Focus with its counts given, warm (target < 50 ms), and print
the SCALE-Sim cross-check of dense tile cycles."""

import statistics
import time

from focus_hw import FocusParams
from sim.model import MACHINES, resolve_counts, simulate
from sim.reproduce import paper_params
from sim.scalesim_check import compare
from sim.sparsity import baseline_sparsity, focus_target
from sim.workload import paper_workload, paper_workloads


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
    w = paper_workload("llava_vid", "videomme")
    p = paper_params(w.model, w.dataset)
    counts = resolve_counts(w, p, "focus", focus_target(w.model, w.dataset))
    wall, cpu = [], []
    for _ in range(21):  # the first run compiles and fills the caches
        t0, c0 = time.perf_counter(), time.process_time()
        simulate(w, p, "focus", counts, compare=False)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(
        f"one workload on Focus ({w.name}), counts given, {len(wall) - 1} warm runs: "
        f"wall {min(wall[1:]) * 1e3:.0f} ms best / {statistics.median(wall[1:]) * 1e3:.0f} ms "
        f"median, CPU {statistics.median(cpu[1:]) * 1e3:.0f} ms median (target < 50 ms)"
    )
    print("\nSCALE-Sim (ws) vs focus_hw.timing, dense GEMM cycles:")
    print(compare(FocusParams()).to_string(index=False))


if __name__ == "__main__":
    main()
