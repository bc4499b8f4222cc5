"""The integrated Focus accelerator: a GEMM on SIC-compressed activations.

:class:`FocusAccelerator` is one Component: the weight-stationary
:class:`~focus_hw.SystolicArray`, the input and concentrate-out buffers, the
:class:`~focus_hw.scatter.ScatterAccumulator` (with the output buffer), the
:class:`~focus_hw.sic.SIC` and the SEC (:class:`~focus_hw.sec.SEC`, which
prunes tokens at attention and has its own ports), sequenced by five small
engines that hand buffer halves to each other with full/free flags. Its
schedule is :func:`focus_hw.timing.focus_schedule`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .arith.convert import narrow
from .arith.formats import float_format
from .arith.pipeline import Pipeline
from .params import FocusParams
from .scatter import ScatterAccumulator, request_layout
from .sec import SEC
from .sec.concentrator import sec_signature
from .sic import SIC
from .sic.argmax import index_shape
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

#: Width of the run's size registers (K chunks, N tiles) and of the counters.
COUNT_BITS = 32

#: The accelerator's counters (``Out(COUNT_BITS)`` members of the same names).
STAT_NAMES = (
    "compute_cycles",  # cycles the array takes an activation row
    "scatter_cycles",  # cycles the scatter takes a map beat
    "stall_cycles",  # cycles a loaded chunk waits for the scatter
    "sic_cycles",  # cycles the SIC has a pass in hand
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
)


def check_accelerator(params: FocusParams) -> FocusParams:
    """``params`` if the integrated design supports it, else ValueError: an
    output tile's columns are one SIC vector and a K chunk is one input
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


def vector_layout(params: FocusParams) -> data.StructLayout:
    """A beat of the ``vectors`` stream: one unique input vector of a chunk
    (``last`` on the chunk's final one), or ``empty`` for a chunk without
    any (no data, no weight tile)."""
    return data.StructLayout(
        {
            "data": data.ArrayLayout(params.operand_bits, params.rows),
            "last": 1,
            "empty": 1,
        }
    )


def map_layout(params: FocusParams) -> data.ArrayLayout:
    """A beat of the ``map`` stream: ``num_scatter`` tokens' entries of one
    chunk, in token order: ``zero`` (the token's vector is all zero) or the
    concentrate-out ``slot`` of its group's unique vector."""
    entry = data.StructLayout({"zero": 1, "slot": index_shape(params)})
    return data.ArrayLayout(entry, params.num_scatter)


def position_layout(params: FocusParams) -> data.StructLayout:
    """A beat of the ``positions`` stream: a surviving token's position in
    the sequence and its column, row and frame (what the SIC compares)."""
    return data.StructLayout(
        {name: field.shape for name, field in input_layout(params) if name in _POSITION}
    )


_POSITION = ("pos", "col", "row", "frame")


