"""numpy models of the arithmetic units on raw bit patterns (the tests' reference).

Everything is computed with numpy *scalars* (``ml_dtypes`` for bf16): for
two NaN operands numpy's float32 array loops pick the first operand inside
SIMD chunks but the second one in scalar code (tails, scalars), so only the
scalar path gives one well-defined answer. For all other inputs scalars and
arrays agree.
"""

from __future__ import annotations

import numpy as np

from ..formats import accumulator_format, number_format

__all__ = ["to_float", "to_bits", "binary", "mac", "widen", "narrow"]


def to_float(fmt: str, bits) -> np.ndarray:
    """Raw bit patterns -> array of ``fmt`` floats."""
    return number_format(fmt).decode(np.asarray(bits, dtype=np.uint64))


def to_bits(fmt: str, values) -> np.ndarray:
    """Floats of ``fmt`` -> raw bit patterns as ``np.uint64``."""
    return number_format(fmt).to_bits(values).astype(np.uint64)


def _scalars(fmt, bits):
    return list(to_float(fmt, bits))


def binary(op, fmt: str, a, b) -> np.ndarray:
    """``op(a, b)`` (e.g. ``operator.add``) elementwise on numpy scalars of ``fmt``."""
    with np.errstate(all="ignore"):
        out = [op(x, y) for x, y in zip(_scalars(fmt, a), _scalars(fmt, b))]
    return to_bits(fmt, out)


def widen(fmt: str, a) -> np.ndarray:
    """``np.float32(a)`` for raw ``fmt`` bits."""
    return to_bits("fp32", to_float(fmt, a).astype(np.float32))


def narrow(fmt: str, a) -> np.ndarray:
    """fp32 bits -> ``fmt`` bits with numpy's/ml_dtypes' cast."""
    with np.errstate(all="ignore"):
        return to_bits(fmt, to_float("fp32", a).astype(number_format(fmt).np_type))


def mac(dtype: str, a, b, acc, acc_format: str = "wide") -> np.ndarray:
    """``np.float32(acc) + np.float32(a) * np.float32(b)`` on scalars (raw bits in and out).

    ``acc_format="operand"``: ``t(acc) + t(a) * t(b)`` on scalars of the
    operand type ``t`` (``acc`` and the result in the operand format).
    ``int8``: ``int32(acc) + int32(a) * int32(b)`` with wrap-around, returned
    as unsigned 32-bit patterns.
    """
    acc_fmt = accumulator_format(dtype, acc_format)
    if not acc_fmt.is_float:
        a32 = np.asarray(a, dtype=np.int64).astype(np.int8).astype(np.int32)
        b32 = np.asarray(b, dtype=np.int64).astype(np.int8).astype(np.int32)
        acc32 = np.asarray(acc, dtype=np.int64).astype(np.uint32).view(np.int32)
        with np.errstate(over="ignore"):
            return (acc32 + a32 * b32).view(np.uint32).astype(np.uint64)
    t = acc_fmt.np_type
    with np.errstate(all="ignore"):
        out = [
            t(c) + t(x) * t(y)
            for x, y, c in zip(_scalars(dtype, a), _scalars(dtype, b), _scalars(acc_fmt.name, acc))
        ]
    return to_bits(acc_fmt.name, out)
