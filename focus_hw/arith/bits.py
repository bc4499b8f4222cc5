"""Bit-level building blocks: leading-zero count and shifters."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Signal, Value

__all__ = ["wire", "leading_zeros", "shift_left", "shift_right_sticky", "saturate"]


def wire(m, value) -> Signal:
    """A signal driven by ``value`` (keeps shared subexpressions from being copied)."""
    value = Value.cast(value)
    if isinstance(value, Signal):
        return value
    signal = Signal(value.shape())
    m.d.comb += signal.eq(value)
    return signal


def _lzc_tree(value):
    """Leading zeros of a power-of-two-wide, non-zero ``value`` as a balanced tree.

    Each level picks the upper half's count unless that half is all zero;
    the zero flags are plain OR-reductions, so the expression stays linear in
    size (no shared subtrees) and synthesis builds the tree.
    """
    if len(value) == 1:
        return Const(0, 0)
    half = len(value) // 2
    lo, hi = value[:half], value[half:]
    hi_zero = ~hi.any()
    return Cat(Mux(hi_zero, _lzc_tree(lo), _lzc_tree(hi)), hi_zero)


def leading_zeros(m, value) -> Value:
    """Number of leading zeros of ``value`` (``len(value)`` when it is zero), as a tree."""
    value = Value.cast(value)
    width = len(value)
    size = 1
    while size < width + 1:
        size *= 2
    # A single one below the value makes the padded word never zero: count <= width.
    padded = Cat(Const(0, size - width - 1), Const(1, 1), value)
    return wire(m, _lzc_tree(padded))


def shift_left(value, amount) -> Value:
    """``value << amount`` truncated to ``len(value)``, shifting by the high
    bits of ``amount`` first: they are the first ones :func:`leading_zeros`
    settles, so a normalising shift overlaps with the count."""
    value = Value.cast(value)
    for i in reversed(range(len(amount))):
        value = Mux(amount[i], (value << (1 << i))[: len(value)], value)
    return value


def saturate(amount, bits: int) -> Value:
    """An unsigned ``amount`` limited to ``bits`` bits (larger values become all ones)."""
    amount = Value.cast(amount)
    if len(amount) <= bits:
        return amount
    return Mux(amount[bits:].any(), (1 << bits) - 1, amount[:bits])


def shift_right_sticky(m, value, amount):
    """``value >> amount`` and the OR of the bits shifted out, as ``(shifted, sticky)``.

    ``amount`` saturates at ``2**n - 1`` (``n`` bits span ``len(value)``);
    every larger shift moves the whole value into the sticky bit too."""
    value = Value.cast(value)
    amount = saturate(amount, len(value).bit_length())
    span = (1 << len(amount)) - 1
    wide = wire(m, Cat(Const(0, span), value) >> amount)
    return wide[span:], wide[:span].any()
