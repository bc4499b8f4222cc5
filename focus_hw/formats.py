"""The number-format registry: every operand and accumulator format, in one table.

:data:`NUMBER_FORMATS` maps a format name to its :class:`NumberFormat`: width,
numpy scalar type, torch dtype name, IEEE layout (:class:`FloatFormat`, or
``None`` for integers), value <-> raw-bit conversion and, for operand formats
(:data:`OPERAND_FORMATS`), the accumulator format the MAC sums into. Adding an
operand format is one entry here plus its arithmetic in :mod:`focus_hw.arith`.
:func:`accumulator_format` picks the format partial sums are held in
(:data:`ACC_FORMATS`: that accumulator, or the operand format itself).

This module needs only numpy; ``ml_dtypes`` (slow to import) when
:attr:`NumberFormat.np_type` of bf16 is first read, torch when
:attr:`NumberFormat.torch_dtype` is.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass

import numpy as np

__all__ = [
    "FloatFormat",
    "FP16",
    "BF16",
    "FP32",
    "NumberFormat",
    "NUMBER_FORMATS",
    "OPERAND_FORMATS",
    "ACC_FORMATS",
    "number_format",
    "operand_format",
    "accumulator_format",
]


@dataclass(frozen=True)
class FloatFormat:
    """IEEE 754 layout: sign, ``exp_bits`` biased exponent, ``man_bits`` stored fraction bits."""

    name: str
    exp_bits: int
    man_bits: int

    @property
    def width(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def bias(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def exp_max(self) -> int:
        """All-ones biased exponent (infinities and NaNs)."""
        return (1 << self.exp_bits) - 1

    @property
    def precision(self) -> int:
        """Significand bits including the hidden bit."""
        return self.man_bits + 1

    @property
    def quiet_bit(self) -> int:
        """Mask of the quiet-NaN bit (top fraction bit)."""
        return 1 << (self.man_bits - 1)

    @property
    def canonical_nan(self) -> int:
        """Positive quiet NaN with an all-zero payload."""
        return (self.exp_max << self.man_bits) | self.quiet_bit


FP16 = FloatFormat("fp16", 5, 10)
BF16 = FloatFormat("bf16", 8, 7)
FP32 = FloatFormat("fp32", 8, 23)


@dataclass(frozen=True)
class NumberFormat:
    """One number format of the hardware (see the module docstring)."""

    name: str
    #: Width of one element in bits.
    bits: int
    #: numpy scalar type of the values as ``module.name`` (``numpy.float16``,
    #: ``ml_dtypes.bfloat16``, ...): :attr:`np_type`.
    np_name: str
    #: Name of the torch dtype (``torch.<torch_name>``).
    torch_name: str
    #: IEEE layout for floats, ``None`` for two's-complement integers.
    layout: FloatFormat | None = None
    #: Accumulator format of an operand format (``None`` for accumulators).
    acc: NumberFormat | None = None

    @functools.cached_property
    def np_type(self) -> type:
        """numpy scalar type of the values (np.float16, ml_dtypes.bfloat16, np.int8, ...)."""
        module, _, name = self.np_name.rpartition(".")
        return getattr(importlib.import_module(module), name)

    @property
    def is_float(self) -> bool:
        return self.layout is not None

    @property
    def is_operand(self) -> bool:
        """Whether the array takes it as activation/weight format."""
        return self.acc is not None

    @property
    def bytes(self) -> int:
        return self.bits // 8

    @property
    def bits_type(self) -> type:
        """Unsigned numpy type of the raw bit patterns (np.uint16 for fp16)."""
        return np.dtype(f"uint{self.bits}").type

    @property
    def fp32_prefix(self) -> bool:
        """Whether a value's bits are the top ``bits`` of its fp32 bits (bf16)."""
        return self.is_float and self.layout.exp_bits == FP32.exp_bits and self.bits < 32

    @property
    def torch_dtype(self):
        """The torch dtype (imports torch)."""
        import torch

        return getattr(torch, self.torch_name)

    def decode(self, bits) -> np.ndarray:
        """Raw bit patterns (any integer array) -> values of :attr:`np_type`."""
        return np.asarray(bits).astype(self.bits_type).view(self.np_type)

    def to_bits(self, values) -> np.ndarray:
        """Values of :attr:`np_type` -> raw bits (a view; other inputs are cast first)."""
        return np.asarray(values, dtype=self.np_type).view(self.bits_type)

    def encode(self, values) -> np.ndarray:
        """Real ``values`` -> raw bits (:attr:`bits_type`), rounded once to nearest
        even (floats). Integers must be whole numbers in range (ValueError otherwise)."""
        values = np.asarray(values)
        if not self.is_float:
            info = np.iinfo(self.np_type)
            if values.size and (
                np.any(values != np.round(values))
                or values.min() < info.min
                or values.max() > info.max
            ):
                raise ValueError(f"{self.name} values must be integers in [{info.min}, {info.max}]")
            return self.to_bits(values.astype(self.np_type))
        v = values.astype(np.float64)
        if self.layout.precision + 2 <= FP32.precision:
            # ml_dtypes casts float64 through float32: rounding to odd there
            # keeps the final rounding a single one (numpy's fp16 cast agrees)
            v = _to_f32_round_to_odd(v)
        with np.errstate(over="ignore"):
            return self.to_bits(v.astype(self.np_type))


