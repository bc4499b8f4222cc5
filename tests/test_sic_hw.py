"""The SIC hardware: hand cases, the numpy model against the fp32 reference and
against the RTL (bit for bit, with backpressure), cycles against the closed form."""

import math

import ml_dtypes
import numpy as np
import pytest
import torch

from focus_algo import similarity_concentrate
from focus_algo.golden import sic_golden
from focus_hw import FocusParams, sic_cycles, simulate_sic
from focus_hw.sic.model import sic_model
from focus_hw.timing import (
    sic_mean_cycles,
    sic_mean_lanes,
    sic_run_cycles,
    sic_update_cycles,
    sic_update_lanes,
    sic_vector_cycles,
)

SMALL = dict(vector_size=4, sic_lanes=2, m_tile=16, max_frame_tokens=16, max_tokens=64)
TYPES = {"fp16": np.float16, "bf16": ml_dtypes.bfloat16}


def params(**changes) -> FocusParams:
    return FocusParams(**{**SMALL, **changes})


def both(x, grid, p, **kw):
    """The model and the RTL on the same input; asserts they are bit-equal."""
    model = sic_model(x, grid, p)
    rtl = simulate_sic(x, grid, p, **kw)
    for name in ("zero", "similar", "root"):
        np.testing.assert_array_equal(getattr(rtl, name), getattr(model, name), err_msg=name)
    np.testing.assert_array_equal(rtl.tokens.view(np.uint16), model.tokens.view(np.uint16))
    return model, rtl


def reference(x, grid, p):
    t = torch.from_numpy(x.astype(np.float32)).to(
        getattr(torch, "float16" if x.dtype == np.float16 else "bfloat16")
    )
    return similarity_concentrate(t, grid, p)


def rng_tokens(rng, n, d, dtype=np.float16):
    return (rng.standard_normal((n, d)) * 2.0).astype(dtype)


# -- hand cases: model and RTL against hand-worked expectations -------------------


def test_copies_of_left_upper_and_previous_frame():
    p = params()
    rng = np.random.default_rng(1)
    grid = (2, 2, 3)  # frames, rows, cols: token = f*6 + r*3 + c
    x = rng_tokens(rng, 12, 4)
    x[1] = x[0]  # left neighbour of token 1
    x[5] = x[2]  # token 5 = (0,1,2): upper neighbour is token 2
    x[10] = x[4]  # token 10 = (1,1,1): same place one frame back
    model, _ = both(x, grid, p)
    want = {1: 0, 5: 2, 10: 4}
    for t in range(12):
        assert model.similar[t, 0] == (t in want), t
        assert model.root[t, 0] == want.get(t, t)
    # Copies average to themselves: 2x * fp32(1/2) is exact.
    np.testing.assert_array_equal(model.tokens, x)


def test_chain_of_similar_vectors_takes_the_first_root_and_the_mean():
    p = params(threshold=0.9)
    grid = (1, 1, 4)
    x = np.array(
        [[1, 1, 1, 1], [1, 1, 1, 1.25], [1, 1, 1.25, 1.25], [1, 1.25, 1.25, 1.25]], np.float16
    )
    model, _ = both(x, grid, p)
    assert model.similar[:, 0].tolist() == [False, True, True, True]
    assert model.root[:, 0].tolist() == [0, 0, 0, 0]
    # sum = (4, 4.25, 4.5, 4.75) in fp32 (exact), times fp32(1/4) = 0.25 (exact).
    np.testing.assert_array_equal(model.tokens, np.tile([1, 1.0625, 1.125, 1.1875], (4, 1)))


def test_m_tile_boundary_separates_candidates():
    p = params(m_tile=2)
    grid = (1, 1, 4)
    x = np.tile(np.array([1, 2, 3, 4], np.float16), (4, 1))
    model, _ = both(x, grid, p)
    # tiles {0, 1} and {2, 3}: token 2 may not point to token 1
    assert model.similar[:, 0].tolist() == [False, True, False, True]
    assert model.root[:, 0].tolist() == [0, 0, 2, 2]
    assert model.cycles == sic_run_cycles([2, 2], p)


def test_zero_vectors_and_whole_zero_tokens():
    p = params(m_tile=2)
    grid = (1, 1, 5)
    x = np.zeros((5, 8), np.float16)
    x[0] = 1
    x[1, :4] = -0.0  # a zero vector in a live token
    x[1, 4:] = 1  # ... whose second slot copies token 0
    x[2] = 0  # a pruned token: not fed, not counted
    x[3] = 1  # tile 1: m_tile counts live tokens only
    x[4] = 1
    model, _ = both(x, grid, p)
    # One row of 5 patches: the only candidate in reach is the left neighbour.
    # Token 3's is pruned (never a candidate); token 4 copies token 3.
    assert model.zero.tolist() == [[0, 0], [1, 0], [1, 1], [0, 0], [0, 0]]
    assert model.similar.tolist() == [[0, 0], [0, 1], [0, 0], [0, 0], [1, 1]]
    assert model.root.tolist() == [[0, 0], [1, 0], [2, 2], [3, 3], [3, 3]]
    assert np.array_equal(model.tokens.view(np.uint16), x.view(np.uint16))
    assert model.cycles == sic_run_cycles([2] * 4, p)


