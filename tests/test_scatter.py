"""The scatter accumulator against a numpy model of its requests, bit for bit,
and against the exact scalar model (acc_reference): same-row conflicts across
lanes, back-to-back updates, init/skip, NaN/inf, fp32 and operand-format rows,
pipelined adders (a row's update waits for its previous sum)."""

import ml_dtypes
import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

import acc_reference as exact
from focus_hw import FocusParams
from focus_hw.formats import number_format
from focus_hw.fpga.boards import BOARDS
from focus_hw.scatter import ScatterAccumulator

F32 = np.float32
NAN_PAYLOAD = 0x7FA00001  # a signalling NaN with a payload (quieted by an add)
FP32 = number_format("fp32")


def params(lanes: int, **fields) -> FocusParams:
    return FocusParams(rows=2, cols=2, vector_size=2, m_tile=4, num_scatter=lanes, **fields)


def req(row, value=(0.0, 0.0), init=0, skip=0, acc=FP32):
    """A request; ``value`` holds floats (rounded to the accumulator format
    ``acc``) or (as ints) raw bit patterns."""
    bits = [int(v) if isinstance(v, int) else int(acc.encode([v])[0]) for v in value]
    return {"row": row, "value": bits, "init": init, "skip": skip}


def run(p, streams, *, drain_stall=0.0, seed=0, platform=None):
    """Drive ``streams`` (one list per lane; ``None`` is an idle cycle, a
    request is offered until taken), then drain every row (``data.ready``
    low with probability ``drain_stall``), the scatter elaborated for
    ``platform``. Returns the accepted requests as (cycle, lane, request) in
    accept order, the rows (accumulator bits), the counters, ``busy`` per
    cycle and how often a lane's request waited."""
    dut = ScatterAccumulator(p)
    rng = np.random.default_rng(seed)
    depth = 2 * p.m_tile
    bits = p.acc_bits
    rows = np.zeros((depth, p.cols), p.acc.bits_type)
    out = {"taken": [], "busy": [], "stalls": 0, "rows": rows}

    async def bench(ctx):
        queues = [list(s) for s in streams]
        cycle = 0
        while any(queues):
            out["busy"].append(ctx.get(dut.busy))
            offered = []
            for lane, q in zip(dut.lanes, queues):
                head = q[0] if q else None
                ctx.set(lane.valid, head is not None)
                if head is not None:
                    ctx.set(lane.payload, head)
                offered.append(head)
            ready = [ctx.get(lane.ready) for lane in dut.lanes]
            for i, (q, head) in enumerate(zip(queues, offered)):
                if head is None:
                    if q:
                        q.pop(0)  # an idle cycle
                elif ready[i]:
                    out["taken"].append((cycle, i, q.pop(0)))
                else:
                    out["stalls"] += 1
            await ctx.tick()
            cycle += 1
        for lane in dut.lanes:
            ctx.set(lane.valid, 0)
        for _ in range(p.scatter_pipeline + 1):  # the last writes
            out["busy"].append(ctx.get(dut.busy))
            await ctx.tick()
        out["busy"].append(ctx.get(dut.busy))
        # Drain: addresses in order, data taken when ready.
        sent = got = 0
        while got < depth:
            ctx.set(dut.read.payload, sent)
            ctx.set(dut.read.valid, sent < depth)
            take_data = rng.random() >= drain_stall
            ctx.set(dut.data.ready, take_data)
            if ctx.get(dut.data.valid) and take_data:
                word = ctx.get(dut.data.payload.as_value())
                out["rows"][got] = [(word >> (bits * c)) & ((1 << bits) - 1) for c in range(p.cols)]
                got += 1
            if sent < depth and ctx.get(dut.read.ready):
                sent += 1
            await ctx.tick()
        out["reads"], out["writes"] = ctx.get(dut.reads), ctx.get(dut.writes)

    sim = Simulator(Fragment.get(dut, platform))
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


