"""Floating-point multiplier (round to nearest even, full IEEE 754 special cases)."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux

from .bits import wire
from .pipeline import Pipeline
from .rounding import round_pack
from .unit import BinaryUnit
from .unpack import nan_result, unpack

__all__ = ["FMul", "mul_core", "MUL_CUTS"]

#: Pipeline cut points of :func:`mul_core` (after the significand product).
MUL_CUTS = 1


def mul_core(m, fmt, out_fmt, pipe, x, y, carry=()):
    """``x * y`` of two :class:`Unpacked` ``fmt`` operands, rounded to ``out_fmt``.

    Returns ``(bits, is_nan, carry)``: ``carry`` values ride through the same
    pipeline registers. NaN priority: second operand, first operand,
    then the default NaN for ``0 * inf``; payloads are widened to ``out_fmt``.
    """
    invalid = wire(m, (x.inf & y.zero) | (x.zero & y.inf))
    nan = wire(m, x.nan | y.nan | invalid)
    nan_bits = nan_result(
        m,
        out_fmt,
        [(widen_bits(fmt, out_fmt, y.bits), y.nan), (widen_bits(fmt, out_fmt, x.bits), x.nan)],
    )
    inf = x.inf | y.inf
    sign = x.sign ^ y.sign
    product = wire(m, x.sig * y.sig)
    # product / 2**(2p-1) * 2**(ex + ey - 2 bias + 1): rebias into out_fmt.
    exp = x.exp + y.exp + (out_fmt.bias - 2 * fmt.bias + 1)
    product, exp, sign, nan, nan_bits, inf, *carry = pipe.cut(
        product, exp, sign, nan, nan_bits, inf, *carry
    )
    finite = round_pack(m, out_fmt, sign, exp, product)
    infinity = Cat(Const(out_fmt.exp_max << out_fmt.man_bits, out_fmt.width - 1), sign)
    return Mux(nan, nan_bits, Mux(inf, infinity, finite)), nan, carry


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
        out, _, _ = mul_core(m, self.fmt, self.fmt, pipe, x, y)
        m.d.comb += self.out.eq(out)
        return m
