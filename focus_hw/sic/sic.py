"""The similarity concentrator (SIC): one streaming unit per output tile pass."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out, connect

from ..params import FocusParams
from .argmax import ArgMax, index_shape, position_shape
from .average import AverageUpdate
from .dot import DotProduct, vector_shape
from .table import SimilarityMap, SimilarityTable

__all__ = ["SIC", "input_layout", "output_layout"]


def _frame_shape(params: FocusParams):
    return unsigned(params.max_frame_tokens.bit_length())


def input_layout(params: FocusParams) -> data.StructLayout:
    """One vector of the output tile, as the layouter streams it."""
    return data.StructLayout({
        "data": vector_shape(params),
        "pos": position_shape(params),    # token position in the sequence
        "col": _frame_shape(params),      # its column, row and frame in the grid
        "row": _frame_shape(params),
        "frame": position_shape(params),
        "first": 1,                       # first vector of a pass (an M tile's slot)
        "last": 1,                        # last vector of the pass
    })


def output_layout(params: FocusParams) -> data.StructLayout:
    """One concentrated vector with its decision."""
    return data.StructLayout({
        "data": vector_shape(params),
        "pos": position_shape(params),
        "root": position_shape(params),   # token position of its group's root
        "zero": 1,
        "similar": 1,
        "last": 1,
    })


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
    (:class:`AverageUpdate`). After the pass's last vector the SIC streams the
    pass out in the same order: each token's decision and its group's mean.

    ``width`` and ``frame_tokens`` (patches per row and per frame) configure
    the grid and must stay constant during a pass. Numerics:
    :mod:`focus_hw.sic.model`; timing: :func:`focus_hw.timing.sic_cycles`.
    """

    def __init__(self, params: FocusParams):
        self.params = params
        super().__init__({
            "width": In(_frame_shape(params)),
            "frame_tokens": In(_frame_shape(params)),
            "inp": In(stream.Signature(input_layout(params))),
            "out": Out(stream.Signature(output_layout(params))),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        m.submodules.dot = dot = DotProduct(p)
        m.submodules.argmax = am = ArgMax(p)
        m.submodules.table = table = SimilarityTable(p)
        m.submodules.map = smap = SimilarityMap(p)
        m.submodules.average = avg = AverageUpdate(p)

        offsets = p.block_offsets
        n_cand = len(offsets)
        op, vs = p.operand_bits, p.vector_size
        table_bits = (p.sic_table_depth - 1).bit_length()

        beat = Signal(input_layout(p))
        x_zero = Signal()
        m.d.comb += x_zero.eq(~_any_magnitude(beat.data, vs, op))
        tile_start = Signal(position_shape(p))
        idx = Signal(index_shape(p))            # the vector's index in the pass
        last_idx = Signal(index_shape(p))
        n2_x = Signal(32)
        k = Signal(range(max(1, n_cand)))
        entry = Signal.like(table.data.payload)
        d = Signal(32)
        similar = Signal()
        root_pos = Signal(position_shape(p))
        root_idx = Signal(index_shape(p))
        record = Signal.like(smap.data.payload)

        # Candidate k: position, and whether the window and tile allow it.
        shift = Signal(position_shape(p))
        allowed = Signal()
        with m.Switch(k):
            for i, (df, dh, dw) in enumerate(offsets):
                with m.Case(i):
                    m.d.comb += shift.eq(df * self.frame_tokens + dh * self.width + dw)
                    ok = 1
                    if not p.block_wrap:
                        ok = (beat.col >= dw) & (beat.row >= dh) & (beat.frame >= df)
                    m.d.comb += allowed.eq(ok)
        cand_pos = Signal(position_shape(p))
        m.d.comb += cand_pos.eq(beat.pos - shift)
        eligible = (allowed & (beat.pos >= shift) & (cand_pos >= tile_start)
                    & (entry.pos == cand_pos) & ~entry.zero & ~x_zero)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.inp.ready.eq(1)
                with m.If(self.inp.valid):
                    m.d.sync += [beat.eq(self.inp.payload), k.eq(0)]
                    with m.If(self.inp.payload.first):
                        m.d.sync += [tile_start.eq(self.inp.payload.pos), idx.eq(0)]
                    m.next = "NORM"
            with m.State("NORM"):
                m.d.comb += [dot.inp.valid.eq(1), dot.inp.payload.a.eq(beat.data),
                             dot.inp.payload.b.eq(beat.data)]
                with m.If(dot.inp.ready):
                    m.next = "NORM_WAIT"
            with m.State("NORM_WAIT"):
                m.d.comb += dot.out.ready.eq(1)
                with m.If(dot.out.valid):
                    m.d.sync += n2_x.eq(dot.out.payload)
                    m.next = "READ" if n_cand else "DECIDE"
            with m.State("READ"):
                m.d.comb += [table.read.valid.eq(1), table.read.payload.eq(cand_pos[:table_bits])]
                with m.If(table.read.ready):
                    m.next = "CAND"
            with m.State("CAND"):
                m.d.comb += table.data.ready.eq(1)
                with m.If(table.data.valid):
                    m.d.sync += entry.eq(table.data.payload)
                    m.next = "DOT"
            with m.State("DOT"):
                m.d.comb += [dot.inp.valid.eq(1), dot.inp.payload.a.eq(beat.data),
                             dot.inp.payload.b.eq(entry.data)]
                with m.If(dot.inp.ready):
                    m.next = "DOT_WAIT"
            with m.State("DOT_WAIT"):
                m.d.comb += dot.out.ready.eq(1)
                with m.If(dot.out.valid):
                    m.d.sync += d.eq(dot.out.payload)
                    m.next = "ARG"
            with m.State("ARG"):
                c = am.cand.payload
                m.d.comb += [am.cand.valid.eq(1), c.d.eq(d), c.n2.eq(entry.n2), c.n2_x.eq(n2_x),
                             c.eligible.eq(eligible), c.root_pos.eq(entry.root_pos),
                             c.root_idx.eq(entry.root_idx), c.last.eq(k == n_cand - 1)]
                with m.If(am.cand.ready):
                    m.d.sync += k.eq(k + 1)
                    m.next = "DECIDE" if n_cand == 1 else "READ"
                    with m.If(k == n_cand - 1):
                        m.next = "DECIDE"
            with m.State("DECIDE"):
                if n_cand:
                    m.d.comb += am.decision.ready.eq(1)
                    with m.If(am.decision.valid):
                        dec = am.decision.payload
                        m.d.sync += [similar.eq(dec.similar),
                                     root_pos.eq(Mux(dec.similar, dec.root_pos, beat.pos)),
                                     root_idx.eq(Mux(dec.similar, dec.root_idx, idx))]
                        m.next = "WRITE"
                else:
                    m.d.sync += [similar.eq(0), root_pos.eq(beat.pos), root_idx.eq(idx)]
                    m.next = "WRITE"
            with m.State("WRITE"):
                u = avg.update.payload
                m.d.comb += [avg.update.valid.eq(1), u.idx.eq(root_idx), u.own.eq(~similar),
                             u.data.eq(beat.data)]
                t = table.write.payload
                m.d.comb += [table.write.valid.eq(avg.update.ready),
                             t.addr.eq(beat.pos[:table_bits]), t.entry.pos.eq(beat.pos),
                             t.entry.data.eq(beat.data), t.entry.n2.eq(n2_x),
                             t.entry.zero.eq(x_zero), t.entry.root_pos.eq(root_pos),
                             t.entry.root_idx.eq(root_idx)]
                s = smap.write.payload
                m.d.comb += [smap.write.valid.eq(avg.update.ready), s.addr.eq(idx),
                             s.entry.pos.eq(beat.pos), s.entry.zero.eq(x_zero),
                             s.entry.similar.eq(similar), s.entry.root_pos.eq(root_pos),
                             s.entry.root_idx.eq(root_idx)]
                with m.If(avg.update.ready):
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(beat.last):
                        m.d.sync += [last_idx.eq(idx), idx.eq(0)]
                        m.next = "OUT_READ"
                    with m.Else():
                        m.next = "IDLE"
            with m.State("OUT_READ"):
                m.d.comb += [smap.read.valid.eq(1), smap.read.payload.eq(idx)]
                with m.If(smap.read.ready):
                    m.next = "OUT_MAP"
            with m.State("OUT_MAP"):
                m.d.comb += smap.data.ready.eq(1)
                with m.If(smap.data.valid):
                    m.d.sync += record.eq(smap.data.payload)
                    m.next = "OUT_QUERY"
            with m.State("OUT_QUERY"):
                m.d.comb += [avg.query.valid.eq(1), avg.query.payload.eq(record.root_idx)]
                with m.If(avg.query.ready):
                    m.next = "OUT_SEND"
            with m.State("OUT_SEND"):
                o = self.out.payload
                m.d.comb += [self.out.valid.eq(avg.mean.valid), avg.mean.ready.eq(self.out.ready),
                             o.data.eq(avg.mean.payload), o.pos.eq(record.pos),
                             o.root.eq(record.root_pos), o.zero.eq(record.zero),
                             o.similar.eq(record.similar), o.last.eq(idx == last_idx)]
                with m.If(self.out.valid & self.out.ready):
                    m.d.sync += idx.eq(idx + 1)
                    m.next = "OUT_READ"
                    with m.If(idx == last_idx):
                        m.d.sync += idx.eq(0)
                        m.next = "IDLE"
        return m


def _any_magnitude(bits, count: int, width: int):
    """Whether any of ``count`` ``width``-bit floats has non-zero magnitude bits."""
    return Cat(*[bits[i * width:(i + 1) * width - 1].any() for i in range(count)]).any()
