"""Pipeline depth vs FPGA speed and size, on the array or the whole accelerator.

``--unit array`` (the default) sweeps ``mac_pipeline`` from 0 to the MAC's
cut points (``focus_hw.arith.mac.mac_cuts``: 7 for fp16, 1 for int8) on a
small array: for each dtype and depth, place and route the harness
(``focus-hw fpga``) on an ECP5 board for Fmax, LUTs, FFs and DSPs, and
synthesize the bare array with Yosys (``synth.area_report``, generic cells
and the ECP5 mapping).

``--unit focus`` sweeps one pipeline depth of the whole accelerator
(``--field``, ``sic_pipeline`` by default) on the prototype point (2 x 2
fp16, vector 2, 2 SIC lanes, ``m_tile`` 8, one output vector), the other
depths at ``--mac-pipeline``, ``--sic-pipeline``, ``--scatter-pipeline``
(by default each unit's cut points: the MAC's 7, which the SIC's
dot-product MACs share, and the fp32 adder's 5): Fmax, LUTs, FFs, block
RAMs, DSPs, the critical path, and the harness run's cycles and time at
that Fmax.

Writes ``pipeline_fpga.csv`` and ``pipeline_fpga.png`` to --out.

    python benchmarks/bench_pipeline_fpga.py --dtypes int8,fp16 --out bench_pipeline_fpga
    python benchmarks/bench_pipeline_fpga.py --unit focus --pipelines 0,3,7 --out bench_focus_fpga
"""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd
from tqdm import tqdm

from focus_hw import FocusParams, array_latency
from focus_hw.arith.fadd import ADD_CUTS
from focus_hw.arith.mac import mac_cuts
from focus_hw.fileio import atomic_write_bytes, atomic_write_text, figure_png
from focus_hw.fpga import fpga_build
from synth import area_report

#: The whole accelerator's prototype point (fits the LFE5U-85F with room to
#: route), each pipeline at its unit's cut points.
PROTOTYPE = FocusParams(
    rows=2,
    cols=2,
    vector_size=2,
    dtype="fp16",
    sic_lanes=2,
    m_tile=8,
    max_tokens=64,
    max_frame_tokens=16,
    out_vectors=1,
    mac_pipeline=mac_cuts("fp16"),
    sic_pipeline=mac_cuts("fp16"),
    scatter_pipeline=ADD_CUTS,
)
#: The accelerator's pipeline depths --field may sweep.
FIELDS = ("sic_pipeline", "scatter_pipeline", "mac_pipeline")


def measure_array(params: FocusParams, board: str, build_dir: Path, target_mhz, opts) -> dict:
    fpga = fpga_build(
        params, board, build_dir, target_mhz=target_mhz, nextpnr_opts=opts, progress=False
    )
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


def measure_focus(params: FocusParams, field: str, board: str, build_dir: Path, target_mhz, opts):
    fpga = fpga_build(
        params,
        board,
        build_dir,
        unit="focus",
        target_mhz=target_mhz,
        nextpnr_opts=opts,
        progress=False,
    )
    path = fpga.critical_path
    return {
        "dtype": params.dtype,
        field: getattr(params, field),
        "fmax_mhz": fpga.fmax_mhz,
        "luts": fpga.luts,
        "ffs": fpga.ffs,
        "brams": fpga.brams,
        "dsps": fpga.dsps,
        "run_cycles": fpga.cycles,
        "run_us": round(fpga.cycles / fpga.fmax_mhz, 2),
        "path_ns": path["delay_ns"],
        "path_levels": path["logic_levels"],
        "path_from": path["from"],
        "path_to": path["to"],
        "build_s": fpga.wall_s,
    }


