"""Integer multiply-accumulate datapath: int8 x int8 + int32, two's-complement wrap-around."""

from __future__ import annotations

__all__ = ["int_mac", "int_sum_bits", "PRODUCT_MAX", "PRODUCT_MIN"]

#: Extremes of an int8 x int8 product: (-128)*(-128) and (-128)*127.
PRODUCT_MAX, PRODUCT_MIN = 128 * 128, -128 * 127


def int_sum_bits(terms: int, cap: int = 32) -> int:
    """Signed width that holds every sum of ``terms`` int8 x int8 products
    exactly: ``terms * PRODUCT_MIN <= s <= terms * PRODUCT_MAX`` fits in
    ``n`` bits when ``-2**(n-1) <= s <= 2**(n-1) - 1``. Capped at ``cap``
    (beyond it the sum wraps around like the int32 accumulator)."""
    if not isinstance(terms, int) or terms < 1:
        raise ValueError(f"int_sum_bits: terms={terms!r} must be an integer >= 1")
    hi, lo = terms * PRODUCT_MAX, terms * PRODUCT_MIN
    return min(cap, 1 + max(hi.bit_length(), (-lo - 1).bit_length()))


def int_mac(pipe, a, b, acc, width: int):
    """Return ``acc + a*b`` modulo ``2**width`` (a, b, acc read as signed); one cut point."""
    product = a.as_signed() * b.as_signed()
    product, acc = pipe.cut(product, acc)
    return (acc.as_signed() + product)[:width]
