"""SIC kernel: hand-computed cases, a loop reference, and properties."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import focus_algo.sic as sic_module
from focus_algo.sic import block_offsets, similarity_concentrate
from focus_hw.params import FocusParams

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def run(rows, grid, **fields):
    x = torch.tensor(np.asarray(rows), dtype=fields.pop("dtype", torch.float32))
    return similarity_concentrate(x, grid, FocusParams(**fields))


def bits(t):
    """Raw bit patterns (bit-identity, -0.0 != 0.0)."""
    return t.view(torch.int32 if t.dtype == torch.float32 else torch.int16)


def col(mask):
    """First vector slot of a (T, V) result as a python list."""
    return mask[:, 0].tolist()


# -- independent reference: plain loops over t, j and candidates ---------------


def reference_sic(x, grid, p):
    """SIC by the letter of docs/method.rst, "SIC". ``x`` is a (T, D) float32 numpy array holding
    the input values; returns (zero, similar, root, group means in fp32)."""
    frames, height, width = grid
    n, d = x.shape
    vs = p.vector_size
    nv = math.ceil(d / vs)
    vec = np.zeros((n, nv * vs), np.float32)
    vec[:, :d] = x
    vec = vec.reshape(n, nv, vs)
    zero = ~(vec != 0).any(axis=2)
    tile, seen = {}, 0
    for t in range(n):
        if (x[t] != 0).any():
            tile[t] = seen // p.m_tile
            seen += 1
    ptr = np.tile(np.arange(n)[:, None], (1, nv))
    similar = np.zeros((n, nv), bool)
    thr = np.float32(p.threshold)
    for t in range(n):
        f, r, c = t // (height * width), (t // width) % height, t % width
        for j in range(nv):
            if zero[t, j]:
                continue
            best, best_cand = -np.inf, None
            for df in range(p.block_frames):
                for dh in range(p.block_height):
                    for dw in range(p.block_width):
                        if (df, dh, dw) == (0, 0, 0):
                            continue
                        if not p.block_wrap and (f < df or r < dh or c < dw):
                            continue
                        cand = t - df * height * width - dh * width - dw
                        if cand < 0 or zero[cand, j] or tile[cand] != tile[t]:
                            continue
                        a, b = vec[t, j], vec[cand, j]
                        den = np.float32(np.linalg.norm(a)) * np.float32(np.linalg.norm(b))
                        score = np.float32(np.dot(a, b)) / den if den > 0 else np.float32(0)
                        score = min(max(score, np.float32(-1)), np.float32(1))
                        if score > best:
                            best, best_cand = score, cand
            if best_cand is not None and best > thr:
                similar[t, j] = True
                ptr[t, j] = best_cand
    root = ptr.copy()
    for t in range(n):
        for j in range(nv):
            while root[t, j] != ptr[root[t, j], j]:
                root[t, j] = ptr[root[t, j], j]
    mean = vec.copy()
    for j in range(nv):
        for g in np.unique(root[:, j]):
            members = np.flatnonzero(root[:, j] == g)
            total = np.zeros(vs, np.float32)
            for m in members:
                total += vec[m, j]
            mean[members, j] = total / np.float32(len(members))
    return zero, similar, root, mean.reshape(n, -1)[:, :d]


def planted(grid, d, vs, seed, noise=0.05):
    """Random tokens where many vectors copy an earlier window vector
    (exactly or with noise), some vectors and tokens are zero."""
    rng = np.random.default_rng(seed)
    frames, height, width = grid
    n = frames * height * width
    x = rng.standard_normal((n, d)).astype(np.float32)
    shifts = [1, width, width + 1, height * width, height * width + 1]
    for t in range(n):
        for f0 in range(0, d, vs):
            k = rng.random()
            s = shifts[rng.integers(len(shifts))]
            if k < 0.5 and t - s >= 0:
                x[t, f0 : f0 + vs] = x[t - s, f0 : f0 + vs]
                if k < 0.25:
                    x[t, f0 : f0 + vs] += noise * rng.standard_normal(len(x[t, f0 : f0 + vs]))
            elif k < 0.6:
                x[t, f0 : f0 + vs] = 0
        if rng.random() < 0.1:
            x[t] = 0
    return x


def check_against_reference(x, grid, p):
    """Kernel == loop reference on torch input ``x`` (any float dtype)."""
    zero, similar, root, mean = reference_sic(x.float().numpy(), grid, p)
    r = similarity_concentrate(x, grid, p)
    np.testing.assert_array_equal(r.zero.numpy(), zero)
    np.testing.assert_array_equal(r.similar.numpy(), similar)
    np.testing.assert_array_equal(r.root.numpy(), root)
    expected = torch.from_numpy(mean).to(x.dtype)
    # fp32 sums of a group may be added in another order: allow one ulp.
    torch.testing.assert_close(r.tokens, expected, rtol=torch.finfo(x.dtype).eps, atol=0)
    assert r.sparsity == pytest.approx((zero.sum() + similar.sum()) / zero.size)
    return r


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("wrap", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_matches_loop_reference(dtype, wrap, seed):
    grid, d = (3, 4, 5), 19
    p = FocusParams(vector_size=4, m_tile=23, block_wrap=wrap)
    r = check_against_reference(torch.from_numpy(planted(grid, d, 4, seed)).to(dtype), grid, p)
    assert r.similar.sum() > 20  # the planted copies were found


@pytest.mark.parametrize("block", [(1, 1, 3), (3, 2, 1), (2, 3, 3)])
@pytest.mark.parametrize("wrap", [True, False])
def test_matches_loop_reference_other_blocks(block, wrap):
    grid, d = (4, 3, 2), 16
    p = FocusParams(
        vector_size=8,
        block_frames=block[0],
        block_height=block[1],
        block_width=block[2],
        threshold=0.8,
        block_wrap=wrap,
    )
    check_against_reference(torch.from_numpy(planted(grid, d, 8, 7)), grid, p)


@pytest.mark.parametrize("slots_per_chunk", [1, 2, 3])
def test_chunking_over_vector_slots(monkeypatch, slots_per_chunk):
    # 5 slots (the last one padded) processed a few slots at a time
    grid, d, vs = (3, 4, 5), 18, 4
    x = torch.from_numpy(planted(grid, d, vs, 11)).to(torch.float16)
    monkeypatch.setattr(sic_module, "_CHUNK_BYTES", 4 * 60 * vs * slots_per_chunk)
    check_against_reference(x, grid, FocusParams(vector_size=vs, m_tile=17))


# -- hand-computed cases ------------------------------------------------------


def test_equal_to_left_neighbour():
    r = run([[1, 0], [1, 0], [0, 1], [5, 5]], (1, 2, 2), vector_size=2)
    assert col(r.similar) == [False, True, False, False]  # t3: best cos 0.707
    assert col(r.root) == [0, 0, 2, 3]
    assert r.sparsity == 0.25


def test_equal_to_token_above_and_group_means():
    r = run([[1, 0], [0, 1], [1, 0], [0, 2]], (1, 2, 2), vector_size=2)
    assert col(r.similar) == [False, False, True, True]
    assert col(r.root) == [0, 1, 0, 1]
    assert r.tokens.tolist() == [[1, 0], [0, 1.5], [1, 0], [0, 1.5]]


def test_equal_to_previous_frame():
    rows = [
        [1, 0],
        [0, 1],
        [1, 1],
        [1, -1],  # frame 0
        [1, -1],
        [0, 1],
        [-1, 1],
        [1, 0],
    ]  # frame 1
    r = run(rows, (2, 2, 2), vector_size=2, block_height=1, block_width=1)
    assert col(r.similar) == [False] * 4 + [False, True, False, False]
    assert col(r.root) == [0, 1, 2, 3, 4, 1, 6, 7]


def test_chain_of_three_has_one_root_and_mean():
    rows = [[1, 0], [1, 0.1], [1, 0.2]]
    r = run(rows, (1, 1, 3), vector_size=2)
    assert col(r.similar) == [False, True, True]
    assert col(r.root) == [0, 0, 0]
    a = np.array(rows, np.float32)
    mean = (a[0] + a[1] + a[2]) / np.float32(3)
    for t in range(3):
        np.testing.assert_array_equal(r.tokens[t].numpy(), mean)


def test_column_zero_wraps_to_previous_row_by_default():
    rows = [[1, 0], [0, 1], [0, 1], [1, 1]]
    wrap = run(rows, (1, 2, 2), vector_size=2)
    assert col(wrap.similar) == [False, False, True, False]
    assert col(wrap.root) == [0, 1, 1, 3]
    nowrap = run(rows, (1, 2, 2), vector_size=2, block_wrap=False)
    assert col(nowrap.similar) == [False] * 4
    assert col(nowrap.root) == [0, 1, 2, 3]
    assert torch.equal(nowrap.tokens, torch.tensor(rows, dtype=torch.float32))


def test_no_wrap_across_frames_and_rows():
    # W=1, H=2: in wrap mode t2 reaches t1 with dw=1 (previous frame's last
    # token); without wrap only the same-position token of the previous frame.
    rows = [[1, 0], [0, 1], [0, 1], [0, 1]]
    wrap = run(rows, (2, 2, 1), vector_size=2, block_frames=2)
    assert col(wrap.root) == [0, 1, 1, 1]
    nowrap = run(rows, (2, 2, 1), vector_size=2, block_wrap=False)
    # t2 (frame 1, row 0) sees t0 only; t3 sees t2 (above), t1 (frame), t0.
    assert col(nowrap.similar) == [False, False, False, True]
    assert col(nowrap.root) == [0, 1, 2, 2]


def test_tile_boundary_counts_only_non_zero_tokens():
    rows = [[1, 0], [0, 0], [1, 0], [1, 0], [1, 0]]
    r = run(rows, (1, 1, 5), vector_size=2, block_width=3, m_tile=2)
    # non-zero tokens 0,2 | 3,4: t3 may not use t2; its other candidate t1 is zero.
    assert col(r.zero) == [False, True, False, False, False]
    assert col(r.similar) == [False, False, True, False, True]
    assert col(r.root) == [0, 1, 0, 3, 3]
    assert r.sparsity == pytest.approx(3 / 5)


def test_partly_zero_token_counts_for_tiles():
    # token 1 has a zero slot 0 but is not all-zero, so it counts: with
    # m_tile=2 the tiles are {t0, t1}, {t2} and t2 can use neither.
    rows = [[1, 0, 1, 0], [0, 0, 0, 1], [1, 0, 0, 1]]
    r = run(rows, (1, 1, 3), vector_size=2, block_width=3, m_tile=2)
    assert r.zero[:, 0].tolist() == [False, True, False]
    assert not r.similar.any()
    r = run(rows, (1, 1, 3), vector_size=2, block_width=3, m_tile=3)
    assert r.similar.tolist() == [[False, False], [False, False], [True, True]]
    assert r.root.tolist() == [[0, 0], [1, 1], [0, 1]]


def test_zero_vectors_never_similar_nor_candidates():
    rows = [[-1, 0], [0, 0], [1, 0], [0, 0]]
    r = run(rows, (1, 1, 4), vector_size=2, block_width=3, threshold=-0.5)
    # t2: zero t1 is skipped (a score of 0 would beat -0.5), t0 scores -1.
    # t3: zero, although identical to the zero t1.
    assert col(r.zero) == [False, True, False, True]
    assert col(r.similar) == [False] * 4
    assert col(r.root) == [0, 1, 2, 3]
    assert r.sparsity == 0.5


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_tiny_vectors_are_not_zero(dtype):
    # the squared norm underflows to 0 in fp32: not a zero vector, score 0
    rows = [[1e-30, 0], [1e-30, 0], [1, 0]]
    r = run(rows, (1, 1, 3), vector_size=2, threshold=-0.5, dtype=dtype)
    assert col(r.zero) == [False, False, False]
    assert col(r.similar) == [False, True, True]  # score 0 > -0.5
    assert col(r.root) == [0, 0, 0]


def test_threshold_is_strict():
    rows = [[1, 0, 0, 0], [1, 1, 1, 1]]  # cosine exactly 0.5 in fp32
    at = run(rows, (1, 1, 2), vector_size=4, threshold=0.5)
    assert not at.similar.any()
    below = run(rows, (1, 1, 2), vector_size=4, threshold=0.4999)
    assert col(below.similar) == [False, True]
    assert below.tokens.tolist() == [[1, 0.5, 0.5, 0.5]] * 2


def test_threshold_one_never_merges_identical_vectors():
    # 16 pairs of identical random tokens; a rounded fp32 cosine of a vector
    # with itself is often 1 + 2**-23, clamped to 1, which is not > 1.
    rng = np.random.default_rng(1)
    rows = np.repeat(rng.standard_normal((16, 3)).astype(np.float32), 2, axis=0)
    assert not run(rows, (1, 1, 32), vector_size=4, threshold=1.0).similar.any()
    near = run(rows, (1, 1, 32), vector_size=4, threshold=0.99999)
    assert col(near.similar) == [False, True] * 16
    assert not run(rows, (1, 1, 32), vector_size=4, threshold=math.inf).similar.any()


def test_feature_width_not_multiple_of_vector_size():
    rows = [[1, 2, 3, 4, 5], [1, 2, 3, 4.5, -5]]
    r = run(rows, (1, 1, 2), vector_size=4)
    assert r.zero.shape == (2, 2)
    assert r.similar.tolist() == [[False, False], [True, False]]
    a = np.array(rows, np.float32)
    mean = (a[0, :4] + a[1, :4]) / np.float32(2)
    np.testing.assert_array_equal(r.tokens[:, :4].numpy(), [mean, mean])
    assert r.tokens[:, 4].tolist() == [5, -5]


def test_ties_go_to_first_offset_in_order():
    # t3 = [1,1] scores 0.7071 against t1 (dh=1, dw=0) and t0 (dh=1, dw=1).
    rows = [[1, 0], [0, 1], [-1, 0], [1, 1]]
    r = run(rows, (1, 2, 2), vector_size=2, threshold=0.7)
    assert col(r.root) == [0, 1, 2, 1]
    assert block_offsets(FocusParams())[:3] == [(0, 0, 1), (0, 1, 0), (0, 1, 1)]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_group_mean_in_fp32_for_half_inputs(dtype):
    ulp = 2 * torch.finfo(dtype).eps  # spacing of the type in [2, 4)
    x = torch.tensor([[1.0, 3.0], [1.0, 3.0 + ulp], [1.0, 3.0 + ulp]], dtype=dtype)
    r = similarity_concentrate(x, (1, 1, 3), FocusParams(vector_size=2))
    assert col(r.root) == [0, 0, 0]
    v = x.float().numpy()
    mean = (v[0] + v[1] + v[2]) / np.float32(3)  # fp32 mean, then one rounding
    assert r.tokens.dtype == dtype
    assert torch.equal(r.tokens, torch.from_numpy(np.stack([mean] * 3)).to(dtype))
    # a mean computed in the half type itself would differ here
    half = (x[0] + x[1] + x[2]) / 3
    assert not torch.equal(r.tokens[0], half)


def test_heads_are_concatenated_and_split_back():
    x = torch.from_numpy(planted((2, 3, 3), 24, 8, 3)).view(18, 3, 8).permute(1, 0, 2)
    p = FocusParams(vector_size=4, threshold=0.8)
    r = similarity_concentrate(x, (2, 3, 3), p)
    flat = similarity_concentrate(x.permute(1, 0, 2).reshape(18, 24), (2, 3, 3), p)
    assert r.tokens.shape == (3, 18, 8) and r.zero.shape == (18, 6)
    assert torch.equal(r.tokens, flat.tokens.view(18, 3, 8).permute(1, 0, 2))
    assert torch.equal(r.root, flat.root) and r.similar.any()


def test_input_is_not_modified():
    x = torch.from_numpy(planted((2, 2, 2), 8, 4, 1))
    before = x.clone()
    similarity_concentrate(x, (2, 2, 2), FocusParams(vector_size=4))
    similarity_concentrate(
        x.view(8, 2, 4).permute(1, 0, 2)[:1], (2, 2, 2), FocusParams(vector_size=4)
    )
    assert torch.equal(x, before)


def test_non_contiguous_input():
    x = torch.from_numpy(planted((2, 2, 3), 12, 4, 5))
    p = FocusParams(vector_size=4)
    r = similarity_concentrate(x.t().contiguous().t(), (2, 2, 3), p)
    expected = similarity_concentrate(x, (2, 2, 3), p)
    assert torch.equal(r.tokens, expected.tokens) and torch.equal(r.root, expected.root)
    assert r.similar.any()


@pytest.mark.parametrize(
    "x, grid, match",
    [
        (torch.zeros(6, 4), (1, 2, 2), "grid"),
        (torch.zeros(6, 4), (1, 2), "grid"),
        (torch.zeros(6, 4), (0, 2, 3), "grid"),
        (torch.zeros(6), (1, 2, 3), "ndim"),
        (torch.zeros(1, 2, 6, 4), (1, 2, 3), "ndim"),
        (torch.zeros(6, 4, dtype=torch.int32), (1, 2, 3), "floating"),
        (torch.zeros(6, 0), (1, 2, 3), "features"),
    ],
)
def test_bad_input_is_rejected(x, grid, match):
    with pytest.raises(ValueError, match=match):
        similarity_concentrate(x, grid)


# -- properties ---------------------------------------------------------------


@st.composite
def cases(draw):
    grid = tuple(draw(st.integers(1, 3)) for _ in range(3))
    n = math.prod(grid)
    d = draw(st.integers(1, 9))
    values = draw(
        st.lists(st.sampled_from([-1.0, 0.0, 0.0, 1.0, 2.0, 0.5]), min_size=n * d, max_size=n * d)
    )
    params = FocusParams(
        vector_size=draw(st.sampled_from([1, 2, 4])),
        block_frames=draw(st.integers(1, 3)),
        block_height=draw(st.integers(1, 3)),
        block_width=draw(st.integers(1, 3)),
        m_tile=draw(st.integers(1, 6)),
        # no pair of small-integer vectors has an fp32 cosine within
        # rounding of these thresholds (so the loop reference agrees exactly)
        threshold=draw(st.sampled_from([0.77, 0.93, 0.99, 1.0])),
        block_wrap=draw(st.booleans()),
    )
    dtype = draw(st.sampled_from(DTYPES))
    return torch.tensor(values, dtype=dtype).view(n, d), grid, params


@settings(max_examples=150)
@given(cases())
def test_properties(case):
    x, grid, p = case
    r = similarity_concentrate(x, grid, p)
    n, nv = r.zero.shape
    t = torch.arange(n)[:, None].expand(n, nv)
    j = torch.arange(nv)[None, :].expand(n, nv)
    assert r.tokens.shape == x.shape and r.tokens.dtype == x.dtype
    assert (r.root <= t).all()
    assert torch.equal(r.similar, r.root < t)  # similar <=> points back
    assert not (r.zero & r.similar).any()
    roots = r.root[r.similar], j[r.similar]
    assert not r.similar[roots].any() and not r.zero[roots].any()
    assert torch.equal(r.root[r.root, j], r.root)  # roots are fixed points
    assert r.sparsity == (r.zero.sum() + r.similar.sum()).item() / (n * nv)
    vs = p.vector_size
    pad = torch.zeros(n, nv * vs, dtype=x.dtype)
    pad[:, : x.shape[1]] = r.tokens
    vec = pad.view(n, nv, vs)
    assert torch.equal(vec, vec[r.root, j])  # one vector per group
    size = torch.zeros(n, nv, dtype=torch.long).index_put_(
        (r.root, j), torch.ones(n, nv, dtype=torch.long), accumulate=True
    )
    alone = size[r.root, j] == 1
    orig = torch.zeros(n, nv * vs, dtype=x.dtype)
    orig[:, : x.shape[1]] = x
    assert torch.equal(bits(vec[alone]), bits(orig.view(n, nv, vs)[alone]))


@settings(max_examples=40)
@given(cases())
def test_properties_match_reference(case):
    check_against_reference(*case)


@pytest.mark.slow
@settings(max_examples=3000)
@given(cases())
def test_properties_match_reference_long(case):
    check_against_reference(*case)
