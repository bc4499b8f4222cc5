"""MAC (docs/hardware/arith.rst, "MAC numerics") bit-exact against numpy, and pipelined
units against their latency."""

from __future__ import annotations

import operator

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

import acc_reference as exact
from focus_hw.arith import FORMATS, MAC
from focus_hw.arith import reference as ref
from focus_hw.arith.compare import FCompare, FMax
from focus_hw.arith.convert import NARROW_CUTS, Narrow, Widen
from focus_hw.arith.fadd import ADD_CUTS, FAdd
from focus_hw.arith.fmul import FMUL_CUTS, FMul
from focus_hw.arith.mac import mac_cuts
from focus_hw.arith.pipeline import Pipeline
from focus_hw.arith.simulate import evaluate, run_pipelined
from test_arith_units import (
    assert_bits_equal,
    is_tie,
    pairs,
    random_bits,
    specials,
    unused_elaboratables_ok,
)


def check_mac(dtype, a, b, acc):
    got = evaluate(MAC(dtype), a=a, b=b, acc=acc)["out"]
    assert_bits_equal(got, ref.mac(dtype, a, b, acc), a, b, acc)


def product_bits(dtype, a, b):
    """fp32 bits of ``np.float32(a) * np.float32(b)``."""
    with np.errstate(all="ignore"):
        return ref.to_bits(
            "fp32",
            ref.to_float(dtype, a).astype(np.float32) * ref.to_float(dtype, b).astype(np.float32),
        )


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_mac_special_operands(dtype):
    """All pairs of special a, b against a cycle of special accumulators."""
    a, b = pairs(specials(dtype))
    acc32 = specials("fp32")
    acc = acc32[np.arange(a.size) % acc32.size]
    check_mac(dtype, a, b, acc)


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_mac_cancellation_ties_and_alignment(dtype):
    rng = np.random.default_rng(10)
    f = FORMATS[dtype]
    a = random_bits(rng, dtype, 3000)
    b = random_bits(rng, dtype, 3000, (max(1, f.bias - 8), f.bias + 8))
    prod = product_bits(dtype, a, b)
    sign = np.uint64(1 << 31)
    finite = (prod & np.uint64(0x7F800000)) != np.uint64(0x7F800000)
    a, b, prod = a[finite][:400], b[finite][:400], prod[finite][:400]
    exact_cancel = prod ^ sign  # -> +0
    near_cancel = (prod ^ sign) + rng.integers(0, 3, prod.size, dtype=np.uint64) - np.uint64(1)
    far = random_bits(rng, "fp32", prod.size)  # huge or tiny versus the product
    # Ties of the final fp32 addition: products of 2-bit significands, accumulators
    # whose last place falls just above the product's bits.
    short = ~np.uint64((1 << (f.man_bits - 2)) - 1)
    ta, tb = a & short, b & short
    tprod = product_bits(dtype, ta, tb)
    exp_p = ((tprod >> np.uint64(23)) & np.uint64(0xFF)).astype(np.int64)
    exp_t = np.clip(exp_p + rng.integers(20, 27, prod.size), 1, 254).astype(np.uint64)
    tie_acc = (
        (rng.integers(0, 2, prod.size, dtype=np.uint64) << np.uint64(31))
        | (exp_t << np.uint64(23))
        | (rng.integers(0, 1 << 23, prod.size, dtype=np.uint64) & np.uint64(0x7FF800))
    )
    with np.errstate(all="ignore"):
        exact_sum = ref.to_float("fp32", tie_acc).astype(np.float64) + ref.to_float(
            "fp32", tprod
        ).astype(np.float64)
    ties = is_tie("fp32", exact_sum)
    assert ties.sum() >= 10
    accs = [exact_cancel, near_cancel, far, tie_acc[ties]]
    check_mac(
        dtype,
        np.concatenate([a] * 3 + [ta[ties]]),
        np.concatenate([b] * 3 + [tb[ties]]),
        np.concatenate(accs),
    )


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_mac_tiny_products(dtype):
    """Subnormal operands (fp16) and products in fp32's subnormal range (bf16: rounded)."""
    rng = np.random.default_rng(11)
    f = FORMATS[dtype]
    a = random_bits(rng, dtype, 600, (0, 3))
    b = random_bits(rng, dtype, 600, (0, f.bias + 2))
    acc = np.where(
        rng.random(a.size) < 0.5, np.uint64(0), random_bits(rng, "fp32", a.size, (0, 40))
    )
    check_mac(dtype, a, b, acc)


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@settings(max_examples=7, deadline=None)
@given(data=st.data())
def test_mac_random_bit_patterns(dtype, data):
    raw16 = st.lists(st.integers(0, 2**16 - 1), min_size=300, max_size=300)
    raw32 = st.lists(st.integers(0, 2**32 - 1), min_size=300, max_size=300)
    a, b = (np.array(data.draw(raw16), dtype=np.uint64) for _ in range(2))
    acc = np.array(data.draw(raw32), dtype=np.uint64)
    # Half the accumulators are widened operands, so sums of comparable size occur.
    acc = np.where(np.arange(acc.size) % 2 == 0, acc, ref.widen(dtype, acc & np.uint64(0xFFFF)))
    got = evaluate(MAC(dtype), a=a, b=b, acc=acc)["out"]
    assert_bits_equal(got, ref.mac(dtype, a, b, acc), a, b, acc)
    # numpy's array expression agrees wherever the NaN choice is unambiguous.
    fa, fb = (ref.to_float(dtype, v).astype(np.float32) for v in (a, b))
    with np.errstate(all="ignore"):
        arrays = ref.to_bits("fp32", ref.to_float("fp32", acc) + fa * fb)
    one_nan = (np.isnan(fa).astype(int) + np.isnan(fb) + np.isnan(ref.to_float("fp32", acc))) <= 1
    assert_bits_equal(got[one_nan], arrays[one_nan], a[one_nan], b[one_nan], acc[one_nan])


