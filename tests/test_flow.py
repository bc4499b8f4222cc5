"""``focus flow``: end to end on a tiny design point, report numbers against
the APIs that produce them, step caching, bad input."""

import base64
import json
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
from click.testing import CliRunner

import sim
from focus_algo.cli import main
from focus_algo.trace import SparseTrace
from focus_algo.workload import video_workload
from focus_hw import FocusParams
from focus_hw.generate import Manifest
from synth import area_report
from test_media import write_video

TINY = FocusParams(
    rows=2, cols=2, vector_size=4, sic_lanes=2, m_tile=16, max_frame_tokens=64, max_tokens=256
)
WORKLOAD = {
    "frames": 4,
    "height": 4,
    "width": 4,
    "hidden": 32,
    "heads": 2,
    "kv_groups": 1,
    "ffn": 64,
    "layers": 2,
    "clip_len": 2,
    "seed": 0,
}
#: The SIC's Yosys run alone exceeds the CI budget: the fast test leaves it to
#: test_flow_all_units (slow).
FAST_UNITS = ("array", "sec")


def _args(params_file, out, cache, units=FAST_UNITS, *extra):
    opts = [f"--{k.replace('_', '-')}={v}" for k, v in WORKLOAD.items()]
    return [
        "flow",
        "--params",
        str(params_file),
        *opts,
        "--units",
        ",".join(units),
        "--out",
        str(out),
        "--cache-dir",
        str(cache),
        "--no-progress",
        *extra,
    ]


def _invoke(*args):
    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 0, res.output
    return res


def _tables(md: str) -> dict[str, list[dict]]:
    """Section title -> rows (column -> text) of the report's markdown tables."""
    out, title, header = {}, None, None
    for line in md.splitlines():
        if line.startswith("## "):
            title, header = line[3:], None
            out[title] = []
        elif line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if header is None:
                header = cells
            else:
                out[title].append(dict(zip(header, cells)))
    return out


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow")
    TINY.save(root / "tiny.toml")
    _invoke(*_args(root / "tiny.toml", root / "out", root / "cache"))
    return root


def _rerun(root, tmp_path, *extra):
    """Rerun in a copy of the first run's folder; the steps table."""
    out = tmp_path / "out"
    shutil.copytree(root / "out", out)
    _invoke(*_args(root / "tiny.toml", out, root / "cache", FAST_UNITS, *extra))
    steps = _tables((out / "report.md").read_text())["Steps"]
    return out, {r["step"]: r["status"] for r in steps}


