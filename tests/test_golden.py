"""Golden vectors: checked against independent scalar implementations."""

import json

import ml_dtypes
import numpy as np
import pytest

import acc_reference as exact
from focus_algo.golden import (
    CASES,
    compressed_gemm_golden,
    decode,
    encode,
    f32_bits,
    focus_gemm_reference,
    gemm_golden,
    gemm_reference,
    mac_golden,
    sic_golden,
    write_golden,
)
from focus_hw.params import FocusParams

F32 = np.float32


def scalar_gemm(a_bits, w_bits, dtype, acc=None):
    """Independent scalar loop: one numpy-float32 (or Python int) op at a time."""
    m, k = a_bits.shape
    n = w_bits.shape[1]
    out = np.zeros((m, n), np.uint32 if dtype != "int8" else np.int32)
    fmt = {"fp16": np.float16, "bf16": ml_dtypes.bfloat16}.get(dtype)
    for i in range(m):
        for j in range(n):
            if dtype == "int8":
                s = 0 if acc is None else int(acc[i, j])
                for kk in range(k):
                    s = s + int(a_bits[i, kk]) * int(w_bits[kk, j])
                    s = (s + 2**31) % 2**32 - 2**31
                out[i, j] = s
            else:
                s = F32(0.0) if acc is None else np.uint32(acc[i, j]).view(F32)
                for kk in range(k):
                    a = F32(np.uint16(a_bits[i, kk]).view(fmt))
                    w = F32(np.uint16(w_bits[kk, j]).view(fmt))
                    s = F32(s + F32(a * w))
                out[i, j] = np.array(s, F32).view(np.uint32)
    return out


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "int8"])
@pytest.mark.parametrize("with_acc", [False, True])
def test_gemm_golden_matches_scalar_loop(dtype, with_acc):
    g = gemm_golden(FocusParams(dtype=dtype), 3, 37, 4, seed=5, with_acc=with_acc)
    assert g["a"].shape == (3, 37) and g["w"].shape == (37, 4)
    want_dtype = {"fp16": np.uint16, "bf16": np.uint16, "int8": np.int8}[dtype]
    assert g["a"].dtype == want_dtype and g["w"].dtype == want_dtype
    assert g["out"].dtype == (np.int32 if dtype == "int8" else np.uint32)
    np.testing.assert_array_equal(g["out"], scalar_gemm(g["a"], g["w"], dtype, g.get("acc")))


def test_gemm_order_is_sequential_hand_case():
    # 1 + 4 * 2^-25 added one term at a time stays 1.0 in fp32 (each term is
    # below half an ulp); the exact sum 1 + 2^-23 is representable.
    a = encode([[1.0, 2**-13, 2**-13, 2**-13, 2**-13]], "fp16")
    w = encode([[1.0], [2**-12], [2**-12], [2**-12], [2**-12]], "fp16")
    assert gemm_reference(a, w, "fp16")[0, 0] == 0x3F800000
    exact = decode(a, "fp16").astype(np.float64) @ decode(w, "fp16").astype(np.float64)
    assert f32_bits(exact)[0, 0] == 0x3F800001
    # reversed order: the small terms add up first and survive
    rev = gemm_reference(a[:, ::-1], w[::-1], "fp16")
    assert rev[0, 0] == 0x3F800001


def test_gemm_golden_close_to_float64_matmul():
    g = gemm_golden(FocusParams(), 16, 256, 8, seed=1)
    a, w = decode(g["a"], "fp16").astype(np.float64), decode(g["w"], "fp16").astype(np.float64)
    got = g["out"].view(F32).astype(np.float64)
    bound = (256 + 1) * 2.0**-24 * (np.abs(a) @ np.abs(w))  # recursive-summation bound
    assert np.all(np.abs(got - a @ w) <= bound)


