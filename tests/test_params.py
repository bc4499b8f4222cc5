"""FocusParams: validation names the field, serialisation round-trips."""

import dataclasses
import json
import math

import pytest

from focus_hw import FocusParams


def test_paper_defaults():
    p = FocusParams()
    assert (p.rows, p.cols, p.dtype, p.vector_size) == (32, 32, "fp16", 32)
    assert p.block == (2, 2, 2) and p.threshold == 0.9 and p.m_tile == 1024
    assert p.clock_mhz == 500.0
    # Wide output tiles (3 x 32 columns), 3 scatter lanes, a ring of 4 blocks.
    assert (p.out_vectors, p.num_scatter, p.ring_blocks) == (3, 3, 4)
    assert p.buffer_bytes["output"] == 2 * 1024 * 96 * 4
    assert p.buffer_bytes["concentrate_out"] == 4 * 1024 * 32 * 4
    # Input buffer: 1024 tokens x 32 elements x 2 B, double-buffered = 128 KiB.
    assert p.buffer_bytes["input"] == 2 * 1024 * 32 * 2
    assert p.dram_bytes_per_cycle == pytest.approx(64e9 / 500e6)


@pytest.mark.parametrize(
    "field, value",
    [
        ("rows", 0),
        ("cols", -1),
        ("rows", 2.0),
        ("m_tile", 0),
        ("num_scatter", 0),
        ("block_frames", 0),
        ("mac_pipeline", -1),
        ("scatter_pipeline", -1),
        ("scatter_pipeline", 1.0),
        ("dtype", "fp8"),
        ("acc_format", "fp32"),
        ("acc_format", None),
        ("vector_size", 0),
        ("vector_size", 24),
        ("vector_size", True),
        ("threshold", -1.0),
        ("threshold", 1.5),
        ("threshold", math.nan),
        ("sec_layers", (5, 3)),
        ("sec_layers", (1, 1)),
        ("sec_keep", (0.5,)),
        ("clock_mhz", 0),
        ("dram_bandwidth_gbs", math.inf),
        ("dram_pj_per_byte", -1),
        ("block_wrap", 1),
    ],
)
def test_impossible_value_names_field(field, value):
    with pytest.raises(ValueError, match=rf"FocusParams\.{field}="):
        FocusParams(**{field: value})


def test_acc_format():
    assert FocusParams().acc_format == "wide"
    assert FocusParams(dtype="bf16", acc_format="operand").acc_bits == 16
    assert FocusParams(dtype="int8", acc_format="wide").acc_bits == 32
    with pytest.raises(ValueError, match=r"FocusParams\.acc_format='operand': .*float.*'int8'"):
        FocusParams(dtype="int8", acc_format="operand")
    with pytest.raises(ValueError, match=r"FocusParams\.acc_format='fp16': must be one of"):
        FocusParams(acc_format="fp16")


def test_sec_schedule_rules():
    with pytest.raises(ValueError, match="sec_keep"):
        FocusParams(sec_layers=(1, 2), sec_keep=(0.2, 0.4))  # would un-prune
    with pytest.raises(ValueError, match="sec_keep"):
        FocusParams(sec_layers=(1,), sec_keep=(0.0,))
    assert FocusParams(sec_layers=(), sec_keep=()).sec_layers == ()


def test_threshold_edges():
    assert FocusParams(threshold=1.0).threshold == 1.0
    assert FocusParams(threshold=math.inf).threshold == math.inf
    assert FocusParams(threshold=-0.999).threshold == -0.999


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        FocusParams().rows = 4


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_round_trip(tmp_path, suffix):
    p = FocusParams(
        rows=8,
        cols=16,
        dtype="int8",
        threshold=0.85,
        sec_layers=(3, 9),
        sec_keep=(0.5, 0.25),
        block_wrap=False,
    )
    path = tmp_path / f"p{suffix}"
    p.save(path)
    q = FocusParams.load(path)
    assert q == p and q.digest() == p.digest()
    assert not list(tmp_path.glob(".*"))  # no temp file left behind


def test_from_dict_rejects_unknown_and_invalid():
    with pytest.raises(ValueError, match="unknown field.*bogus"):
        FocusParams.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match=r"FocusParams\.rows"):
        FocusParams.from_json(json.dumps({"rows": 0}))


def test_digest_distinguishes_points():
    assert FocusParams().digest() != FocusParams(rows=16).digest()
    assert FocusParams().digest() == FocusParams().digest()
