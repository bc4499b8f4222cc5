"""Verilog generation, manifests, sweeps and the focus-hw CLI (generate/sweep)."""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import re

import pytest
from amaranth.hdl import Value
from click.testing import CliRunner

from focus_hw import FocusParams
from focus_hw import generate as gen
from focus_hw.cli import main
from focus_hw.generate import Manifest, ManifestError, build_unit, convert_rtlil, generate
from focus_hw.sweep import grid_points, sweep
from synth.yosys import run_yosys

INT8 = FocusParams(rows=2, cols=3, dtype="int8")


def _signature_ports(params, unit):
    dut = build_unit(params, unit)
    ports = {}
    for path, member, value in dut.signature.flatten(dut):
        direction = "input" if member.flow.name == "In" else "output"
        ports["__".join(map(str, path))] = (direction, len(Value.cast(value)))
    dut._MustUse__silence = True  # only its signature is read here
    return ports


_PORT = re.compile(r"^\s*(input|output)\s+(?:signed\s+)?(?:\[(\d+):(\d+)\]\s+)?\\?(\S+)\s*;")


def _verilog_ports(text: str, top: str) -> dict:
    """name -> (direction, width) declared in module ``top`` of Verilog ``text``."""
    body = text.split(f"\nmodule {top}(", 1)[1].split("\nendmodule", 1)[0]
    return {
        m[4]: (m[1], int(m[2]) - int(m[3]) + 1 if m[2] else 1)
        for m in map(_PORT.match, body.splitlines())
        if m
    }


@pytest.mark.parametrize("unit", ["mac", "pe", "array"])
def test_generate_writes_verilog_and_verifiable_manifest(tmp_path, unit):
    manifest = generate(INT8, tmp_path, unit=unit)
    verilog = tmp_path / f"focus_{unit}.v"
    assert manifest.top == f"focus_{unit}" and manifest.unit == unit
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([verilog.name, "manifest.json"])
    text = verilog.read_text()
    assert f"module focus_{unit}(" in text
    assert manifest.files == {verilog.name: hashlib.sha256(verilog.read_bytes()).hexdigest()}
    loaded = Manifest.load(tmp_path)
    assert loaded == manifest
    loaded.verify(tmp_path)
    assert loaded.focus_params == INT8 and loaded.digest == INT8.digest()
    # Ports: the component's signature (flattened with "__") plus clk/rst,
    # exactly those the Verilog module declares.
    expected = _signature_ports(INT8, unit)
    ports = {p["name"]: (p["direction"], p["width"]) for p in manifest.ports}
    assert ports == _verilog_ports(text, manifest.top)
    assert {k: v for k, v in ports.items() if k not in ("clk", "rst")} == expected
    clocked = unit != "mac" or INT8.mac_pipeline > 0
    assert ports.keys() - expected.keys() == ({"clk", "rst"} if clocked else set())


def test_array_ports_follow_params(tmp_path):
    params = FocusParams(rows=3, cols=2, dtype="int8")
    ports = {p["name"]: p["width"] for p in generate(params, tmp_path).ports}
    assert ports["act__payload"] == 3 * 8 + 1  # rows lanes + swap flag
    assert ports["weight__payload"] == 2 * 8  # cols operands
    assert ports["out__payload"] == 2 * 32  # cols accumulators


def test_manifest_detects_tampering(tmp_path):
    manifest = generate(INT8, tmp_path, unit="mac")
    verilog = tmp_path / manifest.verilog
    verilog.write_text(verilog.read_text() + "\n// edited\n")
    with pytest.raises(ManifestError, match="sha256"):
        manifest.verify(tmp_path)
    verilog.unlink()
    with pytest.raises(ManifestError, match="missing"):
        manifest.verify(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="unreadable"):
        Manifest.load(tmp_path)


def test_bad_parameter_errors_before_writing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="rows"):
        generate({"rows": 0}, out, unit="mac")
    with pytest.raises(ValueError, match="unknown field"):
        generate({"rowz": 4}, out)
    with pytest.raises(ValueError, match="unknown unit"):
        generate(INT8, out, unit="gpu")
    with pytest.raises(TypeError, match="params"):
        generate(42, out)
    assert not out.exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        generate(INT8, tmp_path / "file", unit="mac")


