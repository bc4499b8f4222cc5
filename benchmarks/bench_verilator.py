"""The Verilator backend at the paper configuration: build time, peak
memory, simulation speed, and the RTL against the exact model.

Runs ``simulate_focus_gemm(..., backend="verilator")`` for the 32x32 fp16
accelerator (``FocusParams()``: vector 32, 8 SIC lanes, 3 scatter lanes,
96-column output groups; only ``max_tokens`` lowered to 1024, which sizes
the SIC's and SEC's token buffers) on a slice of the built-in video: the
``q_proj`` input of its first layer, ``--frames`` frames of 13 x 14 tokens
(K = 896, Qwen2-0.5B's width; ``--k`` takes fewer), times seeded random
weights with 3 output groups (N = 3 x out_vectors x cols). Phases, one after
another: Verilog generation (Amaranth + Yosys), the Verilator build into an
empty cache (``--cache`` to reuse one) and the run, the last two each in a
forked process whose child processes are sampled for their peak RSS.
Prints each phase's wall time, the peak RSS of the build's largest process
(Verilator or the C++ compiler) and of the simulator, the simulated cycles
per second of the simulator's CPU time, and whether :func:`sim.focus_gemm`
predicts the RTL's cycles and every counter; exits non-zero if not.

    python benchmarks/bench_verilator.py [--size 32] [--frames 3] [--k K] [--cache DIR]

``--amaranth`` also runs the GEMM in Amaranth's simulator (CPU time, equal
results); it is slow, so pair it with a small case: ``--size 8 --frames 1
--k 32``.
"""

import argparse
import multiprocessing
import os
import resource
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from focus_algo.workload import video_workload
from focus_hw import FocusParams, simulate_focus_gemm, verilator
from focus_hw.focus_gemm import FOCUS_BENCH
from focus_hw.sic.model import sic_model
from sim.focus_gemm import GemmCounts, focus_gemm

MB = 1 << 20


def descendants(root: int) -> list[int]:
    """The processes below ``root`` (from /proc)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" ", 1)
            children.setdefault(int(rest.rsplit(")", 1)[1].split()[1]), []).append(int(pid))
        except (OSError, ValueError, IndexError):
            continue
    found, todo = [], [root]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def high_water(pid: int) -> int:
    """Peak RSS (bytes) of process ``pid`` since its last exec, 0 if gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next(
        (int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM:")),
        0,
    )


def phase(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` in a forked process (it inherits the generated
    Verilog): its result, wall seconds, the CPU seconds of its child
    processes and the peak RSS of the largest of them, sampled every 0.1 s
    (``ru_maxrss`` would count the forked Python's memory they exec'd from)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        return pool.submit(_measured, fn, *args, **kwargs).result()


def _measured(fn, *args, **kwargs):
    peak, done = [0], threading.Event()

    def poll():
        while not done.wait(0.1):
            peak[0] = max([peak[0], *map(high_water, descendants(os.getpid()))])

    watcher = threading.Thread(target=poll)
    watcher.start()
    start = time.perf_counter()
    try:
        result = fn(*args, **kwargs)
    finally:
        done.set()
        watcher.join()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return result, time.perf_counter() - start, usage.ru_utime + usage.ru_stime, peak[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32, help="rows = cols = vector_size")
    ap.add_argument("--frames", type=int, default=3, help="video frames of 13 x 14 tokens")
    ap.add_argument("--k", type=int, help="use the first K features (default: all 896)")
    ap.add_argument("--cache", help="compiled-bench cache root (default: a new, empty one)")
    ap.add_argument(
        "--amaranth", action="store_true", help="also run Amaranth's simulator (small sizes)"
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    n = args.size
    p = FocusParams(rows=n, cols=n, vector_size=n, max_tokens=1024)
    os.environ["FOCUS_HW_CACHE"] = args.cache or tempfile.mkdtemp(prefix="bench-verilator-")

    work = video_workload(frames=args.frames, layers=1)
    _, inputs = next(iter(work))
    x = np.ascontiguousarray(inputs["q_proj"].numpy()[:, : args.k])
    grid = work.shape.grid
    k, cols = x.shape[1], 3 * p.out_vectors * p.cols
    w = (np.random.default_rng(args.seed).standard_normal((k, cols)) / np.sqrt(k)).astype(x.dtype)
    print(f"{n}x{n} fp16, vector {p.vector_size}, {p.sic_lanes} SIC lanes; GEMM T={len(x)}")
    print(f"(grid {grid}) x K={k} x N={cols}; cache {os.environ['FOCUS_HW_CACHE']}\n")

    start = time.perf_counter()
    verilator._design(p, "focus")
    print(f"Verilog: {time.perf_counter() - start:6.1f} s (Amaranth + Yosys)", flush=True)
    _, build_s, build_cpu, build_rss = phase(verilator.build, p, FOCUS_BENCH)
    print(
        f"build:   {build_s:6.1f} s ({build_cpu:.0f} s CPU), "
        f"peak {build_rss / MB:,.0f} MB (largest process: Verilator or the C++ compiler)",
        flush=True,
    )
    rtl, run_s, sim_cpu, sim_rss = phase(simulate_focus_gemm, x, w, grid, p, backend="verilator")
    print(
        f"run:     {run_s:6.1f} s ({sim_cpu:.1f} s CPU in the simulator), "
        f"peak {sim_rss / MB:,.0f} MB (simulator)"
    )
    print(
        f"         {rtl.cycles:,} cycles: {rtl.cycles / sim_cpu:,.0f} cycles/s simulated, "
        f"{rtl.cycles / run_s:,.0f} cycles/s with the Python around it\n"
    )

    sic = sic_model(x, grid, p)
    out = sic_model(rtl.out.astype(x.dtype), grid, p)
    alive = ~sic.zero.all(axis=1)
    out_unique = int((~out.zero & ~out.similar)[alive].sum())
    model = focus_gemm(GemmCounts.from_sic(sic.zero, sic.root, cols, out_unique, p), p)
    measured = dict(rtl.stats, cycles=rtl.cycles)
    for name, value in measured.items():
        print(
            f"  {name:26s} {value:>12,} {'' if model[name] == value else '!= ' + str(model[name])}"
        )
    if measured != model:
        raise SystemExit("model != RTL")
    print(f"\nmodel == RTL on the cycles and all {len(measured) - 1} counters")
    if args.amaranth:
        start = time.process_time()
        ref = simulate_focus_gemm(x, w, grid, p)
        seconds = time.process_time() - start
        same = ref.cycles == rtl.cycles and ref.stats == rtl.stats
        same &= np.array_equal(ref.out.view(np.uint32), rtl.out.view(np.uint32))
        print(
            f"Amaranth: {seconds:.1f} s CPU, {ref.cycles / seconds:,.0f} cycles/s; "
            f"{'the same' if same else 'NOT the same'} outputs, cycles and counters"
        )
        if not same:
            raise SystemExit("Amaranth != Verilator")


if __name__ == "__main__":
    main()
