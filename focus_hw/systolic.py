"""The weight-stationary systolic array with stream interfaces."""

from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .arith.int8 import int_sum_bits
from .params import FocusParams
from .pe import PE, pe_signature

__all__ = [
    "SystolicArray",
    "psum_bits",
    "pe_psum_widths",
    "pe_config",
    "pe_classes",
    "pe_class_modules",
]


def psum_bits(params: FocusParams, k: int) -> int:
    """Width of row ``k``'s partial sum (``psum_out`` of PE row ``k``).

    int8: the partial sum below row ``k`` is a sum of ``k + 1`` int8 x int8
    products starting from 0 at the top, so it lies in
    ``[(k+1) * -16256, (k+1) * 16384]`` and
    :func:`~focus_hw.arith.int8.int_sum_bits` bits hold it exactly, capped at
    32 (row 0: 16 bits, rows 1-2: 17, rows 3-6: 18, ... + 1 bit per doubling).
    No partial sum can overflow, so the narrow rows are bit-exact, and the
    int32 output is the bottom row sign-extended. Floats: the accumulator's
    width (:attr:`FocusParams.acc_bits`: fp32, or the operand format's).
    """
    if params.is_float:
        return params.acc_bits
    return int_sum_bits(k + 1, params.acc_bits)


def pe_psum_widths(params: FocusParams) -> list[tuple[int, int] | None]:
    """``(psum_in_bits, psum_bits)`` of the PEs in each row (``None``: the
    PE's defaults, for floats). Row 0's input is the constant 0."""
    if params.is_float:
        return [None] * params.rows
    return [(psum_bits(params, max(k - 1, 0)), psum_bits(params, k)) for k in range(params.rows)]


def pe_config(params: FocusParams, k: int, c: int) -> dict:
    """Keyword arguments of ``PE(params.dtype, params.mac_pipeline, **kw)`` at
    row ``k``, column ``c``: accumulator format, partial-sum widths and edge
    position."""
    kw = {"acc_format": params.acc_format, "first_row": k == 0, "last_col": c == params.cols - 1}
    widths = pe_psum_widths(params)[k]
    if widths is not None:
        kw.update(psum_in_bits=widths[0], psum_bits=widths[1])
    return kw


def pe_classes(params: FocusParams) -> list[list[int]]:
    """Class index of every PE (``[k][c]``): PEs of one class have equal
    :func:`pe_config`, so one Verilog module serves them all. Classes are
    numbered in row-major order of first appearance."""
    index: dict[tuple, int] = {}
    return [
        [
            index.setdefault(tuple(sorted(pe_config(params, k, c).items())), len(index))
            for c in range(params.cols)
        ]
        for k in range(params.rows)
    ]


def pe_class_modules(params: FocusParams, prefix: str | None) -> dict:
    """Verilog module name -> fresh :class:`PE` of each PE class an array
    shell with module name ``prefix`` instantiates (``None``: none)."""
    if prefix is None:
        return {}
    modules = {}
    for k, row in enumerate(pe_classes(params)):
        for c, i in enumerate(row):
            name = f"{prefix}_{i}"
            if name not in modules:
                modules[name] = PE(params.dtype, params.mac_pipeline, **pe_config(params, k, c))
    return modules


def _delay(m, value, depth: int, en, name: str) -> list:
    """Taps ``[value, value delayed 1, ..., value delayed depth]`` of a shift
    register that moves only while ``en`` is high."""
    taps = [value]
    for i in range(depth):
        reg = Signal(Value.cast(value).shape(), name=f"{name}_d{i + 1}")
        with m.If(en):
            m.d.sync += reg.eq(taps[-1])
        taps.append(reg)
    return taps


