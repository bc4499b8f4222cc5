"""The Focus unit's area against the accelerator's stall: measured points.

    python -m sim.area_model                      # synthesize the points (cached)
    python benchmarks/bench_focus_pareto.py [--out DIR]

The points are those :mod:`sim.area_model` synthesizes
(``sim.area_model.POINTS``: ``acc_format``, ``sic_lanes`` and
``num_scatter`` varied, every other field at its FocusParams default; the
whole accelerator through ``focus-hw synth --unit focus``, kept in
``sim/area_points.csv``). For each point:

* area: the Focus unit's (SIC + SEC + scatter) cells over the array's
  (:func:`synth.breakdown.focus_share`), and the same without the SIC's
  average-update unit (``floor``: what no cheaper mean datapath can go
  below at that point);
* stall: the performance model on the paper's 9 video workloads
  (:func:`sim.stall.workload_stall`): the worst and second-worst stall
  share, the workloads at most 1.1%, and the part S x V adds on the worst.

It prints one row per point, marks the points no other point of the same
numerics beats on both area share and second-worst stall, says whether each
meets issue 15's targets (:data:`synth.breakdown.FOCUS_SHARE_TARGET`,
:func:`sim.stall.meets_stall`), and with ``--out`` writes ``pareto.csv`` and
``pareto.png`` (area share vs stall, the targets as lines).
"""

from __future__ import annotations

import itertools
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import click
import pandas as pd
from tqdm import tqdm

from focus_hw import FocusParams
from focus_hw.fileio import atomic_write_bytes, atomic_write_text, figure_png
from sim import dse
from sim.area_model import synthesized
from sim.stall import STALL_TARGET, meets_stall, workload_stall
from sim.workload import VIDEO_WORKLOADS
from synth.breakdown import FOCUS_SHARE_TARGET, focus_share


def label(p: FocusParams) -> str:
    return f"{p.acc_format}:{p.sic_lanes}:{p.num_scatter}"


def area_row(rows: list[dict]) -> dict:
    """The Focus unit's share of the array's cells, with and without the
    SIC's average update, from a point's breakdown ``rows``."""
    return {
        "share": focus_share(rows),
        "floor": focus_share([r for r in rows if r["unit"] != "sic.average"]),
    }


def stall_job(job) -> dict:
    (model, dataset), params = job
    return {"point": label(params), **workload_stall(model, dataset, params)}


def stall_rows(points: list[FocusParams], jobs: int) -> pd.DataFrame:
    """Per point: the worst and second-worst stall share over the 9
    workloads, how many are at most :data:`~sim.stall.STALL_TARGET`, the S x
    V part of the worst, and whether the stall targets are met."""
    work = list(itertools.product(VIDEO_WORKLOADS, points))
    with ProcessPoolExecutor(jobs) as pool:
        df = pd.DataFrame(
            tqdm(pool.map(stall_job, work), total=len(work), desc="workloads x points")
        )
    rows = []
    for point, g in df.groupby("point", sort=False):
        g = g.sort_values("stall_share", ascending=False)
        rows.append(
            {
                "point": point,
                "stall_worst": g.stall_share.iloc[0],
                "stall_second": g.stall_share.iloc[1],
                "worst_workload": g.workload.iloc[0],
                "worst_sv_share": g.sv_stall_share.iloc[0],
                "within_target": int((g.stall_share <= STALL_TARGET).sum()),
                "stall_met": meets_stall(g.stall_share),
            }
        )
    return pd.DataFrame(rows)


def pareto(df: pd.DataFrame) -> pd.Series:
    """Points no other point of the same numerics beats on both area share
    and second-worst stall (:func:`sim.dse.pareto` per ``acc_format``)."""
    front = pd.Series(False, index=df.index)
    for _, g in df.groupby("acc_format"):
        front[g.index] = dse.pareto(g.rename(columns={"share": "area_mm2"}), "stall_second", False)
    return front


def plot(df: pd.DataFrame) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for (acc, g), color in zip(df.groupby("acc_format"), ("tab:blue", "tab:orange")):
        x, y = 100 * g.share, 100 * g.stall_second
        ax.scatter(x, y, color=color, label=f"{acc}: 2nd-worst workload")
        ax.scatter(x, 100 * g.stall_worst, color=color, marker="v", alpha=0.5, label="worst")
        ax.hlines(y, 100 * g.floor, x, color=color, lw=1, alpha=0.5)
        ax.scatter(100 * g.floor, y, color=color, marker="|", s=80, label="floor")
        for _, r in g.iterrows():
            ax.annotate(
                f"L{r.sic_lanes} S{r.num_scatter}",
                (100 * r.share, 100 * r.stall_second),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
            )
        ax.axvline(100 * FOCUS_SHARE_TARGET[acc], color=color, ls="--", lw=1)
    ax.axhline(100 * STALL_TARGET, color="k", ls=":", lw=1, label="stall target (8 of 9)")
    ax.set_xlabel("Focus unit (SIC + SEC + scatter), % of the array's cells")
    ax.set_ylabel("stall share over the 9 video workloads, %")
    ax.set_ylim(bottom=0)
    ax.set_title(
        "Area against stall (L: SIC lanes, S: scatter lanes; dashed: area targets;\n"
        "floor: without the SIC's average update)",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    return figure_png(fig)


@click.command()
@click.option("--jobs", type=click.IntRange(1), default=2, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None)
def main(jobs, out):
    """Area share and stall of the synthesized design points."""
    points = synthesized()
    df = pd.DataFrame([{"point": label(p), **area_row(rows)} for p, rows in points.items()])
    df = df.merge(stall_rows(list(points), jobs), on="point")
    df[["acc_format", "sic_lanes", "num_scatter"]] = [
        (p.acc_format, p.sic_lanes, p.num_scatter) for p in points
    ]
    df["area_met"] = [s <= FOCUS_SHARE_TARGET[a] for s, a in zip(df.share, df.acc_format)]
    df["pareto"] = pareto(df)
    show = df.assign(
        **{c: (100 * df[c]).round(2) for c in ("share", "floor", "stall_worst", "stall_second")},
        worst_sv_share=(100 * df.worst_sv_share).round(2),
    )
    click.echo(
        "\n% of the array's cells (share; floor: without the SIC's average update) and % of "
        "the cycles (stall)\n"
    )
    click.echo(
        show[
            [
                "point",
                "share",
                "floor",
                "stall_worst",
                "worst_workload",
                "worst_sv_share",
                "stall_second",
                "within_target",
                "area_met",
                "stall_met",
                "pareto",
            ]
        ].to_string(index=False)
    )
    both = df[df.area_met & df.stall_met]
    click.echo(f"\npoints meeting both targets: {', '.join(both.point) or 'none'}")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "pareto.csv", df.to_csv(index=False))
        atomic_write_bytes(out / "pareto.png", plot(df))
        click.echo(f"wrote {out / 'pareto.csv'} and {out / 'pareto.png'}")


if __name__ == "__main__":
    main()
