"""Importance analyzer: streaming max of attention rows into the importance buffer."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import FMax
from ..arith.formats import float_format

__all__ = ["ImportanceAnalyzer", "attn_layout"]


def attn_layout(fmt) -> data.StructLayout:
    """Payload of the attention stream: one probability (raw bits) and
    ``last`` (the final element of the final row)."""
    return data.StructLayout({"data": float_format(fmt).width, "last": 1})


class ImportanceAnalyzer(wiring.Component):
    """``importance[j] = max`` over all rows of ``row[j]``, ``j < n``.

    The ``attn`` stream carries the attention-probability rows (every head and
    text query, in any order), each the ``n`` visual columns in order, one
    element per cycle; ``last`` marks the final element. Column ``j`` of the
    first row is written to buffer word ``j``; later rows update it with
    :class:`~focus_hw.arith.FMax` (read through ``buf_read``, a synchronous
    port transparent to ``buf_write``, written one cycle later, so ``n = 1``
    works). ``done`` pulses in the cycle after ``last`` is accepted, when the
    buffer holds the final importances; ``attn.ready`` is low in that cycle
    (and whenever ``enable`` is low: the owner lowers it while others use the
    buffer).

    NaN: as ``torch.amax``, a column with a NaN anywhere has a NaN importance
    (FMax returns a NaN operand); ``nan`` is high from ``done`` on when any
    element of the run was a NaN, and the reference (``select_tokens``) refuses
    such importances.
    """

    def __init__(self, fmt, max_tokens: int):
        self.fmt = float_format(fmt)
        self.max_tokens = max_tokens
        addr_width = max(1, (max_tokens - 1).bit_length())
        w = self.fmt.width
        super().__init__(
            {
                "enable": In(1),
                "n": In(range(max_tokens + 1)),
                "attn": In(stream.Signature(attn_layout(self.fmt))),
                "buf_read": In(memory.ReadPort.Signature(addr_width=addr_width, shape=w)),
                "buf_write": In(memory.WritePort.Signature(addr_width=addr_width, shape=w)),
                "done": Out(1),
                "nan": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        fmt = self.fmt
        m.submodules.max = fmax = FMax(fmt)
        column = Signal(range(max(1, self.max_tokens)))
        first_row = Signal(init=1)
        s_valid, s_first, s_last = Signal(), Signal(), Signal()
        s_column, s_value = Signal.like(column), Signal(fmt.width)

        beat = self.attn.payload
        accept = self.attn.valid & self.attn.ready
        exp = beat.data[fmt.man_bits : fmt.width - 1]
        is_nan = (exp == fmt.exp_max) & (beat.data[: fmt.man_bits] != 0)
        m.d.comb += [
            self.attn.ready.eq(self.enable & ~(s_valid & s_last)),
            self.buf_read.addr.eq(column),
            self.buf_read.en.eq(accept),
            fmax.a.eq(self.buf_read.data),
            fmax.b.eq(s_value),
            self.buf_write.addr.eq(s_column),
            self.buf_write.data.eq(Mux(s_first, s_value, fmax.out)),
            self.buf_write.en.eq(s_valid),
            self.done.eq(s_valid & s_last),
        ]
        m.d.sync += [
            s_valid.eq(accept),
            s_first.eq(first_row),
            s_last.eq(beat.last),
            s_column.eq(column),
            s_value.eq(beat.data),
        ]
        with m.If(accept):
            m.d.sync += column.eq(Mux(column == self.n - 1, 0, column + 1))
            with m.If(first_row & (column == 0)):  # first beat of a run
                m.d.sync += self.nan.eq(is_nan)
            with m.Elif(is_nan):
                m.d.sync += self.nan.eq(1)
            with m.If(beat.last):
                m.d.sync += [column.eq(0), first_row.eq(1)]
            with m.Elif(column == self.n - 1):
                m.d.sync += first_row.eq(0)
        return m
