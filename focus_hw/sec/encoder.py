"""Offset encoder: the kept token indices, ascending, as a stream."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["OffsetEncoder", "kept_layout"]


def kept_layout(max_tokens: int) -> data.StructLayout:
    """Payload of the kept-index stream: ``index`` and ``last`` (the k-th)."""
    return data.StructLayout({"index": range(max(1, max_tokens)), "last": 1})


class OffsetEncoder(wiring.Component):
    """Streams the indices ``i < n`` with ``key[i] > threshold``, plus the first
    ``ties`` indices with ``key[i] == threshold``, in ascending order.

    One key is read per cycle (``keys``: a synchronous read port); a refused
    output (``kept.ready`` low) holds the pipeline. ``last`` marks the ``k``-th
    index. Without backpressure ``done`` pulses ``n + 2`` cycles after the
    ``start`` cycle.
    """

    def __init__(self, max_tokens: int, key_bits: int):
        self.max_tokens, self.key_bits = max_tokens, key_bits
        count = range(max_tokens + 1)
        addr_width = max(1, (max_tokens - 1).bit_length())
        super().__init__(
            {
                "start": In(1),
                "n": In(count),
                "k": In(count),
                "threshold": In(key_bits),
                "ties": In(count),
                "keys": In(memory.ReadPort.Signature(addr_width=addr_width, shape=key_bits)),
                "kept": Out(stream.Signature(kept_layout(max_tokens))),
                "done": Out(1),
                "busy": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        count = range(self.max_tokens + 1)
        next_index, taken, emitted = Signal(count), Signal(count), Signal(count)
        s_valid, s_index = Signal(), Signal(range(max(1, self.max_tokens)))
        key = self.keys.data
        above, tie = key > self.threshold, key == self.threshold
        select = Signal()
        m.d.comb += [
            select.eq(s_valid & (above | (tie & (taken < self.ties)))),
            self.kept.valid.eq(select),
            self.kept.payload.index.eq(s_index),
            self.kept.payload.last.eq(emitted == self.k - 1),
        ]
        advance = ~select | self.kept.ready
        with m.If(self.kept.valid & self.kept.ready):
            m.d.sync += emitted.eq(emitted + 1)
        with m.If(select & self.kept.ready & tie & ~above):
            m.d.sync += taken.eq(taken + 1)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.keys.en.eq(0)
                with m.If(self.start):
                    m.d.sync += [next_index.eq(0), taken.eq(0), emitted.eq(0), s_valid.eq(0)]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += [
                    self.busy.eq(1),
                    self.keys.addr.eq(next_index),
                    self.keys.en.eq(advance),
                ]
                with m.If(advance):
                    m.d.sync += [s_valid.eq(next_index < self.n), s_index.eq(next_index)]
                    with m.If(next_index < self.n):
                        m.d.sync += next_index.eq(next_index + 1)
                    with m.Else():
                        m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"
        return m
