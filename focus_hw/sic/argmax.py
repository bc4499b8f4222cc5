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

__all__ = ["ArgMax", "index_shape", "position_shape", "shares_multiplier"]


def position_shape(params: FocusParams):
    """A token position (0 .. max_tokens - 1)."""
    return unsigned(max(1, (params.max_tokens - 1).bit_length()))


def index_shape(params: FocusParams):
    """A token's index within its M tile (0 .. m_tile - 1)."""
    return unsigned(params.index_bits)


def candidate_layout(params: FocusParams) -> data.StructLayout:
    return data.StructLayout(
        {
            "d": 32,  # fp32 dot product with the current vector
            "n2": 32,  # the candidate's fp32 squared magnitude
            "n2_x": 32,  # the current vector's squared magnitude
            "eligible": 1,  # a non-zero candidate of the window and M tile
            "root_pos": position_shape(params),
            "root_idx": index_shape(params),
            "last": 1,  # last candidate of this vector: decide
        }
    )


def decision_layout(params: FocusParams) -> data.StructLayout:
    return data.StructLayout(
        {"similar": 1, "root_pos": position_shape(params), "root_idx": index_shape(params)}
    )


class ArgMax(wiring.Component):
    """Best candidate of a vector and its threshold compare, keeping up with
    the dot-product unit (one candidate per ``S*(P+1)`` cycles).

    ``cand`` takes the candidates of one vector in tie-break order, the last
    one flagged; after it, ``decision`` (always ready) gives for one cycle
    whether the best is similar and its root. Candidate ``b`` replaces the
    best ``a`` when eligible and :func:`focus_hw.sic.model.better` holds:
    ``sign(d)`` first, then ``d_b^2 * n2_a`` against ``d_a^2 * n2_b`` (fp32),
    strictly, so ties keep the earlier candidate. The threshold test is
    :func:`focus_hw.sic.model.passes` (``d^2`` against ``T2 * n2_x * n2``).
    No divider and no square root. fp32 multipliers are plain pipelines of
    ``P`` stages (``P = sic_pipeline``), one product per ``P + 1`` cycles:

    * ``S >= 3`` or ``K <= 1`` (:func:`shares_multiplier`): one multiplier
      makes, in turn, ``q = d*d``, ``q * n2_a`` and ``d_a^2 * n2_b``,
      compared (and the best updated) in the third product's last cycle;
      after the last candidate
      ``T2 * n2_x`` and ``v = fp32(T2 * n2_x) * n2_best``. ``cand`` is ready
      ``3P + 3`` cycles after a take; the decision comes ``5P + 5`` cycles
      after the last candidate's.
    * otherwise three multipliers. Square stage (``P + 1`` cycles), then
      both cross products side by side while the square multiplier works on
      the next candidate (one candidate per ``P + 1`` cycles); after the last
      one the square multiplier makes ``T2 * n2_x`` during its cross stage,
      then a cross multiplier ``v``: the decision ``3P + 3`` cycles after
      the last candidate's take.

    With ``P > 0`` the decision is registered, one cycle later.

    Timing: :func:`focus_hw.timing.sic_argmax_cycles`. A vector's first
    candidate must come at least ``5P + 5`` cycles after the previous
    vector's last one.
    """

    def __init__(self, params: FocusParams):
        self.params = params
        super().__init__(
            {
                "cand": In(stream.Signature(candidate_layout(params))),
                "decision": Out(stream.Signature(decision_layout(params), always_ready=True)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self.params
        pipe = p.sic_pipeline
        t2 = _const(threshold_square(p))
        shared = shares_multiplier(p)
        beat = pipe + 1  # one product

        take = Signal()
        m.d.comb += take.eq(self.cand.valid & self.cand.ready)
        # bit j: a candidate was accepted j + 1 cycles ago
        events = delayed(m, take, (5 if shared else 2) * beat)
        gap = 3 * beat - 1 if shared else pipe  # cycles after a take without another
        m.d.comb += self.cand.ready.eq(~events[:gap].any() if gap else 1)

        c1 = Signal(candidate_layout(p))  # accepted; in the square product
        c2 = Signal(candidate_layout(p))  # in the cross products
        q = Signal(32)  # d^2 of c2
        tx = Signal(32)  # T2 * n2_x
        has = Signal()  # a best candidate exists
        best_d, best_d2, best_n2 = Signal(32), Signal(32), Signal(32)
        best_root_pos = Signal(position_shape(p))
        best_root_idx = Signal(index_shape(p))
        final = Signal()  # the last candidate was compared

        if shared:
            # One multiplier, one product per P + 1 cycles: d^2, d^2 * n2_a,
            # d_a^2 * n2_b (compare), then for the last T2 * n2_x and v.
            def ends(k):
                return events[(k + 1) * beat - 1]

            def busy(k):
                return events[k * beat : (k + 1) * beat].any()

            pb = Signal(32)  # d_b^2 * n2_a
            mul = m.submodules.mul = FMul("fp32", pipe)
            with m.If(busy(0)):
                m.d.comb += [mul.a.eq(c1.d), mul.b.eq(c1.d)]
            with m.Elif(busy(1)):
                m.d.comb += [mul.a.eq(q), mul.b.eq(best_n2)]
            with m.Elif(busy(2)):
                m.d.comb += [mul.a.eq(best_d2), mul.b.eq(c1.n2)]
            with m.Elif(final & busy(3)):
                m.d.comb += [mul.a.eq(t2), mul.b.eq(c1.n2_x)]
            with m.Elif(final):
                m.d.comb += [mul.a.eq(tx), mul.b.eq(best_n2)]
            m.d.comb += c2.eq(c1)
            with m.If(ends(0)):
                m.d.sync += q.eq(mul.out)
            with m.If(ends(1)):
                m.d.sync += pb.eq(mul.out)
            with m.If(final & ends(3)):
                m.d.sync += tx.eq(mul.out)
            compare_now, decide = ends(2), final & ends(4)
            cross_b, cross_a, v = pb, mul.out, mul.out
        else:
            # Square, then both cross products side by side while the square
            # multiplier works on the next candidate (or, after the last, on
            # T2 * n2_x); then v on cross_b.
            to_cross, compare_now = events[pipe], events[2 * pipe + 1]
            scale = Signal()  # the square multiplier makes T2 * n2_x
            decide = delayed(m, compare_now & c2.last, beat)[-1]
            sq = m.submodules.square = FMul("fp32", pipe)
            mb = m.submodules.cross_b = FMul("fp32", pipe)
            ma = m.submodules.cross_a = FMul("fp32", pipe)
            m.d.comb += [
                sq.a.eq(Mux(scale, t2, c1.d)),
                sq.b.eq(Mux(scale, c1.n2_x, c1.d)),
                mb.a.eq(Mux(final, tx, q)),
                mb.b.eq(best_n2),
                ma.a.eq(best_d2),
                ma.b.eq(c2.n2),
            ]
            with m.If(compare_now):
                m.d.sync += scale.eq(0)
                with m.If(scale):
                    m.d.sync += tx.eq(sq.out)
            # The next candidate may move to the cross stage as this one is compared.
            with m.If(to_cross):
                m.d.sync += [c2.eq(c1), q.eq(sq.out), scale.eq(c1.last)]
            cross_b, cross_a, v = mb.out, ma.out, mb.out

        zero = Const(0, 32)
        d_lt, _, d_gt, d_nan = compare(m, FP32, c2.d, zero)
        a_lt, _, a_gt, _ = compare(m, FP32, best_d, zero)
        cross_lt, _, cross_gt, _ = compare(m, FP32, cross_b, cross_a)
        d2_lt, _, d2_gt, _ = compare(m, FP32, best_d2, v)

        s_b, s_a = Signal(range(-1, 2)), Signal(range(-1, 2))
        m.d.comb += [s_b.eq(Mux(d_gt, 1, Mux(d_lt, -1, 0))), s_a.eq(Mux(a_gt, 1, Mux(a_lt, -1, 0)))]
        beats = Mux(s_b != s_a, s_b > s_a, (s_b != 0) & Mux(s_b > 0, cross_gt, cross_lt))
        wins = c2.eligible & ~d_nan & (~has | beats)

        with m.If(take):
            m.d.sync += c1.eq(self.cand.payload)
        with m.If(compare_now):
            m.d.sync += final.eq(c2.last)
            with m.If(wins):
                m.d.sync += [
                    has.eq(1),
                    best_d.eq(c2.d),
                    best_d2.eq(q),
                    best_n2.eq(c2.n2),
                    best_root_pos.eq(c2.root_pos),
                    best_root_idx.eq(c2.root_idx),
                ]

        if threshold_square(p) is None:
            similar = 0
        elif p.threshold >= 0:
            similar = has & a_gt & d2_gt
        else:
            similar = has & (~a_lt | d2_lt)
        # The decision, registered when the unit is pipelined.
        domain = m.d.sync if pipe else m.d.comb
        domain += [
            self.decision.valid.eq(decide),
            self.decision.payload.similar.eq(similar),
            self.decision.payload.root_pos.eq(best_root_pos),
            self.decision.payload.root_idx.eq(best_root_idx),
        ]
        with m.If(decide):
            m.d.sync += [has.eq(0), final.eq(0)]
        return m


def shares_multiplier(params: FocusParams) -> bool:
    """Whether the arg-max unit uses one fp32 multiplier for all products:
    when the dot-product unit needs ``S*(P+1) >= 3*(P+1)`` cycles per
    candidate, three products in turn keep up with it; so they do with one
    candidate per vector (a 1x1x2-like block)."""
    return params.sic_steps >= 3 or len(params.block_offsets) <= 1


def _const(value) -> int:
    """fp32 bits of a numpy float32 (0 when the threshold never merges)."""
    return 0 if value is None else int(to_bits("fp32", [value])[0])
