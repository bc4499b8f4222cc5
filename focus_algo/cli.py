"""``focus``: run the Focus reference algorithm.

``focus run`` builds the built-in video workload (:mod:`focus_algo.workload`),
applies SIC to every GEMM input of every layer and writes, into ``--out``:
``trace.safetensors`` (:mod:`focus_algo.trace`), ``summary.csv`` (per site
and layer), ``params.json`` and ``sparsity.png``. ``focus golden`` writes the
RTL golden vectors (:mod:`focus_algo.golden`). ``main`` is a click group;
other subcommands are added with ``main.add_command``.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import click

from focus_hw.fileio import atomic_write_bytes, figure_png
from focus_hw.cli_types import PARAMS_FILE
from focus_hw.params import FocusParams

__all__ = ["main", "run", "golden"]


@click.group()
def main():
    """Focus reference algorithm: similarity concentration on VLM inputs."""


def _load_params(params: FocusParams | None, overrides: dict) -> FocusParams:
    """Params from ``--params`` (or defaults) with the given options applied."""
    changes = {k: v for k, v in overrides.items() if v is not None}
    try:
        return (params or FocusParams()).replace(**changes)
    except ValueError as e:
        raise click.UsageError(f"invalid parameter: {e}") from None


_params_option = click.option(
    "--params", "base", type=PARAMS_FILE,
    help="FocusParams file (.json or .toml); the options below override it.")


@main.command()
@_params_option
@click.option("--threshold", type=float, help="SIC cosine threshold.")
@click.option("--vector-size", type=int, help="Elements per compared vector.")
@click.option("--m-tile", type=int, help="Tokens per GEMM M tile.")
@click.option("--block-frames", type=int, help="Comparison window: frames.")
@click.option("--block-height", type=int, help="Comparison window: patch rows.")
@click.option("--block-width", type=int, help="Comparison window: patch columns.")
@click.option("--frames", default=16, show_default=True, help="Video frames.")
@click.option("--height", default=13, show_default=True, help="Patch rows per frame.")
@click.option("--width", default=14, show_default=True, help="Patch columns per frame.")
@click.option("--hidden", default=896, show_default=True, help="Hidden width (Qwen2-7B: 3584).")
@click.option("--ffn", default=4864, show_default=True, help="MLP width (Qwen2-7B: 18944).")
@click.option("--heads", default=14, show_default=True, help="Attention heads.")
@click.option("--kv-groups", default=7, show_default=True,
              help="Query heads per KV head (GQA); must divide --heads.")
@click.option("--layers", default=4, show_default=True, help="Decoder layers.")
@click.option("--clip-len", default=4, show_default=True, help="Frames per scene.")
@click.option("--seed", default=0, show_default=True, help="Workload seed.")
@click.option("--model", default="synthetic", show_default=True, help="Model name for the trace.")
@click.option("--dataset", default="skimage-video", show_default=True,
              help="Dataset name for the trace.")
@click.option("--out", "out_dir", default="out/focus-run", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
def run(base, threshold, vector_size, m_tile, block_frames, block_height, block_width,
        frames, height, width, hidden, ffn, heads, kv_groups, layers, clip_len, seed, model,
        dataset, out_dir):
    """Apply SIC to the built-in video workload and write its sparse trace."""
    import pandas as pd
    import torch
    from tqdm import tqdm

    from .sic import similarity_concentrate
    from .trace import SITES, SparseTrace, TraceMeta
    from .workload import video_workload

    params = _load_params(base, {
        "threshold": threshold, "vector_size": vector_size, "m_tile": m_tile,
        "block_frames": block_frames, "block_height": block_height,
        "block_width": block_width})
    try:  # SIC needs float tokens: int8 designs run it on fp16 tokens
        workload = video_workload(frames=frames, height=height, width=width, hidden=hidden,
                                  ffn=ffn, heads=heads, kv_groups=kv_groups, layers=layers,
                                  clip_len=clip_len, seed=seed,
                                  dtype=params.dtype if params.is_float else "fp16")
    except ValueError as e:
        option = re.sub(r"(?:Video)?Workload\.(\w+)", lambda m: "--" + m[1].replace("_", "-"),
                        str(e))
        raise click.UsageError(option) from None

    results = {site: [] for site in SITES}
    with torch.inference_mode(), tqdm(total=layers * len(SITES), desc="SIC", unit="gemm") as bar:
        for _, inputs in workload:
            for site in SITES:
                r = similarity_concentrate(inputs[site], workload.shape.grid, params)
                results[site].append(SimpleNamespace(
                    zero=r.zero.numpy(), similar=r.similar.numpy(),
                    root=r.root.to(torch.int32).numpy()))
                bar.update()

    weights = workload.shape.weight_sizes()
    meta = TraceMeta(model=model, dataset=dataset, num_tokens=workload.shape.tokens,
                     frames=frames, height=height, width=width, num_layers=layers,
                     params=params, extra={
                         "workload": "focus_algo.workload", "seed": seed, "hidden": hidden,
                         "ffn": ffn, "heads": heads, "kv_groups": kv_groups, "clip_len": clip_len,
                         "widths": workload.shape.site_widths, "weight_sizes": weights,
                         "clips": [vars(c) for c in workload.clips]})
    trace = SparseTrace.from_results(meta, results)
    summary = trace.summary()
    weighted = trace.weighted_sparsity(weights)

    per_site = summary.groupby("site", sort=False)[["zero", "similar", "sparsity"]].mean()
    per_site.insert(0, "weight", pd.Series(weights))
    table = per_site.to_string(float_format=lambda v: f"{v:.3f}")
    # Everything is rendered before the first file is written.
    blobs = {"trace.safetensors": trace.to_bytes(),
             "summary.csv": summary.to_csv(index=False).encode(),
             "params.json": params.to_json().encode(),
             "sparsity.png": _plot(summary, weights, params)}
    for name, data in blobs.items():
        try:
            atomic_write_bytes(out_dir / name, data)
        except OSError as e:
            raise click.ClickException(f"cannot write {out_dir / name}: {e}") from None

    click.echo(f"SIC sparsity, {workload.shape.tokens} tokens {workload.shape.grid}, "
               f"{layers} layers, threshold {params.threshold}, vector {params.vector_size}:")
    click.echo(table)
    click.echo(f"weighted average (weights = GEMM weight sizes): {weighted:.3f}")
    click.echo(f"wrote {', '.join(blobs)} to {out_dir}")
    click.echo("\npredicted on the accelerator of these params (sim, SEC off):")
    click.echo(_predict(trace, workload, params).to_string(float_format=lambda v: f"{v:.4g}"))


def _predict(trace, workload, params: FocusParams):
    """Time and energy of dense vs Focus (this trace) on the modelled machine."""
    import pandas as pd

    import sim

    rows = {}
    for machine, sparsity in (("dense", None), ("focus", trace)):
        t = sim.simulate(workload.shape, params, machine, sparsity).totals
        rows[machine] = {"time_ms": t.time_s * 1e3, "energy_mj": t.energy_mj,
                         "dram_mb": t.dram_bytes / 1e6, "speedup": t.speedup,
                         "energy_reduction": t.energy_reduction}
    return pd.DataFrame(rows).T


def _plot(summary, weights: dict, params: FocusParams) -> bytes:
    """PNG of per-site sparsity per layer plus the weighted average."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for site, rows in summary.groupby("site", sort=False):
        ax.plot(rows["layer"], rows["sparsity"], marker="o", label=site)
    w = summary["site"].map(weights)
    avg = (summary["sparsity"] * w).groupby(summary["layer"]).sum() / w.groupby(
        summary["layer"]).sum()
    ax.plot(avg.index, avg.values, "k--", label="weighted avg")
    ax.set(xlabel="layer", ylabel="sparsity (zero + similar vectors)", ylim=(0, 1.02),
           title=f"SIC sparsity (threshold {params.threshold}, vector {params.vector_size}, "
                 f"block {'x'.join(map(str, params.block))})")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return figure_png(fig)


@main.command()
@_params_option
@click.option("--seed", default=0, show_default=True, help="Random seed.")
@click.option("--out", "out_dir", default="out/golden", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
def golden(base, seed, out_dir):
    """Write golden test vectors (.npz + index.json) for the RTL."""
    from .golden import write_golden

    params = _load_params(base, {})
    index = write_golden(out_dir, params, seed=seed)
    click.echo(f"wrote {', '.join(index['files'])}, index.json to {out_dir}")


def _register_eval():
    from .eval.cli import eval_command
    main.add_command(eval_command, name="eval")


_register_eval()
