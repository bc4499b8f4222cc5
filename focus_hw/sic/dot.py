"""The SIC's dot-product unit: ``sic_lanes`` MAC lanes and an fp32 adder tree."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import MAC, FAdd
from ..params import FocusParams

__all__ = ["DotProduct"]


def vector_shape(params: FocusParams):
    """Raw bits of one operand vector (``vector_size`` elements, element 0 lowest)."""
    return unsigned(params.vector_size * params.operand_bits)


class DotProduct(wiring.Component):
    """fp32 dot product of two operand vectors, one pair at a time.

    ``inp`` takes a pair ``(a, b)``; ``out`` gives ``a . b`` as fp32 bits.
    Lane ``l`` of ``L = sic_lanes`` accumulates elements ``l, l+L, ...`` with
    the PE's MAC (``acc + a*b``, fp32), one step of ``L`` elements every
    ``sic_pipeline + 1`` cycles; a tree of ``L - 1`` fp32 adders then sums the
    lanes, neighbours first (:func:`focus_hw.sic.model.dot` is the numpy
    statement). The squared magnitude of a vector is its dot product with
    itself on the same lanes: a separate magnitude unit would double the
    multipliers for one product in eight.

    Timing (:func:`focus_hw.timing.sic_dot_latency`): a pair accepted in
    cycle ``t`` gives ``out.valid`` from cycle ``t + latency``; ``inp`` is
    ready again the cycle after ``out`` is taken.
    """

    def __init__(self, params: FocusParams):
        self.params = params
        vec = vector_shape(params)
        super().__init__({
            "inp": In(stream.Signature(data.StructLayout({"a": vec, "b": vec}))),
            "out": Out(stream.Signature(32)),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        lanes, pipe, op = p.sic_lanes, p.sic_pipeline, p.operand_bits
        steps = p.vector_size // lanes
        depth = lanes.bit_length() - 1

        a = Signal(len(self.inp.payload.a))
        b = Signal(len(self.inp.payload.b))
        acc = [Signal(32, name=f"acc{lane}") for lane in range(lanes)]
        step = Signal(range(steps))
        wait = Signal(range(max(pipe, depth * pipe) + 1))
        result = Signal(32)

        macs = []
        for lane in range(lanes):
            mac = MAC(p.dtype, pipe)
            m.submodules[f"mac{lane}"] = mac
            m.d.comb += [mac.a.eq(a[lane * op:(lane + 1) * op]),
                         mac.b.eq(b[lane * op:(lane + 1) * op]),
                         mac.acc.eq(acc[lane])]
            macs.append(mac)
        level = list(acc)
        for lvl in range(depth):
            nxt = []
            for i in range(0, len(level), 2):
                add = FAdd("fp32", pipe)
                m.submodules[f"add{lvl}_{i // 2}"] = add
                m.d.comb += [add.a.eq(level[i]), add.b.eq(level[i + 1])]
                nxt.append(add.out)
            level = nxt
        total = level[0]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.inp.ready.eq(1)
                with m.If(self.inp.valid):
                    m.d.sync += [a.eq(self.inp.payload.a), b.eq(self.inp.payload.b),
                                 step.eq(0), wait.eq(0)]
                    m.d.sync += [r.eq(0) for r in acc]
                    m.next = "STEP"
            with m.State("STEP"):
                with m.If(wait == pipe):
                    m.d.sync += [r.eq(mac.out) for r, mac in zip(acc, macs)]
                    m.d.sync += [a.eq(a >> (lanes * op)), b.eq(b >> (lanes * op)),
                                 wait.eq(0), step.eq(step + 1)]
                    with m.If(step == steps - 1):
                        m.next = "TREE"
                with m.Else():
                    m.d.sync += wait.eq(wait + 1)
            with m.State("TREE"):
                with m.If(wait == depth * pipe):
                    m.d.sync += result.eq(total)
                    m.next = "DONE"
                with m.Else():
                    m.d.sync += wait.eq(wait + 1)
            with m.State("DONE"):
                m.d.comb += [self.out.valid.eq(1), self.out.payload.eq(result)]
                with m.If(self.out.ready):
                    m.next = "IDLE"
        return m
