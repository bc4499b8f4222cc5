"""Memories with several write ports on FPGAs: banks and a live-value table.

FPGA RAM has few ports per block (ECP5: ``DP16KD`` two read/write ports,
``TRELLIS_DPR16X4`` one write and one asynchronous read port), so Yosys
builds a ``lib.memory.Memory`` with several write ports from flip-flops and
multiplexers. :class:`LvtMemory` builds it from one-write, one-read memories
instead: one bank per write port, a copy of each bank per read port, and a
live-value table (LVT) naming the bank that holds each row's last write
(LaForest and Steffan, FPGA 2010).

The lowering is chosen by the target, through Amaranth's platform override
of ``lib.memory.Memory`` (``platform.get_memory``): :class:`LvtPlatform`,
mixed into every board platform of the FPGA build
(:meth:`focus_hw.fpga.boards.Board.make_platform`), which elaborates the
design for that platform anyway. So no option threads through the
accelerator, the design keeps plain ``Memory`` instances, and whatever
elaborates without a platform (simulation, the formal proofs, the ASIC area
flow in ``synth/``, which prices a memory's bits as SRAM) keeps the single
memory the design describes.
"""

from __future__ import annotations

from amaranth.hdl import Array, Elaboratable, Module, Mux, Signal, Value
from amaranth.lib import memory

__all__ = ["LvtMemory", "LvtPlatform"]


class LvtMemory(Elaboratable):
    """The ports of ``memory`` (a :class:`~amaranth.lib.memory.Memory`) on
    one-write, one-read ``lib.memory`` banks: cycle for cycle and bit for bit
    what ``memory`` does.

    Write port ``w`` writes every copy of bank ``w`` (one copy per read port)
    and records ``w`` for its row in the LVT: ``depth`` flip-flop words of
    ``ceil_log2(write ports)`` bits, not reset (like the memory's rows; every
    bank starts with the memory's initial contents, the LVT names bank 0).
    A read port reads its copy of every bank and, in the same cycle, the LVT;
    its data is the copy of the bank the LVT named. Where the read port is
    transparent for write port ``w``, so are its copy of bank ``w`` and its
    LVT read (a write of the row read by ``w`` names ``w``): a transparent
    read returns the row's new data, a non-transparent one the old data.

    Two writes to one row in one cycle (which ``lib.memory`` leaves open in
    hardware: it gives Yosys no priority between write ports): the LVT
    records the higher-numbered port, so its data wins, as in Amaranth's
    simulation of the memory.

    Restrictions: write ports in one clock domain, without granularity.
    """

    def __init__(self, memory: memory.Memory):
        self.memory = memory

    def elaborate(self, platform):
        src = self.memory
        writes = src.write_ports
        if len({wp.domain for wp in writes}) > 1:
            raise ValueError(f"LvtMemory: {src!r}: write ports in several clock domains")
        if any(wp.signature.granularity is not None for wp in writes):
            raise ValueError(f"LvtMemory: {src!r}: write ports with granularity")
        m = Module()
        domain = writes[0].domain
        # The LVT: the write port that wrote each row last.
        live = [
            Signal(range(len(writes)), reset_less=True, name=f"live{a}") for a in range(src.depth)
        ]
        for w, wp in enumerate(writes):  # in port order: a later port's write wins
            with m.If(wp.en):
                with m.Switch(wp.addr):
                    for a, cell in enumerate(live):
                        with m.Case(a):
                            m.d[domain] += cell.eq(w)

        for r, rp in enumerate(src.read_ports):
            seen = [any(wp is t for t in rp.transparent_for) for wp in writes]
            copies = []
            for w, wp in enumerate(writes):
                bank = m.submodules[f"bank{w}_read{r}"] = memory.Memory(
                    shape=src.shape, depth=src.depth, init=src.init, attrs=src.attrs
                )
                bank_w = bank.write_port(domain=domain)
                bank_r = bank.read_port(
                    domain=rp.domain, transparent_for=[bank_w] if seen[w] else []
                )
                m.d.comb += [
                    bank_w.addr.eq(wp.addr),
                    bank_w.data.eq(wp.data),
                    bank_w.en.eq(wp.en),
                    bank_r.addr.eq(rp.addr),
                ]
                if rp.domain != "comb":
                    m.d.comb += bank_r.en.eq(rp.en)
                copies.append(Value.cast(bank_r.data))

            named = Array(live)[rp.addr]  # the bank holding the row read
            if rp.domain == "comb":
                sel = named
            else:
                for w, wp in enumerate(writes):
                    if seen[w]:
                        named = Mux(wp.en & (wp.addr == rp.addr), w, named)
                sel = Signal(range(len(writes)), reset_less=True, name=f"sel{r}")
                with m.If(rp.en):
                    m.d[rp.domain] += sel.eq(named)
            m.d.comb += Value.cast(rp.data).eq(Array(copies)[sel])
        return m


class LvtPlatform:
    """Platform mixin: its ``get_memory`` (the ``lib.memory.Memory``
    override) lowers a memory with several write ports to an
    :class:`LvtMemory` and leaves the others to Yosys, which maps them to
    RAM itself."""

    def get_memory(self, mem: memory.Memory):
        if len(mem.write_ports) > 1:
            return LvtMemory(mem)
        return mem.elaborate(None)  # the memory as it elaborates without the override
