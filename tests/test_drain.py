"""The drain engine on its own, its narrowing pipelined (``scatter_pipeline``
stages) or not: rows from an output buffer behind ``serve_reads`` to a SIC
stand-in that takes a row every ``V`` cycles (a pass's first row from a
given cycle on) or to ``out``. The rows, flags, tokens and ``result`` bits
travel with their row; with steady streams the SIC takes each pass's first
row, and the drain reads each pass's last row, exactly when the schedule's
rule says (:func:`focus_hw.timing.focus_schedule`'s drain step), also for SIC
speeds and drain starts the whole accelerator does not reach."""

import random

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, unsigned
from amaranth.lib import memory
from amaranth.sim import Simulator

from focus_hw import FocusParams
from focus_hw.engines.drain import DrainEngine
from focus_hw.sic.table import serve_reads
from focus_hw.timing import drain_stages

NEVER = -(10**18)


class _Bench(Elaboratable):
    """The drain with an output buffer of fp32 ``rows`` behind ``serve_reads``."""

    def __init__(self, p, rows):
        self.drain = DrainEngine(p)
        self.p, self.rows = p, rows

    def elaborate(self, platform):
        m = Module()
        m.submodules.drain = drain = self.drain
        width = 32 * self.p.cols
        mem = memory.Memory(shape=unsigned(width), depth=len(self.rows), init=self.rows)
        m.submodules.mem = mem
        serve_reads(m, mem.read_port(), drain.read, drain.data)
        return m


def _rule(ms, readys, firsts, stages, v):
    """The schedule's drain step (focus_hw.timing._schedule, SIC runs): per
    pass of ``ms[i]`` rows whose drain may start in ``readys[i]`` and whose
    first row the SIC takes from ``firsts[i]`` on (and ``v`` cycles after the
    pass before's last), the cycle the SIC takes its first row and the cycle
    the drain reads its last."""
    gos = [NEVER] * (stages + 1)  # the go cycles of the last pass's last slots
    drained, sic_next, out = NEVER, NEVER, []
    for m, ready, first in zip(ms, readys, firsts):
        drain = max(ready, drained + 1)

        def go(x, gos=gos):  # the go cycle of slot x after the last pass's last
            return gos[x] if x <= stages else gos[stages] + x - stages

        k = 1
        while k <= stages and gos[k] < drain + 2:
            k += 1
        if k > stages:
            k = stages + max(1, drain + 2 - gos[stages])
        s = max(go(k + stages - 1) + 1, sic_next, first)
        if m >= stages + 2:
            drained = s + (m - 2 - stages) * v
        else:
            drained = go(k + m - 2) if m >= 2 else max(go(k - 1), drain + 1)
        gos = [
            s + (m - 1 - stages + y) * v if m - 1 - stages + y >= 0 else go(k + m - 1 + y)
            for y in range(stages + 1)
        ]
        sic_next = s + m * v
        out.append((s, drained))
    return out


def _run(p, tokens, ntiles, *, bypass, v, firsts, finish, stall=0.0, seed=0):
    """Drains a run of ``tokens`` and ``ntiles`` N tiles; group ``g``'s half
    is ``finished`` from cycle ``finish[g]`` on, once free; the SIC stand-in
    (or ``out``) refuses a cycle with probability ``stall``. Returns the
    passes, reads, takes (cycle, row fields), results and finish cycles."""
    rng = random.Random(seed)
    mt, ov = p.m_tile, p.out_vectors
    depth = 2 * ov * mt
    rows = [rng.getrandbits(32 * p.cols) for _ in range(depth)]
    for i in range(depth):  # finite fp32 values, some near a rounding tie
        vals = np.array([rng.gauss(0, 100) for _ in range(p.cols)], np.float32)
        rows[i] = int.from_bytes(vals.tobytes(), "little")
    passes = []  # (tile, group, sub, rows)
    group = 0
    for base in range(0, tokens, mt):
        for first in range(0, ntiles, ov):
            for sub in range(min(ov, ntiles - first)):
                passes.append((base, group, sub, min(mt, tokens - base)))
            group += 1
    bench = _Bench(p, rows)
    d = bench.drain
    got = {"reads": [], "takes": [], "results": [], "finished": []}

    async def testbench(ctx):
        ctx.set(d.run.tokens, tokens)
        ctx.set(d.run.chunks, 1)
        ctx.set(d.run.ntiles, ntiles)
        ctx.set(d.bypass, bypass)
        ctx.set(d.positions.valid, 1)
        ctx.set(d.start, 1)
        await ctx.tick()
        ctx.set(d.start, 0)
        cycle, done, next_group, last_take, positions = 1, 0, 0, NEVER, 0
        while done < len(passes) and cycle < 20000:
            fin = 0
            if next_group < group and cycle >= finish[next_group]:
                half = next_group % 2
                if not (ctx.get(d.out_full) >> half) & 1:
                    fin = 1 << half
                    got["finished"].append(cycle)
                    next_group += 1
            ctx.set(d.finished, fin)
            ctx.set(d.positions.payload.pos, positions % (1 << len(d.positions.payload.pos)))
            n = len(got["takes"])
            i, j = _row_of(passes, n)
            ready = cycle >= last_take + v and (j or i == len(passes) or cycle >= firsts[i])
            ready = ready and rng.random() >= stall
            ctx.set(d.sic.ready, ready and not bypass)
            ctx.set(d.out.ready, ready and bypass)
            if ctx.get(d.read.valid) and ctx.get(d.read.ready):
                got["reads"].append((cycle, ctx.get(d.read.payload)))
            stream = d.out if bypass else d.sic
            if ctx.get(stream.valid) and ctx.get(stream.ready):
                beat = ctx.get(stream.payload)
                got["takes"].append((cycle, beat))
                last_take = cycle
                positions += not bypass
                i, j = _row_of(passes, n)
                done += j == passes[i][3] - 1
            if ctx.get(d.result.valid):
                got["results"].append(ctx.get(d.result.payload.as_value()))
            await ctx.tick()
            cycle += 1
        assert done == len(passes), "the run did not finish"

    sim = Simulator(bench)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return passes, rows, got


