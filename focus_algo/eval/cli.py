"""``focus eval``: multiple-choice accuracy of dense / Focus / CMC / AdapTiV.

Example::

    focus eval --checkpoint ckpt/ --dataset mvbench.jsonl --out runs/mvb \\
        --methods dense,focus,cmc,adaptiv --frames 32 \\
        --focus-config focus_config.csv --baseline-config reference/algorithm \\
        --model-name llava_onevision --dataset-name mvbench

Several processes (``accelerate launch -m focus_algo eval ...`` on GPUs,
``torchrun --nproc_per_node N -m focus_algo eval ...`` on CPUs) share the
samples out.
See :mod:`focus_algo.eval.dataset` for the JSONL format and
:mod:`focus_algo.eval.runner` for the outputs. torch and transformers are
imported when the command runs, not for ``--help``.
"""

from __future__ import annotations

from pathlib import Path

import click

from focus_algo.config import params_from_focus_config
from focus_algo.reference import REFERENCE_DIR
from focus_hw.cli_types import PARAMS_FILE, OutputPath, field_options, point_params
from focus_hw.params import FocusParams

from . import METHODS

__all__ = ["eval_command"]

_PAPER = REFERENCE_DIR / "algorithm"
_DTYPES = ("float32", "bfloat16", "float16")  #: names of torch dtypes


def _methods(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in METHODS]
    if bad or not names:
        raise click.BadParameter(
            f"{text!r}: choose from {', '.join(METHODS)} (comma-separated)", param_hint="--methods"
        )
    if len(set(names)) != len(names):
        raise click.BadParameter(f"{text!r} repeats a method", param_hint="--methods")
    return names


def _focus_params(base, focus_config, model_name, dataset_name) -> FocusParams:
    if base and focus_config:
        raise click.UsageError("give either --params or --focus-config, not both")
    if base:
        return base
    try:
        return params_from_focus_config(
            focus_config or _PAPER / "focus_config.csv", model_name, dataset_name
        )
    except (OSError, ValueError, TypeError) as e:
        raise click.BadParameter(str(e), param_hint="--focus-config") from None


def _baseline_thresholds(method, config_dir, model_name, dataset_name, explicit):
    """(threshold, query threshold) of a baseline: explicit options win over
    ``--baseline-config``."""
    from focus_algo.baselines import adaptiv_threshold, cmc_thresholds

    linear, query = explicit
    if linear is None or (method == "cmc" and query is None):
        try:
            if method == "cmc":
                th = cmc_thresholds(model_name, dataset_name, csv_dir=config_dir)
                linear = th.linear if linear is None else linear
                query = th.query if query is None else query
            elif linear is None:
                linear = adaptiv_threshold(model_name, dataset_name, csv_dir=config_dir)
        except (OSError, ValueError) as e:
            raise click.BadParameter(str(e), param_hint="--baseline-config") from None
    return linear, query


@click.command("eval")
@click.option(
    "--checkpoint",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Local model folder (config.json, weights, processor files).",
)
@click.option(
    "--dataset",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSONL dataset (see focus_algo.eval.dataset).",
)
@click.option(
    "--out",
    required=True,
    type=OutputPath(file_okay=False, path_type=Path),
    help="Output folder (samples.csv, summary.csv/.json/.png); reruns resume.",
)
@click.option(
    "--methods",
    default=",".join(METHODS),
    show_default=True,
    help="Comma-separated methods to run.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N samples.")
@click.option(
    "--frames",
    type=click.IntRange(min=1),
    help="Video frames sampled uniformly per clip (default: all).",
)
@click.option(
    "--params",
    "base",
    type=PARAMS_FILE,
    help="FocusParams file (.json/.toml) for focus (and the baselines' vector size); "
    "the field options below override it (or --focus-config's).",
)
@click.option(
    "--focus-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="focus_config.csv: SEC layers/ratios and threshold for --model-name/"
    "--dataset-name "
    "(default: the paper's, shipped in focus_algo/reference).",
)
@click.option(
    "--baseline-config",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder with cmc_config.csv and adaptiv_config.csv "
    "(default: the paper's, shipped in focus_algo/reference/algorithm).",
)
@click.option(
    "--model-name",
    default="default",
    show_default=True,
    help="Row key of the config CSVs (e.g. llava_onevision).",
)
@click.option("--dataset-name", default="", help="Row key of the config CSVs (e.g. mvbench).")
@click.option("--cmc-threshold", type=float, help="CMC relative-SAD threshold (linear inputs).")
@click.option("--cmc-query-threshold", type=float, help="CMC threshold of the attention query.")
@click.option("--adaptiv-threshold", type=float, help="AdapTiV sign-similarity threshold.")
@click.option(
    "--dtype",
    type=click.Choice(["auto", *_DTYPES]),
    default="auto",
    show_default=True,
    help="Model dtype (auto: bfloat16 on GPU, float32 on CPU).",
)
@field_options(exclude=("dtype",))  # --dtype is the model's; FocusParams.dtype: --params
def eval_command(
    checkpoint,
    dataset,
    out,
    methods,
    limit,
    frames,
    base,
    focus_config,
    baseline_config,
    model_name,
    dataset_name,
    cmc_threshold,
    cmc_query_threshold,
    adaptiv_threshold,
    dtype,
    **values,
):
    """Score multiple-choice samples with each method (next-token logits of the
    option letters after the prompt) and write per-sample and summary results."""
    import torch

    from .dataset import DatasetError, load_dataset
    from .runner import CheckpointError, MethodSpec, load_checkpoint, run_eval

    names = _methods(methods)
    params = point_params(_focus_params(base, focus_config, model_name, dataset_name), values)
    explicit = {"cmc": (cmc_threshold, cmc_query_threshold), "adaptiv": (adaptiv_threshold, None)}
    specs = []
    for name in names:
        if name == "dense":
            specs.append(MethodSpec("dense"))
        elif name == "focus":
            specs.append(MethodSpec("focus", params, sec=True))
        else:
            th, qth = _baseline_thresholds(
                name, baseline_config or _PAPER, model_name, dataset_name, explicit[name]
            )
            specs.append(MethodSpec(name, params, sec=False, threshold=th, query_threshold=qth))
    try:
        samples = load_dataset(dataset)
    except DatasetError as e:
        raise click.BadParameter(str(e), param_hint="--dataset") from None
    samples = samples[:limit] if limit else samples
    if dtype == "auto":
        dtype = "bfloat16" if torch.cuda.is_available() else "float32"
    try:
        model, processor = load_checkpoint(checkpoint, dtype=getattr(torch, dtype))
    except CheckpointError as e:
        raise click.BadParameter(str(e), param_hint="--checkpoint") from None
    for spec in specs:  # settings the model cannot take are bad input, named before any run
        if spec.name != "dense":
            try:
                spec.enable(model).remove()
            except ValueError as e:
                raise click.UsageError(f"{spec.name}: {e}") from None
    try:
        summary = run_eval(model, processor, samples, specs, out, frames=frames)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    from accelerate import PartialState

    if PartialState().is_main_process:
        click.echo(summary.to_string(index=False))
