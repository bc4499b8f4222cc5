"""focus-sim CLI: reproduce, run, sweep."""

import pandas as pd
import pytest
from click.testing import CliRunner

from focus_hw import FocusParams
from sim import dse
from sim.cli import main
from sim.model import simulate
from sim.reproduce import COLUMNS
from sim.workload import qwen2_7b


def test_reproduce_writes_36_rows(tmp_path):
    res = CliRunner().invoke(main, ["reproduce", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(tmp_path / "reproduce.csv")
    assert list(df.columns) == COLUMNS
    assert len(df) == 36
    assert set(df.accelerator) == {"dense", "adaptiv", "cmc", "focus"}
    assert (df.groupby(["model", "dataset"]).size() == 4).all()
    assert (tmp_path / "reproduce.png").stat().st_size > 0
    assert (df.time_s > 0).all() and (df.paper_time_s > 0).all()
    # Focus is the fastest machine on every workload
    fastest = df.loc[df.groupby(["model", "dataset"]).time_s.idxmin()]
    assert (fastest.accelerator == "focus").all()
    assert "vs_dense_ours" in res.output and "energy_vs_best_ours" in res.output
    # the ratio table is the one speedup_table computes from reproduce.csv
    ratios = pd.read_csv(tmp_path / "ratios.csv")
    focus = df[df.accelerator == "focus"].set_index(["model", "dataset"])
    dense = df[df.accelerator == "dense"].set_index(["model", "dataset"])
    expect = (dense.energy_mj / focus.energy_mj).to_numpy()
    assert ratios.energy_vs_dense_ours.to_numpy() == pytest.approx(expect)
    # the Focus sparsity is labelled as taken from the paper's op counts, everywhere
    sources = df.groupby("accelerator").sparsity_source.unique()
    assert sources["focus"].tolist() == [
        "paper op counts: 1 - num_ops main_focus.csv / main_focus_SEC_only.csv"
    ]
    assert sources["cmc"].tolist() == ["paper table cmc_sparsity.csv"]
    assert sources["dense"].tolist() == ["none"]
    # the agreement the README states: speedups within 7% of the paper's and
    # energy reductions within 13% on every workload but minicpm_v/mvbench
    # (its short tiles; docs: performance), which stays within 40%
    short = (ratios.model == "minicpm_v") & (ratios.dataset == "mvbench")
    for key, tol in (("vs_dense", 0.07), ("vs_best", 0.07)):
        assert ratios.loc[~short, f"err_{key}"].abs().max() <= tol, key
    for key in ("energy_vs_dense", "energy_vs_best"):
        assert ratios.loc[~short, f"err_{key}"].abs().max() <= 0.13, key
    assert ratios.loc[short].filter(like="err_").abs().max(axis=None) <= 0.40
    assert "derived from the paper's own operation counts" in res.output
    assert "not an independent prediction" in res.output


def test_run_prints_summary(tmp_path):
    out = tmp_path / "g.csv"
    res = CliRunner().invoke(
        main, ["run", "--workload", "minicpm_v/mvbench", "--machine", "cmc", "--csv", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "minicpm_v/mvbench on cmc" in res.output and "speedup over dense" in res.output
    assert len(pd.read_csv(out)) == 28 * 9


def test_run_field_overrides(tmp_path):
    """Per-field options apply on top of --params (or the paper's params)."""

    def cycles(*args):
        out = tmp_path / "g.csv"
        res = CliRunner().invoke(
            main,
            ["run", "--workload", "minicpm_v/mvbench", "--machine", "dense", "--csv", out, *args],
        )
        assert res.exit_code == 0, res.output
        return pd.read_csv(out)["cycles"].sum()

    paper = cycles()
    FocusParams(rows=16, cols=16).save(tmp_path / "p.toml")
    assert cycles("--rows", "16", "--cols", "16") > paper
    assert cycles("--params", tmp_path / "p.toml") == cycles("--rows", "16", "--cols", "16")
    assert cycles("--params", tmp_path / "p.toml", "--rows", "32", "--cols", "32") == paper


@pytest.mark.parametrize(
    "args, option, says",
    [
        (["--workload", "nope/none"], "--workload", "known: llava_vid/videomme"),
        (["--machine", "cmc", "--sparsity", "1.5"], "--sparsity", "0<=x<1"),
        (["--machine", "gpu"], "--machine", "'gpu' is not one of"),
        (["--tokens", "-5"], "--tokens", "x>=1"),
        (["--frames", "0", "--tokens", "10"], "--frames", "x>=1"),
        (["--trace", "{trace}"], "--trace", "not a safetensors file"),
        (["--machine", "dense", "--sparsity", "0.3"], None, "takes no sparsity input"),
        (
            ["--config", "{config}", "--tokens", "10", "--machine", "dense"],
            "--config",
            "JSON object",
        ),
    ],
)
def test_run_bad_inputs_exit_2_naming_the_option(tmp_path, args, option, says):
    """Bad input is a usage error: exit 2, one message naming the option."""
    bad = tmp_path / "config.json"
    bad.write_text("[]")
    trace = tmp_path / "trace.safetensors"
    trace.write_bytes(b"not a trace at all")
    args = [a.format(config=bad, trace=trace) for a in args]
    r = CliRunner().invoke(main, ["run", *args])
    assert r.exit_code == 2, r.output
    assert says in r.output
    if option:
        assert option in r.output
    assert "Traceback" not in r.output


def test_sweep_small_grid_has_pareto_front(tmp_path):
    grid = {
        "m_tile": (512, 1024),
        "vector_size": (32,),
        "block": ((2, 2, 2),),
        "num_scatter": (2, 3),
        "out_vectors": (3,),
        "sic_lanes": (8,),
        "acc_format": ("wide", "operand"),
    }
    w = qwen2_7b(2048, frames=8)
    base = FocusParams()
    df = dse.sweep(w, base, 0.5, grid)
    assert len(df) == 8 and df.pareto.any()
    ref = df[(df.m_tile == 1024) & (df.num_scatter == 3) & (df.acc_format == "wide")].iloc[0]
    assert ref.speedup_vs_paper == pytest.approx(1.0)
    assert ref.area_mm2 == pytest.approx(dse.area_mm2(base))
    best, bound = dse.write(df, dse.area_mm2(base), tmp_path)
    assert best.area_mm2 <= dse.area_mm2(base) + 1e-9
    # the bound: the paper configuration's time over the fewest MAC cycles
    # of a point within its area, from the model's own MAC count
    fits = [p for p in dse._points(base, grid) if dse.area_mm2(p) <= dse.area_mm2(base) + 1e-9]
    ref_s = simulate(w, base, "focus", 0.5, compare=False).totals.time_s
    macs = [
        simulate(w, p, "focus", 1 - 0.5 * dse.remaining_factor(p), compare=False).totals.macs
        for p in fits
    ]
    assert bound == pytest.approx(ref_s * base.clock_hz * 32 * 32 / min(macs))
    assert best.speedup_vs_paper <= bound
    assert (tmp_path / "sweep.png").exists() and len(pd.read_csv(tmp_path / "sweep.csv")) == 8
    # a Pareto point is never beaten on both axes
    for _, r in df[df.pareto].iterrows():
        assert not ((df.area_mm2 < r.area_mm2) & (df.speedup_vs_dense > r.speedup_vs_dense)).any()
    assert df.energy_pareto.any()
    for _, r in df[df.energy_pareto].iterrows():
        assert not ((df.area_mm2 < r.area_mm2) & (df.energy_mj < r.energy_mj)).any()


@pytest.mark.slow
def test_sweep_cli_quick(tmp_path):
    res = CliRunner().invoke(main, ["sweep", "--out", str(tmp_path), "--quick"])
    assert res.exit_code == 0, res.output
    assert "best point within it" in res.output
