"""The SymbiYosys helper (tests/formal.py) proves true and refutes false properties."""

import pytest
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Array, Assert, Assume, Elaboratable, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from focus_hw.sec import OffsetEncoder, RadixSelect
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


# -- SEC: top-k selection (radix select + offset encoder) ---------------------
# Proved in two parts whose contract is the select's result: with T the
# threshold, ``#(key > T) + ties == k`` and ``1 <= ties <= #(key == T)``
# (over tokens i < n). The select proof asserts it, the encoder proof assumes
# it and asserts that the emitted indices are exactly the reference's top k.


class KeyMemory(Elaboratable):
    """Free keys, ``n`` in ``[1, n_max]``, ``k`` in ``[1, n]``, read through
    synchronous ports (``attach``), and counts relative to a threshold."""

    def __init__(self, n_max: int, key_bits: int):
        self.keys = [AnyConst(key_bits) for _ in range(n_max)]
        self.n, self.k = AnyConst(range(n_max + 1)), AnyConst(range(n_max + 1))
        self.ports = []

    def attach(self, port):
        self.ports.append(port)

    def count(self, predicate):
        """Number of tokens i < n with ``predicate(key_i, i)``."""
        return sum((i < self.n) & predicate(key, i) for i, key in enumerate(self.keys))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += Assume(
            (self.n >= 1) & (self.n <= len(self.keys)) & (self.k >= 1) & (self.k <= self.n)
        )
        for port in self.ports:
            with m.If(port.en):
                m.d.sync += port.data.eq(Array(self.keys)[port.addr])
        return m


class SelectHarness(Elaboratable):
    """RadixSelect from cycle 0: ``done`` exactly when the closed form says,
    with the contract above."""

    def __init__(self, n_max: int, key_bits: int, digit_bits: int):
        self.n_max, self.key_bits, self.digit_bits = n_max, key_bits, digit_bits

    def elaborate(self, platform):
        m = Module()
        m.submodules.select = sel = RadixSelect(self.n_max, self.key_bits, self.digit_bits)
        m.submodules.mem = mem = KeyMemory(self.n_max, self.key_bits)
        mem.attach(sel.keys)
        cycle = Signal(range(256))
        m.d.sync += cycle.eq(cycle + (cycle != 255))
        m.d.comb += [sel.start.eq(cycle == 0), sel.n.eq(mem.n), sel.k.eq(mem.k)]
        done_at = len(sel.slices) * (mem.n + 2**sel.digit_bits + 3) + 1
        m.d.comb += Assert(sel.done == (cycle == done_at), "done cycle")
        t = sel.threshold
        with m.If(sel.done):
            m.d.comb += [
                Assert(mem.count(lambda key, i: key > t) + sel.ties == mem.k, "count"),
                Assert((sel.ties >= 1) & (sel.ties <= mem.count(lambda key, i: key == t)), "ties"),
            ]
        return m


class EncoderHarness(Elaboratable):
    """OffsetEncoder started in cycle 0 with any threshold and ties meeting the
    contract: emits exactly the tokens that fewer than ``k`` tokens beat
    (larger key, or equal key and lower index), ascending, ``last`` on the
    k-th; ``done`` after k of them, and (without backpressure) exactly when
    the closed form says."""

    def __init__(self, n_max: int, key_bits: int, backpressure: bool, lower_wins: bool = True):
        self.n_max, self.key_bits, self.backpressure = n_max, key_bits, backpressure
        self.lower_wins = lower_wins  # False: a wrong reference, which must be refuted

    def elaborate(self, platform):
        m = Module()
        n_max = self.n_max
        m.submodules.encoder = enc = OffsetEncoder(n_max, self.key_bits)
        m.submodules.mem = mem = KeyMemory(n_max, self.key_bits)
        mem.attach(enc.keys)
        n, k, keys = mem.n, mem.k, mem.keys
        t, ties = AnyConst(self.key_bits), AnyConst(range(n_max + 1))
        m.d.comb += [
            Assume(mem.count(lambda key, i: key > t) + ties == k),
            Assume((ties >= 1) & (ties <= mem.count(lambda key, i: key == t))),
        ]
        cycle = Signal(range(256))
        m.d.sync += cycle.eq(cycle + (cycle != 255))
        m.d.comb += [
            enc.start.eq(cycle == 0),
            enc.n.eq(n),
            enc.k.eq(k),
            enc.threshold.eq(t),
            enc.ties.eq(ties),
            enc.kept.ready.eq(AnySeq(1) if self.backpressure else 1),
        ]
        if not self.backpressure:
            m.d.comb += Assert(enc.done == (cycle == n + 2), "done cycle")

        def beats(key, j, i):  # token j beats token i
            earlier = (j < i) if self.lower_wins else (j > i)
            return (key > keys[i]) | ((key == keys[i]) & earlier)

        kept = Signal(n_max)
        for i in range(n_max):
            beaten = mem.count(lambda key, j, i=i: beats(key, j, i))
            m.d.comb += kept[i].eq((i < n) & (beaten < k))
        emitted, prev = Signal(range(n_max + 1)), Signal(range(n_max))
        beat = enc.kept.payload
        with m.If(enc.kept.valid & enc.kept.ready):
            m.d.comb += [
                Assert(Array(kept)[beat.index], "emitted a token not in the top k"),
                Assert((emitted == 0) | (beat.index > prev), "not ascending"),
                Assert(beat.last == (emitted == k - 1), "last flag"),
            ]
            m.d.sync += [emitted.eq(emitted + 1), prev.eq(beat.index)]
        with m.If(enc.done):
            m.d.comb += Assert(emitted == k, "not k tokens")
        return m


@pytest.mark.parametrize(
    "n_max, key_bits, digit_bits",
    [
        (6, 3, 2),
        (6, 3, 3),
        (5, 4, 2),
        (4, 3, 1),  # 2 passes, 1 pass, uneven digits, 3 passes
    ],
)
def test_radix_select_proof(tmp_path, n_max, key_bits, digit_bits):
    passes = -(-key_bits // digit_bits)
    depth = passes * (n_max + 2**digit_bits + 3) + 3
    prove(
        SelectHarness(n_max, key_bits, digit_bits),
        depth=depth,
        workdir=tmp_path,
        mode="bmc",
        timeout=120,
    )


@pytest.mark.parametrize("n_max, key_bits, backpressure", [(6, 4, False), (4, 3, True)])
def test_offset_encoder_proof(tmp_path, n_max, key_bits, backpressure):
    depth = 3 * n_max if backpressure else n_max + 4
    prove(
        EncoderHarness(n_max, key_bits, backpressure),
        depth=depth,
        workdir=tmp_path,
        mode="bmc",
        timeout=120,
    )


def test_offset_encoder_proof_refutes_higher_index_tie_rule(tmp_path):
    with pytest.raises(AssertionError, match="failed assertion"):
        prove(
            EncoderHarness(4, 3, False, lower_wins=False),
            depth=8,
            workdir=tmp_path,
            mode="bmc",
            timeout=120,
        )
