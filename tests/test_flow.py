"""``focus flow``: end to end on a tiny design point, report numbers against
the APIs that produce them, the report in a headless browser, step caching,
bad input."""

import base64
import dataclasses
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import sim
from focus_algo import flow
from focus_algo.cli import main
from focus_algo.trace import SparseTrace
from focus_algo.workload import video_workload
from focus_hw import FocusParams
from focus_hw.generate import Manifest
from sim.sparsity import counts_from_trace, sec_survivors
from synth import area_report
from test_media import write_video
from tools import require

#: SEC prunes to half the tokens after layer 0's attention.
TINY = FocusParams(
    rows=2,
    cols=2,
    vector_size=4,
    sic_lanes=2,
    m_tile=16,
    max_frame_tokens=64,
    max_tokens=256,
    sec_layers=(0,),
    sec_keep=(0.5,),
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
#: Their hardware steps, each reused.
HARDWARE_CACHED = {
    f"{kind}:{unit}": "cached" for kind in ("rtlil", "verilog", "area") for unit in FAST_UNITS
}


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


def _int(text: str) -> int:
    return int(text.replace(",", ""))


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
    assert set(trace.meta.extra["sic_error"]) == set(trace.sites)
    steps = json.loads((out / "flow.json").read_text())["steps"]
    assert set(steps) == {
        "trace",
        "model",
        *(f"{kind}:{unit}" for kind in ("rtlil", "verilog", "area") for unit in FAST_UNITS),
    }

    class Parser(HTMLParser):
        images, tables = [], 0

        def handle_starttag(self, tag, attrs):
            self.tables += tag == "table"
            if tag == "img":
                self.images.append(dict(attrs)["src"])

    html = Parser()
    html.feed((out / "report.html").read_text())
    # summary, knobs, model, area by part, sparsity, baselines, area by unit / module, steps
    assert html.tables == 9
    assert len(html.images) == 3  # model, area by part, sparsity
    for src in html.images:
        head, data = src.split(",", 1)
        assert head == "data:image/png;base64"
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_numbers_agree_with_the_apis(flow_run):
    out = flow_run / "out"
    tables = _tables((out / "report.md").read_text())
    assert {r["status"] for r in tables["Steps"]} == {"ran"}

    # Performance model: model.csv against simulate(), the report to its 3 figures.
    workload = video_workload(**WORKLOAD).shape
    trace = SparseTrace.load(out / "trace.safetensors")
    baselines = json.loads((out / "baselines.json").read_text())
    focus = flow.sec_sic_trace(trace, workload, TINY, WORKLOAD["seed"])
    inputs = {"dense": None, "focus": focus, **baselines, "focus_sic": trace, "focus_sec": None}
    csv = pd.read_csv(out / "model.csv", index_col="machine")
    assert list(csv.index) == list(flow.MODEL_ROWS) == list(inputs)
    shown = {r["machine"]: r for r in tables["Performance model"]}
    assert list(shown) == [v[1] for v in flow.MODEL_ROWS.values()]
    for label, sparsity in inputs.items():
        machine, name, _ = flow.MODEL_ROWS[label]
        t = sim.simulate(workload, TINY, machine, sparsity).totals
        expect = [t.time_s * 1e3, t.energy_mj, t.dram_bytes / 1e6, t.speedup]
        got = csv.loc[label, ["time_ms", "energy_mj", "dram_mb", "speedup"]]
        np.testing.assert_allclose(got.to_numpy(float), expect, rtol=1e-9)
        cells = ("time (ms)", "energy (mJ)", "DRAM (MB)", "speedup (x)")
        np.testing.assert_allclose([float(shown[name][k]) for k in cells], expect, rtol=6e-3)
    assert shown["dense"]["speedup (x)"] == "1"
    assert csv.loc["focus", "time_ms"] < csv.loc["focus_sic", "time_ms"]  # SEC prunes
    summary = {r["machine"]: r for r in tables["Summary"]}
    assert list(summary) == ["dense", "Focus (SEC + SIC)", "CMC", "AdapTiV"]
    md = (out / "report.md").read_text()
    for label in ("cmc", "adaptiv"):  # where a baseline wins, the summary says why
        wins = csv.loc[label, "speedup"] > csv.loc["focus", "speedup"]
        assert (f"{flow.MODEL_ROWS[label][1]} is faster than Focus" in md) == wins

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
                assert _int(md[k]) == api[k], (unit, md["module"], k)
        s = report.summary()
        assert [_int(totals[unit][k]) for k in ("cells", "transistors", "memory (bits)")] == [
            s["cells"],
            s["transistors"],
            s["memory_bits"],
        ]
        assert sum(_int(r["total_cells"]) for r in mine) == s["cells"]
    assert _int(totals["array"]["cells"]) > 4 * 1000  # 4 fp16 PEs, ~2000 cells each

    # SIC sparsity (%): the trace's per-site means (zero + similar of each vector).
    sparsity = {r["site"]: r for r in tables["SIC sparsity per site (mean over layers)"]}
    for site, st in trace.sites.items():
        expect = np.mean([(z | s).mean() for z, s in zip(st.zero, st.similar)])
        assert float(sparsity[site]["sparsity (%)"]) == pytest.approx(100 * expect, rel=6e-3)
        error = np.mean(trace.meta.extra["sic_error"][site])
        assert float(sparsity[site]["GEMM output error (%)"]) == pytest.approx(100 * error, 6e-3)
    weights = workload.weight_sizes()
    assert float(sparsity["weighted"]["sparsity (%)"]) == pytest.approx(
        100 * trace.weighted_sparsity(weights), rel=6e-3
    )
    assert sparsity["weighted"]["GEMM weights per layer"] == ""
    assert {_int(sparsity[s]["GEMM weights per layer"]) for s in weights} == set(weights.values())


def test_sec_sic_trace_prunes_by_the_schedule(flow_run):
    """SEC keeps the schedule's token counts; kept tokens keep their SIC
    decisions (never gaining a similar vector); a layer SEC has not reached
    is the SIC trace."""
    workload = video_workload(**WORKLOAD).shape
    trace = SparseTrace.load(flow_run / "out" / "trace.safetensors")
    focus = flow.sec_sic_trace(trace, workload, TINY, seed=3)
    focus.validate()
    attn, mlp = sec_survivors(workload, TINY)
    assert attn.tolist() == [64, 32] and mlp.tolist() == [32, 32]
    counts = counts_from_trace(focus, workload, TINY)
    for site, st in trace.sites.items():
        alive = attn if site in ("q_proj", "query", "o_proj") else mlp
        assert counts.sites[site].nonzero.sum(axis=1).tolist() == alive.tolist()
        ft = focus.sites[site]
        kept = ~ft.zero.all(axis=-1, keepdims=True)
        assert np.array_equal(ft.zero & kept, st.zero & kept)
        assert not np.any(ft.similar & ~st.similar)
    q, fq = trace.sites["q_proj"], focus.sites["q_proj"]
    assert all(np.array_equal(getattr(q, k)[0], getattr(fq, k)[0]) for k in ("zero", "similar"))


def test_knobs_one_step_each(flow_run):
    """knobs.csv: every knob moved one valid step, sorted by Focus's time,
    each row the model's time at that point; the report lists them."""
    out = flow_run / "out"
    knobs = pd.read_csv(out / "knobs.csv")
    assert set(knobs["knob"]) == set(flow.KNOB_STEPS)
    assert knobs["change"].is_monotonic_increasing
    for row in knobs.itertuples():
        assert row.now == getattr(TINY, row.knob) and row.to in flow.KNOB_STEPS[row.knob](row.now)
    workload = video_workload(**WORKLOAD).shape
    focus = flow.sec_sic_trace(SparseTrace.load(out / "trace.safetensors"), workload, TINY, 0)
    row = knobs[knobs["knob"] == "num_scatter"].iloc[0]
    p = dataclasses.replace(TINY, num_scatter=int(row["to"]))
    t = sim.simulate(workload, p, "focus", focus).totals.time_s * 1e3
    assert row["time_ms"] == pytest.approx(t, rel=1e-9)
    shown = _tables((out / "report.md").read_text())["What to change next"]
    assert [r["knob"] for r in shown] == list(knobs["knob"])


def test_area_by_part_and_focus_share():
    """The whole accelerator's parts (control: everything outside them) and
    the Focus unit's share of the array's cells, on a made-up breakdown."""
    cells = {"": 10, "array": 50, "array.pe": 950, "sic.dot": 40, "sec": 5, "scatter": 25}
    rep = SimpleNamespace(
        breakdown={
            "cells": [{"unit": u, "cells": c, "transistors": 10 * c} for u, c in cells.items()]
            + [{"unit": "feed", "cells": 7, "transistors": 70}],
            "memory": [{"unit": "", "memory": "inbuf", "bits": 8192}],
        }
    )
    parts = flow.area_parts({"focus": rep})
    assert parts["part"].tolist() == ["array", "sic", "sec", "scatter", "control", "SRAM"]
    assert parts["cells"].tolist()[:5] == [1000, 40, 5, 25, 17]
    (line,) = flow._area_lines(SimpleNamespace(areas={"focus": rep}), parts)
    assert "1,087 cells" in line and "7% of the array's cells" in line
    assert flow._area_plot(parts)[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_renders_in_a_browser(flow_run, tmp_path):
    """report.html in headless Chromium: no console message; the summary
    first, then every section with its table and plot; the design point in
    the title; text escaped, no missing-value marks."""
    require("chromium")
    page = flow_run / "out" / "report.html"
    run = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr"]
        + ["--v=0", f"--user-data-dir={tmp_path}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "CONSOLE" not in run.stderr and "Uncaught" not in run.stderr, run.stderr

    class Dom(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.text, self.sections = [], [], []
            self.h, self.heading = {"h1": [], "h2": []}, None

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            if tag == "section":
                self.sections.append(dict(attrs).get("class"))
            if tag in self.h:
                self.heading = self.h[tag]
                self.heading.append("")

        def handle_endtag(self, tag):
            if tag in self.h:
                self.heading = None

        def handle_data(self, data):
            self.text.append(data)
            if self.heading is not None:
                self.heading[-1] += data

    dom = Dom()
    dom.feed(run.stdout)
    (title,) = dom.h["h1"]
    assert title.startswith("Focus accelerator, 2x2 fp16 array (fp32 partial sums), 2 SIC lanes")
    assert dom.h["h2"] == [
        "Summary",
        "What to change next",
        "Performance model",
        "Area by part",
        "SIC sparsity per site (mean over layers)",
        "Baseline token-level sparsity",
        "Area by unit",
        "Area by module (generic Yosys cells)",
        "Steps",
    ]
    assert dom.sections[0] == "summary"
    assert dom.tags.count("table") == 9 and dom.tags.count("img") == 3
    text = "".join(dom.text)
    assert "area/<unit>/breakdown.csv" in text
    assert "NA>" not in text and "nan" not in text.split()


def test_recorded_dependencies(flow_run):
    steps = json.loads((flow_run / "out" / "flow.json").read_text())["steps"]
    assert {"rows", "cols", "dtype", "mac_pipeline"} <= set(steps["rtlil:array"]["reads"])
    for name in ("rtlil:array", "verilog:array"):
        assert not {"threshold", "m_tile", "dram_bandwidth_gbs"} & set(steps[name]["reads"])
    assert {"threshold", "vector_size", "block_frames"} <= set(steps["trace"]["reads"])
    assert "dram_bandwidth_gbs" not in steps["trace"]["reads"]


def test_rerun_bandwidth_only_model(flow_run, tmp_path):
    out, status = _rerun(flow_run, tmp_path, "--dram-bandwidth-gbs", "16")
    assert status == {"trace": "cached", **HARDWARE_CACHED, "model": "ran"}
    assert FocusParams.load(out / "params.toml").dram_bandwidth_gbs == 16


def test_rerun_threshold_trace_and_model(flow_run, tmp_path):
    out, status = _rerun(flow_run, tmp_path, "--threshold", "0.5")
    assert status == {"trace": "ran", **HARDWARE_CACHED, "model": "ran"}
    before = SparseTrace.load(flow_run / "out" / "trace.safetensors").sparsity()
    assert SparseTrace.load(out / "trace.safetensors").sparsity() > before


def test_rerun_video_file(flow_run, tmp_path):
    """--video: the steps that read the frames rerun, and again when the file changes."""
    clip = write_video(tmp_path / "clip.mp4")
    out, status = _rerun(flow_run, tmp_path, "--video", str(clip))
    assert status == {"trace": "ran", **HARDWARE_CACHED, "model": "ran"}
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
    assert [(r["module"], _int(r["total_cells"]), _int(r["total_memory_bits"])) for r in sic] == [
        (r["module"], r["total_cells"], r["total_memory_bits"]) for r in report.rows()
    ]
    assert re.search(r"\| sic \| [\d,]+ \| [\d,]+ \| [\d,]+ \|", (out / "report.md").read_text())
