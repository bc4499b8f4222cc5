"""The write engine: the array's output rows into the concentrate-out ring."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..params import FocusParams
from .feed import block_layout
from .walker import block_addr

__all__ = ["WriteEngine", "partial_row", "ring_depth"]


def partial_row(params: FocusParams) -> data.ArrayLayout:
    """One row of partial sums: ``cols`` accumulators."""
    return data.ArrayLayout(params.acc_bits, params.cols)


def ring_depth(params: FocusParams) -> int:
    """Rows of the concentrate-out ring (:attr:`FocusParams.buffer_bytes`):
    ``ring_blocks`` blocks of ``m_tile`` rows."""
    return params.buffer_bytes["concentrate_out"] * 8 // partial_row(params).size


class WriteEngine(wiring.Component):
    """Writes the array's output rows (``sums``), in order, into the ring
    blocks the feeder announced (``blocks``: one entry per fed block, its
    row count and index), and marks each block ``written`` with its last
    row. The array's output is never held (``sums.ready`` is high)."""

    def __init__(self, params: FocusParams):
        self.params = params
        row = partial_row(params)
        super().__init__(
            {
                "blocks": In(stream.Signature(block_layout(params))),
                "sums": In(stream.Signature(row)),
                "buffer": In(
                    memory.WritePort.Signature(addr_width=ceil_log2(ring_depth(params)), shape=row)
                ),
                "written": Out(params.ring_blocks),
            }
        )

    def elaborate(self, platform):
        m = Module()
        mt = self.params.m_tile
        count = Signal(range(mt))
        info = self.blocks.payload
        m.d.comb += [
            self.sums.ready.eq(1),
            self.buffer.addr.eq(block_addr(info.block, count, mt)),
            self.buffer.data.eq(self.sums.payload),
            self.buffer.en.eq(self.sums.valid),
        ]
        with m.If(self.sums.valid):
            m.d.sync += count.eq(count + 1)
            with m.If(count == info.rows - 1):
                m.d.sync += count.eq(0)
                m.d.comb += [self.blocks.ready.eq(1), self.written.eq(1 << info.block)]
        return m
