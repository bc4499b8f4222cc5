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
    sic_width`` fp32 adders and multipliers work ``L`` elements per step of
    ``P + 1`` cycles (``P = sic_pipeline``), ``S = vector_size / L`` steps.

    Timing: an update accepted in cycle ``u`` reads its group in ``u``,
    steps in ``u+2 .. u+1+S*(P+1)`` and writes the sum in the last of them;
    the unit takes the next update or query from cycle ``u + S*(P+1) + 2``.
    Means are a pipeline (fetch, ``S`` steps): a query accepted in cycle
    ``q`` with the steps free gives ``mean.valid`` from cycle ``q + S*(P+1)
    + 1`` (:func:`focus_hw.timing.sic_mean_latency`), the last step's
    cycle, and one query per ``S*(P+1)`` cycles is taken while ``mean`` is
    read. Until ``mean`` is taken the last step holds (its products with
    it), and so does the payload.
    """

    def __init__(self, params: FocusParams):
        self.params = params
        idx = index_shape(params)
        super().__init__(
            {
                "update": In(
                    stream.Signature(
                        data.StructLayout({"idx": idx, "own": 1, "data": vector_shape(params)})
                    )
                ),
                "query": In(stream.Signature(idx)),
                "mean": Out(stream.Signature(vector_shape(params))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self.params
        lanes, pipe, op, vs = p.sic_width, p.sic_pipeline, p.operand_bits, p.vector_size
        steps = p.sic_steps
        fmt = float_format(p.dtype)

        m.submodules.sums = sums = memory.Memory(shape=unsigned(32 * vs), depth=p.m_tile, init=[])
        m.submodules.counts = counts = memory.Memory(shape=count_shape(p), depth=p.m_tile, init=[])
        m.submodules.recip = recip = memory.Memory(
            shape=32, depth=p.m_tile + 1, init=reciprocals(p)
        )
        sum_r, sum_w = sums.read_port(), sums.write_port()
        cnt_r, cnt_w = counts.read_port(), counts.write_port()
        rec_r = recip.read_port()

        idx = Signal(index_shape(p))
        own = Signal()
        x = Signal(vs * op)  # the vector being added, or the mean being made
        acc = Signal(32 * vs)  # the group's sum (rotated per step)
        count = Signal(count_shape(p))
        fetched = Signal()  # a query's sum and count are on the read ports
        fetch_idx = Signal(index_shape(p))
        step = Signal(range(steps))
        wait = Signal(range(pipe + 1))

        adds, narrows = [], []
        for lane in range(lanes):
            wid = m.submodules[f"widen{lane}"] = Widen(fmt)
            add = m.submodules[f"add{lane}"] = FAdd(FP32, pipe)
            mul = m.submodules[f"mul{lane}"] = FMul(FP32, pipe)
            lane_sum = acc[lane * 32 : (lane + 1) * 32]
            m.d.comb += [
                wid.a.eq(x[lane * op : (lane + 1) * op]),
                add.a.eq(Mux(own, NEG_ZERO, lane_sum)),
                add.b.eq(wid.out),
                mul.a.eq(lane_sum),
                mul.b.eq(rec_r.data),
            ]
            adds.append(add.out)
            value = Mux(count > 1, mul.out, lane_sum)
            narrows.append(narrow(m, fmt, Pipeline(m, 0, 1, Const(1)), value))

        last = Signal()  # the last step ends this cycle (unless stalled)
        m.d.comb += last.eq((wait == pipe) & (step == steps - 1))

        def advance(target, results):
            """Every ``P + 1`` cycles take one step's lane ``results`` into the
            top of ``target`` and bring the next ``L`` elements to the lanes."""
            with m.If(wait == pipe):
                chunk = len(target) // steps
                m.d.sync += [
                    wait.eq(0),
                    step.eq(step + 1),
                    x.eq(x >> (op * lanes)),
                    acc.eq(acc >> (32 * lanes)),
                    target.eq(Cat(target[chunk:], *results)),
                ]
                with m.If(step == steps - 1):
                    m.d.sync += step.eq(0)
            with m.Else():
                m.d.sync += wait.eq(wait + 1)

        take_update = self.update.valid & self.update.ready
        take_query = self.query.valid & self.query.ready
        start_mean = Signal()  # the fetched sum moves to the lanes
        m.d.comb += [
            sum_r.addr.eq(
                Mux(
                    take_update,
                    self.update.payload.idx,
                    Mux(take_query, self.query.payload, fetch_idx),
                )
            ),
            cnt_r.addr.eq(sum_r.addr),
            rec_r.addr.eq(Mux(start_mean, cnt_r.data, count)),
            sum_w.addr.eq(idx),
            cnt_w.addr.eq(idx),
            sum_w.data.eq(Cat(acc[32 * lanes :], *adds)),
            cnt_w.data.eq(count + 1),
        ]
        with m.If(take_query):
            m.d.sync += [fetched.eq(1), fetch_idx.eq(self.query.payload)]
        with m.Elif(start_mean):
            m.d.sync += fetched.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [
                    self.update.ready.eq(~fetched),
                    self.query.ready.eq(~self.update.valid),
                    start_mean.eq(fetched),
                ]
                with m.If(take_update):
                    m.d.sync += [
                        idx.eq(self.update.payload.idx),
                        own.eq(self.update.payload.own),
                        x.eq(self.update.payload.data),
                    ]
                    m.next = "ADD_READ"
                with m.Elif(fetched):
                    m.next = "MEAN"
            with m.State("ADD_READ"):
                m.d.sync += [
                    acc.eq(sum_r.data),
                    count.eq(Mux(own, 0, cnt_r.data)),
                    step.eq(0),
                    wait.eq(0),
                ]
                m.next = "ADD"
            with m.State("ADD"):
                advance(acc, adds)
                with m.If(last):
                    m.d.comb += [sum_w.en.eq(1), cnt_w.en.eq(1)]
                    m.next = "IDLE"
            with m.State("MEAN"):
                # The last step's products hold while their inputs do: the
                # mean is offered in the step's last cycle until taken.
                done = last & self.mean.ready
                m.d.comb += [
                    self.mean.valid.eq(last),
                    self.mean.payload.eq(Cat(x[op * lanes :], *narrows)),
                    self.query.ready.eq(~fetched | done),
                    start_mean.eq(done & fetched),
                ]
                with m.If(~last | self.mean.ready):
                    advance(x, narrows)
                with m.If(done & ~fetched):
                    m.next = "IDLE"
        with m.If(start_mean):  # after the steps' assignments: this one wins
            m.d.sync += [acc.eq(sum_r.data), count.eq(cnt_r.data), step.eq(0), wait.eq(0)]
        return m
