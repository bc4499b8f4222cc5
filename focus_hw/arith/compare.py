"""Floating-point comparison and maximum (IEEE: -0 == +0, NaN unordered)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .bits import wire
from .formats import float_format
from .pipeline import Pipeline, check_pipeline
from .unit import BinaryUnit
from .unpack import unpack

__all__ = ["FCompare", "FMax", "compare"]


def compare(m, fmt, a, b):
    """Return ``(lt, eq, gt, unordered)`` of two raw ``fmt`` encodings."""
    x, y = unpack(m, fmt, a), unpack(m, fmt, b)
    unordered = wire(m, x.nan | y.nan)
    mag_x, mag_y = x.bits[: fmt.width - 1], y.bits[: fmt.width - 1]
    eq = wire(m, ~unordered & ((x.bits == y.bits) | (x.zero & y.zero)))
    # Greater as signed-magnitude numbers, zeros already made equal above.
    gt_mag = Mux(x.sign, mag_x < mag_y, mag_x > mag_y)
    gt = wire(m, ~unordered & ~eq & Mux(x.sign == y.sign, gt_mag, ~x.sign))
    lt = ~unordered & ~eq & ~gt
    return lt, eq, gt, unordered


class FCompare(wiring.Component):
    """``lt``/``eq``/``gt``/``unordered`` flags of ``a`` vs ``b`` (numpy ``<``, ``==``, ``>``)."""

    def __init__(self, fmt, pipeline: int = 0):
        self.fmt = float_format(fmt)
        self.pipeline = self.latency = check_pipeline(pipeline)
        w = self.fmt.width
        super().__init__(
            {
                "a": In(w),
                "b": In(w),
                "en": In(1, init=1),
                "lt": Out(1),
                "eq": Out(1),
                "gt": Out(1),
                "unordered": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        flags = Pipeline(m, self.pipeline, 0, self.en).finish(*compare(m, self.fmt, self.a, self.b))
        m.d.comb += [
            port.eq(flag) for port, flag in zip((self.lt, self.eq, self.gt, self.unordered), flags)
        ]
        return m


class FMax(BinaryUnit):
    """``out = max(a, b)``; ``latency == pipeline``.

    A NaN operand is returned unchanged (``a`` first), as ``np.maximum`` does.
    Of ``+0`` and ``-0`` the result is ``+0`` in either order (IEEE 754-2019
    ``maximum``; numpy's own choice there depends on the dtype).
    """

    def elaborate(self, platform):
        m = Module()
        x, y = unpack(m, self.fmt, self.a), unpack(m, self.fmt, self.b)
        _, eq, gt, _ = compare(m, self.fmt, self.a, self.b)
        take_a = x.nan | (~y.nan & (gt | (eq & ~x.sign)))
        (out,) = Pipeline(m, self.pipeline, 0, self.en).finish(Mux(take_a, self.a, self.b))
        m.d.comb += self.out.eq(out)
        return m