def _to_f32_round_to_odd(v: np.ndarray) -> np.ndarray:
    """float64 -> float32 rounded to odd, so a later rounding to a format of at
    most 22 significand bits (fp32's 24 minus 2) equals one direct rounding of ``v``."""
    with np.errstate(over="ignore"):
        f = v.astype(np.float32)
    bits = f.view(np.uint32).copy()
    inexact = f.astype(np.float64) != v
    away = inexact & (np.abs(f.astype(np.float64)) > np.abs(v))
    bits[away] -= 1  # truncate towards zero (sign-magnitude bits)
    bits[inexact] |= 1
    return bits.view(np.float32)


_FP32 = NumberFormat("fp32", 32, "numpy.float32", "float32", FP32)
_INT32 = NumberFormat("int32", 32, "numpy.int32", "int32")

#: Every format by name: operand formats and their accumulators.
NUMBER_FORMATS: dict[str, NumberFormat] = {
    f.name: f
    for f in (
        NumberFormat("fp16", 16, "numpy.float16", "float16", FP16, _FP32),
        NumberFormat("bf16", 16, "ml_dtypes.bfloat16", "bfloat16", BF16, _FP32),
        NumberFormat("int8", 8, "numpy.int8", "int8", None, _INT32),
        _FP32,
        _INT32,
    )
}

#: The operand (activation/weight) formats of the array.
OPERAND_FORMATS: dict[str, NumberFormat] = {n: f for n, f in NUMBER_FORMATS.items() if f.is_operand}


def number_format(name: str | NumberFormat) -> NumberFormat:
    """The :class:`NumberFormat` called ``name`` (ValueError for an unknown one)."""
    if isinstance(name, NumberFormat):
        return name
    try:
        return NUMBER_FORMATS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown number format {name!r}; expected one of {sorted(NUMBER_FORMATS)}"
        ) from None


def operand_format(name: str | NumberFormat) -> NumberFormat:
    """The operand format called ``name`` (ValueError if it is not one)."""
    fmt = (
        name
        if isinstance(name, NumberFormat)
        else NUMBER_FORMATS.get(name)
        if isinstance(name, str)
        else None
    )
    if fmt is None or not fmt.is_operand:
        raise ValueError(
            f"unknown operand format {name!r}; expected one of {sorted(OPERAND_FORMATS)}"
        )
    return fmt


#: Where partial sums are held (``FocusParams.acc_format``): ``"wide"`` in the
#: operand format's accumulator (fp32, int32), ``"operand"`` in the operand
#: format itself (floats only).
ACC_FORMATS = ("wide", "operand")


def accumulator_format(operand: str | NumberFormat, acc_format: str = "wide") -> NumberFormat:
    """The format partial sums of ``operand`` are held in under ``acc_format``
    (:data:`ACC_FORMATS`); ValueError for an unknown one or ``"operand"`` with
    an integer format."""
    fmt = operand_format(operand)
    if acc_format == "wide":
        return fmt.acc
    if acc_format == "operand":
        if not fmt.is_float:
            raise ValueError(f"acc_format='operand' needs a float operand format, not {fmt.name!r}")
        return fmt
    raise ValueError(f"unknown acc_format {acc_format!r}; expected one of {list(ACC_FORMATS)}")