def model(p, taken):
    """numpy: the requests applied in accept order, in the accumulator type;
    rows (bits), reads, writes."""
    acc = p.acc
    rows = np.zeros((2 * p.m_tile, p.cols), acc.bits_type)
    reads = writes = 0
    for _, _, r in taken:
        if r["skip"] and not r["init"]:
            continue
        old = np.zeros(p.cols, acc.np_type) if r["init"] else acc.decode(rows[r["row"]])
        reads += not r["init"]
        writes += 1
        value = np.zeros(p.cols, acc.np_type) if r["skip"] else acc.decode(r["value"])
        # numpy scalars: for two NaNs array loops pick either operand (SIMD
        # chunks vs tails), scalar adds always the second (the adders' rule).
        with np.errstate(all="ignore"):
            rows[r["row"]] = acc.to_bits(np.array([a + b for a, b in zip(old, value)]))
    return rows, reads, writes


def exact_model(p, taken) -> np.ndarray:
    """The exact scalar model (:mod:`acc_reference`): each row ``out =
    A(out + value)`` in accept order from +0.0, one rounding per add."""
    acc = p.acc
    rows = np.zeros((2 * p.m_tile, p.cols))
    for _, _, r in taken:
        if r["skip"] and not r["init"]:
            continue
        old = np.zeros(p.cols) if r["init"] else rows[r["row"]]
        with np.errstate(invalid="ignore"):  # signalling NaNs
            value = np.zeros(p.cols) if r["skip"] else acc.decode(r["value"]).astype(np.float64)
        rows[r["row"]] = [exact.add(float(a), float(b), acc.layout) for a, b in zip(old, value)]
    return rows


def check(p, streams, **kw):
    """Simulate, then compare rows and counters with :func:`model`; check
    that same-cycle takes target distinct rows, that a row is taken again
    ``scatter_pipeline + 1`` cycles after it at the earliest, and ``busy``
    (a write in the adders)."""
    out = run(p, streams, **kw)
    want, reads, writes = model(p, out["taken"])
    np.testing.assert_array_equal(out["rows"], want)
    exact.assert_matches(out["rows"].ravel(), exact_model(p, out["taken"]).ravel(), p.acc.name)
    assert out["reads"] == reads + 2 * p.m_tile  # + the drain
    assert out["writes"] == writes
    assert sorted(i for _, i, _ in out["taken"]) == sorted(
        i for i, s in enumerate(streams) for r in s if r is not None
    )
    by_cycle = {}
    for c, _, r in out["taken"]:
        by_cycle.setdefault(c, []).append(r["row"])
    for rows in by_cycle.values():
        assert len(rows) == len(set(rows)), "two lanes took the same row in one cycle"
    depth = p.scatter_pipeline
    last = {}
    for c, _, r in out["taken"]:
        assert c - last.get(r["row"], -depth - 1) > depth, "a row taken while its sum is in flight"
        last[r["row"]] = c
    writing = {c for c, _, r in out["taken"] if r["init"] or not r["skip"]}
    busy = [any(c - 1 - d in writing for d in range(depth + 1)) for c in range(len(out["busy"]))]
    assert out["busy"] == [int(b) for b in busy]
    return out


def cycles(out):
    return [(c, i) for c, i, _ in out["taken"]]


# -- hand cases ---------------------------------------------------------------


def test_three_lanes_on_one_row_are_serialized():
    p = params(3)
    streams = [
        [req(3, (1.0, 2.0), init=1)],
        [req(3, (10.0, 20.0))],
        [req(3, (100.0, 200.0))],
    ]
    out = check(p, streams)
    assert cycles(out) == [(0, 0), (1, 1), (2, 2)]
    np.testing.assert_array_equal(out["rows"][3].view(F32), [111.0, 222.0])


def test_distinct_rows_go_together_and_lower_lane_wins():
    p = params(3)
    streams = [
        [req(1, (1.0, 1.0), init=1), req(2, (5.0, 5.0))],
        [req(2, (2.0, 2.0), init=1), req(1, (0.5, 0.5))],
        [req(2, (3.0, 3.0))],
    ]
    out = check(p, streams)
    # Cycle 0: lanes 0 and 1 (rows 1, 2); lane 2 waits for lane 1 (row 2).
    # Cycle 1: lane 0 on row 2 blocks lane 2; lane 1 goes on row 1.
    assert cycles(out) == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2)]
    np.testing.assert_array_equal(out["rows"][1].view(F32), [1.5, 1.5])
    np.testing.assert_array_equal(out["rows"][2].view(F32), [10.0, 10.0])


