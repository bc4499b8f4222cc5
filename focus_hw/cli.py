"""``focus-hw``: generate Verilog, sweep parameters, report synthesized area.

Every FocusParams field is an option (``--rows 16``, ``--dtype int8``,
``--sec-keep 0.4,0.3``...), generated from the dataclass; ``--params FILE``
(.json/.toml) sets the base that the options override. In ``sweep`` each
option takes comma-separated values (tuple fields: ``;`` between values).
"""

from __future__ import annotations

import json
import sys
import typing
from pathlib import Path

import click

from .cli_types import (
    PARAMS_FILE,
    OutputPath,
    field_options,
    option_name,
    parse_field,
    point_params,
)
from .executors import cli_executor, executor_options
from .fileio import atomic_write_text
from .params import FocusParams

__all__ = ["main"]

_HINTS = typing.get_type_hints(FocusParams)


def _unit(unit: str) -> str:
    """``--unit`` checked against :data:`focus_hw.generate.UNITS` (imported
    here, not for ``--help``: the units import Amaranth)."""
    from .generate import UNITS

    if unit not in UNITS:
        raise click.BadParameter(
            f"{unit!r}: choose from {', '.join(sorted(UNITS))}", param_hint="--unit"
        )
    return unit


_unit_option = click.option(
    "--unit",
    default="array",
    show_default=True,
    help="component to emit (focus_hw.generate.UNITS; an unknown name lists them)",
)
_params_option = click.option(
    "--params", "base", type=PARAMS_FILE, help="base FocusParams (.json or .toml)"
)


@click.group()
def main():
    """Focus accelerator hardware generator (Amaranth -> Verilog, Yosys area)."""


@main.command("generate")
@_params_option
@_unit_option
@click.option("--out", type=OutputPath(file_okay=False), required=True, help="output folder")
@field_options()
def generate_cmd(base, unit, out, **values):
    """Write the Verilog of one design point and its manifest.json."""
    from .generate import ManifestError, generate

    unit = _unit(unit)
    params = point_params(base, values)
    try:
        manifest = generate(params, out, unit=unit)
    except (ValueError, NotImplementedError) as e:  # the params do not fit the unit
        raise click.UsageError(f"--unit {unit}: {e}") from None
    except (OSError, ManifestError) as e:
        raise click.ClickException(f"generate failed: {e}") from None
    click.echo(
        f"wrote {Path(out) / manifest.verilog} (top {manifest.top}, "
        f"{len(manifest.ports)} ports, params {manifest.digest})"
    )


@main.command("sweep")
@_params_option
@_unit_option
@click.option("--out", type=OutputPath(file_okay=False), required=True, help="output folder")
@executor_options
@click.option("--progress/--no-progress", default=True, show_default=True)
@field_options(multi=True)
def sweep_cmd(base, unit, out, jobs, workers, scheduler, progress, **values):
    """Generate every point of a grid (comma-separated values per field).

    Points FocusParams rejects are recorded as invalid, the others still run;
    the exit status is 1 when a point was invalid or failed."""
    from .sweep import Generate

    unit = _unit(unit)
    result = _run_sweep(
        base, _grid(values), out, Generate(unit), progress, jobs, workers, scheduler
    )
    if not result.ok:
        sys.exit(1)


def _grid(values: dict) -> dict[str, list]:
    grid = {}
    for name, text in values.items():
        if text is None:
            continue
        sep = ";" if typing.get_origin(_HINTS[name]) is tuple else ","
        grid[name] = [parse_field(name, v) for v in text.split(sep) if v.strip()]
        if not grid[name]:
            raise click.BadParameter(f"{text!r} holds no values", param_hint=option_name(name))
    return grid


def _run_sweep(base, grid, out, task, progress, jobs, workers, scheduler):
    """Run a sweep of ``task``, print its counts; exit 1 if a point failed."""
    from .sweep import sweep

    try:
        with cli_executor(jobs, workers, scheduler) as executor:
            result = sweep(
                base or FocusParams(), grid, out, executor=executor, progress=progress, task=task
            )
    except (ValueError, TypeError) as e:
        raise click.UsageError(str(e)) from None
    counts = ", ".join(f"{result.count(s)} {s}" for s in ("ok", "skipped", "invalid", "failed"))
    click.echo(
        f"sweep of {len(result.points)} points: {counts} (summary: {Path(out) / 'sweep.json'})"
    )
    for p in result.points:
        if p.status in ("invalid", "failed"):
            click.echo(f"  {p.status}: {p.point}: {p.error.splitlines()[0]}", err=True)
    return result


