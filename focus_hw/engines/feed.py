"""The feed engine: input buffer rows into the systolic array."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..params import FocusParams
from .load import input_depth, input_row
from .walker import Walker, block_addr, run_layout

__all__ = ["FeedEngine", "block_layout"]


def block_layout(params: FocusParams) -> data.StructLayout:
    """A fed ring block: its ``rows`` (the chunk's unique vectors) and its
    index in the concentrate-out ring."""
    return data.StructLayout({"rows": range(params.m_tile + 1), "block": range(params.ring_blocks)})


class FeedEngine(wiring.Component):
    """Streams a loaded chunk through the array once per sub-tile of its N
    group, each pass into the next block of the concentrate-out ring.

    Per (chunk, sub-tile) the feeder claims the next ring block once it is
    free (``freed`` by the scatter), then reads the chunk's rows from the
    input buffer half (``buffer``) and hands them to the array (``act``);
    the first row swaps in the sub-tile's weight tile. ``blocks`` tells the
    write engine where the rows' partial sums go; an empty chunk sends no
    row and marks its block ``empty`` (written) at once. After the group's
    last sub-tile the feeder ``release``\\ s the input half. ``stall`` is
    high while a loaded chunk waits for a free block.
    """

    def __init__(self, params: FocusParams):
        self.params = params
        rows = input_row(params)
        blocks = params.ring_blocks
        super().__init__(
            {
                "start": In(1),
                "run": In(run_layout(params)),
                "loaded": In(2),
                "lengths": In(data.ArrayLayout(range(params.m_tile + 1), 2)),
                "release": Out(2),
                "buffer": In(
                    memory.ReadPort.Signature(addr_width=ceil_log2(input_depth(params)), shape=rows)
                ),
                "act": Out(stream.Signature(data.StructLayout({"data": rows, "swap": 1}))),
                "blocks": Out(stream.Signature(block_layout(params))),
                "freed": In(blocks),
                "empty": Out(blocks),
                "stall": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self.params
        mt, nb = p.m_tile, p.ring_blocks
        walk = Walker(m, p, self.run, self.start, "feed")
        half = Signal()  # input buffer half of the chunk
        block = Signal(range(nb))  # ring block of the step
        claimed = Signal(nb)
        claim = Signal(nb)
        m.d.sync += claimed.eq(Mux(self.start, 0, (claimed | claim) & ~self.freed))

        feeding = Signal()
        index = Signal(range(mt))
        length = Signal(range(mt + 1))
        at_last = Signal()  # index is the step's last row
        act_valid = Signal()
        act_swap = Signal()
        move = Signal()  # the read stage may take the next row
        m.d.comb += [
            move.eq(~act_valid | self.act.ready),
            self.buffer.addr.eq(block_addr(half, index, mt)),
            self.buffer.en.eq(feeding & move),
            self.act.valid.eq(act_valid),
            self.act.payload.data.eq(self.buffer.data),
            self.act.payload.swap.eq(act_swap),
        ]
        with m.If(move):
            m.d.sync += [act_valid.eq(feeding), act_swap.eq(feeding & (index == 0))]

        step_done = Signal()  # the step's last row is read (or it is empty)
        loaded = self.loaded.bit_select(half, 1)
        busy = claimed.bit_select(block, 1)
        rows = self.lengths[half]
        idle = ~walk.done & ~feeding & loaded & ~self.start
        m.d.comb += self.stall.eq(idle & busy)
        with m.If(idle & ~busy):
            m.d.comb += claim.eq(1 << block)
            with m.If(rows == 0):  # an empty chunk: nothing for the array
                m.d.comb += [self.empty.eq(1 << block), step_done.eq(1)]
            with m.Else():
                m.d.comb += [
                    self.blocks.valid.eq(1),
                    self.blocks.payload.rows.eq(rows),
                    self.blocks.payload.block.eq(block),
                ]
                m.d.sync += [feeding.eq(1), index.eq(0), length.eq(rows), at_last.eq(rows == 1)]
        with m.If(feeding & move):
            m.d.sync += [index.eq(index + 1), at_last.eq(index + 2 == length)]
            with m.If(at_last):
                m.d.sync += feeding.eq(0)
                m.d.comb += step_done.eq(1)
        with m.If(step_done):
            m.d.comb += walk.advance.eq(1)
            m.d.sync += block.eq(Mux(block == nb - 1, 0, block + 1))
            with m.If(walk.last_sub):
                m.d.comb += self.release.eq(1 << half)
                m.d.sync += half.eq(~half)
        with m.If(self.start):
            m.d.sync += [half.eq(0), block.eq(0)]
        return m
