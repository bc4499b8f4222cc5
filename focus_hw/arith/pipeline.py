"""Optional pipeline registers at the cut points of a combinational datapath."""

from __future__ import annotations

from amaranth.hdl import Signal, Value

__all__ = ["Pipeline", "check_pipeline"]


def check_pipeline(pipeline) -> int:
    if not isinstance(pipeline, int) or isinstance(pipeline, bool) or pipeline < 0:
        raise ValueError(f"pipeline must be an integer >= 0, not {pipeline!r}")
    return pipeline


class Pipeline:
    """Spreads ``stages`` register stages over the ``cuts`` cut points of a datapath.

    The datapath calls :meth:`cut` once per cut point, in order, passing
    every value that is still needed later, and :meth:`finish` on its
    output. Stage ``k`` goes to the cut point nearest to ``k / (stages + 1)``
    of the way through, so the logic is split into ``stages + 1`` similar
    segments. With more stages than cut points every cut point gets one,
    then the *spare* cut points (``cut(..., spare=True)``, not counted in
    ``cuts``) one each in datapath order, and the rest register the output
    (two registers in a row would shorten no path). Registers load only
    while ``en`` is high.
    """

    def __init__(self, m, stages: int, cuts: int, en):
        self._m, self._en, self._cuts = m, en, cuts
        self._count = [0] * cuts
        if stages > cuts:
            self._count = [1] * cuts
            self._out = stages - cuts
        else:
            for k in range(1, stages + 1):
                index = min(cuts, round(k * (cuts + 1) / (stages + 1))) - 1
                self._count[max(index, 0)] += 1
            self._out = 0
        self._next = 0

    @property
    def spare(self) -> int:
        """Stages left for spare cut points and the output."""
        return self._out

    def cut(self, *values, spare: bool = False):
        """Return a tuple of ``values`` delayed by the register stages at this cut point."""
        if spare:
            depth = min(self._out, 1)
            self._out -= depth
            return self._delay(depth, values)
        if self._next >= self._cuts:
            raise RuntimeError("more pipeline cut points used than declared")
        depth = self._count[self._next]
        self._next += 1
        return self._delay(depth, values)

    def finish(self, *values):
        """Return a tuple of the output ``values`` delayed by the stages left
        over after one per cut point and per spare cut point."""
        if self._next != self._cuts:
            raise RuntimeError(f"{self._next} of {self._cuts} pipeline cut points used")
        self._next += 1
        return self._delay(self._out, values)

    def _delay(self, depth: int, values) -> tuple:
        out = []
        for value in values:
            value = Value.cast(value)
            for _ in range(depth):
                reg = Signal(value.shape())
                with self._m.If(self._en):
                    self._m.d.sync += reg.eq(value)
                value = reg
            out.append(value)
        return tuple(out)