def test_determinism_and_seed():
    p = FocusParams(dtype="bf16")
    g1, g2 = gemm_golden(p, 4, 8, 4, seed=3), gemm_golden(p, 4, 8, 4, seed=3)
    for key in g1:
        np.testing.assert_array_equal(g1[key], g2[key])
    assert not np.array_equal(g1["a"], gemm_golden(p, 4, 8, 4, seed=4)["a"])
    s1, s2 = sic_golden(FocusParams(), seed=2), sic_golden(FocusParams(), seed=2)
    for key in s1:
        np.testing.assert_array_equal(s1[key], s2[key])


def test_int8_accumulator_wraps():
    g = gemm_golden(FocusParams(dtype="int8"), 4, 64, 4, seed=0, with_acc=True)
    exact = g["acc"].astype(np.int64) + g["a"].astype(np.int64) @ g["w"].astype(np.int64)
    assert np.any((exact > 2**31 - 1) | (exact < -(2**31)))  # wrap really happens
    np.testing.assert_array_equal(g["out"], ((exact + 2**31) % 2**32 - 2**31).astype(np.int32))


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "int8"])
def test_mac_golden(dtype):
    g = mac_golden(FocusParams(dtype=dtype), 200, seed=9)
    for i in range(200):
        one = scalar_gemm(
            g["a"][i : i + 1, None], g["b"][None, i : i + 1], dtype, g["acc"][i : i + 1, None]
        )
        assert g["out"][i] == one[0, 0]
    if dtype == "fp16":  # special operands are present
        a = g["a"]
        assert np.any(a == 0x8000) and np.any(((a & 0x7C00) == 0) & ((a & 0x3FF) != 0))


def test_encode_decode():
    assert encode([1.5], "bf16")[0] == 0x3FC0
    # one rounding from float64 (a detour through fp32 would tie and round to 1.0)
    assert encode([1 + 2**-8 + 2**-30], "bf16")[0] == 0x3F81
    assert encode([-(1 + 2**-8 + 2**-30)], "bf16")[0] == 0xBF81
    assert encode([1 + 2**-8], "bf16")[0] == 0x3F80  # exact tie: to even
    assert encode([1 + 3 * 2**-8], "bf16")[0] == 0x3F82
    assert encode([1e39, -1e39], "bf16").tolist() == [0x7F80, 0xFF80]
    # on fp32-exact values a single rounding is what torch does
    vals = (np.random.default_rng(0).standard_normal(1000) * 1e3).astype(np.float32)
    want = torch_bf16_bits(vals.astype(np.float64))
    np.testing.assert_array_equal(encode(vals, "bf16"), want)
    assert encode([1.5], "fp16")[0] == 0x3E00
    assert encode([-0.0], "fp16")[0] == 0x8000
    assert encode([2**-24], "fp16")[0] == 0x0001
    np.testing.assert_array_equal(decode(encode([1.0, -2.5], "fp16"), "fp16"), [1.0, -2.5])
    np.testing.assert_array_equal(decode(np.array([-128, 5], np.int8), "int8"), [-128, 5])
    with pytest.raises(ValueError, match="int8"):
        encode([200], "int8")


def torch_bf16_bits(vals):
    """Independent bf16 rounding of fp32-exact values via torch."""
    import torch

    t = torch.tensor(vals.astype(np.float32)).to(torch.bfloat16)
    return t.view(torch.int16).numpy().view(np.uint16)


def _cos(u, v):
    return float(u @ v / np.sqrt((u @ u) * (v @ v)))


