"""The integrated accelerator's RTL against the exact model, case by case.

Runs a few compressed GEMMs through :func:`focus_hw.simulate_focus_gemm`
(Amaranth simulation of :class:`focus_hw.FocusAccelerator`) and
:func:`sim.focus_gemm` (counts only), and prints the cycles of both, whether
every counter agrees, the share of stall and SIC cycles, and the simulation
time. Sparsity comes from planted near-copies (``--copies``) and the SIC
threshold. It exits non-zero, naming the cases, if the model and the RTL
differ on the cycles or any counter.

    python benchmarks/bench_focus_gemm.py [--n 4] [--seed 0]
"""

import argparse
import math
import time

import numpy as np
import pandas as pd
from tqdm import tqdm

from focus_hw import FocusParams, simulate_focus_gemm
from focus_hw.sic.model import sic_model
from sim.focus_gemm import GemmCounts, focus_gemm

#: (name, grid, K, N, threshold, num_scatter, pruned tokens)
CASES = [
    ("dense (threshold inf)", (2, 3, 3), 16, 8, math.inf, 2, 0),
    ("SIC 0.9", (2, 3, 3), 16, 8, 0.9, 2, 0),
    ("SIC 0.9, 1 scatter lane", (2, 3, 3), 16, 8, 0.9, 1, 0),
    ("SIC 0.9, 4 scatter lanes", (2, 3, 3), 16, 8, 0.9, 4, 0),
    ("SIC 0.5 + SEC (4 pruned)", (2, 3, 3), 16, 8, 0.5, 2, 4),
    ("long K (8 chunks)", (2, 3, 3), 32, 4, 0.9, 2, 0),
]


def tokens(rng, grid, k, copies: float, pruned: int) -> np.ndarray:
    """Random fp16 tokens with near-copies and ``pruned`` all-zero rows."""
    t = math.prod(grid)
    x = rng.standard_normal((t, k)).astype(np.float32)
    for _ in range(int(copies * t)):
        a, b = rng.integers(0, t, 2)
        x[b] = x[a] + 0.02 * rng.standard_normal(k)
    x[rng.choice(t, pruned, replace=False)] = 0
    return x.astype(np.float16)


def run_case(case, n: int, copies: float, seed: int) -> dict:
    name, grid, k, cols, threshold, lanes, pruned = case
    p = FocusParams(
        rows=n,
        cols=n,
        vector_size=n,
        m_tile=8,
        num_scatter=lanes,
        threshold=threshold,
        sic_lanes=n,
        max_tokens=64,
        max_frame_tokens=16,
    )
    rng = np.random.default_rng(seed)
    x = tokens(rng, grid, k, copies, pruned)
    w = rng.standard_normal((k, cols)).astype(np.float16)
    start = time.perf_counter()
    rtl = simulate_focus_gemm(x, w, grid, p)
    seconds = time.perf_counter() - start
    sic = sic_model(x, grid, p)
    out = sic_model(rtl.out.astype(np.float16), grid, p)
    alive = ~sic.zero.all(axis=1)
    counts = GemmCounts.from_sic(
        sic.zero, sic.root, cols, int((~out.zero & ~out.similar)[alive].sum()), p
    )
    model = focus_gemm(counts, p)
    measured = dict(rtl.stats, cycles=rtl.cycles)
    return {
        "case": name,
        "unique": f"{counts.unique.sum()}/{counts.nonzero.sum()}",
        "rtl_cycles": rtl.cycles,
        "model_cycles": model["cycles"],
        "counters_equal": measured == model,
        "stall_%": round(100 * rtl.stats["stall_cycles"] / rtl.cycles, 1),
        # the SIC's busy cycles: passes overlap, so this may exceed the run's
        "sic_cycles": rtl.stats["sic_cycles"],
        "sim_s": round(seconds, 1),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4, help="rows = cols = vector_size")
    ap.add_argument("--copies", type=float, default=0.6, help="near-copies per token")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = [run_case(c, args.n, args.copies, args.seed) for c in tqdm(CASES, desc="cases")]
    print(pd.DataFrame(rows).to_string(index=False))
    bad = [r["case"] for r in rows if not r["counters_equal"]]
    if bad:
        raise SystemExit(f"model != RTL in: {', '.join(bad)}")


if __name__ == "__main__":
    main()
