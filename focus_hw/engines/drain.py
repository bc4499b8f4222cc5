"""The drain engine: finished output rows, with their positions, into the SIC
(or, bypassing it, straight out)."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith.convert import narrow_stages
from ..arith.formats import float_format
from ..arith.pipeline import Pipeline
from ..params import FocusParams
from ..scatter import row_layout, row_shape
from ..sic.sic import input_layout, output_layout
from ..timing import drain_stages
from .walker import Walker, block_addr, run_layout

__all__ = ["DrainEngine", "position_layout", "POSITION"]

#: The grid fields of a token that the SIC compares.
POSITION = ("pos", "col", "row", "frame")


def position_layout(params: FocusParams) -> data.StructLayout:
    """A beat of the ``positions`` stream: a surviving token's position in
    the sequence and its column, row and frame (what the SIC compares)."""
    return data.StructLayout(
        {name: field.shape for name, field in input_layout(params) if name in POSITION}
    )


class DrainEngine(wiring.Component):
    """Once the scatter has ``finished`` a group's output half, reads it
    sub-tile by sub-tile, token by token, from the output buffer (``read``
    / ``data``), narrows each row to the operand format (RNE; with
    ``acc_format="operand"`` it is in that format already), joins it with
    the token's ``positions`` beat and hands it to the SIC (``sic``): one
    SIC pass per sub-tile. With ``bypass`` high it hands each narrowed row
    to ``out`` instead, without a ``positions`` beat: ``pos`` and ``root``
    the token's index among the run's tokens, ``zero`` and ``similar`` low,
    ``last`` on the sub-tile's last row. Once the group's last row is read
    the half is free again (``out_full`` low). ``result`` shows each row in
    the cycle the SIC (or ``out``) takes it.

    The narrowing has ``D =`` :func:`~focus_hw.timing.drain_stages` register
    stages (``scatter_pipeline``; none for operand-format sums), at
    :func:`~focus_hw.arith.convert.narrow`'s cut points. They move together:
    all advance in a cycle where the last stage is empty or its row is
    taken (``go``), and ``data`` is taken exactly then, so the stages hold
    up to ``D`` rows besides the one the output buffer presents. A row's
    flags, its token and its fp32 sums (for ``result``) move through the
    same stages; ``positions`` is joined where the SIC takes the row. With
    ``D = 0`` the narrowing is combinational and ``data`` is taken with the
    row."""

    def __init__(self, params: FocusParams):
        self.params = params
        row = row_layout(params)
        super().__init__(
            {
                "start": In(1),
                "run": In(run_layout(params)),
                "bypass": In(1),
                "finished": In(2),
                "out_full": Out(2),
                "read": Out(stream.Signature(row_shape(params))),
                "data": In(stream.Signature(row)),
                "positions": In(stream.Signature(position_layout(params))),
                "sic": Out(stream.Signature(input_layout(params))),
                "out": Out(stream.Signature(output_layout(params))),
                "result": Out(stream.Signature(row, always_ready=True)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self.params
        mt = p.m_tile
        walk = Walker(m, p, self.run, self.start, "drain", chunks=False)
        half = Signal()
        clear = Signal(2)
        m.d.sync += self.out_full.eq(Mux(self.start, 0, (self.out_full | self.finished) & ~clear))
        reading = Signal()
        index = Signal(range(mt))
        row_first = Signal()
        row_last = Signal()
        row_token = Signal.like(self.out.payload.pos)  # the row's token in the run
        with m.If(~walk.done & ~reading & self.out_full.bit_select(half, 1) & ~self.start):
            m.d.sync += [reading.eq(1), index.eq(0)]
        m.d.comb += [
            self.read.valid.eq(reading),
            self.read.payload.eq(block_addr(half * p.out_vectors + walk.sub, index, mt)),
        ]
        with m.If(self.read.valid & self.read.ready):
            m.d.sync += [
                index.eq(index + 1),
                row_first.eq(index == 0),
                row_last.eq(index == walk.tokens - 1),
                row_token.eq(walk.base + index),
            ]
            with m.If(index == walk.tokens - 1):
                m.d.sync += reading.eq(0)
                m.d.comb += walk.advance.eq(1)
                with m.If(walk.last_sub):
                    m.d.comb += clear.eq(1 << half)
                    m.d.sync += half.eq(~half)
        with m.If(self.start):
            m.d.sync += half.eq(0)

        # The narrowing: drain_stages(p) register stages (0, or scatter_pipeline)
        # at narrow's cut points, all advancing together on ``go``; what
        # travels with a row (its flags, token, fp32 sums for ``result``)
        # moves through the same stages, ``positions`` joins at the end.
        depth = drain_stages(p)
        go = Signal() if depth else 1
        if p.acc is p.format:  # operand-format sums: already what the SIC takes
            narrowed = self.data.payload.as_value()
        else:
            fmt = float_format(p.dtype)
            rows = self.data.payload
            narrowed = Cat(narrow_stages(m, fmt, depth, go, e) for e in rows)
        valid, first, last, token, sums = Pipeline(m, depth, 0, go).finish(
            self.data.valid, row_first, row_last, row_token, self.data.payload
        )
        inp, pos, out = self.sic.payload, self.positions.payload, self.out.payload
        joined = valid & (self.positions.valid | self.bypass)
        taken = joined & Mux(self.bypass, self.out.ready, self.sic.ready)
        if depth:
            m.d.comb += [go.eq(~valid | taken), self.data.ready.eq(go)]
        else:
            m.d.comb += self.data.ready.eq(taken)
        m.d.comb += [
            self.sic.valid.eq(joined & ~self.bypass),
            inp.data.eq(narrowed),
            inp.first.eq(first),
            inp.last.eq(last),
            self.out.valid.eq(joined & self.bypass),
            out.data.eq(narrowed),
            out.pos.eq(token),
            out.root.eq(token),
            out.last.eq(last),
            self.positions.ready.eq(taken & ~self.bypass),
            self.result.valid.eq(taken),
            self.result.payload.eq(sums),
        ]
        for name in POSITION:
            m.d.comb += getattr(inp, name).eq(getattr(pos, name))
        return m