def test_sic_golden_planted_cases():
    p = FocusParams()
    g = sic_golden(p, grid=(3, 3, 4), seed=1)
    x = decode(g["x"], "fp16").astype(np.float64)
    t_n, v_n = g["zero"].shape
    assert (t_n, v_n) == (36, 3) and x.shape == (36, 80)
    case, sim, zero, root = g["case"], g["similar"].astype(bool), g["zero"].astype(bool), g["root"]
    counts = np.bincount(case.ravel(), minlength=5)
    assert all(counts[c] > 0 for c in CASES.values())
    # copies and near-copies above the threshold are merged, zero vectors are zero
    assert sim[(case == CASES["copy"]) | (case == CASES["above"])].all()
    assert zero[case == CASES["zero"]].all() and not zero[case != CASES["zero"]].any()
    # the planted near-copies lie within the margin on the intended side of some
    # candidate (computed on the rounded fp16 values)
    vs, shifts = 32, [1, 4, 5, 12, 13, 16, 17]
    for t, j in np.argwhere((case == CASES["above"]) | (case == CASES["below"])):
        sl = slice(j * vs, (j + 1) * vs)
        scores = [_cos(x[t, sl], x[t - s, sl]) for s in shifts if s <= t and x[t - s, sl].any()]
        want = p.threshold + (0.02 if case[t, j] == CASES["above"] else -0.02)
        assert min(abs(s - want) for s in scores) < 0.005
    # roots: own index unless similar; a similar vector points back to a root
    own = np.arange(t_n)[:, None]
    assert np.all(root[~sim] == np.broadcast_to(own, root.shape)[~sim])
    assert np.all(root[sim] < np.broadcast_to(own, root.shape)[sim])
    # concentrated tokens: every group holds the fp32 mean of its members
    tokens = decode(g["tokens"], "fp16")
    x32 = decode(g["x"], "fp16")
    for j in range(v_n):
        sl = slice(j * vs, min(80, (j + 1) * vs))
        for r in np.unique(root[~zero[:, j], j]):
            members = np.flatnonzero((root[:, j] == r) & ~zero[:, j])
            mean = x32[members, sl].sum(axis=0, dtype=np.float32) / F32(len(members))
            if len(members) == 1:
                mean = x32[r, sl]
            np.testing.assert_array_equal(
                tokens[members, sl],
                np.broadcast_to(
                    mean.astype(np.float16).astype(F32), (len(members), sl.stop - sl.start)
                ),
            )


def test_sic_golden_rejects_int8():
    with pytest.raises(ValueError, match="dtype='int8'"):
        sic_golden(FocusParams(dtype="int8"))


def scalar_compressed_gemm(g, dtype, vs):
    """Independent loop: per token, per chunk, recompute its root's partial sum."""
    x, w = decode(g["tokens"], dtype), decode(g["w"], dtype)
    t_n, d = x.shape
    n = w.shape[1]
    out = np.zeros((t_n, n), np.uint32)
    for t in range(t_n):
        for c in range(n):
            acc = F32(0.0)
            for j in range(g["zero"].shape[1]):
                if g["zero"][t, j]:
                    continue
                r = g["root"][t, j]
                p = F32(0.0)
                for k in range(j * vs, min(d, (j + 1) * vs)):
                    p = F32(p + F32(x[r, k] * w[k, c]))
                acc = F32(acc + p)
            out[t, c] = np.array(acc, F32).view(np.uint32)
    return out


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_compressed_gemm_golden(dtype):
    p = FocusParams(dtype=dtype, vector_size=16)
    g = compressed_gemm_golden(p, grid=(2, 3, 3), n=5, seed=4)
    np.testing.assert_array_equal(g["out"], scalar_compressed_gemm(g, dtype, 16))
    # unique vectors: per chunk, the non-zero roots
    zero, root = g["zero"].astype(bool), g["root"]
    own = np.arange(18)
    want = [np.flatnonzero(~zero[:, j] & (root[:, j] == own)) for j in range(zero.shape[1])]
    np.testing.assert_array_equal(g["unique_count"], [len(u) for u in want])
    np.testing.assert_array_equal(g["unique_index"], np.concatenate(want))
    assert g["unique_count"].sum() < (~zero).sum()  # the compression is real
    assert g["partial"].shape == (g["unique_count"].sum(), 5)
    # close to a plain float64 GEMM on the concentrated tokens: fp32 rounding of
    # each of the K products/additions bounds the error
    x = decode(g["tokens"], dtype).astype(np.float64)
    w = decode(g["w"], dtype).astype(np.float64)
    got = g["out"].view(F32).astype(np.float64)
    bound = (x.shape[1] + 2) * 2.0**-24 * (np.abs(x) @ np.abs(w))
    assert np.all(np.abs(got - x @ w) <= bound)


