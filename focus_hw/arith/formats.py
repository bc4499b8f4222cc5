"""Binary floating-point layouts (IEEE 754) of the arithmetic units.

The layouts live in the number-format registry, :mod:`focus_hw.formats`;
:data:`FORMATS` holds those of its float formats by name.
"""

from __future__ import annotations

from ..formats import BF16, FP16, FP32, NUMBER_FORMATS, FloatFormat

__all__ = ["FloatFormat", "FP16", "BF16", "FP32", "FORMATS", "float_format"]

FORMATS = {name: f.layout for name, f in NUMBER_FORMATS.items() if f.is_float}


def float_format(fmt: str | FloatFormat) -> FloatFormat:
    """Return the :class:`FloatFormat` named ``fmt`` (ValueError for an unknown name)."""
    if isinstance(fmt, FloatFormat):
        return fmt
    try:
        return FORMATS[fmt]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown float format {fmt!r}; expected one of {sorted(FORMATS)}"
        ) from None
