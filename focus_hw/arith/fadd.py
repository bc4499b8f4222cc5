"""Floating-point adder (round to nearest even, full IEEE 754 special cases)."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux

from .bits import saturate, shift_right_sticky, wire
from .pipeline import Pipeline
from .rounding import ROUND_CUTS, round_pack
from .unit import BinaryUnit
from .unpack import nan_result, unpack

__all__ = ["FAdd", "add_core", "ADD_CUTS"]

#: Pipeline cut points of :func:`add_core`: after the operand order and
#: exponent difference, after the alignment, after the sum, then those of
#: :func:`~focus_hw.arith.rounding.round_pack`.
ADD_CUTS = 3 + ROUND_CUTS


def add_core(m, fmt, pipe, x, y, nan_candidates):
    """``x + y`` rounded to ``fmt`` from two :class:`Unpacked` operands.

    Operand significands must be normalised unless the exponent is 1 (IEEE
    subnormals); they may be narrower than ``fmt.precision`` (zero-padded).
    ``nan_candidates`` are prepended to the operands' own NaN priority list
    (see :func:`nan_result`); the second operand's NaN wins over the first
    (numpy on x86). Uses the next :data:`ADD_CUTS` cut points of ``pipe``.
    """
    p = fmt.precision
    xs = Cat(Const(0, p - len(x.sig)), x.sig)
    ys = Cat(Const(0, p - len(y.sig)), y.sig)
    invalid = wire(m, x.inf & y.inf & (x.sign != y.sign))
    nan = x.nan | y.nan | invalid
    for _, flag in nan_candidates:
        nan = nan | flag
    nan_bits = nan_result(
        m, fmt, [*nan_candidates, (y.bits, y.nan), (x.bits, x.nan), (None, invalid)]
    )
    infinity = Cat(Const(fmt.exp_max << fmt.man_bits, fmt.width - 1), Mux(x.inf, x.sign, y.sign))
    # The result when an operand is NaN or infinite: known before the sum.
    special = wire(m, nan | x.inf | y.inf)
    special_bits = wire(m, Mux(nan, nan_bits, infinity))
    zero_sign = x.sign & y.sign
    # Order by magnitude so the difference is never negative.
    swap = wire(m, Cat(ys, y.exp) > Cat(xs, x.exp))
    big_exp = Mux(swap, y.exp, x.exp)
    big_sig = Mux(swap, ys, xs)
    small_sig = Mux(swap, xs, ys)
    sign = Mux(swap, y.sign, x.sign)
    subtract = x.sign != y.sign
    # Both exponent differences beside the comparison; the shift saturates.
    distance = Mux(swap, y.exp - x.exp, x.exp - y.exp).as_unsigned()
    distance = wire(m, saturate(distance, (p + 2).bit_length()))
    big_exp, big_sig, small_sig, distance, sign, subtract, special, special_bits, zero_sign = (
        pipe.cut(
            big_exp, big_sig, small_sig, distance, sign, subtract, special, special_bits, zero_sign
        )
    )
    # Guard, round and sticky bits below the significand.
    aligned, sticky = shift_right_sticky(m, Cat(Const(0, 2), small_sig), distance)
    aligned = Cat(sticky, aligned)
    exp = big_exp + 1
    live = pipe.cut(exp, big_sig, aligned, sign, subtract, special, special_bits, zero_sign)
    exp, big_sig, aligned, sign, subtract, special, special_bits, zero_sign = live
    wide = Cat(Const(0, 3), big_sig)
    # One adder for both: wide - aligned == wide + ~aligned + 1 (carry-out dropped).
    raw = wire(m, wide + Mux(subtract, ~aligned, aligned) + subtract)
    total = wire(m, Cat(raw[: p + 3], raw[p + 3] & ~subtract))
    live = pipe.cut(exp, total, sign, special, special_bits, zero_sign)
    exp, total, sign, special, special_bits, zero_sign = live
    sign = Mux(total.any(), sign, zero_sign)
    finite, (special, special_bits) = round_pack(
        m, fmt, sign, exp, total, underflow=False, pipe=pipe, carry=(special, special_bits)
    )
    return Mux(special, special_bits, finite)


class FAdd(BinaryUnit):
    """``out = a + b`` in one float format, RNE; ``latency == pipeline`` cycles.

    NaN results follow numpy on x86: with two NaN operands ``b`` (quieted)
    wins, one NaN operand is returned quieted, an invalid ``inf - inf`` gives
    the default NaN (sign set). bf16 NaNs come out canonical (sign kept), as
    ``ml_dtypes`` produces them.
    """

    def elaborate(self, platform):
        m = Module()
        pipe = Pipeline(m, self.pipeline, ADD_CUTS, self.en)
        x, y = unpack(m, self.fmt, self.a), unpack(m, self.fmt, self.b)
        (out,) = pipe.finish(add_core(m, self.fmt, pipe, x, y, []))
        m.d.comb += self.out.eq(out)
        return m