@pytest.mark.parametrize("threshold, similar", [(0.5, False), (0.4999, True)])
def test_score_exactly_at_the_threshold_is_not_similar(threshold, similar):
    # cos([1,1,1,1], [1,0,0,0]) = 1/2 exactly: d^2 = 1 == T2 * n2_x * n2_c = 0.25 * 1 * 4.
    p = params(threshold=threshold)
    x = np.array([[1, 1, 1, 1], [1, 0, 0, 0]], np.float16)
    model, _ = both(x, (1, 1, 2), p)
    assert model.similar[1, 0] == similar
    assert reference(x, (1, 1, 2), p).similar[1, 0].item() == similar


def test_features_not_a_multiple_of_the_vector_size():
    p = params()
    rng = np.random.default_rng(2)
    x = rng_tokens(rng, 6, 6)  # slot 1 holds 2 features + 2 zero pads
    x[3, 4:] = x[0, 4:] * 3  # parallel: cosine 1
    model, _ = both(x, (1, 2, 3), p)
    assert model.similar[3].tolist() == [False, True] and model.root[3, 1] == 0
    assert model.tokens.shape == (6, 6)


@pytest.mark.parametrize("wrap", [True, False])
def test_block_wrap_modes(wrap):
    p = params(block_wrap=wrap, block_frames=1)
    grid = (1, 2, 3)
    rng = np.random.default_rng(3)
    x = rng_tokens(rng, 6, 4)
    x[3] = x[2]  # token 3 = (row 1, col 0); token 2 ends row 0
    model, _ = both(x, grid, p)
    assert model.similar[3, 0] == wrap
    assert model.root[3, 0] == (2 if wrap else 3)


# -- numpy model against the fp32 reference ----------------------------------------


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@pytest.mark.parametrize("wrap", [True, False])
def test_model_equals_reference_on_planted_tiles(dtype, wrap):
    p = FocusParams(dtype=dtype, vector_size=8, sic_lanes=4, m_tile=20, block_wrap=wrap)
    for seed in range(3):
        g = sic_golden(p, grid=(3, 4, 5), seed=seed)
        x = g["x"].view(np.uint16).view(TYPES[dtype])
        model = sic_model(x, (3, 4, 5), p)
        np.testing.assert_array_equal(model.zero, g["zero"].astype(bool))
        np.testing.assert_array_equal(model.similar, g["similar"].astype(bool))
        np.testing.assert_array_equal(model.root, g["root"])
        # Means differ from the fp32 reference by the order of the sum and the
        # reciprocal multiply: at most one rounding of the operand format.
        ref = g["tokens"].view(TYPES[dtype]).astype(np.float32)
        got = model.tokens.astype(np.float32)
        ulp = np.abs(np.spacing(ref.astype(TYPES[dtype])).astype(np.float32))
        assert np.all(np.abs(got - ref) <= ulp)


def test_model_decisions_follow_the_reference_away_from_the_bound():
    """Random tiles: wherever the reference's best score is farther than
    DECISION_BOUND from the threshold and from the runner-up, the model decides
    the same (the similar flags; roots then follow)."""
    from focus_hw.sic.model import DECISION_BOUND

    p = FocusParams(vector_size=8, sic_lanes=2, m_tile=64, threshold=0.3)
    rng = np.random.default_rng(4)
    grid = (3, 4, 4)
    base = rng.standard_normal((48, 16))
    x = (base + 0.8 * np.roll(base, 1, axis=0)).astype(np.float16)
    model = sic_model(x, grid, p)
    ref = reference(x, grid, p)
    xf = x.astype(np.float32).reshape(48, 2, 8)
    norm = np.linalg.norm(xf, axis=2)
    scores = []
    for s in [df * 16 + dh * 4 + dw for df, dh, dw in p.block_offsets]:
        cos = np.full((48, 2), -np.inf)
        cos[s:] = (xf[s:] * xf[: 48 - s]).sum(2) / (norm[s:] * norm[: 48 - s])
        scores.append(cos)
    scores = np.sort(np.stack(scores), axis=0)
    best, runner = scores[-1], scores[-2]
    with np.errstate(invalid="ignore"):
        clear = (np.abs(best - p.threshold) > DECISION_BOUND) & ~(best - runner <= DECISION_BOUND)
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(model.similar[clear], ref.similar.numpy()[clear])