class SystolicArray(wiring.Component):
    """``params.rows`` x ``params.cols`` weight-stationary systolic array.

    PE(k, c) holds weight ``W[k, c]``; activation ``k`` of each row enters PE
    row ``k`` and moves right, partial sums start at ``0`` (+0.0 for floats)
    above row 0 and move down, so column ``c`` of an output row is, in this
    order, ``acc = 0; for k in 0..rows-1: acc = acc + a[k] * W[k, c]`` with the
    :class:`~focus_hw.arith.MAC`'s rounding, in the accumulator format
    :attr:`FocusParams.acc` (``acc_format``). Operands and accumulators travel
    as raw bit patterns (fp16/bf16/fp32, or int8/int32 two's complement).
    int8 partial sums are only :func:`psum_bits` wide in row ``k`` (exact:
    they cannot overflow) and sign-extended to int32 at the output.

    Parameters
    ----------
    params : FocusParams
        ``rows``, ``cols``, ``dtype``, ``acc_format`` and ``mac_pipeline`` are used.
    pe_modules : str or None
        ``None``: every PE is an Amaranth submodule (one flat design, which
        Amaranth elaborates PE by PE). A name prefix: the array is a *shell*
        whose PE(k, c) is an ``Instance`` of the Verilog module
        ``f"{pe_modules}_{i}"``, ``i = pe_classes(params)[k][c]``;
        :meth:`instanced_modules` gives those modules' components (each to be
        converted once). Both designs behave identically.

    Members
    -------
    act : ``In(stream.Signature(StructLayout({"data": ArrayLayout(operand, rows), "swap": 1})))``
        Activation rows, one per beat; ``data[k]`` meets weight row ``k``
        (lane ``k`` is skewed internally by ``k * (mac_pipeline + 1)``
        cycles). ``swap`` marks the first row of a weight tile: from this row
        on the array uses the weights loaded last (the shadow becomes active,
        travelling through the array with the row). A beat with ``swap`` set is
        held off (``ready`` low) until a complete shadow tile has been loaded;
        ``ready`` also drops while the array stalls. ``ready`` depends on
        ``payload.swap`` and on ``out.ready``.
    weight : ``In(stream.Signature(ArrayLayout(operand, cols)))``
        Weight rows: ``rows`` beats per tile, beat ``j`` is weight row ``j``
        (``W[j, 0..cols-1]``), written into the shadow registers. After the
        last beat the tile is complete and ``ready`` stays low until a ``swap``
        row takes it; then each weight row becomes writable again once the
        swap has passed it (see :func:`focus_hw.timing.reload_cycles`), so the
        next tile loads while the current one streams. Weight loading goes on
        while the array is stalled.
    out : ``Out(stream.Signature(ArrayLayout(accumulator, cols)))``
        Output rows, one per activation row, in order, each valid as a whole
        (de-skewed) :func:`focus_hw.timing.array_latency` cycles after its
        activation row was accepted. ``valid`` never depends on ``ready``.

    The array is one pipeline with a global clock enable
    ``~out.valid | out.ready``: while a valid output row is not taken, every
    register except the shadow weights holds and ``act.ready`` is low, so no
    row is lost or duplicated.

    Reset state: active and shadow weights are zero and no tile is loaded, so
    the first activation row must have ``swap`` set. A tile with fewer than
    ``rows`` reduction rows (K < rows) loads zero weights into rows
    ``K..rows-1`` and drives those activation lanes with zeros (a zero weight
    times a finite activation adds ``+0``, which leaves every accumulator
    unchanged; an infinite activation would give NaN); unused columns
    (N < cols) get zero weights and their outputs are ignored.
    """

    def __init__(self, params: FocusParams, *, pe_modules: str | None = None):
        if not isinstance(params, FocusParams):
            raise TypeError(
                f"SystolicArray: params must be FocusParams, not {type(params).__name__}"
            )
        self.params = params
        self.pe_modules = pe_modules
        operand, acc = params.operand_bits, params.acc_bits
        act_layout = data.StructLayout(
            {
                "data": data.ArrayLayout(operand, params.rows),
                "swap": 1,
            }
        )
        super().__init__(
            {
                "act": In(stream.Signature(act_layout)),
                "weight": In(stream.Signature(data.ArrayLayout(operand, params.cols))),
                "out": Out(stream.Signature(data.ArrayLayout(acc, params.cols))),
            }
        )

    def instanced_modules(self) -> dict:
        """Verilog module name -> fresh :class:`PE` of each class the shell
        instantiates (empty for the flat design)."""
        return pe_class_modules(self.params, self.pe_modules)

    def _pe(self, m, k: int, c: int, index: int):
        """PE(k, c) added to ``m``: a submodule, or an Instance of its class's
        module; returns its ports."""
        p, name, config = self.params, f"pe_{k}_{c}", pe_config(self.params, k, c)
        if self.pe_modules is None:
            m.submodules[name] = pe = PE(p.dtype, p.mac_pipeline, **config)
            return pe
        signature = pe_signature(p.dtype, **config)
        ports = signature.create(path=(name,))
        conns = {
            ("i_" if member.flow == In else "o_") + "__".join(path): value
            for path, member, value in signature.flatten(ports)
        }
        m.submodules[name] = Instance(
            f"{self.pe_modules}_{index}", i_clk=ClockSignal(), i_rst=ResetSignal(), **conns
        )
        return ports

    def elaborate(self, platform):
        p = self.params
        rows, cols, lat = p.rows, p.cols, p.mac_pipeline + 1
        m = Module()

        en = Signal()
        m.d.comb += en.eq(~self.out.valid | self.out.ready)

        # -- weight loading into the shadow registers -----------------------
        shadow_full = Signal()
        load_row = Signal(range(rows))
        pending = Signal(rows)  # swap wave has not yet passed weight row j
        m.d.comb += self.weight.ready.eq(~shadow_full & ~pending.bit_select(load_row, 1))
        w_accept = self.weight.valid & self.weight.ready
        with m.If(w_accept):
            with m.If(load_row == rows - 1):
                m.d.sync += [load_row.eq(0), shadow_full.eq(1)]
            with m.Else():
                m.d.sync += load_row.eq(load_row + 1)

        # -- activation input and skew --------------------------------------
        m.d.comb += self.act.ready.eq(en & (~self.act.p.swap | shadow_full))
        accept = Signal()
        swap = Signal()
        m.d.comb += [
            accept.eq(self.act.valid & self.act.ready),
            swap.eq(accept & self.act.p.swap),
        ]
        with m.If(swap):
            m.d.sync += [shadow_full.eq(0), pending.eq((1 << rows) - 1)]
        swap_taps = _delay(m, swap, (rows - 1) * lat, en, "swap")

        classes = pe_classes(p)
        grid = [[self._pe(m, k, c, classes[k][c]) for c in range(cols)] for k in range(rows)]
        for k in range(rows):
            lane = _delay(m, self.act.p.data[k], k * lat, en, f"lane{k}")[-1]
            for c in range(cols):
                pe = grid[k][c]
                m.d.comb += [
                    pe.en.eq(en),
                    pe.a_in.eq(lane if c == 0 else grid[k][c - 1].a_out),
                    pe.swap_in.eq(swap_taps[k * lat] if c == 0 else grid[k][c - 1].swap_out),
                    pe.w_we.eq(w_accept & (load_row == k)),
                    pe.w_data.eq(self.weight.p[c]),
                ]
                if k > 0:
                    m.d.comb += pe.psum_in.eq(grid[k - 1][c].psum_out.as_signed())
            # The wave leaves weight row k: its shadow may be rewritten.
            # (After the set above, so a wave entering and leaving in the same
            # cycle -- cols == 1, k == 0 -- leaves the bit clear.)
            with m.If(en & grid[k][cols - 1].swap_in):
                m.d.sync += pending[k].eq(0)

        # -- output de-skew and valid ---------------------------------------
        valid = _delay(m, accept, rows * lat + cols - 1, en, "valid")[-1]
        m.d.comb += self.out.valid.eq(valid)
        for c in range(cols):
            psum = grid[rows - 1][c].psum_out.as_signed()  # sign-extended to acc_bits
            m.d.comb += self.out.p[c].eq(_delay(m, psum, cols - 1 - c, en, f"col{c}")[-1])
        return m
