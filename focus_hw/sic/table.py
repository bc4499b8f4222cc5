"""The SIC's storage: the similarity table (a line buffer of recent vectors)
and the similarity map (token -> root), both ``lib.memory`` behind streams."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..params import FocusParams
from .argmax import index_shape, position_shape
from .dot import vector_shape

__all__ = [
    "StreamMemory",
    "SimilarityTable",
    "SimilarityMap",
    "table_entry",
    "map_entry",
    "serve_reads",
    "banked",
]


def table_entry(params: FocusParams) -> data.StructLayout:
    """What the similarity table keeps of a vector of the current pass."""
    return data.StructLayout(
        {
            "pos": position_shape(params),  # tag: which token this entry holds
            "data": vector_shape(params),
            "n2": 32,  # fp32 squared magnitude
            "zero": 1,
            "root_pos": position_shape(params),
            "root_idx": index_shape(params),
        }
    )


def map_entry(params: FocusParams) -> data.StructLayout:
    """The similarity map's record of a token of a pass."""
    return data.StructLayout(
        {
            "pos": position_shape(params),
            "zero": 1,
            "similar": 1,
            "root_pos": position_shape(params),
            "root_idx": index_shape(params),
        }
    )


def banked(idx, bank, params: FocusParams):
    """Address of token index ``idx`` in ``bank`` (0 or 1) of a two-pass
    memory of ``2 * m_tile`` entries: ``bank * m_tile + idx``, the bank the
    top bit when ``m_tile`` is a power of two."""
    if params.m_tile == 1 << params.index_bits:
        return Cat(idx, bank)
    return idx + bank * params.m_tile


def serve_reads(m, port, read, data) -> None:
    """Serve a ``read`` (address) / ``data`` stream pair from the synchronous
    ``lib.memory`` read ``port``: ``data`` comes one cycle after its address
    is taken and holds until taken (a write in between is not seen);
    ``port.en`` is high in the cycles an address is taken."""
    full = Signal()
    m.d.comb += [
        read.ready.eq(~full | data.ready),
        port.addr.eq(read.payload),
        port.en.eq(read.valid & read.ready),
        data.valid.eq(full),
        data.payload.eq(port.data),
    ]
    with m.If(port.en):
        m.d.sync += full.eq(1)
    with m.Elif(data.ready):
        m.d.sync += full.eq(0)


class StreamMemory(wiring.Component):
    """A single-port-read, single-port-write ``lib.memory`` behind streams.

    ``write`` (always ready) stores ``entry`` at ``addr``. ``read`` takes an
    address; ``data`` gives the entry one cycle later and holds it until
    taken (a write to the same address in between is not seen). ``reads``
    and ``writes`` count the accesses (for simulation and the SRAM model).
    """

    def __init__(self, shape, depth: int):
        self.shape, self.depth = shape, depth
        addr = unsigned(max(1, (depth - 1).bit_length()))
        super().__init__(
            {
                "write": In(
                    stream.Signature(
                        data.StructLayout({"addr": addr, "entry": shape}), always_ready=True
                    )
                ),
                "read": In(stream.Signature(addr)),
                "data": Out(stream.Signature(shape)),
                "reads": Out(32),
                "writes": Out(32),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=self.shape, depth=self.depth, init=[])
        wp = mem.write_port()
        rp = mem.read_port()
        m.d.comb += [
            wp.addr.eq(self.write.payload.addr),
            wp.data.eq(self.write.payload.entry),
            wp.en.eq(self.write.valid),
        ]
        serve_reads(m, rp, self.read, self.data)
        with m.If(rp.en):
            m.d.sync += self.reads.eq(self.reads + 1)
        with m.If(self.write.valid):
            m.d.sync += self.writes.eq(self.writes + 1)
        return m


class SimilarityTable(StreamMemory):
    """The layouter's line buffer: the last :attr:`FocusParams.sic_table_depth`
    token positions of the current pass, addressed by position modulo the
    depth and tagged with the position, so a block-window candidate is found
    (or known absent) in one read without clearing the table between passes."""

    def __init__(self, params: FocusParams):
        super().__init__(table_entry(params), params.sic_table_depth)


class SimilarityMap(StreamMemory):
    """Decision and root of every token of two passes: ``2 * m_tile`` deep,
    addressed by the token's index in its pass with the pass's bank on top."""

    def __init__(self, params: FocusParams):
        super().__init__(map_entry(params), 2 * params.m_tile)
