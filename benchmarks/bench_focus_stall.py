"""Stall of the integrated accelerator on the paper's 9 video workloads, per
scatter size and concentrate-out ring depth.

For each workload and candidate (``num_scatter``, ``ring_blocks``) it runs
the performance model (``sim.simulate``, machine ``focus``: SEC + SIC, the
projection GEMMs on the exact RTL schedule) and prints the stall share,
sum of ``stall_cycles`` / sum of ``cycles`` over all GEMMs (what ``focus-sim
run --machine focus --csv`` reports), and the smallest candidate that keeps
it at most ``--target`` on all but one workload and ``--ceiling`` on all.
Also printed per workload at the first candidate: input DRAM bytes (sum of
``dram_in``) and energy.

    python benchmarks/bench_focus_stall.py [--scatter 2,3,4] [--blocks 2,3,4,6]
"""

import argparse
import itertools

import pandas as pd
from tqdm import tqdm

from sim.model import simulate
from sim.reproduce import paper_params
from sim.sparsity import focus_target
from sim.workload import VIDEO_WORKLOADS, paper_workload


def stall_table(candidates, base_changes=None) -> pd.DataFrame:
    """One row per (workload, candidate): stall share, input DRAM, energy."""
    rows = []
    jobs = list(itertools.product(VIDEO_WORKLOADS, candidates))
    for (model, dataset), (scatter, blocks) in tqdm(jobs, desc="workloads x candidates"):
        base = paper_params(model, dataset).replace(**(base_changes or {}))
        p = base.replace(num_scatter=scatter, ring_blocks=blocks)
        res = simulate(paper_workload(model, dataset), p, "focus", focus_target(model, dataset))
        g = res.gemms
        rows.append(
            {
                "workload": f"{model}/{dataset}",
                "num_scatter": scatter,
                "ring_blocks": blocks,
                "stall_share": g.stall_cycles.sum() / g.cycles.sum(),
                "dram_in_gb": g.dram_in.sum() / 1e9,
                "energy_mj": res.totals.energy_mj,
                "speedup": res.totals.speedup,
            }
        )
    return pd.DataFrame(rows)


def pick(share: pd.DataFrame, target: float, ceiling: float):
    """The first candidate (fewest adders, then fewest blocks) whose stall
    is at most ``target`` on all but one workload and ``ceiling`` on all."""
    for cand in share.columns:
        s = share[cand]
        if (s <= ceiling).all() and (s > target).sum() <= 1:
            return cand
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scatter", default="2,3,4", help="num_scatter candidates")
    ap.add_argument("--blocks", default="2,3,4,6", help="ring_blocks candidates")
    ap.add_argument("--out-vectors", type=int, default=None, help="override out_vectors")
    ap.add_argument("--target", type=float, default=0.011)
    ap.add_argument("--ceiling", type=float, default=0.025)
    ap.add_argument("--csv", help="write the full table here")
    args = ap.parse_args()
    scatter = [int(x) for x in args.scatter.split(",")]
    blocks = [int(x) for x in args.blocks.split(",")]
    changes = {} if args.out_vectors is None else {"out_vectors": args.out_vectors}
    df = stall_table(list(itertools.product(scatter, blocks)), changes)
    if args.csv:
        df.to_csv(args.csv, index=False)
    share = df.pivot(index="workload", columns=["num_scatter", "ring_blocks"], values="stall_share")
    print("Stall share of Focus cycles (columns: num_scatter, ring_blocks):")
    print((share * 100).round(2).to_string())
    first = df[(df.num_scatter == scatter[0]) & (df.ring_blocks == blocks[0])]
    print(f"\nAt num_scatter={scatter[0]}, ring_blocks={blocks[0]}:")
    print(first[["workload", "dram_in_gb", "energy_mj", "speedup"]].round(3).to_string(index=False))
    best = pick(share, args.target, args.ceiling)
    print(
        f"\nsmallest candidate with stall <= {args.target:.1%} on 8 of 9 and "
        f"<= {args.ceiling:.1%} on all: {best if best else 'none'}"
    )


if __name__ == "__main__":
    main()
