"""MAC pipeline depth vs FPGA speed and size: ``mac_pipeline`` from 0 to the
MAC's cut points (``focus_hw.arith.mac.mac_cuts``: 7 for fp16, 1 for int8) on a
small array.

For each dtype and depth: place and route the harness (``focus-hw fpga``) on
an ECP5 board for Fmax, LUTs, FFs and DSPs, and synthesize the bare array
with Yosys (``synth.area_report``, generic cells and the ECP5 mapping).
Writes ``pipeline_fpga.csv`` and ``pipeline_fpga.png`` to --out.

    python benchmarks/bench_pipeline_fpga.py --dtypes int8,fp16 --out bench_pipeline_fpga
"""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd
from tqdm import tqdm

from focus_hw import FocusParams, array_latency
from focus_hw.arith.mac import mac_cuts
from focus_hw.fileio import atomic_write_bytes, atomic_write_text, figure_png
from focus_hw.fpga import fpga_build
from synth import area_report


def measure(params: FocusParams, board: str, build_dir: Path, target_mhz) -> dict:
    fpga = fpga_build(params, board, build_dir, target_mhz=target_mhz, progress=False)
    area = area_report(params, "array", fpga="ecp5").summary()
    return {
        "dtype": params.dtype,
        "mac_pipeline": params.mac_pipeline,
        "fmax_mhz": fpga.fmax_mhz,
        "luts": fpga.luts,
        "ffs": fpga.ffs,
        "dsps": fpga.dsps,
        "yosys_cells": area["cells"],
        "yosys_ecp5_lut4": area["LUT4"],
        "yosys_ecp5_ff": area["TRELLIS_FF"],
        "latency_cycles": array_latency(params),
        "latency_ns": round(array_latency(params) * 1e3 / fpga.fmax_mhz, 1),
        "build_s": fpga.wall_s,
    }


def plot(df: pd.DataFrame) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for i, (dtype, pts) in enumerate(df.groupby("dtype")):
        x, color = pts["mac_pipeline"], f"C{i}"
        axes[0].plot(x, pts["fmax_mhz"], "o-", color=color, label=dtype)
        axes[1].plot(x, pts["luts"], "o-", color=color, label=f"{dtype} LUTs")
        axes[1].plot(x, pts["ffs"], "s--", color=color, label=f"{dtype} FFs")
        axes[2].plot(x, pts["yosys_cells"], "o-", color=color, label=dtype)
    for ax, title in zip(
        axes, ("Fmax (MHz)", "LUTs / FFs (nextpnr), harness + array", "Yosys generic cells, array")
    ):
        ax.set_xlabel("mac_pipeline")
        ax.set_xticks(sorted(df["mac_pipeline"].unique()))
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return figure_png(fig, dpi=110)


@click.command()
@click.option("--board", default="ulx3s-85f", show_default=True)
@click.option(
    "--size",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="rows = cols of the array",
)
@click.option("--dtypes", default="int8,fp16", show_default=True)
@click.option(
    "--pipelines",
    default=None,
    help="mac_pipeline values (default: 0 to mac_cuts of each dtype)",
)
@click.option(
    "--target-mhz",
    type=float,
    default=None,
    help="clock nextpnr aims for (default: the board clock)",
)
@click.option(
    "--out", type=click.Path(file_okay=False), default="bench_pipeline_fpga", show_default=True
)
def main(board, size, dtypes, pipelines, target_mhz, out):
    out = Path(out)
    points = [
        FocusParams(rows=size, cols=size, dtype=d, mac_pipeline=k)
        for d in dtypes.split(",")
        for k in (range(mac_cuts(d) + 1) if pipelines is None else map(int, pipelines.split(",")))
    ]
    rows = []
    for params in tqdm(points, desc="pipeline sweep"):
        build = out / "builds" / f"{params.dtype}_p{params.mac_pipeline}"
        rows.append(measure(params, board, build, target_mhz))
    df = pd.DataFrame(rows)
    atomic_write_text(out / "pipeline_fpga.csv", df.to_csv(index=False))
    atomic_write_bytes(out / "pipeline_fpga.png", plot(df))
    click.echo(df.to_string(index=False))
    click.echo(f"wrote {out / 'pipeline_fpga.csv'} and {out / 'pipeline_fpga.png'}")


if __name__ == "__main__":
    main()