def test_every_file_present_and_parseable(flow_run):
    out = flow_run / "out"
    assert FocusParams.load(out / "params.toml") == TINY
    trace = SparseTrace.load(out / "trace.safetensors")
    assert trace.meta.num_tokens == 64 and trace.meta.num_layers == 2
    for unit in FAST_UNITS:
        Manifest.load(out / "verilog" / unit).verify(out / "verilog" / unit)
        assert f"module focus_{unit}" in (out / "verilog" / unit / f"focus_{unit}.v").read_text()
        assert json.loads((out / "area" / unit / "area.json").read_text())["unit"] == unit
    assert not (out / "verilog" / "sic").exists()
    steps = json.loads((out / "flow.json").read_text())["steps"]
    assert set(steps) == {
        "trace",
        "baselines",
        "model",
        "verilog:array",
        "verilog:sec",
        "area:array",
        "area:sec",
    }

    class Parser(HTMLParser):
        images, tables = [], 0

        def handle_starttag(self, tag, attrs):
            self.tables += tag == "table"
            if tag == "img":
                self.images.append(dict(attrs)["src"])

    html = Parser()
    html.feed((out / "report.html").read_text())
    assert html.tables == 6  # steps, sparsity, baselines, area x2, model
    assert len(html.images) == 2 + len(FAST_UNITS)
    for src in html.images:
        head, data = src.split(",", 1)
        assert head == "data:image/png;base64"
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_numbers_agree_with_the_apis(flow_run):
    out = flow_run / "out"
    tables = _tables((out / "report.md").read_text())
    assert {r["status"] for r in tables["Steps"]} == {"ran"}

    # Performance model: each machine against its own simulate() call.
    workload = video_workload(**WORKLOAD).shape
    trace = SparseTrace.load(out / "trace.safetensors")
    baselines = json.loads((out / "baselines.json").read_text())
    inputs = {"dense": None, "focus": trace, "focus_sec": None, **baselines}
    model = {r["machine"]: r for r in tables["Performance model"]}
    assert list(model) == ["dense", "focus", "focus_sec", "cmc", "adaptiv"]
    for machine, sparsity in inputs.items():
        t = sim.simulate(workload, TINY, machine, sparsity).totals
        row = model[machine]
        np.testing.assert_allclose(
            [float(row[k]) for k in ("time_ms", "energy_mj", "dram_mb", "speedup")],
            [t.time_s * 1e3, t.energy_mj, t.dram_bytes / 1e6, t.speedup],
            rtol=1e-5,
        )
    assert float(model["dense"]["speedup"]) == 1.0

    # Area: every module row and unit total against area_report (cached now).
    area = tables["Area by module (generic Yosys cells)"]
    totals = {r["unit"]: r for r in tables["Area by unit"]}
    for unit in FAST_UNITS:
        report = area_report(TINY, unit, cache_dir=flow_run / "cache")
        assert report.cached == {"generic": True}
        mine = [r for r in area if r["unit"] == unit]
        assert [r["module"] for r in mine] == [r["module"] for r in report.rows()]
        for md, api in zip(mine, report.rows()):
            for k in ("instances", "cells", "total_cells", "transistors", "total_memory_bits"):
                assert int(md[k]) == api[k], (unit, md["module"], k)
        s = report.summary()
        assert [int(totals[unit][k]) for k in ("cells", "transistors", "memory_bits")] == [
            s["cells"],
            s["transistors"],
            s["memory_bits"],
        ]
        assert sum(int(r["total_cells"]) for r in mine) == s["cells"]
    assert int(totals["array"]["cells"]) > 4 * 1000  # 4 fp16 PEs, ~2000 cells each

    # SIC sparsity: the trace's per-site means (zero + similar of each vector).
    sparsity = {r["site"]: r for r in tables["SIC sparsity per site (mean over layers)"]}
    for site, st in trace.sites.items():
        expect = np.mean([(z | s).mean() for z, s in zip(st.zero, st.similar)])
        assert float(sparsity[site]["sparsity"]) == pytest.approx(expect, rel=1e-5)
    weights = workload.weight_sizes()
    assert float(sparsity["weighted"]["sparsity"]) == pytest.approx(
        trace.weighted_sparsity(weights), rel=1e-5
    )
    assert {int(sparsity[s]["weight"]) for s in weights} == set(weights.values())


def test_recorded_dependencies(flow_run):
    steps = json.loads((flow_run / "out" / "flow.json").read_text())["steps"]
    assert {"rows", "cols", "dtype", "mac_pipeline"} <= set(steps["verilog:array"]["reads"])
    assert not {"threshold", "m_tile", "dram_bandwidth_gbs"} & set(steps["verilog:array"]["reads"])
    assert {"threshold", "vector_size", "block_frames"} <= set(steps["trace"]["reads"])
    assert "dram_bandwidth_gbs" not in steps["trace"]["reads"]


def test_rerun_bandwidth_only_model(flow_run, tmp_path):
    out, status = _rerun(flow_run, tmp_path, "--dram-bandwidth-gbs", "16")
    assert status == {
        "trace": "cached",
        "baselines": "cached",
        "verilog:array": "cached",
        "verilog:sec": "cached",
        "area:array": "cached",
        "area:sec": "cached",
        "model": "ran",
    }
    assert FocusParams.load(out / "params.toml").dram_bandwidth_gbs == 16


