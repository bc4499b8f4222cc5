"""Float units (add, multiply, widen, narrow, compare, max) bit-exact against numpy."""

from __future__ import annotations

import contextlib
import gc
import operator
import warnings

import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable
from hypothesis import given, settings
from hypothesis import strategies as st

from focus_hw.arith import BF16, FORMATS, FP16, FP32
from focus_hw.arith import reference as ref
from focus_hw.arith.compare import FCompare, FMax
from focus_hw.arith.convert import Narrow, Widen
from focus_hw.arith.fadd import FAdd
from focus_hw.arith.fmul import FMul
from focus_hw.arith.simulate import evaluate
from focus_hw.formats import number_format

FLOATS = ("fp16", "bf16", "fp32")


def specials(fmt) -> np.ndarray:
    """Both signs of zero, subnormal/normal limits, 1, max finite, inf, quiet/signalling NaNs."""
    f = FORMATS[fmt] if isinstance(fmt, str) else fmt
    man = (1 << f.man_bits) - 1
    one = f.bias << f.man_bits
    inf = f.exp_max << f.man_bits
    positive = [
        0,
        1,
        2,
        man >> 1,
        man,
        1 << f.man_bits,
        (1 << f.man_bits) | 1,
        one,
        one | 1,
        one | f.quiet_bit,
        one | man,
        (f.bias + f.man_bits) << f.man_bits,
        ((f.exp_max - 1) << f.man_bits) | man,
        (f.exp_max - 1) << f.man_bits,
        inf,
        f.canonical_nan,
        f.canonical_nan | 1,
        inf | 1,
        inf | (f.quiet_bit >> 1),
    ]
    sign = 1 << (f.width - 1)
    return np.array(positive + [v | sign for v in positive], dtype=np.uint64)


def pairs(values):
    a, b = np.meshgrid(values, values)
    return a.ravel(), b.ravel()


def random_bits(rng, fmt, n, exp_range=None):
    """Random finite values of ``fmt`` with biased exponents in ``exp_range``."""
    f = FORMATS[fmt]
    lo, hi = exp_range or (0, f.exp_max - 1)
    exp = rng.integers(lo, hi + 1, n, dtype=np.uint64)
    frac = rng.integers(0, 1 << f.man_bits, n, dtype=np.uint64)
    sign = rng.integers(0, 2, n, dtype=np.uint64)
    return (sign << np.uint64(f.width - 1)) | (exp << np.uint64(f.man_bits)) | frac


def assert_bits_equal(got, want, *inputs):
    bad = np.nonzero(np.asarray(got, dtype=np.uint64) != np.asarray(want, dtype=np.uint64))[0]
    if len(bad):
        i = bad[0]
        detail = ", ".join(hex(int(v[i])) for v in inputs)
        raise AssertionError(
            f"{len(bad)} mismatches; first: inputs ({detail}) -> "
            f"got {hex(int(got[i]))}, want {hex(int(want[i]))}"
        )


def exact(fmt, bits):
    return ref.to_float(fmt, bits).astype(np.float64)


def is_tie(fmt, values):
    """Exact float64 values lying exactly half-way between two neighbours of ``fmt``.

    ``values`` carry at most ``2 * precision + 2`` significant bits, so a
    relative nudge of ``2**-(2p+4)`` changes the rounding only at a tie
    (ml_dtypes casts float64 through float32, hence the nudge for bf16).
    """
    ftype = number_format(fmt).np_type
    if fmt == "bf16":
        nudge = np.abs(values) * 2.0 ** -(2 * FORMATS[fmt].precision + 4)
        up, down = values + nudge, values - nudge
    else:
        up, down = np.nextafter(values, np.inf), np.nextafter(values, -np.inf)
    with np.errstate(all="ignore"):
        return (up.astype(ftype) != down.astype(ftype)) & np.isfinite(values) & (values != 0)


# -- add / multiply ---------------------------------------------------------------

OPS = {"add": (FAdd, operator.add), "mul": (FMul, operator.mul)}


def check_binary(op, fmt, a, b):
    """Against numpy scalars everywhere, and numpy arrays where their NaN choice is fixed.

    numpy's float32 array loops pick the first of two NaN operands inside
    SIMD chunks and the second in the scalar tail; fp16 and bf16 arrays
    always pick the second, like scalars.
    """
    unit, pyop = OPS[op]
    got = evaluate(unit(fmt), a=a, b=b)["out"]
    assert_bits_equal(got, ref.binary(pyop, fmt, a, b), a, b)
    x, y = ref.to_float(fmt, a), ref.to_float(fmt, b)
    with np.errstate(all="ignore"):
        arrays = ref.to_bits(fmt, pyop(x, y))
        fixed = ~(np.isnan(x) & np.isnan(y)) if fmt == "fp32" else np.ones(a.size, bool)
    assert_bits_equal(got[fixed], arrays[fixed], a[fixed], b[fixed])


@pytest.mark.parametrize("fmt", FLOATS)
@pytest.mark.parametrize("op", OPS)
def test_special_pairs(op, fmt):
    check_binary(op, fmt, *pairs(specials(fmt)))