def test_mac_nan_priority():
    """Quieted NaN of b, then a, then 0*inf's default NaN, then acc (numpy scalars on x86)."""
    qa, sb, qacc = 0x7E01, 0xFC03, 0x7FC00005
    one, zero, inf = 0x3C00, 0x0000, 0x7C00
    a = np.array([qa, qa, one, zero, zero, one], dtype=np.uint64)
    b = np.array([sb, one, sb, inf, one, one], dtype=np.uint64)
    acc = np.array([qacc, qacc, qacc, qacc, qacc, 0xFF800000], dtype=np.uint64)
    want = [0xFFC06000, 0x7FC02000, 0xFFC06000, 0xFFC00000, 0x7FC00005, 0xFF800000]
    assert_bits_equal(evaluate(MAC("fp16"), a=a, b=b, acc=acc)["out"], np.array(want), a, b, acc)
    assert_bits_equal(ref.mac("fp16", a, b, acc), np.array(want), a, b, acc)


def test_mac_int8_wraparound():
    edges = np.array([-128, -127, -1, 0, 1, 2, 127], dtype=np.int64)
    accs = np.array([-(2**31), 2**31 - 1, -1, 0, 1, 2**31 - 16384], dtype=np.int64)
    a, b, acc = (g.ravel() for g in np.meshgrid(edges, edges, accs))
    got = evaluate(MAC("int8"), a=a, b=b, acc=acc)["out"]
    want = ((acc + a * b + 2**31) % 2**32 - 2**31).astype(np.int64)  # exact integers, then wrap
    assert_bits_equal(got, want.astype(np.uint32).astype(np.uint64), a, b, acc)
    assert_bits_equal(got, ref.mac("int8", a, b, acc), a, b, acc)


