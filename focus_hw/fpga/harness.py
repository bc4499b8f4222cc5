"""On-chip test harness: preloaded tiles stream through the systolic array.

Weight tiles and activation rows sit in ROMs (``amaranth.lib.memory`` with
``init``); two stream sources feed them to a :class:`~focus_hw.SystolicArray`
and every output row is folded into a checksum, so synthesis must keep the
whole array. The checksum is ``chk = rotl(chk, 1) ^ word`` over the output
words in order, from ``chk = 0``; ``word`` is the output row as the array
packs it (column ``c`` in bits ``c * acc_bits ...``). Rotating makes it
sensitive to the order of rows and costs no logic on the clock path.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.lib import fifo, memory, stream, wiring
from amaranth.lib.wiring import Out

from ..params import FocusParams
from ..simulate import pack_row
from ..systolic import SystolicArray

__all__ = ["Harness", "RomSource", "check_tiles", "harness_tiles", "pack_row", "rotl_checksum"]


def harness_tiles(
    params: FocusParams, tiles: int = 2, rows_per_tile: int = 8, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``tiles`` random ``(a, w)`` pairs, ``a`` (rows_per_tile, params.rows),
    ``w`` (params.rows, params.cols), in the operand type of ``params.dtype``
    (finite floats in [-4, 4), any int8)."""
    if tiles < 1 or rows_per_tile < 1:
        raise ValueError(
            f"harness needs tiles >= 1 and rows_per_tile >= 1, got {tiles} and {rows_per_tile}"
        )
    rng = np.random.default_rng(seed)
    fmt = params.format

    def draw(shape):
        if not fmt.is_float:
            info = np.iinfo(fmt.np_type)
            return rng.integers(info.min, info.max + 1, size=shape).astype(fmt.np_type)
        return (rng.random(shape) * 8 - 4).astype(np.float32).astype(fmt.np_type)

    return [
        (draw((rows_per_tile, params.rows)), draw((params.rows, params.cols))) for _ in range(tiles)
    ]


def rotl_checksum(words, width: int) -> int:
    """The harness checksum of ``words`` (each ``width`` bits), in order."""
    mask = (1 << width) - 1
    chk = 0
    for word in words:
        chk = (((chk << 1) | (chk >> (width - 1))) & mask) ^ word
    return chk


def check_tiles(params: FocusParams, tiles) -> None:
    """:class:`ValueError` unless every ``(a, w)`` of ``tiles`` is (M, rows) x
    (rows, cols) in the operand type of ``params.dtype``."""
    for a, w in tiles:
        if a.ndim != 2 or a.shape[1] != params.rows or w.shape != (params.rows, params.cols):
            raise ValueError(
                f"harness tile shapes {a.shape} x {w.shape} must be "
                f"(M, {params.rows}) x ({params.rows}, {params.cols})"
            )
        need = np.dtype(params.format.np_type)
        if {a.dtype, w.dtype} != {need}:
            raise ValueError(
                f"harness tiles are {a.dtype} x {w.dtype}; "
                f"params.dtype={params.dtype!r} needs {need}"
            )


class RomSource(wiring.Component):
    """Streams the words of a ROM once, in order (one beat per cycle when taken)."""

    def __init__(self, words: list[int], width: int):
        self._words = words
        self._width = width
        super().__init__({"out": Out(stream.Signature(width))})

    def elaborate(self, platform):
        m = Module()
        depth = len(self._words)
        m.submodules.rom = rom = memory.Memory(
            shape=self._width, depth=depth, init=self._words, attrs={"ram_style": "block"}
        )
        rd = rom.read_port()
        index = Signal(range(depth + 1))
        take = ~self.out.valid | self.out.ready
        m.d.comb += [rd.addr.eq(index), rd.en.eq(take), self.out.payload.eq(rd.data)]
        with m.If(take):
            m.d.sync += self.out.valid.eq(index < depth)
            with m.If(index < depth):
                m.d.sync += index.eq(index + 1)
        return m


class Harness(wiring.Component):
    """Preloaded ``tiles`` (see :func:`harness_tiles`) through the array once.

    Members
    -------
    checksum : ``Out(params.cols * params.acc_bits)``
        :func:`rotl_checksum` of the output rows received so far.
    done : ``Out(1)``
        High once every output row has arrived.
    """

    def __init__(self, params: FocusParams, tiles: list[tuple[np.ndarray, np.ndarray]]):
        check_tiles(params, tiles)
        self.params = params
        self.tiles = tiles
        self.out_rows = sum(a.shape[0] for a, _ in tiles)
        super().__init__(
            {
                "checksum": Out(params.cols * params.acc_bits),
                "done": Out(1),
            }
        )

    def _roms(self) -> tuple[list[int], list[int]]:
        p = self.params
        op = p.operand_bits
        weights, acts = [], []
        for a, w in self.tiles:
            weights += [pack_row(row, op) for row in p.format.to_bits(w)]
            acts += [
                pack_row(row, op) | (int(i == 0) << (p.rows * op))
                for i, row in enumerate(p.format.to_bits(a))
            ]
        return weights, acts

    def elaborate(self, platform):
        p = self.params
        m = Module()
        weights, acts = self._roms()
        m.submodules.array = array = SystolicArray(p)
        # A FIFO after each ROM: the array sees flip-flops, not the slow
        # block RAM outputs, so Fmax is the array's.
        for name, words, dst in (("weights", weights, array.weight), ("acts", acts, array.act)):
            width = len(dst.payload.as_value())
            m.submodules[name] = src = RomSource(words, width)
            m.submodules[f"{name}_fifo"] = buf = fifo.SyncFIFOBuffered(width=width, depth=4)
            wiring.connect(m, src.out, buf.w_stream)
            m.d.comb += [
                dst.valid.eq(buf.r_stream.valid),
                dst.payload.as_value().eq(buf.r_stream.payload),
                buf.r_stream.ready.eq(dst.ready),
            ]

        received = Signal(range(self.out_rows + 1))
        m.d.comb += [array.out.ready.eq(1), self.done.eq(received == self.out_rows)]
        with m.If(array.out.valid):
            word = array.out.payload.as_value()
            m.d.sync += [
                self.checksum.eq(self.checksum.rotate_left(1) ^ word),
                received.eq(received + 1),
            ]
        return m
