"""The load engine: unique input vectors into the input buffer."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..params import FocusParams
from .walker import Walker, block_addr, run_layout

__all__ = ["LoadEngine", "vector_layout", "input_row", "input_depth"]


def vector_layout(params: FocusParams) -> data.StructLayout:
    """A beat of the ``vectors`` stream: one unique input vector of a chunk
    (``last`` on the chunk's final one), or ``empty`` for a chunk without
    any (no data, no weight tile)."""
    return data.StructLayout({"data": input_row(params), "last": 1, "empty": 1})


def input_row(params: FocusParams) -> data.ArrayLayout:
    """One row of the input buffer: a K chunk of one vector, operand format."""
    return data.ArrayLayout(params.operand_bits, params.rows)


def input_depth(params: FocusParams) -> int:
    """Rows of the input buffer (:attr:`FocusParams.buffer_bytes`): two
    halves of ``m_tile`` rows."""
    return params.buffer_bytes["input"] * 8 // input_row(params).size


class LoadEngine(wiring.Component):
    """Loads each (M tile, N group, K chunk)'s unique vectors, in slot order,
    into the next half of the input buffer, once the feeder has released it.

    ``loaded`` marks the halves holding a chunk (``lengths``: its vector
    count, 0 for an empty chunk); the feeder clears a half with ``release``.
    ``buffer`` drives the input buffer's write port.
    """

    def __init__(self, params: FocusParams):
        self.params = params
        mt = params.m_tile
        super().__init__(
            {
                "start": In(1),
                "run": In(run_layout(params)),
                "vectors": In(stream.Signature(vector_layout(params))),
                "buffer": In(
                    memory.WritePort.Signature(
                        addr_width=ceil_log2(input_depth(params)), shape=input_row(params)
                    )
                ),
                "release": In(2),
                "loaded": Out(2),
                "lengths": Out(data.ArrayLayout(range(mt + 1), 2)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        mt = self.params.m_tile
        walk = Walker(m, self.params, self.run, self.start, "load", subs=False)
        half = Signal()
        count = Signal(range(mt + 1))
        done = Signal(2)  # halves loaded in this cycle
        m.d.sync += self.loaded.eq(Mux(self.start, 0, (self.loaded | done) & ~self.release))
        vec = self.vectors.payload
        m.d.comb += self.vectors.ready.eq(~walk.done & ~self.loaded.bit_select(half, 1))
        take = self.vectors.valid & self.vectors.ready
        m.d.comb += [
            self.buffer.addr.eq(block_addr(half, count, mt)),
            self.buffer.data.eq(vec.data),
            self.buffer.en.eq(take & ~vec.empty),
        ]
        with m.If(self.start):
            m.d.sync += [half.eq(0), count.eq(0)]
        with m.Elif(take):
            m.d.sync += count.eq(count + ~vec.empty)
            with m.If(vec.last | vec.empty):
                m.d.comb += [walk.advance.eq(1), done.eq(1 << half)]
                m.d.sync += [count.eq(0), half.eq(~half)]
                m.d.sync += self.lengths[half].eq(count + ~vec.empty)
        return m
