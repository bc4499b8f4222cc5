"""Bit-level building blocks: leading-zero count and shifters with sticky bit."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Value, unsigned

__all__ = ["leading_zeros", "shift_right_sticky", "clamp"]


def _lzc_tree(bits):
    """Balanced tree over a power-of-two list of bits (LSB first).

    Returns ``(all_zero, count)``; ``count`` is valid when not all zero.
    """
    if len(bits) == 1:
        return ~bits[0], Const(0, 0)
    half = len(bits) // 2
    lo_zero, lo_count = _lzc_tree(bits[:half])
    hi_zero, hi_count = _lzc_tree(bits[half:])
    count = Cat(Mux(hi_zero, lo_count, hi_count), hi_zero)
    return hi_zero & lo_zero, count


def leading_zeros(value) -> Value:
    """Number of leading zeros of ``value`` (``len(value)`` when it is zero), as a tree."""
    value = Value.cast(value)
    width = len(value)
    size = 1
    while size < width + 1:
        size *= 2
    # A single one below the value makes the padded word never zero: count <= width.
    padded = Cat(Const(0, size - width - 1), Const(1, 1), value)
    _, count = _lzc_tree([padded[i] for i in range(size)])
    return count


def clamp(amount, limit: int) -> Value:
    """``min(amount, limit)`` for an unsigned ``amount`` (narrows a shifter's control)."""
    amount = Value.cast(amount)
    if (1 << len(amount)) - 1 <= limit:
        return amount
    return Mux(amount > limit, limit, amount)[: limit.bit_length()]


def shift_right_sticky(value, amount):
    """``value >> amount`` and the OR of the bits shifted out, as ``(shifted, sticky)``."""
    value = Value.cast(value)
    width = len(value)
    amount = clamp(amount, width)
    wide = Cat(Const(0, width), value) >> amount
    return wide[width:], wide[:width].any()
