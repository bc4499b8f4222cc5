"""Bounded proofs (SymbiYosys) of the SIC's stream behaviour.

The harness drives the SIC's input with free control fields (position,
coordinates, first/last, valid) that obey the stream rules, and free
``out.ready`` (arbitrary backpressure). Vector data is held at zero: no
state transition of the SIC depends on data values (its timing is
data-independent; see focus_hw.timing.sic_cycles, tested against the RTL),
so the handshakes proven here are those of every input, while the solver
is spared the fp32 multipliers. Proven for every trace within the depth:

* ``out`` holds ``valid`` and its payload until ``ready``;
* no beat is lost, duplicated or reordered: the k-th beat out carries the
  position of the k-th beat in (k free), no more beats leave than entered,
  and no new vector is accepted while a finished pass is still being sent.
"""

from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Elaboratable, Module, Signal

from focus_hw import FocusParams
from focus_hw.sic import SIC
from formal import TOOLS, prove
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
#: Proof depth (cycles): on this configuration a pass of two vectors takes 25
#: cycles (focus_hw.timing.sic_cycles), a pass of one 15.
DEPTH = 30


class SICStreams(Elaboratable):
    def __init__(self, params):
        self.dut = SIC(params)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        inp, out = dut.inp, dut.out
        in_valid, in_first, in_last, out_ready = AnySeq(1), AnySeq(1), AnySeq(1), AnySeq(1)
        in_pos = AnySeq(len(inp.payload.pos))
        m.d.comb += [
            inp.valid.eq(in_valid),
            inp.payload.first.eq(in_first),
            inp.payload.last.eq(in_last),
            inp.payload.pos.eq(in_pos),
            inp.payload.data.eq(0),
            dut.width.eq(1),
            dut.frame_tokens.eq(2),
            out.ready.eq(out_ready),
        ]

        # The producer keeps its beat until taken.
        held, held_pos, held_first, held_last = Signal(), Signal(len(in_pos)), Signal(), Signal()
        m.d.sync += [
            held.eq(in_valid & ~inp.ready),
            held_pos.eq(in_pos),
            held_first.eq(in_first),
            held_last.eq(in_last),
        ]
        with m.If(held):
            m.d.comb += Assume(
                in_valid & (in_pos == held_pos) & (in_first == held_first) & (in_last == held_last)
            )

        # out holds valid and payload until ready.
        waiting, payload = Signal(), Signal.like(out.payload)
        m.d.sync += [waiting.eq(out.valid & ~out.ready), payload.eq(out.payload)]
        with m.If(waiting):
            m.d.comb += Assert(out.valid, "out.valid dropped before ready")
            m.d.comb += Assert(
                out.payload.as_value() == payload.as_value(), "out.payload changed before ready"
            )

        # Order: the k-th beat out is the k-th beat in.
        k = AnyConst(3)
        n_in, n_out = Signal(4), Signal(4)
        seen, pos_k = Signal(), Signal(len(in_pos))
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
                m.d.comb += Assert(seen & (out.payload.pos == pos_k), "beat k reordered")
        m.d.comb += Assert(n_out <= n_in, "more beats out than in")
        m.d.comb += Assert(
            ~(inp.ready & (lasts_in != lasts_out)),
            "input accepted while a finished pass is pending",
        )
        # Bound the counters within the proof depth.
        m.d.comb += Assume(n_in < 15)
        return m


def test_sic_streams_hold_and_keep_every_beat(tmp_path):
    require(*TOOLS)
    prove(SICStreams(P), depth=DEPTH, workdir=tmp_path, mode="bmc", timeout=900)
