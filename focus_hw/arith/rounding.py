"""Normalise, round to nearest even and pack: the common tail of every float unit."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Value

from .bits import clamp, leading_zeros, shift_right_sticky, wire
from .formats import FloatFormat

__all__ = ["round_pack"]


def round_pack(m, fmt: FloatFormat, sign, exp, sig, *, underflow: bool = True) -> Value:
    """Pack ``sig / 2**(len(sig)-1) * 2**(exp - fmt.bias)`` into ``fmt`` with RNE.

    ``exp`` is a signed biased exponent, ``sig`` an unsigned significand that
    may have leading zeros (or be zero). Bits below the last kept one may be
    pre-folded into the LSB of ``sig`` as a sticky bit provided the LSB never
    reaches the guard position. Results beyond the largest finite value round
    to infinity; tiny ones become subnormal (no flush to zero). With
    ``underflow=False`` the caller guarantees ``exp >= 1`` and the right
    shifter for exponents below the normal range is left out.
    """
    sig = wire(m, sig)
    if len(sig) < fmt.precision + 2:
        sig = Cat(Const(0, fmt.precision + 2 - len(sig)), sig)
    width = len(sig)
    exp = Value.cast(exp).as_signed()
    lz = leading_zeros(m, sig)
    room = exp - 1  # left shift that brings the exponent down to 1 (subnormal range)
    use_lz = room >= lz
    shift = wire(m, Mux(use_lz, lz, Mux(room < 0, 0, room)[: len(lz)]))
    shifted = wire(m, (sig << shift)[:width])
    sticky = Const(0, 1)
    if underflow:
        below = clamp(Mux(room < 0, -room, 0).as_unsigned(), width)
        shifted, sticky = shift_right_sticky(m, shifted, below)
    exp_out = Value.cast(exp - shift).as_signed()
    normal = shifted[width - 1]
    overflow = normal & (exp_out >= fmt.exp_max)
    efield = Mux(normal, exp_out[: fmt.exp_bits], 0)
    mant = shifted[width - fmt.precision :]
    guard = shifted[width - fmt.precision - 1]
    rest = shifted[: width - fmt.precision - 1].any() | sticky
    round_up = guard & (rest | mant[0])
    magnitude = Cat(mant[:-1], efield) + round_up
    infinity = Const(fmt.exp_max << fmt.man_bits, fmt.width - 1)
    return Cat(Mux(overflow, infinity, magnitude[: fmt.width - 1]), sign)
