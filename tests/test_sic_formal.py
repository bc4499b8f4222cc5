"""Bounded proofs (SymbiYosys BMC) of the SIC's stream behaviour.

The harness drives the SIC's input with a free payload (vector data,
position, grid coordinates, first/last) and a free ``valid`` that obey the
stream rules, and free ``out.ready`` (arbitrary backpressure). Every float
unit is replaced by a free output in every cycle (the ``free_fp`` fixture,
as in the controller proof): dot products, arg-max products, group sums
and means take any value, so similar and unique decisions, and any mean,
are reachable; the real values are among the free ones, so what holds here
holds for every data value. Proven for every trace within :data:`DEPTH`
cycles (the ``slow`` variant: :data:`DEPTH_SLOW`, which holds the
cover's three beats):

* ``out`` holds ``valid`` and its payload until ``ready``;
* no beat is lost, duplicated or reordered: the k-th beat out carries the
  position of the k-th beat in (k free), no more beats leave than entered;
* passes overlap by at most one: while the SIC is ready for a vector, at
  most one finished pass is not yet sent, and it never holds more than two
  passes' beats (the two banks).

Not vacuous: a cover shows three beats out (two overlapped passes), one of
them similar and one with a non-zero mean, within :data:`COVER_DEPTH`
cycles; :class:`NoBackpressure` (the mean unit never waits for ``out``) is
refuted on the hold assertion alone.
"""

import pytest
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assume, Cover, Elaboratable, Module, Signal

from focus_hw import FocusParams
from focus_hw.sic import SIC
from formal import TOOLS, check, failed_checks, prove
from tools import require

P = FocusParams(
    vector_size=1,
    sic_lanes=1,
    m_tile=2,
    max_frame_tokens=2,
    max_tokens=4,
    block_frames=1,
    block_height=1,
    block_width=2,
)
#: Proof depth (cycles): on this configuration vectors are taken 9 cycles
#: apart and a pass of one vector sends its beat 15 cycles after it is taken
#: (focus_hw.timing.sic_cycles), so within it at most two beats leave while
#: a third pass may be taken, its first vector waiting for its bank while
#: ``out`` is held; the ``slow`` variant's depth holds the cover's three
#: beats (deeper, each step takes minutes).
DEPTH, DEPTH_SLOW = 30, 35
#: Cover depth: a pass of two vectors, then one of one, overlapped (the
#: third beat is taken in cycle 33, focus_hw.timing.sic_run_cycles).
COVER_DEPTH = 35


class NoBackpressure(SIC):
    """Broken on purpose: the mean unit sees ``out`` always ready, so a mean
    not taken is lost."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += m.submodules.average.mean.ready.eq(1)  # the last assignment wins
        return m


class SICStreams(Elaboratable):
    """The harness of the module docstring around ``dut``; ``where`` names
    its assertions (:func:`formal.check`): ``"hold"``, ``"order"``,
    ``"count"``, ``"pending"``. ``cover``: add the cover."""

    def __init__(self, dut, *, cover=False):
        self.dut, self.cover, self.where = dut, cover, {}

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        inp, out = dut.inp, dut.out
        m.d.comb += [
            inp.valid.eq(AnySeq(1)),
            inp.payload.eq(AnySeq(len(inp.payload.as_value()))),
            dut.width.eq(1),
            dut.frame_tokens.eq(2),
            out.ready.eq(AnySeq(1)),
        ]

        # The producer keeps its beat until taken.
        held, held_payload = Signal(), Signal.like(inp.payload)
        m.d.sync += [held.eq(inp.valid & ~inp.ready), held_payload.eq(inp.payload)]
        with m.If(held):
            m.d.comb += Assume(inp.valid & (inp.payload.as_value() == held_payload.as_value()))

        # out holds valid and payload until ready.
        waiting, payload = Signal(), Signal.like(out.payload)
        m.d.sync += [waiting.eq(out.valid & ~out.ready), payload.eq(out.payload)]
        with m.If(waiting):
            m.d.comb += check(
                self.where, "hold", out.valid & (out.payload.as_value() == payload.as_value())
            )

        # Order: the k-th beat out is the k-th beat in.
        k = AnyConst(3)
        n_in, n_out = Signal(4), Signal(4)
        seen, pos_k = Signal(), Signal.like(inp.payload.pos)
        lasts_in, lasts_out = Signal(4), Signal(4)
        take_in = inp.valid & inp.ready
        take_out = out.valid & out.ready
        with m.If(take_in):
            m.d.sync += n_in.eq(n_in + 1)
            m.d.sync += lasts_in.eq(lasts_in + inp.payload.last)
            with m.If(n_in == k):
                m.d.sync += [seen.eq(1), pos_k.eq(inp.payload.pos)]
        with m.If(take_out):
            m.d.sync += [n_out.eq(n_out + 1), lasts_out.eq(lasts_out + out.payload.last)]
            with m.If(n_out == k):
                m.d.comb += check(self.where, "order", seen & (out.payload.pos == pos_k))
        m.d.comb += [
            check(self.where, "count", n_out <= n_in),
            check(
                self.where,
                "pending",
                ~(inp.ready & (lasts_in > lasts_out + 1)) & (n_in <= n_out + 2 * P.m_tile),
            ),
        ]
        # Bound the counters within the proof depth.
        m.d.comb += Assume(n_in < 15)

        if self.cover:
            similar, mean = Signal(), Signal()  # a similar beat, a non-zero mean has left
            with m.If(take_out):
                m.d.sync += [
                    similar.eq(similar | out.payload.similar),
                    mean.eq(mean | out.payload.data.any()),
                ]
            m.d.comb += Cover((n_out == 3) & similar & mean)
        return m


def test_sic_streams_hold_and_keep_every_beat(free_fp, tmp_path):
    require(*TOOLS)
    prove(SICStreams(SIC(P)), depth=DEPTH, workdir=tmp_path, mode="bmc", timeout=900)


@pytest.mark.slow
def test_sic_streams_hold_and_keep_every_beat_deeper(free_fp, tmp_path):
    require(*TOOLS)
    prove(SICStreams(SIC(P)), depth=DEPTH_SLOW, workdir=tmp_path, mode="bmc", timeout=900)


def test_sic_streams_reach_three_beats(free_fp, tmp_path):
    require(*TOOLS)
    prove(SICStreams(SIC(P), cover=True), depth=COVER_DEPTH, workdir=tmp_path, mode="cover")


def test_sic_without_backpressure_is_refuted(free_fp, tmp_path):
    require(*TOOLS)
    harness = SICStreams(NoBackpressure(P))
    failed = failed_checks(harness, harness.where, depth=DEPTH, workdir=tmp_path, mode="bmc")
    assert failed == {"hold"}