def test_back_to_back_updates_of_one_row_chain():
    p = params(2)
    values = [(0.1, -3.0), (0.2, 1e30), (0.3, -1e30), (1e-45, 7.0)]
    streams = [[req(5, values[0], init=1), *[req(5, v) for v in values[1:]]], []]
    out = check(p, streams)
    assert cycles(out) == [(0, 0), (1, 0), (2, 0), (3, 0)]
    want = np.zeros(2, F32)
    for v in values:
        want = want + np.array(v, F32)
    np.testing.assert_array_equal(out["rows"][5].view(np.uint32), want.view(np.uint32))


def test_pipelined_updates_of_one_row_wait_for_the_sum():
    """scatter_pipeline=2: a row's update is taken once the previous sum is
    written, 3 cycles after its accept (on any lane); other rows go on."""
    p = params(2, scatter_pipeline=2)
    values = [(0.1, -3.0), (0.2, 1e30), (0.3, -1e30)]
    streams = [
        [req(5, values[0], init=1), req(5, values[1]), req(6, (1.0, 1.0), init=1)],
        [req(1, (2.0, 2.0), init=1), req(2, (3.0, 3.0), init=1), req(5, values[2])],
    ]
    out = check(p, streams)
    # Lane 0: row 5 in 0, again in 3, row 6 in 4; lane 1: rows 1 and 2 in
    # 0 and 1, then row 5 once lane 0's second sum is written (6).
    assert cycles(out) == [(0, 0), (0, 1), (1, 1), (3, 0), (4, 0), (6, 1)]
    want = np.zeros(2, F32)
    for v in values:
        want = want + np.array(v, F32)
    np.testing.assert_array_equal(out["rows"][5].view(np.uint32), want.view(np.uint32))
    np.testing.assert_array_equal(out["rows"][1:3].view(F32), [[2.0, 2.0], [3.0, 3.0]])


def test_alternating_lanes_on_one_row_every_cycle():
    # Lane 0 and lane 1 take turns on row 0 in consecutive cycles: each
    # read must see the previous cycle's write from the other lane.
    p = params(2)
    streams = [
        [req(0, (1.0, 1.0), init=1), None, req(0, (4.0, 4.0)), None],
        [None, req(0, (2.0, 2.0)), None, req(0, (8.0, 8.0))],
    ]
    out = check(p, streams)
    assert cycles(out) == [(0, 0), (1, 1), (2, 0), (3, 1)]
    np.testing.assert_array_equal(out["rows"][0].view(F32), [15.0, 15.0])


def test_init_and_skip():
    p = params(2)
    streams = [
        [
            req(0, (-1.5, 2.0), init=1),
            req(1, (9.0, 9.0), init=1),
            req(1, init=1, skip=1),  # row 1 back to +0.0
            req(0, (1e9, 1e9), skip=1),  # nothing: row 0 keeps -1.5, 2.0
            req(2, (-0.0, -0.0), init=1),  # +0.0 + -0.0 = +0.0
            req(3, (7.0, 7.0), init=1),
            req(3, (1.0, 1.0), init=1),  # init again: the old 7.0 is not read
        ],
        [None, None, None, None, None, None, None, req(4, skip=1)],
    ]
    out = check(p, streams)
    rows = out["rows"].view(F32)
    np.testing.assert_array_equal(rows[0], [-1.5, 2.0])
    np.testing.assert_array_equal(out["rows"][1:3], 0)  # +0.0 bit patterns
    np.testing.assert_array_equal(rows[3], [1.0, 1.0])
    assert out["writes"] == 6  # the two skips without init write nothing
    assert out["reads"] == 2 * p.m_tile  # only the drain reads: all others init or skip


