"""``focus``: run the Focus reference algorithm.

``focus run`` builds the built-in video workload (:mod:`focus_algo.workload`),
applies SIC to every GEMM input of every layer and writes, into ``--out``:
``trace.safetensors`` (:mod:`focus_algo.trace`), ``summary.csv`` (per site
and layer), ``params.json`` and ``sparsity.png``. ``focus flow`` runs the whole
flow (:mod:`focus_algo.flow`): trace, Verilog, area, performance model, report.
``focus golden`` writes the
RTL golden vectors (:mod:`focus_algo.golden`). ``main`` is a click group;
other subcommands are added with ``main.add_command``. The algorithm (torch,
pandas) is imported inside the commands, so ``--help`` is fast.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import click

from focus_hw.cli_types import PARAMS_FILE, OutputPath, field_options, point_params
from focus_hw.fileio import atomic_write_bytes
from focus_hw.params import FocusParams

from .flow import DEFAULT_UNITS
from .flow import UNITS as FLOW_UNITS

__all__ = ["main", "run", "flow", "golden"]


@click.group()
def main():
    """Focus reference algorithm: similarity concentration on VLM inputs."""


_params_option = click.option(
    "--params",
    "base",
    type=PARAMS_FILE,
    help="FocusParams file (.json or .toml); the field options below override it.",
)


def _out_option(default: str):
    return click.option(
        "--out",
        "out_dir",
        default=default,
        show_default=True,
        type=OutputPath(file_okay=False, path_type=Path),
        help="Output folder.",
    )


def _count(name: str, default: int, helptext: str, least: int = 1):
    return click.option(
        name, type=click.IntRange(min=least), default=default, show_default=True, help=helptext
    )


_WORKLOAD_OPTIONS = (
    _count("--frames", 16, "Video frames."),
    _count("--height", 13, "Patch rows per frame."),
    _count("--width", 14, "Patch columns per frame."),
    # Qwen2-7B widths, the language model of the paper's VLMs (0.5B: 896 / 4864 / 14).
    _count("--hidden", 3584, "Hidden width."),
    _count("--ffn", 18944, "MLP width."),
    _count("--heads", 28, "Attention heads."),
    _count("--kv-groups", 7, "Query heads per KV head (GQA); must divide --heads."),
    _count("--layers", 4, "Decoder layers."),
    _count("--clip-len", 4, "Frames per scene of the built-in video."),
    _count("--seed", 0, "Workload seed.", least=0),
    click.option(
        "--video",
        type=click.Path(exists=True),
        help="Video instead of the built-in one: a file FFmpeg reads (.mp4, .mkv, .webm, "
        ".avi, ...), a .npy (F, H, W, 3) uint8 array or a folder of frame images; "
        "--frames are sampled uniformly from it, each resized to the patch grid.",
    ),
)


def _workload_options(fn):
    """Add the video workload's options (see :func:`video_workload`); the
    command receives the given ones as one dict, ``video_options``."""
    names = [option(lambda: None).__click_params__[0].name for option in _WORKLOAD_OPTIONS]

    @functools.wraps(fn)
    def command(*args, **kwargs):
        given = {name: kwargs.pop(name) for name in names}
        options = {k: v for k, v in given.items() if v is not None}
        return fn(*args, video_options=options, **kwargs)

    for option in reversed(_WORKLOAD_OPTIONS):
        command = option(command)
    return command


def _workload_error(e: ValueError) -> click.UsageError:
    """A workload error naming the option instead of the field."""
    return click.UsageError(
        re.sub(r"(?:Video)?Workload\.(\w+)", lambda m: "--" + m[1].replace("_", "-"), str(e))
    )


@main.command()
@_params_option
@_workload_options
@click.option("--model", default="synthetic", show_default=True, help="Model name for the trace.")
@click.option(
    "--dataset",
    help="Dataset name for the trace (default: skimage-video, or the --video file's name).",
)
@_out_option("out/focus-run")
@field_options()
def run(base, video_options, model, dataset, out_dir, **values):
    """Apply SIC to the video workload (built-in or --video) and write its sparse trace."""
    import pandas as pd

    from sim.workload import WorkloadError

    from .flow import sic_trace, sparsity_plot
    from .media import MediaError

    params = point_params(base, values)
    try:
        trace, workload = sic_trace(params, video_options, model=model, dataset=dataset)
    except WorkloadError as e:
        raise _workload_error(e) from None
    except MediaError as e:
        raise click.BadParameter(str(e), param_hint="--video") from None

    weights = workload.shape.weight_sizes()
    summary = trace.summary()
    weighted = trace.weighted_sparsity(weights)

    per_site = summary.groupby("site", sort=False)[["zero", "similar", "sparsity"]].mean()
    per_site.insert(0, "weight", pd.Series(weights))
    table = per_site.to_string(float_format=lambda v: f"{v:.3f}")
    # Everything is rendered before the first file is written.
    blobs = {
        "trace.safetensors": trace.to_bytes(),
        "summary.csv": summary.to_csv(index=False).encode(),
        "params.json": params.to_json().encode(),
        "sparsity.png": sparsity_plot(summary, weights, params),
    }
    for name, data in blobs.items():
        try:
            atomic_write_bytes(out_dir / name, data)
        except OSError as e:
            raise click.ClickException(f"cannot write {out_dir / name}: {e}") from None

    click.echo(
        f"SIC sparsity, {workload.shape.tokens} tokens {workload.shape.grid}, "
        f"{workload.shape.layers} layers, threshold {params.threshold}, "
        f"vector {params.vector_size}:"
    )
    click.echo(table)
    click.echo(f"weighted average (weights = GEMM weight sizes): {weighted:.3f}")
    click.echo(f"wrote {', '.join(blobs)} to {out_dir}")
    click.echo("\npredicted on the accelerator of these params (sim, SEC off):")
    click.echo(_predict(trace, workload, params).to_string(float_format=lambda v: f"{v:.4g}"))


def _predict(trace, workload, params: FocusParams):
    """Time and energy of dense vs Focus (this trace) on the modelled machine."""
    from .flow import model_table

    return model_table(params, workload.shape, {"dense": None, "focus": trace})


class _BadInput(click.ClickException):
    """A one-line error with the usage exit code (2)."""

    exit_code = 2


@main.command()
@_params_option
@_workload_options
@click.option(
    "--units",
    default=",".join(DEFAULT_UNITS),
    show_default=True,
    help=f"Hardware units to generate and synthesize (comma-separated): {', '.join(FLOW_UNITS)}.",
)
@click.option(
    "--fpga",
    "board",
    default=None,
    metavar="BOARD",
    help="Also place and route the array on this board (focus-hw fpga).",
)
@_out_option("out/flow")
@click.option(
    "--cache-dir",
    type=OutputPath(file_okay=False),
    default=None,
    help="Yosys result cache (default $FOCUS_HW_CACHE or ~/.cache/focus-hw).",
)
@click.option("--progress/--no-progress", default=True, show_default=True)
@field_options()
def flow(
    base,
    video_options,
    units,
    board,
    out_dir,
    cache_dir,
    progress,
    **values,
):
    """The whole flow into one folder: SIC trace, Verilog, Yosys area, model.

    On the built-in video (or --video): the SIC/SEC sparsity trace (and CMC's and
    AdapTiV's), the Verilog and area by module of the --units (default: the
    whole accelerator), and the modelled time and energy of dense, Focus
    (SEC + SIC), CMC, AdapTiV and the SIC-only and SEC-only ablations;
    report.md and report.html summarise them. Each step is cached by the
    digest of its inputs: a rerun redoes only the steps a change reaches."""
    from focus_hw.fpga import FpgaBuildError, UnknownBoardError
    from sim.workload import WorkloadError
    from synth import YosysError

    from .flow import run_flow
    from .media import MediaError

    params = point_params(base, values)
    units = [u.strip() for u in units.split(",") if u.strip()]
    if not units or set(units) - set(FLOW_UNITS):
        raise _BadInput(f"--units {','.join(units)}: choose from {', '.join(FLOW_UNITS)}")
    if "focus" in units:
        from focus_hw.accelerator import check_accelerator

        try:
            check_accelerator(params)
        except ValueError as e:
            raise _BadInput(f"{e} (or choose --units from {', '.join(FLOW_UNITS[1:])})") from None
    try:
        result = run_flow(
            params,
            out_dir,
            video_options,
            units=units,
            fpga=board,
            cache_dir=cache_dir,
            progress=progress,
        )
    except UnknownBoardError as e:
        raise _BadInput(str(e)) from None
    except WorkloadError as e:
        raise _workload_error(e) from None
    except MediaError as e:
        raise click.BadParameter(str(e), param_hint="--video") from None
    except (ValueError, OSError, YosysError, FpgaBuildError) as e:
        raise click.ClickException(f"flow failed: {e}") from None
    ran = [name for name, step in result.steps.items() if step["status"] == "ran"]
    click.echo(result.model.to_string(float_format=lambda v: f"{v:.4g}"))
    click.echo(
        f"ran {', '.join(ran) or 'nothing'} ({len(result.steps) - len(ran)} steps "
        f"cached) in {result.wall_s:.1f} s; report: {out_dir / 'report.md'}, "
        f"{out_dir / 'report.html'}"
    )


@main.command()
@_params_option
@_count("--seed", 0, "Random seed.", least=0)
@_out_option("out/golden")
@field_options()
def golden(base, seed, out_dir, **values):
    """Write golden test vectors (.npz + index.json) for the RTL."""
    from .golden import write_golden

    params = point_params(base, values)
    try:
        index = write_golden(out_dir, params, seed=seed)
    except OSError as e:
        raise click.ClickException(f"cannot write {out_dir}: {e}") from None
    click.echo(f"wrote {', '.join(index['files'])}, index.json to {out_dir}")


def _register_eval():
    from .eval.cli import eval_command

    main.add_command(eval_command, name="eval")


_register_eval()
