"""The SEC RTL (focus_hw.sec) against the torch reference (focus_algo.sec)."""

import ml_dtypes
import numpy as np
import pytest
import torch
from amaranth.hdl import Module, Signal
from amaranth.lib import memory, wiring
from amaranth.sim import Simulator

from focus_algo.sec import importance, select_tokens
from focus_hw import FocusParams, SECRun, sec_cycles, simulate_sec
from focus_hw.generate import UNITS, convert_rtlil
from focus_hw.sec import ImportanceAnalyzer, SECInputError, SECNaNError, order_key
from focus_hw.sec.topk import key_of_bits

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def small(dtype: str, max_tokens: int = 64) -> FocusParams:
    return FocusParams(dtype=dtype, max_tokens=max_tokens, max_frame_tokens=16)


def attention(rng, heads, n_sys, n_vis, n_text, levels=None):
    """Softmax attention over [system | visual | text] tokens; with
    ``levels``, probabilities rounded to multiples of 1/levels (many ties)."""
    seq = n_sys + n_vis + n_text
    logits = rng.normal(0.0, 2.0, (heads, seq, seq))
    probs = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    if levels:
        probs = np.round(probs * levels) / levels
    return torch.from_numpy(probs.astype(np.float32))


def check(attn, visual, text, k, p) -> SECRun:
    run = simulate_sec(attn, visual, text, k, p)
    expected = select_tokens(importance(attn, visual, text), k)
    assert run.kept.dtype == torch.int64
    assert run.kept.tolist() == expected.tolist()
    heads, queries = attn.shape[-3], len(range(*text.indices(attn.shape[-2])))
    n = len(range(*visual.indices(attn.shape[-1])))
    assert run.cycles == sec_cycles(heads * queries, n, p)
    return run


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@pytest.mark.parametrize(
    "heads, n_vis, n_text, k",
    [
        (1, 1, 1, 1),
        (2, 5, 2, 2),
        (3, 16, 2, 7),
        (1, 16, 1, 16),
        (2, 40, 3, 16),
    ],
)
def test_matches_reference_random(dtype, heads, n_vis, n_text, k):
    rng = np.random.default_rng([heads, n_vis, n_text, k])
    attn = attention(rng, heads, 2, n_vis, n_text).to(DTYPES[dtype])
    check(attn, slice(2, 2 + n_vis), slice(2 + n_vis, None), k, small(dtype))


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@pytest.mark.parametrize("seed", range(4))
def test_matches_reference_tie_heavy(dtype, seed):
    rng = np.random.default_rng(seed)
    n_vis = int(rng.integers(8, 33))
    attn = attention(rng, 2, 1, n_vis, 2, levels=4).to(DTYPES[dtype])
    if seed % 2:  # both zeros: -0 and +0 tie
        attn = torch.where(
            torch.rand(attn.shape, generator=torch.Generator().manual_seed(seed)) < 0.5, attn, -attn
        )
    k = int(rng.integers(1, n_vis + 1))
    check(attn, slice(1, 1 + n_vis), slice(1 + n_vis, None), k, small(dtype))


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_analyzer_buffer_equals_torch_amax(dtype):
    """The importance buffer after the analyzer: torch's amax over heads and
    text rows, bit for bit up to the sign of zero (FMax gives +0)."""
    rng = np.random.default_rng(3)
    heads, n_text, n = 3, 2, 11
    attn = attention(rng, heads, 0, n, n_text, levels=6).to(DTYPES[dtype])
    attn = torch.where(torch.from_numpy(rng.random(attn.shape) < 0.3), -attn, attn)
    scores = attn[:, n:, :n].reshape(-1, n)
    expected = scores.amax(dim=0)
    m = Module()
    m.submodules.analyzer = dut = ImportanceAnalyzer(dtype, 16)
    m.submodules.buffer = buf = memory.Memory(shape=16, depth=16, init=[])
    write = buf.write_port()
    read = buf.read_port(transparent_for=(write,))
    wiring.connect(m, dut.buf_write, write)
    wiring.connect(m, dut.buf_read, read)
    beats = (scores.contiguous().view(torch.int16).reshape(-1).to(torch.int64) & 0xFFFF).tolist()
    got = []

    async def bench(ctx):
        ctx.set(dut.enable, 1)
        ctx.set(dut.n, n)
        ctx.set(dut.attn.valid, 1)
        for i, value in enumerate(beats):
            ctx.set(dut.attn.payload, {"data": value, "last": i == len(beats) - 1})
            await ctx.tick()
        ctx.set(dut.attn.valid, 0)
        *_, done = await ctx.tick().sample(dut.done)
        assert done
        got.extend(ctx.get(buf.data[i]) for i in range(n))

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    got_values = torch.tensor(got, dtype=torch.int32).to(torch.int16).view(DTYPES[dtype])
    assert torch.equal(got_values, expected)  # == : -0 equals +0
    assert not torch.signbit(got_values[got_values == 0]).any()


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_backpressure_on_kept(dtype):
    rng = np.random.default_rng(11)
    attn = attention(rng, 2, 1, 20, 2, levels=5).to(DTYPES[dtype])
    refused = np.random.default_rng(12).random(4000) < 0.6
    run = simulate_sec(
        attn,
        slice(1, 21),
        slice(21, None),
        8,
        small(dtype),
        kept_ready=lambda cycle: not refused[cycle],
    )
    expected = select_tokens(importance(attn, slice(1, 21), slice(21, None)), 8)
    assert run.kept.tolist() == expected.tolist()
    assert run.cycles > sec_cycles(4, 20, small(dtype))  # refusals stall the encoder


