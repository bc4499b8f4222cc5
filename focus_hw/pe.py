"""One weight-stationary processing element of the systolic array."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .arith import MAC
from .params import DTYPES

__all__ = ["PE"]


class PE(wiring.Component):
    """Weight-stationary PE: ``psum_out = psum_in + a_in * weight``.

    Holds an *active* weight and a *shadow* weight (double buffering). The
    shadow is written whenever ``w_we`` is high, independently of ``en``. A
    high ``swap_in`` marks the first activation of a new weight tile: that
    activation already multiplies the shadow weight, and the shadow becomes the
    active weight at the end of the cycle.

    Parameters
    ----------
    dtype : str
        Operand format, one of :data:`focus_hw.DTYPES`.
    mac_pipeline : int
        Pipeline stages inside the :class:`~focus_hw.arith.MAC`.

    Members
    -------
    en : ``In(1)``
        Clock enable of every register except the shadow weight (global stall).
    a_in, swap_in : ``In(operand_bits)``, ``In(1)``
        Activation (and its tile-start flag) from the PE on the left.
    a_out, swap_out : ``Out(operand_bits)``, ``Out(1)``
        The same, registered, to the PE on the right (1 cycle).
    psum_in : ``In(acc_bits)``
        Partial sum from the PE above (``0`` at the top row).
    psum_out : ``Out(acc_bits)``
        ``psum_in + a_in * weight``, ``mac_pipeline + 1`` cycles later.
    w_we, w_data : ``In(1)``, ``In(operand_bits)``
        Shadow weight write.
    """

    def __init__(self, dtype: str, mac_pipeline: int = 0):
        if dtype not in DTYPES:
            raise ValueError(f"PE: dtype={dtype!r} must be one of {sorted(DTYPES)}")
        self.dtype = dtype
        self.mac_pipeline = mac_pipeline
        operand_bits, acc_bits = DTYPES[dtype]
        super().__init__({
            "en": In(1, init=1),
            "a_in": In(operand_bits),
            "swap_in": In(1),
            "psum_in": In(acc_bits),
            "a_out": Out(operand_bits),
            "swap_out": Out(1),
            "psum_out": Out(acc_bits),
            "w_we": In(1),
            "w_data": In(operand_bits),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mac = mac = MAC(self.dtype, self.mac_pipeline)
        active = Signal.like(self.w_data)
        shadow = Signal.like(self.w_data)
        m.d.comb += [
            mac.a.eq(self.a_in),
            mac.b.eq(Mux(self.swap_in, shadow, active)),
            mac.acc.eq(self.psum_in),
            mac.en.eq(self.en),
        ]
        with m.If(self.en):
            m.d.sync += [
                self.a_out.eq(self.a_in),
                self.swap_out.eq(self.swap_in),
                self.psum_out.eq(mac.out),
            ]
            with m.If(self.swap_in):
                m.d.sync += active.eq(shadow)
        with m.If(self.w_we):
            m.d.sync += shadow.eq(self.w_data)
        return m
