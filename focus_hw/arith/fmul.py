"""Floating-point multiplier (round to nearest even, full IEEE 754 special cases)."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux

from .bits import wire
from .pipeline import Pipeline
from .rounding import ROUND_CUTS, round_pack
from .unit import BinaryUnit
from .unpack import nan_result, unpack

__all__ = ["FMul", "mul_core", "MUL_CUTS"]

#: Pipeline cut points of :func:`mul_core`: after the significand product, then
#: those of :func:`~focus_hw.arith.rounding.round_pack`.
MUL_CUTS = 1 + ROUND_CUTS


def mul_core(m, fmt, out_fmt, pipe, x, y, carry=()):
    """``x * y`` of two :class:`Unpacked` ``fmt`` operands, rounded to ``out_fmt``.

    Uses the next :data:`MUL_CUTS` cut points of ``pipe``. Returns ``(bits,
    carry)``: ``carry`` values ride through the same pipeline registers. NaN
    priority: second operand, first operand, then the default NaN for ``0 *
    inf``; payloads are widened to ``out_fmt``.
    """
    invalid = wire(m, (x.inf & y.zero) | (x.zero & y.inf))
    nan = wire(m, x.nan | y.nan | invalid)
    nan_bits = nan_result(
        m,
        out_fmt,
        [(widen_bits(fmt, out_fmt, y.bits), y.nan), (widen_bits(fmt, out_fmt, x.bits), x.nan)],
    )
    sign = x.sign ^ y.sign
    infinity = Cat(Const(out_fmt.exp_max << out_fmt.man_bits, out_fmt.width - 1), sign)
    # The result when an operand is NaN or infinite: known before the product.
    special = wire(m, nan | x.inf | y.inf)
    special_bits = wire(m, Mux(nan, nan_bits, infinity))
    product = wire(m, x.sig * y.sig)
    # product / 2**(2p-1) * 2**(ex + ey - 2 bias + 1): rebias into out_fmt.
    exp = x.exp + y.exp + (out_fmt.bias - 2 * fmt.bias + 1)
    product, exp, sign, special, special_bits, *carry = pipe.cut(
        product, exp, sign, special, special_bits, *carry
    )
    finite, (special, special_bits, *carry) = round_pack(
        m, out_fmt, sign, exp, product, pipe=pipe, carry=(special, special_bits, *carry)
    )
    return Mux(special, special_bits, finite), tuple(carry)


def widen_bits(fmt, out_fmt, bits):
    """Re-encode a NaN's raw bits in a format with at least as many fraction bits."""
    if fmt == out_fmt:
        return bits
    frac = Cat(Const(0, out_fmt.man_bits - fmt.man_bits), bits[: fmt.man_bits])
    return Cat(frac, Const(out_fmt.exp_max, out_fmt.exp_bits), bits[fmt.width - 1])


class FMul(BinaryUnit):
    """``out = a * b`` in one float format, RNE; ``latency == pipeline`` cycles.

    NaN rules as :class:`~focus_hw.arith.fadd.FAdd` (``b`` wins, ``0 * inf``
    gives the default NaN).
    """

    def elaborate(self, platform):
        m = Module()
        pipe = Pipeline(m, self.pipeline, MUL_CUTS, self.en)
        x, y = unpack(m, self.fmt, self.a), unpack(m, self.fmt, self.b)
        out, _ = mul_core(m, self.fmt, self.fmt, pipe, x, y)
        m.d.comb += self.out.eq(out)
        return m
