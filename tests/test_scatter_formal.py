"""Proofs (SymbiYosys k-induction) that the scatter accumulator loses no update.

The harness drives every lane with free requests (valid, row, value, init,
skip: any value in every cycle, no stream rules assumed) and the drain port
with free traffic, and watches one free row R. A shadow register holds the
last value written to R (initially 0, the buffer's init). Proven for every
reachable state:

* (a) a request to R in its add cycle gets the shadow as the adders' old
  operand (the last write to R, also one made in the request's own read
  cycle), or +0.0 with ``init``;
* (b) the writes to R in a cycle are exactly the requests to R taken in the
  previous cycle that write (all but ``skip`` without ``init``): one write
  each, no other write;
* (c) no two writes of one cycle meet on a row; ``busy`` is high exactly
  when a write is made.

The buffer's row R always equals the shadow (read through an extra
asynchronous port): the inductive strengthening that makes (a) provable.

Mutants, each refuted (BMC, 4 cycles) on the assertion it breaks and no other:
:class:`IgnoresInit` (a), :class:`WrongRow` (b), :class:`NoArbitration`
(two writes meet) and :class:`EarlyBusy` (``busy``) for (c).
"""

import pytest
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Cat, Elaboratable, Module, Mux, Signal

from focus_hw import FocusParams
from focus_hw.scatter import ScatterAccumulator
from formal import TOOLS, check, failed_checks, prove
from tools import require


def params(lanes: int) -> FocusParams:
    """4 output rows (2 halves of m_tile 2, one-vector groups): every row
    address the free requests can make is a row of the buffer."""
    return FocusParams(rows=1, cols=2, vector_size=1, m_tile=2, num_scatter=lanes, out_vectors=1)


# Broken on purpose (the mutants): each overrides one assignment (the last wins).


class IgnoresInit(ScatterAccumulator):
    """A row's first update (``init``) adds to the read port's stale data, not +0.0."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += [old.eq(rp.data) for old, rp in zip(self.old, self._lane_reads)]
        return m


class WrongRow(ScatterAccumulator):
    """Each write goes to the neighbouring row (its request's row, bit 0 flipped)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        for lane, wp in zip(self.lanes, self.memory.write_ports):
            row = Signal.like(wp.addr)
            m.d.sync += row.eq(lane.payload.row ^ 1)
            m.d.comb += wp.addr.eq(row)
        return m


class NoArbitration(ScatterAccumulator):
    """Every lane is always ready (same-row requests of one cycle are all taken)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += [lane.ready.eq(1) for lane in self.lanes]
        return m


class EarlyBusy(ScatterAccumulator):
    """``busy`` a cycle early: high when a request is taken, not when it writes."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.busy.eq(Cat(lane.valid & lane.ready for lane in self.lanes).any())
        return m


class NoUpdateLost(Elaboratable):
    """The harness of the module docstring around ``dut``; ``where`` names
    its assertions (:func:`formal.check`): ``"old"`` (a), ``"writes"`` (b),
    ``"meet"`` and ``"busy"`` (c), ``"row R"`` (the invariant)."""

    def __init__(self, dut):
        self.dut, self.where = dut, {}

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        mem = dut.memory
        rows = len(dut.read.payload)
        watched = AnyConst(rows)
        peek = mem.read_port(domain="comb")  # for the invariant only
        m.d.comb += peek.addr.eq(watched)

        for port in (dut.read.valid, dut.read.payload, dut.data.ready):
            m.d.comb += port.eq(AnySeq(len(port)))
        shadow = Signal(len(peek.data.as_value()))  # the last value written to R
        due = Signal(range(len(dut.lanes) + 1))  # writes to R due this cycle
        hits = [wp.en & (wp.addr == watched) for wp in mem.write_ports]
        writes_r = []
        for i, (lane, wp, hit) in enumerate(zip(dut.lanes, mem.write_ports, hits)):
            r = lane.payload
            m.d.comb += [
                lane.valid.eq(AnySeq(1)),
                r.row.eq(AnySeq(rows)),
                r.value.eq(AnySeq(len(r.value.as_value()))),
                r.init.eq(AnySeq(1)),
                r.skip.eq(AnySeq(1)),
            ]
            write_r = lane.valid & lane.ready & (r.row == watched) & (r.init | ~r.skip)
            writes_r.append(write_r)
            # (a) in a request to R's add cycle: old = shadow, or +0.0 for init
            adding, taken = Signal(name=f"adding{i}"), Signal.like(r, name=f"taken{i}")
            m.d.sync += [adding.eq(write_r), taken.eq(r)]
            with m.If(adding):
                want = Mux(taken.init, 0, shadow)
                m.d.comb += check(self.where, "old", dut.old[i].as_value() == want)
            with m.If(hit):
                m.d.sync += shadow.eq(wp.data.as_value())
        m.d.sync += due.eq(sum(w.as_unsigned() for w in writes_r))
        ports = mem.write_ports
        m.d.comb += [
            check(self.where, "writes", sum(h.as_unsigned() for h in hits) == due),
            check(self.where, "row R", peek.data.as_value() == shadow),
            check(self.where, "busy", dut.busy == Cat(wp.en for wp in ports).any()),
        ]
        for i, a in enumerate(ports):
            for b in ports[i + 1 :]:
                m.d.comb += check(self.where, "meet", ~(a.en & b.en & (a.addr == b.addr)))
        return m


@pytest.mark.parametrize("lanes", [2, 3])
def test_scatter_loses_no_update(tmp_path, lanes):
    require(*TOOLS)
    prove(NoUpdateLost(ScatterAccumulator(params(lanes))), depth=3, workdir=tmp_path, timeout=120)


@pytest.mark.parametrize(
    "mutant, target",
    [(IgnoresInit, "old"), (WrongRow, "writes"), (NoArbitration, "meet"), (EarlyBusy, "busy")],
)
def test_scatter_mutant_is_refuted_on_its_assertion(tmp_path, mutant, target):
    require(*TOOLS)
    harness = NoUpdateLost(mutant(params(2)))
    failed = failed_checks(harness, harness.where, depth=4, workdir=tmp_path, mode="bmc")
    assert failed == {target}
