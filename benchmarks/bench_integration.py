"""Focus inside a tiny random-weight Qwen2-VL on the built-in video workload.

Prints the per-site sparsity table of ``FocusHandle.report()``, the
dense-vs-Focus fidelity metrics, and the wall time of a dense and a Focus
prefill (median of ``--repeat`` runs; CPU, one process).

    python benchmarks/bench_integration.py --frames 16 --side 28
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import click
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from focus_algo.integration import compare, enable_focus  # noqa: E402
from focus_algo.workload import video_workload  # noqa: E402
from focus_hw.params import FocusParams  # noqa: E402
from tiny_models import qwen_video_pixels, tiny_qwen2vl  # noqa: E402


def _median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@click.command()
@click.option(
    "--frames", default=16, show_default=True, help="Video frames (2 per temporal patch)."
)
@click.option("--side", default=28, show_default=True, help="Patches per frame side (even).")
@click.option("--repeat", default=3, show_default=True, help="Timed runs per variant.")
@click.option("--threshold", default=0.9, show_default=True, help="SIC threshold.")
@click.option(
    "--sec/--no-sec",
    default=True,
    show_default=True,
    help="SEC at layers 1, 2 keeping 0.4, 0.2 of the visual tokens.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    default=None,
    help="Save a per-layer sparsity plot (PNG) here.",
)
def main(frames, side, repeat, threshold, sec, plot):
    model, make = tiny_qwen2vl()
    patch = model.config.vision_config.patch_size
    try:
        video = video_workload(frames=frames, height=side, width=side, patch=patch).video()
        pixels, (t, h, w) = qwen_video_pixels(video, model)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    inputs = make("video", frames=t, height=h, width=w, pixels=pixels)
    layers = (
        dict(sec_layers=(1, 2), sec_keep=(0.4, 0.2)) if sec else dict(sec_layers=(), sec_keep=())
    )
    params = FocusParams(threshold=threshold, **layers)

    metrics = compare(model, inputs, params)
    with torch.no_grad():
        dense_s = _median_time(lambda: model(**inputs, use_cache=False), repeat)
        handle = enable_focus(model, params)
        try:
            focus_s = _median_time(lambda: model(**inputs, use_cache=False), repeat)
            report = handle.report()
        finally:
            handle.remove()

    click.echo(
        f"visual tokens: {metrics['visual_tokens']} (grid {t}x{h // 2}x{w // 2}), "
        f"sequence {inputs['input_ids'].shape[1]}"
    )
    click.echo(report.pivot(index="layer", columns="site", values="sparsity").round(3).to_string())
    click.echo(
        "kept after layer: "
        + ", ".join(f"{i}:{k}" for i, k in report.groupby("layer")["kept_after"].first().items())
    )
    click.echo(
        "mean sparsity per site:\n" + report.groupby("site")["sparsity"].mean().round(3).to_string()
    )
    click.echo("fidelity: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    click.echo(
        f"wall time (median of {repeat}): dense {dense_s * 1e3:.1f} ms, "
        f"focus {focus_s * 1e3:.1f} ms ({focus_s / dense_s:.2f}x)"
    )
    if plot:
        _plot(report, plot)
        click.echo(f"plot: {plot}")


def _plot(report, path):
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from focus_hw.fileio import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for site, rows in report.groupby("site"):
        ax.plot(rows["layer"], rows["sparsity"], marker="o", label=site)
    ax.set_xticks(sorted(report["layer"].unique()))
    ax.set_xlabel("decoder layer")
    ax.set_ylabel("sparsity (zero + similar)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("Focus on a tiny Qwen2-VL, built-in video workload")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


if __name__ == "__main__":
    main()
