"""The dispatch engine: similarity-map entries into scatter lane requests."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..params import FocusParams
from ..scatter import request_layout
from ..sic.argmax import index_shape
from .walker import Walker, block_addr, run_layout
from .write import partial_row, ring_depth

__all__ = ["DispatchEngine", "map_layout", "map_beats", "keep_depth"]


def map_layout(params: FocusParams) -> data.ArrayLayout:
    """A beat of the ``map`` stream: ``num_scatter`` tokens' entries of one
    chunk, in token order: ``zero`` (the token's vector is all zero) or the
    concentrate-out ``slot`` of its group's unique vector."""
    entry = data.StructLayout({"zero": 1, "slot": index_shape(params)})
    return data.ArrayLayout(entry, params.num_scatter)


def map_beats(params: FocusParams) -> int:
    """Map beats of a full M tile's chunk: ``ceil(m_tile / num_scatter)``."""
    return -(-params.m_tile // params.num_scatter)


def keep_depth(params: FocusParams) -> int:
    """Beats the kept map holds (:attr:`FocusParams.buffer_bytes`
    ``scatter_map``; only with ``out_vectors > 1``): one chunk's."""
    return params.buffer_bytes["scatter_map"] * 8 // map_layout(params).size


class DispatchEngine(wiring.Component):
    """Adds each ring block's partial sums into the output rows of the
    tokens that use them.

    Blocks are taken in the order the feeder filled them (chunk, then
    sub-tile), each once it is ``written`` (or ``empty``); its end ``freed``
    it for the feeder. Per block, the chunk's similarity map is walked in
    beats of ``num_scatter`` tokens: each lane reads its token's unique
    partial sum from the ring (``ring[i]``) and sends the update to its
    scatter lane (``lanes[i]``) the next cycle, into the token's row of the
    sub-tile (chunk 0 starts the row from +0.0). The first sub-tile takes
    the map from memory (``map``); with ``out_vectors > 1`` it also keeps
    it (``keep``) and the later sub-tiles replay it (``replay``). The first
    chunk of a group waits until the drain has freed its output half
    (``out_full``); ``finished`` marks the half in the cycle the group's
    last update is written (``scatter_pipeline + 1`` cycles after the
    scatter took it). ``beat`` marks each map beat taken, ``kept`` /
    ``replayed`` each one written to / read from the kept copy.
    """

    def __init__(self, params: FocusParams):
        self.params = params
        p = params
        ns, nb = p.num_scatter, p.ring_blocks
        ring = memory.ReadPort.Signature(addr_width=ceil_log2(ring_depth(p)), shape=partial_row(p))
        members = {
            "start": In(1),
            "run": In(run_layout(p)),
            "map": In(stream.Signature(map_layout(p))),
            "written": In(nb),
            "empty": In(nb),
            "freed": Out(nb),
            "ring": In(ring).array(ns),
            "lanes": Out(stream.Signature(request_layout(p))).array(ns),
            "out_full": In(2),
            "finished": Out(2),
            "beat": Out(1),
            "kept": Out(1),
            "replayed": Out(1),
        }
        if p.out_vectors > 1:
            width = ceil_log2(keep_depth(p))
            members["keep"] = In(memory.WritePort.Signature(addr_width=width, shape=map_layout(p)))
            members["replay"] = In(memory.ReadPort.Signature(addr_width=width, shape=map_layout(p)))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        p = self.params
        mt, ns, nb, vectors = p.m_tile, p.num_scatter, p.ring_blocks, p.out_vectors
        walk = Walker(m, p, self.run, self.start, "dispatch")
        ready = Signal(nb)  # ring blocks whose partial sums are all written
        m.d.sync += ready.eq(Mux(self.start, 0, (ready | self.written | self.empty) & ~self.freed))
        block = Signal(range(nb))
        half = Signal()  # output half of the group
        token = Signal(range(mt + ns))

        # The held beat: one request per lane, sent while its ring read lands.
        held = data.StructLayout({"row": request_layout(p)["row"].shape, "init": 1, "skip": 1})
        req = Signal(data.ArrayLayout(held, ns))
        pending = Signal(ns)  # lanes of the held beat not yet taken
        req_end = Signal()  # the held beat finishes the group
        req_half = Signal()
        taken = Cat(lane.valid & lane.ready for lane in self.lanes)
        stage_free = Signal()
        m.d.comb += stage_free.eq((pending & ~taken) == 0)
        for lane, port, r, hold in zip(self.lanes, self.ring, req, pending, strict=True):
            m.d.comb += [
                lane.valid.eq(hold),
                lane.payload.row.eq(r.row),
                lane.payload.init.eq(r.init),
                lane.payload.skip.eq(r.skip),
                lane.payload.value.eq(port.data),
            ]
        # The half is finished in the cycle its last update is written, the
        # adders' scatter_pipeline stages after the cycle after its accept.
        finished = Signal(2)
        with m.If(stage_free & (pending != 0) & req_end):
            m.d.sync += finished.eq(1 << req_half)
        with m.Else():
            m.d.sync += finished.eq(0)
        for k in range(p.scatter_pipeline):
            later = Signal(2, name=f"finished{k + 1}")
            m.d.sync += later.eq(finished)
            finished = later
        m.d.comb += self.finished.eq(finished)  # drainable from the next cycle

        # The beat's source: memory in the first sub-tile, the kept copy after.
        entries = Signal(map_layout(p))
        valid = Signal()
        replaying = walk.sub != 0
        m.d.comb += [
            entries.eq(Mux(replaying, self.replay.data, self.map.payload))
            if vectors > 1
            else entries.eq(self.map.payload),
            valid.eq(replaying | self.map.valid),
        ]
        on = (
            ~walk.done
            & ~self.start
            & ready.bit_select(block, 1)
            & (~walk.first | ~self.out_full.bit_select(half, 1))
        )
        take = Signal()
        m.d.comb += [
            self.map.ready.eq(on & stage_free & ~replaying),
            take.eq(on & stage_free & valid),
            self.beat.eq(take),
            self.kept.eq(take & ~replaying if vectors > 1 else 0),
            self.replayed.eq(take & replaying),
        ]
        chunk_end = token + ns >= walk.tokens
        if vectors > 1:
            beat = Signal(range(map_beats(p)))  # the kept map's beat in hand
            following = Mux(take, Mux(chunk_end, 0, beat + 1), beat)
            m.d.comb += [
                self.keep.addr.eq(beat),
                self.keep.data.eq(self.map.payload),
                self.keep.en.eq(take & ~replaying),
                self.replay.addr.eq(Mux(self.start, 0, following)),
                self.replay.en.eq(1),
            ]
            m.d.sync += beat.eq(Mux(self.start, 0, following))
        row_base = block_addr(half * vectors + walk.sub, token, mt)  # as the drain reads it
        lives = []
        for lane, (port, entry) in enumerate(zip(self.ring, entries, strict=True)):
            live = token + lane < walk.tokens
            m.d.comb += [
                port.addr.eq(block_addr(block, entry.slot, mt)),
                port.en.eq(take & live & ~entry.zero),
            ]
            lives.append(live)
            with m.If(take):
                m.d.sync += [
                    req[lane].row.eq(row_base + lane),
                    req[lane].init.eq(walk.first),
                    req[lane].skip.eq(entry.zero),
                ]
        with m.If(take):
            m.d.sync += [
                pending.eq(Cat(*lives)),
                req_end.eq(chunk_end & walk.ends_group),
                req_half.eq(half),
                token.eq(Mux(chunk_end, 0, token + ns)),
            ]
            with m.If(chunk_end):
                m.d.comb += [walk.advance.eq(1), self.freed.eq(1 << block)]
                m.d.sync += block.eq(Mux(block == nb - 1, 0, block + 1))
                with m.If(walk.ends_group):
                    m.d.sync += half.eq(~half)
        with m.Elif(self.start):
            m.d.sync += [pending.eq(0), half.eq(0), token.eq(0), block.eq(0)]
        with m.Else():
            m.d.sync += pending.eq(pending & ~taken)
        return m
