"""The semantic concentrator (SEC): importance analyzer, buffer, top-k, offsets."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..params import FocusParams
from .analyzer import ImportanceAnalyzer, attn_layout
from .encoder import OffsetEncoder, kept_layout
from .topk import DIGIT_BITS, RadixSelect, order_key

__all__ = ["SEC", "SEC_UNITS", "sec_format", "sec_signature"]


def sec_format(params: FocusParams) -> str:
    """The float format the SEC works in (``params.dtype``; int8 has none)."""
    if not params.is_float:
        raise ValueError(
            f"SEC: params.dtype={params.dtype!r}: attention probabilities "
            f"need a float format (fp16 or bf16)"
        )
    return params.dtype


def sec_signature(params: FocusParams) -> wiring.Signature:
    """The ports of :class:`SEC` (for a top level that exposes them)."""
    count = range(params.max_tokens + 1)
    return wiring.Signature(
        {
            "n": In(count),
            "k": In(count),
            "attn": In(stream.Signature(attn_layout(sec_format(params)))),
            "kept": Out(stream.Signature(kept_layout(params.max_tokens))),
            "done": Out(1),
            "nan": Out(1),
        }
    )


class SEC(wiring.Component):
    """Semantic concentrator for up to ``params.max_tokens`` visual tokens.

    One run, with ``n`` (visual tokens, ``1..max_tokens``) and ``k`` (kept,
    ``1..n``) held constant: the ``attn`` stream delivers every attention
    row (heads x text queries, each the ``n`` visual columns; ``last`` on the
    final element), the :class:`ImportanceAnalyzer` folds them into the
    importance buffer (``max_tokens`` words of ``params.dtype``,
    ``lib.memory``), :class:`RadixSelect` finds the threshold over
    order-preserving keys of the importances (``-0 == +0``), and the
    :class:`OffsetEncoder` streams the ``k`` kept indices in ascending order
    on ``kept`` (ties: lower index first). ``done`` pulses at the end; then
    the next run may start. ``nan`` (valid from the analyzer's end to the
    next run) reports a NaN importance, which the reference rejects; the kept
    list is then meaningless.

    The buffer has one write port (the analyzer) and one read port, shared
    in turn by the three phases. Cycle count: :func:`focus_hw.timing.sec_cycles`.
    """

    def __init__(self, params: FocusParams):
        self.params = params
        self.fmt = sec_format(params)
        super().__init__(sec_signature(params))

    def elaborate(self, platform):
        m = Module()
        p = self.params
        width = p.operand_bits
        m.submodules.analyzer = analyzer = ImportanceAnalyzer(self.fmt, p.max_tokens)
        m.submodules.select = select = RadixSelect(p.max_tokens, width, DIGIT_BITS)
        m.submodules.encoder = encoder = OffsetEncoder(p.max_tokens, width)
        m.submodules.buffer = buffer = memory.Memory(shape=width, depth=p.max_tokens, init=[])
        write = buffer.write_port()
        read = buffer.read_port(transparent_for=(write,))
        wiring.connect(m, analyzer.buf_write, write)

        analyze, selecting = Signal(init=1), Signal()  # phase: analyze, select, encode
        key = order_key(self.fmt, read.data)
        m.d.comb += [
            analyzer.enable.eq(analyze),
            analyzer.n.eq(self.n),
            select.n.eq(self.n),
            select.k.eq(self.k),
            select.start.eq(analyzer.done),
            encoder.n.eq(self.n),
            encoder.k.eq(self.k),
            encoder.start.eq(select.done),
            encoder.threshold.eq(select.threshold),
            encoder.ties.eq(select.ties),
            select.keys.data.eq(key),
            encoder.keys.data.eq(key),
            analyzer.buf_read.data.eq(read.data),
            self.done.eq(encoder.done),
            self.nan.eq(analyzer.nan),
        ]
        with m.If(analyze):
            m.d.comb += [read.addr.eq(analyzer.buf_read.addr), read.en.eq(analyzer.buf_read.en)]
        with m.Elif(selecting):
            m.d.comb += [read.addr.eq(select.keys.addr), read.en.eq(select.keys.en)]
        with m.Else():
            m.d.comb += [read.addr.eq(encoder.keys.addr), read.en.eq(encoder.keys.en)]
        with m.If(analyzer.done):
            m.d.sync += [analyze.eq(0), selecting.eq(1)]
        with m.If(select.done):
            m.d.sync += selecting.eq(0)
        with m.If(encoder.done):
            m.d.sync += analyze.eq(1)
        wiring.connect(m, analyzer.attn, wiring.flipped(self.attn))
        wiring.connect(m, encoder.kept, wiring.flipped(self.kept))
        return m


def _unit(build):
    """Constructor that checks the format first (no component made for int8)."""
    return lambda p: build(p, sec_format(p))


#: ``focus_hw.generate`` unit name -> constructor from a FocusParams.
SEC_UNITS = {
    "sec": _unit(lambda p, fmt: SEC(p)),
    "sec_analyzer": _unit(lambda p, fmt: ImportanceAnalyzer(fmt, p.max_tokens)),
    "sec_select": _unit(lambda p, fmt: RadixSelect(p.max_tokens, p.operand_bits, DIGIT_BITS)),
    "sec_encoder": _unit(lambda p, fmt: OffsetEncoder(p.max_tokens, p.operand_bits)),
}