@pytest.mark.parametrize("width", [16, 18, 31])
def test_mac_int8_narrow_accumulator(width):
    """acc_bits=width: ``acc + a*b`` modulo 2**width, acc read as a signed
    width-bit value -- exact for every in-range sum, wrapping past it."""
    edges = np.array([-128, -127, -1, 0, 1, 127], dtype=np.int64)
    lo, hi = -(2 ** (width - 1)), 2 ** (width - 1) - 1
    accs = np.array([lo, hi, -1, 0, 1, hi - 16384, lo + 16256], dtype=np.int64)
    a, b, acc = (g.ravel() for g in np.meshgrid(edges, edges, accs))
    with unused_elaboratables_ok():
        mac = MAC("int8", acc_bits=width)
        assert (len(mac.acc), len(mac.out)) == (width, width)
    got = evaluate(mac, a=a, b=b, acc=acc)["out"].astype(np.int64)
    exact = acc + a * b
    want = (exact - lo) % 2**width + lo  # signed wrap-around
    assert_bits_equal(got, (want % 2**width).astype(np.uint64), a, b, acc)
    inside = (exact >= lo) & (exact <= hi)
    assert inside.sum() > len(exact) // 2
    np.testing.assert_array_equal(want[inside], exact[inside])


def test_mac_acc_bits_rejected():
    with unused_elaboratables_ok():
        for bad in (15, 33, 2.0, True):
            with pytest.raises(ValueError, match="acc_bits.*16\\.\\.32"):
                MAC("int8", acc_bits=bad)
        with pytest.raises(ValueError, match="acc_format chooses a float accumulator"):
            MAC("fp16", acc_bits=24)
        with pytest.raises(ValueError, match="acc_format chooses a float accumulator"):
            MAC("fp16", acc_bits=32, acc_format="operand")
        assert len(MAC("bf16", acc_bits=None).out) == 32
        assert len(MAC("bf16", acc_bits=16, acc_format="operand").out) == 16
        with pytest.raises(ValueError, match="acc_format='operand' needs a float"):
            MAC("int8", acc_format="operand")
        with pytest.raises(ValueError, match="unknown acc_format 'fp8'"):
            MAC("fp16", acc_format="fp8")


@settings(max_examples=5, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-128, 127), st.integers(-128, 127), st.integers(-(2**31), 2**31 - 1)),
        min_size=200,
        max_size=200,
    )
)
def test_mac_int8_random(vectors):
    a, b, acc = (np.array(v, dtype=np.int64) for v in zip(*vectors))
    got = evaluate(MAC("int8"), a=a, b=b, acc=acc)["out"]
    assert_bits_equal(got, ref.mac("int8", a, b, acc), a, b, acc)


def test_mac_interface():
    with unused_elaboratables_ok():
        mac = MAC("fp16", pipeline=2)
        assert mac.latency == 2 and MAC("bf16").latency == 0
        assert (len(mac.a), len(mac.b), len(mac.acc), len(mac.out)) == (16, 16, 32, 32)
        assert (len(MAC("int8").a), len(MAC("int8").out)) == (8, 32)
        assert mac.en.init == 1
        with pytest.raises(ValueError, match="unknown MAC dtype 'fp8'"):
            MAC("fp8")
        with pytest.raises(ValueError, match="pipeline must be an integer >= 0"):
            MAC("int8", pipeline=1.5)
        del mac


# -- accumulator in the operand format (acc_format="operand") ------------------------


def check_operand_mac(dtype, a, b, acc):
    """``MAC(dtype, acc_format="operand")`` against numpy scalars of the operand
    type bit for bit (NaN payloads included) and against the exact model
    (:mod:`acc_reference`: one rounding of the exact product, then of the
    exact sum). Returns the outputs."""
    got = evaluate(MAC(dtype, acc_format="operand"), a=a, b=b, acc=acc)["out"]
    assert_bits_equal(got, ref.mac(dtype, a, b, acc, "operand"), a, b, acc)
    fmt = FORMATS[dtype]
    values = (map(float, ref.to_float(dtype, v)) for v in (a, b, acc))
    want = [exact.add(c, exact.mul(x, y, fmt), fmt) for x, y, c in zip(*values)]
    exact.assert_matches(got, want, dtype)
    return got


