"""The average-update unit: running fp32 group sums and their means."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import FP32, FAdd, FMul, Widen
from ..arith.convert import narrow
from ..arith.formats import float_format
from ..arith.pipeline import Pipeline
from ..arith.reference import to_bits
from ..params import FocusParams
from .argmax import index_shape
from .dot import vector_shape

__all__ = ["AverageUpdate"]

#: fp32 bits of -0.0: ``-0.0 + x == x`` for every x, so a new group's sum
#: starts from its root's own (widened) vector.
NEG_ZERO = 1 << 31


def count_shape(params: FocusParams):
    return unsigned(params.m_tile.bit_length())


def reciprocals(params: FocusParams) -> list[int]:
    """fp32 bits of ``fp32(1) / fp32(n)`` for n = 0 .. m_tile (entry 0 unused)."""
    n = np.arange(params.m_tile + 1, dtype=np.float32)
    with np.errstate(divide="ignore"):
        return [int(v) for v in to_bits("fp32", np.float32(1) / n)]


class AverageUpdate(wiring.Component):
    """Sums and counts of the groups of one pass, and their means.

    ``update`` adds a vector to group ``idx`` (the root's index in the M
    tile); ``own`` starts the group (its root: ``sum = -0.0 + x``, count 1),
    otherwise ``sum = fp32(sum + x)`` and the count goes up by one. ``query``
    asks for group ``idx``'s mean; ``mean`` gives it in the operand format:
    ``narrow(fp32(sum * R[count]))`` with ``R`` a reciprocal table
    (:func:`reciprocals`), or ``narrow(sum)`` for a group of one. Sums live in
    an ``m_tile`` x ``vector_size`` fp32 memory, counts beside them; ``L =
    sic_lanes`` fp32 adders and multipliers work ``L`` elements per step of
    ``sic_pipeline + 1`` cycles; an update or a query keeps the unit busy for
    :func:`focus_hw.timing.sic_mean_latency` cycles.
    """

    def __init__(self, params: FocusParams):
        self.params = params
        idx = index_shape(params)
        super().__init__({
            "update": In(stream.Signature(data.StructLayout(
                {"idx": idx, "own": 1, "data": vector_shape(params)}))),
            "query": In(stream.Signature(idx)),
            "mean": Out(stream.Signature(vector_shape(params))),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        lanes, pipe, op, vs = p.sic_lanes, p.sic_pipeline, p.operand_bits, p.vector_size
        steps = vs // lanes
        fmt = float_format(p.dtype)

        m.submodules.sums = sums = memory.Memory(shape=unsigned(32 * vs), depth=p.m_tile,
                                                 init=[])
        m.submodules.counts = counts = memory.Memory(shape=count_shape(p), depth=p.m_tile,
                                                     init=[])
        m.submodules.recip = recip = memory.Memory(shape=32, depth=p.m_tile + 1,
                                                   init=reciprocals(p))
        sum_r, sum_w = sums.read_port(), sums.write_port()
        cnt_r, cnt_w = counts.read_port(), counts.write_port()
        rec_r = recip.read_port()

        idx = Signal(index_shape(p))
        own = Signal()
        x = Signal(vs * op)           # the vector being added (shifted per step)
        acc = Signal(32 * vs)         # the group's sum (rotated per step)
        count = Signal(count_shape(p))
        out = Signal(vs * op)         # the mean (filled per step)
        step = Signal(range(steps))
        wait = Signal(range(pipe + 1))
        m.d.comb += [sum_w.addr.eq(idx), cnt_w.addr.eq(idx), rec_r.addr.eq(count)]

        adds, muls, narrows = [], [], []
        for lane in range(lanes):
            wid = m.submodules[f"widen{lane}"] = Widen(fmt)
            add = m.submodules[f"add{lane}"] = FAdd(FP32, pipe)
            mul = m.submodules[f"mul{lane}"] = FMul(FP32, pipe)
            lane_sum = acc[lane * 32:(lane + 1) * 32]
            m.d.comb += [wid.a.eq(x[lane * op:(lane + 1) * op]),
                         add.a.eq(Mux(own, NEG_ZERO, lane_sum)), add.b.eq(wid.out),
                         mul.a.eq(lane_sum), mul.b.eq(rec_r.data)]
            adds.append(add.out)
            mean = Mux(count > 1, mul.out, lane_sum)
            narrows.append(narrow(m, fmt, Pipeline(m, 0, 1, Const(1)), mean))

        def stepping(target, results, last_state):
            """Every ``pipe + 1`` cycles, take one step's lane ``results`` into
            the top of ``target`` (a shift register of ``steps`` steps) and bring
            the next ``L`` elements of ``x`` and ``acc`` to the lanes."""
            with m.If(wait == pipe):
                chunk = len(target) // steps
                m.d.sync += [wait.eq(0), step.eq(step + 1), x.eq(x >> (op * lanes)),
                             acc.eq(acc >> (32 * lanes)),
                             target.eq(Cat(target[chunk:], *results))]
                with m.If(step == steps - 1):
                    m.next = last_state
            with m.Else():
                m.d.sync += wait.eq(wait + 1)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.update.ready.eq(1), self.query.ready.eq(~self.update.valid)]
                m.d.comb += [sum_r.addr.eq(Mux(self.update.valid, self.update.payload.idx,
                                               self.query.payload)),
                             cnt_r.addr.eq(sum_r.addr)]
                with m.If(self.update.valid):
                    m.d.sync += [idx.eq(self.update.payload.idx), own.eq(self.update.payload.own),
                                 x.eq(self.update.payload.data)]
                    m.next = "ADD_READ"
                with m.Elif(self.query.valid):
                    m.next = "MEAN_READ"
            with m.State("ADD_READ"):
                m.d.sync += [acc.eq(sum_r.data), count.eq(Mux(own, 0, cnt_r.data)),
                             step.eq(0), wait.eq(0)]
                m.next = "ADD"
            with m.State("ADD"):
                stepping(acc, adds, "ADD_WRITE")
            with m.State("ADD_WRITE"):
                m.d.comb += [sum_w.data.eq(acc), sum_w.en.eq(1),
                             cnt_w.data.eq(count + 1), cnt_w.en.eq(1)]
                m.next = "IDLE"
            with m.State("MEAN_READ"):
                m.d.sync += [acc.eq(sum_r.data), count.eq(cnt_r.data)]
                m.next = "MEAN_RECIP"
            with m.State("MEAN_RECIP"):
                # rec_r.addr follows count: its data is valid from the next cycle.
                m.d.sync += [step.eq(0), wait.eq(0)]
                m.next = "MEAN"
            with m.State("MEAN"):
                stepping(out, narrows, "MEAN_DONE")
            with m.State("MEAN_DONE"):
                m.d.comb += [self.mean.valid.eq(1), self.mean.payload.eq(out)]
                with m.If(self.mean.ready):
                    m.next = "IDLE"
        return m
