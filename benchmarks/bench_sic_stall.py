"""SIC stall on the paper's 9 video workloads: the share of Focus's cycles that
the SIC hardware adds (its passes overlap the array's work on each M tile), at
the paper configuration and per ``sic_lanes``, and the fewest lanes that keep
it under 1% on every workload.

    python benchmarks/bench_sic_stall.py [--lanes 1,2,4,8,16,32]
"""

import argparse

import pandas as pd

from sim.model import simulate
from sim.reproduce import paper_params
from sim.sparsity import focus_target
from sim.workload import VIDEO_WORKLOADS, paper_workload


def stall_table(lanes) -> pd.DataFrame:
    rows = []
    for model, dataset in VIDEO_WORKLOADS:
        w = paper_workload(model, dataset)
        base = paper_params(model, dataset)
        sp = focus_target(model, dataset)
        for n in lanes:
            t = simulate(w, base.replace(sic_lanes=n), "focus", sp, compare=False).totals
            rows.append(
                {
                    "workload": f"{model}/{dataset}",
                    "sic_lanes": n,
                    "sic_stall_share": t.sic_stall_cycles / t.cycles,
                    "sic_busy_share": t.sic_cycles / t.cycles,
                }
            )
    return pd.DataFrame(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lanes", default="1,2,4,8,16,32")
    args = ap.parse_args()
    lanes = [int(x) for x in args.lanes.split(",")]
    df = stall_table(lanes)
    share = df.pivot(index="workload", columns="sic_lanes", values="sic_stall_share")
    print("SIC stall share of Focus cycles (paper configuration, by sic_lanes):")
    print((share * 100).round(2).astype(str).add(" %").to_string())
    ok = [n for n in lanes if (share[n] < 0.01).all()]
    print(
        f"\nfewest sic_lanes with < 1% SIC stall on every workload: "
        f"{min(ok) if ok else 'none of ' + args.lanes}"
    )


if __name__ == "__main__":
    main()
