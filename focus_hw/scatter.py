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

    Timing: a request accepted on lane ``i`` in cycle ``c`` reads the row in
    ``c`` (a synchronous read port per lane, transparent for every write
    port); in ``c+1`` the ``cols`` adders (``a`` = old, ``b`` = value, no
    pipeline) add and lane ``i``'s write port stores the sum.

    Conflicts: lane ``i`` is ready unless a lower lane holds a valid request
    for the same row in the same cycle (the lower lane goes first; ``ready``
    does not depend on the lane's own ``valid``); there is no other
    backpressure. So the requests accepted in one cycle target distinct rows
    and no two writes of a cycle meet. No update is lost: a request accepted
    in ``c+1`` to the row written in ``c+1`` sees that write through the
    transparent read port, so back-to-back updates of a row chain, and
    same-cycle updates of a row are serialized by the conflict rule. Proven
    for small configurations in ``tests/test_scatter_formal.py``.

    Ports:

    * ``lanes[i]``: request streams (:func:`request_layout`).
    * ``read`` / ``data``: the drain port: ``read`` takes a row address,
      ``data`` gives the row one cycle later and holds it until taken. It
      is not transparent: a row whose update is still in flight (``busy``)
      reads its old value; waiting for ``busy`` low is the caller's job.
    * ``busy``: an accepted update has not been written yet (high in the
      cycle after a request that writes is accepted).
    * ``reads``, ``writes``: row accesses of the buffer (old-value reads of
      requests without ``init`` or ``skip``, drain reads; writes of every
      request but a ``skip`` without ``init``), for simulation and the SRAM
      model.

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
        m.submodules.memory = self.memory
        reads, writes = [], []
        for i, lane in enumerate(self.lanes):
            req = lane.payload
            # Wait while a lower lane offers a request for the same row.
            conflicts = [low.valid & (low.payload.row == req.row) for low in self.lanes[:i]]
            m.d.comb += lane.ready.eq(~Cat(*conflicts).any())
            take = lane.valid & lane.ready

            rp = self._lane_reads[i]
            m.d.comb += [rp.addr.eq(req.row), rp.en.eq(take & ~req.init & ~req.skip)]
            reads.append(rp.en)

            stage = Signal(request_layout(p), name=f"stage{i}")  # the request in its add cycle
            write = Signal(name=f"write{i}")  # ... and it writes its row
            m.d.sync += [stage.eq(req), write.eq(take & (req.init | ~req.skip))]

            wp = self.memory.write_ports[i]
            m.d.comb += [
                self.old[i].eq(Mux(stage.init, 0, rp.data)),
                wp.addr.eq(stage.row),
                wp.en.eq(write),
            ]
            for col in range(p.cols):
                add = m.submodules[f"add{i}_{col}"] = FAdd(p.acc.layout)
                m.d.comb += [
                    add.a.eq(self.old[i][col]),
                    add.b.eq(Mux(stage.skip, 0, stage.value[col])),
                    wp.data[col].eq(add.out),
                ]
            writes.append(write)

        serve_reads(m, self._drain, self.read, self.data)
        reads.append(self._drain.en)

        m.d.comb += self.busy.eq(Cat(*writes).any())
        m.d.sync += [
            self.reads.eq(self.reads + sum(r.as_unsigned() for r in reads)),
            self.writes.eq(self.writes + sum(w.as_unsigned() for w in writes)),
        ]
        return m
