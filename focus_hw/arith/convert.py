"""Format conversions: exact widening to fp32 and RNE narrowing from fp32."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .bits import leading_zeros, wire
from .formats import FP32, float_format
from .pipeline import Pipeline, check_pipeline
from .rounding import ROUND_CUTS, round_pack
from .unpack import unpack

__all__ = ["Widen", "Narrow", "widen", "narrow", "narrow_stages", "NARROW_CUTS"]

#: Pipeline cut points of :func:`narrow` (after the unpack, then :func:`round_pack`'s).
NARROW_CUTS = 1 + ROUND_CUTS


def widen(m, fmt, bits) -> Value:
    """Exact ``fmt`` -> fp32 re-encoding (NaN payloads kept, not quieted, as numpy does)."""
    bits = Value.cast(bits)
    pad = FP32.man_bits - fmt.man_bits
    if fmt.exp_bits == FP32.exp_bits:
        return Cat(Const(0, pad), bits)
    x = unpack(m, fmt, bits)
    lz = leading_zeros(m, x.sig)  # 1..precision for subnormals and zero, 0 otherwise
    frac = wire(m, (x.sig << lz)[: fmt.man_bits])
    exp = Mux(x.zero, 0, x.exp + (FP32.bias - fmt.bias) - lz)
    special = Cat(bits[: fmt.man_bits], Const(FP32.exp_max, FP32.exp_bits))
    finite = Cat(frac, exp[: FP32.exp_bits])
    return Cat(Const(0, pad), Mux(x.inf | x.nan, special, finite), x.sign)


def narrow(m, fmt, pipe, bits) -> Value:
    """fp32 -> ``fmt`` rounded to nearest even (overflow to inf, subnormal results).

    NaNs as numpy/ml_dtypes: fp16 keeps the top payload bits without quieting
    (a payload that would vanish becomes 1); bf16 gives the canonical quiet
    NaN with the sign kept. ``pipe``'s next :data:`NARROW_CUTS` cut points are
    its own.
    """
    x = unpack(m, FP32, bits)
    sign = x.sign
    if fmt.name == "bf16":
        nan_bits = Cat(Const(fmt.canonical_nan, fmt.width - 1), sign)
    else:
        payload = x.bits[FP32.man_bits - fmt.man_bits : FP32.man_bits]
        payload = Cat(payload[0] | ~payload.any(), payload[1:])
        nan_bits = Cat(payload, Const(fmt.exp_max, fmt.exp_bits), sign)
    infinity = Cat(Const(fmt.exp_max << fmt.man_bits, fmt.width - 1), sign)
    exp, sig, nan, nan_bits, inf, infinity, sign = pipe.cut(
        x.exp, x.sig, x.nan, nan_bits, x.inf, infinity, sign
    )
    finite, (nan, nan_bits, inf, infinity) = round_pack(
        m,
        fmt,
        sign,
        exp + (fmt.bias - FP32.bias),
        sig,
        pipe=pipe,
        carry=(nan, nan_bits, inf, infinity),
    )
    return Mux(nan, nan_bits, Mux(inf, infinity, finite))


def narrow_stages(m, fmt, stages: int, en, bits) -> Value:
    """:func:`narrow` through a :class:`Pipeline` of ``stages`` register
    stages that load while ``en``."""
    pipe = Pipeline(m, stages, NARROW_CUTS, en)
    return pipe.finish(narrow(m, fmt, pipe, bits))[0]


class Widen(wiring.Component):
    """``out = fp32(a)`` for an fp16/bf16 ``a`` (exact); ``latency == pipeline``."""

    def __init__(self, fmt, pipeline: int = 0):
        self.fmt = float_format(fmt)
        self.pipeline = self.latency = check_pipeline(pipeline)
        super().__init__({"a": In(self.fmt.width), "en": In(1, init=1), "out": Out(FP32.width)})

    def elaborate(self, platform):
        m = Module()
        (out,) = Pipeline(m, self.pipeline, 0, self.en).finish(widen(m, self.fmt, self.a))
        m.d.comb += self.out.eq(out)
        return m


class Narrow(wiring.Component):
    """``out = fmt(a)`` for an fp32 ``a``, RNE; ``latency == pipeline``."""

    def __init__(self, fmt, pipeline: int = 0):
        self.fmt = float_format(fmt)
        self.pipeline = self.latency = check_pipeline(pipeline)
        super().__init__({"a": In(FP32.width), "en": In(1, init=1), "out": Out(self.fmt.width)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.out.eq(narrow_stages(m, self.fmt, self.pipeline, self.en, self.a))
        return m
