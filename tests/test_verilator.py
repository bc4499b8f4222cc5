"""Verilator as a second simulator: ``-Wall`` lint of every generated unit,
the 4x4 fp16 array cross-simulated against :func:`focus_hw.simulate_gemm`
(the bench, stimulus and output parsing are the Icarus ones of
test_crosssim.py), and ``backend="verilator"`` of ``simulate_gemm`` and
``simulate_focus_gemm`` (an 8x8 design) against their Amaranth backend, and
a small design with pipelined scatter adders against the exact model.

The waived lint rules, each with its reason, are in verilator_waivers.vlt.
"""

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from focus_hw import FocusParams, simulate_focus_gemm, simulate_gemm, tile_cycles, verilator
from focus_hw.generate import UNITS, generate
from test_crosssim import array_case, read_array_out, write_array_bench
from test_focus_gemm import PIPELINE_CASES, _check_bypass, _model_case
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


# -- backend="verilator" of simulate_gemm and simulate_focus_gemm ---------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One compiled-bench cache for this module's backend tests."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FOCUS_HW_CACHE", str(root))
        yield root / "verilator"


#: The 8x8 fp16 design of the backend tests: a pipelined MAC, 2 scatter
#: lanes, groups of 2 output sub-tiles, a ring of 3 blocks.
P8 = FocusParams(
    rows=8,
    cols=8,
    vector_size=8,
    mac_pipeline=1,
    m_tile=8,
    num_scatter=2,
    sic_lanes=2,
    out_vectors=2,
    ring_blocks=3,
    max_tokens=32,
    max_frame_tokens=16,
)


def test_gemm_backends_agree(cache):
    """Random output backpressure (none taken for 200 cycles first, so the
    bench needs more control lines than its first guess) and input bubbles:
    the same outputs (bits) and cycles from the emitted Verilog in Verilator
    as from the flat Amaranth design; a second run reuses the compiled bench."""
    rng = np.random.default_rng(8)
    a = rng.standard_normal((20, 8)).astype(np.float16)
    w = rng.standard_normal((8, 7)).astype(np.float16)
    ready = [False] * 200 + list(rng.random(80) < 0.6)
    kw = dict(out_ready=ready, act_valid=lambda c: (c * 7) % 5 != 2)
    ref = simulate_gemm(a, w, P8, **kw)
    run = simulate_gemm(a, w, P8, backend="verilator", **kw)
    np.testing.assert_array_equal(run.out.view(np.uint32), ref.out.view(np.uint32))
    assert run.cycles == ref.cycles > tile_cycles(20, P8)  # the patterns slowed it
    built = {(f.name, f.stat().st_mtime_ns) for f in cache.iterdir()}
    assert all(name.startswith("tb-") for name, _ in built)  # nothing half-written
    again = simulate_gemm(a, w, P8, backend="verilator", **kw)
    assert again.cycles == ref.cycles
    assert {(f.name, f.stat().st_mtime_ns) for f in cache.iterdir()} == built  # not rebuilt
    np.testing.assert_array_equal(run.out.view(np.uint32), ref_gemm(a, w).view(np.uint32))


def _focus_case():
    """A compressed GEMM with near-copies, a pruned token and 3 M tiles x 2 N
    groups (the last ragged), every memory stream throttled at random."""
    rng = np.random.default_rng(16)
    grid = (2, 3, 3)
    x = rng.standard_normal((18, 20)).astype(np.float32)
    for dst, src in ((1, 0), (4, 0), (7, 5), (12, 9), (17, 14)):
        x[dst] = x[src] + 0.01 * rng.standard_normal(20)
    x[3] = 0
    x = x.astype(np.float16)
    w = rng.standard_normal((20, 19)).astype(np.float16)
    return x, w, grid, dict(in_valid=0.7, out_ready=0.6, seed=4)


def test_focus_gemm_backends_agree(cache):
    """:func:`_focus_case`: the same output, SIC of the output, cycles and
    every counter in Verilator as in Amaranth's simulator."""
    x, w, grid, kw = _focus_case()
    ref = simulate_focus_gemm(x, w, grid, P8, **kw)
    run = simulate_focus_gemm(x, w, grid, P8, backend="verilator", **kw)
    np.testing.assert_array_equal(run.out.view(np.uint32), ref.out.view(np.uint32))
    for name in ("zero", "similar", "root"):
        np.testing.assert_array_equal(getattr(run.compressed, name), getattr(ref.compressed, name))
    np.testing.assert_array_equal(
        run.compressed.tokens.view(np.uint16), ref.compressed.tokens.view(np.uint16)
    )
    assert run.cycles == ref.cycles
    assert run.stats == ref.stats
    assert ref.stats["stall_cycles"] > 0 and ref.compressed.similar.any()  # not vacuous


def test_focus_gemm_bypass_backends_agree(cache):
    """:func:`_focus_case` bypassing the output SIC: the same output, rows
    written back, cycles and every counter in both simulators."""
    x, w, grid, kw = _focus_case()
    ref = simulate_focus_gemm(x, w, grid, P8, bypass=True, **kw)
    run = simulate_focus_gemm(x, w, grid, P8, backend="verilator", bypass=True, **kw)
    np.testing.assert_array_equal(run.out.view(np.uint32), ref.out.view(np.uint32))
    np.testing.assert_array_equal(
        run.compressed.tokens.view(np.uint16), ref.compressed.tokens.view(np.uint16)
    )
    assert run.cycles == ref.cycles
    assert run.stats == ref.stats
    assert ref.stats["sic_cycles"] == 0 and ref.stats["output_reads"] > 0


@pytest.mark.slow  # ~2 min, the bench's build; Amaranth runs the case in CI
def test_focus_gemm_pipelined_scatter_in_verilator(cache):
    """A bypass run with scatter_pipeline=5 whose updates of a row wait for
    the previous sum (test_focus_gemm's ``PIPELINE_CASES[1]``), in
    Verilator: the output of the numpy loop, the model's cycles and counters."""
    case, cols, vectors, blocks, pipeline, bypass = PIPELINE_CASES[1]
    assert bypass and pipeline == 5
    p, x, w, grid = _model_case(
        case, cols, out_vectors=vectors, ring_blocks=blocks, scatter_pipeline=pipeline
    )
    run = simulate_focus_gemm(x, w, grid, p, backend="verilator", bypass=True)
    assert _check_bypass(run, x, w, grid, p) == dict(run.stats, cycles=run.cycles)


def test_backend_errors(cache, monkeypatch):
    """Bad backend names and a VCD asked of Verilator are ValueErrors; a
    missing verilator and a failing build are VerilatorErrors naming the
    problem, and a failed build leaves nothing in the cache."""
    a = np.ones((2, 2), np.float16)
    p = FocusParams(rows=2, cols=2)
    with pytest.raises(ValueError, match="backend='icarus'"):
        simulate_gemm(a, a, p, backend="icarus")
    with pytest.raises(ValueError, match="vcd"):
        simulate_gemm(a, a, p, backend="verilator", vcd="x.vcd")
    before = set(cache.iterdir()) if cache.exists() else set()
    design = verilator._design
    monkeypatch.setattr(verilator, "_design", lambda *k: (*design(*k)[:2], "module broken(;\n"))
    with pytest.raises(verilator.VerilatorError, match="Verilator build failed"):
        simulate_gemm(a, a, p, backend="verilator")
    assert set(cache.iterdir()) == before
    monkeypatch.setenv("PATH", "")
    with pytest.raises(verilator.VerilatorError, match="needs verilator"):
        simulate_gemm(a, a, p, backend="verilator")