def plot(df: pd.DataFrame, field: str, unit: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    what = "harness + array" if unit == "array" else "harness + accelerator"
    third = (
        ("yosys_cells", "Yosys generic cells, array")
        if unit == "array"
        else (
            "run_us",
            "harness run (us) at Fmax",
        )
    )
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for i, (dtype, pts) in enumerate(df.groupby("dtype")):
        x, color = pts[field], f"C{i}"
        axes[0].plot(x, pts["fmax_mhz"], "o-", color=color, label=dtype)
        axes[1].plot(x, pts["luts"], "o-", color=color, label=f"{dtype} LUTs")
        axes[1].plot(x, pts["ffs"], "s--", color=color, label=f"{dtype} FFs")
        axes[2].plot(x, pts[third[0]], "o-", color=color, label=dtype)
    for ax, title in zip(axes, ("Fmax (MHz)", f"LUTs / FFs (nextpnr), {what}", third[1])):
        ax.set_xlabel(field)
        ax.set_xticks(sorted(df[field].unique()))
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return figure_png(fig, dpi=110)


def depth_options(command):
    """``--mac-pipeline``, ``--sic-pipeline``, ``--scatter-pipeline``: the
    depths not swept (--unit focus), by default the prototype's."""
    for field in reversed(FIELDS):
        command = click.option(
            f"--{field.replace('_', '-')}",
            type=click.IntRange(min=0),
            default=getattr(PROTOTYPE, field),
            show_default=True,
            help=f"{field} while another field is swept (--unit focus)",
        )(command)
    return command


@click.command()
@click.option("--board", default="ulx3s-85f", show_default=True)
@click.option(
    "--unit",
    type=click.Choice(["array", "focus"]),
    default="array",
    show_default=True,
    help="the systolic array (sweeps mac_pipeline) or the whole accelerator (sweeps --field)",
)
@click.option(
    "--size",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="rows = cols of the array (--unit array)",
)
@click.option("--dtypes", default="int8,fp16", show_default=True, help="(--unit array)")
@click.option(
    "--field",
    type=click.Choice(FIELDS),
    default=FIELDS[0],
    show_default=True,
    help="the depth swept on the accelerator (--unit focus)",
)
@depth_options
@click.option(
    "--pipelines",
    default=None,
    help="the swept depths (default: 0 to the unit's cut points)",
)
@click.option(
    "--target-mhz",
    type=float,
    default=None,
    help="clock nextpnr aims for (default: the board clock)",
)
@click.option("--nextpnr-opts", default="", help="options added to nextpnr's command")
@click.option(
    "--out", type=click.Path(file_okay=False), default="bench_pipeline_fpga", show_default=True
)
def main(board, unit, size, dtypes, field, pipelines, target_mhz, nextpnr_opts, out, **depths):
    out = Path(out)
    if unit == "array":
        field = "mac_pipeline"
        points = [
            FocusParams(rows=size, cols=size, dtype=d, mac_pipeline=k)
            for d in dtypes.split(",")
            for k in (
                range(mac_cuts(d) + 1) if pipelines is None else map(int, pipelines.split(","))
            )
        ]
    else:
        base = PROTOTYPE.replace(**depths)
        swept = range(getattr(PROTOTYPE, field) + 1) if pipelines is None else pipelines.split(",")
        points = [base.replace(**{field: int(k)}) for k in swept]
    rows = []
    for params in tqdm(points, desc="pipeline sweep"):
        build = out / "builds" / f"{unit}_{params.dtype}_{field}{getattr(params, field)}"
        if unit == "array":
            rows.append(measure_array(params, board, build, target_mhz, nextpnr_opts))
        else:
            rows.append(measure_focus(params, field, board, build, target_mhz, nextpnr_opts))
    df = pd.DataFrame(rows)
    atomic_write_text(out / "pipeline_fpga.csv", df.to_csv(index=False))
    atomic_write_bytes(out / "pipeline_fpga.png", plot(df, field, unit))
    click.echo(df.to_string(index=False))
    click.echo(f"wrote {out / 'pipeline_fpga.csv'} and {out / 'pipeline_fpga.png'}")


if __name__ == "__main__":
    main()
