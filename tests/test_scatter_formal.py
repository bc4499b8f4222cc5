"""Proofs (SymbiYosys k-induction) that the scatter accumulator loses no update.

The harness drives every lane with free requests (valid, row, value, init,
skip: any value in every cycle, no stream rules assumed) and the drain port
with free traffic, and watches one free row R. A shadow register holds the
last value written to R (initially 0, the buffer's init). With ``P`` =
``scatter_pipeline`` (a request's sum is written ``P+1`` cycles after its
accept), proven for every reachable state:

* (a) a request to R in its add cycle gets the shadow as the adders' old
  operand (the last write to R, also one made in the request's own read
  cycle), or +0.0 with ``init``; and, when it reads R, no earlier update of
  R is still in the adders (its sum would come after the read: stale);
* (b) the writes to R in a cycle are exactly the requests to R taken
  ``P+1`` cycles before that write (all but ``skip`` without ``init``): one
  write each, no other write;
* (c) no two writes of one cycle meet on a row; ``busy`` is high exactly
  while a write is in the adders (a request that writes was taken in the
  last ``P+1`` cycles).

The buffer's row R always equals the shadow (read through an extra
asynchronous port): the inductive strengthening that makes (a) provable.

Mutants, each refuted (BMC) on the assertion it breaks and no other:
:class:`IgnoresInit` (a), :class:`WrongRow` (b), :class:`NoArbitration`
(two writes meet) and :class:`EarlyBusy` (``busy``) for (c), without a
pipeline; with one, :class:`NoHold` and :class:`ShallowHold` (a stale read,
a), :class:`ShortBusy` (``busy``, c).
"""

import pytest
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Cat, Elaboratable, Module, Mux, Signal

from focus_hw import FocusParams
from focus_hw.scatter import ScatterAccumulator
from formal import TOOLS, check, failed_checks, prove
from tools import require


def params(lanes: int, pipeline: int = 0) -> FocusParams:
    """4 output rows (2 halves of m_tile 2, one-vector groups): every row
    address the free requests can make is a row of the buffer."""
    return FocusParams(
        rows=1,
        cols=2,
        vector_size=1,
        m_tile=2,
        num_scatter=lanes,
        out_vectors=1,
        scatter_pipeline=pipeline,
    )


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


class NoHold(ScatterAccumulator):
    """Lanes wait only for lower lanes, not for a row's sum still in the adders."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        for i, lane in enumerate(self.lanes):
            row = lane.payload.row
            low = [other.valid & (other.payload.row == row) for other in self.lanes[:i]]
            m.d.comb += lane.ready.eq(~Cat(*low).any())
        return m


class ShallowHold(ScatterAccumulator):
    """Lanes wait for the row taken in the previous cycle only, not for older
    ones still in the adders (with ``scatter_pipeline >= 2``)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        prev = []  # each lane's last taken row
        for lane in self.lanes:
            taken, row = Signal(), Signal.like(lane.payload.row)
            m.d.sync += [taken.eq(lane.valid & lane.ready), row.eq(lane.payload.row)]
            prev.append((taken, row))
        for i, lane in enumerate(self.lanes):
            row = lane.payload.row
            low = [other.valid & (other.payload.row == row) for other in self.lanes[:i]]
            low += [taken & (last == row) for taken, last in prev]
            m.d.comb += lane.ready.eq(~Cat(*low).any())
        return m