def test_generate_is_deterministic(tmp_path):
    a = generate(INT8, tmp_path / "a", unit="pe")
    b = generate(INT8, tmp_path / "b", unit="pe")
    assert a.files == b.files
    # from RTLIL made beforehand (the flow's), the same files and ports
    c = generate(INT8, tmp_path / "c", unit="pe", rtlil=convert_rtlil(INT8, "pe"))
    assert c == a


def test_generated_verilog_passes_yosys_hierarchy_check(tmp_path):
    """Every point of a small sweep reads back into Yosys with a complete hierarchy."""
    grid = {"rows": [1, 2], "cols": [2, 3], "mac_pipeline": [0, 1]}
    result = sweep(
        INT8, grid, tmp_path, unit="array", executor=cf.ThreadPoolExecutor(1), progress=False
    )
    assert result.count("ok") == 8
    cmds = []
    for point in result.points:
        cmds += [
            f"read_verilog -sv {point.folder}/focus_array.v",
            "hierarchy -check -top focus_array",
            f"tee -q -o {point.folder}/hier.txt ls",
            "design -reset",
        ]
    run_yosys(cmds, tmp_path, timeout=300)
    for point in result.points:
        # one module per PE class (+ its MAC), each listed in the manifest
        listing = (tmp_path / point.folder / "hier.txt").read_text()
        modules = {line.strip() for line in listing.splitlines() if "focus_array" in line}
        manifest = Manifest.load(tmp_path / point.folder)
        assert modules == {manifest.top} | {
            f"{m}{s}" for m in manifest.modules[1:] for s in ("", ".mac")
        }
        classes = 1 + (point.point["rows"] > 1)  # (first row or not) x (last column or not)
        assert len(manifest.modules) == 1 + classes * 2, listing


def test_grid_points_is_the_cartesian_product():
    points = grid_points({"rows": [2, 4], "dtype": ["int8", "fp16", "bf16"]})
    assert len(points) == 6
    expected = {(r, d) for r in (2, 4) for d in ("int8", "fp16", "bf16")}
    assert {(p["rows"], p["dtype"]) for p in points} == expected
    with pytest.raises(ValueError, match="unknown FocusParams field"):
        grid_points({"depth": [1]})
    with pytest.raises(ValueError, match="list of values"):
        grid_points({"rows": 4})


def test_sweep_records_invalid_points_and_resumes(tmp_path):
    grid = {"dtype": ["int8", "fp64"], "mac_pipeline": [0, 1, -1]}
    first = sweep(
        INT8, grid, tmp_path, unit="mac", executor=cf.ThreadPoolExecutor(2), progress=False
    )
    assert (first.count("ok"), first.count("invalid"), first.count("failed")) == (2, 4, 0)
    assert not first.ok
    invalid = [p for p in first.points if p.status == "invalid"]
    assert all(("dtype" in p.error) or ("mac_pipeline" in p.error) for p in invalid)
    summary = json.loads((tmp_path / "sweep.json").read_text())
    assert summary["counts"] == {"ok": 2, "skipped": 0, "invalid": 4, "failed": 0}
    folders = [p.folder for p in first.points if p.status == "ok"]
    for folder in folders:
        assert folder.startswith("dtype=int8_mac_pipeline=")
        Manifest.load(tmp_path / folder).verify(tmp_path / folder)

    second = sweep(
        INT8, grid, tmp_path, unit="mac", executor=cf.ThreadPoolExecutor(2), progress=False
    )
    assert (second.count("skipped"), second.count("ok")) == (2, 0)

    # a damaged point is regenerated, the intact one skipped
    damaged = tmp_path / folders[0] / "focus_mac.v"
    damaged.write_text("garbage")
    third = sweep(
        INT8, grid, tmp_path, unit="mac", executor=cf.ThreadPoolExecutor(2), progress=False
    )
    assert (third.count("ok"), third.count("skipped")) == (1, 1)
    Manifest.load(tmp_path / folders[0]).verify(tmp_path / folders[0])