@main.command("synth")
@_params_option
@_unit_option
@click.option(
    "--fpga",
    type=click.Choice(["none", "ecp5", "ice40"]),
    default="none",
    show_default=True,
    help="also map to this FPGA family",
)
@click.option("--flat", is_flag=True, help="flatten the whole design (slow for big arrays)")
@click.option(
    "--out",
    type=OutputPath(file_okay=False),
    default=None,
    help="folder for area.json/.csv/.png and the Yosys logs",
)
@click.option(
    "--cache-dir",
    type=OutputPath(file_okay=False),
    default=None,
    help="result cache (default $FOCUS_HW_CACHE or ~/.cache/focus-hw)",
)
@click.option("--no-cache", is_flag=True, help="ignore cached results")
@executor_options
@click.option("--progress/--no-progress", default=True, show_default=True)
@field_options(multi=True)
def synth_cmd(
    base, unit, fpga, flat, out, cache_dir, no_cache, jobs, workers, scheduler, progress, **values
):
    """Synthesize design points with Yosys and report their area.

    One value per field: one point, its summary printed. Several values
    (comma-separated, as in sweep): every point of the grid in its own folder
    of --out, in parallel, plus area_summary.csv."""
    from synth import YosysError, area_report

    unit = _unit(unit)
    grid = _grid(values)
    if any(len(v) > 1 for v in grid.values()):
        from synth.sweep import Synthesize, summary_table

        if out is None:
            raise click.UsageError("synthesizing several points needs --out")
        task = Synthesize(unit, fpga, flat, cache_dir, not no_cache)
        result = _run_sweep(base, grid, out, task, progress, jobs, workers, scheduler)
        table = summary_table(result, out)
        atomic_write_text(Path(out) / "area_summary.csv", table.to_csv(index=False))
        click.echo(table.to_string(index=False))
        click.echo(f"summary: {Path(out) / 'area_summary.csv'}")
        if not result.ok:
            sys.exit(1)
        return
    params = point_params(base, values)
    try:
        report = area_report(
            params,
            unit,
            fpga=fpga,
            flat=flat,
            cache_dir=cache_dir,
            use_cache=not no_cache,
            out_dir=out,
        )
    except (ValueError, NotImplementedError) as e:  # the params do not fit the unit
        raise click.UsageError(f"--unit {unit}: {e}") from None
    except (YosysError, OSError) as e:
        raise click.ClickException(f"synth failed: {e}") from None
    click.echo(json.dumps(report.summary(), indent=2))
    if out is not None:
        click.echo(
            f"report: {Path(out) / 'area.json'}, {Path(out) / 'area.csv'}, {Path(out) / 'area.png'}"
        )


class _BadInput(click.ClickException):
    """A one-line error with the usage exit code (2)."""

    exit_code = 2


@main.command("fpga")
@_params_option
@click.option("--board", required=True, help="target board (an unknown name lists them)")
@click.option(
    "--out",
    type=OutputPath(file_okay=False),
    default=None,
    help="build folder (default build/fpga/BOARD)",
)
@click.option(
    "--target-mhz",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="clock nextpnr aims for (default: the board clock)",
)
@click.option(
    "--tiles",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="weight tiles in the harness (--unit array)",
)
@click.option(
    "--rows-per-tile",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="activation rows per tile (--unit array)",
)
@click.option(
    "--unit",
    type=click.Choice(["array", "focus"]),
    default="array",
    show_default=True,
    help="what the harness wraps: the systolic array or the whole accelerator",
)
@click.option(
    "--pnr-seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="nextpnr's placement seed (the first of --pnr-seeds)",
)
@click.option(
    "--pnr-seeds",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="place with this many seeds from --pnr-seed on; Fmax is their median",
)
@click.option(
    "--nextpnr-opts",
    default="",
    help="options added to nextpnr's command, e.g. '--placer-heap-timingweight 30 --tmg-ripup'",
)
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the harness's data")
@click.option("--progress/--no-progress", default=True, show_default=True)
@field_options()
def fpga_cmd(
    base,
    board,
    out,
    target_mhz,
    tiles,
    rows_per_tile,
    unit,
    pnr_seed,
    pnr_seeds,
    nextpnr_opts,
    seed,
    progress,
    **values,
):
    """Place and route the array (--unit array) or the whole accelerator
    (--unit focus) with an on-chip harness on a board (yowasp tools); report
    LUTs, FFs, BRAMs, DSPs (per part for focus) and Fmax, write OUT/fpga.json.

    Pick a point that fits the device (e.g. --rows 2 --cols 2 --dtype int8:
    about 300 LUTs and 4 DSPs on ECP5; a 2x2 fp16 array takes about 3400
    LUTs; the accelerator needs rows = cols = vector size, a float dtype and
    small buffers, e.g. --rows 4 --cols 4 --vector-size 4 --sic-lanes 2
    --m-tile 16 --max-tokens 64 --max-frame-tokens 16 --out-vectors 1 on ulx3s-85f)."""
    from .fpga import FpgaBuildError, UnknownBoardError, fpga_build
    from .fpga.boards import board as find_board

    try:
        find_board(board)
    except UnknownBoardError as e:
        raise _BadInput(str(e)) from None
    params = point_params(base, values)
    out = out or str(Path("build") / "fpga" / board)
    try:
        report = fpga_build(
            params,
            board,
            out,
            unit=unit,
            target_mhz=target_mhz,
            seeds=range(pnr_seed, pnr_seed + pnr_seeds),
            tiles=tiles,
            rows_per_tile=rows_per_tile,
            data_seed=seed,
            nextpnr_opts=nextpnr_opts,
            progress=progress,
        )
    except (ValueError, OSError, FpgaBuildError) as e:
        raise click.ClickException(f"fpga failed: {e}") from None
    click.echo(report.table())
    click.echo(f"report: {Path(out) / 'fpga.json'}")
