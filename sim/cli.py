"""``focus-sim``: the performance model from the command line.

The model (pandas, numpy) is imported inside the commands, so ``--help`` is fast.
"""

from __future__ import annotations

from pathlib import Path

import click

from focus_hw.cli_types import PARAMS_FILE, OutputPath, field_options, point_params
from focus_hw.executors import cli_executor, executor_options

from .tech import MACHINES


@click.group()
def main():
    """Analytic performance model of the Focus accelerator and its rivals."""


def _workload(name, tokens, config, frames):
    """The workload the options name; bad input is a usage error (exit 2)
    naming the option."""
    from .workload import WorkloadError, from_config, paper_workload, paper_workloads, qwen2_7b

    if config:
        if not tokens:
            raise click.UsageError("--config needs --tokens")
        try:
            return from_config(config, tokens, frames)
        except WorkloadError as e:
            raise click.BadParameter(str(e), param_hint="--config") from None
    if tokens:
        return qwen2_7b(tokens, frames)
    model, _, dataset = name.partition("/")
    try:
        return paper_workload(model, dataset)
    except WorkloadError:
        known = ", ".join(w.name for w in paper_workloads())
        raise click.BadParameter(
            f"no paper workload {name!r}; known: {known}", param_hint="--workload"
        ) from None


@main.command()
@click.option(
    "--workload",
    "name",
    default="llava_vid/videomme",
    show_default=True,
    help="model/dataset of meta_data.csv",
)
@click.option(
    "--tokens",
    type=click.IntRange(min=1),
    help="Qwen2-7B (or --config) on this many visual tokens",
)
@click.option("--frames", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False),
    help="transformers config.json of the decoder",
)
@click.option("--machine", type=click.Choice(MACHINES), default="focus", show_default=True)
@click.option(
    "--sparsity",
    type=click.FloatRange(0, 1, max_open=True),
    help="focus: target SIC sparsity (default: the paper's figure); "
    "cmc/adaptiv: token sparsity (default: the paper's table)",
)
@click.option(
    "--trace",
    type=click.Path(exists=True, dir_okay=False),
    help="focus: a recorded SparseTrace file",
)
@click.option(
    "--params",
    "params",
    type=PARAMS_FILE,
    help="FocusParams .json/.toml (default: the paper's, SEC from focus_config.csv); "
    "the field options below override it",
)
@click.option("--csv", "csv_out", type=OutputPath(dir_okay=False), help="write per-GEMM rows")
@click.option(
    "--clock-from-fpga",
    "fpga_json",
    type=click.Path(exists=True, dir_okay=False),
    help="clock at the Fmax of an fpga.json (focus-hw fpga)",
)
@field_options()
def run(
    name, tokens, frames, config, machine, sparsity, trace, params, csv_out, fpga_json, **values
):
    """Simulate one workload on one machine and print a summary."""
    from . import reproduce as rep
    from .model import simulate
    from .sparsity import baseline_sparsity, focus_target

    w = _workload(name, tokens, config, frames)
    params = point_params(params or rep.paper_params(w.model, w.dataset), values)
    if fpga_json:
        from focus_hw.fpga import read_fmax

        if values["clock_mhz"] is not None:
            raise click.UsageError("give --clock-mhz or --clock-from-fpga, not both")
        try:
            params = params.replace(clock_mhz=read_fmax(fpga_json))
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--clock-from-fpga") from None
    sp = sparsity
    if trace:
        if machine != "focus":
            raise click.UsageError("--trace is for --machine focus")
        from focus_algo.trace import SparseTrace

        try:
            sp = SparseTrace.load(trace)
        except (OSError, ValueError) as e:
            raise click.BadParameter(str(e), param_hint="--trace") from None
    try:
        if sp is None and machine == "focus":
            if not w.model:
                raise click.UsageError("--machine focus needs --sparsity or --trace here")
            sp = focus_target(w.model, w.dataset)
        elif sp is None and machine in ("cmc", "adaptiv"):
            if not w.model:
                raise click.UsageError(f"--machine {machine} needs --sparsity here")
            sp = baseline_sparsity(machine, w.model, w.dataset)
        res = simulate(w, params, machine, sp)
    except ValueError as e:  # a machine, sparsity or trace that do not fit together
        raise click.UsageError(str(e)) from None
    click.echo(res.summary())
    per = res.gemms.groupby("gemm", sort=False)[
        ["cycles", "stall_cycles", "macs", "dram_bytes", "energy_mj"]
    ].sum()
    click.echo(per.to_string(float_format=lambda x: f"{x:.4g}"))
    if csv_out:
        from focus_hw.fileio import atomic_write_text

        try:
            atomic_write_text(Path(csv_out), res.gemms.to_csv(index=False))
        except OSError as e:
            raise click.ClickException(f"cannot write {csv_out}: {e}") from None


