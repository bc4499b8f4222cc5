"""Wall time and peak memory of writing the Verilog of a big array.

Runs ``focus-hw generate`` in a child process (one elaboration per PE class,
see ``focus_hw.generate``) and reads its peak resident set size from
``resource.getrusage(RUSAGE_CHILDREN)``. Targets for 32x32 fp16: < 60 s and
< 2 GB (the flat elaboration took about 9 minutes).

    python benchmarks/bench_generate.py                      # 32x32 fp16
    python benchmarks/bench_generate.py --rows 16 --cols 16 --dtype int8
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from focus_hw.fileio import atomic_write_text

TARGET_S = 60.0
TARGET_BYTES = 2 * 1024**3
_CLI = "from focus_hw.cli import main; main()"


def measure(rows: int, cols: int, dtype: str, out: Path) -> dict:
    """Generate one array in a child process; its wall time and peak RSS."""
    cmd = [
        sys.executable,
        "-c",
        _CLI,
        "generate",
        "--rows",
        str(rows),
        "--cols",
        str(cols),
        "--dtype",
        dtype,
        "--out",
        str(out),
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise click.ClickException(f"focus-hw generate failed:\n{proc.stderr[-2000:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = usage.ru_maxrss * 1024  # Linux: KiB
    manifest = json.loads((out / "manifest.json").read_text())
    verilog = out / f"{manifest['top']}.v"
    return {
        "rows": rows,
        "cols": cols,
        "dtype": dtype,
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_bytes": peak,
        "modules": len(manifest["modules"]),
        "verilog_bytes": verilog.stat().st_size,
    }


@click.command()
@click.option("--rows", default=32, show_default=True)
@click.option("--cols", default=32, show_default=True)
@click.option("--dtype", default="fp16", show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="also write the figures as JSON to this file",
)
def main(rows, cols, dtype, out):
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        r = measure(rows, cols, dtype, Path(tmp) / "array")
    gb = r["peak_rss_bytes"] / 1024**3
    print(
        f"generate {rows}x{cols} {dtype}: {r['wall_s']:.1f} s wall ({r['cpu_s']:.1f} s CPU), "
        f"{gb:.2f} GB peak RSS, "
        f"{r['modules']} modules, {r['verilog_bytes'] / 1e6:.1f} MB of Verilog"
    )
    print(
        f"targets: < {TARGET_S:.0f} s {'met' if r['wall_s'] < TARGET_S else 'MISSED'}, "
        f"< 2 GB {'met' if r['peak_rss_bytes'] < TARGET_BYTES else 'MISSED'}"
    )
    if out is not None:
        atomic_write_text(Path(out), json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