class ShortBusy(ScatterAccumulator):
    """``busy`` low in the write cycle: high only while a sum is in the
    adders' register stages."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        writing = Cat(
            lane.valid & lane.ready & (lane.payload.init | ~lane.payload.skip)
            for lane in self.lanes
        ).any()
        stages = []
        for _ in range(self.params.scatter_pipeline):
            stage = Signal()
            m.d.sync += stage.eq(writing)
            stages.append(writing := stage)
        m.d.comb += self.busy.eq(Cat(*stages).any())
        return m


class NoUpdateLost(Elaboratable):
    """The harness of the module docstring around ``dut``; ``where`` names
    its assertions (:func:`formal.check`): ``"old"`` and ``"stale"`` (a),
    ``"writes"`` (b), ``"meet"`` and ``"busy"`` (c), ``"row R"`` (the
    invariant)."""

    def __init__(self, dut):
        self.dut, self.where = dut, {}

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        depth = dut.params.scatter_pipeline
        mem = dut.memory
        rows = len(dut.read.payload)
        watched = AnyConst(rows)
        peek = mem.read_port(domain="comb")  # for the invariant only
        m.d.comb += peek.addr.eq(watched)

        for port in (dut.read.valid, dut.read.payload, dut.data.ready):
            m.d.comb += port.eq(AnySeq(len(port)))
        shadow = Signal(len(peek.data.as_value()))  # the last value written to R
        # due[k]: requests to R that write, taken k + 1 cycles ago; writing[k]:
        # whether any request that writes was.
        due = [Signal(range(len(dut.lanes) + 1), name=f"due{k}") for k in range(depth + 1)]
        writing = [Signal(name=f"writing{k}") for k in range(depth + 1)]
        hits = [wp.en & (wp.addr == watched) for wp in mem.write_ports]
        writes_r, writes = [], []
        for i, (lane, wp, hit) in enumerate(zip(dut.lanes, mem.write_ports, hits)):
            r = lane.payload
            m.d.comb += [
                lane.valid.eq(AnySeq(1)),
                r.row.eq(AnySeq(rows)),
                r.value.eq(AnySeq(len(r.value.as_value()))),
                r.init.eq(AnySeq(1)),
                r.skip.eq(AnySeq(1)),
            ]
            write = lane.valid & lane.ready & (r.init | ~r.skip)
            write_r = write & (r.row == watched)
            writes.append(write)
            writes_r.append(write_r)
            # (a) in a request to R's add cycle: old = shadow, or +0.0 for
            # init; reading R, no earlier update of R still in the adders
            adding, taken = Signal(name=f"adding{i}"), Signal.like(r, name=f"taken{i}")
            m.d.sync += [adding.eq(write_r), taken.eq(r)]
            with m.If(adding):
                want = Mux(taken.init, 0, shadow)
                m.d.comb += check(self.where, "old", dut.old[i].as_value() == want)
                if depth:
                    older = Cat(d != 0 for d in due[1:]).any()
                    m.d.comb += check(self.where, "stale", taken.init | ~older)
            with m.If(hit):
                m.d.sync += shadow.eq(wp.data.as_value())
        m.d.sync += [
            due[0].eq(sum(w.as_unsigned() for w in writes_r)),
            writing[0].eq(Cat(*writes).any()),
        ]
        m.d.sync += [b.eq(a) for a, b in zip(due, due[1:])]
        m.d.sync += [b.eq(a) for a, b in zip(writing, writing[1:])]
        ports = mem.write_ports
        m.d.comb += [
            check(self.where, "writes", sum(h.as_unsigned() for h in hits) == due[-1]),
            check(self.where, "row R", peek.data.as_value() == shadow),
            check(self.where, "busy", dut.busy == Cat(*writing).any()),
        ]
        for i, a in enumerate(ports):
            for b in ports[i + 1 :]:
                m.d.comb += check(self.where, "meet", ~(a.en & b.en & (a.addr == b.addr)))
        return m


@pytest.mark.parametrize("lanes, pipeline", [(2, 0), (3, 0), (2, 1), (2, 2)])
def test_scatter_loses_no_update(tmp_path, lanes, pipeline):
    require(*TOOLS)
    dut = ScatterAccumulator(params(lanes, pipeline))
    prove(NoUpdateLost(dut), depth=pipeline + 3, workdir=tmp_path, timeout=120)


@pytest.mark.parametrize(
    "mutant, pipeline, target",
    [
        (IgnoresInit, 0, "old"),
        (WrongRow, 0, "writes"),
        (NoArbitration, 0, "meet"),
        (EarlyBusy, 0, "busy"),
        (NoHold, 1, "stale"),
        (ShallowHold, 2, "stale"),
        (ShortBusy, 1, "busy"),
    ],
)
def test_scatter_mutant_is_refuted_on_its_assertion(tmp_path, mutant, pipeline, target):
    require(*TOOLS)
    harness = NoUpdateLost(mutant(params(2, pipeline)))
    failed = failed_checks(harness, harness.where, depth=pipeline + 4, workdir=tmp_path, mode="bmc")
    assert failed == {target}
