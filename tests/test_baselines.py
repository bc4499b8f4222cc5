"""CMC / AdapTiV token-level baselines: hand-computed cases and SICResult invariants."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from focus_algo.baselines import (
    CMCThresholds,
    adaptiv_concentrate,
    baseline_threshold,
    cmc_attn_sparsity,
    cmc_concentrate,
    cmc_sparsity,
    cmc_thresholds,
    sign_similarity,
)
from focus_algo.reference import REFERENCE_DIR
from focus_hw import FocusParams

REF = REFERENCE_DIR / "algorithm"
needs_ref = pytest.mark.skipif(not REF.is_dir(), reason="paper reference CSVs not present")


def t(rows, dtype=torch.float32):
    return torch.tensor(rows, dtype=dtype)


# -- CMC ---------------------------------------------------------------------


def test_cmc_static_frame_pair_is_reused():
    frame = [[1.0, -2.0, 3.0, 0.5], [4.0, 1.0, -1.0, 2.0]]
    x = t(frame + frame)  # grid (2 frames, 1 x 2 patches)
    r = cmc_concentrate(x, (2, 1, 2), 0.4)
    assert r.root[:, 0].tolist() == [0, 1, 0, 1]
    assert r.similar[:, 0].tolist() == [False, False, True, True]
    assert not r.zero.any()
    assert r.sparsity == 0.5
    assert torch.equal(r.tokens, x)  # mean of identical tokens


def test_cmc_threshold_is_strict():
    # SAD = |3-1| = 2, sum|ref| = 4 -> relative residual exactly 0.5.
    x = t([[1, 1, 1, 1], [1, 1, 1, 3]])
    assert not cmc_concentrate(x, (2, 1, 1), 0.5).similar.any()
    r = cmc_concentrate(x, (2, 1, 1), 0.5001)
    assert r.similar[1].all() and r.root[1, 0] == 0
    assert torch.equal(r.tokens, t([[1, 1, 1, 2], [1, 1, 1, 2]]))


def test_cmc_compares_with_reference_not_previous_frame():
    # r(x1, x0) = 3/20 = 0.15 (reuse); r(x2, x0) = 6/20 = 0.3 although
    # r(x2, x1) = 3/23 < 0.2: the reference of the position stays x0.
    x = t([[10, 10], [10, 13], [10, 16]])
    r = cmc_concentrate(x, (3, 1, 1), 0.2)
    assert r.root[:, 0].tolist() == [0, 0, 2]
    assert torch.equal(r.tokens, t([[10, 11.5], [10, 11.5], [10, 16]]))
    # a new reference is taken up by later frames
    x = t([[10, 10], [10, 16], [10, 17]])
    assert cmc_concentrate(x, (3, 1, 1), 0.2).root[:, 0].tolist() == [0, 1, 1]


def test_cmc_zero_tokens():
    x = t([[2, 2], [0, 0], [2, 2], [0, 0]])  # one patch, four frames
    r = cmc_concentrate(x, (4, 1, 1), 0.1)
    assert r.zero[:, 0].tolist() == [False, True, False, True]
    assert r.similar[:, 0].tolist() == [False, False, True, False]
    assert r.root[:, 0].tolist() == [0, 1, 0, 3]
    assert r.sparsity == 0.75
    assert torch.equal(r.tokens, x)


def test_cmc_single_frame_reuses_nothing():
    x = torch.ones(6, 8)
    assert cmc_concentrate(x, (1, 2, 3), 0.9).sparsity == 0.0


def test_cmc_group_mean_fp16_in_fp32():
    x = t([[1.0, 2049.0], [1.0, 2050.0], [1.0, 2052.0]], torch.float16)
    r = cmc_concentrate(x, (3, 1, 1), 0.5)
    mean = np.mean(np.array([[1, 2049], [1, 2050], [1, 2052]], np.float32), axis=0)
    assert r.tokens.dtype == torch.float16
    assert np.array_equal(r.tokens.numpy(), np.tile(mean.astype(np.float16), (3, 1)))


# -- AdapTiV -----------------------------------------------------------------


def test_sign_similarity_hand_value():
    a = t([[1, -1, 1, -1]])
    b = t([[2, -3, -1, -1]])  # 3 of 4 signs match
    assert sign_similarity(a, b).item() == 0.5
    assert sign_similarity(a, -a).item() == -1.0
    assert sign_similarity(t([[0.0, -0.0]]), t([[1.0, 1.0]])).item() == 1.0


def test_adaptiv_threshold_equal_not_merged():
    x = t([[1, -1, 1, -1], [2, -3, -1, -1]])  # left neighbours, similarity 0.5
    assert not adaptiv_concentrate(x, (1, 1, 2), 0.5).similar.any()
    r = adaptiv_concentrate(x, (1, 1, 2), 0.49)
    assert r.root[:, 0].tolist() == [0, 0]
    assert torch.equal(r.tokens, t([[1.5, -2, 0, -1]] * 2))


def test_adaptiv_sign_flips_never_merge():
    a = [1.0, -2.0, 3.0, -4.0]
    x = t([a, [-v for v in a]])
    assert adaptiv_concentrate(x, (1, 1, 2), -0.99).sparsity == 0.0


def test_adaptiv_neighbours_are_left_and_up_only():
    p, n = [1.0, 1.0], [-1.0, -1.0]
    # 2x2 frame: token 2 (row 1, col 0) equals token 1 (previous row's end),
    # but its only candidate is token 0 above it (opposite signs).
    x = t([n, p, p, n])
    r = adaptiv_concentrate(x, (1, 2, 2), 0.0)
    assert r.root[:, 0].tolist() == [0, 1, 2, 3]
    # no temporal neighbours: identical frames do not merge
    assert adaptiv_concentrate(t([p, p]), (2, 1, 1), 0.0).sparsity == 0.0


def test_adaptiv_tie_prefers_left_and_chains_to_root():
    x = t([[1, 1], [1, 1], [1, 1], [1, 3]])  # all signs equal: ties everywhere
    r = adaptiv_concentrate(x, (1, 2, 2), 0.5)
    assert r.root[:, 0].tolist() == [0, 0, 0, 0]
    assert torch.equal(r.tokens, t([[1, 1.5]] * 4))
    # token 3's candidates: up (1), left (2); tie -> left. Make 2 a separate root.
    x = t([[1, 1], [1, 1], [-1, 1], [-1, 1]])
    r = adaptiv_concentrate(x, (1, 2, 2), 0.5)
    assert r.root[:, 0].tolist() == [0, 0, 2, 2]


def test_adaptiv_zero_tokens_are_not_candidates():
    x = t([[1, 1], [0, 0], [1, 1]])
    r = adaptiv_concentrate(x, (1, 1, 3), 0.0)
    assert r.zero[:, 0].tolist() == [False, True, False]
    assert r.root[:, 0].tolist() == [0, 1, 2]
    assert r.sparsity == pytest.approx(1 / 3)


# -- shared contract / errors --------------------------------------------------


@pytest.mark.parametrize("fn", [cmc_concentrate, adaptiv_concentrate])
def test_bad_inputs_are_named(fn):
    with pytest.raises(ValueError, match="grid"):
        fn(torch.ones(5, 4), (1, 2, 2), 0.5)
    with pytest.raises(ValueError, match="floating"):
        fn(torch.ones(4, 4, dtype=torch.int32), (1, 2, 2), 0.5)
    with pytest.raises(ValueError, match="threshold"):
        fn(torch.ones(4, 4), (1, 2, 2), float("nan"))


@pytest.mark.parametrize("fn", [cmc_concentrate, adaptiv_concentrate])
def test_heads_layout_matches_concatenated(fn):
    g = torch.Generator().manual_seed(0)
    base = torch.randn(4, 6, generator=g)
    xh = torch.cat([base, base + 0.05 * torch.randn(4, 6, generator=g)]).view(8, 2, 3)
    x3 = xh.transpose(0, 1).contiguous()  # (heads=2, T=8, d=3)
    r3 = fn(x3, (2, 2, 2), 0.3)
    r2 = fn(xh.reshape(8, 6), (2, 2, 2), 0.3)
    assert r2.similar.any()
    assert torch.equal(r3.root, r2.root) and r3.sparsity == r2.sparsity
    assert torch.equal(r3.tokens, r2.tokens.view(8, 2, 3).transpose(0, 1))
    assert r3.zero.shape == (8, 1)  # V = ceil(6 / 32)


@st.composite
def token_cases(draw):
    f, h, w = (draw(st.integers(1, 3)) for _ in range(3))
    d = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(f * h * w, d, generator=g)
    # repeated / perturbed tokens so that merges happen, plus zero tokens
    src = torch.randint(0, f * h * w, (f * h * w,), generator=g)
    mix = torch.rand(f * h * w, generator=g) < 0.5
    x = torch.where(mix[:, None], x[src] + 0.1 * torch.randn(x.shape, generator=g), x)
    x[torch.rand(f * h * w, generator=g) < 0.2] = 0
    dtype = draw(st.sampled_from([torch.float32, torch.float16, torch.bfloat16]))
    thr = draw(st.floats(-1.0, 1.0))
    vs = draw(st.sampled_from([4, 32]))
    return x.to(dtype), (f, h, w), thr, FocusParams(vector_size=vs)


@pytest.mark.parametrize("fn", [cmc_concentrate, adaptiv_concentrate])
@given(case=token_cases())
def test_sicresult_invariants(fn, case):
    x, grid, thr, params = case
    r = fn(x, grid, thr, params=params)
    n, d = x.shape
    v = math.ceil(d / params.vector_size)
    assert r.tokens.shape == x.shape and r.tokens.dtype == x.dtype
    for m in (r.zero, r.similar, r.root):
        assert m.shape == (n, v)
        assert (m == m[:, :1]).all()  # one decision per token
    zero, sim, root = r.zero[:, 0], r.similar[:, 0], r.root[:, 0]
    own = torch.arange(n)
    assert r.root.dtype == torch.int64
    assert torch.equal(zero, (x == 0).all(1))
    assert not (zero & sim).any()
    assert (root <= own).all() and torch.equal(root[root], root)
    assert torch.equal(sim, root != own)
    assert not zero[root[sim]].any() and not sim[root].any()
    assert r.sparsity == pytest.approx(float((zero | sim).float().mean()))
    patches = grid[1] * grid[2]
    if fn is cmc_concentrate:  # same position, earlier frame
        assert torch.equal(root % patches, own % patches)
    else:  # same frame
        assert torch.equal(root // patches, own // patches)
    # groups replaced by their fp32 mean (numpy reference), others untouched
    xn = x.float().numpy()
    out = r.tokens.float().numpy()
    for rt in set(root.tolist()):
        members = (root == rt).numpy()
        mean = xn[members].mean(axis=0, dtype=np.float32)
        expect = torch.from_numpy(mean).to(x.dtype).float().numpy()
        assert np.array_equal(out[members], np.tile(expect, (members.sum(), 1)))


# -- configs and CMC sparsity categories ---------------------------------------


@needs_ref
def test_published_thresholds_and_default_row():
    assert baseline_threshold("cmc", "llava_onevision", "mlvu", csv_dir=REF) == 0.5
    assert baseline_threshold("adaptiv", "minicpm_v", "mvbench", csv_dir=REF) == 0.1
    assert cmc_thresholds("qwen2_5_vl", "mme", csv_dir=REF) == CMCThresholds(0.4, 0.8, 0.00005)
    assert baseline_threshold("adaptiv", "nobody", "nothing", csv_dir=REF) == 0.6


def test_config_errors_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown baseline method 'framefusion'"):
        baseline_threshold("framefusion", "m", "d", csv_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="adaptiv_config.csv"):
        baseline_threshold("adaptiv", "m", "d", csv_dir=tmp_path)
    (tmp_path / "adaptiv_config.csv").write_text("model,dataset,adaptiv_threshold\nm,d,0.3\n")
    assert baseline_threshold("adaptiv", "m", "d", csv_dir=tmp_path) == 0.3
    with pytest.raises(ValueError, match=r"no row for model='x'.*no 'default' row"):
        baseline_threshold("adaptiv", "x", "d", csv_dir=tmp_path)
    (tmp_path / "cmc_config.csv").write_text("model,dataset,CMC_threshold\ndefault,,0.4\n")
    with pytest.raises(ValueError, match="CMC_query_threshold"):
        cmc_thresholds("m", "d", csv_dir=tmp_path)


def test_cmc_sparsity_categories():
    attn = t([[0.5, 0.00001, 0.49999], [0.00005, 0.9, 0.09995]])
    assert cmc_attn_sparsity(attn, 0.00005) == pytest.approx(1 / 6)  # equal is kept
    frame = [[1.0, 2.0], [3.0, -1.0]]
    linear = t(frame + frame)  # half reused
    query = torch.stack([t(frame + [[9, 9], [3.0, -1.0]])] * 2)  # (2 heads): 1 of 4
    out = cmc_sparsity([linear], [query], [attn], (2, 1, 2), CMCThresholds(0.4, 0.8, 0.00005))
    assert out == pytest.approx(
        {"linear_sparsity": 0.5, "query_sparsity": 0.25, "attn_score_sparsity": 1 / 6}
    )
    with pytest.raises(ValueError, match="no attention"):
        cmc_sparsity([linear], [query], [], (2, 1, 2), CMCThresholds(0.4, 0.8, 0.00005))