def dram_bytes(params: FocusParams) -> dict[str, int]:
    """Bytes one item of each memory stream costs, by stream name:
    ``weights`` a weight row, ``vectors`` a unique vector, ``map`` one
    token's entry of one chunk (written back in the same format),
    ``positions`` one token of an output tile."""
    return {
        "weights": params.cols * params.operand_bytes,
        "vectors": params.rows * params.operand_bytes,
        "map": -(-map_layout(params).elem_shape.size // 8),
        "positions": -(-position_layout(params).size // 8),
    }


class _Walker:
    """One engine's place in the run's loop nest: M tiles of up to
    ``m_tile`` surviving tokens (``base``: first token, ``tokens``: count),
    N tiles (``ntile``), K chunks (``chunk``; ``per_chunk=False``: the walker
    steps by output tiles). ``advance`` (comb, set by the engine) moves on;
    ``done`` is set after the last step. ``half`` alternates per step."""

    def __init__(self, m, params, run, name, *, per_chunk=True):
        self.advance = Signal(name=f"{name}_advance")
        self.base = Signal(COUNT_BITS, name=f"{name}_base")
        self.ntile = Signal(COUNT_BITS, name=f"{name}_ntile")
        self.chunk = Signal(COUNT_BITS, name=f"{name}_chunk")
        self.half = Signal(name=f"{name}_half")
        self.done = Signal(name=f"{name}_done")
        self.tokens = Signal(range(params.m_tile + 1), name=f"{name}_tokens")
        left = Signal(COUNT_BITS, name=f"{name}_left")
        m.d.comb += [
            left.eq(run.tokens - self.base),
            self.tokens.eq(Mux(left > params.m_tile, params.m_tile, left)),
        ]
        self.first = Signal(name=f"{name}_first")
        self.last = Signal(name=f"{name}_last")  # last chunk of the output tile
        m.d.comb += [
            self.first.eq(self.chunk == 0),
            self.last.eq(~per_chunk | (self.chunk == run.chunks - 1)),
        ]
        with m.If(run.start):
            m.d.sync += [
                self.base.eq(0),
                self.ntile.eq(0),
                self.chunk.eq(0),
                self.half.eq(0),
                self.done.eq(run.tokens == 0),
            ]
        with m.Elif(self.advance):
            m.d.sync += self.half.eq(~self.half)
            with m.If(~self.last):
                m.d.sync += self.chunk.eq(self.chunk + 1)
            with m.Else():
                m.d.sync += self.chunk.eq(0)
                with m.If(self.ntile != run.ntiles - 1):
                    m.d.sync += self.ntile.eq(self.ntile + 1)
                with m.Else():
                    m.d.sync += [self.ntile.eq(0), self.base.eq(self.base + params.m_tile)]
                    with m.If(self.base + params.m_tile >= run.tokens):
                        m.d.sync += self.done.eq(1)


def _depth(params: FocusParams, name: str, row) -> int:
    """Rows of ``row`` (a layout) in buffer ``name`` of
    :attr:`FocusParams.buffer_bytes` (two halves of ``m_tile`` rows)."""
    return params.buffer_bytes[name] * 8 // row.size


def _half_addr(half, index, m_tile: int):
    """Row ``index`` of buffer half ``half`` (halves of ``m_tile`` rows)."""
    return Mux(half, index + m_tile, index)


class FocusAccelerator(wiring.Component):
    """The Focus accelerator running one GEMM on compressed activations.

    A run multiplies the ``tokens`` surviving tokens (SEC-pruned tokens are
    not sent) of a SIC-compressed input with a (K, N) weight matrix and
    streams the SIC-compressed output back. The loop nest is M tiles of
    ``m_tile`` tokens, then N tiles of ``cols`` columns (the output buffer
    holds one), then K chunks of ``rows`` (= ``vector_size``) features.
    Per chunk, memory streams in, in this order:

    * ``map``: the chunk's similarity map, ``num_scatter`` tokens per beat:
      each token's concentrate-out slot (its group's unique vector) or zero;
    * ``vectors``: the chunk's unique vectors in slot order, the last
      flagged, or one ``empty`` beat when there is none;
    * ``weights``: the chunk's ``rows`` x ``cols`` weight tile, row by row,
      unless the chunk is empty;

    and per output tile ``positions``: its tokens' grid positions, which the
    SIC needs. ``out`` streams every token's SIC decision and concentrated
    vector (:func:`focus_hw.sic.sic.output_layout`), tile by tile.

    Five engines pass buffer halves on with full/free flags
    (:func:`focus_hw.timing.focus_schedule` is their timing):

    * *load*: ``vectors`` -> input buffer half (double-buffered, ``m_tile``
      rows each);
    * *feed*: a loaded half -> the array (the first row swaps in the chunk's
      weight tile), once the scatter has freed the matching concentrate-out
      half;
    * *write*: array output rows -> concentrate-out half (slot order);
    * *scatter*: ``map`` beats -> ``num_scatter`` lanes adding each token's
      unique partial sum into its output row (the first chunk of a tile
      starts rows from +0.0) once the chunk's partial sums are all written;
    * *drain*: a finished output tile, row by row, narrowed to the operand
      format (RNE) and joined with ``positions``, -> the SIC.

    ``start`` (while not ``busy``) begins a run of ``tokens``, ``chunks``
    (K chunks), ``ntiles`` (N tiles) with the SIC grid ``width`` and
    ``frame_tokens``; all must stay constant until ``busy`` drops after the
    last ``out`` beat. ``result`` shows each fp32 output row in the cycle
    the SIC takes it (observation only; it cannot hold the accelerator).
    The counters (:data:`STAT_NAMES`) restart with each run. ``sec`` is the
    SEC's own interface (:class:`~focus_hw.sec.SEC`).
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
            "width": In(sic_in["col"].shape),
            "frame_tokens": In(sic_in["col"].shape),
            "map": In(stream.Signature(map_layout(p))),
            "vectors": In(stream.Signature(vector_layout(p))),
            "weights": In(stream.Signature(data.ArrayLayout(p.operand_bits, p.cols))),
            "positions": In(stream.Signature(position_layout(p))),
            "out": Out(stream.Signature(output_layout(p))),
            "result": Out(stream.Signature(data.ArrayLayout(32, p.cols), always_ready=True)),
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
        mt, ns = p.m_tile, p.num_scatter
        m = Module()
        m.submodules.array = array = SystolicArray(p, pe_modules=self.pe_modules)
        m.submodules.scatter = scat = ScatterAccumulator(p)
        m.submodules.sic = sic = SIC(p)
        m.submodules.sec = sec = SEC(p)
        wiring.connect(m, wiring.flipped(self.sec), sec)

        go = Signal()
        m.d.comb += go.eq(self.start & ~self.busy)
        run = _Run(self, go)
        # Counters: the engines' own increments, or the units' running
        # counts less their value at the start.
        units = {
            "output_reads": scat.reads,
            "output_writes": scat.writes,
            "similarity_table_reads": sic.table_reads,
            "similarity_table_writes": sic.table_writes,
            "similarity_map_reads": sic.map_reads,
            "similarity_map_writes": sic.map_writes,
        }
        incr = {}
        for name in STAT_NAMES:
            count = Signal(COUNT_BITS, name=f"n_{name}")
            m.d.comb += getattr(self, name).eq(count)
            if name in units:
                base = Signal(COUNT_BITS, name=f"base_{name}")
                with m.If(go):
                    m.d.sync += base.eq(units[name])
                m.d.comb += count.eq(units[name] - base)
                continue
            incr[name] = Signal(range(ns + 1), name=f"inc_{name}")
            with m.If(go):
                m.d.sync += count.eq(0)
            with m.Else():
                m.d.sync += count.eq(count + incr[name])

        # -- load: vectors -> input buffer ----------------------------------
        row = data.ArrayLayout(p.operand_bits, p.rows)
        m.submodules.inbuf = inbuf = memory.Memory(
            shape=row, depth=_depth(p, "input", row), init=[]
        )
        in_w, in_r = inbuf.write_port(), inbuf.read_port()
        load = _Walker(m, p, run, "load")
        in_full = Signal(2)
        in_set = Signal(2)
        in_clr = Signal(2)
        in_len = [Signal(range(mt + 1), name=f"in_len{h}") for h in range(2)]
        lcount = Signal(range(mt + 1))
        m.d.sync += in_full.eq(Mux(go, 0, (in_full | in_set) & ~in_clr))
        vec = self.vectors.payload
        m.d.comb += self.vectors.ready.eq(
            self.busy & ~load.done & ~in_full.bit_select(load.half, 1)
        )
        take_vec = self.vectors.valid & self.vectors.ready
        m.d.comb += [
            in_w.addr.eq(_half_addr(load.half, lcount, mt)),
            in_w.data.eq(vec.data),
            in_w.en.eq(take_vec & ~vec.empty),
            incr["input_writes"].eq(in_w.en),
        ]
        with m.If(take_vec):
            m.d.sync += lcount.eq(lcount + ~vec.empty)
            with m.If(vec.last | vec.empty):
                m.d.comb += [load.advance.eq(1), in_set.eq(1 << load.half)]
                m.d.sync += lcount.eq(0)
                for h in range(2):
                    with m.If(load.half == h):
                        m.d.sync += in_len[h].eq(lcount + ~vec.empty)

        # -- feed: input buffer -> array -------------------------------------
        feed = _Walker(m, p, run, "feed")
        co_ready = Signal(2)  # a half's partial sums are all written
        co_busy = Signal(2)  # a half is claimed by a chunk
        co_empty = Signal(2)  # "written" by the feeder: an empty chunk
        co_written = Signal(2)  # written by the writer: its last row
        co_free = Signal(2)
        co_claim = Signal(2)
        m.d.sync += [
            co_ready.eq(Mux(go, 0, (co_ready | co_empty | co_written) & ~co_free)),
            co_busy.eq(Mux(go, 0, (co_busy | co_claim) & ~co_free)),
        ]
        lens = fifo.SyncFIFO(width=1 + len(in_len[0]), depth=2)
        m.submodules.lens = lens
        feeding = Signal()
        fidx = Signal(range(mt))
        flen = Signal(range(mt + 1))
        hf = feed.half
        act_valid = Signal()
        act_swap = Signal()
        move = Signal()  # the read stage may take the next row
        m.d.comb += [
            move.eq(~act_valid | array.act.ready),
            in_r.addr.eq(_half_addr(hf, fidx, mt)),
            in_r.en.eq(feeding & move),
            array.act.valid.eq(act_valid),
            array.act.payload.data.eq(in_r.data),
            array.act.payload.swap.eq(act_swap),
            incr["compute_cycles"].eq(array.act.valid & array.act.ready),
            incr["input_reads"].eq(in_r.en),
        ]
        with m.If(move):
            m.d.sync += [act_valid.eq(feeding), act_swap.eq(feeding & (fidx == 0))]
        loaded = in_full.bit_select(hf, 1)
        claimed = co_busy.bit_select(hf, 1)
        cur_len = Mux(hf, in_len[1], in_len[0])
        with m.If(~feed.done & ~feeding & loaded & ~claimed & ~go):
            m.d.comb += co_claim.eq(1 << hf)
            with m.If(cur_len == 0):  # an empty chunk: nothing for the array
                m.d.comb += [co_empty.eq(1 << hf), in_clr.eq(1 << hf), feed.advance.eq(1)]
            with m.Else():
                m.d.comb += [lens.w_en.eq(1), lens.w_data.eq(Cat(cur_len, hf))]
                m.d.sync += [feeding.eq(1), fidx.eq(0), flen.eq(cur_len)]
        m.d.comb += incr["stall_cycles"].eq(~feed.done & ~feeding & loaded & claimed)
        with m.If(feeding & move):
            m.d.sync += fidx.eq(fidx + 1)
            with m.If(fidx == flen - 1):
                m.d.sync += feeding.eq(0)
                m.d.comb += [in_clr.eq(1 << hf), feed.advance.eq(1)]

        # -- write: array outputs -> concentrate-out buffer --------------------
        sums = data.ArrayLayout(32, p.cols)
        m.submodules.co = co = memory.Memory(
            shape=sums, depth=_depth(p, "concentrate_out", sums), init=[]
        )
        co_w = co.write_port()
        co_rps = [co.read_port() for _ in range(ns)]
        wcount = Signal(range(mt))
        w_len, w_half = lens.r_data[:-1], lens.r_data[-1]
        m.d.comb += [
            array.out.ready.eq(1),
            array.weight.valid.eq(self.weights.valid & self.busy),
            array.weight.payload.eq(self.weights.payload),
            self.weights.ready.eq(array.weight.ready & self.busy),
            incr["weight_writes"].eq(self.weights.valid & self.weights.ready),
            co_w.addr.eq(_half_addr(w_half, wcount, mt)),
            co_w.data.eq(array.out.payload),
            co_w.en.eq(array.out.valid),
            incr["concentrate_out_writes"].eq(co_w.en),
        ]
        with m.If(array.out.valid):
            m.d.sync += wcount.eq(wcount + 1)
            with m.If(wcount == w_len - 1):
                m.d.sync += wcount.eq(0)
                m.d.comb += [lens.r_en.eq(1), co_written.eq(1 << w_half)]

        # -- scatter: map beats -> scatter lanes -> output buffer ---------------
        sc = _Walker(m, p, run, "scat")
        out_full = Signal(2)  # a half holds a finished output tile
        out_set = Signal(2)
        out_clr = Signal(2)
        m.d.sync += out_full.eq(Mux(go, 0, (out_full | out_set) & ~out_clr))
        ho = Signal()  # output half of the scatter's tile
        stoken = Signal(range(mt + ns))
        held = data.StructLayout({"row": request_layout(p)["row"].shape, "init": 1, "skip": 1})
        req = Signal(data.ArrayLayout(held, ns))
        pending = Signal(ns)  # lanes of the held beat not yet taken
        req_end = Signal()  # the held beat finishes an output tile
        req_half = Signal()
        taken = Cat(lane.valid & lane.ready for lane in scat.lanes)
        stage_free = Signal()
        m.d.comb += stage_free.eq((pending & ~taken) == 0)
        for lane, rp, r, hold in zip(scat.lanes, co_rps, req, pending, strict=True):
            m.d.comb += [
                lane.valid.eq(hold),
                lane.payload.row.eq(r.row),
                lane.payload.init.eq(r.init),
                lane.payload.skip.eq(r.skip),
                lane.payload.value.eq(rp.data),
            ]
        with m.If(stage_free & (pending != 0) & req_end):
            m.d.sync += out_set.eq(1 << req_half)  # written in the next cycle: drainable after
        with m.Else():
            m.d.sync += out_set.eq(0)
        scatter_on = (
            ~sc.done
            & ~go
            & co_ready.bit_select(sc.half, 1)
            & (~sc.first | ~out_full.bit_select(ho, 1))
        )
        m.d.comb += self.map.ready.eq(scatter_on & stage_free)
        take_map = self.map.valid & self.map.ready
        reads, lives = [], []
        for lane, (rp, entry) in enumerate(zip(co_rps, self.map.payload, strict=True)):
            live = stoken + lane < sc.tokens
            read = Signal(name=f"co_read{lane}")
            m.d.comb += [
                read.eq(take_map & live & ~entry.zero),
                rp.addr.eq(_half_addr(sc.half, entry.slot, mt)),
                rp.en.eq(read),
            ]
            reads.append(read)
            lives.append(live)
            with m.If(take_map):
                m.d.sync += [
                    req[lane].row.eq(_half_addr(ho, stoken + lane, mt)),
                    req[lane].init.eq(sc.first),
                    req[lane].skip.eq(entry.zero),
                ]
        m.d.comb += [
            incr["concentrate_out_reads"].eq(sum(reads)),
            incr["scatter_cycles"].eq(take_map),
        ]
        chunk_end = stoken + ns >= sc.tokens
        with m.If(take_map):
            m.d.sync += [
                pending.eq(Cat(*lives)),
                req_end.eq(chunk_end & sc.last),
                req_half.eq(ho),
                stoken.eq(Mux(chunk_end, 0, stoken + ns)),
            ]
            with m.If(chunk_end):
                m.d.comb += [sc.advance.eq(1), co_free.eq(1 << sc.half)]
                with m.If(sc.last):
                    m.d.sync += ho.eq(~ho)
        with m.Elif(go):
            m.d.sync += [pending.eq(0), ho.eq(0), stoken.eq(0)]
        with m.Else():
            m.d.sync += pending.eq(pending & ~taken)

        # -- drain: output buffer -> narrow -> SIC ---------------------------------
        drain = _Walker(m, p, run, "drain", per_chunk=False)
        reading = Signal()
        didx = Signal(range(mt))
        row_first = Signal()
        row_last = Signal()
        with m.If(~drain.done & ~reading & out_full.bit_select(drain.half, 1) & ~go):
            m.d.sync += [reading.eq(1), didx.eq(0)]
        m.d.comb += [
            scat.read.valid.eq(reading),
            scat.read.payload.eq(_half_addr(drain.half, didx, mt)),
        ]
        with m.If(scat.read.valid & scat.read.ready):
            m.d.sync += [
                didx.eq(didx + 1),
                row_first.eq(didx == 0),
                row_last.eq(didx == drain.tokens - 1),
            ]
            with m.If(didx == drain.tokens - 1):
                m.d.sync += reading.eq(0)
                m.d.comb += [out_clr.eq(1 << drain.half), drain.advance.eq(1)]
        fmt = float_format(p.dtype)
        narrowed = Cat(narrow(m, fmt, Pipeline(m, 0, 1, 1), e) for e in scat.data.payload)
        inp, pos = sic.inp.payload, self.positions.payload
        joined = scat.data.valid & self.positions.valid
        m.d.comb += [
            sic.width.eq(self.width),
            sic.frame_tokens.eq(self.frame_tokens),
            sic.inp.valid.eq(joined),
            inp.data.eq(narrowed),
            inp.first.eq(row_first),
            inp.last.eq(row_last),
            scat.data.ready.eq(joined & sic.inp.ready),
            self.positions.ready.eq(joined & sic.inp.ready),
            self.result.valid.eq(sic.inp.valid & sic.inp.ready),
            self.result.payload.eq(scat.data.payload),
        ]
        for name in _POSITION:
            m.d.comb += getattr(inp, name).eq(getattr(pos, name))

        # -- SIC -> out; run end -------------------------------------------------
        wiring.connect(m, sic.out, wiring.flipped(self.out))
        sic_active = Signal()
        sic_take = sic.inp.valid & sic.inp.ready
        out_take = self.out.valid & self.out.ready
        emit = _Walker(m, p, run, "emit", per_chunk=False)
        ecount = Signal(range(mt))
        with m.If(sic_take):
            m.d.sync += sic_active.eq(1)
        with m.If(out_take):
            m.d.sync += ecount.eq(ecount + 1)
            with m.If(ecount == emit.tokens - 1):
                m.d.sync += [ecount.eq(0), sic_active.eq(0)]
                m.d.comb += emit.advance.eq(1)
        with m.If(go):
            m.d.sync += [ecount.eq(0), sic_active.eq(0), self.busy.eq(self.tokens != 0)]
        with m.Elif(emit.done):
            m.d.sync += self.busy.eq(0)
        m.d.comb += [
            incr["sic_cycles"].eq(sic_active | sic_take),
        ]
        return m


class _Run:
    """The run's size registers as the walkers see them."""

    def __init__(self, top, start):
        self.tokens, self.chunks, self.ntiles = top.tokens, top.chunks, top.ntiles
        self.start = start
