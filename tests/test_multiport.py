"""The FPGA lowering of a multi-write-port memory (banks and a live-value
table, :mod:`focus_hw.multiport`) against the plain ``lib.memory.Memory`` and
a Python model of it, bit for bit on every read port in every cycle, under
seeded and hypothesis-drawn traffic: transparent and non-transparent
synchronous reads, asynchronous reads, same-cycle reads of written rows,
same-cycle writes to one row, resets."""

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Elaboratable, Fragment, MemoryInstance, Module, Value
from amaranth.lib import data
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from focus_hw import FocusParams
from focus_hw.fpga.boards import BOARDS
from focus_hw.multiport import LvtPlatform
from focus_hw.scatter import ScatterAccumulator

EXAMPLES = 1000 if settings.get_current_profile_name() == "slow" else 50


class Pair(Elaboratable):
    """Two memories of ``shape``, ``depth``, ``init`` with ``writes`` write
    ports and a read port per ``reads`` entry ``(domain, indices of the write
    ports it is transparent for)``: ``ref`` plain, ``dut`` lowered by
    :class:`LvtPlatform`."""

    def __init__(self, shape, depth, init, writes, reads):
        self.mems, self.write_ports, self.read_ports = [], [], []
        for _ in range(2):
            mem = Memory(shape=shape, depth=depth, init=init)
            wps = [mem.write_port() for _ in range(writes)]
            rps = [mem.read_port(domain=d, transparent_for=[wps[i] for i in t]) for d, t in reads]
            self.mems.append(mem)
            self.write_ports.append(wps)
            self.read_ports.append(rps)
        self.lowered = Fragment.get(self.mems[1], LvtPlatform())
        self.sync = ClockDomain()

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self.sync
        m.submodules.ref = self.mems[0]
        m.submodules.dut = self.lowered
        return m


def model(depth, init, reads, traffic):
    """Every read port's data in every cycle (before the cycle's clock edge):
    a synchronous port's from its last enabled read (a transparent one seeing
    the writes of its read cycle, in port order), an asynchronous port's the
    row now. Writes apply in port order (the later wins). A reset clears a
    synchronous port's data unless it reads (Amaranth's simulation; Yosys
    gets no reset for memory ports), not the rows."""
    rows = [*init, *[0] * (depth - len(init))]
    held = [0] * len(reads)
    out = []
    for rst, wr, rd in traffic:
        seen = []
        for r, ((domain, trans), (en, addr)) in enumerate(zip(reads, rd)):
            seen.append(rows[addr] if domain == "comb" else held[r])
            if domain != "comb" and en:
                new = rows[addr]
                for w, (wen, waddr, wdata) in enumerate(wr):
                    if wen and waddr == addr and w in trans:
                        new = wdata
                held[r] = new
            elif domain != "comb" and rst:
                held[r] = 0
        out.append(seen)
        for wen, waddr, wdata in wr:
            if wen:
                rows[waddr] = wdata
    return out


def simulate(pair, traffic):
    """Drive both memories alike; the data of ``ref``'s and ``dut``'s read
    ports in every cycle (before the clock edge)."""
    got = {"ref": [], "dut": []}

    async def bench(ctx):
        for rst, wr, rd in traffic:
            ctx.set(pair.sync.rst, rst)
            for wps, rps in zip(pair.write_ports, pair.read_ports):
                for port, (en, addr, value) in zip(wps, wr):
                    ctx.set(port.en, en)
                    ctx.set(port.addr, addr)
                    ctx.set(Value.cast(port.data), value)
                for port, (en, addr) in zip(rps, rd):
                    if port.domain != "comb":
                        ctx.set(port.en, en)
                    ctx.set(port.addr, addr)
            for key, rps in zip(("ref", "dut"), pair.read_ports):
                got[key].append([ctx.get(Value.cast(port.data)) for port in rps])
            await ctx.tick()

    sim = Simulator(pair)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got


def random_traffic(rng, cycles, depth, width, writes, reads, collide=False, p_rst=0.0):
    """``cycles`` of (reset, [(en, addr, data)] per write port, [(en, addr)]
    per read port); write rows distinct within a cycle unless ``collide``;
    half the reads target a row written in the same cycle."""
    traffic = []
    for _ in range(cycles):
        if collide or depth < writes:
            waddr = rng.integers(depth, size=writes)
        else:
            waddr = rng.permutation(depth)[:writes]
        wr = [(int(rng.random() < 0.7), int(a), int(rng.integers(1 << width))) for a in waddr]
        rd = []
        for _ in reads:
            addr = int(rng.choice(waddr)) if rng.random() < 0.5 else int(rng.integers(depth))
            rd.append((int(rng.random() < 0.8), addr))
        traffic.append((int(rng.random() < p_rst), wr, rd))
    return traffic


