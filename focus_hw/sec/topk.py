"""Top-k threshold search by radix select over order-preserving integer keys.

:class:`RadixSelect` finds, for ``n`` unsigned keys held in a memory and a
count ``k``, the threshold key ``T`` (the k-th largest key) and ``ties``, how
many tokens of key ``T`` are kept (the lowest-indexed ones, see
:class:`~focus_hw.sec.encoder.OffsetEncoder`), so that ``#(key > T) + ties
== k``.

Algorithm: the ``key_bits`` are cut into ``passes = ceil(key_bits /
digit_bits)`` digits, most significant first. Pass ``p`` streams all ``n``
keys once (one per cycle) and counts, in a ``2**digit_bits``-bin histogram
held in ``lib.memory`` (read-modify-write, one update per cycle, the read
port transparent to the write port so equal consecutive digits accumulate),
the digit ``p`` of the keys whose higher digits equal the threshold's digits
chosen so far. A scan of the bins from the highest down accumulates counts
until they reach the still-missing count ``rem``; that bin is digit ``p`` of
``T`` and the counts of the higher bins leave ``rem``. The scan writes each bin
back to zero, so the histogram is clear for the next pass (and run).

Cycles (closed form, data independent; part of :func:`focus_hw.timing.sec_cycles`):
per pass ``n`` key reads, 2 cycles to drain the read-modify-write pipeline,
``2**digit_bits`` bin reads and 1 cycle for the last bin: ``done`` pulses
``passes * (n + 2**digit_bits + 3) + 1`` cycles after the ``start`` cycle.
With 16-bit keys and 8-bit digits that is ``2n + 519``: 33 287 cycles for
16 384 tokens, whatever ``k``; a sorting network would need ``O(n log^2 n)``
comparators and a heap ``O(k)`` registers. The digit width trades passes
(``n`` cycles each) against the scan (``2**d``): 4-bit digits would take
``4n + 77``, one 16-bit digit ``n + 65 540`` and a 1 Mbit histogram.

Area: the histogram (``2**digit_bits`` counters of ``bits(n_max)`` bits:
256 x 15 bits at 16 384 tokens), one adder and one comparator of that width,
a key comparator for the prefix match, and a few counters. Nothing scales
with ``k``; only counter widths grow (logarithmically) with ``n_max``.

Proved with SymbiYosys for up to 6 tokens of 3- and 4-bit keys
(``tests/test_formal.py``), together with the encoder: the emitted indices are
exactly the top ``k``, lower index first among equal keys.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..arith.formats import float_format

__all__ = ["DIGIT_BITS", "RadixSelect", "order_key", "key_of_bits", "digit_slices"]

#: Digit width of the radix select for float keys (2 passes over 16-bit keys).
DIGIT_BITS = 8


def order_key(fmt, bits):
    """Amaranth value: unsigned key of the raw ``fmt`` encoding ``bits`` whose
    integer order is the float order (``-0`` and ``+0`` get the same key; NaNs
    get keys above +inf or below -inf and must be flagged separately)."""
    fmt = float_format(fmt)
    w = fmt.width
    sign, magnitude = bits[w - 1], bits[: w - 1]
    negative = sign & (magnitude != 0)
    return Mux(negative, ~bits, Cat(magnitude, Const(1, 1)))


def key_of_bits(fmt, bits: int) -> int:
    """Python twin of :func:`order_key` (for tests and the simulator driver)."""
    fmt = float_format(fmt)
    top = 1 << (fmt.width - 1)
    magnitude = bits & (top - 1)
    if bits & top and magnitude:
        return ~bits & ((top << 1) - 1)
    return magnitude | top


def digit_slices(key_bits: int, digit_bits: int) -> list[tuple[int, int]]:
    """``(lo, hi)`` bit ranges of the digits, most significant first."""
    return [(max(0, hi - digit_bits), hi) for hi in range(key_bits, 0, -digit_bits)]


class RadixSelect(wiring.Component):
    """Threshold key and tie count of the top ``k`` of ``n`` keys (see module).

    Ports: ``start`` (pulse; ``n`` in ``[1, max_tokens]`` and ``k`` in
    ``[1, n]`` are sampled while busy and must stay constant), ``keys`` (a
    synchronous read port of the key memory, addresses ``0..n-1``),
    ``threshold`` and ``ties`` (valid from ``done`` until the next
    ``start``), ``done`` (one-cycle pulse), ``busy``.
    """

    def __init__(self, max_tokens: int, key_bits: int, digit_bits: int):
        if max_tokens < 1 or key_bits < 1 or digit_bits < 1:
            raise ValueError("RadixSelect: max_tokens, key_bits, digit_bits must be >= 1")
        self.max_tokens, self.key_bits = max_tokens, key_bits
        self.digit_bits = min(digit_bits, key_bits)
        self.slices = digit_slices(key_bits, self.digit_bits)
        count = range(max_tokens + 1)
        addr_width = max(1, (max_tokens - 1).bit_length())
        super().__init__(
            {
                "start": In(1),
                "n": In(count),
                "k": In(count),
                "keys": In(memory.ReadPort.Signature(addr_width=addr_width, shape=key_bits)),
                "threshold": Out(key_bits),
                "ties": Out(count),
                "done": Out(1),
                "busy": Out(1),
            }
        )

    @property
    def passes(self) -> int:
        return len(self.slices)

    def elaborate(self, platform):
        m = Module()
        bins = 1 << self.digit_bits
        count = range(self.max_tokens + 1)
        m.submodules.hist = hist = memory.Memory(shape=count, depth=bins, init=[])
        wr = hist.write_port()
        rd = hist.read_port(transparent_for=(wr,))

        index = Signal(range(self.max_tokens))
        rem = Signal(count)  # tokens still to choose among the prefix matches
        pass_ = Signal(range(self.passes))
        prefix = Signal(self.key_bits)  # threshold digits chosen so far (top bits)

        # -- histogram pipeline: key read -> (A) bin read -> (B) bin write ----
        a_valid, b_valid = Signal(), Signal()
        b_digit = Signal(self.digit_bits)
        key = self.keys.data
        digits = Array(key[lo:hi] for lo, hi in self.slices)
        matches = Array(
            (key[hi:] == prefix[hi:]) if hi < self.key_bits else Const(1) for _, hi in self.slices
        )
        count_in = Signal()
        m.d.comb += count_in.eq(a_valid & matches[pass_])
        m.d.sync += [b_valid.eq(count_in), b_digit.eq(digits[pass_])]

        # -- scan: bins from the top, (S) bin read -> (R) result --------------
        scan_addr, r_addr = Signal(self.digit_bits), Signal(self.digit_bits)
        r_valid, found = Signal(), Signal()
        cum, chosen_rem = Signal(count), Signal(count)
        chosen = Signal(self.digit_bits)
        total = Signal(range(2 * self.max_tokens + 1))
        hit = Signal()
        m.d.comb += [total.eq(cum + rd.data), hit.eq(r_valid & ~found & (total >= rem))]
        with m.If(hit):
            m.d.sync += [found.eq(1), chosen.eq(r_addr), chosen_rem.eq(rem - cum)]
        with m.Elif(r_valid & ~found):
            m.d.sync += cum.eq(total)
        final_digit = Mux(hit, r_addr, chosen)
        final_rem = Mux(hit, rem - cum, chosen_rem)

        # one port each: the histogram pipeline in HIST/DRAIN, the scan otherwise
        m.d.comb += [
            rd.addr.eq(Mux(a_valid, digits[pass_], scan_addr)),
            wr.addr.eq(Mux(b_valid, b_digit, r_addr)),
            wr.data.eq(Mux(b_valid, rd.data + 1, 0)),
            wr.en.eq(b_valid | r_valid),
            self.threshold.eq(prefix),
            self.ties.eq(rem),
        ]
        m.d.sync += [a_valid.eq(0), r_valid.eq(0)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [index.eq(0), pass_.eq(0), prefix.eq(0), rem.eq(self.k)]
                    m.next = "HIST"
            with m.State("HIST"):
                m.d.comb += [self.busy.eq(1), self.keys.addr.eq(index), self.keys.en.eq(1)]
                m.d.sync += [a_valid.eq(1), index.eq(index + 1)]
                with m.If(index == self.n - 1):
                    m.d.sync += index.eq(0)
                    m.next = "DRAIN_A"
            with m.State("DRAIN_A"):
                m.d.comb += self.busy.eq(1)
                m.next = "DRAIN_B"
            with m.State("DRAIN_B"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [scan_addr.eq(bins - 1), cum.eq(0), found.eq(0)]
                m.next = "SCAN"
            with m.State("SCAN"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [r_valid.eq(1), r_addr.eq(scan_addr), scan_addr.eq(scan_addr - 1)]
                with m.If(scan_addr == 0):
                    m.next = "SCAN_END"
            with m.State("SCAN_END"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += rem.eq(final_rem)
                for p, (lo, hi) in enumerate(self.slices):
                    with m.If(pass_ == p):
                        m.d.sync += prefix[lo:hi].eq(final_digit)
                with m.If(pass_ == self.passes - 1):
                    m.next = "DONE"
                with m.Else():
                    m.d.sync += pass_.eq(pass_ + 1)
                    m.next = "HIST"
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"
        return m