# -- accumulation in the operand format (acc_format="operand") --------------------

OPERAND = {d: FocusParams(dtype=d, acc_format="operand") for d in ("fp16", "bf16")}


def values(bits, dtype) -> np.ndarray:
    """Operand or accumulator bits -> float64 values (exact)."""
    return decode(bits, dtype, "operand").astype(np.float64)


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@pytest.mark.parametrize("with_acc", [False, True])
def test_gemm_golden_operand_format(dtype, with_acc):
    """Results in the operand format, each step as the exact model rounds it."""
    p = OPERAND[dtype]
    g = gemm_golden(p, 3, 37, 4, seed=5, with_acc=with_acc)
    assert g["out"].dtype == np.uint16 and g.get("acc", g["out"]).dtype == np.uint16
    a, w, f = values(g["a"], dtype), values(g["w"], dtype), p.acc.layout
    acc = values(g["acc"], dtype) if with_acc else np.zeros((3, 4))
    want = [[exact.mac_chain(a[i], w[:, j], f, acc[i, j]) for j in range(4)] for i in range(3)]
    exact.assert_matches(g["out"].ravel(), np.ravel(want), dtype)
    wide = gemm_golden(FocusParams(dtype=dtype), 3, 37, 4, seed=5, with_acc=with_acc)
    np.testing.assert_array_equal(wide["a"], g["a"])  # same operands, other sums
    assert not np.array_equal(wide["out"].view(F32), values(g["out"], dtype).astype(F32))


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_mac_golden_operand_format(dtype):
    p = OPERAND[dtype]
    g = mac_golden(p, 300, seed=9)
    a, b, acc = (values(g[k], dtype) for k in ("a", "b", "acc"))
    f = p.acc.layout
    want = [exact.add(float(c), exact.mul(float(x), float(y), f), f) for x, y, c in zip(a, b, acc)]
    exact.assert_matches(g["out"], want, dtype)
    tiny = np.abs(values(g["out"], dtype)) < float(ml_dtypes.finfo(p.acc.np_type).smallest_normal)
    assert (tiny & (g["out"] & 0x7FFF != 0)).any()  # subnormal results occur


def exact_compressed_gemm(g, p) -> np.ndarray:
    """Exact model of the compressed GEMM: per token and chunk, its root's
    chain (recomputed), then the scatter's adds."""
    x, w, f = values(g["tokens"], p.dtype), values(g["w"], p.dtype), p.acc.layout
    vs, (t_n, d), n = p.vector_size, x.shape, w.shape[1]
    out = np.zeros((t_n, n))
    for t in range(t_n):
        for c in range(n):
            parts = [
                exact.mac_chain(x[g["root"][t, j], ks], w[ks, c], f)
                for j in range(g["zero"].shape[1])
                if not g["zero"][t, j]
                for ks in [slice(j * vs, min(d, (j + 1) * vs))]
            ]
            out[t, c] = exact.scatter(parts, f)
    return out


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_compressed_gemm_golden_operand_format(dtype):
    p = OPERAND[dtype].replace(vector_size=16)
    g = compressed_gemm_golden(p, grid=(2, 3, 3), n=5, seed=4)
    assert g["out"].dtype == g["partial"].dtype == np.uint16
    exact.assert_matches(g["out"].ravel(), exact_compressed_gemm(g, p).ravel(), dtype)
    wide = compressed_gemm_golden(p.replace(acc_format="wide"), grid=(2, 3, 3), n=5, seed=4)
    for key in ("tokens", "w", "unique_index"):  # the SIC is unchanged
        np.testing.assert_array_equal(wide[key], g[key])


