"""Integer multiply-accumulate datapath: int8 x int8 + int32, two's-complement wrap-around."""

from __future__ import annotations

__all__ = ["int_mac"]


def int_mac(pipe, a, b, acc, width: int):
    """Return ``acc + a*b`` modulo ``2**width`` (a, b, acc read as signed); one cut point."""
    product = a.as_signed() * b.as_signed()
    product, acc = pipe.cut(product, acc)
    return (acc.as_signed() + product)[:width]
