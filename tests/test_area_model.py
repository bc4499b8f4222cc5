"""The per-unit area model against the synthesized points it is fitted to."""

import pytest

from focus_hw import FocusParams
from sim import area_model
from sim.dse import area_mm2, yosys_tech
from synth.breakdown import focus_share


def _rows(points):
    return [{"params": p, **r} for p, rows in points.items() for r in rows]


def _by_unit(rows):
    return {r["unit"]: r for r in rows}


def test_points_file_holds_every_point():
    """area_points.csv is the synthesis of exactly area_model.POINTS (rerun
    python -m sim.area_model after changing them)."""
    assert set(area_model.synthesized()) == set(area_model.POINTS)


@pytest.mark.parametrize(
    "held_out",
    [
        FocusParams(num_scatter=4),
        FocusParams(acc_format="operand", sic_lanes=16),
        FocusParams(sic_lanes=4),
    ],
    ids=str,
)
def test_fit_predicts_a_point_it_was_not_fitted_on(held_out):
    points = area_model.synthesized()
    model = area_model.fit(_rows({p: r for p, r in points.items() if p != held_out}))
    got, want = area_model.breakdown(held_out, model), points[held_out]
    total = sum(r["cells"] for r in want)
    assert sum(r["cells"] for r in got) == pytest.approx(total, rel=0.01)
    assert focus_share(got) == pytest.approx(focus_share(want), abs=0.002)
    for unit, row in _by_unit(want).items():  # every unit within 2% of the whole
        assert abs(_by_unit(got)[unit]["cells"] - row["cells"]) <= 0.02 * total, unit


def test_counts_scale_the_units_they_size():
    p = FocusParams()
    base, half = (
        _by_unit(area_model.breakdown(p)),
        _by_unit(area_model.breakdown(p.replace(rows=16, cols=16, vector_size=16))),
    )
    assert half["array.pe"]["cells"] == pytest.approx(base["array.pe"]["cells"] / 4, abs=1)
    wider = _by_unit(area_model.breakdown(p.replace(num_scatter=4)))
    assert wider["scatter.add"]["cells"] == pytest.approx(
        base["scatter.add"]["cells"] * 4 / 3, abs=1
    )
    assert wider["sic.dot"] == base["sic.dot"]


def test_unfitted_numerics_is_a_clear_error():
    with pytest.raises(area_model.AreaModelError, match="dtype='bf16'.*python -m sim.area_model"):
        area_model.breakdown(FocusParams(dtype="bf16"))


def test_dse_area_is_the_model_priced_by_yosys_tech():
    p = FocusParams()
    rows = area_model.breakdown(p)
    tech = yosys_tech(p)
    logic = tech.logic_area_mm2("focus", p)
    assert logic == pytest.approx(sum(r["transistors"] for r in rows) * 0.18e-6)
    assert tech.logic_area_mm2("dense", p) < logic
    assert area_mm2(p) > logic  # plus the SRAM buffers
