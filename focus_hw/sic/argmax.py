"""Candidate arg-max and threshold compare, by cross-multiplied squares."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import FP32, FMul
from ..arith.compare import compare
from ..arith.reference import to_bits
from ..params import FocusParams
from .dot import delayed
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
    """Best candidate of a vector and its threshold compare, one candidate
    every ``P + 1`` cycles (``P = sic_pipeline``).

    ``cand`` takes the candidates of one vector in tie-break order, the last
    one flagged; after it, ``decision`` (always ready) gives for one cycle
    whether the best is similar and its root. Candidate ``b`` replaces the
    best ``a`` when eligible and :func:`focus_hw.sic.model.better` holds:
    ``sign(d)`` first, then ``d_b^2 * n2_a`` against ``d_a^2 * n2_b`` (fp32),
    strictly, so ties keep the earlier candidate. The threshold test is
    :func:`focus_hw.sic.model.passes` (``d^2`` against ``T2 * n2_x * n2``).
    No divider and no square root; three fp32 multipliers, each a plain
    pipeline of ``P`` stages:

    * square stage, ``P + 1`` cycles from the accept: ``q = d*d``;
    * cross stage, the next ``P + 1`` cycles: ``q * n2_a`` and ``d_a^2 * n2_b``
      side by side, compared and the best updated in its last cycle, while
      the square stage already works on the next candidate;
    * after the last candidate: ``T2 * n2_x`` on the square multiplier during
      its cross stage, then ``fp32(T2 * n2_x) * n2_best`` (``P + 1`` cycles).

    Timing (:func:`focus_hw.timing.sic_argmax_cycles`): a candidate accepted
    in cycle ``c`` is compared in cycle ``c + 2P + 2``; the decision of a last
    candidate accepted in cycle ``c`` is valid in cycle ``c + 3P + 3``.
    ``cand`` is ready when no candidate came in the last ``P`` cycles, and a
    vector's first candidate must come at least ``2P + 2`` cycles after the
    previous vector's last one.
    """

    def __init__(self, params: FocusParams):
        self.params = params
        super().__init__({
            "cand": In(stream.Signature(candidate_layout(params))),
            "decision": Out(stream.Signature(decision_layout(params), always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        pipe = p.sic_pipeline
        t2 = threshold_square(p)

        take = Signal()
        m.d.comb += take.eq(self.cand.valid & self.cand.ready)
        events = delayed(m, take, 2 * pipe + 2)  # bit j: accepted j + 1 cycles ago
        if pipe:
            m.d.comb += self.cand.ready.eq(~events[:pipe].any())
        else:
            m.d.comb += self.cand.ready.eq(1)
        to_cross, compare_now = events[pipe], events[2 * pipe + 1]

        c1 = Signal(candidate_layout(p))          # in the square stage
        c2 = Signal(candidate_layout(p))          # in the cross stage
        q = Signal(32)                            # d^2 of c2
        tx = Signal(32)                           # T2 * n2_x
        has = Signal()                            # a best candidate exists
        best_d, best_d2, best_n2 = Signal(32), Signal(32), Signal(32)
        best_root_pos = Signal(position_shape(p))
        best_root_idx = Signal(index_shape(p))
        scale = Signal()                          # the square multiplier makes T2 * n2_x
        final = Signal()                          # cross_b makes fp32(T2 * n2_x) * n2_best
        decide = delayed(m, compare_now & c2.last, pipe + 1)[-1]

        sq = m.submodules.square = FMul("fp32", pipe)
        mb = m.submodules.cross_b = FMul("fp32", pipe)
        ma = m.submodules.cross_a = FMul("fp32", pipe)
        m.d.comb += [sq.a.eq(Mux(scale, _const(t2), c1.d)), sq.b.eq(Mux(scale, c1.n2_x, c1.d)),
                     mb.a.eq(Mux(final, tx, q)), mb.b.eq(best_n2),
                     ma.a.eq(best_d2), ma.b.eq(c2.n2)]

        zero = Const(0, 32)
        d_lt, _, d_gt, d_nan = compare(m, FP32, c2.d, zero)
        a_lt, _, a_gt, _ = compare(m, FP32, best_d, zero)
        cross_lt, _, cross_gt, _ = compare(m, FP32, mb.out, ma.out)
        d2_lt, _, d2_gt, _ = compare(m, FP32, best_d2, mb.out)

        s_b, s_a = Signal(range(-1, 2)), Signal(range(-1, 2))
        m.d.comb += [s_b.eq(Mux(d_gt, 1, Mux(d_lt, -1, 0))),
                     s_a.eq(Mux(a_gt, 1, Mux(a_lt, -1, 0)))]
        beats = Mux(s_b != s_a, s_b > s_a, (s_b != 0) & Mux(s_b > 0, cross_gt, cross_lt))
        wins = c2.eligible & ~d_nan & (~has | beats)

        with m.If(take):
            m.d.sync += c1.eq(self.cand.payload)
        with m.If(compare_now):
            m.d.sync += [scale.eq(0), final.eq(c2.last)]
            with m.If(scale):
                m.d.sync += tx.eq(sq.out)
            with m.If(wins):
                m.d.sync += [has.eq(1), best_d.eq(c2.d), best_d2.eq(q), best_n2.eq(c2.n2),
                             best_root_pos.eq(c2.root_pos), best_root_idx.eq(c2.root_idx)]
        # The next candidate may move to the cross stage as this one is compared.
        with m.If(to_cross):
            m.d.sync += [c2.eq(c1), q.eq(sq.out), scale.eq(c1.last)]

        if t2 is None:
            similar = 0
        elif p.threshold >= 0:
            similar = has & a_gt & d2_gt
        else:
            similar = has & (~a_lt | d2_lt)
        m.d.comb += [self.decision.valid.eq(decide),
                     self.decision.payload.similar.eq(similar),
                     self.decision.payload.root_pos.eq(best_root_pos),
                     self.decision.payload.root_idx.eq(best_root_idx)]
        with m.If(decide):
            m.d.sync += [has.eq(0), final.eq(0)]
        return m


def _const(value) -> int:
    """fp32 bits of a numpy float32 (0 when the threshold never merges)."""
    return 0 if value is None else int(to_bits("fp32", [value])[0])
