"""Floating-point multiplier (round to nearest even, full IEEE 754 special cases)."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux

from .bits import wire
from .pipeline import Pipeline
from .rounding import ROUND_CUTS, round_pack
from .unit import BinaryUnit
from .unpack import nan_result, unpack

__all__ = ["FMul", "mul_core", "MUL_CUTS", "FMUL_CUTS"]

#: Pipeline cut points of :func:`mul_core`: after the significand product, then
#: those of :func:`~focus_hw.arith.rounding.round_pack`. Significands wider
#: than :data:`DSP_BITS` have a spare one in the product (used when ``pipe``
#: has a stage to spare).
MUL_CUTS = 1 + ROUND_CUTS

#: Operand width of a hardware multiplier block (the ECP5's ``MULT18X18D``).
DSP_BITS = 18

#: Pipeline cut points of :class:`FMul`: after the operands, then :func:`mul_core`'s.
FMUL_CUTS = 1 + MUL_CUTS


def mul_core(m, fmt, out_fmt, pipe, x, y, carry=()):
    """``x * y`` of two :class:`Unpacked` ``fmt`` operands, rounded to ``out_fmt``.

    Uses the next :data:`MUL_CUTS` cut points of ``pipe``. Significands
    wider than :data:`DSP_BITS` (fp32's 24 bits) multiply as four products
    of their halves, with a register before their sum, when ``pipe`` has a
    stage to spare. Returns ``(bits,
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
    # product / 2**(2p-1) * 2**(ex + ey - 2 bias + 1): rebias into out_fmt.
    exp = x.exp + y.exp + (out_fmt.bias - 2 * fmt.bias + 1)
    width = len(x.sig) + len(y.sig)
    if max(len(x.sig), len(y.sig)) <= DSP_BITS or not pipe.spare:
        product = wire(m, x.sig * y.sig)
    else:
        k = (max(len(x.sig), len(y.sig)) + 1) // 2
        halves = ((0, k), (k, None))
        parts = [x.sig[i:j] * y.sig[u:v] for i, j in halves for u, v in halves]
        live = pipe.cut(*parts, exp, sign, special, special_bits, *carry, spare=True)
        (low, mid_a, mid_b, high), (exp, sign, special, special_bits, *carry) = live[:4], live[4:]
        product = wire(m, (low + ((mid_a + mid_b) << k) + (high << 2 * k))[:width])
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
        pipe = Pipeline(m, self.pipeline, FMUL_CUTS, self.en)
        x, y = (unpack(m, self.fmt, v) for v in pipe.cut(self.a, self.b))
        out, _ = mul_core(m, self.fmt, self.fmt, pipe, x, y)
        (out,) = pipe.finish(out)
        m.d.comb += self.out.eq(out)
        return m