def tiny_operands(rng, dtype, n):
    """Operand pairs whose exact products lie in the operand format's
    subnormal range, just above it or below it (underflowing to zero)."""
    f = FORMATS[dtype]
    a = random_bits(rng, dtype, n, (1, f.bias))
    ea = ((a >> np.uint64(f.man_bits)) & np.uint64(f.exp_max)).astype(np.int64)
    eb = np.clip(f.bias - ea + rng.integers(-f.man_bits - 3, 2, n), 1, f.exp_max - 1)
    b = random_bits(rng, dtype, n, (0, 0)) | (eb.astype(np.uint64) << np.uint64(f.man_bits))
    return a, b


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_mac_operand_special_operands(dtype):
    """All pairs of special a, b against a cycle of special accumulators."""
    a, b = pairs(specials(dtype))
    acc = specials(dtype)[np.arange(a.size) % specials(dtype).size]
    check_operand_mac(dtype, a, b, acc)


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_mac_operand_subnormals(dtype):
    """Products and sums in the operand format's subnormal range: rounded
    (one rounding each), never flushed."""
    rng = np.random.default_rng(40)
    f = FORMATS[dtype]
    a, b = tiny_operands(rng, dtype, 800)
    acc = np.where(
        rng.random(a.size) < 0.5,
        random_bits(rng, dtype, a.size, (0, 0)),  # subnormal accumulators
        random_bits(rng, dtype, a.size, (1, 2)),
    )
    got = check_operand_mac(dtype, a, b, acc)
    magnitude = np.uint64((1 << (f.width - 1)) - 1)
    smallest_normal = np.uint64(1 << f.man_bits)
    product = ref.binary(operator.mul, dtype, a, b) & magnitude
    assert (((got & magnitude) < smallest_normal) & ((got & magnitude) != 0)).sum() > 100
    assert ((product < smallest_normal) & (product != 0)).sum() > 100  # subnormal products
    assert (product == 0).sum() > 20  # products underflowing to zero


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_mac_operand_overflow_and_inf_minus_inf(dtype):
    """Products and sums past the largest finite value become infinities;
    an infinite accumulator meeting the opposite infinite product is NaN."""
    rng = np.random.default_rng(41)
    f = FORMATS[dtype]
    n = 600
    half = (f.exp_max - 1 + f.bias) // 2  # exponent of about sqrt(max)
    a = random_bits(rng, dtype, n, (half - 1, half + 1))
    b = random_bits(rng, dtype, n, (half - 1, half + 1))
    big = random_bits(rng, dtype, n, (f.exp_max - 2, f.exp_max - 1))
    inf = np.uint64(f.exp_max << f.man_bits) | (
        rng.integers(0, 2, n, dtype=np.uint64) << np.uint64(f.width - 1)
    )
    acc = np.where(rng.random(n) < 0.6, big, inf)
    got = check_operand_mac(dtype, a, b, acc)
    mag = got & np.uint64((1 << (f.width - 1)) - 1)
    is_inf = mag == np.uint64(f.exp_max << f.man_bits)
    is_nan = mag > np.uint64(f.exp_max << f.man_bits)
    product = ref.binary(operator.mul, dtype, a, b)
    product_inf = (product & np.uint64((1 << (f.width - 1)) - 1)) == np.uint64(
        f.exp_max << f.man_bits
    )
    assert (is_inf & (acc != inf)).sum() > 50  # finite accumulators overflowing
    assert (product_inf & (acc != inf)).sum() > 20  # products overflowing
    assert is_nan.sum() > 10  # inf - inf


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_mac_operand_ties(dtype):
    """Sums exactly half-way between two operand-format neighbours round to
    even; products of short significands are exact."""
    rng = np.random.default_rng(42)
    f = FORMATS[dtype]
    short = ~np.uint64((1 << (f.man_bits - 2)) - 1)
    a = random_bits(rng, dtype, 4000, (f.bias - 4, f.bias + 4)) & short
    b = random_bits(rng, dtype, 4000, (f.bias - 4, f.bias + 4)) & short
    acc = random_bits(rng, dtype, 4000, (f.bias - 2, f.bias + 8))
    product = ref.to_float(dtype, a).astype(np.float64) * ref.to_float(dtype, b)
    ties = is_tie(dtype, ref.to_float(dtype, acc).astype(np.float64) + product)
    assert ties.sum() >= 50
    check_operand_mac(dtype, a[ties], b[ties], acc[ties])


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_mac_operand_random_bit_patterns(dtype, data):
    raw = st.lists(st.integers(0, 2**16 - 1), min_size=300, max_size=300)
    a, b, acc = (np.array(data.draw(raw), dtype=np.uint64) for _ in range(3))
    check_operand_mac(dtype, a, b, acc)


