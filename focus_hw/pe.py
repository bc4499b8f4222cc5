"""One weight-stationary processing element of the systolic array."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .arith import MAC
from .arith.mac import accumulator_bits
from .formats import OPERAND_FORMATS

__all__ = ["PE", "pe_signature"]


def pe_signature(
    dtype: str,
    *,
    acc_format: str = "wide",
    psum_bits: int | None = None,
    psum_in_bits: int | None = None,
    first_row: bool = False,
    last_col: bool = False,
) -> wiring.Signature:
    """Ports of :class:`PE` (validated); the arguments are the PE's own."""
    if not isinstance(dtype, str) or dtype not in OPERAND_FORMATS:
        raise ValueError(f"PE: dtype={dtype!r} must be one of {sorted(OPERAND_FORMATS)}")
    bits = accumulator_bits(dtype, psum_bits, acc_format)
    in_bits = bits if psum_in_bits is None else accumulator_bits(dtype, psum_in_bits, acc_format)
    if in_bits > bits:
        raise ValueError(f"PE: psum_in_bits={in_bits} must not exceed psum_bits={bits}")
    operand_bits = OPERAND_FORMATS[dtype].bits
    members = {
        "en": In(1, init=1),
        "a_in": In(operand_bits),
        "swap_in": In(1),
        "psum_in": In(in_bits),
        "a_out": Out(operand_bits),
        "swap_out": Out(1),
        "psum_out": Out(bits),
        "w_we": In(1),
        "w_data": In(operand_bits),
    }
    if first_row:
        del members["psum_in"]
    if last_col:
        del members["a_out"], members["swap_out"]
    return wiring.Signature(members)


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
        Operand format, one of :data:`focus_hw.formats.OPERAND_FORMATS`.
    mac_pipeline : int
        Pipeline stages inside the :class:`~focus_hw.arith.MAC`.
    acc_format : str
        The MAC's accumulator (``FocusParams.acc_format``): ``"wide"`` (fp32,
        int32) or ``"operand"`` (partial sums in the operand format; floats).
    psum_bits, psum_in_bits : int or None
        int8 only: widths of ``psum_out`` (the MAC's accumulator) and of
        ``psum_in`` (sign-extended into it; at most ``psum_bits``). Default:
        the full accumulator (32). The systolic array sizes them per row.
    first_row, last_col : bool
        Position in the systolic array: the first row has no ``psum_in`` (its
        partial sum starts at zero), the last column no ``a_out``/``swap_out``.

    Members
    -------
    en : ``In(1)``
        Clock enable of every register except the shadow weight (global stall).
    a_in, swap_in : ``In(operand_bits)``, ``In(1)``
        Activation (and its tile-start flag) from the PE on the left.
    a_out, swap_out : ``Out(operand_bits)``, ``Out(1)``
        The same, registered, to the PE on the right (1 cycle; absent in the
        last column).
    psum_in : ``In(psum_in_bits)``
        Partial sum from the PE above (absent in the first row: ``0``).
    psum_out : ``Out(psum_bits)``
        ``psum_in + a_in * weight`` (modulo ``2**psum_bits`` for int8),
        ``mac_pipeline + 1`` cycles later.
    w_we, w_data : ``In(1)``, ``In(operand_bits)``
        Shadow weight write.
    """

    def __init__(
        self,
        dtype: str,
        mac_pipeline: int = 0,
        *,
        acc_format: str = "wide",
        psum_bits: int | None = None,
        psum_in_bits: int | None = None,
        first_row: bool = False,
        last_col: bool = False,
    ):
        super().__init__(
            pe_signature(
                dtype,
                acc_format=acc_format,
                psum_bits=psum_bits,
                psum_in_bits=psum_in_bits,
                first_row=first_row,
                last_col=last_col,
            )
        )
        self.dtype = dtype
        self.acc_format = acc_format
        self.mac_pipeline = mac_pipeline
        self.psum_bits = len(self.psum_out)
        self.first_row, self.last_col = first_row, last_col

    def elaborate(self, platform):
        m = Module()
        acc_bits = None if OPERAND_FORMATS[self.dtype].is_float else self.psum_bits
        m.submodules.mac = mac = MAC(
            self.dtype, self.mac_pipeline, acc_bits, acc_format=self.acc_format
        )
        active = Signal.like(self.w_data)
        shadow = Signal.like(self.w_data)
        m.d.comb += [
            mac.a.eq(self.a_in),
            mac.b.eq(Mux(self.swap_in, shadow, active)),
            mac.acc.eq(0 if self.first_row else self.psum_in.as_signed()),
            mac.en.eq(self.en),
        ]
        with m.If(self.en):
            m.d.sync += self.psum_out.eq(mac.out)
            if not self.last_col:
                m.d.sync += [self.a_out.eq(self.a_in), self.swap_out.eq(self.swap_in)]
            with m.If(self.swap_in):
                m.d.sync += active.eq(shadow)
        with m.If(self.w_we):
            m.d.sync += shadow.eq(self.w_data)
        return m
