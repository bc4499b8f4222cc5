"""Independent scalar model of accumulation in the operand format
(``acc_format="operand"``), for the tests.

Every product and every sum is computed exactly (``fractions.Fraction``) and
rounded once to nearest even in the operand format: subnormals kept, results
beyond the largest finite value become infinities. Special operands (zeros,
infinities, NaNs) go through float64, where IEEE gives the signed zeros,
infinities and NaNs; NaN payloads are not modelled (only NaN-ness).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from focus_hw.formats import FloatFormat, number_format

__all__ = ["round_to", "mul", "add", "mac_chain", "gemm", "scatter", "assert_matches"]


def _binade(x: Fraction) -> int:
    """``floor(log2(x))`` of a positive ``x``, exactly."""
    e = math.floor(math.log2(x))
    while Fraction(2) ** e > x:
        e -= 1
    while Fraction(2) ** (e + 1) <= x:
        e += 1
    return e


def round_to(x: Fraction, fmt: FloatFormat) -> float:
    """A non-zero exact ``x`` rounded once to nearest even in ``fmt`` (float64, exact)."""
    e = max(_binade(abs(x)), 1 - fmt.bias)  # subnormals share the lowest binade's quantum
    quantum = Fraction(2) ** (e - fmt.man_bits)
    r = round(x / quantum) * quantum  # Fraction.__round__: ties to even
    largest = (2 - Fraction(1, 2**fmt.man_bits)) * Fraction(2) ** (fmt.exp_max - 1 - fmt.bias)
    if abs(r) > largest:
        return math.copysign(math.inf, x)
    return math.copysign(float(r), x)


def mul(a: float, b: float, fmt: FloatFormat) -> float:
    """``fmt(a * b)``."""
    if not (math.isfinite(a) and math.isfinite(b)) or a == 0 or b == 0:
        return a * b  # exact in float64: signed zeros, infinities, NaN of 0 * inf
    return round_to(Fraction(a) * Fraction(b), fmt)


def add(a: float, b: float, fmt: FloatFormat) -> float:
    """``fmt(a + b)``."""
    exact = Fraction(a) + Fraction(b) if math.isfinite(a) and math.isfinite(b) else None
    if exact is None or exact == 0:
        return a + b  # float64: inf - inf NaN, +0 for x - x, -0 only for -0 + -0
    return round_to(exact, fmt)


def mac_chain(a, w, fmt: FloatFormat, acc: float = 0.0) -> float:
    """``acc = fmt(acc + fmt(a[k] * w[k]))`` for k in order, from ``acc`` (+0.0)."""
    for x, y in zip(a, w):
        acc = add(acc, mul(float(x), float(y), fmt), fmt)
    return acc


def gemm(a: np.ndarray, w: np.ndarray, fmt: FloatFormat, chunk: int | None = None) -> np.ndarray:
    """(M, K) x (K, N) values (float64 results). Without ``chunk``: the
    array's :func:`mac_chain` from +0.0 per output. With it: the Focus
    order, a chain from +0.0 per K chunk of ``chunk`` whose activations are
    not all zero, the partial sums added to the output by :func:`scatter` in
    K order."""
    (m, k), n = a.shape, w.shape[1]
    out = np.zeros((m, n))
    for i in range(m):
        for j in range(n):
            if chunk is None:
                out[i, j] = mac_chain(a[i], w[:, j], fmt)
                continue
            live = [s for s in range(0, k, chunk) if np.any(a[i, s : s + chunk] != 0)]
            parts = [mac_chain(a[i, s : s + chunk], w[s : s + chunk, j], fmt) for s in live]
            out[i, j] = scatter(parts, fmt)
    return out


def scatter(parts, fmt: FloatFormat) -> float:
    """``out = fmt(out + part)`` for the parts in order, from +0.0."""
    out = 0.0
    for p in parts:
        out = add(out, float(p), fmt)
    return out


def assert_matches(got_bits, want: np.ndarray, fmt_name: str) -> None:
    """Hardware bits ``got_bits`` equal the model's float64 values ``want``
    bit for bit (signed zeros, infinities), or both are NaN."""
    fmt = number_format(fmt_name)
    got_bits = np.asarray(got_bits).astype(np.uint64)
    want = np.asarray(want, np.float64)
    nan = np.isnan(want)
    got_nan = np.isnan(fmt.decode(got_bits).astype(np.float64))
    exact = fmt.encode(want[~nan]).astype(np.uint64)  # representable: no rounding
    bad = np.flatnonzero(got_bits[~nan] != exact)
    assert not len(bad), (
        f"{len(bad)} mismatches, first: got {hex(int(got_bits[~nan][bad[0]]))}, "
        f"want {want[~nan][bad[0]]!r} ({hex(int(exact[bad[0]]))})"
    )
    np.testing.assert_array_equal(got_nan, nan)
