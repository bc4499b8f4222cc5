"""Unpacked floating-point operands and the IEEE special-value / NaN rules."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Mux, Value

from .bits import wire
from .formats import FloatFormat

__all__ = ["Unpacked", "unpack", "nan_result"]


@dataclass
class Unpacked:
    """A decoded operand: value = ``sig / 2**(len(sig)-1) * 2**(exp - bias)``.

    ``exp`` is the biased exponent with subnormals at 1 (so the significand of
    a subnormal has a leading zero); ``bits`` keeps the raw encoding for NaN
    propagation.
    """

    sign: Value
    exp: Value
    sig: Value
    zero: Value
    inf: Value
    nan: Value
    bits: Value


def unpack(m, fmt: FloatFormat, bits) -> Unpacked:
    """Decode raw ``fmt`` bits into sign, exponent, significand and class flags."""
    bits = wire(m, bits)
    frac = bits[: fmt.man_bits]
    efield = bits[fmt.man_bits : fmt.man_bits + fmt.exp_bits]
    normal = efield.any()
    special = efield.all()
    frac_zero = ~frac.any()
    return Unpacked(
        sign=bits[fmt.width - 1],
        exp=efield | ~normal,
        sig=Cat(frac, normal),
        zero=~normal & frac_zero,
        inf=special & frac_zero,
        nan=special & ~frac_zero,
        bits=bits,
    )


def _quiet(fmt: FloatFormat, bits) -> Value:
    bits = Value.cast(bits)
    if fmt.name == "bf16":
        # ml_dtypes converts NaNs through float32 to a canonical quiet NaN, sign kept.
        return Cat(Const(fmt.canonical_nan, fmt.width - 1), bits[fmt.width - 1])
    return bits | fmt.quiet_bit


def nan_result(m, fmt: FloatFormat, candidates) -> Value:
    """NaN result of an operation in format ``fmt`` (numpy's x86 behaviour).

    ``candidates`` is a priority-ordered list of ``(bits, is_nan)``: the first
    NaN one is returned quieted; ``bits=None`` stands for the default NaN
    produced by an invalid operation (sign set, quiet, zero payload -- what
    x86 SSE returns). When none applies the default NaN is returned.
    """
    default = (1 << (fmt.width - 1)) | fmt.canonical_nan
    result = Const(default, fmt.width)
    for bits, is_nan in reversed(candidates):
        value = Const(default, fmt.width) if bits is None else _quiet(fmt, bits)
        result = Mux(is_nan, value, result)
    return wire(m, result)
