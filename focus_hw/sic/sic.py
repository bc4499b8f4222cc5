"""The similarity concentrator (SIC): one streaming unit per output tile pass."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..params import FocusParams
from ..timing import (
    sic_dot_latency,
    sic_mean_cycles,
    sic_mean_latency,
    sic_update_cycles,
    sic_vector_cycles,
    sic_write_cycle,
)
from .argmax import ArgMax, candidate_layout, index_shape, position_shape
from .average import AverageUpdate
from .dot import DotProduct, delayed, vector_shape
from .table import SimilarityMap, SimilarityTable, banked, map_entry

__all__ = ["SIC", "input_layout", "output_layout"]


def records_in_flight(params: FocusParams) -> int:
    """Map records the output phase holds beside the mean pipeline: one
    query per ``E`` = :func:`~focus_hw.timing.sic_mean_cycles` cycles, each
    sent :func:`~focus_hw.timing.sic_mean_latency` after its query, and one
    more so the next query is taken as one is sent."""
    return -(-sic_mean_latency(params) // sic_mean_cycles(params)) + 1


def _frame_shape(params: FocusParams):
    return unsigned(params.max_frame_tokens.bit_length())


def input_layout(params: FocusParams) -> data.StructLayout:
    """One vector of the output tile, as the layouter streams it."""
    return data.StructLayout(
        {
            "data": vector_shape(params),
            "pos": position_shape(params),  # token position in the sequence
            "col": _frame_shape(params),  # its column, row and frame in the grid
            "row": _frame_shape(params),
            "frame": position_shape(params),
            "first": 1,  # first vector of a pass (an M tile's slot)
            "last": 1,  # last vector of the pass
        }
    )


def output_layout(params: FocusParams) -> data.StructLayout:
    """One concentrated vector with its decision."""
    return data.StructLayout(
        {
            "data": vector_shape(params),
            "pos": position_shape(params),
            "root": position_shape(params),  # token position of its group's root
            "zero": 1,
            "similar": 1,
            "last": 1,
        }
    )


class SIC(wiring.Component):
    """Similarity concentration of output tiles (docs: hardware, SIC).

    A *pass* is one vector slot of one M tile: the vectors of its surviving
    tokens in token order, the first and last flagged. For each vector the
    SIC computes its squared magnitude, then for each block-window offset
    reads the candidate from the :class:`SimilarityTable` (tag, M tile and
    window edges decide eligibility), takes its dot product
    (:class:`DotProduct`) and hands it to the :class:`ArgMax`, which decides
    similar/unique and the root (pointer chasing is one read: a candidate's
    root is already final). The vector goes into the table, its decision into
    the :class:`SimilarityMap` and its value into its group's running sum
    (:class:`AverageUpdate`). Once the pass's last vector is added the SIC
    streams the pass out in the same order: each token's decision and its
    group's mean.

    The datapath is statically scheduled: every step of a vector happens a
    fixed number of cycles after the vector was accepted (a shift register
    of accept pulses times them), the dot-product unit takes a new pair every
    ``S*(P+1)`` cycles, table reads are issued a cycle ahead of their dot
    product, and the next vector is accepted while the previous one is still
    being decided; the output phase streams one mean per ``E`` cycles
    (:func:`~focus_hw.timing.sic_mean_cycles`), map reads ahead.

    Passes overlap: the map, sums and counts have two banks, pass ``i``
    uses bank ``i mod 2`` (each vector and each mean query carries it).
    While a pass is sent the next one's vectors are taken at the usual
    period; a pass's output phase starts once its last group-sum update is
    done and the previous pass's last beat is sent, and a pass's first
    vector is taken only once its bank is free (the pass that used it last
    has sent its last beat), so at most one complete pass waits. The
    schedule is :mod:`focus_hw.timing`'s SIC section.

    A pass ends with its ``last`` vector, or with its ``m_tile``-th whatever
    the flags say (``out.last`` then stays low); ``first`` only marks the M
    tile's start position. ``taking`` is high from a pass's first vector
    taken to its last, ``sending`` while an output phase is active (after
    the cycle it starts, up to its last beat).
    ``width`` and ``frame_tokens`` (patches per row and per frame) configure
    the grid and must stay constant during a pass. The ``table_*`` and
    ``map_*`` counters count the similarity table's and map's accesses. Numerics:
    :mod:`focus_hw.sic.model`; timing: :func:`focus_hw.timing.sic_cycles`.
    """

    def __init__(self, params: FocusParams):
        self.params = params
        super().__init__(
            {
                "width": In(_frame_shape(params)),
                "frame_tokens": In(_frame_shape(params)),
                "inp": In(stream.Signature(input_layout(params))),
                "out": Out(stream.Signature(output_layout(params))),
                # accesses of the similarity table and map since reset
                "table_reads": Out(32),
                "table_writes": Out(32),
                "map_reads": Out(32),
                "map_writes": Out(32),
                "taking": Out(1),
                "sending": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self.params
        m.submodules.dot = dot = DotProduct(p)
        m.submodules.argmax = am = ArgMax(p)
        m.submodules.table = table = SimilarityTable(p)
        m.submodules.map = smap = SimilarityMap(p)
        m.d.comb += [
            self.table_reads.eq(table.reads),
            self.table_writes.eq(table.writes),
            self.map_reads.eq(smap.reads),
            self.map_writes.eq(smap.writes),
        ]
        m.submodules.average = avg = AverageUpdate(p)
        m.submodules.records = records = fifo.SyncFIFO(
            width=map_entry(p).size, depth=records_in_flight(p)
        )

        offsets = p.block_offsets
        n_cand = len(offsets)
        op, vs = p.operand_bits, p.vector_size
        table_bits = (p.sic_table_depth - 1).bit_length()
        step = p.sic_steps * (p.sic_pipeline + 1)  # T: one dot product
        dot_lat = sic_dot_latency(p)
        write_at = sic_write_cycle(p)
        period = sic_vector_cycles(p)

        # Accept pulses: event(o) is high o >= 1 cycles after a vector was accepted.
        take_in = Signal()
        m.d.comb += take_in.eq(self.inp.valid & self.inp.ready)
        hist = delayed(m, take_in, max(write_at, period - 1))

        def event(offset):
            return hist[offset - 1]

        beat = Signal(input_layout(p))
        idx = Signal(index_shape(p))  # beat's index in the pass
        next_idx = Signal(index_shape(p))  # the next beat's (0 after a last)
        bank = Signal()  # the bank of the pass being taken
        beat_bank = Signal()
        held = Signal(2)  # per bank: a pass taken into it is not sent yet
        tile_start = Signal(position_shape(p))
        x_zero = Signal()
        m.d.comb += x_zero.eq(~_any_magnitude(beat.data, vs, op))
        n2_x = Signal(32)
        # A pass ends with its last vector, or after m_tile vectors whatever
        # the flags say (a first flag only sets the M tile's start).
        ends = Signal()
        beat_ends = Signal()
        m.d.comb += ends.eq(self.inp.payload.last | (next_idx == p.m_tile - 1))
        # Ready when the last vector was taken period or more cycles ago and
        # the pass's bank is free; a register, made from the next cycle's state.
        ready = Signal(init=1)
        m.d.comb += [
            self.inp.ready.eq(ready),
            self.taking.eq(take_in | (next_idx != 0)),
        ]
        with m.If(take_in):
            m.d.sync += beat.eq(self.inp.payload)
            m.d.sync += [
                idx.eq(next_idx),
                next_idx.eq(Mux(ends, 0, next_idx + 1)),
                beat_ends.eq(ends),
                beat_bank.eq(bank),
            ]
            with m.If(self.inp.payload.first):
                m.d.sync += tile_start.eq(self.inp.payload.pos)
            with m.If(ends):
                m.d.sync += bank.eq(~bank)

        # Squared magnitude: the first dot product.
        with m.If(event(1)):
            m.d.comb += [
                dot.inp.valid.eq(1),
                dot.inp.payload.a.eq(beat.data),
                dot.inp.payload.b.eq(beat.data),
            ]
        with m.If(event(1 + dot_lat)):
            m.d.sync += n2_x.eq(dot.out.payload)

        # Candidate k: table read at (k+1)T, its dot product from (k+1)T + 1,
        # the arg-max from (k+1)T + 1 + dot latency.
        cand_pos = Signal(position_shape(p))
        cand_ok = Signal()
        rd_pos = Signal(position_shape(p))  # the read candidate, a cycle later
        rd_ok = Signal()
        entry = table.data.payload
        meta = [Signal(candidate_layout(p), name=f"meta{k}") for k in range(n_cand)]
        for k, (df, dh, dw) in enumerate(offsets):
            shift = df * self.frame_tokens + dh * self.width + dw
            ok = beat.pos >= shift
            if not p.block_wrap:
                ok = ok & (beat.col >= dw) & (beat.row >= dh) & (beat.frame >= df)
            with m.If(event((k + 1) * step)):
                m.d.comb += [
                    cand_pos.eq(beat.pos - shift),
                    cand_ok.eq(ok),
                    table.read.valid.eq(1),
                    table.read.payload.eq(cand_pos[:table_bits]),
                ]
                m.d.sync += [rd_pos.eq(cand_pos), rd_ok.eq(cand_ok)]
            with m.If(event((k + 1) * step + 1)):
                m.d.comb += [
                    dot.inp.valid.eq(1),
                    dot.inp.payload.a.eq(beat.data),
                    dot.inp.payload.b.eq(entry.data),
                    table.data.ready.eq(1),
                ]
                m.d.sync += [
                    meta[k].n2.eq(entry.n2),
                    meta[k].root_pos.eq(entry.root_pos),
                    meta[k].root_idx.eq(entry.root_idx),
                    meta[k].eligible.eq(
                        rd_ok
                        & (rd_pos >= tile_start)
                        & (entry.pos == rd_pos)
                        & ~entry.zero
                        & ~x_zero
                    ),
                ]
            with m.If(event((k + 1) * step + 1 + dot_lat)):
                c = am.cand.payload
                m.d.comb += [
                    am.cand.valid.eq(1),
                    c.d.eq(dot.out.payload),
                    c.n2.eq(meta[k].n2),
                    c.n2_x.eq(n2_x),
                    c.eligible.eq(meta[k].eligible),
                    c.root_pos.eq(meta[k].root_pos),
                    c.root_idx.eq(meta[k].root_idx),
                    c.last.eq(k == n_cand - 1),
                ]

        # The vector retires (table, map and group sum) once decided; by then
        # the next vector may be in: keep what the writes need.
        ret = Signal(
            data.StructLayout(
                {
                    "data": vector_shape(p),
                    "pos": position_shape(p),
                    "zero": 1,
                    "idx": index_shape(p),
                    "bank": 1,
                    "last": 1,
                    "ends": 1,
                }
            )
        )
        with m.If(event(1 + n_cand * step)):
            m.d.sync += [
                ret.data.eq(beat.data),
                ret.pos.eq(beat.pos),
                ret.zero.eq(x_zero),
                ret.idx.eq(idx),
                ret.bank.eq(beat_bank),
                ret.last.eq(beat.last),
                ret.ends.eq(beat_ends),
            ]
        similar = Signal()
        root_pos = Signal(position_shape(p))
        root_idx = Signal(index_shape(p))
        if n_cand:
            dec = am.decision.payload
            m.d.comb += [
                similar.eq(dec.similar),
                root_pos.eq(Mux(dec.similar, dec.root_pos, ret.pos)),
                root_idx.eq(Mux(dec.similar, dec.root_idx, ret.idx)),
            ]
        else:
            m.d.comb += [root_pos.eq(ret.pos), root_idx.eq(ret.idx)]
        retire = event(write_at)
        u = avg.update.payload
        m.d.comb += [
            avg.update.valid.eq(retire),
            u.idx.eq(root_idx),
            u.bank.eq(ret.bank),
            u.own.eq(~similar),
            u.data.eq(ret.data),
        ]
        t = table.write.payload
        m.d.comb += [
            table.write.valid.eq(retire),
            t.addr.eq(ret.pos[:table_bits]),
            t.entry.pos.eq(ret.pos),
            t.entry.data.eq(ret.data),
            t.entry.n2.eq(n2_x),
            t.entry.zero.eq(ret.zero),
            t.entry.root_pos.eq(root_pos),
            t.entry.root_idx.eq(root_idx),
        ]
        s = smap.write.payload
        m.d.comb += [
            smap.write.valid.eq(retire),
            s.addr.eq(banked(ret.idx, ret.bank, p)),
            s.entry.pos.eq(ret.pos),
            s.entry.zero.eq(ret.zero),
            s.entry.similar.eq(similar),
            s.entry.root_pos.eq(root_pos),
            s.entry.root_idx.eq(root_idx),
        ]

        # A complete pass waits until its last group-sum update is done
        # (sic_output_start) and the output side is free.
        pend = Signal()
        pend_wait = Signal(range(sic_update_cycles(p) - 2))
        pend_idx = Signal(index_shape(p))
        pend_bank = Signal()
        pend_flagged = Signal()
        with m.If(retire & ret.ends):
            m.d.sync += [
                pend.eq(1),
                pend_wait.eq(sic_update_cycles(p) - 3),
                pend_idx.eq(ret.idx),
                pend_bank.eq(ret.bank),
                pend_flagged.eq(ret.last),
            ]
        with m.Elif(pend_wait != 0):
            m.d.sync += pend_wait.eq(pend_wait - 1)

        # Output phase: map reads run ahead, their records wait in a FIFO
        # beside the mean pipeline.
        sending = Signal()
        last_idx = Signal(index_shape(p))
        out_bank = Signal()
        flagged = Signal()  # the pass's end was flagged last
        reading = Signal()
        read_idx = Signal(index_shape(p))
        out_idx = Signal(index_shape(p))
        sent = Signal()  # the pass's last beat is taken
        m.d.comb += sent.eq(self.out.valid & self.out.ready & (out_idx == last_idx))
        claim = take_in & (next_idx == 0)
        held_next = Signal(2)
        m.d.comb += held_next.eq(
            held & ~Cat(sent & ~out_bank, sent & out_bank) | Cat(claim & ~bank, claim & bank)
        )
        m.d.sync += held.eq(held_next)
        idx_next = Mux(take_in, Mux(ends, 0, next_idx + 1), next_idx)
        bank_next = bank ^ (take_in & ends)
        recent = Cat(take_in, hist)[: period - 1]  # hist[: period - 1] in the next cycle
        m.d.sync += ready.eq(
            ((idx_next != 0) | ~held_next.bit_select(bank_next, 1)) & ~recent.any()
        )
        with m.If(sent):
            m.d.sync += [out_idx.eq(0), sending.eq(0)]
        with m.Elif(self.out.valid & self.out.ready):
            m.d.sync += out_idx.eq(out_idx + 1)
        with m.If(pend & (pend_wait == 0) & (~sending | sent)):
            m.d.sync += [
                pend.eq(0),
                sending.eq(1),
                last_idx.eq(pend_idx),
                out_bank.eq(pend_bank),
                flagged.eq(pend_flagged),
                reading.eq(1),
                read_idx.eq(0),
            ]
        m.d.comb += [
            self.sending.eq(sending),
            smap.read.valid.eq(reading),
            smap.read.payload.eq(banked(read_idx, out_bank, p)),
        ]
        with m.If(smap.read.valid & smap.read.ready):
            m.d.sync += read_idx.eq(read_idx + 1)
            with m.If(read_idx == last_idx):
                m.d.sync += reading.eq(0)
        m.d.comb += [
            avg.query.valid.eq(smap.data.valid & records.w_rdy),
            avg.query.payload.idx.eq(smap.data.payload.root_idx),
            avg.query.payload.bank.eq(out_bank),
            smap.data.ready.eq(avg.query.ready & records.w_rdy),
            records.w_en.eq(smap.data.valid & smap.data.ready),
            records.w_data.eq(smap.data.payload),
        ]
        record = data.View(map_entry(p), records.r_data)
        o = self.out.payload
        m.d.comb += [
            self.out.valid.eq(avg.mean.valid),
            avg.mean.ready.eq(self.out.ready),
            records.r_en.eq(self.out.valid & self.out.ready),
            o.data.eq(avg.mean.payload),
            o.pos.eq(record.pos),
            o.root.eq(record.root_pos),
            o.zero.eq(record.zero),
            o.similar.eq(record.similar),
            o.last.eq(flagged & (out_idx == last_idx)),
        ]
        return m


def _any_magnitude(bits, count: int, width: int):
    """Whether any of ``count`` ``width``-bit floats has non-zero magnitude bits."""
    return Cat(*[bits[i * width : (i + 1) * width - 1].any() for i in range(count)]).any()