def check(shape, depth, init, writes, reads, traffic):
    pair = Pair(shape, depth, init, writes, reads)
    banks = {name for _, name, _ in pair.lowered.subfragments}
    assert banks == {f"bank{w}_read{r}" for w in range(writes) for r in range(len(reads))}
    got = simulate(pair, traffic)
    want = model(depth, init, reads, traffic)
    assert got["ref"] == want
    assert got["dut"] == want


#: The scatter's buffer: a lane read port per write port, transparent for
#: every write port, and a non-transparent drain port.
SCATTER = [("sync", (0, 1, 2))] * 3 + [("sync", ())]
#: Partial transparency and an asynchronous port.
MIXED = [("sync", (1,)), ("sync", (0,)), ("comb", ()), ("sync", (0, 1))]


@pytest.mark.parametrize(
    "writes, reads, depth, collide, seed",
    [
        (3, SCATTER, 6, False, 1),
        (3, SCATTER, 8, True, 2),
        (2, MIXED, 5, False, 3),
        (2, MIXED, 4, True, 4),
    ],
)
def test_random_traffic(writes, reads, depth, collide, seed):
    rng = np.random.default_rng(seed)
    width = 8
    init = [int(v) for v in rng.integers(1 << width, size=depth - 1)]
    traffic = random_traffic(rng, 300, depth, width, writes, reads, collide, p_rst=0.02)
    hits = sum(
        en and any(we and wa == ra and w in trans for w, (we, wa, _) in enumerate(wr))
        for _, wr, rd in traffic
        for (_, trans), (en, ra) in zip(reads, rd)
    )
    assert hits > 50  # transparent reads of rows written in the same cycle
    check(width, depth, init, writes, reads, traffic)


def test_array_layout_rows():
    """Rows of the scatter's shape (an array of words)."""
    rng = np.random.default_rng(5)
    shape = data.ArrayLayout(6, 3)
    traffic = random_traffic(rng, 100, 4, 18, 3, SCATTER)
    check(shape, 4, [], 3, SCATTER, traffic)


@st.composite
def port_sets(draw):
    """2 or 3 write ports and 1 to 4 read ports (:class:`Pair`'s ``reads``)."""
    writes = draw(st.integers(2, 3))
    sync = st.tuples(st.just("sync"), st.sets(st.integers(0, writes - 1)).map(tuple))
    reads = draw(st.lists(st.just(("comb", ())) | sync, min_size=1, max_size=4))
    return writes, reads


@settings(max_examples=EXAMPLES, deadline=None)
@given(port_sets(), st.integers(1, 6), st.booleans(), st.integers(0, 2**32 - 1))
def test_property(ports, depth, collide, seed):
    writes, reads = ports
    rng = np.random.default_rng(seed)
    init = [int(v) for v in rng.integers(16, size=int(rng.integers(depth + 1)))]
    traffic = random_traffic(rng, 40, depth, 4, writes, reads, collide, p_rst=0.05)
    check(4, depth, init, writes, reads, traffic)


def test_single_write_port_is_left_to_yosys():
    mem = Memory(shape=8, depth=4, init=[])
    mem.write_port(), mem.read_port(), mem.read_port()
    assert isinstance(Fragment.get(mem, LvtPlatform()), MemoryInstance)


def test_board_platforms_lower():
    for b in BOARDS.values():
        platform = b.make_platform()
        module, name = b.platform.split(":")
        lower, base = type(platform).__bases__
        assert lower is LvtPlatform
        assert (base.__module__, base.__name__) == (f"amaranth_boards.{module}", name)


@pytest.mark.parametrize(
    "kw, error",
    [
        ([{"granularity": 4}, {"granularity": 4}], "granularity"),
        ([{}, {"domain": "other"}], "several clock domains"),
    ],
)
def test_rejects_what_it_cannot_lower(kw, error):
    mem = Memory(shape=8, depth=4, init=[])
    for k in kw:
        mem.write_port(**k)
    with pytest.raises(ValueError, match=error):
        Fragment.get(mem, LvtPlatform())


def test_scatter_buffer_lowers():
    """The scatter's buffer (3 write ports, 4 read ports) on a board: 12 banks."""
    p = FocusParams(rows=2, cols=2, vector_size=2, m_tile=4, num_scatter=3)
    top = Fragment.get(ScatterAccumulator(p), BOARDS["ulx3s-85f"].make_platform())
    banks = {name for _, name, _ in top.find_subfragment("memory").subfragments}
    assert banks == {f"bank{w}_read{r}" for w in range(3) for r in range(4)}
