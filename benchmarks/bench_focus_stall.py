"""Stall of the integrated accelerator on the paper's 9 video workloads, per
output-tile width, scatter size and concentrate-out ring depth.

For each workload and candidate (``out_vectors:num_scatter:ring_blocks``) it
runs the performance model (``sim.simulate``, machine ``focus``: SEC + SIC,
every GEMM on the exact RTL schedule) and prints the stall share,
sum of ``stall_cycles`` / sum of ``cycles`` over all GEMMs (what ``focus-sim
run --machine focus --csv`` reports) and the part S x V adds to it, the
input DRAM bytes (sum of ``dram_in``) and the energy, and the first
candidate that keeps the stall at most ``--target`` on all but one workload
and ``--ceiling`` on all.
``1:2:2`` is the accelerator before wide output tiles (one 32-column tile,
two concentrate-out halves).

    python benchmarks/bench_focus_stall.py [--candidates 1:2:2,3:2:4,3:3:4] [--jobs 2]
"""

import argparse
import itertools
from concurrent.futures import ProcessPoolExecutor

import pandas as pd
from tqdm import tqdm

from focus_hw import FocusParams
from sim.stall import STALL_CEILING, STALL_TARGET, meets_stall, workload_stall
from sim.workload import VIDEO_WORKLOADS

FIELDS = ("out_vectors", "num_scatter", "ring_blocks")


def run_point(job) -> dict:
    """One (workload, candidate): stall share, input DRAM, energy, speedup."""
    (model, dataset), candidate = job
    base = FocusParams(**dict(zip(FIELDS, candidate)))
    return {**workload_stall(model, dataset, base), "candidate": ":".join(map(str, candidate))}


def stall_table(candidates, jobs: int = 1) -> pd.DataFrame:
    """One row per (workload, candidate), in candidate order."""
    work = list(itertools.product(VIDEO_WORKLOADS, candidates))
    with ProcessPoolExecutor(jobs) as pool:
        rows = list(tqdm(pool.map(run_point, work), total=len(work), desc="workloads x candidates"))
    return pd.DataFrame(rows)


def pick(share: pd.DataFrame, target: float, ceiling: float):
    """The first candidate (columns in the order given) whose stall is at
    most ``target`` on all but one workload and ``ceiling`` on all."""
    return next((c for c in share.columns if meets_stall(share[c], target, ceiling)), None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--candidates",
        default="1:2:2,3:2:2,3:2:4,3:2:6,3:3:2,3:3:4",
        help="out_vectors:num_scatter:ring_blocks, comma-separated, cheapest first",
    )
    ap.add_argument("--target", type=float, default=STALL_TARGET)
    ap.add_argument("--ceiling", type=float, default=STALL_CEILING)
    ap.add_argument("--jobs", type=int, default=2, help="worker processes")
    ap.add_argument("--csv", help="write the full table here")
    args = ap.parse_args()
    candidates = [tuple(int(v) for v in c.split(":")) for c in args.candidates.split(",")]
    df = stall_table(candidates, args.jobs)
    if args.csv:
        df.to_csv(args.csv, index=False)
    order = [":".join(map(str, c)) for c in candidates]
    for value, title, scale in [
        ("stall_share", "Stall share of Focus cycles, %", 100),
        ("sv_stall_share", "Of which S x V, % of all cycles", 100),
        ("dram_in_gb", "Input DRAM, GB", 1),
        ("energy_mj", "Energy, mJ", 1),
    ]:
        table = df.pivot(index="workload", columns="candidate", values=value)[order]
        print(f"\n{title} (columns: {':'.join(FIELDS)}):")
        print((table * scale).round(2).to_string())
    share = df.pivot(index="workload", columns="candidate", values="stall_share")[order]
    best = pick(share, args.target, args.ceiling)
    print(
        f"\nfirst candidate with stall <= {args.target:.1%} on 8 of 9 and "
        f"<= {args.ceiling:.1%} on all: {best or 'none'}"
    )


if __name__ == "__main__":
    main()