def test_rerun_threshold_trace_and_model(flow_run, tmp_path):
    out, status = _rerun(flow_run, tmp_path, "--threshold", "0.5")
    assert status == {
        "trace": "ran",
        "baselines": "cached",
        "verilog:array": "cached",
        "verilog:sec": "cached",
        "area:array": "cached",
        "area:sec": "cached",
        "model": "ran",
    }
    before = SparseTrace.load(flow_run / "out" / "trace.safetensors").sparsity()
    assert SparseTrace.load(out / "trace.safetensors").sparsity() > before


def test_rerun_video_file(flow_run, tmp_path):
    """--video: the steps that read the frames rerun, and again when the file changes."""
    clip = write_video(tmp_path / "clip.mp4")
    hardware = dict.fromkeys(("verilog:array", "verilog:sec", "area:array", "area:sec"), "cached")
    out, status = _rerun(flow_run, tmp_path, "--video", str(clip))
    assert status == {"trace": "ran", "baselines": "ran", **hardware, "model": "ran"}
    assert "time and energy on clip.mp4" in (out / "report.md").read_text()
    assert SparseTrace.load(out / "trace.safetensors").meta.dataset == "clip.mp4"
    write_video(clip, count=6)  # same name, other frames
    _invoke(
        *_args(flow_run / "tiny.toml", out, flow_run / "cache", FAST_UNITS, "--video", str(clip))
    )
    steps = _tables((out / "report.md").read_text())["Steps"]
    assert {r["step"]: r["status"] for r in steps}["trace"] == "ran"


def _one_error_line(res, text):
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    errors = [line for line in res.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and text in errors[0]
    assert res.output.rstrip("\n").splitlines()[-1] == errors[0]


def test_bad_input_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("rows = 3\nvector_size = 24\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["flow", "--params", str(bad), "--out", str(out)])
    _one_error_line(res, "vector_size")
    res = CliRunner().invoke(main, ["flow", "--fpga", "no-such-board", "--out", str(out)])
    _one_error_line(res, "unknown board 'no-such-board'")
    res = CliRunner().invoke(main, ["flow", "--units", "array,gpu", "--out", str(out)])
    _one_error_line(res, "--units")
    res = CliRunner().invoke(main, ["flow", "--heads", "3", "--out", str(out)])
    _one_error_line(res, "--heads")
    # the default unit is the whole accelerator: rows == cols == vector_size
    res = CliRunner().invoke(main, ["flow", "--rows", "16", "--out", str(out)])
    _one_error_line(res, "must be equal")
    assert not out.exists()


@pytest.mark.slow
def test_flow_all_units(flow_run, tmp_path):
    """The SIC too (its Yosys run takes minutes); the other units are cached."""
    out = tmp_path / "out"
    shutil.copytree(flow_run / "out", out)
    _invoke(*_args(flow_run / "tiny.toml", out, flow_run / "cache", ("array", "sic", "sec")))
    tables = _tables((out / "report.md").read_text())
    status = {r["step"]: r["status"] for r in tables["Steps"]}
    assert status["verilog:sic"] == status["area:sic"] == "ran"
    assert status["area:array"] == "cached"
    Manifest.load(out / "verilog" / "sic").verify(out / "verilog" / "sic")
    report = area_report(TINY, "sic", cache_dir=flow_run / "cache")
    sic = [r for r in tables["Area by module (generic Yosys cells)"] if r["unit"] == "sic"]
    assert [(r["module"], int(r["total_cells"]), int(r["total_memory_bits"])) for r in sic] == [
        (r["module"], r["total_cells"], r["total_memory_bits"]) for r in report.rows()
    ]
    assert re.search(r"\| sic \| \d+ \| \d+ \| \d+ \|", (out / "report.md").read_text())
