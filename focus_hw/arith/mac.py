"""The processing element's multiply-accumulate unit (``out = acc + a*b``)."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..formats import OPERAND_FORMATS, accumulator_format, operand_format
from .bits import leading_zeros, shift_left, wire
from .fadd import ADD_CUTS, add_core
from .fmul import MUL_CUTS, mul_core, widen_bits
from .formats import FP32, float_format
from .int8 import int_mac
from .pipeline import Pipeline, check_pipeline
from .unpack import Unpacked, nan_result, unpack

__all__ = ["MAC", "mac_cuts"]

#: Pipeline cut points of :func:`exact_product`: after the operands'
#: normalisation, after the significand product.
EXACT_CUTS = 2


def product_is_exact(fmt) -> bool:
    """Whether every product of two finite ``fmt`` values is a normal fp32 number."""
    smallest = 2 * (1 - fmt.bias - fmt.man_bits)  # log2 of min subnormal squared
    largest = 2 * (fmt.exp_max - fmt.bias)  # log2 bound of max finite squared
    return (
        2 * fmt.precision <= FP32.precision
        and smallest >= 1 - FP32.bias
        and largest <= FP32.exp_max - 1 - FP32.bias
    )


def mac_cuts(dtype: str, acc_format: str = "wide") -> int:
    """Pipeline cut points of :class:`MAC`: its ``pipeline`` up to this many
    stages each shorten the longest path; more stack at the cut points."""
    if not operand_format(dtype).is_float:
        return 1
    fmt, acc_fmt = float_format(dtype), accumulator_format(dtype, acc_format).layout
    if acc_fmt == FP32 and product_is_exact(fmt):
        return EXACT_CUTS + ADD_CUTS
    return MUL_CUTS + 1 + ADD_CUTS


def exact_product(m, fmt, pipe, x, y, carry=()):
    """Exact fp32 product of two ``fmt`` (fp16) operands as a normalised :class:`Unpacked`.

    Subnormal operands are normalised first, so the product of the 11-bit
    significands lies in ``[2**20, 2**22)``: one bit of normalisation after
    it, and no rounding (fp16 products lie well inside fp32's normal range).
    Uses the next :data:`EXACT_CUTS` cut points of ``pipe``. Returns
    ``(product, nan_candidates, carry)`` for :func:`add_core`; ``carry``
    values ride through the same pipeline registers.
    """
    invalid = wire(m, (x.inf & y.zero) | (x.zero & y.inf))
    nan = wire(m, x.nan | y.nan | invalid)
    nan_bits = nan_result(
        m,
        FP32,
        [(widen_bits(fmt, FP32, y.bits), y.nan), (widen_bits(fmt, FP32, x.bits), x.nan)],
    )
    # Subnormal significands shifted up to a leading one (zero stays zero).
    xlz, ylz = leading_zeros(m, x.sig), leading_zeros(m, y.sig)
    xsig, ysig = wire(m, shift_left(x.sig, xlz)), wire(m, shift_left(y.sig, ylz))
    # xsig * ysig / 2**21 * 2**(ex - xlz + ey - ylz - 2 bias + 1), rebiased to fp32.
    exp = wire(m, x.exp + y.exp + (FP32.bias - 2 * fmt.bias + 1))
    sign, zero, inf = x.sign ^ y.sign, x.zero | y.zero, x.inf | y.inf
    xsig, ysig, exp, xlz, ylz, sign, zero, inf, nan, nan_bits, *carry = pipe.cut(
        xsig, ysig, exp, xlz, ylz, sign, zero, inf, nan, nan_bits, *carry
    )
    sig = wire(m, xsig * ysig)
    # The exponents of both normalisations, beside the multiplier.
    exp = wire(m, exp - xlz - ylz)
    exp_hi, exp_lo = Mux(zero, 1, exp), Mux(zero, 1, exp - 1)
    sig, exp_hi, exp_lo, sign, zero, inf, nan, nan_bits, *carry = pipe.cut(
        sig, exp_hi, exp_lo, sign, zero, inf, nan, nan_bits, *carry
    )
    top = sig[-1]
    product = Unpacked(
        sign=sign,
        exp=wire(m, Mux(top, exp_hi, exp_lo)),
        sig=wire(m, Mux(top, sig, sig << 1)[: len(sig)]),
        zero=zero,
        inf=inf,
        nan=Const(0, 1),
        bits=Const(0, FP32.width),
    )
    return product, [(nan_bits, nan)], carry


def accumulator_bits(dtype: str, acc_bits: int | None = None, acc_format: str = "wide") -> int:
    """Validated accumulator width: that of
    :func:`~focus_hw.formats.accumulator_format` by default; int8 allows 16..32.
    A float accumulator's width is its format's (chosen by ``acc_format``)."""
    full = accumulator_format(dtype, acc_format)
    if acc_bits is None or (full.is_float and acc_bits == full.bits):
        return full.bits
    if full.is_float:
        raise ValueError(
            f"acc_bits={acc_bits!r}: {dtype} with acc_format={acc_format!r} accumulates "
            f"in {full.bits}-bit {full.name} (acc_format chooses a float accumulator)"
        )
    if (
        isinstance(acc_bits, bool)
        or not isinstance(acc_bits, int)
        or not 16 <= acc_bits <= full.bits
    ):
        raise ValueError(
            f"acc_bits={acc_bits!r} must be an integer in 16..{full.bits} "
            "(one int8 x int8 product needs 16 bits)"
        )
    return acc_bits


class MAC(wiring.Component):
    """Multiply-accumulate ``out = acc + a*b`` for one operand format.

    * ``"int8"``: int8 x int8 products added to an ``acc_bits``-bit
      accumulator (default 32: int32), two's-complement wrap-around modulo
      ``2**acc_bits``. The systolic array uses narrower accumulators in its
      upper rows, where a partial sum cannot need more bits
      (:func:`~focus_hw.arith.int8.int_sum_bits`).
    * ``"fp16"`` / ``"bf16"``, ``acc_format="wide"``: both operands widened
      to fp32 (exact), their product rounded to nearest even in fp32 (always
      exact for fp16), then the fp32 sum rounded to nearest even -- bit for
      bit numpy's ``np.float32(acc) + np.float32(a) * np.float32(b)`` on
      scalars.
    * ``"fp16"`` / ``"bf16"``, ``acc_format="operand"``: ``acc`` and ``out``
      in the operand format; the product rounded to nearest even in it, then
      the sum -- numpy's ``t(acc) + t(a) * t(b)`` on scalars of the operand
      type ``t`` (subnormals kept, overflow to infinity).

    Float NaN priority (numpy scalars on x86): ``b``, ``a``, the default NaN
    of ``0 * inf``, ``acc``, the default NaN of ``inf - inf``; NaNs are quieted.

    ``pipeline`` register stages (clock-enabled by ``en``), spread over the
    :func:`mac_cuts` cut points, give ``latency == pipeline`` cycles from
    inputs to ``out``. ``acc_bits``
    (int8 only, 16..32, default 32) is the width of ``acc`` and ``out``.
    """

    def __init__(
        self,
        dtype: str,
        pipeline: int = 0,
        acc_bits: int | None = None,
        *,
        acc_format: str = "wide",
    ):
        if not isinstance(dtype, str) or dtype not in OPERAND_FORMATS:
            raise ValueError(
                f"unknown MAC dtype {dtype!r}; expected one of {sorted(OPERAND_FORMATS)}"
            )
        operand_bits = OPERAND_FORMATS[dtype].bits
        self.dtype = dtype
        self.acc_format = acc_format
        self.pipeline = self.latency = check_pipeline(pipeline)
        acc_bits = accumulator_bits(dtype, acc_bits, acc_format)
        super().__init__(
            {
                "a": In(operand_bits),
                "b": In(operand_bits),
                "acc": In(acc_bits),
                "en": In(1, init=1),
                "out": Out(acc_bits),
            }
        )

    def elaborate(self, platform):
        m = Module()
        if not operand_format(self.dtype).is_float:
            pipe = Pipeline(m, self.pipeline, mac_cuts(self.dtype), self.en)
            (out,) = pipe.finish(int_mac(pipe, self.a, self.b, self.acc, len(self.out)))
            m.d.comb += self.out.eq(out)
            return m
        fmt = float_format(self.dtype)
        acc_fmt = accumulator_format(self.dtype, self.acc_format).layout
        pipe = Pipeline(m, self.pipeline, mac_cuts(self.dtype, self.acc_format), self.en)
        x, y = unpack(m, fmt, self.a), unpack(m, fmt, self.b)
        if acc_fmt == FP32 and product_is_exact(fmt):
            product, candidates, (acc,) = exact_product(m, fmt, pipe, x, y, (self.acc,))
        else:
            bits, (acc,) = mul_core(m, fmt, acc_fmt, pipe, x, y, (self.acc,))
            bits, acc = pipe.cut(bits, acc)
            product, candidates = unpack(m, acc_fmt, bits), []
        out = add_core(m, acc_fmt, pipe, unpack(m, acc_fmt, acc), product, candidates)
        m.d.comb += self.out.eq(pipe.finish(out)[0])
        return m