@main.command()
@click.option("--out", type=OutputPath(file_okay=False), required=True)
def reproduce(out):
    """Paper's main comparison: 9 video workloads x dense/adaptiv/cmc/focus."""
    import pandas as pd
    from tqdm import tqdm

    from . import reproduce as rep

    out = Path(out)
    with tqdm(total=len(rep.VIDEO_WORKLOADS) * len(rep.ACCELERATORS), desc="reproduce") as bar:
        df = rep.reproduce(progress=bar)
    try:
        rep.write(df, out)
    except OSError as e:
        raise click.ClickException(f"cannot write {out}: {e}") from None
    sp = rep.speedup_table(df)
    click.echo(rep.NOTE)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        for what, prefix in (("speedup", ""), ("energy reduction", "energy_")):
            cols = [
                f"{prefix}{key}_{tag}"
                for key in ("vs_dense", "vs_best")
                for tag in ("ours", "paper")
            ]
            cols += [f"err_{prefix}vs_dense", f"err_{prefix}vs_best"]
            click.echo(f"\nFocus {what}, ours vs paper:")
            click.echo(
                sp[["model", "dataset", *cols]].to_string(
                    index=False, float_format=lambda x: f"{x:.3f}"
                )
            )
    click.echo(f"wrote {out / 'reproduce.csv'}, {out / 'ratios.csv'} and {out / 'reproduce.png'}")


@main.command()
@click.option("--out", type=OutputPath(file_okay=False), required=True)
@click.option("--workload", "name", default="llava_vid/videomme", show_default=True)
@click.option("--quick", is_flag=True, help="a small grid (CI smoke run)")
@executor_options
def sweep(out, name, quick, jobs, workers, scheduler):
    """DSE over m_tile, vector size (= array size), block, scatter lanes,
    output-tile width, SIC lanes and partial-sum numerics; area from our synthesis.

    Finished points are journaled in OUT/sweep.points.jsonl, so a rerun computes
    only the missing ones (delete that file to recompute after a model change)."""
    from tqdm import tqdm

    from . import dse
    from . import reproduce as rep
    from .presets import paper_preset
    from .sparsity import focus_target

    out = Path(out)
    w = _workload(name, None, None, 1)
    base = paper_preset("focus", rep.paper_params(w.model, w.dataset))
    grid = dse.QUICK_GRID if quick else dse.GRID
    n = 1
    for v in grid.values():
        n *= len(v)
    try:
        with cli_executor(jobs, workers, scheduler) as executor, tqdm(total=n, desc="sweep") as bar:
            df = dse.sweep(
                w,
                base,
                focus_target(w.model, w.dataset),
                grid,
                progress=bar,
                executor=executor,
                out=out,
            )
        paper_area = dse.area_mm2(base)
        best, bound = dse.write(df, paper_area, out)
    except (ValueError, OSError) as e:  # a damaged journal, an unwritable --out
        raise click.ClickException(str(e)) from None
    click.echo(
        f"{len(df)} points: {df.attrs['computed']} computed, "
        f"{df.attrs['resumed']} resumed from {out / dse.JOURNAL}"
    )
    click.echo(f"paper configuration: area {paper_area:.3f} mm^2")
    click.echo(
        f"best point within it: m_tile={best.m_tile} vector={best.vector_size} "
        f"(array {best.rows}x{best.cols}) block={best.block} num_scatter={best.num_scatter} "
        f"out_vectors={best.out_vectors} sic_lanes={best.sic_lanes} "
        f"acc_format={best.acc_format}, area {best.area_mm2:.3f} mm^2, "
        f"{best.speedup_vs_paper:.3f}x over the paper configuration"
    )
    click.echo(
        f"no point within it can pass {bound:.3f}x: that is its MACs on an array "
        "busy every cycle (no stall, fill or DRAM wait)"
    )
    click.echo(f"wrote {out / 'sweep.csv'} and {out / 'sweep.png'}")


@main.command()
def presets():
    """List the paper artifact's configuration of each machine (what
    ``reproduce`` and ``sweep`` run), with the source of each value."""
    import pandas as pd

    from .presets import preset_table

    with pd.option_context("display.max_colwidth", None, "display.width", 200):
        click.echo(preset_table().to_string(index=False))


@main.command(name="workloads")
def list_workloads():
    """List the paper's workloads (meta_data.csv)."""
    from .workload import paper_workloads

    for w in paper_workloads():
        click.echo(f"{w.name}: T={w.tokens} ({w.frames} frames x {w.width} patches)")
