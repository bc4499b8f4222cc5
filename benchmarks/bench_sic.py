"""Time and peak memory of the SIC kernel on one video-sized GEMM input.

Each feature width runs in a fresh child process, so its peak RSS (which
includes the input tensor, the output and torch itself) is not contaminated
by another size::

    python benchmarks/bench_sic.py --dim 3584 --dim 18944

The input is a synthetic static scene (one random token per patch position,
repeated over frames) plus per-vector noise: most vectors are close to the
same patch of the previous frame, a fraction (--changed) is new, as in video.
Wall time depends on how busy the machine is; the CPU time of a
``--threads 1`` run is the load-robust figure.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import click

GRID = (64, 13, 14)  # 11648 tokens: 64 frames x 13 x 14 patches


def _make_input(grid, dim, dtype, changed, seed):
    """Static scene + per-vector noise, built column block by column block
    in the target dtype (no temporaries of the input's size)."""
    import torch

    from focus_hw.params import FocusParams

    vs = FocusParams().vector_size
    frames, height, width = grid
    patches = height * width
    g = torch.Generator().manual_seed(seed)
    x = torch.empty(frames * patches, dim, dtype=dtype)
    step = 4 * vs  # small blocks: generation must not inflate the peak RSS
    for f0 in range(0, dim, step):
        w = min(dim, f0 + step) - f0
        changes = torch.rand(x.shape[0], -(-w // vs), generator=g) < changed
        scale = torch.where(changes, 3.0, 0.2).repeat_interleave(vs, dim=1)[:, :w]
        block = torch.randn(x.shape[0], w, generator=g) * scale
        scene = torch.randn(patches, w, generator=g)
        x[:, f0 : f0 + w] = (block.view(frames, patches, w) + scene).view(-1, w)
    return x


def _cpu_seconds():
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def _child(dim, dtype_name, changed, repeat, seed, threads):
    import torch

    if threads:
        torch.set_num_threads(threads)

    from focus_algo.sic import similarity_concentrate
    from focus_hw.params import FocusParams

    dtype = getattr(torch, dtype_name)
    x = _make_input(GRID, dim, dtype, changed, seed)
    rss_input = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    params = FocusParams()
    times, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), _cpu_seconds()
        result = similarity_concentrate(x, GRID, params)
        times.append(time.perf_counter() - start)
        cpu.append(_cpu_seconds() - start_cpu)
        sparsity = result.sparsity
        del result
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "dim": dim,
                "dtype": dtype_name,
                "tokens": x.shape[0],
                "threads": torch.get_num_threads(),
                "best_s": min(times),
                "median_s": sorted(times)[len(times) // 2],
                "best_cpu_s": min(cpu),
                "peak_rss_gb": rss / 2**20,
                "rss_after_input_gb": rss_input / 2**20,
                "input_gb": x.numel() * x.element_size() / 2**30,
                "sparsity": sparsity,
            }
        )
    )


@click.command()
@click.option(
    "--dim",
    "dims",
    type=int,
    multiple=True,
    default=(3584,),
    show_default=True,
    help="Feature width D (repeatable).",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "float16", "bfloat16"]),
    default="float32",
    show_default=True,
)
@click.option(
    "--changed",
    type=click.FloatRange(0, 1),
    default=0.3,
    show_default=True,
    help="Fraction of vectors that change between frames.",
)
@click.option("--repeat", type=click.IntRange(1), default=3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--threads", type=click.IntRange(0), default=0, help="torch threads (0 = torch's default)."
)
@click.option("--child", is_flag=True, hidden=True)
def main(dims, dtype, changed, repeat, seed, threads, child):
    """Time SIC on a 64x13x14-token input and report peak RSS per width.

    Wall time depends on how busy the machine is; the CPU time (user+sys of
    the process) of a --threads 1 run is the load-robust figure."""
    click.echo(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if child:
        _child(dims[0], dtype, changed, repeat, seed, threads)
        return
    for dim in dims:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "--dim",
            str(dim),
            "--dtype",
            dtype,
            "--changed",
            str(changed),
            "--repeat",
            str(repeat),
            "--seed",
            str(seed),
            "--threads",
            str(threads),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise click.ClickException(f"D={dim} failed:\n{proc.stderr}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        click.echo(
            f"D={r['dim']:>6} {r['dtype']} T={r['tokens']} threads={r['threads']}: "
            f"best {r['best_s']:.3f} s, median {r['median_s']:.3f} s "
            f"(best CPU time {r['best_cpu_s']:.3f} s), "
            f"peak RSS {r['peak_rss_gb']:.3f} GB (input {r['input_gb']:.3f} GB, "
            f"RSS after input {r['rss_after_input_gb']:.3f} GB), "
            f"sparsity {r['sparsity']:.3f}"
        )


if __name__ == "__main__":
    main()
