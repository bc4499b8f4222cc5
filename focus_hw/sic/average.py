"""The average-update unit: running fp32 group sums and their means."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import FP32, FAdd, FMul, Widen
from ..arith.convert import narrow
from ..arith.formats import float_format
from ..arith.pipeline import Pipeline
from ..arith.reference import to_bits
from ..params import FocusParams
from ..timing import sic_update_cycles, sic_update_lanes
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


def _stages(m, value, cycles: int, en=1) -> list:
    """``value`` and its copies 1 .. ``cycles`` register stages later
    (the stages load while ``en``)."""
    out = [value]
    for _ in range(cycles):
        reg = Signal(Value.cast(out[-1]).shape())
        with m.If(en):
            m.d.sync += reg.eq(out[-1])
        out.append(reg)
    return out


def _late(m, value, cycles: int, en=1):
    """``value`` ``cycles`` register stages later."""
    return _stages(m, value, cycles, en)[-1]


class AverageUpdate(wiring.Component):
    """Sums and counts of the groups of one pass, and their means.

    ``update`` adds a vector to group ``idx`` (the root's index in the M
    tile); ``own`` starts the group (its root: ``sum = -0.0 + x``, count 1),
    otherwise ``sum = fp32(sum + x)`` and the count goes up by one. ``query``
    asks for group ``idx``'s mean; ``mean`` gives it in the operand format:
    ``narrow(fp32(sum * R[count]))`` with ``R`` a reciprocal table
    (:func:`reciprocals`), or ``narrow(sum)`` for a group of one.

    Sums live in a memory of ``m_tile * S`` words of ``L = sic_width`` fp32
    elements (``S = vector_size / L``), counts beside them. An update goes
    through ``U`` fp32 adders (:func:`focus_hw.timing.sic_update_lanes`,
    the fewest that keep up with the SIC's vectors), ``U`` elements a cycle
    read, added and written back (per-element write enables); a mean
    through ``L`` fp32 multipliers, one sum word a cycle. The adders and
    multipliers are plain pipelines of ``P = sic_pipeline`` stages.

    Timing: an update accepted in cycle ``u`` reads its element groups in
    ``u+1 ..`` and writes each ``P + 1`` cycles after its read; the unit
    takes the next update or query from ``u +``
    :func:`~focus_hw.timing.sic_update_cycles`. A query accepted in cycle
    ``q`` with the pipeline free gives ``mean.valid`` from ``q + S + P + 2``
    (:func:`focus_hw.timing.sic_mean_latency`); queries are taken one per
    ``S`` cycles while ``mean`` is read. Until ``mean`` is taken the mean
    pipeline holds, and so does the payload. An update is taken only while
    no mean is in the pipeline.
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
        lanes, pipe, op, steps = p.sic_width, p.sic_pipeline, p.operand_bits, p.sic_steps
        ulanes = sic_update_lanes(p)
        groups = p.vector_size // ulanes  # element groups of one update
        lane_bits = (lanes // ulanes).bit_length() - 1  # 2**lane_bits groups per sum word
        fmt = float_format(p.dtype)

        m.submodules.sums = sums = memory.Memory(
            shape=unsigned(32 * lanes), depth=p.m_tile * steps, init=[]
        )
        m.submodules.counts = counts = memory.Memory(shape=count_shape(p), depth=p.m_tile, init=[])
        m.submodules.recip = recip = memory.Memory(
            shape=32, depth=p.m_tile + 1, init=reciprocals(p)
        )
        sum_r, sum_w = sums.read_port(), sums.write_port(granularity=32 * ulanes)
        cnt_r, cnt_w = counts.read_port(), counts.write_port()
        rec_r = recip.read_port()

        take_update = self.update.valid & self.update.ready
        take_query = self.query.valid & self.query.ready
        x = Signal(vector_shape(p))  # the vector being added, or the mean being made

        # -- update: element groups read, added and written back, one a cycle.
        idx = Signal(index_shape(p))
        own = Signal()
        busy = Signal(range(sic_update_cycles(p)))  # cycles left of the update
        group = Signal(range(groups))
        reading = Signal()
        m.d.comb += reading.eq(busy > pipe + 1)
        loaded = _late(m, reading, 1)  # the read group is on sum_r.data
        with m.If(take_update):
            m.d.sync += [
                idx.eq(self.update.payload.idx),
                own.eq(self.update.payload.own),
                x.eq(self.update.payload.data),
                busy.eq(sic_update_cycles(p) - 1),
                group.eq(0),
            ]
        with m.Elif(busy != 0):
            m.d.sync += busy.eq(busy - 1)
        with m.If(reading):
            m.d.sync += group.eq(group + 1)
        lane = _late(m, group[:lane_bits], 1)
        word = sum_r.data.word_select(lane, 32 * ulanes)
        adds = []
        for k in range(ulanes):
            wid = m.submodules[f"widen{k}"] = Widen(fmt)
            add = m.submodules[f"add{k}"] = FAdd(FP32, pipe)
            m.d.comb += [
                wid.a.eq(x[k * op : (k + 1) * op]),
                add.a.eq(Mux(own, NEG_ZERO, word[k * 32 : (k + 1) * 32])),
                add.b.eq(wid.out),
            ]
            adds.append(add.out)
        with m.If(loaded):
            m.d.sync += x.eq(x >> (op * ulanes))
        write_group = _late(m, group, 1 + pipe)
        m.d.comb += [
            sum_w.addr.eq(Cat(write_group[lane_bits:], idx)),
            sum_w.data.eq(Cat(*adds * (1 << lane_bits))),
            sum_w.en.eq(Mux(_late(m, loaded, pipe), Const(1) << write_group[:lane_bits], 0)),
            cnt_w.addr.eq(idx),
            cnt_w.data.eq(Mux(own, 1, cnt_r.data + 1)),
            cnt_w.en.eq(_late(m, take_update, 1)),
        ]

        # -- means: S sum words a cycle through the multipliers, held while
        # a finished mean waits.
        full = Signal()  # x holds a finished mean
        go = Signal()  # the mean pipeline advances
        m.d.comb += go.eq(~full | self.mean.ready)
        mean_idx = Signal(index_shape(p))
        issuing = Signal()
        step = Signal(range(steps))
        count = Signal(count_shape(p))
        first = Signal()  # the query's count is on cnt_r.data
        with m.If(take_query):
            m.d.sync += [mean_idx.eq(self.query.payload), issuing.eq(1), step.eq(0), first.eq(1)]
        with m.Elif(go & issuing):
            m.d.sync += [first.eq(0), step.eq(step + 1)]
            with m.If(step == steps - 1):
                m.d.sync += issuing.eq(0)
        with m.If(go & first):
            m.d.sync += count.eq(cnt_r.data)
        in_words = Signal()  # a sum word is on sum_r.data
        with m.If(go):
            m.d.sync += in_words.eq(issuing)
        big = _late(m, count > 1, pipe, go)  # the word's group has more than one member
        narrows = []
        for k in range(lanes):
            mul = m.submodules[f"mul{k}"] = FMul(FP32, pipe)
            elem = sum_r.data[k * 32 : (k + 1) * 32]
            m.d.comb += [mul.a.eq(elem), mul.b.eq(rec_r.data), mul.en.eq(go)]
            value = Mux(big, mul.out, _late(m, elem, pipe, go))
            narrows.append(narrow(m, fmt, Pipeline(m, 0, 1, Const(1)), value))
        words = _stages(m, in_words, pipe, go)
        done = words[-1]  # a word's mean lanes are ready
        filled = Signal(range(steps))
        with m.If(go & done):
            m.d.sync += [x.eq(Cat(x[op * lanes :], *narrows)), filled.eq(filled + 1)]
            with m.If(filled == steps - 1):
                m.d.sync += filled.eq(0)
        with m.If(go):
            m.d.sync += full.eq(done & (filled == steps - 1))

        mean_idle = ~issuing & ~Cat(*words).any() & ~full
        m.d.comb += [
            self.update.ready.eq((busy == 0) & mean_idle),
            self.query.ready.eq(
                (busy == 0) & ~self.update.valid & (~issuing | go & (step == steps - 1))
            ),
            self.mean.valid.eq(full),
            self.mean.payload.eq(x),
            sum_r.addr.eq(
                Mux(
                    reading,
                    Cat(group[lane_bits:], idx),
                    Cat(step, mean_idx),
                )
            ),
            sum_r.en.eq(reading | go),
            cnt_r.addr.eq(Mux(take_update, self.update.payload.idx, self.query.payload)),
            cnt_r.en.eq(take_update | take_query),
            rec_r.addr.eq(Mux(first, cnt_r.data, count)),
            rec_r.en.eq(go),
        ]
        return m