def test_all_equal_keeps_the_first_k():
    attn = torch.full((1, 2, 3, 12), 0.125, dtype=torch.float16)
    assert simulate_sec(attn, slice(0, 12), slice(0, 3), 5, small("fp16")).kept.tolist() == [
        0,
        1,
        2,
        3,
        4,
    ]


def test_full_size_buffer():
    # the default max_tokens (16384) buffer, a short run
    rng = np.random.default_rng(7)
    attn = attention(rng, 1, 0, 9, 2, levels=8).half()
    check(attn, slice(0, 9), slice(9, 11), 4, FocusParams())


def test_nan_is_flagged_as_the_reference_rejects_it():
    attn = torch.full((1, 3, 6), 0.25, dtype=torch.float16)
    attn[0, 2, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        select_tokens(importance(attn, slice(0, 6), slice(1, 3)), 2)
    with pytest.raises(SECNaNError, match="NaN"):
        simulate_sec(attn, slice(0, 6), slice(1, 3), 2, small("fp16"))
    # a NaN outside the text rows is no NaN importance
    assert simulate_sec(attn, slice(0, 6), slice(0, 2), 2, small("fp16")).kept.tolist() == [0, 1]


@pytest.mark.parametrize(
    "args, match",
    [
        ((torch.zeros(2, 1, 4, 4).half(), slice(0, 2), slice(2, 4), 1), "attn must be"),
        ((torch.zeros(4, 4).half(), slice(0, 2), slice(2, 4), 1), "attn must be"),
        ((np.zeros((1, 4, 4), np.float16), slice(0, 2), slice(2, 4), 1), "torch.Tensor"),
        ((torch.zeros(1, 4, 4), slice(0, 2), slice(2, 4), 1), "dtype"),
        ((torch.zeros(1, 4, 4).bfloat16(), slice(0, 2), slice(2, 4), 1), "dtype"),
        ((torch.zeros(1, 4, 4).half(), slice(0, 2), slice(4, 4), 1), "text slice"),
        ((torch.zeros(1, 4, 4).half(), slice(5, 6), slice(2, 4), 1), "visual slice"),
        ((torch.zeros(1, 4, 4).half(), [0, 1], slice(2, 4), 1), "slices"),
        ((torch.zeros(1, 4, 4).half(), slice(0, 2), slice(2, 4), 0), "k must"),
        ((torch.zeros(1, 4, 4).half(), slice(0, 2), slice(2, 4), 3), "k must"),
        ((torch.zeros(1, 4, 4).half(), slice(0, 2), slice(2, 4), 1.5), "k must be an integer"),
        ((torch.zeros(1, 2, 70).half(), slice(0, 68), slice(0, 2), 3), "max_tokens"),
    ],
)
def test_bad_input(args, match):
    with pytest.raises(SECInputError, match=match):
        simulate_sec(*args, small("fp16"))


def test_int8_params_rejected():
    with pytest.raises(SECInputError, match="float format"):
        simulate_sec(
            torch.zeros(1, 4, 4).half(), slice(0, 2), slice(2, 4), 1, FocusParams(dtype="int8")
        )
    with pytest.raises(ValueError, match="float format"):
        convert_rtlil(FocusParams(dtype="int8"), "sec")


@pytest.mark.parametrize("fmt, np_dtype", [("fp16", np.float16), ("bf16", ml_dtypes.bfloat16)])
def test_order_key_sorts_like_floats(fmt, np_dtype):
    """Every non-NaN encoding: the key order is the float order (-0 == +0),
    in the RTL (pysim of order_key) and its Python twin."""
    bits = np.arange(1 << 16, dtype=np.uint16)
    with np.errstate(invalid="ignore"):
        values = bits.view(np_dtype).astype(np.float64)
    ok = ~np.isnan(values)
    bits, values = bits[ok], values[ok]
    keys = np.array([key_of_bits(fmt, int(b)) for b in bits])
    order = np.argsort(values, kind="stable")
    assert np.all(np.diff(keys[order]) >= 0)  # monotone
    assert np.array_equal(np.diff(keys[order]) == 0, np.diff(values[order]) == 0)

    m = Module()
    raw, key = Signal(16), Signal(16)
    m.d.comb += key.eq(order_key(fmt, raw))
    sample = np.random.default_rng(0).choice(len(bits), 600, replace=False)
    sample = np.concatenate([sample, np.flatnonzero(values == 0)])  # both zeros
    got = []

    async def bench(ctx):
        for i in sample:
            ctx.set(raw, int(bits[i]))
            got.append(ctx.get(key))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert got == [int(keys[i]) for i in sample]


def test_sec_units_registered():
    p = small("bf16")
    for unit in ("sec", "sec_analyzer", "sec_select", "sec_encoder"):
        assert unit in UNITS
        assert f"module \\focus_{unit}" in convert_rtlil(p, unit)


def test_sec_cycles_closed_form():
    # rows*n + passes*(n + 2**8 + 3) + n + 4, two 8-bit passes over 16-bit keys
    assert sec_cycles(12, 100, FocusParams()) == 1200 + 2 * 359 + 104
    assert sec_cycles(1, 16384, FocusParams(dtype="bf16")) == 16384 * 4 + 522
    with pytest.raises(ValueError, match="n=0"):
        sec_cycles(1, 0, FocusParams())
