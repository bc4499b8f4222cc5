"""On-chip harness of the integrated accelerator: a planted compressed GEMM
streams from ROMs through :class:`~focus_hw.accelerator.FocusAccelerator`.

The ROMs hold exactly what :func:`~focus_hw.focus_gemm.simulate_focus_gemm`
feeds (:func:`~focus_hw.focus_gemm.stream_plan`): the similarity maps, the
unique vectors, the weight tiles and the positions. After a warm-up that
fills a FIFO behind each ROM, the harness starts the run; every input stream
offers a beat only where :data:`IN_VALID` (a fixed 8-bit pattern, rotating
one bit per cycle from the start) has a one, and ``out`` is ready where
:data:`OUT_READY` has one. The ``out`` beats fold into
:func:`~focus_hw.fpga.rotl_checksum`, which ``ok`` compares with the
checksum the harness expects: :func:`expected_run`, the checksum and cycle
count of ``simulate_focus_gemm`` under the same patterns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import Out

from ..accelerator import FocusAccelerator, check_accelerator
from ..focus_gemm import simulate_focus_gemm, stream_plan
from ..params import FocusParams
from ..sic.sic import output_layout
from .harness import RomSource, rotl_checksum

__all__ = [
    "IN_VALID",
    "OUT_READY",
    "FocusHarness",
    "PlantedGemm",
    "expected_run",
    "pattern",
    "planted_gemm",
]

#: Bits of each backpressure pattern (a power of two: the cycle's low bits index it).
PATTERN_BITS = 8
#: Input streams offer a beat in cycle ``c`` of the run if bit ``c % 8`` is set.
IN_VALID = 0b1101_1011
#: ``out`` is ready in cycle ``c + 1`` of the run if bit ``c % 8`` is set
#: (as ``simulate_focus_gemm`` counts its ``out_ready`` pattern).
OUT_READY = 0b0111_1110
#: Cycles before the start: each FIFO fills from its ROM.
WARMUP = 8


def pattern(bits: int):
    """The per-cycle enable ``cycle -> bool`` of a pattern (:data:`IN_VALID`)."""
    return lambda cycle: bool((bits >> (cycle % PATTERN_BITS)) & 1)


@dataclass(frozen=True)
class PlantedGemm:
    """``x @ w`` with ``x`` (T, K) on the token ``grid`` (frames, height, width)."""

    x: np.ndarray
    w: np.ndarray
    grid: tuple[int, int, int]


def planted_gemm(
    params: FocusParams, *, frames: int = 2, height: int = 2, width: int = 4, seed: int = 0
) -> PlantedGemm:
    """A seeded GEMM of two K chunks and two N sub-tiles: random tokens,
    every third one a near copy of its left neighbour (the SIC merges it),
    one token pruned (all zero) and one zero vector."""
    p = check_accelerator(params)
    if min(frames, height, width) < 1 or height * width > p.max_frame_tokens:
        raise ValueError(
            f"planted grid {frames}x{height}x{width}: need sizes >= 1 and "
            f"height * width <= max_frame_tokens ({p.max_frame_tokens})"
        )
    rng = np.random.default_rng(seed)
    t, k, n = frames * height * width, 2 * p.vector_size, 2 * p.cols
    x = rng.standard_normal((t, k)).astype(np.float32)
    for i in range(1, t, 3):
        x[i] = x[i - 1] + 0.01 * rng.standard_normal(k)
    x[t // 2] = 0  # pruned
    x[1, : p.vector_size] = 0  # a zero vector in chunk 0
    w = rng.standard_normal((k, n)).astype(np.float32)
    fmt = p.format.np_type
    return PlantedGemm(x.astype(fmt), w.astype(fmt), (frames, height, width))


def expected_run(
    params: FocusParams, gemm: PlantedGemm, in_valid: int = IN_VALID, out_ready: int = OUT_READY
) -> tuple[int, int]:
    """The checksum of the ``out`` beats and the run's cycles (start to last
    beat, both counted) from ``simulate_focus_gemm`` under the patterns:
    what a :class:`FocusHarness` of ``gemm`` must end with."""
    run = simulate_focus_gemm(
        gemm.x, gemm.w, gemm.grid, params, in_valid=pattern(in_valid), out_ready=pattern(out_ready)
    )
    return rotl_checksum(run.words, output_layout(params).size), run.cycles


class FocusHarness(wiring.Component):
    """``gemm`` (a :class:`PlantedGemm`) through the accelerator once, the
    input streams throttled by the pattern ``in_valid``, ``out`` by
    ``out_ready`` (:data:`PATTERN_BITS` bits each); ``expected``: the
    checksum ``ok`` compares with (:func:`expected_run`).

    Members
    -------
    checksum : ``Out(output_layout(params).size)``
        :func:`rotl_checksum` of the ``out`` beats received so far.
    done : ``Out(1)``
        High once every ``out`` beat has arrived.
    ok : ``Out(1)``
        ``done`` and the checksum equals ``expected``.
    cycles : ``Out(32)``
        Cycles from the start to the last ``out`` beat, both counted.
    """

    def __init__(
        self,
        params: FocusParams,
        gemm: PlantedGemm,
        expected: int,
        *,
        in_valid: int = IN_VALID,
        out_ready: int = OUT_READY,
    ):
        width = output_layout(params).size
        values = {"expected": expected, "in_valid": in_valid, "out_ready": out_ready}
        for name, value in values.items():
            bits = width if name == "expected" else PATTERN_BITS
            if not 0 <= value < 1 << bits:
                raise ValueError(f"FocusHarness: {name}={value:#x} is not {bits} bits")
        self.params = params
        self.plan = stream_plan(gemm.x, gemm.w, gemm.grid, params)
        self.expected, self.in_valid, self.out_ready = expected, in_valid, out_ready
        super().__init__({"checksum": Out(width), "done": Out(1), "ok": Out(1), "cycles": Out(32)})

    def elaborate(self, platform):
        plan = self.plan
        m = Module()
        m.submodules.accel = acc = FocusAccelerator(self.params)

        warm = Signal(range(WARMUP))
        running = Signal()  # from cycle WARMUP on
        started = Signal()
        # The patterns rotate once per run cycle: bit 0 is the input pattern's
        # bit for this run cycle (mod PATTERN_BITS), the output pattern's for the previous one.
        ins = Signal(PATTERN_BITS, init=self.in_valid)
        top = self.out_ready >> (PATTERN_BITS - 1)
        outs = Signal(PATTERN_BITS, init=(self.out_ready << 1 | top) % (1 << PATTERN_BITS))
        with m.If(~running):
            m.d.sync += warm.eq(warm + 1)
            with m.If(warm == WARMUP - 1):
                m.d.sync += running.eq(1)
        with m.Else():
            m.d.sync += [started.eq(1), ins.eq(ins.rotate_right(1)), outs.eq(outs.rotate_right(1))]
        offer = running & ins[0]
        take = started & outs[0]

        m.d.comb += acc.start.eq(running & ~started)
        for name, value in plan.sizes.items():
            m.d.comb += getattr(acc, name).eq(value)
        for name, words in plan.streams.items():
            dst = getattr(acc, name)
            width = len(dst.payload.as_value())
            m.submodules[f"{name}_rom"] = src = RomSource(words, width)
            m.submodules[f"{name}_fifo"] = buf = fifo.SyncFIFOBuffered(width=width, depth=4)
            wiring.connect(m, src.out, buf.w_stream)
            m.d.comb += [
                dst.valid.eq(buf.r_stream.valid & offer),
                dst.payload.as_value().eq(buf.r_stream.payload),
                buf.r_stream.ready.eq(dst.ready & offer),
            ]

        received = Signal(range(plan.total + 1))
        m.d.comb += [
            acc.out.ready.eq(take),
            self.done.eq(received == plan.total),
            self.ok.eq(self.done & (self.checksum == self.expected)),
        ]
        with m.If(acc.out.valid & take):
            m.d.sync += [
                self.checksum.eq(self.checksum.rotate_left(1) ^ acc.out.payload.as_value()),
                received.eq(received + 1),
            ]
        with m.If(running & ~self.done):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        return m
