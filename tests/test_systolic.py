"""The systolic array against an independent numpy loop, bit for bit."""

import re

import ml_dtypes
import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

import acc_reference as exact
import focus_hw.simulate as simulate_mod
from focus_hw import FocusParams
from focus_hw.arith.int8 import int_sum_bits
from focus_hw.arith.mac import mac_cuts
from focus_hw.pe import PE
from focus_hw.simulate import simulate_gemm, simulate_tiles
from focus_hw.systolic import SystolicArray, psum_bits
from focus_hw.timing import reload_cycles, tile_cycles

NP_DTYPE = {"int8": np.int8, "fp16": np.float16, "bf16": ml_dtypes.bfloat16}


# -- independent reference ----------------------------------------------------
def ref_gemm(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """acc = 0; for k: acc = fp32(acc + fp32(a*w)) (int8: int32 wrap-around)."""
    (m_, k_), n_ = a.shape, w.shape[1]
    if a.dtype == np.int8:
        out = np.zeros((m_, n_), np.int32)
        for m in range(m_):
            for n in range(n_):
                acc = 0
                for k in range(k_):
                    acc = (acc + int(a[m, k]) * int(w[k, n]) + 2**31) % 2**32 - 2**31
                out[m, n] = acc
        return out
    af, wf = a.astype(np.float32), w.astype(np.float32)
    out = np.zeros((m_, n_), np.float32)
    with np.errstate(all="ignore"):
        for m in range(m_):
            for n in range(n_):
                acc = np.float32(0.0)
                for k in range(k_):
                    acc = np.float32(acc + np.float32(af[m, k] * wf[k, n]))
                out[m, n] = acc
    return out


def assert_same_bits(got: np.ndarray, want: np.ndarray):
    assert got.shape == want.shape and got.dtype == want.dtype
    if got.dtype == np.int32:
        np.testing.assert_array_equal(got, want)
        return
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), (
        f"mismatch at {np.argwhere(~same)[:5].tolist()}: "
        f"got {got[~same][:5]}, want {want[~same][:5]}"
    )


# -- random operands with special values ---------------------------------------
def specials(dtype) -> list:
    """+-0, smallest/largest subnormal, largest finite, +-inf."""
    if dtype == "int8":
        return [0, 1, -1, 127, -128]
    info = ml_dtypes.finfo(NP_DTYPE[dtype])
    tiny = info.smallest_subnormal
    return [
        0.0,
        -0.0,
        tiny,
        -tiny,
        info.smallest_normal - tiny,
        3 * tiny,
        info.max,
        -info.max,
        np.inf,
        -np.inf,
    ]


def random_operands(rng, shape, dtype, special_rate=0.15) -> np.ndarray:
    if dtype == "int8":
        x = rng.integers(-128, 128, shape)
    else:
        # half raw bit patterns (every exponent; NaNs replaced), half N(0, 1)
        t = NP_DTYPE[dtype]
        raw = rng.integers(0, 1 << 16, shape, dtype=np.uint16).view(t).astype(np.float32)
        raw[np.isnan(raw)] = 1.5
        x = np.where(rng.random(shape) < 0.5, raw, rng.standard_normal(shape).astype(np.float32))
    spec = np.array(specials(dtype), dtype=np.float64 if dtype != "int8" else np.int64)
    pick = rng.random(shape) < special_rate
    x = np.where(pick, spec[rng.integers(0, len(spec), shape)], x)
    return np.asarray(x).astype(NP_DTYPE[dtype])


def params_for(dtype, rows, cols, pipe=0) -> FocusParams:
    return FocusParams(rows=rows, cols=cols, dtype=dtype, mac_pipeline=pipe)


