"""Binary floating-point formats (IEEE 754 layout) shared by all arithmetic units."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FloatFormat", "FP16", "BF16", "FP32", "FORMATS", "float_format"]


@dataclass(frozen=True)
class FloatFormat:
    """Sign, ``exp_bits`` biased exponent and ``man_bits`` stored fraction bits."""

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
FORMATS = {f.name: f for f in (FP16, BF16, FP32)}


def float_format(fmt: str | FloatFormat) -> FloatFormat:
    """Return the :class:`FloatFormat` named ``fmt`` (ValueError for an unknown name)."""
    if isinstance(fmt, FloatFormat):
        return fmt
    try:
        return FORMATS[fmt]
    except (KeyError, TypeError):
        raise ValueError(f"unknown float format {fmt!r}; expected one of {sorted(FORMATS)}") from None
