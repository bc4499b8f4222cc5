"""``focus-hw``: generate Verilog, sweep parameters, report synthesized area.

Every FocusParams field is an option (``--rows 16``, ``--dtype int8``,
``--sec-keep 0.4,0.3``...), generated from the dataclass; ``--params FILE``
(.json/.toml) sets the base that the options override. In ``sweep`` each
option takes comma-separated values (tuple fields: ``;`` between values).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from pathlib import Path

import click

from .cli_types import PARAMS_FILE
from .executors import cli_executor, executor_options
from .fileio import atomic_write_text
from .generate import UNITS, ManifestError, generate
from .params import DTYPES, FocusParams

__all__ = ["main"]

_FIELDS = dataclasses.fields(FocusParams)
_HINTS = typing.get_type_hints(FocusParams)


def _option_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def _parse_scalar(kind, text: str, field: str):
    """One value of a field from text (tuple fields: comma-separated)."""
    try:
        if kind is bool:
            low = text.strip().lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return low in ("true", "1", "yes")
        if typing.get_origin(kind) is tuple:
            item = typing.get_args(kind)[0]
            return tuple(item(x) for x in text.split(",") if x.strip())
        return kind(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"cannot read {text!r} as {getattr(kind, '__name__', kind)}",
            param_hint=_option_name(field),
        ) from None


def _field_options(multi: bool):
    """Decorator adding one option per FocusParams field (values as text)."""

    def decorate(fn):
        for f in reversed(_FIELDS):
            kind = _HINTS[f.name]
            if multi:
                sep = "';'" if typing.get_origin(kind) is tuple else "','"
                helptext = f"values of {f.name} to sweep, separated by {sep}"
            elif kind is bool:
                helptext = f"{f.name} (true/false; default {f.default})"
            else:
                helptext = f"{f.name} (default {f.default})"
            if f.name == "dtype" and not multi:
                helptext += f"; one of {', '.join(sorted(DTYPES))}"
            metavar = "LIST" if typing.get_origin(kind) is tuple else kind.__name__.upper()
            fn = click.option(
                _option_name(f.name),
                f.name,
                type=str,
                default=None,
                metavar=metavar + ("S" if multi else ""),
                help=helptext,
            )(fn)
        return fn

    return decorate


def _point_params(base: FocusParams | None, values: dict) -> FocusParams:
    changes = {k: _parse_scalar(_HINTS[k], v, k) for k, v in values.items() if v is not None}
    try:
        return (base or FocusParams()).replace(**changes)
    except (TypeError, ValueError) as e:
        raise click.UsageError(str(e)) from None


_unit_option = click.option(
    "--unit",
    type=click.Choice(sorted(UNITS)),
    default="array",
    show_default=True,
    help="component to emit",
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
@click.option("--out", type=click.Path(file_okay=False), required=True, help="output folder")
@_field_options(multi=False)
def generate_cmd(base, unit, out, **values):
    """Write the Verilog of one design point and its manifest.json."""
    params = _point_params(base, values)
    try:
        manifest = generate(params, out, unit=unit)
    except (ValueError, NotImplementedError, OSError, ManifestError) as e:
        raise click.ClickException(f"generate failed: {e}") from None
    click.echo(
        f"wrote {Path(out) / manifest.verilog} (top {manifest.top}, "
        f"{len(manifest.ports)} ports, params {manifest.digest})"
    )


@main.command("sweep")
@_params_option
@_unit_option
@click.option("--out", type=click.Path(file_okay=False), required=True, help="output folder")
@executor_options
@click.option("--progress/--no-progress", default=True, show_default=True)
@_field_options(multi=True)
def sweep_cmd(base, unit, out, jobs, workers, scheduler, progress, **values):
    """Generate every point of a grid (comma-separated values per field)."""
    from .sweep import Generate

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
        grid[name] = [_parse_scalar(_HINTS[name], v, name) for v in text.split(sep) if v.strip()]
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
    type=click.Path(file_okay=False),
    default=None,
    help="folder for area.json/.csv/.png and the Yosys logs",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="result cache (default $FOCUS_HW_CACHE or ~/.cache/focus-hw)",
)
@click.option("--no-cache", is_flag=True, help="ignore cached results")
@executor_options
@click.option("--progress/--no-progress", default=True, show_default=True)
@_field_options(multi=True)
def synth_cmd(
    base, unit, fpga, flat, out, cache_dir, no_cache, jobs, workers, scheduler, progress, **values
):
    """Synthesize design points with Yosys and report their area.

    One value per field: one point, its summary printed. Several values
    (comma-separated, as in sweep): every point of the grid in its own folder
    of --out, in parallel, plus area_summary.csv."""
    from synth import YosysError, area_report

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
    params = _point_params(base, values)
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
    except (ValueError, NotImplementedError, YosysError, OSError) as e:
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
    type=click.Path(file_okay=False),
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
    help="weight tiles in the harness",
)
@click.option(
    "--rows-per-tile",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="activation rows per tile",
)
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the tile data")
@click.option("--progress/--no-progress", default=True, show_default=True)
@_field_options(multi=False)
def fpga_cmd(base, board, out, target_mhz, tiles, rows_per_tile, seed, progress, **values):
    """Place and route the array with an on-chip harness on a board (yowasp
    tools); report LUTs, FFs, BRAMs, DSPs and Fmax, write OUT/fpga.json.

    Pick an array that fits the device (e.g. --rows 2 --cols 2 --dtype int8:
    about 300 LUTs and 4 DSPs on ECP5; a 2x2 fp16 array takes about 3400 LUTs)."""
    from .fpga import FpgaBuildError, UnknownBoardError, fpga_build
    from .fpga.boards import board as find_board

    try:
        find_board(board)
    except UnknownBoardError as e:
        raise _BadInput(str(e)) from None
    params = _point_params(base, values)
    out = out or str(Path("build") / "fpga" / board)
    try:
        report = fpga_build(
            params,
            board,
            out,
            target_mhz=target_mhz,
            tiles=tiles,
            rows_per_tile=rows_per_tile,
            seed=seed,
            progress=progress,
        )
    except (ValueError, OSError, FpgaBuildError) as e:
        raise click.ClickException(f"fpga failed: {e}") from None
    click.echo(report.table())
    click.echo(f"report: {Path(out) / 'fpga.json'}")
