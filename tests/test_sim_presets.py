"""The paper artifact's per-machine configuration (sim.presets)."""

import dataclasses

import pandas as pd
import pytest

from focus_hw import FocusParams
from sim.presets import PAPER, PAPER_MACHINES, paper_preset, preset_table
from sim.tech import MACHINES, PAPER_TABLE_PARAMS
from sim.workload import REFERENCE_DIR


def test_every_machine_has_a_preset_with_a_source_per_field():
    assert tuple(PAPER_MACHINES) == MACHINES
    table = preset_table()
    assert set(table.machine) == set(MACHINES)
    assert (table.source.str.len() > 20).all()
    base = FocusParams(threshold=0.7)
    for machine in MACHINES:
        p = paper_preset(machine, base)
        changed = {
            f.name
            for f in dataclasses.fields(FocusParams)
            if getattr(p, f.name) != getattr(base, f.name)
        }
        listed = table[table.machine == machine].set_index("field").value
        assert changed <= set(listed.index)
        assert all(getattr(p, k) == v for k, v in listed.items())
        assert p.threshold == 0.7  # the base's other fields are kept


def test_focus_preset_buffers_total_the_artifacts():
    # accelerator_area_power_buffer.csv lists Focus's buffers as 734 KB
    ref = pd.read_csv(REFERENCE_DIR / "simulator" / "accelerator_area_power_buffer.csv")
    kb = float(ref.set_index("Accelerator").loc["focus", "Buffer Size"])
    ours = sum(paper_preset("focus").buffer_bytes.values()) / 1024
    assert ours == pytest.approx(kb, rel=0.01)


def test_paper_point_is_the_focus_preset():
    assert PAPER_TABLE_PARAMS == paper_preset("focus")
    assert PAPER_TABLE_PARAMS.num_scatter == PAPER["num_scatter"][0] == 2


def test_unknown_machine_is_named():
    with pytest.raises(ValueError, match="'tpu'.*dense"):
        paper_preset("tpu")