def _bits(value):
    return value if isinstance(value, int) else value.as_value().value


def _row_of(passes, n):
    """The pass and row of the ``n``-th row drained."""
    for i, (_, _, _, m) in enumerate(passes):
        if n < m:
            return i, n
        n -= m
    return len(passes), 0


def _check_rows(p, passes, rows, got, bypass):
    """Every row reached the SIC (out) in order, narrowed, with its flags,
    token and position; ``result`` showed its fp32 bits."""
    mt, ov = p.m_tile, p.out_vectors
    n = 0
    for base, group, sub, m in passes:
        for j in range(m):
            cycle, beat = got["takes"][n]
            addr = ((group % 2) * ov + sub) * mt + j
            fp32 = np.frombuffer(rows[addr].to_bytes(4 * p.cols, "little"), np.float32)
            want = int.from_bytes(fp32.astype(np.float16).tobytes(), "little")
            assert _bits(beat.data) == want, (n, cycle)
            assert got["results"][n] == rows[addr]
            assert beat.last == (j == m - 1)
            if bypass:
                assert beat.pos == beat.root == base + j
            else:
                assert beat.first == (j == 0) and beat.pos == n
            n += 1
    assert len(got["takes"]) == len(got["results"]) == n
    assert [a for _, a in got["reads"]] == [
        ((g % 2) * ov + s) * mt + j for _, g, s, m in passes for j in range(m)
    ]


CASES = [
    # (scatter_pipeline, m_tile, out_vectors, tokens, ntiles, V)
    (0, 5, 1, 9, 3, 2),
    (1, 5, 2, 12, 3, 1),
    (2, 5, 1, 14, 4, 2),
    (3, 3, 1, 7, 4, 3),
    (5, 4, 2, 9, 3, 2),
    (5, 7, 1, 15, 3, 1),
    (0, 4, 1, 5, 4, 3),  # a 1-token tile: its row waits for the previous pass's last
    (2, 4, 1, 9, 4, 4),
]


@pytest.mark.parametrize("pipeline, mt, ov, tokens, ntiles, v", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_sic_takes_and_last_reads_follow_the_rule(pipeline, mt, ov, tokens, ntiles, v, seed):
    p = _params(pipeline, mt, ov)
    rng = random.Random(seed)
    groups = -(-tokens // mt) * -(-ntiles // ov)
    passes = [(b, s) for b in range(0, tokens, mt) for s in range(ntiles)]
    firsts = [rng.choice([0, 0, rng.randint(0, 30 * (i + 1))]) for i in range(len(passes))]
    finish, at = [], 1
    for _ in range(groups):
        at += rng.choice([0, 0, rng.randint(0, 40)])
        finish.append(at)
    passes, rows, got = _run(p, tokens, ntiles, bypass=False, v=v, firsts=firsts, finish=finish)
    _check_rows(p, passes, rows, got, bypass=False)
    readys, fin = [], iter(got["finished"])
    for _, _, sub, _ in passes:
        readys.append(next(fin) + 1 if sub == 0 else NEVER)
    want = _rule([m for *_, m in passes], readys, firsts, drain_stages(p), v)
    takes, reads, n = [c for c, _ in got["takes"]], [c for c, _ in got["reads"]], 0
    have = []
    for *_, m in passes:
        assert takes[n : n + m] == [takes[n] + j * v for j in range(m)]
        have.append((takes[n], reads[n + m - 1]))
        n += m
    assert have == want


@pytest.mark.parametrize("pipeline", [0, 2, 5])
def test_bypass_sends_each_row_p_cycles_later(pipeline):
    """``out`` always ready: pass ``i``'s row ``j`` is read in ``Ds+1+j``
    and sent in ``Ds+2+P+j``."""
    p = _params(pipeline, 4, 2)
    passes, rows, got = _run(p, 7, 3, bypass=True, v=1, firsts=[0] * 6, finish=[1, 1, 1, 1])
    _check_rows(p, passes, rows, got, bypass=True)
    for (read, _), (sent, _) in zip(got["reads"], got["takes"]):
        assert sent == read + 1 + pipeline


@pytest.mark.parametrize("bypass", [False, True])
@pytest.mark.parametrize("pipeline", [0, 3])
def test_rows_survive_backpressure(pipeline, bypass):
    p = _params(pipeline, 5, 2)
    passes, rows, got = _run(
        p, 13, 3, bypass=bypass, v=1, firsts=[0] * 9, finish=[1, 9, 30, 31, 50, 51], stall=0.5
    )
    _check_rows(p, passes, rows, got, bypass)


def _params(pipeline, mt, ov):
    return FocusParams(
        rows=2,
        cols=2,
        vector_size=2,
        m_tile=mt,
        out_vectors=ov,
        max_tokens=64,
        max_frame_tokens=16,
        sic_lanes=2,
        scatter_pipeline=pipeline,
    )