def planted_operands(rng, shape, dtype) -> np.ndarray:
    """Operand bits: mostly magnitudes near 1, one in twenty of any finite
    magnitude of ``dtype`` (products and sums overflow and underflow), some
    infinities, and one all-zero row."""
    f = OPERAND[dtype].format.layout
    near = f.bias + rng.integers(-(f.bias // 3), f.bias // 3 + 1, shape)
    exp = np.where(rng.random(shape) < 0.95, near, rng.integers(0, f.exp_max, shape))
    bits = (rng.integers(0, 2, shape) << (f.width - 1)) | (exp << f.man_bits)
    bits |= rng.integers(0, 1 << f.man_bits, shape)
    bits[rng.random(shape) < 0.01] = f.exp_max << f.man_bits
    bits[0] = 0
    return bits.astype(np.uint16)


@pytest.mark.parametrize("acc_format", ["wide", "operand"])
@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_focus_gemm_reference_matches_exact_model(dtype, acc_format):
    """The vectorised Focus-order GEMM (the benchmark's) equals the exact
    scalar model in both accumulator formats, over every magnitude."""
    p = FocusParams(dtype=dtype, acc_format=acc_format, vector_size=8)
    rng = np.random.default_rng(len(dtype) + len(acc_format))
    a, w = planted_operands(rng, (6, 29), dtype), planted_operands(rng, (29, 6), dtype)
    a[1, 8:16] = 0  # a zero vector in chunk 1: skipped
    f = p.format.layout
    inf, one_half = f.exp_max << f.man_bits, (f.bias << f.man_bits) | f.quiet_bit
    a[2, :2], w[:2] = [inf, inf | 1 << (f.width - 1)], one_half  # inf - inf
    a[3, 16:24], w[16:24] = (f.exp_max - 1) << f.man_bits, one_half  # sums past the largest
    got = focus_gemm_reference(a, w, p)
    assert got.dtype == p.acc.bits_type
    want = exact.gemm(values(a, dtype), values(w, dtype), p.acc.layout, p.vector_size)
    exact.assert_matches(got.ravel(), want.ravel(), p.acc.name)
    assert np.isnan(want).any() and np.isinf(want).any() and np.isfinite(want).mean() >= 0.5


def test_write_golden(tmp_path):
    p = FocusParams(vector_size=16)
    index = write_golden(
        tmp_path / "g", p, seed=3, gemm_shape=(2, 20, 3), grid=(2, 2, 3), n=4, mac_count=10
    )
    on_disk = json.loads((tmp_path / "g" / "index.json").read_text())
    assert on_disk == index
    assert set(on_disk["files"]) == {
        "mac.npz",
        "gemm.npz",
        "gemm_acc.npz",
        "sic.npz",
        "compressed_gemm.npz",
    }
    assert FocusParams.from_dict(on_disk["params"]) == p
    with np.load(tmp_path / "g" / "compressed_gemm.npz") as f:
        direct = compressed_gemm_golden(p, (2, 2, 3), 4, 3)
        assert set(f.files) == set(direct)
        for key in direct:
            np.testing.assert_array_equal(f[key], direct[key])
    with np.load(tmp_path / "g" / "gemm.npz") as f:
        np.testing.assert_array_equal(f["out"], gemm_golden(p, 2, 20, 3, 3)["out"])
        assert on_disk["files"]["gemm.npz"]["arrays"]["a"] == {"dtype": "uint16", "shape": [2, 20]}
    index8 = write_golden(tmp_path / "i8", FocusParams(dtype="int8"), gemm_shape=(2, 4, 2))
    assert set(index8["files"]) == {"mac.npz", "gemm.npz", "gemm_acc.npz"}
