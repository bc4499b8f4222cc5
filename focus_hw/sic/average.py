"""The average-update unit: running fp32 group sums and their means."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import FP32, FAdd, FMul, Widen
from ..arith.convert import narrow_stages
from ..arith.formats import float_format
from ..arith.reference import to_bits
from ..params import FocusParams
from ..timing import sic_mean_lanes, sic_update_cycles, sic_update_lanes
from .argmax import index_shape
from .dot import vector_shape
from .table import banked

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
    """Sums and counts of the groups of two passes, and their means.

    ``update`` adds a vector to group ``idx`` (the root's index in the M
    tile) of ``bank`` (0 or 1, the pass's); ``own`` starts the group (its
    root: ``sum = -0.0 + x``, count 1), otherwise ``sum = fp32(sum + x)``
    and the count goes up by one. ``query`` asks for the mean of group
    ``idx`` of ``bank``; ``mean`` gives it in the operand format:
    ``narrow(fp32(sum * R[count]))`` with ``R`` a reciprocal table
    (:func:`reciprocals`), or ``narrow(sum)`` for a group of one.

    Sums live in a memory of ``2 * m_tile * vector_size / w`` words of ``w =
    max(U, Q)`` fp32 elements, the bank the address's top bit; counts
    beside them. Updates and queries take separate paths with their own
    read ports, so neither waits for the other (the caller keeps them to
    different banks, or queries a group after its last update). An update
    goes through ``U`` fp32 adders (:func:`focus_hw.timing.sic_update_lanes`),
    ``U`` elements a cycle read, added and written back (per-element write
    enables); a mean through ``Q`` fp32 multipliers and narrowing units
    (:func:`focus_hw.timing.sic_mean_lanes`), ``Q`` elements a cycle. The
    adders, multipliers and narrowing units are plain pipelines of ``P =
    sic_pipeline`` stages.

    Timing: an update accepted in cycle ``u`` reads its element groups in
    ``u+1 ..`` and writes each ``P + 1`` cycles after its read; the next
    update is taken from ``u +`` :func:`~focus_hw.timing.sic_update_cycles`.
    A query accepted in cycle ``q`` with the mean pipeline free reads the
    count in ``q`` and its sums from ``q + 1`` and gives ``mean.valid`` from
    ``q + E + 2P + 2`` (:func:`focus_hw.timing.sic_mean_latency`); queries
    are taken one per ``E`` = :func:`~focus_hw.timing.sic_mean_cycles`
    cycles while ``mean`` is read. Until ``mean`` is taken the mean pipeline
    holds, and so does the payload.
    """

    def __init__(self, params: FocusParams):
        self.params = params
        idx = index_shape(params)
        super().__init__(
            {
                "update": In(
                    stream.Signature(
                        data.StructLayout(
                            {"idx": idx, "bank": 1, "own": 1, "data": vector_shape(params)}
                        )
                    )
                ),
                "query": In(stream.Signature(data.StructLayout({"idx": idx, "bank": 1}))),
                "mean": Out(stream.Signature(vector_shape(params))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self.params
        pipe, op, vs = p.sic_pipeline, p.operand_bits, p.vector_size
        ulanes, qlanes = sic_update_lanes(p), sic_mean_lanes(p)
        width = max(ulanes, qlanes)  # fp32 elements of a sum word
        groups, steps = vs // ulanes, vs // qlanes  # element groups of an update, a mean
        ubits = (width // ulanes).bit_length() - 1  # 2**ubits update groups per word
        qbits = (width // qlanes).bit_length() - 1  # 2**qbits mean groups per word
        fmt = float_format(p.dtype)

        m.submodules.sums = sums = memory.Memory(
            shape=unsigned(32 * width), depth=2 * p.m_tile * (vs // width), init=[]
        )
        m.submodules.counts = counts = memory.Memory(
            shape=count_shape(p), depth=2 * p.m_tile, init=[]
        )
        m.submodules.recip = recip = memory.Memory(
            shape=32, depth=p.m_tile + 1, init=reciprocals(p)
        )
        sum_w = sums.write_port(granularity=32 * ulanes)
        sum_u, sum_q = sums.read_port(), sums.read_port()
        cnt_w, cnt_u, cnt_q = counts.write_port(), counts.read_port(), counts.read_port()
        rec_r = recip.read_port()

        # -- update: element groups read, added and written back, one a cycle.
        take_update = self.update.valid & self.update.ready
        req = self.update.payload
        x = Signal(vector_shape(p))  # the vector being added
        idx = Signal(index_shape(p))
        bank = Signal()
        own = Signal()
        busy = Signal(range(sic_update_cycles(p)))  # cycles left of the update
        group = Signal(range(groups))
        reading = Signal()
        m.d.comb += reading.eq(busy > pipe + 1)
        loaded = _late(m, reading, 1)  # the read group is on sum_u.data
        with m.If(take_update):
            m.d.sync += [
                idx.eq(req.idx),
                bank.eq(req.bank),
                own.eq(req.own),
                x.eq(req.data),
                busy.eq(sic_update_cycles(p) - 1),
                group.eq(0),
            ]
        with m.Elif(busy != 0):
            m.d.sync += busy.eq(busy - 1)
        with m.If(reading):
            m.d.sync += group.eq(group + 1)
        lane = _late(m, group[:ubits], 1)
        word = sum_u.data.word_select(lane, 32 * ulanes)
        # With P > 0 the element group is widened as its sums are read (x
        # moves on with the reads), so the adders start from registers.
        ahead = 1 if pipe else 0
        adds = []
        for k in range(ulanes):
            wid = m.submodules[f"widen{k}"] = Widen(fmt, ahead)
            add = m.submodules[f"add{k}"] = FAdd(FP32, pipe)
            m.d.comb += [
                wid.a.eq(x[k * op : (k + 1) * op]),
                add.a.eq(Mux(own, NEG_ZERO, word[k * 32 : (k + 1) * 32])),
                add.b.eq(wid.out),
            ]
            adds.append(add.out)
        with m.If(reading if ahead else loaded):
            m.d.sync += x.eq(x >> (op * ulanes))
        write_group = _late(m, group, 1 + pipe)
        m.d.comb += [
            self.update.ready.eq(busy == 0),
            sum_u.addr.eq(Cat(group[ubits:], banked(idx, bank, p))),
            sum_u.en.eq(reading),
            sum_w.addr.eq(Cat(write_group[ubits:], banked(idx, bank, p))),
            sum_w.data.eq(Cat(*adds * (1 << ubits))),
            sum_w.en.eq(Mux(_late(m, loaded, pipe), Const(1) << write_group[:ubits], 0)),
            cnt_u.addr.eq(banked(req.idx, req.bank, p)),
            cnt_u.en.eq(take_update),
            cnt_w.addr.eq(banked(idx, bank, p)),
            cnt_w.data.eq(Mux(own, 1, cnt_u.data + 1)),
            cnt_w.en.eq(_late(m, take_update, 1)),
        ]

        # -- means: one element group of Q a cycle through the multipliers,
        # held while a finished mean waits.
        take_query = self.query.valid & self.query.ready
        mean = Signal(vector_shape(p))  # the mean being made
        full = Signal()  # mean is finished
        go = Signal()  # the mean pipeline advances
        m.d.comb += go.eq(~full | self.mean.ready)
        query = Signal.like(self.query.payload)
        issuing = Signal()
        step = Signal(range(steps))
        count = Signal(count_shape(p))
        first = Signal()  # the query's count is on cnt_q.data
        with m.If(take_query):
            m.d.sync += [query.eq(self.query.payload), issuing.eq(1), step.eq(0), first.eq(1)]
        with m.Elif(go & issuing):
            m.d.sync += [first.eq(0), step.eq(step + 1)]
            with m.If(step == steps - 1):
                m.d.sync += issuing.eq(0)
        with m.If(go & first):
            m.d.sync += count.eq(cnt_q.data)
        in_groups = Signal()  # an element group is on sum_q.data
        with m.If(go):
            m.d.sync += in_groups.eq(issuing)
        elems = sum_q.data.word_select(_late(m, step[:qbits], 1, go), 32 * qlanes)
        big = _late(m, count > 1, pipe, go)  # the group has more than one member
        narrows = []
        for k in range(qlanes):
            mul = m.submodules[f"mul{k}"] = FMul(FP32, pipe)
            elem = elems[k * 32 : (k + 1) * 32]
            m.d.comb += [mul.a.eq(elem), mul.b.eq(rec_r.data), mul.en.eq(go)]
            value = Mux(big, mul.out, _late(m, elem, pipe, go))
            narrows.append(narrow_stages(m, fmt, pipe, go, value))
        done = _late(m, in_groups, 2 * pipe, go)  # an element group's means are ready
        filled = Signal(range(steps))
        with m.If(go & done):
            m.d.sync += [mean.eq(Cat(mean[op * qlanes :], *narrows)), filled.eq(filled + 1)]
            with m.If(filled == steps - 1):
                m.d.sync += filled.eq(0)
        with m.If(go):
            m.d.sync += full.eq(done & (filled == steps - 1))

        m.d.comb += [
            self.query.ready.eq(~issuing | go & (step == steps - 1)),
            self.mean.valid.eq(full),
            self.mean.payload.eq(mean),
            sum_q.addr.eq(Cat(step[qbits:], banked(query.idx, query.bank, p))),
            sum_q.en.eq(go),
            cnt_q.addr.eq(banked(self.query.payload.idx, self.query.payload.bank, p)),
            cnt_q.en.eq(take_query),
            rec_r.addr.eq(Mux(first, cnt_q.data, count)),
            rec_r.en.eq(go),
        ]
        return m