def test_specials_bit_exact():
    p = params(3)
    inf, nan = float("inf"), float("nan")
    streams = [
        [req(0, (inf, NAN_PAYLOAD), init=1), req(0, (-inf, 1.0)), req(1, (-0.0, 3.0))],
        [req(1, (-1.0, 1e-40), init=1), req(2, (nan, -inf), init=1), req(0, (1.0, 0xFFC00123))],
        [req(1, (1.0, -1e-40)), req(6, (3.4e38, -3.4e38), init=1), req(6, (3.4e38, -3.4e38))],
    ]
    out = check(p, streams)
    rows = out["rows"]
    assert np.isnan(rows[0].view(F32)).all()  # inf + -inf; a NaN operand
    np.testing.assert_array_equal(rows[6].view(F32), [inf, -inf])


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_operand_format_rows(dtype):
    """acc_format="operand": rows of operand-format values, every add rounded
    to it: half-ulp additions vanish at a tie (to even), sums overflow to
    inf, subnormal sums are kept, inf - inf is NaN."""
    p = params(2, dtype=dtype, acc_format="operand")
    acc = p.acc
    assert (acc, p.acc_bits) == (p.format, 16)
    info = ml_dtypes.finfo(acc.np_type)
    half_ulp, big, tiny = (
        2.0 ** -(acc.layout.man_bits + 1),
        0.75 * info.max,
        info.smallest_subnormal,
    )
    inf = float("inf")
    streams = [
        [req(0, (1.0, big), init=1, acc=acc), req(0, (half_ulp, big), acc=acc)],
        [req(1, (tiny, inf), init=1, acc=acc), req(1, (tiny, -inf), acc=acc)],
    ]
    out = check(p, streams)
    rows = acc.decode(out["rows"])
    assert rows[0, 0] == 1.0 and rows[0, 1] == inf  # fp32 would hold 1 + half_ulp and 1.5 max
    assert rows[1, 0] == 2 * tiny and np.isnan(rows[1, 1])


# -- random streams -------------------------------------------------------------


def random_value(rng, specials, acc):
    """A float of magnitude near 1, tiny (subnormal in ``acc``) or huge, or
    (as an int) the bits of a special value: +-inf, -0, NaNs, the smallest
    subnormal."""
    f = acc.layout
    if specials and rng.random() < 0.15:
        inf = f.exp_max << f.man_bits
        sign = 1 << (f.width - 1)
        nans = [f.canonical_nan, sign | f.canonical_nan | 0x45, inf | 0x45]
        return int(rng.choice([inf, sign | inf, sign, *nans, 1]))
    info = np.finfo(np.float32) if acc.name == "fp32" else ml_dtypes.finfo(acc.np_type)
    scale = [1.0, 1e-3, float(info.max) / 8, float(info.smallest_normal) / 3]
    return float(rng.choice(scale) * rng.standard_normal())


@pytest.mark.parametrize(
    "lanes, seed, specials, fields",
    [
        (2, 1, False, {}),
        (3, 2, False, {}),
        (3, 3, True, {}),
        (2, 4, True, {}),
        (3, 5, True, {"acc_format": "operand"}),
        (2, 6, True, {"acc_format": "operand", "dtype": "bf16"}),
        (2, 7, False, {"acc_format": "operand", "dtype": "bf16"}),
        (2, 8, True, {"scatter_pipeline": 1}),
        (3, 9, False, {"scatter_pipeline": 2}),
        (3, 10, True, {"scatter_pipeline": 5}),
        (2, 11, True, {"scatter_pipeline": 2, "acc_format": "operand"}),
    ],
)
def test_random_streams(lanes, seed, specials, fields):
    p = params(lanes, **fields)
    rng = np.random.default_rng(seed)
    out = check(p, random_streams(p, rng, specials), drain_stall=0.3, seed=seed)
    assert out["stalls"] > 0  # same-row conflicts were exercised


@pytest.mark.parametrize("lanes, seed", [(3, 8), (2, 9)])
def test_random_streams_fpga_buffer(lanes, seed):
    """Elaborated for an FPGA board: the buffer in banks and a live-value
    table (:mod:`focus_hw.multiport`)."""
    p = params(lanes)
    rng = np.random.default_rng(seed)
    platform = BOARDS["ulx3s-85f"].make_platform()
    out = check(p, random_streams(p, rng, True), drain_stall=0.3, seed=seed, platform=platform)
    assert out["stalls"] > 0


def random_streams(p, rng, specials):
    """A stream of 40 beats per lane: idle cycles and requests, most on a few rows."""
    rows = 2 * p.m_tile
    hot = rng.choice(rows, 3, replace=False)  # most requests hit a few rows
    streams = []
    for _ in range(p.num_scatter):
        s = []
        for _ in range(40):
            if rng.random() < 0.3:
                s.append(None)
                continue
            row = int(rng.choice(hot) if rng.random() < 0.7 else rng.integers(rows))
            value = (random_value(rng, specials, p.acc), random_value(rng, specials, p.acc))
            init, skip = int(rng.random() < 0.1), int(rng.random() < 0.1)
            s.append(req(row, value, init, skip, p.acc))
        streams.append(s)
    return streams
