"""Verilator as a second simulator: ``-Wall`` lint of every generated unit,
and the 4x4 fp16 array cross-simulated against :func:`focus_hw.simulate_gemm`
(the bench, stimulus and output parsing are the Icarus ones of
test_crosssim.py).

The waived lint rules, each with its reason, are in verilator_waivers.vlt.
"""

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from focus_hw import FocusParams, simulate_gemm
from focus_hw.generate import UNITS, generate
from test_crosssim import array_case, read_array_out, write_array_bench
from test_systolic import ref_gemm
from tools import in_ci, require

WAIVERS = Path(__file__).with_name("verilator_waivers.vlt")
LINT_POINTS = {
    "fp16": FocusParams(rows=2, cols=2, dtype="fp16", mac_pipeline=1),
    "int8": FocusParams(rows=2, cols=2, dtype="int8", mac_pipeline=0),
}


@pytest.fixture(autouse=True)
def _verilator():
    require("verilator")


def _lint(workdir: Path, top: str, verilog: str) -> tuple[int, str]:
    proc = subprocess.run(
        ["verilator", "--lint-only", "-Wall", "--top-module", top, str(WAIVERS), verilog],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("unit", sorted(UNITS))
@pytest.mark.parametrize("point", sorted(LINT_POINTS))
def test_unit_is_lint_clean(tmp_path, unit, point):
    params = LINT_POINTS[point]
    if unit == "focus":  # a K chunk and an output tile are one SIC vector
        params = params.replace(vector_size=params.rows, max_tokens=64, max_frame_tokens=16)
    try:
        manifest = generate(params, tmp_path, unit=unit)
    except ValueError:
        if params.is_float:
            raise
        pytest.skip(f"unit {unit} takes float formats only")
    rc, log = _lint(tmp_path, manifest.top, manifest.verilog)
    assert rc == 0 and "%Warning" not in log and "%Error" not in log, log


def test_lint_still_catches_real_problems(tmp_path):
    """The waivers leave -Wall in force: an undriven output is reported."""
    (tmp_path / "probe.v").write_text("module probe(input clk, output [3:0] q);\nendmodule\n")
    rc, log = _lint(tmp_path, "probe", "probe.v")
    assert rc != 0 and "%Warning-UNDRIVEN" in log, log


def test_array_fp16_4x4_matches_simulate_gemm(tmp_path):
    version = subprocess.run(["verilator", "--version"], capture_output=True, text=True).stdout
    if int(re.search(r"Verilator (\d+)", version)[1]) < 5:
        why = f"--binary --timing need Verilator >= 5, found: {version.strip()}"
        if in_ci():
            pytest.fail(why)
        pytest.skip(why)
    params = FocusParams(rows=4, cols=4, dtype="fp16", mac_pipeline=1)
    a, w, ready = array_case(params)
    ref = simulate_gemm(a, w, params, out_ready=ready)
    manifest, tb = write_array_bench(tmp_path, params, a, w, ready)
    (tmp_path / "tb.v").write_text(tb)
    # -O0: the C++ is run once, on a few hundred cycles; compiling it is the cost.
    args = "--binary --timing -j 0 --top-module tb -Mdir obj".split()
    make_flags = ["-MAKEFLAGS", "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0"]
    build = subprocess.run(
        ["verilator", *args, *make_flags, str(WAIVERS), "tb.v", manifest.verilog],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    run = subprocess.run(["obj/Vtb"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "TB_DONE" in run.stdout, run.stdout + run.stderr
    got, cycles = read_array_out(tmp_path, params, a.shape[0], w.shape[1])
    np.testing.assert_array_equal(got, ref.out.view(np.uint32))
    assert cycles == ref.cycles
    np.testing.assert_array_equal(got, ref_gemm(a, w).view(np.uint32))  # independent numpy loop