# -- the processing element ---------------------------------------------------
@pytest.mark.parametrize("pipe", [0, 2])
def test_pe_double_buffer_and_stall(pipe):
    """psum_out = psum_in + a*w, pipe+1 enabled cycles later; the shadow weight
    is used from the swap on; a shadow write does not disturb the active
    weight; en=0 freezes the whole pipeline."""
    dut = PE("int8", pipe)
    steps = [  # (a, psum_in, swap, w_we, w_data, en) -> expected result
        (dict(a=0, psum=0, we=1, w=3), 0),  # shadow = 3, active = 0
        (dict(a=5, psum=7), 7),  # active weight 0
        (dict(a=5, psum=7, swap=1), 22),  # swap: 7 + 5*3
        (dict(a=2, psum=1, we=1, w=-4), 7),  # active 3, shadow -> -4
        (dict(a=9, psum=9, en=0), None),  # stalled
        (dict(a=-2, psum=100), 94),  # 100 + (-2)*3
        (dict(a=4, psum=-10, swap=1), -26),  # swap to -4: -10 - 16
    ] + [(dict(a=0, psum=0), 0)] * (pipe + 1)
    expected, results, enabled = [], [], 0
    for _, r in steps:
        if r is not None:
            results.append(r)
            enabled += 1
        expected.append(results[enabled - 1 - pipe] if enabled > pipe else 0)
    seen = []

    async def bench(ctx):
        for s, _ in steps:
            ctx.set(dut.a_in, s["a"] & 0xFF)
            ctx.set(dut.psum_in, s["psum"] & 0xFFFFFFFF)
            ctx.set(dut.swap_in, s.get("swap", 0))
            ctx.set(dut.w_we, s.get("we", 0))
            ctx.set(dut.w_data, s.get("w", 0) & 0xFF)
            ctx.set(dut.en, s.get("en", 1))
            await ctx.tick()
            v = ctx.get(dut.psum_out)
            seen.append(v - (1 << 32) if v >= 1 << 31 else v)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == expected
    assert set(results) <= set(seen)


# -- one weight tile ----------------------------------------------------------
SHAPES = [  # rows, cols, pipe, M, K, N
    (2, 2, 0, 1, 2, 2),
    (2, 2, 0, 7, 2, 2),  # M > rows
    (4, 4, 0, 9, 3, 4),  # K < rows
    (4, 3, 1, 6, 4, 2),  # N < cols
    (3, 4, 2, 5, 1, 3),  # K = 1
    (1, 1, 0, 4, 1, 1),
]


@pytest.mark.parametrize("rows,cols,pipe,m,k,n", SHAPES)
def test_int8_matches_reference(rows, cols, pipe, m, k, n):
    rng = np.random.default_rng(rows * 100 + cols * 10 + m)
    p = params_for("int8", rows, cols, pipe)
    a, w = random_operands(rng, (m, k), "int8"), random_operands(rng, (k, n), "int8")
    run = simulate_gemm(a, w, p)
    assert_same_bits(run.out, ref_gemm(a, w))
    assert run.cycles == tile_cycles(m, p)


