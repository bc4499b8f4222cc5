"""SRAM fit, technology tables and the SCALE-Sim cross-check."""

import json

import pandas as pd
import pytest

from focus_hw import FocusParams
from sim import sram
from sim.dse import area_mm2, remaining_factor
from sim.tech import PAPER_TABLE_PARAMS, PaperTech, TechError, YosysTech
from sim.workload import REFERENCE_DIR

SIM = REFERENCE_DIR / "simulator"


def test_sram_fit_reproduces_compiler_points():
    err = sram.fit_errors().set_index("macro")
    assert err.area.abs().max() <= 0.14
    assert err.read.abs().max() <= 0.16
    assert err.write.abs().max() <= 0.17
    assert err.leak.abs().max() <= 0.50
    # the 1024x128 macro the big buffers use is reproduced within 6%
    assert err.loc["1024x128"].abs().max() <= 0.06


def test_input_buffer_matches_paper_breakdown():
    # 128 KB input buffer = 8 macros of 1024 x 128 bits; paper: 0.2208 mm^2
    b = sram.buffer(FocusParams().buffer_bytes["input"])
    assert (b.macros, b.macro.words, b.macro.width) == (8, 1024, 128)
    bd = pd.read_csv(SIM / "detailed_power_area_breakdown.csv").set_index("component")
    assert b.area_mm2 == pytest.approx(bd.loc["input", "area"], rel=0.02)
    # read energy per access = current (uA/MHz) x volts: 9.3 x 0.81 pJ within the fit error
    assert b.macro.read_pj == pytest.approx(9.3 * 0.81, rel=0.02)


def test_paper_tech_core_power():
    t, p = PaperTech(), PAPER_TABLE_PARAMS
    bd = pd.read_csv(SIM / "detailed_power_area_breakdown.csv").set_index("component")
    logic = bd.drop(index=[c for c in bd.index if c in p.buffer_bytes or c in ("wgt", "dram")])
    assert t.core_power_mw("focus", p) == pytest.approx(logic.power.sum(), rel=1e-6)
    main = pd.read_csv(SIM / "main_dense.csv")
    assert t.core_power_mw("dense", p) == pytest.approx(
        (main.core_energy / main.execution_time).median(), rel=1e-3
    )
    # the array scales with rows x cols, the SIC accumulators with num_scatter
    big = p.replace(rows=64, cols=64)
    assert t.core_power_mw("dense", big) - t.core_power_mw("dense", p) == pytest.approx(
        3 * 324.3681
    )
    more = p.replace(num_scatter=4)
    assert t.core_power_mw("focus", more) - t.core_power_mw("focus", p) == pytest.approx(2 * 0.7739)


def test_yosys_tech(tmp_path):
    rep = tmp_path / "stat.json"
    rep.write_text(json.dumps({"design": {"num_cells": 10, "estimated_num_transistors": 10**6}}))
    t = YosysTech({"focus": rep}, node="28nm")
    p = FocusParams()
    assert t.logic_area_mm2("focus", p) == pytest.approx(10**6 * 0.18e-6)
    assert t.core_power_mw("focus", p) == pytest.approx(10**6 * 20.0 * 0.5 * 1e-6)
    assert t.core_power_mw("dense", p) == PaperTech().core_power_mw("dense", p)
    with pytest.raises(TechError, match="estimated_num_transistors"):
        YosysTech({"focus": {"design": {"num_cells": 3}}})
    with pytest.raises(TechError, match="node"):
        YosysTech({}, node="3nm")


def test_yosys_tech_from_breakdown():
    rows = [
        {"unit": "", "instances": 1, "cells": 5, "transistors": 100},
        {"unit": "array", "instances": 1, "cells": 5, "transistors": 1_000},
        {"unit": "array.pe", "instances": 4, "cells": 50, "transistors": 40_000},
        {"unit": "sic.dot", "instances": 1, "cells": 9, "transistors": 3_000},
        {"unit": "scatter.add", "instances": 8, "cells": 9, "transistors": 2_000},
        {"unit": "sec", "instances": 1, "cells": 1, "transistors": 70},
    ]
    t = YosysTech.from_breakdown(rows)
    assert t.transistors == {"dense": 41_000, "focus_sec": 41_170, "focus": 46_170}
    p = FocusParams()
    assert t.core_power_mw("cmc", p) == PaperTech().core_power_mw("cmc", p)
    with pytest.raises(TechError, match="breakdown rows"):
        YosysTech.from_breakdown([{"unit": "sic"}])


def test_dse_factors_and_area():
    p = FocusParams()
    assert remaining_factor(p) == 1.0
    a = pd.read_csv(SIM / "dse_a_m_tile_size.csv").set_index("m_tile_size")
    assert remaining_factor(p.replace(m_tile=2048)) == pytest.approx(
        a.num_ops[2048] / a.num_ops[1024]
    )
    assert area_mm2(p.replace(m_tile=2048)) > area_mm2(p)


@pytest.mark.parametrize("rows,cols", [(32, 32), (8, 16)])
def test_scalesim_folds_differ_by_the_weight_preload(rows, cols):
    from sim.scalesim_check import compare

    df = compare(
        FocusParams(rows=rows, cols=cols), shapes=((40, rows, cols), (100, 3 * rows, 2 * cols + 1))
    )
    # SCALE-Sim loads each fold's weights before streaming (rows - 1 more cycles)
    assert (df.per_fold_diff == -(rows - 1)).all()


def test_ratio_table_energy_columns_by_hand():
    from sim.reproduce import speedup_table

    # one workload, hand-made times/energies: best baseline = the lower of cmc, adaptiv
    acc = ["dense", "adaptiv", "cmc", "focus"]
    df = pd.DataFrame(
        {
            "model": "m",
            "dataset": "d",
            "accelerator": acc,
            "time_s": [10.0, 5.0, 4.0, 2.0],
            "paper_time_s": [10.0, 4.0, 5.0, 2.5],
            "energy_mj": [100.0, 60.0, 50.0, 20.0],
            "paper_energy_mj": [90.0, 40.0, 45.0, 15.0],
        }
    )
    r = speedup_table(df).iloc[0]
    assert r.energy_vs_dense_ours == pytest.approx(5.0)
    assert r.energy_vs_best_ours == pytest.approx(2.5)  # cmc 50 / 20
    assert r.energy_vs_dense_paper == pytest.approx(6.0)
    assert r.energy_vs_best_paper == pytest.approx(40 / 15)  # adaptiv
    assert r.err_energy_vs_best == pytest.approx(2.5 / (40 / 15) - 1)
    assert r.vs_best_ours == pytest.approx(2.0) and r.vs_best_paper == pytest.approx(1.6)
    assert r.err_vs_dense == pytest.approx(5.0 / 4.0 - 1)
