"""Base class of the two-operand float units (add, multiply, max)."""

from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .formats import float_format
from .pipeline import check_pipeline

__all__ = ["BinaryUnit"]


class BinaryUnit(wiring.Component):
    """Ports ``a``, ``b`` -> ``out`` (raw bits of one float format) and ``en``,
    the clock enable of the ``pipeline`` register stages; ``latency ==
    pipeline`` cycles. Subclasses implement ``elaborate``."""

    def __init__(self, fmt, pipeline: int = 0):
        self.fmt = float_format(fmt)
        self.pipeline = self.latency = check_pipeline(pipeline)
        w = self.fmt.width
        super().__init__({"a": In(w), "b": In(w), "en": In(1, init=1), "out": Out(w)})
