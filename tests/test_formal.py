"""The SymbiYosys helper (tests/formal.py) proves true and refutes false properties."""

import pytest
from amaranth.asserts import AnyConst
from amaranth.hdl import Assert, Elaboratable, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from formal import TOOLS, prove
from tools import require


class Saturating(wiring.Component):
    """Counts up to ``limit`` while ``inc`` is high, then holds."""

    inc: In(1)
    count: Out(4)

    def __init__(self, limit: int, bound: int):
        self.limit, self.bound = limit, bound
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        with m.If(self.inc & (self.count < self.limit)):
            m.d.sync += self.count.eq(self.count + 1)
        m.d.comb += Assert(self.count <= self.bound, "count within bound")
        return m


class AddCheck(Elaboratable):
    """Free constants ``a``, ``b``: asserts ``a + b == b + a + offset``."""

    def __init__(self, offset: int):
        self.offset = offset

    def elaborate(self, platform):
        m = Module()
        a, b, total = AnyConst(4), AnyConst(4), Signal(5)
        m.d.comb += total.eq(a + b)
        m.d.comb += Assert(total == b + a + self.offset)
        return m


@pytest.fixture(autouse=True)
def tools():
    require(*TOOLS)


def test_proves_invariant_by_induction(tmp_path):
    assert "DONE (PASS" in prove(Saturating(9, 9), depth=4, workdir=tmp_path)


def test_refutes_false_invariant(tmp_path):
    # the counter reaches 9 after 9 steps with inc high (a free input port)
    with pytest.raises(AssertionError, match="failed assertion"):
        prove(Saturating(9, 8), depth=12, workdir=tmp_path, mode="bmc")


def test_bmc_depth_bounds_the_search(tmp_path):
    # 9 steps are needed to break the bound: a shorter BMC cannot see it
    prove(Saturating(9, 8), depth=5, workdir=tmp_path, mode="bmc")


@pytest.mark.parametrize("offset, holds", [(0, True), (1, False)])
def test_any_const_inputs(tmp_path, offset, holds):
    if holds:
        prove(AddCheck(offset), depth=2, workdir=tmp_path)
    else:
        with pytest.raises(AssertionError, match="failed assertion"):
            prove(AddCheck(offset), depth=2, workdir=tmp_path)


def test_rejects_bad_mode(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        prove(None, depth=2, workdir=tmp_path, mode="sim")
