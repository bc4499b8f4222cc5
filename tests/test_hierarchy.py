"""The array as a shell around one Verilog module per PE class behaves exactly
like the flat design: PE classes, one elaboration per class, a Yosys
equivalence proof of flat vs hierarchical Verilog, and the same Icarus bench
on both (the harness of ``test_crosssim``)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from amaranth.back import verilog

import focus_hw.pe
from focus_hw import FocusParams
from focus_hw.generate import Manifest, generate, modules_rtlil, modules_verilog
from focus_hw.pe import PE
from focus_hw.systolic import SystolicArray, pe_classes, pe_config, psum_bits
from synth.yosys import YosysError, run_yosys
from test_crosssim import _run_iverilog, array_case, read_array_out, write_array_bench
from tools import require

TOP = "focus_array"


def _flat_verilog(params: FocusParams) -> str:
    return verilog.convert(SystolicArray(params), name=TOP, emit_src=False)


# -- PE classes -------------------------------------------------------------------------


def test_pe_classes_follow_rows_and_edges():
    """fp16: first row / other rows x last column / other columns; int8 also
    splits rows by partial-sum widths (psum_bits: 16, 17, 17, 18, 18, 18, 18, 19)."""
    assert pe_classes(FocusParams(rows=3, cols=4, dtype="fp16")) == [
        [0, 0, 0, 1],
        [2, 2, 2, 3],
        [2, 2, 2, 3],
    ]
    int8 = FocusParams(rows=8, cols=2, dtype="int8")
    assert [psum_bits(int8, k) for k in range(8)] == [16, 17, 17, 18, 18, 18, 18, 19]
    # (in, out) widths per row: (16,16) (16,17) (17,17) (17,18) (18,18) x3 (18,19)
    assert pe_classes(int8) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [8, 9], [8, 9], [10, 11]]
    assert pe_classes(FocusParams(rows=1, cols=1, dtype="fp16")) == [[0]]


def test_shell_instantiates_one_module_per_class():
    params = FocusParams(rows=3, cols=4, dtype="fp16")
    flat = SystolicArray(params)
    assert flat.instanced_modules() == {}
    shell = SystolicArray(params, pe_modules="x.pe")
    modules = shell.instanced_modules()
    assert list(modules) == [f"x.pe_{i}" for i in range(4)]
    edges = [(pe.first_row, pe.last_col) for pe in modules.values()]
    assert edges == [(True, False), (True, True), (False, False), (False, True)]
    assert "psum_in" not in modules["x.pe_0"].signature.members
    assert "a_out" not in modules["x.pe_1"].signature.members
    text = modules_rtlil({"x": shell, **modules, "flat": flat})
    cells = re.findall(r"^  cell \\(x\.pe_\d) ", text, re.M)
    assert [cells.count(f"x.pe_{i}") for i in range(4)] == [3, 1, 6, 2]
    assert re.findall(r"^module \\(flat\.pe_\d+_\d+)$", text, re.M) == [
        f"flat.pe_{k}_{c}" for k in range(3) for c in range(4)
    ]


def test_generate_elaborates_each_pe_class_once(tmp_path, monkeypatch):
    params = FocusParams(rows=8, cols=8, dtype="int8")
    calls = []
    elaborate = PE.elaborate
    monkeypatch.setattr(
        focus_hw.pe.PE,
        "elaborate",
        lambda self, platform: calls.append(self) or elaborate(self, platform),
    )
    manifest = generate(params, tmp_path)
    assert len(calls) == 12  # 6 row classes x (last column or not), not 64
    assert manifest.modules == [TOP] + [f"{TOP}.pe_{i}" for i in range(12)]
    assert Manifest.load(tmp_path) == manifest
    text = (tmp_path / manifest.verilog).read_text()
    defined = re.findall(r"^module \\?([^\s(]+)", text, re.M)
    assert sorted(defined) == sorted(
        name for m in manifest.modules for name in (m, f"{m}.mac") if name != f"{TOP}.mac"
    )
    instances = re.findall(r"^  \\(focus_array\.pe_\d+)\s+pe_(\d+)_(\d+) \(", text, re.M)
    classes = pe_classes(params)
    assert sorted((int(k), int(c), m) for m, k, c in instances) == sorted(
        (k, c, f"{TOP}.pe_{classes[k][c]}") for k in range(8) for c in range(8)
    )
    assert len(re.findall(r"^\(\* top = ", text, re.M)) == 1


# -- Yosys equivalence: flat vs hierarchical Verilog -----------------------------------


def _equiv(workdir, gold: str, gate: str) -> str:
    """Prove the two Verilog texts' ``focus_array`` equivalent (raises
    YosysError otherwise). Both are flattened; ``opt_merge`` then merges
    identical cells of the two (structural hashing), which proves most
    ``$equiv`` cells outright; ``equiv_simple``/``equiv_induct`` (SAT) must
    prove the rest."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "gold.v").write_text(gold)
    (workdir / "gate.v").write_text(gate)
    cmds = []
    for side in ("gold", "gate"):
        cmds += [
            f"read_verilog {side}.v",
            f"hierarchy -check -top {TOP}",
            "proc",
            "flatten",
            f"rename {TOP} {side}",
            f"design -stash {side}",
        ]
    cmds += [
        "design -copy-from gold -as gold gold",
        "design -copy-from gate -as gate gate",
        "opt_clean",
        "equiv_make gold gate equiv",
        "hierarchy -top equiv",
        "opt_merge",
        "opt_clean",
        "equiv_simple",
        "equiv_induct",
        "equiv_status -assert",
    ]
    return run_yosys(cmds, workdir, log="equiv.log", timeout=600).read_text()


