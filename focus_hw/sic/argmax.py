"""Candidate arg-max and threshold compare, by cross-multiplied squares."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import FMul
from ..arith import FP32
from ..arith.compare import compare
from ..arith.reference import to_bits
from ..params import FocusParams
from .model import threshold_square

__all__ = ["ArgMax", "index_shape", "position_shape"]


def position_shape(params: FocusParams):
    """A token position (0 .. max_tokens - 1)."""
    return unsigned(max(1, (params.max_tokens - 1).bit_length()))


def index_shape(params: FocusParams):
    """A token's index within its M tile (0 .. m_tile - 1)."""
    return unsigned(max(1, (params.m_tile - 1).bit_length()))


def candidate_layout(params: FocusParams) -> data.StructLayout:
    return data.StructLayout({
        "d": 32,            # fp32 dot product with the current vector
        "n2": 32,           # the candidate's fp32 squared magnitude
        "n2_x": 32,         # the current vector's squared magnitude
        "eligible": 1,      # a non-zero candidate of the window and M tile
        "root_pos": position_shape(params),
        "root_idx": index_shape(params),
        "last": 1,          # last candidate of this vector: decide
    })


def decision_layout(params: FocusParams) -> data.StructLayout:
    return data.StructLayout({"similar": 1, "root_pos": position_shape(params),
                              "root_idx": index_shape(params)})


class ArgMax(wiring.Component):
    """Best candidate of a vector and its threshold compare.

    ``cand`` takes the candidates of one vector in tie-break order, the last
    one flagged; after it, ``decision`` gives whether the best is similar and
    its root. Candidate ``b`` replaces the best ``a`` when eligible and
    :func:`focus_hw.sic.model.better` holds: ``sign(d)`` first, then
    ``d_b^2 * n2_a`` against ``d_a^2 * n2_b`` (fp32), strictly, so ties keep
    the earlier candidate. The threshold test is
    :func:`focus_hw.sic.model.passes` (``d^2`` against ``T2 * n2_x * n2``).
    One fp32 multiplier serves all five products in turn; there is no
    divider and no square root.

    Timing (:func:`focus_hw.timing.sic_argmax_cycles`): every candidate keeps
    the unit busy for the same number of cycles, eligible or not.
    """

    def __init__(self, params: FocusParams):
        self.params = params
        super().__init__({
            "cand": In(stream.Signature(candidate_layout(params))),
            "decision": Out(stream.Signature(decision_layout(params))),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        pipe = p.sic_pipeline
        t2 = threshold_square(p)

        c = Signal(candidate_layout(p))           # the candidate being compared
        has = Signal()                            # a best candidate exists
        best_d, best_d2, best_n2 = Signal(32), Signal(32), Signal(32)
        best_root_pos = Signal(position_shape(p))
        best_root_idx = Signal(index_shape(p))
        q = Signal(32)                            # d_b^2
        pb = Signal(32)                           # d_b^2 * n2_a, later T2 * n2_x
        wait = Signal(range(pipe + 1))

        mul = m.submodules.mul = FMul("fp32", pipe)
        zero = Const(0, 32)
        d_lt, _, d_gt, d_nan = compare(m, FP32, c.d, zero)
        a_lt, _, a_gt, _ = compare(m, FP32, best_d, zero)
        # PICK: pb = d_b^2 * n2_a against mul.out = d_a^2 * n2_b.
        cross_lt, _, cross_gt, _ = compare(m, FP32, pb, mul.out)
        # DECIDE: d_a^2 against mul.out = T2 * n2_x * n2_a.
        d2_lt, _, d2_gt, _ = compare(m, FP32, best_d2, mul.out)

        s_b, s_a = Signal(range(-1, 2)), Signal(range(-1, 2))
        m.d.comb += [s_b.eq(Mux(d_gt, 1, Mux(d_lt, -1, 0))),
                     s_a.eq(Mux(a_gt, 1, Mux(a_lt, -1, 0)))]
        beats = Mux(s_b != s_a, s_b > s_a, (s_b != 0) & Mux(s_b > 0, cross_gt, cross_lt))
        wins = c.eligible & ~d_nan & (~has | beats)

        def multiply(x, y, state_next, store=None):
            m.d.comb += [mul.a.eq(x), mul.b.eq(y)]
            with m.If(wait == pipe):
                m.d.sync += wait.eq(0)
                if store is not None:
                    m.d.sync += store.eq(mul.out)
                m.next = state_next
            with m.Else():
                m.d.sync += wait.eq(wait + 1)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cand.ready.eq(1)
                with m.If(self.cand.valid):
                    m.d.sync += [c.eq(self.cand.payload), wait.eq(0)]
                    m.next = "SQUARE"
            with m.State("SQUARE"):
                multiply(c.d, c.d, "CROSS_B", q)
            with m.State("CROSS_B"):
                multiply(q, best_n2, "CROSS_A", pb)
            with m.State("CROSS_A"):
                multiply(best_d2, c.n2, "PICK")
            with m.State("PICK"):
                m.d.comb += [mul.a.eq(best_d2), mul.b.eq(c.n2)]
                with m.If(wins):
                    m.d.sync += [has.eq(1), best_d.eq(c.d), best_d2.eq(q), best_n2.eq(c.n2),
                                 best_root_pos.eq(c.root_pos), best_root_idx.eq(c.root_idx)]
                with m.If(c.last):
                    m.next = "SCALE_X"
                with m.Else():
                    m.next = "IDLE"
            with m.State("SCALE_X"):
                multiply(_const(t2), c.n2_x, "SCALE_C", pb)
            with m.State("SCALE_C"):
                multiply(pb, best_n2, "DECIDE")
            with m.State("DECIDE"):
                m.d.comb += [mul.a.eq(pb), mul.b.eq(best_n2)]
                if t2 is None:
                    similar = 0
                elif p.threshold >= 0:
                    similar = has & a_gt & d2_gt
                else:
                    similar = has & (~a_lt | d2_lt)
                m.d.comb += [self.decision.valid.eq(1),
                             self.decision.payload.similar.eq(similar),
                             self.decision.payload.root_pos.eq(best_root_pos),
                             self.decision.payload.root_idx.eq(best_root_idx)]
                with m.If(self.decision.ready):
                    m.d.sync += has.eq(0)
                    m.next = "IDLE"
        return m


def _const(value) -> int:
    """fp32 bits of a numpy float32 (0 when the threshold never merges)."""
    return 0 if value is None else int(to_bits("fp32", [value])[0])
