"""The packaged paper numbers are a faithful copy of the project's shared reference."""

from pathlib import Path

import pytest

from focus_algo.reference import REFERENCE_DIR

SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference"


def test_packaged_csvs_present():
    names = {p.relative_to(REFERENCE_DIR).as_posix() for p in REFERENCE_DIR.glob("*/*.csv")}
    assert {
        "algorithm/focus_config.csv",
        "algorithm/meta_data.csv",
        "simulator/main_focus.csv",
        "simulator/buffer_model_spec.csv",
    } <= names


@pytest.mark.skipif(not SHARED.is_dir(), reason="no shared/reference beside the checkout")
def test_packaged_csvs_match_shared():
    shared = sorted(p.relative_to(SHARED).as_posix() for p in SHARED.glob("*/*.csv"))
    packaged = sorted(
        p.relative_to(REFERENCE_DIR).as_posix() for p in REFERENCE_DIR.glob("*/*.csv")
    )
    assert packaged == shared
    for name in shared:
        assert (REFERENCE_DIR / name).read_bytes() == (SHARED / name).read_bytes(), name