@pytest.mark.parametrize(
    "size,dtype",
    [(2, "int8"), (4, "int8"), (4, "fp16"), pytest.param(8, "fp16", marks=pytest.mark.slow)],
)
def test_hierarchical_verilog_is_equivalent_to_flat(tmp_path, size, dtype):
    params = FocusParams(rows=size, cols=size, dtype=dtype, mac_pipeline=1)
    manifest = generate(params, tmp_path / "hier")
    log = _equiv(
        tmp_path / "equiv",
        _flat_verilog(params),
        (tmp_path / "hier" / manifest.verilog).read_text(),
    )
    found = re.search(
        r"Found (\d+) \$equiv cells in equiv:\s+Of those cells (\d+) are proven "
        r"and 0 are unproven",
        log,
    )
    assert found and int(found[1]) == int(found[2]) > 0, log[-2000:]
    assert "Equivalence successfully proven!" in log


def test_equivalence_check_finds_a_difference(tmp_path):
    """One PE class built with one more MAC pipeline stage (same ports): the
    check must fail."""
    params = FocusParams(rows=1, cols=2, dtype="int8")
    modules = {TOP: SystolicArray(params, pe_modules=f"{TOP}.pe")}
    for c, pipeline in enumerate((params.mac_pipeline, params.mac_pipeline + 1)):
        modules[f"{TOP}.pe_{c}"] = PE("int8", pipeline, **pe_config(params, 0, c))
    with pytest.raises(YosysError, match="unproven"):
        _equiv(tmp_path, _flat_verilog(params), modules_verilog(modules))


# -- Icarus: the same bench on flat and hierarchical Verilog ---------------------------


@pytest.mark.parametrize("dtype", ["int8", "fp16"])
def test_flat_and_hierarchical_verilog_simulate_alike(tmp_path, dtype):
    """4x4 with output backpressure: equal outputs and cycle counts, and
    (int8) equal to the exact integer product."""
    require("iverilog", "vvp")
    params = FocusParams(rows=4, cols=4, dtype=dtype, mac_pipeline=1)
    a, w, ready = array_case(params)
    manifest, tb = write_array_bench(tmp_path, params, a, w, ready)
    runs = {}
    for name, design in (("hier", manifest.verilog), ("flat", "flat.v")):
        if name == "flat":
            (tmp_path / design).write_text(_flat_verilog(params))
        _run_iverilog(tmp_path, tb, design)
        runs[name] = read_array_out(tmp_path, params, a.shape[0], w.shape[1])
    np.testing.assert_array_equal(runs["hier"][0], runs["flat"][0])
    assert runs["hier"][1] == runs["flat"][1] > a.shape[0]
    if dtype == "int8":
        np.testing.assert_array_equal(
            runs["hier"][0].view(np.int32), a.astype(np.int32) @ w.astype(np.int32)
        )