def test_sweep_failed_point_does_not_stop_the_others(tmp_path, monkeypatch):
    def flaky(p):
        if p.rows == 3:
            raise RuntimeError("boom at rows=3")
        return gen.UNITS["mac"](p)

    monkeypatch.setitem(gen.UNITS, "flaky", flaky)
    result = sweep(
        INT8,
        {"rows": [1, 3, 5]},
        tmp_path,
        unit="flaky",
        executor=cf.ThreadPoolExecutor(2),
        progress=False,
    )
    status = {p.point["rows"]: p.status for p in result.points}
    assert status == {1: "ok", 3: "failed", 5: "ok"}
    failed = next(p for p in result.points if p.status == "failed")
    assert "boom at rows=3" in failed.error


def test_sweep_default_process_pool(tmp_path):
    result = sweep(INT8, {"mac_pipeline": [0, 2]}, tmp_path, unit="mac", jobs=2, progress=False)
    assert result.count("ok") == 2 and result.ok


# -- CLI ---------------------------------------------------------------------------


def test_cli_help():
    runner = CliRunner()
    for args in ([], ["generate"], ["sweep"], ["synth"]):
        res = runner.invoke(main, args + ["--help"])
        assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["generate", "--help"])
    for field in ("--rows", "--mac-pipeline", "--sec-keep", "--block-wrap", "--dram-pj-per-byte"):
        assert field in res.output


def test_cli_generate(tmp_path):
    runner = CliRunner()
    params_file = tmp_path / "p.toml"
    FocusParams(rows=2, cols=2, dtype="int8", sec_layers=(1,), sec_keep=(0.5,)).save(params_file)
    out = tmp_path / "out"
    res = runner.invoke(
        main,
        [
            "generate",
            "--params",
            str(params_file),
            "--cols",
            "3",
            "--unit",
            "array",
            "--block-wrap",
            "false",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    manifest = Manifest.load(out)
    manifest.verify(out)
    assert manifest.focus_params == FocusParams(
        rows=2, cols=3, dtype="int8", block_wrap=False, sec_layers=(1,), sec_keep=(0.5,)
    )


def test_cli_generate_acc_format(tmp_path):
    """``--acc-format operand``: the PE's partial sums are operand-format wide."""
    out = tmp_path / "out"
    args = ["generate", "--unit", "pe", "--dtype", "bf16", "--acc-format", "operand"]
    res = CliRunner().invoke(main, args + ["--out", str(out)])
    assert res.exit_code == 0, res.output
    manifest = Manifest.load(out)
    p = manifest.focus_params
    assert p.acc_format == "operand" and p.acc_bits == p.operand_bits
    widths = {port["name"]: port["width"] for port in manifest.ports}
    assert widths["psum_in"] == widths["psum_out"] == p.acc_bits


@pytest.mark.parametrize(
    "args,message",
    [
        (["--rows", "0"], "rows"),
        (["--rows", "four"], "--rows"),
        (["--dtype", "fp8"], "dtype"),
        (["--sec-keep", "0.5,0.9"], "sec_keep"),
        (["--dtype", "int8", "--acc-format", "operand"], "acc_format"),
        (["--acc-format", "fp32"], "acc_format"),
    ],
)
def test_cli_generate_errors(tmp_path, args, message):
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["generate", "--unit", "mac", "--out", str(out)] + args)
    assert res.exit_code != 0
    assert message in res.output
    assert not out.exists()


def test_cli_sweep_exit_codes(tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        main,
        [
            "sweep",
            "--unit",
            "mac",
            "--dtype",
            "int8",
            "--mac-pipeline",
            "0,1",
            "--jobs",
            "1",
            "--no-progress",
            "--out",
            str(tmp_path / "ok"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "2 ok" in res.output
    res = runner.invoke(
        main,
        [
            "sweep",
            "--unit",
            "mac",
            "--dtype",
            "int8",
            "--mac-pipeline",
            "0,-1",
            "--jobs",
            "1",
            "--no-progress",
            "--out",
            str(tmp_path / "bad"),
        ],
    )
    assert res.exit_code == 1
    assert "1 ok" in res.output and "1 invalid" in res.output
    assert len(list((tmp_path / "bad").glob("*/manifest.json"))) == 1
    res = runner.invoke(
        main, ["sweep", "--unit", "mac", "--rows", "x", "--out", str(tmp_path / "x")]
    )
    assert res.exit_code == 2
