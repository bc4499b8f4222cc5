"""The integrated Focus accelerator: a GEMM on SIC-compressed activations.

:class:`FocusAccelerator` is one Component: the weight-stationary
:class:`~focus_hw.SystolicArray`, the input buffer, the concentrate-out
ring, the :class:`~focus_hw.scatter.ScatterAccumulator` (with the output
buffer), the :class:`~focus_hw.sic.SIC` and the SEC
(:class:`~focus_hw.sec.SEC`, which prunes tokens at attention and has its
own ports), sequenced by five engines (:mod:`focus_hw.engines`) that hand
buffer halves and ring blocks on with a few named flags. Its schedule is
:func:`focus_hw.timing.focus_schedule`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .engines import (
    COUNT_BITS,
    DispatchEngine,
    DrainEngine,
    FeedEngine,
    LoadEngine,
    Walker,
    WriteEngine,
    block_layout,
    input_depth,
    input_row,
    keep_depth,
    map_layout,
    partial_row,
    position_layout,
    ring_depth,
    run_layout,
    vector_layout,
)
from .params import FocusParams
from .scatter import ScatterAccumulator
from .sec import SEC
from .sec.concentrator import sec_signature
from .sic import SIC
from .sic.sic import input_layout, output_layout
from .systolic import SystolicArray, pe_class_modules

__all__ = [
    "FocusAccelerator",
    "check_accelerator",
    "vector_layout",
    "map_layout",
    "position_layout",
    "dram_bytes",
    "COUNT_BITS",
    "STAT_NAMES",
]

#: The accelerator's counters (``Out(COUNT_BITS)`` members of the same names).
STAT_NAMES = (
    "compute_cycles",  # cycles the array takes an activation row
    "scatter_cycles",  # cycles the scatter takes a map beat
    "stall_cycles",  # cycles a loaded chunk waits for a free ring block
    # per SIC pass: the cycles from its first vector taken to its last, plus
    # the cycles its output phase is active (focus_hw.timing.sic_busy_cycles)
    "sic_cycles",
    "input_reads",
    "input_writes",
    "weight_writes",
    "concentrate_out_reads",
    "concentrate_out_writes",
    "output_reads",
    "output_writes",
    "similarity_table_reads",
    "similarity_table_writes",
    "similarity_map_reads",
    "similarity_map_writes",
    "scatter_map_reads",
    "scatter_map_writes",
)


def check_accelerator(params: FocusParams) -> FocusParams:
    """``params`` if the integrated design supports it, else ValueError: an
    output sub-tile's columns are one SIC vector and a K chunk is one input
    vector, so ``rows == cols == vector_size``; the SIC is float-only."""
    if not isinstance(params, FocusParams):
        raise TypeError(f"FocusAccelerator: params must be FocusParams, not {type(params)}")
    if not (params.rows == params.cols == params.vector_size):
        raise ValueError(
            f"FocusAccelerator: rows ({params.rows}), cols ({params.cols}) and vector_size "
            f"({params.vector_size}) must be equal (a K chunk and an output tile's columns "
            "are one SIC vector)"
        )
    if not params.is_float:
        raise ValueError(f"FocusAccelerator: dtype={params.dtype!r}: the SIC needs a float format")
    return params


def dram_bytes(params: FocusParams) -> dict[str, int]:
    """Bytes one item of each memory stream costs, by stream name:
    ``weights`` a weight row, ``vectors`` a unique vector (or an output row
    of a bypass run), ``map`` one token's entry of one chunk (written back
    in the same format), ``positions`` one token of an output tile."""
    return {
        "weights": params.cols * params.operand_bytes,
        "vectors": params.rows * params.operand_bytes,
        "map": -(-map_layout(params).elem_shape.size // 8),
        "positions": -(-position_layout(params).size // 8),
    }


class FocusAccelerator(wiring.Component):
    """The Focus accelerator running one GEMM on compressed activations.

    A run multiplies the ``tokens`` surviving tokens (SEC-pruned tokens are
    not sent) of a SIC-compressed input with a (K, N) weight matrix and
    streams the SIC-compressed output back. The loop nest is M tiles of
    ``m_tile`` tokens, then N groups of ``out_vectors`` sub-tiles of
    ``cols`` columns (the output buffer holds a group; the last group may
    have fewer), then K chunks of ``rows`` (= ``vector_size``) features,
    then the group's sub-tiles. Memory streams in, in this order:

    * per (M tile, group, chunk) ``map``: the chunk's similarity map,
      ``num_scatter`` tokens per beat: each token's concentrate-out slot
      (its group's unique vector) or zero;
    * per (M tile, group, chunk) ``vectors``: the chunk's unique vectors in
      slot order, the last flagged, or one ``empty`` beat when there is none;
    * per (M tile, group, chunk, sub-tile) ``weights``: the sub-tile's
      ``rows`` x ``cols`` weight tile, row by row, unless the chunk is empty;

    and per output sub-tile ``positions``: its tokens' grid positions, which
    the SIC needs. ``out`` streams every token's SIC decision and
    concentrated vector (:func:`focus_hw.sic.sic.output_layout`), sub-tile
    by sub-tile.

    A *bypass* run (``bypass`` high) leaves the output uncompressed, as
    attention scores must be: ``positions`` is not read (the other streams
    are as above), the SIC stays idle, and each ``out`` beat is one output
    row as the drain narrowed it, ``pos`` and ``root`` the token's index
    among the run's tokens, ``zero`` and ``similar`` low, ``last`` on the
    sub-tile's last token, in the same order (each beat is one ``vectors``
    item of :func:`dram_bytes` to write back).

    The engines (:mod:`focus_hw.engines`; :func:`focus_hw.timing.focus_schedule`
    is their timing):

    * *load*: ``vectors`` -> an input buffer half (two of ``m_tile`` rows);
    * *feed*: a loaded half -> the array, once per sub-tile, each pass into
      the next free block of the concentrate-out ring (``ring_blocks`` blocks
      of ``m_tile`` rows); the first row swaps in the sub-tile's weights;
    * *write*: array output rows -> their ring block;
    * *dispatch*: a written block's partial sums -> ``num_scatter`` scatter
      lanes, which add each token's unique partial sum into its output row
      (chunk 0 starts rows from +0.0); the map is kept on chip for the
      group's later sub-tiles;
    * *drain*: a finished group, sub-tile by sub-tile, narrowed to the
      operand format (RNE) and joined with ``positions`` -> the SIC (in a
      bypass run: -> ``out``).

    ``start`` (while not ``busy``) begins a run of ``tokens``, ``chunks``
    (K chunks), ``ntiles`` (N sub-tiles), ``bypass`` with the SIC grid
    ``width`` and ``frame_tokens``; all must stay constant until ``busy``
    drops after the last ``out`` beat. ``result`` shows each output row
    (accumulator format) in the cycle the SIC (bypassed: ``out``) takes it
    (observation only; it cannot hold the accelerator). The counters
    (:data:`STAT_NAMES`) restart with each run (a bypass run's SIC counters
    stay 0). ``sec`` is the SEC's own interface (:class:`~focus_hw.sec.SEC`).
    """

    def __init__(self, params: FocusParams, *, pe_modules: str | None = None):
        self.params = p = check_accelerator(params)
        self.pe_modules = pe_modules
        sic_in = input_layout(p)
        members = {
            "start": In(1),
            "busy": Out(1),
            "tokens": In(range(p.max_tokens + 1)),
            "chunks": In(COUNT_BITS),
            "ntiles": In(COUNT_BITS),
            "bypass": In(1),
            "width": In(sic_in["col"].shape),
            "frame_tokens": In(sic_in["col"].shape),
            "map": In(stream.Signature(map_layout(p))),
            "vectors": In(stream.Signature(vector_layout(p))),
            "weights": In(stream.Signature(data.ArrayLayout(p.operand_bits, p.cols))),
            "positions": In(stream.Signature(position_layout(p))),
            "out": Out(stream.Signature(output_layout(p))),
            "result": Out(stream.Signature(partial_row(p), always_ready=True)),
            "sec": Out(sec_signature(p)),
        }
        members.update({name: Out(COUNT_BITS) for name in STAT_NAMES})
        super().__init__(members)

    def instanced_modules(self) -> dict:
        """Verilog module name -> component of each PE class the array
        instantiates (see :class:`~focus_hw.SystolicArray`)."""
        return pe_class_modules(self.params, self.pe_modules)

    def elaborate(self, platform):
        p = self.params
        m = Module()
        m.submodules.array = array = SystolicArray(p, pe_modules=self.pe_modules)
        m.submodules.scatter = scat = ScatterAccumulator(p)
        m.submodules.sic = sic = SIC(p)
        m.submodules.sec = sec = SEC(p)
        wiring.connect(m, wiring.flipped(self.sec), sec)
        m.submodules.load = load = LoadEngine(p)
        m.submodules.feed = feed = FeedEngine(p)
        m.submodules.write = write = WriteEngine(p)
        m.submodules.dispatch = dispatch = DispatchEngine(p)
        m.submodules.drain = drain = DrainEngine(p)
        engines = (load, feed, dispatch, drain)

        go = Signal()
        run = Signal(run_layout(p))
        m.d.comb += [
            go.eq(self.start & ~self.busy),
            run.tokens.eq(self.tokens),
            run.chunks.eq(self.chunks),
            run.ntiles.eq(self.ntiles),
        ]
        for engine in engines:
            m.d.comb += [engine.start.eq(go), engine.run.eq(run)]

        # Buffers.
        m.submodules.inbuf = inbuf = memory.Memory(
            shape=input_row(p), depth=input_depth(p), init=[]
        )
        m.submodules.ring = ring = memory.Memory(shape=partial_row(p), depth=ring_depth(p), init=[])
        in_w, in_r = inbuf.write_port(), inbuf.read_port()
        ring_w = ring.write_port()
        ring_r = [ring.read_port() for _ in range(p.num_scatter)]
        m.submodules.blocks = blocks = fifo.SyncFIFO(
            width=block_layout(p).size, depth=p.ring_blocks
        )
        if p.out_vectors > 1:
            m.submodules.keep = keep = memory.Memory(
                shape=map_layout(p), depth=keep_depth(p), init=[]
            )
            keep_w = keep.write_port()
            wiring.connect(m, dispatch.keep, keep_w)
            wiring.connect(m, dispatch.replay, keep.read_port(transparent_for=(keep_w,)))

        # load -> feed -> array -> write -> dispatch -> scatter -> drain -> SIC
        wiring.connect(m, wiring.flipped(self.vectors), load.vectors)
        wiring.connect(m, load.buffer, in_w)
        m.d.comb += [
            feed.loaded.eq(load.loaded),
            feed.lengths.eq(load.lengths),
            load.release.eq(feed.release),
        ]
        wiring.connect(m, feed.buffer, in_r)
        wiring.connect(m, feed.act, array.act)
        m.d.comb += [
            array.weight.valid.eq(self.weights.valid & self.busy),
            array.weight.payload.eq(self.weights.payload),
            self.weights.ready.eq(array.weight.ready & self.busy),
        ]
        m.d.comb += [
            blocks.w_en.eq(feed.blocks.valid),
            blocks.w_data.eq(feed.blocks.payload),
            feed.blocks.ready.eq(blocks.w_rdy),
            write.blocks.valid.eq(blocks.r_rdy),
            write.blocks.payload.eq(blocks.r_data),
            blocks.r_en.eq(write.blocks.ready),
        ]
        wiring.connect(m, array.out, write.sums)
        wiring.connect(m, write.buffer, ring_w)
        m.d.comb += [
            dispatch.written.eq(write.written),
            dispatch.empty.eq(feed.empty),
            feed.freed.eq(dispatch.freed),
            dispatch.out_full.eq(drain.out_full),
            drain.finished.eq(dispatch.finished),
        ]
        wiring.connect(m, wiring.flipped(self.map), dispatch.map)
        for i, port in enumerate(ring_r):
            wiring.connect(m, dispatch.ring[i], port)
            wiring.connect(m, dispatch.lanes[i], scat.lanes[i])
        wiring.connect(m, drain.read, scat.read)
        wiring.connect(m, scat.data, drain.data)
        wiring.connect(m, wiring.flipped(self.positions), drain.positions)
        wiring.connect(m, drain.sic, sic.inp)
        wiring.connect(m, drain.result, wiring.flipped(self.result))
        m.d.comb += [sic.width.eq(self.width), sic.frame_tokens.eq(self.frame_tokens)]
        m.d.comb += [
            drain.bypass.eq(self.bypass),
            self.out.valid.eq(Mux(self.bypass, drain.out.valid, sic.out.valid)),
            self.out.payload.eq(Mux(self.bypass, drain.out.payload, sic.out.payload)),
            sic.out.ready.eq(self.out.ready & ~self.bypass),
            drain.out.ready.eq(self.out.ready & self.bypass),
        ]

        # The run ends with its last output.
        emit = Walker(m, p, run, go, "emit", chunks=False)
        count = Signal(range(p.m_tile))
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += count.eq(count + 1)
            with m.If(count == emit.tokens - 1):
                m.d.sync += count.eq(0)
                m.d.comb += emit.advance.eq(1)
        with m.If(go):
            m.d.sync += [count.eq(0), self.busy.eq(self.tokens != 0)]
        with m.Elif(emit.done):
            m.d.sync += self.busy.eq(0)

        # Counters: the engines' port enables, or the units' running counts
        # less their value at the start.
        units = {
            "output_reads": scat.reads,
            "output_writes": scat.writes,
            "similarity_table_reads": sic.table_reads,
            "similarity_table_writes": sic.table_writes,
            "similarity_map_reads": sic.map_reads,
            "similarity_map_writes": sic.map_writes,
        }
        events = {
            "compute_cycles": [array.act.valid & array.act.ready],
            "scatter_cycles": [dispatch.beat],
            "stall_cycles": [feed.stall],
            "sic_cycles": [sic.taking, sic.sending],
            "input_reads": [in_r.en],
            "input_writes": [in_w.en],
            "weight_writes": [self.weights.valid & self.weights.ready],
            "concentrate_out_reads": [port.en for port in ring_r],
            "concentrate_out_writes": [ring_w.en],
            "scatter_map_reads": [dispatch.replayed],
            "scatter_map_writes": [dispatch.kept],
        }
        for name in STAT_NAMES:
            counter = getattr(self, name)
            if name in units:
                base = Signal(COUNT_BITS, name=f"base_{name}")
                with m.If(go):
                    m.d.sync += base.eq(units[name])
                m.d.comb += counter.eq(units[name] - base)
                continue
            n = Signal(COUNT_BITS, name=f"n_{name}")
            m.d.comb += counter.eq(n)
            with m.If(go):
                m.d.sync += n.eq(0)
            with m.Else():
                m.d.sync += n.eq(n + sum(e.as_unsigned() for e in events[name]))
        return m
