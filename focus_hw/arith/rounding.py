"""Normalise, round to nearest even and pack: the common tail of every float unit."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Value

from .bits import leading_zeros, shift_left, shift_right_sticky, wire
from .formats import FloatFormat

__all__ = ["round_pack", "ROUND_CUTS"]

#: Pipeline cut points of :func:`round_pack` (after the shift amount, after
#: the shift); a spare one after the leading-zero count.
ROUND_CUTS = 2


def round_pack(m, fmt: FloatFormat, sign, exp, sig, *, underflow: bool = True, pipe=None, carry=()):
    """Pack ``sig / 2**(len(sig)-1) * 2**(exp - fmt.bias)`` into ``fmt`` with RNE.

    ``exp`` is a signed biased exponent, ``sig`` an unsigned significand that
    may have leading zeros (or be zero). Bits below the last kept one may be
    pre-folded into the LSB of ``sig`` as a sticky bit provided the LSB never
    reaches the guard position. Results beyond the largest finite value round
    to infinity; tiny ones become subnormal (no flush to zero). With
    ``underflow=False`` the caller guarantees ``exp >= 1`` and the right
    shifter for exponents below the normal range is left out.

    With a :class:`~focus_hw.arith.pipeline.Pipeline` ``pipe`` the
    :data:`ROUND_CUTS` cut points are its next ones, with a spare one after
    the leading-zero count. Returns ``(bits,
    carry)``: ``carry`` values ride through the same registers.
    """
    cut = pipe.cut if pipe is not None else lambda *values, spare=False: values
    sig = wire(m, sig)
    if len(sig) < fmt.precision + 2:
        sig = Cat(Const(0, fmt.precision + 2 - len(sig)), sig)
    width = len(sig)
    lz = leading_zeros(m, sig)
    sign, exp, sig, lz, *carry = cut(sign, exp, sig, lz, *carry, spare=True)
    exp = Value.cast(exp).as_signed()
    room = exp - 1  # left shift that brings the exponent down to 1 (subnormal range)
    shift = wire(m, Mux(room >= lz, lz, Mux(room < 0, 0, room)[: len(lz)]))
    # A right shift instead when the exponent is below the normal range (then shift == 0).
    below = wire(m, Mux(room < 0, -room, 0).as_unsigned()) if underflow else Const(0, 1)
    sign, exp, sig, shift, below, *carry = cut(sign, exp, sig, shift, below, *carry)
    shifted = wire(m, shift_left(sig, shift))
    sticky = Const(0, 1)
    if underflow:
        right, sticky = shift_right_sticky(m, sig, below)
        shifted = wire(m, Mux(below.any(), right, shifted))
    exp_out = Value.cast(exp - shift).as_signed()
    normal = shifted[width - 1]
    overflow = normal & (exp_out >= fmt.exp_max)
    efield = Mux(normal, exp_out[: fmt.exp_bits], 0)
    sign, shifted, sticky, efield, overflow, *carry = cut(
        sign, shifted, sticky, efield, overflow, *carry
    )
    mant = shifted[width - fmt.precision :]
    guard = shifted[width - fmt.precision - 1]
    rest = shifted[: width - fmt.precision - 1].any() | sticky
    round_up = guard & (rest | mant[0])
    magnitude = Cat(mant[:-1], efield) + round_up
    infinity = Const(fmt.exp_max << fmt.man_bits, fmt.width - 1)
    return Cat(Mux(overflow, infinity, magnitude[: fmt.width - 1]), sign), tuple(carry)