def test_mac_operand_interface():
    with unused_elaboratables_ok():
        mac = MAC("bf16", pipeline=1, acc_format="operand")
        assert (len(mac.a), len(mac.b), len(mac.acc), len(mac.out)) == (16, 16, 16, 16)
        assert mac.latency == 1 and mac.acc_format == "operand"
        del mac


# -- pipelined variants -----------------------------------------------------------


def expected_pipelined(inputs, enables, latency, combinational):
    """Output after each clock of a ``latency``-stage pipeline loading only when enabled."""
    loaded, expected = [], []
    for i, en in enumerate(enables):
        if en:
            loaded.append(i)
        expected.append(combinational[loaded[-latency]] if len(loaded) >= latency else None)
    return expected


def check_pipelined(make, pipeline, inputs, reference):
    """``make(pipeline)`` equals ``reference`` (per-vector outputs) ``latency`` loads later."""
    dut = make(pipeline)
    assert dut.latency == pipeline
    rng = np.random.default_rng(pipeline)
    count = len(next(iter(inputs.values())))
    enables = (rng.random(count) < 0.7).astype(int)
    enables[:pipeline] = 1
    steps = [{**{k: v[i] for k, v in inputs.items()}, "en": enables[i]} for i in range(count)]
    samples = run_pipelined(dut, steps)
    expected = expected_pipelined(inputs, enables, pipeline, reference)
    checked = 0
    for i, (sample, want) in enumerate(zip(samples, expected)):
        if want is None:
            continue
        assert sample == want, f"step {i} (en={enables[i]}): got {sample}, want {want}"
        checked += 1
    assert checked >= count - pipeline - 2 and 0 in enables


def depths(cuts: int) -> list[int]:
    """Every pipeline depth that registers a new cut point, then two more
    (a spare cut point, where the unit has one, and the output)."""
    return list(range(1, cuts + 3))


class _Chain(Elaboratable):
    """A counter through a Pipeline's cut points in ``order`` ("cut", "spare",
    "finish"): ``taps[i]`` is the counter as it leaves the i-th point."""

    def __init__(self, stages, cuts, order):
        self.stages, self.cuts, self.order = stages, cuts, order
        self.count = Signal(8)
        self.taps = [Signal(8, name=f"tap{i}") for i in range(len(order))]

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.count.eq(self.count + 1)
        pipe, value = Pipeline(m, self.stages, self.cuts, 1), self.count
        for tap, point in zip(self.taps, self.order):
            if point == "finish":
                (value,) = pipe.finish(value)
            else:
                (value,) = pipe.cut(value, spare=point == "spare")
            m.d.comb += tap.eq(value)
        return m


@pytest.mark.parametrize(
    "stages,delays",
    [
        (0, [0, 0, 0, 0, 0]),
        (2, [1, 1, 1, 2, 2]),  # at the cut points nearest 1/3 and 2/3 of the way
        (3, [1, 1, 2, 3, 3]),  # one per cut point
        (4, [1, 2, 3, 4, 4]),  # then the spare one
        (6, [1, 2, 3, 4, 6]),  # then the output
    ],
)
def test_pipeline_places_stages(stages, delays):
    """Each point's delay, cumulative, on a chain of three cut points with a spare one."""
    dut = _Chain(stages, 3, ["cut", "spare", "cut", "cut", "finish"])
    got = []

    async def bench(ctx):
        for _ in range(10):
            await ctx.tick()
        got.extend(ctx.get(dut.count) - ctx.get(tap) for tap in dut.taps)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == delays


def test_pipeline_cut_points_are_checked():
    with unused_elaboratables_ok():
        m = Module()
        pipe = Pipeline(m, 4, 2, 1)
        pipe.cut(Signal())
        with pytest.raises(RuntimeError, match="1 of 2 pipeline cut points used"):
            pipe.finish(Signal())
        with pytest.raises(RuntimeError, match="more pipeline cut points used than declared"):
            Pipeline(m, 1, 0, 1).cut(Signal())
        del m, pipe


