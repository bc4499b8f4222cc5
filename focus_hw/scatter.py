"""The scatter accumulator: the output buffer and the adders (in the
accumulator format, :attr:`FocusParams.acc`) that add partial-sum rows into it."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import FAdd
from .params import FocusParams
from .sic.table import serve_reads

__all__ = ["ScatterAccumulator", "request_layout", "row_layout", "row_shape", "output_depth"]


def row_shape(params: FocusParams):
    """A row address of the (double-buffered) output buffer: ``half * m_tile + token``."""
    return unsigned((output_depth(params) - 1).bit_length())


def output_depth(params: FocusParams) -> int:
    """Rows of the output buffer (:attr:`FocusParams.buffer_bytes`: two
    halves of ``m_tile`` rows)."""
    return params.buffer_bytes["output"] * 8 // row_layout(params).size


def row_layout(params: FocusParams) -> data.ArrayLayout:
    """One output row: ``cols`` accumulator bit patterns (``params.acc_bits`` each)."""
    return data.ArrayLayout(params.acc_bits, params.cols)


def request_layout(params: FocusParams) -> data.StructLayout:
    """One lane's update: add ``value`` to row ``row``.

    ``init``: the first update of the row in this tile (its old value is
    +0.0, the memory is not read). ``skip``: add nothing; with ``init`` the
    row is written +0.0, without it nothing happens (no read, no write).
    """
    return data.StructLayout(
        {"row": row_shape(params), "value": row_layout(params), "init": 1, "skip": 1}
    )


class ScatterAccumulator(wiring.Component):
    """The accelerator's output buffer with ``num_scatter`` lanes of adders in
    the accumulator format ``A = params.acc`` (fp32, or the operand format for
    ``acc_format="operand"``): ``row <- A(row + value)`` element by element,
    rounded to nearest even (:class:`~focus_hw.arith.FAdd`).

    The buffer is a ``lib.memory.Memory`` of ``2 * m_tile`` rows of ``cols``
    ``A`` values (two halves of ``m_tile`` rows; the caller computes ``row =
    half * m_tile + token``), initially +0.0.

    Timing (``P = params.scatter_pipeline``): a request accepted on lane
    ``i`` in cycle ``c`` reads the row in ``c`` (a synchronous read port per
    lane, transparent for every write port); in ``c+1`` (its add cycle) the
    ``cols`` adders take ``a`` = old, ``b`` = value, and ``P`` cycles later,
    in ``c+1+P``, lane ``i``'s write port stores the sum (the adders'
    ``P`` register stages, :class:`~focus_hw.arith.FAdd`).

    Conflicts and order: lane ``i`` is ready unless a lower lane holds a
    valid request for the same row in the same cycle (the lower lane goes
    first), or a request for the same row, on any lane, was accepted in the
    last ``P`` cycles (its sum is still in the adders, written after this
    cycle's read). So a request waits until its row's newest sum is written
    and is accepted at the earliest in that cycle, which forwards the sum to
    it through the transparent read port: a row's updates add in accept
    order, each to the sum before it, bit for bit as with ``P = 0``, at most
    one per ``P+1`` cycles. Holding rather than adding to a stale value
    keeps the adders exact without a forwarding path into them. The hold
    compares rows only (also of ``init`` and ``skip`` requests), so when a
    stream waits depends on its rows alone
    (:func:`focus_hw.timing.focus_schedule` counts it). ``ready`` does not
    depend on the lane's own ``valid``; there is no other backpressure. The
    requests accepted in one cycle target distinct rows and every request
    writes ``P+1`` cycles after its accept, so no two writes of a cycle meet
    and no update is lost. Proven for small configurations (``P`` up to 2)
    in ``tests/test_scatter_formal.py``.

    Ports:

    * ``lanes[i]``: request streams (:func:`request_layout`).
    * ``read`` / ``data``: the drain port: ``read`` takes a row address,
      ``data`` gives the row one cycle later and holds it until taken. It
      is not transparent: a row whose update is still in flight (``busy``)
      reads its old value; waiting for ``busy`` low is the caller's job.
    * ``busy``: an accepted update has not been written yet (high from the
      cycle after a request that writes is accepted to its write cycle).
    * ``reads``, ``writes``: row accesses of the buffer (old-value reads of
      requests without ``init`` or ``skip``, drain reads; writes of every
      request but a ``skip`` without ``init``), for simulation and the SRAM
      model; a read is counted in the cycle after it.

    For verification (``tests/test_scatter_formal.py``): :attr:`memory` is
    the buffer, its ports made on construction (``memory.write_ports[i]`` is
    lane ``i``'s; a harness may add ports before elaboration), and
    :attr:`old` holds each lane's adder ``a`` operands in its add cycle.

    Elaborated for an FPGA board, the buffer becomes banks and a live-value
    table (:mod:`focus_hw.multiport`), the same cycle for cycle.
    """

    def __init__(self, params: FocusParams):
        if not params.acc.is_float:
            raise ValueError(f"ScatterAccumulator: dtype={params.dtype!r}: the scatter adds floats")
        self.params = params
        row = row_layout(params)
        self.memory = mem = memory.Memory(shape=row, depth=output_depth(params), init=[])
        writes = [mem.write_port() for _ in range(params.num_scatter)]
        self._lane_reads = [
            mem.read_port(transparent_for=writes) for _ in range(params.num_scatter)
        ]
        self._drain = mem.read_port()
        self.old = [Signal(row, name=f"old{i}") for i in range(params.num_scatter)]
        super().__init__(
            {
                "lanes": In(stream.Signature(request_layout(params))).array(params.num_scatter),
                "read": In(stream.Signature(row_shape(params))),
                "data": Out(stream.Signature(row)),
                "busy": Out(1),
                "reads": Out(32),
                "writes": Out(32),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self.params
        depth = p.scatter_pipeline
        m.submodules.memory = self.memory
        # Per lane, its requests from the add cycle (stage 0) to the write
        # cycle (stage P): the row, accepted, and it writes the row.
        flight = data.StructLayout({"row": row_shape(p), "taken": 1, "write": 1})
        stages = [
            [Signal(flight, name=f"flight{i}_{k}") for k in range(depth + 1)]
            for i in range(p.num_scatter)
        ]
        # The rows whose sums are written after this cycle.
        pending = [s for lane in stages for s in lane[:depth]]
        reads, writes = [], []
        for i, lane in enumerate(self.lanes):
            req = lane.payload
            # Wait while a lower lane offers a request for the same row, or
            # the row's previous sum is still in the adders.
            conflicts = [low.valid & (low.payload.row == req.row) for low in self.lanes[:i]]
            conflicts += [s.taken & (s.row == req.row) for s in pending]
            m.d.comb += lane.ready.eq(~Cat(*conflicts).any())
            take = lane.valid & lane.ready

            rp = self._lane_reads[i]
            m.d.comb += [rp.addr.eq(req.row), rp.en.eq(take & ~req.init & ~req.skip)]
            reads.append(rp.en)

            stage = Signal(request_layout(p), name=f"stage{i}")  # the request in its add cycle
            first, last = stages[i][0], stages[i][-1]
            m.d.sync += [
                stage.eq(req),
                first.row.eq(req.row),
                first.taken.eq(take),
                first.write.eq(take & (req.init | ~req.skip)),
            ]
            m.d.sync += [later.eq(earlier) for earlier, later in zip(stages[i], stages[i][1:])]

            wp = self.memory.write_ports[i]
            m.d.comb += [
                self.old[i].eq(Mux(stage.init, 0, rp.data)),
                wp.addr.eq(last.row),
                wp.en.eq(last.write),
            ]
            for col in range(p.cols):
                add = m.submodules[f"add{i}_{col}"] = FAdd(p.acc.layout, depth)
                m.d.comb += [
                    add.a.eq(self.old[i][col]),
                    add.b.eq(Mux(stage.skip, 0, stage.value[col])),
                    wp.data[col].eq(add.out),
                ]
            writes.append(last.write)

        serve_reads(m, self._drain, self.read, self.data)
        reads.append(self._drain.en)

        m.d.comb += self.busy.eq(Cat(s.write for lane in stages for s in lane).any())
        read = Signal(range(len(reads) + 1))  # the reads of the last cycle
        m.d.sync += [
            read.eq(sum(r.as_unsigned() for r in reads)),
            self.reads.eq(self.reads + read),
            self.writes.eq(self.writes + sum(w.as_unsigned() for w in writes)),
        ]
        return m