@pytest.mark.parametrize("fmt", FLOATS)
@pytest.mark.parametrize("op", OPS)
def test_rounding_ties(op, fmt):
    """Exact half-way cases (normal and subnormal results) round to even."""
    rng = np.random.default_rng(1)
    f = FORMATS[fmt]
    if op == "add":
        a = random_bits(rng, fmt, 40000, (1, f.exp_max - 2))
        shift = rng.integers(1, f.precision + 2, a.size, dtype=np.uint64)
        exp_a = (a >> np.uint64(f.man_bits)) & np.uint64(f.exp_max)
        b = random_bits(rng, fmt, a.size) & ~np.uint64(f.exp_max << f.man_bits)
        b |= np.maximum(exp_a.astype(np.int64) - shift.astype(np.int64), 0).astype(
            np.uint64
        ) << np.uint64(f.man_bits)
        values = exact(fmt, a) + exact(fmt, b)
    else:
        # Normal results, then results near the subnormal range.
        a = np.concatenate(
            [
                random_bits(rng, fmt, 30000, (1, f.exp_max - 1)),
                random_bits(rng, fmt, 10000, (0, f.man_bits + 3)),
            ]
        )
        b = np.concatenate(
            [
                random_bits(rng, fmt, 30000, (max(1, f.bias - f.man_bits - 6), f.bias + 2)),
                random_bits(rng, fmt, 10000, (f.bias - f.man_bits, f.bias + 1)),
            ]
        )
        # Short significands make products of about p + 2 bits, where ties are common.
        keep = f.man_bits - (f.precision // 2 + 1)
        short = ~np.uint64((1 << keep) - 1)
        a, b = a & short, b & short
        values = exact(fmt, a) * exact(fmt, b)
    tie = is_tie(fmt, values)
    assert tie.sum() >= 20, "too few ties constructed"
    if op == "mul":  # sums of subnormals are exact; products can tie in the subnormal range
        assert (tie & (np.abs(values) < 2.0 ** (1 - f.bias))).sum() >= 3
    check_binary(op, fmt, a[tie][:300], b[tie][:300])


@pytest.mark.parametrize("fmt", FLOATS)
def test_add_cancellation_and_far_alignment(fmt):
    rng = np.random.default_rng(2)
    f = FORMATS[fmt]
    a = random_bits(rng, fmt, 200)
    sign = np.uint64(1 << (f.width - 1))
    near = (
        (a ^ sign) + rng.integers(0, 3, a.size, dtype=np.uint64) - np.uint64(1)
    )  # -a, -a +- 1 ulp
    exact_negation = a ^ sign
    far = random_bits(rng, fmt, 200)
    gap = rng.integers(f.precision - 2, f.precision + 6, far.size, dtype=np.uint64)
    exp_far = (far >> np.uint64(f.man_bits)) & np.uint64(f.exp_max)
    small = (random_bits(rng, fmt, far.size) & ~np.uint64(f.exp_max << f.man_bits)) | (
        np.maximum(exp_far.astype(np.int64) - gap.astype(np.int64), 0).astype(np.uint64)
        << np.uint64(f.man_bits)
    )
    check_binary(
        "add",
        fmt,
        np.concatenate([a, a, far, small]),
        np.concatenate([near, exact_negation, small, far]),
    )


@pytest.mark.parametrize("fmt", FLOATS)
def test_mul_overflow_and_underflow(fmt):
    rng = np.random.default_rng(3)
    f = FORMATS[fmt]
    big = random_bits(rng, fmt, 300, (f.exp_max - 4, f.exp_max - 1))
    tiny = random_bits(rng, fmt, 300, (0, 3))
    mid = random_bits(rng, fmt, 300, (f.bias - f.man_bits - 4, f.bias + 4))
    check_binary("mul", fmt, np.concatenate([big, tiny, tiny]), np.concatenate([big, mid, big]))


@pytest.mark.parametrize("fmt", FLOATS)
@pytest.mark.parametrize("op", OPS)
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_random_bit_patterns(op, fmt, data):
    width = FORMATS[fmt].width
    raw = st.lists(st.integers(0, (1 << width) - 1), min_size=250, max_size=250)
    a, b = (np.array(data.draw(raw), dtype=np.uint64) for _ in range(2))
    check_binary(op, fmt, a, b)


# -- conversions ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["fp16", "bf16"])
def test_widen_exact(fmt):
    f = FORMATS[fmt]
    sign = 1 << (f.width - 1)
    subnormals = np.arange(1 << f.man_bits, dtype=np.uint64)
    a = np.concatenate(
        [
            specials(fmt),
            subnormals,
            subnormals | np.uint64(sign),
            np.random.default_rng(4).integers(0, 1 << f.width, 500, dtype=np.uint64),
        ]
    )
    assert_bits_equal(evaluate(Widen(fmt), a=a)["out"], ref.widen(fmt, a), a)


def narrowing_cases(fmt):
    """fp32 inputs around every rounding boundary of ``fmt``: ties, +-1 ulp, overflow edge."""
    f = FORMATS[fmt]
    rng = np.random.default_rng(5)
    lost = FP32.man_bits - f.man_bits
    base = random_bits(rng, fmt, 400)
    exp = (base >> np.uint64(f.man_bits)) & np.uint64(f.exp_max)
    # Values of fmt re-expressed in fp32 at exponents spanning subnormal to overflow.
    exp32 = (
        exp.astype(np.int64) + (FP32.bias - f.bias) + rng.integers(-f.man_bits - 2, 2, base.size)
    )
    exp32 = np.clip(exp32, 0, FP32.exp_max - 1).astype(np.uint64)
    frac = (base & np.uint64((1 << f.man_bits) - 1)) << np.uint64(lost)
    sign = (base >> np.uint64(f.width - 1)) << np.uint64(31)
    grid = sign | (exp32 << np.uint64(23)) | frac
    half = np.uint64(1 << (lost - 1))
    tie = grid | half
    max_finite = ((f.exp_max - 1 - f.bias + FP32.bias) << 23) | (((1 << f.man_bits) - 1) << lost)
    edge = np.array(
        [
            max_finite,
            max_finite | (1 << (lost - 1)),
            max_finite | ((1 << (lost - 1)) - 1),
            max_finite + (1 << lost),
        ],
        dtype=np.uint64,
    )
    return np.concatenate(
        [
            specials("fp32"),
            grid,
            tie,
            tie + np.uint64(1),
            tie - np.uint64(1),
            edge,
            edge | np.uint64(1 << 31),
        ]
    )


@pytest.mark.parametrize("fmt", ["fp16", "bf16"])
def test_narrow_round_to_nearest_even(fmt):
    a = narrowing_cases(fmt)
    assert_bits_equal(evaluate(Narrow(fmt), a=a)["out"], ref.narrow(fmt, a), a)


@pytest.mark.parametrize("fmt", ["fp16", "bf16"])
@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_conversions_random_bit_patterns(fmt, data):
    narrow_in = np.array(
        data.draw(st.lists(st.integers(0, 2**32 - 1), min_size=250, max_size=250)), dtype=np.uint64
    )
    widen_in = np.array(
        data.draw(st.lists(st.integers(0, 2**16 - 1), min_size=250, max_size=250)), dtype=np.uint64
    )
    assert_bits_equal(
        evaluate(Narrow(fmt), a=narrow_in)["out"], ref.narrow(fmt, narrow_in), narrow_in
    )
    assert_bits_equal(evaluate(Widen(fmt), a=widen_in)["out"], ref.widen(fmt, widen_in), widen_in)


# -- compare / max ----------------------------------------------------------------


def compare_inputs(fmt, rng):
    a, b = pairs(specials(fmt))
    x = rng.integers(0, 1 << FORMATS[fmt].width, 300, dtype=np.uint64)
    return np.concatenate([a, x, x]), np.concatenate([b, x ^ np.uint64(1), x])


@pytest.mark.parametrize("fmt", FLOATS)
def test_compare_matches_numpy(fmt):
    a, b = compare_inputs(fmt, np.random.default_rng(6))
    got = evaluate(FCompare(fmt), a=a, b=b)
    x, y = ref.to_float(fmt, a), ref.to_float(fmt, b)
    with np.errstate(invalid="ignore"):
        assert_bits_equal(got["lt"], x < y, a, b)
        assert_bits_equal(got["eq"], x == y, a, b)
        assert_bits_equal(got["gt"], x > y, a, b)
        zeros = (x == 0) & (y == 0)
        assert_bits_equal(got["unordered"], np.isnan(x) | np.isnan(y), a, b)
    assert got["eq"][zeros].all() and zeros.sum() == 4  # +0 == -0 in all four orders


@pytest.mark.parametrize("fmt", FLOATS)
def test_max(fmt):
    """np.maximum bit for bit (NaN operand returned unchanged, a first); max(+0, -0) = +0."""
    a, b = compare_inputs(fmt, np.random.default_rng(7))
    got = evaluate(FMax(fmt), a=a, b=b)["out"]
    x, y = ref.to_float(fmt, a), ref.to_float(fmt, b)
    with np.errstate(invalid="ignore"):
        want = ref.to_bits(fmt, np.maximum(x, y))
        zeros = (x == 0) & (y == 0)
    sign = np.uint64(1 << (FORMATS[fmt].width - 1))
    want[zeros] = a[zeros] & b[zeros] & sign  # -0 only when both are -0
    assert_bits_equal(got, want, a, b)


@contextlib.contextmanager
def unused_elaboratables_ok():
    """Silence Amaranth's warning for units built only to inspect or to fail."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        yield
        gc.collect()


def test_formats():
    assert (FP16.width, FP16.bias, FP16.precision) == (16, 15, 11)
    assert (BF16.width, BF16.bias, BF16.canonical_nan) == (16, 127, 0x7FC0)
    assert (FP32.width, FP32.exp_max, FP32.quiet_bit) == (32, 255, 1 << 22)
    with unused_elaboratables_ok():
        with pytest.raises(ValueError, match="unknown float format 'fp8'"):
            FAdd("fp8")
        with pytest.raises(ValueError, match="pipeline must be an integer >= 0"):
            FMul("fp16", pipeline=-1)