@pytest.mark.parametrize(
    "dtype,pipeline",
    [(d, p) for d in ("fp16", "bf16") for p in depths(mac_cuts(d, "operand"))],
)
def test_mac_operand_pipelined(dtype, pipeline):
    rng = np.random.default_rng(50 + pipeline)
    a, b, acc = (rng.integers(0, 1 << 16, 120, dtype=np.uint64) for _ in range(3))
    want = [{"out": int(v)} for v in ref.mac(dtype, a, b, acc, "operand")]
    make = lambda p: MAC(dtype, p, acc_format="operand")  # noqa: E731
    check_pipelined(make, pipeline, {"a": a, "b": b, "acc": acc}, want)


@pytest.mark.parametrize(
    "dtype,pipeline", [(d, p) for d in ("fp16", "bf16", "int8") for p in depths(mac_cuts(d))]
)
def test_mac_pipelined(dtype, pipeline):
    rng = np.random.default_rng(20 + pipeline)
    width = 8 if dtype == "int8" else 16
    a, b = (rng.integers(0, 1 << width, 120, dtype=np.uint64) for _ in range(2))
    acc = rng.integers(0, 1 << 32, 120, dtype=np.uint64)
    if dtype != "int8":
        acc = np.where(np.arange(acc.size) % 2 == 0, acc, ref.widen(dtype, acc & np.uint64(0xFFFF)))
    want = [{"out": int(v)} for v in ref.mac(dtype, a, b, acc)]
    check_pipelined(lambda p: MAC(dtype, p), pipeline, {"a": a, "b": b, "acc": acc}, want)


UNITS = {  # maker, inputs, input width, cut points
    "add-fp32": (lambda p: FAdd("fp32", p), ("a", "b"), 32, ADD_CUTS),
    "mul-bf16": (lambda p: FMul("bf16", p), ("a", "b"), 16, FMUL_CUTS),
    "mul-fp32": (lambda p: FMul("fp32", p), ("a", "b"), 32, FMUL_CUTS),  # partial products
    "widen-fp16": (lambda p: Widen("fp16", p), ("a",), 16, 1),
    "narrow-fp16": (lambda p: Narrow("fp16", p), ("a",), 32, NARROW_CUTS),
    "max-fp16": (lambda p: FMax("fp16", p), ("a", "b"), 16, 1),
    "compare-fp32": (lambda p: FCompare("fp32", p), ("a", "b"), 32, 1),
}


@pytest.mark.parametrize(
    "unit,pipeline", [(u, p) for u, spec in UNITS.items() for p in depths(spec[3])]
)
def test_units_pipelined(unit, pipeline):
    """Pipelining is transparent: same outputs as the combinational unit, ``latency`` later."""
    make, ports, width, _ = UNITS[unit]
    rng = np.random.default_rng(30 + pipeline)
    inputs = {p: rng.integers(0, 1 << width, 80, dtype=np.uint64) for p in ports}
    comb = evaluate(make(0), **inputs)
    want = [{k: int(v[i]) for k, v in comb.items()} for i in range(80)]
    check_pipelined(make, pipeline, inputs, want)


# -- long property runs -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["fp16", "bf16", "int8"])
def test_mac_many_random(dtype):
    rng = np.random.default_rng(99)
    width = 8 if dtype == "int8" else 16
    a, b = (rng.integers(0, 1 << width, 30000, dtype=np.uint64) for _ in range(2))
    acc = rng.integers(0, 1 << 32, 30000, dtype=np.uint64)
    if dtype != "int8":
        acc = np.where(np.arange(acc.size) % 2 == 0, acc, ref.widen(dtype, acc & np.uint64(0xFFFF)))
    check_mac(dtype, a, b, acc)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["fp16", "bf16", "fp32"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_add_mul_many_random(fmt, data):
    width = FORMATS[fmt].width
    raw = st.lists(st.integers(0, (1 << width) - 1), min_size=500, max_size=500)
    a, b = (np.array(data.draw(raw), dtype=np.uint64) for _ in range(2))
    for unit, op in ((FAdd, operator.add), (FMul, operator.mul)):
        assert_bits_equal(evaluate(unit(fmt), a=a, b=b)["out"], ref.binary(op, fmt, a, b), a, b)
