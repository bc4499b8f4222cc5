"""The SIC's dot-product unit: ``sic_width`` MAC lanes and an fp32 adder tree."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import MAC, FAdd
from ..params import FocusParams

__all__ = ["DotProduct", "delayed"]


def vector_shape(params: FocusParams):
    """Raw bits of one operand vector (``vector_size`` elements, element 0 lowest)."""
    return unsigned(params.vector_size * params.operand_bits)


def delayed(m, pulse, cycles: int) -> Signal:
    """Shift register of ``pulse``: bit ``j`` is high ``j + 1`` cycles after it."""
    line = Signal(max(1, cycles), name="delay")
    m.d.sync += line.eq(Cat(pulse, line[:-1]))
    return line


class DotProduct(wiring.Component):
    """fp32 dot products of operand vector pairs, one pair every ``S*(P+1)`` cycles.

    ``inp`` takes a pair ``(a, b)``; ``out`` (always ready) gives ``a . b``
    as fp32 bits for one cycle. Lane ``l`` of ``L = sic_width`` accumulates
    elements ``l, l+L, ...`` with the PE's MAC (``acc + a*b``, fp32), one
    step of ``L`` elements every ``P + 1`` cycles (``P = sic_pipeline``); a
    tree of ``L - 1`` fp32 adders (``P`` register stages each) sums the lanes,
    neighbours first (:func:`focus_hw.sic.model.dot` is the numpy statement).
    The tree is a plain pipeline, so the next pair's steps run while the
    previous lane sums go down it. The squared magnitude of a vector is its
    dot product with itself on the same lanes.

    Timing (:func:`focus_hw.timing.sic_dot_latency`): a pair accepted in
    cycle ``t`` gives ``out.valid`` in cycle ``t + S*(P+1) + 1 + log2(L)*P``;
    ``inp`` is ready again in cycle ``t + S*(P+1)`` (back-to-back pairs).
    """

    def __init__(self, params: FocusParams):
        self.params = params
        vec = vector_shape(params)
        super().__init__(
            {
                "inp": In(stream.Signature(data.StructLayout({"a": vec, "b": vec}))),
                "out": Out(stream.Signature(32, always_ready=True)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self.params
        lanes, pipe, op = p.sic_width, p.sic_pipeline, p.operand_bits
        steps = p.sic_steps
        depth = lanes.bit_length() - 1

        a = Signal(len(self.inp.payload.a))
        b = Signal(len(self.inp.payload.b))
        acc = [Signal(32, name=f"acc{lane}") for lane in range(lanes)]
        busy = Signal()
        step = Signal(range(steps))
        wait = Signal(range(pipe + 1))
        done = Signal()  # the last step ends this cycle

        m.d.comb += done.eq(busy & (wait == pipe) & (step == steps - 1))
        macs = []
        for lane in range(lanes):
            mac = MAC(p.dtype, pipe)
            m.submodules[f"mac{lane}"] = mac
            # The MAC is a plain pipeline: only each step's first cycle counts.
            m.d.comb += [
                mac.a.eq(a[lane * op : (lane + 1) * op]),
                mac.b.eq(b[lane * op : (lane + 1) * op]),
                mac.acc.eq(Mux(step == 0, 0, acc[lane])),
            ]
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

        # acc holds the lane sums from the cycle after the last step for at
        # least P + 1 cycles; the tree sees them in that first cycle.
        ready = delayed(m, done, 1 + depth * pipe)
        m.d.comb += [
            self.out.valid.eq(ready[-1]),
            self.out.payload.eq(level[0]),
            self.inp.ready.eq(~busy | done),
        ]

        with m.If(busy):
            with m.If(wait == pipe):
                m.d.sync += [r.eq(mac.out) for r, mac in zip(acc, macs)]
                m.d.sync += [
                    a.eq(a >> (lanes * op)),
                    b.eq(b >> (lanes * op)),
                    wait.eq(0),
                    step.eq(step + 1),
                ]
                with m.If(step == steps - 1):
                    m.d.sync += [busy.eq(0), step.eq(0)]
            with m.Else():
                m.d.sync += wait.eq(wait + 1)
        with m.If(self.inp.valid & self.inp.ready):
            m.d.sync += [
                a.eq(self.inp.payload.a),
                b.eq(self.inp.payload.b),
                busy.eq(1),
                step.eq(0),
                wait.eq(0),
            ]
        return m