# -- RTL against the numpy model ----------------------------------------------------


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_rtl_equals_model_with_backpressure_and_bubbles(dtype):
    p = params(dtype=dtype, m_tile=6)
    rng = np.random.default_rng(5)
    grid = (2, 2, 2)
    x = rng_tokens(rng, 8, 7, TYPES[dtype])
    x[3] = x[2] * 2
    x[5, :4] = x[1, :4]
    x[6] = 0
    both(x, grid, p, out_ready=0.6, in_valid=0.7, seed=11)


@pytest.mark.parametrize("lanes, pipeline", [(1, 0), (4, 1), (2, 3)])
def test_cycles_equal_the_closed_form(lanes, pipeline):
    """Passes of 4, 4, 2 and 2 vectors (two M tiles of two slots) overlap:
    each output phase runs while the next pass is taken, a pass waits for
    its bank, and the run is shorter than the passes one after another."""
    p = params(sic_lanes=lanes, sic_pipeline=pipeline, m_tile=4)
    rng = np.random.default_rng(6)
    x = rng_tokens(rng, 6, 8)
    x[4] = x[1]
    model, rtl = both(x, (1, 2, 3), p)
    passes = [4, 4, 2, 2]
    assert rtl.cycles == model.cycles == sic_run_cycles(passes, p)
    assert model.cycles < sum(sic_cycles(n, p) for n in passes)
    assert sic_run_cycles([4], p) == sic_cycles(4, p)


@pytest.mark.parametrize(
    "block, pipeline, lanes",
    [((1, 1, 2), 0, 2), ((1, 1, 1), 0, 4), ((1, 1, 2), 1, 1)],
)
def test_group_sums_take_as_many_adders_as_keep_up(block, pipeline, lanes):
    """With one element per cycle the update would outlast a short vector
    period: more adders, each writing its part of a sum word; likewise more
    multipliers for the means (1x1x1: two, each reading its part of a sum
    word). The means hold (pipelined or not) while ``out`` is not ready."""
    f, h, w = block
    p = params(
        vector_size=8,
        sic_lanes=8,
        block_frames=f,
        block_height=h,
        block_width=w,
        sic_pipeline=pipeline,
        m_tile=4,
    )
    assert sic_update_lanes(p) == lanes
    assert sic_update_cycles(p) <= sic_vector_cycles(p)
    assert sic_mean_lanes(p) == (2 if block == (1, 1, 1) else 1)
    assert sic_mean_cycles(p) <= sic_vector_cycles(p)
    rng = np.random.default_rng(7)
    x = rng_tokens(rng, 6, 8)
    x[2], x[5] = x[1], x[4] * 2
    model, rtl = both(x, (1, 2, 3), p)
    assert rtl.cycles == model.cycles == sic_run_cycles([4, 2], p)
    assert model.similar.any() == (block != (1, 1, 1))
    both(x, (1, 2, 3), p, out_ready=0.5, in_valid=0.8, seed=3)


@pytest.mark.parametrize("lanes, mean_lanes", [(1, 1), (8, 1), (16, 2), (32, 4)])
def test_mean_lanes_are_the_fewest_that_keep_up(lanes, mean_lanes):
    """The means of a pass come at least as fast as the next pass's vectors
    go in, with the fewest multipliers (a power of two)."""
    p = FocusParams(sic_lanes=lanes)
    assert sic_mean_lanes(p) == mean_lanes
    assert sic_mean_cycles(p) <= sic_vector_cycles(p)
    assert mean_lanes == 1 or 2 * sic_mean_cycles(p) > sic_vector_cycles(p)


def test_threshold_infinity_never_merges():
    p = params(threshold=math.inf)
    x = np.ones((4, 4), np.float16)
    model, _ = both(x, (1, 2, 2), p)
    assert not model.similar.any()


# -- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x, grid, p, match",
    [
        (np.ones((6, 4), np.float16), (1, 2, 2), params(), "grid"),
        (np.ones((32, 4), np.float16), (1, 4, 8), params(), "max_frame_tokens"),
        (np.ones((6, 4), np.float32), (1, 2, 3), params(), "dtype"),
        (np.ones((6, 0), np.float16), (1, 2, 3), params(), "D=0"),
        (np.ones((6, 4), np.int8), (1, 2, 3), params(dtype="int8"), "float operand"),
        (np.ones((6, 4), np.float16), (1, 2), params(), "three integers"),
        (
            np.ones((16, 16), np.float16),
            (1, 1, 16),
            params(max_frame_tokens=16, block_height=2),
            "similarity table",
        ),
    ],
)
def test_bad_input_is_named(x, grid, p, match):
    with pytest.raises(ValueError, match=match):
        simulate_sic(x, grid, p)
    with pytest.raises(ValueError, match=match):
        sic_model(x, grid, p)