@pytest.mark.parametrize("rows,pipe", [(4, 1), (8, 0)])
def test_int8_extreme_operands(rows, pipe):
    """Narrow partial sums stay exact at the extremes: columns of -128 x -128
    reach rows * 16384 (a power of two: one bit less in the last row would
    wrap) and -128 x 127 reach rows * -16256."""
    rng = np.random.default_rng(rows)
    a = np.stack(
        [
            np.full(rows, -128),
            np.full(rows, 127),
            np.tile([-128, 127], rows // 2),
            rng.integers(-128, 128, rows),
        ]
    ).astype(np.int8)
    w = np.stack(
        [
            np.full(rows, -128),
            np.full(rows, 127),
            np.full(rows, -128),
            np.tile([127, -128], rows // 2),
        ],
        axis=1,
    ).astype(np.int8)
    run = simulate_gemm(a, w, params_for("int8", rows, 4, pipe))
    want = a.astype(np.int64) @ w.astype(np.int64)
    assert want[0, 0] == rows * 16384 and want[0, 1] == want[1, 0] == rows * -16256
    np.testing.assert_array_equal(run.out, want)
    assert_same_bits(run.out, ref_gemm(a, w))


def _min_signed_bits(lo: int, hi: int) -> int:
    n = 1
    while not -(2 ** (n - 1)) <= lo <= hi <= 2 ** (n - 1) - 1:
        n += 1
    return n


def test_int8_psum_widths():
    """Row k's partial sum is exactly as wide as k+1 extreme products need
    (16, 17, 17, 18, ... capped at 32), in the generated PEs too."""
    p = params_for("int8", 8, 2)
    want = [_min_signed_bits((k + 1) * -128 * 127, (k + 1) * 128 * 128) for k in range(8)]
    assert want == [16, 17, 17, 18, 18, 18, 18, 19]
    assert [psum_bits(p, k) for k in range(8)] == want
    for t in (2**15, 2**16 - 1, 2**16, 2**17, 10**6):  # 2**16 products need all 32 bits
        assert int_sum_bits(t) == min(32, _min_signed_bits(t * -128 * 127, t * 128 * 128))
    assert (
        _min_signed_bits(2**17 * -128 * 127, 2**17 * 128 * 128) == 33 and int_sum_bits(2**16) == 32
    )
    assert psum_bits(params_for("fp16", 8, 2), 0) == 32
    text = rtlil.convert(SystolicArray(p), name="focus_array", emit_src=False)  # flat
    for k in range(8):
        for c in range(2):
            body = (
                text.split(f"module \\focus_array.pe_{k}_{c}\n", 1)[1].split("\nend\n", 1)[0] + "\n"
            )
            assert re.search(rf"wire width {want[k]} output \d+ +\\psum_out\n", body)
            if k:
                assert re.search(rf"wire width {want[k - 1]} (input \d+ +)?\\psum_in\n", body)
    with pytest.raises(ValueError, match="terms=0"):
        int_sum_bits(0)


@pytest.mark.parametrize(
    "dtype,rows,cols,pipe,m,k,n",
    [(d, *s) for d in ("fp16", "bf16") for s in (SHAPES[1], SHAPES[2], SHAPES[3])]
    # every cut point of the MAC registered
    + [(d, 3, 2, mac_cuts(d), 6, 3, 2) for d in ("fp16", "bf16")],
)
def test_float_matches_reference(dtype, rows, cols, pipe, m, k, n):
    rng = np.random.default_rng(rows * 100 + cols * 10 + m + len(dtype))
    p = params_for(dtype, rows, cols, pipe)
    a, w = random_operands(rng, (m, k), dtype), random_operands(rng, (k, n), dtype)
    run = simulate_gemm(a, w, p)
    want = ref_gemm(a, w)
    assert_same_bits(run.out, want)
    assert np.isfinite(want).any() and (want != 0).any()  # the tile is not degenerate


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_float_signed_zeros_and_subnormals(dtype):
    """Hand-made cases: -0 products never make a -0 sum (acc starts at +0.0),
    subnormal operands are not flushed, inf propagates, inf - inf is NaN."""
    t = NP_DTYPE[dtype]
    tiny = float(ml_dtypes.finfo(t).smallest_subnormal)
    a = np.array([[-0.0, -0.0], [tiny, tiny], [np.inf, 1.0], [np.inf, -np.inf], [-1.0, 0.0]], t)
    w = np.array([[1.0, -1.0], [2.0, 1.0]], t)
    run = simulate_gemm(a, w, params_for(dtype, 2, 2))
    want = ref_gemm(a, w)
    assert_same_bits(run.out, want)
    # hand-checked values: +0 (never -0), 3*tiny / 0 exact, inf, NaN, -1 / +1
    assert np.signbit(run.out[0]).tolist() == [False, False]
    assert run.out[1].tolist() == [3 * tiny, 0.0]
    assert run.out[2, 0] == np.inf and np.isnan(run.out[3, 0])
    assert run.out[4].tolist() == [-1.0, 1.0]


def test_bf16_products_in_fp32_subnormal_range():
    """bf16 operands near 2**-63: products and sums are fp32 subnormals (or
    underflow to zero) and must be rounded, not flushed."""
    rng = np.random.default_rng(11)

    def tiny_values(shape):
        mag = np.ldexp(1 + rng.random(shape), rng.integers(-72, -62, shape))
        return (mag * rng.choice([-1.0, 1.0], shape)).astype(ml_dtypes.bfloat16)

    a, w = tiny_values((8, 2)), tiny_values((2, 2))
    run = simulate_gemm(a, w, params_for("bf16", 2, 2))
    want = ref_gemm(a, w)
    assert_same_bits(run.out, want)
    subnormal = (want != 0) & (np.abs(want) < np.finfo(np.float32).smallest_normal)
    assert subnormal.sum() >= 4


def test_bf16_accepts_float32_holding_bf16_values():
    rng = np.random.default_rng(5)
    a = random_operands(rng, (3, 2), "bf16")
    w = random_operands(rng, (2, 2), "bf16")
    p = params_for("bf16", 2, 2)
    run32 = simulate_gemm(a.astype(np.float32), w.astype(np.float32), p)
    assert_same_bits(run32.out, ref_gemm(a, w))


# -- accumulator in the operand format (acc_format="operand") --------------------
def operand_params(dtype, rows, cols, pipe=0) -> FocusParams:
    return params_for(dtype, rows, cols, pipe).replace(acc_format="operand")


def exact_gemm(a: np.ndarray, w: np.ndarray, p: FocusParams) -> np.ndarray:
    """The exact scalar model (:mod:`acc_reference`) of the array's order."""
    return exact.gemm(a.astype(np.float64), w.astype(np.float64), p.format.layout)


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@pytest.mark.parametrize("rows,cols,pipe,m,k,n", [SHAPES[2], SHAPES[3]])
def test_operand_accumulator_matches_exact_model(dtype, rows, cols, pipe, m, k, n):
    """Every product and partial sum rounded to the operand format, bit for bit."""
    rng = np.random.default_rng(rows * 100 + cols * 10 + m + len(dtype) + 7)
    p = operand_params(dtype, rows, cols, pipe)
    a, w = random_operands(rng, (m, k), dtype), random_operands(rng, (k, n), dtype)
    run = simulate_gemm(a, w, p)
    assert run.out.dtype == NP_DTYPE[dtype] and run.cycles == tile_cycles(m, p)
    want = exact_gemm(a, w, p)
    exact.assert_matches(p.acc.to_bits(run.out), want, dtype)
    assert np.isfinite(want).any() and (want != 0).any()


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_operand_accumulator_subnormal_and_overflow(dtype):
    """Planted cases, one per output row on its own pair of K lanes (zeros
    elsewhere): subnormal products and partial sums (kept, not flushed), a
    sum overflowing to inf, a product overflowing to inf then inf - inf, and
    half the smallest subnormal rounding to zero at every step (the wide
    accumulator keeps it)."""
    t = NP_DTYPE[dtype]
    info = ml_dtypes.finfo(t)
    emin, emax = int(info.minexp), int(info.maxexp) - 1
    s, tiny, top = 2.0 ** (emin // 2), float(info.smallest_subnormal), 2.0**emax
    cases = [  # (a pair, w pair for column 0, w pair for column 1)
        ((s, s), (0.75 * s, 0.375 * s), (0.375 * s, 0.25 * s)),
        ((top, top), (1.5, 1.5), (1.5, -1.5)),
        ((float(info.max), -float(info.max)), (2.0, 2.0), (2.0, 0.0)),
        ((tiny, tiny), (1.0, 2.0), (0.5, 0.5)),
    ]
    k = 2 * len(cases)
    a, w = np.zeros((len(cases), k)), np.zeros((k, 2))
    for r, (pair, w0, w1) in enumerate(cases):
        a[r, 2 * r : 2 * r + 2] = pair
        w[2 * r : 2 * r + 2] = np.transpose([w0, w1])
    a, w = a.astype(t), w.astype(t)
    p = operand_params(dtype, k, 2)
    out = simulate_gemm(a, w, p).out
    exact.assert_matches(p.acc.to_bits(out), exact_gemm(a, w, p), dtype)
    smallest_normal = 2.0**emin
    assert out[0].tolist() == [1.125 * smallest_normal, 0.625 * smallest_normal]
    assert out[1].tolist() == [np.inf, 0.0] and not np.signbit(out[1, 1])
    assert np.isnan(out[2, 0]) and out[2, 1] == np.inf
    assert out[3].tolist() == [3 * tiny, 0.0]
    wide = simulate_gemm(a, w, params_for(dtype, k, 2)).out
    assert wide[3, 1] == tiny and wide[0, 1] == 0.625 * smallest_normal


# -- backpressure and input bubbles -------------------------------------------
def stalled_cycles(m: int, p: FocusParams, ready, offered=lambda c: True) -> int:
    """Independent model of the handshakes: the array advances in every cycle
    unless a valid output row is refused; in an advancing cycle it takes the
    next activation row if one is ``offered`` (the first one once the weights
    are in, from cycle ``rows``), which is valid at the output ``latency``
    advancing cycles later. Cycles from the first row taken to the last
    output row taken, both counted."""
    lat = p.rows * (p.mac_pipeline + 1) + p.cols - 1
    pipe = [False] * lat  # pipe[-1]: a row is at the output
    taken = done = c = 0
    first = None
    while True:
        advance = not pipe[-1] or ready(c)
        take = advance and taken < m and offered(c) and c >= p.rows
        if take and first is None:
            first = c
        if pipe[-1] and ready(c):
            done += 1
            if done == m:
                return c - first + 1
        if advance:
            pipe = [take] + pipe[:-1]
            taken += take
        c += 1


def _flags(pattern):
    """A bit pattern as a function of the cycle (high once it runs out)."""
    return lambda c: pattern is None or c >= len(pattern) or bool(pattern[c])


@pytest.mark.parametrize(
    "dtype,rows,cols,pipe,m",
    [
        ("int8", 2, 3, 0, 8),
        ("int8", 3, 2, 1, 6),
        ("int8", 4, 4, 0, 10),
        ("fp16", 3, 3, 1, 5),
        ("fp16", 2, 3, mac_cuts("fp16"), 6),
    ],
)
def test_backpressure_loses_nothing(dtype, rows, cols, pipe, m):
    rng = np.random.default_rng(m + rows)
    p = params_for(dtype, rows, cols, pipe)
    a, w = random_operands(rng, (m, rows), dtype), random_operands(rng, (rows, cols), dtype)
    pattern = (rng.random(200) < 0.6).tolist()
    free = simulate_gemm(a, w, p)
    run = simulate_gemm(a, w, p, out_ready=pattern)
    assert_same_bits(run.out, free.out)
    assert_same_bits(run.out, ref_gemm(a, w))
    assert run.cycles > free.cycles == tile_cycles(m, p)
    assert run.cycles == stalled_cycles(m, p, _flags(pattern))


def test_backpressure_callable_long_stall():
    """Output refused for a long stretch: the array fills and freezes."""
    rng = np.random.default_rng(1)
    p = params_for("int8", 2, 2)
    a, w = random_operands(rng, (9, 2), "int8"), random_operands(rng, (2, 2), "int8")
    ready = lambda c: not 5 <= c < 40  # noqa: E731
    run = simulate_gemm(a, w, p, out_ready=ready)
    assert_same_bits(run.out, ref_gemm(a, w))
    assert run.cycles == stalled_cycles(9, p, ready) > tile_cycles(9, p) + 20


def test_output_never_ready_raises(monkeypatch):
    monkeypatch.setattr(simulate_mod, "MAX_REFUSED", 50)
    a = np.ones((3, 2), np.int8)
    with pytest.raises(RuntimeError, match="stayed low for more than 50 cycles"):
        simulate_gemm(
            a, np.ones((2, 2), np.int8), params_for("int8", 2, 2), out_ready=lambda c: False
        )


def test_input_never_valid_raises(monkeypatch):
    monkeypatch.setattr(simulate_mod, "MAX_REFUSED", 50)
    a = np.ones((3, 2), np.int8)
    with pytest.raises(RuntimeError, match="act_valid stayed low for more than 50 cycles"):
        simulate_gemm(
            a, np.ones((2, 2), np.int8), params_for("int8", 2, 2), act_valid=lambda c: c < 4
        )


# -- weight double buffering --------------------------------------------------
@pytest.mark.parametrize(
    "dtype,rows,cols,pipe,ms",
    [
        ("int8", 3, 2, 0, (8, 5, 2)),  # second tile's weights load while the first streams
        ("int8", 2, 4, 1, (1, 1)),  # tiles shorter than the reload time
        ("bf16", 2, 2, 0, (4, 3)),
    ],
)
def test_double_buffered_tiles(dtype, rows, cols, pipe, ms):
    rng = np.random.default_rng(sum(ms))
    p = params_for(dtype, rows, cols, pipe)
    tiles = []
    for i, m in enumerate(ms):
        k, n = rows - i % 2, cols - (i + 1) % 2  # mix full and partial tiles
        tiles.append(
            (random_operands(rng, (m, k), dtype, 0.05), random_operands(rng, (k, n), dtype, 0.05))
        )
    run = simulate_tiles(tiles, p)
    assert len(run.outs) == len(tiles)
    for (a, w), out in zip(tiles, run.outs):
        assert_same_bits(out, ref_gemm(a, w))
    # tile i+1 starts max(m_i, reload_cycles) after tile i
    assert run.cycles == sum(max(m, reload_cycles(p)) for m in ms[:-1]) + tile_cycles(ms[-1], p)


def test_input_bubbles_mid_tile():
    """act.valid low mid-tile: no row is lost or duplicated, and without
    backpressure each bubble between the first and the last row delays the
    tile by one cycle (hand-counted: rows taken in cycles 3, 4, 7, 8, 9, 11)."""
    rng = np.random.default_rng(4)
    p = params_for("int8", 3, 2, 1)
    a, w = random_operands(rng, (6, 3), "int8"), random_operands(rng, (3, 2), "int8")
    run = simulate_gemm(a, w, p, act_valid=lambda c: c not in (5, 6, 10, 12))
    assert_same_bits(run.out, ref_gemm(a, w))
    assert run.cycles == tile_cycles(6, p) + 3


#: Examples of the randomized array test: a small fixed number by default and
#: in CI (profile "ci", tests/conftest.py), a large run with HYPOTHESIS_PROFILE=slow.
RANDOM_TILE_EXAMPLES = 300 if settings.get_current_profile_name() == "slow" else 20


@settings(max_examples=RANDOM_TILE_EXAMPLES)
@given(
    dtype=st.sampled_from(["int8", "fp16", "bf16"]),
    rows=st.integers(1, 5),
    cols=st.integers(1, 5),
    pipe=st.integers(0, mac_cuts("bf16") + 1),
    m=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
    backpressure=st.booleans(),
    bubbles=st.booleans(),
    data=st.data(),
)
def test_random_tiles(dtype, rows, cols, pipe, m, seed, backpressure, bubbles, data):
    """Random shapes, pipelines, formats, output backpressure and input
    bubbles (act.valid low mid-tile) against the numpy loop and the
    handshake model."""
    k, n = data.draw(st.integers(1, rows)), data.draw(st.integers(1, cols))
    rng = np.random.default_rng(seed)
    p = params_for(dtype, rows, cols, pipe)
    a, w = random_operands(rng, (m, k), dtype), random_operands(rng, (k, n), dtype)
    ready = (rng.random(100) < 0.5).tolist() if backpressure else None
    valid = (rng.random(100) < 0.6).tolist() if bubbles else None
    run = simulate_gemm(a, w, p, out_ready=ready, act_valid=valid)
    assert_same_bits(run.out, ref_gemm(a, w))
    assert run.cycles == stalled_cycles(m, p, _flags(ready), _flags(valid))


def test_double_buffered_tiles_under_backpressure():
    """Weights keep loading while the array is stalled; the swap wave freezes
    with it, so no PE sees the next tile's weights early."""
    rng = np.random.default_rng(3)
    p = params_for("int8", 3, 2, 1)
    tiles = [
        (random_operands(rng, (m, 3), "int8"), random_operands(rng, (3, 2), "int8"))
        for m in (6, 2, 5, 1)
    ]
    pattern = (rng.random(120) < 0.4).tolist()
    run = simulate_tiles(tiles, p, out_ready=pattern)
    for (a, w), out in zip(tiles, run.outs):
        assert_same_bits(out, ref_gemm(a, w))
    assert run.cycles > simulate_tiles(tiles, p).cycles


# -- bad input ----------------------------------------------------------------
@pytest.fixture
def no_simulation(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("simulation started despite bad input")

    monkeypatch.setattr(simulate_mod, "Simulator", refuse)


@pytest.mark.parametrize(
    "a,w,dtype,match",
    [
        (
            np.zeros((2, 3), np.int8),
            np.zeros((3, 2), np.int8),
            "int8",
            r"K=3 must lie in 1\.\.params\.rows=2",
        ),
        (np.zeros((2, 2), np.int8), np.zeros((2, 3), np.int8), "int8", r"N=3"),
        (np.zeros((0, 2), np.int8), np.zeros((2, 2), np.int8), "int8", r"M=0"),
        (np.zeros((2, 2), np.int8), np.zeros((1, 2), np.int8), "int8", "inner dimensions"),
        (np.zeros(2, np.int8), np.zeros((2, 2), np.int8), "int8", "2-D"),
        (np.zeros((2, 2), np.int16), np.zeros((2, 2), np.int8), "int8", r"a\.dtype=int16"),
        (np.zeros((2, 2), np.float16), np.zeros((2, 2), np.float32), "fp16", r"w\.dtype=float32"),
        (np.zeros((2, 2), np.float16), np.zeros((2, 2), np.float16), "bf16", r"a\.dtype=float16"),
        (
            np.full((2, 2), 1.1, np.float32),
            np.zeros((2, 2), np.float32),
            "bf16",
            "not all representable",
        ),
        ([[1, 2]], np.zeros((2, 2), np.int8), "int8", "2-D numpy array"),
    ],
)
def test_bad_input_rejected_before_simulation(no_simulation, a, w, dtype, match):
    with pytest.raises(ValueError, match=match):
        simulate_gemm(a, w, params_for(dtype, 2, 2))


def test_vcd_written(tmp_path):
    path = tmp_path / "gemm.vcd"
    a = np.array([[3]], np.int8)
    run = simulate_gemm(a, np.array([[-2]], np.int8), params_for("int8", 1, 1), vcd=path)
    assert run.out.tolist() == [[-6]]
    text = path.read_text()
    assert "$enddefinitions" in text and "valid" in text
