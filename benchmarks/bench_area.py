"""Area of the systolic array vs its size, and the cost of one area report.

(a) Composed (per distinct module) generic-cell and CMOS-transistor area of
    the array for square sizes, per dtype, with a least-squares line
    ``area = slope * rows*cols + intercept`` (R^2) and a plot;
(b) wall time of the default 32x32 fp16 area report on a cold cache.

    python benchmarks/bench_area.py --sizes 2,4,8,16,32 --dtypes fp16,int8 --out bench_area
    python benchmarks/bench_area.py --cold-only          # (b) alone
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from focus_hw import FocusParams
from focus_hw.fileio import atomic_write_bytes, atomic_write_text, figure_png
from synth import area_report


def linear_fit(x, y) -> dict:
    """Least-squares ``y = slope * x + intercept`` and its R^2."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return {"slope": float(slope), "intercept": float(intercept), "r2": r2}


def cold_report(params: FocusParams) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        report = area_report(params, "array", cache_dir=cache)
        return time.perf_counter() - start, report.summary()


def plot(rows: list[dict], fits: dict, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("cells", "transistors")):
        for dtype in sorted({r["dtype"] for r in rows}):
            pts = [r for r in rows if r["dtype"] == dtype]
            x = np.array([r["pes"] for r in pts])
            ax.plot(x, [r[metric] for r in pts], "o", label=dtype)
            f = fits[dtype][metric]
            xs = np.linspace(0, x.max(), 50)
            ax.plot(
                xs,
                f["slope"] * xs + f["intercept"],
                "--",
                label=f"{dtype}: {f['slope']:.0f}/PE, R^2={f['r2']:.4f}",
            )
        ax.set_xlabel("PEs (rows x cols)")
        ax.set_ylabel(metric)
        ax.set_title(f"array area: {metric}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write_bytes(path, figure_png(fig, dpi=110))


@click.command()
@click.option("--sizes", default="2,4,8,16,32", show_default=True, help="square array sizes")
@click.option("--dtypes", default="fp16,int8", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="bench_area", show_default=True)
@click.option("--cold-only", is_flag=True, help="only (b): the cold 32x32 fp16 report")
@click.option("--skip-cold", is_flag=True, help="only (a): the size sweep")
def main(sizes, dtypes, out, cold_only, skip_cold):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    if not cold_only:
        points = [(d, int(s)) for d in dtypes.split(",") for s in sizes.split(",")]
        rows = []
        for dtype, n in tqdm(points, desc="array area", unit="point"):
            start = time.perf_counter()
            report = area_report(FocusParams(rows=n, cols=n, dtype=dtype), "array")
            s = report.summary()
            rows.append(
                {
                    "dtype": dtype,
                    "rows": n,
                    "cols": n,
                    "pes": n * n,
                    "cells": s["cells"],
                    "transistors": s["transistors"],
                    "wall_s": time.perf_counter() - start,
                    "cached": report.cached["generic"],
                }
            )
            tqdm.write(json.dumps(rows[-1]))
        fits = {
            d: {
                m: linear_fit(
                    [r["pes"] for r in rows if r["dtype"] == d],
                    [r[m] for r in rows if r["dtype"] == d],
                )
                for m in ("cells", "transistors")
            }
            for d in sorted({r["dtype"] for r in rows})
        }
        plot(rows, fits, out / "area_vs_size.png")
        results.update(sweep=rows, fits=fits)
        print("\nsize sweep (composed area):")
        print(f"{'dtype':6} {'size':>6} {'cells':>10} {'transistors':>12} {'wall_s':>8}")
        for r in rows:
            print(
                f"{r['dtype']:6} {r['rows']:>3}x{r['cols']:<2} {r['cells']:>10} "
                f"{r['transistors']:>12} "
                f"{r['wall_s']:>8.1f}{' (cached)' if r['cached'] else ''}"
            )
        for d, f in fits.items():
            for m, v in f.items():
                print(
                    f"fit {d} {m}: slope {v['slope']:.1f} per PE, intercept {v['intercept']:.0f}, "
                    f"R^2 {v['r2']:.5f}"
                )
    if not skip_cold:
        wall, summary = cold_report(FocusParams())
        results["cold_32x32_fp16"] = {"wall_s": wall, "summary": summary}
        print(f"\ncold area report, 32x32 fp16 (default params): {wall:.1f} s -> {summary}")
    atomic_write_text(out / "bench_area.json", json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
