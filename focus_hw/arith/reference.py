"""numpy models of the arithmetic units on raw bit patterns (the tests' reference).

Everything is computed with numpy *scalars* (``ml_dtypes`` for bf16): for
two NaN operands numpy's float32 array loops pick the first operand inside
SIMD chunks but the second one in scalar code (tails, scalars), so only the
scalar path gives one well-defined answer. For all other inputs scalars and
arrays agree.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

__all__ = ["DTYPES", "to_float", "to_bits", "binary", "mac", "widen", "narrow"]

#: Format name -> (numpy scalar type, unsigned bit-pattern type).
DTYPES = {
    "fp16": (np.float16, np.uint16),
    "bf16": (ml_dtypes.bfloat16, np.uint16),
    "fp32": (np.float32, np.uint32),
}


def to_float(fmt: str, bits) -> np.ndarray:
    """Raw bit patterns -> array of ``fmt`` floats."""
    ftype, utype = DTYPES[fmt]
    return np.asarray(bits, dtype=np.uint64).astype(utype).view(ftype)


def to_bits(fmt: str, values) -> np.ndarray:
    """Floats of ``fmt`` -> raw bit patterns as ``np.uint64``."""
    ftype, utype = DTYPES[fmt]
    return np.asarray(values, dtype=ftype).view(utype).astype(np.uint64)


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
        return to_bits(fmt, to_float("fp32", a).astype(DTYPES[fmt][0]))


def mac(dtype: str, a, b, acc) -> np.ndarray:
    """``np.float32(acc) + np.float32(a) * np.float32(b)`` on scalars (raw bits in and out).

    ``int8``: ``int32(acc) + int32(a) * int32(b)`` with wrap-around, returned
    as unsigned 32-bit patterns.
    """
    if dtype == "int8":
        a32 = np.asarray(a, dtype=np.int64).astype(np.int8).astype(np.int32)
        b32 = np.asarray(b, dtype=np.int64).astype(np.int8).astype(np.int32)
        acc32 = np.asarray(acc, dtype=np.int64).astype(np.uint32).view(np.int32)
        with np.errstate(over="ignore"):
            return (acc32 + a32 * b32).view(np.uint32).astype(np.uint64)
    f32 = np.float32
    with np.errstate(all="ignore"):
        out = [f32(c) + f32(x) * f32(y) for x, y, c in
               zip(_scalars(dtype, a), _scalars(dtype, b), _scalars("fp32", acc))]
    return to_bits("fp32", out)
